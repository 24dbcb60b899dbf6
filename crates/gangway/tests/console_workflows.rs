//! The console's workflow routes over HTTP: `GET /v1/workflows/{id}/versions/{version}`
//! (source, graph, counts) and `GET /v1/workflows/counts`, with sessions of
//! `score-fast` (tests/workflows) that end, wait and are canceled; bad input
//! answers problem JSON; a key without `workflows:read` gets 403. Runs on
//! PostgreSQL with GANGWAY_TEST_BACKEND=postgres.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, create_key};
use serde_json::{Value, json};

fn edge<'a>(graph: &'a Value, from: &str, to: &str) -> Option<&'a Value> {
    graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == from && e["to"] == to)
}

#[tokio::test]
async fn a_version_has_its_source_graph_and_counts() {
    let h = Harness::start().await;
    // One approved, one declined, one canceled while it waits, one waiting.
    let mut ids = Vec::new();
    for reference in ["a", "b", "c", "d"] {
        let (status, s) = h
            .post(
                "/v1/sessions",
                json!({"workflow": "score-fast", "reference": reference}),
            )
            .await;
        assert_eq!(status, 201, "{s}");
        ids.push(s["id"].as_str().unwrap().to_string());
    }
    for (id, score) in [(&ids[0], 80), (&ids[1], 10)] {
        let pid = h.provider_id(id).await;
        h.complete(&pid, score).await;
        h.wait_ended(id).await;
    }
    let (status, s) = h
        .post(&format!("/v1/sessions/{}/cancel", ids[2]), json!({}))
        .await;
    assert_eq!(status, 200, "{s}");

    let (status, v) = h.get("/v1/workflows/score-fast/versions/1").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], "score-fast");
    assert_eq!(v["version"], 1);
    assert_eq!(v["latest"], true);
    assert_eq!(v["start"], "start_provider");
    let source = v["source"].as_str().unwrap();
    assert!(source.contains("id: score-fast"), "{source}");
    let graph = &v["graph"];
    let node = |id: &str| {
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no node {id}: {graph}"))
    };
    // A node's line is where the step is written in the source.
    let wait = node("wait_for_result");
    assert_eq!(wait["kind"], "wait");
    let line = usize::try_from(wait["line"].as_u64().unwrap()).unwrap();
    assert_eq!(
        source.lines().nth(line - 1).unwrap().trim(),
        "wait_for_result:"
    );
    assert_eq!(node("start_provider")["start"], true);
    assert_eq!(node("start_provider")["detail"], "http.request");
    assert_eq!(node("outcome:approved")["kind"], "outcome");
    assert_eq!(node("outcome:approved")["line"], Value::Null);
    assert_eq!(
        edge(graph, "wait_for_result", "fetch_score").unwrap()["label"],
        "score.completed"
    );
    assert_eq!(
        edge(graph, "wait_for_result", "too_late").unwrap()["label"],
        "timeout"
    );
    assert_eq!(
        edge(graph, "decide", "approve").unwrap()["label"],
        "state.score.body.score >= 50"
    );
    assert_eq!(
        edge(graph, "decide", "decline").unwrap()["label"],
        "default"
    );
    assert!(edge(graph, "approve", "outcome:approved").is_some());
    let implicit = edge(graph, "fetch_score", "outcome:failed").unwrap();
    assert_eq!(implicit["implicit"], true);
    assert_eq!(implicit["label"], "error");

    // The one still waiting (its deadline is 2 s away): counted as waiting
    // unless it expired meanwhile.
    let counts = &v["counts"];
    assert_eq!(counts["total"], 4, "{counts}");
    assert_eq!(counts["ended"]["approved"], 1, "{counts}");
    assert_eq!(counts["ended"]["declined"], 1, "{counts}");
    assert_eq!(counts["ended"]["canceled"], 1, "{counts}");
    let waiting = counts["waiting"].as_i64().unwrap()
        + counts["running"].as_i64().unwrap()
        + counts["ended"]["expired"].as_i64().unwrap();
    assert_eq!(waiting, 1, "{counts}");
    assert_eq!(counts["ended"]["review"], 0, "{counts}");

    // The same counts in the list of every version, and none for versions
    // without sessions.
    let (status, all) = h.get("/v1/workflows/counts").await;
    assert_eq!(status, 200, "{all}");
    let rows = all["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{all}");
    assert_eq!(rows[0]["workflow"], "score-fast");
    assert_eq!(rows[0]["version"], 1);
    assert_eq!(rows[0]["counts"]["total"], 4);
    let (status, one) = h.get("/v1/workflows/counts?workflow=http-score").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["data"], json!([]));
    // A shipped workflow with no sessions: zero counts, a graph all the same.
    let (status, v) = h.get("/v1/workflows/ockto-mortgage/versions/4").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["counts"]["total"], 0);
    assert!(v["graph"]["nodes"].as_array().unwrap().len() > 3);
}

#[tokio::test]
async fn bad_input_and_missing_scope_are_problems() {
    let h = Harness::start().await;
    for (path, status) in [
        ("/v1/workflows/score-fast/versions/0", 422),
        ("/v1/workflows/score-fast/versions/abc", 422),
        ("/v1/workflows/score-fast/versions/99999999999", 422),
        ("/v1/workflows/Not%20An%20Id/versions/1", 422),
        ("/v1/workflows/score-fast/versions/7", 404),
        ("/v1/workflows/nope/versions/1", 404),
        ("/v1/workflows/counts?workflow=NOPE!", 422),
        ("/v1/workflows/counts?surprise=1", 400),
    ] {
        let r = h
            .http
            .get(h.url(path))
            .bearer_auth(&h.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["status"], status, "{path}: {p}");
        assert!(p["detail"].is_string(), "{path}: {p}");
    }
    let key = create_key(&h.config, "no-workflows", &["sessions:read"]);
    for path in [
        "/v1/workflows/score-fast/versions/1",
        "/v1/workflows/counts",
    ] {
        let r = h
            .http
            .get(h.url(path))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
    }
    let r = h
        .http
        .get(h.url("/v1/workflows/counts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
