use super::*;

/// Every operation of the document, as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

/// Found by schemathesis (scripts/schemathesis): answers the server
/// gives that the document did not list.
#[test]
fn documents_what_schemathesis_found_missing() {
    let doc = document();
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        let has_path_param = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path"));
        if has_path_param {
            // A path that is not UTF-8 (400) or holds a control character (422).
            for code in ["400", "422"] {
                assert!(
                    op["responses"].get(code).is_some(),
                    "{method} {path} lacks {code}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked}");
    // A plain GET on the chat (not a WebSocket upgrade) is a 400.
    assert!(doc["paths"]["/v1/client/sessions/{id}/chat"]["get"]["responses"]["400"].is_object());
    // A dry run refuses `"timeout_s": null` (422), as an integer field.
    assert_eq!(
        doc["components"]["schemas"]["DryRunRequest"]["properties"]["timeout_s"]["type"],
        "integer"
    );
}

/// Found by `redocly lint` and openapi-python-client (issue 21): no
/// operation ids, no `security: []` where none is needed, no licence or
/// servers, operations without a 2XX or 4XX answer.
#[test]
fn every_operation_is_named_secured_and_answered() {
    let doc = document();
    assert!(doc["info"]["license"]["name"].is_string());
    assert!(doc["servers"][0]["url"].is_string());
    let mut ids = std::collections::BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_string()), "{method} {path}: {id} twice");
        assert!(op["security"].is_array(), "{method} {path} lacks security");
        let codes: Vec<&String> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .collect();
        assert!(
            codes.iter().any(|c| c.starts_with('4')),
            "{method} {path}: no 4XX"
        );
        // The chat answers 101 (a WebSocket), justified in docs/api.md.
        if path != "/v1/client/sessions/{id}/chat" {
            assert!(
                codes.iter().any(|c| c.starts_with('2')),
                "{method} {path}: no 2XX"
            );
        }
    }
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/webhooks/http/{name}",
    ] {
        assert_eq!(
            doc["paths"][path]["get"]["security"]
                .as_array()
                .or(doc["paths"][path]["post"]["security"].as_array())
                .map(Vec::len),
            Some(0),
            "{path}"
        );
    }
}

/// Found by openapi-python-client (issue 21): arrays without `items`,
/// request bodies without a schema, a `Session` without `output`.
#[test]
fn every_schema_is_complete() {
    let doc = document();
    fn walk(v: &Value, at: &str) {
        match v {
            Value::Object(m) => {
                if m.get("type") == Some(&json!("array")) {
                    assert!(m.contains_key("items"), "{at}: an array without items");
                }
                if let Some(content) = m.get("content").and_then(Value::as_object) {
                    for (media, c) in content {
                        assert!(c.get("schema").is_some(), "{at}: {media} without a schema");
                    }
                }
                for (k, v) in m {
                    walk(v, &format!("{at}/{k}"));
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, at)),
            _ => {}
        }
    }
    walk(&doc, "#");
    let session = &doc["components"]["schemas"]["Session"];
    let required = session["required"].as_array().expect("required");
    for field in ["output", "refused_events", "waiting_on", "providers"] {
        assert!(required.contains(&json!(field)), "Session.{field}");
    }
}
