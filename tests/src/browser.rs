//! A headless Chromium for the page tests (Debian's `chromium` and `chromium-driver`, driven
//! over WebDriver by fantoccini), with axe-core (npm, under `target/axe`, or `MODORI_AXE`) to
//! judge each page's accessibility, and screenshots in `target/test-artifacts/`. Without the
//! browser a plain `cargo test` skips, saying so; `MODORI_REQUIRE_BROWSER` makes that a failure.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::wait_for;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Generous: two cores run the fleet, the browser and the driver at once.
pub const TIMEOUT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(200);

/// Where screenshots go: `target/test-artifacts/` of the workspace.
pub fn artifacts() -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// axe-core's script: `MODORI_AXE`, or where `scripts/test.sh` installs it (npm, under
/// `target/axe`). `None` when it is missing and the run does not require the browser tests.
pub fn axe_source() -> anyhow::Result<Option<String>> {
    let path = std::env::var_os("MODORI_AXE").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/axe/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    );
    if path.exists() {
        return Ok(Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        ));
    }
    anyhow::ensure!(
        std::env::var_os("MODORI_REQUIRE_BROWSER").is_none(),
        "{} is missing and MODORI_REQUIRE_BROWSER is set: run scripts/test.sh",
        path.display()
    );
    eprintln!(
        "SKIPPED the accessibility check: {} is missing (scripts/test.sh installs axe-core)",
        path.display()
    );
    Ok(None)
}

/// chromedriver and a browser session on it; both end on drop.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver was started as the leader of its own process group, which the browser
        // it launched joins: end that group (ours, by its id), so no browser outlives a test
        // that failed before closing its session.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium through it.
    /// `None` when Chromium is not installed and the run does not require it.
    pub async fn start() -> anyhow::Result<Option<Self>> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            let required = std::env::var_os("MODORI_REQUIRE_BROWSER").is_some();
            anyhow::ensure!(
                !required,
                "{CHROMIUM} or {CHROMEDRIVER} is missing and MODORI_REQUIRE_BROWSER is set"
            );
            eprintln!(
                "SKIPPED: {CHROMIUM} or {CHROMEDRIVER} is missing; install Debian's chromium and \
                 chromium-driver (./scripts/test.sh does) to run the browser tests"
            );
            return Ok(None);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(artifacts()?.join(format!("chromedriver-{port}.log")))?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting chromedriver")?;
        let profile = tempfile::tempdir()?;
        let mut me = Self {
            client: None,
            driver,
            _profile: profile,
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // chromedriver keeps connections open, so only its port is probed here; the session
        // request below is its real readiness check.
        wait_for("chromedriver to listen", TIMEOUT, || async move {
            Ok(tokio::net::TcpStream::connect(addr).await.is_ok())
        })
        .await?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", me._profile.path().display()),
                    "--window-size=1440,1400",
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .context("opening a Chromium session")?;
        me.client = Some(client);
        Ok(Some(me))
    }

    pub fn c(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Runs `script` (a function body returning a value) in the page.
    pub async fn js(&self, script: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.c().execute(script, vec![]).await?)
    }

    /// Polls `script` until it returns `true`.
    pub async fn until(&self, what: &str, script: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            // A navigation in progress can fail a script: keep polling.
            if let Ok(serde_json::Value::Bool(true)) = self.js(script).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let path = self
                    .screenshot(&format!("timeout-{}", what.replace(' ', "-")))
                    .await;
                anyhow::bail!(
                    "timed out after {TIMEOUT:?} waiting for {what} (screenshot {path:?})"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.c().screenshot().await?;
        let path = artifacts()?.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Clicks the element `css` finds.
    /// Types `text` into the field `css` finds.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.c()
            .find(Locator::Css(css))
            .await?
            .send_keys(text)
            .await?;
        Ok(())
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.c().find(Locator::Css(css)).await?.click().await?;
        Ok(())
    }

    /// Chooses `value` in the `<select>` `css` finds.
    pub async fn select(&self, css: &str, value: &str) -> anyhow::Result<()> {
        self.c()
            .find(Locator::Css(css))
            .await?
            .select_by_value(value)
            .await?;
        Ok(())
    }

    /// Logs in at `base` with `key` through the form and waits for `landing`.
    pub async fn login(
        &self,
        base: &str,
        page: &str,
        key: &str,
        landing: &str,
    ) -> anyhow::Result<()> {
        self.c().goto(&format!("{base}{page}")).await?;
        self.until("the login form", "return !!document.getElementById('key')")
            .await?;
        self.c()
            .find(Locator::Css("#key"))
            .await?
            .send_keys(key)
            .await?;
        self.c()
            .find(Locator::Css("#login-submit"))
            .await?
            .click()
            .await?;
        self.until(
            &format!("landing on {landing}"),
            &format!(
                "return location.pathname === '{landing}' && document.readyState === 'complete'"
            ),
        )
        .await
    }

    /// Runs axe-core on the page as it is now and fails listing every violation (rule,
    /// impact, what it asks, where). Skipped, saying so, where axe-core is not installed and
    /// the run does not require the browser tests.
    pub async fn assert_accessible(&self, page: &str) -> anyhow::Result<()> {
        let Some(axe) = axe_source()? else {
            return Ok(());
        };
        let script = format!(
            "{axe}\n;const r = await axe.run(document, {{resultTypes: ['violations']}}); \
             return [r.passes.length, r.violations.map(v => v.id + ' (' + v.impact + '): ' \
               + v.help + ' at ' + v.nodes.slice(0, 5).map(n => n.target.join(' ')).join(', '))];"
        );
        let result = self.js(&script).await?;
        // Rules passed: proof that axe ran on a page, not on an empty document.
        let n_passes = result[0].as_u64().unwrap_or_default();
        anyhow::ensure!(n_passes > 0, "axe-core ran no rule on {page}: {result}");
        let list = result[1].as_array().cloned().unwrap_or_default();
        if !list.is_empty() {
            let shot = self.screenshot(&format!("axe-{page}")).await?;
            anyhow::bail!(
                "axe-core finds {} violation(s) on {page} (screenshot {shot:?}):\n{}",
                list.len(),
                list.iter()
                    .map(|v| v.as_str().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        Ok(())
    }

    pub async fn close(mut self) -> anyhow::Result<()> {
        if let Some(c) = self.client.take() {
            c.close().await?;
        }
        Ok(())
    }
}
