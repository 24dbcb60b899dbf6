//! 360dialog's inbound side: the partner webhook's token query and event
//! envelope, the permissions redirect's query and the browser's payload.

use crate::Target;
use crate::split::Parts;
use gangway_server::api::inbound::{parse_partner_event, token_param};
use gangway_server::connectors::dialog360::{RedirectHint, parse_id_list};

pub const TARGET: Target = Target {
    name: "dialog360",
    about: "360dialog webhook token + event envelope, redirect query/payload, id lists",
    run,
    dict: &[
        "token=",
        "client=",
        "channels=",
        "revoked=",
        "state=",
        "d360st_",
        "&",
        "[",
        "]",
        ",",
        "%5B",
        "%2C",
        "\"event\"",
        "\"type\"",
        "\"data\"",
        "\"client_id\"",
        "\"channel_id\"",
        "\"partner_payload\"",
        "\"channel_running\"",
        "\"client_created\"",
        "\"query\"",
    ],
};

pub fn run(data: &[u8]) {
    let parts = Parts::new(data);
    let query = parts.text(0);
    let _ = token_param(Some(&query));
    let _ = RedirectHint::from_query(&query);
    let _ = parse_id_list(&parts.text(2));
    let body = parts.bytes(1);
    let _ = parse_partner_event(body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Ok(hint) = RedirectHint::from_value(&v)
    {
        let _ = hint.to_value();
    }
}
