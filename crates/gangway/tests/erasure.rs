//! Erasure of a session's personal data (issue 20): on request through
//! `DELETE /v1/sessions/{id}/data` and at the end of its retention, on the
//! real server, with a marker value looked for in the database's files
//! (SQLite: the main file and the WAL, byte by byte) or rows (PostgreSQL:
//! every row of every table as text).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, Options, create_key, eventually};
use serde_json::{Value, json};

/// A value that appears nowhere but where a session put it.
/// A server that stores personal data in the clear (`encryption = "off"`):
/// the scans below must see the data before the erasure to prove it gone
/// after (sealed, it is never in the clear: tests/encryption.rs).
async fn clear_server() -> Harness {
    Harness::start_with(Options {
        top_config: "encryption = \"off\"\n".into(),
        ..Options::default()
    })
    .await
}

fn marker(tag: &str) -> String {
    format!("Erasable-{tag}-{:016x}", rand::random::<u64>())
}

async fn delete(h: &Harness, key: &str, id: &str) -> (u16, Value) {
    let r = h
        .http
        .delete(h.url(&format!("/v1/sessions/{id}/data")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn signal(h: &Harness, id: &str, secret: &str, name: &str, data: Value) {
    let r = h
        .http
        .post(h.url(&format!("/v1/client/sessions/{id}/signal")))
        .bearer_auth(secret)
        .json(&json!({"name": name, "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

/// An `erase-marker` session that put `name` everywhere it can and waits in
/// `noted`: `(id, client secret)`.
async fn marked_session(h: &Harness, name: &str) -> (String, String) {
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "erase-marker", "reference": "erase", "input": {"name": name}}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    let secret = s["client_secret"].as_str().unwrap().to_string();
    h.wait_session(&id, "hold", |s| s["step"] == "hold").await;
    signal(h, &id, &secret, "note", json!({"said": name})).await;
    h.wait_session(&id, "noted", |s| s["step"] == "noted").await;
    (id, secret)
}

/// The audit log's entries of `action` about the session (admin API).
async fn audited(h: &Harness, admin: &str, action: &str, id: &str) -> Vec<Value> {
    let r = h
        .http
        .get(h.url(&format!("/v1/admin/audit?action={action}&session_id={id}")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn kinds(t: &Value) -> Vec<String> {
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_session_leaves_a_tombstone_and_nothing_in_the_files() {
    let h = clear_server().await;
    let eraser = create_key(&h.config, "eraser", &["sessions:erase"]);
    let name = marker("ended");
    let (id, secret) = marked_session(&h, &name).await;
    signal(&h, &id, &secret, "done", json!({"said": name})).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["output"]["name"], name.as_str(), "{ended}");
    assert!(ended["erased_at"].is_null(), "{ended}");
    // The session.ended webhook carried it: its delivery row holds it too.
    eventually("the session.ended webhook", 20, || async {
        (!h.receiver.for_session(&id, "session.ended").is_empty()).then_some(())
    })
    .await;
    // The test can fail: the marker is in the database before.
    assert!(
        contains(&h.database_bytes().await, &name),
        "marker not stored"
    );

    let (status, tomb) = delete(&h, &eraser, &id).await;
    assert_eq!(status, 200, "{tomb}");
    assert!(tomb["erased_at"].is_string(), "{tomb}");
    assert_eq!(tomb["id"], id.as_str());
    assert_eq!(tomb["workflow"], "erase-marker");
    assert_eq!(tomb["version"], 1);
    assert_eq!(tomb["reference"], "erase");
    assert_eq!(tomb["outcome"], "approved");
    assert_eq!(tomb["ended_at"], ended["ended_at"]);
    assert_eq!(tomb["created_at"], ended["created_at"]);
    assert_eq!(tomb["input"], json!({}));
    assert!(
        tomb["output"].is_null() && tomb["reason"].is_null(),
        "{tomb}"
    );
    assert!(!tomb.to_string().contains(&name), "{tomb}");
    // GET shows the tombstone; the timeline keeps kinds and times only.
    let shown = h.session(&id).await;
    assert_eq!(shown["erased_at"], tomb["erased_at"]);
    let t = h.timeline(&id).await;
    assert!(!t.to_string().contains(&name), "{t}");
    let k = kinds(&t);
    assert!(k.contains(&"session.erased".to_string()), "{k:?}");
    assert!(k.contains(&"session.created".to_string()), "{k:?}");
    // The score service has no deletion API: a note says it keeps its copy.
    let retained = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "provider.retained")
        .unwrap_or_else(|| panic!("no provider.retained: {t}"));
    assert_eq!(retained["data"]["connector"], "http", "{retained}");
    assert!(
        retained["data"]["note"]
            .as_str()
            .unwrap()
            .contains("own retention"),
        "{retained}"
    );
    // The customer's backend hears of it, signed, with the tombstone.
    let erased = eventually("the session.erased webhook", 20, || async {
        h.receiver
            .for_session(&id, "session.erased")
            .into_iter()
            .find(|r| r.accepted)
    })
    .await;
    assert!(erased.verified);
    assert_eq!(erased.body["data"]["erased_at"], tomb["erased_at"]);
    assert!(!erased.body.to_string().contains(&name));
    // Gone from the database files (SQLite: main file and WAL) or rows.
    let bytes = h.database_bytes().await;
    assert!(!contains(&bytes, &name), "the marker is still stored");
    // Again: the same tombstone, nothing sent twice.
    let (status, again) = delete(&h, &eraser, &id).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["erased_at"], tomb["erased_at"]);
    assert_eq!(again, h.session(&id).await);
    let t = h.timeline(&id).await;
    let erasures = kinds(&t).iter().filter(|k| *k == "session.erased").count();
    assert_eq!(erasures, 1, "{t}");
    // Audited once, by the key, with ids only.
    let admin = create_key(&h.config, "admin", &["admin"]);
    let entries = audited(&h, &admin, "session.erased", &id).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("api_key:"),
        "{entries:?}"
    );
    assert_eq!(entries[0]["data"]["trigger"], "request");
    assert!(!Value::Array(entries).to_string().contains(&name));
    // The browser sees the ended session, no name.
    let r = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{id}")))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(!text.contains(&name), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_session_is_canceled_then_erased() {
    let h = clear_server().await;
    let eraser = create_key(&h.config, "eraser", &["sessions:erase"]);
    let name = marker("running");
    let (id, _) = marked_session(&h, &name).await;
    assert_eq!(h.session(&id).await["status"], "waiting");
    assert!(
        contains(&h.database_bytes().await, &name),
        "marker not stored"
    );
    let (status, tomb) = delete(&h, &eraser, &id).await;
    assert_eq!(status, 200, "{tomb}");
    assert_eq!(tomb["status"], "ended", "{tomb}");
    assert_eq!(tomb["outcome"], "canceled", "{tomb}");
    assert!(tomb["erased_at"].is_string(), "{tomb}");
    let k = kinds(&h.timeline(&id).await);
    let ended = k.iter().position(|k| k == "session.ended");
    let erased = k.iter().position(|k| k == "session.erased");
    assert!(ended.is_some() && ended < erased, "{k:?}");
    // The cancel is audited too, by the same key.
    let admin = create_key(&h.config, "admin", &["admin"]);
    let canceled = audited(&h, &admin, "session.canceled", &id).await;
    let erased = audited(&h, &admin, "session.erased", &id).await;
    assert_eq!((canceled.len(), erased.len()), (1, 1));
    assert_eq!(canceled[0]["actor"], erased[0]["actor"]);
    assert!(
        !contains(&h.database_bytes().await, &name),
        "the marker is still stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sessions_it_started_are_erased_with_it() {
    let h = clear_server().await;
    let eraser = create_key(&h.config, "eraser", &["sessions:erase"]);
    let name = marker("child");
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "erase-parent", "input": {"name": name}}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    let child = eventually("the child session", 20, || async {
        h.timeline(&id).await["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "child.created")
            .map(|e| e["data"]["session_id"].as_str().unwrap().to_string())
    })
    .await;
    assert_eq!(h.session(&child).await["input"]["name"], name.as_str());
    let (status, tomb) = delete(&h, &eraser, &id).await;
    assert_eq!(status, 200, "{tomb}");
    let c = h.session(&child).await;
    assert!(c["erased_at"].is_string(), "{c}");
    assert_eq!(c["status"], "ended", "{c}");
    assert_eq!(c["input"], json!({}), "{c}");
    // Only the parent's erasure is told to the customer's backend.
    eventually("the session.erased webhook", 20, || async {
        (!h.receiver.for_session(&id, "session.erased").is_empty()).then_some(())
    })
    .await;
    assert!(h.receiver.for_session(&child, "session.erased").is_empty());
    assert!(
        !contains(&h.database_bytes().await, &name),
        "the marker is still stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_is_asked_to_redact_its_copy() {
    let h = Harness::start().await;
    let eraser = create_key(&h.config, "eraser", &["sessions:erase"]);
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "stripe-identity", "reference": "redact"}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    let waiting = h
        .wait_session(&id, "verify", |v| v["step"] == "verify")
        .await;
    let vs = waiting["providers"][0]["provider_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, tomb) = delete(&h, &eraser, &id).await;
    assert_eq!(status, 200, "{tomb}");
    // The tombstone keeps which provider session it was.
    assert_eq!(tomb["providers"][0]["provider_session_id"], vs.as_str());
    let redact = format!("/v1/identity/verification_sessions/{vs}/redact");
    eventually("the redaction at Stripe", 20, || async {
        let requests = h.stripe_get("/control/requests").await;
        requests
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["method"] == "POST" && r["path"] == redact.as_str() && r["status"] == 200)
            .then_some(())
    })
    .await;
    let entry = eventually("provider.redacted", 20, || async {
        h.timeline(&id).await["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "provider.redacted")
            .cloned()
    })
    .await;
    // Recorded on the tombstone without the provider's answer.
    assert_eq!(entry["data"]["provider_session_id"], vs.as_str(), "{entry}");
    assert!(entry["data"].get("result").is_none(), "{entry}");
    // Canceled at Stripe first (it was running), then redacted.
    let at_stripe = h.stripe_get(&format!("/control/sessions/{vs}")).await;
    assert_eq!(at_stripe["status"], "canceled", "{at_stripe}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_sessions_and_keys_without_the_scope_are_refused() {
    let h = Harness::start().await;
    let eraser = create_key(&h.config, "eraser", &["sessions:erase"]);
    let (status, problem) = delete(&h, &eraser, "ses_nope").await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(problem["status"], 404, "{problem}");
    let s = h.create_score_session("scoped").await;
    let id = s["id"].as_str().unwrap();
    // The default scopes and admin do not include erasure.
    let admin = create_key(&h.config, "admin", &["admin"]);
    for key in [&h.api_key, &admin] {
        let (status, problem) = delete(&h, key, id).await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["missing_scope"], "sessions:erase", "{problem}");
    }
    assert!(h.session(id).await["erased_at"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_erases_exactly_the_sessions_past_their_period() {
    let h = Harness::start_with(Options {
        extra_toml: "[retention]\ndefault = \"1h\"\ninterval = \"100ms\"\nbatch_size = 2\n",
        top_config: "encryption = \"off\"\n".into(),
        ..Options::default()
    })
    .await;
    let start = |workflow: &'static str, name: String| {
        let h = &h;
        async move {
            let (status, s) = h
                .post(
                    "/v1/sessions",
                    json!({"workflow": workflow, "input": {"name": name}}),
                )
                .await;
            assert_eq!(status, 201, "{s}");
            (
                s["id"].as_str().unwrap().to_string(),
                s["client_secret"].as_str().unwrap().to_string(),
            )
        }
    };
    let admin = create_key(&h.config, "admin", &["admin"]);
    // Three that end with a 1 s retention, one still running with it, and
    // one ended under the server default (1 h).
    let mut short = Vec::new();
    for i in 0..3 {
        let name = marker(&format!("short{i}"));
        let (id, secret) = start("erase-short", name.clone()).await;
        signal(&h, &id, &secret, "done", json!({})).await;
        short.push((id, name));
    }
    let running_name = marker("running");
    let (running, _) = start("erase-short", running_name.clone()).await;
    let kept_name = marker("kept");
    let (kept, kept_secret) = marked_session(&h, &kept_name).await;
    signal(&h, &kept, &kept_secret, "done", json!({})).await;
    h.wait_ended(&kept).await;
    for (id, _) in &short {
        h.wait_ended(id).await;
    }
    for (id, _) in &short {
        let s = h
            .wait_session(id, "its erasure", |s| s["erased_at"].is_string())
            .await;
        assert_eq!(s["input"], json!({}), "{s}");
        assert_eq!(s["outcome"], "approved", "{s}");
        let t = h.timeline(id).await;
        let erased = t["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "session.erased")
            .cloned()
            .unwrap();
        assert_eq!(erased["data"]["trigger"], "retention", "{erased}");
        let entries = audited(&h, &admin, "session.erased", id).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0]["actor"], "system", "{entries:?}");
    }
    // Nothing else: not the running one, not the one kept for an hour.
    let r = h.session(&running).await;
    assert!(r["erased_at"].is_null(), "{r}");
    assert_eq!(r["input"]["name"], running_name.as_str());
    let k = h.session(&kept).await;
    assert!(k["erased_at"].is_null(), "{k}");
    assert_eq!(k["input"]["name"], kept_name.as_str());
    let bytes = h.database_bytes().await;
    for (_, name) in &short {
        assert!(!contains(&bytes, name), "{name} is still stored");
    }
    assert!(contains(&bytes, &running_name) && contains(&bytes, &kept_name));
    // Counted, and nothing left behind.
    let metrics = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("gangway_sessions_erased_total{trigger=\"retention\"}"))
        .unwrap_or_else(|| panic!("no erasure counter: {metrics}"));
    assert!(line.ends_with(" 3"), "{line}");
    eventually("an empty backlog", 10, || async {
        let m = h
            .http
            .get(h.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        m.lines()
            .any(|l| l == "gangway_erasure_backlog 0")
            .then_some(())
    })
    .await;
}
