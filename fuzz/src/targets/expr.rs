//! CEL expressions: compile, then evaluate against a scope of JSON values
//! (the fuzzed JSON when it parses, else a sample).

use crate::Target;
use crate::split::Parts;
use gangway_core::expr::{Expr, Scope};
use serde_json::Value;

pub const TARGET: Target = Target {
    name: "expr",
    about: "CEL expressions: Expr::compile, read_paths, eval over a fuzzed JSON scope",
    run,
    dict: &[
        "input.",
        "state.",
        "session.",
        "result.",
        "event.",
        "has(",
        "size(",
        "int(",
        "uint(",
        "double(",
        "string(",
        "bytes(",
        "timestamp(",
        "duration(",
        ".exists(x, ",
        ".all(x, ",
        ".map(x, ",
        ".filter(x, ",
        ".matches(",
        ".startsWith(",
        ".contains(",
        " ? ",
        " : ",
        " && ",
        " || ",
        " == ",
        " != ",
        " in ",
        "!",
        "-",
        "+",
        "*",
        "/",
        "%",
        "<=",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "'",
        "\"\"\"",
        "b'",
        "r'",
        "0x",
        "u",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615u",
        "1e308",
        "'(a+)+$'",
    ],
};

pub fn run(data: &[u8]) {
    let parts = Parts::new(data);
    let source = parts.text(0);
    let Ok(e) = Expr::compile(&source) else {
        return;
    };
    let _ = e.read_paths();
    let _ = e.variables();
    let fuzzed: Option<Value> = serde_json::from_slice(parts.bytes(1)).ok();
    let sample = super::sample_scope_value();
    let v = fuzzed.as_ref().unwrap_or(&sample);
    let scope = Scope {
        input: Some(v),
        state: Some(&sample),
        session: Some(v),
        result: if parts.flag(0) { None } else { Some(v) },
        event: Some(&sample),
    };
    let _ = e.eval(&scope);
    let _ = e.eval_bool(&scope);
}
