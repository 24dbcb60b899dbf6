//! Stripe's webhook (`/v1/webhooks/stripe`): the `Stripe-Signature` header
//! (timestamp, several `v1`, rotation over several secrets, tolerance),
//! then the event body. A flag signs the fuzzed body correctly so the
//! parser behind the check is reached.

use crate::Target;
use crate::split::Parts;
use gangway_server::api::inbound::{
    parse_stripe_event, parse_stripe_signature, sign_stripe, verify_stripe_webhook,
};
use std::time::Duration;

pub const TARGET: Target = Target {
    name: "stripe",
    about: "Stripe webhook: Stripe-Signature (t, v1..., tolerance, rotation) + event body",
    run,
    dict: &[
        "t=",
        ",v1=",
        ",v0=",
        "\"type\"",
        "\"data\"",
        "\"object\"",
        "identity.verification_session.verified",
        "identity.verification_session.requires_input",
        "9223372036854775807",
        "-9223372036854775808",
    ],
};

const SECRETS: [&str; 2] = ["whsec_fuzz_old_0123456789", "whsec_fuzz_new_0123456789"];

pub fn run(data: &[u8]) {
    let parts = Parts::new(data);
    let body = parts.bytes(1);
    let now = parts.number(2);
    let header = if parts.flag(0) {
        // Signed correctly (under the second secret): only the timestamp
        // and the body can fail.
        let t = parts.number(3);
        format!("t={t},v1={}", sign_stripe(SECRETS[1], t, body))
    } else {
        parts.text(0)
    };
    let _ = parse_stripe_signature(&header);
    let tolerance = Duration::from_secs(if parts.flag(1) { u64::MAX } else { 300 });
    let secrets: Vec<String> = SECRETS.iter().map(|s| s.to_string()).collect();
    if verify_stripe_webhook(&secrets, tolerance, Some(&header), body, now).is_ok() {
        let _ = parse_stripe_event(body);
    }
}
