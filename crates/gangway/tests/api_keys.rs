//! API key management: `gangway keys list|revoke|rotate` against a running
//! server's database, the admin API, scopes on every `/v1` route, expiry,
//! rotation overlap, revocation reaching another node of a PostgreSQL
//! cluster within a second, and `keys` refusing to make a database.
#![allow(clippy::unwrap_used)]

mod common;

use common::{BIN, Harness, Options, create_key, eventually};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

/// `gangway keys ARGS... --config CONFIG`: (success, stdout, stderr).
fn keys(h: &Harness, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("keys")
        .args(args)
        .args(["--config", h.config.to_str().unwrap()])
        .env_remove("GANGWAY_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// GET `path` on `base` with `key`: status and body.
async fn get_with(h: &Harness, base: &str, path: &str, key: &str) -> (u16, Value) {
    let r = h
        .http
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn send(
    h: &Harness,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = match method {
        "GET" => h.http.get(h.url(path)),
        "DELETE" => h.http.delete(h.url(path)),
        _ => h.http.post(h.url(path)),
    };
    req = req.bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    // An event stream (GET /v1/sessions/changes) never ends: its status is
    // the answer, its body is not read.
    let streaming = r
        .headers()
        .get("content-type")
        .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        return (status, Value::Null);
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until `f` is true, for at most `within` (the property under test
/// is how soon it holds, so the deadline is the assertion).
async fn within<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if f().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The database the harness's server uses, as `keys` names it.
fn db_name(h: &Harness) -> String {
    let url = h.db.url();
    match url.strip_prefix("sqlite://") {
        Some(path) => format!(
            "sqlite://{}",
            std::path::Path::new(path).canonicalize().unwrap().display()
        ),
        None => url.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_lists_rotates_and_revokes_the_running_servers_keys() {
    let h = Harness::start().await;
    let db = db_name(&h);
    let key = create_key(&h.config, "backend-a", &["sessions:read", "workflows:read"]);
    assert_eq!(get_with(&h, &h.base, "/v1/workflows", &key).await.0, 200);

    let (ok, out, err) = keys(&h, &["list"]);
    assert!(ok, "{err}");
    assert!(err.contains(&db), "list must name the database {db}: {err}");
    assert!(out.contains("backend-a") && out.contains("tests"), "{out}");
    assert!(out.contains("sessions:read,workflows:read"), "{out}");
    let (ok, out, _) = keys(&h, &["list", "--json"]);
    assert!(ok);
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    let id = listed.iter().find(|k| k["name"] == "backend-a").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!out.contains(&key), "a listing never shows a secret");

    // Rotation: a new secret; the old one keeps working for the grace.
    let (ok, new_key, err) = keys(&h, &["rotate", &id, "--grace", "1h"]);
    assert!(ok, "{err}");
    assert!(
        err.contains(&db) && err.contains("keeps working until"),
        "{err}"
    );
    let new_key = new_key.trim().to_string();
    assert!(new_key.starts_with("gw_") && new_key != key);
    assert_eq!(
        get_with(&h, &h.base, "/v1/workflows", &new_key).await.0,
        200
    );
    assert_eq!(get_with(&h, &h.base, "/v1/workflows", &key).await.0, 200);
    // Without grace the secret it replaces stops at once.
    let (ok, newest, err) = keys(&h, &["rotate", &id, "--grace", "0s"]);
    assert!(ok, "{err}");
    let newest = newest.trim().to_string();
    within(
        "the replaced secret refused",
        Duration::from_secs(1),
        || async { get_with(&h, &h.base, "/v1/workflows", &new_key).await.0 == 401 },
    )
    .await;
    assert_eq!(get_with(&h, &h.base, "/v1/workflows", &newest).await.0, 200);
    // The first secret is still in its hour of grace.
    assert_eq!(get_with(&h, &h.base, "/v1/workflows", &key).await.0, 200);

    // Revocation: every secret of the key stops within a second, though
    // the server has them cached.
    let (ok, _, err) = keys(&h, &["revoke", &id]);
    assert!(ok, "{err}");
    assert!(err.contains(&db) && err.contains("Revoked"), "{err}");
    within(
        "the revoked key refused",
        Duration::from_secs(1),
        || async {
            let (a, body) = get_with(&h, &h.base, "/v1/workflows", &newest).await;
            let (b, _) = get_with(&h, &h.base, "/v1/workflows", &key).await;
            a == 401 && b == 401 && body["detail"].as_str().unwrap().contains("revoked")
        },
    )
    .await;
    let (ok, _, err) = keys(&h, &["revoke", &id]);
    assert!(ok && err.contains("already revoked"), "{err}");
    let (ok, _, err) = keys(&h, &["rotate", &id]);
    assert!(!ok && err.contains("revoked"), "{err}");
    let (ok, _, err) = keys(&h, &["revoke", "key_nope"]);
    assert!(!ok && err.contains("no API key `key_nope`"), "{err}");
    // The harness's own key is untouched.
    assert_eq!(h.get("/v1/workflows").await.0, 200);
}

#[test]
fn keys_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .env_remove("GANGWAY_DATABASE_URL")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8(out.stderr).unwrap())
    };
    // No --config: the default ./gangway.db, which does not exist.
    let (ok, err) = run(&["keys", "create", "--name", "x"]);
    assert!(!ok);
    assert!(
        err.contains(&format!("{}", dir.path().join("gangway.db").display()))
            && err.contains("does not exist")
            && err.contains("--config"),
        "{err}"
    );
    assert!(
        !dir.path().join("gangway.db").exists(),
        "a database was created"
    );
    for cmd in [
        &["keys", "list"][..],
        &["keys", "revoke", "key_x"],
        &["keys", "rotate", "key_x"],
    ] {
        let (ok, err) = run(cmd);
        assert!(!ok && err.contains("does not exist"), "{cmd:?}: {err}");
    }
    assert!(!dir.path().join("gangway.db").exists());

    // With a config: refused until `migrate` made the database.
    let db = dir.path().join("prod.db");
    let config = dir.path().join("gangway.toml");
    std::fs::write(
        &config,
        format!("database_url = \"sqlite://{}\"\n", db.display()),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let (ok, err) = run(&["keys", "create", "--name", "x", "--config", c]);
    assert!(
        !ok && err.contains("does not exist") && err.contains("gangway migrate --config"),
        "{err}"
    );
    assert!(!db.exists());
    // An empty file is not a migrated database either.
    std::fs::write(&db, "").unwrap();
    let (ok, err) = run(&["keys", "create", "--name", "x", "--config", c]);
    assert!(!ok && err.contains("not migrated"), "{err}");
    let (ok, err) = run(&["migrate", "--config", c]);
    assert!(ok, "{err}");
    let (ok, err) = run(&[
        "keys",
        "create",
        "--name",
        "x",
        "--config",
        c,
        "--expires",
        "90d",
    ]);
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!(
            "sqlite://{}",
            db.canonicalize().unwrap().display()
        )),
        "{err}"
    );
    let (ok, err) = run(&[
        "keys",
        "create",
        "--name",
        "y",
        "--config",
        c,
        "--expires",
        "2001-01-01T00:00:00Z",
    ]);
    assert!(
        !ok && err.contains("--expires") && err.contains("not in the future"),
        "{err}"
    );
    let (ok, err) = run(&[
        "keys",
        "create",
        "--name",
        "y",
        "--config",
        c,
        "--scope",
        "sessions:delete",
    ]);
    assert!(
        !ok && err.contains("unknown scope `sessions:delete`"),
        "{err}"
    );
}

/// Every `/v1` route that takes an API key, with the scope it requires.
const ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/v1/sessions", "sessions:write"),
    ("GET", "/v1/sessions", "sessions:read"),
    ("GET", "/v1/sessions/{id}", "sessions:read"),
    ("POST", "/v1/sessions/{id}/cancel", "sessions:write"),
    ("DELETE", "/v1/sessions/{id}/data", "sessions:erase"),
    ("GET", "/v1/sessions/{id}/timeline", "sessions:read"),
    ("GET", "/v1/sessions/{id}/deliveries", "sessions:read"),
    ("GET", "/v1/sessions/{id}/secrets", "secrets:read"),
    ("GET", "/v1/workflows", "workflows:read"),
    ("GET", "/v1/sessions/changes", "sessions:read"),
    ("GET", "/v1/workflows/counts", "workflows:read"),
    (
        "GET",
        "/v1/workflows/{id}/versions/{version}",
        "workflows:read",
    ),
    ("POST", "/v1/workflows/validate", "workflows:dry-run"),
    ("POST", "/v1/workflows/{id}/dry-run", "workflows:dry-run"),
    ("GET", "/v1/admin/keys", "admin"),
    ("POST", "/v1/admin/keys", "admin"),
    ("GET", "/v1/admin/keys/{id}", "admin"),
    ("POST", "/v1/admin/keys/{id}/revoke", "admin"),
    ("POST", "/v1/admin/keys/{id}/rotate", "admin"),
    ("POST", "/v1/admin/workflows", "admin"),
    ("GET", "/v1/admin/audit", "admin"),
    ("GET", "/v1/admin/audit/export", "admin"),
    ("GET", "/v1/reviews", "reviews:read"),
    ("GET", "/v1/reviews/{id}", "reviews:read"),
    ("POST", "/v1/reviews/{id}/claim", "reviews:decide"),
    ("POST", "/v1/reviews/{id}/decide", "reviews:decide"),
    ("GET", "/v1/deliveries", "sessions:read"),
    ("GET", "/v1/deliveries/{id}", "sessions:read"),
    ("POST", "/v1/deliveries/{id}/redeliver", "sessions:write"),
    ("POST", "/v1/deliveries/redeliver", "sessions:write"),
    ("GET", "/v1/stats/funnel", "sessions:read"),
    ("GET", "/v1/stats/outcomes", "sessions:read"),
    ("GET", "/v1/stats/providers", "sessions:read"),
];

const SCOPES: &[&str] = &[
    "sessions:read",
    "sessions:write",
    "secrets:read",
    "workflows:read",
    "workflows:dry-run",
    "sessions:erase",
    "admin",
    "reviews:read",
    "reviews:decide",
];

#[tokio::test(flavor = "multi_thread")]
async fn every_v1_route_checks_its_scope() {
    let h = Harness::start().await;
    // The OpenAPI document lists the same routes with the same scopes.
    let (_, doc) = get_with(&h, &h.base, "/openapi.json", "").await;
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if let Some(scopes) = op["security"][0]["apiKey"].as_array() {
                assert_eq!(scopes.len(), 1, "{method} {path}: {scopes:?}");
                documented.push((
                    method.to_uppercase(),
                    path.clone(),
                    scopes[0].as_str().unwrap().to_string(),
                ));
                for code in ["401", "403", "429"] {
                    assert!(
                        op["responses"].get(code).is_some(),
                        "{method} {path} lacks {code}"
                    );
                }
            }
        }
    }
    let mut table: Vec<(String, String, String)> = ROUTES
        .iter()
        .map(|(m, p, s)| (m.to_string(), p.to_string(), s.to_string()))
        .collect();
    documented.sort();
    table.sort();
    assert_eq!(
        documented, table,
        "the OpenAPI document and this table differ"
    );

    // A key with only one scope, and one with every scope but it.
    let admin = create_key(&h.config, "admin", &["admin"]);
    let mut only = std::collections::HashMap::new();
    let mut all_but = std::collections::HashMap::new();
    for scope in SCOPES {
        // `admin` implies the review scopes, and may validate a draft: a
        // key without one of those lacks admin too.
        let implied = scope.starts_with("reviews:") || *scope == "workflows:dry-run";
        let others: Vec<&str> = SCOPES
            .iter()
            .copied()
            .filter(|s| s != scope && !(implied && *s == "admin"))
            .collect();
        for (name, scopes, into) in [
            (format!("only {scope}"), vec![*scope], &mut only),
            (format!("all but {scope}"), others, &mut all_but),
        ] {
            let (status, body) = send(
                &h,
                "POST",
                "/v1/admin/keys",
                &admin,
                Some(json!({"name": name, "scopes": scopes})),
            )
            .await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(
                body["scopes"].as_array().unwrap().len(),
                scopes.len(),
                "{body}"
            );
            into.insert(*scope, body["key"].as_str().unwrap().to_string());
        }
    }
    let session = h.create_score_session("scopes").await;
    let sid = session["id"].as_str().unwrap();
    let victim = |name: &'static str| {
        let admin = admin.clone();
        let h = &h;
        async move {
            let (_, body) = send(
                h,
                "POST",
                "/v1/admin/keys",
                &admin,
                Some(json!({"name": name})),
            )
            .await;
            body["id"].as_str().unwrap().to_string()
        }
    };
    for (method, path, scope) in ROUTES {
        let (concrete, body) = if path.starts_with("/v1/admin/keys/") {
            (path.replace("{id}", &victim("victim").await), None)
        } else if *path == "/v1/workflows/validate" {
            (path.to_string(), Some(json!({"source": "id: x"})))
        } else if path.starts_with("/v1/workflows/") {
            (
                path.replace("{id}", "http-score").replace("{version}", "1"),
                Some(json!({"timeout_s": 1})),
            )
        } else {
            let body = (*path == "/v1/sessions" && *method == "POST")
                .then(|| json!({"workflow": "http-score", "reference": "scoped"}))
                .or_else(|| {
                    (*path == "/v1/admin/keys" && *method == "POST")
                        .then(|| json!({"name": "made"}))
                })
                .or_else(|| {
                    path.ends_with("/decide")
                        .then(|| json!({"decision": "approved", "note": "scoped"}))
                })
                .or_else(|| {
                    (*path == "/v1/deliveries/redeliver")
                        .then(|| json!({"status": "failed", "since": "2026-01-01T00:00:00Z"}))
                });
            (path.replace("{id}", sid), body)
        };
        let (status, problem) = send(&h, method, &concrete, &all_but[scope], body.clone()).await;
        assert_eq!(status, 403, "{method} {path} without {scope}: {problem}");
        assert_eq!(problem["missing_scope"], *scope, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(scope),
            "{problem}"
        );
        let (status, answer) = send(&h, method, &concrete, &only[scope], body).await;
        assert!(
            !matches!(status, 401 | 403 | 429),
            "{method} {path} with only {scope}: {status} {answer}"
        );
    }
    // Keys made before scopes existed (and the harness's, made without
    // --scope) hold every scope but admin.
    assert_eq!(h.get("/v1/sessions").await.0, 200);
    let (status, problem) = h.get("/v1/admin/keys").await;
    assert_eq!(
        (status, problem["missing_scope"].as_str()),
        (403, Some("admin"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_expiry_and_rotation_overlap() {
    let h = Harness::start().await;
    let admin = create_key(&h.config, "admin", &["admin"]);
    let create = |body: Value| {
        let admin = admin.clone();
        let h = &h;
        async move { send(h, "POST", "/v1/admin/keys", &admin, Some(body)).await }
    };

    // Bad input: a clear 422 each.
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (
            json!({"name": "x", "scopes": ["sessions:delete"]}),
            "scopes",
        ),
        (
            json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (json!({"name": "x", "expires_in": "soon"}), "expires_in"),
        (
            json!({"name": "x", "expires_in": "1h", "expires_at": "2099-01-01T00:00:00Z"}),
            "expires_at",
        ),
    ] {
        let (status, problem) = create(body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem}"
        );
    }

    // Expiry: works until then, refused after, saying so.
    let (status, short) = create(json!({"name": "short", "expires_in": "3s"})).await;
    assert_eq!(status, 201, "{short}");
    assert_eq!(short["status"], "active");
    let short_key = short["key"].as_str().unwrap().to_string();
    assert_eq!(
        get_with(&h, &h.base, "/v1/workflows", &short_key).await.0,
        200
    );
    let problem = eventually("the key to expire", 20, || async {
        let (status, body) = get_with(&h, &h.base, "/v1/workflows", &short_key).await;
        (status == 401).then_some(body)
    })
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
    let (_, listed) = send(&h, "GET", "/v1/admin/keys", &admin, None).await;
    let short_id = short["id"].as_str().unwrap();
    let row = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == short_id)
        .unwrap()
        .clone();
    assert_eq!(row["status"], "expired", "{row}");
    assert!(row.get("key").is_none(), "{row}");
    let (status, _) = send(
        &h,
        "POST",
        &format!("/v1/admin/keys/{short_id}/rotate"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 409);

    // Rotation: both secrets work during the grace; then only the new one.
    let (_, k) = create(json!({"name": "rotating"})).await;
    let (id, old) = (
        k["id"].as_str().unwrap().to_string(),
        k["key"].as_str().unwrap().to_string(),
    );
    let (status, rotated) = send(
        &h,
        "POST",
        &format!("/v1/admin/keys/{id}/rotate"),
        &admin,
        Some(json!({"grace": "3s"})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    assert!(rotated["rotated_at"].is_string(), "{rotated}");
    assert_eq!(get_with(&h, &h.base, "/v1/sessions", &old).await.0, 200);
    assert_eq!(get_with(&h, &h.base, "/v1/sessions", &new).await.0, 200);
    let problem = eventually("the grace to end", 20, || async {
        let (status, body) = get_with(&h, &h.base, "/v1/sessions", &old).await;
        (status == 401).then_some(body)
    })
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("rotated"),
        "{problem}"
    );
    assert_eq!(get_with(&h, &h.base, "/v1/sessions", &new).await.0, 200);
    // The default grace is a day; a bad one is refused.
    let (_, again) = send(
        &h,
        "POST",
        &format!("/v1/admin/keys/{id}/rotate"),
        &admin,
        None,
    )
    .await;
    let until = again["previous_secret_expires_at"].as_str().unwrap();
    let until =
        time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339).unwrap();
    let left = until - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::hours(23) && left <= time::Duration::hours(24),
        "{again}"
    );
    assert_eq!(get_with(&h, &h.base, "/v1/sessions", &new).await.0, 200);
    let (status, _) = send(
        &h,
        "POST",
        &format!("/v1/admin/keys/{id}/rotate"),
        &admin,
        Some(json!({"grace": "31d"})),
    )
    .await;
    assert_eq!(status, 422);

    // Revocation over the API: at once on this node; unknown ids are 404.
    let (status, revoked) = send(
        &h,
        "POST",
        &format!("/v1/admin/keys/{id}/revoke"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (200, Some("revoked")),
        "{revoked}"
    );
    let (status, body) =
        get_with(&h, &h.base, "/v1/sessions", again["key"].as_str().unwrap()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        send(&h, "POST", "/v1/admin/keys/key_nope/revoke", &admin, None)
            .await
            .0,
        404
    );
    assert_eq!(
        send(&h, "GET", "/v1/admin/keys/key_nope", &admin, None)
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_reaches_the_other_node_within_a_second() {
    let mut h = Harness::start_with(Options {
        postgres: true,
        ..Options::default()
    })
    .await;
    h.add_node();
    let other = h.node_url(0, "");
    let admin = create_key(&h.config, "admin", &["admin"]);
    let (_, k) = send(
        &h,
        "POST",
        "/v1/admin/keys",
        &admin,
        Some(json!({"name": "shared"})),
    )
    .await;
    let (id, key) = (
        k["id"].as_str().unwrap().to_string(),
        k["key"].as_str().unwrap().to_string(),
    );
    // Node 1 authenticates it (and caches it for a minute).
    assert_eq!(get_with(&h, &other, "/v1/sessions", &key).await.0, 200);

    // Rotated on node 0 without grace: node 1 refuses the old secret.
    let (status, rotated) = send(
        &h,
        "POST",
        &format!("/v1/admin/keys/{id}/rotate"),
        &admin,
        Some(json!({"grace": "0s"})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    within(
        "node 1 refusing the replaced secret",
        Duration::from_secs(1),
        || async { get_with(&h, &other, "/v1/sessions", &key).await.0 == 401 },
    )
    .await;
    let key = rotated["key"].as_str().unwrap().to_string();
    assert_eq!(get_with(&h, &other, "/v1/sessions", &key).await.0, 200);

    // Revoked on node 0: node 1 refuses it within a second.
    let (status, _) = send(
        &h,
        "POST",
        &format!("/v1/admin/keys/{id}/revoke"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    within(
        "node 1 refusing the revoked key",
        Duration::from_secs(1),
        || async { get_with(&h, &other, "/v1/sessions", &key).await.0 == 401 },
    )
    .await;

    // Revoked with the CLI: both nodes refuse within a second.
    let cli = create_key(&h.config, "cli", &[]);
    for base in [&h.base, &other] {
        assert_eq!(get_with(&h, base, "/v1/sessions", &cli).await.0, 200);
    }
    let (_, out, _) = keys(&h, &["list", "--json"]);
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    let cli_id = listed.iter().find(|k| k["name"] == "cli").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, _, err) = keys(&h, &["revoke", &cli_id]);
    assert!(ok, "{err}");
    assert!(err.contains(&db_name(&h)), "{err}");
    within(
        "both nodes refusing the key revoked by the CLI",
        Duration::from_secs(1),
        || async {
            get_with(&h, &h.base, "/v1/sessions", &cli).await.0 == 401
                && get_with(&h, &other, "/v1/sessions", &cli).await.0 == 401
        },
    )
    .await;
}
