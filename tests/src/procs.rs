//! A fleet of real processes for the fault tests: the coordinator and agents run as child
//! processes of the binaries under test (the real entry points, built with failpoints), so a
//! test can `kill -9` them or let a failpoint abort them at an exact point, then restart them
//! on the same files.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use modori_coordinator::config::CoordinatorConfig;
use modori_coordinator::pki::PkiPaths;
use modori_demo::local::{agent_config, coordinator_config, ensure_pki};
use modori_shared::domain::Site;

use crate::{configs_dir, http_get, real_fleet, wait_for};

/// Paths of the binaries under test. Cargo tells them only to integration tests
/// (`env!("CARGO_BIN_EXE_modori-agent-under-test")`), so the test passes them in.
#[derive(Clone, Copy, Debug)]
pub struct Binaries {
    pub agent: &'static str,
    pub coordinator: &'static str,
}

pub struct ProcFleet {
    pub dir: tempfile::TempDir,
    bins: Binaries,
    /// Sites with an agent config here, run as processes by [`ProcFleet::start_agent`].
    pub sites: Vec<Site>,
    /// Sites the coordinator knows and has certificates for, but that run no process here
    /// (the load harness runs them in-process).
    pub extra_sites: Vec<Site>,
    pub http: SocketAddr,
    /// An ops API key, configured in the coordinator's config file.
    pub ops_key: String,
    quic: SocketAddr,
    pki: PkiPaths,
    coordinator: Option<Child>,
    agents: BTreeMap<usize, Child>,
    n_spawned: usize,
}

fn free_udp_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?)
}

fn free_tcp_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

impl ProcFleet {
    /// Writes certificates and configs for a coordinator and the real nine sites; starts nothing.
    pub fn new(bins: Binaries) -> anyhow::Result<Self> {
        Self::with_sites(bins, real_fleet().sites, Vec::new())
    }

    /// Like [`ProcFleet::new`] with agent processes for `sites`, and `extra_sites` known to the
    /// coordinator (in a sites file written here, with certificates) but run by the caller.
    pub fn with_sites(
        bins: Binaries,
        sites: Vec<Site>,
        extra_sites: Vec<Site>,
    ) -> anyhow::Result<Self> {
        crate::init_tracing();
        let dir = tempfile::tempdir()?;
        let pki = PkiPaths::new(dir.path().join("pki"));
        let all: Vec<Site> = sites.iter().chain(&extra_sites).cloned().collect();
        ensure_pki(&pki, &all)?;
        let http = free_tcp_port()?;
        let mut coordinator = coordinator_config(&dir.path().join("coordinator"), &pki, http);
        coordinator.quic.listen = free_udp_port()?;
        coordinator.fleet.sites_file = if all == real_fleet().sites {
            configs_dir().join("sites.toml")
        } else {
            let path = dir.path().join("sites.toml");
            std::fs::write(&path, modori_coordinator::fleet::sites_toml(&all)?)?;
            path
        };
        coordinator.fleet.stores_file = configs_dir().join("stores.toml");
        let (ops_key, entry) = crate::config_key("ops");
        coordinator.api_keys.push(entry);
        std::fs::write(
            dir.path().join("coordinator.toml"),
            toml::to_string(&coordinator)?,
        )?;
        for site in &sites {
            let mut config = agent_config(
                &dir.path().join("sites"),
                &pki,
                site,
                coordinator.quic.listen,
            );
            // Quick reconnects, and a dead link (a coordinator killed without a goodbye) noticed
            // within seconds, keep the tests short.
            config.sync.reconnect_backoff_min_ms = 50;
            config.sync.reconnect_backoff_max_ms = 500;
            config.sync.keepalive_interval_seconds = 1;
            config.sync.idle_timeout_seconds = 3;
            std::fs::write(
                Self::agent_config_path(dir.path(), site),
                toml::to_string(&config)?,
            )?;
        }
        Ok(Self {
            dir,
            bins,
            sites,
            extra_sites,
            http,
            ops_key,
            quic: coordinator.quic.listen,
            pki,
            coordinator: None,
            agents: BTreeMap::new(),
            n_spawned: 0,
        })
    }

    /// The fleet's CA and certificates.
    pub fn pki(&self) -> &PkiPaths {
        &self.pki
    }

    /// The coordinator's QUIC address (fixed across restarts).
    pub fn quic_addr(&self) -> SocketAddr {
        self.quic
    }

    /// Where agents keep their data, one folder per site.
    pub fn sites_dir(&self) -> PathBuf {
        self.dir.path().join("sites")
    }

    pub fn coordinator_db_path(&self) -> PathBuf {
        self.dir.path().join("coordinator").join("coordinator.db")
    }

    pub fn agent_db_path(&self, i: usize) -> PathBuf {
        self.sites_dir()
            .join(self.sites[i].id.as_str())
            .join("agent.db")
    }

    /// The running coordinator's process id.
    pub fn coordinator_pid(&self) -> Option<u32> {
        self.coordinator.as_ref().map(Child::id)
    }

    /// Agent `i`'s process id, while it runs.
    pub fn agent_pid(&self, i: usize) -> Option<u32> {
        self.agents.get(&i).map(Child::id)
    }

    /// Agent `i`'s config file (a test may point it at a proxy before starting it).
    pub fn agent_config_file(&self, i: usize) -> PathBuf {
        Self::agent_config_path(self.dir.path(), &self.sites[i])
    }

    fn agent_config_path(dir: &Path, site: &Site) -> PathBuf {
        dir.join(format!("agent-{}.toml", site.id))
    }

    fn spawn(
        &mut self,
        bin: &'static str,
        args: &[&str],
        failpoints: Option<&str>,
    ) -> anyhow::Result<Child> {
        self.n_spawned += 1;
        let log = self.dir.path().join(format!("proc-{}.log", self.n_spawned));
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env("RUST_LOG", "info,quinn=warn")
            .env_remove("FAILPOINTS")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        if let Some(fp) = failpoints {
            cmd.env("FAILPOINTS", fp);
        }
        cmd.spawn().with_context(|| format!("spawning {bin}"))
    }

    /// Starts the coordinator (optionally with failpoints) and waits for its HTTP to answer.
    pub async fn start_coordinator(&mut self, failpoints: Option<&str>) -> anyhow::Result<()> {
        self.spawn_coordinator(failpoints)?;
        let http = self.http;
        wait_for("coordinator HTTP", Duration::from_secs(20), || async move {
            Ok(http_get(http, "/healthz").await.is_ok())
        })
        .await
    }

    /// Starts the coordinator without waiting for it (a test of HTTPS waits its own way).
    pub fn spawn_coordinator(&mut self, failpoints: Option<&str>) -> anyhow::Result<()> {
        let config = self.dir.path().join("coordinator.toml");
        let config = config.to_str().context("utf-8 path")?.to_owned();
        let child = self.spawn(
            self.bins.coordinator,
            &["run", "--config", &config],
            failpoints,
        )?;
        self.coordinator = Some(child);
        Ok(())
    }

    /// Edits the coordinator's config file in place (the running process sees it on SIGHUP).
    pub fn edit_coordinator_config(
        &self,
        edit: impl FnOnce(&mut CoordinatorConfig),
    ) -> anyhow::Result<()> {
        let path = self.dir.path().join("coordinator.toml");
        let mut config: CoordinatorConfig = toml::from_str(&std::fs::read_to_string(&path)?)?;
        edit(&mut config);
        std::fs::write(&path, toml::to_string(&config)?)?;
        Ok(())
    }

    /// Sends SIGHUP to the running coordinator.
    pub fn sighup_coordinator(&self) -> anyhow::Result<()> {
        let pid = self.coordinator.as_ref().context("no coordinator")?.id();
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -HUP {pid} failed");
        }
        Ok(())
    }

    pub fn kill_coordinator(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.coordinator.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Waits for the coordinator to exit by itself (a failpoint) and returns its status.
    pub async fn coordinator_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let child = self.coordinator.as_mut().context("no coordinator")?;
        let status = wait_exit(child, timeout).await?;
        self.coordinator = None;
        Ok(status)
    }

    pub fn start_agent(&mut self, i: usize, failpoints: Option<&str>) -> anyhow::Result<()> {
        let config = Self::agent_config_path(self.dir.path(), &self.sites[i]);
        let config = config.to_str().context("utf-8 path")?.to_owned();
        let child = self.spawn(self.bins.agent, &["--config", &config, "run"], failpoints)?;
        self.agents.insert(i, child);
        Ok(())
    }

    /// Sends SIGTERM to agent `i` (as systemd stops it) and returns how it exited.
    pub async fn terminate_agent(
        &mut self,
        i: usize,
        timeout: Duration,
    ) -> anyhow::Result<ExitStatus> {
        let pid = self.agents.get(&i).context("no such agent")?.id();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        self.agent_exit(i, timeout).await
    }

    /// Sends SIGTERM to the coordinator and returns how it exited.
    pub async fn terminate_coordinator(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let pid = self.coordinator.as_ref().context("no coordinator")?.id();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        self.coordinator_exit(timeout).await
    }

    pub fn kill_agent(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut c) = self.agents.remove(&i) {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    pub async fn agent_exit(&mut self, i: usize, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let child = self.agents.get_mut(&i).context("no such agent")?;
        let status = wait_exit(child, timeout).await?;
        self.agents.remove(&i);
        Ok(status)
    }

    /// Runs the agent's command line for site `i` (e.g. `["ctl", "status"]`): (success, output).
    pub fn agent_cli(&self, i: usize, args: &[&str]) -> anyhow::Result<(bool, String)> {
        let config = Self::agent_config_path(self.dir.path(), &self.sites[i]);
        let out = Command::new(self.bins.agent)
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("FAILPOINTS")
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    }

    /// Runs the coordinator's command line (e.g. `["backup", FILE]`) with its config:
    /// (success, output).
    pub fn coordinator_cli(&self, args: &[&str]) -> anyhow::Result<(bool, String)> {
        let out = Command::new(self.bins.coordinator)
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("coordinator.toml"))
            .env_remove("FAILPOINTS")
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    }

    /// Agent `i`'s `ctl` socket.
    pub fn ctl_socket(&self, i: usize) -> PathBuf {
        self.sites_dir()
            .join(self.sites[i].id.as_str())
            .join("ctl.sock")
    }

    /// One `ctl` request to agent `i`, waiting for its socket to appear.
    pub async fn ctl(
        &self,
        i: usize,
        request: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let socket = self.ctl_socket(i);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match modori_agent::ctl::request(&socket, &request.to_string()).await {
                Ok(reply) => return Ok(reply),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "ctl not ready");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).context("ctl request"),
            }
        }
    }

    /// Records a receipt at site `i` by `ctl receive`; returns its LPN once it is durable.
    pub async fn receive(&self, i: usize, sku: &str) -> anyhow::Result<String> {
        let reply = self
            .ctl(
                i,
                serde_json::json!({"command": "receive", "sku": sku, "operator": "B-FAULT"}),
            )
            .await?;
        match reply["lpn"].as_str() {
            Some(lpn) => Ok(lpn.to_owned()),
            None => bail!("receipt refused: {reply}"),
        }
    }

    pub async fn status(&self, i: usize) -> anyhow::Result<serde_json::Value> {
        self.ctl(i, serde_json::json!({"command": "status"})).await
    }

    /// Reads the coordinator's database (another process may be writing it: WAL allows this).
    pub fn coordinator_count(&self, sql: &str, site: usize) -> anyhow::Result<u64> {
        count(
            &self.coordinator_db_path(),
            sql,
            self.sites[site].id.as_str(),
        )
    }

    pub fn agent_count(&self, i: usize, sql: &str) -> anyhow::Result<u64> {
        count(&self.agent_db_path(i), sql, self.sites[i].id.as_str())
    }

    /// The output of every process spawned so far, for a failing test's message.
    pub fn logs(&self) -> String {
        (1..=self.n_spawned)
            .map(|n| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("proc-{n}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- process {n}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn count(path: &Path, sql: &str, site: &str) -> anyhow::Result<u64> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let n: i64 = if sql.contains("?1") {
        conn.query_row(sql, [site], |r| r.get(0))?
    } else {
        conn.query_row(sql, [], |r| r.get(0))?
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn wait_exit(child: &mut Child, timeout: Duration) -> anyhow::Result<ExitStatus> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("process did not exit within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for ProcFleet {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.agents) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut c) = self.coordinator.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
