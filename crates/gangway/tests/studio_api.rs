//! What the console's workflow studio calls, over HTTP: `POST
//! /v1/workflows/validate` (every problem of a draft with its line and
//! column, as `gangway validate` finds them; what a deploy would make of a
//! valid one) and `POST /v1/workflows/{id}/dry-run` with a draft `source`
//! (the draft runs instead of the current version, in the sandbox). Runs on
//! PostgreSQL with GANGWAY_TEST_BACKEND=postgres.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, create_key, repo_root};
use serde_json::{Value, json};

/// tests/workflows/score-fast.yaml under another id and version.
fn draft(id: &str, version: u32) -> String {
    let text =
        std::fs::read_to_string(repo_root().join("crates/gangway/tests/workflows/score-fast.yaml"))
            .unwrap();
    assert!(text.contains("\nid: score-fast\nversion: 1\n"));
    text.replace(
        "\nid: score-fast\nversion: 1\n",
        &format!("\nid: {id}\nversion: {version}\n"),
    )
}

/// The 1-based line of the first line of `text` containing `needle`, and
/// the column where `needle` starts on it.
fn position(text: &str, needle: &str) -> (u64, u64) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| l.find(needle).map(|c| (i as u64 + 1, c as u64 + 1)))
        .unwrap()
}

async fn validate_with(h: &Harness, key: &str, body: Value) -> (u16, Value) {
    let r = h
        .http
        .post(h.url("/v1/workflows/validate"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_answers_each_problem_at_its_line_and_column() {
    let h = Harness::start().await;

    // Valid, new: nothing deployed under the id yet.
    let (status, body) = h
        .post(
            "/v1/workflows/validate",
            json!({"source": draft("studio-new", 1)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid"], true, "{body}");
    assert_eq!(body["diagnostics"], json!([]));
    assert_eq!(
        body["workflow"],
        json!({"id": "studio-new", "version": 1, "steps": 8, "latest_version": null})
    );
    // Its graph, in the shape a deployed version's has: every step a node
    // (the first the start), the outcomes it ends with, edges by what takes them.
    let graph = &body["graph"];
    let node = |id: &str| {
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("no node {id}: {graph}"))
            .clone()
    };
    assert_eq!(node("start_provider")["start"], true, "{graph}");
    assert_eq!(node("wait_for_result")["kind"], "wait", "{graph}");
    assert_eq!(node("outcome:approved")["kind"], "outcome", "{graph}");
    assert!(
        graph["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == "wait_for_result"
                && e["to"] == "fetch_score"
                && e["label"] == "score.completed"),
        "{graph}"
    );
    // Valid, of a deployed workflow: the version new sessions use now.
    let (_, body) = h
        .post(
            "/v1/workflows/validate",
            json!({"source": draft("score-fast", 2)}),
        )
        .await;
    assert_eq!(body["workflow"]["latest_version"], 1, "{body}");
    // Nothing was deployed by validating.
    let (_, list) = h.get("/v1/workflows").await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"studio-new"), "{ids:?}");

    // A step that goes nowhere, and one of an unknown kind: each where it
    // is (with what follows from them: the steps now unreachable), in
    // source order.
    let broken = draft("studio-broken", 1)
        .replace("    next: wait_for_result\n", "    next: wait_for_reslt\n")
        .replace(
            "  abandoned:\n    end: canceled",
            "  abandoned:\n    ned: canceled",
        );
    let (status, body) = h
        .post("/v1/workflows/validate", json!({"source": broken}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid"], false, "{body}");
    assert_eq!(body["workflow"], Value::Null);
    assert_eq!(body["graph"], Value::Null);
    let diags = body["diagnostics"].as_array().unwrap();
    let at = |line: u64, needle: &str| {
        diags
            .iter()
            .find(|d| d["line"] == line && d["message"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no problem with `{needle}` at line {line}: {body}"))
    };
    let (line, col) = position(&broken, "wait_for_reslt");
    assert_eq!(
        at(line, "unknown step `wait_for_reslt`")["col"],
        col,
        "{body}"
    );
    let (line, col) = position(&broken, "ned: canceled");
    let kind = at(line, "unknown step kind in `abandoned`");
    let found = kind["col"].as_u64().unwrap();
    assert!((col..col + 4).contains(&found), "{body}");
    let order: Vec<(u64, u64)> = diags
        .iter()
        .map(|d| (d["line"].as_u64().unwrap(), d["col"].as_u64().unwrap()))
        .collect();
    assert!(order.is_sorted(), "{body}");

    // A YAML syntax error: where the parser stopped.
    let bad_yaml = "id: x\nversion: 1\nsteps:\n  a: [unclosed\n";
    let (_, body) = h
        .post("/v1/workflows/validate", json!({"source": bad_yaml}))
        .await;
    assert_eq!(body["valid"], false, "{body}");
    let d = &body["diagnostics"][0];
    assert!(d["line"].as_u64().unwrap() >= 4, "{body}");
    assert!(d["col"].as_u64().unwrap() >= 1, "{body}");

    // A `run` step naming a workflow this server does not have.
    let runs = std::fs::read_to_string(
        repo_root().join("crates/gangway/tests/workflows/parent-score.yaml"),
    )
    .unwrap()
    .replace("run: http-score", "run: nowhere-to-be-found");
    let (_, body) = h
        .post("/v1/workflows/validate", json!({"source": runs}))
        .await;
    assert_eq!(body["valid"], false, "{body}");
    let d = &body["diagnostics"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{body}");
    assert_eq!(
        d[0]["line"],
        position(&runs, "nowhere-to-be-found").0,
        "{body}"
    );
    assert!(
        d[0]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere-to-be-found"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_refuses_bad_requests_and_keys_without_the_scope() {
    let h = Harness::start().await;
    for (body, want) in [
        (json!({}), 422),
        (json!({"source": 5}), 422),
        (json!({"source": "id: x", "extra": 1}), 422),
        (json!({"source": "#".repeat(256 * 1024 + 1)}), 422),
    ] {
        let (status, problem) = h.post("/v1/workflows/validate", body).await;
        assert_eq!(status, want, "{problem}");
        assert_eq!(problem["status"], want, "{problem}");
    }
    let r = h
        .http
        .post(h.url("/v1/workflows/validate"))
        .bearer_auth(&h.api_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // `admin` alone may validate; `workflows:read` may not; nobody unsigned.
    let admin = create_key(&h.config, "admin-only", &["admin"]);
    let reader = create_key(&h.config, "reader", &["workflows:read"]);
    let source = json!({"source": draft("studio-x", 1)});
    let (status, body) = validate_with(&h, &admin, source.clone()).await;
    assert_eq!((status, &body["valid"]), (200, &json!(true)), "{body}");
    let (status, body) = validate_with(&h, &reader, source.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["missing_scope"], "workflows:dry-run", "{body}");
    let r = h
        .http
        .post(h.url("/v1/workflows/validate"))
        .json(&source)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draft_runs_in_the_dry_run_instead_of_the_current_version() {
    let h = Harness::start().await;
    let events = json!([
        {"at": "wait_for_result", "sim": "score", "action": "complete", "body": {"score": 72}}
    ]);

    // A changed draft of a deployed workflow: its own reason and version.
    let changed = draft("score-fast", 7).replace(
        "reason: score ${state.score.body.score} is at least 50",
        "reason: the draft approved ${state.score.body.score}",
    );
    let (status, body) = h
        .post(
            "/v1/workflows/score-fast/dry-run",
            json!({"source": changed, "events": events}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 7, "{body}");
    assert_eq!(body["session"]["outcome"], "approved", "{body}");
    assert_eq!(body["session"]["reason"], "the draft approved 72", "{body}");

    // A workflow not deployed at all.
    let (status, body) = h
        .post(
            "/v1/workflows/studio-new/dry-run",
            json!({"source": draft("studio-new", 1), "events": events}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workflow"], "studio-new", "{body}");
    assert_eq!(
        body["session"]["reason"], "score 72 is at least 50",
        "{body}"
    );

    // A QR code the browser would show comes drawn, for the studio.
    let qr = draft("studio-qr", 1).replace(
        "      kind: iframe\n      url: https://provider.example/flow/${state.provider.body.id}",
        "      kind: qr\n      payload: https://provider.example/app/${state.provider.body.id}",
    );
    assert!(qr.contains("kind: qr"));
    let (status, body) = h
        .post(
            "/v1/workflows/studio-qr/dry-run",
            json!({"source": qr, "events": events}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let shown = body["trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "browser.presents")
        .unwrap_or_else(|| panic!("no presentation in {body}"));
    assert_eq!(shown["data"]["kind"], "qr", "{body}");
    assert!(
        shown["data"]["payload"]
            .as_str()
            .unwrap()
            .starts_with("https://provider.example/app/"),
        "{body}"
    );
    let svg = shown["data"]["svg"].as_str().unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg}");
    assert!(svg.contains("<path") || svg.contains("<rect"), "{svg}");

    // Nothing of any reached this server: no session, no deploy.
    let (_, list) = h.get("/v1/sessions").await;
    assert_eq!(list["data"], json!([]), "{list}");
    let (_, wfs) = h.get("/v1/workflows").await;
    let fast = wfs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == "score-fast")
        .unwrap();
    assert_eq!(fast["version"], 1, "{wfs}");
    assert!(
        !wfs["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == "studio-new"),
        "{wfs}"
    );

    // A draft with problems: 422 with each at its line; one of another id: 422.
    let broken = draft("score-fast", 7).replace("    next: decide\n", "    next: decid\n");
    let (status, body) = h
        .post(
            "/v1/workflows/score-fast/dry-run",
            json!({"source": broken}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (line, _) = position(&broken, "next: decid");
    assert_eq!(body["diagnostics"][0]["line"], line, "{body}");
    let (status, body) = h
        .post(
            "/v1/workflows/http-score/dry-run",
            json!({"source": draft("score-fast", 7)}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("score-fast"),
        "{body}"
    );
    let (status, body) = h
        .post("/v1/workflows/score-fast/dry-run", json!({"source": null}))
        .await;
    assert_eq!(status, 422, "{body}");
    // Without a source, an unknown workflow is still 404.
    let (status, _) = h.post("/v1/workflows/studio-new/dry-run", json!({})).await;
    assert_eq!(status, 404);
}
