//! The workflow language: YAML parse, validation (with its CEL expressions
//! and templates compiled) and the JSON Schema the editor reads.

use crate::Target;

pub const TARGET: Target = Target {
    name: "workflow",
    about: "workflow YAML: gangway_core::workflow::parse (parse + validate)",
    run,
    dict: &[
        "kind: ",
        "id: ",
        "version: ",
        "steps:\n",
        "- id: ",
        "  call: ",
        "  wait: ",
        "  when: ",
        "  args:\n",
        "  then: ",
        "  outcome: ",
        "  deadline: ",
        "  retry:\n",
        "  present:\n",
        "  run: ",
        "http.request",
        "incode.start",
        "ockto.start",
        "dialog360.start",
        "oih.trigger",
        "approved",
        "declined",
        "!!binary ",
        "&a ",
        "*a",
        "<<: ",
        "? ",
        "|\n",
        ">-\n",
        "---\n",
        "...\n",
        "${state.",
        "${input.",
        "session.reference",
        "\n    ",
    ],
};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(wf) = gangway_core::workflow::parse(text, gangway_server::providers::catalog()) {
        // What a valid workflow hands the rest of the server.
        let _ = format!("{wf:?}");
    }
}
