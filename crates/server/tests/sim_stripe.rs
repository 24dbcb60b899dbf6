//! The Stripe Identity simulator over real HTTP, driven by Gangway's own
//! connector (create, retrieve, cancel, redact) and by plain requests for
//! what the connector never sends; its events checked by a receiver that
//! verifies `Stripe-Signature` with Gangway's verifier.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use gangway_server::api::inbound::verify_stripe_webhook;
use gangway_server::providers::Provider;
use gangway_server::providers::stripe::client::StripeConnector;
use gangway_server::providers::stripe::config::StripeConfig;
use gangway_server::sim::stripe::{StripeSim, StripeSimConfig};
use serde_json::{Value, json};

const KEY: &str = "sk_test_sim_stripe_0000000000001";
const SECRET: &str = "whsec_sim_stripe_00000000000001";

type Inbox = Arc<Mutex<Vec<(bool, Value)>>>;

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let valid = verify_stripe_webhook(
        &[SECRET.to_string()],
        Duration::from_secs(300),
        header,
        &body,
        now,
    )
    .is_ok();
    inbox
        .lock()
        .unwrap()
        .push((valid, serde_json::from_slice(&body).unwrap()));
    StatusCode::OK
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
    base: String,
    inbox: Inbox,
    http: reqwest::Client,
    connector: StripeConnector,
}

impl Harness {
    async fn start() -> Harness {
        let inbox = Inbox::default();
        let receiver = serve(
            Router::new()
                .route("/hook", post(receive))
                .with_state(inbox.clone()),
        )
        .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}/sim/stripe");
        let sim = StripeSim::new(StripeSimConfig {
            secret_key: KEY.into(),
            webhook_url: format!("{receiver}/hook"),
            webhook_secrets: vec![SECRET.into()],
            public_url: base.clone(),
            frame_ancestors: vec![],
        });
        let router = Router::new().nest("/sim/stripe", sim.router());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let connector = StripeConnector::new(
            Some(StripeConfig {
                base_url: base.clone(),
                secret_key: KEY.into(),
                webhook_secrets: vec![SECRET.into()],
                tolerance: Duration::from_secs(300),
                require_matching_selfie: true,
                return_url: None,
                api_version: None,
            }),
            Duration::from_secs(5),
        )
        .unwrap();
        Harness {
            base,
            inbox,
            http: reqwest::Client::new(),
            connector,
        }
    }

    async fn call(&self, action: &str, args: Value, key: &str) -> Value {
        match self.connector.call(action, &args, key).await {
            Ok(out) => out.result,
            Err(e) => panic!("{action}: {}", e.message),
        }
    }

    async fn events_of(&self, vs: &str, n: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got: Vec<(bool, Value)> = self
                .inbox
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, e)| e["data"]["object"]["id"] == vs)
                .cloned()
                .collect();
            if got.len() >= n {
                assert!(got.iter().all(|(valid, _)| *valid), "every event signed");
                return got
                    .iter()
                    .map(|(_, e)| e["type"].as_str().unwrap().to_string())
                    .collect();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{n} events of {vs}: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connector_drives_a_session_through_failure_retry_and_redaction() {
    let h = Harness::start().await;
    let created = h
        .call(
            "stripe.create",
            json!({"reference": "ses_1", "metadata": {"order": 7}}),
            "idem-1",
        )
        .await;
    let vs = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "requires_input");
    assert!(
        created["client_secret"]
            .as_str()
            .unwrap()
            .contains("_secret_")
    );
    // Same Idempotency-Key, same parameters: the same session.
    let again = h
        .call(
            "stripe.create",
            json!({"reference": "ses_1", "metadata": {"order": 7}}),
            "idem-1",
        )
        .await;
    assert_eq!(again["id"], vs.as_str());
    // Same key, other parameters: Stripe's idempotency error, permanent.
    let e = h
        .connector
        .call("stripe.create", &json!({"reference": "ses_2"}), "idem-1")
        .await
        .err()
        .unwrap();
    assert!(!e.transient);
    assert!(e.message.contains("HTTP 400"), "{}", e.message);

    let read = h.call("stripe.retrieve", json!({"id": vs}), "r").await;
    assert_eq!(read["event"], Value::Null, "nothing submitted yet");
    assert_eq!(read["verified_outputs"], Value::Null);

    // A fixable failure, then a pass.
    let (status, _) = control(
        &h,
        &format!("/control/sessions/{vs}/submit"),
        json!({"result": "requires_input", "code": "document_expired"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        h.events_of(&vs, 2).await,
        [
            "identity.verification_session.processing",
            "identity.verification_session.requires_input"
        ]
    );
    let failed = h.call("stripe.retrieve", json!({"id": vs}), "r").await;
    assert_eq!(failed["event"], "stripe.requires_input");
    assert_eq!(failed["error_class"], "fixable");
    assert_eq!(failed["last_error"]["code"], "document_expired");
    assert!(failed["attempt"].as_str().unwrap().starts_with("vr_"));
    assert!(failed["url"].is_string(), "a fresh link to try again");
    let (status, _) = control(
        &h,
        &format!("/control/sessions/{vs}/submit"),
        json!({"result": "verified"}),
    )
    .await;
    assert_eq!(status, 200);
    h.events_of(&vs, 4).await;
    let verified = h.call("stripe.retrieve", json!({"id": vs}), "r").await;
    assert_eq!(verified["event"], "stripe.verified");
    assert_eq!(verified["verified_outputs"]["last_name"], "Rosen");
    assert_ne!(verified["attempt"], failed["attempt"]);
    assert_eq!(verified["url"], Value::Null);

    // Too late to cancel: answered, not failed.
    let cancel = h.call("stripe.cancel", json!({"id": vs}), "c").await;
    assert_eq!(cancel["canceled"], false);
    assert_eq!(cancel["status"], "verified");

    // Redaction: processing in the answer, then redacted with its event.
    let redact = h.call("stripe.redact", json!({"id": vs}), "d").await;
    assert_eq!(redact["redaction_status"], "processing");
    assert_eq!(
        h.events_of(&vs, 5).await.last().unwrap(),
        "identity.verification_session.redacted"
    );
    let gone = h.call("stripe.retrieve", json!({"id": vs}), "r").await;
    assert_eq!(gone["event"], "stripe.redacted");
    assert_eq!(gone["redaction_status"], "redacted");
    assert_eq!(gone["verified_outputs"]["first_name"], "[redacted]");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_and_refusals_as_stripe_answers_them() {
    let h = Harness::start().await;
    let created = h.call("stripe.create", json!({}), "k1").await;
    let vs = created["id"].as_str().unwrap().to_string();
    let canceled = h.call("stripe.cancel", json!({"id": vs}), "c1").await;
    assert_eq!(canceled["canceled"], true);
    assert_eq!(
        h.events_of(&vs, 1).await,
        ["identity.verification_session.canceled"]
    );
    // A canceled session takes no submission.
    let (status, _) = control(
        &h,
        &format!("/control/sessions/{vs}/submit"),
        json!({"result": "verified"}),
    )
    .await;
    assert_eq!(status, 409);
    // Unknown codes are refused by the control API.
    let other = h.call("stripe.create", json!({}), "k2").await;
    let (status, _) = control(
        &h,
        &format!("/control/sessions/{}/submit", other["id"].as_str().unwrap()),
        json!({"result": "requires_input", "code": "made_up"}),
    )
    .await;
    assert_eq!(status, 400);

    // Without the key, with another key, an unknown session or path: Stripe's error body.
    let url = format!("{}/v1/identity/verification_sessions/{vs}", h.base);
    let r = h.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    let r = h
        .http
        .get(&url)
        .basic_auth(KEY, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the key as Basic user, as curl -u sends it"
    );
    let r = h
        .http
        .get(format!(
            "{}/v1/identity/verification_sessions/vs_nope",
            h.base
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "resource_missing"
    );
    let r = h
        .http
        .post(format!("{}/v1/identity/verification_sessions", h.base))
        .bearer_auth(KEY)
        .form(&[("type", "id_number")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = h
        .http
        .get(format!("{}/v1/nothing", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"].is_string());
    // The connector refuses an id that is not a session id before any request.
    let e = h
        .connector
        .call("stripe.retrieve", &json!({"id": "vs_1/../x"}), "r")
        .await
        .err()
        .unwrap();
    assert!(!e.transient);
}

async fn control(h: &Harness, path: &str, body: Value) -> (u16, Value) {
    let r = h
        .http
        .post(format!("{}{path}", h.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
