//! The coordinator's side of the link: accept agents, learn who they are from their
//! certificate, apply their ops exactly once, and stream their commands down.
//!
//! One task per connection, looping over a closed set of events (frame arrived, command queued,
//! retransmit timer, shutdown) and feeding the sans-IO machines from `shared`. Each connection
//! has at most one batch being applied at a time and the database queue is FIFO, so a site
//! with a huge backlog takes its turn with the others instead of starving them, and a fast
//! agent is slowed by its own unacknowledged window rather than buffered without bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesOrdered, StreamExt};
use modori_runtime::net::{read_frame, sleep_until_opt, spawn_reader, write_frame, LinkError};
use modori_runtime::tls::{self, TlsError};
use modori_shared::domain::{Epoch, SiteId};
use modori_shared::sync::{cut_batch, Sender};
use modori_shared::wire::handshake::{negotiate, ClientHello, ServerHello};
use modori_shared::wire::messages::{
    ErrorCode, Message, HEALTH_DEVICES_MAX, HEALTH_NAME_BYTES_MAX,
};
use modori_shared::wire::{PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tracing::{debug, info, warn};

use crate::anomaly::AnomalyKind;
use crate::refusals::{Refusal, RefusalLog};
use crate::revocation::{site_from_der, Revocations, RevokingVerifier};
use crate::store::command_epochs::Resume;
use crate::store::details::Detail;
use crate::store::{self, StoreError};
use crate::Ctx;

/// Longest wait for an agent's hello after its connection opens.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Server configuration: requires a client certificate signed by the fleet CA. 0-RTT is off
/// (`max_early_data_size` stays 0), so no op or command can ride a replayable first flight.
pub fn server_config(
    ca: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    timing: tls::LinkTiming,
    revocations: Arc<Revocations>,
) -> Result<quinn::ServerConfig, TlsError> {
    let roots = Arc::new(tls::root_store(ca)?);
    let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, tls::provider())
        .build()
        .map_err(|e| TlsError::Quic(format!("client verifier: {e}")))?;
    let verifier = Arc::new(RevokingVerifier { inner, revocations });
    let mut tls_config = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    tls_config.alpn_protocols = vec![tls::ALPN.to_vec()];
    tls_config.max_early_data_size = 0;
    // No session resumption: a resumed session skips the client certificate check, so a
    // revoked site could come back on a ticket. Links are long-lived; a full handshake is cheap.
    tls_config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    tls_config.send_tls13_tickets = 0;
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls_config)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(Arc::new(tls::transport_config(
        timing,
        tls::LinkEnd::Coordinator,
    )?));
    Ok(config)
}

/// The site a verified connection belongs to: the common name of its client certificate.
pub fn site_from_certificate(conn: &quinn::Connection) -> Result<SiteId, String> {
    let identity = conn.peer_identity().ok_or("no client certificate")?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| "unexpected peer identity type")?;
    let leaf = chain.first().ok_or("empty certificate chain")?;
    site_from_der(leaf.as_ref())
}

/// Accepts connections until shutdown, each in its own task, up to the connection limit.
pub async fn serve(endpoint: quinn::Endpoint, ctx: Arc<Ctx>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(ctx.config.quic.connections_max));
    let mut shutdown = ctx.shutdown.clone();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => match i { Some(i) => i, None => break },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let remote = incoming.remote_address();
            if let Err(e) = handle(incoming, ctx).await {
                debug!(%remote, error = %e, "agent connection ended");
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    // Every connection task sees the same shutdown signal and closes with a reason.
    while tasks.join_next().await.is_some() {}
    endpoint.close(0u32.into(), b"coordinator stopping");
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
}

/// Refusals before a link is up are logged at most once per reason per interval.
static REFUSAL_LOG: RefusalLog = RefusalLog::new();

/// A connection refused before it became a site's link: counted by reason, logged sparingly.
fn refused(ctx: &Ctx, peer: std::net::SocketAddr, reason: Refusal, detail: &str) {
    ctx.metrics.handshake_refused(reason);
    REFUSAL_LOG.refused(Instant::now(), peer, reason, detail);
}

async fn handle(incoming: quinn::Incoming, ctx: Arc<Ctx>) -> Result<(), LinkError> {
    let peer = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            refused(&ctx, peer, Refusal::of_handshake(&e), &e.to_string());
            return Err(e.into());
        }
    };
    let site = match site_from_certificate(&conn) {
        Ok(site) if ctx.fleet.site(&site).is_some() => site,
        Ok(site) => {
            let detail = format!("certificate of site {site}, which is not in the fleet");
            refused(&ctx, peer, Refusal::UnknownSite, &detail);
            conn.close(2u32.into(), b"unknown site");
            return Err(LinkError::Refused(format!("unknown site {site}")));
        }
        Err(e) => {
            refused(&ctx, peer, Refusal::BadIdentity, &e);
            conn.close(2u32.into(), e.as_bytes());
            return Err(LinkError::Refused(e));
        }
    };
    let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
    let result = converse(&conn, &site, id, &ctx).await;
    ctx.live.disconnect(&site, id);
    match &result {
        Ok(()) => {
            info!(site = %site, "agent disconnected");
            conn.close(0u32.into(), b"bye");
        }
        Err(e) => {
            info!(site = %site, error = %e, "agent connection ended");
            conn.close(1u32.into(), e.to_string().as_bytes());
        }
    }
    result
}

async fn refuse(send: &mut quinn::SendStream, reason: String) -> Result<(), LinkError> {
    write_frame(
        send,
        &ServerHello::Refused {
            reason: reason.clone(),
        }
        .encode()?,
    )
    .await?;
    let _ = send.finish();
    // Give the refusal time to reach the agent before the connection is closed.
    let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
    Err(LinkError::Refused(reason))
}

async fn converse(
    conn: &quinn::Connection,
    site: &SiteId,
    id: u64,
    ctx: &Arc<Ctx>,
) -> Result<(), LinkError> {
    let (mut send, mut recv) = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi())
        .await
        .map_err(|_| LinkError::Timeout("the agent's stream"))??;
    let body = tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut recv))
        .await
        .map_err(|_| LinkError::Timeout("the agent's hello"))??
        .ok_or(LinkError::Closed)?;
    let hello = ClientHello::decode(&body)?;
    let version = match negotiate(
        (PROTOCOL_VERSION_MIN, PROTOCOL_VERSION),
        (hello.version_min, hello.version_max),
    ) {
        Ok(v) => v,
        Err(e) => {
            warn!(site = %site, error = %e, "refusing agent: protocol version");
            ctx.metrics.handshake_refused(Refusal::ProtocolVersion);
            return refuse(&mut send, e.to_string()).await;
        }
    };
    if hello.site != site.as_str() {
        let detail = Detail::hello_site_mismatch(&hello.site, site.as_str());
        let s = site.clone();
        let now_ms = ctx.clock.now_ms();
        ctx.db
            .call(move |c| {
                store::record_anomaly(c, &s, AnomalyKind::HelloSiteMismatch, &detail, now_ms)
            })
            .await
            .map_err(store_err)?;
    }
    let op_epoch = hello.op_epoch;
    let s = site.clone();
    let op_applied = ctx
        .db
        .call(move |c| store::op_applied_seq(c, &s, op_epoch))
        .await
        .map_err(store_err)?;
    let s = site.clone();
    let (cmd_head, _) = ctx
        .db
        .call(move |c| store::command_stream(c, &s))
        .await
        .map_err(store_err)?;
    let cmd_epoch = ctx.command_epoch;
    let s = site.clone();
    let reported = hello.command_epoch.map(|e| (e, hello.command_applied_seq));
    let resume = ctx
        .db
        .call(move |c| store::command_epochs::resume_point(c, &s, cmd_epoch, reported))
        .await
        .map_err(store_err)?;
    // Where the site's commands continue in this epoch. A site that knows nothing this database
    // can vouch for (new, reinstalled, or ahead of a database that went back in time) gets the
    // whole command stream again; its receiver dedups by (epoch, seq). From version 3 a site
    // whose epoch is not this one is told where it continues (`CommandResume`), so it also
    // learns that the coordinator started again.
    let (cmd_applied, from_epoch) = match resume {
        Resume::Current { after_seq } => (after_seq, None),
        // Before version 3 a site cannot be told to carry its position over.
        Resume::CarriedOver { .. } if version < 3 => (0, None),
        Resume::CarriedOver {
            from_epoch,
            after_seq,
        } => (after_seq, Some(from_epoch)),
        Resume::FromScratch { lost } => {
            if let Some(lost) = lost {
                let detail = lost.describe(site, cmd_epoch);
                warn!(site = %site, epoch = %lost.epoch, applied_seq = lost.applied_seq, held_seq = lost.held_seq,
                      new_epoch = %cmd_epoch, "site applied commands this database does not hold; sending its whole stream again");
                let s = site.clone();
                let now_ms = ctx.clock.now_ms();
                ctx.db
                    .call(move |c| {
                        store::record_anomaly(
                            c,
                            &s,
                            AnomalyKind::CoordinatorRewound,
                            &detail,
                            now_ms,
                        )
                    })
                    .await
                    .map_err(store_err)?;
            }
            (0, Some(hello.command_epoch.unwrap_or(cmd_epoch)))
        }
    };
    if cmd_applied > cmd_head {
        return refuse(
            &mut send,
            format!(
                "site reports command seq {cmd_applied} of epoch {cmd_epoch} but only {cmd_head} exist"
            ),
        )
        .await;
    }
    write_frame(
        &mut send,
        &ServerHello::Accepted {
            version,
            op_applied_seq: op_applied,
        }
        .encode()?,
    )
    .await?;
    if version >= 2 {
        // Sites time-stamp their ops with their own clocks: tell them ours.
        let clock = Message::Clock {
            unix_ms: ctx.clock.now_ms(),
        };
        write_frame(&mut send, &clock.encode(version)?).await?;
    }
    if let Some(from_epoch) = from_epoch.filter(|_| version >= 3) {
        let resume = Message::CommandResume {
            from_epoch,
            epoch: cmd_epoch,
            after_seq: cmd_applied,
        };
        write_frame(&mut send, &resume.encode(version)?).await?;
    }
    if let Some(old) = ctx.live.connect(site, id, conn.clone()) {
        old.close(
            3u32.into(),
            b"replaced by a newer connection from the same site",
        );
    }
    ctx.live.update(site, |l| {
        l.protocol_version = Some(version);
        l.epoch = Some(op_epoch);
        l.applied_seq = op_applied;
        l.last_seen_ms = Some(ctx.clock.now_ms());
        // What an earlier connection said is stale (another epoch, another build): a
        // version-2 agent reports both again at once, a version-1 agent never does.
        l.outbox_head_seq = None;
        l.devices = None;
    });
    info!(site = %site, version, epoch = %op_epoch, resume_after = op_applied, commands_from = cmd_applied + 1,
          "agent connected");

    let limits = ctx.config.sync.limits();
    let mut commands = Sender::new(cmd_epoch, cmd_applied, cmd_head, limits);
    commands
        .on_connected(cmd_applied)
        .map_err(|e| LinkError::Protocol(e.to_string()))?;
    // The site's answer is the truth about what it applied (its ack may have been lost).
    let s = site.clone();
    ctx.db
        .call(move |c| store::set_command_acked(c, &s, cmd_applied))
        .await
        .map_err(store_err)?;
    let mut command_head = ctx
        .live
        .command_head(site)
        .ok_or_else(|| LinkError::Protocol(format!("no command stream for {site}")))?;
    commands.on_recorded(*command_head.borrow());

    let (mut frames, _reader) = spawn_reader(recv, version);
    let clock = Instant::now();
    let now_ms = || clock.elapsed().as_millis() as u64;
    let mut shutdown = ctx.shutdown.clone();
    // Batches read and being applied, oldest first: the next batch joins the apply queue
    // while the last one commits, and each is acknowledged in order once it has.
    let mut applying = FuturesOrdered::new();
    let pipeline_max = ctx.config.sync.inflight_batches_max;
    loop {
        pump_commands(ctx, site, &mut send, &mut commands, version, now_ms()).await?;
        let timeout = commands
            .poll_timeout()
            .map(|t| clock + Duration::from_millis(t));
        tokio::select! {
            frame = frames.recv(), if applying.len() < pipeline_max => {
                let msg = match frame {
                    Some(Ok(msg)) => msg,
                    Some(Err(LinkError::Closed)) | None => return Ok(()),
                    Some(Err(e)) => return Err(e),
                };
                ctx.live.update(site, |l| l.last_seen_ms = Some(ctx.clock.now_ms()));
                if let Message::OpBatch { epoch, ops, outbox_head_seq } = msg {
                    check_batch(ctx, op_epoch, epoch, ops.len())?;
                    applying.push_back(apply(ctx, site, epoch, ops, outbox_head_seq));
                    continue;
                }
                // Anything else is answered after the batches before it.
                while let Some(applied) = applying.next().await {
                    acknowledge(ctx, site, &mut send, version, applied).await?;
                }
                if handle_message(ctx, site, msg, &mut send, &mut commands, version, now_ms()).await? {
                    return Ok(());
                }
            }
            Some(applied) = applying.next(), if !applying.is_empty() => {
                acknowledge(ctx, site, &mut send, version, applied).await?;
            }
            changed = command_head.changed() => {
                if changed.is_ok() {
                    commands.on_recorded(*command_head.borrow());
                }
            }
            _ = sleep_until_opt(timeout) => {
                if commands.handle_timeout(now_ms()) {
                    warn!(site = %site, acked = commands.acked(), "no command ack in time; resending");
                }
            }
            _ = shutdown.changed() => {
                let bye = Message::Error { code: ErrorCode::ShuttingDown, message: "coordinator shutting down".into() };
                let _ = write_frame(&mut send, &bye.encode(version)?).await;
                let _ = send.finish();
                let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
                return Ok(());
            }
        }
    }
}

/// Refuses a batch of another epoch than the connection's, or over the size limit.
fn check_batch(ctx: &Ctx, op_epoch: Epoch, epoch: Epoch, n_ops: usize) -> Result<(), LinkError> {
    if epoch != op_epoch {
        return Err(LinkError::Protocol(format!(
            "batch for epoch {epoch} on a connection opened for epoch {op_epoch}"
        )));
    }
    if n_ops > ctx.config.sync.accept_batch_ops_max {
        return Err(LinkError::Protocol(format!(
            "batch of {n_ops} ops is over the limit of {}",
            ctx.config.sync.accept_batch_ops_max
        )));
    }
    Ok(())
}

/// A batch applied (or not), with what the agent said of its outbox when sending it.
struct Applied {
    epoch: Epoch,
    outbox_head_seq: Option<u64>,
    outcome: Result<store::BatchOutcome, StoreError>,
}

async fn apply(
    ctx: &Ctx,
    site: &SiteId,
    epoch: Epoch,
    ops: Vec<modori_shared::wire::messages::Sequenced>,
    outbox_head_seq: Option<u64>,
) -> Applied {
    let outcome = crate::app::batch::apply_batch(ctx, site, epoch, ops, ctx.clock.now_ms()).await;
    Applied {
        epoch,
        outbox_head_seq,
        outcome,
    }
}

/// Acknowledges an applied batch: sent only now, its transaction has committed.
async fn acknowledge(
    ctx: &Ctx,
    site: &SiteId,
    send: &mut quinn::SendStream,
    version: u16,
    applied: Applied,
) -> Result<(), LinkError> {
    let outcome = applied.outcome.map_err(store_err)?;
    ctx.live.update(site, |l| {
        l.applied_seq = outcome.applied_seq;
        if outcome.last_op_at_ms.is_some() {
            l.last_op_at_ms = outcome.last_op_at_ms;
        }
        if applied.outbox_head_seq.is_some() {
            l.outbox_head_seq = applied.outbox_head_seq;
        }
    });
    // Fault tests: die between the durable commit and the ack.
    fail::fail_point!("coordinator-before-op-ack", |_| std::process::abort());
    let ack = Message::OpAck {
        epoch: applied.epoch,
        up_to_seq: outcome.applied_seq,
    };
    write_frame(send, &ack.encode(version)?).await
}

/// Handles one frame other than a batch; `Ok(true)` when the agent said goodbye.
async fn handle_message(
    ctx: &Arc<Ctx>,
    site: &SiteId,
    msg: Message,
    send: &mut quinn::SendStream,
    commands: &mut Sender,
    version: u16,
    now_ms: u64,
) -> Result<bool, LinkError> {
    match msg {
        Message::CommandAck { epoch, up_to_seq } => {
            if let Some(acked) = commands
                .on_ack(epoch, up_to_seq, now_ms)
                .map_err(|e| LinkError::Protocol(e.to_string()))?
            {
                let s = site.clone();
                ctx.db
                    .call(move |c| store::set_command_acked(c, &s, acked))
                    .await
                    .map_err(store_err)?;
            }
        }
        Message::RenewCertificate { csr_der } => {
            let answer = renew(ctx, site, csr_der).await;
            write_frame(send, &answer.encode(version)?).await?;
        }
        Message::SiteHealth {
            outbox_head_seq,
            mut devices,
        } => {
            if devices.len() > HEALTH_DEVICES_MAX {
                return Err(LinkError::Protocol(format!(
                    "health report of {} devices is over the limit of {HEALTH_DEVICES_MAX}",
                    devices.len()
                )));
            }
            for d in &mut devices {
                truncate(&mut d.name, HEALTH_NAME_BYTES_MAX);
                truncate(&mut d.kind, HEALTH_NAME_BYTES_MAX);
            }
            let n_down = devices.iter().filter(|d| !d.connected).count();
            info!(site = %site, n_devices = devices.len(), n_down, "site health reported");
            // Sent on this connection after the batches before it: the newest head known.
            ctx.live.update(site, |l| {
                l.devices = Some(devices);
                l.outbox_head_seq = Some(outbox_head_seq);
            });
        }
        Message::Error {
            code: ErrorCode::ShuttingDown,
            ..
        } => return Ok(true),
        Message::Error { code, message } => {
            return Err(LinkError::Refused(format!(
                "agent error {code:?}: {message}"
            )));
        }
        other @ (Message::OpAck { .. }
        | Message::CommandBatch { .. }
        | Message::Clock { .. }
        | Message::CertificateRenewed { .. }
        | Message::RenewalRefused { .. }
        | Message::CommandResume { .. }) => {
            return Err(LinkError::Protocol(format!(
                "unexpected {} from an agent",
                other.kind()
            )));
        }
        Message::OpBatch { .. } => {
            // The connection's loop applies batches in order before anything else reaches here.
            return Err(LinkError::Protocol("op batch out of its pipeline".into()));
        }
    }
    Ok(false)
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Signs a site's renewal request with the fleet CA (the name is the connection's site).
async fn renew(ctx: &Arc<Ctx>, site: &SiteId, csr_der: Vec<u8>) -> Message {
    let Some(ca_key) = ctx.config.tls.ca_key.clone() else {
        return Message::RenewalRefused {
            reason: "this coordinator holds no CA key (tls.ca_key); issue the certificate with `pki issue-site`".into(),
        };
    };
    let (ca_cert, s) = (ctx.config.tls.ca_cert.clone(), site.clone());
    let signed = tokio::task::spawn_blocking(move || {
        crate::pki::sign_renewal(&ca_cert, &ca_key, &s, &csr_der)
    })
    .await;
    match signed {
        Ok(Ok(cert_der)) => {
            info!(site = %site, "site certificate renewed");
            Message::CertificateRenewed { cert_der }
        }
        Ok(Err(e)) => Message::RenewalRefused {
            reason: e.to_string(),
        },
        Err(e) => Message::RenewalRefused {
            reason: e.to_string(),
        },
    }
}

async fn pump_commands(
    ctx: &Arc<Ctx>,
    site: &SiteId,
    send: &mut quinn::SendStream,
    commands: &mut Sender,
    version: u16,
    now_ms: u64,
) -> Result<(), LinkError> {
    while let Some(req) = commands.next_batch() {
        let s = site.clone();
        let items = ctx
            .db
            .call(move |c| store::load_commands(c, &s, req.first_seq, req.ops_max))
            .await
            .map_err(store_err)?;
        let items = cut_batch(items, ctx.config.sync.batch_bytes_max);
        let Some(last) = items.last().map(|i| i.seq) else {
            return Err(LinkError::Protocol(format!(
                "command {} missing for {site}",
                req.first_seq
            )));
        };
        let frame = Message::CommandBatch {
            epoch: commands.epoch(),
            commands: items,
        }
        .encode(version)?;
        write_frame(send, &frame).await?;
        commands.on_batch_sent(last, now_ms);
    }
    Ok(())
}

fn store_err(e: StoreError) -> LinkError {
    match e {
        StoreError::Db(db) => LinkError::Db(db),
        other => LinkError::Protocol(other.to_string()),
    }
}
