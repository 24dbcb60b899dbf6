//! Integration tests of the built-in "score" provider simulator and the shared
//! fault layer, over real HTTP.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use gangway_server::sim::score::{ScoreSim, ScoreSimConfig, score_for, signature};
use serde_json::{Value, json};

const API_KEY: &str = "sk_test_very_secret_api_key";
const SECRET: &str = "whsec_test_secret";

#[derive(Clone, Debug)]
struct Received {
    body: Vec<u8>,
    content_type: Option<String>,
    signature_valid: bool,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let ts = headers
        .get("x-score-timestamp")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let sig = headers
        .get("x-score-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let signature_valid = !ts.is_empty()
        && ts.parse::<i64>().is_ok()
        && sig == independent_signature(SECRET.as_bytes(), &ts, &body);
    inbox.lock().unwrap().push(Received {
        body: body.to_vec(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        signature_valid,
    });
    StatusCode::OK
}

/// HMAC computed in the test itself (not through the simulator's helper).
fn independent_signature(secret: &[u8], ts: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

struct Harness {
    /// `http://127.0.0.1:port/sim/score`
    base: String,
    inbox: Inbox,
    http: reqwest::Client,
    sim: ScoreSim,
}

impl Harness {
    async fn start() -> Harness {
        let inbox: Inbox = Arc::default();
        let receiver = Router::new()
            .route("/hook", post(receive))
            .with_state(inbox.clone());
        let receiver_base = serve(receiver).await;
        let sim = ScoreSim::new(ScoreSimConfig {
            api_key: API_KEY.into(),
            webhook_url: format!("{receiver_base}/hook"),
            webhook_secret: SECRET.into(),
        });
        let app = Router::new().nest("/sim/score", sim.router());
        let base = format!("{}/sim/score", serve(app).await);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Harness {
            base,
            inbox,
            http,
            sim,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn create_raw(&self, reference: &str) -> reqwest::Response {
        self.http
            .post(self.url("/v1/sessions"))
            .bearer_auth(API_KEY)
            .json(&json!({ "reference": reference }))
            .send()
            .await
            .unwrap()
    }

    async fn create(&self, reference: &str) -> String {
        let resp = self.create_raw(reference).await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["reference"], reference);
        body["id"].as_str().unwrap().to_owned()
    }

    async fn score(&self, id: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(&format!("/v1/sessions/{id}/score")))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, self.url(&format!("/control{path}")));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        assert!(
            resp.status().is_success(),
            "control {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap()
    }

    async fn complete(&self, id: &str, body: Value) -> Value {
        self.control(
            reqwest::Method::POST,
            &format!("/{id}/complete"),
            Some(body),
        )
        .await
    }

    async fn faults(&self, rules: Value) {
        self.control(
            reqwest::Method::POST,
            "/faults",
            Some(json!({ "rules": rules })),
        )
        .await;
    }

    async fn requests(&self) -> Vec<Value> {
        let v = self.control(reqwest::Method::GET, "/requests", None).await;
        v.as_array().unwrap().clone()
    }

    async fn sessions(&self) -> Vec<Value> {
        let v = self.control(reqwest::Method::GET, "/sessions", None).await;
        v.as_array().unwrap().clone()
    }

    fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }
}

/// Polls `cond` until it holds, failing after 5 s.
async fn wait_until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let outcome = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if cond().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(outcome.is_ok(), "timed out waiting for {what}");
}

fn expected_body(id: &str) -> Vec<u8> {
    format!("{{\"id\":\"{id}\",\"status\":\"completed\"}}").into_bytes()
}

#[tokio::test]
async fn create_score_complete_sends_signed_webhook() {
    let h = Harness::start().await;
    let id = h.create("ref-1").await;
    assert!(id.starts_with("sc_"));
    assert_eq!(id.len(), 3 + 16);
    assert!(
        id[3..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    let (status, body) = h.score(&id).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["status"], "pending");
    assert_eq!(body["score"], score_for(&id));

    let done = h.complete(&id, json!({})).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["webhooks_sent"], 1);
    assert_eq!(done["score"], score_for(&id));

    let got = h.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, expected_body(&id));
    assert_eq!(got[0].content_type.as_deref(), Some("application/json"));
    assert!(got[0].signature_valid, "webhook signature must verify");

    let (_, body) = h.score(&id).await;
    assert_eq!(body["status"], "completed");

    // The simulator's helper agrees with the independent computation.
    assert_eq!(
        signature(SECRET.as_bytes(), "123", b"{}"),
        independent_signature(SECRET.as_bytes(), "123", b"{}")
    );

    // Idempotent completion with a score override, and the full record.
    let again = h.complete(&id, json!({ "score": 7 })).await;
    assert_eq!(again["status"], "completed");
    assert_eq!(again["score"], 7);
    let record = h
        .control(reqwest::Method::GET, &format!("/sessions/{id}"), None)
        .await;
    assert_eq!(record["reference"], "ref-1");
    assert_eq!(record["score"], 7);
    assert_eq!(record["webhooks_sent"], 2);
    assert_eq!(record["webhooks_delivered"], 2);
    assert_eq!(h.sim.session(&id).unwrap().score, 7);
}

#[tokio::test]
async fn complete_with_empty_body_and_unknown_ids() {
    let h = Harness::start().await;
    let id = h.create("r").await;
    let resp = h
        .http
        .post(h.url(&format!("/control/{id}/complete")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(h.received().len(), 1);

    let resp = h
        .http
        .post(h.url("/control/sc_0000000000000000/complete"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (status, body) = h.score("sc_0000000000000000").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "session not found");

    let resp = h
        .http
        .post(h.url(&format!("/control/{id}/complete")))
        .json(&json!({ "score": 101 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn duplicate_two_sends_three() {
    let h = Harness::start().await;
    let id = h.create("r").await;
    let done = h.complete(&id, json!({ "duplicate": 2 })).await;
    assert_eq!(done["webhooks_sent"], 3);
    let got = h.received();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|r| r.signature_valid && r.body == expected_body(&id))
    );
}

#[tokio::test]
async fn never_send_sends_none() {
    let h = Harness::start().await;
    let id = h.create("r").await;
    let done = h.complete(&id, json!({ "never_send": true })).await;
    assert_eq!(done["webhooks_sent"], 0);
    assert_eq!(done["status"], "completed");
    // A later, normal completion is the only webhook ever received.
    let other = h.create("r2").await;
    h.complete(&other, json!({})).await;
    let got = h.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, expected_body(&other));
}

#[tokio::test]
async fn bad_auth_signs_with_wrong_key() {
    let h = Harness::start().await;
    let id = h.create("r").await;
    h.complete(&id, json!({ "bad_auth": true })).await;
    let got = h.received();
    assert_eq!(got.len(), 1);
    assert!(!got[0].signature_valid);
}

#[tokio::test]
async fn delayed_completion_answers_first() {
    let h = Harness::start().await;
    let id = h.create("r").await;
    let done = h.complete(&id, json!({ "delay_ms": 20 })).await;
    assert_eq!(done["webhooks_sent"], 0);
    assert_eq!(done["status"], "completed");
    wait_until("delayed webhook", async || h.received().len() == 1).await;
    assert!(h.received()[0].signature_valid);
}

#[tokio::test]
async fn early_knob_sends_webhook_before_create_answers() {
    let h = Harness::start().await;
    let knobs = h
        .control(
            reqwest::Method::POST,
            "/knobs",
            Some(json!({ "early": true })),
        )
        .await;
    assert_eq!(knobs["early"], true);
    let knobs = h.control(reqwest::Method::GET, "/knobs", None).await;
    assert_eq!(knobs["early"], true);

    let id = h.create("early").await;
    // By the time the create response has been read the webhook is already in.
    let got = h.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, expected_body(&id));
    assert!(got[0].signature_valid);
    let (_, body) = h.score(&id).await;
    assert_eq!(body["status"], "completed");
}

#[tokio::test]
async fn auto_complete_knob() {
    let h = Harness::start().await;
    h.control(
        reqwest::Method::POST,
        "/knobs",
        Some(json!({ "auto_complete_ms": 10 })),
    )
    .await;
    let id = h.create("auto").await;
    wait_until("auto completion webhook", async || h.received().len() == 1).await;
    assert_eq!(h.received()[0].body, expected_body(&id));
    let (_, body) = h.score(&id).await;
    assert_eq!(body["status"], "completed");

    let knobs = h
        .control(
            reqwest::Method::POST,
            "/knobs",
            Some(json!({ "auto_complete_ms": null })),
        )
        .await;
    assert_eq!(knobs["auto_complete_ms"], Value::Null);
}

#[tokio::test]
async fn status_503_twice_then_success() {
    let h = Harness::start().await;
    h.faults(json!([{
        "match": { "method": "POST", "path": "/v1/sessions" },
        "times": 2,
        "fault": { "status": 503 }
    }]))
    .await;
    for _ in 0..2 {
        let resp = h.create_raw("retry").await;
        assert_eq!(resp.status(), 503);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "service unavailable");
    }
    let id = h.create("retry").await;

    let log = h.requests().await;
    let posts: Vec<&Value> = log
        .iter()
        .filter(|e| e["method"] == "POST" && e["path"] == "/v1/sessions")
        .collect();
    assert_eq!(posts.len(), 3);
    let statuses: Vec<u64> = posts
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![503, 503, 201]);
    assert_eq!(posts[2]["ref"], id.as_str());
    assert!(posts[0]["ref"].is_null());
    assert!(
        time::OffsetDateTime::parse(
            posts[0]["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    assert_eq!(h.sessions().await.len(), 1);

    // Rules are used up; control calls are neither faulted nor logged.
    let rules = h.control(reqwest::Method::GET, "/faults", None).await;
    assert_eq!(rules["rules"].as_array().unwrap().len(), 0);
    assert!(
        log.iter()
            .all(|e| !e["path"].as_str().unwrap().contains("control"))
    );
}

#[tokio::test]
async fn status_429_carries_retry_after() {
    let h = Harness::start().await;
    h.faults(json!([{
        "match": { "method": "GET", "path": "/v1/sessions/*/score" },
        "fault": { "status": 429, "retry_after": 2 }
    }]))
    .await;
    let id = h.create("r").await;
    let resp = h
        .http
        .get(h.url(&format!("/v1/sessions/{id}/score")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    // times defaults to 1.
    let (status, _) = h.score(&id).await;
    assert_eq!(status, 200);
    let log = h.requests().await;
    let last_two: Vec<(u64, &str)> = log[log.len() - 2..]
        .iter()
        .map(|e| (e["status"].as_u64().unwrap(), e["ref"].as_str().unwrap()))
        .collect();
    assert_eq!(last_two, vec![(429, id.as_str()), (200, id.as_str())]);
}

#[tokio::test]
async fn ref_match_only_faults_that_session() {
    let h = Harness::start().await;
    let a = h.create("a").await;
    let b = h.create("b").await;
    h.faults(json!([{
        "match": { "path": "/v1/sessions/*/score", "ref": b },
        "fault": { "status": 500 }
    }]))
    .await;
    assert_eq!(h.score(&a).await.0, 200);
    assert_eq!(h.score(&b).await.0, 500);
    assert_eq!(h.score(&b).await.0, 200);
}

#[tokio::test]
async fn after_effect_creates_session_but_fails() {
    let h = Harness::start().await;
    h.faults(json!([{
        "match": { "method": "POST", "path": "/v1/sessions" },
        "fault": { "status": 503, "after_effect": true }
    }]))
    .await;
    let resp = h.create_raw("orphan").await;
    assert_eq!(resp.status(), 503);
    let sessions = h.sessions().await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["reference"], "orphan");
    let log = h.requests().await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], 503);
    assert_eq!(log[0]["ref"], sessions[0]["id"]);
}

#[tokio::test]
async fn malformed_returns_200_with_unparseable_body() {
    let h = Harness::start().await;
    h.faults(json!([
        { "match": { "method": "POST", "path": "/v1/sessions" }, "fault": { "malformed": true } },
        { "match": { "method": "POST", "path": "/v1/sessions" }, "fault": { "malformed": true }, "after_effect": true }
    ]))
    .await;
    let resp = h.create_raw("m").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert!(text.starts_with("{\"id\": \"sc_"));
    assert_eq!(h.sessions().await.len(), 0);

    // With after_effect the session exists and the real body is truncated.
    let resp = h.create_raw("m2").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(h.sessions().await.len(), 1);
}

#[tokio::test]
async fn delay_fault_answers_correctly() {
    let h = Harness::start().await;
    h.faults(json!([{
        "match": { "path": "/v1/sessions" },
        "fault": { "delay_ms": 50 }
    }]))
    .await;
    let started = std::time::Instant::now();
    let id = h.create("slow").await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(h.sessions().await.len(), 1);
    assert_eq!(h.score(&id).await.0, 200);
}

#[tokio::test]
async fn hang_and_drop() {
    let h = Harness::start().await;
    h.faults(json!([
        { "match": { "path": "/v1/sessions" }, "fault": { "hang": true } },
        { "match": { "path": "/v1/sessions" }, "fault": { "drop": true } }
    ]))
    .await;
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = short
        .post(h.url("/v1/sessions"))
        .bearer_auth(API_KEY)
        .json(&json!({ "reference": "h" }))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    let err = h
        .http
        .post(h.url("/v1/sessions"))
        .bearer_auth(API_KEY)
        .json(&json!({ "reference": "d" }))
        .send()
        .await
        .expect_err("drop must not produce a response");
    assert!(!err.is_timeout(), "{err:?}");

    let log = h.requests().await;
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|e| e["status"] == 0));
    assert_eq!(h.sessions().await.len(), 0);
    // The server still works afterwards.
    h.create("ok").await;
}

#[tokio::test]
async fn wrong_api_key_and_bad_json() {
    let h = Harness::start().await;
    let resp = h
        .http
        .post(h.url("/v1/sessions"))
        .bearer_auth("wrong")
        .json(&json!({ "reference": "r" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");

    let resp = h
        .http
        .post(h.url("/v1/sessions"))
        .json(&json!({ "reference": "r" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let id = h.create("r").await;
    let resp = h
        .http
        .get(h.url(&format!("/v1/sessions/{id}/score")))
        .bearer_auth(format!("{API_KEY}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    for bad in ["{not json", "{}", ""] {
        let resp = h
            .http
            .post(h.url("/v1/sessions"))
            .bearer_auth(API_KEY)
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad:?}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].is_string());
    }
}

#[tokio::test]
async fn request_log_never_contains_api_key() {
    let h = Harness::start().await;
    let id = h.create("r").await;
    h.score(&id).await;
    h.http
        .post(h.url("/v1/sessions"))
        .bearer_auth(format!("{API_KEY}-wrong"))
        .json(&json!({ "reference": API_KEY }))
        .send()
        .await
        .unwrap();
    let text = h
        .http
        .get(h.url("/control/requests"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(API_KEY));
    assert!(!text.to_ascii_lowercase().contains("authorization"));
    assert!(!text.contains("Bearer"));
    let log: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(log.len(), 3);
    for entry in &log {
        let keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["at", "method", "path", "status", "ref"]);
    }
}

#[tokio::test]
async fn reset_and_clear() {
    let h = Harness::start().await;
    h.create("r").await;
    h.control(
        reqwest::Method::POST,
        "/knobs",
        Some(json!({ "early": true })),
    )
    .await;
    h.faults(json!([{ "match": {}, "times": 5, "fault": { "status": 500 } }]))
        .await;
    let cleared = h.control(reqwest::Method::DELETE, "/faults", None).await;
    assert_eq!(cleared["cleared"], 1);
    h.faults(json!([{ "match": {}, "times": 5, "fault": { "status": 500 } }]))
        .await;

    h.control(reqwest::Method::POST, "/reset", None).await;
    assert!(h.sessions().await.is_empty());
    assert!(h.requests().await.is_empty());
    let knobs = h.control(reqwest::Method::GET, "/knobs", None).await;
    assert_eq!(knobs["early"], false);
    // No rule left, no early webhook.
    h.create("after").await;
    assert!(h.received().is_empty());

    // Invalid rules are refused.
    let resp = h
        .http
        .post(h.url("/control/faults"))
        .json(&json!({ "rules": [{ "fault": { "hange": true } }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
