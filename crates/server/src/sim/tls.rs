//! A TLS listener that requires a client certificate from a given CA, for
//! simulators of providers that use mutual TLS (Ockto). Handshakes run in
//! their own tasks; a rejected one is logged and counted, and never reaches
//! the router (the client sees the TLS alert).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// PEM material of a mutual-TLS listener.
#[derive(Clone)]
pub struct MtlsPem {
    /// The server's certificate chain.
    pub cert: String,
    pub key: String,
    /// CA whose certificates clients must present.
    pub client_ca: String,
}

impl std::fmt::Debug for MtlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MtlsPem { .. }")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: no PEM certificate found")]
    NoCertificate(&'static str),
    #[error("server key: no PEM private key found")]
    NoKey,
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// Handshakes refused so far (no or untrusted client certificate).
#[derive(Debug, Default)]
pub struct Rejections {
    count: AtomicU64,
    last: std::sync::Mutex<Option<String>>,
}

impl Rejections {
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn last(&self) -> Option<String> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    fn add(&self, why: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.last.lock() {
            *l = Some(why);
        }
    }
}

fn certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(Error::NoCertificate(what));
    }
    Ok(certs)
}

/// A rustls server config that requires a client certificate issued by `client_ca`.
pub fn server_config(pem: &MtlsPem) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&pem.client_ca, "client CA")? {
        roots
            .add(ca)
            .map_err(|e| Error::Rustls(format!("client CA: {e}")))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| Error::Rustls(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).map_err(|_| Error::NoKey)?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&pem.cert, "server certificate")?, key)
        .map_err(|e| Error::Rustls(e.to_string()))?;
    Ok(Arc::new(config))
}

/// An axum listener yielding only connections whose TLS handshake succeeded.
pub struct MtlsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl MtlsListener {
    pub fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        rejections: Arc<Rejections>,
    ) -> std::io::Result<MtlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "sim tls: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small writes go out at once (no delayed-ACK stall).
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let conn_tx = tx.clone();
                let rejections = rejections.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = conn_tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "sim tls: handshake rejected");
                            rejections.add(e.to_string());
                        }
                        Err(_) => rejections.add("handshake timed out".into()),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(MtlsListener { rx, local })
    }
}

impl axum::serve::Listener for MtlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
