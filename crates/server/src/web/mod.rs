//! What browsers load from Gangway itself: the SDK (`/sdk/gangway.js`, its
//! parts and type declarations, embedded in the binary from `web/sdk/`), the
//! security headers every response carries, and the server-side QR renderer.

pub mod console;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const JS: &str = "text/javascript; charset=utf-8";

/// The SDK's files, served as they are (no build step): `(name, content
/// type, body)`. `gangway.js` is the module pages import; it imports the
/// others from beside itself.
pub const SDK_FILES: &[(&str, &str, &str)] = &[
    (
        "gangway.js",
        JS,
        include_str!("../../../../web/sdk/gangway.js"),
    ),
    (
        "stream.js",
        JS,
        include_str!("../../../../web/sdk/stream.js"),
    ),
    (
        "renderers.js",
        JS,
        include_str!("../../../../web/sdk/renderers.js"),
    ),
    ("chat.js", JS, include_str!("../../../../web/sdk/chat.js")),
    (
        "styles.js",
        JS,
        include_str!("../../../../web/sdk/styles.js"),
    ),
    (
        "gangway.d.ts",
        "application/typescript; charset=utf-8",
        include_str!("../../../../web/sdk/gangway.d.ts"),
    ),
];

/// The policy of responses that are not pages (JSON, streams, scripts):
/// nothing may load from them, nobody may frame them.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `/sdk/{file}`, for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/sdk/{file}", get(sdk_file))
}

async fn sdk_file(Path(file): Path<String>) -> Response {
    match SDK_FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => public_file(body, content_type),
        None => crate::api::error::Problem::not_found("no such SDK file; see /sdk/gangway.js")
            .into_response(),
    }
}

/// A public, credential-free static file that customer pages on other origins
/// load as a module script: such a load is a CORS request, hence `*`.
fn public_file(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    resp
}

fn set_default(h: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !h.contains_key(&name) {
        h.insert(name, HeaderValue::from_static(value));
    }
}

/// Middleware adding browser security headers to every response that does
/// not choose its own: pages (demo, simulators) set their CSP with their
/// `frame-ancestors`; everything else gets [`DEFAULT_CSP`] and may not be framed.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    set_default(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(h, header::REFERRER_POLICY, "no-referrer");
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
        // For browsers that predate CSP frame-ancestors.
        set_default(h, header::X_FRAME_OPTIONS, "DENY");
    }
    set_default(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    resp
}
