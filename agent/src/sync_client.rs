//! The agent's side of the link: connect, resume, stream the outbox up, apply commands down.
//!
//! One task owns the connection and a closed set of events (a frame arrived, an op was recorded,
//! the retransmit timer fired, shutdown); each event feeds the sans-IO [`Sender`] / [`Receiver`]
//! from `shared` and the task carries out what they say. Between connections it waits with
//! jittered exponential backoff.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use modori_shared::domain::SiteId;
use modori_shared::sync::{cut_batch, BatchLimits, Receiver, Sender};
use modori_shared::wire::handshake::{ClientHello, ServerHello};
use modori_shared::wire::messages::{DeviceHealth, ErrorCode, Message, HEALTH_DEVICES_MAX};
use modori_shared::wire::split_frame;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::store::{self, OutboxStream, StoreError};
use modori_runtime::clock;
use modori_runtime::net::{read_frame, sleep_until_opt, spawn_reader, write_frame, LinkError};
use modori_runtime::sqlite::Db;

/// Longest wait for the QUIC handshake. Without it, an attempt begun while the link was down
/// would wait out the whole idle timeout before a retry could find the healed link.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the coordinator's hello after the connection opens.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, how long to wait for acks of batches already sent before closing.
pub const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// On shutdown, how long to wait for the coordinator to close after our goodbye.
pub const SHUTDOWN_CLOSE_WAIT: Duration = Duration::from_secs(1);
/// A session that lasted this long resets the reconnect backoff to its minimum.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);
/// How often the devices are looked at for a change to report to the coordinator.
pub const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The site's devices right now, for the health reports (protocol ≥ 2).
pub type HealthSource = Arc<dyn Fn() -> Vec<DeviceHealth> + Send + Sync>;

/// What `ctl status` and the metrics show about the link.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LinkStatus {
    pub connected: bool,
    pub protocol_version: Option<u16>,
    pub n_connects: u64,
    pub last_error: Option<String>,
    /// Ops acknowledged per second over the last catch-up window.
    pub ack_rate_ops_per_second: f64,
    /// How far the coordinator's clock is ahead of ours (negative: behind), in milliseconds,
    /// as last measured on connect (protocol ≥ 2).
    pub clock_skew_ms: Option<i64>,
    /// The coordinator address connected to, or tried last.
    pub coordinator: Option<String>,
}

pub struct SyncClient {
    pub site: SiteId,
    pub db: Db,
    pub endpoint: quinn::Endpoint,
    /// The coordinator's replicas, in the order they are tried (`coordinator.address` first).
    pub server_addrs: Vec<std::net::SocketAddr>,
    /// The one tried now: moves to the next when a connection fails or a link ends in an error.
    pub server_at: usize,
    pub server_name: String,
    pub limits: BatchLimits,
    pub protocol_version_max: u16,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub head: watch::Receiver<u64>,
    pub shutdown: watch::Receiver<bool>,
    pub status: Arc<Mutex<LinkStatus>>,
    pub metrics: Arc<crate::metrics::AgentMetrics>,
    pub tls: crate::config::TlsSection,
    pub timing: modori_runtime::tls::LinkTiming,
    /// The key of a renewal asked for on this connection, until the certificate arrives.
    pub pending_renewal: Mutex<Option<String>>,
    pub health: HealthSource,
}

enum SessionEnd {
    Shutdown,
    /// A retired epoch is fully delivered; reconnect at once with the next stream.
    Drained,
}

struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn delay(&mut self) -> Duration {
        let current = self.next;
        self.next = (self.next * 2).min(self.max);
        // Full jitter over the upper half, so nine sites cut by one outage do not reconnect
        // in lockstep.
        let half = current.as_millis() as u64 / 2;
        Duration::from_millis(half + rand::random_range(0..=half.max(1)))
    }
    fn reset(&mut self) {
        self.next = self.min;
    }
}

fn update(status: &Mutex<LinkStatus>, f: impl FnOnce(&mut LinkStatus)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}

impl SyncClient {
    pub async fn run(mut self) {
        let mut backoff = Backoff {
            next: self.backoff_min,
            min: self.backoff_min,
            max: self.backoff_max,
        };
        loop {
            if *self.shutdown.borrow() {
                break;
            }
            let started = Instant::now();
            let result = self.session().await;
            update(&self.status, |s| {
                s.connected = false;
                s.protocol_version = None;
            });
            match result {
                Ok(SessionEnd::Shutdown) => break,
                Ok(SessionEnd::Drained) => continue,
                Err(e) => {
                    let failed = self.server_addr();
                    self.server_at = (self.server_at + 1) % self.server_addrs.len().max(1);
                    warn!(site = %self.site, coordinator = %failed, next = %self.server_addr(),
                          error = %e, "sync session ended");
                    update(&self.status, |s| {
                        s.last_error = Some(format!("{failed}: {e}"))
                    });
                }
            }
            if started.elapsed() > BACKOFF_RESET_AFTER {
                backoff.reset();
            }
            let delay = backoff.delay();
            debug!(site = %self.site, delay_ms = delay.as_millis() as u64, "reconnecting after backoff");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.changed() => {}
            }
        }
        self.endpoint.close(0u32.into(), b"agent stopping");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }

    fn server_addr(&self) -> std::net::SocketAddr {
        // Never empty: `coordinator.address` is always the first.
        self.server_addrs[self.server_at % self.server_addrs.len()]
    }

    async fn session(&mut self) -> Result<SessionEnd, LinkError> {
        // Read from the files at every connection, so a renewed certificate is used at once.
        let client = self
            .tls
            .client_config(self.timing)
            .map_err(|e| LinkError::Protocol(e.to_string()))?;
        let addr = self.server_addr();
        update(&self.status, |s| s.coordinator = Some(addr.to_string()));
        let connecting = self
            .endpoint
            .connect_with(client, addr, &self.server_name)?;
        let conn = tokio::select! {
            c = tokio::time::timeout(CONNECT_TIMEOUT, connecting) => {
                c.map_err(|_| LinkError::Timeout("the QUIC handshake"))??
            }
            _ = self.shutdown.changed() => return Ok(SessionEnd::Shutdown),
        };
        let result = self.converse(&conn).await;
        match &result {
            Ok(SessionEnd::Shutdown | SessionEnd::Drained) => {
                // Closing at once would discard the goodbye still in flight; the coordinator
                // closes the connection when it has read it.
                let _ = tokio::time::timeout(SHUTDOWN_CLOSE_WAIT, conn.closed()).await;
                conn.close(0u32.into(), b"agent shutting down");
            }
            Err(e) => conn.close(1u32.into(), e.to_string().as_bytes()),
        }
        result
    }

    async fn converse(&mut self, conn: &quinn::Connection) -> Result<SessionEnd, LinkError> {
        let (mut send, mut recv) = conn.open_bi().await?;
        let (snap, stream) = self
            .db
            .call(|c| Ok::<_, StoreError>((store::snapshot(c)?, store::next_stream(c)?)))
            .await
            .map_err(store_err)?;
        let (op_epoch, op_acked, op_head) = match stream {
            OutboxStream::Retired {
                epoch,
                head_seq,
                acked_seq,
            } => (epoch, acked_seq, head_seq),
            OutboxStream::Current => (snap.op_epoch, snap.op_acked_seq, snap.op_head_seq),
        };
        let hello = ClientHello::new(
            self.site.to_string(),
            op_epoch,
            snap.command_epoch,
            snap.command_applied_seq,
            self.protocol_version_max,
        );
        write_frame(&mut send, &hello.encode()?).await?;
        let body = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut recv))
            .await
            .map_err(|_| LinkError::Timeout("the coordinator's hello"))??
            .ok_or(LinkError::Closed)?;
        let (version, op_applied) = match ServerHello::decode(&body)? {
            ServerHello::Accepted {
                version,
                op_applied_seq,
            } => (version, op_applied_seq),
            ServerHello::Refused { reason } => return Err(LinkError::Refused(reason)),
        };
        if !(hello.version_min..=hello.version_max).contains(&version) {
            return Err(LinkError::Protocol(format!(
                "coordinator chose protocol version {version}, this agent offered {}..={}",
                hello.version_min, hello.version_max
            )));
        }
        if let OutboxStream::Retired { head_seq, .. } = stream {
            if op_applied > head_seq {
                self.rewound(op_epoch, head_seq, op_applied).await?;
            }
            if op_applied >= head_seq {
                info!(site = %self.site, epoch = %op_epoch, "retired epoch already applied at the coordinator");
                self.db
                    .call(move |c| store::set_op_acked(c, stream, head_seq))
                    .await
                    .map_err(store_err)?;
                goodbye(&mut send, version, "retired epoch delivered").await?;
                return Ok(SessionEnd::Drained);
            }
        }
        let mut sender = Sender::new(op_epoch, op_acked, op_head, self.limits);
        if stream == OutboxStream::Current {
            sender.on_recorded(*self.head.borrow());
        }
        let acked_before = sender.acked();
        if let Some(acked) = sender
            .on_connected(op_applied)
            .map_err(|e| LinkError::Protocol(e.to_string()))?
        {
            if acked < acked_before {
                warn!(site = %self.site, acked_before, coordinator_applied = acked,
                      "coordinator has less than it acknowledged (restored?); sending the difference again");
            }
            self.db
                .call(move |c| store::set_op_acked(c, stream, acked))
                .await
                .map_err(store_err)?;
        }
        let mut commands = snap
            .command_epoch
            .map(|e| Receiver::new(e, snap.command_applied_seq));
        info!(site = %self.site, version, epoch = %op_epoch, retired = (stream != OutboxStream::Current), resume_after = op_applied,
              pending = sender.pending(), "connected to coordinator");
        self.metrics.connects.inc();
        update(&self.status, |s| {
            s.connected = true;
            s.protocol_version = Some(version);
            s.n_connects += 1;
            s.last_error = None;
        });

        if version >= 2 {
            self.maybe_renew(&mut send, version).await?;
        }
        let (mut frames, _reader) = spawn_reader(recv, version);

        let clock = Instant::now();
        let now_ms = || clock.elapsed().as_millis() as u64;
        let mut rate = RateWindow::new(sender.acked());
        let mut draining: Option<tokio::time::Instant> = None;
        // What the coordinator was last told of the devices; `None`: nothing yet.
        let mut health_sent: Option<Vec<(String, bool)>> = None;
        let mut health_tick = tokio::time::interval(HEALTH_CHECK_INTERVAL);
        health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.pump(&mut send, &mut sender, stream, version, now_ms())
                .await?;
            if let Some(deadline) = draining {
                if sender.acked() >= sender.head() || tokio::time::Instant::now() >= deadline {
                    let _ = goodbye(&mut send, version, "agent shutting down").await;
                    return Ok(SessionEnd::Shutdown);
                }
            }
            if stream != OutboxStream::Current && sender.acked() >= sender.head() {
                info!(site = %self.site, epoch = %op_epoch, "retired epoch delivered");
                goodbye(&mut send, version, "retired epoch delivered").await?;
                return Ok(SessionEnd::Drained);
            }
            let timeout = sender
                .poll_timeout()
                .map(|t| clock + Duration::from_millis(t));
            tokio::select! {
                frame = frames.recv() => {
                    let msg = frame.ok_or(LinkError::Closed)??;
                    let coordinator_run_changed = self.handle(msg, conn, &mut send, &mut sender, stream, &mut commands, version, now_ms(), &mut rate).await?;
                    if coordinator_run_changed && self.recheck_retired().await? {
                        goodbye(&mut send, version, "checking retired epochs again").await?;
                        return Ok(SessionEnd::Drained);
                    }
                }
                changed = self.head.changed(), if draining.is_none() && stream == OutboxStream::Current => {
                    if changed.is_ok() {
                        sender.on_recorded(*self.head.borrow());
                    }
                }
                _ = sleep_until_opt(timeout) => {
                    if sender.handle_timeout(now_ms()) {
                        warn!(site = %self.site, acked = sender.acked(), "no ack in time; resending unacknowledged ops");
                    }
                }
                _ = self.shutdown.changed(), if draining.is_none() => {
                    info!(site = %self.site, pending = sender.pending(), "draining before shutdown");
                    draining = Some(tokio::time::Instant::now() + SHUTDOWN_DRAIN_TIMEOUT);
                }
                _ = tokio::time::sleep(Duration::from_millis(100)), if draining.is_some() => {}
                _ = health_tick.tick(), if version >= 2 && draining.is_none() => {
                    self.report_health(&mut send, version, sender.head(), &mut health_sent).await?;
                }
            }
        }
    }

    /// The coordinator has applied more ops of the retired `epoch` than this database ever
    /// held: the database went back in time (a file copied over it, a WAL that lost its tail,
    /// a snapshot). The site already works under the epoch started at this process's start,
    /// so nothing confirmed since collides with what the coordinator has; this records the
    /// fact and reports it upstream, where it becomes an anomaly.
    async fn rewound(
        &self,
        epoch: modori_shared::domain::Epoch,
        head_seq: u64,
        coordinator_seq: u64,
    ) -> Result<(), LinkError> {
        let site = self.site.clone();
        let recorded = self
            .db
            .call(move |c| {
                store::record_rollback(c, &site, epoch, head_seq, coordinator_seq, clock::now_ms())
            })
            .await
            .map_err(store_err)?;
        if let Some(new_epoch) = recorded {
            self.metrics.rollbacks.inc();
            warn!(site = %self.site, %epoch, head_seq, coordinator_seq, %new_epoch,
                  n_lost = coordinator_seq - head_seq,
                  "site database went back in time: the coordinator had more of this epoch than it holds; working on under the new epoch");
        }
        Ok(())
    }

    /// Sends the devices' states when they differ from what was last sent on this connection
    /// (the first time, always).
    async fn report_health(
        &self,
        send: &mut quinn::SendStream,
        version: u16,
        outbox_head_seq: u64,
        sent: &mut Option<Vec<(String, bool)>>,
    ) -> Result<(), LinkError> {
        let mut devices = (self.health)();
        devices.truncate(HEALTH_DEVICES_MAX);
        let now: Vec<(String, bool)> = devices
            .iter()
            .map(|d| (d.name.clone(), d.connected))
            .collect();
        if sent.as_ref() == Some(&now) {
            return Ok(());
        }
        let report = Message::SiteHealth {
            outbox_head_seq,
            devices,
        };
        write_frame(send, &report.encode(version)?).await?;
        debug!(site = %self.site, n_devices = now.len(), "device health reported");
        *sent = Some(now);
        Ok(())
    }

    /// Sends batches while the sender has window and pending ops.
    async fn pump(
        &self,
        send: &mut quinn::SendStream,
        sender: &mut Sender,
        stream: OutboxStream,
        version: u16,
        now_ms: u64,
    ) -> Result<(), LinkError> {
        while let Some(req) = sender.next_batch() {
            let ops = self
                .db
                .call(move |c| store::load_ops(c, stream, req.first_seq, req.ops_max))
                .await
                .map_err(store_err)?;
            let ops = cut_batch(ops, self.limits.bytes_max);
            let Some(last) = ops.last().map(|op| op.seq) else {
                return Err(LinkError::Protocol(format!(
                    "outbox has no op at seq {} although the head is {}: pruned after its ack \
                     (storage.outbox_keep_days)? the coordinator may be restored from an older backup",
                    req.first_seq,
                    sender.head()
                )));
            };
            if ops.first().map(|op| op.seq) != Some(req.first_seq)
                || last - req.first_seq + 1 != ops.len() as u64
            {
                return Err(LinkError::Protocol(format!(
                    "outbox is not contiguous from seq {}: ops the coordinator asks for were \
                     pruned (storage.outbox_keep_days) — was it restored from an older backup?",
                    req.first_seq
                )));
            }
            let frame = Message::OpBatch {
                epoch: sender.epoch(),
                ops,
                outbox_head_seq: Some(sender.head()),
            }
            .encode(version)?;
            debug_assert!(split_frame(&frame).is_ok());
            write_frame(send, &frame).await?;
            sender.on_batch_sent(last, now_ms);
            // Fault tests: die with a batch on the wire and its ack outstanding.
            fail::fail_point!("agent-after-batch-sent", |_| std::process::abort());
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn handle(
        &self,
        msg: Message,
        conn: &quinn::Connection,
        send: &mut quinn::SendStream,
        sender: &mut Sender,
        stream: OutboxStream,
        commands: &mut Option<Receiver>,
        version: u16,
        now_ms: u64,
        rate: &mut RateWindow,
    ) -> Result<bool, LinkError> {
        // Commands of an epoch this site had not seen: the coordinator started again.
        let new_command_epoch = match &msg {
            Message::CommandResume { epoch, .. } | Message::CommandBatch { epoch, .. } => {
                commands.as_ref().map(Receiver::epoch) != Some(*epoch)
            }
            _ => false,
        };
        match msg {
            Message::OpAck { epoch, up_to_seq } => {
                let before = sender.acked();
                let advanced = sender
                    .on_ack(epoch, up_to_seq, now_ms)
                    .map_err(|e| LinkError::Protocol(e.to_string()))?;
                if let Some(acked) = advanced {
                    self.metrics.ops_acked.inc_by(acked - before);
                    self.db
                        .call(move |c| store::set_op_acked(c, stream, acked))
                        .await
                        .map_err(store_err)?;
                    if let Some(ops_per_s) = rate.observe(acked) {
                        update(&self.status, |s| s.ack_rate_ops_per_second = ops_per_s);
                        if sender.pending() > 0 {
                            let eta_s = sender.pending() as f64 / ops_per_s.max(1.0);
                            info!(site = %self.site, pending = sender.pending(), ops_per_s = ops_per_s as u64,
                                  eta_s = eta_s as u64, "catching up");
                        }
                    }
                }
            }
            Message::CommandBatch {
                epoch,
                commands: batch,
            } => {
                let current = match commands {
                    Some(r) if r.epoch() == epoch => r.applied(),
                    _ => 0,
                };
                let (plan, rejected, op_head) = self
                    .db
                    .call(move |c| {
                        let receiver = Receiver::new(epoch, current);
                        let plan = receiver.plan(&batch, |seq| {
                            store::command_hash(c, epoch, seq).ok().flatten()
                        });
                        for conflict in &plan.conflicts {
                            warn!(seq = conflict.seq, epoch = %epoch, "command replayed with a different payload; kept the first");
                        }
                        let rejected = store::apply_commands(c, epoch, &batch, &plan, clock::now_ms())?;
                        let op_head = store::snapshot(c)?.op_head_seq;
                        Ok::<_, StoreError>((plan, rejected, op_head))
                    })
                    .await
                    .map_err(store_err)?;
                // A command can record ops (an override's correction): send them too.
                if stream == OutboxStream::Current {
                    sender.on_recorded(op_head);
                }
                for (seq, error) in rejected {
                    warn!(site = %self.site, seq, error, "command could not be decoded; recorded and skipped");
                }
                fail::fail_point!("agent-before-command-ack", |_| std::process::abort());
                let receiver = match commands {
                    Some(r) if r.epoch() == epoch => r,
                    _ => commands.insert(Receiver::new(epoch, current)),
                };
                let up_to_seq = receiver.commit(&plan);
                self.metrics
                    .commands_applied
                    .inc_by(plan.apply.len() as u64);
                let ack = Message::CommandAck { epoch, up_to_seq }.encode(version)?;
                write_frame(send, &ack).await?;
            }
            Message::Error { code, message } => {
                return Err(LinkError::Refused(format!("{code:?}: {message}")));
            }
            Message::CertificateRenewed { cert_der } => self.install_renewal(&cert_der),
            Message::RenewalRefused { reason } => {
                warn!(site = %self.site, reason, "the coordinator refused to renew this site's certificate");
            }
            Message::CommandResume {
                from_epoch,
                epoch,
                after_seq,
            } => {
                // Only the position this connection's hello reported can be carried over;
                // starting the new epoch from scratch is always safe.
                let reported = commands.as_ref().map(|r| (r.epoch(), r.applied()));
                if after_seq > 0 && reported != Some((from_epoch, after_seq)) {
                    return Err(LinkError::Protocol(format!(
                        "the coordinator carries command seq {after_seq} of epoch {from_epoch} \
                         over, but this site is at {reported:?}"
                    )));
                }
                self.db
                    .call(move |c| store::carry_commands_over(c, from_epoch, epoch, after_seq))
                    .await
                    .map_err(store_err)?;
                info!(site = %self.site, %from_epoch, %epoch, after_seq, "command position carried over to the coordinator's new epoch");
                *commands = Some(Receiver::new(epoch, after_seq));
            }
            Message::Clock { unix_ms } => {
                let skew = clock_skew_ms(unix_ms, clock::now_ms(), conn.rtt());
                if skew.abs() > CLOCK_SKEW_WARN_MS {
                    warn!(site = %self.site, skew_ms = skew, "this site's clock is off from the coordinator's");
                }
                update(&self.status, |s| s.clock_skew_ms = Some(skew));
            }
            other @ (Message::OpBatch { .. }
            | Message::CommandAck { .. }
            | Message::RenewCertificate { .. }
            | Message::SiteHealth { .. }) => {
                return Err(LinkError::Protocol(format!(
                    "unexpected {} from the coordinator",
                    other.kind()
                )));
            }
        }
        Ok(new_command_epoch)
    }

    /// Marks the retired epochs still holding ops to be checked again; whether there were any.
    async fn recheck_retired(&self) -> Result<bool, LinkError> {
        let n = self
            .db
            .call(|c| store::recheck_retired(c))
            .await
            .map_err(store_err)?;
        if n > 0 {
            info!(site = %self.site, n_epochs = n, "the coordinator started again; checking retired epochs with it");
        }
        Ok(n > 0)
    }
}

impl SyncClient {
    /// Asks for a new certificate when this one expires within `renew_before_days`.
    async fn maybe_renew(
        &self,
        send: &mut quinn::SendStream,
        version: u16,
    ) -> Result<(), LinkError> {
        if self.tls.renew_before_days == 0 {
            return Ok(());
        }
        let now = clock::now_ms().div_euclid(1000);
        let days_left = modori_runtime::tls::cert_days_left(&self.tls.cert, now)
            .map_err(|e| LinkError::Protocol(e.to_string()))?;
        if days_left >= i64::from(self.tls.renew_before_days) {
            return Ok(());
        }
        let (key_pem, csr_der) = modori_runtime::tls::renewal_request(self.site.as_str())
            .map_err(|e| LinkError::Protocol(e.to_string()))?;
        if let Ok(mut pending) = self.pending_renewal.lock() {
            *pending = Some(key_pem);
        }
        info!(site = %self.site, days_left, "asking the coordinator to renew this site's certificate");
        write_frame(
            send,
            &Message::RenewCertificate { csr_der }.encode(version)?,
        )
        .await
    }

    /// Puts a renewed certificate in place; the next connection presents it.
    fn install_renewal(&self, cert_der: &[u8]) {
        let Some(key_pem) = self.pending_renewal.lock().ok().and_then(|mut p| p.take()) else {
            warn!(site = %self.site, "a certificate arrived that this connection did not ask for; ignored");
            return;
        };
        let installed = modori_runtime::tls::install_renewed(
            &self.tls.cert,
            &self.tls.key,
            self.site.as_str(),
            &key_pem,
            cert_der,
        );
        match installed {
            Ok(not_after) => {
                info!(site = %self.site, not_after, "certificate renewed; used from the next connection")
            }
            Err(e) => {
                warn!(site = %self.site, error = %e, "renewed certificate not installed; the old one stays")
            }
        }
    }
}

/// Tells the coordinator this conversation ends on purpose, then finishes the stream.
async fn goodbye(send: &mut quinn::SendStream, version: u16, why: &str) -> Result<(), LinkError> {
    let bye = Message::Error {
        code: ErrorCode::ShuttingDown,
        message: why.into(),
    };
    write_frame(send, &bye.encode(version)?).await?;
    let _ = send.finish();
    Ok(())
}

/// The coordinator's clock minus ours, in milliseconds: its reading was taken about half a
/// round trip before we received it.
pub fn clock_skew_ms(coordinator_ms: i64, received_ms: i64, rtt: Duration) -> i64 {
    coordinator_ms + i64::try_from(rtt.as_millis() / 2).unwrap_or(0) - received_ms
}

/// A clock off by more than this is logged: op timestamps come from the site's clock.
pub const CLOCK_SKEW_WARN_MS: i64 = 2_000;

fn store_err(e: StoreError) -> LinkError {
    match e {
        StoreError::Db(db) => LinkError::Db(db),
        other => LinkError::Protocol(other.to_string()),
    }
}

/// Ack throughput over windows of at least a second, for catch-up progress.
struct RateWindow {
    since: Instant,
    acked_at_start: u64,
}

impl RateWindow {
    fn new(acked: u64) -> Self {
        Self {
            since: Instant::now(),
            acked_at_start: acked,
        }
    }

    fn observe(&mut self, acked: u64) -> Option<f64> {
        let elapsed = self.since.elapsed();
        if elapsed < Duration::from_secs(1) {
            return None;
        }
        let rate = (acked - self.acked_at_start) as f64 / elapsed.as_secs_f64();
        *self = Self::new(acked);
        Some(rate)
    }
}
