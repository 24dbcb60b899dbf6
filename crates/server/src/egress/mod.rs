//! Where outbound requests may go. Provider calls stay on the origin (scheme,
//! host and port) of the URL they were sent to, which connectors build from
//! their configured `base_url`: a redirect to another origin is refused
//! before anything is sent there, so no credential header (`X-Api-Key`,
//! `Authorization`, a configured secret header) can follow it. Customer
//! webhooks follow no redirects at all and connect only to public addresses
//! unless the configuration allows others; the address is checked where the
//! connection is made, on what the name resolved to, so a name that resolves
//! differently later (DNS rebinding) cannot get around it.

mod address;

pub use address::{AddressPolicy, NetworkError};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Most redirects a provider call follows (within its origin).
const MAX_REDIRECTS: usize = 10;

/// An outbound request the egress policy stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A provider answered with a redirect to another origin.
    #[error(
        "was redirected from {from} to {to}, another origin: refused (provider calls stay on their configured base_url's origin)"
    )]
    Redirect { from: String, to: String },
    /// A customer endpoint is, or resolves to, an address that is not public.
    #[error(
        "{host} is {kind} ({addr}): refused (customer webhooks go only to public addresses unless webhooks.allow_private or webhooks.allowed_networks allows it)"
    )]
    Address {
        host: String,
        addr: IpAddr,
        kind: &'static str,
    },
}

impl Refused {
    /// The metrics label of the refusal.
    pub fn kind(&self) -> &'static str {
        match self {
            Refused::Redirect { .. } => "redirect",
            Refused::Address { .. } => "address",
        }
    }
}

/// `User-Agent` of every outbound request: a provider or a customer's
/// backend can tell Gangway's calls, and which release makes them.
pub const USER_AGENT: &str = concat!("Gangway/", env!("CARGO_PKG_VERSION"));

/// A client for provider calls: `timeout` per request, redirects followed
/// only to the origin the request was first sent to (at most ten).
pub fn provider_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, String> {
    builder
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let Some(first) = attempt.previous().first() else {
                return attempt.stop();
            };
            if attempt.url().origin() != first.origin() {
                let refused = Refused::Redirect {
                    from: first.origin().ascii_serialization(),
                    to: attempt.url().origin().ascii_serialization(),
                };
                return attempt.error(refused);
            }
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            attempt.follow()
        }))
        .build()
        .map_err(|e| format!("the provider HTTP client could not be built: {e}"))
}

/// The client for customer webhooks: no redirects, and only addresses the
/// policy allows, checked on each connection's resolved address. Hosts
/// written as IP addresses are not resolved: check them with
/// [`AddressPolicy::check_url`] before sending.
pub fn delivery_client(
    timeout: Duration,
    policy: AddressPolicy,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(address::GuardedResolver::new(policy)))
        .build()
        .map_err(|e| format!("the webhook delivery HTTP client could not be built: {e}"))
}

/// The refusal behind a failed request, if the egress policy stopped it.
pub fn refusal(e: &reqwest::Error) -> Option<&Refused> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        next = err.source();
    }
    None
}

/// Counts a refusal (`gangway_egress_refused_total{kind}`) and logs it.
pub fn note(refused: &Refused, what: &str) {
    metrics::counter!("gangway_egress_refused_total", "kind" => refused.kind()).increment(1);
    tracing::warn!(call = what, "outbound request refused: {refused}");
}
