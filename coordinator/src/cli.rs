//! `modori-coordinator`'s command line: `run`, `check-config`, `check`, `pki`, `keys`,
//! `backup`, `restore` and `migrate-store` (a binary edge: `anyhow` with context).

use std::path::PathBuf;

use crate::config::CoordinatorConfig;
use crate::fleet::Fleet;
use crate::pki::{self, PkiPaths};
use crate::revocation::Revoked;
use crate::store::pg::{Backend, PgTarget, NOT_SERVING};
use crate::Coordinator;
use anyhow::Context;
use clap::{Parser, Subcommand};
use modori_runtime::dir_lock::{DirLock, COORDINATOR_LOCK_FILE};
use modori_runtime::edge::init_tracing;
use modori_shared::domain::SiteId;

/// The crash point inside the watchdog's database round trip, for the fault tests.
pub const COORDINATOR_DB_PROBE_FAILPOINT: &str = "coordinator-db-probe";

#[derive(Parser)]
#[command(
    name = "modori-coordinator",
    about = "Modori central coordinator",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--config`: the coordinator's config file, for every command that reads it.
#[derive(clap::Args)]
struct ConfigArg {
    #[arg(
        long,
        short,
        env = "MODORI_COORD_CONFIG",
        default_value = "/etc/modori/coordinator.toml"
    )]
    config: PathBuf,
}

impl std::ops::Deref for ConfigArg {
    type Target = PathBuf;

    fn deref(&self) -> &PathBuf {
        &self.config
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the coordinator service.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Validate the config file (and the fleet files it names) and exit.
        #[arg(long)]
        check_config: bool,
    },
    /// Validate the config file (and the fleet files it names) and exit.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Check the database: reachable (and how fast), migrations current. One line per check;
    /// exits non-zero when one fails. Changes nothing.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Write a consistent snapshot of the coordinator database to FILE (safe while it runs).
    Backup {
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Replace the coordinator database with a backup (its next start numbers commands in a new
    /// epoch, as every start does). Stop the coordinator first.
    Restore {
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Copy the coordinator's SQLite database, every table, into a fresh PostgreSQL database
    /// (migrated first), in one transaction kept only when every table's row count and checksum
    /// match on both sides. Stop the coordinator first.
    MigrateStore {
        /// The target: postgres://user[:password]@host[:port]/database[?sslmode=…] (password
        /// from PGPASSWORD when the URL has none; TLS verified against storage.ca_file).
        #[arg(long)]
        to: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Certificates of the fleet.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// API keys of the HTTP API, in the coordinator's database (works while it runs: keys are
    /// checked at every request).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a key and print it (once; only its SHA-256 is stored).
    Create {
        /// `ops`, `merchant:<id>` or `store:<id>` (a store of the fleet's stores file).
        #[arg(long)]
        scope: String,
        /// Who or what uses it.
        #[arg(long)]
        label: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List the keys (never their secrets).
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Revoke a key by its id: its next request is refused.
    Revoke {
        id: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print a new key and its SHA-256 for an `[[api_keys]]` entry of the config; stores
    /// nothing.
    Generate,
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create the fleet CA and the coordinator's server certificate.
    Init {
        #[arg(long, default_value = "/etc/modori/pki")]
        dir: PathBuf,
        /// Names agents use to reach the coordinator (DNS names or IP addresses).
        #[arg(long = "server-name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        server_names: Vec<String>,
    },
    /// Issue a site's client certificate and key; prints the certificate's SHA-256 fingerprint
    /// (the form `tls.revoked_fingerprints` takes).
    IssueSite {
        site: String,
        #[arg(long, default_value = "/etc/modori/pki")]
        dir: PathBuf,
    },
}

/// The `modori-coordinator` command line. Lives in the library so test binaries run the very
/// same entry point; like `main.rs`, it is a binary edge (anyhow with context).
pub fn main() -> std::process::ExitCode {
    modori_runtime::edge::run_main(|| run_cli(Cli::parse()))
}

fn run_cli(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig { config }
        | Command::Run {
            config,
            check_config: true,
        } => {
            let c = CoordinatorConfig::load(&config)?;
            let fleet = Fleet::load(&c.fleet.sites_file, &c.fleet.stores_file)?;
            c.api_keys(Some(&fleet.stores)).map_err(|(key, message)| {
                anyhow::anyhow!("config {}: key `{key}`: {message}", config.display())
            })?;
            println!(
                "config {} is valid ({} sites, {} stores)",
                config.display(),
                fleet.sites.len(),
                fleet.stores.len()
            );
            Ok(())
        }
        Command::Check { config } => {
            let config = CoordinatorConfig::load(&config)?;
            let checks = crate::check::run(&config);
            println!("{}", crate::check::render(&checks));
            if crate::check::any_failed(&checks) {
                anyhow::bail!("check found problems");
            }
            Ok(())
        }
        Command::MigrateStore { to, config } => {
            let config = CoordinatorConfig::load(&config)?;
            sqlite_only(&config, "migrate-store")?;
            let password = std::env::var(crate::store::pg::PASSWORD_ENV).ok();
            let Backend::Postgres(target) = Backend::parse(Some(&to), password).context("--to")?
            else {
                anyhow::bail!("--to: give the PostgreSQL database to copy into (postgres://…)");
            };
            // The copy must see a database nothing writes: the coordinator stays stopped.
            let _lock = lock_data_dir(&config)?;
            let source = config.db_path();
            anyhow::ensure!(source.exists(), "{} does not exist", source.display());
            let mut client = target.connect(config.storage.ca_file.as_deref())?;
            let reports = crate::store::pg::copy::sqlite_to_postgres(&source, &target, &mut client)
                .with_context(|| {
                    format!("copying {} to {}", source.display(), target.describe())
                })?;
            let width = reports.iter().map(|r| r.table.len()).max().unwrap_or(0);
            for r in &reports {
                println!(
                    "{:<width$}  {:>9} rows  checksum {} on both",
                    r.table, r.rows, r.checksum
                );
            }
            println!(
                "copied {} tables, {} rows, from {} to {}: every table's count and checksum match",
                reports.len(),
                reports.iter().map(|r| r.rows).sum::<u64>(),
                source.display(),
                target.describe()
            );
            Ok(())
        }
        Command::Pki { command } => pki_command(command),
        Command::Keys { command } => keys_command(command),
        Command::Backup { file, config } => {
            let config = CoordinatorConfig::load(&config)?;
            sqlite_only(&config, "backup")?;
            modori_runtime::backup::backup(&config.db_path(), &file)?;
            let conn = rusqlite::Connection::open(&file)
                .with_context(|| format!("opening the backup {}", file.display()))?;
            crate::store::clear_run(&mut crate::store::sql::sqlite(&conn))
                .with_context(|| format!("marking the backup {}", file.display()))?;
            println!("backup written to {}", file.display());
            Ok(())
        }
        Command::Restore { file, config } => {
            let config = CoordinatorConfig::load(&config)?;
            sqlite_only(&config, "restore")?;
            // Replacing the database under a running coordinator would lose what it writes next.
            let _lock = lock_data_dir(&config)?;
            let replaced = crate::restore(&config, &file)?;
            println!(
                "restored {}: sites will resend what the backup lacks once it runs",
                file.display()
            );
            if let Some(old) = replaced {
                println!("the replaced database was kept as {}", old.display());
            }
            Ok(())
        }
        Command::Run {
            config: path,
            check_config: false,
        } => {
            init_tracing("info,quinn=warn");
            let config = CoordinatorConfig::load(&path)?;
            if let Backend::Postgres(target) = config.storage.backend()? {
                return refuse_postgres(&config, &target);
            }
            let fleet = Fleet::load(&config.fleet.sites_file, &config.fleet.stores_file)?;
            let lock = lock_data_dir(&config)?;
            tracing::info!(lock = %lock.path().display(), pid = std::process::id(), "data dir locked");
            runtime()?.block_on(async {
                // Before the listeners open: a SIGHUP sent as soon as the API answers must
                // reload, not end the process (the default action of an uncaught SIGHUP).
                let signals = StopAndReload::install()?;
                let coordinator = Coordinator::start(config, fleet)
                    .await
                    .context("starting the coordinator")?;
                modori_runtime::systemd::notify_ready();
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let watchdog = modori_runtime::systemd::spawn_watchdog(
                    coordinator.ctx().db.clone(),
                    COORDINATOR_DB_PROBE_FAILPOINT,
                    stopped,
                );
                serve_until_stopped(&coordinator, &path, signals).await?;
                tracing::info!("stopping");
                modori_runtime::systemd::notify_stopping();
                let _ = stop.send(true);
                if let Some(w) = watchdog {
                    let _ = w.await;
                }
                coordinator.shutdown().await;
                Ok(())
            })
        }
    }
}

fn pki_command(command: PkiCommand) -> anyhow::Result<()> {
    match command {
        PkiCommand::Init { dir, server_names } => {
            let paths = PkiPaths::new(&dir);
            pki::init(&paths, &server_names).context("creating the CA")?;
            println!("CA: {}", paths.ca_cert().display());
            println!(
                "server certificate: {} (names: {})",
                paths.server_cert().display(),
                server_names.join(", ")
            );
        }
        PkiCommand::IssueSite { site, dir } => {
            let site = SiteId::new(site).context("site id")?;
            let (cert, key) = pki::issue_site(&PkiPaths::new(&dir), &site)
                .with_context(|| format!("issuing the certificate of {site}"))?;
            let der = modori_runtime::tls::load_certs("site certificate", &cert)?;
            println!(
                "site {site}: certificate {} key {}",
                cert.display(),
                key.display()
            );
            // The form `tls.revoked_fingerprints` takes, for revoking this one certificate later.
            println!(
                "fingerprint (SHA-256): {}",
                crate::revocation::fingerprint_hex(der[0].as_ref())
            );
        }
    }
    Ok(())
}

/// The coordinator's database for `keys`, opened beside the running coordinator (WAL lets
/// both write; each waits for the other's lock up to the busy timeout). It must exist: a
/// typo in the config path must not make a new, empty database.
fn open_keys_db(config: &CoordinatorConfig) -> anyhow::Result<rusqlite::Connection> {
    sqlite_only(config, "keys")?;
    let path = config.db_path();
    let mut conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| {
        format!(
            "opening {} (start the coordinator once to create it)",
            path.display()
        )
    })?;
    conn.busy_timeout(modori_runtime::sqlite::BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    crate::store::migrations()
        .to_latest(&mut conn)
        .with_context(|| format!("migrating {}", path.display()))?;
    Ok(conn)
}

fn keys_command(command: KeysCommand) -> anyhow::Result<()> {
    use crate::apikeys::{self, Scope, Source};
    let now = modori_runtime::clock::now_ms();
    match command {
        KeysCommand::Generate => {
            let g = apikeys::generate()?;
            println!("key: {}", g.key);
            println!("sha256: {}", g.sha256);
            println!("(put the sha256 in an [[api_keys]] entry; keep the key secret)");
        }
        KeysCommand::Create {
            scope,
            label,
            config,
        } => {
            let config = CoordinatorConfig::load(&config)?;
            let scope = Scope::parse(&scope).context("--scope")?;
            if matches!(scope, Scope::Store(_)) {
                let fleet = Fleet::load(&config.fleet.sites_file, &config.fleet.stores_file)?;
                scope.check_store_exists(&fleet.stores).context("--scope")?;
            }
            let mut conn = open_keys_db(&config)?;
            let (key, record) =
                apikeys::create(&mut conn, &scope, label.as_deref(), Source::Cli, now)?;
            println!("id: {}", record.id);
            println!("scope: {}", record.scope);
            println!("key: {key}");
            println!("(shown only now: the coordinator keeps only its SHA-256)");
        }
        KeysCommand::List { config } => {
            let config = CoordinatorConfig::load(&config)?;
            let mut conn = open_keys_db(&config)?;
            for k in apikeys::list(&mut conn, apikeys::KEYS_LIST_MAX)? {
                let state = match k.revoked_ms {
                    Some(_) => "revoked",
                    None => "live",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.id,
                    k.scope,
                    state,
                    k.source,
                    k.label.unwrap_or_default()
                );
            }
        }
        KeysCommand::Revoke { id, config } => {
            let config = CoordinatorConfig::load(&config)?;
            let mut conn = open_keys_db(&config)?;
            let record = apikeys::revoke(&mut conn, &id, now, false)?;
            println!("revoked {} (scope {})", record.id, record.scope);
        }
    }
    Ok(())
}

/// One process per data dir: held until the process ends. `keys` and `backup` need no lock
/// (SQLite's own locking lets them share the database with the running coordinator).
fn lock_data_dir(config: &CoordinatorConfig) -> anyhow::Result<DirLock> {
    DirLock::acquire(&config.storage.data_dir, COORDINATOR_LOCK_FILE).with_context(|| {
        format!(
            "coordinator data dir {} is in use",
            config.storage.data_dir.display()
        )
    })
}

/// `run` on PostgreSQL: connects and brings the schema up to this build (as a start will once
/// the store serves there), then refuses to serve, saying both.
fn refuse_postgres(config: &CoordinatorConfig, target: &PgTarget) -> anyhow::Result<()> {
    let reached = target
        .connect(config.storage.ca_file.as_deref())
        .and_then(|mut client| crate::store::pg::migrate::to_latest(&mut client, target));
    match reached {
        Ok(n_applied) => anyhow::bail!(
            "storage.url: PostgreSQL {} is reachable and its schema current ({n_applied} \
             migrations applied now); but {}",
            target.describe(),
            NOT_SERVING
        ),
        Err(e) => anyhow::bail!(
            "storage.url: PostgreSQL {} is not usable ({e}); and once it is, {}",
            target.describe(),
            NOT_SERVING
        ),
    }
}

/// Commands that work on the SQLite file refuse a PostgreSQL `storage.url` rather than act on a
/// file that is not the database.
fn sqlite_only(config: &CoordinatorConfig, command: &str) -> anyhow::Result<()> {
    match config.storage.backend()? {
        Backend::Sqlite => Ok(()),
        Backend::Postgres(target) => anyhow::bail!(
            "`{command}` works on the SQLite database; storage.url selects PostgreSQL {} \
             (use PostgreSQL's own tools there: pg_dump, point-in-time recovery)",
            target.describe()
        ),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// The signals `run` answers, caught from before the coordinator starts.
struct StopAndReload {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl StopAndReload {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }
}

/// Runs until SIGTERM or Ctrl-C. SIGHUP re-reads the HTTPS certificate and key, and the
/// config file, replacing the revocation list and the configured API keys (other keys take
/// effect at the next start); a file that no longer loads is reported and the current list is
/// kept.
async fn serve_until_stopped(
    coordinator: &Coordinator,
    path: &std::path::Path,
    signals: StopAndReload,
) -> anyhow::Result<()> {
    let StopAndReload { mut term, mut hup } = signals;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
            _ = hup.recv() => {
                let reloaded = CoordinatorConfig::load(path).map_err(anyhow::Error::from).and_then(|c| {
                    let revoked = Revoked::parse(&c.tls.revoked_sites, &c.tls.revoked_fingerprints)?;
                    let keys = c
                        .api_keys(Some(&coordinator.ctx().fleet.stores))
                        .map_err(|(key, message)| anyhow::anyhow!("config key {key}: {message}"))?;
                    Ok((revoked, keys))
                });
                match coordinator.reload_http_certificate() {
                    Ok(true) => tracing::info!("HTTPS certificate reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "HTTPS certificate reload failed; keeping the current one"),
                }
                match reloaded {
                    Ok((revoked, keys)) => {
                        coordinator.revoke(revoked);
                        if let Err(e) = coordinator.sync_config_keys(keys).await {
                            tracing::error!(error = %e, "reloading the configured API keys failed");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "config reload failed; keeping the current revocation list and API keys"),
                }
            }
        }
    }
}
