//! The chat WebSocket protocol: the hello, each `say`, and the line read
//! against the commands the presentation lists (fuzzed commands or a
//! sample of each argument kind).

use crate::Target;
use crate::split::Parts;
use gangway_server::api::inbound::{parse_hello, parse_say};
use gangway_server::runtime::chat::{CommandSpec, parse};
use serde_json::json;

pub const TARGET: Target = Target {
    name: "chat",
    about: "chat protocol: hello, say, command lines (runtime::chat::parse)",
    run,
    dict: &[
        "\"type\"",
        "\"hello\"",
        "\"say\"",
        "\"secret\"",
        "\"last_id\"",
        "\"client_id\"",
        "\"text\"",
        "/help",
        "/status",
        "/me",
        "/run ",
        "/ask ",
        "\u{3000}",
        "\u{85}",
        "{\"customer_id\": \"c-42\"}",
    ],
};

fn sample_commands() -> Vec<CommandSpec> {
    serde_json::from_value(json!([
        {"name": "me", "run": "oih-me"},
        {"name": "ask", "run": "oih-assistant", "args": "text"},
        {"name": "run", "run": "oih-run-flow", "args": "flow", "usage": "/run <flow> [json]"},
    ]))
    .expect("sample commands")
}

pub fn run(data: &[u8]) {
    let parts = Parts::new(data);
    let _ = parse_hello(&parts.text(0));
    let line = match parse_say(&parts.text(1)) {
        Ok(say) => say.line,
        Err(_) => parts.text(2),
    };
    let commands = serde_json::from_slice::<Vec<CommandSpec>>(parts.bytes(3))
        .unwrap_or_else(|_| sample_commands());
    let _ = parse(&line, &commands);
}
