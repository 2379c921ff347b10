//! The fleet's PKI: a CA, the coordinator's server certificate, one client certificate per site.
//!
//! A site certificate's common name is the site id; the coordinator takes the site's identity
//! from it and from nothing else. Keys and certificates are written with mode 0600.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use modori_shared::domain::SiteId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use thiserror::Error;

/// Site certificates are valid this long; renewal happens well before.
pub const SITE_CERT_VALIDITY_DAYS: i64 = 397;
/// The CA is valid this long.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// Organisation name in every certificate of the fleet.
const ORG: &str = "Modori fleet";

#[derive(Debug, Error)]
pub enum PkiError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} already exists; refusing to overwrite a CA (remove it first if you mean it)")]
    Exists { path: PathBuf },
    #[error("invalid site: {0}")]
    Site(#[from] modori_shared::domain::DomainError),
}

pub struct PkiPaths {
    pub dir: PathBuf,
}

impl PkiPaths {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn site_cert(&self, site: &SiteId) -> PathBuf {
        self.dir.join("sites").join(format!("{site}.pem"))
    }
    pub fn site_key(&self, site: &SiteId) -> PathBuf {
        self.dir.join("sites").join(format!("{site}.key"))
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORG);
    dn.push(DnType::CommonName, common);
    dn
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // A little slack before "now" tolerates clocks at sites that run slightly behind.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
}

/// Creates the CA and the coordinator's server certificate (SANs: `server_names`).
pub fn init(paths: &PkiPaths, server_names: &[String]) -> Result<(), PkiError> {
    if paths.ca_key().exists() {
        return Err(PkiError::Exists {
            path: paths.ca_key(),
        });
    }
    let ca_key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name("Modori fleet CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, CA_VALIDITY_DAYS);
    let ca_cert = params.self_signed(&ca_key)?;
    write_private(&paths.ca_key(), &ca_key.serialize_pem())?;
    write_private(&paths.ca_cert(), &ca_cert.pem())?;
    issue_server(paths, server_names)
}

fn issuer(paths: &PkiPaths) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key = KeyPair::from_pem(&read(&paths.ca_key())?)?;
    Ok(Issuer::from_ca_cert_pem(&read(&paths.ca_cert())?, key)?)
}

/// (Re)issues the coordinator's server certificate.
pub fn issue_server(paths: &PkiPaths, server_names: &[String]) -> Result<(), PkiError> {
    let issuer = issuer(paths)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name("modori-coordinator");
    params.subject_alt_names = server_names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut params, SITE_CERT_VALIDITY_DAYS);
    let cert = params.signed_by(&key, &issuer)?;
    write_private(&paths.server_key(), &key.serialize_pem())?;
    write_private(&paths.server_cert(), &cert.pem())
}

/// Issues a site's client certificate and key; returns (cert path, key path).
pub fn issue_site(paths: &PkiPaths, site: &SiteId) -> Result<(PathBuf, PathBuf), PkiError> {
    issue_site_valid_for(paths, site, SITE_CERT_VALIDITY_DAYS)
}

fn site_params(site: &SiteId, days: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(site.as_str());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut params, days);
    params
}

/// Like [`issue_site`], valid for `days` (a short life tests renewal).
pub fn issue_site_valid_for(
    paths: &PkiPaths,
    site: &SiteId,
    days: i64,
) -> Result<(PathBuf, PathBuf), PkiError> {
    let issuer = issuer(paths)?;
    let key = KeyPair::generate()?;
    let cert = site_params(site, days).signed_by(&key, &issuer)?;
    let (cert_path, key_path) = (paths.site_cert(site), paths.site_key(site));
    write_private(&key_path, &key.serialize_pem())?;
    write_private(&cert_path, &cert.pem())?;
    Ok((cert_path, key_path))
}

/// Signs a site's renewal request. The name comes from the authenticated connection, never
/// from the request: a site can only renew its own certificate. Returns the certificate DER.
pub fn sign_renewal(
    ca_cert: &Path,
    ca_key: &Path,
    site: &SiteId,
    csr_der: &[u8],
) -> Result<Vec<u8>, PkiError> {
    let key = KeyPair::from_pem(&read(ca_key)?)?;
    let issuer = Issuer::from_ca_cert_pem(&read(ca_cert)?, key)?;
    let mut csr = rcgen::CertificateSigningRequestParams::from_der(&csr_der.to_vec().into())?;
    csr.params = site_params(site, SITE_CERT_VALIDITY_DAYS);
    Ok(csr.signed_by(&issuer)?.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn issues_files_with_0600_and_refuses_to_overwrite_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let paths = PkiPaths::new(dir.path());
        init(&paths, &["localhost".into(), "127.0.0.1".into()]).unwrap();
        let site = SiteId::new("fukuoka").unwrap();
        let (cert, key) = issue_site(&paths, &site).unwrap();
        for p in [
            paths.ca_key(),
            paths.ca_cert(),
            paths.server_key(),
            cert,
            key,
        ] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        assert!(matches!(init(&paths, &[]), Err(PkiError::Exists { .. })));
    }
}
