//! The Ockto simulator over real HTTP (and mutual TLS): wire shapes, the
//! phone's actions, knobs, faults and the request log; and the connector's
//! naming of TLS failures against it.
#![allow(clippy::unwrap_used)]

#[path = "../../gangway/tests/common/certs.rs"]
mod certs;

use axum::Router;
use gangway_server::connectors::ockto::OcktoConnector;
use gangway_server::providers::ockto::config::OcktoConfig;
use gangway_server::sim::ockto::{OcktoSim, OcktoSimConfig};
use gangway_server::sim::tls;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const USER: &str = "sim-user";
const PASSWORD: &str = "sim-password-0001";
const CODE: &str = "SIM-PROVIDER-CODE";

struct Sim {
    sim: OcktoSim,
    /// `http://127.0.0.1:port/sim/ockto`
    base: String,
    http: reqwest::Client,
}

async fn start() -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/sim/ockto", listener.local_addr().unwrap());
    let sim = OcktoSim::new(OcktoSimConfig {
        username: USER.into(),
        password: PASSWORD.into(),
        provider_code: CODE.into(),
        public_url: base.clone(),
    });
    let router = Router::new().nest("/sim/ockto", sim.router());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Sim {
        sim,
        base,
        http: reqwest::Client::new(),
    }
}

impl Sim {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.basic_auth(USER, Some(PASSWORD))
            .header("X-Ockto-Provider-Code", CODE)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.authed(self.http.request(method, self.url(path)));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn start_session(&self, extra: Value) -> (String, String) {
        let mut body = json!({"sessionId": "ses_test:1", "ocktoType": "P"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, resp) = self
            .call(reqwest::Method::POST, "/sessions", Some(body))
            .await;
        assert_eq!(status, 201, "{resp}");
        (
            resp["sessionId"].as_str().unwrap().to_string(),
            resp["qrCode"].as_str().unwrap().to_string(),
        )
    }

    async fn status(&self, id: &str) -> Value {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/sessions/{id}/status"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(&format!("/control{path}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

async fn wait_until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn wire_shapes_and_authentication() {
    let s = start().await;
    // No credentials: 401 with Ockto's error body; wrong provider code: 403.
    let r = s
        .http
        .get(s.url("/sources/availability?ocktoType=P"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let r = s
        .http
        .get(s.url("/sources/availability?ocktoType=P"))
        .basic_auth(USER, Some("wrong"))
        .header("X-Ockto-Provider-Code", CODE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .http
        .get(s.url("/sources/availability?ocktoType=P"))
        .basic_auth(USER, Some(PASSWORD))
        .header("X-Ockto-Provider-Code", "OTHER")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let (status, sources) = s
        .call(
            reqwest::Method::GET,
            "/sources/availability?ocktoType=P",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(sources["available"], true);
    assert!(
        sources["sources"]
            .as_array()
            .unwrap()
            .contains(&json!({"code": "DIGID", "available": true}))
    );

    let (id, qr) = s.start_session(json!({"consentCode": "001"})).await;
    assert!(
        id.starts_with("ock_") && id != "ses_test:1",
        "our own id: {id}"
    );
    assert_eq!(qr, s.url(&format!("/app/{id}")));
    assert_eq!(
        s.status(&id).await,
        json!({"sessionId": id, "status": "CREATED"})
    );
    let (status, body) = s
        .call(
            reqwest::Method::GET,
            &format!("/sessions/{id}/result"),
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "DATA_NOT_AVAILABLE");
    let (status, _) = s
        .call(reqwest::Method::GET, "/sessions/ock_nope/status", None)
        .await;
    assert_eq!(status, 404);

    for bad in [
        json!({"ocktoType": "P"}),
        json!({"sessionId": "x", "psd2AmountOfMonths": 13}),
        json!({"sessionId": "x", "requestDocuments": ["PASSPORT"]}),
        json!({"sessionId": "x", "testCaseId": "nope"}),
    ] {
        let (status, body) = s.call(reqwest::Method::POST, "/sessions", Some(bad)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "INVALID_REQUEST");
    }

    // Cancel.
    let (status, _) = s
        .call(reqwest::Method::DELETE, &format!("/sessions/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(s.status(&id).await["status"], "CANCELLED");
}

#[tokio::test]
async fn phone_actions_walk_the_statuses() {
    let s = start().await;
    let (id, qr) = s.start_session(json!({})).await;
    // The phone page behind the QR code.
    let r = s.http.get(&qr).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'nonce-")
    );
    let html = r.text().await.unwrap();
    for button in ["Scanned", "Share data", "Refuse"] {
        assert!(html.contains(button), "{button}");
    }
    assert_eq!(
        s.http
            .get(s.url("/app/ock_nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let (status, body) = s.control(&format!("/{id}/scan"), json!({})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SCANNED")));
    assert_eq!(s.status(&id).await["status"], "SCANNED");
    let (status, body) = s.control(&format!("/{id}/share"), json!({})).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("DATA_AVAILABLE"))
    );
    let (status, _) = s.control(&format!("/{id}/refuse"), json!({})).await;
    assert_eq!(status, 409, "terminal");

    // Share straight from CREATED passes SCANNED.
    let (id2, _) = s.start_session(json!({})).await;
    let (_, body) = s.control(&format!("/{id2}/share"), json!({})).await;
    let history: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    assert_eq!(history, ["CREATED", "SCANNED", "DATA_AVAILABLE"]);

    for (action, status) in [
        ("refuse", "CANCELLED"),
        ("expire", "EXPIRED"),
        ("error", "ERROR"),
    ] {
        let (id, _) = s.start_session(json!({})).await;
        s.control(&format!("/{id}/{action}"), json!({})).await;
        assert_eq!(s.status(&id).await["status"], status);
    }
    let (status, _) = s.control(&format!("/{id}/dance"), json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = s.control("/ock_nope/scan", json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = s
        .control(&format!("/{id}/share"), json!({"profile": "rich"}))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn results_vary_per_session_and_documents_download_once() {
    let s = start().await;
    let mut incomes = std::collections::HashSet::new();
    let mut first = None;
    for _ in 0..8 {
        let (id, _) = s.start_session(json!({})).await;
        s.control(&format!("/{id}/share"), json!({})).await;
        let (status, odm) = s
            .call(
                reqwest::Method::GET,
                &format!("/sessions/{id}/result"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(odm["odmVersion"], "v4_3");
        let person = &odm["persons"][0];
        assert_eq!(person["role"], "applicant");
        let gross = person["income"]["grossYearly"].as_u64().unwrap();
        assert!((24_000..=120_000).contains(&gross));
        assert!(person["debts"].as_array().unwrap().len() <= 3);
        assert!(person["employment"][0]["employer"].is_string());
        incomes.insert(gross);
        // The same session answers the same data.
        let (_, again) = s
            .call(
                reqwest::Method::GET,
                &format!("/sessions/{id}/result"),
                None,
            )
            .await;
        assert_eq!(odm, again);
        first.get_or_insert(id);
    }
    assert!(incomes.len() >= 4, "{incomes:?}");

    let (id, _) = s
        .start_session(json!({"requestDocuments": ["UPO", "PSD2"]}))
        .await;
    s.control(&format!("/{id}/share"), json!({"profile": "decline"}))
        .await;
    let (_, odm) = s
        .call(
            reqwest::Method::GET,
            &format!("/sessions/{id}/result"),
            None,
        )
        .await;
    assert_eq!(odm["persons"][0]["income"]["netMonthly"], 1950);
    let docs = odm["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    let url = docs[0]["url"].as_str().unwrap();
    let path = url.strip_prefix(&s.base).unwrap();
    let (status, _) = s.call(reqwest::Method::GET, path, None).await;
    assert_eq!(status, 200);
    let (status, body) = s.call(reqwest::Method::GET, path, None).await;
    assert_eq!(status, 410, "{body}");
}

/// The one documented example of the options (Rulecube's
/// `Ockto.startSession`, docs.rulecube.com, language reference "Ockto"): the
/// simulator takes them as they are, and hands back the ODM version asked for.
#[tokio::test]
async fn rulecube_start_session_example() {
    let s = start().await;
    let documented = json!({
        "consentCode": "001",
        "ocktoType": "P",
        "odmVersion": "v4_3",
        "requestDocuments": [],
        "disablePartner": true,
        "psd2InfoIncluded": true,
        "psd2AmountOfMonths": 12,
    });
    let (id, qr) = s.start_session(documented.clone()).await;
    assert!(!qr.is_empty());
    for (version, want) in [
        (json!("v4_2"), "v4_2"),
        (json!(""), "v4_3"),
        (json!(null), "v4_3"),
    ] {
        let mut options = documented.clone();
        options["odmVersion"] = version;
        let (id, _) = s.start_session(options).await;
        s.control(&format!("/{id}/share"), json!({})).await;
        let (status, odm) = s
            .call(
                reqwest::Method::GET,
                &format!("/sessions/{id}/result"),
                None,
            )
            .await;
        assert_eq!((status, odm["odmVersion"].as_str()), (200, Some(want)));
    }
    let status = s.status(&id).await;
    assert!(status["status"].is_string(), "{status}");
    // Not the documented `V#_#` form: refused at start.
    let mut options = documented;
    options["sessionId"] = json!("ses_test:2");
    options["odmVersion"] = json!("4.3");
    let (code, body) = s
        .call(reqwest::Method::POST, "/sessions", Some(options))
        .await;
    assert_eq!(code, 400, "{body}");
}

#[tokio::test]
async fn knobs_rotate_stale_skip_expire_and_break() {
    let s = start().await;
    let (status, _) = s
        .control(
            "/knobs",
            json!({"rotate_qr_ms": 50, "unavailable_sources": ["DIGID"]}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, sources) = s
        .call(
            reqwest::Method::GET,
            "/sources/availability?ocktoType=P",
            None,
        )
        .await;
    assert_eq!(sources["available"], false);
    let (id, qr) = s.start_session(json!({})).await;
    wait_until("a rotated QR code", async || {
        s.status(&id).await["qrCode"]
            .as_str()
            .is_some_and(|q| q != qr && q.starts_with(&qr))
    })
    .await;

    s.control("/reset", json!({})).await;
    s.control(
        "/knobs",
        json!({"stale_status": true, "skip_scanned": true}),
    )
    .await;
    let (id, _) = s.start_session(json!({})).await;
    s.control(&format!("/{id}/scan"), json!({})).await;
    // SCANNED is hidden, then the stale previous status answers once.
    assert_eq!(s.status(&id).await["status"], "CREATED");
    s.control(&format!("/{id}/share"), json!({})).await;
    assert_eq!(
        s.status(&id).await["status"],
        "CREATED",
        "stale: SCANNED shown as CREATED"
    );
    assert_eq!(s.status(&id).await["status"], "DATA_AVAILABLE");

    s.control("/knobs", json!({"stale_status": false, "skip_scanned": false, "scan_timeout_ms": 50, "share_timeout_ms": 50}))
        .await;
    let (id, _) = s.start_session(json!({})).await;
    wait_until("scan timeout", async || {
        s.status(&id).await["status"] == "EXPIRED"
    })
    .await;
    let (id, _) = s.start_session(json!({})).await;
    s.control(&format!("/{id}/scan"), json!({})).await;
    wait_until("share timeout", async || {
        s.status(&id).await["status"] == "EXPIRED"
    })
    .await;

    s.control(
        "/knobs",
        json!({"scan_timeout_ms": null, "malformed_result": true}),
    )
    .await;
    let (id, _) = s.start_session(json!({})).await;
    s.control(&format!("/{id}/share"), json!({})).await;
    let r = s
        .authed(s.http.get(s.url(&format!("/sessions/{id}/result"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());
    let (status, _) = s.control("/knobs", json!({"nope": 1})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn test_cases_script_whole_journeys() {
    let s = start().await;
    s.control("/knobs", json!({"script_step_ms": 20})).await;
    for (case, end) in [
        ("approve", "DATA_AVAILABLE"),
        ("refuse", "CANCELLED"),
        ("error", "ERROR"),
    ] {
        let (id, _) = s.start_session(json!({"testCaseId": case})).await;
        wait_until(case, async || s.status(&id).await["status"] == end).await;
        if case == "approve" {
            let (_, odm) = s
                .call(
                    reqwest::Method::GET,
                    &format!("/sessions/{id}/result"),
                    None,
                )
                .await;
            assert_eq!(odm["persons"][0]["income"]["grossYearly"], 96000);
        }
    }
    let (id, _) = s.start_session(json!({"testCaseId": "never_scan"})).await;
    assert_eq!(s.sim.session(&id).unwrap().status, "CREATED");
}

#[tokio::test]
async fn faults_and_a_request_log_without_secrets() {
    let s = start().await;
    let (status, _) = s
        .control(
            "/faults",
            json!({"rules": [{"match": {"method": "POST", "path": "/sessions"}, "times": 1, "fault": {"status": 503}}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s
        .call(
            reqwest::Method::POST,
            "/sessions",
            Some(json!({"sessionId": "a"})),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    let (id, _) = s.start_session(json!({})).await;
    // A rule for one session only, by reference.
    s.control(
        "/faults",
        json!({"rules": [{"match": {"path": "/sessions/*/status", "ref": id}, "fault": {"status": 500}}]}),
    )
    .await;
    let (status, _) = s
        .call(
            reqwest::Method::GET,
            &format!("/sessions/{id}/status"),
            None,
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(s.status(&id).await["status"], "CREATED");
    let log: Value = s
        .http
        .get(s.url("/control/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log.as_array().unwrap();
    assert_eq!(entries[0]["status"], 503);
    assert!(
        entries
            .iter()
            .any(|e| e["status"] == 201 && e["ref"] == id.as_str())
    );
    let text = log.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains(CODE));
}

// ---------------------------------------------------------------------------
// Mutual TLS
// ---------------------------------------------------------------------------

struct TlsSim {
    sim: OcktoSim,
    /// `https://127.0.0.1:port/sim/ockto`
    base: String,
    pki: certs::TestPki,
}

async fn start_tls() -> TlsSim {
    let pki = certs::pki();
    let sim = OcktoSim::new(OcktoSimConfig {
        username: USER.into(),
        password: PASSWORD.into(),
        provider_code: CODE.into(),
        public_url: "http://127.0.0.1:9/sim/ockto".into(),
    });
    let config = tls::server_config(&tls::MtlsPem {
        cert: pki.server.cert.clone(),
        key: pki.server.key.clone(),
        client_ca: pki.ca.clone(),
    })
    .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = tls::MtlsListener::new(tcp, config, sim.rejections()).unwrap();
    let router = Router::new().nest("/sim/ockto", sim.router());
    tokio::spawn(async move { axum::serve(listener, router).await });
    TlsSim {
        sim,
        base: format!("https://127.0.0.1:{}/sim/ockto", addr.port()),
        pki,
    }
}

fn config(t: &TlsSim, client: Option<&certs::Pem>) -> OcktoConfig {
    OcktoConfig {
        base_url: t.base.clone(),
        username: USER.into(),
        password: PASSWORD.into(),
        provider_code: CODE.into(),
        client_cert: client.map(|c| c.cert.clone()),
        client_key: client.map(|c| c.key.clone()),
        ca_cert: Some(t.pki.ca.clone()),
        ockto_type: "P".into(),
        consent_code: None,
    }
}

fn connector(t: &TlsSim, client: Option<&certs::Pem>) -> OcktoConnector {
    OcktoConnector::new(Some(config(t, client)), Duration::from_secs(5))
}

#[tokio::test]
async fn mutual_tls_accepts_only_the_simulators_clients() {
    let t = start_tls().await;
    let good = connector(&t, Some(&t.pki.client));
    let out = good.sources(&json!({})).await.unwrap();
    assert_eq!(out.result["available"], true);
    let started = good.start(&json!({}), "ses_1:3").await.unwrap();
    let id = started.result["session_id"].as_str().unwrap().to_string();
    assert_eq!(t.sim.session(&id).unwrap().reference, "ses_1:3");
    assert_eq!(t.sim.rejections().count(), 0);

    let none = connector(&t, None).sources(&json!({})).await.unwrap_err();
    assert!(!none.transient, "not retried: {none}");
    assert!(
        none.message
            .contains("client certificate rejected by the Ockto endpoint")
            && none.message.contains("no client certificate is configured"),
        "{}",
        none.message
    );
    let wrong = connector(&t, Some(&t.pki.stranger))
        .sources(&json!({}))
        .await
        .unwrap_err();
    assert!(!wrong.transient);
    assert!(
        wrong
            .message
            .contains("client certificate rejected by the Ockto endpoint")
            && wrong.message.contains("is not accepted"),
        "{}",
        wrong.message
    );
    wait_until("two refused handshakes", async || {
        t.sim.rejections().count() >= 2
    })
    .await;
    for e in [&none, &wrong] {
        assert!(!e.message.contains("BEGIN") && !e.message.contains(PASSWORD));
        assert!(!e.record.to_string().contains(PASSWORD));
    }

    // A server certificate the connector does not trust is named as such.
    let untrusted = OcktoConnector::new(
        Some(OcktoConfig {
            ca_cert: None,
            ..config(&t, Some(&t.pki.client))
        }),
        Duration::from_secs(5),
    );
    let e = untrusted.sources(&json!({})).await.unwrap_err();
    assert!(
        e.message.contains("server certificate is not trusted"),
        "{}",
        e.message
    );
}
