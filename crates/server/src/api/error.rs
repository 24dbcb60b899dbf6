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
    /// Extension members (RFC 9457 section 3.2), e.g. `missing_scope`.
    pub extensions: Vec<(&'static str, serde_json::Value)>,
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
            extensions: Vec::new(),
        }
    }
    /// Adds an extension member to the body.
    pub fn with(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Problem {
        self.extensions.push((name, value.into()));
        self
    }
    /// A valid API key without the scope a route requires.
    pub fn missing_scope(scope: &'static str) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient-scope",
            "Insufficient scope",
            format!("this API key lacks the scope `{scope}`; create a key with `--scope {scope}`"),
        )
        .with("missing_scope", scope)
    }
    /// An operator whose role lacks the scope a route requires.
    pub fn role_lacks(role: &str, scope: &'static str) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient-scope",
            "Insufficient scope",
            format!("the `{role}` role may not do this (it needs the scope `{scope}`)"),
        )
        .with("missing_scope", scope)
    }
    /// A state-changing console request without the session's CSRF token,
    /// or sent from another site.
    pub fn csrf(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "Cross-site request refused",
            detail,
        )
    }
    /// A rate limit: retry after `retry_after_s` seconds (at least 1).
    pub fn too_many_requests(detail: impl Into<String>, retry_after_s: u64) -> Problem {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            detail,
        );
        p.retry_after = Some(retry_after_s.max(1));
        p
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
    /// An input that does not match its workflow's `input` schema: each
    /// problem in `errors` with a JSON Pointer into the input.
    pub fn invalid_input(
        workflow: &str,
        version: u32,
        errors: &[gangway_core::workflow::InputError],
    ) -> Problem {
        let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
        let more = match errors.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} more in `errors`)", n - 1),
        };
        let list: Vec<serde_json::Value> = errors
            .iter()
            .map(|e| json!({"pointer": e.pointer, "detail": e.message}))
            .collect();
        Problem::validation(format!(
            "`input` does not match the input schema of workflow `{workflow}` v{version} (GET /v1/workflows shows it): {first}{more}"
        ))
        .with("errors", list)
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

impl Problem {
    /// An input the session will not take: 409 once it has ended, 429 at a
    /// per-session limit (retrying does not help: the limit stays).
    pub fn refused(why: crate::runtime::Refused) -> Problem {
        use crate::runtime::Refused as R;
        match why {
            R::Ended => Problem::conflict(format!("{}; nothing was stored", why.reason())),
            R::Signals | R::Timeline => {
                Problem::limit(format!("{}; nothing was stored", why.reason()))
            }
        }
    }

    /// A per-session or per-node limit was reached (429).
    pub fn limit(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "limit-reached",
            "Limit reached",
            detail,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("https://gangway.dev/problems/{}", self.slug),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        for (name, value) in self.extensions {
            body[name] = value;
        }
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
            E::InvalidInput {
                workflow,
                version,
                errors,
            } => Problem::invalid_input(&workflow, version, &errors),
            E::NotFound => Problem::not_found("no session with this id"),
            E::IdempotencyConflict => Problem::conflict(
                "this Idempotency-Key was already used with a different request body",
            ),
            E::Ended => Problem::conflict("the session has already ended"),
            E::Running => Problem::conflict("the session is still running; try again"),
            E::Refused(why) => Problem::refused(why),
            E::Review(why) => {
                let mut p = Problem::conflict(why.to_string()).with("reason", why.code());
                if let crate::runtime::reviews::ReviewRefusal::ClaimedByAnother { until } = why {
                    p = p.with(
                        "claimed_until",
                        crate::runtime::view::time_json(Some(until)),
                    );
                }
                p
            }
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
