//! The phone page a QR code opens (`GET /app/{sessionId}`): what the Ockto
//! app would show, reduced to three buttons that drive the session through
//! the control API.

use super::OcktoSim;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn html_response(status: StatusCode, nonce: &str, html: String) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
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
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

pub(super) async fn phone_page(State(sim): State<OcktoSim>, Path(id): Path<String>) -> Response {
    let nonce = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let Some(session) = sim.session(&id) else {
        let html = NOT_FOUND.replace("{{NONCE}}", &nonce);
        return html_response(StatusCode::NOT_FOUND, &nonce, html);
    };
    let html = PAGE
        .replace("{{NONCE}}", &nonce)
        .replace("{{ID}}", &html_escape(&session.session_id))
        .replace("{{STATUS}}", &html_escape(&session.status));
    html_response(StatusCode::OK, &nonce, html)
}

const NOT_FOUND: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ockto (simulator)</title><style nonce="{{NONCE}}">body{font-family:system-ui,sans-serif;margin:2rem;color:#101828}</style></head>
<body><h1>Unknown session</h1><p>This QR code does not belong to a session of this simulator.</p></body></html>
"#;

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ockto (simulator)</title>
<style nonce="{{NONCE}}">
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0; background: #eef2f6; color: #101828; }
main { max-width: 380px; margin: 0 auto; min-height: 100vh; background: #fff; padding: 1.5rem; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
p { color: #475467; line-height: 1.4; }
ul { padding-left: 1.2rem; color: #475467; }
button { display: block; width: 100%; padding: .9rem; margin: .6rem 0; border-radius: .7rem;
  border: 1px solid #d0d5dd; font-size: 1rem; background: #fff; cursor: pointer; }
button.primary { background: #0f766e; color: #fff; border-color: #0f766e; }
#status { font-weight: 600; }
</style></head>
<body><main>
<h1>Ockto</h1>
<p>Simulated app. Session <code>{{ID}}</code>, status <span id="status">{{STATUS}}</span>.</p>
<p>In the real app you would log in at DigiD, MijnOverheid, UWV and your bank, check the collected data and consent to share it:</p>
<ul><li>income and employer</li><li>fixed costs</li><li>debts</li></ul>
<button id="scan">Scanned</button>
<button id="share" class="primary">Share data</button>
<button id="refuse">Refuse</button>
<p id="note"></p>
</main>
<script nonce="{{NONCE}}">
const id = "{{ID}}";
async function act(action) {
  const note = document.getElementById("note");
  try {
    const r = await fetch("../control/" + encodeURIComponent(id) + "/" + action, {method: "POST"});
    const body = await r.json();
    if (r.ok) { document.getElementById("status").textContent = body.status; note.textContent = ""; }
    else { note.textContent = body.error || ("HTTP " + r.status); }
  } catch (e) { note.textContent = String(e); }
}
for (const a of ["scan", "share", "refuse"]) {
  document.getElementById(a).addEventListener("click", () => act(a));
}
</script>
</body></html>
"#;
