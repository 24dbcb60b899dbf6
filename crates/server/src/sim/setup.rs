//! The simulators wired to a Gangway: credentials shared by both sides, the
//! simulators' router, and the config that points Gangway's connectors at
//! them, each derived from the registered providers (every provider's
//! sim/setup.rs). Used by `gangway demo`, `gangway sim`, the sandbox and dry
//! runs.

use crate::config::Config;
use crate::ids;
use crate::providers::incode::sim::IncodeKnobs;
use crate::providers::{DemoValue, SimCredential, SimRegistration};
use axum::Router;
use std::collections::BTreeMap;

/// Credentials shared by the simulators and the Gangway config that talks to
/// them, by the ids the registered simulators declare
/// ([`crate::providers::SimCredential`]): `incode_api_key`, ...
#[derive(Clone, Default)]
pub struct SimCredentials(BTreeMap<&'static str, String>);

// Only the ids: the values are secrets.
impl std::fmt::Debug for SimCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Partner ids of the simulated 360dialog hubs.
pub use crate::providers::dialog360::sim::setup::{
    DIRECT_PARTNER as DIALOG360_DIRECT_PARTNER, PARTNER as DIALOG360_PARTNER,
};
/// The Ockto simulator; phones reach it (the QR code's URL) at `sim_url`.
pub use crate::providers::ockto::sim::setup::sim as ockto_sim;

impl SimCredentials {
    /// Fresh credentials for a Gangway that starts its own simulators
    /// (`gangway demo`, the sandbox, dry runs).
    pub fn random() -> SimCredentials {
        let mut creds = SimCredentials::default();
        for c in declared() {
            creds.set(
                c.id,
                match c.demo {
                    DemoValue::Secret(prefix) => ids::new_secret(prefix),
                    DemoValue::Fixed(value) => value.into(),
                },
            );
        }
        creds
    }

    /// The credential `id` (one a registered simulator declares); empty
    /// when not given.
    pub fn get(&self, id: &str) -> &str {
        debug_assert!(
            declared().any(|c| c.id == id),
            "no simulator declares the credential `{id}`"
        );
        self.0.get(id).map_or("", String::as_str)
    }

    pub fn set(&mut self, id: &'static str, value: String) {
        self.0.insert(id, value);
    }

    /// Whether `sim` can be served: every credential it requires is given.
    pub fn complete_for(&self, sim: &SimRegistration) -> bool {
        sim.credentials
            .iter()
            .filter(|c| c.default.is_none())
            .all(|c| !self.get(c.id).is_empty())
    }
}

/// Every credential the registered simulators declare.
pub fn declared() -> impl Iterator<Item = &'static SimCredential> {
    crate::providers::REGISTRY
        .iter()
        .filter_map(|p| p.sim.as_ref())
        .flat_map(|s| s.credentials)
}

/// How the simulators are set up beyond their credentials.
#[derive(Default)]
pub struct SimOptions {
    /// Origins that may frame the simulators' hosted pages.
    pub frame_ancestors: Vec<String>,
    pub incode_knobs: IncodeKnobs,
    /// The Ockto router to mount (its public part alone when its API sits
    /// behind a mutual-TLS listener); by default the whole simulator.
    pub ockto: Option<Router>,
    /// How long the OIH simulator waits before its 404 (OIH: 1000 ms).
    pub oih_not_found_delay_ms: Option<u64>,
}

/// What a provider's simulator is wired with.
pub struct Wiring<'a> {
    /// Where Gangway receives the simulators' webhooks (no trailing `/`).
    pub gangway_url: &'a str,
    /// Where browsers reach the simulators (no trailing `/`).
    pub sim_url: &'a str,
    pub creds: &'a SimCredentials,
    pub opts: &'a SimOptions,
}

/// The simulators' router, mounted under `/sim/{provider}`. `gangway_url`
/// receives their webhooks; `sim_url` is where browsers reach the simulators.
pub fn simulators(
    gangway_url: &str,
    sim_url: &str,
    creds: &SimCredentials,
    opts: SimOptions,
) -> Router {
    let w = Wiring {
        gangway_url: gangway_url.trim_end_matches('/'),
        sim_url: sim_url.trim_end_matches('/'),
        creds,
        opts: &opts,
    };
    crate::providers::REGISTRY
        .iter()
        .filter_map(|p| p.sim.as_ref())
        // A simulator whose required credentials are not all given is left
        // out (`gangway sim` without `--incode-api-key`).
        .filter(|sim| creds.complete_for(sim))
        .fold(Router::new(), |router, sim| match (sim.router)(&w) {
            Some(r) => router.nest(&format!("/sim/{}", sim.mount), r),
            None => router,
        })
}

/// Points every connector that has a simulator at the simulators on `base`.
pub fn configure_all(config: &mut Config, base: &str, creds: &SimCredentials) {
    for sim in crate::providers::REGISTRY
        .iter()
        .filter_map(|p| p.sim.as_ref())
    {
        (sim.configure)(config, base, creds);
    }
}

/// Points each connector that has a simulator and is not configured yet at
/// the simulators on `base` (`gangway demo` keeps what the config sets).
pub fn configure_missing(config: &mut Config, base: &str, creds: &SimCredentials) {
    for sim in crate::providers::REGISTRY
        .iter()
        .filter_map(|p| p.sim.as_ref())
    {
        if !(sim.configured)(config) {
            (sim.configure)(config, base, creds);
        }
    }
}
