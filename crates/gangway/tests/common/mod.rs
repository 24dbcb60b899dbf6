//! Test kit: starts the real `gangway` binary and the provider simulators as
//! processes on free ports with a fresh SQLite file, and a customer webhook
//! receiver in the test process. Tests talk HTTP only, and wait on conditions
//! with deadlines, never on sleeps.
#![allow(dead_code, clippy::unwrap_used)]

pub mod receiver;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gangway");
pub const SIM_API_KEY: &str = "sim-score-api-key-for-tests-0001";
pub const SIM_WEBHOOK_SECRET: &str = "sim-score-webhook-secret-0001";
pub const INCODE_API_KEY: &str = "incode-api-key-for-tests-000001";
pub const INCODE_CLIENT_SECRET: &str = "incode-client-secret-for-tests-01";
/// 32 bytes, base64: seals provider session tokens at rest.
pub const ENCRYPTION_KEY: &str = "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=";
pub const D360_API_KEY: &str = "d360-partner-api-key-for-tests-01";
pub const D360_DIRECT_API_KEY: &str = "d360-direct-api-key-for-tests-001";
pub const D360_WEBHOOK_TOKEN: &str = "d360-webhook-token-for-tests-0000000001";
/// The customer page origin the redirect page posts to.
pub const SHOP_ORIGIN: &str = "https://shop.example";
pub const RECEIVER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that is killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `gangway args...`, returns the process and the URL it printed
/// on the line starting with `marker`.
pub fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path, marker: &str) -> (Proc, String) {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("GANGWAY_LISTEN")
        .env_remove("GANGWAY_DATABASE_URL")
        .env("RUST_LOG", "info,sqlx=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(rest) = line.strip_prefix(&marker) {
                let _ = tx.send(rest.trim().to_string());
                sent = true;
            }
        }
    });
    let proc = Proc { child };
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "`gangway {}` did not start; log: {}",
                args.join(" "),
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
    (proc, url)
}

pub struct Options {
    pub retry_schedule: Vec<&'static str>,
    pub client_secret_ttl: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry_schedule: vec!["200ms", "400ms", "800ms", "1s", "1s", "1s"],
            client_secret_ttl: None,
        }
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub base: String,
    pub sim_url: String,
    pub api_key: String,
    pub receiver: receiver::Receiver,
    pub http: reqwest::Client,
    sim: Option<Proc>,
    server: Option<Proc>,
    config: PathBuf,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let receiver = receiver::Receiver::start(RECEIVER_SECRET).await;
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let (sim, sim_url) = spawn(
            &[
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--gangway-url",
                &base,
                "--score-api-key",
                SIM_API_KEY,
                "--score-webhook-secret",
                SIM_WEBHOOK_SECRET,
                "--incode-api-key",
                INCODE_API_KEY,
                "--incode-client-id",
                "incode-tests",
                "--incode-client-secret",
                INCODE_CLIENT_SECRET,
                "--dialog360-api-key",
                D360_API_KEY,
                "--dialog360-direct-api-key",
                D360_DIRECT_API_KEY,
                "--dialog360-webhook-token",
                D360_WEBHOOK_TOKEN,
            ],
            &[],
            &dir.path().join("sim.log"),
            "simulators listening on",
        );
        // The shipped workflows plus the tests' own (short deadlines).
        let wf_dir = dir.path().join("workflows");
        std::fs::create_dir_all(&wf_dir).unwrap();
        for src in [
            repo_root().join("workflows"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workflows"),
        ] {
            for entry in std::fs::read_dir(src).unwrap() {
                let p = entry.unwrap().path();
                if p.extension().is_some_and(|e| e == "yaml") {
                    std::fs::copy(&p, wf_dir.join(p.file_name().unwrap())).unwrap();
                }
            }
        }
        let schedule: Vec<String> = opts
            .retry_schedule
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect();
        let config = dir.path().join("gangway.toml");
        let text = format!(
            r#"listen = "127.0.0.1:{port}"
database_url = "sqlite://{db}"
workflows_dir = "{wf}"
encryption_key = "{ENCRYPTION_KEY}"

[client]
secret_ttl = "{ttl}"
allowed_origins = ["{SHOP_ORIGIN}"]

[webhooks]
retry_schedule = [{schedule}]
timeout = "2s"

[[webhooks.endpoints]]
url = "{recv}"
secret = "{RECEIVER_SECRET}"

[http.services.score]
base_url = "{sim_url}/sim/score"
headers = {{ Authorization = "Bearer {SIM_API_KEY}" }}

[incode]
base_url = "{sim_url}/sim/incode"
api_key = "{INCODE_API_KEY}"
configuration_id = "flow-tests"
webhook_client_id = "incode-tests"
webhook_client_secret = "{INCODE_CLIENT_SECRET}"

[dialog360]
base_url = "{sim_url}/sim/360dialog/api/v2"
hub_url = "{sim_url}/sim/360dialog"
webhook_token = "{D360_WEBHOOK_TOKEN}"
default_hub = "main"

[dialog360.hubs.main]
partner_id = "gangway-partner"
api_key = "{D360_API_KEY}"
payment = "partner"

[dialog360.hubs.direct]
partner_id = "gangway-direct"
api_key = "{D360_DIRECT_API_KEY}"
payment = "direct"

[http.webhooks.score]
service = "score"
secret = "{SIM_WEBHOOK_SECRET}"
signature_header = "X-Score-Signature"
signature_prefix = "sha256="
timestamp_header = "X-Score-Timestamp"
reference_field = "id"
event_field = "status"
"#,
            db = dir.path().join("gangway.db").display(),
            wf = wf_dir.display(),
            schedule = schedule.join(", "),
            ttl = opts.client_secret_ttl.unwrap_or("1h"),
            recv = receiver.url(),
        );
        std::fs::write(&config, text).unwrap();
        let out = Command::new(BIN)
            .args([
                "keys",
                "create",
                "--name",
                "tests",
                "--config",
                config.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "keys create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let api_key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let mut h = Harness {
            dir,
            port,
            base,
            sim_url,
            api_key,
            receiver,
            http: reqwest::Client::new(),
            sim: Some(sim),
            server: None,
            config,
        };
        h.start_server();
        h
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn start_server(&mut self) {
        let (proc, url) = spawn(
            &["serve", "--config", self.config.to_str().unwrap()],
            &[],
            &self.log_path(),
            "gangway listening on",
        );
        assert_eq!(url, self.base);
        self.server = Some(proc);
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9_server(&mut self) {
        if let Some(mut p) = self.server.take() {
            let _ = p.child.kill(); // SIGKILL on Unix
            let _ = p.child.wait();
        }
    }

    pub fn server_pid(&self) -> u32 {
        self.server
            .as_ref()
            .map(|p| p.child.id())
            .unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn sim(&self, path: &str) -> String {
        format!("{}/sim/score{}", self.sim_url, path)
    }

    pub fn d360(&self, path: &str) -> String {
        format!("{}/sim/360dialog{path}", self.sim_url)
    }

    pub async fn d360_post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.d360(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn d360_get(&self, path: &str) -> Value {
        self.http
            .get(self.d360(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn incode(&self, path: &str) -> String {
        format!("{}/sim/incode{}", self.sim_url, path)
    }

    pub async fn incode_post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.incode(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn incode_requests(&self) -> Vec<Value> {
        self.http
            .get(self.incode("/control/requests"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates an http-score session; returns its JSON (with client_secret).
    pub async fn create_score_session(&self, reference: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/sessions",
                json!({"workflow": "http-score", "reference": reference}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn session(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/sessions/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls until `pred` holds or the deadline passes (then panics with the last value).
    pub async fn wait_session(&self, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.session(id).await;
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; session: {s:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_ended(&self, id: &str) -> Value {
        self.wait_session(id, "the end", |s| s["status"] == "ended")
            .await
    }

    /// The provider session id of an http-score session, once started.
    pub async fn provider_id(&self, id: &str) -> String {
        let s = self
            .wait_session(id, "the provider session", |s| {
                s["providers"].as_array().is_some_and(|p| !p.is_empty())
            })
            .await;
        s["providers"][0]["provider_session_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.sim(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn sim_requests(&self) -> Vec<Value> {
        let r = self
            .http
            .get(self.sim("/control/requests"))
            .send()
            .await
            .unwrap();
        r.json::<Vec<Value>>().await.unwrap()
    }

    /// Completes a provider session with a given score (sends the webhook).
    pub async fn complete(&self, provider_id: &str, score: u64) {
        let (status, body) = self
            .sim_post(
                &format!("/control/{provider_id}/complete"),
                json!({"score": score}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    pub async fn timeline(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/sessions/{id}/timeline")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// Waits until `f` returns Some, or panics after `secs`.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
