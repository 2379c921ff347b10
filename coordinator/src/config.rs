//! The coordinator's configuration file (`configs/coordinator.toml`). Every key is documented
//! here and in `configs/README.md`; unknown keys are refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use modori_runtime::config_file::PrivacySection;
use modori_runtime::config_file::{self, ConfigError};
use modori_runtime::tls::LinkTiming;
use modori_shared::domain::{Disposition, Grade};
use modori_shared::sync::{
    BatchLimits, BATCH_BYTES_MAX_DEFAULT, BATCH_OPS_MAX_DEFAULT, INFLIGHT_BATCHES_MAX_DEFAULT,
    RETRANSMIT_AFTER_MS_DEFAULT,
};
use serde::{Deserialize, Serialize};

use crate::store::pg::{Backend, PgError};

/// Environment variables starting with this override keys, e.g. `MODORI_COORD_HTTP__LISTEN`.
pub const ENV_PREFIX: &str = "MODORI_COORD_";
/// Default cap on simultaneous agent connections.
pub const CONNECTIONS_MAX_DEFAULT: usize = 2048;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    pub quic: QuicSection,
    pub http: HttpSection,
    pub tls: TlsSection,
    pub storage: StorageSection,
    pub fleet: FleetSection,
    #[serde(default)]
    pub sync: SyncSection,
    /// The rules grading stations propose dispositions by (`[[disposition_rules]]`, with
    /// `grade`, `disposition` and an optional `category`). Default: A restock, B resale,
    /// C refurbish, D recycle, X dispose.
    #[serde(default)]
    pub disposition_rules: Vec<RuleEntry>,
    #[serde(default)]
    pub privacy: PrivacySection,
    /// Prices and costs of the disposition-by-value model (see `valuation.rs`).
    #[serde(default)]
    pub valuation: crate::valuation::ValuationConfig,
    /// Resale channels and the markdown schedule (see `listings.rs`).
    #[serde(default)]
    pub resale: crate::listings::ResaleConfig,
    /// The return policy (see `policy.rs`).
    #[serde(default)]
    pub policy: crate::policy::PolicyConfig,
    /// Restock rebalancing's gains and costs (see `rebalance.rs`).
    #[serde(default)]
    pub rebalance: crate::rebalance::RebalanceConfig,
    /// When store drop-offs leave in a tote (see `store/totes.rs`).
    #[serde(default)]
    pub consolidation: crate::store::totes::ConsolidationConfig,
    /// Yen per billable activity (see `store/billing.rs`).
    #[serde(default)]
    pub billing: crate::store::billing::BillingRates,
    /// Merchants' webhooks (`[[merchants]]` with `id`, `webhook_url`, `webhook_secret`).
    #[serde(default)]
    pub merchants: Vec<crate::webhooks::MerchantEntry>,
    #[serde(default)]
    pub returns: ReturnsSection,
    /// API keys known from the config (`[[api_keys]]` with `scope`, `sha256` and an optional
    /// `label`): the bootstrap keys, before any is made with `keys create` or the API. Only
    /// the SHA-256 of each key is written here.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyEntry>,
    /// Thresholds of the dashboard's alerts.
    #[serde(default)]
    pub alerts: AlertsSection,
    /// The outbox of customer messages (see `notify.rs`).
    #[serde(default)]
    pub notifications: crate::notify::NotificationsSection,
    /// The SMTP server customers' emails leave through (see `notify/mail.rs`); none: no email.
    #[serde(default)]
    pub mail: Option<crate::notify::mail::MailSection>,
    /// The LINE official account pushes come from (see `notify/line.rs`); none: no LINE.
    #[serde(default)]
    pub line: Option<crate::notify::line::LineSection>,
}

/// Longest `alerts.offline_minutes`, `alerts.device_down_minutes` and
/// `alerts.renotify_minutes` accepted (a week).
pub const ALERT_MINUTES_MAX: u32 = 7 * 24 * 60;
/// Default of `alerts.renotify_minutes`: a raised alert nobody acted on is told again after
/// half a working day.
pub const RENOTIFY_MINUTES_DEFAULT: u32 = 4 * 60;
/// Most addresses in `alerts.email_to`: one mail is queued per address and event.
pub const ALERT_RECIPIENTS_MAX: usize = 20;

/// When the dashboard raises an alert (`[alerts]`). An alert is listed, highlighted on the
/// site it concerns, and counted in `modori_alerts`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// A site offline (no link) longer than this, in minutes. Default 5.
    pub offline_minutes: u32,
    /// A site this many ops behind (recorded there, not applied here). Default 1000.
    pub lag_ops: u64,
    /// A site behind whose oldest unapplied op is older than this, in seconds. Default 300.
    pub lag_seconds: u64,
    /// More units than this waiting in a site's quarantine (unidentified). Default 50.
    pub quarantine_max: u64,
    /// A scanner or printer of a site disconnected longer than this, in minutes (0: at once).
    /// Default 2.
    pub device_down_minutes: u32,
    /// Customers whose abuse score (0-100) reaches this are flagged. Default 60.
    pub abuse_score_min: u32,
    /// Who is mailed when an alert is raised, reminded of or cleared (through `[mail]`, which
    /// must then be set). Default none.
    pub email_to: Vec<String>,
    /// A Slack-compatible incoming webhook posted `{"text": …}` for the same events. Default
    /// none.
    pub webhook_url: Option<String>,
    /// An alert still raised, not acknowledged or muted, is told again after this many
    /// minutes since it was last told (0: never again while it lasts). Default 240.
    pub renotify_minutes: u32,
    /// The language mails and webhook posts are written in: `ja` or `en`, from the same texts
    /// as the ops pages. Default `ja`.
    pub language: AlertLanguage,
}

/// The language alert notices are written in (`[alerts] language`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AlertLanguage {
    #[default]
    Ja,
    En,
}

impl Default for AlertsSection {
    fn default() -> Self {
        Self {
            offline_minutes: 5,
            lag_ops: 1000,
            lag_seconds: 300,
            quarantine_max: 50,
            device_down_minutes: 2,
            abuse_score_min: 60,
            email_to: Vec::new(),
            webhook_url: None,
            renotify_minutes: RENOTIFY_MINUTES_DEFAULT,
            language: AlertLanguage::Ja,
        }
    }
}

impl AlertsSection {
    /// The first key out of range, and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.offline_minutes == 0 || self.offline_minutes > ALERT_MINUTES_MAX {
            return Err((
                "alerts.offline_minutes",
                format!("must be 1..={ALERT_MINUTES_MAX}"),
            ));
        }
        if self.device_down_minutes > ALERT_MINUTES_MAX {
            return Err((
                "alerts.device_down_minutes",
                format!("must be 0..={ALERT_MINUTES_MAX}"),
            ));
        }
        if self.lag_ops == 0 {
            return Err(("alerts.lag_ops", "must be at least 1".into()));
        }
        if self.lag_seconds == 0 {
            return Err(("alerts.lag_seconds", "must be at least 1".into()));
        }
        if self.abuse_score_min == 0 || self.abuse_score_min > 100 {
            return Err(("alerts.abuse_score_min", "must be 1..=100".into()));
        }
        if self.renotify_minutes > ALERT_MINUTES_MAX {
            return Err((
                "alerts.renotify_minutes",
                format!("must be 0..={ALERT_MINUTES_MAX}"),
            ));
        }
        if self.email_to.len() > ALERT_RECIPIENTS_MAX {
            return Err((
                "alerts.email_to",
                format!("at most {ALERT_RECIPIENTS_MAX} addresses"),
            ));
        }
        for to in &self.email_to {
            to.parse::<lettre::message::Mailbox>().map_err(|e| {
                (
                    "alerts.email_to",
                    format!("{to:?} is not an email address: {e}"),
                )
            })?;
        }
        if let Some(url) = &self.webhook_url {
            crate::webhooks::check_url(url).map_err(|e| ("alerts.webhook_url", e.to_string()))?;
        }
        Ok(())
    }
}

/// Shortest webhook secret accepted, in bytes: an HMAC key shorter than this is guessable.
pub const WEBHOOK_SECRET_BYTES_MIN: usize = 16;

/// Default for `returns.expire_after_days`.
pub const EXPIRE_AFTER_DAYS_DEFAULT: u32 = 30;
/// Longest `returns.expire_after_days` accepted (ten years).
pub const EXPIRE_AFTER_DAYS_MAX: u32 = 3650;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReturnsSection {
    /// A return nothing of which has been received this many days after it was registered
    /// expires: it is closed here and withdrawn at its site. Default 30.
    pub expire_after_days: u32,
}

impl Default for ReturnsSection {
    fn default() -> Self {
        Self {
            expire_after_days: EXPIRE_AFTER_DAYS_DEFAULT,
        }
    }
}

/// One bootstrap API key (`[[api_keys]]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// `ops`, `merchant:<id>` or `store:<id>` (a store of `stores.toml`).
    pub scope: String,
    /// SHA-256 of the key, 64 lowercase hex digits (`modori-coordinator keys generate`
    /// prints a key and its hash).
    pub sha256: String,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    #[serde(default)]
    pub category: Option<String>,
    pub grade: String,
    pub disposition: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuicSection {
    /// UDP address agents connect to.
    pub listen: SocketAddr,
    /// Most agent connections at once; more wait at the door. Default 2048.
    #[serde(default = "connections_max_default")]
    pub connections_max: usize,
}

fn connections_max_default() -> usize {
    CONNECTIONS_MAX_DEFAULT
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// TCP address of the HTTP API and dashboard.
    pub listen: SocketAddr,
    /// The time zone the pages show times in, an IANA name (the browser resolves it).
    /// Default `Asia/Tokyo`. The API answers in UTC whatever this says.
    #[serde(default = "time_zone_default")]
    pub time_zone: String,
    /// The PEM certificate chain to serve HTTPS with, on `listen` and `ops_listen`; with
    /// `tls_key`. Re-read on SIGHUP (the listeners stay open; new connections get the new
    /// certificate). None: plain HTTP, for loopback or behind a TLS proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// A second listener for the ops console, the store counter, key management and the
    /// metrics: when set, those answer 404 on `listen`, which keeps the customer portal,
    /// the status pages, the API and `/healthz`. None: everything on `listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_listen: Option<SocketAddr>,
    /// Where the store counters' devices reach the ops listener (`https://ops.example.jp`),
    /// for the links they open: a drop-off's QR code names the counter's page there. None:
    /// `notifications.public_base_url`, which with `ops_listen` set answers 404 for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_base_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-Proto: https` is believed (their own address as
    /// the listener sees it): a request through one is treated as served over TLS (`Secure`
    /// cookies, HSTS). Any other client's header is ignored. At most
    /// `TRUSTED_PROXIES_MAX`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// Longest `http.ops_base_url`, in bytes.
pub const OPS_BASE_URL_BYTES_MAX: usize = 256;
/// Most `http.trusted_proxies` entries (each request is checked against every one).
pub const TRUSTED_PROXIES_MAX: usize = 64;

/// The zone of the sites and stores the pages are read by.
pub const TIME_ZONE_DEFAULT: &str = "Asia/Tokyo";
/// Longest `http.time_zone` accepted, in bytes (IANA names are far shorter).
pub const TIME_ZONE_BYTES_MAX: usize = 64;

fn time_zone_default() -> String {
    TIME_ZONE_DEFAULT.to_owned()
}

impl HttpSection {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            time_zone: time_zone_default(),
            tls_cert: None,
            tls_key: None,
            ops_listen: None,
            ops_base_url: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Whether `zone` is shaped like an IANA time zone name (`Asia/Tokyo`, `UTC`, `Etc/GMT-9`):
/// the pages hand it to the browser, which knows the zones; this keeps out what cannot be one.
pub fn is_time_zone_name(zone: &str) -> bool {
    !zone.is_empty()
        && zone.len() <= TIME_ZONE_BYTES_MAX
        && zone.split('/').all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

/// PEM files; relative paths are relative to the config file's folder.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The fleet CA: site certificates must be signed by it.
    pub ca_cert: PathBuf,
    /// The coordinator's certificate (SAN = the name agents use as `server_name`).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The fleet CA's key, to sign site certificate renewals over the link. Without it, sites
    /// are told renewal is not available here (issue certificates with `pki issue-site`).
    #[serde(default)]
    pub ca_key: Option<PathBuf>,
    /// Sites refused at the handshake, by id. Reloaded on SIGHUP.
    #[serde(default)]
    pub revoked_sites: Vec<String>,
    /// Single certificates refused, by SHA-256 fingerprint (hex, as `pki issue-site` prints).
    /// Reloaded on SIGHUP.
    #[serde(default)]
    pub revoked_fingerprints: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Folder of `coordinator.db`, and of the lock that keeps one coordinator per folder.
    pub data_dir: PathBuf,
    /// The database: unset or `sqlite:` for `coordinator.db` under `data_dir`;
    /// `postgres://user[:password]@host[:port]/database[?sslmode=…]` (or `postgresql://`) for
    /// PostgreSQL, which so far carries the schema, `check` and `migrate-store`, not serving.
    /// Without a password in the URL, `PGPASSWORD`'s is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PEM certificates PostgreSQL's server certificate is verified against, for
    /// `sslmode=prefer|require`. Default: the public web's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl StorageSection {
    /// The backend `url` chooses (checked when the config loads).
    pub fn backend(&self) -> Result<Backend, PgError> {
        Backend::parse(
            self.url.as_deref(),
            std::env::var(crate::store::pg::PASSWORD_ENV).ok(),
        )
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSection {
    /// The warehouse sites (`sites.toml`).
    pub sites_file: PathBuf,
    /// Stores and konbini drop-off points (`stores.toml`).
    pub stores_file: PathBuf,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    /// Most commands in one downstream batch. Default 512.
    pub batch_ops_max: usize,
    /// Most payload bytes in one downstream batch. Default 256 KiB.
    pub batch_bytes_max: usize,
    /// Downstream batches sent and not yet acknowledged. Default 4.
    pub inflight_batches_max: usize,
    /// Resend unacknowledged commands after this long. Default 30 000 ms.
    pub retransmit_after_ms: u64,
    /// Most ops accepted in one upstream batch; more is a protocol error. Default 10 000.
    pub accept_batch_ops_max: usize,
    /// QUIC keep-alive interval of the coordinator's own pings. Default: none — the sites ping
    /// (`sync.keepalive_interval_seconds` in the agent's config, which keeps their NAT mappings
    /// open), and an idle link would otherwise carry twice the packets for nothing; the idle
    /// timeout bounds how long a dead site goes unnoticed either way. Set it only where a
    /// middlebox on the coordinator's side needs traffic from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_interval_seconds: Option<u64>,
    /// A silent link is dead after this long. Default 30 s.
    pub idle_timeout_seconds: u64,
}

impl Default for SyncSection {
    fn default() -> Self {
        Self {
            batch_ops_max: BATCH_OPS_MAX_DEFAULT,
            batch_bytes_max: BATCH_BYTES_MAX_DEFAULT,
            inflight_batches_max: INFLIGHT_BATCHES_MAX_DEFAULT,
            retransmit_after_ms: RETRANSMIT_AFTER_MS_DEFAULT,
            accept_batch_ops_max: 10_000,
            keepalive_interval_seconds: None,
            idle_timeout_seconds: 30,
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
            keepalive_interval: self.keepalive_interval_seconds.map(Duration::from_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
        }
    }
}

impl CoordinatorConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = config_file::load(path, ENV_PREFIX)?;
        config.validate(path)?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.tls.ca_cert,
            &mut self.tls.cert,
            &mut self.tls.key,
            &mut self.storage.data_dir,
            &mut self.fleet.sites_file,
            &mut self.fleet.stores_file,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        for p in [
            self.tls.ca_key.as_mut(),
            self.storage.ca_file.as_mut(),
            self.http.tls_cert.as_mut(),
            self.http.tls_key.as_mut(),
        ]
        .into_iter()
        .flatten()
        .filter(|p| p.is_relative())
        {
            *p = base.join(&*p);
        }
        if let Some(p) = self
            .mail
            .as_mut()
            .and_then(|m| m.ca_cert.as_mut())
            .filter(|p| p.is_relative())
        {
            *p = base.join(&*p);
        }
    }

    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message: message.to_owned(),
        };
        if let Err(e) = self.storage.backend() {
            return Err(bad("storage.url", &e.to_string()));
        }
        if !is_time_zone_name(&self.http.time_zone) {
            return Err(bad(
                "http.time_zone",
                "must be an IANA time zone name such as Asia/Tokyo",
            ));
        }
        match (&self.http.tls_cert, &self.http.tls_key) {
            (Some(_), None) => return Err(bad("http.tls_key", "required with http.tls_cert")),
            (None, Some(_)) => return Err(bad("http.tls_cert", "required with http.tls_key")),
            _ => {}
        }
        if self
            .http
            .ops_listen
            .is_some_and(|a| a == self.http.listen && a.port() != 0)
        {
            return Err(bad(
                "http.ops_listen",
                "must be another address than http.listen",
            ));
        }
        if let Some(url) = &self.http.ops_base_url {
            let shaped = (url.starts_with("https://") || url.starts_with("http://"))
                && !url.ends_with('/')
                && url.len() <= OPS_BASE_URL_BYTES_MAX
                && url.bytes().all(|b| b.is_ascii_graphic());
            if !shaped {
                return Err(bad(
                    "http.ops_base_url",
                    &format!(
                        "must be an http:// or https:// URL without a trailing slash, at most {OPS_BASE_URL_BYTES_MAX} bytes"
                    ),
                ));
            }
        }
        if self.http.trusted_proxies.len() > TRUSTED_PROXIES_MAX {
            return Err(bad(
                "http.trusted_proxies",
                &format!("at most {TRUSTED_PROXIES_MAX} addresses"),
            ));
        }
        let s = &self.sync;
        if s.batch_ops_max == 0 || s.batch_ops_max > 10_000 {
            return Err(bad("sync.batch_ops_max", "must be 1..=10000"));
        }
        if s.inflight_batches_max == 0 || s.inflight_batches_max > 64 {
            return Err(bad("sync.inflight_batches_max", "must be 1..=64"));
        }
        if s.keepalive_interval_seconds
            .is_some_and(|k| k == 0 || k >= s.idle_timeout_seconds)
        {
            return Err(bad(
                "sync.keepalive_interval_seconds",
                "must be at least 1 and below idle_timeout_seconds",
            ));
        }
        crate::revocation::Revoked::parse(&self.tls.revoked_sites, &self.tls.revoked_fingerprints)
            .map_err(|e| ConfigError::Invalid {
                path: path.to_owned(),
                key: "tls".to_owned(),
                message: e.to_string(),
            })?;
        self.rules()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_owned(),
                key,
                message,
            })?;
        if self.quic.connections_max == 0 {
            return Err(bad("quic.connections_max", "must be at least 1"));
        }
        let days = self.returns.expire_after_days;
        if days == 0 || days > EXPIRE_AFTER_DAYS_MAX {
            return Err(bad(
                "returns.expire_after_days",
                &format!("must be 1..={EXPIRE_AFTER_DAYS_MAX}"),
            ));
        }
        self.alerts
            .check()
            .map_err(|(key, message)| bad(key, &message))?;
        if !self.alerts.email_to.is_empty() && self.mail.is_none() {
            return Err(bad(
                "alerts.email_to",
                "needs [mail]: alert mails leave through the same SMTP server",
            ));
        }
        self.api_keys(None)
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_owned(),
                key,
                message,
            })?;
        for (i, m) in self.merchants.iter().enumerate() {
            let key = |f: &str| format!("merchants[{i}].{f}");
            if self.merchants[..i].iter().any(|o| o.id == m.id) {
                return Err(bad(
                    &key("id"),
                    &format!("merchant {} is listed twice", m.id),
                ));
            }
            modori_shared::domain::MerchantId::new(m.id.clone())
                .map_err(|e| bad(&key("id"), &e.to_string()))?;
            crate::portal_settings::check(&crate::portal_settings::PortalSettings::of(m))
                .map_err(|(f, message)| bad(&key(&f), &message))?;
            if let Some(url) = &m.webhook_url {
                crate::webhooks::check_url(url)
                    .map_err(|e| bad(&key("webhook_url"), &e.to_string()))?;
                if m.webhook_secret
                    .as_ref()
                    .is_none_or(|s| s.len() < WEBHOOK_SECRET_BYTES_MIN)
                {
                    return Err(bad(
                        &key("webhook_secret"),
                        &format!(
                            "a webhook needs a secret of at least {WEBHOOK_SECRET_BYTES_MIN} bytes"
                        ),
                    ));
                }
            }
        }
        self.notifications
            .check(self.mail.is_some() || self.line.is_some())
            .map_err(|(key, message)| bad(key, &message))?;
        if let Some(mail) = &self.mail {
            mail.check().map_err(|(key, message)| bad(key, &message))?;
        }
        if let Some(line) = &self.line {
            line.check().map_err(|(key, message)| bad(key, &message))?;
        }
        let p = &self.policy;
        for (name, t) in [("policy", &p.terms), ("policy.strict", &p.strict)] {
            if t.return_window_days == 0 || t.return_window_days > EXPIRE_AFTER_DAYS_MAX {
                return Err(bad(
                    &format!("{name}.return_window_days"),
                    &format!("must be 1..={EXPIRE_AFTER_DAYS_MAX}"),
                ));
            }
            if t.store_credit_bonus_percent > 100 {
                return Err(bad(
                    &format!("{name}.store_credit_bonus_percent"),
                    "must be 0..=100",
                ));
            }
        }
        let days = p.trade_in.counter_offer_days;
        if days == 0 || days > crate::policy::COUNTER_OFFER_DAYS_MAX {
            return Err(bad(
                "policy.trade_in.counter_offer_days",
                &format!("must be 1..={}", crate::policy::COUNTER_OFFER_DAYS_MAX),
            ));
        }
        let days = p.repair.answer_days;
        if days == 0 || days > crate::policy::REPAIR_ANSWER_DAYS_MAX {
            return Err(bad(
                "policy.repair.answer_days",
                &format!("must be 1..={}", crate::policy::REPAIR_ANSWER_DAYS_MAX),
            ));
        }
        if p.repair.rates.len() > modori_shared::repair::RATE_ROWS_MAX {
            return Err(bad(
                "policy.repair.rates",
                &format!("at most {} rows", modori_shared::repair::RATE_ROWS_MAX),
            ));
        }
        for (i, r) in p.repair.rates.iter().enumerate() {
            r.row().map_err(|(field, message)| {
                bad(&format!("policy.repair.rates[{i}].{field}"), &message)
            })?;
        }
        let shares = [
            ("policy.grade_refund_share", &p.grade_refund_share),
            ("valuation.restock_share", &self.valuation.restock_share),
            ("valuation.resale_share", &self.valuation.resale_share),
        ];
        for (name, s) in shares {
            if s.iter().any(|v| !(0.0..=1.0).contains(v)) {
                return Err(bad(name, "each share must be 0..=1"));
            }
        }
        for (i, c) in self.resale.channels.iter().enumerate() {
            if c.price_share.iter().any(|v| !(0.0..=1.0).contains(v)) {
                return Err(bad(
                    &format!("resale.channels[{i}].price_share"),
                    "each share must be 0..=1",
                ));
            }
        }
        if self.consolidation.pickup_hours_jst.iter().any(|h| *h > 23) {
            return Err(bad("consolidation.pickup_hours_jst", "hours are 0..=23"));
        }
        if self.consolidation.min_returns == 0 || self.consolidation.max_age_hours == 0 {
            return Err(bad(
                "consolidation",
                "min_returns and max_age_hours must be at least 1",
            ));
        }
        for (i, m) in self.resale.markdown.iter().enumerate() {
            if m.percent_off > 100 {
                return Err(bad(
                    &format!("resale.markdown[{i}].percent_off"),
                    "must be 0..=100",
                ));
            }
        }
        Ok(())
    }

    /// The bootstrap API keys, checked; store scopes against `stores` when given (the fleet
    /// is loaded after the config). The error names the key path, e.g. `api_keys[1].sha256`.
    pub fn api_keys(
        &self,
        stores: Option<&[modori_shared::domain::Store]>,
    ) -> Result<Vec<crate::apikeys::ConfigKey>, (String, String)> {
        let mut seen = std::collections::HashSet::new();
        self.api_keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let key = |f: &str| format!("api_keys[{i}].{f}");
                let scope = crate::apikeys::Scope::parse(&k.scope)
                    .map_err(|e| (key("scope"), e.to_string()))?;
                if let Some(stores) = stores {
                    scope
                        .check_store_exists(stores)
                        .map_err(|e| (key("scope"), e.to_string()))?;
                }
                let sha256 = crate::apikeys::parse_sha256(&k.sha256)
                    .map_err(|e| (key("sha256"), e.to_string()))?;
                if !seen.insert(sha256.clone()) {
                    return Err((key("sha256"), "the same key is listed twice".to_owned()));
                }
                let label = crate::apikeys::check_label(k.label.as_deref())
                    .map_err(|e| (key("label"), e.to_string()))?;
                Ok(crate::apikeys::ConfigKey {
                    scope,
                    sha256,
                    label,
                })
            })
            .collect()
    }

    /// The disposition rules, checked; the defaults when none are configured.
    pub fn rules(&self) -> Result<Vec<modori_shared::DispositionRule>, (String, String)> {
        if self.disposition_rules.is_empty() {
            return Ok(modori_shared::DispositionRule::defaults());
        }
        self.disposition_rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let key = |f: &str| format!("disposition_rules[{i}].{f}");
                Ok(modori_shared::DispositionRule {
                    category: r.category.clone(),
                    grade: Grade::parse(&r.grade).map_err(|e| (key("grade"), e.to_string()))?,
                    disposition: Disposition::parse(&r.disposition)
                        .map_err(|e| (key("disposition"), e.to_string()))?,
                })
            })
            .collect()
    }

    pub fn db_path(&self) -> PathBuf {
        self.storage.data_dir.join("coordinator.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_http(edit: impl FnOnce(&mut HttpSection)) -> Result<(), ConfigError> {
        let text = include_str!("../../configs/coordinator.toml");
        let mut config: CoordinatorConfig = toml::from_str(text).expect("the example config");
        edit(&mut config.http);
        config.validate(Path::new("coordinator.toml"))
    }

    fn refused_key(e: Result<(), ConfigError>) -> String {
        match e {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_repairs_terms_and_rates_are_read_and_checked() {
        let example = include_str!("../../configs/coordinator.toml");
        let with = |section: &str| format!("{example}\n[policy.repair]\n{section}\n");
        let parsed = |section: &str| toml::from_str::<CoordinatorConfig>(&with(section));
        let config = parsed(
            "answer_days = 5\n[[policy.repair.rates]]\ndefect = \"not_working\"\n\
             category = \"phone\"\nparts_yen = 8000\nlabour_yen = 5000",
        )
        .expect("a valid section");
        assert_eq!(config.policy.repair.answer_days, 5);
        assert_eq!(config.policy.repair.rows().len(), 1);
        assert!(config.validate(Path::new("coordinator.toml")).is_ok());
        let defaults: CoordinatorConfig = toml::from_str(example).expect("the example config");
        assert_eq!(
            defaults.policy.repair,
            crate::policy::RepairTerms::default()
        );
        for (section, key) in [
            ("answer_days = 0", "policy.repair.answer_days"),
            (
                "[[policy.repair.rates]]\ndefect = \"broken\"\nparts_yen = 1\nlabour_yen = 1",
                "policy.repair.rates[0].defect",
            ),
            (
                "[[policy.repair.rates]]\ndefect = \"dent\"\nparts_yen = 1\nlabour_yen = 9999999",
                "policy.repair.rates[0].parts_yen",
            ),
        ] {
            let config = parsed(section).expect("parsed");
            assert_eq!(
                refused_key(config.validate(Path::new("coordinator.toml"))),
                key,
                "{section}"
            );
        }
    }

    #[test]
    fn a_trade_ins_counter_offer_terms_are_read_and_checked() {
        let example = include_str!("../../configs/coordinator.toml");
        let with = |section: &str| format!("{example}\n[policy.trade_in]\n{section}\n");
        let parsed = |section: &str| toml::from_str::<CoordinatorConfig>(&with(section));
        let config = parsed("counter_offer_days = 3\ndefault_after_deadline = \"accept\"")
            .expect("a valid section");
        assert_eq!(config.policy.trade_in.counter_offer_days, 3);
        assert_eq!(
            config.policy.trade_in.default_after_deadline,
            crate::policy::AfterDeadline::Accept
        );
        assert!(config.validate(Path::new("coordinator.toml")).is_ok());
        let defaults: CoordinatorConfig = toml::from_str(example).expect("the example config");
        assert_eq!(
            defaults.policy.trade_in,
            crate::policy::TradeInTerms::default()
        );
        assert!(parsed("default_after_deadline = \"ask_again\"").is_err());
        assert!(parsed("counter_offer_hours = 3").is_err());
        for days in [0, crate::policy::COUNTER_OFFER_DAYS_MAX + 1] {
            let config = parsed(&format!("counter_offer_days = {days}")).expect("parsed");
            assert_eq!(
                refused_key(config.validate(Path::new("coordinator.toml"))),
                "policy.trade_in.counter_offer_days"
            );
        }
    }

    #[test]
    fn the_https_settings_are_checked() {
        assert!(with_http(|_| {}).is_ok());
        let cert = || Some(PathBuf::from("https.pem"));
        assert_eq!(
            refused_key(with_http(|h| h.tls_cert = cert())),
            "http.tls_key"
        );
        assert_eq!(
            refused_key(with_http(|h| h.tls_key = cert())),
            "http.tls_cert"
        );
        assert!(with_http(|h| {
            h.tls_cert = cert();
            h.tls_key = cert();
        })
        .is_ok());
        let listen = "127.0.0.1:8080".parse().ok();
        assert_eq!(
            refused_key(with_http(|h| h.ops_listen = listen)),
            "http.ops_listen"
        );
        for bad in ["ops.example.jp", "https://ops.example.jp/", "https://a b"] {
            assert_eq!(
                refused_key(with_http(|h| h.ops_base_url = Some(bad.into()))),
                "http.ops_base_url",
                "{bad}"
            );
        }
        assert!(with_http(|h| h.ops_base_url = Some("https://ops.example.jp".into())).is_ok());
        let many = vec!["127.0.0.1".parse().expect("an address"); TRUSTED_PROXIES_MAX + 1];
        assert_eq!(
            refused_key(with_http(|h| h.trusted_proxies = many)),
            "http.trusted_proxies"
        );
    }

    #[test]
    fn alert_recipients_are_checked() {
        let ok = AlertsSection {
            email_to: vec!["ops@example.jp".into()],
            webhook_url: Some("https://hooks.example.jp/services/x".into()),
            ..AlertsSection::default()
        };
        assert!(ok.check().is_ok());
        let key = |a: AlertsSection| a.check().unwrap_err().0;
        let not_an_address = AlertsSection {
            email_to: vec!["ops at example".into()],
            ..ok.clone()
        };
        assert_eq!(key(not_an_address), "alerts.email_to");
        let bad_url = AlertsSection {
            webhook_url: Some("hooks.example.jp/x".into()),
            ..ok.clone()
        };
        assert_eq!(key(bad_url), "alerts.webhook_url");
        let too_long = AlertsSection {
            renotify_minutes: ALERT_MINUTES_MAX + 1,
            ..ok
        };
        assert_eq!(key(too_long), "alerts.renotify_minutes");
    }

    #[test]
    fn time_zones_are_shaped_like_iana_names() {
        for zone in [
            "Asia/Tokyo",
            "UTC",
            "Etc/GMT-9",
            "America/Port-au-Prince",
            "America/Argentina/Buenos_Aires",
        ] {
            assert!(is_time_zone_name(zone), "{zone}");
        }
        for zone in [
            "",
            "Asia/",
            "/Tokyo",
            "Asia//Tokyo",
            "Asia/Tokyo;",
            "9/Tokyo",
            "<script>",
            &"A".repeat(65),
        ] {
            assert!(!is_time_zone_name(zone), "{zone}");
        }
    }
}
