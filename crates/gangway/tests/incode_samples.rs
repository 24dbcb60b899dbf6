//! Incode's public sample backends, replayed against `gangway sim` as a new
//! user would point them at it. Each test sends the requests one sample
//! sends (method, path, query, headers and body as written down from its code
//! in docs/simulators.md; none of the samples' code is here) and checks the
//! response fields that sample reads:
//! - `Incode-Technologies-Example-Repos/backend-nodejs` (`index.js`);
//! - `Incode-Technologies-Example-Repos/python-samples` (`sample-server/Session.py`,
//!   `server.py`);
//! - `Incode-Technologies-Example-Repos/onboarding-lowcode-iframe`
//!   (`src/fake_backend.js`, run in the page, hence CORS and framing).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::{Proc, eventually, spawn};
use reqwest::Method;
use serde_json::{Value, json};

const API_KEY: &str = "incode-samples-api-key-000000001";
const CLIENT_SECRET: &str = "incode-samples-client-secret-001";
const FLOW_ID: &str = "sample-flow-id";
/// The page origin of the low-code sample (its Vite dev server).
const SAMPLE_ORIGIN: &str = "https://localhost:5173";

/// `gangway sim` with a stand-in for the samples' `/webhook` endpoint.
struct Sim {
    /// `http://127.0.0.1:port/sim/incode`
    base: String,
    http: reqwest::Client,
    /// Bodies of the onboarding-status webhooks the simulator sent.
    hooks: Arc<Mutex<Vec<Value>>>,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

async fn token_endpoint() -> axum::Json<Value> {
    axum::Json(json!({"access_token": "sample-hook-token", "expires_in": 3600}))
}

async fn webhook(State(hooks): State<Arc<Mutex<Vec<Value>>>>, body: Bytes) -> axum::Json<Value> {
    hooks
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    axum::Json(json!({"success": true}))
}

impl Sim {
    async fn start() -> Sim {
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/v1/webhooks/incode/token", post(token_endpoint))
            .route("/v1/webhooks/incode", post(webhook))
            .with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let dir = tempfile::tempdir().unwrap();
        let (proc, url) = spawn(
            &[
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--gangway-url",
                &receiver,
                // Only Incode is wanted: no other provider's flags.
                "--incode-api-key",
                API_KEY,
                "--incode-client-secret",
                CLIENT_SECRET,
                "--frame-ancestors",
                SAMPLE_ORIGIN,
            ],
            &[],
            &dir.path().join("sim.log"),
            "simulators listening on",
        );
        Sim {
            base: format!("{url}/sim/incode"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            hooks,
            _proc: proc,
            _dir: dir,
        }
    }

    /// One request as a sample sends it: `path` may carry a query (even an
    /// empty one, as `fetch(url + "?" + new URLSearchParams({}))` does).
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, String, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.body(body.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: {status} body is not JSON ({e}): {text:?}"));
        (status, content_type, value)
    }

    /// A 200 with a JSON body, as `doGet`/`doPost` and `r.json()` require.
    async fn ok(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Value {
        let (status, content_type, value) = self.send(method, path, headers, body).await;
        assert_eq!(status, 200, "{path}: {value}");
        assert!(content_type.starts_with("application/json"), "{path}");
        value
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/control{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "control {path}");
        resp.json().await.unwrap()
    }

    /// The README's curl for an admin token: `POST /executive/log-in`.
    async fn admin_token(&self) -> String {
        let v = self
            .ok(
                Method::POST,
                "/executive/log-in",
                &[
                    ("Content-Type", "application/json"),
                    ("api-version", "1.0"),
                    ("x-api-key", API_KEY),
                ],
                Some(r#"{"email": "ops@example.com", "password": "secret"}"#),
            )
            .await;
        v["token"].as_str().unwrap().to_owned()
    }

    /// The hosted flow is finished with Pass; returns the webhook that
    /// announced `ONBOARDING_FINISHED` (what the samples' `/webhook` reads).
    async fn pass(&self, interview_id: &str) -> Value {
        self.control(
            &format!("/{interview_id}/finish"),
            json!({"result": "pass"}),
        )
        .await;
        let hooks = self.hooks.clone();
        let id = interview_id.to_owned();
        eventually("the ONBOARDING_FINISHED webhook", 10, || {
            let hooks = hooks.clone();
            let id = id.clone();
            async move {
                hooks
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|h| {
                        h["interviewId"] == id.as_str()
                            && h["onboardingStatus"] == "ONBOARDING_FINISHED"
                    })
                    .cloned()
            }
        })
        .await
    }
}

// backend-nodejs `index.js`: `defaultHeader` and `adminHeader`.
fn default_header() -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".into()),
        ("x-api-key", API_KEY.into()),
        ("api-version", "1.0".into()),
    ]
}

fn with_token(
    mut headers: Vec<(&'static str, String)>,
    token: &str,
) -> Vec<(&'static str, String)> {
    headers.push(("X-Incode-Hardware-Id", token.to_owned()));
    headers
}

fn refs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn backend_nodejs() {
    let sim = Sim::start().await;
    let admin = sim.admin_token().await;
    let default = default_header();
    let admin_header = with_token(default_header(), &admin);
    let start_body = json!({"configurationId": FLOW_ID, "language": "en-US"}).to_string();

    // GET /start: `omni/start`, reads token and interviewId.
    let started = sim
        .ok(
            Method::POST,
            "/omni/start",
            &refs(&default),
            Some(&start_body),
        )
        .await;
    assert!(started["token"].is_string() && started["interviewId"].is_string());

    // GET /onboarding-url: start again, then `0/omni/onboarding-url?` with the token.
    let started = sim
        .ok(
            Method::POST,
            "/omni/start",
            &refs(&default),
            Some(&start_body),
        )
        .await;
    let token = started["token"].as_str().unwrap();
    let interview_id = started["interviewId"].as_str().unwrap();
    let session_header = with_token(default_header(), token);
    let url = sim
        .ok(
            Method::GET,
            "/0/omni/onboarding-url?",
            &refs(&session_header),
            None,
        )
        .await;
    assert!(url["url"].as_str().unwrap().contains(interview_id));

    // GET /onboarding-status: `omni/get/onboarding/status?id=` with adminHeader.
    let path = format!("/omni/get/onboarding/status?id={interview_id}");
    let status = sim.ok(Method::GET, &path, &refs(&admin_header), None).await;
    assert_eq!(status["onboardingStatus"], "UNKNOWN");

    // The user passes; POST /webhook reads onboardingStatus and interviewId.
    let hook = sim.pass(interview_id).await;
    let hooked_id = hook["interviewId"].as_str().unwrap();

    // POST /webhook: `omni/get/score?id=` with adminHeader, reads overall.status.
    let path = format!("/omni/get/score?id={hooked_id}");
    let score = sim.ok(Method::GET, &path, &refs(&admin_header), None).await;
    assert_eq!(
        score["overall"]["status"], "OK",
        "the sample logs 'User passed with OK'"
    );

    // GET /fetch-score: `omni/get/score?id=` with the session token (X-Token).
    let score = sim
        .ok(Method::GET, &path, &refs(&session_header), None)
        .await;
    assert_eq!(score["overall"]["status"], "OK");

    let status = sim
        .ok(
            Method::GET,
            &format!("/omni/get/onboarding/status?id={interview_id}"),
            &refs(&admin_header),
            None,
        )
        .await;
    assert_eq!(status["onboardingStatus"], "ONBOARDING_FINISHED");

    // POST /approve: score, then `omni/process/approve?interviewId=`, both with
    // the admin token and no API key (its `adminHeader` comments the key out).
    let approve_header = vec![
        ("Content-Type", "application/json".to_owned()),
        ("X-Incode-Hardware-Id", admin.clone()),
        ("api-version", "1.0".to_owned()),
    ];
    let score = sim
        .ok(Method::GET, &path, &refs(&approve_header), None)
        .await;
    assert_eq!(score["overall"]["status"], "OK");
    let approve_path = format!("/omni/process/approve?interviewId={hooked_id}");
    let identity = sim
        .ok(
            Method::POST,
            &approve_path,
            &refs(&approve_header),
            Some("{}"),
        )
        .await;
    assert_eq!(identity["success"], true);
    assert_eq!(identity["totalScore"], "OK");
    assert_eq!(identity["existingCustomer"], false);
    let uuid = identity["uuid"].as_str().unwrap();
    assert!(identity["token"].as_str().unwrap().split('.').count() == 3);
    let again = sim
        .ok(
            Method::POST,
            &approve_path,
            &refs(&approve_header),
            Some("{}"),
        )
        .await;
    assert_eq!(again["uuid"], uuid);
    assert_eq!(again["existingCustomer"], true);

    // POST /auth: a face login's three values, `omni/authentication/verify`
    // with adminHeader; the face-login page reads `verified`.
    let login = sim
        .control(&format!("/identities/{uuid}/login"), json!({}))
        .await;
    assert_eq!(login["faceMatch"], true);
    assert_eq!(login["customerId"], uuid);
    let attempt = json!({
        "transactionId": login["transactionId"],
        "token": login["token"],
        "interviewToken": login["interviewToken"],
    });
    let verified = sim
        .ok(
            Method::POST,
            "/omni/authentication/verify",
            &refs(&admin_header),
            Some(&attempt.to_string()),
        )
        .await;
    assert_eq!(verified["verified"], true);
    let mut forged = attempt.clone();
    forged["token"] = login["interviewToken"].clone();
    let verified = sim
        .ok(
            Method::POST,
            "/omni/authentication/verify",
            &refs(&admin_header),
            Some(&forged.to_string()),
        )
        .await;
    assert_eq!(
        verified["verified"], false,
        "a swapped token is not that login"
    );

    // POST /finish: `omni/finish-status?` with the session token.
    let finished = sim
        .ok(
            Method::GET,
            "/omni/finish-status?",
            &refs(&session_header),
            None,
        )
        .await;
    assert_eq!(finished["onboardingStatus"], "ONBOARDING_FINISHED");
}

#[tokio::test]
async fn python_sample_server() {
    let sim = Sim::start().await;
    let admin = sim.admin_token().await;
    // `requests.Session` headers: x-api-key and api-version; `json=` adds the content type.
    let base = vec![
        ("x-api-key", API_KEY.to_owned()),
        ("api-version", "1.0".to_owned()),
    ];
    let mut json_headers = base.clone();
    json_headers.push(("Content-Type", "application/json".to_owned()));

    // start(): reads interviewId, clientId and token.
    let body = json!({"countryCode": "ALL", "configurationId": FLOW_ID, "language": "en-US"});
    let started = sim
        .ok(
            Method::POST,
            "/omni/start",
            &refs(&json_headers),
            Some(&body.to_string()),
        )
        .await;
    let interview_id = started["interviewId"].as_str().unwrap();
    let client_id = started["clientId"].as_str().unwrap();
    let token = started["token"].as_str().unwrap();

    // generate_onboarding_link(): `0/omni/onboarding-url?clientId=` with the token.
    let session = with_token(json_headers.clone(), token);
    let url = sim
        .ok(
            Method::GET,
            &format!("/0/omni/onboarding-url?clientId={client_id}"),
            &refs(&session),
            None,
        )
        .await;
    assert!(url["url"].is_string());

    // The POST /approve webhook handler reads onboardingStatus and interviewId.
    let hook = sim.pass(interview_id).await;
    let hooked_id = hook["interviewId"].as_str().unwrap();

    // approve(): a fresh Session; get_scores() with the executive token reads
    // ["overall"]["status"], then process_approve() posts `{}`.
    let executive = with_token(base.clone(), &admin);
    let score = sim
        .ok(
            Method::GET,
            &format!("/omni/get/score?id={hooked_id}"),
            &refs(&executive),
            None,
        )
        .await;
    assert_eq!(score["overall"]["status"], "OK");
    let mut executive_json = executive.clone();
    executive_json.push(("Content-Type", "application/json".to_owned()));
    let identity = sim
        .ok(
            Method::POST,
            &format!("/omni/process/approve?interviewId={hooked_id}"),
            &refs(&executive_json),
            Some("{}"),
        )
        .await;
    assert_eq!(identity["success"], true);
    let uuid = identity["uuid"].as_str().unwrap();

    // auth_attempt_verify(): a fresh Session, API key only.
    let login = sim
        .control(&format!("/identities/{uuid}/login"), json!({}))
        .await;
    let attempt = json!({
        "transactionId": login["transactionId"],
        "token": login["token"],
        "interviewToken": login["interviewToken"],
    });
    let verified = sim
        .ok(
            Method::POST,
            "/omni/auth-attempt/verify",
            &refs(&json_headers),
            Some(&attempt.to_string()),
        )
        .await;
    assert_eq!(verified["verified"], true);
}

#[tokio::test]
async fn lowcode_iframe_fake_backend() {
    let sim = Sim::start().await;
    let default = default_header();
    // The page calls the API itself: the browser asks first (CORS preflight).
    let preflight = sim
        .http
        .request(Method::OPTIONS, format!("{}/omni/start", sim.base))
        .header("Origin", SAMPLE_ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,x-api-key,api-version,x-incode-hardware-id",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = |name: &str| {
        preflight
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert_eq!(allowed("access-control-allow-origin"), "*");
    for header in [
        "content-type",
        "x-api-key",
        "api-version",
        "x-incode-hardware-id",
    ] {
        assert!(
            allowed("access-control-allow-headers").contains(header),
            "{header}"
        );
    }

    // start(): `omni/start` with only configurationId, reads token.
    let body = json!({"configurationId": FLOW_ID}).to_string();
    let started = sim
        .ok(Method::POST, "/omni/start", &refs(&default), Some(&body))
        .await;
    let token = started["token"].as_str().unwrap();
    let interview_id = started["interviewId"].as_str().unwrap();
    let session = with_token(default_header(), token);

    // onboardingUrl(): `0/omni/onboarding-url`, reads url; the page frames it.
    let url = sim
        .ok(Method::GET, "/0/omni/onboarding-url", &refs(&session), None)
        .await;
    let page = sim
        .http
        .get(url["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains(&format!("frame-ancestors {SAMPLE_ORIGIN}")),
        "--frame-ancestors lets the sample page frame the flow: {csp}"
    );

    // fakeBackendStatus() polls `0/omni/get/onboarding/status`.
    let status = sim
        .ok(
            Method::GET,
            "/0/omni/get/onboarding/status",
            &refs(&session),
            None,
        )
        .await;
    assert_eq!(status["onboardingStatus"], "UNKNOWN");
    sim.pass(interview_id).await;
    let status = sim
        .ok(
            Method::GET,
            "/0/omni/get/onboarding/status",
            &refs(&session),
            None,
        )
        .await;
    assert_eq!(status["onboardingStatus"], "ONBOARDING_FINISHED");

    // fakeBackendScore(): `0/omni/get/score`, reads overall.status.
    let score = sim
        .ok(Method::GET, "/0/omni/get/score", &refs(&session), None)
        .await;
    assert_eq!(score["overall"]["status"], "OK");
}

/// The `/0/` reads take an executive token that names the interview, as the
/// real API does; a session token of another interview is refused.
#[tokio::test]
async fn zero_paths_take_an_executive_token() {
    let sim = Sim::start().await;
    let admin = sim.admin_token().await;
    let body = json!({"configurationId": FLOW_ID}).to_string();
    let started = sim
        .ok(
            Method::POST,
            "/omni/start",
            &refs(&default_header()),
            Some(&body),
        )
        .await;
    let interview_id = started["interviewId"].as_str().unwrap();
    let other = sim
        .ok(
            Method::POST,
            "/omni/start",
            &refs(&default_header()),
            Some(&body),
        )
        .await;
    let executive = [
        ("api-version", "1.0"),
        ("X-Incode-Hardware-Id", admin.as_str()),
    ];
    for path in ["/0/omni/get/onboarding/status", "/0/omni/get/score"] {
        let named = format!("{path}?id={interview_id}");
        sim.ok(Method::GET, &named, &executive, None).await;
        // An executive token must name the interview.
        let (status, _, body) = sim.send(Method::GET, path, &executive, None).await;
        assert_eq!((status, &body["status"]), (400, &json!(400)), "{body}");
        // Nor may a session token read another interview.
        let other_token = other["token"].as_str().unwrap();
        let own = [
            ("api-version", "1.0"),
            ("X-Incode-Hardware-Id", other_token),
        ];
        let (status, _, body) = sim.send(Method::GET, &named, &own, None).await;
        assert_eq!(status, 401, "{body}");
    }
    // The /omni/ reads with a session token want the API key.
    let session = [
        ("api-version", "1.0"),
        ("X-Incode-Hardware-Id", started["token"].as_str().unwrap()),
    ];
    let (status, _, body) = sim
        .send(
            Method::GET,
            &format!("/omni/get/score?id={interview_id}"),
            &session,
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // Approving an unfinished interview is refused with Incode's body.
    let path = format!("/omni/process/approve?interviewId={interview_id}");
    let (status, _, body) = sim.send(Method::POST, &path, &executive, Some("{}")).await;
    assert_eq!(
        (status, body["path"].as_str()),
        (400, Some("/omni/process/approve"))
    );
}

/// Every error under the mount, unknown paths and methods included, is
/// Incode's JSON error body (the Python sample calls `r.json()` on it).
#[tokio::test]
async fn errors_are_incode_json() {
    let sim = Sim::start().await;
    let h = [("api-version", "1.0"), ("x-api-key", API_KEY)];
    for (method, path, code) in [
        (Method::GET, "/omni/get/scores?id=x", 404),
        (Method::GET, "/nothing/here", 404),
        (Method::GET, "/control/nothing", 404),
        (Method::GET, "/omni/process/approve", 405),
        (Method::GET, "/omni/get/score?id=a&id=b", 400),
    ] {
        let (status, content_type, body) = sim.send(method, path, &h, None).await;
        assert_eq!(status, code, "{path}: {body}");
        assert!(content_type.starts_with("application/json"), "{path}");
        assert_eq!(body["status"], code, "{path}: {body}");
        for field in ["timestamp", "error", "message", "path"] {
            assert!(!body[field].is_null(), "{path}: {field} in {body}");
        }
    }
}

/// `--frame-ancestors` takes origins only: anything else is a clear error.
#[tokio::test]
async fn frame_ancestors_flag_rejects_non_origins() {
    let out = std::process::Command::new(common::BIN)
        .args([
            "sim",
            "--gangway-url",
            "http://127.0.0.1:9",
            "--score-api-key",
            "k",
            "--score-webhook-secret",
            "s",
            "--incode-api-key",
            "k",
            "--incode-client-secret",
            "s",
            "--frame-ancestors",
            "https://ok.example,https://bad.example/path; script-src *",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--frame-ancestors") && stderr.contains("is not an origin"),
        "{stderr}"
    );
}

/// `gangway sim` for Incode alone needs no other provider's flags, and does
/// not serve the providers it has no credentials for (issue 23 #11).
#[tokio::test(flavor = "multi_thread")]
async fn sim_serves_incode_without_score_flags() {
    let sim = Sim::start().await;
    let root = sim.base.trim_end_matches("/sim/incode");
    let score = sim
        .http
        .get(format!("{root}/sim/score/control/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        score.status(),
        404,
        "/sim/score is served without its flags"
    );
    let incode = sim
        .http
        .get(format!("{}/control/requests", sim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(incode.status(), 200);
}

/// Half of a provider's credentials is an error naming the missing flag.
#[tokio::test]
async fn sim_refuses_half_of_a_providers_credentials() {
    for (given, missing) in [
        (["--score-api-key", "k"], "--score-webhook-secret"),
        (["--incode-client-secret", "s"], "--incode-api-key"),
    ] {
        let out = std::process::Command::new(common::BIN)
            .args(["sim", "--gangway-url", "http://127.0.0.1:9"])
            .args(given)
            .env_remove("SIM_SCORE_API_KEY")
            .env_remove("SIM_SCORE_WEBHOOK_SECRET")
            .env_remove("SIM_INCODE_API_KEY")
            .env_remove("SIM_INCODE_CLIENT_SECRET")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{given:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(missing), "{given:?}: {stderr}");
    }
}
