//! A small OAuth2 identity provider with a Graph-style profile endpoint,
//! standing in for the one OIH's Secret Service signs users in with:
//!
//! - `GET /idp/authorize?response_type=code&client_id&redirect_uri&scope&state`:
//!   the sign-in page; `POST /idp/authorize` with `step=signin` shows the
//!   consent page, with `step=consent` answers 303 to `redirect_uri` with
//!   `code` and `state` (Allow) or `error=access_denied` (Deny);
//! - `POST /idp/token` (form, `grant_type=authorization_code`): tokens;
//! - `GET /graph/v1.0/me` (`Authorization: Bearer`): the user's profile.
//!
//! Only the Secret Service is a registered client, with one redirect URI.
//! Any e-mail signs in with any non-empty password. Codes and tokens are
//! kept only as SHA-256 digests and are single use (codes).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::data::{DEMO_USERS, display_name, profile};
use super::{OAUTH_CLIENT_ID, OihSim, pages, random_hex};
use crate::sim::now_rfc3339;

/// Every access token starts with this (tests look for leaks with it).
pub const ACCESS_TOKEN_PREFIX: &str = "oihsim_at_";
/// Every refresh token starts with this.
pub const REFRESH_TOKEN_PREFIX: &str = "oihsim_rt_";
/// The scope the Secret Service asks for.
pub const SCOPE: &str = "User.Read";

const CONSENT_TTL: Duration = Duration::from_secs(600);
const CODE_TTL: Duration = Duration::from_secs(300);
const TOKEN_TTL: Duration = Duration::from_secs(3600);

struct Consent {
    email: String,
    redirect_uri: String,
    state: String,
    created: Instant,
}

struct Grant {
    email: String,
    redirect_uri: String,
    created: Instant,
}

struct AccessGrant {
    email: String,
    expires: Instant,
}

#[derive(Default)]
pub(super) struct IdpState {
    /// Pending consents by their (random) id.
    consents: HashMap<String, Consent>,
    /// Codes by digest.
    codes: HashMap<String, Grant>,
    /// Access tokens by digest.
    tokens: HashMap<String, AccessGrant>,
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    )
}

impl IdpState {
    /// The e-mail of a valid access token's user.
    pub fn user_of(&self, access_token: &str) -> Option<String> {
        self.tokens
            .get(&digest(access_token))
            .filter(|g| Instant::now() < g.expires)
            .map(|g| g.email.clone())
    }
}

/// The OAuth parameters of the authorize request, carried through the pages.
#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct AuthorizeParams {
    #[serde(default)]
    pub response_type: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub state: String,
}

#[derive(Deserialize)]
pub(super) struct AuthorizeForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    #[serde(default)]
    step: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    consent: String,
    #[serde(default)]
    decision: String,
}

impl OihSim {
    /// Refuses an unknown client, redirect URI or response type; the caller
    /// shows a page (never a redirect to an unregistered URI).
    fn check_client(&self, p: &AuthorizeParams) -> Result<(), String> {
        let problem = if p.client_id != OAUTH_CLIENT_ID {
            Some(format!("Unknown application `{}`.", p.client_id))
        } else if p.redirect_uri != self.redirect_uri() {
            Some("The redirect_uri is not registered for this application.".to_owned())
        } else if p.response_type != "code" {
            Some("Only response_type=code is supported.".to_owned())
        } else {
            None
        };
        problem.map_or(Ok(()), Err)
    }

    fn public_origin(&self) -> String {
        reqwest::Url::parse(self.public_url())
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }
}

/// `GET /idp/authorize`: the sign-in page.
pub(super) async fn authorize_page(
    State(sim): State<OihSim>,
    query: Result<Query<AuthorizeParams>, QueryRejection>,
) -> Response {
    let p = query.map(|Query(p)| p).unwrap_or_default();
    if let Err(m) = sim.check_client(&p) {
        return pages::error_page(StatusCode::BAD_REQUEST, &m);
    }
    pages::sign_in_page(&p, DEMO_USERS[0].0, None, &sim.public_origin())
}

/// `POST /idp/authorize`: the sign-in form (`step=signin`) or the consent form (`step=consent`).
pub(super) async fn authorize_submit(
    State(sim): State<OihSim>,
    form: Result<Form<AuthorizeForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    match f.step.as_str() {
        "signin" => sign_in(&sim, f),
        "consent" => consent(&sim, f),
        _ => pages::error_page(StatusCode::BAD_REQUEST, "Unknown step."),
    }
}

fn sign_in(sim: &OihSim, f: AuthorizeForm) -> Response {
    if let Err(m) = sim.check_client(&f.params) {
        return pages::error_page(StatusCode::BAD_REQUEST, &m);
    }
    let origin = sim.public_origin();
    let email = f.email.trim().to_lowercase();
    let well_formed = email
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
    if !well_formed {
        let error = "Enter an e-mail address such as ada.lovelace@example.com.";
        return pages::sign_in_page(&f.params, &f.email, Some(error), &origin);
    }
    if f.password.is_empty() {
        let error = "Enter your password (any password works in this simulator).";
        return pages::sign_in_page(&f.params, &email, Some(error), &origin);
    }
    let id = random_hex(16);
    {
        let mut st = sim.lock();
        st.idp
            .consents
            .retain(|_, c| c.created.elapsed() < CONSENT_TTL);
        st.idp.consents.insert(
            id.clone(),
            Consent {
                email: email.clone(),
                redirect_uri: f.params.redirect_uri.clone(),
                state: f.params.state.clone(),
                created: Instant::now(),
            },
        );
    }
    pages::consent_page(&id, &display_name(&email), &email, &origin)
}

fn consent(sim: &OihSim, f: AuthorizeForm) -> Response {
    let consent = sim
        .lock()
        .idp
        .consents
        .remove(&f.consent)
        .filter(|c| c.created.elapsed() < CONSENT_TTL);
    let Some(c) = consent else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "This consent was already answered or has expired. Start the sign-in again.",
        );
    };
    let params: Vec<(&str, String)> = if f.decision == "allow" {
        let code = random_token("");
        let mut st = sim.lock();
        st.idp.codes.retain(|_, g| g.created.elapsed() < CODE_TTL);
        st.idp.codes.insert(
            digest(&code),
            Grant {
                email: c.email,
                redirect_uri: c.redirect_uri.clone(),
                created: Instant::now(),
            },
        );
        vec![("code", code), ("state", c.state)]
    } else {
        vec![("error", "access_denied".to_owned()), ("state", c.state)]
    };
    let Ok(mut location) = reqwest::Url::parse(&c.redirect_uri) else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The redirect_uri is invalid.");
    };
    location.query_pairs_mut().extend_pairs(params);
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location.as_str()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `POST /idp/token`: redeems a code for tokens (RFC 6749 4.1.3).
pub(super) async fn token(
    State(sim): State<OihSim>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected an application/x-www-form-urlencoded body",
        );
    };
    if f.grant_type != "authorization_code" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code is supported",
        );
    }
    let secret_ok = bool::from(
        f.client_secret
            .as_bytes()
            .ct_eq(sim.shared.client_secret.as_bytes()),
    );
    if f.client_id != OAUTH_CLIENT_ID || !secret_ok {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong client secret",
        );
    }
    let grant = sim
        .lock()
        .idp
        .codes
        .remove(&digest(&f.code))
        .filter(|g| g.created.elapsed() < CODE_TTL);
    let Some(grant) = grant.filter(|g| g.redirect_uri == f.redirect_uri) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code is unknown, used, expired or was issued for another redirect_uri",
        );
    };
    let access_token = random_token(ACCESS_TOKEN_PREFIX);
    {
        let mut st = sim.lock();
        st.idp.tokens.retain(|_, t| Instant::now() < t.expires);
        st.idp.tokens.insert(
            digest(&access_token),
            AccessGrant {
                email: grant.email,
                expires: Instant::now() + TOKEN_TTL,
            },
        );
    }
    let body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_TTL.as_secs(),
        "refresh_token": random_token(REFRESH_TOKEN_PREFIX),
        "scope": SCOPE,
    });
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /graph/v1.0/me`: the profile of the token's user, else Graph's 401.
pub(super) async fn graph_me(State(sim): State<OihSim>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return graph_unauthorized("Access token is empty.");
    };
    let Some(email) = sim.lock().idp.user_of(token) else {
        return graph_unauthorized("Access token validation failure. Invalid or expired token.");
    };
    let mut body =
        json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity"});
    if let (Value::Object(b), Value::Object(p)) = (&mut body, profile(&email)) {
        b.extend(p);
    }
    Json(body).into_response()
}

fn graph_unauthorized(message: &str) -> Response {
    let body = json!({"error": {
        "code": "InvalidAuthenticationToken",
        "message": message,
        "innerError": {"date": now_rfc3339(), "request-id": random_hex(16)},
    }});
    let mut resp = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}
