//! Providers: one folder per provider, each holding everything Gangway knows
//! about it: its client calls (client.rs), the inbound webhook or callback
//! that turns a request into a verified event or a clear rejection, its
//! config section (config.rs), its actions for validation and the catalog,
//! its secret redaction, and its simulator with the simulator's control API
//! (sim/). docs/connectors.md walks through adding one.
//!
//! The contract between the engine and a provider is [`Registration`]
//! (what is known without a config: name, actions, routes, secret words,
//! config checks, simulator) and [`Provider`] (the client built from the
//! config). The workflow catalog, the inbound routes, the config checks,
//! redaction and the simulators' mounts and config are derived from
//! [`REGISTRY`], so a new provider is its folder plus its `mod` line and one
//! entry there: its config section ([`Registration::config`]) and its
//! simulator's credentials ([`SimRegistration::credentials`], which become
//! `gangway sim` flags) are declared in its folder too.

pub mod dialog360;
pub mod http;
pub mod incode;
pub mod ockto;
pub mod oih;
pub mod stripe;

use crate::api::AppState;
use crate::config::{Config, ConfigSection};
use crate::connectors::{CallError, CallOutput};
use crate::crypto::Sealer;
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;
use gangway_core::catalog::{ActionSpec, Catalog};
use serde_json::Value;
use std::sync::LazyLock;

/// Every provider this build knows, in the order their config sections are
/// checked. Adding a provider adds one line here.
pub const REGISTRY: &[Registration] = &[
    http::PROVIDER,
    incode::PROVIDER,
    ockto::PROVIDER,
    dialog360::PROVIDER,
    oih::PROVIDER,
    stripe::PROVIDER,
];

/// What the server knows of a provider before any config is read.
pub struct Registration {
    /// The namespace of its actions (`incode` in `incode.start`).
    pub name: &'static str,
    /// Its actions, listed here once: the catalog workflows are validated
    /// against, the JSON Schema's `call` enum, and what [`Provider::call`]
    /// is asked to run.
    pub actions: &'static [ActionSpec],
    /// Builds its client from the config (fails only when an HTTP client
    /// cannot be built: a broken TLS backend).
    pub connect: fn(&Context<'_>) -> Result<Box<dyn Provider>, String>,
    /// Its inbound routes (webhooks, callbacks, redirect pages): they carry
    /// no API key, so they are rate-limited per client address; each
    /// handler authenticates the request before anything is stored.
    pub routes: fn() -> Router<AppState>,
    /// Words (lowercase) that mark a key of its results or answers as secret,
    /// beyond the ones every provider shares (`secret`, `token`, ...): such
    /// values never reach the timeline or logs (connectors/redact.rs).
    pub secret_words: &'static [&'static str],
    /// Its config section: top-level key (`[incode]`, `GANGWAY_INCODE__*`),
    /// type and checks (its config.rs); `Config::section` reads it.
    pub config: ConfigSection,
    /// Its simulator, when it has one.
    pub sim: Option<SimRegistration>,
    /// What Gangway asks of it when a session lets go of one of its
    /// provider sessions (runtime/release.rs); `None`: nothing, its API
    /// documents no such call.
    pub release: Option<Release>,
    /// What the provider keeps of an erased session when it offers no
    /// redaction (`release.redact`): the `provider.retained` note of the
    /// erasure's timeline (runtime/erasure.rs), from its documentation.
    pub retained: &'static str,
}

/// The provider's own actions that close a provider session it started,
/// each called with `{"id": <provider_session_id>}` by a typed job after
/// the Gangway session that started it let go of it (runtime/release.rs).
/// Each must be idempotent: a provider session already finished or closed
/// answers success (what it was), not an error.
pub struct Release {
    /// Stops a provider session nobody will finish (Stripe:
    /// `stripe.cancel`), run when a session ends `canceled` or `expired`
    /// and its workflow did not call it on that provider session itself.
    pub cancel: Option<&'static str>,
    /// Removes the personal data the provider holds (Stripe:
    /// `stripe.redact`): for the erasure of a session (issue 20), which
    /// enqueues the same job with this action.
    pub redact: Option<&'static str>,
}

/// A provider's simulator as `gangway sim`, `gangway demo`, the sandbox and
/// dry runs mount it and point Gangway at it (its sim/setup.rs).
pub struct SimRegistration {
    /// Where it is served: `/sim/{mount}`.
    pub mount: &'static str,
    /// Its router, wired to a Gangway; `None`: left out (no credentials).
    pub router: fn(&Wiring<'_>) -> Option<Router>,
    /// Whether the config already has the provider's section.
    pub configured: fn(&Config) -> bool,
    /// Points the provider's config section at the simulator on a base URL.
    pub configure: fn(&mut Config, &str, &SimCredentials),
    /// The credentials it shares with the Gangway that talks to it:
    /// `gangway sim` takes each as a flag and a `SIM_*` variable, the demo
    /// and the sandbox make fresh ones.
    pub credentials: &'static [SimCredential],
}

/// One credential a simulator shares with Gangway (`SimCredentials::get`).
pub struct SimCredential {
    /// Its id in [`SimCredentials`]: `incode_api_key`.
    pub id: &'static str,
    /// `gangway sim`'s flag (without `--`) and environment variable for it;
    /// both are contracts (docs/simulators.md, scripts/deploy-smoke).
    pub flag: &'static str,
    pub env: &'static str,
    /// The flag's help text.
    pub help: &'static str,
    /// `gangway sim`'s value when the flag is not given. `None`: required,
    /// and the simulator is served only when all its required ones are given.
    pub default: Option<&'static str>,
    /// The value `gangway demo`, the sandbox and dry runs use.
    pub demo: DemoValue,
}

/// A credential's value where Gangway starts its own simulators.
pub enum DemoValue {
    /// A fresh random secret with this prefix.
    Secret(&'static str),
    /// This value.
    Fixed(&'static str),
}

/// What a provider's client is built from.
pub struct Context<'a> {
    pub config: &'a Config,
    /// Seals provider tokens and keys before they reach state or the DB.
    pub sealer: &'a Sealer,
}

/// One provider's client, as the engine calls it.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Runs one of its actions (the registry checked that `action` is one of
    /// them). `idempotency_key` is stable across retries of one step visit:
    /// a start sends it where the provider deduplicates, or says why not.
    async fn call(
        &self,
        action: &str,
        args: &Value,
        idempotency_key: &str,
    ) -> Result<CallOutput, CallError>;

    /// What must be chosen and committed before the call is sent (see
    /// [`Prepared`]); most providers need nothing.
    fn prepare(&self, _action: &str, _args: &Value) -> Option<Prepared> {
        None
    }

    /// The namespace the provider references of this call live in; inbound
    /// events name the same one. `None`: the provider's name.
    fn namespace(&self, _action: &str, _args: &Value) -> Option<String> {
        None
    }
}

/// What a call needs before it is sent, committed with the step that makes
/// it, so that an early callback finds the session (the OIH request id and
/// callback token).
pub struct Prepared {
    pub args: Value,
    /// `(namespace, reference)` pairs to correlate to the session now.
    pub correlations: Vec<(String, String)>,
}

/// The answer to an action no registered provider lists (validation stops
/// such workflows; this covers a stored call of an older build).
pub fn unlisted(action: &str) -> CallError {
    CallError {
        transient: false,
        retry_after: None,
        message: format!("no connector implements `{action}`"),
        record: Value::Null,
    }
}

/// The registered provider named `name`.
pub fn named(name: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|p| p.name == name)
}

/// The registered provider whose namespace starts `action`, if it lists it.
pub fn provider_of(action: &str) -> Option<&'static Registration> {
    let (name, _) = action.split_once('.')?;
    REGISTRY
        .iter()
        .find(|p| p.name == name && p.actions.iter().any(|a| a.name == action))
}

/// The actions workflows may call: every registered provider's.
pub fn catalog() -> &'static Catalog {
    static CATALOG: LazyLock<Catalog> =
        LazyLock::new(|| Catalog::new(REGISTRY.iter().map(|p| p.actions)));
    &CATALOG
}

/// Every provider's inbound routes.
pub fn routes() -> Router<AppState> {
    REGISTRY
        .iter()
        .fold(Router::new(), |r, p| r.merge((p.routes)()))
}

#[cfg(test)]
mod tests {
    /// Config section keys and simulator credentials are unique across
    /// providers (they become top-level keys, `gangway sim` flags and SIM_*
    /// variables), and the demo's credentials are all set.
    #[test]
    fn sections_and_sim_credentials_are_unique() {
        let mut keys = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        let creds = crate::sim::setup::SimCredentials::random();
        for p in super::REGISTRY {
            assert!(keys.insert(p.config.key), "section {} twice", p.config.key);
            for c in p.sim.iter().flat_map(|s| s.credentials) {
                for name in [c.id, c.flag, c.env] {
                    assert!(names.insert(name), "{name} declared twice");
                }
                assert!(c.env.starts_with("SIM_"), "{}", c.env);
                assert!(!creds.get(c.id).is_empty(), "{}", c.id);
            }
        }
    }

    #[test]
    fn action_names_are_namespaced_by_their_provider_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in super::REGISTRY {
            for a in p.actions {
                assert_eq!(a.name.split_once('.').map(|(n, _)| n), Some(p.name));
                assert!(seen.insert(a.name), "{} listed twice", a.name);
                assert!(super::provider_of(a.name).is_some());
            }
            // Release actions are actions the provider lists.
            if let Some(r) = &p.release {
                for a in [r.cancel, r.redact].into_iter().flatten() {
                    assert!(p.actions.iter().any(|x| x.name == a), "{a}");
                }
            }
        }
    }
}
