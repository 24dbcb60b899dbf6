//! `${...}` templates: strings split into text and expressions, JSON
//! templates, URL path fields (one encoded segment per value), rendered.

use crate::Target;
use crate::split::Parts;
use gangway_core::expr::{Scope, Template, compile_string};
use serde_json::{Value, json};

pub const TARGET: Target = Target {
    name: "template",
    about: "${...} templates: compile_string, Template::compile, url_path_field, render",
    run,
    dict: &[
        "${",
        "$${",
        "}",
        "${input.s}",
        "${input.list}",
        "${input.map}",
        "${{'a': 1}}",
        "${'}'}",
        "${\"${\"}",
        "/v1/x/${input.s}/y",
        "?",
        "#",
        "%2e%2e",
        "..",
        "\"path\"",
        "\"query\"",
    ],
};

pub fn run(data: &[u8]) {
    let parts = Parts::new(data);
    let text = parts.text(0);
    let sample = super::sample_scope_value();
    let fuzzed: Option<Value> = serde_json::from_slice(parts.bytes(1)).ok();
    let v = fuzzed.as_ref().unwrap_or(&sample);
    let scope = Scope {
        input: Some(v),
        state: Some(&sample),
        session: Some(&sample),
        result: Some(v),
        event: None,
    };
    if let Ok(t) = compile_string(&text) {
        let _ = t.exprs();
        let _ = t.render(&scope);
    }
    // A JSON template (the `args` of a call) with the text as its `path`.
    let args = match &fuzzed {
        Some(f @ Value::Object(_)) if parts.flag(0) => f.clone(),
        _ => json!({"path": text, "query": {"q": text}, "n": 1}),
    };
    if let Ok(mut t) = Template::compile(&args) {
        let _ = t.url_path_field("path");
        let _ = t.render(&scope);
    }
}
