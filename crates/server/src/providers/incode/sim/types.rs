//! The Incode simulator's configuration, knobs and the interview record its
//! control API shows.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the simulator authenticates its webhooks (providers.md 2.4).
#[derive(Clone)]
pub enum IncodeWebhookAuth {
    /// Client credentials at `token_url`, then `Authorization: Bearer <access_token>`.
    OAuth2 {
        token_url: String,
        client_id: String,
        client_secret: String,
    },
    /// A static header, e.g. `X-Gangway-Webhook-Secret: <value>`.
    Header { name: String, value: String },
}

impl std::fmt::Debug for IncodeWebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IncodeWebhookAuth::OAuth2 {
                token_url,
                client_id,
                ..
            } => f
                .debug_struct("OAuth2")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
            IncodeWebhookAuth::Header { name, .. } => f
                .debug_struct("Header")
                .field("name", name)
                .field("value", &"<redacted>")
                .finish(),
        }
    }
}

#[derive(Clone)]
pub struct IncodeSimConfig {
    /// Expected in `x-api-key` on `/omni/*` (403 otherwise).
    pub api_key: String,
    /// Where webhooks go, e.g. `http://127.0.0.1:8080/v1/webhooks/incode`.
    pub webhook_url: String,
    pub webhook_auth: IncodeWebhookAuth,
    /// The simulator's base URL as browsers reach it, e.g.
    /// `http://127.0.0.1:8080/sim/incode`; the hosted flow is `{public_url}/flow/{interviewId}`.
    pub public_url: String,
    /// Origins allowed to frame the hosted page (CSP `frame-ancestors`); empty: `'self'` only.
    pub frame_ancestors: Vec<String>,
}

impl std::fmt::Debug for IncodeSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncodeSimConfig")
            .field("api_key", &"<redacted>")
            .field("webhook_url", &self.webhook_url)
            .field("webhook_auth", &self.webhook_auth)
            .field("public_url", &self.public_url)
            .field("frame_ancestors", &self.frame_ancestors)
            .finish()
    }
}

/// Global knobs (`/control/knobs`; a POST merges the given fields, `null`
/// clears the nullable ones). Also usable from `[sim.incode]` config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncodeKnobs {
    /// Pause between the statuses of a pass/fail/review walk.
    pub step_delay_ms: u64,
    /// Permute the three middle statuses of a walk.
    pub shuffle_statuses: bool,
    /// `overall.status` after `review`: `WARN`, `MANUAL` or `MANUAL_PENDING`.
    pub review_status: String,
    /// After `abandon`, `EXPIRED` this much later (0: at once; null: never).
    pub abandon_expire_ms: Option<u64>,
    /// Lifetime of session tokens issued from now on.
    pub token_ttl_s: u64,
    /// Extra copies of every webhook.
    pub duplicate: u32,
    /// A new interview is finished (`pass`, webhooks sent) before its start call answers.
    pub early: bool,
    /// Each webhook is held back and sent after the next one (a terminal
    /// status is never held: it is sent, then the held one).
    pub reorder: bool,
    /// Webhooks are never sent.
    pub drop: bool,
    /// Webhooks leave this much after their status changed (the control call does not wait).
    pub delay_ms: Option<u64>,
    /// Wrong bearer token (OAuth2) or wrong header value.
    pub bad_auth: bool,
}

impl Default for IncodeKnobs {
    fn default() -> Self {
        IncodeKnobs {
            step_delay_ms: 0,
            shuffle_statuses: false,
            review_status: "WARN".into(),
            abandon_expire_ms: None,
            token_ttl_s: 3600,
            duplicate: 0,
            early: false,
            reorder: false,
            drop: false,
            delay_ms: None,
            bad_auth: false,
        }
    }
}

pub(super) const REVIEW_STATUSES: [&str; 3] = ["WARN", "MANUAL", "MANUAL_PENDING"];

/// One status change of an interview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    pub status: String,
    pub at: String,
}

/// One webhook copy, after its last attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebhookRecord {
    pub status: String,
    pub at: String,
    /// Delivery attempts for this copy (1, or 2 with Incode's retry); an
    /// OAuth2 token refetch after a 401 stays within its attempt.
    pub attempts: u32,
    /// Status of the last answer, if any.
    pub http_status: Option<u16>,
    pub delivered: bool,
}

/// A simulated interview, as shown by `GET /control/sessions/{interviewId}`.
/// Tokens are never part of it.
#[derive(Clone, Debug, Serialize)]
pub struct IncodeInterview {
    pub interview_id: String,
    pub interview_code: String,
    pub configuration_id: String,
    pub country_code: String,
    pub language: String,
    pub external_customer_id: Option<String>,
    pub redirection_url: Option<String>,
    pub custom_fields: Option<Value>,
    pub onboarding_status: String,
    /// Every status change, oldest first (`UNKNOWN` at creation).
    pub history: Vec<StatusChange>,
    /// The score's `overall.status`.
    pub score_status: String,
    /// The last accepted finish result.
    pub result: Option<String>,
    /// `approve` or `reject`, once reviewed.
    pub review_decision: Option<String>,
    /// The identity `POST /omni/process/approve` made of this interview.
    pub identity_id: Option<String>,
    pub created_at: String,
    /// `POST /omni/start` calls for this interview (creation and renewals).
    pub starts: u64,
    pub tokens_issued: u64,
    /// Webhook copies sent (each with up to two attempts).
    pub webhooks_sent: u64,
    /// Delivery attempts made for webhooks (see [`WebhookRecord::attempts`]).
    pub webhook_attempts: u64,
    /// Webhook copies answered with 2xx.
    pub webhooks_delivered: u64,
    /// Webhook copies not sent because of the `drop` knob.
    pub webhooks_dropped: u64,
    pub webhooks: Vec<WebhookRecord>,
}
