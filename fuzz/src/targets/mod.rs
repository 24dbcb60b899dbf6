//! The targets: each reads untrusted bytes the way the server does.

pub mod chat;
pub mod config;
pub mod dialog360;
pub mod expr;
pub mod incode;
pub mod ockto;
pub mod oih;
pub mod stripe;
pub mod template;
pub mod webhook_http;
pub mod workflow;

/// A scope of JSON values for evaluating fuzzed expressions.
pub(crate) fn sample_scope_value() -> serde_json::Value {
    serde_json::json!({
        "s": "text",
        "n": 42,
        "f": 1.5,
        "b": true,
        "z": null,
        "list": [1, "two", 3.0, [4], {"five": 5}],
        "map": {"a": {"b": {"c": "deep"}}, "k": [1, 2, 3]},
        "big": 9223372036854775807i64,
        "neg": -9223372036854775807i64,
        "u": 18446744073709551615u64
    })
}
