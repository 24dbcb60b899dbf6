//! The operator console's files (`web/console/`, embedded: no build step,
//! no separate frontend server) and the policy its pages run under. The
//! console is a client of the documented API; its sign-in, sign-out and
//! who-am-I routes are api/console.rs.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! console_files {
    ($(($name:literal, $type:expr)),* $(,)?) => {
        /// `(path under /console/assets/, content type, body)`.
        pub const CONSOLE_FILES: &[(&str, &str, &str)] = &[
            $(($name, $type, include_str!(concat!("../../../../web/console/", $name))),)*
        ];
    };
}

console_files!(
    ("console.css", "text/css; charset=utf-8"),
    ("app.js", JS),
    ("api.js", JS),
    ("ui.js", JS),
    ("graph.js", JS),
    ("live.js", JS),
    ("pages/dashboard.js", JS),
    ("pages/sessions.js", JS),
    ("pages/session.js", JS),
    ("pages/session_timeline.js", JS),
    ("pages/reviews.js", JS),
    ("pages/review_facts.js", JS),
    ("pages/deliveries.js", JS),
    ("pages/workflows.js", JS),
    ("pages/workflow.js", JS),
    ("pages/studio.js", JS),
    ("pages/studio_editor.js", JS),
    ("pages/studio_dryrun.js", JS),
    ("pages/studio_graph.js", JS),
    ("pages/audit.js", JS),
);

/// The console's page shell; every `/console/...` view is this page, its
/// router (app.js) picks the view from the path.
pub const INDEX: &str = include_str!("../../../../web/console/index.html");
/// The sign-in page; `{{MESSAGE}}` and `{{EMAIL}}` are filled escaped.
pub const LOGIN: &str = include_str!("../../../../web/console/login.html");

/// Console pages load only their own scripts, styles and API; nobody may
/// frame them (clickjacking a review decision), forms post only here.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'; object-src 'none'";

/// An HTML page of the console, never cached.
pub fn page(html: String) -> Response {
    let mut resp = html.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not the server's default `no-referrer`: under it Chromium sends
    // `Origin: null` with the sign-in form's POST, which the sign-in's
    // cross-site check must refuse. `same-origin` sends the origin to this
    // server only, never to another site.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// `/console/assets/{*file}`: revalidated on each load, so a new build's
/// console is picked up at once.
pub fn asset(file: &str) -> Response {
    let Some((_, content_type, body)) = CONSOLE_FILES.iter().find(|(name, _, _)| *name == file)
    else {
        return crate::api::error::Problem::not_found("no such console file").into_response();
    };
    let mut resp = (*body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Text for an HTML attribute or element body.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::CONSOLE_FILES;

    /// A module the console imports but the server does not serve breaks
    /// its page at run time (a 404 on a dynamic import): every script and
    /// style in web/console/ must be listed.
    #[test]
    fn every_file_of_the_console_is_served() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/console");
        let mut stack = vec![root.clone()];
        let mut found = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("web/console") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "js" || e == "css") {
                    let rel = path.strip_prefix(&root).expect("under web/console");
                    found.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        for file in &found {
            assert!(
                CONSOLE_FILES.iter().any(|(name, _, _)| name == file),
                "web/console/{file} is not in console_files!"
            );
        }
        assert_eq!(found.len(), CONSOLE_FILES.len());
    }
}
