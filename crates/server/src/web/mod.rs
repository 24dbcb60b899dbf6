//! What browsers load from Gangway itself: the SDK (`/sdk/gangway.js` and its
//! type declarations, embedded in the binary from `web/sdk/`), the security
//! headers every response carries, and the server-side QR renderer.

pub mod qr;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The SDK, an ES module served as is (no build step).
pub const SDK_JS: &str = include_str!("../../../../web/sdk/gangway.js");
/// Its TypeScript declarations.
pub const SDK_DTS: &str = include_str!("../../../../web/sdk/gangway.d.ts");

/// The policy of responses that are not pages (JSON, streams, scripts):
/// nothing may load from them, nobody may frame them.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `/sdk/gangway.js` and `/sdk/gangway.d.ts`, for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/sdk/gangway.js",
            get(|| async { sdk_file(SDK_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/sdk/gangway.d.ts",
            get(|| async { sdk_file(SDK_DTS, "application/typescript; charset=utf-8") }),
        )
}

/// A public, credential-free static file that customer pages on other origins
/// load as a module script: such a load is a CORS request, hence `*`.
fn sdk_file(body: &'static str, content_type: &'static str) -> Response {
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
