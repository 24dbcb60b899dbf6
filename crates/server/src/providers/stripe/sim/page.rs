//! The hosted verification page (the session's `url`): verify, fail with a
//! documented `last_error.code`, or cancel; then back to `return_url`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::StripeSim;
use super::control::{SubmitBody, submit_outcome};
use crate::providers::stripe::LAST_ERROR_CODES;
use crate::sim::error_response;

/// A CSP source expression that cannot break out of the directive.
pub(super) fn valid_source(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// An http(s) URL the page may navigate to at the end.
fn safe_redirect(url: &str) -> Option<&str> {
    let lower = url.trim().to_ascii_lowercase();
    ((lower.starts_with("https://") || lower.starts_with("http://")) && !url.contains(['\n', '\r']))
        .then_some(url.trim())
}

fn html_response(sim: &StripeSim, status: StatusCode, nonce: &str, html: String) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {}",
        sim.inner.frame_ancestors
    );
    let Ok(csp) = HeaderValue::from_str(&csp) else {
        // Cannot happen (validated sources); never serve the page without a CSP.
        return (StatusCode::INTERNAL_SERVER_ERROR, "invalid CSP").into_response();
    };
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    resp
}

/// The session a hosted-page token opens, while it waits for the user.
fn waiting_session(sim: &StripeSim, token: &str) -> Option<(String, Option<String>)> {
    let st = sim.lock();
    let id = st.tokens.get(token)?;
    let s = st.sessions.get(id)?;
    (s.status == "requires_input" && s.redaction.is_none())
        .then(|| (s.id.clone(), s.return_url.clone()))
}

/// `GET /start/{token}`.
pub(super) async fn hosted_page(
    State(sim): State<StripeSim>,
    Path(token): Path<String>,
) -> Response {
    let nonce = STANDARD.encode(rand::random::<[u8; 16]>());
    let Some((id, return_url)) = waiting_session(&sim, &token) else {
        let html = GONE_PAGE
            .replace("{{NONCE}}", &nonce)
            .replace("{{STYLE}}", STYLE);
        return html_response(&sim, StatusCode::NOT_FOUND, &nonce, html);
    };
    let options: String = LAST_ERROR_CODES
        .iter()
        .map(|c| format!("<option value=\"{c}\">{c}</option>"))
        .collect();
    let redirect = return_url
        .as_deref()
        .and_then(safe_redirect)
        .unwrap_or_default();
    let html = PAGE
        .replace("{{STYLE}}", STYLE)
        .replace("{{NONCE}}", &nonce)
        .replace("{{ENDPOINT}}", &html_escape(&format!("{token}/submit")))
        .replace("{{REDIRECT}}", &html_escape(redirect))
        .replace("{{OPTIONS}}", &options)
        .replace("{{ID}}", &html_escape(&id));
    html_response(&sim, StatusCode::OK, &nonce, html)
}

/// `POST /start/{token}/submit` `{"result": "verified" | "requires_input" |
/// "cancel", "code"?}`: the page's buttons.
pub(super) async fn submit(
    State(sim): State<StripeSim>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let Some((id, _)) = waiting_session(&sim, &token) else {
        return error_response(
            StatusCode::CONFLICT,
            "this verification link is no longer valid",
        );
    };
    let req: SubmitBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    if req.result == "cancel" {
        return match sim.cancel_session(&id) {
            Ok(_) => Json(json!({"id": id, "status": "canceled"})).into_response(),
            Err(r) => *r,
        };
    }
    submit_outcome(&sim, &id, &req)
}

const STYLE: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center; padding: 16px;
  background: #f6f9fc; color: #1a1f36; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.card { width: 100%; max-width: 420px; background: #fff; border-radius: 12px; padding: 28px;
  box-shadow: 0 7px 14px rgba(50, 50, 93, .1), 0 3px 6px rgba(0, 0, 0, .07); }
.brand { display: flex; align-items: center; gap: 8px; font-weight: 650; color: #635bff; }
.badge { margin-left: auto; font-size: 12px; color: #b54708; background: #fffaeb; border: 1px solid #fedf89;
  border-radius: 999px; padding: 2px 10px; }
h1 { font-size: 21px; margin: 20px 0 4px; }
p { color: #4f566b; margin: 0 0 16px; }
button, select { font: inherit; border-radius: 8px; padding: 10px 12px; width: 100%; }
button { border: 0; font-weight: 600; cursor: pointer; margin-top: 10px; }
button:disabled { opacity: .5; cursor: default; }
.verify { background: #635bff; color: #fff; }
.fail { background: #df1b41; color: #fff; }
.cancel { background: #f6f9fc; color: #1a1f36; border: 1px solid #e3e8ee; }
label { display: block; font-size: 14px; color: #4f566b; margin-top: 18px; }
select { border: 1px solid #e3e8ee; background: #fff; margin-top: 4px; }
.error { color: #df1b41; font-size: 14px; }
.ref { font-size: 12px; color: #8792a2; margin: 18px 0 0; text-align: center; }
[hidden] { display: none !important; }
"#;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Verify your identity</title>
<style nonce="{{NONCE}}">{{STYLE}}</style>
</head>
<body data-endpoint="{{ENDPOINT}}" data-redirect="{{REDIRECT}}">
<main class="card">
  <div class="brand">Stripe Identity<span class="badge">Simulator</span></div>
  <section id="flow">
    <h1>Verify your identity</h1>
    <p>Photograph an identity document, then take a selfie. Simulated: choose how it ends.</p>
    <button type="button" class="verify" id="verify">Submit: verified</button>
    <label for="code">Or fail with <code>last_error.code</code></label>
    <select id="code">{{OPTIONS}}</select>
    <button type="button" class="fail" id="fail">Submit: fail</button>
    <button type="button" class="cancel" id="cancel">Cancel verification</button>
    <p id="error" class="error" role="alert" hidden></p>
  </section>
  <section id="done" hidden aria-live="polite">
    <h1 id="done-title">Submitted</h1>
    <p id="done-text">You can close this window.</p>
  </section>
  <p class="ref">VerificationSession <code>{{ID}}</code></p>
</main>
<script nonce="{{NONCE}}">
(function () {
  "use strict";
  var endpoint = document.body.getAttribute("data-endpoint");
  var redirect = document.body.getAttribute("data-redirect");
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button"));
  var error = document.getElementById("error");
  function done(title) {
    document.getElementById("flow").hidden = true;
    document.getElementById("done-title").textContent = title;
    document.getElementById("done").hidden = false;
    if (redirect) setTimeout(function () { window.location.assign(redirect); }, 800);
    // Opened as a popup and nowhere to go back to: close, as the page that
    // opened it follows the outcome on its own.
    else if (window.opener) setTimeout(function () { window.close(); }, 1200);
  }
  function send(body, title) {
    buttons.forEach(function (b) { b.disabled = true; });
    error.hidden = true;
    fetch(endpoint, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), credentials: "omit", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); done(title); })
      .catch(function (e) {
        error.textContent = "Something went wrong (" + e.message + "). Please try again.";
        error.hidden = false;
        buttons.forEach(function (b) { b.disabled = false; });
      });
  }
  document.getElementById("verify").addEventListener("click", function () {
    send({ result: "verified" }, "Submitted");
  });
  document.getElementById("fail").addEventListener("click", function () {
    send({ result: "requires_input", code: document.getElementById("code").value }, "Submitted");
  });
  document.getElementById("cancel").addEventListener("click", function () {
    send({ result: "cancel" }, "Verification canceled");
  });
})();
</script>
</body>
</html>
"#;

const GONE_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Link expired</title><style nonce="{{NONCE}}">{{STYLE}}</style></head>
<body><main class="card"><div class="brand">Stripe Identity<span class="badge">Simulator</span></div>
<h1>This link is no longer valid</h1><p>Go back to the page that sent you here and start again.</p></main></body>
</html>
"#;
