//! `modori-agent`'s command line: `run`, `check-config`, `doctor`, `backup`, `restore` and
//! `ctl …` (a binary edge: `anyhow` with context).

use std::path::PathBuf;

use crate::config::AgentConfig;
use crate::ctl::CtlRequest;
use crate::Agent;
use anyhow::Context;
use clap::{Parser, Subcommand};
use modori_runtime::dir_lock::{DirLock, AGENT_LOCK_FILE};
use modori_runtime::edge::{init_tracing, run_main};

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
    /// Validate the config file and exit (the same as the `check-config` command).
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the site service (the default).
    Run,
    /// Validate the config file and exit.
    CheckConfig,
    /// Check config, certificate, devices, the coordinator link, the clock and the disk; print
    /// a pass/fail table and exit non-zero on any failure.
    Doctor,
    /// Write a consistent snapshot of the site database to FILE (safe while the agent runs).
    Backup { file: PathBuf },
    /// Replace the site database with a backup, under a new epoch. Stop the agent first.
    Restore { file: PathBuf },
    /// Ask the running agent.
    Ctl {
        /// Print the answer as JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: CtlRequest,
    },
}

/// Human-readable form of an answer: `key: value` lines for an object, a table for a list.
fn render(value: &serde_json::Value) -> String {
    use serde_json::Value;
    let cell = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    match value {
        Value::Array(rows) if rows.is_empty() => "(none)".into(),
        Value::Array(rows) => {
            let columns: Vec<String> = match &rows[0] {
                Value::Object(m) => m.keys().cloned().collect(),
                _ => return rows.iter().map(cell).collect::<Vec<_>>().join("\n"),
            };
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| columns.iter().map(|c| cell(&r[c.as_str()])).collect())
                .collect();
            let widths: Vec<usize> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    table
                        .iter()
                        .map(|r| r[i].len())
                        .max()
                        .unwrap_or(0)
                        .max(c.len())
                })
                .collect();
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            std::iter::once(line(&columns))
                .chain(table.iter().map(|r| line(r)))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::Array(_) | Value::Object(_) => format!("{k}:\n{}", indent(&render(v))),
                other => format!("{k}: {}", cell(other)),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => cell(other),
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crash point inside the watchdog's database round trip, for the fault tests.
pub const AGENT_DB_PROBE_FAILPOINT: &str = "agent-db-probe";

/// The `modori-agent` command line. Lives in the library so test binaries run the very same
/// entry point; like `main.rs`, it is a binary edge (anyhow with context).
pub fn main() -> std::process::ExitCode {
    run_main(|| run_cli(Cli::parse()))
}

fn run_cli(cli: Cli) -> anyhow::Result<()> {
    let command = match (cli.check_config, cli.command) {
        (true, _) => Command::CheckConfig,
        (false, command) => command.unwrap_or(Command::Run),
    };
    let config = AgentConfig::load(&cli.config)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match command {
        Command::Backup { file } => {
            modori_runtime::backup::backup(&config.db_path(), &file)?;
            println!(
                "backup of site {} written to {}",
                config.site.id,
                file.display()
            );
            Ok(())
        }
        Command::Restore { file } => {
            // Replacing the database under a running agent would lose what it writes next.
            let _lock = lock_data_dir(&config)?;
            let now = modori_runtime::clock::now_ms();
            let r = crate::restore::restore(&config, &file, now)?;
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
        Command::Doctor => {
            let checks = runtime.block_on(crate::doctor::run(&config));
            println!("{}", crate::doctor::render(&checks));
            if crate::doctor::any_failed(&checks) {
                anyhow::bail!("doctor found problems");
            }
            Ok(())
        }
        Command::CheckConfig => {
            // A config is checked before its certificate is installed too (the install guide
            // copies the config, checks it, then the certificate); `run` needs both.
            if config.tls.cert.exists() {
                check_identity(&config)?;
            } else {
                eprintln!(
                    "note: certificate {} (tls.cert) is not installed yet: site.id is checked \
                     against it once it is",
                    config.tls.cert.display()
                );
            }
            println!(
                "config {} is valid (site {})",
                cli.config.display(),
                config.site.id
            );
            Ok(())
        }
        Command::Ctl { json, command } => runtime.block_on(async {
            let request = command;
            let socket = config.ctl_socket();
            let reply = crate::ctl::request(&socket, &serde_json::to_string(&request)?)
                .await
                .with_context(|| {
                    format!("asking the agent at {} (is it running?)", socket.display())
                })?;
            if let Some(error) = reply.get("error").and_then(|e| e.as_str()) {
                anyhow::bail!("the agent refused: {error}");
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&reply)?);
            } else {
                // `status` opens with its one-line summary, then the detail.
                let mut detail = reply;
                if let Some(summary) = detail.as_object_mut().and_then(|o| o.remove("summary")) {
                    println!("{}", summary.as_str().unwrap_or_default());
                }
                println!("{}", render(&detail));
            }
            Ok(())
        }),
        Command::Run => {
            check_identity(&config)?;
            let lock = lock_data_dir(&config)?;
            init_tracing("info,quinn=warn");
            tracing::info!(lock = %lock.path().display(), pid = std::process::id(), "data dir locked");
            runtime.block_on(run(config))
        }
    }
}

/// The coordinator takes the site id from the certificate, never from the config: a site
/// whose `site.id` is not its certificate's common name would have its ops recorded as
/// another site's impersonation anomalies, never applied, while it believes them delivered.
fn check_identity(config: &AgentConfig) -> anyhow::Result<()> {
    let cert = &config.tls.cert;
    let cn = modori_runtime::tls::cert_common_name("site certificate", cert)?;
    anyhow::ensure!(
        cn == config.site.id,
        "site.id is {:?} but the certificate {} (tls.cert) is issued to {cn:?}: the coordinator \
         would take this site for {cn:?}; fix site.id or issue a certificate for {:?} with \
         `modori-coordinator pki issue-site`",
        config.site.id,
        cert.display(),
        config.site.id,
    );
    Ok(())
}

/// One process per data dir: held until the process ends. `ctl` and `backup` need no lock
/// (they talk to the running agent, or read the database through SQLite's own locking).
fn lock_data_dir(config: &AgentConfig) -> anyhow::Result<DirLock> {
    DirLock::acquire(&config.storage.data_dir, AGENT_LOCK_FILE).with_context(|| {
        format!(
            "site {}: data dir {} is in use",
            config.site.id,
            config.storage.data_dir.display()
        )
    })
}

async fn run(config: AgentConfig) -> anyhow::Result<()> {
    // Caught from before the start: a SIGTERM during it then stops the agent cleanly rather
    // than ending the process by the signal's default action.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let agent = Agent::start(config).await.context("starting the agent")?;
    // The database is open: the site can work, whether or not the coordinator answers.
    modori_runtime::systemd::notify_ready();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watchdog = modori_runtime::systemd::spawn_watchdog(
        agent.handle().db().clone(),
        AGENT_DB_PROBE_FAILPOINT,
        stopped,
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    modori_runtime::systemd::notify_stopping();
    let _ = stop.send(true);
    if let Some(w) = watchdog {
        let _ = w.await;
    }
    agent.shutdown().await;
    Ok(())
}
