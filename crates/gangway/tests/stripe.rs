//! Stripe Identity end to end on the server: the real binary against the
//! Stripe simulator over HTTP, webhooks signed as Stripe signs them.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, eventually};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

struct Started {
    id: String,
    secret: String,
}

async fn start(h: &Harness, workflow: &str, reference: &str) -> Started {
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": workflow, "reference": reference}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    Started {
        id: s["id"].as_str().unwrap().to_string(),
        secret: s["client_secret"].as_str().unwrap().to_string(),
    }
}

/// The VerificationSession once the session waits in `step`.
async fn verification(h: &Harness, s: &Started, step: &str) -> String {
    let session = h
        .wait_session(&s.id, step, |v| {
            v["status"] == "waiting" && v["step"] == step
        })
        .await;
    session["providers"][0]["provider_session_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn view(h: &Harness, s: &Started) -> Value {
    h.http
        .get(h.url(&format!("/v1/client/sessions/{}", s.id)))
        .bearer_auth(&s.secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn submit(h: &Harness, vs: &str, body: Value) {
    let (status, answer) = h
        .stripe_post(&format!("/control/sessions/{vs}/submit"), body)
        .await;
    assert_eq!(status, 200, "{answer}");
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

fn count(t: &Value, kind: &str) -> usize {
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .count()
}

fn sign(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn post_event(h: &Harness, header: &str, body: &str) -> (u16, Value) {
    let r = h
        .http
        .post(h.url("/v1/webhooks/stripe"))
        .header("stripe-signature", header)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_with_outputs_and_nothing_secret_in_the_browser() {
    let h = Harness::start().await;
    let s = start(&h, "stripe-identity", "happy").await;
    let vs = verification(&h, &s, "verify").await;
    assert!(vs.starts_with("vs_"), "{vs}");
    // Created server-side as asked: a document check with a selfie, tied to
    // Gangway's session.
    let at_stripe = h.stripe_get(&format!("/control/sessions/{vs}")).await;
    assert_eq!(at_stripe["type"], "document");
    assert_eq!(
        at_stripe["options"]["document"]["require_matching_selfie"],
        true
    );
    assert_eq!(at_stripe["metadata"]["gangway_session"], s.id.as_str());
    assert_eq!(at_stripe["client_reference_id"], s.id.as_str());
    // The browser gets the hosted URL in a popup, and never the secret key.
    let v = view(&h, &s).await;
    assert_eq!(v["step"]["present"]["kind"], "popup", "{v}");
    let url = v["step"]["present"]["url"].as_str().unwrap();
    assert_eq!(url, at_stripe["url"].as_str().unwrap());
    assert!(url.contains("/sim/stripe/start/test_"), "{url}");
    assert!(!v.to_string().contains(common::STRIPE_SECRET_KEY));

    submit(&h, &vs, json!({"result": "verified"})).await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    let out = &ended["output"];
    assert_eq!(out["verification_session"], vs.as_str());
    assert_eq!(out["first_name"], "Jenny");
    assert_eq!(out["last_name"], "Rosen");
    assert_eq!(out["dob"]["year"], 1990);
    assert_eq!(out["address"]["country"], "NL");
    // Stripe's webhooks drove it (processing, and verified unless reading
    // the session back after `processing` already found it verified).
    let t = h.timeline(&s.id).await;
    let got = accepted(&t);
    assert!(!got.is_empty());
    assert!(got.iter().all(|(_, source)| source == "stripe"), "{got:?}");
    assert_eq!(got[0].0, "stripe.processing", "{got:?}");
    // Nothing secret in the timeline: not the key, not the client secret.
    let text = t.to_string();
    assert!(!text.contains(common::STRIPE_SECRET_KEY));
    assert!(!text.contains("_secret_"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fixable_failure_retries_final_failure_declines() {
    let h = Harness::start().await;
    // An expired document: the user may try again, with a fresh link.
    let s = start(&h, "stripe-identity", "retry").await;
    let vs = verification(&h, &s, "verify").await;
    submit(
        &h,
        &vs,
        json!({"result": "requires_input", "code": "document_expired"}),
    )
    .await;
    verification(&h, &s, "retry").await;
    let v = view(&h, &s).await;
    let title = v["step"]["present"]["title"].as_str().unwrap();
    assert!(title.contains("expired"), "{title}");
    assert!(v["step"]["present"]["url"].is_string(), "{v}");
    submit(&h, &vs, json!({"result": "verified"})).await;
    assert_eq!(h.wait_ended(&s.id).await["outcome"], "approved");

    // A face that does not match: retrying cannot change it.
    let s = start(&h, "stripe-identity", "final").await;
    let vs = verification(&h, &s, "verify").await;
    submit(
        &h,
        &vs,
        json!({"result": "requires_input", "code": "selfie_face_mismatch"}),
    )
    .await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "declined", "{ended}");
    assert_eq!(ended["output"]["last_error_code"], "selfie_face_mismatch");
    assert_eq!(
        ended["reason"],
        "identity check failed: selfie_face_mismatch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn canceled_by_the_user_at_stripe_and_by_the_deadline() {
    let h = Harness::start().await;
    // The user cancels in the page: Gangway cancels the VerificationSession.
    let s = start(&h, "stripe-identity", "user-cancel").await;
    let vs = verification(&h, &s, "verify").await;
    let r = h
        .http
        .post(h.url(&format!("/v1/client/sessions/{}/signal", s.id)))
        .bearer_auth(&s.secret)
        .json(&json!({"name": "cancel", "data": {}, "id": "cancel:1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "canceled");
    assert_eq!(ended["reason"], "the user canceled the identity check");
    let at_stripe = h.stripe_get(&format!("/control/sessions/{vs}")).await;
    assert_eq!(at_stripe["status"], "canceled");

    // Canceled at Stripe (the Dashboard): its event ends the session.
    let s = start(&h, "stripe-identity", "stripe-cancel").await;
    let vs = verification(&h, &s, "verify").await;
    let (status, _) = h
        .stripe_post(&format!("/control/sessions/{vs}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "canceled");
    assert_eq!(
        ended["reason"],
        "the VerificationSession was canceled at Stripe"
    );

    // Nobody finishes: expired, and canceled at Stripe too.
    let s = start(&h, "stripe-fast", "deadline").await;
    let vs = verification(&h, &s, "verify").await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "expired", "{ended}");
    let at_stripe = h.stripe_get(&format!("/control/sessions/{vs}")).await;
    assert_eq!(at_stripe["status"], "canceled");
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_are_checked_before_anything_is_stored() {
    let h = Harness::start().await;
    let s = start(&h, "stripe-identity", "auth").await;
    let vs = verification(&h, &s, "verify").await;
    let before = h.session(&s.id).await;
    let body = json!({
        "id": "evt_forged_1", "object": "event", "type": "identity.verification_session.verified",
        "data": {"object": {"id": vs, "object": "identity.verification_session", "status": "verified"}},
    })
    .to_string();
    let now = now_s();
    let good = sign(common::STRIPE_WEBHOOK_SECRET, now, &body);
    for header in [
        // A secret Gangway does not know.
        format!(
            "t={now},v1={}",
            sign("whsec_someone_else_000000000", now, &body)
        ),
        // Stale and future timestamps, signed correctly.
        format!(
            "t={},v1={}",
            now - 301,
            sign(common::STRIPE_WEBHOOK_SECRET, now - 301, &body)
        ),
        format!(
            "t={},v1={}",
            now + 301,
            sign(common::STRIPE_WEBHOOK_SECRET, now + 301, &body)
        ),
        // A signature of another timestamp.
        format!("t={},v1={good}", now - 1),
        // As far as an i64 goes.
        format!("t={},v1={good}", i64::MIN),
        format!("t=99999999999999999999,v1={good}"),
        // No v1, no timestamp, nothing.
        format!("t={now},v0={good}"),
        format!("v1={good}"),
        String::new(),
    ] {
        let (status, answer) = post_event(&h, &header, &body).await;
        assert_eq!(status, 401, "{header}: {answer}");
        assert_eq!(answer["status"], 401);
    }
    // A tampered body with a signature of the original.
    let tampered = body.replace("evt_forged_1", "evt_forged_2");
    let (status, _) = post_event(&h, &format!("t={now},v1={good}"), &tampered).await;
    assert_eq!(status, 401);
    let after = h.session(&s.id).await;
    assert_eq!(after["status"], "waiting");
    assert_eq!(after["updated_at"], before["updated_at"]);
    assert_eq!(count(&h.timeline(&s.id).await, "event.received"), 0);

    // Rotation: a header whose only matching v1 is under the second secret.
    let rotated = format!(
        "t={now},v1={},v1={}",
        sign("whsec_retired_000000000000000", now, &body),
        sign(common::STRIPE_WEBHOOK_SECRET_NEXT, now, &body)
    );
    let (status, answer) = post_event(&h, &rotated, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["duplicate"], false);
    // The same event again: stored once.
    let (status, answer) = post_event(&h, &rotated, &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["duplicate"], true);
    // The body is only a hint: Stripe still says requires_input, so the
    // session goes back to waiting instead of approving.
    eventually("the hint was read back", 20, || async {
        let t = h.timeline(&s.id).await;
        (count(&t, "event.accepted") == 1 && h.session(&s.id).await["step"] == "verify")
            .then_some(())
    })
    .await;
    assert_eq!(h.session(&s.id).await["status"], "waiting");
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_lost_and_early_webhooks() {
    let h = Harness::start().await;
    // Every event twice: one transition each.
    // (`processing` long enough for the session to wait for the verdict.)
    h.stripe_post(
        "/control/knobs",
        json!({"duplicate": true, "processing_ms": 500}),
    )
    .await;
    let s = start(&h, "stripe-identity", "dup").await;
    let vs = verification(&h, &s, "verify").await;
    submit(&h, &vs, json!({"result": "verified"})).await;
    assert_eq!(h.wait_ended(&s.id).await["outcome"], "approved");
    let events = h.stripe_get("/control/events").await;
    let statuses: Vec<Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["session"] == vs.as_str())
        .map(|e| e["statuses"].clone())
        .collect();
    assert!(
        statuses.iter().all(|s| s == &json!([200, 200])),
        "both copies answered 2xx: {statuses:?}"
    );
    let t = h.timeline(&s.id).await;
    let verified = accepted(&t)
        .iter()
        .filter(|(e, _)| e == "stripe.verified")
        .count();
    assert_eq!(verified, 1);

    // Lost: polling finds the verification.
    h.stripe_post(
        "/control/knobs",
        json!({"duplicate": false, "drop": true, "processing_ms": 0}),
    )
    .await;
    let s = start(&h, "stripe-fast", "dropped").await;
    let vs = verification(&h, &s, "verify").await;
    submit(&h, &vs, json!({"result": "verified"})).await;
    assert_eq!(h.wait_ended(&s.id).await["outcome"], "approved");
    let got = accepted(&h.timeline(&s.id).await);
    assert!(!got.is_empty());
    assert!(got.iter().all(|(_, source)| source == "poll"), "{got:?}");

    // Early: the verification's webhooks arrive before the create call
    // returned to Gangway (its answer held back by the simulator).
    h.stripe_post("/control/knobs", json!({"drop": false}))
        .await;
    h.stripe_post(
        "/control/faults",
        json!({"rules": [{"match": {"method": "POST", "path": "/v1/identity/verification_sessions"},
                          "after_effect": true, "fault": {"delay_ms": 3000}}]}),
    )
    .await;
    let s = start(&h, "stripe-identity", "early").await;
    let vs = eventually("the VerificationSession exists at Stripe", 20, || async {
        let all = h.stripe_get("/control/sessions").await;
        all["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["metadata"]["gangway_session"] == s.id.as_str())
            .map(|v| v["id"].as_str().unwrap().to_string())
    })
    .await;
    assert_eq!(h.session(&s.id).await["step"], "start", "still creating");
    submit(&h, &vs, json!({"result": "verified"})).await;
    eventually("both webhooks delivered", 20, || async {
        let events = h.stripe_get("/control/events").await;
        (events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["session"] == vs.as_str())
            .count()
            == 2)
            .then_some(())
    })
    .await;
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    // The first stored event ended the wait (Stripe's own, not a poll), and
    // reading the session back found it verified.
    let t = h.timeline(&s.id).await;
    let got = accepted(&t);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "stripe", "{got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_errors_are_retried_and_creates_are_idempotent() {
    let h = Harness::start().await;
    // Twice 503, then a 429 with Retry-After, then the real answer.
    h.stripe_post(
        "/control/faults",
        json!({"rules": [
            {"match": {"method": "POST", "path": "/v1/identity/verification_sessions"}, "times": 2, "fault": {"status": 503}},
            {"match": {"method": "POST", "path": "/v1/identity/verification_sessions"}, "fault": {"status": 429, "retry_after": 1}}
        ]}),
    )
    .await;
    let s = start(&h, "stripe-identity", "5xx").await;
    verification(&h, &s, "verify").await;
    let t = h.timeline(&s.id).await;
    let call = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "provider.call")
        .unwrap();
    let statuses: Vec<&Value> = call["data"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(
        statuses,
        [
            &json!(503),
            &json!(503),
            &json!(429),
            &json!("requires_input")
        ],
        "{call}"
    );
    // A create that reached Stripe but whose answer was lost: the retry
    // carries the same Idempotency-Key and gets the same session.
    h.stripe_post(
        "/control/faults",
        json!({"rules": [{"match": {"method": "POST", "path": "/v1/identity/verification_sessions"},
                          "after_effect": true, "fault": {"status": 502}}]}),
    )
    .await;
    let s = start(&h, "stripe-identity", "lost-answer").await;
    let vs = verification(&h, &s, "verify").await;
    let all = h.stripe_get("/control/sessions").await;
    let mine: Vec<&Value> = all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["metadata"]["gangway_session"] == s.id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "one VerificationSession: {mine:?}");
    assert_eq!(mine[0]["id"], vs.as_str());
    // The key must be Stripe's secret key.
    let r = h
        .http
        .get(h.stripe(&format!("/v1/identity/verification_sessions/{vs}")))
        .bearer_auth("sk_test_wrong_key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error");
}

/// The session's timeline entries of `kind`.
fn entries(t: &Value, kind: &str) -> Vec<Value> {
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

/// Waits for the session's timeline entry of `kind`.
async fn wait_entry(h: &Harness, id: &str, kind: &str) -> Value {
    eventually(kind, 20, || async {
        entries(&h.timeline(id).await, kind).into_iter().next()
    })
    .await
}

/// The cancel requests the simulator got for `vs`, with their statuses.
async fn cancels_at_stripe(h: &Harness, vs: &str) -> Vec<Value> {
    let path = format!("/v1/identity/verification_sessions/{vs}/cancel");
    h.stripe_get("/control/requests")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == path.as_str())
        .map(|r| r["status"].clone())
        .collect()
}

/// A session canceled through the API runs no more steps; Gangway still
/// cancels its VerificationSession at Stripe (a 5xx retried), after the
/// session has ended and its customer has been told.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_cancel_cancels_the_verification_session_at_stripe() {
    let h = Harness::start().await;
    let s = start(&h, "stripe-identity", "api-cancel").await;
    let vs = verification(&h, &s, "verify").await;
    // Stripe answers the first cancel with a 503.
    h.stripe_post(
        "/control/faults",
        json!({"rules": [{"match": {"method": "POST", "path": format!("/v1/identity/verification_sessions/{vs}/cancel")},
                          "times": 1, "fault": {"status": 503}}]}),
    )
    .await;
    let (status, body) = h
        .post(&format!("/v1/sessions/{}/cancel", s.id), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let ended = h.wait_ended(&s.id).await;
    assert_eq!(ended["outcome"], "canceled", "{ended}");
    let entry = wait_entry(&h, &s.id, "provider.canceled").await;
    let data = &entry["data"];
    assert_eq!(data["connector"], "stripe", "{entry}");
    assert_eq!(data["provider_session_id"], vs.as_str(), "{entry}");
    assert_eq!(data["action"], "stripe.cancel", "{entry}");
    assert_eq!(data["result"]["status"], "canceled", "{entry}");
    assert_eq!(data["result"]["canceled"], true, "{entry}");
    let statuses: Vec<&Value> = data["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(503), &json!("canceled")], "{entry}");
    // At Stripe: canceled, after one 503 and one 200.
    let at_stripe = h.stripe_get(&format!("/control/sessions/{vs}")).await;
    assert_eq!(at_stripe["status"], "canceled", "{at_stripe}");
    assert_eq!(cancels_at_stripe(&h, &vs).await, [json!(503), json!(200)]);
    // The clean-up came after the end, never before it.
    let t = h.timeline(&s.id).await;
    let kinds: Vec<&str> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    let end = kinds.iter().position(|k| *k == "session.ended");
    let canceled = kinds.iter().position(|k| *k == "provider.canceled");
    assert!(end.is_some() && end < canceled, "{kinds:?}");
    assert_eq!(count(&t, "provider.canceled"), 1, "{kinds:?}");
}

/// Nothing is canceled twice or for nothing: not a session that ended
/// approved, not one whose workflow canceled at its deadline, and a
/// VerificationSession verified meanwhile is answered, not failed.
#[tokio::test(flavor = "multi_thread")]
async fn no_cancel_after_approval_or_after_the_workflow_canceled() {
    let h = Harness::start().await;
    // Approved.
    let approved = start(&h, "stripe-identity", "approved").await;
    let vs_approved = verification(&h, &approved, "verify").await;
    submit(&h, &vs_approved, json!({"result": "verified"})).await;
    let ended = h.wait_ended(&approved.id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    // Expired: the workflow's `give_up` step cancels at Stripe itself.
    let expired = start(&h, "stripe-fast", "expired").await;
    let vs_expired = verification(&h, &expired, "verify").await;
    let ended = h.wait_ended(&expired.id).await;
    assert_eq!(ended["outcome"], "expired", "{ended}");
    // Verified at Stripe just before an API cancel reaches Gangway: the
    // cancel is refused by Stripe and answered with what it is.
    let raced = start(&h, "stripe-identity", "raced").await;
    let vs_raced = verification(&h, &raced, "verify").await;
    // Its webhooks are lost and its first poll is 5 s away: Gangway does
    // not know yet.
    h.stripe_post("/control/knobs", json!({"drop": true})).await;
    submit(&h, &vs_raced, json!({"result": "verified"})).await;
    eventually("verified at Stripe", 20, || async {
        let at = h.stripe_get(&format!("/control/sessions/{vs_raced}")).await;
        (at["status"] == "verified").then_some(())
    })
    .await;
    let (status, body) = h
        .post(&format!("/v1/sessions/{}/cancel", raced.id), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let entry = wait_entry(&h, &raced.id, "provider.canceled").await;
    assert_eq!(entry["data"]["result"]["canceled"], false, "{entry}");
    assert_eq!(entry["data"]["result"]["status"], "verified", "{entry}");
    // The raced session's clean-up was enqueued after the other two ended,
    // so theirs, had there been any, would have been enqueued before it.
    assert!(cancels_at_stripe(&h, &vs_approved).await.is_empty());
    assert_eq!(cancels_at_stripe(&h, &vs_expired).await, [json!(200)]);
    for s in [&approved, &expired] {
        let t = h.timeline(&s.id).await;
        assert_eq!(count(&t, "provider.canceled"), 0, "{t}");
        assert_eq!(count(&t, "provider.cancel_failed"), 0, "{t}");
    }
}
