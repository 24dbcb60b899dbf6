//! Operators and the console's security through the real binary: accounts
//! made by `gangway operators`, sign-in through the form (cookie flags),
//! roles on every API operation (the OpenAPI document's scopes), CSRF
//! (missing token, another Origin, a cross-site fetch), the lockout and its
//! backoff, the idle timeout, sign-out, disabled operators, and the audit
//! entries each of these leaves.
#![allow(clippy::unwrap_used)]

mod common;

use common::{BIN, Harness, Options, create_key};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

const PASSWORD: &str = "a long enough password";

/// `gangway operators <args>` with `stdin`; (success, stdout, stderr).
fn operators(h: &Harness, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .arg("operators")
        .args(args)
        .args(["--config", h.config.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn create_operator(h: &Harness, email: &str, role: &str) {
    let (ok, _, err) = operators(
        h,
        &["create", email, "--role", role, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "{err}");
}

/// A browser without one: redirects are looked at, not followed.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in with the form; the response.
async fn sign_in(h: &Harness, email: &str, password: &str) -> reqwest::Response {
    client()
        .post(h.url("/console/login?next=/console/reviews"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// A signed-in operator: its cookie and CSRF token.
struct Console {
    cookie: String,
    csrf: String,
}

async fn console(h: &Harness, email: &str) -> Console {
    let r = sign_in(h, email, PASSWORD).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let me: Value = client()
        .get(h.url("/v1/console/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Console {
        cookie,
        csrf: me["csrf_token"].as_str().unwrap().to_string(),
    }
}

impl Console {
    async fn send(&self, h: &Harness, method: &str, path: &str, csrf: bool) -> (u16, Value) {
        let mut req = client()
            .request(method.parse().unwrap(), h.url(path))
            .header("cookie", &self.cookie);
        if csrf {
            req = req.header("x-csrf-token", &self.csrf);
        }
        if method != "GET" && method != "DELETE" {
            req = req.json(&json!({}));
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        // An event stream (GET /v1/sessions/changes) never ends: its status
        // is the answer, its body is not read.
        let streaming = r
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
        if streaming {
            return (status, Value::Null);
        }
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

async fn audit(h: &Harness, admin: &str, query: &str) -> Vec<Value> {
    let r: Value = h
        .http
        .get(h.url(&format!("/v1/admin/audit?{query}")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["data"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_are_created_on_the_command_line_and_sign_in_with_a_strict_cookie() {
    let h = Harness::start().await;
    // A generated password is printed once, on stdout.
    let (ok, printed, err) = operators(&h, &["create", "Ada@Example.com", "--role", "admin"], "");
    assert!(ok, "{err}");
    let generated = printed.trim();
    assert_eq!(generated.len(), 24, "{printed}");
    assert!(err.contains("ada@example.com"), "{err}");
    // Refusals: a taken email, an unknown role, a short password.
    let (ok, _, err) = operators(&h, &["create", "ada@example.com", "--role", "viewer"], "");
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, _, err) = operators(&h, &["create", "bob@example.com", "--role", "boss"], "");
    assert!(!ok && err.contains("viewer, reviewer or admin"), "{err}");
    let (ok, _, err) = operators(
        &h,
        &[
            "create",
            "bob@example.com",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!ok && err.contains("at least 12"), "{err}");

    // The console sends an operator who is not signed in to the form.
    let r = client()
        .get(h.url("/console/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/console/login?next=%2Fconsole%2Fsessions"
    );
    let page = client().get(h.url("/console/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );

    // A wrong password: 401, the form again, no cookie.
    let r = sign_in(&h, "ada@example.com", "not the password").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("wrong email or password"));
    // The email is matched without regard to case.
    let r = sign_in(&h, "ADA@example.com", generated).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/reviews");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    // Behind a proxy that terminates TLS, the cookie is Secure.
    let r = client()
        .post(h.url("/console/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("email", "ada@example.com"), ("password", generated)])
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    // `next` never leads off the console.
    for next in ["https://evil.example/", "//evil.example", "/v1/sessions"] {
        let r = client()
            .post(h.url(&format!("/console/login?next={}", urlencode(next))))
            .form(&[("email", "ada@example.com"), ("password", generated)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], "/console", "{next}");
    }

    // Signed in, the console and who-am-I answer.
    let cookie = set.split(';').next().unwrap();
    let r = client()
        .get(h.url("/console/sessions"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = client()
        .get(h.url("/v1/console/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["operator"]["email"], "ada@example.com");
    assert_eq!(me["operator"]["role"], "admin");
    assert!(me["scopes"].as_array().unwrap().contains(&json!("admin")));
    // An API key is not a console session.
    let r = h
        .http
        .get(h.url("/v1/console/me"))
        .bearer_auth(&h.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Audited: created by the CLI, each sign-in and failure by the operator.
    let admin = create_key(&h.config, "auditor", &["admin"]);
    let id = me["operator"]["id"].as_str().unwrap();
    let actions: Vec<(String, String)> = audit(&h, &admin, &format!("target={id}"))
        .await
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    let count = |action: &str| actions.iter().filter(|(a, _)| a == action).count();
    assert_eq!(count("operator.created"), 1, "{actions:?}");
    assert!(
        actions
            .iter()
            .any(|(a, who)| a == "operator.created" && who.starts_with("cli"))
    );
    assert_eq!(count("operator.sign_in_failed"), 1, "{actions:?}");
    assert_eq!(count("operator.signed_in"), 5, "{actions:?}");
    assert!(
        actions
            .iter()
            .filter(|(a, _)| a.starts_with("operator.sign"))
            .all(|(_, who)| *who == format!("operator:{id}"))
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every operation the OpenAPI document gives an API-key scope answers a
/// console session by its role: 403 `missing_scope` exactly when the role
/// lacks the scope.
#[tokio::test(flavor = "multi_thread")]
async fn every_operation_checks_the_operators_role() {
    let h = Harness::start().await;
    let doc: Value = h
        .http
        .get(h.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let roles = [
        (
            "viewer",
            vec!["sessions:read", "workflows:read", "reviews:read"],
        ),
        (
            "reviewer",
            vec![
                "sessions:read",
                "workflows:read",
                "reviews:read",
                "reviews:decide",
            ],
        ),
        (
            "admin",
            vec![
                "sessions:read",
                "workflows:read",
                "reviews:read",
                "reviews:decide",
                "sessions:write",
                "workflows:dry-run",
                "admin",
            ],
        ),
    ];
    let mut checked = 0;
    for (role, scopes) in roles {
        let email = format!("{role}@example.com");
        create_operator(&h, &email, role);
        let c = console(&h, &email).await;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let Some(scope) = op["security"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find_map(|s| s["consoleSession"][0].as_str())
                else {
                    continue;
                };
                let concrete = path
                    .replace("{id}", "x")
                    .replace("{version}", "1")
                    .replace("{name}", "x");
                let (status, body) = c.send(&h, &method.to_uppercase(), &concrete, true).await;
                let refused = status == 403 && body["missing_scope"] == scope;
                assert_eq!(
                    refused,
                    !scopes.contains(&scope),
                    "{role} {method} {path} needs {scope}: {status} {body}"
                );
                assert!(status < 500, "{role} {method} {path}: {status} {body}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 3 * 20, "only {checked} checks");
    // Sessions are created by the customer's backend with its API key.
    let c = console(&h, "admin@example.com").await;
    let r = client()
        .post(h.url("/v1/sessions"))
        .header("cookie", &c.cookie)
        .header("x-csrf-token", &c.csrf)
        .json(&json!({"workflow": "http-score", "input": {}}))
        .send()
        .await
        .unwrap();
    let (status, body): (u16, Value) = (r.status().as_u16(), r.json().await.unwrap());
    assert_eq!(
        (
            status,
            body["type"].as_str().unwrap().ends_with("api-key-required")
        ),
        (403, true)
    );
}

/// A state-changing console request needs the session's CSRF token and the
/// console's origin; a sign-in form posted from another site is refused.
#[tokio::test(flavor = "multi_thread")]
async fn console_requests_without_the_csrf_token_or_from_another_site_are_refused() {
    let h = Harness::start().await;
    create_operator(&h, "ada@example.com", "admin");
    let c = console(&h, "ada@example.com").await;
    let created = h.create_score_session("csrf").await;
    let id = created["id"].as_str().unwrap();
    let cancel = format!("/v1/sessions/{id}/cancel");
    // No token: refused, nothing changes.
    let (status, body) = c.send(&h, "POST", &cancel, false).await;
    assert_eq!(
        (status, body["type"].as_str().unwrap().ends_with("/csrf")),
        (403, true),
        "{body}"
    );
    // A wrong token.
    let wrong = Console {
        cookie: c.cookie.clone(),
        csrf: "0".repeat(64),
    };
    assert_eq!(wrong.send(&h, "POST", &cancel, true).await.0, 403);
    // The right token, from another origin or a cross-site fetch.
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = client()
            .post(h.url(&cancel))
            .header("cookie", &c.cookie)
            .header("x-csrf-token", &c.csrf)
            .header(name, value)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}");
    }
    let (_, session) = c
        .send(&h, "GET", &format!("/v1/sessions/{id}"), false)
        .await;
    assert_ne!(session["outcome"], "canceled", "{session}");
    // The token, from the console's own origin: it applies.
    let (status, body) = c.send(&h, "POST", &cancel, true).await;
    assert_eq!(status, 200, "{body}");
    // A sign-in form posted from another site.
    let r = client()
        .post(h.url("/console/login"))
        .header("origin", "http://evil.example")
        .form(&[("email", "ada@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    // Sign-out needs the token too; then the cookie is worthless.
    let r = client()
        .post(h.url("/console/logout"))
        .header("cookie", &c.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .post(h.url("/console/logout"))
        .header("cookie", &c.cookie)
        .header("x-csrf-token", &c.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(c.send(&h, "GET", "/v1/sessions", false).await.0, 401);
    let admin = create_key(&h.config, "auditor", &["admin"]);
    assert_eq!(
        audit(&h, &admin, "action=operator.signed_out").await.len(),
        1
    );
    // The cancel is the operator's in the audit log.
    let canceled = audit(
        &h,
        &admin,
        &format!("action=session.canceled&session_id={id}"),
    )
    .await;
    assert!(
        canceled[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("operator:op_"),
        "{canceled:?}"
    );
}

/// Failed sign-ins lock the account with a growing backoff; the right
/// password does not get in while it is locked; a new password lifts it.
#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_lock_the_account_with_backoff() {
    let h = Harness::start_with(Options {
        extra_toml: "[console]\nlockout_after = 3\nlockout_base = \"1h\"\nlockout_max = \"4h\"\n",
        ..Options::default()
    })
    .await;
    create_operator(&h, "ada@example.com", "reviewer");
    for _ in 0..3 {
        assert_eq!(
            sign_in(&h, "ada@example.com", "wrong password!")
                .await
                .status(),
            401
        );
    }
    let r = sign_in(&h, "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("locked for 3600 more seconds")
            || text.contains("locked for 3599 more seconds"),
        "{text}"
    );
    // One more failure doubles the lock.
    sign_in(&h, "ada@example.com", "wrong password!").await;
    let admin = create_key(&h.config, "auditor", &["admin"]);
    let failures = audit(&h, &admin, "action=operator.sign_in_failed").await;
    assert_eq!(
        failures.len(),
        3,
        "a locked account's attempts are refused before the password is checked"
    );
    assert_eq!(failures[0]["data"]["consecutive_failures"], 3);
    assert!(failures[0]["data"]["locked_until"].is_string());
    let (_, listed, _) = operators(&h, &["list"], "");
    assert!(listed.contains("locked until"), "{listed}");
    // A new password lifts the lock.
    let (ok, _, err) = operators(
        &h,
        &["set-password", "ada@example.com", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "{err}");
    assert_eq!(sign_in(&h, "ada@example.com", PASSWORD).await.status(), 303);
    // An unknown email is told the same as a wrong password.
    let r = sign_in(&h, "nobody@example.com", PASSWORD).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("wrong email or password"));
}

/// A session unused for the idle timeout ends; a disabled operator's
/// sessions end at once.
#[tokio::test(flavor = "multi_thread")]
async fn idle_sessions_and_disabled_operators_are_signed_out() {
    let h = Harness::start_with(Options {
        extra_toml: "[console]\nidle_timeout = \"1s\"\n",
        ..Options::default()
    })
    .await;
    create_operator(&h, "ada@example.com", "viewer");
    let c = console(&h, "ada@example.com").await;
    assert_eq!(c.send(&h, "GET", "/v1/sessions", false).await.0, 200);
    // Unused for more than a second (being unused is what is tested: no
    // request may come in between): the next request finds it ended.
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let (status, body) = c.send(&h, "GET", "/v1/sessions", false).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("without use"),
        "{body}"
    );

    // Disabled: signed out everywhere, no more sign-ins.
    let h2 = Harness::start().await;
    create_operator(&h2, "bob@example.com", "admin");
    let c = console(&h2, "bob@example.com").await;
    let (ok, _, err) = operators(&h2, &["disable", "bob@example.com"], "");
    assert!(ok, "{err}");
    assert_eq!(c.send(&h2, "GET", "/v1/sessions", false).await.0, 401);
    assert_eq!(
        sign_in(&h2, "bob@example.com", PASSWORD).await.status(),
        401
    );
}
