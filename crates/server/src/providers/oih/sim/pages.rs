//! The HTML pages of the identity provider and the Secret Service: plain,
//! self-contained (no external resources), under a strict CSP with a nonce.
//!
//! Stable hooks for browser tests: `#email`, `#password`, `button#sign-in`,
//! `#error` on the sign-in page; `button#allow`, `button#deny` on the
//! consent page; `#message` on the final and error pages.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::data::DEMO_USERS;
use super::idp::AuthorizeParams;

fn esc(s: &str) -> String {
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f3f4f6;color:#111827;margin:0}\
main{max-width:380px;margin:3rem auto;background:#fff;border:1px solid #e5e7eb;border-radius:.75rem;padding:1.5rem 1.75rem}\
h1{font-size:1.25rem;margin:0 0 1rem}label{display:block;margin:.75rem 0 .25rem;font-weight:600}\
input{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #d1d5db;border-radius:.4rem;font-size:1rem}\
button{padding:.6rem 1.1rem;border-radius:.4rem;border:1px solid #1d4ed8;background:#1d4ed8;color:#fff;font-size:1rem;margin:1rem .5rem 0 0;cursor:pointer}\
button.secondary{background:#fff;color:#1d4ed8}.hint{color:#6b7280;font-size:.9rem}#error{color:#b91c1c}";

/// An HTML page with a nonce-based CSP; forms may post to this origin and `form_origin`.
fn html(status: StatusCode, title: &str, body: &str, script: &str, form_origin: &str) -> Response {
    let nonce = STANDARD.encode(rand::random::<[u8; 16]>());
    let script = if script.is_empty() {
        String::new()
    } else {
        format!("<script nonce=\"{nonce}\">{script}</script>")
    };
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style nonce=\"{nonce}\">{STYLE}</style></head>\n<body><main>\n{body}\n</main>{script}</body></html>\n",
        title = esc(title),
    );
    let form_action = format!("'self' {form_origin}");
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
         form-action {}; base-uri 'none'; frame-ancestors 'none'",
        form_action.trim_end()
    );
    let mut resp = (status, page).into_response();
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
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

/// The identity provider's sign-in page, e-mail prefilled.
pub(super) fn sign_in_page(
    p: &AuthorizeParams,
    email: &str,
    error: Option<&str>,
    form_origin: &str,
) -> Response {
    let carried: String = [
        ("response_type", &p.response_type),
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("scope", &p.scope),
        ("state", &p.state),
    ]
    .iter()
    .map(|(k, v)| hidden(k, v))
    .collect();
    let users: String = DEMO_USERS
        .iter()
        .map(|(e, _, _)| format!("<option value=\"{}\">", esc(e)))
        .collect();
    let user_list = DEMO_USERS
        .iter()
        .map(|(e, _, _)| esc(e))
        .collect::<Vec<_>>()
        .join(", ");
    let error = error
        .map(|e| format!("<p id=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>\n<p class=\"hint\">Simulated identity provider of the Open Integration Hub.</p>\n{error}\
<form method=\"post\" action=\"authorize\">{carried}{step}\n\
<label for=\"email\">E-mail</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" list=\"demo-users\" value=\"{email}\" required>\n\
<datalist id=\"demo-users\">{users}</datalist>\n\
<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
<p class=\"hint\">Demo users: {user_list}. Any password works.</p>\n\
<button id=\"sign-in\" type=\"submit\">Sign in</button>\n</form>",
        step = hidden("step", "signin"),
        email = esc(email),
    );
    html(StatusCode::OK, "Sign in", &body, "", form_origin)
}

/// The consent page: Allow or Deny.
pub(super) fn consent_page(consent: &str, name: &str, email: &str, form_origin: &str) -> Response {
    let body = format!(
        "<h1>Gangway Assistant (via Open Integration Hub) wants to:</h1>\n\
<ul id=\"scopes\"><li>read your profile</li></ul>\n\
<p>Signed in as <strong id=\"user\">{name}</strong> ({email}).</p>\n\
<form method=\"post\" action=\"authorize\">{step}{consent}\n\
<button id=\"allow\" type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
<button id=\"deny\" class=\"secondary\" type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n</form>",
        name = esc(name),
        email = esc(email),
        step = hidden("step", "consent"),
        consent = hidden("consent", consent),
    );
    html(StatusCode::OK, "Allow access", &body, "", form_origin)
}

/// The last page of the popup, which tries to close itself.
pub(super) fn done_page(message: &str) -> Response {
    let body = format!(
        "<h1>Open Integration Hub</h1>\n<p id=\"message\">{}</p>",
        esc(message)
    );
    html(
        StatusCode::OK,
        "Open Integration Hub",
        &body,
        "window.close();",
        "",
    )
}

pub(super) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Something went wrong</h1>\n<p id=\"message\">{}</p>",
        esc(message)
    );
    html(status, "Sign-in error", &body, "", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
