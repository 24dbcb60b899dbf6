//! Session, executive and API-key credentials of the Incode simulator:
//! JWT-shaped tokens, stored hashed, each bound to what it may read.
//!
//! Which credentials a path takes (providers.md 2.1; [`Gate`]):
//! - `/0/omni/*` reads: the interview's session token alone, or an
//!   executive token naming the interview with `?id=`;
//! - `/omni/*` reads and actions: `x-api-key` with the session token, or an
//!   executive token, with or without the key (A: backend-nodejs's
//!   `/approve` sends the executive token without `x-api-key`); a key that is
//!   sent must be right.

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::errors::{ApiError, now_unix};
use super::{API_KEY_HEADER, IncodeSim, SimState, TOKEN_HEADER};

#[derive(Clone, Debug)]
pub(super) enum TokenKind {
    /// Bound to one interview (`POST /omni/start`).
    Session(String),
    /// Any interview of the organisation (`POST /executive/log-in`).
    Executive,
    /// An identity's long-lived token (`POST /omni/process/approve`, a face
    /// login): recorded so that it is recognised and refused on reads.
    Customer(String),
}

/// The credentials a provider path takes (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gate {
    /// `/0/omni/*`: no API key.
    Token,
    /// `/omni/*`: the key with a session token, or an executive token.
    KeyOrExecutive,
}

/// Wrong or missing `x-api-key`.
pub(super) fn bad_key() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "Invalid or missing x-api-key")
}

#[derive(Clone, Debug)]
pub(super) struct TokenRecord {
    pub(super) kind: TokenKind,
    /// Unix seconds.
    pub(super) expires_at: i64,
    pub(super) revoked: bool,
}

pub(super) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl IncodeSim {
    pub(super) fn api_key_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get(API_KEY_HEADER)
            .is_some_and(|v| bool::from(v.as_bytes().ct_eq(self.inner.config.api_key.as_bytes())))
    }

    /// The live token record named by `X-Incode-Hardware-Id`.
    pub(super) fn token(&self, headers: &HeaderMap) -> Result<TokenKind, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
        let token = headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("Missing X-Incode-Hardware-Id header"))?;
        let st = self.lock();
        let record = st
            .tokens
            .get(&token_hash(token))
            .ok_or_else(|| unauthorized("Invalid token"))?;
        if record.revoked {
            return Err(unauthorized("Token revoked"));
        }
        if record.expires_at <= now_unix() {
            return Err(unauthorized("Token expired"));
        }
        if let TokenKind::Session(id) = &record.kind
            && !st.interviews.contains_key(id)
        {
            return Err(unauthorized("Invalid token"));
        }
        Ok(record.kind.clone())
    }

    /// The interview of a valid session token.
    pub(super) fn session_token(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        match self.token(headers)? {
            TokenKind::Session(id) => Ok(id),
            TokenKind::Executive | TokenKind::Customer(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "A session token is required",
            )),
        }
    }

    pub(super) fn executive_token(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self.token(headers)? {
            TokenKind::Executive => Ok(()),
            TokenKind::Session(_) | TokenKind::Customer(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "An executive token is required",
            )),
        }
    }

    /// An executive token, with `x-api-key` optional but checked when sent
    /// (`POST /omni/authentication/verify`).
    pub(super) fn executive_caller(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if headers.contains_key(API_KEY_HEADER) && !self.api_key_ok(headers) {
            return Err(bad_key());
        }
        self.executive_token(headers)
    }

    /// The interview a read or action names, checked against the credentials
    /// `gate` takes: a session token reads its own interview (`id` may repeat
    /// it), an executive token any interview named by `id`.
    pub(super) fn interview_for(
        &self,
        headers: &HeaderMap,
        id: Option<&str>,
        gate: Gate,
    ) -> Result<String, ApiError> {
        let id = id.map(str::trim).filter(|s| !s.is_empty());
        if gate == Gate::KeyOrExecutive
            && headers.contains_key(API_KEY_HEADER)
            && !self.api_key_ok(headers)
        {
            return Err(bad_key());
        }
        match self.token(headers)? {
            TokenKind::Session(own) => {
                if gate == Gate::KeyOrExecutive && !self.api_key_ok(headers) {
                    return Err(bad_key());
                }
                match id {
                    // (A) Incode does not say what a session token naming
                    // another interview gets; a token is bound to one.
                    Some(other) if other != own => Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "The token does not belong to this interview",
                    )),
                    _ => Ok(own),
                }
            }
            TokenKind::Executive => {
                let id = id.ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "Missing required parameter: id (an executive token names the interview)",
                    )
                })?;
                if self.lock().interviews.contains_key(id) {
                    Ok(id.to_owned())
                } else {
                    Err(ApiError::new(StatusCode::NOT_FOUND, "Interview not found"))
                }
            }
            TokenKind::Customer(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "A session or executive token is required",
            )),
        }
    }

    /// A JWT-shaped token (HS256 under the simulator's key) recorded in `st`.
    pub(super) fn issue_token(&self, st: &mut SimState, kind: TokenKind, ttl_s: i64) -> String {
        let iat = now_unix();
        let exp = iat.saturating_add(ttl_s);
        let (sub, role) = match &kind {
            TokenKind::Session(id) => (id.as_str(), "ACCESS"),
            TokenKind::Executive => ("executive", "EXECUTIVE"),
            TokenKind::Customer(uuid) => (uuid.as_str(), "ACCESS"),
        };
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = json!({
            "sub": sub,
            "role": role,
            "iat": iat,
            "exp": exp,
            "jti": hex::encode(rand::random::<[u8; 12]>()),
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let signature = match Hmac::<Sha256>::new_from_slice(&self.inner.jwt_key) {
            Ok(mut mac) => {
                mac.update(signing_input.as_bytes());
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            }
            // HMAC accepts keys of any length.
            Err(_) => URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
        };
        let token = format!("{signing_input}.{signature}");
        st.tokens.insert(
            token_hash(&token),
            TokenRecord {
                kind,
                expires_at: exp,
                revoked: false,
            },
        );
        token
    }
}
