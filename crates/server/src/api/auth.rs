//! Who is calling: the client's address (limits.rs decides whose
//! `X-Forwarded-For` counts), the customer's API key with the scope a route
//! requires (`ApiKey<scope::SessionsRead>` in a handler's arguments), and
//! the rate limits and failed-authentication lockouts around both. Routes
//! without API key or client secret get their limits from
//! [`unauthenticated_limits`].

use super::AppState;
use super::error::Problem;
use crate::ids;
use crate::keys::{CacheLookup, CachedKey, Scope, Scopes};
use crate::limits::{Limit, Refused};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
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

/// An authenticated API key that holds the scope `S`.
pub struct ApiKey<S> {
    pub id: String,
    pub name: String,
    scope: PhantomData<fn() -> S>,
}

impl<S: RequiredScope> FromRequestParts<AppState> for ApiKey<S> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Problem> {
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
            scope: PhantomData,
        })
    }
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
            "send your API key as `Authorization: Bearer <key>`",
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
