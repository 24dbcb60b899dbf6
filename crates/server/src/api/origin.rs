//! Which browser origins may use the client API (`/v1/client/*` and the chat
//! WebSocket): Gangway's own, and `client.allowed_origins`.
//!
//! CORS alone refuses another origin silently: its preflight gets no
//! `Access-Control-Allow-Origin`, the browser's `fetch` fails like a lost
//! network, and the SDK cannot tell the page's developer what to fix. So a
//! request that does reach a client route from another origin (a CORS
//! "simple" request, which has no preflight: the SDK sends one when its
//! request failed) is refused here with a 403 problem the page may read:
//! that answer names the setting and carries no session data.

use super::AppState;
use super::error::Problem;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Same origin as the request, or one of `client.allowed_origins`; a request
/// without `Origin` (not a browser) too: the secret is what authenticates.
/// (This keeps other sites' pages from even trying.)
pub fn allowed(st: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if st
        .engine
        .config()
        .client
        .allowed_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    host.is_some() && host == origin_host
}

/// The refusal of a request from another origin.
pub fn refused() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "origin-not-allowed",
        "Origin not allowed",
        "this page's origin is not in client.allowed_origins",
    )
}

/// Middleware of the client routes, inside the CORS layer: preflights pass
/// to it unchanged (CORS answers them, without allowing another origin);
/// any other request from another origin gets [`refused`], readable by
/// that origin (`Access-Control-Allow-Origin` set to it, `Vary: Origin`)
/// so that the SDK can say why, before the secret or the session is read.
pub async fn check(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS || allowed(&st, req.headers()) {
        return next.run(req).await;
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut resp = refused().into_response();
    if let Some(origin) = origin.filter(|o| o.to_str().is_ok_and(is_origin)) {
        let headers = resp.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
    resp
}

/// `scheme://host[:port]` of visible ASCII, as browsers send it (or `null`,
/// which is not echoed: an opaque origin gets no readable answer).
fn is_origin(o: &str) -> bool {
    o.split_once("://").is_some_and(|(scheme, rest)| {
        (scheme == "http" || scheme == "https")
            && !rest.is_empty()
            && !rest.contains('/')
            && rest.bytes().all(|b| b.is_ascii_graphic())
    })
}

#[cfg(test)]
mod tests {
    use super::is_origin;

    #[test]
    fn only_plain_origins_are_echoed() {
        assert!(is_origin("https://shop.example"));
        assert!(is_origin("http://127.0.0.1:8080"));
        assert!(!is_origin("null"));
        assert!(!is_origin("https://shop.example/path"));
        assert!(!is_origin("file://"));
        assert!(!is_origin("https://a b"));
    }
}
