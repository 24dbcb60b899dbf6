//! The operator console's own routes: its pages (`/console`, every view
//! under it, the files in web/console.rs), sign-in and sign-out, and `GET
//! /v1/console/me` (who is signed in, with the CSRF token the console sends
//! back on every state-changing call). Everything else the console does
//! goes through the documented API with the session cookie
//! (auth.rs accepts it where it accepts an API key).

use super::AppState;
use super::auth::{ClientAddr, auth_failed, check_csrf, console_cookie};
use super::error::Problem;
use crate::operators::{self, SignInError};
use crate::web::console as files;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(shell))
        .route("/console/", get(shell))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/assets/{*file}", get(asset))
        .route("/console/{*view}", get(shell))
        .route("/v1/console/me", get(me))
}

async fn asset(Path(file): Path<String>) -> Response {
    files::asset(&file)
}

/// Where to go after signing in: a console path, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/console")
                && !n.starts_with("/console/login")
                && !n.contains("//")
                && !n.contains('\\')
                && n.chars().all(|c| !c.is_control()) =>
        {
            n
        }
        _ => "/console",
    }
}

/// `next=<path>`, encoded.
fn next_query(path: &str) -> String {
    serde_urlencoded::to_string([("next", path)]).unwrap_or_default()
}

/// Every console view: the shell for a signed-in operator, else the
/// sign-in page (which brings the operator back here).
async fn shell(State(st): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let signed_in = match console_cookie(&parts.headers) {
        Some(token) => st.engine.console_operator(&token).await.is_ok(),
        None => false,
    };
    if !signed_in {
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/console");
        let to = format!("/console/login?{}", next_query(here));
        return Redirect::to(&to).into_response();
    }
    files::page(files::INDEX.to_string())
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    login_form(StatusCode::OK, "", "", q.next.as_deref())
}

/// The sign-in page with a message (escaped) and the email typed before.
fn login_form(status: StatusCode, message: &str, email: &str, next: Option<&str>) -> Response {
    let notice = if message.is_empty() {
        String::new()
    } else {
        format!(
            r#"<p class="notice" role="alert">{}</p>"#,
            files::escape(message)
        )
    };
    let action = format!("/console/login?{}", next_query(safe_next(next)));
    let html = files::LOGIN
        .replace("{{MESSAGE}}", &notice)
        .replace("{{EMAIL}}", &files::escape(email))
        .replace(
            "action=\"/console/login\"",
            &format!("action=\"{}\"", files::escape(&action)),
        );
    let mut resp = files::page(html);
    *resp.status_mut() = status;
    resp
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

/// Whether a sign-in form was posted from another site (login CSRF: an
/// attacker signing the victim in to the attacker's account).
fn cross_site(h: &HeaderMap) -> bool {
    let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| !matches!(s, "same-origin" | "none")) {
        return true;
    }
    match (
        h.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        h.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, r)| r) != Some(host),
        _ => false,
    }
}

/// The session cookie: HttpOnly (no script reads it), SameSite=Strict (no
/// other site's request carries it), Secure when the console is reached
/// over https (the server's TLS, or a proxy that says so).
fn session_cookie(st: &AppState, h: &HeaderMap, value: &str, max_age_s: u64) -> HeaderValue {
    let https = st.engine.config().tls.is_some()
        || h.get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let secure = if https { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}",
        operators::COOKIE
    );
    // The token is hex and the rest constant, so this always parses.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

async fn login(
    State(st): State<AppState>,
    ClientAddr(source): ClientAddr,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let next = q.next.as_deref();
    if cross_site(&headers) {
        return Problem::csrf("sign in from the console's own page").into_response();
    }
    if let Err(refused) = st
        .limits
        .check_lockout(source)
        .and_then(|()| st.limits.check_source(source))
    {
        return Problem::from(refused).into_response();
    }
    let Ok(Form(form)) = form else {
        return login_form(
            StatusCode::BAD_REQUEST,
            "Enter your email and password.",
            "",
            next,
        );
    };
    match st.engine.sign_in(&form.email, form.password).await {
        Ok(signed_in) => {
            let max_age = st.engine.config().console.lifetime.as_secs();
            // 303: the browser follows with a GET.
            let mut resp = Redirect::to(safe_next(next)).into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&st, &headers, &signed_in.token, max_age),
            );
            tracing::info!(operator = %signed_in.operator.id, "operator signed in");
            resp
        }
        Err(SignInError::Store(e)) => Problem::from(e).into_response(),
        Err(err) => {
            // Counted per address as well: guessing across accounts locks
            // the guesser out, not only each account.
            let counted = auth_failed(&st, source, "console", Problem::unauthorized(""));
            if counted.status == StatusCode::TOO_MANY_REQUESTS {
                return counted.into_response();
            }
            login_form(
                StatusCode::UNAUTHORIZED,
                &err.to_string(),
                &form.email,
                next,
            )
        }
    }
}

/// Ends the console session (the console's Sign out): CSRF-checked like
/// every state-changing console call; the cookie is cleared.
async fn logout(State(st): State<AppState>, req: Request) -> Result<Response, Problem> {
    let (parts, _) = req.into_parts();
    let Some(token) = console_cookie(&parts.headers) else {
        return Err(Problem::unauthorized("not signed in"));
    };
    check_csrf(&parts, &token)?;
    if let Ok((op, _)) = st.engine.console_operator(&token).await {
        st.engine.sign_out(&token, &op).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&st, &parts.headers, "", 0),
    );
    Ok(resp)
}

/// `GET /v1/console/me`: the signed-in operator, its role and scopes, and
/// the CSRF token. Only for a console session (an API key has no operator).
async fn me(State(st): State<AppState>, req: Request) -> Result<Json<serde_json::Value>, Problem> {
    let (parts, _) = req.into_parts();
    let Some(token) = console_cookie(&parts.headers) else {
        return Err(Problem::unauthorized(
            "this route is for a console session: sign in at /console/login",
        ));
    };
    let (op, role) = st
        .engine
        .console_operator(&token)
        .await
        .map_err(|ended| match ended {
            operators::SessionEnded::Store(e) => Problem::from(e),
            other => Problem::unauthorized(other.to_string()),
        })?;
    let config = &st.engine.config().console;
    Ok(Json(json!({
        "operator": {"id": op.id, "email": op.email, "role": role.as_str()},
        "scopes": role.scopes().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "csrf_token": operators::csrf_token(&token),
        "idle_timeout_s": config.idle_timeout.as_secs(),
    })))
}
