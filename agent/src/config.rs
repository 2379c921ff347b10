//! The agent's configuration file (`configs/sites/*.toml`). Every key is documented here and in
//! `configs/README.md`; unknown keys are refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use modori_shared::domain::{Coordinates, Site, SiteId};
use modori_shared::sync::{
    BatchLimits, BATCH_BYTES_MAX_DEFAULT, BATCH_OPS_MAX_DEFAULT, INFLIGHT_BATCHES_MAX_DEFAULT,
    ITEM_PAYLOAD_BYTES_MAX, RETRANSMIT_AFTER_MS_DEFAULT,
};
use modori_shared::wire::{MAX_FRAME_BYTES, PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
use serde::{Deserialize, Serialize};

use crate::devices::printer::PrinterConfig;
use crate::devices::scanner::ScannerConfig;
use crate::stations::StationConfig;
use modori_runtime::config_file::{self, ConfigError};
pub use modori_runtime::config_file::{CapabilityName, PrivacySection};
use modori_runtime::tls::{self, LinkTiming, TlsError};

/// Environment variables starting with this override keys, e.g.
/// `MODORI_AGENT_SYNC__BATCH_OPS_MAX=100`.
pub const ENV_PREFIX: &str = "MODORI_AGENT_";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub site: SiteSection,
    pub coordinator: CoordinatorSection,
    pub tls: TlsSection,
    pub storage: StorageSection,
    #[serde(default)]
    pub sync: SyncSection,
    #[serde(default)]
    pub ctl: CtlSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Serial barcode scanners (`[[scanners]]`).
    #[serde(default)]
    pub scanners: Vec<ScannerConfig>,
    /// ZPL label printers (`[[printers]]`, `type = "zpl"`).
    #[serde(default)]
    pub printers: Vec<PrinterConfig>,
    /// Stations: a scanner, an optional printer and a workflow (`[[stations]]`).
    #[serde(default)]
    pub stations: Vec<StationConfig>,
    #[serde(default)]
    pub privacy: PrivacySection,
}

/// Who this site is. Must agree with the coordinator's sites file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSection {
    /// Site id: lowercase letters, digits and `-`. Must equal the certificate's common name.
    pub id: String,
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    /// Extra capabilities: `testing` (electronics), `refurbish`, `recycle`, `resale`,
    /// `return_to_vendor`.
    #[serde(default)]
    pub capabilities: Vec<CapabilityName>,
    /// Units the site can receive per day; routing avoids a full site.
    pub daily_capacity_units: u32,
    /// The site's offset from UTC in minutes, for the times `ctl status` shows. Default 540:
    /// Asia/Tokyo (+09:00, no daylight saving).
    #[serde(default = "utc_offset_minutes_default")]
    pub utc_offset_minutes: i32,
}

fn utc_offset_minutes_default() -> i32 {
    UTC_OFFSET_MINUTES_JAPAN
}

/// Japan Standard Time, +09:00.
pub const UTC_OFFSET_MINUTES_JAPAN: i32 = 9 * 60;
/// Most replicas a site lists besides `coordinator.address`: a fleet runs a handful.
pub const COORDINATOR_REPLICAS_MAX: usize = 16;

/// Offsets beyond ±14 h exist nowhere.
pub const UTC_OFFSET_MINUTES_MAX: i32 = 14 * 60;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorSection {
    /// UDP address of the coordinator's QUIC endpoint: the first one tried.
    pub address: SocketAddr,
    /// The other coordinators serving the same database (replicas), tried in turn after
    /// `address` whenever a connection fails or a link ends in an error; at most
    /// `COORDINATOR_REPLICAS_MAX`, all of `address`'s family (IPv4 or IPv6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<SocketAddr>,
    /// Name the coordinator's certificate is checked against (a SAN in it); every replica
    /// presents it.
    pub server_name: String,
}

impl CoordinatorSection {
    /// Every address, in the order they are tried.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        std::iter::once(self.address)
            .chain(self.replicas.iter().copied())
            .collect()
    }
}

/// PEM files. Relative paths are relative to the config file's folder.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The fleet CA that signed the coordinator's certificate.
    pub ca_cert: PathBuf,
    /// This site's certificate, issued by `modori-coordinator pki issue-site`. Renewed in place
    /// over the link, so the folder must be writable by the service.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Ask the coordinator for a new certificate when this one expires within this many days.
    /// Default 30; 0 turns renewal off.
    #[serde(default = "renew_before_days_default")]
    pub renew_before_days: u32,
}

impl TlsSection {
    /// The QUIC client config from the PEM files this section names.
    pub fn client_config(&self, timing: LinkTiming) -> Result<quinn::ClientConfig, TlsError> {
        let ca = tls::load_certs("CA certificate", &self.ca_cert)?;
        let chain = tls::load_certs("site certificate", &self.cert)?;
        let key = tls::load_key("site key", &self.key)?;
        tls::client_config(&ca, chain, key, timing)
    }
}

fn renew_before_days_default() -> u32 {
    30
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Folder of the site database (`agent.db`). Relative to the config file's folder.
    pub data_dir: PathBuf,
    /// Cap on the database size, in bytes. Past it the station refuses new work with a clear
    /// error instead of filling the disk; what is stored stays intact. Off when absent.
    #[serde(default)]
    pub database_bytes_max: Option<u64>,
    /// Acknowledged ops, of the current epoch and of the epochs earlier starts retired, are
    /// kept this many days, then deleted. Keep it longer than the coordinator's backup interval:
    /// a coordinator restored from a backup asks the sites for what it lacks. Default 30; 0
    /// keeps them for ever.
    #[serde(default = "outbox_keep_days_default")]
    pub outbox_keep_days: u32,
}

fn outbox_keep_days_default() -> u32 {
    30
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    /// Most ops in one batch. Default 512.
    pub batch_ops_max: usize,
    /// Most payload bytes in one batch. Default 256 KiB; at most a quarter of the 1 MiB frame.
    pub batch_bytes_max: usize,
    /// Batches sent and not yet acknowledged. Default 4.
    pub inflight_batches_max: usize,
    /// Unacknowledged batches are sent again after this long without an ack. Default 30 000 ms.
    pub retransmit_after_ms: u64,
    /// First reconnect delay; doubles (with jitter) up to the maximum. Default 200 ms.
    pub reconnect_backoff_min_ms: u64,
    /// Default 30 000 ms.
    pub reconnect_backoff_max_ms: u64,
    /// QUIC keep-alive ping interval. Default 10 s.
    pub keepalive_interval_seconds: u64,
    /// A silent link is declared dead after this long. Default 30 s.
    pub idle_timeout_seconds: u64,
    /// Highest protocol version offered. Default: this build's newest. Pin it one lower to
    /// keep a site on the previous version while the coordinator is upgraded first.
    pub protocol_version_max: u16,
}

impl Default for SyncSection {
    fn default() -> Self {
        Self {
            batch_ops_max: BATCH_OPS_MAX_DEFAULT,
            batch_bytes_max: BATCH_BYTES_MAX_DEFAULT,
            inflight_batches_max: INFLIGHT_BATCHES_MAX_DEFAULT,
            retransmit_after_ms: RETRANSMIT_AFTER_MS_DEFAULT,
            reconnect_backoff_min_ms: 200,
            reconnect_backoff_max_ms: 30_000,
            keepalive_interval_seconds: 10,
            idle_timeout_seconds: 30,
            protocol_version_max: PROTOCOL_VERSION,
        }
    }
}

impl SyncSection {
    pub fn limits(&self) -> BatchLimits {
        BatchLimits {
            ops_max: self.batch_ops_max,
            bytes_max: self.batch_bytes_max,
            inflight_batches_max: self.inflight_batches_max,
            retransmit_after_ms: self.retransmit_after_ms,
        }
    }

    pub fn timing(&self) -> LinkTiming {
        LinkTiming {
            keepalive_interval: Some(Duration::from_secs(self.keepalive_interval_seconds)),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CtlSection {
    /// Unix socket for `modori-agent ctl`. Default: `ctl.sock` in the data dir.
    pub socket: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// TCP address of the Prometheus `/metrics` endpoint, e.g. `127.0.0.1:9464`. Off when absent.
    pub listen: Option<SocketAddr>,
}

impl AgentConfig {
    /// Loads and validates `path` with environment overrides; relative paths are resolved.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = config_file::load(path, ENV_PREFIX)?;
        config.validate(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.tls.ca_cert,
            &mut self.tls.cert,
            &mut self.tls.key,
            &mut self.storage.data_dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = self.ctl.socket.as_mut().filter(|p| p.is_relative()) {
            *p = base.join(&*p);
        }
    }

    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        };
        self.site_def().map_err(|e| bad("site", e.to_string()))?;
        if self.site.utc_offset_minutes.abs() > UTC_OFFSET_MINUTES_MAX {
            return Err(bad(
                "site.utc_offset_minutes",
                format!("must be within ±{UTC_OFFSET_MINUTES_MAX} minutes"),
            ));
        }
        for (i, d) in self.scanners.iter().enumerate() {
            d.validate()
                .map_err(|e| bad(&format!("scanners[{i}].{}", e.key), e.message))?;
        }
        for (i, d) in self.printers.iter().enumerate() {
            d.validate()
                .map_err(|e| bad(&format!("printers[{i}].{}", e.key), e.message))?;
        }
        let names = |v: Vec<&String>| v.into_iter().cloned().collect::<Vec<_>>();
        let scanners = names(self.scanners.iter().map(|d| &d.name).collect());
        let printers = names(self.printers.iter().map(|d| &d.name).collect());
        for (what, list) in [("scanners", &scanners), ("printers", &printers)] {
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = list.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(bad(what, format!("two devices are named {dup:?}")));
            }
        }
        crate::stations::validate(&self.stations, &scanners, &printers)
            .map_err(|(key, message)| bad(&key, message))?;
        let c = &self.coordinator;
        if c.replicas.len() > COORDINATOR_REPLICAS_MAX {
            return Err(bad(
                "coordinator.replicas",
                format!("at most {COORDINATOR_REPLICAS_MAX} addresses"),
            ));
        }
        let all = c.addresses();
        for (i, a) in c.replicas.iter().enumerate() {
            if a.is_ipv6() != c.address.is_ipv6() {
                return Err(bad(
                    &format!("coordinator.replicas[{i}]"),
                    format!("{a} is not of the same family (IPv4 or IPv6) as coordinator.address {}: one link binds one family", c.address),
                ));
            }
            if all.iter().filter(|b| *b == a).count() > 1 {
                return Err(bad(
                    &format!("coordinator.replicas[{i}]"),
                    format!("{a} is listed twice"),
                ));
            }
        }
        let s = &self.sync;
        if s.batch_ops_max == 0 || s.batch_ops_max > 10_000 {
            return Err(bad("sync.batch_ops_max", "must be 1..=10000".into()));
        }
        let bytes_ok = ITEM_PAYLOAD_BYTES_MAX..=MAX_FRAME_BYTES / 4;
        if !bytes_ok.contains(&s.batch_bytes_max) {
            return Err(bad(
                "sync.batch_bytes_max",
                format!("must be {}..={}", bytes_ok.start(), bytes_ok.end()),
            ));
        }
        if s.inflight_batches_max == 0 || s.inflight_batches_max > 64 {
            return Err(bad("sync.inflight_batches_max", "must be 1..=64".into()));
        }
        if s.reconnect_backoff_min_ms == 0
            || s.reconnect_backoff_min_ms > s.reconnect_backoff_max_ms
        {
            return Err(bad(
                "sync.reconnect_backoff_min_ms",
                "must be at least 1 and at most reconnect_backoff_max_ms".into(),
            ));
        }
        if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION).contains(&s.protocol_version_max) {
            return Err(bad(
                "sync.protocol_version_max",
                format!("this build speaks {PROTOCOL_VERSION_MIN}..={PROTOCOL_VERSION}"),
            ));
        }
        if s.keepalive_interval_seconds == 0
            || s.keepalive_interval_seconds >= s.idle_timeout_seconds
        {
            return Err(bad(
                "sync.keepalive_interval_seconds",
                "must be at least 1 and below idle_timeout_seconds".into(),
            ));
        }
        Ok(())
    }

    pub fn site_id(&self) -> SiteId {
        // Checked by validate().
        SiteId::new(self.site.id.clone()).unwrap_or_else(|e| panic!("unvalidated config: {e}"))
    }

    pub fn site_def(&self) -> Result<Site, modori_shared::domain::DomainError> {
        Ok(Site {
            id: SiteId::new(self.site.id.clone())?,
            name: self.site.name.clone(),
            location: Coordinates::new(self.site.latitude, self.site.longitude)?,
            capabilities: self.site.capabilities.iter().map(|c| (*c).into()).collect(),
            daily_capacity_units: self.site.daily_capacity_units,
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.storage.data_dir.join("agent.db")
    }

    pub fn ctl_socket(&self) -> PathBuf {
        self.ctl
            .socket
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("ctl.sock"))
    }
}
