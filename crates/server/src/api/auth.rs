//! Who is calling: the client's address (limits.rs decides whose
//! `X-Forwarded-For` counts), the customer's API key or an operator's
//! console session with the scope a route requires
//! (`ApiKey<scope::SessionsRead>` in a handler's arguments), and
//! the rate limits and failed-authentication lockouts around both. Routes
//! without API key or client secret get their limits from
//! [`unauthenticated_limits`].

use super::AppState;
use super::error::Problem;
use crate::audit::Actor;
use crate::ids;
use crate::keys::{CacheLookup, CachedKey, Scope, Scopes};
use crate::limits::{Limit, Refused};
use crate::operators::{self, Role};
use crate::runtime::Reviewer;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

impl From<Refused> for Problem {
    fn from(r: Refused) -> Problem {
        let detail = match r.limit {
            Limit::FailedAuth => {
                "too many failed authentications from this address; every request with credentials from it is refused for a while"
            }
            Limit::ApiKey => "this API key exceeded its rate limit (rate_limits.api_key)",
            Limit::ClientSecret => "too many requests for this session (rate_limits.client_secret)",
            Limit::Source => "too many requests from this address (rate_limits.source)",
        };
        Problem::too_many_requests(detail, r.retry_after_s()).with("limit", r.limit.as_str())
    }
}

/// The client's address: the peer's, or the one a trusted proxy forwarded.
pub fn client_address(st: &AppState, parts: &Parts) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    st.limits.client_address(peer, &parts.headers)
}

/// The client's address as a handler argument.
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Infallible> {
        Ok(ClientAddr(client_address(st, parts)))
    }
}

/// A failed authentication of `kind` from `source`: `problem`, or 429 when
/// it was one too many for the address.
pub fn auth_failed(st: &AppState, source: IpAddr, kind: &'static str, problem: Problem) -> Problem {
    match st.limits.failed(source, kind) {
        Ok(()) => problem,
        Err(refused) => refused.into(),
    }
}

/// Provider webhooks, callbacks and the redirect page: refused while the
/// address is locked out, and past `rate_limits.source`.
pub async fn unauthenticated_limits(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let source = client_address(&st, &parts);
    if let Err(refused) = st
        .limits
        .check_lockout(source)
        .and_then(|()| st.limits.check_source(source))
    {
        return Problem::from(refused).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The scope a route requires, as a type (see [`scope`]).
pub trait RequiredScope {
    const SCOPE: Scope;

    /// Whether a key with `scopes` may pass: by default, when it holds
    /// `SCOPE` (as `Scopes::grants` widens it).
    fn allowed(scopes: crate::keys::Scopes) -> bool {
        scopes.grants(Self::SCOPE)
    }
}

/// One type per [`Scope`], for `ApiKey<...>`.
pub mod scope {
    use super::{RequiredScope, Scope};

    macro_rules! scopes {
        ($($name:ident),*) => {$(
            pub struct $name;
            impl RequiredScope for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }
    scopes!(
        SessionsRead,
        SessionsWrite,
        SecretsRead,
        WorkflowsRead,
        WorkflowsDryRun,
        SessionsErase,
        Admin,
        ReviewsRead,
        ReviewsDecide
    );

    /// `workflows:dry-run`, or `admin`: checking a draft (the studio's
    /// validation) is what either may do; a 403 names `workflows:dry-run`.
    pub struct DryRunOrAdmin;
    impl RequiredScope for DryRunOrAdmin {
        const SCOPE: Scope = Scope::WorkflowsDryRun;
        fn allowed(scopes: crate::keys::Scopes) -> bool {
            scopes.grants(Scope::WorkflowsDryRun) || scopes.grants(Scope::Admin)
        }
    }
}

/// Who is calling, holding the scope `S`: a customer's API key (bearer) or
/// an operator signed in to the console (its session cookie, whose role
/// grants scopes as crate::operators says). Both reach the same routes, so
/// everything the console does a script can do.
pub struct ApiKey<S> {
    /// The key's id, or the operator's.
    pub id: String,
    /// The key's name, or the operator's email.
    pub name: String,
    /// Set for an operator: its role.
    pub role: Option<Role>,
    scope: PhantomData<fn() -> S>,
}

impl<S> ApiKey<S> {
    /// Who the audit log names.
    pub fn actor(&self) -> Actor {
        match self.role {
            Some(_) => Actor::Operator(self.id.clone()),
            None => Actor::ApiKey(self.id.clone()),
        }
    }

    /// Who a review claim or decision names.
    pub fn reviewer(&self) -> Reviewer {
        match self.role {
            Some(_) => Reviewer::operator(&self.id),
            None => Reviewer::api_key(&self.id),
        }
    }
}

impl<S: RequiredScope> FromRequestParts<AppState> for ApiKey<S> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Problem> {
        if bearer(parts).is_none()
            && let Some(token) = console_cookie(&parts.headers)
        {
            return operator_caller(st, parts, &token).await;
        }
        let key = authenticate(st, parts).await?;
        // The access log names the key by its id, never by the key.
        if let Some(note) = parts.extensions.get::<crate::logging::AccessNote>() {
            note.key_id(&key.id);
        }
        if !S::allowed(key.scopes) {
            return Err(Problem::missing_scope(S::SCOPE.as_str()));
        }
        st.limits.check_api_key(&key.id)?;
        Ok(ApiKey {
            id: key.id,
            name: key.name,
            role: None,
            scope: PhantomData,
        })
    }
}

/// The console session cookie's token, if the request carries one.
pub fn console_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == operators::COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A state-changing request with a console cookie must come from the
/// console's own pages: not from another site (`Sec-Fetch-Site`, `Origin`),
/// and with the session's CSRF token, which only a same-origin page can
/// read. The cookie is `SameSite=Strict` as well; this holds even for a
/// browser that ignores that.
pub fn check_csrf(parts: &Parts, token: &str) -> Result<(), Problem> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let h = &parts.headers;
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(Problem::csrf(format!(
            "a {site} request may not change anything with a console session"
        )));
    }
    if let (Some(origin), Some(host)) = (
        h.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        h.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) && origin.split_once("://").map(|(_, rest)| rest) != Some(host)
    {
        return Err(Problem::csrf(
            "the request's Origin is not this console's; it may not change anything",
        ));
    }
    let sent = h
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ids::secure_eq(sent.as_bytes(), operators::csrf_token(token).as_bytes()) {
        return Err(Problem::csrf(
            "send the console session's CSRF token (GET /v1/console/me) in X-CSRF-Token",
        ));
    }
    Ok(())
}

async fn operator_caller<S: RequiredScope>(
    st: &AppState,
    parts: &Parts,
    token: &str,
) -> Result<ApiKey<S>, Problem> {
    let (op, role) = st
        .engine
        .console_operator(token)
        .await
        .map_err(|ended| match ended {
            operators::SessionEnded::Store(e) => Problem::from(e),
            other => Problem::unauthorized(other.to_string()),
        })?;
    check_csrf(parts, token)?;
    if let Some(note) = parts.extensions.get::<crate::logging::AccessNote>() {
        note.key_id(&op.id);
    }
    if !S::allowed(role.scope_set()) {
        return Err(Problem::role_lacks(role.as_str(), S::SCOPE.as_str()));
    }
    st.limits.check_api_key(&op.id)?;
    Ok(ApiKey {
        id: op.id,
        name: op.email,
        role: Some(role),
        scope: PhantomData,
    })
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The key the request's bearer secret belongs to, if it works now.
async fn authenticate(st: &AppState, parts: &Parts) -> Result<CachedKey, Problem> {
    let Some(secret) = bearer(parts) else {
        return Err(Problem::unauthorized(
            "send your API key as `Authorization: Bearer <key>`, or sign in to the console",
        ));
    };
    let hash = ids::hash_secret(secret);
    let now = ids::now_ms();
    let engine = &st.engine;
    let key = match engine.key_cache().get(&hash) {
        CacheLookup::Hit(key) => key,
        CacheLookup::Miss { generation, known } => {
            let source = client_address(st, parts);
            // A secret that worked a moment ago is no guess: it passes a
            // lockout that someone else behind the same address caused.
            if !known {
                st.limits.check_lockout(source)?;
            }
            let Some(found) = engine.api_key_by_hash(&hash, now).await? else {
                engine.key_cache().remove(&hash);
                return Err(auth_failed(
                    st,
                    source,
                    "api_key",
                    Problem::unauthorized("unknown API key"),
                ));
            };
            let key = CachedKey {
                id: found.key.id,
                name: found.key.name,
                scopes: Scopes::from_names(&found.key.scopes),
                expires_at: match (found.key.expires_at, found.secret_expires_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
                replaced: found.secret_expires_at.is_some(),
                revoked_at: found.key.revoked_at,
            };
            engine.key_cache().insert(hash, key.clone(), generation);
            key
        }
    };
    let time = |ms| {
        crate::runtime::view::time_json(Some(ms))
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    if let Some(at) = key.revoked_at {
        return Err(Problem::unauthorized(format!(
            "this API key was revoked at {}",
            time(at)
        )));
    }
    if let Some(at) = key.expires_at.filter(|at| *at <= now) {
        return Err(Problem::unauthorized(if key.replaced {
            format!(
                "this API key was rotated and its previous secret stopped working at {}; use the new secret",
                time(at)
            )
        } else {
            format!("this API key expired at {}", time(at))
        }));
    }
    Ok(key)
}
