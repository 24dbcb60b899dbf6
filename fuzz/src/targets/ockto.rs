//! Ockto's answers: any response read (a 2xx body, or the error it names,
//! with Retry-After), the status read and the ODM result whose figures the
//! rules read (sums over lists made in Rust). Flags pick the HTTP status.

use crate::Target;
use crate::split::Parts;
use gangway_server::connectors::http::parse_retry_after;
use gangway_server::connectors::ockto::{Status, read_answer, summary};
use serde_json::Value;

pub const TARGET: Target = Target {
    name: "ockto",
    about: "Ockto answers: read_answer (2xx body or error, Retry-After), Status::parse, summary",
    run,
    dict: &[
        "\"status\"",
        "\"DATA_AVAILABLE\"",
        "\"SCANNED\"",
        "\"persons\"",
        "\"role\"",
        "\"applicant\"",
        "\"income\"",
        "\"grossYearly\"",
        "\"netMonthly\"",
        "\"employment\"",
        "\"debts\"",
        "\"documents\"",
        "\"housing\"",
        "1e308",
        "-1e308",
        "\"error\"",
        "\"code\"",
        "\"message\"",
        "\"password\"",
    ],
};

pub fn run(data: &[u8]) {
    let parts = Parts::new(data);
    let status = [200, 201, 400, 401, 403, 404, 429, 500, 503][usize::from(parts.flags % 9)];
    let mut headers = gangway_server::api::inbound::HeaderMap::new();
    if let Ok(v) = parts.text(1).parse() {
        headers.insert("retry-after", v);
    }
    let retry_after = parse_retry_after(&headers);
    let Ok((v, _)) = read_answer(
        "GET /sessions/{id}/result",
        status,
        retry_after,
        parts.bytes(0),
    ) else {
        return;
    };
    if let Some(s) = v.get("status").and_then(Value::as_str) {
        let status = Status::parse(s);
        let _ = (status.as_str(), status.event(), status.terminal());
    }
    if let Ok(s) = summary(&v) {
        // What the rules read: it must serialize (no NaN or infinity).
        let _ = s.to_string();
    }
}
