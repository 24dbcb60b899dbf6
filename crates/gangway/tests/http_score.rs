//! The engine's first end-to-end flow, through the real binary: http-score
//! against the score simulator, customer webhooks to a real receiver.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, eventually};
use serde_json::{Value, json};

fn kinds(timeline: &Value) -> Vec<String> {
    timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

fn accepted_sources(timeline: &Value) -> Vec<String> {
    timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "event.accepted")
        .map(|e| e["data"]["source"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_and_decline_notify_with_verified_signatures() {
    let h = Harness::start().await;
    let a = h.create_score_session("customer-a").await;
    let d = h.create_score_session("customer-d").await;
    assert!(a["client_secret"].as_str().unwrap().starts_with("gwcs_"));
    let (aid, did) = (a["id"].as_str().unwrap(), d["id"].as_str().unwrap());
    let pa = h.provider_id(aid).await;
    let pd = h.provider_id(did).await;
    let waiting = h
        .wait_session(aid, "waiting", |s| s["status"] == "waiting")
        .await;
    assert_eq!(waiting["waiting_on"]["events"], json!(["score.completed"]));
    assert!(waiting["waiting_on"]["deadline"].is_string());
    h.complete(&pa, 80).await;
    h.complete(&pd, 20).await;
    let a = h.wait_ended(aid).await;
    let d = h.wait_ended(did).await;
    assert_eq!(a["outcome"], "approved");
    assert_eq!(a["reason"], "score 80 is at least 50");
    assert_eq!(d["outcome"], "declined");
    assert_eq!(d["reason"], "score 20 is below 50");
    assert_eq!(
        a["providers"],
        json!([{"connector": "http", "provider_session_id": pa}])
    );
    for (id, outcome) in [(aid, "approved"), (did, "declined")] {
        let got = eventually("session.ended delivery", 20, || async {
            let v = h.receiver.for_session(id, "session.ended");
            (!v.is_empty()).then_some(v)
        })
        .await;
        assert!(
            got.iter().all(|r| r.verified),
            "signature must verify with the standardwebhooks crate"
        );
        assert_eq!(got[0].body["data"]["outcome"], outcome);
        // What decided travels with the ending.
        let out = &got[0].body["data"]["output"];
        assert_eq!(out["threshold"], 50, "{out}");
        assert!(out["score"].is_u64(), "{out}");
        assert!(out["provider_session"].is_string(), "{out}");
        assert!(got[0].webhook_id.starts_with("msg_"));
        assert_eq!(
            got[0].user_agent,
            format!("Gangway/{}", env!("CARGO_PKG_VERSION")),
            "deliveries name Gangway and its version"
        );
    }
    // session.updated was sent when the session started waiting.
    assert!(!h.receiver.for_session(aid, "session.updated").is_empty());
    // The timeline shows the provider calls, redacted, with timings.
    let t = h.timeline(aid).await;
    let k = kinds(&t);
    for expected in [
        "session.created",
        "step.entered",
        "provider.call",
        "wait.started",
        "event.received",
        "event.accepted",
        "rule.evaluated",
        "session.ended",
    ] {
        assert!(
            k.contains(&expected.to_string()),
            "timeline lacks {expected}: {k:?}"
        );
    }
    assert!(
        !t.to_string().contains(common::SIM_API_KEY),
        "the provider key must never reach the timeline"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_that_runs_out_expires_and_cancel_cancels() {
    let h = Harness::start().await;
    let s = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-fast", "reference": "r-exp"}),
        )
        .await
        .1;
    let id = s["id"].as_str().unwrap();
    let ended = h.wait_ended(id).await;
    assert_eq!(ended["outcome"], "expired");
    assert_eq!(ended["reason"], "no score within 2 seconds");

    let s = h.create_score_session("r-cancel").await;
    let id = s["id"].as_str().unwrap();
    h.wait_session(id, "waiting", |s| s["status"] == "waiting")
        .await;
    let (status, body) = h
        .post(
            &format!("/v1/sessions/{id}/cancel"),
            json!({"reason": "customer changed their mind"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "canceled");
    assert_eq!(body["reason"], "customer changed their mind");
    let (status, body) = h
        .post(&format!("/v1/sessions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["status"], 409);
    eventually("canceled webhook", 20, || async {
        (!h.receiver.for_session(id, "session.ended").is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_5xx_and_429_at_start_are_retried_with_one_provider_session() {
    let h = Harness::start().await;
    let (st, body) = h
        .sim_post("/control/faults", json!({"rules": [
            {"match": {"method": "POST", "path": "/v1/sessions"}, "times": 2, "fault": {"status": 503}},
            {"match": {"method": "POST", "path": "/v1/sessions"}, "times": 1, "fault": {"status": 429, "retry_after": 1}}
        ]}))
        .await;
    assert!(st < 300, "{body}");
    let s = h.create_score_session("r-retry").await;
    let id = s["id"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    h.complete(&pid, 70).await;
    assert_eq!(h.wait_ended(id).await["outcome"], "approved");
    let creates: Vec<Value> = h
        .sim_requests()
        .await
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/sessions")
        .collect();
    let statuses: Vec<u64> = creates
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![503, 503, 429, 201], "{creates:?}");
    let t = h.timeline(id).await;
    let call = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "provider.call")
        .unwrap();
    assert_eq!(call["data"]["attempts"].as_array().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_whose_answer_is_lost_is_retried_with_the_same_idempotency_key() {
    let h = Harness::start().await;
    // The provider creates the session, then the answer is lost (503 and a dropped connection).
    let (st, body) = h.sim_post("/control/faults", json!({"rules": [
        {"match": {"method": "POST", "path": "/v1/sessions"}, "times": 1, "fault": {"status": 503, "after_effect": true}},
        {"match": {"method": "POST", "path": "/v1/sessions"}, "times": 1, "fault": {"drop": true, "after_effect": true}}
    ]}))
    .await;
    assert_eq!(st, 200, "installing the faults: {body}");
    let s = h.create_score_session("r-lost-answer").await;
    let id = s["id"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    h.complete(&pid, 51).await;
    assert_eq!(h.wait_ended(id).await["outcome"], "approved");
    // Both faults fired: none is left armed, and the call took three attempts.
    let armed: Value = h
        .http
        .get(h.sim("/control/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(armed["rules"].as_array().map(Vec::len), Some(0), "{armed}");
    let t = h.timeline(id).await;
    let call = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "provider.call")
        .unwrap();
    assert_eq!(
        call["data"]["attempts"].as_array().unwrap().len(),
        3,
        "{call}"
    );
    let (_, sessions) = {
        let r = h.http.get(h.sim("/control/sessions")).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    let mine: Vec<&Value> = sessions
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["reference"] == "r-lost-answer")
        .collect();
    assert_eq!(
        mine.len(),
        1,
        "one provider session despite three attempts: {sessions}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_down_past_the_deadline_ends_failed_with_a_clear_reason() {
    let h = Harness::start().await;
    h.sim_post("/control/faults", json!({"rules": [
        {"match": {"method": "POST", "path": "/v1/sessions"}, "times": 10000, "fault": {"status": 503}}
    ]}))
    .await;
    let s = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-fast", "reference": "r-down"}),
        )
        .await
        .1;
    let ended = h.wait_ended(s["id"].as_str().unwrap()).await;
    assert_eq!(ended["outcome"], "failed");
    let reason = ended["reason"].as_str().unwrap();
    assert!(
        reason.contains("http.request failed")
            && reason.contains("503")
            && reason.contains("deadline"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_early_and_missing_webhooks() {
    let h = Harness::start().await;
    // The same webhook three times: one transition.
    let s = h.create_score_session("r-dup").await;
    let id = s["id"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    h.wait_session(id, "waiting", |s| s["status"] == "waiting")
        .await;
    let (st, body) = h
        .sim_post(
            &format!("/control/{pid}/complete"),
            json!({"score": 90, "duplicate": 2}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(h.wait_ended(id).await["outcome"], "approved");
    let t = h.timeline(id).await;
    assert_eq!(accepted_sources(&t), vec!["http:score"]);
    assert_eq!(
        kinds(&t).iter().filter(|k| *k == "event.received").count(),
        1,
        "duplicates are dropped before the session sees them"
    );

    // A webhook that arrives before the start call returned is kept.
    h.sim_post("/control/knobs", json!({"early": true})).await;
    let s = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-long", "reference": "r-early"}),
        )
        .await
        .1;
    let id = s["id"].as_str().unwrap();
    let ended = h.wait_ended(id).await;
    assert!(
        ended["outcome"] == "approved" || ended["outcome"] == "declined",
        "{ended}"
    );
    let t = h.timeline(id).await;
    assert_eq!(
        accepted_sources(&t),
        vec!["http:score"],
        "score-long does not poll: only the early webhook can end it"
    );
    assert!(kinds(&t).contains(&"event.replayed".to_string()));
    h.sim_post("/control/knobs", json!({"early": false})).await;

    // A webhook that is never sent: the server-side poll finds the result.
    let s = h.create_score_session("r-poll").await;
    let id = s["id"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    h.sim_post(
        &format!("/control/{pid}/complete"),
        json!({"score": 55, "never_send": true}),
    )
    .await;
    let ended = h.wait_ended(id).await;
    assert_eq!(ended["outcome"], "approved");
    assert_eq!(accepted_sources(&h.timeline(id).await), vec!["poll"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_webhook_signature_is_401_and_changes_nothing() {
    let h = Harness::start().await;
    let s = h.create_score_session("r-sig").await;
    let id = s["id"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    let before = h
        .wait_session(id, "waiting", |s| s["status"] == "waiting")
        .await;
    let body = json!({"id": pid, "status": "completed"}).to_string();
    let ts = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
    .to_string();
    for (sig, stamp) in [
        ("sha256=00", ts.as_str()),
        ("nonsense", ts.as_str()),
        ("", ts.as_str()),
    ] {
        let mut req = h
            .http
            .post(h.url("/v1/webhooks/http/score"))
            .header("content-type", "application/json")
            .header("X-Score-Timestamp", stamp);
        if !sig.is_empty() {
            req = req.header("X-Score-Signature", sig);
        }
        let r = req.body(body.clone()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    // The simulator signing with a wrong key is refused the same way.
    let (st, body) = h
        .sim_post(
            &format!("/control/{pid}/complete"),
            json!({"score": 99, "bad_auth": true}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["webhooks_sent"], 1, "{body}");
    let record: Value = h
        .http
        .get(h.sim(&format!("/control/sessions/{pid}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        record["webhooks_delivered"], 0,
        "refused by Gangway: {record}"
    );
    let after = h.session(id).await;
    assert_eq!(after["status"], "waiting");
    assert_eq!(after["updated_at"], before["updated_at"]);
    assert!(!kinds(&h.timeline(id).await).contains(&"event.received".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_sessions_wait_then_restart_completes_each_once() {
    let mut h = Harness::start().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let s = h
            .post(
                "/v1/sessions",
                json!({"workflow": "score-long", "reference": format!("k{i}")}),
            )
            .await
            .1;
        ids.push(s["id"].as_str().unwrap().to_string());
    }
    let mut pids = Vec::new();
    for id in &ids {
        h.wait_session(id, "waiting", |s| s["status"] == "waiting")
            .await;
        pids.push(h.provider_id(id).await);
    }
    h.kill9_server();
    // Half the sessions finish at the provider while the server is down: the
    // provider's webhook finds the port closed and is re-sent (as real
    // providers do) until the restarted server takes it.
    let down: Vec<usize> = (0..pids.len()).filter(|i| i % 4 < 2).collect();
    for &i in &down {
        let (st, body) = h
            .sim_post(
                &format!("/control/{}/complete", pids[i]),
                json!({"score": if i % 2 == 0 { 75 } else { 25 }, "retries": 100, "retry_every_ms": 100}),
            )
            .await;
        assert_eq!(st, 200, "{body}");
    }
    // The server stays down until every one of those webhooks has failed
    // at least once.
    for &i in &down {
        eventually("a webhook refused while down", 20, || async {
            let r: Value = h
                .http
                .get(h.sim(&format!("/control/sessions/{}", pids[i])))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (r["webhooks_sent"].as_u64() >= Some(1)).then_some(())
        })
        .await;
    }
    h.start_server();
    for (i, pid) in pids.iter().enumerate() {
        if !down.contains(&i) {
            h.complete(pid, if i % 2 == 0 { 75 } else { 25 }).await;
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let ended = h.wait_ended(id).await;
        assert_eq!(
            ended["outcome"],
            if i % 2 == 0 { "approved" } else { "declined" }
        );
    }
    let creates = h
        .sim_requests()
        .await
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/sessions" && r["status"] == 201)
        .count();
    assert_eq!(creates, 20, "exactly one provider session per session");
    // The webhooks sent while the server was down got through on a re-send.
    for &i in &down {
        let r: Value = h
            .http
            .get(h.sim(&format!("/control/sessions/{}", pids[i])))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["webhooks_delivered"], 1, "{r}");
        assert!(r["webhooks_sent"].as_u64() >= Some(2), "{r}");
    }
    for id in &ids {
        let got = eventually("ended webhook", 20, || async {
            let v = h.receiver.for_session(id, "session.ended");
            (!v.is_empty()).then_some(v)
        })
        .await;
        let first = &got[0].webhook_id;
        assert!(
            got.iter().all(|r| &r.webhook_id == first),
            "duplicates only as the same webhook-id"
        );
        let t = h.timeline(id).await;
        assert_eq!(
            kinds(&t).iter().filter(|k| *k == "session.ended").count(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn receiver_down_then_up_gets_the_same_webhook_id() {
    let h = Harness::start().await;
    h.receiver.set_down(true);
    let s = h.create_score_session("r-down-up").await;
    let id = s["id"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    h.complete(&pid, 60).await;
    h.wait_ended(id).await;
    eventually("two failed attempts", 20, || async {
        (h.receiver.for_session(id, "session.ended").len() >= 2).then_some(())
    })
    .await;
    h.receiver.set_down(false);
    let got = eventually("a successful delivery", 20, || async {
        let v = h.receiver.for_session(id, "session.ended");
        v.iter().any(|r| r.accepted).then_some(v)
    })
    .await;
    assert!(
        got.iter()
            .all(|r| r.webhook_id == got[0].webhook_id && r.verified)
    );
    let deliveries = eventually("delivered status", 20, || async {
        let (_, d) = h.get(&format!("/v1/sessions/{id}/deliveries")).await;
        let ended = d["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["event_type"] == "session.ended")
            .cloned()?;
        (ended["status"] == "delivered").then_some(ended)
    })
    .await;
    let log = deliveries["attempt_log"].as_array().unwrap();
    assert!(log.len() >= 3, "{deliveries}");
    assert_eq!(log.last().unwrap()["status_code"], 204);
    assert_eq!(log[0]["status_code"], 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_signal_and_client_secret_scope() {
    let h = Harness::start().await;
    let a = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-fast", "reference": "sig-a"}),
        )
        .await
        .1;
    let b = h.create_score_session("sig-b").await;
    let (aid, bid) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    h.wait_session(aid, "waiting", |s| s["status"] == "waiting")
        .await;
    let secret = a["client_secret"].as_str().unwrap();
    let r = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{aid}")))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["step"]["present"]["kind"], "iframe");
    assert!(
        view.get("input").is_none() && view.get("providers").is_none(),
        "the browser sees only what it presents: {view}"
    );
    // Another session's secret is refused.
    let r = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{bid}")))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = h
        .http
        .post(h.url(&format!("/v1/client/sessions/{aid}/signal")))
        .bearer_auth(secret)
        .json(&json!({"name": "abandoned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ended = h.wait_ended(aid).await;
    assert_eq!(ended["outcome"], "canceled");
    assert_eq!(ended["reason"], "the user abandoned the flow");
}

/// `engine.poll_rate` paces the polling fallback: twelve sessions that would
/// each poll every 100 ms (120 status calls a second) share 4 a second, all
/// of them still get their turn, and neither a webhook nor a poll that finds
/// the result waits behind the backlog for longer than its turn.
#[tokio::test(flavor = "multi_thread")]
async fn polls_are_paced_by_the_poll_rate() {
    const RATE: f64 = 4.0;
    let started = std::time::Instant::now();
    let h = Harness::start_with(common::Options {
        poll_rate: Some(RATE as u32),
        ..Default::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let (status, body) = h
            .post(
                "/v1/sessions",
                json!({"workflow": "score-paced", "reference": format!("r-paced-{i}")}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let status_calls = || async {
        h.sim_requests()
            .await
            .into_iter()
            .filter(|r| r["method"] == "GET" && r["path"].as_str().unwrap().ends_with("/score"))
            .count()
    };
    // Every session is polled in its turn.
    for id in &ids {
        eventually("a poll of every session", 30, || async {
            kinds(&h.timeline(id).await)
                .contains(&"provider.poll".to_string())
                .then_some(())
        })
        .await;
    }
    // Never more than the rate allows since the server started, plus the
    // one second of burst it starts with (an upper bound: a slow machine
    // only makes fewer calls).
    let calls = status_calls().await as f64;
    let allowed = RATE * started.elapsed().as_secs_f64() + RATE;
    assert!(calls >= 12.0, "{calls} status calls");
    assert!(
        calls <= allowed,
        "{calls} status calls, at most {allowed} allowed"
    );

    // A webhook is not held back by the poll budget.
    let pid = h.provider_id(&ids[0]).await;
    h.complete(&pid, 80).await;
    assert_eq!(h.wait_ended(&ids[0]).await["outcome"], "approved");
    // A lost webhook is still found by a poll, in its turn.
    let pid = h.provider_id(&ids[1]).await;
    h.sim_post(
        &format!("/control/{pid}/complete"),
        json!({"score": 20, "never_send": true}),
    )
    .await;
    let ended = h.wait_ended(&ids[1]).await;
    assert_eq!(ended["outcome"], "declined");
    assert_eq!(accepted_sources(&h.timeline(&ids[1]).await), vec!["poll"]);
}

/// Issue 18 finding 10: a correctly signed webhook whose timestamp is as far
/// in the past as an i64 allows is outside the tolerance window (problem
/// JSON), not an overflow that answers "signature does not match" or drops
/// the connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_timestamp_2_pow_63_seconds_old_is_outside_the_tolerance_window() {
    let h = Harness::start().await;
    let s = h.create_score_session("r-ts").await;
    let id = s["id"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    h.wait_session(id, "waiting", |s| s["status"] == "waiting")
        .await;
    let body = json!({"id": pid, "status": "completed"}).to_string();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    for ts in [now + i64::MIN, i64::MIN, i64::MAX, now - 301] {
        let ts = ts.to_string();
        let sig = gangway_server::sim::score::signature(
            common::SIM_WEBHOOK_SECRET.as_bytes(),
            &ts,
            body.as_bytes(),
        );
        let r = h
            .http
            .post(h.url("/v1/webhooks/http/score"))
            .header("content-type", "application/json")
            .header("X-Score-Timestamp", &ts)
            .header("X-Score-Signature", sig)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{ts}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(
            problem["detail"], "timestamp outside the tolerance window",
            "{ts}: {problem}"
        );
    }
    assert_eq!(h.session(id).await["status"], "waiting");
}

/// Issue 18 finding 12: the signed `completed` webhook runs ahead of the
/// provider's read, which says `pending` twice more. The shipped http-score
/// reads again with backoff instead of ending `failed`, and decides on the
/// score once the read agrees.
#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_ahead_of_the_read_is_read_again_until_it_agrees() {
    let h = Harness::start().await;
    let s = h.create_score_session("r-lag").await;
    let id = s["id"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    h.wait_session(id, "waiting", |s| s["status"] == "waiting")
        .await;
    let (st, body) = h
        .sim_post(
            &format!("/control/{pid}/complete"),
            json!({"score": 80, "stale_reads": 2}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let ended = h.wait_ended(id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    assert_eq!(ended["reason"], "score 80 is at least 50");
    let t = h.timeline(id).await;
    let entries = t["entries"].as_array().unwrap();
    let retries: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "call.retrying")
        .collect();
    assert_eq!(retries.len(), 2, "{t:#}");
    assert!(retries.iter().all(|e| e["step"] == "fetch_score"));
    assert_eq!(
        accepted_sources(&t),
        vec!["http:score"],
        "the webhook, not a poll, moved the session on"
    );
    // Three reads of the score at fetch_score: pending, pending, completed.
    let calls: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "provider.call" && e["step"] == "fetch_score")
        .collect();
    let statuses: Vec<&Value> = calls
        .iter()
        .map(|c| &c["data"]["attempts"][0]["response"]["status"])
        .collect();
    assert_eq!(statuses, vec!["pending", "pending", "completed"], "{t:#}");
}
