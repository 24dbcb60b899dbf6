//! What one session takes from outside is bounded (issue 18 finding 6):
//! nothing after its end (refused, counted, not stored), and per-session caps
//! on browser signals, open streams and timeline growth, each answered with
//! problem JSON.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, Options, eventually};
use serde_json::{Value, json};

async fn expect_problem(r: reqwest::Response, status: u16, what: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "{what}");
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status, "{what}: {body}");
    body
}

async fn signal(h: &Harness, id: &str, secret: &str, body: Value) -> reqwest::Response {
    h.http
        .post(h.url(&format!("/v1/client/sessions/{id}/signal")))
        .bearer_auth(secret)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn entries(timeline: &Value) -> &Vec<Value> {
    timeline["entries"].as_array().unwrap()
}

fn of_kind<'a>(timeline: &'a Value, kind: &str) -> Vec<&'a Value> {
    entries(timeline)
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// A session waiting for its score webhook: `(id, client secret, provider id)`.
async fn waiting_session(h: &Harness, reference: &str) -> (String, String, String) {
    let s = h.create_score_session(reference).await;
    let id = s["id"].as_str().unwrap().to_string();
    let secret = s["client_secret"].as_str().unwrap().to_string();
    let provider = h.provider_id(&id).await;
    h.wait_session(&id, "the wait", |s| s["status"] == "waiting")
        .await;
    (id, secret, provider)
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_to_an_ended_session_are_refused_counted_and_not_stored() {
    let h = Harness::start().await;
    let s = h.create_score_session("ended-signals").await;
    let id = s["id"].as_str().unwrap();
    let secret = s["client_secret"].as_str().unwrap();
    // Canceled once it waits: no provider call is in flight whose record
    // would land in the timeline after the count below.
    h.wait_session(id, "waiting", |s| s["status"] == "waiting")
        .await;
    let (status, body) = h
        .post(&format!("/v1/sessions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    h.wait_ended(id).await;
    let before = entries(&h.timeline(id).await).len();
    // 51 signals of 16 KB each, as in the issue: each refused, none stored.
    let marker = "after-the-end-marker-7f3a";
    let padding = "x".repeat(16 * 1024 - 200);
    for i in 0..51 {
        let r = signal(
            &h,
            id,
            secret,
            json!({"name": "poke", "id": format!("late-{i}"), "data": {"m": marker, "pad": padding}}),
        )
        .await;
        let p = expect_problem(r, 409, "a signal to an ended session").await;
        assert!(p["detail"].as_str().unwrap().contains("ended"), "{p}");
    }
    let session = h.session(id).await;
    assert_eq!(session["refused_events"], 51, "{session}");
    let t = h.timeline(id).await;
    assert_eq!(entries(&t).len(), before + 1, "{t:#}");
    let refused = of_kind(&t, "events.refused");
    assert_eq!(refused.len(), 1, "{t:#}");
    assert_eq!(refused[0]["data"]["event"], "signal.poke");
    assert!(
        !h.database_bytes()
            .await
            .windows(marker.len())
            .any(|w| w == marker.as_bytes()),
        "a refused signal reached the database"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_stores_at_most_signals_per_session() {
    let h = Harness::start_with(Options {
        extra_toml: "[limits]\nsignals_per_session = 5\n",
        ..Default::default()
    })
    .await;
    let (id, secret, provider) = waiting_session(&h, "signal-cap").await;
    for i in 0..5 {
        let r = signal(
            &h,
            &id,
            &secret,
            json!({"name": "poke", "id": format!("s{i}")}),
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let r = signal(&h, &id, &secret, json!({"name": "poke", "id": "s5"})).await;
    let p = expect_problem(r, 429, "the sixth signal").await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("limits.signals_per_session"),
        "{p}"
    );
    assert_eq!(h.session(&id).await["refused_events"], 1);
    // What the session waits for is never held back by the limit.
    h.complete(&provider, 80).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_timeline_takes_only_what_the_session_waits_for() {
    let h = Harness::start_with(Options {
        extra_toml: "[limits]\ntimeline_per_session = 12\n",
        ..Default::default()
    })
    .await;
    let (id, secret, provider) = waiting_session(&h, "timeline-cap").await;
    let start = entries(&h.timeline(&id).await).len();
    assert!(start < 12, "the workflow alone wrote {start} entries");
    // Each signal the session does not wait for adds `event.received`.
    let mut taken = 0;
    let refused = loop {
        let r = signal(
            &h,
            &id,
            &secret,
            json!({"name": "poke", "id": format!("t{taken}")}),
        )
        .await;
        if r.status() != 200 {
            break r;
        }
        taken += 1;
        assert!(taken <= 12, "the timeline grew past its limit");
    };
    assert_eq!(start + taken, 12);
    let p = expect_problem(refused, 429, "a signal to a full timeline").await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("limits.timeline_per_session"),
        "{p}"
    );
    // A secrets read could not be audited: refused too.
    let r = h
        .http
        .get(h.url(&format!("/v1/sessions/{id}/secrets")))
        .bearer_auth(&h.api_key)
        .send()
        .await
        .unwrap();
    expect_problem(r, 429, "a secrets read on a full timeline").await;
    let t = h.timeline(&id).await;
    assert_eq!(entries(&t).len(), 13, "one entry notes the refusals");
    assert_eq!(of_kind(&t, "events.refused").len(), 1);
    assert_eq!(h.session(&id).await["refused_events"], 2);
    // The webhook the session waits for still ends it.
    h.complete(&provider, 80).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_has_at_most_streams_per_session_open() {
    let h = Harness::start_with(Options {
        extra_toml: "[limits]\nstreams_per_session = 2\n",
        ..Default::default()
    })
    .await;
    let (id, secret, _) = waiting_session(&h, "stream-cap").await;
    let open = || async {
        // A client of its own: dropping the response closes the stream.
        reqwest::Client::new()
            .get(h.url(&format!("/v1/client/sessions/{id}/events")))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
    };
    let first = open().await;
    assert_eq!(first.status(), 200);
    let second = open().await;
    assert_eq!(second.status(), 200);
    expect_problem(open().await, 429, "a third stream").await;
    // A closed stream frees its place at once, not at the session's next
    // event (the session has none coming).
    drop(first);
    let third = eventually("a place for another stream", 20, || async {
        let r = open().await;
        (r.status() == 200).then_some(r)
    })
    .await;
    expect_problem(open().await, 429, "again a third stream").await;
    drop((second, third));
}
