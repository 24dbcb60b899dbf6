//! The simulators wired to a Gangway: credentials shared by both sides, the
//! simulators' router, and the config that points Gangway's connectors at
//! them, each derived from the registered providers (every provider's
//! sim/setup.rs). Used by `gangway demo`, `gangway sim`, the sandbox and dry
//! runs.

use crate::config::Config;
use crate::ids;
use crate::providers::incode::sim::IncodeKnobs;
use axum::Router;

/// Credentials shared by the simulators and the Gangway config that talks to them.
pub struct SimCredentials {
    pub score_api_key: String,
    pub score_webhook_secret: String,
    pub incode_api_key: String,
    pub incode_client_id: String,
    pub incode_client_secret: String,
    pub ockto_username: String,
    pub ockto_password: String,
    pub ockto_provider_code: String,
    /// Partner API keys of the simulated Partner-Payment and Direct-Payment hubs.
    pub dialog360_api_key: String,
    pub dialog360_direct_api_key: String,
    /// The token in the partner webhook URL.
    pub dialog360_webhook_token: String,
    /// The HMAC key of the simulated hub's flows (its API_KEY secret).
    pub oih_hmac_key: String,
    /// The secret key the Stripe simulator expects and the signing secret of
    /// its events; either empty: `/sim/stripe` is not served.
    pub stripe_secret_key: String,
    pub stripe_webhook_secret: String,
}

/// Partner ids of the simulated 360dialog hubs.
pub use crate::providers::dialog360::sim::setup::{
    DIRECT_PARTNER as DIALOG360_DIRECT_PARTNER, PARTNER as DIALOG360_PARTNER,
};
/// The Ockto simulator; phones reach it (the QR code's URL) at `sim_url`.
pub use crate::providers::ockto::sim::setup::sim as ockto_sim;

impl SimCredentials {
    pub fn random() -> SimCredentials {
        SimCredentials {
            score_api_key: ids::new_secret("simkey"),
            score_webhook_secret: ids::new_secret("simwh"),
            incode_api_key: ids::new_secret("incodekey"),
            incode_client_id: "incode-webhooks".into(),
            incode_client_secret: ids::new_secret("incodewh"),
            ockto_username: "gangway-demo".into(),
            ockto_password: ids::new_secret("ocktopw"),
            ockto_provider_code: "GANGWAY-DEMO".into(),
            dialog360_api_key: ids::new_secret("d360key"),
            dialog360_direct_api_key: ids::new_secret("d360direct"),
            dialog360_webhook_token: ids::new_secret("d360wh"),
            oih_hmac_key: ids::new_secret("oihhmac"),
            stripe_secret_key: ids::new_secret("sk_test"),
            stripe_webhook_secret: ids::new_secret("whsec"),
        }
    }
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
    /// Leave `/sim/score` out (`gangway sim` without the score credentials).
    pub without_score: bool,
    /// Leave `/sim/incode` out (`gangway sim` without the Incode credentials).
    pub without_incode: bool,
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
