//! Running a cluster in production: a workflow rollout where the nodes have
//! different workflow sets for a while, and a node started with the id of a
//! live node. Every test runs on PostgreSQL with several `gangway serve`.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::{Value, json};

async fn post_to(h: &Harness, url: &str, body: Value) -> (u16, Value) {
    let r = h
        .http
        .post(url)
        .bearer_auth(&h.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A rollout: node 1 has `score-long` v2, the first node only v1 (it started
/// before v2 existed). A v2 session started on node 1 gets its provider's
/// webhook on the first node, which loads v2 from the database and runs the
/// session to v2's outcome, instead of failing it as "corrupt".
#[tokio::test(flavor = "multi_thread")]
async fn cluster_rollout_runs_a_version_this_node_did_not_load() {
    let mut h = Harness::start_with(common::Options {
        postgres: true,
        ..common::Options::default()
    })
    .await;
    // Version 2 approves from 90 instead of 50.
    let old_dir = h.dir.path().join("workflows");
    let new_dir = h.dir.path().join("workflows-v2");
    std::fs::create_dir_all(&new_dir).unwrap();
    for entry in std::fs::read_dir(&old_dir).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, new_dir.join(p.file_name().unwrap())).unwrap();
    }
    let v1 = std::fs::read_to_string(old_dir.join("score-long.yaml")).unwrap();
    let v2 = v1
        .replace("version: 1", "version: 2")
        .replace("score >= 50", "score >= 90")
        .replace("is at least 50", "is at least 90");
    assert_ne!(v1, v2);
    std::fs::write(new_dir.join("score-long.yaml"), &v2).unwrap();
    let (old, new) = (old_dir.display().to_string(), new_dir.display().to_string());
    let n = h.add_node_with(|toml| toml.replace(&old, &new));

    let (status, s) = post_to(
        &h,
        &h.node_url(n, "/v1/sessions"),
        json!({"workflow": "score-long", "reference": "rollout"}),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["version"], 2, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    // The simulator sends its webhook to the first node (v1 only).
    let pid = h.provider_id(&id).await;
    h.complete(&pid, 70).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(
        (ended["version"].as_u64(), ended["outcome"].as_str()),
        (Some(2), Some("declined")),
        "{ended}"
    );
    let log = h.server_log();
    assert!(
        log.contains("workflow version loaded from the database"),
        "the first node did not load v2 from the database:\n{log}"
    );
    assert!(!log.contains("corrupt"), "{log}");
    // The first node still starts new sessions on the version it loaded.
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-long", "reference": "old-node"}),
        )
        .await;
    assert_eq!((status, s["version"].as_u64()), (201, Some(1)), "{s}");
}

/// `gangway serve` with `config` until it exits by itself (at most 30 s):
/// its exit status and stderr. A process still running is killed and fails
/// the test.
fn run_until_exit(config: &std::path::Path, log: &std::path::Path) -> (bool, String) {
    let mut child = std::process::Command::new(common::BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info,sqlx=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.success(), std::fs::read_to_string(log).unwrap());
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the second node with the same node_id kept running:\n{}",
                std::fs::read_to_string(log).unwrap()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A second process with the `engine.node_id` of a live node refuses to
/// start, before it frees any of that node's leases; once the node is
/// killed (its heartbeat stops), a process with its id starts.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_refuses_a_second_node_with_the_same_id() {
    let mut h = Harness::start_with(common::Options {
        postgres: true,
        engine_toml: "node_id = \"gangway-a\"\nheartbeat = \"200ms\"\n",
        ..common::Options::default()
    })
    .await;
    // A waiting session: its poll job is leased by the first node now and then.
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-long", "reference": "dup"}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    h.provider_id(&id).await;

    let port = common::free_port();
    let config = h.dir.path().join("dup.toml");
    let text = std::fs::read_to_string(&h.config).unwrap().replace(
        &format!("listen = \"127.0.0.1:{}\"", h.port),
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    assert!(text.contains(&port.to_string()));
    std::fs::write(&config, text).unwrap();
    let (ok, log) = run_until_exit(&config, &h.dir.path().join("dup.log"));
    assert!(!ok, "{log}");
    assert!(
        log.contains("engine.node_id `gangway-a` is in use by a running node"),
        "{log}"
    );
    assert!(!log.contains("freed the leases"), "{log}");
    assert!(!log.contains("listening"), "{log}");
    // The first node is untouched.
    let r = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(!h.server_log().contains("took over"), "{}", h.server_log());

    // Crashed: the next process with the id takes it over and runs the
    // session. As if it had run on another machine (the process it names
    // cannot be checked here), only its heartbeat standing still tells.
    h.kill9_server();
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(h.db.url()).await.unwrap();
        let n =
            sqlx::query("UPDATE nodes SET process = 'another-machine' WHERE node_id = 'gangway-a'")
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected();
        assert_eq!(n, 1);
    }
    h.start_server();
    let log = h.server_log();
    assert!(
        log.contains("another process holds this engine.node_id; waiting")
            && log.contains("took over the node id of a process that stopped"),
        "{log}"
    );
    let pid = h.provider_id(&id).await;
    h.complete(&pid, 70).await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "approved");
}
