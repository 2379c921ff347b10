//! TLS material for the QUIC link: PEM loading and the client (agent) configuration.
//!
//! One crypto provider for the whole workspace: ring. It is passed explicitly to every builder
//! and installed as the process default once at start ([`install_crypto_provider`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// ALPN protocol id of the agent ↔ coordinator link.
pub const ALPN: &[u8] = b"modori";

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{what} {path}: {message}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{what} {path} holds no certificate")]
    Empty { what: &'static str, path: PathBuf },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("QUIC TLS configuration: {0}")]
    Quic(String),
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process-wide default. Idempotent: a second call is a no-op.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

pub fn load_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        what,
        path: path.to_owned(),
        message: e.to_string(),
    })
}

pub fn root_store(ca: &[CertificateDer<'static>]) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca {
        roots.add(cert.clone())?;
    }
    Ok(roots)
}

/// QUIC link timing, shared by both ends.
#[derive(Clone, Copy, Debug)]
pub struct LinkTiming {
    /// Ping interval on an otherwise idle link. Under the ~30 s UDP mapping lifetime of common
    /// NAT boxes, so the path stays open.
    pub keepalive_interval: Duration,
    /// A link silent this long is dead. With keep-alive running, this is the bound on how long
    /// a cut link goes unnoticed.
    pub idle_timeout: Duration,
}

pub fn transport_config(timing: LinkTiming) -> Result<quinn::TransportConfig, TlsError> {
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(timing.keepalive_interval));
    transport.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(timing.idle_timeout)
            .map_err(|e| TlsError::Quic(format!("idle timeout: {e}")))?,
    ));
    Ok(transport)
}

/// Client configuration: trusts only `ca`, presents the site's certificate. 0-RTT stays off
/// (rustls' default `enable_early_data = false`): a replayable first flight must never carry an
/// op or a command.
pub fn client_config(
    ca: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    timing: LinkTiming,
) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(root_store(ca)?)
        .with_client_auth_cert(chain, key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_early_data = false;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport_config(timing)?));
    Ok(config)
}
