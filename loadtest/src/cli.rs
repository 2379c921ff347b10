//! `modori-load`'s command line (a binary edge: `anyhow`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::run::{self, Options};

/// What `--quick` and the full run use for each flag not given.
struct Defaults {
    agents: usize,
    sim_connections: usize,
    rate: f64,
    sim_receipt_interval_seconds: f64,
    duration_seconds: f64,
    burst_ops: u64,
    catch_up_ops: u64,
    idle_settle_seconds: f64,
    routing_rounds: usize,
}

/// The fleet: nine sites, a thousand simulated connections, a million-op catch-up.
const FULL: Defaults = Defaults {
    agents: 9,
    sim_connections: 1000,
    rate: 900.0,
    sim_receipt_interval_seconds: 10.0,
    duration_seconds: 30.0,
    burst_ops: 100_000,
    catch_up_ops: 1_000_000,
    idle_settle_seconds: 5.0,
    routing_rounds: 2000,
};

/// A smoke run: every phase and figure, small enough for a debug build on two cores.
const QUICK: Defaults = Defaults {
    agents: 2,
    sim_connections: 20,
    rate: 100.0,
    sim_receipt_interval_seconds: 1.0,
    duration_seconds: 3.0,
    // Enough for the wire's CPU per op to span many of the clock's 10 ms ticks.
    burst_ops: 20_000,
    catch_up_ops: 20_000,
    idle_settle_seconds: 1.0,
    routing_rounds: 100,
};

/// Runs a coordinator, real agent processes and simulated site connections under load, and
/// writes report.json and report.md.
#[derive(Parser, Debug)]
#[command(name = "modori-load", version)]
struct Cli {
    /// Real agent processes (`modori-agent`), one per real site, 1..=9. Default 9 (quick: 2).
    #[arg(long)]
    agents: Option<usize>,
    /// Simulated site connections: in-process agents with their own certificates, up to 1,000.
    /// Default 1000 (quick: 20).
    #[arg(long)]
    sim_connections: Option<usize>,
    /// Receipts per second across the real agents while online. Default 900 (quick: 100).
    #[arg(long)]
    rate: Option<f64>,
    /// Each simulated site records one receipt this often while online. Default 10 (quick: 1).
    #[arg(long)]
    sim_receipt_interval_seconds: Option<f64>,
    /// Length of the online phase. Default 30 (quick: 3).
    #[arg(long)]
    duration_seconds: Option<f64>,
    /// Backlog appended to each real agent for the throughput phase (and pushed again over
    /// HTTP for the baseline). Default 100000 (quick: 20000).
    #[arg(long)]
    burst_ops: Option<u64>,
    /// Backlog of the site returning in the catch-up phase. Default 1000000 (quick: 20000).
    #[arg(long)]
    catch_up_ops: Option<u64>,
    /// Wait this long with every link up before measuring idle memory and CPU. Default 5
    /// (quick: 1).
    #[arg(long)]
    idle_settle_seconds: Option<f64>,
    /// Rounds over every store when timing routing decisions. Default 2000 (quick: 100).
    #[arg(long)]
    routing_rounds: Option<usize>,
    /// Where report.json and report.md are written.
    #[arg(long, default_value = "load-report")]
    out: PathBuf,
    /// A small smoke run: the defaults in parentheses above.
    #[arg(long)]
    quick: bool,
    /// Run the agents and the coordinator from this binary (the same entry points), so nothing
    /// else needs building. The binary size figure is then this binary's.
    #[arg(long, conflicts_with_all = ["agent_bin", "coordinator_bin"])]
    self_hosted: bool,
    /// The `modori-agent` to run. Default: beside modori-load (built first when run by cargo).
    #[arg(long, requires = "coordinator_bin")]
    agent_bin: Option<PathBuf>,
    /// The `modori-coordinator` to run. Default: beside modori-load.
    #[arg(long, requires = "agent_bin")]
    coordinator_bin: Option<PathBuf>,
    /// Keep the databases, certificates and logs of the run (the folder is logged).
    #[arg(long)]
    keep_work_dir: bool,
    /// Measure the wire alone (CPU per op over QUIC + bincode and over HTTP/1.1 JSON, into
    /// servers that only count) and print it; no report is written.
    #[arg(long)]
    wire_only: bool,
}

fn seconds(s: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .with_context(|| format!("--{flag} must be a duration in seconds"))
}

impl Cli {
    fn options(self) -> anyhow::Result<(Options, PathBuf)> {
        let d = if self.quick { QUICK } else { FULL };
        let rate = self.rate.unwrap_or(d.rate);
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be above 0");
        let binaries =
            crate::binaries::resolve(self.agent_bin, self.coordinator_bin, self.self_hosted)?;
        let options = Options {
            agents: self.agents.unwrap_or(d.agents),
            sim_connections: self.sim_connections.unwrap_or(d.sim_connections),
            rate_per_second: rate,
            sim_receipt_interval: seconds(
                self.sim_receipt_interval_seconds
                    .unwrap_or(d.sim_receipt_interval_seconds),
                "sim-receipt-interval-seconds",
            )?,
            duration: seconds(
                self.duration_seconds.unwrap_or(d.duration_seconds),
                "duration-seconds",
            )?,
            burst_ops: self.burst_ops.unwrap_or(d.burst_ops),
            catch_up_ops: self.catch_up_ops.unwrap_or(d.catch_up_ops),
            idle_settle: seconds(
                self.idle_settle_seconds.unwrap_or(d.idle_settle_seconds),
                "idle-settle-seconds",
            )?,
            routing_rounds: self.routing_rounds.unwrap_or(d.routing_rounds),
            binaries,
            keep_work_dir: self.keep_work_dir,
        };
        anyhow::ensure!(
            !options.sim_receipt_interval.is_zero(),
            "--sim-receipt-interval-seconds must be above 0"
        );
        anyhow::ensure!(
            options.burst_ops > 0 && options.catch_up_ops > 0,
            "--burst-ops and --catch-up-ops must be above 0"
        );
        Ok((options, self.out))
    }
}

pub fn main() -> ExitCode {
    modori_runtime::edge::run_main(|| {
        modori_runtime::edge::init_tracing("warn,modori_load=info,modori_loadtest=info");
        let cli = Cli::parse();
        let wire_only = cli.wire_only;
        let (options, out) = cli.options()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        if wire_only {
            let wire = runtime.block_on(run::wire_only(&options))?;
            println!(
                "wire alone, {} agents: QUIC + bincode {:.2} µs/op, HTTP/1.1 JSON {:.2} µs/op, {:.2} ×",
                options.agents,
                wire.quic.cpu_us_per_op(),
                wire.http.cpu_us_per_op(),
                wire.http.cpu_us_per_op() / wire.quic.cpu_us_per_op()
            );
            return Ok(());
        }
        let report = runtime.block_on(run::run(&options))?;
        report
            .write(&out)
            .with_context(|| format!("writing the report into {}", out.display()))?;
        println!("{}", report.markdown());
        println!(
            "report written to {} and {}",
            out.join("report.json").display(),
            out.join("report.md").display()
        );
        anyhow::ensure!(
            report.exactly_once.ok,
            "exactly-once check failed: {:?}",
            report.exactly_once.wrong
        );
        Ok(())
    })
}
