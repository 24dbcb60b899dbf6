//! Integration tests of the built-in Incode Omni simulator, over real HTTP,
//! with an OAuth2 token endpoint and a webhook receiver in the test.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use gangway_server::sim::incode::{IncodeSim, IncodeSimConfig, IncodeWebhookAuth};
use serde_json::{Value, json};

const API_KEY: &str = "incode_test_api_key_0123456789";
const CLIENT_ID: &str = "incode-webhooks";
const CLIENT_SECRET: &str = "oauth_client_secret_abcdef";
const HEADER_NAME: &str = "X-Gangway-Webhook-Secret";
const HEADER_SECRET: &str = "static_header_secret_xyz";
const FRAMER: &str = "https://app.example.com";

const WALK: [&str; 5] = [
    "ID_VALIDATION_FINISHED",
    "POST_PROCESSING_FINISHED",
    "FACE_VALIDATION_FINISHED",
    "GOVERNMENT_VALIDATION_FINISHED",
    "ONBOARDING_FINISHED",
];

#[derive(Clone, Debug)]
struct Hook {
    body: Value,
    authorization: Option<String>,
    header_secret: Option<String>,
    accepted: bool,
}

#[derive(Clone, Debug)]
struct TokenRequest {
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

#[derive(Default)]
struct Receiver {
    /// Access tokens the token endpoint issued and still accepts.
    issued: Mutex<Vec<String>>,
    token_requests: Mutex<Vec<TokenRequest>>,
    hooks: Mutex<Vec<Hook>>,
    /// Answer 500 to this many webhooks before accepting again.
    fail_next: AtomicU32,
    /// Header mode (else OAuth2).
    header_mode: bool,
}

type Shared = Arc<Receiver>;

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn token_endpoint(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req = TokenRequest {
        authorization: header(&headers, "authorization"),
        content_type: header(&headers, "content-type"),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    r.token_requests.lock().unwrap().push(req.clone());
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if req.authorization.as_deref() != Some(expected.as_str())
        || req.body != "grant_type=client_credentials"
        || req.content_type.as_deref() != Some("application/x-www-form-urlencoded")
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let token = {
        let mut issued = r.issued.lock().unwrap();
        let token = format!(
            "at-{}-{}",
            issued.len() + 1,
            r.token_requests.lock().unwrap().len()
        );
        issued.push(token.clone());
        token
    };
    axum::Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}))
        .into_response()
}

async fn webhook_endpoint(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = header(&headers, "authorization");
    let header_secret = header(&headers, HEADER_NAME);
    let authorized = if r.header_mode {
        header_secret.as_deref() == Some(HEADER_SECRET)
    } else {
        authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| r.issued.lock().unwrap().iter().any(|i| i == t))
    };
    let failing = authorized
        && r.fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    r.hooks.lock().unwrap().push(Hook {
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        authorization,
        header_secret,
        accepted: authorized && !failing,
    });
    if !authorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    axum::Json(json!({"success": true})).into_response()
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, format!("http://{addr}"))
}

fn serve(listener: tokio::net::TcpListener, router: Router) {
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
}

struct Harness {
    /// `http://127.0.0.1:port/sim/incode`
    base: String,
    recv: Shared,
    http: reqwest::Client,
}

enum Auth {
    OAuth2,
    Header,
}

impl Harness {
    async fn start() -> Harness {
        Harness::start_with(Auth::OAuth2, vec![FRAMER.into()]).await
    }

    async fn start_with(auth: Auth, frame_ancestors: Vec<String>) -> Harness {
        let recv: Shared = Arc::new(Receiver {
            header_mode: matches!(auth, Auth::Header),
            ..Receiver::default()
        });
        let receiver = Router::new()
            .route("/token", post(token_endpoint))
            .route("/hook", post(webhook_endpoint))
            .with_state(recv.clone());
        let (listener, receiver_base) = bind().await;
        serve(listener, receiver);

        let (listener, sim_base) = bind().await;
        let base = format!("{sim_base}/sim/incode");
        let webhook_auth = match auth {
            Auth::OAuth2 => IncodeWebhookAuth::OAuth2 {
                token_url: format!("{receiver_base}/token"),
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
            },
            Auth::Header => IncodeWebhookAuth::Header {
                name: HEADER_NAME.into(),
                value: HEADER_SECRET.into(),
            },
        };
        let sim = IncodeSim::new(IncodeSimConfig {
            api_key: API_KEY.into(),
            webhook_url: format!("{receiver_base}/hook"),
            webhook_auth,
            public_url: format!("{base}/"),
            frame_ancestors,
        });
        serve(listener, Router::new().nest("/sim/incode", sim.router()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Harness { base, recv, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn start_raw(&self, key: Option<&str>, body: Value) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url("/omni/start"))
            .header("api-version", "1.0")
            .json(&body);
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        req.send().await.unwrap()
    }

    /// A new interview: (interviewId, token).
    async fn start_interview(&self, extra: Value) -> (String, String) {
        let mut body =
            json!({"configurationId": "flow-1", "countryCode": "ALL", "language": "en-US"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let resp = self.start_raw(Some(API_KEY), body).await;
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        (
            v["interviewId"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    async fn get0(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path)).header("api-version", "1.0");
        if let Some(token) = token {
            req = req.header("X-Incode-Hardware-Id", token);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn status(&self, token: &str) -> String {
        let (code, v) = self
            .get0("/0/omni/get/onboarding/status", Some(token))
            .await;
        assert_eq!(code, 200, "{v}");
        v["onboardingStatus"].as_str().unwrap().to_owned()
    }

    async fn score(&self, token: &str) -> Value {
        let (code, v) = self.get0("/0/omni/get/score", Some(token)).await;
        assert_eq!(code, 200, "{v}");
        v
    }

    async fn control_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(&format!("/control{path}")));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.control_raw(method, path, body).await;
        assert!((200..300).contains(&status), "control {path}: {status} {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.control(reqwest::Method::POST, path, Some(body)).await
    }

    async fn finish(&self, id: &str, result: &str) -> Value {
        self.post(&format!("/{id}/finish"), json!({"result": result}))
            .await
    }

    async fn knobs(&self, knobs: Value) -> Value {
        self.post("/knobs", knobs).await
    }

    async fn session(&self, id: &str) -> Value {
        self.control(reqwest::Method::GET, &format!("/sessions/{id}"), None)
            .await
    }

    fn hooks(&self) -> Vec<Hook> {
        self.recv.hooks.lock().unwrap().clone()
    }

    /// Statuses of the webhooks received for `id`, in arrival order.
    fn statuses(&self, id: &str) -> Vec<String> {
        self.hooks()
            .iter()
            .filter(|h| h.body["interviewId"] == id)
            .map(|h| h.body["onboardingStatus"].as_str().unwrap().to_owned())
            .collect()
    }

    fn token_requests(&self) -> Vec<TokenRequest> {
        self.recv.token_requests.lock().unwrap().clone()
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

fn walk() -> Vec<String> {
    WALK.iter().map(|s| (*s).to_owned()).collect()
}

fn is_incode_error(v: &Value, status: u64, path: &str) {
    assert!(v["timestamp"].as_i64().unwrap() > 0, "{v}");
    assert_eq!(v["status"], status, "{v}");
    assert!(v["error"].is_string(), "{v}");
    assert!(v["message"].is_string(), "{v}");
    assert_eq!(v["path"], path, "{v}");
}

#[tokio::test]
async fn start_url_and_unknown_status() {
    let h = Harness::start().await;
    let resp = h
        .start_raw(
            Some(API_KEY),
            json!({"configurationId": "flow-1", "countryCode": "ALL", "language": "en-US", "externalCustomerId": "gw-1"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("processing-time").is_some());
    let v: Value = resp.json().await.unwrap();
    let id = v["interviewId"].as_str().unwrap();
    assert_eq!(id.len(), 24);
    assert!(
        id.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(v["interviewCode"].as_str().unwrap().len(), 6);
    assert_eq!(v["env"], "demo");
    assert_eq!(v["existingSession"], false);
    assert!(v["clientId"].is_string());
    let token = v["token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let head: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(head["typ"], "JWT");
    let payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(payload["sub"], id);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let exp = payload["exp"].as_i64().unwrap();
    assert!(exp > now + 3500 && exp <= now + 3600, "{payload}");
    assert!(!parts[2].is_empty());

    let (code, url) = h.get0("/0/omni/onboarding-url", Some(token)).await;
    assert_eq!(code, 200);
    assert_eq!(url["url"], format!("{}/flow/{id}", h.base));
    // The optional clientId query is accepted.
    let (code, _) = h
        .get0("/0/omni/onboarding-url?clientId=gangway-sim", Some(token))
        .await;
    assert_eq!(code, 200);
    assert_eq!(h.status(token).await, "UNKNOWN");
    let score = h.score(token).await;
    assert_eq!(score["overall"]["status"], "UNKNOWN");

    // Incode documents no idempotency header: the same key makes a second interview.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let resp = h
            .http
            .post(h.url("/omni/start"))
            .header("api-version", "1.0")
            .header("x-api-key", API_KEY)
            .header("Idempotency-Key", "same")
            .json(&json!({"configurationId": "flow-1"}))
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap();
        ids.push(v["interviewId"].as_str().unwrap().to_owned());
    }
    assert_ne!(ids[0], ids[1]);
    let sessions = h.control(reqwest::Method::GET, "/sessions", None).await;
    assert_eq!(sessions.as_array().unwrap().len(), 3);
    assert!(h.hooks().is_empty(), "no webhook before progress");
}

#[tokio::test]
async fn pass_walks_statuses_with_oauth2_webhooks() {
    let h = Harness::start().await;
    let (id, token) = h
        .start_interview(json!({"externalCustomerId": "gw-ext-1", "redirectionUrl": "https://customer.example/done"}))
        .await;
    let done = h.finish(&id, "pass").await;
    assert_eq!(done["onboardingStatus"], "ONBOARDING_FINISHED");
    // Answered after the webhooks were sent: all five are in.
    let hooks = h.hooks();
    assert_eq!(h.statuses(&id), walk());
    let issued = h.recv.issued.lock().unwrap().clone();
    assert_eq!(issued.len(), 1);
    for hook in &hooks {
        assert!(hook.accepted);
        assert_eq!(
            hook.authorization.as_deref(),
            Some(format!("Bearer {}", issued[0]).as_str())
        );
        assert_eq!(hook.body["externalId"], "gw-ext-1");
        assert_eq!(hook.body.as_object().unwrap().len(), 3);
    }
    // One token request with the client's Basic credentials and the form body; cached after.
    let reqs = h.token_requests();
    assert_eq!(reqs.len(), 1);
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(
        reqs[0].authorization.as_deref(),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        reqs[0].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(reqs[0].body, "grant_type=client_credentials");

    assert_eq!(h.status(&token).await, "ONBOARDING_FINISHED");
    let score = h.score(&token).await;
    assert_eq!(score["overall"]["status"], "OK");
    assert!(score["overall"]["value"].is_string());
    assert_eq!(score["idValidation"]["overall"]["status"], "OK");
    for section in ["liveness", "faceRecognition", "idOcrConfidence"] {
        assert!(score[section].is_object(), "{section}");
    }
    // Reproducible: derived from the interviewId.
    assert_eq!(h.score(&token).await, score);

    let record = h.session(&id).await;
    let history: Vec<&str> = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(history[0], "UNKNOWN");
    assert_eq!(history[1..], WALK);
    assert_eq!(record["webhooks_sent"], 5);
    assert_eq!(record["webhooks_delivered"], 5);
    assert_eq!(record["starts"], 1);
    assert_eq!(record["tokens_issued"], 1);
    assert_eq!(record["score_status"], "OK");
    assert!(!record.to_string().contains(&token));

    // Already terminal.
    let (code, _) = h
        .control_raw(
            reqwest::Method::POST,
            &format!("/{id}/finish"),
            Some(json!({"result": "fail"})),
        )
        .await;
    assert_eq!(code, 409);

    // A second interview reuses the cached token; no externalId when none was given.
    let (id2, _) = h.start_interview(json!({})).await;
    h.finish(&id2, "pass").await;
    assert_eq!(h.token_requests().len(), 1);
    let hooks = h.hooks();
    let second: Vec<&Hook> = hooks
        .iter()
        .filter(|x| x.body["interviewId"] == id2)
        .collect();
    assert_eq!(second.len(), 5);
    assert!(
        second
            .iter()
            .all(|x| x.body.get("externalId").is_none() && x.accepted)
    );
}

#[tokio::test]
async fn fail_and_review_scores() {
    let h = Harness::start().await;
    let (id, token) = h.start_interview(json!({})).await;
    h.finish(&id, "fail").await;
    assert_eq!(h.statuses(&id), walk());
    let score = h.score(&token).await;
    assert_eq!(score["overall"]["status"], "FAIL");
    let leaves = score["idValidation"]["photoSecurityAndQuality"]
        .as_array()
        .unwrap();
    let tamper = leaves.iter().find(|l| l["key"] == "tamperCheck").unwrap();
    assert_eq!(tamper["status"], "FAIL");

    let (id, token) = h.start_interview(json!({})).await;
    h.finish(&id, "review").await;
    assert_eq!(h.statuses(&id), walk());
    assert_eq!(h.score(&token).await["overall"]["status"], "WARN");

    h.knobs(json!({"review_status": "MANUAL_PENDING"})).await;
    let (id, token) = h.start_interview(json!({})).await;
    h.finish(&id, "review").await;
    assert_eq!(h.score(&token).await["overall"]["status"], "MANUAL_PENDING");
}

#[tokio::test]
async fn manual_review_decisions() {
    let h = Harness::start().await;
    let (id, token) = h.start_interview(json!({})).await;
    // Not finished yet: nothing to review.
    let (code, _) = h
        .control_raw(
            reqwest::Method::POST,
            &format!("/{id}/review"),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(code, 409);
    h.finish(&id, "review").await;
    let (code, _) = h
        .control_raw(
            reqwest::Method::POST,
            &format!("/{id}/review"),
            Some(json!({"decision": "maybe"})),
        )
        .await;
    assert_eq!(code, 400);
    let v = h
        .post(&format!("/{id}/review"), json!({"decision": "approve"}))
        .await;
    assert_eq!(v["onboardingStatus"], "MANUAL_REVIEW_APPROVED");
    assert_eq!(h.status(&token).await, "MANUAL_REVIEW_APPROVED");
    assert_eq!(h.score(&token).await["overall"]["status"], "MANUAL_OK");
    let mut expected = walk();
    expected.push("MANUAL_REVIEW_APPROVED".into());
    assert_eq!(h.statuses(&id), expected);
    let (code, _) = h
        .control_raw(
            reqwest::Method::POST,
            &format!("/{id}/review"),
            Some(json!({"decision": "reject"})),
        )
        .await;
    assert_eq!(code, 409);

    let (id, token) = h.start_interview(json!({})).await;
    h.finish(&id, "review").await;
    h.post(&format!("/{id}/review"), json!({"decision": "reject"}))
        .await;
    assert_eq!(h.status(&token).await, "MANUAL_REVIEW_REJECTED");
    assert_eq!(h.score(&token).await["overall"]["status"], "MANUAL_FAIL");
}

#[tokio::test]
async fn abandon_and_expire() {
    let h = Harness::start().await;
    // Default: abandoning never expires by itself.
    let (id, token) = h.start_interview(json!({})).await;
    let v = h.finish(&id, "abandon").await;
    assert_eq!(v["onboardingStatus"], "UNKNOWN");
    assert_eq!(h.status(&token).await, "UNKNOWN");
    assert!(h.statuses(&id).is_empty());

    let knobs = h.knobs(json!({"abandon_expire_ms": 30})).await;
    assert_eq!(knobs["abandon_expire_ms"], 30);
    let (id, token) = h.start_interview(json!({})).await;
    h.finish(&id, "abandon").await;
    wait_until("EXPIRED webhook", async || {
        h.statuses(&id) == vec!["EXPIRED".to_owned()]
    })
    .await;
    assert_eq!(h.status(&token).await, "EXPIRED");
    assert_eq!(h.score(&token).await["overall"]["status"], "UNKNOWN");
    let (code, _) = h
        .control_raw(
            reqwest::Method::POST,
            &format!("/{id}/finish"),
            Some(json!({"result": "pass"})),
        )
        .await;
    assert_eq!(code, 409);

    // `null` clears the knob again.
    let knobs = h.knobs(json!({"abandon_expire_ms": null})).await;
    assert_eq!(knobs["abandon_expire_ms"], Value::Null);

    // expire: at once, with its webhook, before the answer.
    let (id, token) = h.start_interview(json!({})).await;
    let v = h.finish(&id, "expire").await;
    assert_eq!(v["onboardingStatus"], "EXPIRED");
    assert_eq!(h.statuses(&id), vec!["EXPIRED".to_owned()]);
    assert_eq!(h.status(&token).await, "EXPIRED");
}

#[tokio::test]
async fn control_errors() {
    let h = Harness::start().await;
    let (id, _) = h.start_interview(json!({})).await;
    let unknown = "0123456789abcdef01234567";
    let (code, _) = h
        .control_raw(
            reqwest::Method::POST,
            &format!("/{unknown}/finish"),
            Some(json!({"result": "pass"})),
        )
        .await;
    assert_eq!(code, 404);
    for bad in [json!({"result": "win"}), json!({}), json!("pass")] {
        let (code, v) = h
            .control_raw(reqwest::Method::POST, &format!("/{id}/finish"), Some(bad))
            .await;
        assert_eq!(code, 400, "{v}");
        assert!(v["error"].is_string());
    }
    for bad in [
        json!({"nope": 1}),
        json!({"review_status": "OK"}),
        json!({"duplicate": -1}),
        json!({"early": "yes"}),
    ] {
        let (code, v) = h
            .control_raw(reqwest::Method::POST, "/knobs", Some(bad))
            .await;
        assert_eq!(code, 400, "{v}");
    }
    let (code, _) = h
        .control_raw(
            reqwest::Method::POST,
            &format!("/{unknown}/expire-token"),
            None,
        )
        .await;
    assert_eq!(code, 404);
    let (code, _) = h
        .control_raw(reqwest::Method::GET, &format!("/sessions/{unknown}"), None)
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn api_version_key_and_token_checks() {
    let h = Harness::start().await;
    let (_, token) = h.start_interview(json!({})).await;

    // Missing api-version: 400 with Incode's error body.
    let resp = h
        .http
        .post(h.url("/omni/start"))
        .header("x-api-key", API_KEY)
        .json(&json!({"configurationId": "flow-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("processing-time").is_some());
    is_incode_error(&resp.json().await.unwrap(), 400, "/omni/start");
    let resp = h
        .http
        .get(h.url("/0/omni/get/score"))
        .header("api-version", "2.0")
        .header("X-Incode-Hardware-Id", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Missing configurationId: 400.
    let resp = h
        .start_raw(Some(API_KEY), json!({"countryCode": "ALL"}))
        .await;
    assert_eq!(resp.status(), 400);
    is_incode_error(&resp.json().await.unwrap(), 400, "/omni/start");

    // Wrong or missing API key: 403.
    for key in [Some("wrong-key"), None] {
        let resp = h.start_raw(key, json!({"configurationId": "flow-1"})).await;
        assert_eq!(resp.status(), 403);
        is_incode_error(&resp.json().await.unwrap(), 403, "/omni/start");
    }

    // Missing, unknown or tampered token: 401 on every /0/ path.
    let tampered = format!("{token}x");
    for path in [
        "/0/omni/onboarding-url",
        "/0/omni/get/onboarding/status",
        "/0/omni/get/score",
    ] {
        for t in [None, Some("garbage"), Some(tampered.as_str())] {
            let (code, v) = h.get0(path, t).await;
            assert_eq!(code, 401, "{path} {t:?}");
            is_incode_error(&v, 401, path);
        }
    }
    // The API key is no session token.
    let (code, _) = h.get0("/0/omni/get/score", Some(API_KEY)).await;
    assert_eq!(code, 401);

    // A start for an unknown interview.
    let resp = h
        .start_raw(
            Some(API_KEY),
            json!({"configurationId": "flow-1", "interviewId": "0123456789abcdef01234567"}),
        )
        .await;
    assert_eq!(resp.status(), 404);

    // token_ttl_s: 0 issues tokens that are already expired.
    h.knobs(json!({"token_ttl_s": 0})).await;
    let (_, expired) = h.start_interview(json!({})).await;
    let (code, v) = h
        .get0("/0/omni/get/onboarding/status", Some(&expired))
        .await;
    assert_eq!(code, 401);
    assert_eq!(v["message"], "Token expired");
}

#[tokio::test]
async fn expire_token_then_renew_with_interview_id() {
    let h = Harness::start().await;
    let (id, old) = h.start_interview(json!({})).await;
    assert_eq!(h.status(&old).await, "UNKNOWN");
    let v = h.post(&format!("/{id}/expire-token"), json!({})).await;
    assert_eq!(v["revoked"], 1);
    let (code, _) = h.get0("/0/omni/get/onboarding/status", Some(&old)).await;
    assert_eq!(code, 401);

    let resp = h
        .start_raw(
            Some(API_KEY),
            json!({"configurationId": "flow-1", "interviewId": id}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["interviewId"], id.as_str());
    assert_eq!(v["existingSession"], true);
    let fresh = v["token"].as_str().unwrap();
    assert_ne!(fresh, old);
    assert_eq!(h.status(fresh).await, "UNKNOWN");
    let (code, _) = h.get0("/0/omni/get/onboarding/status", Some(&old)).await;
    assert_eq!(code, 401, "the revoked token stays revoked");
    let record = h.session(&id).await;
    assert_eq!(record["starts"], 2);
    assert_eq!(record["tokens_issued"], 2);
    assert_eq!(
        h.control(reqwest::Method::GET, "/sessions", None)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn duplicate_drop_reorder_and_shuffle() {
    let h = Harness::start().await;
    h.knobs(json!({"duplicate": 1})).await;
    let (id, _) = h.start_interview(json!({})).await;
    h.finish(&id, "pass").await;
    let doubled: Vec<String> = WALK
        .iter()
        .flat_map(|s| [(*s).to_owned(), (*s).to_owned()])
        .collect();
    assert_eq!(h.statuses(&id), doubled);
    let record = h.session(&id).await;
    assert_eq!(record["webhooks_sent"], 10);
    assert_eq!(record["webhooks_delivered"], 10);

    let knobs = h.knobs(json!({"duplicate": 0, "drop": true})).await;
    assert_eq!(knobs["drop"], true);
    assert_eq!(knobs["duplicate"], 0);
    let (id, token) = h.start_interview(json!({})).await;
    h.finish(&id, "pass").await;
    assert!(h.statuses(&id).is_empty());
    assert_eq!(
        h.status(&token).await,
        "ONBOARDING_FINISHED",
        "only polling finds it"
    );
    let record = h.session(&id).await;
    assert_eq!(record["webhooks_sent"], 0);
    assert_eq!(record["webhooks_dropped"], 5);

    h.knobs(json!({"drop": false, "reorder": true})).await;
    let (id, _) = h.start_interview(json!({})).await;
    h.finish(&id, "pass").await;
    assert_eq!(
        h.statuses(&id),
        vec![WALK[1], WALK[0], WALK[3], WALK[2], WALK[4]]
    );

    h.knobs(json!({"reorder": false, "shuffle_statuses": true}))
        .await;
    let (id, _) = h.start_interview(json!({})).await;
    h.finish(&id, "pass").await;
    let got = h.statuses(&id);
    assert_eq!(got.len(), 5);
    assert_eq!(got[0], WALK[0]);
    assert_eq!(got[4], WALK[4]);
    let mut middle = got[1..4].to_vec();
    middle.sort();
    let mut expected: Vec<String> = WALK[1..4].iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(middle, expected);
}

#[tokio::test]
async fn step_delay_and_webhook_delay() {
    let h = Harness::start().await;
    h.knobs(json!({"step_delay_ms": 20})).await;
    let (id, token) = h.start_interview(json!({})).await;
    let v = h.finish(&id, "pass").await;
    assert_eq!(v["onboardingStatus"], "ID_VALIDATION_FINISHED");
    wait_until("the walk to end", async || h.statuses(&id).len() == 5).await;
    assert_eq!(h.statuses(&id), walk());
    assert_eq!(h.status(&token).await, "ONBOARDING_FINISHED");

    h.knobs(json!({"step_delay_ms": 0, "delay_ms": 400})).await;
    let (id, token) = h.start_interview(json!({})).await;
    let v = h.finish(&id, "pass").await;
    assert_eq!(v["onboardingStatus"], "ONBOARDING_FINISHED");
    assert_eq!(h.status(&token).await, "ONBOARDING_FINISHED");
    assert!(h.statuses(&id).is_empty(), "webhooks are late");
    wait_until("delayed webhooks", async || h.statuses(&id).len() == 5).await;
    assert_eq!(h.statuses(&id), walk(), "delayed webhooks keep their order");
}

#[tokio::test]
async fn early_webhooks_arrive_before_the_start_response() {
    let h = Harness::start().await;
    h.knobs(json!({"early": true})).await;
    let (id, token) = h
        .start_interview(json!({"externalCustomerId": "gw-early"}))
        .await;
    // Everything was delivered before the response revealed the interviewId.
    assert_eq!(h.statuses(&id), walk());
    assert!(
        h.hooks()
            .iter()
            .all(|x| x.accepted && x.body["externalId"] == "gw-early")
    );
    assert_eq!(h.status(&token).await, "ONBOARDING_FINISHED");
    assert_eq!(h.score(&token).await["overall"]["status"], "OK");
    // A renewal is no new interview: nothing more is sent.
    let resp = h
        .start_raw(
            Some(API_KEY),
            json!({"configurationId": "flow-1", "interviewId": id}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(h.statuses(&id).len(), 5);
}

#[tokio::test]
async fn bad_auth_sends_a_wrong_bearer_and_retries_once() {
    let h = Harness::start().await;
    h.knobs(json!({"bad_auth": true})).await;
    let (id, _) = h.start_interview(json!({})).await;
    h.finish(&id, "expire").await;
    let hooks = h.hooks();
    assert_eq!(hooks.len(), 2, "one retry, then given up");
    let issued = h.recv.issued.lock().unwrap().clone();
    for hook in &hooks {
        assert!(!hook.accepted);
        let bearer = hook
            .authorization
            .as_deref()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap();
        assert!(!bearer.is_empty());
        assert!(!issued.iter().any(|t| t == bearer));
    }
    let record = h.session(&id).await;
    assert_eq!(record["webhooks_sent"], 1);
    assert_eq!(record["webhook_attempts"], 2);
    assert_eq!(record["webhooks_delivered"], 0);
    assert_eq!(record["webhooks"][0]["http_status"], 401);
}

#[tokio::test]
async fn retry_once_and_token_refetch_on_401() {
    let h = Harness::start().await;
    // A 500 is retried once.
    h.recv.fail_next.store(1, Ordering::SeqCst);
    let (id, _) = h.start_interview(json!({})).await;
    h.finish(&id, "expire").await;
    let hooks = h.hooks();
    assert_eq!(hooks.len(), 2);
    assert!(!hooks[0].accepted && hooks[1].accepted);
    let record = h.session(&id).await;
    assert_eq!(record["webhooks_delivered"], 1);
    assert_eq!(record["webhooks"][0]["attempts"], 2);

    // The receiver forgets its tokens: the cached one gets 401, a new one is fetched.
    h.recv.issued.lock().unwrap().clear();
    let (id, _) = h.start_interview(json!({})).await;
    h.finish(&id, "expire").await;
    assert_eq!(h.token_requests().len(), 2);
    let last = h.hooks().last().cloned().unwrap();
    assert!(last.accepted);
    assert_eq!(h.session(&id).await["webhooks_delivered"], 1);
}

#[tokio::test]
async fn header_auth_mode() {
    let h = Harness::start_with(Auth::Header, vec![]).await;
    let (id, _) = h.start_interview(json!({})).await;
    h.finish(&id, "pass").await;
    assert_eq!(h.statuses(&id), walk());
    assert!(h.hooks().iter().all(|x| x.accepted
        && x.header_secret.as_deref() == Some(HEADER_SECRET)
        && x.authorization.is_none()));
    assert!(h.token_requests().is_empty());

    h.knobs(json!({"bad_auth": true})).await;
    let (id, _) = h.start_interview(json!({})).await;
    h.finish(&id, "expire").await;
    let hooks: Vec<Hook> = h
        .hooks()
        .into_iter()
        .filter(|x| x.body["interviewId"] == id)
        .collect();
    assert_eq!(hooks.len(), 2);
    assert!(
        hooks
            .iter()
            .all(|x| !x.accepted && x.header_secret.as_deref() != Some(HEADER_SECRET))
    );
}

#[tokio::test]
async fn fault_503_on_start() {
    let h = Harness::start().await;
    h.post(
        "/faults",
        json!({"rules": [{"match": {"method": "POST", "path": "/omni/start"}, "fault": {"status": 503}}]}),
    )
    .await;
    let resp = h
        .start_raw(Some(API_KEY), json!({"configurationId": "flow-1"}))
        .await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("processing-time").is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], 503);
    assert!(body["timestamp"].is_i64() && body["error"].is_string() && body["message"].is_string());
    assert!(
        h.control(reqwest::Method::GET, "/sessions", None)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    let (id, token) = h.start_interview(json!({})).await;
    h.status(&token).await;
    // Control calls are neither faulted nor logged.
    h.finish(&id, "pass").await;
    let log = h.control(reqwest::Method::GET, "/requests", None).await;
    let log = log.as_array().unwrap();
    let summary: Vec<(String, u64, Value)> = log
        .iter()
        .map(|e| {
            (
                format!(
                    "{} {}",
                    e["method"].as_str().unwrap(),
                    e["path"].as_str().unwrap()
                ),
                e["status"].as_u64().unwrap(),
                e["ref"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("POST /omni/start".to_owned(), 503, Value::Null),
            ("POST /omni/start".to_owned(), 200, json!(id)),
            (
                "GET /0/omni/get/onboarding/status".to_owned(),
                200,
                json!(id)
            ),
        ]
    );
}

#[tokio::test]
async fn hosted_page() {
    let h = Harness::start().await;
    let (id, token) = h
        .start_interview(json!({"redirectionUrl": "https://customer.example/done?x=\"1\""}))
        .await;
    let (_, url) = h.get0("/0/omni/onboarding-url", Some(&token)).await;
    let page_url = url["url"].as_str().unwrap().to_owned();
    let resp = h.http.get(&page_url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains(&format!("frame-ancestors {FRAMER}")), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap()
        .to_owned();
    let html = resp.text().await.unwrap();
    assert!(html.contains(&format!("<script nonce=\"{nonce}\">")));
    assert!(html.contains(&format!("<style nonce=\"{nonce}\">")));
    for (result, label) in [
        ("pass", "Pass"),
        ("fail", "Fail"),
        ("review", "Review"),
        ("abandon", "Abandon"),
    ] {
        assert!(
            html.contains(&format!("data-result=\"{result}\">{label}</button>")),
            "{label}"
        );
    }
    assert!(html.contains("Photograph your ID") && html.contains("Take a selfie"));
    assert!(
        html.contains("&quot;1&quot;"),
        "the redirect URL is escaped"
    );
    assert!(!html.contains(&token) && !html.contains(API_KEY));

    // The buttons' relative endpoint resolves to the control finish call.
    let endpoint = html
        .split("data-endpoint=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    let target = reqwest::Url::parse(&page_url)
        .unwrap()
        .join(endpoint)
        .unwrap();
    assert_eq!(target.as_str(), h.url(&format!("/control/{id}/finish")));
    let resp = h
        .http
        .post(target)
        .json(&json!({"result": "pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(h.status(&token).await, "ONBOARDING_FINISHED");

    // A fresh nonce per response; the page is not logged.
    let again = h.http.get(&page_url).send().await.unwrap();
    let csp2 = again.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(csp, csp2);
    let log = h.control(reqwest::Method::GET, "/requests", None).await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|e| !e["path"].as_str().unwrap().contains("flow"))
    );

    // Unknown interview: 404 page, still with the CSP.
    let resp = h
        .http
        .get(h.url("/flow/0123456789abcdef01234567"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors")
    );
    assert!(resp.text().await.unwrap().contains("not found"));

    // No configured origins: 'self' only.
    let h = Harness::start_with(Auth::OAuth2, vec![]).await;
    let (id, _) = h.start_interview(json!({})).await;
    let resp = h
        .http
        .get(h.url(&format!("/flow/{id}")))
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.ends_with("frame-ancestors 'self'"), "{csp}");
}

#[tokio::test]
async fn executive_ocr_and_delete() {
    let h = Harness::start().await;
    let resp = h
        .http
        .post(h.url("/executive/log-in"))
        .header("api-version", "1.0")
        .header("x-api-key", API_KEY)
        .json(&json!({"email": "ops@example.com", "password": "pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let exec: Value = resp.json().await.unwrap();
    let exec = exec["token"].as_str().unwrap().to_owned();
    let (id, token) = h.start_interview(json!({})).await;

    let ocr = async |tok: &str| {
        let resp = h
            .http
            .get(h.url(&format!("/omni/get/ocr-data?id={id}")))
            .header("api-version", "1.0")
            .header("x-api-key", API_KEY)
            .header("X-Incode-Hardware-Id", tok)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap())
    };
    assert_eq!(ocr(&exec).await, (200, json!({})));
    assert_eq!(
        ocr(&token).await.0,
        401,
        "a session token is no executive token"
    );
    h.finish(&id, "pass").await;
    let (code, data) = ocr(&exec).await;
    assert_eq!(code, 200);
    assert!(data["name"]["fullName"].is_string() && data["birthDate"].is_i64());
    assert_eq!(ocr(&exec).await.1, data, "reproducible");

    let resp = h
        .http
        .get(h.url("/omni/finish-status"))
        .header("api-version", "1.0")
        .header("x-api-key", API_KEY)
        .header("X-Incode-Hardware-Id", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["onboardingStatus"],
        "ONBOARDING_FINISHED"
    );

    let resp = h
        .http
        .delete(h.url("/omni/interviews"))
        .header("api-version", "1.0")
        .header("x-api-key", API_KEY)
        .header("X-Incode-Hardware-Id", &exec)
        .json(&json!({"ids": [id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["deleted"], 1);
    assert_eq!(h.get0("/0/omni/get/score", Some(&token)).await.0, 401);
    assert!(
        h.control(reqwest::Method::GET, "/sessions", None)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn request_log_never_contains_secrets() {
    let h = Harness::start().await;
    let (id, token) = h.start_interview(json!({})).await;
    h.get0("/0/omni/onboarding-url", Some(&token)).await;
    h.get0("/0/omni/get/score", Some(&token)).await;
    h.get0("/0/omni/get/score", Some(&format!("{token}-bad")))
        .await;
    h.start_raw(
        Some(&format!("{API_KEY}-wrong")),
        json!({"configurationId": API_KEY}),
    )
    .await;
    let resp = h
        .start_raw(
            Some(API_KEY),
            json!({"configurationId": "flow-1", "interviewId": id}),
        )
        .await;
    let renewed: Value = resp.json().await.unwrap();
    let renewed = renewed["token"].as_str().unwrap().to_owned();
    h.finish(&id, "pass").await;

    let text = h
        .http
        .get(h.url("/control/requests"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sessions = h
        .http
        .get(h.url("/control/sessions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for t in [&text, &sessions] {
        assert!(!t.contains(API_KEY));
        assert!(!t.contains(&token) && !t.contains(&renewed));
        assert!(!t.contains("eyJ"), "no JWT-shaped value");
        assert!(!t.contains(CLIENT_SECRET));
        assert!(!t.contains("Bearer"));
        for issued in h.recv.issued.lock().unwrap().iter() {
            assert!(!t.contains(issued.as_str()));
        }
    }
    let log: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(log.len(), 6);
    for entry in &log {
        let keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["at", "method", "path", "status", "ref"]);
    }
}

#[tokio::test]
async fn reset_forgets_everything() {
    let h = Harness::start().await;
    let (_, token) = h.start_interview(json!({})).await;
    h.knobs(json!({"early": true, "duplicate": 3})).await;
    h.post(
        "/faults",
        json!({"rules": [{"match": {}, "times": 5, "fault": {"status": 500}}]}),
    )
    .await;
    h.control(reqwest::Method::POST, "/reset", None).await;
    assert!(
        h.control(reqwest::Method::GET, "/sessions", None)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        h.control(reqwest::Method::GET, "/requests", None)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let knobs = h.control(reqwest::Method::GET, "/knobs", None).await;
    assert_eq!(
        knobs,
        json!({
            "step_delay_ms": 0, "shuffle_statuses": false, "review_status": "WARN",
            "abandon_expire_ms": null, "token_ttl_s": 3600, "duplicate": 0, "early": false,
            "reorder": false, "drop": false, "delay_ms": null, "bad_auth": false
        })
    );
    assert_eq!(h.get0("/0/omni/get/score", Some(&token)).await.0, 401);
    let (_, token) = h.start_interview(json!({})).await;
    assert_eq!(h.status(&token).await, "UNKNOWN");
    assert!(h.hooks().is_empty());
}
