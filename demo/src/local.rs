//! A whole fleet on one machine: certificates and configs for a coordinator and its agents on
//! loopback. Used by the demo, the tests and the load harness.

use std::net::SocketAddr;
use std::path::Path;

use modori_agent::config::{
    AgentConfig, CoordinatorSection, CtlSection, MetricsSection, SiteSection, StorageSection,
    SyncSection, TlsSection,
};
use modori_shared::domain::Site;

use modori_coordinator::config::{
    CoordinatorConfig, FleetSection, HttpSection, QuicSection, StorageSection as CoordStorage,
    SyncSection as CoordSync, TlsSection as CoordTls, CONNECTIONS_MAX_DEFAULT,
};
use modori_coordinator::pki::{self, PkiError, PkiPaths};

/// Creates the CA, the server certificate (for `localhost` and 127.0.0.1) and each site's
/// certificate, where missing.
pub fn ensure_pki(pki: &PkiPaths, sites: &[Site]) -> Result<(), PkiError> {
    if !pki.ca_cert().exists() {
        pki::init(pki, &["localhost".into(), "127.0.0.1".into()])?;
    }
    for site in sites {
        if !pki.site_cert(&site.id).exists() {
            pki::issue_site(pki, &site.id)?;
        }
    }
    Ok(())
}

/// A coordinator on loopback (QUIC on an ephemeral port) keeping its database in `dir`.
pub fn coordinator_config(dir: &Path, pki: &PkiPaths, http: SocketAddr) -> CoordinatorConfig {
    CoordinatorConfig {
        quic: QuicSection {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            connections_max: CONNECTIONS_MAX_DEFAULT,
        },
        http: HttpSection::new(http),
        tls: CoordTls {
            ca_cert: pki.ca_cert(),
            cert: pki.server_cert(),
            key: pki.server_key(),
            ca_key: Some(pki.ca_key()),
            revoked_sites: Vec::new(),
            revoked_fingerprints: Vec::new(),
        },
        storage: CoordStorage {
            data_dir: dir.to_owned(),
            url: None,
            ca_file: None,
        },
        fleet: FleetSection {
            sites_file: "configs/sites.toml".into(),
            stores_file: "configs/stores.toml".into(),
        },
        sync: CoordSync::default(),
        disposition_rules: Vec::new(),
        privacy: Default::default(),
        valuation: Default::default(),
        resale: Default::default(),
        policy: Default::default(),
        merchants: Vec::new(),
        rebalance: Default::default(),
        billing: Default::default(),
        consolidation: Default::default(),
        returns: Default::default(),
        api_keys: Vec::new(),
        alerts: Default::default(),
        notifications: Default::default(),
        mail: None,
        line: None,
    }
}

/// An agent for `site` keeping its database in `sites_dir/<site>`.
pub fn agent_config(
    sites_dir: &Path,
    pki: &PkiPaths,
    site: &Site,
    coordinator: SocketAddr,
) -> AgentConfig {
    let dir = sites_dir.join(site.id.as_str());
    AgentConfig {
        site: SiteSection {
            id: site.id.to_string(),
            name: site.name.clone(),
            latitude: site.location.lat(),
            longitude: site.location.lon(),
            capabilities: site.capabilities.iter().map(|c| (*c).into()).collect(),
            daily_capacity_units: site.daily_capacity_units,
            utc_offset_minutes: modori_agent::config::UTC_OFFSET_MINUTES_JAPAN,
        },
        coordinator: CoordinatorSection {
            address: coordinator,
            replicas: Vec::new(),
            server_name: "localhost".into(),
        },
        tls: TlsSection {
            ca_cert: pki.ca_cert(),
            cert: pki.site_cert(&site.id),
            key: pki.site_key(&site.id),
            renew_before_days: 30,
        },
        storage: StorageSection {
            data_dir: dir.clone(),
            database_bytes_max: None,
            outbox_keep_days: 30,
        },
        sync: SyncSection::default(),
        ctl: CtlSection {
            socket: Some(dir.join("ctl.sock")),
        },
        metrics: MetricsSection::default(),
        scanners: Vec::new(),
        printers: Vec::new(),
        stations: Vec::new(),
        privacy: Default::default(),
    }
}
