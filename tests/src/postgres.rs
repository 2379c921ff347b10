//! A throwaway PostgreSQL for the tests: Debian's server binaries (`postgresql`, which
//! `scripts/test.sh` installs) run a cluster in a temporary folder on a free loopback port, with
//! fsync on, as an unprivileged account (initdb refuses root). Each test takes a fresh database
//! of its own. Without the binaries a plain `cargo test` skips, saying so;
//! `MODORI_REQUIRE_POSTGRES` makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{bail, Context};
use modori_coordinator::store::migrations;
use modori_coordinator::store::pg::{migrate, Backend, PgTarget};
use modori_coordinator::store::sql::{PgSql, Sql};

/// Where Debian installs each major version's server binaries (`<version>/bin`).
pub const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";
/// The account the server runs as when the tests run as root: the one Debian's package makes.
pub const PG_OS_USER: &str = "postgres";
/// The cluster's superuser and its password (scram over TCP, so the coordinator's URL carries
/// a real password).
pub const SUPERUSER: &str = "postgres";
pub const SUPERUSER_PASSWORD: &str = "modori-test-pw";
/// How long `pg_ctl` may take to start or stop the server: two busy cores.
const PG_CTL_TIMEOUT_SECONDS: u32 = 120;
/// Ports taken between choosing a free one and the server binding it are retried this often.
const START_ATTEMPTS_MAX: u32 = 3;

/// The newest server binaries under [`DEBIAN_PG_ROOT`], or `None` when none are installed.
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_PG_ROOT)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The server binaries, `None` (having said so) when they are missing and the run does not
/// require them.
fn bin_dir_or_skip() -> anyhow::Result<Option<PathBuf>> {
    if let Some(bin) = bin_dir() {
        return Ok(Some(bin));
    }
    anyhow::ensure!(
        std::env::var_os("MODORI_REQUIRE_POSTGRES").is_none(),
        "PostgreSQL's server binaries (initdb, pg_ctl) are missing under {DEBIAN_PG_ROOT} and \
         MODORI_REQUIRE_POSTGRES is set: run scripts/test.sh, or apt-get install postgresql"
    );
    eprintln!(
        "SKIPPED: PostgreSQL's server binaries are missing under {DEBIAN_PG_ROOT}; install \
         Debian's postgresql (./scripts/test.sh does) to run the PostgreSQL tests"
    );
    Ok(None)
}

fn running_as_root() -> anyhow::Result<bool> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .context("running id -u")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// One running cluster; stopped (immediately: it is throwaway) and removed on drop.
pub struct Cluster {
    bin: PathBuf,
    as_root: bool,
    port: u16,
    /// Server settings beyond the port, socket and fsync (TLS).
    options: String,
    data: PathBuf,
    stopped: Mutex<bool>,
    // Last: removed after the server has stopped.
    dir: tempfile::TempDir,
}

static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
static DATABASES: AtomicU32 = AtomicU32::new(0);

impl Cluster {
    /// The cluster the tests running now share, started by the first of them and stopped when
    /// the last lets it go. `None` when PostgreSQL is missing and not required.
    pub fn shared() -> anyhow::Result<Option<Arc<Self>>> {
        let mut shared = SHARED
            .lock()
            .map_err(|_| anyhow::anyhow!("a test panicked while starting PostgreSQL"))?;
        if let Some(cluster) = shared.upgrade() {
            return Ok(Some(cluster));
        }
        let Some(cluster) = Self::start()? else {
            return Ok(None);
        };
        let cluster = Arc::new(cluster);
        *shared = Arc::downgrade(&cluster);
        Ok(Some(cluster))
    }

    /// A cluster of the caller's own (for a test that stops it). `None` when PostgreSQL is
    /// missing and not required.
    pub fn start() -> anyhow::Result<Option<Self>> {
        Self::start_with(None)
    }

    /// A cluster of the caller's own that also takes TLS, with this certificate and key (PEM).
    pub fn start_tls(cert: &Path, key: &Path) -> anyhow::Result<Option<Self>> {
        Self::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&Path, &Path)>) -> anyhow::Result<Option<Self>> {
        let Some(bin) = bin_dir_or_skip()? else {
            return Ok(None);
        };
        let as_root = running_as_root()?;
        let dir = tempfile::Builder::new().prefix("modori-pg-").tempdir()?;
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD)?;
        let mut options = Vec::new();
        if let Some((cert, key)) = tls {
            // The server reads its key only when no one else may (0600, its own).
            let (cert_copy, key_copy) =
                (dir.path().join("server.crt"), dir.path().join("server.key"));
            std::fs::copy(cert, &cert_copy)?;
            std::fs::copy(key, &key_copy)?;
            std::fs::set_permissions(
                &key_copy,
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )?;
            options.push("-c ssl=on".to_owned());
            options.push(format!("-c ssl_cert_file={}", cert_copy.display()));
            options.push(format!("-c ssl_key_file={}", key_copy.display()));
        }
        if as_root {
            // The server's account owns the folder: initdb and the server refuse to run as
            // root, and the socket and log live beside the data.
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{PG_OS_USER}:"))
                .arg(dir.path()))
            .context("giving the cluster's folder to the postgres account")?;
        }
        let mut cluster = Self {
            bin,
            as_root,
            port: 0,
            options: options.join(" "),
            data,
            stopped: Mutex::new(true),
            dir,
        };
        let mut initdb = cluster.command("initdb");
        initdb
            .arg("-D")
            .arg(&cluster.data)
            .args(["-U", SUPERUSER, "-E", "UTF8", "--no-locale", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(&mut initdb).context("initdb")?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS_MAX {
            cluster.port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    *cluster.lock_stopped() = false;
                    return Ok(Some(cluster));
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
            .context("starting PostgreSQL")
    }

    fn lock_stopped(&self) -> std::sync::MutexGuard<'_, bool> {
        self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_OS_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=on {}",
            self.port,
            self.dir.path().display(),
            self.options
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("start")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.log_path())
            .args([
                "-w",
                "-t",
                &PG_CTL_TIMEOUT_SECONDS.to_string(),
                "-o",
                &options,
            ]);
        run(&mut start).with_context(|| {
            format!(
                "pg_ctl start (server log: {})",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            )
        })?;
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `database` with the superuser's password in it, without TLS.
    pub fn url(&self, database: &str) -> String {
        self.url_with_sslmode(database, "disable")
    }

    /// The same URL with another `sslmode`.
    pub fn url_with_sslmode(&self, database: &str, sslmode: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{}/{database}?sslmode={sslmode}",
            self.port
        )
    }

    /// The same URL without its password (given some other way, e.g. `PGPASSWORD`).
    pub fn url_without_password(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// A client of `database` as the superuser (no TLS: loopback).
    pub fn client(&self, database: &str) -> anyhow::Result<postgres::Client> {
        postgres::Client::connect(&self.url(database), postgres::NoTls)
            .with_context(|| format!("connecting to {database} on port {}", self.port))
    }

    /// A new, empty database of this cluster, named uniquely within the run.
    pub fn create_database(&self) -> anyhow::Result<String> {
        let name = format!(
            "modori_test_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        self.client("postgres")?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .with_context(|| format!("creating database {name}"))?;
        Ok(name)
    }

    /// Stops the server at once (as a crash or an unplugged database machine would).
    pub fn stop(&self) -> anyhow::Result<()> {
        let mut stopped = self.lock_stopped();
        if *stopped {
            return Ok(());
        }
        let mut stop = self.command("pg_ctl");
        stop.arg("stop").arg("-D").arg(&self.data).args([
            "-m",
            "immediate",
            "-w",
            "-t",
            &PG_CTL_TIMEOUT_SECONDS.to_string(),
        ]);
        run(&mut stop).context("pg_ctl stop")?;
        *stopped = true;
        Ok(())
    }

    /// Starts a stopped server again on its port, with the data it had.
    pub fn restart(&self) -> anyhow::Result<()> {
        let mut stopped = self.lock_stopped();
        if !*stopped {
            return Ok(());
        }
        self.pg_ctl_start().context("restarting PostgreSQL")?;
        *stopped = false;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping the test PostgreSQL failed: {e:#}");
        }
    }
}

fn run(command: &mut Command) -> anyhow::Result<Output> {
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// The PostgreSQL database a URL names, as the coordinator parses `storage.url`.
pub fn target(url: &str) -> anyhow::Result<PgTarget> {
    match Backend::parse(Some(url), None)? {
        Backend::Postgres(t) => Ok(*t),
        Backend::Sqlite => bail!("{url} chose SQLite"),
    }
}

// The store's functions over `store::sql::Sql`, run alike on both backends.

/// A backend's name, a freshly migrated database on it, and the cluster serving it (kept
/// until the scenario ends: the shared cluster stops when the last test lets it go).
pub type Db = (&'static str, Box<dyn Sql>, Option<Arc<Cluster>>);

/// A freshly migrated database of each backend; PostgreSQL only when it is installed (the
/// test script requires it).
pub fn backends() -> anyhow::Result<Vec<Db>> {
    let mut sqlite = rusqlite::Connection::open_in_memory()?;
    migrations().to_latest(&mut sqlite)?;
    let mut out: Vec<Db> = vec![("SQLite", Box::new(sqlite), None)];
    if let Some(cluster) = Cluster::shared()? {
        let target = target(&cluster.url(&cluster.create_database()?))?;
        let mut client = target.connect(None)?;
        migrate::to_latest(&mut client, &target)?;
        out.push(("PostgreSQL", Box::new(PgSql::new(client)), Some(cluster)));
    }
    Ok(out)
}

/// Runs `scenario` on every backend and checks they observed the same.
pub fn same_on_both<T: PartialEq + std::fmt::Debug>(
    scenario: impl Fn(&mut dyn Sql) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut seen: Vec<(&str, T)> = Vec::new();
    for (name, mut conn, _cluster) in backends()? {
        let observed = scenario(conn.as_mut()).map_err(|e| e.context(name))?;
        seen.push((name, observed));
    }
    let (first_name, first) = seen.remove(0);
    for (name, other) in seen {
        assert_eq!(
            first, other,
            "{first_name} (left) and {name} (right) differ"
        );
    }
    Ok(first)
}
