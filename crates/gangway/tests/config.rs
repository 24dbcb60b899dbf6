//! Configuration as an operator meets it: `gangway serve` with a file and
//! environment variables. References expand inside strings; bad values,
//! typos and unreachable databases stop the start with one error line that
//! names the key (or variable) and the fix.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WHSEC: &str = common::RECEIVER_SECRET;

/// Runs `gangway serve --config <file>` that must fail to start; returns
/// its stderr. A server that starts instead fails the test.
fn refused(dir: &Path, toml: &str, env: &[(&str, &str)]) -> String {
    let config = dir.join("gangway.toml");
    std::fs::write(&config, toml).unwrap();
    let mut cmd = Command::new(common::BIN);
    cmd.args(["serve", "--config", config.to_str().unwrap()])
        .current_dir(dir)
        .env_remove("GANGWAY_LISTEN")
        .env_remove("GANGWAY_DATABASE_URL")
        // A key, so that what is refused is what the case is about (a case
        // may set the variable itself).
        .env("GANGWAY_ENCRYPTION_KEY", common::ENCRYPTION_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(!status.success(), "started with:\n{toml}\n{err}");
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`gangway serve` neither started nor stopped with:\n{toml}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one `error:` line, checked to be the only one and to say nothing twice.
fn error_line(stderr: &str) -> String {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().last(),
        Some(errors[0]),
        "nothing after the error line: {stderr}"
    );
    errors[0].to_string()
}

fn base(dir: &Path) -> String {
    format!(
        "listen = \"127.0.0.1:{}\"\ndatabase_url = \"sqlite://{}/gangway.db\"\nworkflows_dir = \"{}\"\n",
        common::free_port(),
        dir.display(),
        common::repo_root().join("workflows").display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn references_expand_inside_strings() {
    let dir = tempfile::tempdir().unwrap();
    let root = common::repo_root();
    let port = common::free_port();
    // The repository root through a variable, the database's directory
    // through a file: both inside longer strings.
    let db_dir = dir.path().join("data");
    std::fs::create_dir_all(&db_dir).unwrap();
    let db_dir_file = dir.path().join("db-dir");
    std::fs::write(&db_dir_file, format!("{}\n", db_dir.display())).unwrap();
    let config = dir.path().join("gangway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase_url = \"sqlite://${{file:{}}}/gangway.db\"\nworkflows_dir = \"${{env:GANGWAY_X_ROOT}}/workflows\"\nencryption_key = \"{}\"\n",
            db_dir_file.display(),
            common::ENCRYPTION_KEY
        ),
    )
    .unwrap();
    let env = [("GANGWAY_X_ROOT", root.to_str().unwrap())];
    // `keys` never creates a database: migrate it first, through the same
    // references.
    let out = Command::new(common::BIN)
        .args(["migrate", "--config", config.to_str().unwrap()])
        .envs(env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(common::BIN)
        .args([
            "keys",
            "create",
            "--name",
            "t",
            "--config",
            config.to_str().unwrap(),
        ])
        .envs(env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        db_dir.join("gangway.db").exists(),
        "the database went elsewhere"
    );
    let (_server, url) = common::spawn(
        &["serve", "--config", config.to_str().unwrap()],
        &env,
        &dir.path().join("server.log"),
        "gangway listening on",
    );
    let workflows: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/v1/workflows"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = workflows["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["id"].as_str())
        .collect();
    assert!(ids.contains(&"http-score"), "{workflows}");
}

#[test]
fn unknown_reference_forms_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let b = base(dir.path());
    for (extra, key, says) in [
        (
            "[http.services.score]\nbase_url = \"https://score.example\"\nheaders = { Authorization = \"Bearer ${ENV:SCORE_API_KEY}\" }\n",
            "http.services.score.headers.Authorization",
            "unknown reference `${ENV:…}`",
        ),
        (
            "public_url = \"https://${foo}\"\n",
            "public_url",
            "unknown reference `${foo}`",
        ),
    ] {
        let line = error_line(&refused(dir.path(), &format!("{extra}{b}"), &[]));
        assert!(
            line.contains(&format!("config key `{key}`")) && line.contains(says),
            "{line}"
        );
    }
}

/// Issue 23, finding 2: each of these started silently.
#[test]
fn bad_values_stop_the_start_naming_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let b = base(dir.path());
    let endpoint = |url: &str, secret: &str| {
        format!("{b}[[webhooks.endpoints]]\nurl = \"{url}\"\nsecret = \"{secret}\"\n")
    };
    for (toml, key, fix) in [
        (
            endpoint(
                "https://backend.example/gangway",
                WHSEC.trim_start_matches("whsec_"),
            ),
            "webhooks.endpoints[0].secret",
            "does not start with `whsec_`",
        ),
        (
            endpoint("htp:/127.0.0.1 gangway", WHSEC),
            "webhooks.endpoints[0].url",
            "is not an http:// or https:// URL",
        ),
        (
            format!("public_url = \"gangway.example.com\"\n{b}"),
            "public_url",
            "e.g. https://gangway.example.com",
        ),
        (
            format!("{b}[client]\nallowed_origins = [\"https://shop.example/checkout\"]\n"),
            "client.allowed_origins[0]",
            "write `https://shop.example`",
        ),
        (
            format!(
                "{b}[incode]\nbase_url = \"https://demo-api.incodesmile.com\"\napi_key = \"k\"\nconfiguration_id = \"c\"\nwebhook_client_id = \"incode\"\nwebhook_client_secret = \"too-short\"\n"
            ),
            "incode.webhook_client_secret",
            "at least 16 characters",
        ),
    ] {
        let line = error_line(&refused(dir.path(), &toml, &[]));
        assert!(
            line.contains(&format!("config key `{key}`")) && line.contains(fix),
            "{toml}\n=> {line}"
        );
        assert!(line.contains("gangway.toml:"), "names the file: {line}");
    }
}

/// Issue 23, finding 3, and issue 21, section 6.
#[test]
fn errors_name_their_source_once() {
    let dir = tempfile::tempdir().unwrap();
    let b = base(dir.path());
    let line = error_line(&refused(
        dir.path(),
        &format!("{b}[engine]\nbatch_size = = 5\n"),
        &[],
    ));
    assert!(line.contains("gangway.toml:5:14: not valid TOML"), "{line}");
    let line = error_line(&refused(
        dir.path(),
        &format!("{b}[engine]\nbatch_size = \"many\"\n"),
        &[],
    ));
    assert!(
        line.ends_with("gangway.toml:5:1: config key `engine.batch_size`: invalid type: string \"many\", expected usize"),
        "{line}"
    );
    let line = error_line(&refused(
        dir.path(),
        &b,
        &[("GANGWAY_ENGINE__BACH_SIZE", "512")],
    ));
    assert!(
        line.contains("environment variable GANGWAY_ENGINE__BACH_SIZE: config key `engine.bach_size`: unknown field `bach_size`"),
        "{line}"
    );
    let line = error_line(&refused(
        dir.path(),
        &b,
        &[("GANGWAY_BIN", "/usr/local/bin/gangway")],
    ));
    assert!(
        line.contains("environment variable GANGWAY_BIN")
            && line.contains("GANGWAY_LISTEN")
            && line.contains("GANGWAY_X_"),
        "{line}"
    );
    let line = error_line(&refused(dir.path(), &b, &[("GANGWAY_ENCRYPTION_KEY", "")]));
    assert!(
        line.contains("environment variable GANGWAY_ENCRYPTION_KEY (set but empty)"),
        "{line}"
    );
}

/// A wrong port, database, user or host: one sentence, once, instead of
/// "pool timed out" or the same text three times.
#[test]
fn database_errors_are_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let admin = reqwest::Url::parse(&common::pg::admin_url()).unwrap();
    let with = |f: &dyn Fn(&mut reqwest::Url)| {
        let mut u = admin.clone();
        f(&mut u);
        u.to_string()
    };
    let port = common::free_port();
    let cases: [(String, Vec<String>); 4] = [
        (
            with(&|u| u.set_port(Some(port)).unwrap()),
            vec![format!("connection refused to 127.0.0.1:{port}")],
        ),
        (
            with(&|u| u.set_path("/gw_no_such_database")),
            vec!["database \"gw_no_such_database\" does not exist".into()],
        ),
        (
            with(&|u| u.set_username("gw_no_such_role").unwrap()),
            vec!["\"gw_no_such_role\"".into()],
        ),
        (
            with(&|u| u.set_host(Some("gw-no-such-host.invalid")).unwrap()),
            // Without a resolver that answers, the lookup times out.
            vec![
                "cannot resolve the host `gw-no-such-host.invalid`".into(),
                "no answer from gw-no-such-host.invalid:".into(),
            ],
        ),
    ];
    for (url, says) in cases {
        let toml = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"{url}\"\nencryption_key = \"{}\"\n[postgres]\nacquire_timeout = \"2s\"\n",
            common::ENCRYPTION_KEY
        );
        let line = error_line(&refused(dir.path(), &toml, &[]));
        assert!(
            says.iter().any(|s| line.matches(s.as_str()).count() == 1),
            "{url}: expected once one of {says:?}: {line}"
        );
        assert!(!line.contains("pool timed out"), "{line}");
        assert!(!line.contains("error returned from database"), "{line}");
    }
}
