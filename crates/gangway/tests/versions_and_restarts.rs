//! Workflow versions and restarts: a session runs to its end on the version
//! it started with; timers survive a kill -9.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_never_changes_running_sessions() {
    let mut h = Harness::start().await;
    let old = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-long", "reference": "v1"}),
        )
        .await
        .1;
    let old_id = old["id"].as_str().unwrap().to_string();
    assert_eq!(old["version"], 1);
    let pid = h.provider_id(&old_id).await;

    // Version 2 approves from 90 instead of 50.
    let wf_dir = h.dir.path().join("workflows");
    let v1 = std::fs::read_to_string(wf_dir.join("score-long.yaml")).unwrap();
    let v2 = v1
        .replace("version: 1", "version: 2")
        .replace("score >= 50", "score >= 90")
        .replace("is at least 50", "is at least 90");
    assert_ne!(v1, v2);
    std::fs::write(wf_dir.join("score-long.yaml"), &v2).unwrap();
    h.kill9_server();
    h.start_server();

    let new = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-long", "reference": "v2"}),
        )
        .await
        .1;
    assert_eq!(new["version"], 2);
    let new_id = new["id"].as_str().unwrap().to_string();
    let new_pid = h.provider_id(&new_id).await;
    h.complete(&pid, 70).await;
    h.complete(&new_pid, 70).await;
    let old = h.wait_ended(&old_id).await;
    let new = h.wait_ended(&new_id).await;
    assert_eq!(
        (old["version"].as_u64(), old["outcome"].as_str()),
        (Some(1), Some("approved")),
        "{old}"
    );
    assert_eq!(
        (new["version"].as_u64(), new["outcome"].as_str()),
        (Some(2), Some("declined")),
        "{new}"
    );
    let (_, wfs) = h.get("/v1/workflows").await;
    let entry = wfs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == "score-long")
        .unwrap()
        .clone();
    assert_eq!(entry["versions"], json!([1, 2]));

    // Changing a stored version's content without bumping it is refused.
    std::fs::write(
        wf_dir.join("score-long.yaml"),
        v2.replace("is at least 90", "passes"),
    )
    .unwrap();
    h.kill9_server();
    let out = std::process::Command::new(common::BIN)
        .args([
            "serve",
            "--config",
            h.dir.path().join("gangway.toml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("score-long") && err.contains("version 2") && err.contains("bump"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn timers_survive_kill_9() {
    let mut h = Harness::start().await;
    let s = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-fast", "reference": "timer"}),
        )
        .await
        .1;
    let id = s["id"].as_str().unwrap().to_string();
    h.wait_session(&id, "waiting", |s| s["status"] == "waiting")
        .await;
    h.sim_post("/control/faults", json!({"rules": [{"match": {"method": "GET", "path": "/v1/sessions/*/score"}, "times": 1000, "fault": {"status": 503}}]})).await;
    h.kill9_server();
    h.start_server();
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "expired", "{ended}");
    let t = h.timeline(&id).await;
    let timeouts = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "wait.timed_out")
        .count();
    assert_eq!(timeouts, 1);
}
