//! Revoked sites and certificates, enforced inside the TLS handshake and replaceable while the
//! coordinator runs (`SIGHUP` reloads them from the config file).
//!
//! A site can be revoked whole (its id: every certificate it holds is refused) or one
//! certificate at a time (its SHA-256 fingerprint: the replaced certificate of a site whose new
//! one stays valid).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use modori_shared::domain::SiteId;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RevocationError {
    #[error("tls.revoked_sites[{index}]: {source}")]
    Site {
        index: usize,
        #[source]
        source: modori_shared::domain::DomainError,
    },
    #[error(
        "tls.revoked_fingerprints[{index}]: {value:?} is not 64 hex digits (a SHA-256 fingerprint)"
    )]
    Fingerprint { index: usize, value: String },
}

/// What is refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    pub sites: HashSet<SiteId>,
    pub fingerprints: HashSet<[u8; 32]>,
}

impl Revoked {
    pub fn parse(sites: &[String], fingerprints: &[String]) -> Result<Self, RevocationError> {
        let sites = sites
            .iter()
            .enumerate()
            .map(|(index, s)| {
                SiteId::new(s.clone()).map_err(|source| RevocationError::Site { index, source })
            })
            .collect::<Result<_, _>>()?;
        let fingerprints = fingerprints
            .iter()
            .enumerate()
            .map(|(index, f)| {
                parse_fingerprint(f).ok_or_else(|| RevocationError::Fingerprint {
                    index,
                    value: f.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            sites,
            fingerprints,
        })
    }
}

fn parse_fingerprint(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.replace(':', "");
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// SHA-256 of a certificate's DER, as lowercase hex: what `tls.revoked_fingerprints` lists.
pub fn fingerprint_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The current list, shared by the verifier and whoever replaces it.
#[derive(Debug, Default)]
pub struct Revocations {
    current: RwLock<Revoked>,
}

impl Revocations {
    pub fn new(revoked: Revoked) -> Self {
        Self {
            current: RwLock::new(revoked),
        }
    }

    pub fn replace(&self, revoked: Revoked) {
        if let Ok(mut current) = self.current.write() {
            *current = revoked;
        }
    }

    pub fn is_site_revoked(&self, site: &SiteId) -> bool {
        self.current
            .read()
            .map(|c| c.sites.contains(site))
            .unwrap_or(true)
    }

    /// Why `cert` is refused, if it is.
    pub fn check(&self, cert: &[u8]) -> Result<(), String> {
        let current = self
            .current
            .read()
            .map_err(|_| "revocation list unavailable".to_owned())?;
        let digest: [u8; 32] = Sha256::digest(cert).into();
        if current.fingerprints.contains(&digest) {
            return Err(format!("certificate {} is revoked", fingerprint_hex(cert)));
        }
        match site_from_der(cert) {
            Ok(site) if current.sites.contains(&site) => Err(format!("site {site} is revoked")),
            _ => Ok(()),
        }
    }
}

/// Wraps the CA verifier: a certificate that chains to the fleet CA is still refused when it
/// is revoked, so the handshake itself fails and no application data is exchanged.
#[derive(Debug)]
pub struct RevokingVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub revocations: Arc<Revocations>,
}

impl ClientCertVerifier for RevokingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if let Err(reason) = self.revocations.check(end_entity.as_ref()) {
            tracing::warn!(reason, "refusing a revoked client certificate");
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The site named by a certificate's common name.
pub fn site_from_der(der: &[u8]) -> Result<SiteId, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("unparsable client certificate: {e}"))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or("client certificate has no common name")?;
    SiteId::new(cn).map_err(|e| format!("client certificate common name: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_entries_are_named() {
        let err = Revoked::parse(&["Osaka".into()], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.revoked_sites[0]"), "{err}");
        let err = Revoked::parse(&[], &["abc".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.revoked_fingerprints[0]"), "{err}");
        let ok = Revoked::parse(&["osaka".into()], &["ab".repeat(32)]).unwrap();
        assert_eq!((ok.sites.len(), ok.fingerprints.len()), (1, 1));
    }
}
