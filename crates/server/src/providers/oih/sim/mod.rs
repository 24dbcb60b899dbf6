//! Simulator of Open Integration Hub (providers.md 5), mounted under `/sim/oih/`.
//!
//! Webhooks service (wrapped by the [`Faults`] layer, see [`hook`]):
//! `HEAD|GET|POST /hook/{flowId}` and `/hook/{flowId}/{suffix}`, with OIH's
//! delayed 404 for unknown or stopped flows, its 415 without `Content-Type`,
//! the per-flow HMAC check (403) on POST and none on GET, and 200
//! `{"data": {"requestId", "message": "thank you"}}`.
//!
//! After the 200 a run plays the flow's script ([`run`]) and POSTs callbacks
//! `{"requestId", "seq", "type", "data", "message"}` to the trigger's
//! `callbackUrl` (Gangway's contract, providers.md 5.2), shaped by the
//! [`OihKnobs`]. Each callback attempt is logged in the request log with
//! Gangway's status, its URL's token masked.
//!
//! The OAuth loop runs offline: the `oauth-login` flow opens a login attempt
//! in the simulated Secret Service ([`hub`]) and calls back with a login URL
//! of a fake identity provider ([`idp`]: sign-in and consent pages, token
//! endpoint, Graph-style `/graph/v1.0/me`); the hub's OAuth callback
//! `/secrets/callback` stores the tokens as a secret and the flow calls back
//! again with the secret id. `graph-me` reads the profile with that secret.
//! Tokens and codes never leave the simulator in a callback or a log.
//!
//! Control API below `control/` ([`control`]; never faulted or logged).

mod builtin;
mod control;
mod data;
mod flow;
mod hook;
mod hub;
mod idp;
mod pages;
mod run;
pub mod setup;
mod shipped;
mod template;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use indexmap::IndexMap;
use serde::Serialize;

use crate::sim::faults::{Faults, FaultsConfig, default_error_body};

pub use data::DEMO_USERS;
pub use flow::{
    Builtin, FlowStatus, HMAC_ALGORITHMS, OihKnobs, ScriptStep, SimFlow, StepAction, StepMessage,
};
pub use hook::REQUEST_ID_HEADER;
pub use hub::SecretSummary;
pub use idp::{ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX};
pub use shipped::shipped_flows;

/// The identity provider's client id of the Secret Service.
pub const OAUTH_CLIENT_ID: &str = "oih-secret-service";
/// Timeout of the simulator's own HTTP calls (callbacks, token exchange, Graph).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// How the simulator starts (and what `control/reset` returns to).
#[derive(Clone, Debug)]
pub struct OihSimConfig {
    pub flows: Vec<SimFlow>,
    /// Where browsers reach the simulator, e.g. `http://127.0.0.1:8080/sim/oih`
    /// (login URLs are built on it; the simulator also calls its own token
    /// and Graph endpoints there).
    pub public_url: String,
    /// OIH sends its 404 for unknown/stopped flows only after this delay (default 1000).
    pub not_found_delay_ms: u64,
    /// Global callback knobs, default all off.
    pub knobs: OihKnobs,
}

impl Default for OihSimConfig {
    fn default() -> Self {
        OihSimConfig {
            flows: Vec::new(),
            public_url: "http://127.0.0.1:8080/sim/oih".into(),
            not_found_delay_ms: 1000,
            knobs: OihKnobs::default(),
        }
    }
}

/// One callback the simulator sent (`GET control/callbacks`).
#[derive(Clone, Debug, Serialize)]
pub struct SentCallback {
    pub at: String,
    #[serde(rename = "requestId")]
    pub request_id: String,
    #[serde(rename = "flowId")]
    pub flow_id: String,
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: String,
    /// The callback URL, its token masked.
    pub url: String,
    /// Gangway's answer; 0 when none came.
    pub status: u16,
}

/// The OIH simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct OihSim {
    shared: Arc<Shared>,
}

struct Shared {
    config: OihSimConfig,
    faults: Faults,
    http: reqwest::Client,
    /// The Secret Service's client secret at the identity provider.
    client_secret: String,
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    flows: IndexMap<String, SimFlow>,
    knobs: OihKnobs,
    callbacks: Vec<SentCallback>,
    /// Bumped on reset: runs of an earlier epoch send nothing more.
    epoch: u64,
    hub: hub::HubState,
    idp: idp::IdpState,
}

impl std::fmt::Debug for OihSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OihSim")
            .field("public_url", &self.shared.config.public_url)
            .finish_non_exhaustive()
    }
}

impl OihSim {
    pub fn new(mut cfg: OihSimConfig) -> OihSim {
        cfg.public_url = cfg.public_url.trim_end_matches('/').to_owned();
        let faults = Faults::new(FaultsConfig {
            ref_from_path: |_| None,
            error_body: default_error_body,
            malformed_body: "{\"data\": {\"requestId\": \"",
        });
        let sim = OihSim {
            shared: Arc::new(Shared {
                faults,
                http: reqwest::Client::builder()
                    .timeout(HTTP_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap_or_default(),
                client_secret: hex::encode(rand::random::<[u8; 24]>()),
                state: Mutex::default(),
                config: cfg,
            }),
        };
        sim.restore_config();
        sim
    }

    /// Everything, relative to the mount: `Router::new().nest("/sim/oih", sim.router())`.
    pub fn router(&self) -> Router {
        let hooks = Router::new()
            .route(
                "/hook/{flow}",
                get(hook::get).head(hook::head).post(hook::post),
            )
            .route(
                "/hook/{flow}/{suffix}",
                get(hook::get).head(hook::head).post(hook::post),
            )
            .with_state(self.clone());
        let oauth = Router::new()
            .route(
                "/idp/authorize",
                get(idp::authorize_page).post(idp::authorize_submit),
            )
            .route("/idp/token", post(idp::token))
            .route("/graph/v1.0/me", get(idp::graph_me))
            .route("/secrets/callback", get(hub::oauth_callback))
            .with_state(self.clone());
        let control = Router::new()
            .route("/flows", get(control::list_flows))
            .route("/flows/{flow}", put(control::put_flow))
            .route("/flows/{flow}/{action}", post(control::flow_action))
            .route("/knobs", get(control::get_knobs).post(control::set_knobs))
            .route("/callbacks", get(control::list_callbacks))
            .route("/secrets", get(control::list_secrets))
            .route("/reset", post(control::reset))
            .with_state(self.clone())
            .merge(self.shared.faults.control_router());
        Router::new()
            .nest("/control", control)
            .merge(oauth)
            .merge(self.shared.faults.wrap(hooks))
    }

    /// Fault rules and request log.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The global knobs in force.
    pub fn knobs(&self) -> OihKnobs {
        self.lock().knobs.clone()
    }

    pub fn set_knobs(&self, knobs: OihKnobs) {
        self.lock().knobs = knobs;
    }

    /// A copy of one flow.
    pub fn flow(&self, id: &str) -> Option<SimFlow> {
        self.lock().flows.get(id).cloned()
    }

    /// Adds or replaces a flow (its `id` names it).
    pub fn put_flow(&self, flow: SimFlow) -> Result<(), String> {
        flow.validate()?;
        self.lock().flows.insert(flow.id.clone(), flow);
        Ok(())
    }

    /// Starts or stops a flow; false when there is none by that id.
    pub fn set_status(&self, id: &str, status: FlowStatus) -> bool {
        match self.lock().flows.get_mut(id) {
            Some(f) => {
                f.status = status;
                true
            }
            None => false,
        }
    }

    /// The callbacks sent so far, oldest first.
    pub fn callbacks(&self) -> Vec<SentCallback> {
        self.lock().callbacks.clone()
    }

    /// Back to the configured flows and knobs; forgets runs in progress,
    /// login attempts, secrets, tokens, fault rules and logs.
    pub fn reset(&self) {
        self.restore_config();
        self.shared.faults.reset();
    }

    fn restore_config(&self) {
        let cfg = &self.shared.config;
        let mut st = self.lock();
        let epoch = st.epoch + 1;
        *st = SimState {
            epoch,
            knobs: cfg.knobs.clone(),
            ..SimState::default()
        };
        for flow in &cfg.flows {
            if let Err(e) = flow.validate() {
                tracing::warn!(flow = %flow.id, error = %e, "OIH simulator: flow refused");
                continue;
            }
            st.flows.insert(flow.id.clone(), flow.clone());
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn public_url(&self) -> &str {
        &self.shared.config.public_url
    }

    /// The hub's OAuth callback, the only redirect URI the identity provider accepts.
    fn redirect_uri(&self) -> String {
        format!("{}/secrets/callback", self.public_url())
    }
}

/// Random lowercase hex of `bytes` random bytes.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    hex::encode(buf)
}

/// `status` with body `{"error": message}` (OIH's error shape).
fn oih_error(status: StatusCode, message: impl Into<String>) -> axum::response::Response {
    crate::sim::error_response(status, message)
}
