//! Test kit: starts the real `gangway` binary and the provider simulators as
//! processes on free ports with a fresh database (a SQLite file, or a
//! PostgreSQL database of its own with `GANGWAY_TEST_BACKEND=postgres`), and
//! a customer webhook receiver in the test process. Tests talk HTTP only,
//! and wait on conditions with deadlines, never on sleeps.
#![allow(dead_code, clippy::unwrap_used)]

pub mod certs;
pub mod lb;
pub mod pg;
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
pub const STRIPE_SECRET_KEY: &str = "sk_test_gangway_tests_0000000001";
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_gangway_tests_000000000001";
/// A second signing secret Gangway accepts (a secret rotation in progress).
pub const STRIPE_WEBHOOK_SECRET_NEXT: &str = "whsec_gangway_tests_000000000002";
pub const OCKTO_USERNAME: &str = "gangway-tests";
pub const OCKTO_PASSWORD: &str = "ockto-password-for-tests-000001";
pub const OCKTO_PROVIDER_CODE: &str = "OCKTO-PROVIDER-CODE-TESTS-01";
/// 32 bytes, base64: seals provider session tokens at rest.
pub const ENCRYPTION_KEY: &str = "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=";
pub const D360_API_KEY: &str = "d360-partner-api-key-for-tests-01";
pub const D360_DIRECT_API_KEY: &str = "d360-direct-api-key-for-tests-001";
pub const D360_WEBHOOK_TOKEN: &str = "d360-webhook-token-for-tests-0000000001";
pub const OIH_HMAC_KEY: &str = "oih-hmac-key-for-tests-0000000001";
/// The customer page origin the redirect page posts to.
pub const SHOP_ORIGIN: &str = "https://shop.example";
pub const RECEIVER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `gangway keys create --name NAME [--scope S]... --config CONFIG`: the key.
pub fn create_key(config: &Path, name: &str, scopes: &[&str]) -> String {
    let mut args = vec![
        "keys",
        "create",
        "--name",
        name,
        "--config",
        config.to_str().unwrap(),
    ];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "keys create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A port free now, for a server started a moment later. Taken below the
/// kernel's ephemeral range (32768-60999): a port the kernel hands out
/// (`bind :0`) can be taken again by any outgoing connection before the
/// server binds it, which failed a CI run with "Address already in use".
/// Ports given out by this process are never given twice.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for attempt in 0..2000u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(attempt);
        let port = 20_000 + u16::try_from(h.finish() % 12_000).unwrap();
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
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

/// How the Ockto connector reaches the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcktoTls {
    /// Plain HTTP on the simulators' listener.
    Off,
    /// Mutual TLS with a client certificate of the simulator's CA.
    ClientCert,
    /// Mutual TLS required, but no client certificate configured.
    NoClientCert,
    /// Mutual TLS required, with a certificate of another CA.
    WrongClientCert,
}

pub struct Options {
    pub retry_schedule: Vec<&'static str>,
    pub client_secret_ttl: Option<&'static str>,
    /// `client.allowed_origins` (CORS on `/v1/client/*`).
    pub allowed_origins: Vec<&'static str>,
    pub ockto_tls: OcktoTls,
    /// Run on PostgreSQL whatever `GANGWAY_TEST_BACKEND` says.
    pub postgres: bool,
    /// Providers reach the nodes through a load balancer (`Harness::lb`).
    pub load_balancer: bool,
    /// `engine.poll_rate`; the default config's when `None`.
    pub poll_rate: Option<u32>,
    /// `engine.request_timeout` (e.g. "500ms"); the default config's when `None`.
    pub request_timeout: Option<&'static str>,
    /// `engine.shutdown_grace` (e.g. "2s"); the default config's when `None`.
    pub shutdown_grace: Option<&'static str>,
    /// More lines of the `[engine]` section (`node_id = "a"`, ...).
    pub engine_toml: &'static str,
    /// More TOML, appended to the config (e.g. a `[limits]` section).
    pub extra_toml: &'static str,
    /// `[oih] base_url` instead of the simulator's (a recording proxy).
    pub oih_base_url: Option<String>,
    /// Whether the config allows webhooks to 127.0.0.1 (the receiver).
    pub allow_loopback_webhooks: bool,
    /// The host of the receiver's URL in the config (it listens on 127.0.0.1).
    pub receiver_host: &'static str,
    /// Like `extra_toml`, built at run time (more endpoints, services, ...);
    /// `{SIM_URL}` stands for the simulators' base URL.
    pub extra_config: String,
    /// Top-level keys (before any section), e.g. `admin_listen = "..."`.
    pub top_config: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry_schedule: vec!["200ms", "400ms", "800ms", "1s", "1s", "1s"],
            client_secret_ttl: None,
            allowed_origins: Vec::new(),
            ockto_tls: OcktoTls::Off,
            postgres: false,
            load_balancer: false,
            poll_rate: None,
            request_timeout: None,
            shutdown_grace: None,
            engine_toml: "",
            extra_toml: "",
            oih_base_url: None,
            allow_loopback_webhooks: true,
            receiver_host: "127.0.0.1",
            extra_config: String::new(),
            top_config: String::new(),
        }
    }
}

/// `ockto-fast` and `ockto-session-fast`: the shipped `ockto-mortgage` and
/// its template with short deadlines and fast polling, derived from them so
/// that tests run the same steps and rules.
pub fn ockto_fast(shipped: &str, template: &str) -> (String, String) {
    let derive = |text: &str, swaps: &[(&str, &str)]| {
        let mut text = text.to_string();
        for (from, to) in swaps {
            assert!(text.contains(from), "the Ockto workflow lacks `{from}`");
            text = text.replace(from, to);
        }
        text
    };
    let parent = derive(
        shipped,
        &[
            ("id: ockto-mortgage", "id: ockto-fast"),
            ("run: ockto-session", "run: ockto-session-fast"),
            ("timeout: 45m", "timeout: 30s"),
            // The reviews' deadlines: undecided, the session ends `review`.
            ("timeout: 72h", "timeout: 1s"),
        ],
    );
    let child = derive(
        template,
        &[
            ("id: ockto-session", "id: ockto-session-fast"),
            ("timeout: 10m", "timeout: 3s"),
            ("timeout: 30m", "timeout: 3s"),
            ("timeout: 60s", "timeout: 8s"),
            ("timeout: 30s", "timeout: 8s"),
            ("every: 2s", "every: 100ms"),
            ("max_every: 10s", "max_every: 200ms"),
        ],
    );
    (parent, child)
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
    pub config: PathBuf,
    /// The config with `{PORT}` for the listen port, for more nodes.
    template: String,
    /// In front of every node when `Options::load_balancer`.
    pub lb: Option<lb::Lb>,
    /// Further nodes on the same database: `(port, config, process)`.
    pub nodes: Vec<(u16, PathBuf, Option<Proc>)>,
    /// Last, so that it is dropped after the processes using it.
    pub db: pg::TestDb,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let db = if opts.postgres {
            pg::TestDb::postgres().await
        } else {
            pg::TestDb::for_env(dir.path()).await
        };
        let receiver = receiver::Receiver::start(RECEIVER_SECRET).await;
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let lb = if opts.load_balancer {
            let lb = lb::Lb::start().await;
            lb.set_nodes(vec![base.clone()]);
            Some(lb)
        } else {
            None
        };
        let gangway_url = lb.as_ref().map_or(base.clone(), |l| l.url.clone());
        let mut sim_args: Vec<String> = [
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--gangway-url",
            &gangway_url,
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
            "--ockto-username",
            OCKTO_USERNAME,
            "--ockto-password",
            OCKTO_PASSWORD,
            "--ockto-provider-code",
            OCKTO_PROVIDER_CODE,
            "--dialog360-api-key",
            D360_API_KEY,
            "--dialog360-direct-api-key",
            D360_DIRECT_API_KEY,
            "--dialog360-webhook-token",
            D360_WEBHOOK_TOKEN,
            "--oih-hmac-key",
            OIH_HMAC_KEY,
            "--stripe-secret-key",
            STRIPE_SECRET_KEY,
            "--stripe-webhook-secret",
            STRIPE_WEBHOOK_SECRET,
            "--oih-not-found-delay-ms",
            "200",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // With mutual TLS the Ockto API moves to its own HTTPS port.
        let mut ockto_tls_url = None;
        let mut ockto_pem = String::new();
        if opts.ockto_tls != OcktoTls::Off {
            let pki = certs::pki();
            let write = |name: &str, text: &str| {
                let p = dir.path().join(name);
                std::fs::write(&p, text).unwrap();
                p.display().to_string()
            };
            let tls_port = free_port();
            sim_args.extend([
                "--ockto-tls-listen".to_string(),
                format!("127.0.0.1:{tls_port}"),
                "--ockto-tls-cert".to_string(),
                write("sim-server.pem", &pki.server.cert),
                "--ockto-tls-key".to_string(),
                write("sim-server.key", &pki.server.key),
                "--ockto-client-ca".to_string(),
                write("sim-ca.pem", &pki.ca),
            ]);
            ockto_tls_url = Some(format!("https://127.0.0.1:{tls_port}"));
            ockto_pem = format!("ca_cert = \"${{file:{}}}\"\n", write("ca.pem", &pki.ca));
            let client = match opts.ockto_tls {
                OcktoTls::ClientCert => Some(&pki.client),
                OcktoTls::WrongClientCert => Some(&pki.stranger),
                _ => None,
            };
            if let Some(c) = client {
                ockto_pem.push_str(&format!(
                    "client_cert = \"${{file:{}}}\"\nclient_key = \"${{file:{}}}\"\n",
                    write("client.pem", &c.cert),
                    write("client.key", &c.key)
                ));
            }
        }
        let arg_refs: Vec<&str> = sim_args.iter().map(String::as_str).collect();
        let (sim, sim_url) = spawn(
            &arg_refs,
            &[],
            &dir.path().join("sim.log"),
            "simulators listening on",
        );
        let ockto_base = ockto_tls_url.unwrap_or_else(|| sim_url.clone());
        // A secret from a file, as in production (`${file:...}`).
        let ockto_password = dir.path().join("ockto-password");
        std::fs::write(&ockto_password, OCKTO_PASSWORD).unwrap();
        let ockto_password = ockto_password.display();
        // The score key inside a longer string, as config.default.toml shows it.
        let score_key = dir.path().join("score-api-key");
        std::fs::write(&score_key, format!("{SIM_API_KEY}\n")).unwrap();
        let score_key = score_key.display();
        // The shipped workflows plus the tests' own (short deadlines).
        let wf_dir = dir.path().join("workflows");
        std::fs::create_dir_all(&wf_dir).unwrap();
        for src in [
            repo_root().join("workflows"),
            repo_root().join("workflows/templates"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workflows"),
        ] {
            for entry in std::fs::read_dir(src).unwrap() {
                let p = entry.unwrap().path();
                if p.extension().is_some_and(|e| e == "yaml") {
                    std::fs::copy(&p, wf_dir.join(p.file_name().unwrap())).unwrap();
                }
            }
        }
        let shipped =
            std::fs::read_to_string(repo_root().join("workflows/ockto-mortgage.yaml")).unwrap();
        let template =
            std::fs::read_to_string(repo_root().join("workflows/templates/ockto-session.yaml"))
                .unwrap();
        let (parent, child) = ockto_fast(&shipped, &template);
        std::fs::write(wf_dir.join("ockto-fast.yaml"), parent).unwrap();
        std::fs::write(wf_dir.join("ockto-session-fast.yaml"), child).unwrap();
        let schedule: Vec<String> = opts
            .retry_schedule
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect();
        let config = dir.path().join("gangway.toml");
        let engine_section = format!(
            "[engine]\n{}{}{}{}",
            opts.poll_rate
                .map_or(String::new(), |r| format!("poll_rate = {r}\n")),
            opts.request_timeout
                .map_or(String::new(), |t| format!("request_timeout = \"{t}\"\n")),
            opts.shutdown_grace
                .map_or(String::new(), |t| format!("shutdown_grace = \"{t}\"\n")),
            opts.engine_toml,
        );
        let template = format!(
            r#"listen = "127.0.0.1:{{PORT}}"
database_url = "{db}"
workflows_dir = "{wf}"
encryption_key = "{ENCRYPTION_KEY}"
{top}
{engine}
[client]
secret_ttl = "{ttl}"
allowed_origins = [{origins}]

[webhooks]
retry_schedule = [{schedule}]
timeout = "2s"
{webhooks_allowance}

[[webhooks.endpoints]]
url = "{recv}"
secret = "{RECEIVER_SECRET}"

[http.services.score]
base_url = "{sim_url}/sim/score"
headers = {{ Authorization = "Bearer ${{file:{score_key}}}" }}

[incode]
base_url = "{sim_url}/sim/incode"
api_key = "{INCODE_API_KEY}"
configuration_id = "flow-tests"
webhook_client_id = "incode-tests"
webhook_client_secret = "{INCODE_CLIENT_SECRET}"

[ockto]
base_url = "{ockto_base}/sim/ockto"
username = "{OCKTO_USERNAME}"
password = "${{file:{ockto_password}}}"
provider_code = "{OCKTO_PROVIDER_CODE}"
{ockto_pem}
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

[oih]
base_url = "{oih_base}"
hmac_key = "{OIH_HMAC_KEY}"

[stripe]
base_url = "{sim_url}/sim/stripe"
secret_key = "{STRIPE_SECRET_KEY}"
webhook_secrets = ["{STRIPE_WEBHOOK_SECRET}", "{STRIPE_WEBHOOK_SECRET_NEXT}"]

[http.webhooks.score]
service = "score"
secret = "{SIM_WEBHOOK_SECRET}"
signature_header = "X-Score-Signature"
signature_prefix = "sha256="
timestamp_header = "X-Score-Timestamp"
reference_field = "id"
event_field = "status"
{extra}
{extra_config}
"#,
            extra = opts.extra_toml,
            top = opts.top_config,
            oih_base = opts
                .oih_base_url
                .clone()
                .unwrap_or_else(|| format!("{sim_url}/sim/oih")),
            db = db.url(),
            // The receiver runs on this machine: an explicit allowance.
            webhooks_allowance = if opts.allow_loopback_webhooks {
                "allowed_networks = [\"127.0.0.1\"]"
            } else {
                ""
            },
            extra_config = opts.extra_config.replace("{SIM_URL}", &sim_url),
            wf = wf_dir.display(),
            schedule = schedule.join(", "),
            ttl = opts.client_secret_ttl.unwrap_or("1h"),
            engine = engine_section,
            // The 360dialog tests' customer page is always allowed.
            origins = std::iter::once(&SHOP_ORIGIN)
                .chain(opts.allowed_origins.iter())
                .map(|o| format!("\"{o}\""))
                .collect::<Vec<_>>()
                .join(", "),
            recv = receiver.url().replace("127.0.0.1", opts.receiver_host),
        );
        std::fs::write(&config, template.replace("{PORT}", &port.to_string())).unwrap();
        // As in production: the database first, then a key in it.
        let out = Command::new(BIN)
            .args(["migrate", "--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let api_key = create_key(&config, "tests", &[]);
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
            template,
            lb,
            nodes: Vec::new(),
            db,
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

    /// Starts one more node on the same database; returns its index in `nodes`.
    pub fn add_node(&mut self) -> usize {
        self.add_node_with(|toml| toml.to_string())
    }

    /// `add_node` with a config of its own: `edit` gets the shared one (a
    /// different `workflows_dir`, `engine.node_id`, ...).
    pub fn add_node_with(&mut self, edit: impl FnOnce(&str) -> String) -> usize {
        let port = free_port();
        let n = self.nodes.len();
        let config = self.dir.path().join(format!("node{n}.toml"));
        let toml = edit(&self.template.replace("{PORT}", &port.to_string()));
        std::fs::write(&config, toml).unwrap();
        self.nodes.push((port, config, None));
        self.start_node(n);
        if let Some(lb) = &self.lb {
            let mut all = vec![self.base.clone()];
            all.extend(
                self.nodes
                    .iter()
                    .map(|(p, _, _)| format!("http://127.0.0.1:{p}")),
            );
            lb.set_nodes(all);
        }
        n
    }

    pub fn node_url(&self, n: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.nodes[n].0)
    }

    pub fn node_log(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("node{n}.log"))
    }

    pub fn start_node(&mut self, n: usize) {
        let (port, config, _) = &self.nodes[n];
        let (proc, url) = spawn(
            &["serve", "--config", config.to_str().unwrap()],
            &[],
            &self.node_log(n),
            "gangway listening on",
        );
        assert_eq!(url, format!("http://127.0.0.1:{port}"));
        self.nodes[n].2 = Some(proc);
    }

    /// `kill -9` of an extra node.
    pub fn kill9_node(&mut self, n: usize) {
        if let Some(mut p) = self.nodes[n].2.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// SIGTERM, then waits (up to `secs`) for the server to exit by itself.
    pub fn sigterm_server(&mut self, secs: u64) -> std::process::ExitStatus {
        let mut p = self.server.take().expect("a running server");
        let out = Command::new("kill")
            .args(["-TERM", &p.child.id().to_string()])
            .output()
            .unwrap();
        assert!(out.status.success());
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = p.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop within {secs}s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `kill -<sig>` to the server and returns at once.
    pub fn signal_server(&self, sig: &str) {
        let p = self.server.as_ref().expect("a running server");
        let out = Command::new("kill")
            .args([&format!("-{sig}"), &p.child.id().to_string()])
            .output()
            .unwrap();
        assert!(out.status.success());
    }

    /// Waits (up to `secs`) for the server to exit by itself.
    pub fn wait_server_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let mut p = self.server.take().expect("a running server");
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = p.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop within {secs}s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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

    pub fn stripe(&self, path: &str) -> String {
        format!("{}/sim/stripe{}", self.sim_url, path)
    }

    pub async fn stripe_post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.stripe(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn stripe_get(&self, path: &str) -> Value {
        self.http
            .get(self.stripe(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn ockto(&self, path: &str) -> String {
        format!("{}/sim/ockto{}", self.sim_url, path)
    }

    pub async fn ockto_post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.ockto(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn ockto_get(&self, path: &str) -> Value {
        self.http
            .get(self.ockto(path))
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

    /// Everything the database holds: the SQLite files' bytes (the WAL
    /// too), or on PostgreSQL every row of every table as text.
    pub async fn database_bytes(&self) -> Vec<u8> {
        match &self.db {
            pg::TestDb::Sqlite(_) => {
                let mut all = Vec::new();
                for file in ["gangway.db", "gangway.db-wal", "gangway.db-shm"] {
                    if let Ok(b) = std::fs::read(self.dir.path().join(file)) {
                        all.extend(b);
                    }
                }
                all
            }
            pg::TestDb::Postgres { url, .. } => {
                use sqlx::{Connection, Row};
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                let tables: Vec<String> = sqlx::query(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
                let mut all = Vec::new();
                for t in tables {
                    let rows = sqlx::query(&format!("SELECT t::text FROM \"{t}\" t"))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                    for r in rows {
                        all.extend(r.get::<String, _>(0).into_bytes());
                    }
                }
                all
            }
        }
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
