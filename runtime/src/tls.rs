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
    /// NAT boxes, so the path stays open. `None`: this end never pings, and counts on the
    /// other's pings (the coordinator, whose sites ping).
    pub keepalive_interval: Option<Duration>,
    /// A link silent this long is dead. With keep-alive running, this is the bound on how long
    /// a cut link goes unnoticed.
    pub idle_timeout: Duration,
}

/// Which end of a link a transport is for: the site opens the link's one stream, the
/// coordinator accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEnd {
    Site,
    Coordinator,
}

/// Bidirectional streams a site may open on one link: the sync stream. quinn keeps state for
/// every stream the peer may open from the moment a connection exists (its default is 100 of
/// each kind), which for a thousand idle links is megabytes of tables for streams never used.
pub const SITE_STREAMS_MAX: u32 = 1;

pub fn transport_config(
    timing: LinkTiming,
    end: LinkEnd,
) -> Result<quinn::TransportConfig, TlsError> {
    let mut transport = quinn::TransportConfig::default();
    // What the peer may open: the coordinator opens none, the site its one sync stream.
    let peer_bidi = match end {
        LinkEnd::Coordinator => SITE_STREAMS_MAX,
        LinkEnd::Site => 0,
    };
    transport.max_concurrent_bidi_streams(quinn::VarInt::from_u32(peer_bidi));
    transport.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    transport.keep_alive_interval(timing.keepalive_interval);
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
    config.transport_config(Arc::new(transport_config(timing, LinkEnd::Site)?));
    Ok(config)
}

/// Whole days until the certificate in `path` expires (negative once it has).
pub fn cert_days_left(path: &Path, now_unix: i64) -> Result<i64, TlsError> {
    let certs = load_certs("site certificate", path)?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(certs[0].as_ref()).map_err(|e| TlsError::Pem {
            what: "site certificate",
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    Ok((cert.validity().not_after.timestamp() - now_unix).div_euclid(86_400))
}

/// The subject common name of the first certificate in `path`: the site id the coordinator
/// reads from it.
pub fn cert_common_name(what: &'static str, path: &Path) -> Result<String, TlsError> {
    let certs = load_certs(what, path)?;
    let pem = |message: String| TlsError::Pem {
        what,
        path: path.to_owned(),
        message,
    };
    let (_, cert) =
        x509_parser::parse_x509_certificate(certs[0].as_ref()).map_err(|e| pem(e.to_string()))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .ok_or_else(|| pem("has no common name".into()))?;
    cn.as_str()
        .map(str::to_owned)
        .map_err(|e| pem(format!("common name: {e}")))
}

/// A new key for this site and a signing request for it: (key PEM, CSR DER).
pub fn renewal_request(site: &str) -> Result<(String, Vec<u8>), TlsError> {
    let fail = |e: rcgen::Error| TlsError::Quic(format!("renewal request: {e}"));
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, site);
    let csr = params.serialize_request(&key).map_err(fail)?;
    Ok((key.serialize_pem(), csr.der().to_vec()))
}

/// Checks a renewed certificate (issued to `site`, for the key we generated) and puts it and
/// its key in place of the old ones, each by an atomic rename of a 0600 file.
pub fn install_renewed(
    cert_path: &Path,
    key_path: &Path,
    site: &str,
    key_pem: &str,
    cert_der: &[u8],
) -> Result<i64, TlsError> {
    let bad = |message: String| TlsError::Pem {
        what: "renewed certificate",
        path: cert_path.to_owned(),
        message,
    };
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| bad(e.to_string()))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or("");
    if cn != site {
        return Err(bad(format!("issued to {cn:?}, not {site:?}")));
    }
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| bad(e.to_string()))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(bad("it is not for the key this site generated".into()));
    }
    let not_after = cert.validity().not_after.timestamp();
    let cert_pem = pem::encode(&pem::Pem::new("CERTIFICATE", cert_der.to_vec()));
    write_private_atomic(key_path, key_pem)
        .map_err(|e| bad(format!("{}: {e}", key_path.display())))?;
    write_private_atomic(cert_path, &cert_pem)
        .map_err(|e| bad(format!("{}: {e}", cert_path.display())))?;
    Ok(not_after)
}

fn write_private_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("renewing");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
