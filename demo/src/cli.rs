//! The demo's command line. Lives in the library so the tests run the very same entry point;
//! like a `main.rs`, it is a binary edge (anyhow with context).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::run::{run, DemoOptions};
use anyhow::Context;
use clap::Parser;
use modori_runtime::edge::{init_tracing, run_main};

/// The local demo: coordinator + nine simulated sites on loopback.
#[derive(Parser)]
#[command(name = "modori-demo", about = "Modori local demo", version)]
struct Cli {
    /// Where certificates and databases live; reused on the next run.
    #[arg(long, default_value = "./modori-demo")]
    data_dir: PathBuf,
    /// HTTP address of the API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Delete the data dir first.
    #[arg(long)]
    reset: bool,
    /// Stop by itself after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration_seconds: Option<u64>,
    /// Simulated returns registered per second.
    #[arg(long, default_value_t = 4.0)]
    returns_per_second: f64,
}

/// The `modori-demo` command line.
pub fn main() -> std::process::ExitCode {
    run_main(|| {
        let cli = Cli::parse();
        init_tracing("warn,modori_demo=info,modori_coordinator=info,modori_agent=warn");
        tokio::runtime::Runtime::new()
            .context("starting the async runtime")?
            .block_on(run(DemoOptions {
                data_dir: cli.data_dir,
                http: cli.http,
                reset: cli.reset,
                duration: cli.duration_seconds.map(Duration::from_secs),
                returns_per_second: cli.returns_per_second,
            }))
    })
}
