use std::path::PathBuf;

use crate::config::AgentConfig;
use crate::ctl::CtlRequest;
use crate::Agent;
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "modori-agent", about = "Modori site agent", version)]
struct Cli {
    /// The site's config file.
    #[arg(
        long,
        short,
        env = "MODORI_AGENT_CONFIG",
        default_value = "/etc/modori/agent.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the site service (the default).
    Run,
    /// Validate the config file and exit.
    CheckConfig,
    /// Write a consistent snapshot of the site database to FILE (safe while the agent runs).
    Backup { file: PathBuf },
    /// Replace the site database with a backup, under a new epoch. Stop the agent first.
    Restore { file: PathBuf },
    /// Ask the running agent.
    Ctl {
        #[command(subcommand)]
        command: CtlCommand,
    },
}

#[derive(Subcommand)]
enum CtlCommand {
    /// Print the sync status as JSON.
    Status,
    /// Record a receipt by hand, as a receiving station would.
    Receive {
        #[arg(long)]
        sku: String,
        #[arg(long)]
        rma: Option<String>,
        /// Badge of the person recording it.
        #[arg(long)]
        operator: String,
    },
    /// Print a unit's label again.
    Reprint {
        lpn: String,
        /// Printer name (default: the first printer).
        #[arg(long)]
        printer: Option<String>,
        #[arg(long)]
        operator: String,
    },
    /// Who did what to a unit, when, at which station.
    Audit { lpn: String },
}

/// The `modori-agent` command line. Lives in the library so test binaries run the very same
/// entry point; like `main.rs`, it is a binary edge (anyhow with context).
pub fn main() -> std::process::ExitCode {
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    match run_cli(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Run);
    let config = AgentConfig::load(&cli.config)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match command {
        Command::Backup { file } => {
            crate::backup::backup(&config.db_path(), &file)?;
            println!(
                "backup of site {} written to {}",
                config.site.id,
                file.display()
            );
            Ok(())
        }
        Command::Restore { file } => {
            let now = crate::sync_client::chrono_ms();
            let r = crate::backup::restore(&config, &file, now)?;
            println!(
                "restored {} for site {}: new epoch {} (was {}); {} unacknowledged ops of the old epoch will be delivered first",
                file.display(),
                config.site.id,
                r.new_epoch,
                r.old_epoch,
                r.n_retired_pending
            );
            if let Some(old) = r.replaced {
                println!("the replaced database was kept as {}", old.display());
            }
            Ok(())
        }
        Command::CheckConfig => {
            println!(
                "config {} is valid (site {})",
                cli.config.display(),
                config.site.id
            );
            Ok(())
        }
        Command::Ctl { command } => runtime.block_on(async {
            let request = match command {
                CtlCommand::Status => CtlRequest::Status,
                CtlCommand::Receive { sku, rma, operator } => {
                    CtlRequest::Receive { sku, rma, operator }
                }
                CtlCommand::Reprint {
                    lpn,
                    printer,
                    operator,
                } => CtlRequest::Reprint {
                    lpn,
                    printer,
                    operator,
                },
                CtlCommand::Audit { lpn } => CtlRequest::Audit { lpn },
            };
            let socket = config.ctl_socket();
            let reply = crate::ctl::request(&socket, &serde_json::to_string(&request)?)
                .await
                .with_context(|| {
                    format!("asking the agent at {} (is it running?)", socket.display())
                })?;
            println!("{}", serde_json::to_string_pretty(&reply)?);
            if let Some(error) = reply.get("error") {
                anyhow::bail!("the agent refused: {error}");
            }
            Ok(())
        }),
        Command::Run => {
            init_tracing();
            runtime.block_on(run(config))
        }
    }
}

async fn run(config: AgentConfig) -> anyhow::Result<()> {
    let agent = Agent::start(config).await.context("starting the agent")?;
    wait_for_signal().await?;
    tracing::info!("stopping");
    agent.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,quinn=warn".into()),
        )
        .init();
}
