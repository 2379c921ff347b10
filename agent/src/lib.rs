//! The Modori site agent: a library, so the demo and the tests can run agents in-process, with
//! a thin `modori-agent` binary around it.
//!
//! Architecture invariant: the site keeps working with no coordinator. Every station action is
//! committed to the local SQLite (with its outbox op) before it is confirmed; the sync client
//! only ever reads the outbox and never blocks a station.

pub mod cli;
pub mod config;
pub mod ctl;
pub mod devices;
pub mod doctor;
pub mod metrics;
pub mod restore;
pub mod stations;
pub mod store;
pub mod sync_client;
pub mod work;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::devices::printer::{PrinterDriver, PrinterHandle};
use crate::devices::scanner::ScannerDriver;
use modori_shared::station::Station;

use modori_shared::domain::{Disposition, Grade, Lpn, RmaId, SiteId, Sku};
use serde::Serialize;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::AgentConfig;
use crate::metrics::AgentMetrics;
use crate::store::StoreError;
use crate::sync_client::{LinkStatus, SyncClient};
use crate::work::{Actor, Recorded};
use modori_runtime::clock;
use modori_runtime::sqlite::{Db, DbError};
use modori_runtime::tls::TlsError;
use modori_runtime::{generations, tls};
use modori_shared::station::{Effect, ReceiptKind};

#[derive(Debug, Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Generations(#[from] generations::GenerationsError),
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("QUIC endpoint: {0}")]
    Endpoint(#[source] std::io::Error),
    #[error("metrics listener {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("ctl socket {path}: {source}")]
    Ctl {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The station name of actions taken through `ctl` (a supervisor at a terminal).
pub const CTL_STATION: &str = "ctl";

/// A unit received outside a station's parcel flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub lpn: Lpn,
    pub seq: u64,
    pub receipt: ReceiptKind,
}

/// `ctl status`: where the site stands.
#[derive(Clone, Debug, Serialize)]
pub struct AgentStatus {
    /// One line first: site, local time, link, backlog, devices up and down.
    pub summary: String,
    pub site: String,
    pub epoch: String,
    pub connected: bool,
    pub protocol_version: Option<u16>,
    pub outbox_head_seq: u64,
    pub outbox_pending: u64,
    /// Ops of retired epochs (each start retires one), still to deliver before the current
    /// epoch's.
    pub retired_pending: u64,
    /// Ops this database recorded in all its epochs.
    pub n_ops_recorded: u64,
    pub last_acked_seq: u64,
    pub command_epoch: Option<String>,
    pub last_applied_command_seq: u64,
    pub ack_rate_ops_per_second: f64,
    pub estimated_catch_up_seconds: Option<f64>,
    pub n_connects: u64,
    pub last_error: Option<String>,
    /// The coordinator's clock minus this site's, in milliseconds, when last measured.
    pub clock_skew_ms: Option<i64>,
    /// The coordinator address connected to, or tried last (one of `coordinator.address`
    /// and `coordinator.replicas`).
    pub coordinator: Option<String>,
    pub devices: Vec<DeviceStatus>,
    pub stations: Vec<stations::StationStatus>,
    /// Each time the database was found to have gone back in time, newest first.
    pub database_rollbacks: Vec<store::Rollback>,
}

/// The line `ctl status` opens with: what a technician looks at first.
pub fn status_summary(
    site: &SiteId,
    connected: bool,
    backlog_ops: u64,
    devices: &[DeviceStatus],
    now_ms: i64,
    utc_offset_minutes: i32,
) -> String {
    let down: Vec<&str> = devices
        .iter()
        .filter(|d| !d.state.is_connected())
        .map(|d| d.name.as_str())
        .collect();
    let n_up = devices.len() - down.len();
    let down_list = if down.is_empty() {
        String::new()
    } else {
        format!(" ({})", down.join(", "))
    };
    format!(
        "{site} {}: link {}, backlog {backlog_ops} ops, devices {n_up} up / {} down{down_list}",
        local_time(now_ms, utc_offset_minutes),
        if connected { "up" } else { "down" },
        down.len(),
    )
}

/// `YYYY-MM-DD hh:mm:ss +hh:mm` at a fixed offset from UTC (Japan keeps no daylight saving,
/// so a fixed offset is its time zone).
pub fn local_time(unix_ms: i64, utc_offset_minutes: i32) -> String {
    let secs = unix_ms.div_euclid(1000) + i64::from(utc_offset_minutes) * 60;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let sign = if utc_offset_minutes < 0 { '-' } else { '+' };
    let offset = utc_offset_minutes.unsigned_abs();
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} {sign}{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        offset / 60,
        offset % 60
    )
}

/// A scanner or printer and its state, for `ctl status` and metrics.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceStatus {
    pub name: String,
    pub kind: &'static str,
    pub state: devices::DeviceState,
    /// Label jobs waiting (printers only).
    pub n_jobs_waiting: Option<usize>,
}

/// A running agent. Clone the [`AgentHandle`] to use it from several tasks.
pub struct Agent {
    handle: AgentHandle,
    metrics_addr: Option<std::net::SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Clone)]
pub struct AgentHandle {
    site: SiteId,
    db: Db,
    head: Arc<watch::Sender<u64>>,
    link: Arc<Mutex<LinkStatus>>,
    metrics: Arc<AgentMetrics>,
    devices: Arc<Mutex<Vec<DeviceSource>>>,
    stations: Arc<Mutex<Vec<Arc<Mutex<stations::StationStatus>>>>>,
    printers: Arc<Mutex<HashMap<String, PrinterHandle>>>,
    /// The site's offset from UTC, for the times `ctl status` shows.
    utc_offset_minutes: i32,
}

#[derive(Clone)]
struct DeviceSource {
    name: String,
    kind: &'static str,
    state: watch::Receiver<devices::DeviceState>,
    printer: Option<PrinterHandle>,
}

impl Agent {
    /// Opens the database (creating it and its epoch on first start), then starts the sync
    /// client and the ctl socket. Returns as soon as the database is usable: a site works
    /// without its coordinator.
    pub async fn start(config: AgentConfig) -> Result<Self, AgentError> {
        tls::install_crypto_provider();
        let site = config.site_id();
        std::fs::create_dir_all(&config.storage.data_dir).map_err(|source| {
            AgentError::DataDir {
                path: config.storage.data_dir.clone(),
                source,
            }
        })?;
        let created = !config.db_path().exists();
        let db = Db::open_with(
            &config.db_path(),
            &store::migrations(),
            config.storage.database_bytes_max,
        )?;
        let init_site = site.clone();
        let found = db.call(move |c| store::init(c, &init_site)).await?;
        // A new epoch at every start, its LPN generation reserved beside the database first:
        // whatever state the database came back in (a copy, a damaged WAL, a snapshot), what
        // is confirmed from here on has keys and labels never used before.
        let epochs = generations::path_for(&config.db_path());
        let lost = generations::lost_after(&generations::read(&epochs)?, found.op_epoch);
        if !lost.is_empty() {
            warn!(site = %site, db_epoch = %found.op_epoch, n_runs_lost = lost.len(),
                  "the site database is older than the last run of this data directory; checking with the coordinator what it lost");
        }
        let epoch = generations::reserve(&epochs, found.op_epoch)?;
        let snap = db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                store::start_epoch_at_boot(
                    &tx,
                    modori_runtime::clock::now_ms(),
                    epoch,
                    &lost,
                    created,
                )?;
                tx.commit()?;
                store::snapshot(c)
            })
            .await?;
        info!(site = %site, found_epoch = %found.op_epoch, found_head = found.op_head_seq,
              found_acked = found.op_acked_seq, epoch = %snap.op_epoch,
              db = %config.db_path().display(), "site database open under a new epoch");

        // Checked now so a bad certificate stops the start with a clear error.
        let client = config.tls.client_config(config.sync.timing())?;
        let bind: std::net::SocketAddr = if config.coordinator.address.is_ipv6() {
            "[::]:0".parse().expect("literal address")
        } else {
            "0.0.0.0:0".parse().expect("literal address")
        };
        let mut endpoint = quinn::Endpoint::client(bind).map_err(AgentError::Endpoint)?;
        endpoint.set_default_client_config(client);

        let (head_tx, head_rx) = watch::channel(snap.op_head_seq);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let handle = AgentHandle {
            site: site.clone(),
            db: db.clone(),
            head: Arc::new(head_tx),
            link: Arc::new(Mutex::new(LinkStatus::default())),
            metrics: Arc::new(AgentMetrics::default()),
            devices: Arc::default(),
            stations: Arc::default(),
            printers: Arc::default(),
            utc_offset_minutes: config.site.utc_offset_minutes,
        };
        let client = SyncClient {
            site,
            db,
            endpoint,
            server_addrs: config.coordinator.addresses(),
            server_at: 0,
            server_name: config.coordinator.server_name.clone(),
            limits: config.sync.limits(),
            protocol_version_max: config.sync.protocol_version_max,
            backoff_min: std::time::Duration::from_millis(config.sync.reconnect_backoff_min_ms),
            backoff_max: std::time::Duration::from_millis(config.sync.reconnect_backoff_max_ms),
            head: head_rx,
            shutdown: shutdown_rx.clone(),
            status: handle.link.clone(),
            metrics: handle.metrics.clone(),
            tls: config.tls.clone(),
            timing: config.sync.timing(),
            pending_renewal: Mutex::new(None),
            health: {
                let handle = handle.clone();
                Arc::new(move || handle.device_health())
            },
        };
        let mut tasks = vec![tokio::spawn(client.run())];
        tasks.extend(start_stations(&config, &handle, &shutdown_rx));
        let listener = ctl::bind(&config.ctl_socket()).map_err(|source| AgentError::Ctl {
            path: config.ctl_socket(),
            source,
        })?;
        tasks.push(tokio::spawn(ctl::serve(
            listener,
            handle.clone(),
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(privacy_sweeps(
            handle.db.clone(),
            config.privacy.retention_days,
            config.storage.outbox_keep_days,
            shutdown_rx.clone(),
        )));
        let mut metrics_addr = None;
        if let Some(addr) = config.metrics.listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| AgentError::Metrics { addr, source })?;
            metrics_addr = listener.local_addr().ok();
            tasks.push(tokio::spawn(metrics::serve(
                listener,
                handle.clone(),
                shutdown_rx,
            )));
        }
        Ok(Self {
            handle,
            metrics_addr,
            shutdown,
            tasks,
        })
    }

    pub fn handle(&self) -> AgentHandle {
        self.handle.clone()
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    /// Stops taking work, lets the sync client drain what it has in flight, closes the link
    /// with a reason, and waits for every task.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // Stopped means the database file is closed and whole, not closing in the background.
        self.handle.db.close().await;
    }
}

/// How often personal data past its retention period is erased and old acknowledged ops are
/// pruned.
pub const PRIVACY_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Erases personal data past `retention_days` and prunes acknowledged ops older than
/// `outbox_keep_days`, at start and then every
/// [`PRIVACY_SWEEP_INTERVAL`].
async fn privacy_sweeps(
    db: Db,
    retention_days: u32,
    outbox_keep_days: u32,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let cutoff = clock::now_ms() - i64::from(retention_days) * 86_400_000;
        match db
            .call(move |c| store::erase_personal_data_before(c, cutoff))
            .await
        {
            Ok(0) => {}
            Ok(n) => info!(
                n_rows = n,
                retention_days, "personal data past its retention erased"
            ),
            Err(e) => tracing::warn!(error = %e, "personal data sweep failed"),
        }
        if outbox_keep_days > 0 {
            let cutoff = clock::now_ms() - i64::from(outbox_keep_days) * 86_400_000;
            match db.call(move |c| store::prune_outbox(c, cutoff)).await {
                Ok(0) => {}
                Ok(n) => info!(
                    n_ops = n,
                    outbox_keep_days, "acknowledged ops pruned from the outbox"
                ),
                Err(e) => tracing::warn!(error = %e, "outbox pruning failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PRIVACY_SWEEP_INTERVAL) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// Starts the device drivers and the stations that use them.
fn start_stations(
    config: &AgentConfig,
    handle: &AgentHandle,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut sources = Vec::new();
    let mut printers = HashMap::new();
    for p in &config.printers {
        let (driver, printer) = PrinterDriver::new(p.clone(), shutdown.clone());
        tasks.push(tokio::spawn(driver.run()));
        sources.push(DeviceSource {
            name: p.name.clone(),
            kind: "printer",
            state: printer.state(),
            printer: Some(printer.clone()),
        });
        printers.insert(p.name.clone(), printer);
    }
    let mut scans = HashMap::new();
    for sc in &config.scanners {
        let (tx, rx) = tokio::sync::mpsc::channel(stations::SCAN_QUEUE_DEPTH);
        let (driver, state) = ScannerDriver::new(sc.clone(), tx, shutdown.clone());
        tasks.push(tokio::spawn(driver.run()));
        sources.push(DeviceSource {
            name: sc.name.clone(),
            kind: "scanner",
            state,
            printer: None,
        });
        scans.insert(sc.name.clone(), rx);
    }
    let mut statuses = Vec::new();
    for st in &config.stations {
        // Validated: the scanner exists and serves this station only.
        let Some(rx) = scans.remove(&st.scanner) else {
            continue;
        };
        let status = Arc::new(Mutex::new(stations::StationStatus {
            id: st.id.clone(),
            kind: format!("{:?}", st.kind).to_lowercase(),
            ..Default::default()
        }));
        statuses.push(status.clone());
        let runtime = stations::StationRuntime {
            id: st.id.clone(),
            station: Arc::new(Mutex::new(Station::new(st.kind.into()))),
            agent: handle.clone(),
            printer: st.printer.as_ref().and_then(|p| printers.get(p).cloned()),
            scans: rx,
            status,
            shutdown: shutdown.clone(),
        };
        tasks.push(tokio::spawn(runtime.run()));
    }
    if let Ok(mut d) = handle.devices.lock() {
        *d = sources;
    }
    if let Ok(mut s) = handle.stations.lock() {
        *s = statuses;
    }
    if let Ok(mut p) = handle.printers.lock() {
        *p = printers;
    }
    tasks
}

impl AgentHandle {
    /// Device states right now.
    pub fn devices(&self) -> Vec<DeviceStatus> {
        let sources = self.devices.lock().map(|d| d.clone()).unwrap_or_default();
        sources
            .into_iter()
            .map(|d| DeviceStatus {
                name: d.name,
                kind: d.kind,
                state: d.state.borrow().clone(),
                n_jobs_waiting: d.printer.map(|p| p.n_jobs_waiting()),
            })
            .collect()
    }

    /// Device states as the coordinator is told them.
    pub fn device_health(&self) -> Vec<modori_shared::wire::messages::DeviceHealth> {
        self.devices()
            .into_iter()
            .map(|d| {
                let (connected, since_unix_ms) = match &d.state {
                    devices::DeviceState::Connected { since_unix_ms, .. } => (true, *since_unix_ms),
                    devices::DeviceState::Disconnected { since_unix_ms, .. } => {
                        (false, *since_unix_ms)
                    }
                };
                modori_shared::wire::messages::DeviceHealth {
                    name: d.name,
                    kind: d.kind.to_owned(),
                    connected,
                    since_unix_ms,
                    n_jobs_waiting: d
                        .n_jobs_waiting
                        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                }
            })
            .collect()
    }

    /// A printer by name, or the first one when `name` is `None`.
    pub fn printer(&self, name: Option<&str>) -> Option<PrinterHandle> {
        let printers = self.printers.lock().ok()?;
        match name {
            Some(n) => printers.get(n).cloned(),
            None => {
                let mut names: Vec<&String> = printers.keys().collect();
                names.sort();
                names.first().and_then(|n| printers.get(*n).cloned())
            }
        }
    }

    pub fn site(&self) -> &SiteId {
        &self.site
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn metrics(&self) -> &AgentMetrics {
        &self.metrics
    }

    fn recorded(&self, seq: u64) {
        self.head.send_modify(|head| *head = (*head).max(seq));
    }

    /// Receives one unit; returns once the receipt and its op are durable.
    /// Records a station effect; returns once it (and its op) is durable.
    pub async fn record(&self, effect: Effect, who: Actor) -> Result<Recorded, AgentError> {
        let site = self.site.clone();
        let recorded = self
            .db
            .call(move |c| work::record(c, &site, &who, &effect, clock::now_ms()))
            .await?;
        if recorded.seq > 0 {
            self.recorded(recorded.seq);
        }
        Ok(recorded)
    }

    /// Receives one unit outside a station's parcel flow (a supervisor's `ctl receive`, the
    /// simulated crew): classified against the expected return, as a station would.
    pub async fn receive_unit(
        &self,
        rma: Option<RmaId>,
        sku: Sku,
        operator: &str,
    ) -> Result<Receipt, AgentError> {
        self.receive_unit_with_reference(rma, sku, operator, None)
            .await
    }

    /// [`Self::receive_unit`] with what was found with an unidentified parcel.
    pub async fn receive_unit_with_reference(
        &self,
        rma: Option<RmaId>,
        sku: Sku,
        operator: &str,
        reference: Option<String>,
    ) -> Result<Receipt, AgentError> {
        let site = self.site.clone();
        let who = Actor::new(operator, CTL_STATION);
        let (recorded, receipt) = self
            .db
            .call(move |c| {
                let receipt = work::receipt_kind(c, rma.as_ref(), &sku)?;
                // A return not expected here is no return of this site: its unit goes to
                // quarantine unattached, the RMA kept as the reference to match it by.
                let (rma, parcel_ref) = match receipt {
                    ReceiptKind::Unidentified => {
                        (None, reference.or_else(|| rma.map(|r| r.to_string())))
                    }
                    _ => (rma, reference),
                };
                let effect = Effect::Receive {
                    rma,
                    sku,
                    receipt,
                    parcel_ref,
                };
                Ok::<_, StoreError>((
                    work::record(c, &site, &who, &effect, clock::now_ms())?,
                    receipt,
                ))
            })
            .await?;
        self.recorded(recorded.seq);
        let lpn = recorded
            .lpn
            .ok_or_else(|| StoreError::Corrupt("a receipt recorded no LPN".into()))?;
        Ok(Receipt {
            lpn,
            seq: recorded.seq,
            receipt,
        })
    }

    pub async fn grade_unit(
        &self,
        lpn: Lpn,
        grade: Grade,
        operator: &str,
    ) -> Result<u64, AgentError> {
        let who = Actor::new(operator, CTL_STATION);
        let effect = Effect::Grade {
            lpn,
            grade,
            defects: Vec::new(),
        };
        Ok(self.record(effect, who).await?.seq)
    }

    pub async fn dispose_unit(
        &self,
        lpn: Lpn,
        disposition: Disposition,
        operator: &str,
    ) -> Result<u64, AgentError> {
        let who = Actor::new(operator, CTL_STATION);
        Ok(self
            .record(Effect::Dispose { lpn, disposition }, who)
            .await?
            .seq)
    }

    pub async fn status(&self) -> Result<AgentStatus, AgentError> {
        let (snap, retired_pending, n_ops_recorded, database_rollbacks) = self
            .db
            .call(|c| {
                Ok::<_, StoreError>((
                    store::snapshot(c)?,
                    store::retired_pending(c)?,
                    store::ops_recorded(c)?,
                    store::rollbacks(c)?,
                ))
            })
            .await?;
        let link = self.link.lock().map(|l| l.clone()).unwrap_or_default();
        let pending = snap.op_head_seq - snap.op_acked_seq.min(snap.op_head_seq);
        let rate = link.ack_rate_ops_per_second;
        let devices = self.devices();
        let summary = status_summary(
            &self.site,
            link.connected,
            pending,
            &devices,
            modori_runtime::clock::now_ms(),
            self.utc_offset_minutes,
        );
        Ok(AgentStatus {
            summary,
            site: self.site.to_string(),
            epoch: snap.op_epoch.to_string(),
            connected: link.connected,
            protocol_version: link.protocol_version,
            outbox_head_seq: snap.op_head_seq,
            outbox_pending: pending,
            retired_pending,
            n_ops_recorded,
            last_acked_seq: snap.op_acked_seq,
            command_epoch: snap.command_epoch.map(|e| e.to_string()),
            last_applied_command_seq: snap.command_applied_seq,
            ack_rate_ops_per_second: rate,
            estimated_catch_up_seconds: (pending > 0 && rate > 0.0).then(|| pending as f64 / rate),
            n_connects: link.n_connects,
            last_error: link.last_error,
            clock_skew_ms: link.clock_skew_ms,
            coordinator: link.coordinator.clone(),
            devices,
            stations: self
                .stations
                .lock()
                .map(|s| {
                    s.iter()
                        .filter_map(|st| st.lock().ok().map(|x| x.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            database_rollbacks,
        })
    }
}

#[cfg(test)]
mod status_tests {
    use super::*;

    #[test]
    fn the_summary_line_shows_local_time_link_backlog_and_devices() {
        // 2026-12-04 15:32:44 UTC is 2026-12-05 00:32:44 in Tokyo.
        let now_ms = 1_796_398_364_000;
        assert_eq!(local_time(now_ms, 540), "2026-12-05 00:32:44 +09:00");
        assert_eq!(local_time(now_ms, 0), "2026-12-04 15:32:44 +00:00");
        assert_eq!(local_time(0, -90), "1969-12-31 22:30:00 -01:30");
        let device = |name: &str, up: bool| DeviceStatus {
            name: name.into(),
            kind: "scanner",
            state: if up {
                devices::DeviceState::Connected {
                    device: "/dev/pts/3".into(),
                    since_unix_ms: 0,
                }
            } else {
                devices::DeviceState::Disconnected {
                    since_unix_ms: 0,
                    n_failures: 1,
                    last_error: None,
                }
            },
            n_jobs_waiting: None,
        };
        let site = SiteId::new("osaka").unwrap();
        let devices = [device("scan-recv", true), device("zebra-1", false)];
        assert_eq!(
            status_summary(&site, false, 12, &devices, now_ms, 540),
            "osaka 2026-12-05 00:32:44 +09:00: link down, backlog 12 ops, \
             devices 1 up / 1 down (zebra-1)"
        );
    }
}
