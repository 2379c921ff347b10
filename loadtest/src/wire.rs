//! The wire measured alone: the same backlog over QUIC + bincode (the real agents, unchanged)
//! and over HTTP/1.1 JSON (the baseline's client), each into a server that decodes every batch
//! into the ops the coordinator would apply, counts the new ones and acknowledges them, with no
//! store behind it. The CPU both ends spend per op is what the encoding and the transport cost.
//!
//! The servers run on one thread of their own (a current-thread runtime), so their CPU is read
//! from that thread alone (`/proc/thread-self`); the agents' from their processes, once all
//! have connected; the HTTP client's from the harness process, which then runs nothing else.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::routing::post;
use axum::{Json, Router};
use modori_coordinator::config::CoordinatorConfig;
use modori_coordinator::revocation::{Revocations, Revoked};
use modori_runtime::net::{read_frame, write_frame};
use modori_shared::wire::handshake::{negotiate, ClientHello, ServerHello};
use modori_shared::wire::messages::Message;
use modori_shared::wire::{PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
use modori_tests::procs::ProcFleet;
use tokio::sync::oneshot;
use tracing::warn;

use crate::baseline::{self, BaselineError, JsonAck, JsonBatch, REQUEST_BYTES_MAX};
use crate::fill;
use crate::procfs;

/// How often the harness looks whether the counting server has seen the first or last op.
const COUNT_POLL: Duration = Duration::from_millis(5);
/// Longest wait for a whole backlog to be counted.
const COUNT_TIMEOUT: Duration = Duration::from_secs(600);

/// Per stream epoch, the highest seq counted: what a reconnecting sender is told it may skip,
/// as the coordinator's high-water mark would.
type Marks = Arc<Mutex<HashMap<u64, u64>>>;

/// What one transport cost.
#[derive(Clone, Copy, Debug)]
pub struct WireRun {
    pub n_ops: u64,
    pub cpu_seconds: f64,
}

impl WireRun {
    pub fn cpu_us_per_op(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.n_ops.max(1) as f64
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Wire {
    pub quic: WireRun,
    pub http: WireRun,
}

/// The counting servers and the thread they run on.
struct Servers {
    http: SocketAddr,
    counted: Arc<AtomicU64>,
    /// Hellos read over QUIC: an agent that sent one has started and connected.
    hellos: Arc<AtomicU64>,
    /// Opened when the QUIC hellos may be answered, so the ops flow only once every agent's
    /// start is over and the CPU is read.
    gate: tokio::sync::watch::Sender<bool>,
    /// The thread's entry in `/proc`, for its CPU time.
    stat: PathBuf,
    shutdown: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Servers {
    /// `quic_marks`: each agent's epoch and what of it was delivered before, as the
    /// coordinator's high-water marks would answer its hello.
    fn start(
        quic_addr: SocketAddr,
        tls: quinn::ServerConfig,
        quic_marks: HashMap<u64, u64>,
    ) -> anyhow::Result<Self> {
        let counted = Arc::new(AtomicU64::new(0));
        let hellos = Arc::new(AtomicU64::new(0));
        let (gate, gate_rx) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = oneshot::channel::<()>();
        let count = counted.clone();
        let seen = Seen {
            hellos: hellos.clone(),
            gate: gate_rx,
        };
        let thread = std::thread::Builder::new()
            .name("wire-count".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow::Error::from(e)));
                        return;
                    }
                };
                runtime.block_on(serve(
                    quic_addr, tls, quic_marks, count, seen, ready_tx, stop,
                ));
            })
            .context("starting the counting server's thread")?;
        let (http, stat) = ready_rx
            .recv()
            .context("the counting server's thread ended")??;
        Ok(Self {
            http,
            counted,
            hellos,
            gate,
            stat,
            shutdown,
            thread,
        })
    }

    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        Ok(procfs::cpu_seconds_at(&self.stat)?)
    }

    fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.thread.join();
    }
}

/// What the QUIC side tells the harness and waits for before answering a hello.
#[derive(Clone)]
struct Seen {
    hellos: Arc<AtomicU64>,
    gate: tokio::sync::watch::Receiver<bool>,
}

async fn serve(
    quic_addr: SocketAddr,
    tls: quinn::ServerConfig,
    quic_marks: HashMap<u64, u64>,
    counted: Arc<AtomicU64>,
    seen: Seen,
    ready: std::sync::mpsc::Sender<anyhow::Result<(SocketAddr, PathBuf)>>,
    stop: oneshot::Receiver<()>,
) {
    let started = async {
        let endpoint = quinn::Endpoint::server(tls, quic_addr)
            .with_context(|| format!("binding the counting QUIC server to {quic_addr}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let http = listener.local_addr()?;
        let stat = std::fs::read_link("/proc/thread-self")
            .context("finding this thread in /proc")
            .map(|t| PathBuf::from("/proc").join(t).join("stat"))?;
        anyhow::Ok((endpoint, listener, http, stat))
    }
    .await;
    let (endpoint, listener, http, stat) = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok((http, stat)));
    // Each transport has its own marks: the same ops are counted once over each.
    let marks: Marks = Arc::new(Mutex::new(quic_marks));
    let http_marks: Marks = Arc::default();
    let router = Router::new()
        .route("/v1/ops/{site}/{epoch}", post(count_json))
        .layer(DefaultBodyLimit::max(REQUEST_BYTES_MAX))
        .with_state((http_marks, counted.clone()));
    let quic = {
        let endpoint = endpoint.clone();
        async move {
            while let Some(incoming) = endpoint.accept().await {
                let (marks, counted, seen) = (marks.clone(), counted.clone(), seen.clone());
                tokio::spawn(async move {
                    let conn = match incoming.await {
                        Ok(c) => c,
                        Err(e) => return warn!(error = %e, "counting server: handshake failed"),
                    };
                    if let Err(e) = count_quic(conn, marks, counted, seen).await {
                        warn!(error = %e, "counting server: connection ended");
                    }
                });
            }
        }
    };
    tokio::select! {
        _ = quic => {}
        served = axum::serve(listener, router) => {
            if let Err(e) = served {
                warn!(error = %e, "counting HTTP server failed");
            }
        }
        _ = stop => {}
    }
    endpoint.close(0u32.into(), b"done");
}

/// Counts the ops of `epoch` above its mark; returns the new mark.
fn count_new(marks: &Marks, counted: &AtomicU64, epoch: u64, seqs: &[u64]) -> u64 {
    let mut marks = marks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mark = marks.entry(epoch).or_insert(0);
    let new = seqs.iter().filter(|&&s| s > *mark).count() as u64;
    *mark = seqs.iter().copied().fold(*mark, u64::max);
    counted.fetch_add(new, Ordering::Relaxed);
    *mark
}

/// One agent's connection, spoken as the coordinator speaks it up to the store.
async fn count_quic(
    conn: quinn::Connection,
    marks: Marks,
    counted: Arc<AtomicU64>,
    mut seen: Seen,
) -> anyhow::Result<()> {
    let (mut send, mut recv) = conn.accept_bi().await?;
    let body = read_frame(&mut recv).await?.context("no hello")?;
    let hello = ClientHello::decode(&body)?;
    seen.hellos.fetch_add(1, Ordering::Relaxed);
    seen.gate.wait_for(|open| *open).await?;
    let version = negotiate(
        (PROTOCOL_VERSION_MIN, PROTOCOL_VERSION),
        (hello.version_min, hello.version_max),
    )?;
    let applied = marks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&hello.op_epoch.0)
        .copied()
        .unwrap_or(0);
    let accepted = ServerHello::Accepted {
        version,
        op_applied_seq: applied,
    };
    write_frame(&mut send, &accepted.encode()?).await?;
    while let Some(body) = read_frame(&mut recv).await? {
        if let Message::OpBatch { epoch, ops, .. } = Message::decode(version, &body)? {
            let seqs: Vec<u64> = ops.iter().map(|op| op.seq).collect();
            let mark = count_new(&marks, &counted, epoch.0, &seqs);
            let ack = Message::OpAck {
                epoch,
                up_to_seq: mark,
            };
            write_frame(&mut send, &ack.encode(version)?).await?;
        }
    }
    Ok(())
}

/// The baseline's request, decoded into the same ops (bincode payloads) and counted.
async fn count_json(
    State((marks, counted)): State<(Marks, Arc<AtomicU64>)>,
    UrlPath((_site, epoch)): UrlPath<(String, u64)>,
    Json(batch): Json<JsonBatch>,
) -> Result<Json<JsonAck>, BaselineError> {
    let ops = batch
        .ops
        .into_iter()
        .map(baseline::JsonOp::into_sequenced)
        .collect::<Result<Vec<_>, _>>()?;
    let seqs: Vec<u64> = ops.iter().map(|op| op.seq).collect();
    let applied_seq = count_new(&marks, &counted, epoch, &seqs);
    Ok(Json(JsonAck { applied_seq }))
}

async fn wait_count(counted: &AtomicU64, at_least: u64, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + COUNT_TIMEOUT;
    while counted.load(Ordering::Relaxed) < at_least {
        ensure!(
            Instant::now() < deadline,
            "timed out after {COUNT_TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(COUNT_POLL).await;
    }
    Ok(())
}

fn wire_source(fleet: &ProcFleet, i: usize) -> PathBuf {
    fleet.dir.path().join(format!("wire-source-{i}.db"))
}

/// With the coordinator and the agents stopped: `n_ops` more receipts at each agent, sent by
/// the real agents to the counting QUIC server on the coordinator's address, then pushed as
/// JSON to the counting HTTP server. Leaves the agents stopped.
pub async fn measure(
    fleet: &mut ProcFleet,
    n_ops: u64,
    stop_timeout: Duration,
) -> anyhow::Result<Wire> {
    let n_sites = fleet.sites.len();
    let mut heads = Vec::with_capacity(n_sites);
    let mut quic_marks = HashMap::new();
    for i in 0..n_sites {
        let site = fleet.sites[i].id.clone();
        let db = fleet.agent_db_path(i);
        let before = {
            let conn = rusqlite::Connection::open(&db)?;
            modori_agent::store::snapshot(&conn)?
        };
        quic_marks.insert(before.op_epoch.0, before.op_acked_seq);
        heads.push(fill::receipts(&db, &site, n_ops).context("filling a backlog for the wire")?);
        let copy = wire_source(fleet, i);
        if copy.exists() {
            std::fs::remove_file(&copy)?;
        }
        modori_runtime::backup::backup(&db, &copy)
            .with_context(|| format!("copying site {i}'s backlog for the wire"))?;
    }
    let config = CoordinatorConfig::load(&fleet.dir.path().join("coordinator.toml"))?;
    let ca = modori_runtime::tls::load_certs("CA certificate", &config.tls.ca_cert)?;
    let chain = modori_runtime::tls::load_certs("server certificate", &config.tls.cert)?;
    let key = modori_runtime::tls::load_key("server key", &config.tls.key)?;
    let revocations = Arc::new(Revocations::new(Revoked::default()));
    let tls = modori_coordinator::quic::server_config(
        &ca,
        chain,
        key,
        config.sync.timing(),
        revocations,
    )?;
    let servers = Servers::start(fleet.quic_addr(), tls, quic_marks)?;
    let total = n_ops * n_sites as u64;

    // QUIC: the server thread and every agent from the moment all have connected (their
    // hellos held unanswered, so no op flows before) to the last op counted: what the ops
    // cost, not the agents' start.
    for i in 0..n_sites {
        fleet.start_agent(i, None).context("starting an agent")?;
    }
    wait_count(&servers.hellos, n_sites as u64, "every agent's hello").await?;
    let pids: Vec<u32> = (0..n_sites)
        .map(|i| fleet.agent_pid(i).context("an agent is not running"))
        .collect::<anyhow::Result<_>>()?;
    let cpu = |servers: &Servers| -> anyhow::Result<f64> {
        let mut sum = servers.cpu_seconds()?;
        for &pid in &pids {
            sum += procfs::cpu_seconds(pid)?;
        }
        Ok(sum)
    };
    let (before, counted_before) = (cpu(&servers)?, servers.counted.load(Ordering::Relaxed));
    servers.gate.send_replace(true);
    wait_count(&servers.counted, total, "every op over QUIC").await?;
    let quic = WireRun {
        n_ops: total - counted_before,
        cpu_seconds: cpu(&servers)? - before,
    };
    // CPU time is counted in the kernel's clock ticks: a backlog too small to span one says
    // nothing, and a ratio over it would be infinite.
    ensure!(
        quic.cpu_seconds > 0.0,
        "the {} ops over QUIC took less CPU than one clock tick: measure with a larger --burst-ops",
        quic.n_ops
    );
    for i in 0..n_sites {
        let status = fleet.terminate_agent(i, stop_timeout).await?;
        ensure!(status.success(), "agent {i} stopped with {status}");
    }

    // HTTP/1.1 JSON: the harness (the client, and the server's thread) runs nothing else.
    let me = std::process::id();
    let before = procfs::cpu_seconds(me)?;
    let counted_before = servers.counted.load(Ordering::Relaxed);
    let pushes: Vec<_> = (0..n_sites)
        .map(|i| {
            // The backlog is the copy's current epoch; its earlier ops were counted over QUIC
            // under another epoch, so the whole stream goes.
            tokio::spawn(baseline::push(
                servers.http,
                wire_source(fleet, i),
                fleet.sites[i].id.clone(),
                heads[i] - n_ops,
                heads[i],
            ))
        })
        .collect();
    for p in pushes {
        p.await?.context("pushing ops over HTTP")?;
    }
    let http = WireRun {
        n_ops: servers.counted.load(Ordering::Relaxed) - counted_before,
        cpu_seconds: procfs::cpu_seconds(me)? - before,
    };
    servers.stop();
    ensure!(
        http.cpu_seconds > 0.0,
        "the {} ops over HTTP took less CPU than one clock tick: measure with a larger --burst-ops",
        http.n_ops
    );
    ensure!(
        http.n_ops == total,
        "the counting HTTP server counted {} of {total} ops",
        http.n_ops
    );
    Ok(Wire { quic, http })
}
