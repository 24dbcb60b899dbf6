//! HTTPS on the API listener (rustls, ring): the certificate chain and key
//! come from `tls.cert_file` and `tls.key_file`, and are read again every
//! `tls.reload_interval` and on SIGHUP; a changed pair that loads is served
//! to new connections, one that does not is logged and the previous pair
//! kept. HTTP/1.1 only (ALPN `http/1.1`).

use crate::config::{ConfigError, TlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// A TLS listener's acceptor and the certificate it serves.
#[derive(Clone)]
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    certs: Arc<Certs>,
    reload_interval: Duration,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert_file", &self.certs.cert_file)
            .finish()
    }
}

impl Tls {
    /// Loads the pair named by the config; errors name the key, never the
    /// key material.
    pub fn load(config: &TlsConfig) -> Result<Tls, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (pair, files) = read_pair(&config.cert_file, &config.key_file, &provider).map_err(
            |(key, message)| ConfigError::Key {
                key: key.into(),
                message,
                origin: None,
            },
        )?;
        let certs = Arc::new(Certs {
            cert_file: config.cert_file.clone(),
            key_file: config.key_file.clone(),
            provider: provider.clone(),
            current: RwLock::new(Arc::new(pair)),
            loaded: std::sync::Mutex::new(files),
        });
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::Key {
                key: "tls".into(),
                message: e.to_string(),
                origin: None,
            })?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            certs,
            reload_interval: config.reload_interval,
        })
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor.clone()
    }

    /// Reads the files again every `reload_interval` and on SIGHUP, until
    /// `stop` turns true.
    pub fn spawn_reloader(&self, mut stop: watch::Receiver<bool>) {
        let certs = self.certs.clone();
        let interval = self.reload_interval;
        tokio::spawn(async move {
            let mut hup = hangup();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                    _ = tick.tick() => certs.reload(false),
                    _ = recv_hangup(&mut hup) => certs.reload(true),
                }
            }
        });
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangup() -> Hangup {}

#[cfg(unix)]
async fn recv_hangup(hup: &mut Hangup) {
    match hup {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn recv_hangup(_: &mut Hangup) {
    std::future::pending().await
}

/// The pair served now, and the file contents it (or the last failed
/// attempt) was read from.
struct Certs {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    loaded: std::sync::Mutex<Files>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs")
            .field("cert_file", &self.cert_file)
            .finish()
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

impl Certs {
    /// Loads the files if they changed since the last attempt (or always,
    /// on SIGHUP).
    fn reload(&self, forced: bool) {
        let (Ok(cert), Ok(key)) = (
            std::fs::read(&self.cert_file),
            std::fs::read(&self.key_file),
        ) else {
            if forced {
                tracing::warn!(cert_file = %self.cert_file.display(), key_file = %self.key_file.display(), "TLS: cannot read the certificate or key file; still serving the previous pair");
            }
            return;
        };
        let Ok(mut loaded) = self.loaded.lock() else {
            return;
        };
        if !forced && loaded.0 == cert && loaded.1 == key {
            return;
        }
        *loaded = (cert.clone(), key.clone());
        drop(loaded);
        match parse_pair(&cert, &key, &self.provider) {
            Ok(pair) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(pair);
                }
                tracing::info!(cert_file = %self.cert_file.display(), "TLS: certificate reloaded");
            }
            Err((key, message)) => {
                // A half-written pair (certificate renewed, key not yet) is
                // tried again when either file changes.
                tracing::warn!(key, error = %message, "TLS: the new certificate or key does not load; still serving the previous pair");
            }
        }
    }
}

type PairError = (&'static str, String);
/// The certificate and key files' contents.
type Files = (Vec<u8>, Vec<u8>);

fn read_pair(
    cert_file: &Path,
    key_file: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<(CertifiedKey, Files), PairError> {
    let read = |key: &'static str, path: &Path| {
        std::fs::read(path).map_err(|e| (key, format!("cannot read {}: {e}", path.display())))
    };
    let cert = read("tls.cert_file", cert_file)?;
    let key = read("tls.key_file", key_file)?;
    let pair = parse_pair(&cert, &key, provider)?;
    Ok((pair, (cert, key)))
}

fn parse_pair(
    cert: &[u8],
    key: &[u8],
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, PairError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err((
            "tls.cert_file",
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| {
        (
            "tls.key_file",
            "holds no PEM private key (PKCS#8, RSA or SEC1: -----BEGIN PRIVATE KEY-----)".into(),
        )
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        (
            "tls.key_file",
            format!("does not go with the certificate in tls.cert_file, or is not supported ({e})"),
        )
    })
}
