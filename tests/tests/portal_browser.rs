//! The customer portal in a real headless Chromium at a phone's size (390×844), as a customer
//! uses it: the order opened by its email, a refund line and an exchange line chosen, konbini
//! drop-off, the confirmation with its QR code, which zbarimg decodes from the screenshot to
//! the counter's URL, and the store counter opening the return from that URL. The harness is
//! the one of `dashboard.rs`; screenshots go to `target/test-artifacts/`.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use fantoccini::{Client, ClientBuilder, Locator};
use modori_coordinator::webhooks::MerchantEntry;
use modori_tests::{config_key, http_request_as, small_fleet, wait_for, TestFleet};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Generous: two cores run the fleet, the browser and the driver at once.
const TIMEOUT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(200);

/// Where screenshots go: `target/test-artifacts/` of the workspace.
fn artifacts() -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// chromedriver and a browser session on it at a phone's size; both end on drop.
struct Browser {
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
    async fn start() -> anyhow::Result<Option<Self>> {
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
                    "--window-size=390,844",
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

    fn c(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Runs `script` (a function body returning a value) in the page.
    async fn js(&self, script: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.c().execute(script, vec![]).await?)
    }

    /// Polls `script` until it returns `true`.
    async fn until(&self, what: &str, script: &str) -> anyhow::Result<()> {
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

    async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.c().screenshot().await?;
        let path = artifacts()?.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.c()
            .find(Locator::Css(css))
            .await?
            .send_keys(text)
            .await?;
        Ok(())
    }

    async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.c().find(Locator::Css(css)).await?.click().await?;
        Ok(())
    }

    async fn select(&self, css: &str, value: &str) -> anyhow::Result<()> {
        self.c()
            .find(Locator::Css(css))
            .await?
            .select_by_value(value)
            .await?;
        Ok(())
    }

    async fn close(mut self) -> anyhow::Result<()> {
        if let Some(c) = self.client.take() {
            c.close().await?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_returns_on_a_phone_and_the_counter_opens_it_from_the_qr_code(
) -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (merchant, merchant_entry) = config_key("merchant:brand-a");
    let (store, store_entry) = config_key("store:st-ginza");
    fleet.extra_keys = vec![merchant_entry, store_entry];
    fleet.merchants = vec![MerchantEntry {
        id: "brand-a".into(),
        name: Some("ブランドA".into()),
        ..MerchantEntry::default()
    }];
    fleet.start_coordinator().await?;
    let catalog = json!({"items": [
        {"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900, "style": "TEE-1"},
        {"sku": "PANTS-NVY-M", "category": "bottoms", "price_yen": 6900, "style": "PANTS-1"},
        {"sku": "PANTS-NVY-L", "category": "bottoms", "price_yen": 6900, "style": "PANTS-1"},
    ]});
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(&catalog.to_string()))
        .await?;
    anyhow::ensure!(status == 200, "catalogue: {text}");
    let orders = json!({"orders": [
        {"ref": "ORD-2", "customer_ref": "cust-1", "ordered_at": chrono::Utc::now().to_rfc3339(),
         "lines": [{"sku": "TEE-WHT-M", "qty": 1}, {"sku": "PANTS-NVY-M", "qty": 1}],
         "contact": {"email": "hanako@example.jp", "phone": "090-1234-5678"}},
    ]});
    let (status, text) = http_request_as(
        fleet.http(),
        Some(&merchant),
        "PUT",
        "/api/v1/orders/brand-a",
        Some(&orders.to_string()),
    )
    .await?;
    anyhow::ensure!(status == 200, "orders: {text}");
    let base = format!("http://{}", fleet.http());

    browser.c().goto(&format!("{base}/r/brand-a")).await?;
    browser
        .until(
            "the lookup form",
            "return !!document.getElementById('order_ref')",
        )
        .await?;
    browser.screenshot("portal-lookup").await?;
    browser.fill("#order_ref", "ORD-2").await?;
    browser.fill("#contact", "hanako@example.jp").await?;
    browser.click("form button[type=submit]").await?;
    browser
        .until(
            "the order's lines",
            "return !!document.getElementById('postal_code')",
        )
        .await?;
    browser.click("input[name=line0]").await?;
    browser
        .select("select[name=reason0]", "changed_mind")
        .await?;
    browser.click("input[name=line1]").await?;
    browser.select("select[name=reason1]", "too_small").await?;
    browser
        .select("select[name=outcome1]", "exchange:PANTS-NVY-L")
        .await?;
    browser.fill("#postal_code", "530-0001").await?;
    browser.select("#method", "konbini_dropoff").await?;
    browser.screenshot("portal-choose").await?;
    browser.click("form button[type=submit]").await?;
    browser
        .until(
            "the confirmation with its QR codes",
            "const q = document.querySelectorAll('img.qr'); \
             return q.length === 2 && [...q].every(i => i.complete && i.naturalWidth > 0)",
        )
        .await?;
    let rmas = browser
        .js("return [...document.querySelectorAll('dd.rma')].map(d => d.textContent)")
        .await?;
    assert_eq!(rmas.as_array().map(Vec::len), Some(2), "{rmas}");
    // The first QR code alone fills the screenshot the counter's camera would see.
    browser
        .js("document.querySelectorAll('img.qr')[0].scrollIntoView(); return true")
        .await?;
    let shot = browser.screenshot("portal-confirmation").await?;
    let decoded = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(&shot)
        .output()
        .context("running zbarimg")?;
    let url = String::from_utf8_lossy(&decoded.stdout).trim().to_owned();
    let url = url.lines().next().unwrap_or_default().to_owned();
    assert!(url.contains("/ui/store/scan/"), "decoded {url:?}");
    let token = url.rsplit('/').next().unwrap_or_default();
    assert!(token.len() >= 32 && !url.contains("hanako"), "{url}");

    // The counter, logged in, opens the return from the QR code's URL.
    browser.c().goto(&format!("{base}/login")).await?;
    browser
        .until("the login form", "return !!document.getElementById('key')")
        .await?;
    browser.fill("#key", &store).await?;
    browser.click("#login-submit").await?;
    browser
        .until("the counter", "return location.pathname === '/store'")
        .await?;
    browser
        .c()
        .goto(&format!("{base}/ui/store/scan/{token}"))
        .await?;
    browser
        .until(
            "the scanned return",
            "return !!document.getElementById('label-rma')",
        )
        .await?;
    let opened = browser
        .js("return document.getElementById('label-rma').textContent")
        .await?;
    let rmas: Vec<String> = serde_json::from_value(rmas)?;
    assert!(
        rmas.iter().any(|r| Some(r.as_str()) == opened.as_str()),
        "{opened} of {rmas:?}"
    );
    browser.screenshot("portal-counter-scan").await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}
