//! Shared harness of the cross-crate tests: a real fleet (coordinator + agents, real QUIC and
//! mTLS on loopback, real SQLite files) in a temporary folder.

pub mod browser;
pub mod labels;
pub mod postgres;
pub mod procs;
pub mod proxy;
pub mod smtp;
pub mod stations;

/// The venv holding the outside tools from PyPI (label renderer, postal data, Prometheus'
/// parsers, the API fuzzer): `MODORI_VENV` (set by `scripts/test.sh`), else `target/venv`.
pub fn venv_dir() -> std::path::PathBuf {
    std::env::var_os("MODORI_VENV").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/venv"),
        std::path::PathBuf::from,
    )
}

/// The venv's Python; a test that needs it fails naming what to install (`packages`).
pub fn venv_python(packages: &str) -> std::path::PathBuf {
    let python = venv_dir().join("bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/test.sh, or make target/venv and pip install {packages}",
        python.display()
    );
    python
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use modori_agent::config::AgentConfig;
use modori_agent::{Agent, AgentHandle};
use modori_coordinator::config::{ApiKeyEntry, CoordinatorConfig};
use modori_coordinator::fleet::Fleet;
use modori_coordinator::pki::PkiPaths;
use modori_coordinator::Coordinator;
use modori_demo::local::{agent_config, coordinator_config, ensure_pki};
use modori_shared::domain::Site;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The repository's `configs/` folder.
pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("configs")
}

/// The nine real sites and the stores, from `configs/`.
pub fn real_fleet() -> Fleet {
    let dir = configs_dir();
    Fleet::load(&dir.join("sites.toml"), &dir.join("stores.toml"))
        .expect("configs/ fleet files load")
}

/// The first `n_sites` real sites and every store: for tests that need no more sites (every
/// return routes to one of these).
pub fn small_fleet(n_sites: usize) -> Fleet {
    let mut fleet = real_fleet();
    fleet.sites.truncate(n_sites);
    fleet
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,modori_coordinator=info,modori_agent=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Merchants every test coordinator knows.
pub const TEST_MERCHANTS: [&str; 2] = ["brand-a", "brand-b"];

pub struct TestFleet {
    pub dir: tempfile::TempDir,
    pub pki: PkiPaths,
    pub fleet: Fleet,
    pub coordinator: Option<Coordinator>,
    pub agents: Vec<Option<Agent>>,
    /// An ops API key, configured as an `[[api_keys]]` entry of the coordinator.
    pub ops_key: String,
    /// More `[[api_keys]]` and `[[merchants]]` for the coordinator's next (re)start.
    pub extra_keys: Vec<ApiKeyEntry>,
    pub merchants: Vec<modori_coordinator::webhooks::MerchantEntry>,
    /// Any other change to the coordinator's config for its next (re)start.
    pub config_tweak: Option<fn(&mut CoordinatorConfig)>,
}

/// A fresh API key and the `[[api_keys]]` entry that lets the coordinator know it.
pub fn config_key(scope: &str) -> (String, ApiKeyEntry) {
    let generated = modori_coordinator::apikeys::generate().expect("the OS has entropy");
    (
        generated.key,
        ApiKeyEntry {
            scope: scope.to_owned(),
            sha256: generated.sha256,
            label: Some("tests".into()),
        },
    )
}

impl TestFleet {
    /// Starts a coordinator and one agent per site of the real fleet.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(real_fleet()).await
    }

    pub async fn start_with(fleet: Fleet) -> anyhow::Result<Self> {
        init_tracing();
        let dir = tempfile::tempdir()?;
        let pki = PkiPaths::new(dir.path().join("pki"));
        ensure_pki(&pki, &fleet.sites)?;
        let mut me = Self {
            dir,
            pki,
            fleet,
            coordinator: None,
            agents: Vec::new(),
            ops_key: config_key("ops").0,
            extra_keys: Vec::new(),
            merchants: Vec::new(),
            config_tweak: None,
        };
        me.start_coordinator().await?;
        for i in 0..me.fleet.sites.len() {
            let agent = Agent::start(me.agent_config(i)).await?;
            me.agents.push(Some(agent));
        }
        Ok(me)
    }

    pub fn coordinator_dir(&self) -> PathBuf {
        self.dir.path().join("coordinator")
    }

    /// The coordinator's config: the one every (re)start uses, with the ops key configured.
    pub fn coordinator_config(&self) -> CoordinatorConfig {
        let mut config = coordinator_config(
            &self.coordinator_dir(),
            &self.pki,
            "127.0.0.1:0".parse().expect("literal address"),
        );
        config.fleet.sites_file = configs_dir().join("sites.toml");
        config.fleet.stores_file = configs_dir().join("stores.toml");
        config.api_keys.push(ApiKeyEntry {
            scope: "ops".into(),
            sha256: modori_coordinator::apikeys::sha256_hex(&self.ops_key),
            label: Some("tests".into()),
        });
        config.api_keys.extend(self.extra_keys.iter().cloned());
        config.merchants.clone_from(&self.merchants);
        if let Some(tweak) = self.config_tweak {
            tweak(&mut config);
        }
        // The merchants the tests use, unless a test configured one itself.
        for id in TEST_MERCHANTS {
            if !config.merchants.iter().any(|m| m.id == id) {
                config
                    .merchants
                    .push(modori_coordinator::webhooks::MerchantEntry {
                        id: id.into(),
                        webhook_url: None,
                        webhook_secret: None,
                        ..Default::default()
                    });
            }
        }
        config
    }

    /// Writes the coordinator's config to a file, for its command line (`keys …`).
    pub fn write_coordinator_config(&self) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join("coordinator.toml");
        std::fs::write(&path, toml::to_string(&self.coordinator_config())?)?;
        Ok(path)
    }

    /// (Re)starts the coordinator on the same database; QUIC port kept when restarting.
    pub async fn start_coordinator(&mut self) -> anyhow::Result<()> {
        let mut config = self.coordinator_config();
        if let Some(old) = self.coordinator.take() {
            config.quic.listen = old.quic_addr();
            old.shutdown().await;
        } else if let Some(addr) = self.quic_addr_file() {
            config.quic.listen = addr;
        }
        // The stopped coordinator's UDP socket can outlive its shutdown (a connection still
        // closing holds the endpoint): retry a port in use, boundedly.
        let mut n_tries = 0;
        let c = loop {
            match Coordinator::start(config.clone(), self.fleet.clone()).await {
                Ok(c) => break c,
                Err(e) if n_tries < RESTART_BIND_TRIES_MAX && is_addr_in_use(&e) => {
                    n_tries += 1;
                    tokio::time::sleep(RESTART_BIND_RETRY).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        std::fs::write(self.dir.path().join("quic.addr"), c.quic_addr().to_string())?;
        self.coordinator = Some(c);
        Ok(())
    }

    fn quic_addr_file(&self) -> Option<SocketAddr> {
        std::fs::read_to_string(self.dir.path().join("quic.addr"))
            .ok()?
            .parse()
            .ok()
    }

    pub fn coordinator(&self) -> &Coordinator {
        self.coordinator.as_ref().expect("coordinator running")
    }

    pub fn site(&self, i: usize) -> &Site {
        &self.fleet.sites[i]
    }

    pub fn agent_config(&self, i: usize) -> AgentConfig {
        let addr = self.quic_addr_file().expect("coordinator started once");
        agent_config(
            &self.dir.path().join("sites"),
            &self.pki,
            &self.fleet.sites[i],
            addr,
        )
    }

    pub fn agent(&self, i: usize) -> AgentHandle {
        self.agents[i].as_ref().expect("agent running").handle()
    }

    pub async fn stop_agent(&mut self, i: usize) {
        if let Some(a) = self.agents[i].take() {
            a.shutdown().await;
        }
    }

    pub async fn restart_agent(&mut self, i: usize) -> anyhow::Result<()> {
        self.stop_agent(i).await;
        self.agents[i] = Some(Agent::start(self.agent_config(i)).await?);
        Ok(())
    }

    pub fn http(&self) -> SocketAddr {
        self.coordinator().http_addr()
    }

    /// A request to the API with the ops key: (status, body).
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        json: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        http_request_as(self.http(), Some(&self.ops_key), method, path, json).await
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.agents.len() {
            self.stop_agent(i).await;
        }
        if let Some(c) = self.coordinator.take() {
            c.shutdown().await;
        }
    }
}

/// Polls `check` every 50 ms until it returns true, or fails after `timeout` naming `what`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A minimal HTTP/1.1 GET (the tests need no HTTP client crate): (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    http_request(addr, "GET", path, None).await
}

/// A minimal HTTP/1.1 request with an optional JSON body and no API key: (status, body).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    http_request_as(addr, None, method, path, json).await
}

/// [`http_request`] with `Authorization: Bearer <key>` when a key is given.
pub async fn http_request_as(
    addr: SocketAddr,
    key: Option<&str>,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = Vec::new();
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    if json.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let res = http_raw(addr, method, path, &headers, json.map(str::as_bytes)).await?;
    Ok((res.status, res.body))
}

/// An HTTP answer: status, header block (lowercased names), body.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A minimal HTTP/1.1 request with any headers and body bytes (`Content-Length` is added).
pub async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> anyhow::Result<HttpResponse> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .context("connecting to HTTP")?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(b) = body {
        request.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    request.push_str("Connection: close\r\n\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&bytes).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw).context("HTTP response is not UTF-8")?;
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok(HttpResponse {
        status,
        head: head.to_owned(),
        body: if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    })
}

/// A real 2×2 PNG image, for forms that take photos.
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a,
    0x73, 0x00, 0x00, 0x00, 0x12, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xc0,
    0x00, 0xc2, 0x0c, 0xff, 0x81, 0x00, 0x00, 0x1f, 0xee, 0x05, 0xfb, 0x0b, 0xd9, 0x68, 0x8b, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A `multipart/form-data` body of text fields and files (name, file name, bytes); returns
/// its content type and its bytes.
pub fn multipart_form(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "modori-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, file_name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// A GET whose answer's body is bytes (an image): status, header block and body as sent
/// with a `Content-Length`.
pub async fn http_get_bytes(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String, Vec<u8>)> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .context("connecting to HTTP")?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8(raw[..end].to_vec()).context("HTTP head is not UTF-8")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    Ok((status, head, raw[end + 4..].to_vec()))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Sum of a count query over the coordinator database.
pub async fn coordinator_count(
    c: &Coordinator,
    sql: &'static str,
    site: &str,
) -> anyhow::Result<u64> {
    let site = site.to_owned();
    Ok(c.ctx()
        .db
        .call(move |conn| modori_coordinator::store::count(conn, sql, &site))
        .await?)
}

/// Every op of `agent`'s site applied once at the coordinator (one `ops` row per outbox seq,
/// one unit per receipt), nothing anomalous, nothing left to send.
pub async fn assert_exactly_once(
    fleet: &TestFleet,
    agent: &AgentHandle,
    receipts: u64,
) -> anyhow::Result<()> {
    let site = agent.site().to_string();
    let status = agent.status().await?;
    let c = fleet.coordinator();
    let ops = coordinator_count(c, "SELECT COUNT(*) FROM ops WHERE site = ?1", &site).await?;
    anyhow::ensure!(
        ops == status.n_ops_recorded,
        "{site}: {ops} ops rows vs {} recorded in all epochs",
        status.n_ops_recorded
    );
    let units = coordinator_count(c, "SELECT COUNT(*) FROM units WHERE site = ?1", &site).await?;
    anyhow::ensure!(
        units == receipts,
        "{site}: {units} units vs {receipts} receipts"
    );
    let anomalies =
        coordinator_count(c, "SELECT COUNT(*) FROM anomalies WHERE site = ?1", &site).await?;
    anyhow::ensure!(anomalies == 0, "{site}: {anomalies} anomalies");
    anyhow::ensure!(
        status.outbox_pending == 0 && status.retired_pending == 0,
        "{site}: {status:?}"
    );
    anyhow::ensure!(
        status.last_acked_seq == status.outbox_head_seq,
        "{site}: {status:?}"
    );
    Ok(())
}

/// Receives a unit of no return and has a supervisor release it from quarantine, so it can be
/// graded: for tests about what comes after receiving.
pub async fn receive_released(
    agent: &AgentHandle,
    sku: &str,
    operator: &str,
) -> anyhow::Result<modori_agent::Receipt> {
    let receipt = agent
        .receive_unit(None, modori_shared::domain::Sku::new(sku)?, operator)
        .await?;
    let release = modori_shared::station::Effect::ReleaseQuarantined {
        lpn: receipt.lpn.clone(),
        reason: "test unit of no return".into(),
    };
    let who = modori_agent::work::Actor::new(operator, modori_agent::CTL_STATION);
    agent.record(release, who).await?;
    Ok(receipt)
}

/// How often, and how far apart, a restarted coordinator retries a QUIC port still held by the
/// one it replaces: a connection of the old endpoint that is still closing keeps its socket up
/// to the idle timeout (30 s), so 35 s in all.
const RESTART_BIND_TRIES_MAX: u32 = 350;
const RESTART_BIND_RETRY: Duration = Duration::from_millis(100);

fn is_addr_in_use(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
        {
            return true;
        }
        cause = err.source();
    }
    false
}
