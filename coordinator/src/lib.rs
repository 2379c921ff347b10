//! The Modori coordinator: the QUIC server for site agents, the central view and decisions,
//! the HTTP API. A library with a thin `modori-coordinator` binary, so tests and the demo run
//! it in-process.
//!
//! Architecture invariant: the coordinator trusts a site's certificate, never its payload, and
//! acknowledges an op only after its effect is durable.

pub mod apikeys;
pub mod carrier;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod decisions;
pub mod fleet;
pub mod http;
pub mod listings;
pub mod live;
pub mod metrics;
pub mod orders;
pub mod pki;
pub mod policy;
pub mod postal;
pub mod quic;
pub mod rebalance;
pub mod refusals;
pub mod revocation;
pub mod routing;
pub mod store;
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

use crate::config::CoordinatorConfig;
use crate::fleet::Fleet;
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
    pub command_epoch: Epoch,
    pub live: Live,
    pub metrics: Metrics,
    pub revocations: Arc<Revocations>,
    pub shutdown: watch::Receiver<bool>,
    /// Wakes the webhook worker when a return's timeline grew.
    pub wake_webhooks: tokio::sync::Notify,
    /// Browser sessions of the dashboard and the store counter.
    pub sessions: http::session::Sessions,
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

    /// New events may be due for the merchants' webhooks.
    pub fn webhooks_wake(&self) {
        self.wake_webhooks.notify_one();
    }
}

pub struct Coordinator {
    ctx: Arc<Ctx>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    quic_addr: SocketAddr,
    http_addr: SocketAddr,
}

/// A return registered and routed.
#[derive(Clone, Debug)]
pub struct RoutedReturn {
    pub rma: RmaId,
    pub site: SiteId,
    pub explanation: String,
    /// Every site weighed, best first, with its score or why it was left out.
    pub candidates: Vec<routing::Candidate>,
    pub command_seq: u64,
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
        let run = modori_runtime::generations::reserve(&runs, Epoch(0))?;
        db.call(move |c| store::set_run(c, run)).await?;
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
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .map_err(|source| CoordinatorError::Http {
                addr: config.http.listen,
                source,
            })?;
        let http_addr = listener
            .local_addr()
            .map_err(|source| CoordinatorError::Http {
                addr: config.http.listen,
                source,
            })?;
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
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            live: Live::new(fleet.sites.iter().map(|s| s.id.clone())),
            config,
            fleet,
            db,
            command_epoch,
            metrics: Metrics::default(),
            revocations,
            shutdown: shutdown_rx.clone(),
            wake_webhooks: tokio::sync::Notify::new(),
            sessions: Default::default(),
            dashboard: Default::default(),
            sse_streams: Arc::new(tokio::sync::Semaphore::new(http::ui::SSE_STREAMS_MAX)),
            clock,
        });
        for (site, seq) in rules_queued {
            ctx.live.command_queued(&site, seq);
        }
        // Units applied before a crash and not decided yet.
        after_ops_applied(&ctx, None).await?;
        info!(quic = %quic_addr, http = %http_addr, command_epoch = %command_epoch,
              n_sites = ctx.fleet.sites.len(), n_config_keys, "coordinator started");
        let sweep_ctx = ctx.clone();
        let mut sweep_shutdown = shutdown_rx.clone();
        let sweeps = tokio::spawn(async move {
            loop {
                if let Err(e) = privacy_sweep(&sweep_ctx, sweep_ctx.clock.now_ms()).await {
                    tracing::warn!(error = %e, "personal data sweep failed");
                }
                if let Err(e) = expire_returns(&sweep_ctx, sweep_ctx.clock.now_ms()).await {
                    tracing::warn!(error = %e, "return expiry sweep failed");
                }
                if let Err(e) = after_ops_applied(&sweep_ctx, None).await {
                    tracing::warn!(error = %e, "decisions, listings, refunds and matches postponed");
                }
                if let Err(e) = plan_totes(&sweep_ctx, true).await {
                    tracing::warn!(error = %e, "tote planning failed");
                }
                let resale = sweep_ctx.config.resale.clone();
                let now_ms = sweep_ctx.clock.now_ms();
                match sweep_ctx
                    .db
                    .call(move |c| listings::mark_down(c, &resale, now_ms))
                    .await
                {
                    Ok(n) if n > 0 => info!(n_repriced = n, "resale listings marked down"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "resale markdown failed"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
                    _ = sweep_shutdown.changed() => break,
                }
            }
        });
        let mut http_shutdown = shutdown_rx;
        let router = http::router(ctx.clone());
        let tasks = vec![
            sweeps,
            tokio::spawn(quic::serve(endpoint, ctx.clone())),
            tokio::spawn(webhooks::worker(ctx.clone())),
            tokio::spawn(async move {
                let serve = axum::serve(http::long_uri::Guarded(listener), router)
                    .with_graceful_shutdown(async move {
                        let _ = http_shutdown.changed().await;
                    });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }),
        ];
        Ok(Self {
            ctx,
            shutdown,
            tasks,
            quic_addr,
            http_addr,
        })
    }

    pub fn quic_addr(&self) -> SocketAddr {
        self.quic_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
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
    }
}

/// Routes a return from `origin` to the nearest site, stores it and queues the expected return
/// for that site, in one transaction, then wakes that site's connection. No merchant: seen by
/// ops keys only.
pub async fn register_return(
    ctx: &Arc<Ctx>,
    rma: RmaId,
    origin_label: String,
    origin: Coordinates,
    lines: Vec<ReturnLine>,
) -> Result<RoutedReturn, CoordinatorError> {
    register(
        ctx,
        store::NewReturn {
            rma,
            merchant: None,
            origin,
            origin_label,
            origin_store: None,
            lines,
            customer: None,
            terms: None,
            order_ref: None,
            resolution: None,
        },
    )
    .await
}

/// The start of today in Japan (UTC+9, no daylight saving), in Unix milliseconds: routing
/// counts each site's load from then.
pub fn start_of_day_jst(now_ms: i64) -> i64 {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    const JST_MS: i64 = 9 * 60 * 60 * 1000;
    (now_ms + JST_MS).div_euclid(DAY_MS) * DAY_MS - JST_MS
}

/// Routes `r` (by distance, today's load per site and what its products need: electronics go
/// only to sites that test them) and registers it there, with its candidates; the site is
/// sent the expected return, and an exchange order when the customer wants a replacement.
pub async fn register(
    ctx: &Arc<Ctx>,
    r: store::NewReturn,
) -> Result<RoutedReturn, CoordinatorError> {
    let merchant = r.merchant.as_ref().map(|m| m.to_string());
    let skus: Vec<String> = r.lines.iter().map(|l| l.sku.to_string()).collect();
    let now_ms = ctx.clock.now_ms();
    let since = start_of_day_jst(now_ms);
    let (needs_testing, routed) = ctx
        .db
        .call(move |c| {
            let mut testing = false;
            for sku in &skus {
                testing |=
                    store::commerce::product(c, merchant.as_deref(), sku)?.is_some_and(|p| p.2);
            }
            Ok::<_, store::StoreError>((testing, store::commerce::routed_since(c, since)?))
        })
        .await?;
    let needs = routing::Needs {
        testing: needs_testing,
        n_units: u32::try_from(modori_shared::domain::n_units(&r.lines)).unwrap_or(u32::MAX),
    };
    let load = |s: &SiteId| {
        routed
            .iter()
            .find(|(id, _)| id == s.as_str())
            .map_or(0, |(_, n)| *n)
    };
    let (route, candidates) = routing::route(&ctx.fleet.sites, r.origin, needs, load);
    let Some(route) = route else {
        let why: Vec<String> = candidates
            .iter()
            .map(|c| format!("{}: {}", c.site, c.excluded.as_deref().unwrap_or("?")))
            .collect();
        return Err(CoordinatorError::NoSiteFor(why.join("; ")));
    };
    let site = route.site.id.clone();
    let explanation = route.explanation;
    let rma = r.rma.clone();
    let candidates_json = serde_json::to_string(&candidates).unwrap_or_default();
    let (s, e) = (site.clone(), explanation.clone());
    let sites = ctx.fleet.sites.clone();
    let exchange = r.terms.as_ref().is_some_and(|t| t.exchange_sku.is_some());
    let from_store = r.origin_store.is_some();
    let command_seq = ctx
        .db
        .call(move |c| store::register_return(c, &r, &s, &e, &candidates_json, &sites, now_ms))
        .await?;
    ctx.live.command_queued(&site, command_seq);
    // The return is stored: what follows is redone by later passes, so a failure is logged
    // rather than answered (an error answer must mean nothing was stored).
    if exchange {
        // Its replacement may have been ordered from another site.
        logged("waking the sites", &rma, wake_all_streams(ctx).await);
    }
    if from_store {
        logged("planning totes", &rma, plan_totes(ctx, false).await);
    }
    Ok(RoutedReturn {
        rma,
        site,
        explanation,
        candidates,
        command_seq,
    })
}

/// A fresh RMA id, printable as a label with its check character: ten base-36 characters from
/// the time and a counter, so ids are time-ordered and unique within this coordinator.
pub fn new_rma_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1000;
    let mut v =
        (u64::try_from(modori_runtime::clock::now_ms()).unwrap_or(0) * 1000 + n) % 36u64.pow(10);
    let mut body = [b'0'; 10];
    for c in body.iter_mut().rev() {
        *c = ALPHABET[(v % 36) as usize];
        v /= 36;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    // Ten characters of A-Z 0-9 always encode.
    modori_shared::barcode::rma_encode(&body).unwrap_or(body)
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

/// Pseudonymises returns older than the retention period here and at their sites; returns how
/// many. Runs at start and every [`SWEEP_INTERVAL`].
pub async fn privacy_sweep(ctx: &Arc<Ctx>, now_ms: i64) -> Result<usize, CoordinatorError> {
    let cutoff = now_ms - i64::from(ctx.config.privacy.retention_days) * 86_400_000;
    let (n, told) = ctx
        .db
        .call(move |c| store::erase_personal_data_before(c, cutoff, now_ms))
        .await?;
    for (site, seq) in told {
        ctx.live.command_queued(&site, seq);
    }
    if n > 0 {
        info!(
            n_returns = n,
            "personal data past its retention pseudonymised"
        );
    }
    Ok(n)
}

/// Expires the returns nothing of which was received within `returns.expire_after_days` of
/// `now_ms`, here and at their sites; returns how many. Runs at start and every
/// [`SWEEP_INTERVAL`].
pub async fn expire_returns(ctx: &Arc<Ctx>, now_ms: i64) -> Result<usize, CoordinatorError> {
    let cutoff = now_ms - i64::from(ctx.config.returns.expire_after_days) * 86_400_000;
    let mut n = 0;
    loop {
        let expired = ctx
            .db
            .call(move |c| store::lifecycle::expire_before(c, cutoff, now_ms))
            .await?;
        for (rma, site, seq) in &expired {
            info!(rma = %rma, site = %site, "return expired; withdrawn at its site");
            ctx.live.command_queued(site, *seq);
        }
        if !expired.is_empty() {
            wake_all_streams(ctx).await?;
        }
        n += expired.len();
        if expired.len() < store::lifecycle::EXPIRE_BATCH_MAX {
            return Ok(n);
        }
    }
}

/// Cancels a return nothing of which has arrived, and withdraws it at its site.
pub async fn cancel_return(
    ctx: &Arc<Ctx>,
    rma: RmaId,
    by: String,
) -> Result<store::lifecycle::Cancel, CoordinatorError> {
    let r = rma.clone();
    let now_ms = ctx.clock.now_ms();
    let outcome = ctx
        .db
        .call(move |c| store::lifecycle::cancel(c, &r, &by, now_ms))
        .await?;
    if let store::lifecycle::Cancel::Cancelled { site, command_seq } = &outcome {
        info!(rma = %rma, site = %site, "return cancelled; withdrawn at its site");
        ctx.live.command_queued(site, *command_seq);
        // Its exchange's stock may be released at another site.
        logged("waking the sites", &rma, wake_all_streams(ctx).await);
    }
    Ok(outcome)
}

/// Logs the failure of follow-up work after a commit (a later pass or reconnect redoes it).
fn logged<T>(what: &str, rma: &RmaId, result: Result<T, CoordinatorError>) {
    if let Err(e) = result {
        warn!(rma = %rma, error = %e, what, "follow-up after the commit failed; a later pass redoes it");
    }
}

/// Plans the totes of store drop-offs due now and tells their sites; `scheduled` for the
/// periodic pass (which also honours the pickup hours).
pub async fn plan_totes(ctx: &Ctx, scheduled: bool) -> Result<usize, CoordinatorError> {
    let config = ctx.config.consolidation.clone();
    let now_ms = ctx.clock.now_ms();
    let queued = ctx
        .db
        .call(move |c| store::totes::plan(c, &config, now_ms, scheduled))
        .await?;
    for (site, seq) in &queued {
        info!(site = %site, "tote of store drop-offs planned");
        ctx.live.command_queued(site, *seq);
    }
    Ok(queued.len())
}

/// Wakes every site's connection up to its stream's head (for a transaction that may have
/// queued commands for several sites).
async fn wake_all_streams(ctx: &Ctx) -> Result<(), CoordinatorError> {
    let heads = ctx.db.call(|c| store::command_heads(c)).await?;
    for (site, head) in heads {
        ctx.live.command_queued(&site, head);
    }
    Ok(())
}

/// What follows applied ops without being part of their effect, each found from what is
/// stored so a crash only postpones it: the centre's disposition decisions (waking the sites
/// told to change one), the listings of units put away for resale, refunds once graded,
/// automatic matches of quarantined units, exchange orders due at receipt. After a batch
/// (`batch` = the kinds it applied and when) only the passes those kinds can need run, over
/// what is new; at start and in the hourly sweep (`None`) every pass runs over everything.
pub async fn after_ops_applied(
    ctx: &Ctx,
    batch: Option<(&std::collections::BTreeSet<&'static str>, i64)>,
) -> Result<(), StoreError> {
    let valuation = ctx.config.valuation.clone();
    let resale = ctx.config.resale.clone();
    let policy = ctx.config.policy.clone();
    let sites = ctx.fleet.sites.clone();
    let needs = |kinds: &[&str]| batch.is_none_or(|(k, _)| kinds.iter().any(|x| k.contains(x)));
    let decide = needs(&["disposition_set", "disposition_undone", "unit_graded"]);
    let list = needs(&["unit_put_away"]);
    let refunds = needs(&[
        "unit_graded",
        "parcel_closed",
        "tote_received",
        "receipt_voided",
    ]);
    let matching = needs(&["unit_received"]);
    let since = batch.map(|(_, applied_ms)| applied_ms);
    let now = ctx.clock.now_ms();
    let queued = ctx
        .db
        .call(move |c| {
            let mut queued = Vec::new();
            if decide {
                queued.extend(decisions::decide_pending(c, &valuation, &sites, now)?);
            }
            if list {
                listings::list_pending(c, &resale, now)?;
            }
            if refunds {
                store::commerce::compute_refunds(c, &policy, now)?;
                queued.extend(store::beyond::order_due(c, now)?);
            }
            if matching {
                queued.extend(store::commerce::match_quarantined(c, now, since)?);
            }
            Ok::<_, StoreError>(queued)
        })
        .await?;
    for (site, seq) in &queued {
        ctx.live.command_queued(site, *seq);
    }
    ctx.webhooks_wake();
    Ok(())
}

pub async fn forget_customer(ctx: &Arc<Ctx>, reference: String) -> Result<usize, CoordinatorError> {
    let now_ms = ctx.clock.now_ms();
    let (n, told) = ctx
        .db
        .call(move |c| store::forget_customer(c, &reference, now_ms))
        .await?;
    for (site, seq) in told {
        ctx.live.command_queued(&site, seq);
    }
    Ok(n)
}
