//! The simulated OIH Secret Service: login attempts opened by the
//! `oauth-login` flow, its OAuth callback `GET /secrets/callback` (code
//! exchanged at the identity provider's token endpoint over HTTP), and the
//! secrets it stores. Tokens stay here: callbacks carry only the secret id.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

use super::data::display_name;
use super::{OAUTH_CLIENT_ID, OihSim, pages, random_hex};
use crate::sim::now_rfc3339;

/// How long a login attempt waits for the user.
pub(super) const LOGIN_TTL: Duration = Duration::from_secs(600);

/// A login waiting for the user, keyed by the OAuth `state`.
pub(super) struct LoginAttempt {
    request_id: String,
    owner: String,
    created: Instant,
    done: oneshot::Sender<LoginOutcome>,
}

impl LoginAttempt {
    pub fn new(request_id: &str, owner: &str, done: oneshot::Sender<LoginOutcome>) -> Self {
        LoginAttempt {
            request_id: request_id.to_owned(),
            owner: owner.to_owned(),
            created: Instant::now(),
            done,
        }
    }
}

/// How a login attempt ended, for the waiting flow.
pub(super) enum LoginOutcome {
    SignedIn {
        secret_id: String,
        name: String,
        email: String,
    },
    Declined(String),
}

/// An OAuth2 secret: the tokens stay in the simulator.
#[derive(Clone)]
struct StoredSecret {
    id: String,
    owner: String,
    user: String,
    access_token: String,
    /// Held as a real secret holds it; nothing refreshes in the simulator.
    #[allow(dead_code)]
    refresh_token: String,
    created_at: String,
}

/// A secret as `GET control/secrets` shows it: no token.
#[derive(Clone, Debug, Serialize)]
pub struct SecretSummary {
    pub id: String,
    /// The Gangway session that ran the login (the trigger's `sessionId`).
    pub owner: String,
    /// The signed-in user's e-mail.
    pub user: String,
    pub created_at: String,
}

#[derive(Default)]
pub(super) struct HubState {
    attempts: HashMap<String, LoginAttempt>,
    secrets: IndexMap<String, StoredSecret>,
}

impl HubState {
    pub fn open(&mut self, state: String, attempt: LoginAttempt) {
        self.attempts.retain(|_, a| a.created.elapsed() < LOGIN_TTL);
        self.attempts.insert(state, attempt);
    }

    pub fn forget(&mut self, state: &str) {
        self.attempts.remove(state);
    }

    fn pending(&self, state: &str) -> bool {
        self.attempts
            .get(state)
            .is_some_and(|a| a.created.elapsed() < LOGIN_TTL)
    }

    pub fn access_token(&self, secret_id: &str) -> Option<String> {
        self.secrets.get(secret_id).map(|s| s.access_token.clone())
    }

    pub fn summaries(&self) -> Vec<SecretSummary> {
        self.secrets
            .values()
            .map(|s| SecretSummary {
                id: s.id.clone(),
                owner: s.owner.clone(),
                user: s.user.clone(),
                created_at: s.created_at.clone(),
            })
            .collect()
    }
}

/// The token endpoint's answer (RFC 6749 5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

impl OihSim {
    /// The identity provider's authorize URL for a login attempt.
    pub(super) fn login_url(&self, state: &str) -> String {
        let base = format!("{}/idp/authorize", self.public_url());
        let redirect = self.redirect_uri();
        let params = [
            ("response_type", "code"),
            ("client_id", OAUTH_CLIENT_ID),
            ("redirect_uri", redirect.as_str()),
            ("scope", "User.Read"),
            ("state", state),
        ];
        reqwest::Url::parse_with_params(&base, params)
            .map(|u| u.to_string())
            .unwrap_or(base)
    }

    /// Redeems a code at the token endpoint, over HTTP like a real hub.
    async fn exchange_code(&self, code: &str) -> Result<TokenResponse, String> {
        let redirect = self.redirect_uri();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("client_id", OAUTH_CLIENT_ID),
            ("client_secret", self.shared.client_secret.as_str()),
        ];
        let resp = self
            .shared
            .http
            .post(format!("{}/idp/token", self.public_url()))
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the token endpoint could not be reached: {}",
                    e.without_url()
                )
            })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let error = body["error"].as_str().unwrap_or("unknown error");
            return Err(format!("the identity provider refused the code ({error})"));
        }
        serde_json::from_value(body)
            .map_err(|_| "the token endpoint answered without tokens".to_owned())
    }

    fn finish(&self, state: &str, outcome: LoginOutcome) -> bool {
        let attempt = self.lock().hub.attempts.remove(state);
        match attempt {
            Some(a) => {
                tracing::debug!(request_id = %a.request_id, "OIH simulator: login attempt ended");
                // The flow may have stopped waiting (reset): nothing to tell.
                let _ = a.done.send(outcome);
                true
            }
            None => false,
        }
    }
}

/// `GET /secrets/callback?code&state` (or `?error&state`): the hub's OAuth redirect URI.
pub(super) async fn oauth_callback(
    State(sim): State<OihSim>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    const UNKNOWN: &str =
        "This sign-in link is unknown or was already used. Start again with /auth in the chat.";
    let Ok(Query(q)) = query else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "The sign-in callback is malformed.",
        );
    };
    let state = q.state.unwrap_or_default();
    if !sim.lock().hub.pending(&state) {
        return pages::error_page(StatusCode::BAD_REQUEST, UNKNOWN);
    }
    if let Some(error) = q.error {
        let message = if error == "access_denied" {
            "The user declined the sign-in".to_owned()
        } else {
            format!("The sign-in failed: {error}")
        };
        if !sim.finish(&state, LoginOutcome::Declined(message)) {
            return pages::error_page(StatusCode::BAD_REQUEST, UNKNOWN);
        }
        return pages::done_page("Sign-in canceled. You can close this window.");
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The sign-in callback has no code.");
    };
    let tokens = match sim.exchange_code(&code).await {
        Ok(t) => t,
        Err(e) => {
            return pages::error_page(StatusCode::BAD_REQUEST, &format!("Sign-in failed: {e}."));
        }
    };
    let Some(email) = sim.lock().idp.user_of(&tokens.access_token) else {
        return pages::error_page(
            StatusCode::BAD_GATEWAY,
            "The new access token is not valid.",
        );
    };
    let secret_id = random_hex(12);
    {
        let mut st = sim.lock();
        let Some(owner) = st.hub.attempts.get(&state).map(|a| a.owner.clone()) else {
            return pages::error_page(StatusCode::BAD_REQUEST, UNKNOWN);
        };
        st.hub.secrets.insert(
            secret_id.clone(),
            StoredSecret {
                id: secret_id.clone(),
                owner,
                user: email.clone(),
                access_token: tokens.access_token,
                refresh_token: tokens.refresh_token,
                created_at: now_rfc3339(),
            },
        );
    }
    let outcome = LoginOutcome::SignedIn {
        secret_id,
        name: display_name(&email),
        email,
    };
    if !sim.finish(&state, outcome) {
        return pages::error_page(StatusCode::BAD_REQUEST, UNKNOWN);
    }
    pages::done_page("You are signed in. You can close this window.")
}
