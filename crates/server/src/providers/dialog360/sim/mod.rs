//! Simulator of 360dialog's hub and Partner API (providers.md 4.7), mounted
//! under `/sim/360dialog/`.
//!
//! Hub pages (never faulted or logged):
//! - `GET /dashboard/app/{partnerId}/permissions?redirect_url=&state=&partner=&email=&number=…`:
//!   sign-up (e-mail), the number to add, the client's earlier channels with
//!   "remove permission" boxes, Accept, Cancel. For a Direct Payment partner
//!   Accept first shows the price and payment page (with the "allow API
//!   keys" permission), whose "Pay and continue" completes the Accept.
//! - `POST` on the same path (the form): Accept creates the client (if new)
//!   and one channel (`created`), sends `client_created`/`channel_created`,
//!   and answers 303 to `redirect_url` + `client=…&channels=[…]&revoked=[…]&state=…`
//!   (the brackets literal). Cancel shows a page that closes itself. A
//!   `redirect_url` outside the registered prefix shows an error page (A).
//! - `GET /client-hub/{clientId}` and `POST /client-hub/{clientId}/permission`:
//!   the client allows API key creation later (Direct Payment).
//!
//! Partner API under `/api/v2/` (wrapped by the [`Faults`] layer), header
//! `X-API-Key` (else 401; another partner's id 403): `GET
//! /partners/{pid}/clients`, `GET /partners/{pid}/channels` (filters on
//! `id`, `client_id`, `status`; `limit`/`offset`), `POST|GET
//! /partners/{pid}/channels/{cid}/api_keys` (400 before `running`, 403 when a
//! Direct Payment client has not allowed keys; a new key replaces the old).
//!
//! Channels advance `created → unverified → verified → ready → running`
//! every `advance_ms`, sending `channel_submitted`, `channel_ready`,
//! `channel_running`, `channel_live`; knob `hold_at` stops them at a status,
//! `reorder` sends `channel_ready` after `channel_running`.
//!
//! Control (below `control/`): `POST /{channelId}/{status}` forces a status
//! and sends its event; `POST /{channelId}/event/{event}` sends any event;
//! `POST /seed` creates a client and channels of another partner; `GET|POST
//! /knobs`; `GET /channels`; `GET /webhooks`; `POST /reset`; faults and
//! request log (see [`Faults`]).

mod api;
mod channels;
mod control;
mod pages;
pub mod setup;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use indexmap::IndexMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sim::faults::{Faults, FaultsConfig};
use channels::Outgoing;

/// The order channels move through on their own.
pub const PROGRESSION: &[&str] = &["created", "unverified", "verified", "ready", "running"];

/// One simulated partner hub.
#[derive(Clone, Debug)]
pub struct SimPartner {
    pub partner_id: String,
    pub api_key: String,
    /// Direct Payment: price page, and API keys need the client's permission.
    pub direct: bool,
    /// The registered partner webhook URL (with Gangway's token).
    pub webhook_url: Option<String>,
    /// The registered partner redirect URL: `redirect_url` must start with it.
    pub redirect_prefix: String,
}

#[derive(Clone, Debug)]
pub struct Dialog360SimConfig {
    pub partners: Vec<SimPartner>,
    pub advance_ms: u64,
}

/// Knobs (`/control/knobs`; a POST merges the given fields).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Dialog360Knobs {
    /// Milliseconds between automatic status steps (0: the configured value).
    pub advance_ms: u64,
    /// Channels stop advancing once they reach this status (e.g. `ready`).
    pub hold_at: Option<String>,
    /// Extra copies of every webhook.
    pub duplicate: u32,
    /// Never send webhooks (only polling can find changes).
    pub drop: bool,
    /// Send webhooks with a wrong token.
    pub bad_auth: bool,
    /// Delay before each webhook.
    pub delay_ms: u64,
    /// Hold `channel_ready` back and send it after `channel_running`.
    pub reorder: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SimClient {
    pub id: String,
    pub partner_id: String,
    pub email: String,
    pub name: String,
    pub partner_payload: Option<String>,
    pub key_permission: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SimChannel {
    pub id: String,
    pub client_id: String,
    pub partner_id: String,
    pub status: String,
    pub phone_number: String,
    pub created_at: String,
    /// Permission removed by the client: no longer the partner's.
    pub revoked: bool,
    /// The current API key (a new one replaces it).
    #[serde(skip)]
    pub api_key: Option<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SentWebhook {
    pub at: String,
    pub event: String,
    pub channel_id: Option<String>,
    pub client_id: String,
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    clients: IndexMap<String, SimClient>,
    channels: IndexMap<String, SimChannel>,
    knobs: Dialog360Knobs,
    webhooks: Vec<SentWebhook>,
    /// Bumped on reset: advancing tasks of an earlier epoch stop.
    epoch: u64,
}

struct Shared {
    config: Dialog360SimConfig,
    inner: Mutex<Inner>,
    faults: Faults,
    http: reqwest::Client,
    /// The queue of the task that sends webhooks, started on first use.
    outbox: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Outgoing>>>,
}

/// A partner webhook waiting to be sent.
/// The 360dialog simulator; cheap to clone.
#[derive(Clone)]
pub struct Dialog360Sim {
    shared: Arc<Shared>,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 360dialog's error envelope (A for the exact fields).
pub fn d360_error_body(status: StatusCode, message: &str) -> Value {
    json!({"meta": {"success": false, "http_code": status.as_u16(), "developer_message": message, "details": [], "error_data": {}}})
}

/// A Partner API error before it becomes a response (kept small).
type ApiError = (StatusCode, &'static str);

fn d360_error(status: StatusCode, message: &str) -> Response {
    (status, Json(d360_error_body(status, message))).into_response()
}

fn ref_from_path(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    segs.iter()
        .position(|s| *s == "channels")
        .and_then(|i| segs.get(i + 1))
        .map(|s| s.to_string())
}

fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Dialog360Sim {
    pub fn new(config: Dialog360SimConfig) -> Dialog360Sim {
        let faults = Faults::new(FaultsConfig {
            ref_from_path,
            error_body: |s| d360_error_body(s, "simulated fault"),
            malformed_body: "{\"partner_channels\": [",
        });
        Dialog360Sim {
            shared: Arc::new(Shared {
                config,
                inner: Mutex::default(),
                outbox: Mutex::default(),
                faults,
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap_or_default(),
            }),
        }
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Paths relative to the mount: `Router::new().nest("/sim/360dialog", sim.router())`.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/api/v2/partners/{pid}/clients", get(api::api_clients))
            .route("/api/v2/partners/{pid}/channels", get(api::api_channels))
            .route(
                "/api/v2/partners/{pid}/channels/{cid}/api_keys",
                get(api::api_list_keys).post(api::api_create_key),
            )
            .with_state(self.clone());
        let pages = Router::new()
            .route(
                "/dashboard/app/{pid}/permissions",
                get(pages::permissions_page).post(pages::permissions_submit),
            )
            .route("/client-hub/{client}", get(pages::client_hub))
            .route(
                "/client-hub/{client}/permission",
                post(pages::client_hub_grant),
            )
            .with_state(self.clone());
        let control = Router::new()
            .route("/knobs", get(control::get_knobs).post(control::set_knobs))
            .route("/reset", post(control::reset))
            .route("/seed", post(control::seed))
            .route("/channels", get(control::list_channels))
            .route("/webhooks", get(control::list_webhooks))
            .route(
                "/clients/{client}/key_permission",
                post(control::set_permission),
            )
            .route(
                "/{channel}/event/{event}",
                post(control::send_event_handler),
            )
            .route("/{channel}/{status}", post(control::force_status))
            .with_state(self.clone())
            .merge(self.shared.faults.control_router());
        Router::new()
            .nest("/control", control)
            .merge(pages)
            .merge(self.shared.faults.wrap(api))
    }

    fn partner(&self, pid: &str) -> Option<&SimPartner> {
        self.shared
            .config
            .partners
            .iter()
            .find(|p| p.partner_id == pid)
    }

    fn advance_ms(&self) -> u64 {
        let k = lock(&self.shared.inner).knobs.advance_ms;
        if k > 0 {
            k
        } else {
            self.shared.config.advance_ms.max(10)
        }
    }
}
