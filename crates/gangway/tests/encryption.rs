//! Personal data at rest (issue 20): sealed under the configured key in
//! every column that holds it, readable through the API, absent from the
//! database's bytes (the SQLite file and its WAL, or every PostgreSQL row);
//! `gangway serve` refuses to start without a key unless `encryption =
//! "off"`, which every start then warns about.
#![allow(clippy::unwrap_used)]

mod common;

use common::{BIN, Harness, eventually};
use serde_json::{Value, json};

const MARKER: &str = "Zq7x-Jane-Doe-1985-04-12-marker";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn personal_data_is_sealed_in_the_database_and_read_back_through_the_api() {
    let h = Harness::start().await;
    let (status, created) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "http-score", "reference": "ref-sealed-0001", "input": {"name": MARKER}}),
        )
        .await;
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap().to_string();
    let provider = h.provider_id(&id).await;
    h.complete(&provider, 80).await;
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "approved");
    // The customer's webhook carries the input (it was sealed in the
    // deliveries table meanwhile).
    let delivered = eventually("session.ended delivery", 20, || async {
        let got = h.receiver.for_session(&id, "session.ended");
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert!(delivered[0].body.to_string().contains(MARKER));
    // Read back through the API, opened.
    assert_eq!(h.session(&id).await["input"]["name"], MARKER);
    let (_, list) = h.get("/v1/sessions?reference=ref-sealed-0001").await;
    assert_eq!(list["data"][0]["input"]["name"], MARKER);
    let (_, timeline) = h.get(&format!("/v1/sessions/{id}/timeline")).await;
    assert!(!timeline["entries"].as_array().unwrap().is_empty());

    // Nowhere in the database's bytes; what stays clear to be queried (the
    // reference, the session id) is there, so the scan does see the data.
    let bytes = h.database_bytes().await;
    assert!(
        contains(&bytes, "ref-sealed-0001"),
        "the scan reads the data"
    );
    assert!(contains(&bytes, &id));
    assert!(!contains(&bytes, MARKER), "personal data in the clear");
    assert!(
        !contains(&bytes, "\"score\""),
        "provider results in the clear"
    );
    assert!(contains(&bytes, "gw1:"), "sealed values");
}

/// `gangway serve` with this config: its exit status and stderr, or None
/// if it is still running after it printed its address (then it is killed).
fn serve(config: &str) -> (Option<bool>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gangway.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{}/g.db\"\nworkflows_dir = \"{}\"\n{config}",
        dir.path().display(),
        common::repo_root().join("workflows").display()
    );
    std::fs::write(&path, text).unwrap();
    let log = dir.path().join("serve.log");
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--config", path.to_str().unwrap()])
        .env_remove("GANGWAY_ENCRYPTION_KEY")
        .env_remove("GANGWAY_ENCRYPTION")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(status) = child.try_wait().unwrap() {
            return (Some(status.success()), text);
        }
        if text.contains("engine starting") && text.contains("personal data") {
            child.kill().unwrap();
            child.wait().unwrap();
            return (None, text);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve neither started nor stopped: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn serve_refuses_to_start_without_a_key_unless_encryption_is_off() {
    let (exited, err) = serve("");
    assert_eq!(exited, Some(false), "{err}");
    assert!(err.contains("no encryption_key"), "{err}");
    assert!(err.contains("encryption = \"off\""), "{err}");

    // Off: it runs, and says so at the start.
    let (exited, err) = serve("encryption = \"off\"\n");
    assert_eq!(exited, None, "{err}");
    assert!(
        err.contains("encryption = \\\"off\\\"") || err.contains("encryption = \"off\""),
        "{err}"
    );
    assert!(err.contains("stored unsealed"), "{err}");

    // A bad previous key is named.
    let (exited, err) = serve(&format!(
        "encryption_keys = [\"{}\", \"c2hvcnQ=\"]\n",
        common::ENCRYPTION_KEY
    ));
    assert_eq!(exited, Some(false), "{err}");
    assert!(err.contains("encryption_keys[1]"), "{err}");
    // One key or several, not both.
    let (exited, err) = serve(&format!(
        "encryption_key = \"{k}\"\nencryption_keys = [\"{k}\"]\n",
        k = common::ENCRYPTION_KEY
    ));
    assert_eq!(exited, Some(false), "{err}");
    assert!(err.contains("not both"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_without_sealing_is_in_the_audit_log() {
    let h = Harness::start_with(common::Options {
        top_config: "encryption = \"off\"\n".into(),
        ..Default::default()
    })
    .await;
    let admin = common::create_key(&h.config, "auditor", &["admin"]);
    let page: Value = h
        .http
        .get(h.url("/v1/admin/audit?action=server.started"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let warnings = page["data"][0]["data"]["warnings"].to_string();
    assert!(warnings.contains("stored unsealed"), "{page:#}");
}

/// Key rotation under load: the server restarted with a new key (the old
/// one only to read), sessions created and finished while `gangway keys
/// rotate-encryption` re-seals the rest; every session reads back, none is
/// lost, and no value is left under the old key.
#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_key_under_load_loses_nothing_and_leaves_nothing_under_the_old_key() {
    let mut h = Harness::start().await;
    let old_id = gangway_server::crypto::key_id(&base64_decode(common::ENCRYPTION_KEY));
    let mut ids = Vec::new();
    for i in 0..20 {
        let s = h.create_score_session(&format!("before-{i}")).await;
        let id = s["id"].as_str().unwrap().to_string();
        if i % 2 == 0 {
            let p = h.provider_id(&id).await;
            h.complete(&p, 70).await;
        }
        ids.push(id);
    }
    for id in ids.iter().step_by(2) {
        h.wait_ended(id).await;
    }
    assert!(contains(
        &h.database_bytes().await,
        &format!("gw1:{old_id}:")
    ));

    // The new key active, the old one kept to read.
    let new_key = gangway_server::crypto::generate_key();
    let new_id = gangway_server::crypto::key_id(&base64_decode(&new_key));
    let text = std::fs::read_to_string(&h.config).unwrap().replace(
        &format!("encryption_key = \"{}\"", common::ENCRYPTION_KEY),
        &format!(
            "encryption_keys = [\"{new_key}\", \"{}\"]",
            common::ENCRYPTION_KEY
        ),
    );
    std::fs::write(&h.config, text).unwrap();
    h.sigterm_server(30);
    h.start_server();

    // Load while the rotation runs: sessions created and completed.
    let h = std::sync::Arc::new(h);
    let load = {
        let h = h.clone();
        tokio::spawn(async move {
            let mut made = Vec::new();
            for i in 0..30 {
                let s = h.create_score_session(&format!("during-{i}")).await;
                let id = s["id"].as_str().unwrap().to_string();
                let p = h.provider_id(&id).await;
                h.complete(&p, 90).await;
                made.push(id);
            }
            made
        })
    };
    let config = h.config.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args([
                "keys",
                "rotate-encryption",
                "--batch",
                "7",
                "--config",
                config.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("none is left under an old key"), "{err}");
    let during = load.await.unwrap();

    // Everything reads back; the sessions waiting before go on under the
    // new key and finish.
    for id in ids.iter().skip(1).step_by(2) {
        let p = h.provider_id(id).await;
        h.complete(&p, 20).await;
    }
    for id in ids.iter().chain(&during) {
        let s = h.wait_ended(id).await;
        assert!(
            s["outcome"] == "approved" || s["outcome"] == "declined",
            "{s}"
        );
    }
    let rows = stored_rows(&h).await;
    assert!(
        !contains(&rows, &format!("gw1:{old_id}:")),
        "a value under the old key is left"
    );
    assert!(contains(&rows, &format!("gw1:{new_id}:")));
    // A second run finds nothing to do.
    let again = std::process::Command::new(BIN)
        .args([
            "keys",
            "rotate-encryption",
            "--config",
            h.config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert!(err.contains("done: 0 values sealed again"), "{err}");
}

/// Every stored row's text (what "no row under the old key" is about; an
/// SQLite file may keep old page images in its WAL until a checkpoint).
async fn stored_rows(h: &Harness) -> Vec<u8> {
    if !h.dir.path().join("gangway.db").exists() {
        return h.database_bytes().await; // PostgreSQL: a row scan already
    }
    let c = rusqlite::Connection::open(h.dir.path().join("gangway.db")).unwrap();
    let mut all = Vec::new();
    for table in gangway_server::store::reseal::SEALED {
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("COALESCE({c}, '')"))
            .collect();
        let mut stmt = c
            .prepare(&format!(
                "SELECT {} FROM {}",
                cols.join(" || ' ' || "),
                table.table
            ))
            .unwrap();
        let texts = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap);
        for t in texts {
            all.extend(t.into_bytes());
        }
    }
    all
}

fn base64_decode(b64: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}
