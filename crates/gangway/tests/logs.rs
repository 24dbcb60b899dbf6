//! Logs as on-call reads them: the server's stderr in a file. No colour
//! codes there; `log.format = "json"` gives one JSON object per line with
//! the node, session and trace ids where known; the access log names the
//! key by its id and never carries a key, a client secret or a query.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

struct Server {
    _proc: common::Proc,
    url: String,
    key: String,
    log: PathBuf,
}

/// `gangway serve` on a SQLite file with the shipped workflows, an API
/// key, stderr into `server.log`, and `env` on top. Its score service is a
/// port nobody listens on, so calls fail and are retried, and logged.
fn serve(dir: &Path, env: &[(&str, &str)]) -> Server {
    let config = dir.join("gangway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{}\"\ndatabase_url = \"sqlite://{}/gangway.db\"\nworkflows_dir = \"{}\"\nencryption_key = \"dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=\"\n[engine]\nnode_id = \"node-logs-1\"\n[http.services.score]\nbase_url = \"http://127.0.0.1:{}\"\nheaders = {{ Authorization = \"Bearer provider-key-0001\" }}\n",
            common::free_port(),
            dir.display(),
            common::repo_root().join("workflows").display(),
            common::free_port(),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["migrate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(common::BIN)
        .args(["keys", "create", "--name", "logs", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let log = dir.join("server.log");
    let (proc, url) = common::spawn(
        &["serve", "--config", config.to_str().unwrap()],
        env,
        &log,
        "gangway listening on",
    );
    Server {
        _proc: proc,
        url,
        key,
        log,
    }
}

/// Waits until the log has a line `pred` accepts; returns the whole log.
async fn log_until(log: &Path, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(&pred) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {what} in the log:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates an http-score session and opens its event stream the way an
/// EventSource does, with the client secret in the query.
async fn session_traffic(s: &Server) -> (String, String) {
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/v1/sessions", s.url))
        .bearer_auth(&s.key)
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(&json!({"workflow": "http-score", "reference": "logs-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    let stream = http
        .get(format!(
            "{}/v1/client/sessions/{id}/events?client_secret={secret}",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    drop(stream);
    (id, secret)
}

/// Nothing that authenticates anything appears in the log.
fn assert_no_secrets(log: &str, s: &Server, client_secret: &str) {
    for (what, secret) in [
        ("API key", s.key.as_str()),
        ("API key hash", &gangway_server::ids::hash_secret(&s.key)),
        ("client secret", client_secret),
        ("provider key", "provider-key-0001"),
        ("query string", "client_secret="),
    ] {
        assert!(!log.contains(secret), "the log holds the {what}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_file_has_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &[]);
    let (id, _) = session_traffic(&s).await;
    let log = log_until(&s.log, "retried call", |l| {
        l.contains("provider call failed") && l.contains(&id)
    })
    .await;
    assert!(!log.contains('\u{1b}'), "colour codes in a file:\n{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn access_lines_name_the_route_and_key_id_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &[("GANGWAY_LOG__ACCESS", "true")]);
    let (_, secret) = session_traffic(&s).await;
    let log = log_until(&s.log, "access line", |l| {
        l.contains("gangway::access") && l.contains("/v1/client/sessions/{id}/events")
    })
    .await;
    let create = log
        .lines()
        .find(|l| l.contains("gangway::access") && l.contains("route=\"/v1/sessions\""))
        .unwrap_or_else(|| panic!("no access line for POST /v1/sessions:\n{log}"));
    assert!(
        create.contains("method=POST")
            && create.contains("status=201")
            && create.contains("key_id=\"key_"),
        "{create}"
    );
    assert_no_secrets(&log, &s, &secret);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_carry_node_session_and_trace_ids_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(
        dir.path(),
        &[
            ("GANGWAY_LOG__FORMAT", "json"),
            ("GANGWAY_LOG__ACCESS", "true"),
        ],
    );
    let (id, secret) = session_traffic(&s).await;
    // The engine retries the call to the closed port, naming the session.
    let log = log_until(&s.log, "retried call", |l| {
        l.contains("provider call failed") && l.contains(&id)
    })
    .await;
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        for field in ["timestamp", "level", "message", "target"] {
            assert!(l[field].is_string(), "{field} missing: {l}");
        }
    }
    let engine = lines
        .iter()
        .find(|l| l["message"] == "engine starting")
        .unwrap();
    assert_eq!(engine["node_id"], "node-logs-1", "{engine}");
    let retried = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with("provider call failed")
        })
        .unwrap();
    assert_eq!(retried["session_id"], id.as_str(), "{retried}");
    assert_eq!(retried["node_id"], "node-logs-1", "{retried}");
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "gangway::access")
        .collect();
    let create = access
        .iter()
        .find(|l| l["route"] == "/v1/sessions" && l["method"] == "POST")
        .unwrap();
    assert_eq!(create["status"], 201, "{create}");
    assert_eq!(create["trace_id"], TRACE_ID, "{create}");
    assert!(
        create["key_id"].as_str().unwrap().starts_with("key_"),
        "{create}"
    );
    assert!(create["latency_ms"].is_number(), "{create}");
    let stream = access
        .iter()
        .find(|l| l["route"] == "/v1/client/sessions/{id}/events")
        .unwrap();
    assert_eq!(stream["session_id"], id.as_str(), "{stream}");
    assert_eq!(stream["status"], 200, "{stream}");
    assert_no_secrets(&log, &s, &secret);
}
