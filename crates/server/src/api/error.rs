//! One error type for the API, rendered as RFC 9457 problem JSON. Every
//! domain error maps here, exhaustively; internal details are logged, never
//! returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            slug,
            title,
            detail: detail.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }
    pub fn validation(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
            detail,
        )
    }
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        );
        p.retry_after = Some(2);
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({
            "type": format!("https://gangway.dev/problems/{}", self.slug),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut resp = (self.status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

impl From<crate::runtime::Error> for Problem {
    fn from(e: crate::runtime::Error) -> Problem {
        use crate::runtime::Error as E;
        match e {
            E::UnknownWorkflow(w) => Problem::validation(format!(
                "unknown workflow `{w}`; GET /v1/workflows lists them"
            )),
            E::NotFound => Problem::not_found("no session with this id"),
            E::IdempotencyConflict => Problem::conflict(
                "this Idempotency-Key was already used with a different request body",
            ),
            E::Ended => Problem::conflict("the session has already ended"),
            E::ShuttingDown => {
                Problem::unavailable("the server is shutting down; retry on another node")
            }
            E::Store(e) => {
                tracing::error!(error = %e, "store error");
                Problem::unavailable("the database is not available right now; retry shortly")
            }
        }
    }
}

impl From<crate::store::Error> for Problem {
    fn from(e: crate::store::Error) -> Problem {
        crate::runtime::Error::Store(e).into()
    }
}
