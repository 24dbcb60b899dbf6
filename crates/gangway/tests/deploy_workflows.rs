//! Workflows deployed without a restart: `gangway workflows deploy|diff|list`
//! against a running server, `POST /v1/admin/workflows`, SIGHUP re-reading
//! `workflows_dir`, and a second PostgreSQL node picking a deploy up.
#![allow(clippy::unwrap_used)]

mod common;

use common::{BIN, Harness, Options, create_key, eventually};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

fn workflow(version: u32, reason: &str) -> String {
    format!(
        "id: deploy-me\nversion: {version}\ninput:\n  type: object\n  properties: {{}}\nsteps:\n  hold:\n    wait:\n      x.done: done\n    timeout: 1h\n    on_timeout: done\n  done:\n    end: approved\n    reason: {reason}\n"
    )
}

/// `gangway workflows ARGS` against the harness's server: (success, stdout + stderr).
fn cli(h: &Harness, key: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("workflows")
        .args(args)
        .env("GANGWAY_CLI_URL", &h.base)
        .env("GANGWAY_CLI_KEY", key)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// The version a new `deploy-me` session starts on at `base` (None: unknown).
async fn starts_on(h: &Harness, base: &str) -> Option<u64> {
    let r = h
        .http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&h.api_key)
        .json(&json!({"workflow": "deploy-me"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    match status {
        201 => Some(body["version"].as_u64().unwrap()),
        422 => None,
        _ => panic!("{status}: {body}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_diff_and_list_change_a_running_server() {
    let h = Harness::start().await;
    let admin = create_key(&h.config, "deployer", &["admin", "workflows:read"]);
    let files = tempfile::tempdir().unwrap();
    let v1 = write(files.path(), "deploy-me.yaml", &workflow(1, "one"));

    // diff says what would change and changes nothing.
    let (ok, out) = cli(&h, &admin, &["diff", &v1]);
    assert!(ok, "{out}");
    assert!(out.contains("+ deploy-me v1 (new workflow)"), "{out}");
    assert!(out.contains("nothing was deployed"), "{out}");
    assert_eq!(starts_on(&h, &h.base).await, None);

    let (ok, out) = cli(&h, &admin, &["deploy", &v1]);
    assert!(ok, "{out}");
    assert_eq!(starts_on(&h, &h.base).await, Some(1));

    // A new version: new sessions start on it at once.
    let v2 = write(files.path(), "deploy-me-2.yaml", &workflow(2, "two"));
    let (ok, out) = cli(&h, &admin, &["diff", &v2, &v1]);
    assert!(ok, "{out}");
    assert!(out.contains("~ deploy-me v1 -> v2"), "{out}");
    assert!(out.contains("= deploy-me v1 (unchanged)"), "{out}");
    let (ok, out) = cli(&h, &admin, &["deploy", &v2]);
    assert!(ok, "{out}");
    assert_eq!(starts_on(&h, &h.base).await, Some(2));
    let (ok, out) = cli(&h, &admin, &["list"]);
    assert!(ok, "{out}");
    assert!(out.contains("deploy-me v2 (stored: 1, 2)"), "{out}");

    // A changed file under a stored version: refused, nothing changes.
    let changed = write(files.path(), "changed.yaml", &workflow(2, "other"));
    let (ok, out) = cli(&h, &admin, &["deploy", &changed]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("409") && out.contains("bump `version`"),
        "{out}"
    );
    // An invalid file: every problem at file:line:col, nothing stored (the
    // valid v3 in the same deploy neither).
    let v3 = write(files.path(), "v3.yaml", &workflow(3, "three"));
    let broken = write(
        files.path(),
        "broken.yaml",
        "id: broken\nversion: 1\nsteps:\n  a:\n    end: approved\n    reason: ${input.nope\n",
    );
    let (ok, out) = cli(&h, &admin, &["deploy", &v3, &broken]);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("{broken}:6:")), "{out}");
    assert_eq!(starts_on(&h, &h.base).await, Some(2));

    // Deploying needs the admin scope.
    let (ok, out) = cli(&h, &h.api_key, &["deploy", &v3]);
    assert!(!ok && out.contains("403"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_rereads_the_workflows_directory() {
    let h = Harness::start().await;
    let dir = h.dir.path().join("workflows");
    write(&dir, "deploy-me.yaml", &workflow(1, "one"));
    h.signal_server("HUP");
    eventually("SIGHUP deployed deploy-me v1", 20, || async {
        (starts_on(&h, &h.base).await == Some(1)).then_some(())
    })
    .await;
    // A directory that does not validate changes nothing, and the server
    // keeps running.
    write(&dir, "deploy-me.yaml", &workflow(2, "${oops"));
    h.signal_server("HUP");
    eventually("the refused reload is logged", 20, || async {
        h.server_log()
            .contains("SIGHUP: the workflows directory was not deployed")
            .then_some(())
    })
    .await;
    assert_eq!(starts_on(&h, &h.base).await, Some(1));
    write(&dir, "deploy-me.yaml", &workflow(2, "two"));
    h.signal_server("HUP");
    eventually("SIGHUP deployed deploy-me v2", 20, || async {
        (starts_on(&h, &h.base).await == Some(2)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_postgres_node_picks_a_deploy_up_without_a_restart() {
    let mut h = Harness::start_with(Options {
        postgres: true,
        ..Default::default()
    })
    .await;
    let other = h.add_node();
    let other_base = h.node_url(other, "");
    let admin = create_key(&h.config, "deployer", &["admin"]);
    let deploy = |version: u32| {
        let http = h.http.clone();
        let url = h.url("/v1/admin/workflows");
        let admin = admin.clone();
        async move {
            let r = http
                .post(url)
                .bearer_auth(admin)
                .json(&json!({"files": [{"name": "deploy-me.yaml", "source": workflow(version, "x")}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    deploy(1).await;
    eventually("the other node starts deploy-me v1", 10, || async {
        (starts_on(&h, &other_base).await == Some(1)).then_some(())
    })
    .await;
    deploy(2).await;
    eventually("the other node starts deploy-me v2", 10, || async {
        (starts_on(&h, &other_base).await == Some(2)).then_some(())
    })
    .await;
}
