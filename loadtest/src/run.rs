//! One load run, phase by phase:
//!
//! 1. **Setup**: certificates and configs for the real sites and the simulated ones; the
//!    coordinator and the real agents as processes, the simulated sites in-process; every link up.
//! 2. **Idle**: memory and CPU with every connection held and nothing to do.
//! 3. **Online**: receipts at the chosen rate through each real agent's `ctl receive` (the
//!    supervisor's receiving path: one fsynced transaction with its op), the simulated sites
//!    receiving too; ack and scan-to-coordinator latencies.
//! 4. **Throughput**: the real agents stopped, a backlog appended to each, all started at once:
//!    ops applied per second at the coordinator.
//! 5. **Baseline**: the same backlog as JSON batches over HTTP/1.1 into a fresh store, and the
//!    disk's ceiling: the same ops inserted as bare rows with their high-water mark, one
//!    transaction per batch, into a fresh file on the same disk ([`crate::ceiling`]).
//! 6. **Catch-up**: one site stopped, a large backlog appended, started again: how long until
//!    its last op is durable at the coordinator.
//! 7. **Wire alone** (the coordinator stopped): the same kind of backlog over QUIC and over
//!    HTTP JSON into servers that only count ([`crate::wire`]): CPU per op.
//! 8. Routing decisions timed in a loop, the agent binary's size, and the exactly-once check
//!    over everything recorded.
//!
//! This is a binary edge: errors are `anyhow` with context.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use modori_agent::{Agent, AgentHandle};
use modori_coordinator::routing::nearest_site;
use modori_shared::domain::{Site, SiteId, Sku, Store};
use modori_tests::procs::ProcFleet;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::baseline;
use crate::binaries::{self, Binaries};
use crate::ceiling::{self, Ceiling};
use crate::fill::{self, LOAD_OPERATOR, LOAD_SKU};
use crate::observe::{Poller, RssSampler, Watch, DRAIN_POLL_INTERVAL, ONLINE_POLL_INTERVAL};
use crate::procfs;
use crate::report::{ExactlyOnce, Figure, Report, Target};
use crate::sims;
use crate::stats::{summarize, Summary};
use crate::wire::{self, Wire};

/// Longest wait for every site to connect at the start.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for a process or the simulated sites to stop gracefully.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// A drain may take this long, plus one second per [`DRAIN_OPS_PER_SECOND_FLOOR`] ops: a rate
/// no healthy run comes near, so hitting the limit means something is stuck.
pub const DRAIN_TIMEOUT_MIN: Duration = Duration::from_secs(120);
/// See [`DRAIN_TIMEOUT_MIN`].
pub const DRAIN_OPS_PER_SECOND_FLOOR: u64 = 1_000;
/// Receipts a real agent's driver has in flight at most; a tick beyond it is skipped and
/// counted, so an agent that cannot keep up shows as a lower achieved rate, not a queue.
pub const DRIVER_INFLIGHT_MAX: usize = 8;
/// The shortest time between two receipts asked of one agent (10,000 a second): beyond it a
/// `--rate` is held by skipping ticks, never by a timer of zero.
pub const DRIVER_PERIOD_MIN: Duration = Duration::from_micros(100);
/// Pause between checks while waiting for a condition.
const WAIT_STEP: Duration = Duration::from_millis(10);
/// Pause between rounds of asking every site whether it is connected (a round asks them all).
const CONNECT_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest time a drain is counted as: a backlog applied between two reads of the marks
/// took at most this long, not no time at all.
const DRAIN_SECONDS_MIN: Duration = DRAIN_POLL_INTERVAL;
/// MiB, for memory and binary sizes.
const MIB: f64 = 1024.0 * 1024.0;

/// What to run; see `cli.rs` for each flag.
#[derive(Clone, Debug)]
pub struct Options {
    pub agents: usize,
    pub sim_connections: usize,
    pub rate_per_second: f64,
    pub sim_receipt_interval: Duration,
    pub duration: Duration,
    pub burst_ops: u64,
    pub catch_up_ops: u64,
    pub idle_settle: Duration,
    pub routing_rounds: usize,
    pub binaries: Binaries,
    pub keep_work_dir: bool,
}

impl Options {
    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "agents": self.agents,
            "sim_connections": self.sim_connections,
            "rate_per_second": self.rate_per_second,
            "sim_receipt_interval_seconds": self.sim_receipt_interval.as_secs_f64(),
            "duration_seconds": self.duration.as_secs_f64(),
            "burst_ops_per_agent": self.burst_ops,
            "catch_up_ops": self.catch_up_ops,
            "idle_settle_seconds": self.idle_settle.as_secs_f64(),
            "routing_rounds": self.routing_rounds,
        })
    }
}

struct Idle {
    agent_rss_max: u64,
    coordinator_rss: u64,
    coordinator_cpu_percent: f64,
}

struct Online {
    receipts: Vec<u64>,
    sim_receipts: Vec<u64>,
    elapsed: Duration,
    ack: Option<Summary>,
    scan: Option<Summary>,
    confirmed: Option<Summary>,
    n_unmeasured: usize,
    n_skipped: u64,
    n_failed: u64,
    resolution: Duration,
    agent_rss_max: u64,
    coordinator_rss_max: u64,
    harness_rss_max: u64,
    coordinator_cpu_percent: f64,
}

struct Throughput {
    /// Each site's applied mark before, and its outbox head after the fill.
    base: Vec<u64>,
    heads: Vec<u64>,
    n_ops: u64,
    seconds: f64,
    agent_rss_max: u64,
    coordinator_rss_max: u64,
    coordinator_cpu_percent: f64,
    cpu_seconds: f64,
}

struct BaselineRun {
    n_ops: u64,
    seconds: f64,
    cpu_seconds: f64,
    applied: u64,
    anomalies: u64,
}

struct CatchUp {
    n_ops: u64,
    total_seconds: f64,
    drain_seconds: f64,
    agent_rss_max: u64,
}

fn drain_timeout(n_ops: u64) -> Duration {
    DRAIN_TIMEOUT_MIN + Duration::from_secs(n_ops / DRAIN_OPS_PER_SECOND_FLOOR)
}

/// Waits until `done()` holds, checking every [`WAIT_STEP`].
async fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(WAIT_STEP).await;
    }
    Ok(())
}

/// Runs every phase and returns the report.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let real = modori_tests::real_fleet();
    ensure!(
        (1..=real.sites.len()).contains(&opts.agents),
        "--agents must be 1..={}",
        real.sites.len()
    );
    ensure!(
        opts.sim_connections <= sims::SIM_CONNECTIONS_MAX,
        "--sim-connections must be at most {}",
        sims::SIM_CONNECTIONS_MAX
    );
    let agent_sites = real.sites[..opts.agents].to_vec();
    let sim_sites = sims::sites(opts.sim_connections, &agent_sites)?;
    let load_sites: Vec<Site> = agent_sites.iter().chain(&sim_sites).cloned().collect();
    let mut fleet = ProcFleet::with_sites(opts.binaries.for_proc_fleet(), agent_sites, sim_sites)
        .context("writing certificates and configs")?;
    if opts.keep_work_dir {
        fleet.dir.disable_cleanup(true);
    }
    info!(work_dir = %fleet.dir.path().display(), agents = opts.agents, sims = opts.sim_connections, "setting up");
    let result = phases(opts, &mut fleet, &real, &load_sites, started).await;
    if result.is_err() {
        warn!(logs = %fleet.logs(), "the run failed; the processes' last log lines follow");
    }
    result
}

/// The wire alone (`--wire-only`): the real agents started and connected once, then only
/// [`wire::measure`], so work on the wire can be measured in under a minute, several times.
pub async fn wire_only(opts: &Options) -> anyhow::Result<Wire> {
    let real = modori_tests::real_fleet();
    ensure!(
        (1..=real.sites.len()).contains(&opts.agents),
        "--agents must be 1..={}",
        real.sites.len()
    );
    let agent_sites = real.sites[..opts.agents].to_vec();
    let mut fleet = ProcFleet::with_sites(opts.binaries.for_proc_fleet(), agent_sites, vec![])
        .context("writing certificates and configs")?;
    if opts.keep_work_dir {
        fleet.dir.disable_cleanup(true);
    }
    let result = async {
        fleet
            .start_coordinator(None)
            .await
            .context("starting the coordinator")?;
        for i in 0..fleet.sites.len() {
            fleet.start_agent(i, None).context("starting an agent")?;
        }
        wait_connected(&fleet, &[]).await?;
        for i in 0..fleet.sites.len() {
            stop_agent(&mut fleet, i).await?;
        }
        let status = fleet.terminate_coordinator(STOP_TIMEOUT).await?;
        ensure!(status.success(), "the coordinator stopped with {status}");
        wire::measure(&mut fleet, opts.burst_ops, STOP_TIMEOUT).await
    }
    .await;
    if result.is_err() {
        warn!(logs = %fleet.logs(), "the run failed; the processes' last log lines follow");
    }
    result
}

async fn phases(
    opts: &Options,
    fleet: &mut ProcFleet,
    real: &modori_coordinator::fleet::Fleet,
    load_sites: &[Site],
    started: Instant,
) -> anyhow::Result<Report> {
    fleet
        .start_coordinator(None)
        .await
        .context("starting the coordinator")?;
    for i in 0..fleet.sites.len() {
        fleet.start_agent(i, None).context("starting an agent")?;
    }
    let sim_agents = sims::start(fleet)
        .await
        .context("starting the simulated sites")?;
    let sim_handles: Vec<AgentHandle> = sim_agents.iter().map(Agent::handle).collect();
    wait_connected(fleet, &sim_handles).await?;
    info!(
        after_seconds = started.elapsed().as_secs(),
        "every site connected"
    );

    let idle = idle(fleet, opts.idle_settle).await?;
    info!(
        agent_rss_mib = idle.agent_rss_max as f64 / MIB,
        "idle measured"
    );
    let online = online(fleet, &sim_handles, opts).await?;
    info!(
        receipts = online.receipts.iter().sum::<u64>(),
        sim_receipts = online.sim_receipts.iter().sum::<u64>(),
        "online phase done"
    );
    let throughput = throughput(fleet, opts.burst_ops).await?;
    info!(
        ops_per_second = throughput.n_ops as f64 / throughput.seconds,
        "throughput phase done"
    );
    let http = http_baseline(fleet, &throughput.base, &throughput.heads).await?;
    info!(
        ops_per_second = http.n_ops as f64 / http.seconds,
        "HTTP baseline done"
    );
    let ceiling = apply_ceiling(fleet, &throughput.base, &throughput.heads)?;
    info!(
        ops_per_second = ceiling.ops_per_second(),
        "apply ceiling measured"
    );
    let catch_up = catch_up(fleet, opts.catch_up_ops).await?;
    info!(seconds = catch_up.total_seconds, "catch-up phase done");

    let held = connections_held(&sim_handles).await?;
    let mut tally: Vec<u64> = online.receipts.iter().map(|n| n + opts.burst_ops).collect();
    tally[0] += opts.catch_up_ops;
    let mut check = exactly_once(fleet, &sim_handles, &tally, &online.sim_receipts).await?;
    check.baseline_ops_given = throughput.heads.iter().sum();
    check.baseline_ops_applied = http.applied;
    check.ok = check.ok && http.applied == check.baseline_ops_given && http.anomalies == 0;

    let routing_real = time_routing(&real.sites, &real.stores, opts.routing_rounds);
    let routing_load = time_routing(load_sites, &real.stores, opts.routing_rounds);
    let size = binaries::size(&opts.binaries.agent, fleet.dir.path())?;

    sims::shutdown(sim_agents, STOP_TIMEOUT).await;
    for i in 0..fleet.sites.len() {
        stop_agent(fleet, i).await?;
    }
    let status = fleet.terminate_coordinator(STOP_TIMEOUT).await?;
    ensure!(status.success(), "the coordinator stopped with {status}");
    let wire = wire::measure(fleet, opts.burst_ops, STOP_TIMEOUT).await?;
    info!(
        quic_us_per_op = wire.quic.cpu_us_per_op(),
        http_us_per_op = wire.http.cpu_us_per_op(),
        "wire measured alone"
    );

    let measured = Measured {
        opts,
        idle,
        online,
        throughput,
        http,
        ceiling,
        wire,
        catch_up,
        held,
        routing_real,
        routing_load,
        size,
    };
    Ok(Report {
        machine: crate::machine::describe(),
        parameters: opts.parameters(),
        binaries: serde_json::to_value(&opts.binaries)?,
        figures: measured.figures(),
        exactly_once: check,
        method: method(opts),
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

async fn wait_connected(fleet: &ProcFleet, sims: &[AgentHandle]) -> anyhow::Result<()> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut real: Vec<usize> = (0..fleet.sites.len()).collect();
    let mut simulated: Vec<&AgentHandle> = sims.iter().collect();
    while !real.is_empty() || !simulated.is_empty() {
        if Instant::now() >= deadline {
            bail!(
                "after {CONNECT_TIMEOUT:?}, {} real and {} simulated sites are still not connected",
                real.len(),
                simulated.len()
            );
        }
        let mut still = Vec::new();
        for i in real {
            if fleet.status(i).await?["connected"] != true {
                still.push(i);
            }
        }
        real = still;
        let mut still = Vec::new();
        for s in simulated {
            if !s.status().await?.connected {
                still.push(s);
            }
        }
        simulated = still;
        tokio::time::sleep(CONNECT_CHECK_INTERVAL).await;
    }
    Ok(())
}

/// Stops agent `i` as systemd would (SIGTERM: drain, goodbye, exit 0).
async fn stop_agent(fleet: &mut ProcFleet, i: usize) -> anyhow::Result<()> {
    let status = fleet.terminate_agent(i, STOP_TIMEOUT).await?;
    ensure!(status.success(), "agent {i} stopped with {status}");
    Ok(())
}

fn pid(p: Option<u32>, what: &str) -> anyhow::Result<u32> {
    p.with_context(|| format!("the {what} is not running"))
}

fn agent_pids(fleet: &ProcFleet) -> anyhow::Result<Vec<u32>> {
    (0..fleet.sites.len())
        .map(|i| pid(fleet.agent_pid(i), "agent"))
        .collect()
}

async fn idle(fleet: &ProcFleet, settle: Duration) -> anyhow::Result<Idle> {
    let coordinator = pid(fleet.coordinator_pid(), "coordinator")?;
    let (cpu0, t0) = (procfs::cpu_seconds(coordinator)?, Instant::now());
    tokio::time::sleep(settle).await;
    let cpu = procfs::cpu_seconds(coordinator)? - cpu0;
    let agent_rss_max = agent_pids(fleet)?
        .into_iter()
        .map(procfs::rss_bytes)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .max()
        .unwrap_or(0);
    Ok(Idle {
        agent_rss_max,
        coordinator_rss: procfs::rss_bytes(coordinator)?,
        coordinator_cpu_percent: 100.0 * cpu / t0.elapsed().as_secs_f64(),
    })
}

/// One receipt driven through `ctl`: its seq, when it was asked for, when the agent answered
/// (the op durable in its outbox).
struct Driven {
    seq: u64,
    asked: Instant,
    durable: Instant,
}

#[derive(Default)]
struct DriverOutcome {
    receipts: Vec<Driven>,
    n_skipped: u64,
    n_failed: u64,
}

type Answer = (Instant, Instant, std::io::Result<serde_json::Value>);

impl DriverOutcome {
    fn collect(&mut self, done: Result<Answer, tokio::task::JoinError>) {
        match done {
            Ok((asked, durable, Ok(reply))) => match reply["seq"].as_u64() {
                Some(seq) => self.receipts.push(Driven {
                    seq,
                    asked,
                    durable,
                }),
                None => {
                    warn!(%reply, "receipt refused");
                    self.n_failed += 1;
                }
            },
            Ok((_, _, Err(e))) => {
                warn!(error = %e, "ctl receive failed");
                self.n_failed += 1;
            }
            Err(e) => {
                warn!(error = %e, "receipt task failed");
                self.n_failed += 1;
            }
        }
    }
}

/// Asks the agent's `ctl` for a receipt every `period`, with at most [`DRIVER_INFLIGHT_MAX`] in
/// flight, until `stop`.
async fn drive_agent(
    socket: PathBuf,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) -> DriverOutcome {
    let line =
        serde_json::json!({"command": "receive", "sku": LOAD_SKU, "operator": LOAD_OPERATOR})
            .to_string();
    let socket = Arc::new(socket);
    let line = Arc::new(line);
    let permits = Arc::new(Semaphore::new(DRIVER_INFLIGHT_MAX));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut inflight: JoinSet<Answer> = JoinSet::new();
    let mut out = DriverOutcome::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        while let Some(r) = inflight.try_join_next() {
            out.collect(r);
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            out.n_skipped += 1;
            continue;
        };
        let (socket, line) = (socket.clone(), line.clone());
        inflight.spawn(async move {
            let asked = Instant::now();
            let reply = modori_agent::ctl::request(&socket, &line).await;
            let durable = Instant::now();
            drop(permit);
            (asked, durable, reply)
        });
    }
    while let Some(r) = inflight.join_next().await {
        out.collect(r);
    }
    out
}

/// One receipt at a simulated site every `interval`, starting `phase` in, until `stop`;
/// returns how many were recorded.
async fn drive_sim(
    agent: AgentHandle,
    interval: Duration,
    phase: Duration,
    mut stop: watch::Receiver<bool>,
) -> u64 {
    let Ok(sku) = Sku::new(LOAD_SKU) else {
        return 0;
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        match agent.receive_unit(None, sku.clone(), LOAD_OPERATOR).await {
            Ok(_) => n += 1,
            Err(e) => warn!(site = %agent.site(), error = %e, "simulated receipt failed"),
        }
    }
    n
}

async fn online(fleet: &ProcFleet, sims: &[AgentHandle], opts: &Options) -> anyhow::Result<Online> {
    let n = fleet.sites.len();
    let watches = (0..n)
        .map(|i| Watch {
            site: fleet.sites[i].id.to_string(),
            agent_db: Some(fleet.agent_db_path(i)),
            epoch: None,
        })
        .collect();
    let poller = Poller::start(&fleet.coordinator_db_path(), watches, ONLINE_POLL_INTERVAL)?;
    let coordinator = pid(fleet.coordinator_pid(), "coordinator")?;
    let agents = agent_pids(fleet)?;
    let mut pids = vec![coordinator, std::process::id()];
    pids.extend(&agents);
    let sampler = RssSampler::start(pids);
    let (cpu0, t0) = (procfs::cpu_seconds(coordinator)?, Instant::now());

    let (stop, stopped) = watch::channel(false);
    let period = Duration::from_secs_f64(n as f64 / opts.rate_per_second).max(DRIVER_PERIOD_MIN);
    let drivers: Vec<_> = (0..n)
        .map(|i| tokio::spawn(drive_agent(fleet.ctl_socket(i), period, stopped.clone())))
        .collect();
    let n_sims = sims.len().max(1) as f64;
    let sim_drivers: Vec<_> = sims
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // Spread over the interval, so a thousand sites do not receive in lockstep.
            let phase = opts.sim_receipt_interval.mul_f64(i as f64 / n_sims);
            tokio::spawn(drive_sim(
                s.clone(),
                opts.sim_receipt_interval,
                phase,
                stopped.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(opts.duration).await;
    let _ = stop.send(true);
    let mut outcomes = Vec::with_capacity(n);
    for d in drivers {
        outcomes.push(d.await.context("a receipt driver failed")?);
    }
    let mut sim_receipts = Vec::with_capacity(sims.len());
    for d in sim_drivers {
        sim_receipts.push(d.await.context("a simulated site's driver failed")?);
    }
    let elapsed = t0.elapsed();
    let coordinator_cpu_percent =
        100.0 * (procfs::cpu_seconds(coordinator)? - cpu0) / elapsed.as_secs_f64();

    let heads: Vec<u64> = outcomes
        .iter()
        .map(|o| o.receipts.iter().map(|r| r.seq).max().unwrap_or(0))
        .collect();
    let total: u64 = outcomes.iter().map(|o| o.receipts.len() as u64).sum();
    wait_until(
        "the online receipts applied and acknowledged",
        drain_timeout(total),
        || (0..n).all(|i| poller.applied(i) >= heads[i] && poller.acked(i) >= heads[i]),
    )
    .await?;
    let positions = poller.finish()?;
    let rss = sampler.finish();

    let (mut ack, mut scan, mut confirmed) = (Vec::new(), Vec::new(), Vec::new());
    let mut n_unmeasured = 0;
    for (i, o) in outcomes.iter().enumerate() {
        for r in &o.receipts {
            confirmed.push(r.durable - r.asked);
            // Seen applied before the driver read the agent's answer: no measurable delay.
            match positions.applied[i].first_reaching(r.seq) {
                Some(t) => scan.push(t.saturating_duration_since(r.durable)),
                None => n_unmeasured += 1,
            }
            match positions.acked[i].first_reaching(r.seq) {
                Some(t) => ack.push(t.saturating_duration_since(r.durable)),
                None => n_unmeasured += 1,
            }
        }
    }
    Ok(Online {
        receipts: outcomes.iter().map(|o| o.receipts.len() as u64).collect(),
        sim_receipts,
        elapsed,
        ack: summarize(&mut ack),
        scan: summarize(&mut scan),
        confirmed: summarize(&mut confirmed),
        n_unmeasured,
        n_skipped: outcomes.iter().map(|o| o.n_skipped).sum(),
        n_failed: outcomes.iter().map(|o| o.n_failed).sum(),
        resolution: positions.mean_round(),
        coordinator_rss_max: rss[0],
        harness_rss_max: rss[1],
        agent_rss_max: rss[2..].iter().copied().max().unwrap_or(0),
        coordinator_cpu_percent,
    })
}

/// Appends `n_ops` receipts to each listed agent's database (agents stopped), in parallel.
async fn fill_backlogs(
    fleet: &ProcFleet,
    agents: &[usize],
    n_ops: u64,
) -> anyhow::Result<Vec<u64>> {
    let jobs: Vec<(PathBuf, SiteId)> = agents
        .iter()
        .map(|&i| (fleet.agent_db_path(i), fleet.sites[i].id.clone()))
        .collect();
    let t0 = Instant::now();
    let heads = tokio::task::spawn_blocking(move || {
        std::thread::scope(|s| {
            let fills: Vec<_> = jobs
                .iter()
                .map(|(path, site)| s.spawn(move || fill::receipts(path, site, n_ops)))
                .collect();
            fills
                .into_iter()
                .map(|f| match f.join() {
                    Ok(head) => head.context("appending a backlog"),
                    Err(_) => bail!("a backlog fill panicked"),
                })
                .collect::<anyhow::Result<Vec<u64>>>()
        })
    })
    .await??;
    info!(
        n_agents = agents.len(),
        n_ops,
        seconds = t0.elapsed().as_secs_f64(),
        "backlogs appended"
    );
    Ok(heads)
}

/// The op epoch of stopped agent `i`'s database: the one a backlog appended now goes into
/// (its next start retires it and delivers the backlog under it before its own new epoch).
fn agent_epoch(fleet: &ProcFleet, i: usize) -> anyhow::Result<i64> {
    let path = fleet.agent_db_path(i);
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", path.display()))?;
    Ok(
        conn.query_row("SELECT op_epoch FROM sync_state WHERE id = 1", [], |r| {
            r.get(0)
        })?,
    )
}

/// What the coordinator has applied of stopped agent `i`'s current epoch.
fn coordinator_applied(fleet: &ProcFleet, i: usize) -> anyhow::Result<u64> {
    let epoch = agent_epoch(fleet, i)?;
    let path = fleet.coordinator_db_path();
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", path.display()))?;
    let applied: i64 = conn.query_row(
        "SELECT COALESCE(MAX(applied_seq), 0) FROM op_streams WHERE site = ?1 AND epoch = ?2",
        rusqlite::params![fleet.sites[i].id.as_str(), epoch],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(applied).unwrap_or(0))
}

async fn wait_settled(fleet: &ProcFleet, agents: &[usize]) -> anyhow::Result<()> {
    for &i in agents {
        modori_tests::wait_for(
            "an agent's outbox acknowledged",
            STOP_TIMEOUT,
            || async move { Ok(fleet.status(i).await?["outbox_pending"] == 0) },
        )
        .await?;
    }
    Ok(())
}

async fn throughput(fleet: &mut ProcFleet, ops_per_agent: u64) -> anyhow::Result<Throughput> {
    let all: Vec<usize> = (0..fleet.sites.len()).collect();
    for &i in &all {
        stop_agent(fleet, i).await?;
    }
    let base = all
        .iter()
        .map(|&i| coordinator_applied(fleet, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let heads = fill_backlogs(fleet, &all, ops_per_agent).await?;
    for &i in &all {
        keep_baseline_source(fleet, i)?;
    }
    let watches = all
        .iter()
        .map(|&i| {
            Ok(Watch {
                site: fleet.sites[i].id.to_string(),
                agent_db: None,
                epoch: Some(agent_epoch(fleet, i)?),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let poller = Poller::start(&fleet.coordinator_db_path(), watches, DRAIN_POLL_INTERVAL)?;
    let coordinator = pid(fleet.coordinator_pid(), "coordinator")?;
    let (cpu0, t0) = (procfs::cpu_seconds(coordinator)?, Instant::now());
    for &i in &all {
        fleet.start_agent(i, None)?;
    }
    let agents = agent_pids(fleet)?;
    let mut pids = vec![coordinator];
    pids.extend(&agents);
    let sampler = RssSampler::start(pids);
    let n_ops: u64 = heads.iter().zip(&base).map(|(h, b)| h - b).sum();
    wait_until("the backlogs applied", drain_timeout(n_ops), || {
        all.iter().all(|&i| poller.applied(i) >= heads[i])
    })
    .await?;
    let elapsed = t0.elapsed().as_secs_f64();
    // The agents started with this phase: their CPU time so far is all of it.
    let mut cpu_seconds = procfs::cpu_seconds(coordinator)? - cpu0;
    for &p in &agents {
        cpu_seconds += procfs::cpu_seconds(p)?;
    }
    let coordinator_cpu_percent = 100.0 * (procfs::cpu_seconds(coordinator)? - cpu0) / elapsed;
    let positions = poller.finish()?;
    let rss = sampler.finish();
    let first = all
        .iter()
        .filter_map(|&i| positions.applied[i].first_reaching(base[i] + 1))
        .min()
        .context("no op of the backlogs was seen applied")?;
    let last = all
        .iter()
        .filter_map(|&i| positions.applied[i].first_reaching(heads[i]))
        .max()
        .context("the end of the backlogs was not seen applied")?;
    wait_settled(fleet, &all).await?;
    Ok(Throughput {
        base,
        heads,
        n_ops,
        seconds: (last - first).max(DRAIN_SECONDS_MIN).as_secs_f64(),
        coordinator_rss_max: rss[0],
        agent_rss_max: rss[1..].iter().copied().max().unwrap_or(0),
        coordinator_cpu_percent,
        cpu_seconds,
    })
}

/// Where the baseline and the ceiling read site `i`'s ops: a copy of its database with the
/// backlog in its current epoch's outbox, taken before the agent starts again (a start retires
/// that epoch).
fn baseline_source(fleet: &ProcFleet, i: usize) -> PathBuf {
    fleet.dir.path().join(format!("baseline-source-{i}.db"))
}

fn keep_baseline_source(fleet: &ProcFleet, i: usize) -> anyhow::Result<()> {
    let copy = baseline_source(fleet, i);
    if copy.exists() {
        std::fs::remove_file(&copy)?;
    }
    modori_runtime::backup::backup(&fleet.agent_db_path(i), &copy)
        .with_context(|| format!("copying site {i}'s backlog for the baseline"))
}

async fn push_all(
    server: std::net::SocketAddr,
    fleet: &ProcFleet,
    after: &[u64],
    up_to: &[u64],
) -> anyhow::Result<Vec<baseline::Pushed>> {
    let pushes: Vec<_> = (0..fleet.sites.len())
        .map(|i| {
            tokio::spawn(baseline::push(
                server,
                baseline_source(fleet, i),
                fleet.sites[i].id.clone(),
                after[i],
                up_to[i],
            ))
        })
        .collect();
    let mut out = Vec::with_capacity(pushes.len());
    for p in pushes {
        out.push(p.await?.context("pushing ops over HTTP")?);
    }
    Ok(out)
}

async fn http_baseline(
    fleet: &ProcFleet,
    base: &[u64],
    heads: &[u64],
) -> anyhow::Result<BaselineRun> {
    let dir = fleet.dir.path().join("baseline");
    std::fs::create_dir_all(&dir)?;
    let server = baseline::Server::start(&dir.join("coordinator.db")).await?;
    // Not measured: what the sites sent before their backlog, so the store starts where the
    // coordinator's did.
    let zero = vec![0; base.len()];
    push_all(server.addr, fleet, &zero, base).await?;
    let me = std::process::id();
    let cpu0 = procfs::cpu_seconds(me)?;
    let pushed = push_all(server.addr, fleet, base, heads).await?;
    let cpu_seconds = procfs::cpu_seconds(me)? - cpu0;
    let first = pushed
        .iter()
        .filter_map(|p| p.first_ack)
        .min()
        .context("nothing was pushed over HTTP")?;
    let last = pushed
        .iter()
        .filter_map(|p| p.last_ack)
        .max()
        .context("nothing was pushed over HTTP")?;
    let (applied, anomalies) = server
        .db()
        .call(|c| {
            let ops: i64 = c.query_row("SELECT COUNT(*) FROM ops", [], |r| r.get(0))?;
            let anomalies: i64 = c.query_row("SELECT COUNT(*) FROM anomalies", [], |r| r.get(0))?;
            Ok::<_, modori_coordinator::store::StoreError>((ops, anomalies))
        })
        .await?;
    server.stop().await;
    Ok(BaselineRun {
        n_ops: pushed.iter().map(|p| p.n_ops).sum(),
        seconds: (last - first).max(DRAIN_SECONDS_MIN).as_secs_f64(),
        cpu_seconds,
        applied: u64::try_from(applied).unwrap_or(0),
        anomalies: u64::try_from(anomalies).unwrap_or(0),
    })
}

/// The throughput phase's ops, read from the baseline's copies of the sites' outboxes, as bare
/// rows into a fresh file beside the coordinator's.
fn apply_ceiling(fleet: &ProcFleet, base: &[u64], heads: &[u64]) -> anyhow::Result<Ceiling> {
    let sites = (0..fleet.sites.len())
        .map(|i| {
            ceiling::outbox_ops(
                &baseline_source(fleet, i),
                fleet.sites[i].id.as_str(),
                base[i],
                heads[i],
            )
            .with_context(|| format!("reading site {i}'s backlog for the ceiling"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dir = fleet.dir.path().join("ceiling");
    std::fs::create_dir_all(&dir)?;
    ceiling::measure(&dir.join("ceiling.db"), &sites).context("measuring the apply ceiling")
}

async fn catch_up(fleet: &mut ProcFleet, n_ops: u64) -> anyhow::Result<CatchUp> {
    const SITE: usize = 0;
    stop_agent(fleet, SITE).await?;
    let base = coordinator_applied(fleet, SITE)?;
    let head = fill_backlogs(fleet, &[SITE], n_ops).await?[0];
    let watch = Watch {
        site: fleet.sites[SITE].id.to_string(),
        agent_db: None,
        epoch: Some(agent_epoch(fleet, SITE)?),
    };
    let poller = Poller::start(
        &fleet.coordinator_db_path(),
        vec![watch],
        DRAIN_POLL_INTERVAL,
    )?;
    let t0 = Instant::now();
    fleet.start_agent(SITE, None)?;
    let sampler = RssSampler::start(vec![pid(fleet.agent_pid(SITE), "agent")?]);
    wait_until("the returning site caught up", drain_timeout(n_ops), || {
        poller.applied(0) >= head
    })
    .await?;
    let positions = poller.finish()?;
    let rss = sampler.finish();
    let first = positions.applied[0]
        .first_reaching(base + 1)
        .context("no op of the returning site was seen applied")?;
    let last = positions.applied[0]
        .first_reaching(head)
        .context("the returning site's last op was not seen applied")?;
    wait_settled(fleet, &[SITE]).await?;
    Ok(CatchUp {
        n_ops: head - base,
        total_seconds: (last - t0).as_secs_f64(),
        drain_seconds: (last - first).max(DRAIN_SECONDS_MIN).as_secs_f64(),
        agent_rss_max: rss[0],
    })
}

/// Simulated sites still on the connection they opened at the start.
async fn connections_held(sims: &[AgentHandle]) -> anyhow::Result<usize> {
    let mut held = 0;
    for s in sims {
        let status = s.status().await?;
        if status.connected && status.n_connects == 1 {
            held += 1;
        }
    }
    Ok(held)
}

/// Every site's outbox, the harness's tally and the coordinator's rows agree: each op recorded
/// once is applied once, as one unit, with no anomaly.
async fn exactly_once(
    fleet: &ProcFleet,
    sims: &[AgentHandle],
    tally: &[u64],
    sim_tally: &[u64],
) -> anyhow::Result<ExactlyOnce> {
    /// Sites named in the report when their counts disagree.
    const WRONG_LISTED_MAX: usize = 10;
    let mut expected: Vec<(String, u64, u64)> = Vec::new();
    for (i, &n) in tally.iter().enumerate() {
        // Every start of an agent begins a new epoch: its ops are the heads of all of them.
        let head = fleet.agent_count(
            i,
            "SELECT op_head_seq + (SELECT COALESCE(SUM(head_seq), 0) FROM retired_epochs)
             FROM sync_state WHERE id = 1",
        )?;
        expected.push((fleet.sites[i].id.to_string(), n, head));
    }
    for (s, &n) in sims.iter().zip(sim_tally) {
        modori_tests::wait_for(
            "a simulated site's outbox acknowledged",
            STOP_TIMEOUT,
            || async move { Ok(s.status().await?.outbox_pending == 0) },
        )
        .await?;
        expected.push((s.site().to_string(), n, s.status().await?.outbox_head_seq));
    }
    let path = fleet.coordinator_db_path();
    let (ops, units, applied, anomalies) = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let per_site = |sql: &str| -> rusqlite::Result<HashMap<String, u64>> {
            conn.prepare(sql)?
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    ))
                })?
                .collect()
        };
        Ok::<_, rusqlite::Error>((
            per_site("SELECT site, COUNT(*) FROM ops GROUP BY site")?,
            per_site("SELECT site, COUNT(*) FROM units GROUP BY site")?,
            per_site("SELECT site, SUM(applied_seq) FROM op_streams GROUP BY site")?,
            per_site("SELECT site, COUNT(*) FROM anomalies GROUP BY site")?,
        ))
    })
    .await??;
    let mut out = ExactlyOnce {
        sites_checked: expected.len(),
        ..Default::default()
    };
    let get = |m: &HashMap<String, u64>, site: &str| m.get(site).copied().unwrap_or(0);
    for (site, n, head) in &expected {
        let (o, u, a, x) = (
            get(&ops, site),
            get(&units, site),
            get(&applied, site),
            get(&anomalies, site),
        );
        out.ops_recorded += n;
        out.ops_applied += o;
        out.units += u;
        out.anomalies += x;
        if !(*head == *n && o == *n && u == *n && a == *n && x == 0) {
            if out.wrong.len() < WRONG_LISTED_MAX {
                out.wrong.push(format!(
                    "{site}: recorded {n}, outbox head {head}, ops {o}, units {u}, applied mark {a}, anomalies {x}"
                ));
            } else if out.wrong.len() == WRONG_LISTED_MAX {
                out.wrong.push("…".into());
            }
        }
    }
    out.ok = out.wrong.is_empty();
    Ok(out)
}

/// Each routing decision timed alone, `rounds` times over every store.
fn time_routing(sites: &[Site], stores: &[Store], rounds: usize) -> Option<Summary> {
    let mut samples = Vec::with_capacity(rounds * stores.len());
    for _ in 0..rounds {
        for store in stores {
            let t = Instant::now();
            let route = nearest_site(sites, store.location);
            samples.push(t.elapsed());
            std::hint::black_box(route);
        }
    }
    summarize(&mut samples)
}

struct Measured<'a> {
    opts: &'a Options,
    idle: Idle,
    online: Online,
    throughput: Throughput,
    http: BaselineRun,
    ceiling: Ceiling,
    wire: Wire,
    catch_up: CatchUp,
    held: usize,
    routing_real: Option<Summary>,
    routing_load: Option<Summary>,
    size: binaries::BinarySize,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

fn ms_figure(
    key: &'static str,
    label: &str,
    summary: Option<Summary>,
    pick: fn(&Summary) -> f64,
) -> Figure {
    match summary {
        Some(s) => Figure::new(key, label, pick(&s), "ms"),
        None => Figure::missing(key, label, "ms").note("nothing was measured"),
    }
}

impl Measured<'_> {
    fn figures(&self) -> Vec<Figure> {
        let (o, t, h, c) = (&self.online, &self.throughput, &self.http, &self.catch_up);
        let n_agents = self.opts.agents;
        let quic = t.n_ops as f64 / t.seconds;
        let http = h.n_ops as f64 / h.seconds;
        let resolution = format!(
            "read every {:.1} ms on average",
            o.resolution.as_secs_f64() * 1000.0
        );
        let online_receipts: u64 = o.receipts.iter().sum();
        let routing = |key, label: &str, s: Option<Summary>| match s {
            Some(s) => Figure::new(key, label, s.p99_ms * 1000.0, "µs"),
            None => Figure::missing(key, label, "µs"),
        };
        let stripped = match self.size.stripped_bytes {
            Some(b) => Figure::new(
                "agent_stripped_binary_mib",
                "Agent binary, stripped",
                mib(b),
                "MiB",
            ),
            None => Figure::missing("agent_stripped_binary_mib", "Agent binary, stripped", "MiB")
                .note("no strip command here"),
        };
        vec![
            Figure::new(
                "ops_per_second_applied",
                format!(
                    "Ops applied per second at the coordinator, {n_agents} agents draining {} ops (QUIC + bincode)",
                    t.n_ops
                ),
                quic,
                "ops/s",
            )
            .target(Target::at_least(100_000.0)),
            Figure::new(
                "http_json_baseline_ops_per_second",
                "The same ops as HTTP/1.1 JSON batches into the same kind of store",
                http,
                "ops/s",
            ),
            Figure::new(
                "apply_ceiling_ops_per_second",
                "The disk's ceiling: the same ops as bare rows with their high-water mark, one durable transaction per batch, on the same disk",
                self.ceiling.ops_per_second(),
                "ops/s",
            ),
            Figure::new(
                "applied_over_ceiling",
                "Ops applied per second at the coordinator ÷ the disk's ceiling",
                quic / self.ceiling.ops_per_second(),
                "×",
            )
            .target(Target::at_least(0.5)),
            Figure::new(
                "wire_quic_cpu_us_per_op",
                "CPU per op over QUIC + bincode into a server that only counts (agents + server)",
                self.wire.quic.cpu_us_per_op(),
                "µs",
            ),
            Figure::new(
                "wire_http_json_cpu_us_per_op",
                "CPU per op over HTTP/1.1 JSON into a server that only counts (client + server)",
                self.wire.http.cpu_us_per_op(),
                "µs",
            ),
            Figure::new(
                "wire_http_json_over_quic_cpu",
                "CPU per op, HTTP/1.1 JSON ÷ QUIC + bincode, the wire alone",
                self.wire.http.cpu_us_per_op() / self.wire.quic.cpu_us_per_op(),
                "×",
            )
            .target(Target::at_least(3.0)),
            Figure::new(
                "quic_over_http_json",
                "QUIC + bincode throughput ÷ HTTP/1.1 JSON throughput",
                quic / http,
                "×",
            ),
            ms_figure(
                "ack_latency_p50_ms",
                "Ack latency p50 while online (receipt durable at the agent → its ack stored there)",
                o.ack,
                |s| s.p50_ms,
            )
            .note(resolution.clone()),
            ms_figure(
                "ack_latency_p99_ms",
                "Ack latency p99 while online",
                o.ack,
                |s| s.p99_ms,
            )
            .note(resolution.clone()),
            ms_figure(
                "scan_to_coordinator_p50_ms",
                "Scan to coordinator p50 while online (receipt durable at the agent → durable at the coordinator)",
                o.scan,
                |s| s.p50_ms,
            )
            .note(resolution.clone()),
            ms_figure(
                "scan_to_coordinator_p99_ms",
                "Scan to coordinator p99 while online",
                o.scan,
                |s| s.p99_ms,
            )
            .target(Target::below(200.0))
            .note(resolution),
            ms_figure(
                "receipt_confirmed_p99_ms",
                "Receipt confirmed to the supervisor p99 (ctl receive, one fsynced transaction)",
                o.confirmed,
                |s| s.p99_ms,
            ),
            Figure::new(
                "online_receipts_per_second",
                format!(
                    "Receipts per second recorded at the {n_agents} agents while online (asked: {})",
                    self.opts.rate_per_second
                ),
                online_receipts as f64 / o.elapsed.as_secs_f64(),
                "receipts/s",
            )
            .note(format!(
                "{} simulated receipts besides; {} ticks skipped, {} failed, {} unmeasured",
                o.sim_receipts.iter().sum::<u64>(),
                o.n_skipped,
                o.n_failed,
                o.n_unmeasured
            )),
            Figure::new(
                "catch_up_seconds",
                format!(
                    "Catch-up of a site returning with {} pending ops (agent start → last op durable at the coordinator)",
                    c.n_ops
                ),
                c.total_seconds,
                "s",
            )
            .target(Target::below(30.0)),
            Figure::new(
                "catch_up_drain_seconds",
                "… of which first op applied → last op applied",
                c.drain_seconds,
                "s",
            ),
            Figure::new(
                "catch_up_ops_per_second",
                "Catch-up rate of one site",
                c.n_ops as f64 / c.drain_seconds,
                "ops/s",
            ),
            routing(
                "routing_decision_p99_us",
                "Routing decision p99 (nine real sites, every store)",
                self.routing_real,
            )
            .target(Target::below(1000.0)),
            routing(
                "routing_decision_p99_us_load_fleet",
                &format!(
                    "Routing decision p99 over the whole load fleet ({} sites)",
                    n_agents + self.opts.sim_connections
                ),
                self.routing_load,
            ),
            Figure::new(
                "agent_idle_rss_mib",
                "Agent RSS idle (largest of the real agents)",
                mib(self.idle.agent_rss_max),
                "MiB",
            )
            .target(Target::below(30.0)),
            Figure::new(
                "agent_load_rss_mib",
                "Agent RSS under load (largest, online and throughput phases)",
                mib(o.agent_rss_max.max(t.agent_rss_max)),
                "MiB",
            ),
            Figure::new(
                "catch_up_agent_rss_mib",
                "Agent RSS while catching up",
                mib(c.agent_rss_max),
                "MiB",
            ),
            Figure::new(
                "agent_binary_mib",
                "Agent binary as built",
                mib(self.size.bytes),
                "MiB",
            ),
            stripped.target(Target::below(20.0)),
            Figure::new(
                "sim_connections_held",
                "Simulated site connections held by the coordinator for the whole run",
                self.held as f64,
                "connections",
            )
            .target(Target::at_least(1000.0))
            .note(format!("of {} opened", self.opts.sim_connections)),
            Figure::new(
                "coordinator_idle_rss_mib",
                "Coordinator RSS idle, every connection held",
                mib(self.idle.coordinator_rss),
                "MiB",
            ),
            Figure::new(
                "coordinator_load_rss_mib",
                "Coordinator RSS under load (largest)",
                mib(o.coordinator_rss_max.max(t.coordinator_rss_max)),
                "MiB",
            ),
            Figure::new(
                "coordinator_cpu_percent_idle",
                "Coordinator CPU idle (% of one core)",
                self.idle.coordinator_cpu_percent,
                "%",
            ),
            Figure::new(
                "coordinator_cpu_percent_online",
                "Coordinator CPU while online (% of one core)",
                o.coordinator_cpu_percent,
                "%",
            ),
            Figure::new(
                "coordinator_cpu_percent_throughput",
                "Coordinator CPU while draining the backlogs (% of one core)",
                t.coordinator_cpu_percent,
                "%",
            ),
            Figure::new(
                "throughput_cpu_seconds_quic",
                "CPU spent on the backlogs over QUIC (coordinator + agents)",
                t.cpu_seconds,
                "s",
            ),
            Figure::new(
                "throughput_cpu_seconds_http_json",
                "CPU spent on the same backlogs over HTTP/1.1 JSON (client + server)",
                h.cpu_seconds,
                "s",
            ),
            Figure::new(
                "harness_rss_mib",
                format!(
                    "Harness RSS holding the {} simulated sites",
                    self.opts.sim_connections
                ),
                mib(o.harness_rss_max),
                "MiB",
            ),
        ]
    }
}

fn method(opts: &Options) -> Vec<String> {
    vec![
        format!(
            "Fleet: one coordinator process and {} real agent processes (`modori-agent`), plus {} simulated sites: in-process agents with the same sync client, store and TLS code, each with its own certificate (CN = site id) and its own QUIC connection. Every site is in the coordinator's sites file.",
            opts.agents, opts.sim_connections
        ),
        "Online: receipts at the chosen rate through each real agent's `ctl receive` (one fsynced transaction with its outbox op, as at a station); simulated sites record their own. Latencies are from the moment the agent's answer arrives (the op durable in its outbox) to the moment an outside reader sees the coordinator's applied mark (`op_streams`, committed) or the agent's acknowledged mark (`sync_state`, committed) reach the op; both marks are read every 2 ms, so each figure may be up to one read late.".into(),
        "Throughput: the real agents stopped, receipts appended to each outbox through the agent's own `work::record` (a backlog as offline work builds one), all agents started together; ops/s = backlog ops ÷ (last op seen applied − first op seen applied), marks read every 20 ms.".into(),
        "Baseline: the same backlog ops read from the same outboxes (`store::load_ops`), sent as JSON batches of 512 over one keep-alive HTTP/1.1 connection per site to an axum endpoint in the harness, which applies them through the same `store::apply_op_batch` into a fresh coordinator store (SQLite, WAL, fsync per commit); timed from the first batch acknowledged to the last, like the QUIC figure.".into(),
        "Ceiling: the same backlog ops, read from the same outboxes, inserted by the harness into a fresh SQLite file on the same disk with the coordinator's `ops` and `op_streams` tables (WAL, `synchronous=FULL`): one transaction per 512 ops holding the rows (payload hash computed, payload stored) and the stream's high-water mark, nothing else; the sites' batches interleaved, one writer, as the coordinator's single database thread applies them.".into(),
        "Wire alone: with the coordinator stopped, the same size of backlog again at each agent; the agents, unchanged, send it to a server on the coordinator's address that speaks the protocol up to the store (hello, bincode batches decoded, new ops counted, cumulative acks) and stores nothing; then the same ops as the baseline's JSON batches to an HTTP/1.1 server that decodes them into the same ops and counts them. CPU: the servers' own thread (`/proc/thread-self`) plus the agents' processes from the moment every agent has connected (the server holds their hellos unanswered until then, so no op flows before) to the last op counted; for HTTP, the harness process (client and server thread), which then runs nothing else.".into(),
        "Catch-up: one agent stopped, its backlog appended, started again; from the process start to its last op seen applied at the coordinator (includes the agent's start, its database check, the connection).".into(),
        "Routing: `routing::nearest_site` timed alone per decision, over every store, many rounds; memory is VmRSS from /proc/<pid>/status sampled every 250 ms, CPU is utime + stime from /proc/<pid>/stat.".into(),
        "Exactly once: for every site, the harness's count of recorded receipts = the outbox heads of all its epochs = the coordinator's `ops` rows = its `units` rows = its applied mark, with no anomaly; and the baseline store holds every op it was given.".into(),
    ]
}
