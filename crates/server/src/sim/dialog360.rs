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

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use indexmap::IndexMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::faults::{Faults, FaultsConfig};
use super::now_rfc3339;

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
struct Outgoing {
    url: String,
    envelope: Value,
    copies: u32,
    delay_ms: u64,
    record: SentWebhook,
}

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

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn params(raw: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{}", raw.trim_start_matches('?')))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn param(p: &[(String, String)], k: &str) -> String {
    p.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The event a status change sends.
fn event_for(status: &str) -> Option<&'static str> {
    Some(match status {
        "created" => "channel_created",
        "unverified" => "channel_submitted",
        "ready" => "channel_ready",
        "running" => "channel_running",
        "verified" => return None,
        _ => "channel_status_changed",
    })
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
            .route("/api/v2/partners/{pid}/clients", get(api_clients))
            .route("/api/v2/partners/{pid}/channels", get(api_channels))
            .route(
                "/api/v2/partners/{pid}/channels/{cid}/api_keys",
                get(api_list_keys).post(api_create_key),
            )
            .with_state(self.clone());
        let pages = Router::new()
            .route(
                "/dashboard/app/{pid}/permissions",
                get(permissions_page).post(permissions_submit),
            )
            .route("/client-hub/{client}", get(client_hub))
            .route("/client-hub/{client}/permission", post(client_hub_grant))
            .with_state(self.clone());
        let control = Router::new()
            .route("/knobs", get(get_knobs).post(set_knobs))
            .route("/reset", post(reset))
            .route("/seed", post(seed))
            .route("/channels", get(list_channels))
            .route("/webhooks", get(list_webhooks))
            .route("/clients/{client}/key_permission", post(set_permission))
            .route("/{channel}/event/{event}", post(send_event_handler))
            .route("/{channel}/{status}", post(force_status))
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

    /// The channel as the Partner API shows it.
    fn channel_json(inner: &Inner, ch: &SimChannel) -> Value {
        let client = inner.clients.get(&ch.client_id);
        json!({
            "id": ch.id,
            "client_id": ch.client_id,
            "status": ch.status,
            "account_mode": if ch.status == "running" { "live" } else { "sandbox" },
            "created_at": ch.created_at,
            "client": client.map(|c| json!({"id": c.id, "name": c.name, "partner_payload": c.partner_payload, "contact_info": {"email": c.email}})),
            "setup_info": {"phone_number": ch.phone_number, "phone_name": client.map(|c| c.name.clone())},
            "waba_account": {"id": format!("waba_{}", ch.client_id), "fb_account_status": "verified"},
        })
    }

    /// Sends a partner event about a channel (or a client) to the partner's
    /// webhook URL, honouring the knobs.
    fn send_event(&self, event: &str, channel_id: Option<&str>, client_id: &str) {
        let (partner, knobs, data) = {
            let inner = lock(&self.shared.inner);
            let data = match channel_id.and_then(|c| inner.channels.get(c)) {
                Some(ch) => Self::channel_json(&inner, ch),
                None => inner
                    .clients
                    .get(client_id)
                    .map(|c| json!({"id": c.id, "name": c.name, "partner_payload": c.partner_payload}))
                    .unwrap_or(Value::Null),
            };
            let pid = inner
                .clients
                .get(client_id)
                .map(|c| c.partner_id.clone())
                .unwrap_or_default();
            (self.partner(&pid).cloned(), inner.knobs.clone(), data)
        };
        let Some(url) = partner.and_then(|p| p.webhook_url) else {
            return;
        };
        if knobs.drop {
            return;
        }
        let url = if knobs.bad_auth {
            match url.split_once("token=") {
                Some((head, _)) => format!("{head}token=wrong-token"),
                None => url,
            }
        } else {
            url
        };
        let envelope =
            json!({"id": format!("evt_{}", random_id(16)), "event": event, "data": data});
        let out = Outgoing {
            url,
            envelope,
            copies: knobs.duplicate + 1,
            delay_ms: knobs.delay_ms,
            record: SentWebhook {
                at: String::new(),
                event: event.to_string(),
                channel_id: channel_id.map(str::to_string),
                client_id: client_id.to_string(),
                status: 0,
            },
        };
        let mut outbox = self
            .shared
            .outbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = outbox.get_or_insert_with(|| self.start_sender());
        if let Err(e) = tx.send(out) {
            // The sender task is gone (runtime shutting down): start anew.
            let tx = outbox.insert(self.start_sender());
            let _ = tx.send(e.0);
        }
    }

    /// One task sends every webhook in order (the hub's order is what tests
    /// and `reorder` rely on).
    fn start_sender(&self) -> tokio::sync::mpsc::UnboundedSender<Outgoing> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outgoing>();
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                let Some(shared) = weak.upgrade() else { return };
                if out.delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(out.delay_ms)).await;
                }
                for _ in 0..out.copies {
                    let status = match shared.http.post(&out.url).json(&out.envelope).send().await {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    lock(&shared.inner).webhooks.push(SentWebhook {
                        at: now_rfc3339(),
                        status,
                        ..out.record.clone()
                    });
                }
            }
        });
        tx
    }

    /// Moves a channel to `status` and sends its event.
    fn set_status(&self, channel_id: &str, status: &str) -> Option<String> {
        let client = {
            let mut inner = lock(&self.shared.inner);
            let ch = inner.channels.get_mut(channel_id)?;
            if ch.status == status {
                return Some(ch.client_id.clone());
            }
            ch.status = status.to_string();
            ch.client_id.clone()
        };
        if let Some(ev) = event_for(status) {
            self.send_event(ev, Some(channel_id), &client);
        }
        if status == "running" {
            self.send_event("channel_live", Some(channel_id), &client);
        }
        Some(client)
    }

    /// Moves a channel to `status` without sending anything.
    fn set_status_quietly(&self, channel_id: &str, status: &str) -> Option<String> {
        let mut inner = lock(&self.shared.inner);
        let ch = inner.channels.get_mut(channel_id)?;
        ch.status = status.to_string();
        Some(ch.client_id.clone())
    }

    /// Advances a channel along [`PROGRESSION`] until it runs or is held.
    fn spawn_advance(&self, channel_id: String) {
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let epoch = lock(&self.shared.inner).epoch;
        tokio::spawn(async move {
            loop {
                let Some(shared) = weak.upgrade() else { return };
                let sim = Dialog360Sim { shared };
                tokio::time::sleep(Duration::from_millis(sim.advance_ms())).await;
                let next = {
                    let inner = lock(&sim.shared.inner);
                    if inner.epoch != epoch {
                        return;
                    }
                    let Some(ch) = inner.channels.get(&channel_id) else {
                        return;
                    };
                    if ch.revoked || inner.knobs.hold_at.as_deref() == Some(ch.status.as_str()) {
                        None
                    } else {
                        match PROGRESSION.iter().position(|s| *s == ch.status) {
                            Some(i) if i + 1 < PROGRESSION.len() => Some(PROGRESSION[i + 1]),
                            Some(_) => return,
                            // Forced to another status: stays there.
                            None => None,
                        }
                    }
                };
                if let Some(next) = next {
                    let reorder = lock(&sim.shared.inner).knobs.reorder;
                    match (reorder, next) {
                        // The ready event is held back ...
                        (true, "ready") => {
                            sim.set_status_quietly(&channel_id, next);
                        }
                        // ... and sent after the running one.
                        (true, "running") => {
                            if let Some(client) = sim.set_status_quietly(&channel_id, next) {
                                sim.send_event("channel_running", Some(&channel_id), &client);
                                sim.send_event("channel_ready", Some(&channel_id), &client);
                                sim.send_event("channel_live", Some(&channel_id), &client);
                            }
                        }
                        _ => {
                            sim.set_status(&channel_id, next);
                        }
                    }
                }
            }
        });
    }

    fn new_channel(&self, client_id: &str, partner_id: &str, phone: &str) -> String {
        let id = random_id(8);
        lock(&self.shared.inner).channels.insert(
            id.clone(),
            SimChannel {
                id: id.clone(),
                client_id: client_id.to_string(),
                partner_id: partner_id.to_string(),
                status: "created".into(),
                phone_number: phone.to_string(),
                created_at: now_rfc3339(),
                revoked: false,
                api_key: None,
            },
        );
        id
    }

    /// Checks `X-API-Key` for `pid`: 401 for a wrong key, 403 for another partner's id.
    fn auth(&self, headers: &HeaderMap, pid: &str) -> Result<SimPartner, ApiError> {
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(owner) = self
            .shared
            .config
            .partners
            .iter()
            .find(|p| crate::ids::secure_eq(p.api_key.as_bytes(), key.as_bytes()))
        else {
            return Err((StatusCode::UNAUTHORIZED, "missing or invalid X-API-Key"));
        };
        if owner.partner_id != pid {
            return Err((
                StatusCode::FORBIDDEN,
                "the API key does not belong to this partner",
            ));
        }
        Ok(owner.clone())
    }
}

#[derive(Deserialize)]
struct ListQuery {
    filters: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

fn filters(q: &ListQuery) -> Result<serde_json::Map<String, Value>, ApiError> {
    match &q.filters {
        None => Ok(serde_json::Map::new()),
        Some(f) => match serde_json::from_str::<Value>(f) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err((StatusCode::BAD_REQUEST, "filters must be a JSON object")),
        },
    }
}

async fn api_clients(
    State(sim): State<Dialog360Sim>,
    Path(pid): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, message)) = sim.auth(&headers, &pid) {
        return d360_error(status, message);
    }
    let f = match filters(&q) {
        Ok(f) => f,
        Err((status, message)) => return d360_error(status, message),
    };
    let inner = lock(&sim.shared.inner);
    let clients: Vec<Value> = inner
        .clients
        .values()
        .filter(|c| c.partner_id == pid)
        .filter(|c| f.get("id").is_none_or(|v| v == &json!(c.id)))
        .map(|c| json!({"id": c.id, "name": c.name, "status": "active", "partner_payload": c.partner_payload}))
        .collect();
    Json(json!({"count": clients.len(), "filters": f, "limit": 100, "offset": 0, "total": clients.len(), "clients": clients})).into_response()
}

async fn api_channels(
    State(sim): State<Dialog360Sim>,
    Path(pid): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, message)) = sim.auth(&headers, &pid) {
        return d360_error(status, message);
    }
    let f = match filters(&q) {
        Ok(f) => f,
        Err((status, message)) => return d360_error(status, message),
    };
    let inner = lock(&sim.shared.inner);
    let all: Vec<Value> = inner
        .channels
        .values()
        .filter(|c| c.partner_id == pid && !c.revoked)
        .filter(|c| f.get("id").is_none_or(|v| v == &json!(c.id)))
        .filter(|c| f.get("client_id").is_none_or(|v| v == &json!(c.client_id)))
        .filter(|c| f.get("status").is_none_or(|v| v == &json!(c.status)))
        .map(|c| Dialog360Sim::channel_json(&inner, c))
        .collect();
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let offset = q.offset.unwrap_or(0);
    let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    Json(json!({"count": page.len(), "filters": f, "sort": ["-created_at"], "limit": limit, "offset": offset, "total": all.len(), "partner_channels": page})).into_response()
}

/// The channel of partner `pid`, or the error response.
fn partner_channel(sim: &Dialog360Sim, pid: &str, cid: &str) -> Result<SimChannel, ApiError> {
    lock(&sim.shared.inner)
        .channels
        .get(cid)
        .filter(|c| c.partner_id == pid && !c.revoked)
        .cloned()
        .ok_or((StatusCode::NOT_FOUND, "channel not found"))
}

fn key_allowed(sim: &Dialog360Sim, partner: &SimPartner, ch: &SimChannel) -> bool {
    !partner.direct
        || lock(&sim.shared.inner)
            .clients
            .get(&ch.client_id)
            .is_some_and(|c| c.key_permission)
}

async fn api_create_key(
    State(sim): State<Dialog360Sim>,
    Path((pid, cid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let partner = match sim.auth(&headers, &pid) {
        Ok(p) => p,
        Err((status, message)) => return d360_error(status, message),
    };
    let ch = match partner_channel(&sim, &pid, &cid) {
        Ok(c) => c,
        Err((status, message)) => return d360_error(status, message),
    };
    if ch.status != "running" {
        return d360_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "API keys can only be created for running channels (status is {})",
                ch.status
            ),
        );
    }
    if !key_allowed(&sim, &partner, &ch) {
        return d360_error(
            StatusCode::FORBIDDEN,
            "the client has not granted the partner permission to create API keys",
        );
    }
    let key_id = format!("key_{}", random_id(10));
    let key = format!("d360ck_{}", random_id(32));
    if let Some(c) = lock(&sim.shared.inner).channels.get_mut(&cid) {
        // A new key replaces the previous one (A).
        c.api_key = Some((key_id.clone(), key.clone()));
    }
    (
        StatusCode::CREATED,
        Json(json!({"api_keys": [{"id": key_id, "api_key": key, "address": "https://waba-v2.360dialog.io", "app_id": format!("app_{cid}")}]})),
    )
        .into_response()
}

async fn api_list_keys(
    State(sim): State<Dialog360Sim>,
    Path((pid, cid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let partner = match sim.auth(&headers, &pid) {
        Ok(p) => p,
        Err((status, message)) => return d360_error(status, message),
    };
    let ch = match partner_channel(&sim, &pid, &cid) {
        Ok(c) => c,
        Err((status, message)) => return d360_error(status, message),
    };
    if !key_allowed(&sim, &partner, &ch) {
        return d360_error(
            StatusCode::FORBIDDEN,
            "the client has not granted the partner permission to create API keys",
        );
    }
    let keys: Vec<Value> = ch
        .api_key
        .iter()
        .map(|(id, _)| json!({"id": id, "address": "https://waba-v2.360dialog.io", "app_id": format!("app_{cid}")}))
        .collect();
    Json(json!({"api_keys": keys})).into_response()
}

fn page(body: String) -> Response {
    let mut r = Html(body).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action *",
        ),
    );
    r
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let mut r = page(format!(
        "<!doctype html><title>360dialog</title><h1>Something went wrong</h1><p>{}</p>",
        html_escape(message)
    ));
    *r.status_mut() = status;
    r
}

async fn permissions_page(
    State(sim): State<Dialog360Sim>,
    Path(pid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(partner) = sim.partner(&pid).cloned() else {
        return error_page(StatusCode::NOT_FOUND, "unknown partner");
    };
    let q = params(raw.as_deref().unwrap_or_default());
    let redirect = param(&q, "redirect_url");
    if !redirect.is_empty() && !redirect.starts_with(&partner.redirect_prefix) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "redirect_url does not match the partner's registered redirect URL",
        );
    }
    let email = param(&q, "email");
    let earlier: Vec<SimChannel> = {
        let inner = lock(&sim.shared.inner);
        inner
            .clients
            .values()
            .find(|c| c.partner_id == pid && !email.is_empty() && c.email == email)
            .map(|c| {
                inner
                    .channels
                    .values()
                    .filter(|ch| ch.client_id == c.id && !ch.revoked)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let hidden: String = ["redirect_url", "state", "partner"]
        .iter()
        .map(|k| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                html_escape(&param(&q, k))
            )
        })
        .collect();
    let revoke: String = earlier
        .iter()
        .map(|c| {
            format!(
                "<label><input type=\"checkbox\" name=\"revoke\" value=\"{id}\"> remove permission for {phone} ({id}, {status})</label><br>",
                id = html_escape(&c.id),
                phone = html_escape(&c.phone_number),
                status = html_escape(&c.status)
            )
        })
        .collect();
    let payment = if partner.direct {
        "<p id=\"next\">Direct Payment: price and payment details follow after you continue.</p>"
    } else {
        ""
    };
    page(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>360dialog — connect WhatsApp</title></head>
<body><h1>Connect your WhatsApp number</h1>
<form method="post">{hidden}
<section id="signup"><label>E-mail <input name="email" value="{email}"></label><br><label>Name <input name="name" value="{name}"></label></section>
{payment}
<section id="numbers"><h2>Numbers</h2><label>Add number <input name="number" value="{number}"></label><br>{revoke}</section>
<button name="action" value="accept">Accept</button> <button name="action" value="cancel">Cancel</button>
</form></body></html>"#,
        email = html_escape(&email),
        name = html_escape(&param(&q, "name")),
        number = html_escape(&param(&q, "number")),
    ))
}

async fn permissions_submit(
    State(sim): State<Dialog360Sim>,
    Path(pid): Path<String>,
    body: Bytes,
) -> Response {
    let Some(partner) = sim.partner(&pid).cloned() else {
        return error_page(StatusCode::NOT_FOUND, "unknown partner");
    };
    let f = params(std::str::from_utf8(&body).unwrap_or_default());
    if param(&f, "action") != "accept" {
        return page("<!doctype html><title>360dialog</title><p>Canceled. You can close this window.</p><script>window.close()</script>".into());
    }
    let redirect = param(&f, "redirect_url");
    let redirect = if redirect.is_empty() {
        partner.redirect_prefix.clone()
    } else {
        redirect
    };
    if !redirect.starts_with(&partner.redirect_prefix) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "redirect_url does not match the partner's registered redirect URL",
        );
    }
    let email = {
        let e = param(&f, "email");
        if e.is_empty() {
            format!("{}@client.example", random_id(6).to_lowercase())
        } else {
            e
        }
    };
    // Direct Payment: the price and payment page comes between account
    // creation and the number signup, and asks for the API key permission.
    if partner.direct && param(&f, "payment_confirmed") != "on" {
        return payment_page(&f);
    }
    let payload = Some(param(&f, "partner")).filter(|p| !p.is_empty());
    let allow_keys = param(&f, "key_permission") == "on";
    let (client_id, is_new) = {
        let mut inner = lock(&sim.shared.inner);
        match inner
            .clients
            .values_mut()
            .find(|c| c.partner_id == pid && c.email == email)
        {
            Some(c) => {
                c.partner_payload = payload.clone().or(c.partner_payload.take());
                c.key_permission |= allow_keys;
                (c.id.clone(), false)
            }
            None => {
                let id = random_id(10);
                inner.clients.insert(
                    id.clone(),
                    SimClient {
                        id: id.clone(),
                        partner_id: pid.clone(),
                        email: email.clone(),
                        name: Some(param(&f, "name"))
                            .filter(|n| !n.is_empty())
                            .unwrap_or_else(|| "Simulated Client".into()),
                        partner_payload: payload,
                        key_permission: allow_keys,
                    },
                );
                (id, true)
            }
        }
    };
    if is_new {
        sim.send_event("client_created", None, &client_id);
    }
    let mut revoked = Vec::new();
    {
        let mut inner = lock(&sim.shared.inner);
        for (k, v) in &f {
            if k == "revoke"
                && let Some(ch) = inner.channels.get_mut(v)
                && ch.client_id == client_id
                && !ch.revoked
            {
                ch.revoked = true;
                revoked.push(v.clone());
            }
        }
    }
    let mut channels = Vec::new();
    let number = param(&f, "number");
    if !number.trim().is_empty() {
        let id = sim.new_channel(&client_id, &pid, number.trim());
        sim.send_event("channel_created", Some(&id), &client_id);
        sim.spawn_advance(id.clone());
        channels.push(id);
    }
    // The real format: literal brackets, unquoted, comma-separated.
    let mut location = redirect;
    location.push(if location.contains('?') { '&' } else { '?' });
    location.push_str(&format!(
        "client={client_id}&channels=[{}]",
        channels.join(",")
    ));
    if !revoked.is_empty() {
        location.push_str(&format!("&revoked=[{}]", revoked.join(",")));
    }
    let state = param(&f, "state");
    if !state.is_empty() {
        let enc: String = reqwest::Url::parse_with_params("http://x/", &[("s", &state)])
            .ok()
            .and_then(|u| u.query().map(|q| q.trim_start_matches("s=").to_string()))
            .unwrap_or_default();
        location.push_str(&format!("&state={enc}"));
    }
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The Direct Payment step: carries the first form over, shows the price,
/// takes payment details and the API key permission.
fn payment_page(f: &[(String, String)]) -> Response {
    let carried: String = f
        .iter()
        .filter(|(k, _)| k != "action" && k != "key_permission" && k != "payment_confirmed")
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            )
        })
        .collect();
    page(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>360dialog — price and payment</title></head>
<body><h1>Price and payment</h1>
<p>WhatsApp Business API: 49 EUR per number and month, billed by 360dialog (Direct Payment).</p>
<form method="post">{carried}<input type="hidden" name="payment_confirmed" value="on">
<label>Card <input name="card" value="4242 4242 4242 4242"></label><br>
<label><input type="checkbox" name="key_permission" value="on" checked> allow the partner to generate API keys for my numbers</label><br>
<button name="action" value="accept">Pay and continue</button> <button name="action" value="cancel">Cancel</button>
</form></body></html>"#
    ))
}

async fn client_hub(State(sim): State<Dialog360Sim>, Path(client): Path<String>) -> Response {
    let Some(c) = lock(&sim.shared.inner).clients.get(&client).cloned() else {
        return error_page(StatusCode::NOT_FOUND, "unknown client");
    };
    page(format!(
        "<!doctype html><title>360dialog Client Hub</title><h1>Client Hub: {}</h1><p>Partner may generate API keys: {}</p><form method=\"post\" action=\"{}/permission\"><button>Allow the partner to generate API keys</button></form>",
        html_escape(&c.name),
        c.key_permission,
        html_escape(&c.id)
    ))
}

async fn client_hub_grant(State(sim): State<Dialog360Sim>, Path(client): Path<String>) -> Response {
    match lock(&sim.shared.inner).clients.get_mut(&client) {
        Some(c) => {
            c.key_permission = true;
            page(
                "<!doctype html><title>360dialog Client Hub</title><p>Permission granted.</p>"
                    .into(),
            )
        }
        None => error_page(StatusCode::NOT_FOUND, "unknown client"),
    }
}

async fn get_knobs(State(sim): State<Dialog360Sim>) -> Json<Dialog360Knobs> {
    Json(lock(&sim.shared.inner).knobs.clone())
}

async fn set_knobs(State(sim): State<Dialog360Sim>, body: Bytes) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Value::Object(m),
        _ => return super::error_response(StatusCode::BAD_REQUEST, "knobs must be a JSON object"),
    };
    let mut inner = lock(&sim.shared.inner);
    let Ok(Value::Object(mut merged)) = serde_json::to_value(&inner.knobs) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Value::Object(p) = patch {
        merged.extend(p);
    }
    match serde_json::from_value::<Dialog360Knobs>(Value::Object(merged)) {
        Ok(k) => {
            inner.knobs = k.clone();
            Json(k).into_response()
        }
        Err(e) => super::error_response(StatusCode::BAD_REQUEST, format!("bad knobs: {e}")),
    }
}

async fn reset(State(sim): State<Dialog360Sim>) -> Json<Value> {
    {
        let mut inner = lock(&sim.shared.inner);
        let epoch = inner.epoch + 1;
        *inner = Inner {
            epoch,
            ..Inner::default()
        };
    }
    sim.shared.faults.reset();
    Json(json!({"reset": true}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedBody {
    partner_id: String,
    #[serde(default = "one")]
    channels: usize,
    #[serde(default)]
    status: Option<String>,
}

fn one() -> usize {
    1
}

/// Creates a client and channels of any partner (e.g. another partner's, for
/// "channel belongs to nobody of ours" tests).
async fn seed(State(sim): State<Dialog360Sim>, Json(b): Json<SeedBody>) -> Response {
    if b.channels > 20 {
        return super::error_response(StatusCode::BAD_REQUEST, "at most 20 channels");
    }
    let client = random_id(10);
    lock(&sim.shared.inner).clients.insert(
        client.clone(),
        SimClient {
            id: client.clone(),
            partner_id: b.partner_id.clone(),
            email: format!("{}@seed.example", client.to_lowercase()),
            name: "Seeded Client".into(),
            partner_payload: None,
            key_permission: true,
        },
    );
    let channels: Vec<String> = (0..b.channels)
        .map(|i| {
            let id = sim.new_channel(&client, &b.partner_id, &format!("+1555000{i:04}"));
            if let Some(s) = &b.status
                && let Some(c) = lock(&sim.shared.inner).channels.get_mut(&id)
            {
                c.status = s.clone();
            }
            id
        })
        .collect();
    Json(json!({"client_id": client, "channels": channels})).into_response()
}

async fn list_channels(State(sim): State<Dialog360Sim>) -> Json<Value> {
    let inner = lock(&sim.shared.inner);
    let channels: Vec<&SimChannel> = inner.channels.values().collect();
    let clients: Vec<&SimClient> = inner.clients.values().collect();
    Json(json!({"channels": channels, "clients": clients}))
}

async fn list_webhooks(State(sim): State<Dialog360Sim>) -> Json<Value> {
    Json(json!({"webhooks": lock(&sim.shared.inner).webhooks.clone()}))
}

#[derive(Deserialize)]
struct PermissionBody {
    allowed: bool,
}

async fn set_permission(
    State(sim): State<Dialog360Sim>,
    Path(client): Path<String>,
    Json(b): Json<PermissionBody>,
) -> Response {
    match lock(&sim.shared.inner).clients.get_mut(&client) {
        Some(c) => {
            c.key_permission = b.allowed;
            Json(json!({"client_id": client, "key_permission": b.allowed})).into_response()
        }
        None => super::error_response(StatusCode::NOT_FOUND, "unknown client"),
    }
}

async fn force_status(
    State(sim): State<Dialog360Sim>,
    Path((channel, status)): Path<(String, String)>,
) -> Response {
    let ok = !status.is_empty()
        && status.len() <= 40
        && status.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if !ok {
        return super::error_response(
            StatusCode::BAD_REQUEST,
            "status must be lowercase letters or `_`",
        );
    }
    if status == "revoked"
        && let Some(c) = lock(&sim.shared.inner).channels.get_mut(&channel)
    {
        c.revoked = true;
    }
    match sim.set_status(&channel, &status) {
        Some(_) => Json(json!({"channel_id": channel, "status": status})).into_response(),
        None => super::error_response(StatusCode::NOT_FOUND, "unknown channel"),
    }
}

async fn send_event_handler(
    State(sim): State<Dialog360Sim>,
    Path((channel, event)): Path<(String, String)>,
) -> Response {
    let client = lock(&sim.shared.inner)
        .channels
        .get(&channel)
        .map(|c| c.client_id.clone());
    match client {
        Some(client) => {
            sim.send_event(&event, Some(&channel), &client);
            Json(json!({"channel_id": channel, "event": event})).into_response()
        }
        None => super::error_response(StatusCode::NOT_FOUND, "unknown channel"),
    }
}
