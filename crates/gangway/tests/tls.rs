//! HTTPS served directly (issue 18 #14): `[tls] cert_file`/`key_file`,
//! HSTS on every response, and a certificate replaced on disk is served
//! without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BIN, Proc, eventually};
use std::path::Path;
use std::process::Command;

struct SelfSigned {
    cert: String,
    key: String,
    der: Vec<u8>,
}

fn self_signed() -> SelfSigned {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    SelfSigned {
        cert: c.cert.pem(),
        key: c.signing_key.serialize_pem(),
        der: c.cert.der().to_vec(),
    }
}

/// Replaces a file the way certificate tools do: a new file renamed over it.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let config = dir.join("gangway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase_url = \"sqlite://{db}\"\nworkflows_dir = \"{wf}\"\nencryption_key = \"dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=\"\n\n[tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\nreload_interval = \"1s\"\n{extra}",
            port = common::free_port(),
            db = dir.join("gangway.db").display(),
            wf = common::repo_root().join("workflows").display(),
            cert = dir.join("cert.pem").display(),
            key = dir.join("key.pem").display(),
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["migrate", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    config
}

fn client(trusts: &[&SelfSigned]) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .https_only(true);
    for c in trusts {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(c.cert.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// The certificate the server presented.
fn peer_cert(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .expect("a TLS connection")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_https_with_hsts_and_reloads_a_replaced_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = self_signed();
    std::fs::write(dir.path().join("cert.pem"), &first.cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), &first.key).unwrap();
    let config = config(dir.path(), "");
    let (_server, url): (Proc, String) = common::spawn(
        &["serve", "--config", config.to_str().unwrap()],
        &[],
        &dir.path().join("server.log"),
        "gangway listening on",
    );
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let r = client(&[&first])
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(peer_cert(&r), first.der);
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000",
        "HSTS on every response"
    );
    // Plain HTTP on the TLS port gets nothing served.
    let plain = reqwest::get(url.replace("https://", "http://") + "/healthz").await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // The files are replaced (a renewal): new connections get the new
    // certificate, with no restart.
    let second = self_signed();
    replace(&dir.path().join("key.pem"), &second.key);
    replace(&dir.path().join("cert.pem"), &second.cert);
    let served = eventually("the new certificate", 30, || async {
        // A fresh client each time: a new connection, a new handshake.
        let r = client(&[&first, &second])
            .get(format!("{url}/healthz"))
            .send()
            .await
            .ok()?;
        let der = peer_cert(&r);
        (der == second.der).then_some(r)
    })
    .await;
    assert_eq!(served.status().as_u16(), 200);
    let r = client(&[&second])
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // A broken pair is refused and the working one kept.
    replace(&dir.path().join("key.pem"), &first.key);
    let log = eventually("the refused pair in the log", 30, || async {
        let log = std::fs::read_to_string(dir.path().join("server.log")).ok()?;
        log.contains("does not load").then_some(log)
    })
    .await;
    assert!(log.contains("certificate reloaded"), "{log}");
    assert!(!log.contains("BEGIN"), "no key material in the log: {log}");
    let r = client(&[&second])
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(peer_cert(&r), second.der);
}

#[test]
fn a_missing_or_mismatched_key_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed();
    let b = self_signed();
    std::fs::write(dir.path().join("cert.pem"), &a.cert).unwrap();
    let config = config(dir.path(), "");
    let serve = || {
        Command::new(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .env_remove("GANGWAY_LISTEN")
            .output()
            .unwrap()
    };
    let out = serve();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("config key `tls.key_file`: cannot read"),
        "{err}"
    );
    std::fs::write(dir.path().join("key.pem"), &b.key).unwrap();
    let out = serve();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("config key `tls.key_file`: does not go with the certificate"),
        "{err}"
    );
    assert!(!err.contains("BEGIN"), "{err}");
}
