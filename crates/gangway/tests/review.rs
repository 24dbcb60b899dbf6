//! Manual review over HTTP: a session of `score-review` (tests/workflows)
//! reaches its `review` step once the score simulator answers, waits in the
//! review queue with its facts, and a reviewer (an API key with the review
//! scopes) claims and decides it; the workflow goes on from the decision.
//! Refused claims and decisions (409/422) change nothing; the deadline ends
//! the session `review`; a restart loses nothing; keys without the scopes
//! get 403. Runs on PostgreSQL with GANGWAY_TEST_BACKEND=postgres.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, create_key, eventually};
use serde_json::{Value, json};

/// A reviewer: the key's id (what the queue and the timeline record) and secret.
struct Reviewer {
    id: String,
    key: String,
}

/// Keys made through the admin API, which answers with the id.
async fn reviewer(h: &Harness, admin: &str, name: &str, scopes: &[&str]) -> Reviewer {
    let (status, body) = send(
        h,
        "POST",
        "/v1/admin/keys",
        admin,
        Some(json!({"name": name, "scopes": scopes})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    Reviewer {
        id: body["id"].as_str().unwrap().to_string(),
        key: body["key"].as_str().unwrap().to_string(),
    }
}

async fn send(
    h: &Harness,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = match method {
        "GET" => h.http.get(h.url(path)),
        _ => h.http.post(h.url(path)),
    };
    req = req.bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A `workflow` session whose score came back as `score`, waiting for a reviewer.
async fn in_review(h: &Harness, workflow: &str, reference: &str, score: u64) -> String {
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": workflow, "reference": reference}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    let pid = h.provider_id(&id).await;
    h.complete(&pid, score).await;
    let s = h
        .wait_session(&id, "the review step", |s| {
            s["step"] == "manual_review" && s["status"] == "waiting"
        })
        .await;
    assert!(s["waiting_on"]["review"].is_object(), "{s}");
    assert_eq!(s["waiting_on"]["events"], json!([]), "{s}");
    assert!(s["waiting_on"]["deadline"].is_string(), "{s}");
    id
}

struct Keys {
    admin: String,
    a: Reviewer,
    b: Reviewer,
}

async fn keys(h: &Harness) -> Keys {
    let admin = create_key(&h.config, "admin", &["admin"]);
    let both = ["reviews:read", "reviews:decide"];
    let a = reviewer(h, &admin, "reviewer a", &both).await;
    let b = reviewer(h, &admin, "reviewer b", &both).await;
    Keys { admin, a, b }
}

async fn claim(h: &Harness, who: &Reviewer, id: &str, body: Option<Value>) -> (u16, Value) {
    send(
        h,
        "POST",
        &format!("/v1/reviews/{id}/claim"),
        &who.key,
        body,
    )
    .await
}

async fn decide(h: &Harness, who: &Reviewer, id: &str, body: Value) -> (u16, Value) {
    send(
        h,
        "POST",
        &format!("/v1/reviews/{id}/decide"),
        &who.key,
        Some(body),
    )
    .await
}

/// What a refused request must leave as it was: the session, its timeline
/// and its review.
async fn snapshot(h: &Harness, who: &Reviewer, id: &str) -> (Value, usize, (u16, Value)) {
    let s = h.session(id).await;
    let entries = h.timeline(id).await["entries"].as_array().unwrap().len();
    let review = send(h, "GET", &format!("/v1/reviews/{id}"), &who.key, None).await;
    (s, entries, review)
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_with_facts_timeline_and_webhooks() {
    let h = Harness::start().await;
    let k = keys(&h).await;
    let id = in_review(&h, "score-review", "approve-me", 42).await;
    assert_eq!(
        h.session(&id).await["waiting_on"]["review"],
        json!({"group": "kyc"})
    );

    // Listed with its facts, oldest first, filtered by group and workflow.
    let (status, page) = send(&h, "GET", "/v1/reviews?group=kyc", &k.a.key, None).await;
    assert_eq!(status, 200, "{page}");
    let item = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["session_id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["workflow"], "score-review");
    assert_eq!(item["reference"], "approve-me");
    assert_eq!(item["step"], "manual_review");
    assert_eq!(item["group"], "kyc");
    assert_eq!(item["facts"]["score"], 42, "{item}");
    assert_eq!(
        item["facts"]["rules_fired"],
        json!(["score needs a person"])
    );
    assert!(item["facts"]["provider_session"].is_string(), "{item}");
    // A fact under a secret-looking key is redacted, as in the timeline.
    assert_eq!(item["facts"]["session_token"], "[redacted]", "{item}");
    assert_eq!(item["claim"], Value::Null);
    for filter in ["group=other", "workflow=http-score"] {
        let (_, page) = send(&h, "GET", &format!("/v1/reviews?{filter}"), &k.a.key, None).await;
        assert_eq!(page["data"], json!([]), "{filter}: {page}");
    }

    // Claimed by a, decided by a.
    let (status, claimed) = claim(&h, &k.a, &id, None).await;
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(
        claimed["claim"]["by"],
        json!({"kind": "api_key", "id": k.a.id})
    );
    assert!(claimed["claim"]["expires_at"].is_string(), "{claimed}");
    let (status, ended) = decide(
        &h,
        &k.a,
        &id,
        json!({"decision": "approved", "note": "document checked by hand"}),
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["status"], "ended", "{ended}");
    assert_eq!(ended["outcome"], "approved", "{ended}");
    assert_eq!(
        ended["reason"],
        "approved by a reviewer (document checked by hand)"
    );
    assert_eq!(ended["waiting_on"], Value::Null);

    // The timeline says who, when and why, before the end.
    let timeline = h.timeline(&id).await;
    let entries = timeline["entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    let opened = kinds.iter().position(|k| *k == "review.opened").unwrap();
    let decided = kinds.iter().position(|k| *k == "review.decided").unwrap();
    let end = kinds.iter().position(|k| *k == "session.ended").unwrap();
    assert!(opened < decided && decided < end, "{kinds:?}");
    let d = &entries[decided];
    assert_eq!(d["step"], "manual_review");
    assert!(d["at"].is_string());
    assert_eq!(d["data"]["decision"], "approved");
    assert_eq!(d["data"]["note"], "document checked by hand");
    assert_eq!(d["data"]["by"], json!({"kind": "api_key", "id": k.a.id}));

    // The audit log names who decided what (not the note).
    let (status, audit) = send(
        &h,
        "GET",
        &format!("/v1/admin/audit?action=review.decided&session_id={id}"),
        &k.admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let entries = audit["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["actor"], format!("api_key:{}", k.a.id));
    assert_eq!(entries[0]["data"], json!({"decision": "approved"}));
    // And who claimed it, until when (the claim was taken once).
    let (status, audit) = send(
        &h,
        "GET",
        &format!("/v1/admin/audit?action=review.claimed&session_id={id}"),
        &k.admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let entries = audit["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["actor"], format!("api_key:{}", k.a.id));
    assert_eq!(
        entries[0]["data"]["expires_at"], claimed["claim"]["expires_at"],
        "{audit}"
    );

    // Out of the queue.
    let (status, gone) = send(&h, "GET", &format!("/v1/reviews/{id}"), &k.a.key, None).await;
    assert_eq!(
        (status, gone["reason"].as_str()),
        (404, Some("already_decided")),
        "{gone}"
    );

    // The customer's backend hears of the decision, then of the end, signed.
    let (updated, ended_hooks) = eventually("the decision's webhooks", 20, || async {
        let updated = h.receiver.for_session(&id, "session.updated");
        let ended = h.receiver.for_session(&id, "session.ended");
        let decided = updated
            .iter()
            .any(|r| r.body["data"]["outcome"] == "approved");
        (decided && !ended.is_empty()).then_some((updated, ended))
    })
    .await;
    assert!(updated.iter().chain(&ended_hooks).all(|r| r.verified));
    assert_eq!(ended_hooks.len(), 1);
    assert_eq!(ended_hooks[0].body["data"]["outcome"], "approved");
    // The decision's update and the end: two deliveries of the one
    // transition (each its own job, so they may arrive in either order, as
    // docs/api.md says of every delivery).
    let (_, deliveries) = h.get(&format!("/v1/sessions/{id}/deliveries")).await;
    let types: Vec<&str> = deliveries["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "session.ended").count(),
        1,
        "{types:?}"
    );
    assert!(types.contains(&"session.updated"), "{types:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn declined_goes_to_the_declined_step() {
    let h = Harness::start().await;
    let k = keys(&h).await;
    let id = in_review(&h, "score-review", "decline-me", 12).await;
    assert_eq!(
        claim(&h, &k.b, &id, Some(json!({"ttl_s": 60}))).await.0,
        200
    );
    let (status, ended) = decide(
        &h,
        &k.b,
        &id,
        json!({"decision": "declined", "note": "selfie does not match"}),
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["outcome"], "declined", "{ended}");
    assert_eq!(
        ended["reason"],
        "declined by a reviewer (selfie does not match)"
    );
    let ended_hook = eventually("session.ended", 20, || async {
        h.receiver.for_session(&id, "session.ended").pop()
    })
    .await;
    assert_eq!(ended_hook.body["data"]["outcome"], "declined");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_reviewers_claim_at_once_exactly_one_wins() {
    let h = Harness::start().await;
    let k = keys(&h).await;
    for round in 0..5 {
        let id = in_review(&h, "score-review", &format!("race-{round}"), 30).await;
        let (a, b) = tokio::join!(claim(&h, &k.a, &id, None), claim(&h, &k.b, &id, None));
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
        let (winner, loser, lost) = if a.0 == 200 {
            (&k.a, &k.b, b.1)
        } else {
            (&k.b, &k.a, a.1)
        };
        assert_eq!(lost["reason"], "claimed_by_another", "{lost}");
        assert!(lost["claimed_until"].is_string(), "{lost}");
        // The loser cannot decide; the winner can.
        let (status, p) = decide(
            &h,
            loser,
            &id,
            json!({"decision": "approved", "note": "mine"}),
        )
        .await;
        assert_eq!(
            (status, p["reason"].as_str()),
            (409, Some("claimed_by_another")),
            "{p}"
        );
        let (status, s) = decide(
            &h,
            winner,
            &id,
            json!({"decision": "approved", "note": "ok"}),
        )
        .await;
        assert_eq!(status, 200, "{s}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_decisions_change_nothing() {
    let h = Harness::start().await;
    let k = keys(&h).await;
    let id = in_review(&h, "score-review", "refusals", 55).await;
    let before = snapshot(&h, &k.a, &id).await;
    let ok = json!({"decision": "approved", "note": "fine"});

    // Without a claim.
    let (status, p) = decide(&h, &k.a, &id, ok.clone()).await;
    assert_eq!(
        (status, p["reason"].as_str()),
        (409, Some("not_claimed")),
        "{p}"
    );
    assert_eq!(snapshot(&h, &k.a, &id).await, before);

    // Someone else's claim.
    assert_eq!(claim(&h, &k.a, &id, Some(json!({"ttl_s": 1}))).await.0, 200);
    let held = snapshot(&h, &k.a, &id).await;
    let (status, p) = decide(&h, &k.b, &id, ok.clone()).await;
    assert_eq!(
        (status, p["reason"].as_str()),
        (409, Some("claimed_by_another")),
        "{p}"
    );
    assert_eq!(p["type"], "https://gangway.dev/problems/conflict");

    // Bad bodies: 422, checked before anything else.
    for body in [
        json!({"decision": "approved"}),
        json!({"decision": "approved", "note": "   "}),
        json!({"decision": "maybe", "note": "hmm"}),
        json!({"decision": "approved", "note": "bell\u{7}"}),
        json!({"decision": "approved", "note": "x".repeat(2001)}),
        json!({"decision": "approved", "note": "fine", "extra": 1}),
    ] {
        let (status, p) = decide(&h, &k.a, &id, body.clone()).await;
        assert_eq!(status, 422, "{body}: {p}");
        assert_eq!(p["status"], 422, "{p}");
    }
    assert_eq!(snapshot(&h, &k.a, &id).await, held);

    // An expired claim: a's lapses (a GET shows no claim), then a cannot decide.
    eventually("the claim to lapse", 10, || async {
        let (_, r) = send(&h, "GET", &format!("/v1/reviews/{id}"), &k.a.key, None).await;
        r["claim"].is_null().then_some(())
    })
    .await;
    let lapsed = snapshot(&h, &k.a, &id).await;
    let (status, p) = decide(&h, &k.a, &id, ok.clone()).await;
    assert_eq!(
        (status, p["reason"].as_str()),
        (409, Some("claim_expired")),
        "{p}"
    );
    assert_eq!(snapshot(&h, &k.a, &id).await, lapsed);
    // A lapsed claim is anyone's: b takes it over.
    assert_eq!(claim(&h, &k.b, &id, None).await.0, 200);

    // Decided once; the second decision is refused.
    let (status, s) = decide(&h, &k.b, &id, ok.clone()).await;
    assert_eq!(status, 200, "{s}");
    let decided = (h.session(&id).await, h.timeline(&id).await);
    let (status, p) = decide(
        &h,
        &k.b,
        &id,
        json!({"decision": "declined", "note": "again"}),
    )
    .await;
    assert_eq!(
        (status, p["reason"].as_str()),
        (409, Some("already_decided")),
        "{p}"
    );
    let (status, p) = claim(&h, &k.b, &id, None).await;
    assert_eq!(
        (status, p["reason"].as_str()),
        (409, Some("already_decided")),
        "{p}"
    );
    assert_eq!((h.session(&id).await, h.timeline(&id).await), decided);

    // A session that is not in review, and one that does not exist.
    let waiting = h.create_score_session("not-in-review").await;
    let wid = waiting["id"].as_str().unwrap();
    h.provider_id(wid).await;
    let before = h.session(wid).await;
    let (status, p) = claim(&h, &k.a, wid, None).await;
    assert_eq!(
        (status, p["reason"].as_str()),
        (409, Some("not_in_review")),
        "{p}"
    );
    let (status, p) = decide(&h, &k.a, wid, ok.clone()).await;
    assert_eq!(
        (status, p["reason"].as_str()),
        (409, Some("not_in_review")),
        "{p}"
    );
    assert_eq!(h.session(wid).await, before);
    for (status, p) in [
        claim(&h, &k.a, "ses_nosuch", None).await,
        decide(&h, &k.a, "ses_nosuch", ok.clone()).await,
        send(&h, "GET", "/v1/reviews/ses_nosuch", &k.a.key, None).await,
    ] {
        assert_eq!(status, 404, "{p}");
    }
    // Bad claim bodies and list parameters.
    for body in [
        json!({"ttl_s": 0}),
        json!({"ttl_s": 3601}),
        json!({"ttl": 5}),
    ] {
        assert_eq!(
            claim(&h, &k.a, wid, Some(body.clone())).await.0,
            422,
            "{body}"
        );
    }
    for query in [
        "limit=0",
        "limit=201",
        "min_age_s=-1",
        "cursor=nodot",
        "cursor=x.ses_1",
    ] {
        let (status, p) = send(&h, "GET", &format!("/v1/reviews?{query}"), &k.a.key, None).await;
        assert_eq!(status, 422, "{query}: {p}");
    }
    let _ = k.admin;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_ends_the_session_review() {
    let h = Harness::start().await;
    let k = keys(&h).await;
    let id = in_review(&h, "score-review-short", "nobody-decides", 77).await;
    assert_eq!(
        h.session(&id).await["waiting_on"]["review"],
        json!({"group": null})
    );
    assert_eq!(claim(&h, &k.a, &id, None).await.0, 200);
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "review", "{ended}");
    assert_eq!(ended["reason"], "no reviewer decided in time");
    let kinds: Vec<String> = h.timeline(&id).await["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"wait.timed_out".to_string()), "{kinds:?}");
    assert!(!kinds.contains(&"review.decided".to_string()), "{kinds:?}");
    // Out of the queue; a late decision is refused.
    let (_, page) = send(
        &h,
        "GET",
        "/v1/reviews?workflow=score-review-short",
        &k.a.key,
        None,
    )
    .await;
    assert_eq!(page["data"], json!([]), "{page}");
    let (status, p) = decide(
        &h,
        &k.a,
        &id,
        json!({"decision": "approved", "note": "late"}),
    )
    .await;
    assert_eq!(
        (status, p["reason"].as_str()),
        (409, Some("not_in_review")),
        "{p}"
    );
    assert_eq!(h.session(&id).await["outcome"], "review");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_in_review_loses_nothing() {
    let mut h = Harness::start().await;
    let k = keys(&h).await;
    let id = in_review(&h, "score-review", "restart", 64).await;
    let (_, claimed) = claim(&h, &k.a, &id, None).await;
    let (_, before) = send(&h, "GET", &format!("/v1/reviews/{id}"), &k.a.key, None).await;
    h.kill9_server();
    h.start_server();
    let (status, after) = send(&h, "GET", &format!("/v1/reviews/{id}"), &k.a.key, None).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after, before);
    assert_eq!(after["claim"], claimed["claim"]);
    let s = h.session(&id).await;
    assert_eq!(
        (s["status"].as_str(), s["step"].as_str()),
        (Some("waiting"), Some("manual_review"))
    );
    let (status, ended) = decide(
        &h,
        &k.a,
        &id,
        json!({"decision": "approved", "note": "after the restart"}),
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["outcome"], "approved");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_pages_oldest_first() {
    let h = Harness::start().await;
    let k = keys(&h).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(in_review(&h, "score-review", &format!("page-{n}"), 40 + n).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let query = match &cursor {
            Some(c) => format!("/v1/reviews?workflow=score-review&limit=1&cursor={c}"),
            None => "/v1/reviews?workflow=score-review&limit=1".to_string(),
        };
        let (status, page) = send(&h, "GET", &query, &k.a.key, None).await;
        assert_eq!(status, 200, "{page}");
        for r in page["data"].as_array().unwrap() {
            seen.push(r["session_id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "oldest first, each once");
    // Waiting a day at least: none yet.
    let (_, page) = send(&h, "GET", "/v1/reviews?min_age_s=86400", &k.a.key, None).await;
    assert_eq!(page["data"], json!([]), "{page}");
    let (_, page) = send(
        &h,
        "GET",
        "/v1/reviews?min_age_s=0&limit=200",
        &k.a.key,
        None,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3, "{page}");
    // A session canceled while in review leaves the queue.
    let (status, s) = h
        .post(&format!("/v1/sessions/{}/cancel", ids[1]), json!({}))
        .await;
    assert_eq!(
        (status, s["outcome"].as_str()),
        (200, Some("canceled")),
        "{s}"
    );
    let (_, page) = send(
        &h,
        "GET",
        "/v1/reviews?workflow=score-review",
        &k.a.key,
        None,
    )
    .await;
    let left: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(left, [ids[0].as_str(), ids[2].as_str()]);
    let (status, p) = claim(&h, &k.a, &ids[1], None).await;
    assert_eq!(
        (status, p["reason"].as_str()),
        (409, Some("not_in_review")),
        "{p}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_without_the_review_scopes_get_403() {
    let h = Harness::start().await;
    let k = keys(&h).await;
    let id = in_review(&h, "score-review", "scopes", 50).await;
    let read_only = reviewer(&h, &k.admin, "read only", &["reviews:read"]).await;
    let ok = json!({"decision": "approved", "note": "fine"});
    // The harness's key holds the default scopes: none of the review ones.
    let default_key = h.api_key.clone();
    for (key, method, path, body, scope) in [
        (
            &default_key,
            "GET",
            "/v1/reviews".to_string(),
            None,
            "reviews:read",
        ),
        (
            &default_key,
            "GET",
            format!("/v1/reviews/{id}"),
            None,
            "reviews:read",
        ),
        (
            &default_key,
            "POST",
            format!("/v1/reviews/{id}/claim"),
            None,
            "reviews:decide",
        ),
        (
            &default_key,
            "POST",
            format!("/v1/reviews/{id}/decide"),
            Some(ok.clone()),
            "reviews:decide",
        ),
        (
            &read_only.key,
            "POST",
            format!("/v1/reviews/{id}/claim"),
            None,
            "reviews:decide",
        ),
        (
            &read_only.key,
            "POST",
            format!("/v1/reviews/{id}/decide"),
            Some(ok.clone()),
            "reviews:decide",
        ),
    ] {
        let (status, p) = send(&h, method, &path, key, body).await;
        assert_eq!(
            (status, p["missing_scope"].as_str()),
            (403, Some(scope)),
            "{method} {path}: {p}"
        );
    }
    assert_eq!(
        send(&h, "GET", "/v1/reviews", &read_only.key, None).await.0,
        200
    );
    // `admin` implies the review scopes.
    assert_eq!(send(&h, "GET", "/v1/reviews", &k.admin, None).await.0, 200);
    let admin = Reviewer {
        id: String::new(),
        key: k.admin.clone(),
    };
    assert_eq!(claim(&h, &admin, &id, None).await.0, 200);
    let (status, s) = decide(&h, &admin, &id, ok).await;
    assert_eq!(
        (status, s["outcome"].as_str()),
        (200, Some("approved")),
        "{s}"
    );
    // Nothing was decided by the refused keys.
    let by = h.timeline(&id).await["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "review.decided")
        .count();
    assert_eq!(by, 1);
}
