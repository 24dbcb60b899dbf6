//! The JSON Schema of the workflow language (`gangway schema`), kept next to
//! the parser it describes; a test checks the shipped workflows against it.

use crate::catalog::Catalog;
use serde_json::{Value, json};

/// The schema of workflows that may call the actions of `catalog`.
pub fn json_schema(catalog: &Catalog) -> Value {
    let actions = catalog.names();
    let step_name = json!({"type": "string", "pattern": "^[a-z0-9_-]+$"});
    let duration =
        json!({"type": "string", "description": "A duration such as `30s`, `10m`, `2h`."});
    let template = json!({"description": "Any JSON value; strings may hold `${CEL}` expressions over input, state and session."});
    let cel = json!({"type": "string", "description": "A CEL expression."});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://gangway.dev/schema/workflow.json",
        "title": "Gangway workflow",
        "type": "object",
        "required": ["id", "version", "steps"],
        "additionalProperties": false,
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9_-]+$"},
            "version": {"type": "integer", "minimum": 1},
            "description": {"type": "string"},
            "retention": {"type": "string",
                          "description": "How long a session's personal data is kept after it ends, e.g. `30d`; then it is erased, leaving a tombstone. Default: the server's `retention.default`."},
            "input": {"type": "object",
                      "description": "A JSON Schema (type: object) the session input must match; steps may read only the fields its `properties` declare.",
                      "required": ["type"],
                      "properties": {"type": {"const": "object"}}},
            "start": step_name,
            "steps": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": step_name,
                "additionalProperties": {"$ref": "#/$defs/step"}
            }
        },
        "$defs": {
            "step": {"oneOf": [
                {"$ref": "#/$defs/call"}, {"$ref": "#/$defs/wait"},
                {"$ref": "#/$defs/decide"}, {"$ref": "#/$defs/end"},
                {"$ref": "#/$defs/run"}, {"$ref": "#/$defs/review"}
            ]},
            "review": {
                "type": "object",
                "required": ["review", "timeout", "on_timeout"],
                "additionalProperties": false,
                "description": "hands the decision to a reviewer: the session waits in the review queue until `approved`, `declined` or the deadline",
                "properties": {
                    "review": {"type": "object",
                               "required": ["approved", "declined"],
                               "additionalProperties": false,
                               "properties": {"approved": step_name, "declined": step_name},
                               "description": "decision -> step"},
                    "facts": {"type": "object", "additionalProperties": template,
                              "description": "what the reviewer sees, rendered when the step is entered"},
                    "group": {"type": "string", "pattern": "^[a-z0-9_-]+$",
                              "description": "the reviewers' group the review is assigned to"},
                    "present": {"type": "object", "required": ["kind"],
                                "description": "what the browser shows while a person decides (e.g. kind: progress)"},
                    "timeout": duration,
                    "on_timeout": step_name
                }
            },
            "run": {
                "type": "object",
                "required": ["run", "timeout", "on_timeout"],
                "additionalProperties": false,
                "properties": {
                    "run": {"type": "string", "pattern": "^[a-z0-9_-]+$",
                            "description": "id of the child workflow"},
                    "with": {"type": "object", "additionalProperties": template,
                             "description": "the child's input"},
                    "save_as": {"type": "string"},
                    "timeout": duration,
                    "on_timeout": step_name,
                    "on": {"type": "object",
                           "propertyNames": {"enum": ["approved", "declined", "review", "failed", "canceled", "expired"]},
                           "additionalProperties": step_name,
                           "description": "outcome of the child -> step"},
                    "default": step_name
                }
            },
            "call": {
                "type": "object",
                "required": ["call", "next"],
                "additionalProperties": false,
                "properties": {
                    "call": {"enum": actions},
                    "with": {"type": "object", "additionalProperties": template},
                    "save_as": {"type": "string"},
                    "provider_ref": cel,
                    "timeout": duration,
                    "next": step_name,
                    "on_error": step_name,
                    "retry": {
                        "type": "object",
                        "required": ["while"],
                        "additionalProperties": false,
                        "description": "run the call again, backing off, while `while` holds for its result, until `timeout`",
                        "properties": {
                            "while": cel,
                            "every": duration,
                            "max_every": duration
                        }
                    }
                }
            },
            "wait": {
                "type": "object",
                "required": ["wait", "timeout", "on_timeout"],
                "additionalProperties": false,
                "properties": {
                    "wait": {"type": "object", "minProperties": 1, "additionalProperties": step_name,
                             "description": "event name -> step"},
                    "timeout": duration,
                    "until": cel,
                    "on_timeout": step_name,
                    "poll": {
                        "type": "object",
                        "required": ["call", "emit"],
                        "additionalProperties": false,
                        "properties": {
                            "call": {"enum": actions},
                            "with": {"type": "object"},
                            "every": duration,
                            "max_every": duration,
                            "save_as": {"type": "string", "pattern": "^[a-z0-9_-]+$"},
                            "emit": {"type": "object", "additionalProperties": cel}
                        }
                    },
                    "present": {
                        "type": "object",
                        "required": ["kind"],
                        "properties": {"kind": {"type": "string",
                            "description": "built into the SDK: iframe, qr, popup, redirect, chat, progress; other kinds need a renderer registered in the page (Gangway.registerRenderer)"}}
                    }
                }
            },
            "decide": {
                "type": "object",
                "required": ["decide", "default"],
                "additionalProperties": false,
                "properties": {
                    "decide": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["when", "next"], "additionalProperties": false,
                        "properties": {"when": cel, "next": step_name}
                    }},
                    "default": step_name,
                    "on_error": step_name
                }
            },
            "end": {
                "type": "object",
                "required": ["end", "reason"],
                "additionalProperties": false,
                "properties": {
                    "end": {"enum": ["approved", "declined", "review", "failed", "canceled", "expired"]},
                    "reason": {"type": "string"},
                    "output": {}
                }
            }
        }
    })
}
