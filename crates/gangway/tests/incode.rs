//! Incode identity verification end to end on the server: the real binary
//! against the Incode simulator over HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, create_key, eventually};
use serde_json::{Value, json};

async fn start(h: &Harness, workflow: &str, reference: &str) -> (String, Value) {
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": workflow, "reference": reference}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    (s["id"].as_str().unwrap().to_string(), s)
}

/// The interviewId once the session waits in the iframe step.
async fn interview(h: &Harness, id: &str) -> String {
    let s = h
        .wait_session(id, "the iframe step", |s| s["status"] == "waiting")
        .await;
    s["providers"][0]["provider_session_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn finish(h: &Harness, interview: &str, result: &str) {
    let (status, body) = h
        .incode_post(
            &format!("/control/{interview}/finish"),
            json!({"result": result}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn count(t: &Value, kind: &str) -> usize {
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .count()
}

fn accepted(t: &Value) -> Vec<(String, String)> {
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "event.accepted")
        .map(|e| {
            (
                e["data"]["event"].as_str().unwrap().to_string(),
                e["data"]["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn pass_fail_review_and_abandon() {
    let h = Harness::start().await;
    let mut cases = Vec::new();
    // A WARN score goes to a reviewer, who declines it here.
    for (result, outcome) in [
        ("pass", "approved"),
        ("fail", "declined"),
        ("review", "declined"),
    ] {
        let (id, created) = start(&h, "incode-identity", result).await;
        let iv = interview(&h, &id).await;
        // The browser gets the hosted URL, and nothing secret.
        let secret = created["client_secret"].as_str().unwrap();
        let view: Value = h
            .http
            .get(h.url(&format!("/v1/client/sessions/{id}")))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["step"]["present"]["kind"], "iframe");
        assert!(
            view["step"]["present"]["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/flow/{iv}"))
        );
        finish(&h, &iv, result).await;
        cases.push((id, outcome));
    }
    let (review_id, _) = &cases[2];
    let waiting = h
        .wait_session(review_id, "the review", |s| s["step"] == "manual_review")
        .await;
    assert_eq!(waiting["status"], "waiting", "{waiting}");
    assert_eq!(waiting["waiting_on"]["review"]["group"], "identity");
    let reviewer = create_key(&h.config, "reviewer", &["reviews:read", "reviews:decide"]);
    let call = |path: String, body: Option<Value>| {
        let req = match &body {
            Some(b) => h.http.post(h.url(&path)).json(b),
            None => h.http.get(h.url(&path)),
        };
        let req = req.bearer_auth(&reviewer);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, review) = call(format!("/v1/reviews/{review_id}"), None).await;
    assert_eq!(status, 200, "{review}");
    assert_eq!(review["facts"]["overall_status"], "WARN", "{review}");
    assert!(
        review["facts"]["checks"]["liveness"]["status"].is_string(),
        "{review}"
    );
    let (status, _) = call(format!("/v1/reviews/{review_id}/claim"), Some(json!({}))).await;
    assert_eq!(status, 200);
    let (status, decided) = call(
        format!("/v1/reviews/{review_id}/decide"),
        Some(json!({"decision": "declined", "note": "document photo is a screen capture"})),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    for (id, outcome) in &cases {
        let ended = h.wait_ended(id).await;
        assert_eq!(ended["outcome"], *outcome, "{ended}");
        // The verdict and the checks behind it, for the customer's backend.
        let out = &ended["output"];
        assert!(out["overall_status"].is_string(), "{ended}");
        assert!(out["checks"]["liveness"]["status"].is_string(), "{ended}");
        assert!(
            out["checks"]["id_validation"]["status"].is_string(),
            "{ended}"
        );
        assert!(out["interview_id"].is_string(), "{ended}");
        let t = h.timeline(id).await;
        assert_eq!(
            accepted(&t),
            vec![("incode.finished".to_string(), "incode".to_string())],
            "the webhook ended the wait"
        );
    }
    let ended = h.session(&cases[2].0).await;
    assert_eq!(
        ended["reason"],
        "identity check declined by a reviewer (Incode score WARN): document photo is a screen capture"
    );
    assert_eq!(ended["output"]["review"]["decision"], "declined", "{ended}");

    let (id, _) = start(&h, "incode-fast", "abandon").await;
    let iv = interview(&h, &id).await;
    finish(&h, &iv, "abandon").await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "expired");
    assert_eq!(
        ended["reason"],
        "the identity check was not finished within 3 seconds"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_duplicate_reordered_and_early_webhooks() {
    let h = Harness::start().await;
    // Dropped entirely: polling finds ONBOARDING_FINISHED.
    h.incode_post("/control/knobs", json!({"drop": true})).await;
    let (id, _) = start(&h, "incode-fast", "dropped").await;
    let iv = interview(&h, &id).await;
    finish(&h, &iv, "pass").await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "approved");
    assert_eq!(
        accepted(&h.timeline(&id).await),
        vec![("incode.finished".to_string(), "poll".to_string())]
    );

    // Duplicated and reordered: one transition each.
    h.incode_post(
        "/control/knobs",
        json!({"drop": false, "duplicate": 2, "reorder": true}),
    )
    .await;
    let (id, _) = start(&h, "incode-nopoll", "dup").await;
    let iv = interview(&h, &id).await;
    finish(&h, &iv, "fail").await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "declined");
    let t = h.timeline(&id).await;
    assert_eq!(count(&t, "event.accepted"), 1);
    let received = count(&t, "event.received");
    assert!(
        received <= 5,
        "each status is stored once, duplicates are dropped: {received}"
    );

    // Early: Incode's webhooks arrive before the start call returned.
    h.incode_post(
        "/control/knobs",
        json!({"duplicate": 0, "reorder": false, "early": true}),
    )
    .await;
    let (id, _) = start(&h, "incode-nopoll", "early").await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    let t = h.timeline(&id).await;
    assert_eq!(
        accepted(&t),
        vec![("incode.finished".to_string(), "incode".to_string())]
    );
    assert!(count(&t, "event.replayed") >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_refused() {
    let h = Harness::start().await;
    let (id, _) = start(&h, "incode-nopoll", "auth").await;
    let iv = interview(&h, &id).await;
    let before = h.session(&id).await;
    // Wrong bearer, no credentials, and the simulator's bad_auth knob.
    for auth in [
        Some("Bearer gwit_9999999999_00"),
        Some("Bearer nonsense"),
        None,
    ] {
        let mut req = h
            .http
            .post(h.url("/v1/webhooks/incode"))
            .json(&json!({"interviewId": iv, "onboardingStatus": "ONBOARDING_FINISHED"}));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }
    h.incode_post("/control/knobs", json!({"bad_auth": true}))
        .await;
    finish(&h, &iv, "pass").await;
    let after = h.session(&id).await;
    assert_eq!(after["status"], "waiting");
    assert_eq!(after["updated_at"], before["updated_at"]);
    assert_eq!(count(&h.timeline(&id).await, "event.received"), 0);

    // The token endpoint refuses wrong client credentials.
    let r = h
        .http
        .post(h.url("/v1/webhooks/incode/token"))
        .basic_auth("incode-tests", Some("wrong-secret-000000000"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = h
        .http
        .post(h.url("/v1/webhooks/incode/token"))
        .basic_auth("incode-tests", Some(common::INCODE_CLIENT_SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = h
        .http
        .post(h.url("/v1/webhooks/incode/token"))
        .basic_auth("incode-tests", Some(common::INCODE_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tok: Value = r.json().await.unwrap();
    assert!(tok["expires_in"].as_i64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn start_retries_and_token_renewal() {
    let h = Harness::start().await;
    h.incode_post("/control/faults", json!({"rules": [
        {"match": {"method": "POST", "path": "/omni/start"}, "times": 2, "fault": {"status": 503}},
        {"match": {"method": "POST", "path": "/omni/start"}, "times": 1, "fault": {"status": 429, "retry_after": 1}}
    ]}))
    .await;
    let (id, _) = start(&h, "incode-identity", "retry").await;
    let iv = interview(&h, &id).await;
    let starts: Vec<u64> = h
        .incode_requests()
        .await
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/omni/start")
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, vec![503, 503, 429, 200], "one Incode session only");

    // The session token expires: the connector renews it once and goes on.
    let (st, body) = h
        .incode_post(&format!("/control/{iv}/expire-token"), json!({}))
        .await;
    assert!(st < 300, "{body}");
    finish(&h, &iv, "pass").await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "approved");
    let renewals = h
        .incode_requests()
        .await
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/omni/start" && r["status"] == 200)
        .count();
    assert_eq!(renewals, 2, "the original start and exactly one renewal");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_incode_sessions_wait_and_no_secret_leaks() {
    let mut h = Harness::start().await;
    let mut sessions = Vec::new();
    for i in 0..8 {
        let (id, created) = start(&h, "incode-nopoll", &format!("k{i}")).await;
        sessions.push((id, created["client_secret"].as_str().unwrap().to_string()));
    }
    let mut interviews = Vec::new();
    for (id, _) in &sessions {
        interviews.push(interview(&h, id).await);
    }
    h.kill9_server();
    h.start_server();
    for (i, iv) in interviews.iter().enumerate() {
        finish(&h, iv, if i % 2 == 0 { "pass" } else { "fail" }).await;
    }
    let mut client_bodies = String::new();
    for (i, (id, secret)) in sessions.iter().enumerate() {
        let ended = h.wait_ended(id).await;
        assert_eq!(
            ended["outcome"],
            if i % 2 == 0 { "approved" } else { "declined" }
        );
        let t = h.timeline(id).await;
        assert_eq!(count(&t, "session.ended"), 1);
        let view = h
            .http
            .get(h.url(&format!("/v1/client/sessions/{id}")))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        client_bodies.push_str(&view);
        let events = h
            .http
            .get(h.url(&format!("/v1/client/sessions/{id}/events")))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        client_bodies.push_str(&events);
        let tl = t.to_string();
        assert!(
            !tl.contains(common::INCODE_API_KEY),
            "API key in the timeline"
        );
        assert!(
            !tl.contains("eyJ"),
            "a JWT-shaped session token in the timeline: {tl}"
        );
    }
    let starts = h
        .incode_requests()
        .await
        .iter()
        .filter(|r| r["path"] == "/omni/start" && r["status"] == 200)
        .count();
    assert_eq!(
        starts, 8,
        "one Incode session per Gangway session, none repeated by the restart"
    );
    // Nothing secret in any log line or any response to the browser.
    let log = h.server_log();
    for (what, text) in [("server log", &log), ("client responses", &client_bodies)] {
        assert!(
            !text.contains(common::INCODE_API_KEY),
            "Incode API key in the {what}"
        );
        assert!(!text.contains("eyJ"), "a session token in the {what}");
        assert!(!text.contains(&h.api_key), "customer API key in the {what}");
    }
    let _ = eventually("every session.ended delivered", 20, || async {
        sessions
            .iter()
            .all(|(id, _)| !h.receiver.for_session(id, "session.ended").is_empty())
            .then_some(())
    })
    .await;
}
