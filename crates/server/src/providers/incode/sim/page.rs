//! The hosted flow page (the `url` handed out) and its CSP.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::IncodeSim;

/// A CSP source expression that cannot break out of the directive.
pub(super) fn valid_source(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
}

// ---------------------------------------------------------------------------
// Hosted page

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An http(s) URL the page may navigate to at the end.
fn safe_redirect(url: &str) -> Option<&str> {
    let lower = url.trim().to_ascii_lowercase();
    ((lower.starts_with("https://") || lower.starts_with("http://")) && !url.contains(['\n', '\r']))
        .then_some(url.trim())
}

fn html_response(sim: &IncodeSim, status: StatusCode, nonce: &str, html: String) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors {}",
        sim.inner.frame_ancestors
    );
    let mut resp = (status, html).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    match HeaderValue::from_str(&csp) {
        Ok(v) => {
            headers.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        Err(_) => {
            // Cannot happen (validated sources); never serve the page without a CSP.
            return (StatusCode::INTERNAL_SERVER_ERROR, "invalid CSP").into_response();
        }
    }
    resp
}

pub(super) async fn hosted_page(
    State(sim): State<IncodeSim>,
    Path(interview_id): Path<String>,
) -> Response {
    let nonce = STANDARD.encode(rand::random::<[u8; 16]>());
    let Some(record) = sim.session(&interview_id) else {
        let html = NOT_FOUND_PAGE
            .replace("{{STYLE}}", PAGE_STYLE)
            .replace("{{NONCE}}", &nonce);
        return html_response(&sim, StatusCode::NOT_FOUND, &nonce, html);
    };
    let redirect = record
        .redirection_url
        .as_deref()
        .and_then(safe_redirect)
        .unwrap_or_default();
    let endpoint = format!("../control/{}/finish", record.interview_id);
    let html = FLOW_PAGE
        .replace("{{STYLE}}", PAGE_STYLE)
        .replace("{{NONCE}}", &nonce)
        .replace("{{ENDPOINT}}", &html_escape(&endpoint))
        .replace("{{REDIRECT}}", &html_escape(redirect))
        .replace("{{CODE}}", &html_escape(&record.interview_code));
    html_response(&sim, StatusCode::OK, &nonce, html)
}

const PAGE_STYLE: &str = r#"
:root { --ink: #101828; --muted: #667085; --line: #e4e7ec; --brand: #1d5bd8; }
* { box-sizing: border-box; }
html, body { height: 100%; }
body { margin: 0; display: flex; align-items: center; justify-content: center; padding: 16px;
  background: linear-gradient(160deg, #eef3ff 0%, #f8fafc 60%); color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
.card { width: 100%; max-width: 440px; background: #fff; border-radius: 20px; padding: 28px;
  box-shadow: 0 12px 32px rgba(16, 24, 40, .08), 0 1px 3px rgba(16, 24, 40, .06); }
.brand { display: flex; align-items: center; gap: 10px; font-weight: 650; letter-spacing: -.01em; }
.logo { width: 28px; height: 28px; border-radius: 8px; background: linear-gradient(135deg, #1d5bd8, #7a9cff); }
.badge { margin-left: auto; font-size: 12px; font-weight: 600; color: #b54708; background: #fffaeb;
  border: 1px solid #fedf89; border-radius: 999px; padding: 2px 10px; }
h1 { font-size: 22px; line-height: 1.3; margin: 22px 0 4px; letter-spacing: -.015em; }
.lead { color: var(--muted); margin: 0 0 20px; }
.steps { list-style: none; padding: 0; margin: 0 0 22px; display: grid; gap: 12px; }
.step { display: flex; gap: 14px; align-items: center; padding: 14px; border: 1px solid var(--line); border-radius: 14px; }
.icon { width: 44px; height: 44px; flex: none; border-radius: 12px; display: grid; place-items: center; background: #eef3ff; }
.icon svg { width: 24px; height: 24px; stroke: var(--brand); fill: none; stroke-width: 1.8; stroke-linecap: round; stroke-linejoin: round; }
.step b { display: block; font-weight: 600; }
.step span { color: var(--muted); font-size: 14px; }
.hint { font-size: 13px; color: var(--muted); text-align: center; margin: 0 0 10px; }
.actions { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
button { font: inherit; font-weight: 600; border: 0; border-radius: 12px; padding: 12px; cursor: pointer;
  transition: filter .15s ease, transform .05s ease; }
button:hover { filter: brightness(.94); }
button:active { transform: translateY(1px); }
button:disabled { opacity: .5; cursor: default; filter: none; }
button:focus-visible { outline: 3px solid #a4bcfd; outline-offset: 2px; }
.pass { background: #12b76a; color: #fff; }
.fail { background: #f04438; color: #fff; }
.review { background: #f79009; color: #fff; }
.abandon { background: #f2f4f7; color: #344054; }
.error { color: #b42318; font-size: 14px; margin: 14px 0 0; text-align: center; }
.done { text-align: center; padding: 8px 0 4px; }
.check { width: 64px; height: 64px; border-radius: 50%; margin: 18px auto 4px; display: grid; place-items: center; background: #ecfdf3; }
.check svg { width: 32px; height: 32px; stroke: #12b76a; fill: none; stroke-width: 2.5; stroke-linecap: round; stroke-linejoin: round; }
.ref { margin: 20px 0 0; font-size: 12px; color: var(--muted); text-align: center; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
[hidden] { display: none !important; }
"#;

const FLOW_PAGE: &str = r#"<!doctype html>
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
  <div class="brand"><span class="logo" aria-hidden="true"></span>Incode Omni<span class="badge">Simulator</span></div>
  <section id="flow">
    <h1>Verify your identity</h1>
    <p class="lead">Two quick steps. It takes about a minute.</p>
    <ol class="steps">
      <li class="step">
        <span class="icon" aria-hidden="true"><svg viewBox="0 0 24 24"><rect x="3" y="5" width="18" height="14" rx="2"/><circle cx="9" cy="11" r="2"/><path d="M6.5 16c.6-1.5 1.5-2.2 2.5-2.2s1.9.7 2.5 2.2M14 10h4M14 13h3"/></svg></span>
        <div><b>Photograph your ID</b><span>Front and back, on a flat surface, in good light.</span></div>
      </li>
      <li class="step">
        <span class="icon" aria-hidden="true"><svg viewBox="0 0 24 24"><circle cx="12" cy="10" r="4"/><path d="M4 20c1.5-3.3 4.4-5 8-5s6.5 1.7 8 5M3 7V4h3M21 7V4h-3"/></svg></span>
        <div><b>Take a selfie</b><span>Look straight at the camera; no glasses or hat.</span></div>
      </li>
    </ol>
    <p class="hint">Simulated capture: choose how this verification ends.</p>
    <div class="actions">
      <button type="button" class="pass" data-result="pass">Pass</button>
      <button type="button" class="fail" data-result="fail">Fail</button>
      <button type="button" class="review" data-result="review">Review</button>
      <button type="button" class="abandon" data-result="abandon">Abandon</button>
    </div>
    <p id="error" class="error" role="alert" hidden></p>
  </section>
  <section id="done" class="done" hidden aria-live="polite">
    <div class="check" aria-hidden="true"><svg viewBox="0 0 24 24"><path d="M5 12.5l4.5 4.5L19 7.5"/></svg></div>
    <h1 id="done-title">All done</h1>
    <p class="lead" id="done-text">You can close this window.</p>
  </section>
  <p class="ref">Session <code>{{CODE}}</code></p>
</main>
<script nonce="{{NONCE}}">
(function () {
  "use strict";
  var endpoint = document.body.getAttribute("data-endpoint");
  var redirect = document.body.getAttribute("data-redirect");
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button[data-result]"));
  var error = document.getElementById("error");
  var texts = {
    pass: ["All done", "Your identity was submitted. You can close this window."],
    fail: ["All done", "Your verification was submitted. You can close this window."],
    review: ["All done", "Your verification was submitted for review."],
    abandon: ["Verification stopped", "You left the verification."]
  };
  function setBusy(busy) { buttons.forEach(function (b) { b.disabled = busy; }); }
  function done(title, text) {
    document.getElementById("flow").hidden = true;
    document.getElementById("done-title").textContent = title;
    document.getElementById("done-text").textContent = text;
    document.getElementById("done").hidden = false;
    if (redirect && window.top === window.self) {
      setTimeout(function () { window.location.assign(redirect); }, 1200);
    }
  }
  function finish(result) {
    setBusy(true);
    error.hidden = true;
    fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ result: result }),
      credentials: "omit",
      cache: "no-store"
    }).then(function (r) {
      if (r.status === 409) { done("Already finished", "This verification was already finished."); return; }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      done(texts[result][0], texts[result][1]);
    }).catch(function (e) {
      error.textContent = "Something went wrong (" + e.message + "). Please try again.";
      error.hidden = false;
      setBusy(false);
    });
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function () { finish(b.getAttribute("data-result")); });
  });
})();
</script>
</body>
</html>
"#;

const NOT_FOUND_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Session not found</title>
<style nonce="{{NONCE}}">{{STYLE}}</style>
</head>
<body>
<main class="card">
  <div class="brand"><span class="logo" aria-hidden="true"></span>Incode Omni<span class="badge">Simulator</span></div>
  <h1>Session not found</h1>
  <p class="lead">This verification link is unknown or no longer valid. Please start again from the page that sent you here.</p>
</main>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_validated() {
        assert!(valid_source("https://app.example.com"));
        assert!(valid_source("'self'"));
        assert!(!valid_source("https://a; script-src *"));
        assert!(!valid_source(""));
    }
}
