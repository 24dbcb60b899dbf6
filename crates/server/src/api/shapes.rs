//! Every error the API answers is problem JSON: a middleware refuses paths
//! that are not UTF-8 once percent-decoded (400) or that hold control
//! characters (422, so no session or workflow id can carry one), and turns
//! the plain-text rejections axum's extractors answer with (a body over the
//! limit: 413; a path segment that does not parse: 400) into problem JSON
//! of the same status. A request target over [`MAX_TARGET`] bytes gets 414,
//! more than [`MAX_HEADERS`] header fields or over [`MAX_HEADER_BYTES`] of
//! them 431, both as problem JSON: these limits sit below hyper's own (a
//! 64 KiB target, its read buffer, [`crate::serve`]'s header count), which
//! answer with an empty body before a request reaches the router.

use super::error::Problem;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Longest plain-text error body taken over as the problem's detail.
const MAX_DETAIL: usize = 1024;
/// Longest request target (path and query) served.
pub const MAX_TARGET: usize = 8 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 100;
/// Most bytes of header names and values in one request.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

pub async fn problem_shapes(req: Request, next: Next) -> Response {
    if let Some(p) = head_problem(&req) {
        return p.into_response();
    }
    if let Some(p) = path_problem(req.uri().path()) {
        return p.into_response();
    }
    let resp = next.run(req).await;
    if !needs_shape(&resp) {
        return resp;
    }
    let status = resp.status();
    let detail = match axum::body::to_bytes(resp.into_body(), MAX_DETAIL).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).trim().to_string(),
        _ => status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_string(),
    };
    shaped(status, detail).into_response()
}

/// An error answered in anything but JSON or a page: axum's plain-text
/// rejections, or a body-less status.
fn needs_shape(resp: &Response<Body>) -> bool {
    if !(resp.status().is_client_error() || resp.status().is_server_error()) {
        return false;
    }
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Problem JSON already, pages (the 360dialog redirect page's 404) and
    // event streams are answers of their own.
    !(ct.starts_with("application/problem+json")
        || ct.starts_with("application/json")
        || ct.starts_with("text/html")
        || ct.starts_with("text/event-stream"))
}

fn shaped(status: StatusCode, detail: String) -> Problem {
    let (slug, title) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", "Payload too large"),
        StatusCode::URI_TOO_LONG => ("uri-too-long", "URI too long"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("headers-too-large", "Request header fields too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "Unsupported media type"),
        StatusCode::UNPROCESSABLE_ENTITY => ("validation", "Invalid request"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        s if s.is_server_error() => ("unavailable", "Service unavailable"),
        _ => ("bad-request", "Bad request"),
    };
    Problem::new(status, slug, title, detail)
}

/// A request head over the limits: the target's length, the number of
/// header fields or their size.
fn head_problem(req: &Request) -> Option<Problem> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_TARGET {
        return Some(shaped(
            StatusCode::URI_TOO_LONG,
            format!("the request target has {target} bytes; at most {MAX_TARGET} are served"),
        ));
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Some(shaped(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "{} header fields of {bytes} bytes; at most {MAX_HEADERS} fields and {MAX_HEADER_BYTES} bytes are served",
                headers.len()
            ),
        ));
    }
    None
}

/// A problem with the path itself: not UTF-8 once percent-decoded, or a
/// control character in it.
fn path_problem(path: &str) -> Option<Problem> {
    let decoded = percent_decode(path);
    let Ok(text) = std::str::from_utf8(&decoded) else {
        return Some(Problem::bad_request(
            "the path is not valid UTF-8 once percent-decoded",
        ));
    };
    text.chars()
        .any(char::is_control)
        .then(|| Problem::validation("the path holds a control character; ids and names never do"))
}

/// `%XX` escapes decoded to bytes; anything else kept as written.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|b| char::from(*b).to_digit(16))
                .and_then(|d| u8::try_from(d).ok())
        };
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi * 16 + lo);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A text that may name something (a reference, an idempotency key):
/// not blank, and without control characters.
pub fn plain_text(what: &str, value: &str) -> Result<(), Problem> {
    if value.trim().is_empty() {
        return Err(Problem::validation(format!("{what} must not be empty")));
    }
    if value.chars().any(char::is_control) {
        return Err(Problem::validation(format!(
            "{what} must not hold control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_bad_bytes_or_control_characters_are_refused() {
        assert!(path_problem("/v1/sessions/ses_1").is_none());
        assert!(path_problem("/v1/sessions/caf%C3%A9").is_none());
        let utf8 = path_problem("/v1/sessions/%FF%FE");
        assert_eq!(utf8.map(|p| p.status), Some(StatusCode::BAD_REQUEST));
        for bad in [
            "/v1/sessions/a%00b",
            "/v1/sessions/a%0Ab",
            "/v1/sessions/%7F",
        ] {
            let p = path_problem(bad);
            assert_eq!(
                p.map(|p| p.status),
                Some(StatusCode::UNPROCESSABLE_ENTITY),
                "{bad}"
            );
        }
        assert_eq!(percent_decode("%4a%4A%zz%"), b"JJ%zz%");
    }

    #[test]
    fn plain_texts_are_not_blank_and_have_no_control_characters() {
        assert!(plain_text("`reference`", "order-1").is_ok());
        assert!(plain_text("`reference`", "").is_err());
        assert!(plain_text("`reference`", "  ").is_err());
        assert!(plain_text("`reference`", "a\0b").is_err());
        assert!(plain_text("`reference`", "a\tb").is_err());
    }
}
