//! The Ockto mortgage workflow end to end on the server: the real binary
//! against the Ockto simulator over HTTP (and over mutual TLS), one test per
//! branch of `workflows/ockto-mortgage.yaml`. Deadline tests run
//! `ockto-fast`, the same file with short deadlines (common::ockto_fast).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, OCKTO_PASSWORD, OCKTO_PROVIDER_CODE, OCKTO_USERNAME, Options, eventually};
use serde_json::{Value, json};

async fn start(h: &Harness, workflow: &str, input: Value) -> (String, String) {
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": workflow, "input": input}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    (
        s["id"].as_str().unwrap().to_string(),
        s["client_secret"].as_str().unwrap().to_string(),
    )
}

/// The child session running the `ockto-session` template for `id`.
async fn template_of(h: &Harness, id: &str) -> String {
    eventually("the Ockto template's session", 20, || async {
        h.timeline(id).await["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "child.created")
            .map(|e| e["data"]["session_id"].as_str().unwrap().to_string())
    })
    .await
}

/// The Ockto session id once the template waits for the scan.
async fn ockto_session(h: &Harness, id: &str) -> String {
    let child = template_of(h, id).await;
    let s = h
        .wait_session(&child, "the QR step", |s| {
            s["step"] == "wait_scan" || s["status"] == "ended"
        })
        .await;
    assert_eq!(s["step"], "wait_scan", "{s}");
    s["providers"][0]["provider_session_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn act(h: &Harness, ockto: &str, action: &str, body: Value) {
    let (status, resp) = h
        .ockto_post(&format!("/control/{ockto}/{action}"), body)
        .await;
    assert_eq!(status, 200, "{action}: {resp}");
}

async fn client_view(h: &Harness, id: &str, secret: &str) -> Value {
    let r = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{id}")))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn accepted(t: &Value) -> Vec<String> {
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "event.accepted")
        .map(|e| e["data"]["event"].as_str().unwrap().to_string())
        .collect()
}

async fn sim_sessions(h: &Harness) -> Vec<Value> {
    h.ockto_get("/control/sessions")
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Scan, share, end: the outcome and reason of one session on `ockto-fast`.
async fn shared_with_profile(h: &Harness, loan: u64, profile: &str) -> Value {
    let (id, _) = start(h, "ockto-fast", json!({"loan_amount": loan})).await;
    let ockto = ockto_session(h, &id).await;
    act(h, &ockto, "scan", json!({})).await;
    act(h, &ockto, "share", json!({"profile": profile})).await;
    h.wait_ended(&id).await
}

fn assert_svg(text: &str) {
    assert!(
        text.starts_with("<?xml") || text.starts_with("<svg"),
        "{text}"
    );
    assert!(text.contains("<svg") && text.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(text.trim_end().ends_with("</svg>"), "{text}");
    assert!(
        text.contains("<path") || text.contains("<rect"),
        "no modules: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scanned_then_shared_then_approved() {
    let h = Harness::start().await;
    // The shipped workflow, polling every 2 s as in production.
    let (id, secret) = start(&h, "ockto-mortgage", json!({"loan_amount": 250000})).await;
    let ockto = ockto_session(&h, &id).await;

    // The browser gets the QR as SVG and the phone's deep link; no payload field.
    let view = client_view(&h, &id, &secret).await;
    let present = &view["step"]["present"];
    assert_eq!(present["kind"], "qr");
    assert_eq!(present["scanned"], false);
    assert_svg(present["svg"].as_str().unwrap());
    assert_eq!(
        present["link"],
        h.ockto(&format!("/app/{ockto}")),
        "the QR code's URL is the phone's deep link"
    );
    assert!(present.get("payload").is_none());
    let svg_url = present["svg_url"].as_str().unwrap();
    let r = h
        .http
        .get(h.url(&format!("{svg_url}?client_secret={secret}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_svg(&r.text().await.unwrap());

    // The phone scans: the page learns it from the next status poll.
    act(&h, &ockto, "scan", json!({})).await;
    h.wait_session(&template_of(&h, &id).await, "the data wait", |s| {
        s["step"] == "wait_data"
    })
    .await;
    let view = client_view(&h, &id, &secret).await;
    assert_eq!(
        view["step"]["present"],
        json!({"kind": "qr", "scanned": true})
    );

    act(&h, &ockto, "share", json!({"profile": "approve"})).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    let reason = ended["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("loan of 250000 approved: income cap 432000"),
        "{reason}"
    );
    let t = h.timeline(&template_of(&h, &id).await).await;
    assert_eq!(accepted(&t), ["ockto.scanned", "ockto.data_received"]);
    assert_eq!(accepted(&h.timeline(&id).await), ["child.ended"]);
    assert_eq!(sim_sessions(&h).await.len(), 1);
    // The customer's backend heard the ending.
    let hook = eventually("the session.ended webhook", 10, || async {
        h.receiver
            .for_session(&id, "session.ended")
            .into_iter()
            .find(|r| r.accepted)
    })
    .await;
    assert!(hook.verified);
    assert_eq!(hook.body["data"]["outcome"], "approved");
    // The webhook carries what decided: the rule, the figures, the caps.
    let out = &hook.body["data"]["output"];
    assert_eq!(out["rule"], "approved", "{out}");
    assert_eq!(out["income_cap"], 432000, "{out}");
    assert_eq!(out["loan_amount"], 250000, "{out}");
    assert!(out["figures"]["gross_yearly_income"].is_number(), "{out}");
    assert!(
        out["monthly_payment"].is_number() && out["available_for_housing"].is_number(),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unavailable_source_ends_failed_before_any_ockto_session() {
    let h = Harness::start().await;
    let (status, _) = h
        .ockto_post("/control/knobs", json!({"unavailable_sources": ["UWV"]}))
        .await;
    assert_eq!(status, 200);
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 200000})).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "failed");
    assert_eq!(
        ended["reason"],
        "Ockto cannot collect the data now: source(s) UWV unavailable"
    );
    assert!(sim_sessions(&h).await.is_empty(), "no QR for a lost cause");

    // A source this workflow does not need does not stop it.
    h.ockto_post("/control/knobs", json!({"unavailable_sources": ["DUO"]}))
        .await;
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 200000})).await;
    ockto_session(&h, &id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn declined_by_the_rules() {
    let h = Harness::start().await;
    let ended = shared_with_profile(&h, 150000, "decline").await;
    assert_eq!(ended["outcome"], "declined");
    assert_eq!(
        ended["reason"],
        "disposable income is negative (-200 per month after fixed costs and debt payments)"
    );
    // Comfortable finances, but more than 4.5 times the yearly income.
    let ended = shared_with_profile(&h, 500000, "approve").await;
    assert_eq!(ended["outcome"], "declined");
    assert_eq!(
        ended["reason"],
        "requested loan 500000 exceeds the maximum of 4.5 x gross yearly income (432000)"
    );
    // An input without a positive loan amount is refused at creation by
    // the workflow's `input` schema (tests/input_schema.rs has the rest).
    for input in [json!({"loan_amount": "lots"}), json!({})] {
        let (status, p) = h
            .post(
                "/v1/sessions",
                json!({"workflow": "ockto-fast", "input": input}),
            )
            .await;
        assert_eq!(status, 422, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn review_near_the_limit() {
    let h = Harness::start().await;
    let ended = shared_with_profile(&h, 250000, "review").await;
    assert_eq!(ended["outcome"], "review");
    assert_eq!(
        ended["reason"],
        "requested loan 250000 is within 10% of a limit (income cap 270000, affordability cap 325709)"
    );
    let t = h.timeline(ended["id"].as_str().unwrap()).await;
    // Rule 3 handed it to a reviewer; undecided by the deadline, `review`.
    let opened: Vec<&Value> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "review.opened")
        .collect();
    assert_eq!(opened.len(), 1, "{t}");
    assert_eq!(opened[0]["step"], "review_near_limit");
    assert_eq!(opened[0]["data"]["group"], "mortgage");
    let rules: Vec<bool> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rule.evaluated" && e["step"] == "rules")
        .map(|e| e["data"]["result"].as_bool().unwrap())
        .collect();
    assert_eq!(rules, [false, false, false, true]);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_on_the_phone_is_canceled() {
    let h = Harness::start().await;
    // Before the scan (seed branch NOK) ...
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 100000})).await;
    let ockto = ockto_session(&h, &id).await;
    act(&h, &ockto, "refuse", json!({})).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "canceled");
    assert_eq!(
        ended["reason"],
        "the applicant refused to share their data in the Ockto app"
    );
    // ... and after it.
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 100000})).await;
    let ockto = ockto_session(&h, &id).await;
    act(&h, &ockto, "scan", json!({})).await;
    h.wait_session(&template_of(&h, &id).await, "the data wait", |s| {
        s["step"] == "wait_data"
    })
    .await;
    act(&h, &ockto, "refuse", json!({})).await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "canceled");
    // Nothing more can happen at Ockto.
    let (status, _) = h
        .ockto_post(&format!("/control/{ockto}/share"), json!({}))
        .await;
    assert_eq!(status, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn qr_never_scanned_expires() {
    let h = Harness::start().await;
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 100000})).await;
    ockto_session(&h, &id).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "expired");
    assert_eq!(
        ended["reason"],
        "the QR code was not scanned within 10 minutes"
    );
    let t = h.timeline(&template_of(&h, &id).await).await;
    assert!(accepted(&t).is_empty());

    // Ockto's own expiry is an `expired` end too, with its own reason.
    h.ockto_post("/control/knobs", json!({"scan_timeout_ms": 200}))
        .await;
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 100000})).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "expired");
    assert_eq!(
        ended["reason"],
        "the Ockto session expired at Ockto before the data was shared"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn data_never_shared_expires() {
    let h = Harness::start().await;
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 100000})).await;
    let ockto = ockto_session(&h, &id).await;
    act(&h, &ockto, "scan", json!({})).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "expired");
    assert_eq!(
        ended["reason"],
        "the data was not shared within 30 minutes of the scan"
    );
    assert_eq!(
        accepted(&h.timeline(&template_of(&h, &id).await).await),
        ["ockto.scanned"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_5xx_at_start_is_retried_with_one_ockto_session() {
    let h = Harness::start().await;
    let (status, _) = h
        .ockto_post(
            "/control/faults",
            json!({"rules": [{"match": {"method": "POST", "path": "/sessions"}, "times": 2, "fault": {"status": 503}}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 250000})).await;
    let ockto = ockto_session(&h, &id).await;
    act(&h, &ockto, "share", json!({"profile": "approve"})).await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "approved");
    assert_eq!(sim_sessions(&h).await.len(), 1, "one Ockto session");
    let starts: Vec<u64> = h
        .ockto_get("/control/requests")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/sessions")
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [503, 503, 201]);
    let t = h.timeline(&template_of(&h, &id).await).await;
    let call = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "provider.call" && e["step"] == "start_ockto")
        .unwrap();
    assert_eq!(call["data"]["attempts"].as_array().unwrap().len(), 3);
    // Shared straight from CREATED: the scan is emitted first, in order.
    assert_eq!(accepted(&t), ["ockto.scanned", "ockto.data_received"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_with_the_simulators_ca() {
    let h = Harness::start_with(Options {
        ockto_tls: common::OcktoTls::ClientCert,
        ..Default::default()
    })
    .await;
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 250000})).await;
    let ockto = ockto_session(&h, &id).await;
    act(&h, &ockto, "scan", json!({})).await;
    act(&h, &ockto, "share", json!({"profile": "approve"})).await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "approved");
    let tls = h.ockto_get("/control/tls").await;
    assert_eq!(tls["rejected"], 0, "{tls}");
    // The plain listener no longer serves the API.
    let r = h
        .http
        .get(h.ockto("/sources/availability?ocktoType=P"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

async fn certificate_refused(tls: common::OcktoTls, expected: &str) {
    let h = Harness::start_with(Options {
        ockto_tls: tls,
        ..Default::default()
    })
    .await;
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 250000})).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "failed");
    let reason = ended["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "ockto.sources failed: GET /sources/availability: client certificate rejected by the Ockto endpoint (TLS alert"
        ),
        "{reason}"
    );
    assert!(reason.contains(expected), "{reason}");
    // Not retried: a certificate problem is configuration, not a passing fault.
    let t = h.timeline(&template_of(&h, &id).await).await;
    let call = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "provider.call")
        .unwrap();
    assert_eq!(call["data"]["attempts"].as_array().unwrap().len(), 1);
    assert!(t["entries"].as_array().unwrap().iter().any(|e| {
        e["kind"] == "call.failed"
            && e["data"]["error"]
                .as_str()
                .unwrap()
                .contains("client certificate rejected")
    }));
    let seen = eventually("the simulator's refused handshake", 10, || async {
        let tls = h.ockto_get("/control/tls").await;
        (tls["rejected"].as_u64().unwrap() >= 1).then_some(tls)
    })
    .await;
    assert!(seen["last_error"].is_string());
    assert!(sim_sessions(&h).await.is_empty());
    let log = h.server_log();
    assert!(!log.contains("BEGIN"), "no key material in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_client_certificate_fails_clearly() {
    certificate_refused(
        common::OcktoTls::NoClientCert,
        "no client certificate is configured ([ockto] client_cert and client_key)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_client_certificate_fails_clearly() {
    certificate_refused(
        common::OcktoTls::WrongClientCert,
        "the configured certificate ([ockto] client_cert) is not accepted",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_qr_reaches_the_browser_and_no_secret_leaks() {
    let h = Harness::start().await;
    h.ockto_post("/control/knobs", json!({"rotate_qr_ms": 300}))
        .await;
    let (id, secret) = start(&h, "ockto-fast", json!({"loan_amount": 250000})).await;
    let ockto = ockto_session(&h, &id).await;
    let first = client_view(&h, &id, &secret).await;
    let rotated = eventually("a rotated QR code in the client view", 10, || {
        let h = &h;
        let id = id.clone();
        let secret = secret.clone();
        async move {
            let v = client_view(h, &id, &secret).await;
            v["step"]["present"]["link"]
                .as_str()
                .is_some_and(|l| l.contains("?v="))
                .then_some(v)
        }
    })
    .await;
    assert_ne!(
        first["step"]["present"]["svg"],
        rotated["step"]["present"]["svg"]
    );
    assert_svg(rotated["step"]["present"]["svg"].as_str().unwrap());
    let timeline = h.timeline(&template_of(&h, &id).await).await;
    assert!(
        timeline["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "present.updated")
    );

    // Without or with a wrong secret: problem JSON, never the code.
    let r = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{id}/qr.svg")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = h
        .http
        .get(h.url(&format!(
            "/v1/client/sessions/{id}/qr.svg?client_secret=nope"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    act(&h, &ockto, "scan", json!({})).await;
    act(&h, &ockto, "share", json!({"profile": "approve"})).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "approved");
    // After the QR step there is nothing to render.
    let r = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{id}/qr.svg")))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The event stream carried each rotated code as a `step` event.
    let stream = sse_text(&h, &id, &secret).await;
    let codes: std::collections::HashSet<String> = stream
        .split("\n\n")
        .filter(|block| block.contains("event: step"))
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter_map(|data| {
            let v: Value = serde_json::from_str(data).ok()?;
            v["step"]["present"]["svg"].as_str().map(str::to_string)
        })
        .collect();
    assert!(codes.len() >= 2, "{} QR codes on the stream", codes.len());

    // Collect everything the browser, the customer's backend and the logs saw.
    let mut seen = vec![
        serde_json::to_string(&client_view(&h, &id, &secret).await).unwrap(),
        stream,
        h.timeline(&id).await.to_string(),
        h.timeline(&template_of(&h, &id).await).await.to_string(),
        h.session(&id).await.to_string(),
        format!("{:?}", h.receiver.all()),
        h.server_log(),
    ];
    seen.push(std::fs::read_to_string(h.dir.path().join("sim.log")).unwrap_or_default());
    let payload = format!("/app/{ockto}");
    for (i, text) in seen.iter().enumerate() {
        for secret_value in [OCKTO_PASSWORD, OCKTO_PROVIDER_CODE] {
            assert!(!text.contains(secret_value), "secret in output {i}");
        }
        let basic = base64_basic();
        assert!(!text.contains(&basic), "Basic credentials in output {i}");
        // The ODM (personal data) never leaves the server.
        assert!(
            !text.contains("netMonthly") && !text.contains("fixedCosts"),
            "ODM in output {i}"
        );
        // The QR payload is for the client-secret holder only.
        if i >= 2 {
            assert!(!text.contains(&payload), "QR payload in output {i}");
        }
    }
}

fn base64_basic() -> String {
    use std::fmt::Write;
    // base64 of "user:password", without pulling a base64 crate into the tests.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{OCKTO_USERNAME}:{OCKTO_PASSWORD}");
    let mut out = String::new();
    for chunk in input.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = out.write_char(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The whole SSE stream of an ended session (it closes after `ended`).
async fn sse_text(h: &Harness, id: &str, secret: &str) -> String {
    h.http
        .get(h.url(&format!("/v1/client/sessions/{id}/events")))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn scripted_journeys_and_skipped_states() {
    let h = Harness::start().await;
    // testCaseId drives the whole journey at the simulator, no clicks.
    let (id, _) = start(
        &h,
        "ockto-fast",
        json!({"loan_amount": 250000, "test_case_id": "review"}),
    )
    .await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "review");
    let (id, _) = start(
        &h,
        "ockto-fast",
        json!({"loan_amount": 250000, "test_case_id": "error"}),
    )
    .await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "failed");
    assert_eq!(
        ended["reason"],
        "Ockto reported an error for the session (status ERROR)"
    );

    // Polls that never see SCANNED, and a stale answer after each change:
    // both waits still resolve, in order.
    h.ockto_post(
        "/control/knobs",
        json!({"skip_scanned": true, "stale_status": true}),
    )
    .await;
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 250000})).await;
    let ockto = ockto_session(&h, &id).await;
    act(&h, &ockto, "scan", json!({})).await;
    act(&h, &ockto, "share", json!({"profile": "approve"})).await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "approved");
    assert_eq!(
        accepted(&h.timeline(&template_of(&h, &id).await).await),
        ["ockto.scanned", "ockto.data_received"]
    );

    // An unreadable result is retried until the step's deadline, then failed.
    h.ockto_post(
        "/control/knobs",
        json!({"skip_scanned": false, "stale_status": false, "malformed_result": true}),
    )
    .await;
    let (id, _) = start(&h, "ockto-fast", json!({"loan_amount": 250000})).await;
    let ockto = ockto_session(&h, &id).await;
    act(&h, &ockto, "share", json!({"profile": "approve"})).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "failed");
    let reason = ended["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "ockto.result failed: GET /sessions/{ockto}/result answered 200 with a body that is not JSON (gave up after"
        )),
        "{reason}"
    );
}
