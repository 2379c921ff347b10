//! The customer portal in a real headless Chromium at a phone's size (390×844), in Japanese,
//! as a customer uses it: the order opened by its email, a refund line and an exchange line
//! chosen, each described in words, a file that is not a photo refused while the rest of the
//! form (and the photo that is one) is kept, konbini drop-off, the confirmation with its QR
//! code, which zbarimg decodes from the screenshot to the counter's URL, the store counter
//! opening the return from that URL and taking the parcel, the site receiving it, and the
//! customer's mail for each step (registered, handed in, arrived) arriving at a real SMTP
//! server (aiosmtpd). Then the refusals: a wrong email,
//! a link guessed at random, and a brute-force series locked out. The harness is the one of
//! `tests/src/browser.rs`, with axe-core on every page; screenshots go to `target/test-artifacts/`.

use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use anyhow::Context;

use modori_coordinator::config::CoordinatorConfig;
use modori_coordinator::notify::mail::{MailSection, Security};
use modori_coordinator::webhooks::MerchantEntry;
use modori_shared::domain::{RmaId, Sku};
use modori_tests::browser::Browser;
use modori_tests::smtp::{text_of, Sink};
use modori_tests::stations::agent_count;
use modori_tests::{
    config_key, http_raw, http_request_as, small_fleet, wait_for, TestFleet, TINY_PNG,
};
use serde_json::json;

/// Generous: two cores run the fleet, the browser and the driver at once.
const TIMEOUT: Duration = Duration::from_secs(90);
/// Where the customer's mail links to.
const BASE_URL: &str = "https://returns.example.jp";

// The SMTP sink's port, read by the config tweak (a plain fn).
static MAIL_PORT: AtomicU16 = AtomicU16::new(0);

fn with_mail(config: &mut CoordinatorConfig) {
    config.notifications.public_base_url = Some(BASE_URL.into());
    config.notifications.retry_first_seconds = 1;
    config.notifications.retry_cap_seconds = 2;
    config.mail = Some(MailSection {
        host: "127.0.0.1".into(),
        port: Some(MAIL_PORT.load(Ordering::SeqCst)),
        security: Security::Plain,
        username: None,
        password: None,
        from: "ブランドA 返品受付 <returns@brand-a.example.jp>".into(),
        timeout_seconds: 5,
        ca_cert: None,
    });
}

/// Where screenshots go: `target/test-artifacts/` of the workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_returns_on_a_phone_and_the_counter_opens_it_from_the_qr_code(
) -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    // A phone's screen.
    browser.c().set_window_size(390, 844).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    MAIL_PORT.store(port, Ordering::SeqCst);
    let mail_dir = tempfile::tempdir()?;
    let sink = Sink::start(port, &mail_dir.path().join("mail.jsonl"), &[])?;
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    fleet.config_tweak = Some(with_mail);
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
    browser.assert_accessible("portal-lookup").await?;
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
    browser
        .fill("textarea[name=note0]", "思っていた色と違いました")
        .await?;
    browser
        .fill("textarea[name=note1]", "ウエストがきつくて履けませんでした")
        .await?;
    // A page saved under a photo's name, and a real photo.
    let files = tempfile::tempdir()?;
    let not_a_photo = files.path().join("not-a-photo.png");
    std::fs::write(&not_a_photo, "<html><script>alert(1)</script></html>")?;
    let photo = files.path().join("waist.png");
    std::fs::write(&photo, TINY_PNG)?;
    browser
        .fill("input[name=photo0]", &not_a_photo.display().to_string())
        .await?;
    browser
        .fill("input[name=photo1]", &photo.display().to_string())
        .await?;
    browser.fill("#postal_code", "530-0001").await?;
    browser.select("#method", "konbini_dropoff").await?;
    browser.screenshot("portal-choose").await?;
    browser.assert_accessible("portal-choose").await?;
    browser.click("form button[type=submit]").await?;
    // Refused in plain words; everything chosen and the real photo kept.
    browser
        .until(
            "the photo refused",
            "return document.body.textContent.includes('「not-a-photo.png」は写真として読み取れませんでした')",
        )
        .await?;
    browser.screenshot("portal-photo-refused").await?;
    browser.assert_accessible("portal-photo-refused").await?;
    let kept = browser
        .js("return [document.querySelector('input[name=line0]').checked,                      document.querySelector('input[name=line1]').checked,                      document.querySelector('select[name=outcome1]').value,                      document.querySelector('textarea[name=note1]').value,                      document.querySelectorAll('input[name=kept1]').length,                      document.querySelectorAll('input[name=kept0]').length,                      document.getElementById('postal_code').value,                      document.getElementById('method').value]")
        .await?;
    assert_eq!(
        kept,
        json!([
            true,
            true,
            "exchange:PANTS-NVY-L",
            "ウエストがきつくて履けませんでした",
            1,
            0,
            "530-0001",
            "konbini_dropoff"
        ]),
    );
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
    browser.assert_accessible("portal-confirmation").await?;
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
    browser.assert_accessible("portal-counter-scan").await?;
    // The clerk takes the parcel: recorded once, and the customer told.
    browser.click("#receive").await?;
    browser
        .until(
            "the parcel handed in",
            "return !!document.getElementById('received')",
        )
        .await?;
    let handed_in = opened.as_str().unwrap_or_default().to_owned();

    // The parcel reaches the site: the refund's unit is received there.
    let agent_config = fleet.agent_config(0);
    wait_for("the expected returns at the site", TIMEOUT, || {
        let c = &agent_config;
        async move { Ok(agent_count(c, "SELECT COUNT(*) FROM expected_returns")? >= 2) }
    })
    .await?;
    let refund_rma = rmas[0].clone();
    fleet
        .agent(0)
        .receive_unit(
            Some(RmaId::new(refund_rma.clone())?),
            Sku::new("TEE-WHT-M")?,
            "B-0001",
        )
        .await?;

    // The customer is told of each step by mail: both returns registered, one handed in at
    // the store, one arrived.
    let mails = sink.wait_messages(4, TIMEOUT).await?;
    for m in &mails {
        assert_eq!(m["rcpt_tos"], json!(["hanako@example.jp"]), "{m}");
        assert!(
            text_of(m).contains(&format!("{BASE_URL}/r/brand-a/s/")),
            "a link to the status page: {m}"
        );
    }
    let subjects: Vec<&str> = mails.iter().filter_map(|m| m["subject"].as_str()).collect();
    let registered = subjects
        .iter()
        .filter(|s| **s == "【ブランドA】返品のお申し込みを受け付けました")
        .count();
    assert_eq!(registered, 2, "{subjects:?}");
    let dropped = mails
        .iter()
        .find(|m| m["subject"] == "【ブランドA】返品商品を店舗でお預かりしました")
        .with_context(|| format!("no drop-off mail in {subjects:?}"))?;
    assert!(text_of(dropped).contains(&handed_in), "{dropped}");
    let arrived = mails
        .iter()
        .find(|m| m["subject"] == "【ブランドA】返品商品が倉庫に到着しました")
        .with_context(|| format!("no arrival mail in {subjects:?}"))?;
    assert!(text_of(arrived).contains(&refund_rma), "{arrived}");
    // The arrival mail's link opens the status page, which now says so.
    let link = text_of(arrived)
        .split_whitespace()
        .find(|w| w.starts_with(BASE_URL))
        .map(|w| w.replacen(BASE_URL, &base, 1))
        .unwrap_or_default();
    browser.c().goto(&link).await?;
    browser
        .until(
            "the status page with the arrival",
            "return document.body.textContent.includes('返品物が倉庫に到着しました')",
        )
        .await?;
    browser.screenshot("portal-status-arrived").await?;
    browser.assert_accessible("portal-status-arrived").await?;

    // Ops see the customer's photo on the return's page, loaded as the image it is.
    browser.login(&base, "/login", &fleet.ops_key, "/").await?;
    let mut with_photo = None;
    for rma in &rmas {
        let script = format!(
            "var x = new XMLHttpRequest(); x.open('GET', '/ui/returns/{rma}/customer', false); \
             x.send(); return JSON.parse(x.responseText).lines.some(l => l.photos.length > 0)"
        );
        if browser.js(&script).await? == serde_json::Value::Bool(true) {
            with_photo = Some(rma.clone());
        }
    }
    let with_photo = with_photo.context("no return holds the customer's photo")?;
    browser
        .c()
        .goto(&format!("{base}/returns/{with_photo}"))
        .await?;
    browser
        .until(
            "the customer's photo on the return's page",
            "return [...document.querySelectorAll('img.customer-photo')]\
             .some(i => i.complete && i.naturalWidth > 0)",
        )
        .await?;
    browser.screenshot("portal-photo-for-ops").await?;
    browser.assert_accessible("portal-photo-for-ops").await?;

    // A link guessed at random opens nothing.
    let guessed = format!("/r/brand-a/s/{}", "5a".repeat(32));
    let res = http_raw(fleet.http(), "GET", &guessed, &[], None).await?;
    assert_eq!(res.status, 404, "{}", res.body);
    browser.c().goto(&format!("{base}{guessed}")).await?;
    browser
        .until(
            "the unknown link's page",
            "return document.body.textContent.includes('ページが見つかりません')",
        )
        .await?;

    // A wrong email is refused like an unknown order, and a series of them locks the order
    // and this address out, the right email included.
    let max = modori_coordinator::app::portal::LOOKUP_FAILURES_MAX;
    for i in 0..max {
        browser.c().goto(&format!("{base}/r/brand-a")).await?;
        browser
            .until(
                "the lookup form",
                "return !!document.getElementById('order_ref')",
            )
            .await?;
        browser.fill("#order_ref", "ORD-2").await?;
        browser
            .fill("#contact", &format!("guess{i}@example.jp"))
            .await?;
        browser.click("form button[type=submit]").await?;
        let expected = if i + 1 < max {
            "ご注文が見つかりません"
        } else {
            "試行回数が上限に達しました"
        };
        browser
            .until(
                &format!("refusal {i}"),
                &format!("return document.body.textContent.includes('{expected}')"),
            )
            .await?;
        if i == 0 {
            browser.screenshot("portal-wrong-email").await?;
        }
    }
    browser.c().goto(&format!("{base}/r/brand-a")).await?;
    browser
        .until(
            "the lookup form",
            "return !!document.getElementById('order_ref')",
        )
        .await?;
    browser.fill("#order_ref", "ORD-2").await?;
    browser.fill("#contact", "hanako@example.jp").await?;
    browser.click("form button[type=submit]").await?;
    browser
        .until(
            "the lockout",
            "return document.body.textContent.includes('試行回数が上限に達しました')",
        )
        .await?;
    browser.screenshot("portal-locked-out").await?;
    browser.assert_accessible("portal-locked-out").await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}
