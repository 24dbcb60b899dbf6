//! Starting (and stopping) the server processes under test.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Servers {
    pub urls: Vec<String>,
    pub pids: Vec<u32>,
    children: Vec<Child>,
    configs: Vec<std::path::PathBuf>,
    /// For floor nodes (`gangway bench floor-node`): the API key they accept.
    floor_key: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

/// The environment variable a floor node reads its API key from (the
/// `GANGWAY_BENCH_` prefix is never read as configuration).
pub const FLOOR_KEY_ENV: &str = "GANGWAY_BENCH_FLOOR_API_KEY";

pub const WORKFLOW: &str = include_str!("../../../../workflows/http-score.yaml");

/// The shipped http-score workflow with another cap on its polling interval.
pub fn workflow_with_poll_cap(max_every: &str) -> String {
    WORKFLOW.replace("max_every: 60s", &format!("max_every: {max_every}"))
}

impl Servers {
    pub fn external(url: &str) -> Servers {
        Servers {
            urls: vec![url.trim_end_matches('/').to_string()],
            pids: Vec::new(),
            children: Vec::new(),
            configs: Vec::new(),
            floor_key: None,
            _dir: None,
        }
    }

    /// Starts `nodes` `gangway serve` processes on one database (or, with
    /// `floor`, `gangway bench floor-node` processes on the same
    /// configuration, which touch no database); returns them and an API key.
    /// `extra_toml` is appended to every node's configuration.
    pub async fn start(
        provider_url: &str,
        database_url: Option<&str>,
        nodes: u32,
        workflow: &str,
        floor: bool,
        extra_toml: &str,
    ) -> anyhow::Result<(Servers, String)> {
        let dir = tempfile::tempdir()?;
        let db = match database_url {
            Some(u) => u.to_string(),
            None => format!("sqlite://{}", dir.path().join("bench.db").display()),
        };
        if nodes > 1 && db.starts_with("sqlite:") && !floor {
            bail!("--nodes {nodes} needs a PostgreSQL --database-url: SQLite serves one process");
        }
        let wf = dir.path().join("workflows");
        std::fs::create_dir_all(&wf)?;
        std::fs::write(wf.join("http-score.yaml"), workflow)?;
        let exe = std::env::current_exe()?;
        let mut servers = Servers {
            urls: Vec::new(),
            pids: Vec::new(),
            children: Vec::new(),
            configs: Vec::new(),
            floor_key: floor.then(|| gangway_server::ids::new_secret("gw")),
            _dir: None,
        };
        // One key for every node of the run: they share the database.
        let encryption_key = gangway_server::crypto::generate_key();
        for n in 0..nodes {
            let config = dir.path().join(format!("node{n}.toml"));
            std::fs::write(
                &config,
                format!(
                    r#"listen = "127.0.0.1:0"
database_url = "{db}"
workflows_dir = "{wf}"
# Personal data sealed at rest, as in production (GANGWAY_ENCRYPTION=off
# measures without).
encryption_key = "{ekey}"

# The bench's receiver runs on this machine or a private network.
[webhooks]
allow_private = true

[[webhooks.endpoints]]
url = "{provider_url}/hooks"
secret = "{secret}"
events = ["session.ended"]

[http.services.score]
base_url = "{provider_url}"
headers = {{ Authorization = "Bearer {key}" }}

[http.webhooks.score]
service = "score"
secret = "{wsecret}"
signature_header = "X-Score-Signature"
signature_prefix = "sha256="
timestamp_header = "X-Score-Timestamp"
reference_field = "id"
event_field = "status"
{extra_toml}
"#,
                    wf = wf.display(),
                    secret = super::provider::RECEIVER_SECRET,
                    key = super::provider::API_KEY,
                    wsecret = super::provider::WEBHOOK_SECRET,
                    ekey = encryption_key,
                ),
            )?;
            let (child, url) = spawn_node(&exe, &config, servers.floor_key.as_deref()).await?;
            servers.pids.push(child.id());
            servers.urls.push(url);
            servers.children.push(child);
            servers.configs.push(config);
        }
        if let Some(key) = servers.floor_key.clone() {
            servers._dir = Some(dir);
            return Ok((servers, key));
        }
        let out = Command::new(&exe)
            .args([
                "keys",
                "create",
                "--name",
                "bench",
                "--config",
                dir.path().join("node0.toml").to_str().unwrap_or_default(),
            ])
            .env("RUST_LOG", "warn")
            .output()?;
        if !out.status.success() {
            bail!(
                "keys create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let key = String::from_utf8(out.stdout)?.trim().to_string();
        servers._dir = Some(dir);
        Ok((servers, key))
    }

    /// Adds a workflow file to the nodes' `workflows_dir` and tells each
    /// node to read it (SIGHUP), as an operator would.
    pub fn add_workflow(&self, file: &str, text: &str) -> anyhow::Result<()> {
        let dir = self._dir.as_ref().context("servers started elsewhere")?;
        std::fs::write(dir.path().join("workflows").join(file), text)?;
        for pid in &self.pids {
            let status = Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()?;
            if !status.success() {
                bail!("kill -HUP {pid} failed");
            }
        }
        Ok(())
    }

    /// `kill -9` of node `n`, then a new process on the same database;
    /// returns how long until it served requests again.
    pub async fn kill_and_restart(&mut self, n: usize) -> anyhow::Result<Duration> {
        self.kill(n)?;
        self.restart(n).await
    }

    /// `kill -9` of node `n`.
    pub fn kill(&mut self, n: usize) -> anyhow::Result<()> {
        let child = self.children.get_mut(n).context("no such node")?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// A new process for (killed) node `n` on the same database; returns
    /// how long until it served requests.
    pub async fn restart(&mut self, n: usize) -> anyhow::Result<Duration> {
        let exe = std::env::current_exe()?;
        let started = std::time::Instant::now();
        let (child, url) = spawn_node(&exe, &self.configs[n], self.floor_key.as_deref()).await?;
        let client = reqwest::Client::new();
        let deadline = started + Duration::from_secs(120);
        loop {
            if client
                .get(format!("{url}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("the restarted server did not become ready within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = started.elapsed();
        self.pids[n] = child.id();
        self.urls[n] = url;
        self.children[n] = child;
        Ok(took)
    }

    pub fn stop(mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
    }
}

async fn spawn_node(
    exe: &std::path::Path,
    config: &std::path::Path,
    floor_key: Option<&str>,
) -> anyhow::Result<(Child, String)> {
    let config = config.to_str().unwrap_or_default();
    let mut command = Command::new(exe);
    match floor_key {
        Some(key) => command
            .args(["bench", "floor-node", "--config", config])
            .env(FLOOR_KEY_ENV, key),
        None => command.args(["serve", "--config", config]),
    };
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the server")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("gangway listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120)))
        .await?
        .context("the server did not start within 120 s")?;
    Ok((child, url))
}
