//! Loading as a whole: layers, environment variables, references and the
//! errors they give, through `Config::load_with`.
#![allow(clippy::unwrap_used)]

use super::*;
use std::path::{Path, PathBuf};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_load() {
    let c = Config::load_with(None, &[]).expect("defaults are valid");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database_url, "sqlite://gangway.db");
}

#[test]
fn env_overrides_and_errors_name_the_key() {
    let c = Config::load_with(
        None,
        &env(&[
            ("GANGWAY_LISTEN", "127.0.0.1:9999"),
            ("GANGWAY_ENGINE__BATCH_SIZE", "7"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.listen.port(), 9999);
    assert_eq!(c.engine.batch_size, 7);
    let e = Config::load_with(None, &env(&[("GANGWAY_LISTEN", "nope")])).expect_err("invalid");
    assert!(e.to_string().contains("`listen`"), "{e}");
    let e = Config::load_with(None, &env(&[("GANGWAY_ENGINE__LEASE", "forever")]))
        .expect_err("invalid");
    assert!(e.to_string().contains("engine.lease"), "{e}");
    let e = Config::load_with(None, &env(&[("GANGWAY_DATABASE_URL", "mysql://x")]))
        .expect_err("invalid");
    assert!(e.to_string().contains("database_url"), "{e}");
    let e = Config::load_with(None, &env(&[("GANGWAY_NOPE", "1")])).expect_err("unknown key");
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn env_secret_references() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("g.toml");
    std::fs::write(&f, "[http.services.s]\nbase_url = \"http://x\"\nheaders = { Authorization = \"${env:S_KEY}\" }\n").expect("write");
    let e = Config::load_with(Some(&f), &[]).expect_err("unset var");
    assert!(
        e.to_string()
            .contains("http.services.s.headers.Authorization"),
        "{e}"
    );
    let c = Config::load_with(Some(&f), &env(&[("S_KEY", "Bearer k")])).expect("valid");
    assert_eq!(http(&c).services["s"].headers["Authorization"], "Bearer k");
}

fn file(dir: &Path, text: &str) -> PathBuf {
    let f = dir.join("gangway.toml");
    std::fs::write(&f, text).unwrap();
    f
}

fn load_err(text: &str, env: &[(String, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), text);
    Config::load_with(Some(&f), env)
        .expect_err("the config is refused")
        .to_string()
}

#[test]
fn references_inside_longer_strings() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pg-password");
    std::fs::write(&pw, "pg-s3cret\n").unwrap();
    let f = file(
        dir.path(),
        &format!(
            r#"workflows_dir = "/tmp/${{env:WF}}/workflows"
database_url = "postgres://gangway:${{file:{}}}@db.internal/gangway"
[http.services.score]
base_url = "https://score.example.com"
headers = {{ Authorization = "Bearer ${{env:SCORE_API_KEY}}", X-Both = "${{env:WF}}-${{env:SCORE_API_KEY}}", X-Dollar = "a$b $${{env:WF}}" }}
"#,
            pw.display()
        ),
    );
    let c = Config::load_with(
        Some(&f),
        &env(&[("SCORE_API_KEY", "k-123"), ("WF", "prod")]),
    )
    .expect("valid");
    let h = &http(&c).services["score"].headers;
    assert_eq!(h["Authorization"], "Bearer k-123");
    assert_eq!(h["X-Both"], "prod-k-123");
    assert_eq!(h["X-Dollar"], "a$b ${env:WF}");
    assert_eq!(c.workflows_dir, PathBuf::from("/tmp/prod/workflows"));
    assert_eq!(
        c.database_url,
        "postgres://gangway:pg-s3cret@db.internal/gangway"
    );
}

#[test]
fn unknown_reference_forms_are_refused_naming_the_key() {
    let env = env(&[("X", "x")]);
    for (text, key, says) in [
        (
            "workflows_dir = \"${ENV:X}/w\"",
            "`workflows_dir`",
            "unknown reference `${ENV:…}`",
        ),
        (
            "public_url = \"https://${foo}\"",
            "`public_url`",
            "unknown reference `${foo}`",
        ),
        (
            "[http.services.s]\nbase_url = \"http://x\"\nheaders = { A = \"Bearer ${env:X\" }",
            "`http.services.s.headers.A`",
            "unclosed `${`",
        ),
        (
            "[client]\nallowed_origins = [\"https://a.example\", \"${env:NOPE}\"]",
            "`client.allowed_origins[1]`",
            "`NOPE` is not set",
        ),
    ] {
        let e = load_err(text, &env);
        assert!(e.contains(key) && e.contains(says), "{text}: {e}");
    }
}

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Values that used to start the server silently: each stops the start
/// with an error that names the key and says what to write instead.
#[test]
fn bad_values_are_refused_naming_the_key_and_the_fix() {
    let endpoint = |url: &str, secret: &str| {
        format!("[[webhooks.endpoints]]\nurl = \"{url}\"\nsecret = \"{secret}\"\n")
    };
    let incode = |extra: &str| {
        format!(
            "[incode]\nbase_url = \"https://demo-api.incodesmile.com\"\napi_key = \"k\"\nconfiguration_id = \"c\"\n{extra}"
        )
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            endpoint("https://backend.example/h", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "webhooks.endpoints[0].secret",
            "does not start with `whsec_`",
        ),
        (
            endpoint("https://backend.example/h", "whsec_not base64!"),
            "webhooks.endpoints[0].secret",
            "not valid base64",
        ),
        (
            endpoint("https://backend.example/h", "whsec_c2hvcnQ="),
            "webhooks.endpoints[0].secret",
            "not 24 to 64",
        ),
        (
            endpoint("htp:/127.0.0.1 gangway", WHSEC),
            "webhooks.endpoints[0].url",
            "not an http:// or https:// URL (scheme `htp`)",
        ),
        (
            endpoint("http://127.0.0.1 gangway", WHSEC),
            "webhooks.endpoints[0].url",
            "contains a space",
        ),
        (
            format!("{}events = []\n", endpoint("https://b.example/h", WHSEC)),
            "webhooks.endpoints[0].events",
            "at least one event",
        ),
        (
            "public_url = \"gangway.example.com\"".into(),
            "`public_url`",
            "has no scheme; write it with http:// or https://, e.g. https://gangway.example.com",
        ),
        (
            "public_url = \"https://gangway.example.com/?x=1\"".into(),
            "`public_url`",
            "without user, query or fragment",
        ),
        (
            "[client]\nallowed_origins = [\"https://shop.example\", \"https://shop.example/checkout\"]".into(),
            "client.allowed_origins[1]",
            "write `https://shop.example`",
        ),
        (
            "[client]\nallowed_origins = [\"shop.example\"]".into(),
            "client.allowed_origins[0]",
            "has no scheme",
        ),
        (
            "[client]\nsecret_ttl = \"0s\"".into(),
            "client.secret_ttl",
            "longer than 0s",
        ),
        (
            "[engine]\nlease = \"0s\"".into(),
            "engine.lease",
            "at least 1s",
        ),
        (
            "[engine]\nnode_id = \"node a\"".into(),
            "engine.node_id",
            "spaces",
        ),
        (
            "[webhooks]\ntimeout = \"0s\"".into(),
            "webhooks.timeout",
            "longer than 0s",
        ),
        (
            "[postgres]\nacquire_timeout = \"0s\"".into(),
            "postgres.acquire_timeout",
            "longer than 0s",
        ),
        (
            "database_url = \"sqlite://\"".into(),
            "database_url",
            "names no database file",
        ),
        (
            "database_url = \"postgres://u:pw@db:notaport/g\"".into(),
            "database_url",
            "not a valid PostgreSQL URL",
        ),
        (
            "[http.services.s]\nbase_url = \"score.example.com\"".into(),
            "http.services.s.base_url",
            "has no scheme",
        ),
        (
            "[http.services.s]\nbase_url = \"https://s.example\"\nheaders = { \"Bad Name\" = \"v\" }".into(),
            "http.services.s.headers.Bad Name",
            "not a valid HTTP header name",
        ),
        (
            "[http.services.s]\nbase_url = \"https://s.example\"\nheaders = { A = \"line\\nbreak\" }".into(),
            "http.services.s.headers.A",
            "not a valid header value",
        ),
        (
            incode("webhook_client_id = \"incode\"\nwebhook_client_secret = \"short\"\n"),
            "incode.webhook_client_secret",
            "at least 16 characters",
        ),
        (
            incode("webhook_client_id = \"incode\"\n"),
            "incode.webhook_client_secret",
            "is missing",
        ),
        (
            "[oih]\nbase_url = \"https://oih.example\"\n[oih.flows.f]\nhmac_header = \"x hmac\"".into(),
            "oih.flows.f.hmac_header",
            "not a valid HTTP header name",
        ),
    ];
    for (text, key, fix) in cases {
        let e = load_err(&text, &[]);
        assert!(
            e.contains(&format!("config key `{}`", key.trim_matches('`'))) && e.contains(fix),
            "{text}\n=> {e}"
        );
    }
}

#[test]
fn errors_never_show_secrets_in_urls() {
    let e = load_err(
        &format!(
            "[[webhooks.endpoints]]\nurl = \"ftp://user:hunter2@b.example/h?token=s3cret\"\nsecret = \"{WHSEC}\"\n"
        ),
        &[],
    );
    assert!(e.contains("webhooks.endpoints[0].url"), "{e}");
    assert!(!e.contains("hunter2") && !e.contains("s3cret"), "{e}");
    let e = load_err(
        "[http.services.s]\nbase_url = \"https://s.example\"\nheaders = { A = \"Bearer top-secret\\n\" }",
        &[],
    );
    assert!(!e.contains("top-secret"), "{e}");
}

#[test]
fn toml_syntax_errors_point_at_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        dir.path(),
        "listen = \"127.0.0.1:1\"\n[engine]\nbatch_size = = 5\n",
    );
    let e = Config::load_with(Some(&f), &[]).unwrap_err().to_string();
    let at = format!("{}:3:14: not valid TOML", f.display());
    assert!(e.starts_with(&at), "{e}");
    // Said once: no snippet of the file repeated under it.
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn errors_name_the_file_position_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        dir.path(),
        &format!(
            "listen = \"127.0.0.1:1\"\n\n[engine]\n  bach_size = 5\n\n[[webhooks.endpoints]]\nurl = \"https://b.example/h\"\nsecret = \"{WHSEC}\"\n[[webhooks.endpoints]]\nurl = \"https://b.example/h\"\nsecret = \"nope\"\n"
        ),
    );
    let e = Config::load_with(Some(&f), &[]).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:4:3: config key `engine.bach_size`: unknown field `bach_size`",
            f.display()
        )),
        "{e}"
    );
    let text = std::fs::read_to_string(&f)
        .unwrap()
        .replace("  bach_size", "  batch_size");
    std::fs::write(&f, text).unwrap();
    let e = Config::load_with(Some(&f), &[]).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:11:1: config key `webhooks.endpoints[1].secret`",
            f.display()
        )),
        "{e}"
    );
}

#[test]
fn errors_from_the_environment_name_the_variable() {
    let e = Config::load_with(None, &env(&[("GANGWAY_ENGINE__BACH_SIZE", "5")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("environment variable GANGWAY_ENGINE__BACH_SIZE: config key `engine.bach_size`: unknown field `bach_size`"),
        "{e}"
    );
    let e = Config::load_with(None, &env(&[("GANGWAY_ENGINE__LEASE", "forever")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("environment variable GANGWAY_ENGINE__LEASE: config key `engine.lease`"),
        "{e}"
    );
    // One underscore where two belong.
    let e = Config::load_with(None, &env(&[("GANGWAY_ENGINE_BATCH_SIZE", "5")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("write GANGWAY_ENGINE__BATCH_SIZE"), "{e}");
}

/// Issue 21: `GANGWAY_BIN` (a wrapper script's own setting) stopped the
/// server with "config key 'bin': unknown field 'bin'".
#[test]
fn unknown_variables_are_named_with_the_accepted_ones_and_reserved_prefixes_ignored() {
    let e = Config::load_with(None, &env(&[("GANGWAY_BIN", "/usr/bin/gangway")]))
        .unwrap_err()
        .to_string();
    for says in [
        "environment variable GANGWAY_BIN: config key `bin`: no such key",
        "GANGWAY_LISTEN, GANGWAY_ADMIN_LISTEN, GANGWAY_DATABASE_URL",
        "GANGWAY_ENCRYPTION_KEY",
        "ENGINE",
        "GANGWAY_X_",
    ] {
        assert!(e.contains(says), "{says}: {e}");
    }
    let e = Config::load_with(None, &env(&[("GANGWAY_LISTEN__PORT", "1")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("a single value, not a section"), "{e}");
    Config::load_with(
        None,
        &env(&[
            ("GANGWAY_X_BIN", "/usr/bin/gangway"),
            ("GANGWAY_TEST_BACKEND", "postgres"),
            ("GANGWAY_DEMO_API_KEY", "k"),
            ("GANGWAY_BENCH_API_KEY", "k"),
        ]),
    )
    .expect("reserved prefixes are not config keys");
}

#[test]
fn empty_variables_get_a_true_hint() {
    let e = Config::load_with(None, &env(&[("GANGWAY_ENCRYPTION_KEY", "")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("environment variable GANGWAY_ENCRYPTION_KEY (set but empty): config key `encryption_key`"),
        "{e}"
    );
    let e = load_err(
        "[incode]\nbase_url = \"https://demo-api.incodesmile.com\"\napi_key = \"${env:INCODE_API_KEY}\"\nconfiguration_id = \"c\"\nwebhook_header_secret = \"0123456789abcdef\"\n",
        &env(&[("INCODE_API_KEY", "")]),
    );
    assert!(
        e.contains("config key `incode.api_key`: environment variable `INCODE_API_KEY` (in `${env:INCODE_API_KEY}`) is set but empty"),
        "{e}"
    );
    assert!(!e.contains("use `${env:"), "{e}");
}

#[test]
fn numbers_from_the_environment_are_text_where_text_is_wanted() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        dir.path(),
        "[incode]\nbase_url = \"https://demo-api.incodesmile.com\"\napi_key = \"k\"\nconfiguration_id = \"c\"\nwebhook_header_secret = \"0123456789abcdef\"\n",
    );
    let c = Config::load_with(
        Some(&f),
        &env(&[
            ("GANGWAY_INCODE__CONFIGURATION_ID", "12345"),
            ("GANGWAY_ENGINE__BATCH_SIZE", "64"),
        ]),
    )
    .expect("valid");
    assert_eq!(
        c.section::<crate::providers::incode::config::IncodeConfig>()
            .expect("incode")
            .configuration_id,
        "12345"
    );
    assert_eq!(c.engine.batch_size, 64);
    let e = Config::load_with(None, &env(&[("GANGWAY_ENGINE__BATCH_SIZE", "many")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("environment variable GANGWAY_ENGINE__BATCH_SIZE: config key `engine.batch_size`: invalid type: string \"many\""),
        "{e}"
    );
}

/// Issue 18 #2, #8, #14: the `[server]` limits, `admin_listen` and `[tls]`
/// are checked like every other key.
#[test]
fn server_limits_admin_listen_and_tls_are_checked() {
    let config = Config::load_with(None, &env(&[])).unwrap();
    assert_eq!(config.server.max_connections, 10000);
    assert_eq!(
        config.server.drain_period,
        std::time::Duration::from_secs(5)
    );
    assert!(config.admin_listen.is_none() && config.tls.is_none());
    for (vars, says) in [
        (
            vec![("GANGWAY_SERVER__MAX_CONNECTIONS", "0")],
            "config key `server.max_connections`: must be at least 1",
        ),
        (
            vec![("GANGWAY_SERVER__HEADER_TIMEOUT", "0s")],
            "config key `server.header_timeout`: must be at least 100ms",
        ),
        (
            vec![
                ("GANGWAY_LISTEN", "127.0.0.1:8080"),
                ("GANGWAY_ADMIN_LISTEN", "127.0.0.1:8080"),
            ],
            "config key `admin_listen`: must differ from `listen`",
        ),
        (
            vec![
                ("GANGWAY_TLS__CERT_FILE", "/etc/gangway/cert.pem"),
                ("GANGWAY_TLS__KEY_FILE", "/etc/gangway/key.pem"),
                ("GANGWAY_TLS__RELOAD_INTERVAL", "10ms"),
            ],
            "config key `tls.reload_interval`: must be at least 1s",
        ),
    ] {
        let e = Config::load_with(None, &env(&vars))
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{says}: {e}");
    }
    let config = Config::load_with(
        None,
        &env(&[
            ("GANGWAY_ADMIN_LISTEN", "127.0.0.1:9090"),
            ("GANGWAY_TLS__CERT_FILE", "/etc/gangway/cert.pem"),
            ("GANGWAY_TLS__KEY_FILE", "/etc/gangway/key.pem"),
        ]),
    )
    .unwrap();
    assert_eq!(config.admin_listen, Some("127.0.0.1:9090".parse().unwrap()));
    let tls = config.tls.as_ref().unwrap();
    assert_eq!(tls.hsts().as_deref(), Some("max-age=31536000"));
    assert!(config.base_url().starts_with("https://"));
}

#[test]
fn otel_is_off_by_default_and_its_values_are_checked_when_on() {
    let c = Config::load_with(None, &[]).expect("defaults are valid");
    assert!(!c.otel.enabled);
    // Off: the other values are not looked at.
    Config::load_with(None, &env(&[("GANGWAY_OTEL__ENDPOINT", "nope")])).expect("off");
    let on = |k: &str, v: &str| {
        Config::load_with(None, &env(&[("GANGWAY_OTEL__ENABLED", "true"), (k, v)]))
    };
    let c = on("GANGWAY_OTEL__SAMPLE_RATIO", "0.25").expect("valid");
    assert!(c.otel.enabled);
    assert!((c.otel.sample_ratio - 0.25).abs() < f64::EPSILON);
    for (var, value, key) in [
        ("GANGWAY_OTEL__ENDPOINT", "collector:4318", "otel.endpoint"),
        (
            "GANGWAY_OTEL__ENDPOINT",
            "grpc://collector:4317",
            "otel.endpoint",
        ),
        (
            "GANGWAY_OTEL__ENDPOINT",
            "http://u:p@collector:4318/v1/traces",
            "otel.endpoint",
        ),
        ("GANGWAY_OTEL__SERVICE_NAME", " ", "otel.service_name"),
        ("GANGWAY_OTEL__SAMPLE_RATIO", "1.5", "otel.sample_ratio"),
        ("GANGWAY_OTEL__SAMPLE_RATIO", "-0.1", "otel.sample_ratio"),
        ("GANGWAY_OTEL__TIMEOUT", "0s", "otel.timeout"),
        ("GANGWAY_OTEL__TIMEOUT", "2m", "otel.timeout"),
        ("GANGWAY_OTEL__BATCH_DELAY", "0s", "otel.batch_delay"),
    ] {
        let e = on(var, value).expect_err(value).to_string();
        assert!(e.contains(key), "{value}: {e}");
        assert!(!e.contains("u:p"), "{e}");
    }
}

fn http(c: &Config) -> &crate::providers::http::config::HttpConnectorConfig {
    c.section().expect("[http]")
}

/// A provider's section is its own type, read through the registry; an
/// unknown top-level section is still refused, naming it.
#[test]
fn provider_sections_come_from_the_registry() {
    let e = load_err("[incodee]\napi_key = \"k\"\n", &[]);
    assert!(
        e.contains("config key `incodee`: unknown field `incodee`"),
        "{e}"
    );
    assert!(e.contains("or a provider section: "), "{e}");
    for p in crate::providers::REGISTRY {
        assert!(e.contains(&format!("`{}`", p.config.key)), "{e}");
    }
    let e = load_err(
        "[stripe]\nsecret_key = \"sk_test_x\"\nwebhook_secrets = [\"whsec_0123456789abcdef\"]\nnope = 1\n",
        &[],
    );
    assert!(
        e.contains("config key `stripe.nope`: unknown field `nope`"),
        "{e}"
    );
    let e = load_err("stripe = 5\n", &[]);
    assert!(e.contains("config key `stripe`: invalid type"), "{e}");
    let e = Config::load_with(None, &env(&[("GANGWAY_OIH__BASE_URL", "ftp://x")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`oih.base_url`"), "{e}");
}
