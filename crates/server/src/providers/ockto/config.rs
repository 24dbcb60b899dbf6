//! The `[ockto]` config section: its types (the file format) and what the
//! types cannot check. Errors name the key and the fix, never the secret.

use crate::config::{Config, ConfigError, http_url, key_err};
use serde::Deserialize;

/// The Ockto connector (providers.md 3): Basic credentials, provider code and
/// an optional client certificate for mutual TLS. PEM values are the file
/// contents, normally given as `${file:/path}`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcktoConfig {
    /// The Ockto endpoint (staging or production).
    pub base_url: String,
    pub username: String,
    pub password: String,
    /// Sent as `X-Ockto-Provider-Code`.
    pub provider_code: String,
    /// Client certificate (PEM, chain allowed) for mutual TLS.
    pub client_cert: Option<String>,
    /// Its private key (PEM: PKCS#8, RSA or SEC1).
    pub client_key: Option<String>,
    /// Extra root certificate (PEM) to trust for the endpoint, for a private
    /// PKI or the simulator's CA; public CAs are trusted anyway.
    pub ca_cert: Option<String>,
    /// Default set of sources (`ocktoType`), issued by Ockto.
    #[serde(default = "default_ockto_type")]
    pub ockto_type: String,
    /// Default consent wording code shown by the app.
    pub consent_code: Option<String>,
}

fn default_ockto_type() -> String {
    "P".into()
}

impl std::fmt::Debug for OcktoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("OcktoConfig")
            .field("base_url", &self.base_url)
            .field("username", &"<redacted>")
            .field("password", &"<redacted>")
            .field("provider_code", &"<redacted>")
            .field("client_cert", &set(&self.client_cert))
            .field(
                "client_key",
                &if self.client_key.is_some() {
                    "<redacted>"
                } else {
                    "<none>"
                },
            )
            .field("ca_cert", &set(&self.ca_cert))
            .field("ockto_type", &self.ockto_type)
            .finish()
    }
}

impl OcktoConfig {
    /// The client identity for mutual TLS, if configured. Errors name the
    /// key and the problem, never the material.
    pub fn identity(&self) -> Result<Option<reqwest::Identity>, ConfigError> {
        match (&self.client_cert, &self.client_key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(key_err(
                "ockto.client_key",
                "client_cert is set but client_key is not",
            )),
            (None, Some(_)) => Err(key_err(
                "ockto.client_cert",
                "client_key is set but client_cert is not",
            )),
            (Some(cert), Some(key)) => {
                if !cert.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(key_err(
                        "ockto.client_cert",
                        "is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                    ));
                }
                if !key.contains("PRIVATE KEY-----") {
                    return Err(key_err(
                        "ockto.client_key",
                        "is not a PEM private key (-----BEGIN PRIVATE KEY-----)",
                    ));
                }
                let pem = format!("{}\n{}\n", cert.trim_end(), key.trim_end());
                reqwest::Identity::from_pem(pem.as_bytes())
                    .map(Some)
                    .map_err(|_| {
                        key_err(
                            "ockto.client_key",
                            "the certificate and key could not be loaded together (unsupported key type or unreadable PEM)",
                        )
                    })
            }
        }
    }

    /// The extra root certificate, if configured.
    pub fn root(&self) -> Result<Option<reqwest::Certificate>, ConfigError> {
        self.ca_cert
            .as_ref()
            .map(|pem| {
                reqwest::Certificate::from_pem(pem.as_bytes())
                    .map_err(|_| key_err("ockto.ca_cert", "is not a PEM certificate"))
            })
            .transpose()
    }
}

impl crate::config::Section for OcktoConfig {
    const KEY: &'static str = "ockto";
}

/// What the types of the section cannot check.
pub(crate) fn check(config: &Config) -> Result<(), ConfigError> {
    let Some(o) = config.section::<OcktoConfig>() else {
        return Ok(());
    };
    http_url("ockto.base_url", &o.base_url, "https://api.ockto.example")?;
    for (key, value) in [
        ("ockto.username", &o.username),
        ("ockto.password", &o.password),
        ("ockto.provider_code", &o.provider_code),
        ("ockto.ockto_type", &o.ockto_type),
    ] {
        if value.is_empty() {
            return Err(key_err(
                key,
                "must not be empty (use `${env:...}` or `${file:...}`)",
            ));
        }
    }
    if o.consent_code.as_deref() == Some("") {
        return Err(key_err(
            "ockto.consent_code",
            "must not be empty; leave it out for Ockto's default",
        ));
    }
    o.identity()?;
    o.root()?;
    Ok(())
}
