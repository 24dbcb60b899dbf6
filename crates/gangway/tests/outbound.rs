//! Where outbound requests go (issue 18): values in a URL path stay one
//! segment, provider redirects stay on the configured origin, customer
//! webhooks go only to allowed addresses.
#![allow(clippy::unwrap_used)]

mod common;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use common::{Harness, Options};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

async fn score_path_session(h: &Harness, reference: &str) -> Value {
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-path", "reference": reference}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    h.wait_ended(s["id"].as_str().unwrap()).await
}

/// Finding 5: a session reference of `../../../admin` or `x?inj=1&q=2`,
/// interpolated into `path`, is one encoded path segment: it neither climbs
/// out of the service's prefix nor adds query parameters; `query` carries
/// its own, encoded.
#[tokio::test(flavor = "multi_thread")]
async fn path_values_are_one_segment_and_cannot_add_a_query() {
    let h = Harness::start().await;
    // An ordinary reference reads as before.
    let created: Value = h
        .http
        .post(h.sim("/v1/sessions"))
        .bearer_auth(common::SIM_API_KEY)
        .json(&json!({"reference": "r-path"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = created["id"].as_str().unwrap();
    let ok = score_path_session(&h, pid).await;
    assert_eq!(ok["outcome"], "approved", "{ok}");

    for (reference, path) in [
        ("../../../admin", "/v1/sessions/..%2F..%2F..%2Fadmin/score"),
        ("x?inj=1&q=2", "/v1/sessions/x%3Finj%3D1%26q%3D2/score"),
    ] {
        let ended = score_path_session(&h, reference).await;
        assert_eq!(ended["outcome"], "failed", "{ended}");
        let log = h.sim_requests().await;
        let reads: Vec<&Value> = log.iter().filter(|r| r["method"] == "GET").collect();
        assert!(
            reads
                .iter()
                .any(|r| r["path"] == path && r["query"] == json!(["ref"])),
            "the score simulator never saw GET {path}?ref=...: {log:#?}"
        );
        assert!(
            reads
                .iter()
                .all(|r| r["path"].as_str().unwrap().starts_with("/v1/sessions/")
                    && r["query"] == json!(["ref"])),
            "a read left the prefix or carried other parameters: {log:#?}"
        );
        let t = h.timeline(ended["id"].as_str().unwrap()).await;
        assert!(
            t.to_string()
                .contains(&format!("\"path\":\"/sim/score{path}\"")),
            "{t:#}"
        );
    }
}

/// A server on its own port that records every request's path and headers
/// and answers `302` to `location` when given one, else `200 {}`.
#[derive(Clone)]
struct Recorder {
    url: String,
    got: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

impl Recorder {
    async fn start(location: Option<String>) -> Recorder {
        let got: Arc<Mutex<Vec<(String, HeaderMap)>>> = Arc::default();
        let seen = got.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let seen = seen.clone();
            let location = location.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push((req.uri().path().to_string(), req.headers().clone()));
                match location {
                    Some(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
                    None => axum::Json(json!({})).into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Recorder { url, got }
    }

    fn requests(&self) -> Vec<(String, HeaderMap)> {
        self.got.lock().unwrap().clone()
    }
}

const KEYED_SECRET: &str = "keyed-service-api-key-000000001";

fn keyed_service() -> String {
    format!(
        "\n[http.services.keyed]\nbase_url = \"{{SIM_URL}}/sim/score\"\nheaders = {{ Authorization = \"Bearer {}\", X-Api-Key = \"{KEYED_SECRET}\" }}\n",
        common::SIM_API_KEY
    )
}

/// Finding 3: a provider that answers 302 to another origin (here another
/// local port) gets no request sent there, so its configured `X-Api-Key`
/// stays home; the refusal is a classified, permanent call failure in the
/// session's timeline. A redirect within the service's origin is followed.
#[tokio::test(flavor = "multi_thread")]
async fn provider_redirects_to_another_origin_are_refused_with_the_secret_kept() {
    let h = Harness::start_with(Options {
        extra_config: keyed_service(),
        ..Options::default()
    })
    .await;
    let thief = Recorder::start(None).await;
    let (st, body) = h
        .sim_post(
            "/control/faults",
            json!({"rules": [{"match": {"method": "POST", "path": "/v1/sessions"},
                "fault": {"status": 302, "location": format!("{}/steal", thief.url)}}]}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-keyed", "reference": "r-redirect"}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap();
    let ended = h.wait_ended(id).await;
    let stolen: Vec<String> = thief
        .requests()
        .iter()
        .filter(|(_, headers)| headers.get("x-api-key").is_some())
        .map(|(path, _)| path.clone())
        .collect();
    assert!(
        stolen.is_empty(),
        "the configured X-Api-Key reached another origin at {stolen:?}"
    );
    assert_eq!(ended["outcome"], "failed", "{ended}");
    let reason = ended["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("http.request failed: POST /sim/score/v1/sessions was redirected from ")
            && reason.contains(&format!("to {}, another origin: refused", thief.url)),
        "{reason}"
    );
    assert!(
        thief.requests().is_empty(),
        "a request followed the redirect: {:?}",
        thief.requests()
    );
    let t = h.timeline(id).await;
    let entries = t["entries"].as_array().unwrap();
    let call = entries
        .iter()
        .find(|e| e["kind"] == "provider.call")
        .expect("a provider.call entry");
    let attempts = call["data"]["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "a refused redirect is not retried: {call}"
    );
    assert_eq!(attempts[0]["error"], "redirect refused", "{call}");
    assert_eq!(attempts[0]["to"], thief.url.as_str(), "{call}");
    assert!(entries.iter().any(|e| e["kind"] == "call.failed"));
    assert!(!t.to_string().contains(KEYED_SECRET));

    // Within the origin, a redirect is followed (with its headers).
    h.sim_post(
        "/control/faults",
        json!({"rules": [{"match": {"method": "POST", "path": "/v1/sessions"},
            "fault": {"status": 307, "location": h.sim("/v1/sessions")}}]}),
    )
    .await;
    let (_, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-keyed", "reference": "r-same-origin"}),
        )
        .await;
    let ended = h.wait_ended(s["id"].as_str().unwrap()).await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
}

async fn deliveries(h: &Harness, id: &str, endpoint: &str) -> Vec<Value> {
    let (status, body) = h.get(&format!("/v1/sessions/{id}/deliveries")).await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["endpoint"] == endpoint)
        .cloned()
        .collect()
}

/// Finding 3: customer webhook deliveries follow no redirect, even within
/// an origin: a 3xx answer is a failed attempt and nothing reaches the
/// redirect's target.
#[tokio::test(flavor = "multi_thread")]
async fn customer_endpoint_redirects_are_not_followed() {
    let thief = Recorder::start(None).await;
    let redirector = Recorder::start(Some(format!("{}/steal", thief.url))).await;
    let endpoint = format!("{}/hooks", redirector.url);
    let h = Harness::start_with(Options {
        extra_config: format!(
            "\n[[webhooks.endpoints]]\nurl = \"{endpoint}\"\nsecret = \"{}\"\nevents = [\"session.ended\"]\n",
            common::RECEIVER_SECRET
        ),
        ..Options::default()
    })
    .await;
    let ended = score_path_session(&h, "r-hook").await;
    let id = ended["id"].as_str().unwrap();
    let got = common::eventually(
        "a failed attempt to the redirecting endpoint",
        20,
        || async {
            let d = deliveries(&h, id, &endpoint).await;
            d.first()
                .filter(|d| !d["attempt_log"].as_array().unwrap().is_empty())
                .cloned()
        },
    )
    .await;
    let first = &got["attempt_log"][0];
    assert_eq!(first["status_code"], 302, "{got}");
    assert_eq!(
        first["error"], "HTTP 302: redirects are not followed",
        "{got}"
    );
    assert_eq!(redirector.requests().len(), 1);
    assert!(thief.requests().is_empty(), "{:?}", thief.requests());
}

/// Finding 3: without an allowance, a customer endpoint whose name resolves
/// to a loopback address is refused when the delivery connects: a failed
/// attempt naming the address, and nothing reaches the receiver.
#[tokio::test(flavor = "multi_thread")]
async fn webhooks_to_loopback_names_are_refused_without_an_allowance() {
    let h = Harness::start_with(Options {
        allow_loopback_webhooks: false,
        receiver_host: "localhost",
        ..Options::default()
    })
    .await;
    let endpoint = h.receiver.url().replace("127.0.0.1", "localhost");
    let ended = score_path_session(&h, "r-private").await;
    let id = ended["id"].as_str().unwrap();
    let got = common::eventually("a refused attempt", 20, || async {
        let d = deliveries(&h, id, &endpoint).await;
        d.iter()
            .find(|d| !d["attempt_log"].as_array().unwrap().is_empty())
            .cloned()
    })
    .await;
    let first = &got["attempt_log"][0];
    assert_eq!(first["status_code"], Value::Null, "{got}");
    let error = first["error"].as_str().unwrap();
    assert!(
        error.starts_with("localhost is a loopback address (")
            && error.contains("webhooks.allowed_networks"),
        "{error}"
    );
    assert!(h.receiver.all().is_empty(), "{:?}", h.receiver.all());
}

/// Finding 3: an endpoint written as a loopback address without an
/// allowance stops the config from loading, with an error naming the key.
#[test]
fn loopback_endpoints_fail_the_config_without_an_allowance() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gangway.toml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "database_url = \"sqlite://{}/g.db\"\n[webhooks]\n{extra}\n[[webhooks.endpoints]]\nurl = \"http://127.0.0.1:9/hooks\"\nsecret = \"{}\"\n",
                dir.path().display(),
                common::RECEIVER_SECRET
            ),
        )
        .unwrap();
    };
    let keys = || {
        std::process::Command::new(common::BIN)
            .args(["migrate", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    write("");
    let out = keys();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("config key `webhooks.endpoints[0].url`: 127.0.0.1 is a loopback address"),
        "{stderr}"
    );
    write("allowed_networks = [\"127.0.0.1\"]");
    let out = keys();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
