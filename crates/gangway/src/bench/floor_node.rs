//! `gangway bench floor-node` (hidden): the server process of `gangway
//! bench floor`. It reads the same configuration file as a benchmarked
//! node and makes the same HTTP exchanges per http-score session (the
//! create call, the provider start, the provider's webhook, the provider
//! read, the customer webhook) with the same payloads, headers and
//! signatures, through Gangway's own HTTP stack: the accept loop and its
//! connection handling (serve/), the response layers of the API listener,
//! the provider and delivery clients of egress/. Its handlers do no engine
//! or database work: a session is an entry in a map between its provider
//! start and its provider's webhook, and nothing is stored. What a real
//! node spends beyond this process is the engine's and the database's.

use anyhow::Context;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::post;
use gangway_core::engine::{ProviderRef, SessionState};
use gangway_core::outcome::{Outcome, SessionStatus};
use gangway_server::api::error::Problem;
use gangway_server::api::inbound::{http_event, verify_http_webhook};
use gangway_server::config::{Config, EndpointConfig};
use gangway_server::egress::AddressPolicy;
use gangway_server::ids;
use gangway_server::providers::http::config::HttpConnectorConfig;
use gangway_server::runtime::view;
use gangway_server::store::SessionRow;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(clap::Args)]
pub struct FloorNodeArgs {
    /// The configuration a benchmarked node would get.
    #[arg(long, short)]
    config: PathBuf,
}

/// The http-score workflow's service, as its steps name it.
const SERVICE: &str = "score";

struct Node {
    config: Config,
    /// SHA-256 of the one API key accepted, compared in constant time.
    key_hash: String,
    provider: reqwest::Client,
    deliveries: reqwest::Client,
    policy: AddressPolicy,
    /// Workflow id -> version, from `workflows_dir`.
    versions: HashMap<String, u32>,
    /// Provider session id -> the session that started it, or the mark
    /// of a webhook that arrived before the start call's answer.
    pending: Mutex<HashMap<String, Pending>>,
}

enum Pending {
    Started(Session),
    Webhook,
}

#[derive(Clone)]
struct Session {
    id: String,
    workflow: String,
    version: u32,
    reference: Option<String>,
    input: Value,
    created_at: i64,
}

impl Session {
    /// The row the session views are made from, so that the payloads are
    /// the ones a real node sends, byte for byte in shape.
    fn row(&self, state: SessionState, now: i64) -> SessionRow {
        SessionRow {
            id: self.id.clone(),
            workflow_id: self.workflow.clone(),
            version: self.version,
            reference: self.reference.clone(),
            input: self.input.clone(),
            state,
            created_at: self.created_at,
            updated_at: now,
            client_secret_hash: String::new(),
            client_secret_expires_at: 0,
            api_key_id: String::new(),
            idempotency_key: None,
            request_hash: None,
            timeline_seq: 0,
            client_seq: 0,
            retain_ms: None,
            erased_at: None,
        }
    }
}

pub async fn run(args: FloorNodeArgs) -> anyhow::Result<()> {
    let config = Config::load(Some(&args.config)).context("invalid configuration")?;
    let key = std::env::var(super::server::FLOOR_KEY_ENV)
        .with_context(|| format!("{} is not set", super::server::FLOOR_KEY_ENV))?;
    let mut versions = HashMap::new();
    for entry in std::fs::read_dir(&config.workflows_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path)?;
            let wf = gangway_core::workflow::parse(&text, gangway_server::providers::catalog())
                .map_err(|d| anyhow::anyhow!(d.render(&path.display().to_string())))?;
            versions.insert(wf.id.clone(), wf.version);
        }
    }
    // The same clients as the http connector's and the deliveries'.
    let provider = gangway_server::egress::provider_client(
        reqwest::Client::builder()
            .timeout(config.engine.request_timeout)
            .pool_max_idle_per_host(256),
    )
    .map_err(anyhow::Error::msg)?;
    let deliveries = gangway_server::egress::delivery_client(
        config.webhooks.timeout,
        config.webhooks.address_policy()?,
    )
    .map_err(anyhow::Error::msg)?;
    // The metrics layer records into the same recorder as a real node's.
    let _ = gangway_server::api::metrics_handle();
    let tcp = tokio::net::TcpListener::bind(config.listen).await?;
    let url = format!("http://{}", tcp.local_addr()?);
    let node = Arc::new(Node {
        policy: config.webhooks.address_policy()?,
        config,
        key_hash: ids::hash_secret(&key),
        provider,
        deliveries,
        versions,
        pending: Mutex::default(),
    });
    let router = gangway_server::Router::new()
        .route("/v1/sessions", post(create))
        .route("/v1/webhooks/http/{name}", post(webhook))
        .with_state(node.clone());
    let router = gangway_server::app::layers(router, node.config.log.access);
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let serving = gangway_server::serve::spawn(
        gangway_server::serve::Listener {
            name: "api",
            tcp,
            tls: None,
            router,
            settings: gangway_server::serve::Settings::new(&node.config.server),
        },
        stop,
        node.config.engine.shutdown_grace,
    );
    println!("gangway listening on {url}");
    tokio::select! {
        () = gangway_server::app::shutdown_signal() => {}
        _ = serving => {}
    }
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    workflow: String,
    #[serde(default = "empty_object")]
    input: Value,
    reference: Option<String>,
}

fn empty_object() -> Value {
    json!({})
}

async fn create(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !ids::secure_eq(ids::hash_secret(given).as_bytes(), node.key_hash.as_bytes()) {
        return Err(Problem::unauthorized("invalid API key"));
    }
    let body: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    let Some(&version) = node.versions.get(&body.workflow) else {
        return Err(Problem::not_found(format!(
            "no workflow `{}`",
            body.workflow
        )));
    };
    let now = ids::now_ms();
    let session = Session {
        id: ids::new_id("ses"),
        workflow: body.workflow,
        version,
        reference: body.reference,
        input: body.input,
        created_at: now,
    };
    // As a real node answers: the session in its first step, a call.
    let state = SessionState {
        step: Some("start_provider".into()),
        visit: 1,
        ..SessionState::default()
    };
    let mut out = view::session_json(&session.row(state, now));
    out["client_secret"] = Value::String(ids::new_secret("gwcs"));
    let ttl = i64::try_from(node.config.client.secret_ttl.as_millis()).unwrap_or(i64::MAX);
    out["client_secret_expires_at"] = view::time_json(Some(now.saturating_add(ttl)));
    tokio::spawn(start(node.clone(), session));
    Ok((StatusCode::CREATED, Json(out)))
}

/// The provider start (`start_provider`), then the rendezvous with its webhook.
async fn start(node: Arc<Node>, s: Session) {
    let body = json!({"reference": s.reference});
    let key = format!("{}:1", s.id);
    let Some(answer) = node
        .send(reqwest::Method::POST, &[], Some(&body), &key)
        .await
    else {
        return;
    };
    let Some(provider_id) = answer["id"].as_str().map(str::to_string) else {
        tracing::warn!(session = %s.id, "the provider's start answer has no id");
        return;
    };
    let webhook_came_first = match node.pending.lock() {
        Ok(mut p) => match p.remove(&provider_id) {
            Some(Pending::Webhook) => true,
            _ => {
                p.insert(provider_id.clone(), Pending::Started(s.clone()));
                false
            }
        },
        Err(_) => return,
    };
    if webhook_came_first {
        read_and_end(node, s, provider_id).await;
    }
}

async fn webhook(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let Some(cfg) = node
        .config
        .section::<HttpConnectorConfig>()
        .and_then(|h| h.webhooks.get(&name))
    else {
        return Err(Problem::not_found(format!(
            "no webhook `{name}` is configured under [http.webhooks]"
        )));
    };
    verify_http_webhook(cfg, &headers, &body, ids::now_ms() / 1000)
        .map_err(Problem::unauthorized)?;
    let event = http_event(cfg, &body)?;
    // The workflow waits for `score.completed`.
    if event.value == "completed" {
        let started = node
            .pending
            .lock()
            .ok()
            .and_then(|mut p| match p.remove(&event.reference) {
                Some(Pending::Started(s)) => Some(s),
                _ => {
                    p.insert(event.reference.clone(), Pending::Webhook);
                    None
                }
            });
        if let Some(s) = started {
            tokio::spawn(read_and_end(node.clone(), s, event.reference));
        }
    }
    Ok(Json(json!({"received": true, "duplicate": false})))
}

/// The provider read (`fetch_score`), the decision and the customer webhook.
async fn read_and_end(node: Arc<Node>, s: Session, provider_id: String) {
    let key = format!("{}:3", s.id);
    let path = [provider_id.as_str(), "score"];
    let Some(read) = node.send(reqwest::Method::GET, &path, None, &key).await else {
        return;
    };
    let score = read["score"].clone();
    let status = read["status"].as_str().unwrap_or_default();
    let (step, outcome, reason, output) = if status != "completed" {
        (
            "not_completed",
            Outcome::Failed,
            format!("the provider reported status {status} instead of completed"),
            json!({"provider_status": status, "provider_session": provider_id}),
        )
    } else if score.as_f64().is_some_and(|n| n >= 50.0) {
        (
            "approve",
            Outcome::Approved,
            format!("score {score} is at least 50"),
            json!({"score": score, "threshold": 50, "provider_session": provider_id}),
        )
    } else {
        (
            "decline",
            Outcome::Declined,
            format!("score {score} is below 50"),
            json!({"score": score, "threshold": 50, "provider_session": provider_id}),
        )
    };
    let now = ids::now_ms();
    let state = SessionState {
        status: SessionStatus::Ended,
        step: Some(step.into()),
        visit: 5,
        outcome: Some(outcome),
        reason: Some(reason),
        output: Some(output),
        providers: vec![ProviderRef {
            connector: "http".into(),
            provider_session_id: provider_id,
        }],
        ended_ms: Some(now),
        ..SessionState::default()
    };
    let payload = json!({
        "type": "session.ended",
        "timestamp": view::time_json(Some(now)),
        "data": view::session_json(&s.row(state, now)),
    });
    for ep in &node.config.webhooks.endpoints {
        if ep.events.iter().any(|e| e == "session.ended") {
            deliver(&node, ep, &payload).await;
        }
    }
}

/// A customer webhook, signed and sent as runtime/delivery.rs does; a few
/// quick retries instead of the durable schedule (nothing is stored here).
async fn deliver(node: &Node, ep: &EndpointConfig, payload: &Value) {
    let id = ids::new_id("msg");
    if let Ok(url) = reqwest::Url::parse(&ep.url)
        && let Err(refused) = node.policy.check_url(&url)
    {
        tracing::warn!("customer webhook refused: {refused}");
        return;
    }
    let body = payload.to_string();
    let ts = ids::now_ms() / 1000;
    let signature = match standardwebhooks::Webhook::new(&ep.secret)
        .and_then(|w| w.sign(&id, ts, body.as_bytes()))
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot sign a customer webhook: {e}");
            return;
        }
    };
    for attempt in 0..3u32 {
        let sent = node
            .deliveries
            .post(&ep.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", &signature)
            .body(body.clone())
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
    }
    tracing::warn!(delivery = %id, "customer webhook not delivered after 3 attempts");
}

impl Node {
    /// A request to the score service as the http connector sends it: the
    /// configured headers, an idempotency key, a JSON body; `segments`
    /// after `/v1/sessions`, each encoded as one path segment. Returns the
    /// answer's JSON body; a few quick retries on failure.
    async fn send(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        body: Option<&Value>,
        idempotency_key: &str,
    ) -> Option<Value> {
        let service = self
            .config
            .section::<HttpConnectorConfig>()?
            .services
            .get(SERVICE)?;
        let mut url = reqwest::Url::parse(&format!(
            "{}/v1/sessions",
            service.base_url.trim_end_matches('/')
        ))
        .ok()?;
        url.path_segments_mut().ok()?.extend(segments);
        let mut headers = HeaderMap::new();
        for (k, v) in &service.headers {
            let (Ok(name), Ok(mut value)) = (
                axum::http::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) else {
                continue;
            };
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        headers.insert(
            "idempotency-key",
            HeaderValue::from_str(idempotency_key).ok()?,
        );
        for attempt in 0..3u32 {
            let mut req = self
                .provider
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = body {
                req = req.json(body);
            }
            if let Ok(r) = req.send().await
                && r.status().is_success()
                && let Ok(bytes) = r.bytes().await
                && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
            {
                return Some(v);
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        tracing::warn!(%method, path = url.path(), "provider call failed after 3 attempts");
        None
    }
}
