//! The Modori coordinator: the QUIC server for site agents, the central view and decisions,
//! the HTTP API. A library with a thin `modori-coordinator` binary, so tests and the demo run
//! it in-process.
//!
//! Architecture invariant: the coordinator trusts a site's certificate, never its payload, and
//! acknowledges an op only after its effect is durable.

pub mod anomaly;
pub mod apikeys;
pub mod app;
pub mod carrier;
pub mod check;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod fleet;
pub mod http;
pub mod ids;
pub mod listings;
pub mod live;
pub mod merchants;
pub mod metrics;
pub mod notify;
pub mod pki;
pub mod policy;
pub mod portal_settings;
pub mod postal;
pub mod quic;
pub mod rebalance;
pub mod refusals;
pub mod revocation;
pub mod routing;
pub mod store;
pub mod texts;
pub mod valuation;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use modori_runtime::clock::{Clock, SystemClock};
use modori_runtime::sqlite::{Db, DbError};
use modori_runtime::tls::{self, TlsError};
use modori_shared::domain::{Coordinates, Epoch, ReturnLine, RmaId, SiteId};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use crate::app::privacy::privacy_sweep;
pub use crate::app::route::{register, register_return, RoutedReturn};
pub use crate::app::withdraw::expire_returns;
use crate::config::CoordinatorConfig;
use crate::fleet::Fleet;
pub use crate::ids::new_rma_id;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::revocation::{RevocationError, Revocations, Revoked};
use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum CoordinatorError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("storage.url: {0}")]
    Backend(String),
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("QUIC endpoint on {addr}: {source}")]
    Quic {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP listener on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no site to route to")]
    NoSite,
    #[error("no site can take this return: {0}")]
    NoSiteFor(String),
    #[error(transparent)]
    Revocation(#[from] RevocationError),
    #[error(transparent)]
    Runs(#[from] modori_runtime::generations::GenerationsError),
    #[error("config key {key}: {message}")]
    ConfigKey { key: String, message: String },
    #[error(transparent)]
    ApiKey(#[from] apikeys::ApiKeyError),
}

/// What every task of the coordinator shares.
pub struct Ctx {
    pub config: CoordinatorConfig,
    pub fleet: Fleet,
    pub db: Db,
    /// Site batches waiting for their group transaction.
    pub apply_groups: app::group_commit::GroupCommit,
    pub command_epoch: Epoch,
    /// Who this coordinator is in the leases on background work (`app::leases`): where it
    /// listens for sites and its run, so ops can tell the replicas and their restarts apart.
    pub lease_holder: String,
    pub live: Live,
    pub metrics: Metrics,
    pub revocations: Arc<Revocations>,
    pub shutdown: watch::Receiver<bool>,
    /// Wakes the webhook worker when a return's timeline grew.
    pub wake_webhooks: tokio::sync::Notify,
    /// Wakes the customer-message worker when a return's timeline grew.
    pub wake_notifications: tokio::sync::Notify,
    /// The dashboard's cache of stored figures.
    pub dashboard: dashboard::Dashboard,
    /// Places for live pages (server-sent event streams).
    pub sse_streams: Arc<tokio::sync::Semaphore>,
    /// Every time the coordinator stamps or compares; the system clock unless a test gives it
    /// another.
    pub clock: Arc<dyn Clock>,
}

impl Ctx {
    /// Whether `merchant` is one of the configured `[[merchants]]`.
    pub fn knows_merchant(&self, merchant: &str) -> bool {
        self.config.merchants.iter().any(|m| m.id == merchant)
    }

    /// Wakes the sites of the commands a committed transaction queued.
    pub fn wake(&self, queued: store::Queued) {
        self.live.wake(queued);
    }

    /// New events may be due for the merchants' webhooks and the customers' messages.
    pub fn webhooks_wake(&self) {
        self.wake_webhooks.notify_one();
        self.wake_notifications.notify_one();
    }
}

pub struct Coordinator {
    ctx: Arc<Ctx>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    quic_addr: SocketAddr,
    http_addr: SocketAddr,
    ops_http_addr: Option<SocketAddr>,
    http_tls: Option<Arc<http::serve::HttpTls>>,
}

impl Coordinator {
    pub async fn start(config: CoordinatorConfig, fleet: Fleet) -> Result<Self, CoordinatorError> {
        Self::start_with_clock(config, fleet, Arc::new(SystemClock)).await
    }

    /// [`Coordinator::start`] on the given clock.
    pub async fn start_with_clock(
        config: CoordinatorConfig,
        fleet: Fleet,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CoordinatorError> {
        tls::install_crypto_provider();
        match config.storage.backend() {
            Ok(store::pg::Backend::Sqlite) => {}
            Ok(store::pg::Backend::Postgres(_)) => {
                return Err(CoordinatorError::Backend(store::pg::NOT_SERVING.into()))
            }
            Err(e) => return Err(CoordinatorError::Backend(e.to_string())),
        }
        postal::load();
        std::fs::create_dir_all(&config.storage.data_dir).map_err(|source| {
            CoordinatorError::DataDir {
                path: config.storage.data_dir.clone(),
                source,
            }
        })?;
        let db = Db::open(&config.db_path(), &store::migrations())?;
        let runs = runs_path(&config.db_path());
        let recorded = modori_runtime::generations::read(&runs)?;
        let now_ms = clock.now_ms();
        let command_epoch = db
            .call(move |c| {
                store::init(c)?;
                let last_run = store::run(c)?;
                // Not the database the last run left (an older file copied over it, a snapshot
                // put back): sites may have applied commands it no longer has. The new epoch
                // below covers that; this tells the operator.
                if recorded.last().is_some_and(|last| last_run != Some(*last)) {
                    warn!(db_run = ?last_run.map(|r| r.to_string()), "the database is older than the last run");
                }
                store::command_epochs::start(c, now_ms)
            })
            .await?;
        // One coordinator serves a SQLite file (`cli` locks the data directory), so a lease
        // found in it is a stopped run's: none must wait out its term.
        db.call(store::leases::clear_all).await?;
        let run = modori_runtime::generations::reserve(&runs, Epoch(0))?;
        db.call(move |c| store::set_run(c, run)).await?;
        app::merchant_settings::seed_from_config(&db, &config.merchants, now_ms).await?;
        let ca = tls::load_certs("CA certificate", &config.tls.ca_cert)?;
        let chain = tls::load_certs("server certificate", &config.tls.cert)?;
        let key = tls::load_key("server key", &config.tls.key)?;
        let revoked = Revoked::parse(&config.tls.revoked_sites, &config.tls.revoked_fingerprints)?;
        let revocations = Arc::new(Revocations::new(revoked));
        let server =
            quic::server_config(&ca, chain, key, config.sync.timing(), revocations.clone())?;
        let endpoint = quinn::Endpoint::server(server, config.quic.listen).map_err(|source| {
            CoordinatorError::Quic {
                addr: config.quic.listen,
                source,
            }
        })?;
        let quic_addr = endpoint
            .local_addr()
            .map_err(|source| CoordinatorError::Quic {
                addr: config.quic.listen,
                source,
            })?;
        let listeners = http::serve::HttpListeners::bind(&config.http).await?;
        let http_addr = listeners.public_addr()?;
        let ops_http_addr = listeners.ops_addr()?;
        let http_tls = listeners.tls();
        // Grading stations propose dispositions offline by these rules: send them where they
        // are missing or changed.
        let rules = config
            .rules()
            .map_err(|(key, message)| CoordinatorError::ConfigKey { key, message })?;
        let sites: Vec<SiteId> = fleet.sites.iter().map(|s| s.id.clone()).collect();
        let rules_queued = db
            .call(move |c| store::sync_disposition_rules(c, &rules, &sites, now_ms))
            .await?;
        // Bootstrap API keys from the config; a store key only for a store of the fleet.
        let config_keys = config
            .api_keys(Some(&fleet.stores))
            .map_err(|(key, message)| CoordinatorError::ConfigKey { key, message })?;
        let n_config_keys = db
            .call(move |c| apikeys::sync_config_keys(c, &config_keys, now_ms))
            .await?;
        let channels = app::notify::Channels::from_config(&config).map_err(|e| {
            CoordinatorError::ConfigKey {
                key: "mail".into(),
                message: e.to_string(),
            }
        })?;
        let alert_channels =
            app::alert_notices::AlertChannels::from_config(&config).map_err(|e| {
                CoordinatorError::ConfigKey {
                    key: "alerts.email_to".into(),
                    message: e.to_string(),
                }
            })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let metrics = Metrics::default();
        let apply_groups = app::group_commit::GroupCommit::new(metrics.apply_commits.clone());
        let ctx = Arc::new(Ctx {
            live: Live::new(fleet.sites.iter().map(|s| s.id.clone()), now_ms),
            config,
            fleet,
            db,
            command_epoch,
            lease_holder: format!("{quic_addr}/{command_epoch}"),
            metrics,
            revocations,
            shutdown: shutdown_rx.clone(),
            wake_webhooks: tokio::sync::Notify::new(),
            wake_notifications: tokio::sync::Notify::new(),
            dashboard: Default::default(),
            sse_streams: Arc::new(tokio::sync::Semaphore::new(http::ui::SSE_STREAMS_MAX)),
            apply_groups,
            clock,
        });
        ctx.wake(rules_queued);
        // Units applied before a crash and not decided yet.
        app::batch::after_ops_applied(&ctx, None).await?;
        info!(quic = %quic_addr, http = %http_addr, command_epoch = %command_epoch,
              n_sites = ctx.fleet.sites.len(), n_config_keys, "coordinator started");
        let sweeps = tokio::spawn(app::sweeps::run(ctx.clone(), shutdown_rx.clone()));
        let mut tasks = vec![
            sweeps,
            tokio::spawn(quic::serve(endpoint, ctx.clone())),
            tokio::spawn(app::webhooks::worker(ctx.clone())),
            tokio::spawn(app::notify::worker(ctx.clone(), channels)),
            tokio::spawn(app::alert_notices::worker(ctx.clone(), alert_channels)),
        ];
        tasks.extend(listeners.spawn(ctx.clone(), shutdown_rx)?);
        Ok(Self {
            ctx,
            shutdown,
            tasks,
            quic_addr,
            http_addr,
            ops_http_addr,
            http_tls,
        })
    }

    pub fn quic_addr(&self) -> SocketAddr {
        self.quic_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The ops listener's address, when `http.ops_listen` is set.
    pub fn ops_http_addr(&self) -> Option<SocketAddr> {
        self.ops_http_addr
    }

    /// Re-reads the HTTPS certificate and key (on SIGHUP); false when serving plain HTTP.
    /// On an error the certificate in force stays.
    pub fn reload_http_certificate(&self) -> Result<bool, modori_runtime::tls::TlsError> {
        match &self.http_tls {
            Some(tls) => tls.reload().map(|()| true),
            None => Ok(false),
        }
    }

    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// See [`register_return`].
    pub async fn register_return(
        &self,
        rma: RmaId,
        origin_label: String,
        origin: Coordinates,
        lines: Vec<ReturnLine>,
    ) -> Result<RoutedReturn, CoordinatorError> {
        register_return(&self.ctx, rma, origin_label, origin, lines).await
    }

    /// Makes the configured API keys match `keys` (at start, and on SIGHUP).
    pub async fn sync_config_keys(
        &self,
        keys: Vec<apikeys::ConfigKey>,
    ) -> Result<usize, CoordinatorError> {
        let now_ms = self.ctx.clock.now_ms();
        Ok(self
            .ctx
            .db
            .call(move |c| apikeys::sync_config_keys(c, &keys, now_ms))
            .await?)
    }

    /// Replaces the revocation list; live connections of newly revoked sites are closed.
    pub fn revoke(&self, revoked: Revoked) {
        revoke(&self.ctx, revoked);
    }

    /// Tells every connection to close with a reason, stops HTTP, waits for every task.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // Stopped means the database file is closed and whole, not closing in the background.
        self.ctx.db.close().await;
    }
}

/// Replaces the revocation list and closes the live connections it now refuses.
pub fn revoke(ctx: &Ctx, revoked: Revoked) {
    let n_sites = revoked.sites.len();
    let n_fingerprints = revoked.fingerprints.len();
    ctx.revocations.replace(revoked);
    for site in &ctx.fleet.sites {
        if ctx.revocations.is_site_revoked(&site.id) {
            if let Some((_, conn)) = ctx.live.get(&site.id).connection {
                conn.close(4u32.into(), b"certificate revoked");
            }
        }
    }
    // A revoked single certificate may be the one a live connection uses.
    for site in &ctx.fleet.sites {
        if let Some((_, conn)) = ctx.live.get(&site.id).connection {
            let revoked = conn
                .peer_identity()
                .and_then(|id| {
                    id.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                        .ok()
                })
                .and_then(|chain| {
                    chain
                        .first()
                        .map(|c| ctx.revocations.check(c.as_ref()).is_err())
                })
                .unwrap_or(false);
            if revoked {
                conn.close(4u32.into(), b"certificate revoked");
            }
        }
    }
    info!(n_sites, n_fingerprints, "revocation list replaced");
}

/// The file beside the database recording each run of the coordinator (fsynced before the
/// database takes the run's id), so a start finds a database older than the last run.
pub fn runs_path(db: &std::path::Path) -> std::path::PathBuf {
    modori_runtime::sqlite::companion(db, ".runs")
}

/// Restores a coordinator database from `backup` (the coordinator stopped). Its next start
/// numbers commands in a new epoch, as every start does; sites resend what the backup lacks:
/// their hello shows the coordinator is behind what it acknowledged, and they send the
/// difference again. Returns where the replaced database was kept.
pub fn restore(
    config: &CoordinatorConfig,
    backup: &std::path::Path,
) -> Result<Option<std::path::PathBuf>, modori_runtime::backup::BackupError> {
    use modori_runtime::backup::{restore_database, BackupError};
    if std::net::TcpStream::connect_timeout(
        &config.http.listen,
        std::time::Duration::from_millis(300),
    )
    .is_ok()
    {
        return Err(BackupError::ServiceRunning(config.http.listen.to_string()));
    }
    restore_database::<BackupError>(
        backup,
        &config.db_path(),
        |conn| {
            store::migrations()
                .to_latest(conn)
                .map_err(|e| BackupError::Prepare(format!("migrating the backup: {e}")))?;
            let corrupt = |e: StoreError| BackupError::Prepare(e.to_string());
            store::init(conn).map_err(corrupt)?;
            // Put back on purpose: the next start need not warn that it is older than the last
            // run.
            let runs = modori_runtime::generations::read(&runs_path(&config.db_path()))
                .map_err(|e| BackupError::Prepare(e.to_string()))?;
            if let Some(last) = runs.last() {
                store::set_run(conn, *last).map_err(corrupt)?;
            }
            Ok(())
        },
        modori_runtime::clock::now_ms(),
    )
}

/// How often the sweeps run: personal data past its retention period is pseudonymised,
/// returns past `returns.expire_after_days` expire, and resale listings are marked down by age.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
