//! Open Integration Hub callbacks: the body a flow posts back, and the
//! HMAC the hub checks on triggers (over the exact body bytes).

use crate::Target;
use crate::split::Parts;
use gangway_server::api::inbound::parse_callback;
use gangway_server::connectors::oih::{sign, valid_flow_id};

pub const TARGET: Target = Target {
    name: "oih",
    about: "OIH callback body (requestId, seq, type, data, message), trigger HMAC, flow ids",
    run,
    dict: &[
        "\"requestId\"",
        "\"seq\"",
        "\"type\"",
        "\"data\"",
        "\"message\"",
        "\"progress\"",
        "\"result\"",
        "\"error\"",
        "100000",
        "100001",
        "gwcb_",
    ],
};

pub fn run(data: &[u8]) {
    let parts = Parts::new(data);
    let body = parts.bytes(0);
    let _ = parse_callback(body);
    let algorithm = if parts.flag(0) { "sha512" } else { "sha256" };
    let _ = sign(algorithm, parts.bytes(1), body);
    let _ = valid_flow_id(&parts.text(1));
}
