//! Incode's inbound side: the token endpoint's Basic credentials and form,
//! the webhook's bearer token or header secret, the webhook body.

use crate::Target;
use crate::split::Parts;
use gangway_server::api::inbound::{
    client_credentials_grant, client_credentials_ok, issue_token, parse_incode_webhook,
    token_valid, webhook_credentials_ok,
};

pub const TARGET: Target = Target {
    name: "incode",
    about: "Incode webhook: Basic credentials, token form, bearer/header secret, body",
    run,
    dict: &[
        "Basic ",
        "Bearer ",
        "gwit_",
        "_",
        "grant_type=client_credentials",
        "&",
        "=",
        "%",
        "+",
        "\"interviewId\"",
        "\"onboardingStatus\"",
        "\"ONBOARDING_FINISHED\"",
        "\"ID_VALIDATION_FINISHED\"",
        "\"USER_CANCELLED\"",
        "Z2F0ZTpzM2NyZXQ=",
    ],
};

const ID: &str = "gate";
const SECRET: &str = "a-long-client-secret";

pub fn run(data: &[u8]) {
    let parts = Parts::new(data);
    let authorization = parts.text(0);
    let now = parts.number(2);
    let _ = client_credentials_ok(Some(&authorization), ID, SECRET);
    let _ = client_credentials_grant(parts.bytes(1));
    let token = if parts.flag(0) {
        format!("Bearer {}", issue_token(SECRET, now.saturating_add(10)))
    } else {
        authorization.clone()
    };
    let _ = token_valid(SECRET, token.trim_start_matches("Bearer "), now);
    let header = parts.text(3);
    let ok = webhook_credentials_ok(
        Some(SECRET),
        parts.flag(1).then_some("header-secret-000000"),
        Some(&token),
        Some(&header),
        now,
    );
    if ok || parts.flag(2) {
        let _ = parse_incode_webhook(parts.bytes(4));
    }
}
