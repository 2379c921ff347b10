//! The pages in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! over WebDriver by fantoccini): central ops log in, see the nine sites online, watch one go
//! offline without reloading, read an anomaly and a return's decisions, see a lost link said
//! plainly (a banner, greyed figures, the time of the data, ages still counting) and the same
//! session carry on when the coordinator is back; a store registers a
//! return at its counter, prints its label (its screenshot decoded by zbarimg, also for the
//! longest RMA), and the return is in the API; ops search, filter, sort and export the
//! returns list, and a filter value that is not valid is said plainly; a return is cancelled
//! from its page and a quarantined unit matched. axe-core checks every page opened: no
//! accessibility violation passes.
//!
//! Screenshots are saved to `target/test-artifacts/`. `scripts/test.sh` installs Chromium when
//! it is missing and sets `MODORI_REQUIRE_BROWSER=1`, so there a missing browser fails; a
//! plain `cargo test` on a machine without it skips these tests, saying so.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use fantoccini::Locator;
use modori_shared::domain::SiteId;
use modori_tests::browser::{Browser, TIMEOUT};
use modori_tests::{small_fleet, wait_for, TestFleet};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_see_the_fleet_live_and_a_site_going_offline_without_reloading() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let mut fleet = TestFleet::start().await?;
    let base = format!("http://{}", fleet.http());
    // A return to explain, and an anomaly to list.
    let body = r#"{"origin": {"store_id": "st-sendai-ichibancho"},
                   "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"},
                             {"sku": "TEE-WHT-L", "qty": 1, "reason": "arrived_late"}]}"#;
    let (status, text) = fleet.api("POST", "/api/v1/returns", Some(body)).await?;
    anyhow::ensure!(status == 201, "{text}");
    let routed: serde_json::Value = serde_json::from_str(&text)?;
    let rma = routed["rma"].as_str().unwrap_or_default().to_owned();
    let sendai = SiteId::new("sendai")?;
    let s = sendai.clone();
    fleet
        .coordinator()
        .ctx()
        .db
        .call(move |c| {
            modori_coordinator::store::record_anomaly(
                c,
                &s,
                modori_coordinator::anomaly::AnomalyKind::Impersonation,
                &modori_coordinator::store::details::Detail::impersonation("osaka", "sendai"),
                modori_runtime::clock::now_ms(),
            )
        })
        .await?;

    browser.c().goto(&format!("{base}/login")).await?;
    browser
        .until("the login form", "return !!document.getElementById('key')")
        .await?;
    browser.assert_accessible("login").await?;
    browser.login(&base, "/", &fleet.ops_key, "/").await?;
    browser
        .until(
            "nine sites online on the page",
            "return document.querySelectorAll('#site-rows tr[data-online=\"true\"]').length === 9 \
             && document.querySelectorAll('#map-sites g.state-ok, #map-sites g.state-warning').length === 9",
        )
        .await?;
    // The key is nowhere in the page, and the session cookie is out of the scripts' reach.
    let leaked = browser
        .js(&format!(
            "return document.documentElement.outerHTML.includes('{}') || document.cookie.includes('modori_session')",
            fleet.ops_key
        ))
        .await?;
    assert_eq!(leaked, json!(false));
    browser
        .until(
            "the anomaly listed with its site",
            "return !!document.querySelector('#anomaly-rows tr[data-anomaly=\"impersonation\"][data-site=\"sendai\"]')",
        )
        .await?;
    browser.assert_accessible("dashboard").await?;
    // The decisions of a return.
    browser
        .c()
        .find(Locator::Css("#decision-rma"))
        .await?
        .send_keys(&rma)
        .await?;
    browser.click("#decision-go").await?;
    browser
        .until(
            "the routing explanation",
            "const r = document.getElementById('decision-routing'); return !!r && r.textContent.includes('sendai') && r.textContent.includes('km')",
        )
        .await?;
    // Said by the page from the candidates the routing weighed, in the server's own words.
    let explanation = routed["explanation"].as_str().unwrap_or_default();
    assert!(explanation.starts_with("sendai at "), "{routed}");
    assert_eq!(
        browser
            .js("return document.getElementById('decision-routing').textContent")
            .await?,
        json!(explanation)
    );

    // Mark this page load: a reload would lose the mark.
    browser
        .js("window.modoriSamePage = 'yes'; return true")
        .await?;
    let i = fleet
        .fleet
        .sites
        .iter()
        .position(|s| s.id == sendai)
        .context("sendai in the fleet")?;
    fleet.stop_agent(i).await;
    browser
        .until(
            "sendai offline on the page",
            "const row = document.querySelector('#site-rows tr[data-site=\"sendai\"]'); \
             const dot = document.querySelector('#map-sites g[data-site=\"sendai\"]'); \
             return !!row && row.dataset.online === 'false' && !!dot && dot.dataset.state === 'offline' \
               && document.getElementById('online').dataset.online === '8'",
        )
        .await?;
    assert_eq!(
        browser.js("return window.modoriSamePage || null").await?,
        json!("yes")
    );
    browser.js("window.scrollTo(0, 0); return true").await?;
    let shot = browser.screenshot("dashboard").await?;
    assert!(std::fs::metadata(&shot)?.len() > 10_000, "{shot:?}");
    // No abbreviation of a step, in either language.
    let shown = browser.js(VISIBLE_TEXT).await?;
    let shown = shown.as_str().unwrap_or_default();
    assert_eq!(abbreviations(shown), Vec::<&str>::new(), "{shown}");

    // In Japanese, back on the dashboard: every word the page writes, and the codes it is
    // sent (reasons, steps, anomaly kinds, unit states), in Japanese.
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the dashboard in Japanese",
            "return document.documentElement.lang === 'ja' && location.pathname === '/' \
             && document.getElementById('online').textContent === '倉庫 9 か所中 8 か所が接続中' \
             && document.getElementById('live').textContent === '最新' \
             && document.querySelector('#anomaly-rows tr[data-anomaly=\"impersonation\"] strong')?.textContent === '他の倉庫を名乗る操作' \
             && document.querySelector('#site-rows tr[data-site=\"sendai\"] .muted')?.textContent === '仙台返品センター（宮城野区）' \
             && document.querySelector('#reasons-sku tr[data-reason=\"arrived_late\"] td:nth-child(2)')?.textContent === '届くのが遅かった' \
             && document.querySelector('#steps [data-step=\"quarantine\"] .step-name')?.textContent === '保留中の商品'",
        )
        .await?;
    browser
        .c()
        .find(Locator::Css("#decision-rma"))
        .await?
        .send_keys(&rma)
        .await?;
    browser.click("#decision-go").await?;
    browser
        .until(
            "the decisions in Japanese",
            "const r = document.getElementById('decision-routing'); \
             return !!r && r.textContent.startsWith('sendai（') && r.textContent.includes('km、本日の割り当て') \
               && document.querySelector('#decision-out h3')?.textContent.includes('倉庫へ輸送中')",
        )
        .await?;
    assert_eq!(
        browser
            .js("return [stateWords('placed:restock'), stateWords('graded:B')]")
            .await?,
        json!(["棚入れ済み (再入庫)", "検品済み (B)"])
    );
    let shown = browser.js(VISIBLE_TEXT).await?;
    let shown = shown.as_str().unwrap_or_default();
    for code in [
        "arrived_late",
        "too_small",
        "impersonation",
        "placed:restock",
        "uncatalogued",
        "expected",
        "unit_received",
        "sites online",
        "online (",
        " s ago",
        "Throughput",
        "Abuse",
        "strict",
    ] {
        assert!(
            !shown.contains(code),
            "{code:?} on the Japanese dashboard:\n{shown}"
        );
    }
    assert_eq!(abbreviations(shown), Vec::<&str>::new(), "{shown}");
    // The chart's units are named, and its legends never mix returns and units.
    let legends = browser
        .js(
            "return [...document.querySelectorAll('#throughput svg')].map(c => \
               [...c.querySelectorAll('text[data-event]')].map(t => t.dataset.event).join(' '))",
        )
        .await?;
    assert_eq!(
        legends,
        json!([
            "registered",
            "unit_received unit_graded disposition_set unit_departed"
        ])
    );
    browser.js("window.scrollTo(0, 0); return true").await?;
    let shot = browser.screenshot("dashboard-ja").await?;
    assert!(std::fs::metadata(&shot)?.len() > 10_000, "{shot:?}");
    browser.assert_accessible("dashboard-ja").await?;
    browser
        .js("document.getElementById('pipeline').scrollIntoView(); return true")
        .await?;
    browser.screenshot("dashboard-ja-insight").await?;
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the dashboard in English",
            "return document.documentElement.lang === 'en' \
             && document.getElementById('live').textContent === 'live'",
        )
        .await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

/// The text a page shows (SVG tooltips and list options included), leaving out what it marks
/// as English (the server's own details, the other language's name) and its scripts.
const VISIBLE_TEXT: &str = "const c = document.body.cloneNode(true); \
    c.querySelectorAll('script, [lang=\"en\"], [hidden]').forEach(n => n.remove()); \
    return c.textContent";

/// The backlog's old abbreviations found in `text`: they said nothing to a reader on a touch
/// screen.
fn abbreviations(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| ["exp", "rcv", "qtn", "grd", "dsp"].contains(w))
        .collect()
}

/// Whether this machine has a Japanese font (`fc-list :lang=ja`), or the run requires one
/// (`scripts/test.sh` installs fonts-noto-cjk and sets `MODORI_REQUIRE_BROWSER`).
fn japanese_font_expected() -> bool {
    std::env::var_os("MODORI_REQUIRE_BROWSER").is_some()
        || Command::new("fc-list")
            .arg(":lang=ja")
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
}

/// The number in the "last seen" cell of `site` ("12 s ago"), in seconds.
async fn last_seen_s(browser: &Browser, site: &str) -> anyhow::Result<u64> {
    let text = browser
        .js(&format!(
            "return document.querySelector('#site-rows tr[data-site=\"{site}\"] td.last-seen').textContent"
        ))
        .await?;
    let text = text.as_str().unwrap_or_default();
    text.strip_suffix(" s ago")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("last seen {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_link_is_said_plainly_and_ages_keep_counting() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let mut fleet = TestFleet::start_with(small_fleet(2)).await?;
    let http = fleet.http();
    let quic = fleet.coordinator().quic_addr();
    let site = fleet.site(0).id.to_string();
    browser
        .login(&format!("http://{http}"), "/", &fleet.ops_key, "/")
        .await?;
    browser
        .until(
            "two sites online and the link live",
            "return document.querySelectorAll('#site-rows tr[data-online=\"true\"]').length === 2 \
             && document.getElementById('live').textContent === 'live' \
             && document.getElementById('link-banner').hidden",
        )
        .await?;

    // Japanese text is drawn in a real font, not as boxes: two different characters in the
    // page's font give two different images (missing glyphs are the same box).
    if japanese_font_expected() {
        let drawn = browser
            .js("const font = getComputedStyle(document.body).fontFamily; \
                 const draw = (t) => { const c = document.createElement('canvas'); c.width = 64; c.height = 64; \
                   const x = c.getContext('2d'); x.font = '48px ' + font; x.fillText(t, 4, 52); return c.toDataURL(); }; \
                 return draw('戻') !== draw('り') && draw('戻') !== draw('\u{E000}')")
            .await?;
        assert_eq!(
            drawn,
            json!(true),
            "no Japanese font: install fonts-noto-cjk"
        );
    }
    // Times in Japan time (the default `http.time_zone`), money with a true minus sign.
    let shown = browser
        .js("return [fmtTime(Date.UTC(2026, 0, 1, 0, 0, 0)), fmtDateTime(Date.UTC(2026, 0, 1, 15, 30, 0)), \
             fmtYen(-200), fmtYen(1234)]")
        .await?;
    assert_eq!(
        shown,
        json!(["09:00:00", "2026-01-02 00:30:00", "\u{2212}¥200", "¥1,234"])
    );

    // Device chips carry drawn icons, not emoji that need a font.
    let chips = browser
        .js("const chips = deviceBadges({online: true, devices: [\
               {name: 'p1', kind: 'printer', connected: true, since_ms: 0, n_jobs_waiting: 0},\
               {name: 's1', kind: 'scanner', connected: false, since_ms: 0, n_jobs_waiting: 0}]}); \
             document.getElementById('site-rows').append(...chips); \
             const out = chips.map(c => { const i = c.querySelector('svg.icon path'); \
               return (i ? Math.round(i.getBoundingClientRect().width) > 0 : false) + c.textContent; }); \
             chips.forEach(c => c.remove()); return out")
        .await?;
    assert_eq!(chips, json!(["true p1", "true s1"]));

    if let Some(c) = fleet.coordinator.take() {
        c.shutdown().await;
    }
    browser
        .until(
            "the banner with the time of the data",
            "const b = document.getElementById('link-banner'); \
             return !b.hidden && b.offsetHeight > 0 && document.body.classList.contains('stale') \
               && /^\\d\\d:\\d\\d:\\d\\d \\(/.test(document.getElementById('data-as-of').textContent)",
        )
        .await?;
    // What the page cannot vouch for is greyed; the site's age keeps counting.
    let greyed = browser
        .js(&format!(
            "const s = getComputedStyle(document.querySelector('#site-rows tr[data-site=\"{site}\"] td.link')); \
             return [s.filter, s.fontStyle]"
        ))
        .await?;
    assert_eq!(greyed, json!(["grayscale(1)", "italic"]));
    let before = last_seen_s(&browser, &site).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = last_seen_s(&browser, &site).await?;
    assert!(after >= before + 2, "last seen {before} s, then {after} s");
    browser.js("window.scrollTo(0, 0); return true").await?;
    let shot = browser.screenshot("dashboard-link-lost").await?;
    assert!(std::fs::metadata(&shot)?.len() > 10_000, "{shot:?}");
    browser.assert_accessible("dashboard-link-lost").await?;

    // Back on the same addresses: the banner goes, the same session carries on.
    // It comes back showing times in another zone, which the page takes from it.
    let mut config = fleet.coordinator_config();
    config.http.listen = http;
    config.quic.listen = quic;
    config.http.time_zone = "Europe/London".into();
    fleet.coordinator =
        Some(modori_coordinator::Coordinator::start(config, fleet.fleet.clone()).await?);
    browser
        .until(
            "the link back",
            "return document.getElementById('link-banner').hidden \
             && !document.body.classList.contains('stale') \
             && document.getElementById('live').textContent === 'live'",
        )
        .await?;
    assert_eq!(
        browser
            .js("return fmtTime(Date.UTC(2026, 0, 1, 0, 0, 0))")
            .await?,
        json!("00:00:00")
    );
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_registered_at_the_store_counter_is_in_the_api() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    // Sapporo, Sendai, Saitama: a return from Ginza goes to Saitama.
    let fleet = TestFleet::start_with(small_fleet(3)).await?;
    let base = format!("http://{}", fleet.http());
    let catalog = r#"{"items": [
        {"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900},
        {"sku": "SNK-RUN-27", "category": "shoes", "price_yen": 12000, "final_sale": true}]}"#;
    let ordered_at = chrono_days_ago(5);
    let orders = json!({"orders": [{"ref": "ORD-1001", "customer_ref": "C-42", "ordered_at": ordered_at,
        "lines": [{"sku": "TEE-WHT-M", "qty": 2}, {"sku": "SNK-RUN-27", "qty": 1}]}]});
    let store_key = open_counter(&fleet, &browser, catalog, &orders, "C-42").await?;
    browser
        .until(
            "the order found",
            "return !!document.querySelector('.order[data-order=\"ORD-1001\"] .line[data-sku=\"TEE-WHT-M\"]')",
        )
        .await?;
    browser.assert_accessible("counter").await?;
    // The final-sale line cannot be picked.
    assert_eq!(
        browser
            .js("return document.querySelector('.pick[data-sku=\"SNK-RUN-27\"]').disabled")
            .await?,
        json!(true)
    );
    let order = ".order[data-order=\"ORD-1001\"]";
    browser
        .click(&format!("{order} .pick[data-sku=\"TEE-WHT-M\"]"))
        .await?;
    browser
        .select(
            &format!("{order} select.reason[data-sku=\"TEE-WHT-M\"]"),
            "too_small",
        )
        .await?;
    browser
        .click(&format!("{order} input.resolution[value=\"store_credit\"]"))
        .await?;
    browser.click(&format!("{order} .register")).await?;
    browser
        .until(
            "the registered return and its site",
            "const r = document.getElementById('result-rma'); const s = document.getElementById('result-site'); \
             return !!r && r.textContent.startsWith('RMA-') && !!s && !!s.dataset.site",
        )
        .await?;
    let rma = browser
        .js("return document.getElementById('result-rma').textContent")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let shown_site = browser
        .js("return document.getElementById('result-site').dataset.site")
        .await?;
    assert_eq!(shown_site, json!("saitama"));
    browser
        .until(
            "the return in the counter's list",
            &format!("return !!document.querySelector('#recent tr[data-rma=\"{rma}\"]')"),
        )
        .await?;
    browser.screenshot("store-counter").await?;

    // In the API, as registered at the store, with its reason and the customer's choice.
    let (status, text) = fleet
        .api("GET", &format!("/api/v1/returns/{rma}"), None)
        .await?;
    assert_eq!(status, 200, "{text}");
    let ret: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(ret["origin"], "store:st-ginza", "{ret}");
    assert_eq!(ret["site"], "saitama", "{ret}");
    assert_eq!(ret["merchant"], "brand-a", "{ret}");
    assert_eq!(
        ret["lines"],
        json!([{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]),
        "{ret}"
    );
    let events = ret["events"].as_array().cloned().unwrap_or_default();
    assert!(
        events.iter().any(|e| e["kind"] == "resolution_chosen"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("store credit"))),
        "{ret}"
    );
    // The store's own key sees it too.
    let (status, _) = modori_tests::http_request_as(
        fleet.http(),
        Some(&store_key),
        "GET",
        &format!("/api/v1/returns/{rma}"),
        None,
    )
    .await?;
    assert_eq!(status, 200);

    // The label: ZPL to download, and a page to print.
    let zpl = browser
        .js(&format!(
            "return fetch('/ui/store/labels/{rma}/zpl').then(r => r.text())"
        ))
        .await?;
    let zpl = zpl.as_str().unwrap_or_default();
    assert!(zpl.starts_with("^XA") && zpl.contains(&rma), "{zpl}");
    browser
        .c()
        .goto(&format!("{base}/ui/store/labels/{rma}"))
        .await?;
    browser
        .until(
            "the printable label",
            &format!(
                "const r = document.getElementById('label-rma'); return !!r && r.textContent === '{rma}' \
                 && !!document.querySelector('.barcode svg rect')"
            ),
        )
        .await?;
    let shot = browser.screenshot("store-label").await?;
    // The page scans: its screenshot, decoded by zbarimg, is the RMA. So is the page of the
    // longest RMA the API accepts.
    if let Some(tools) = modori_tests::labels::LabelTools::find()? {
        assert_eq!(tools.decode(&shot)?, vec![rma.clone()]);
        let long = format!("RMA-GINZA-{}", "0123456789AB".repeat(5))[..64].to_owned();
        let body = json!({"rma": long, "merchant": "brand-a",
            "origin": {"store_id": "st-ginza"},
            "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]});
        let (status, text) = fleet
            .api("POST", "/api/v1/returns", Some(&body.to_string()))
            .await?;
        anyhow::ensure!(status == 201, "{text}");
        browser
            .c()
            .goto(&format!("{base}/ui/store/labels/{long}"))
            .await?;
        browser
            .until(
                "the printable label of a 64-character RMA",
                &format!(
                    "const r = document.getElementById('label-rma'); return !!r && r.textContent === '{long}' \
                     && !!document.querySelector('.barcode svg rect')"
                ),
            )
            .await?;
        let shot = browser.screenshot("store-label-64").await?;
        assert_eq!(tools.decode(&shot)?, vec![long]);
    }
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_exchanges_for_a_variant_picked_from_the_style() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let catalog = r#"{"items": [
        {"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900, "style": "TEE-1"},
        {"sku": "TEE-WHT-L", "category": "tops", "price_yen": 2900, "style": "TEE-1"},
        {"sku": "TEE-BLK-M", "category": "tops", "price_yen": 2900, "style": "TEE-1"},
        {"sku": "TEE-RED-S", "category": "tops", "price_yen": 1900, "style": "TEE-1", "final_sale": true},
        {"sku": "CAP-WOOL", "category": "hats", "price_yen": 3900, "style": "CAP-1"}]}"#;
    let orders = json!({"orders": [{"ref": "ORD-2002", "customer_ref": "C-43",
        "ordered_at": chrono_days_ago(5), "lines": [{"sku": "TEE-WHT-M", "qty": 1}]}]});
    open_counter(&fleet, &browser, catalog, &orders, "C-43").await?;
    let order = ".order[data-order=\"ORD-2002\"]";
    browser
        .until(
            "the order found",
            &format!("return !!document.querySelector('{order} select.exchange-sku')"),
        )
        .await?;
    // The picker offers the style's sellable variants and nothing else.
    let offered = browser
        .js(&format!(
            "return [...document.querySelectorAll('{order} select.exchange-sku option')]\
             .map(o => o.value).filter(v => v)"
        ))
        .await?;
    assert_eq!(offered, json!(["TEE-BLK-M", "TEE-WHT-L"]));
    browser
        .click(&format!("{order} .pick[data-sku=\"TEE-WHT-M\"]"))
        .await?;
    browser
        .select(
            &format!("{order} select.reason[data-sku=\"TEE-WHT-M\"]"),
            "too_small",
        )
        .await?;
    browser
        .click(&format!("{order} input.resolution[value=\"exchange\"]"))
        .await?;
    browser
        .select(&format!("{order} select.exchange-sku"), "TEE-WHT-L")
        .await?;
    browser.click(&format!("{order} .register")).await?;
    browser
        .until(
            "the registered exchange",
            "const r = document.getElementById('result-rma'); return !!r && r.textContent.startsWith('RMA-')",
        )
        .await?;
    let rma = browser
        .js("return document.getElementById('result-rma').textContent")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    browser.screenshot("store-counter-exchange").await?;
    let (status, text) = fleet
        .api("GET", &format!("/api/v1/returns/{rma}"), None)
        .await?;
    assert_eq!(status, 200, "{text}");
    let ret: serde_json::Value = serde_json::from_str(&text)?;
    let events = ret["events"].as_array().cloned().unwrap_or_default();
    assert!(
        events.iter().any(|e| e["kind"] == "resolution_chosen"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("exchange for TEE-WHT-L"))),
        "{ret}"
    );
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

/// Opens the store counter of `st-ginza` at tablet size, with `catalog` and `orders` given to
/// `brand-a`, and looks up `customer_ref`; returns the store's key.
async fn open_counter(
    fleet: &TestFleet,
    browser: &Browser,
    catalog: &str,
    orders: &serde_json::Value,
    customer_ref: &str,
) -> anyhow::Result<String> {
    let base = format!("http://{}", fleet.http());
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(catalog))
        .await?;
    anyhow::ensure!(status == 200, "{text}");
    let (status, text) = fleet
        .api("PUT", "/api/v1/orders/brand-a", Some(&orders.to_string()))
        .await?;
    anyhow::ensure!(status == 200, "{text}");
    let (status, text) = fleet
        .api(
            "POST",
            "/api/v1/keys",
            Some(r#"{"scope": "store:st-ginza", "label": "counter"}"#),
        )
        .await?;
    anyhow::ensure!(status == 201, "{text}");
    let store_key = serde_json::from_str::<serde_json::Value>(&text)?["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // A tablet-sized screen.
    browser.c().set_window_size(1024, 1366).await?;
    browser.login(&base, "/store", &store_key, "/store").await?;
    browser
        .until(
            "the store's name",
            "return (document.getElementById('store-name').dataset.store || '') === 'st-ginza'",
        )
        .await?;
    browser
        .c()
        .find(Locator::Css("#lookup-q"))
        .await?
        .send_keys(customer_ref)
        .await?;
    browser.click("#lookup-go").await?;
    Ok(store_key)
}

/// RFC 3339 for `days` days ago.
fn chrono_days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339()
}

/// Registers a return of brand-a for a customer with an order reference; returns its RMA.
async fn register_for(fleet: &TestFleet, customer: &str, order: &str) -> anyhow::Result<String> {
    let body = json!({"merchant": "brand-a", "origin": {"store_id": "st-ginza"},
        "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}],
        "customer": {"ref": customer, "name": "山田 太郎"}, "order_ref": order});
    let (status, text) = fleet
        .api("POST", "/api/v1/returns", Some(&body.to_string()))
        .await?;
    anyhow::ensure!(status == 201, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(v["rma"].as_str().unwrap_or_default().to_owned())
}

/// The RMAs of the rows the returns page shows, in order.
async fn listed(browser: &Browser) -> anyhow::Result<Vec<String>> {
    let v = browser
        .js("return [...document.querySelectorAll('#return-rows tr[data-rma]')].map(r => r.dataset.rma)")
        .await?;
    Ok(serde_json::from_value(v)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_search_filter_sort_and_export_the_returns_list() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let fleet = TestFleet::start_with(small_fleet(3)).await?;
    let base = format!("http://{}", fleet.http());
    let mut rmas = Vec::new();
    for (customer, order) in [("C-1", "ORD-1"), ("C-2", "ORD-2"), ("C-3", "ORD-3")] {
        rmas.push(register_for(&fleet, customer, order).await?);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, text) = fleet
        .api("POST", &format!("/api/v1/returns/{}/cancel", rmas[1]), None)
        .await?;
    anyhow::ensure!(status == 200, "{text}");

    // Through the login to the list: newest first.
    browser
        .login(&base, "/returns", &fleet.ops_key, "/returns")
        .await?;
    browser
        .until(
            "three returns listed",
            "return document.querySelectorAll('#return-rows tr[data-rma]').length === 3 \
             && document.getElementById('returns-total').dataset.total === '3'",
        )
        .await?;
    browser.assert_accessible("returns").await?;
    let newest_first: Vec<String> = rmas.iter().rev().cloned().collect();
    assert_eq!(listed(&browser).await?, newest_first);

    // A search by order reference.
    browser
        .c()
        .find(Locator::Css("#f-q"))
        .await?
        .send_keys("ORD-1")
        .await?;
    browser.click("#f-go").await?;
    browser
        .until(
            "the return of ORD-1 alone",
            "return document.getElementById('returns-total').dataset.total === '1'",
        )
        .await?;
    assert_eq!(listed(&browser).await?, [rmas[0].clone()]);
    assert_eq!(
        browser.js("return location.search").await?,
        json!("?q=ORD-1&per_page=50&sort=-created")
    );

    // A status filter, then a sort by RMA from its heading.
    browser
        .c()
        .find(Locator::Css("#f-q"))
        .await?
        .clear()
        .await?;
    browser.select("#f-status", "expected").await?;
    browser.click("#f-go").await?;
    browser
        .until(
            "the two expected returns",
            "return document.getElementById('returns-total').dataset.total === '2' \
             && [...document.querySelectorAll('#return-rows tr')].every(r => r.dataset.status === 'expected')",
        )
        .await?;
    browser.click("button.sort[data-sort=\"rma\"]").await?;
    browser
        .until(
            "sorted by RMA",
            "return document.querySelector('button.sort[data-sort=\"rma\"]').closest('th').getAttribute('aria-sort') === 'ascending'",
        )
        .await?;
    let mut by_rma = [rmas[0].clone(), rmas[2].clone()];
    by_rma.sort();
    browser
        .until(
            "the rows in RMA order",
            &format!(
                "return [...document.querySelectorAll('#return-rows tr')].map(r => r.dataset.rma).join() === '{}'",
                by_rma.join(",")
            ),
        )
        .await?;

    // The export carries the same filters and rows.
    let csv = browser
        .js("const x = new XMLHttpRequest(); x.open('GET', document.getElementById('export').href, false); \
             x.send(); return [x.status, x.getResponseHeader('content-type'), x.responseText]")
        .await?;
    assert_eq!(csv[0], json!(200), "{csv}");
    assert_eq!(csv[1], json!("text/csv; charset=utf-8"), "{csv}");
    let text = csv[2].as_str().unwrap_or_default();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].starts_with(&format!("{},expected,", by_rma[0])),
        "{text}"
    );
    browser.js("window.scrollTo(0, 0); return true").await?;
    let shot = browser.screenshot("returns").await?;
    assert!(std::fs::metadata(&shot)?.len() > 10_000, "{shot:?}");

    // A filter value that is not valid is said in plain words, naming the filter.
    browser
        .c()
        .goto(&format!("{base}/returns?status=lost"))
        .await?;
    browser
        .until(
            "the refusal shown",
            "const p = document.getElementById('returns-error'); \
             return !p.hidden && p.textContent.includes('status') && p.textContent.includes('lost') \
               && document.querySelectorAll('#return-rows tr').length === 0",
        )
        .await?;
    browser.screenshot("returns-bad-filter").await?;
    browser.assert_accessible("returns-refused").await?;

    // In Japanese: statuses in words in the list and the filter, the value's unit labelled.
    browser.c().goto(&format!("{base}/returns")).await?;
    browser
        .until(
            "the list",
            "return document.querySelectorAll('#return-rows tr[data-rma]').length >= 2",
        )
        .await?;
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the list in Japanese",
            "return document.documentElement.lang === 'ja' && location.pathname === '/returns' \
             && document.querySelector('#return-rows tr[data-status=\"expected\"] td:nth-child(2)')?.textContent === '倉庫へ輸送中'",
        )
        .await?;
    let shown = browser
        .js("return document.body.innerText + [...document.querySelectorAll('option')].map(o => o.text).join(' ')")
        .await?;
    let shown = shown.as_str().unwrap_or_default();
    for code in ["expected", "receiving", "cancelled", "Search"] {
        assert!(
            !shown.contains(code),
            "{code:?} on the Japanese list:\n{shown}"
        );
    }
    assert!(shown.contains("商品価値（円）"), "{shown}");
    browser.screenshot("returns-ja").await?;
    browser.assert_accessible("returns-ja").await?;
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the list in English",
            "return document.documentElement.lang === 'en'",
        )
        .await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_cancel_a_return_from_its_page_and_read_why_when_they_cannot() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let fleet = TestFleet::start_with(small_fleet(2)).await?;
    let base = format!("http://{}", fleet.http());
    let here = fleet.site(0).location;
    let mut rmas = Vec::new();
    for order in ["ORD-OPEN", "ORD-ARRIVED"] {
        let body = json!({"merchant": "brand-a",
            "origin": {"latitude": here.lat(), "longitude": here.lon()},
            "lines": [{"sku": "TEE-WHT-M", "qty": 2, "reason": "too_small"}], "order_ref": order});
        let (status, text) = fleet
            .api("POST", "/api/v1/returns", Some(&body.to_string()))
            .await?;
        anyhow::ensure!(status == 201, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text)?;
        rmas.push(v["rma"].as_str().unwrap_or_default().to_owned());
    }
    let (open, arrived) = (rmas[0].clone(), rmas[1].clone());
    // One unit of the second arrives at its site.
    let agent = fleet.agent(0);
    let a = arrived.clone();
    wait_for("the return expected at its site", TIMEOUT, || {
        let (agent, a) = (agent.clone(), a.clone());
        async move {
            let pending = agent
                .db()
                .call(|c| modori_agent::work::pending_expected_returns(c, 100))
                .await?;
            Ok(pending.iter().any(|p| p.rma.as_str() == a))
        }
    })
    .await?;
    agent
        .receive_unit(
            Some(modori_shared::domain::RmaId::new(arrived.clone())?),
            modori_shared::domain::Sku::new("TEE-WHT-M")?,
            "B-0042",
        )
        .await?;
    wait_for("the unit at the coordinator", TIMEOUT, || async {
        let (_, text) = fleet
            .api("GET", &format!("/api/v1/returns/{arrived}"), None)
            .await?;
        Ok(text.contains("\"status\":\"receiving\""))
    })
    .await?;

    browser
        .login(&base, "/returns", &fleet.ops_key, "/returns")
        .await?;
    // The list links to the return's page.
    browser
        .until(
            "the return linked from the list",
            &format!("return !!document.querySelector('#return-rows a[href=\"/returns/{open}\"]')"),
        )
        .await?;
    browser
        .click(&format!("#return-rows a[href=\"/returns/{open}\"]"))
        .await?;
    browser
        .until(
            "the return's page",
            "return document.getElementById('status').dataset.status === 'expected' \
             && document.querySelectorAll('#timeline li[data-kind=\"registered\"]').length === 1",
        )
        .await?;
    browser.assert_accessible("return").await?;
    // Its timeline in the page's zone, in words.
    let first = browser
        .js("return document.querySelector('#timeline li').textContent")
        .await?;
    let first = first.as_str().unwrap_or_default();
    assert!(first.len() > 19 && first.contains(" Registered"), "{first}");
    // A post without the session's token is refused.
    let forged = browser
        .js(&format!(
            "const x = new XMLHttpRequest(); x.open('POST', '/ui/returns/{open}/cancel', false); \
             x.send(); return x.status"
        ))
        .await?;
    assert_eq!(forged, json!(403));
    // Asked first; keeping it changes nothing.
    browser.click("#cancel").await?;
    browser.click("#cancel-keep").await?;
    assert_eq!(
        browser
            .js("return document.getElementById('cancel-confirm-box').hidden")
            .await?,
        json!(true)
    );
    browser.click("#cancel").await?;
    browser.click("#cancel-confirm").await?;
    browser
        .until(
            "the return cancelled",
            "return document.getElementById('status').dataset.status === 'cancelled' \
             && document.querySelectorAll('#timeline li[data-kind=\"cancelled\"]').length === 1 \
             && document.getElementById('action-result').textContent.includes('cancelled')",
        )
        .await?;
    browser.js("window.scrollTo(0, 0); return true").await?;
    let shot = browser.screenshot("return-cancelled").await?;
    assert!(std::fs::metadata(&shot)?.len() > 10_000, "{shot:?}");
    let (_, text) = fleet
        .api("GET", &format!("/api/v1/returns/{open}"), None)
        .await?;
    assert!(text.contains("\"status\":\"cancelled\""), "{text}");

    // A return something of which arrived cannot be: said plainly, and nothing changes.
    browser
        .c()
        .goto(&format!("{base}/returns/{arrived}"))
        .await?;
    browser
        .until(
            "the arrived return's page",
            "return document.getElementById('status').dataset.status === 'receiving' \
             && document.querySelectorAll('#unit-rows tr[data-lpn]').length === 1",
        )
        .await?;
    browser.click("#cancel").await?;
    browser.click("#cancel-confirm").await?;
    browser
        .until(
            "the refusal in words",
            "const p = document.getElementById('action-error'); \
             return !p.hidden && p.textContent.includes('cannot be cancelled') && p.textContent.includes('receiving')",
        )
        .await?;
    browser.js("window.scrollTo(0, 0); return true").await?;
    browser.screenshot("return-not-cancelled").await?;
    browser.assert_accessible("return-refused").await?;

    // Its unit is transferred to the other site, after a confirmation.
    let other = fleet.site(1).id.to_string();
    let row = "#unit-rows tr[data-lpn]";
    browser
        .select(&format!("{row} select.transfer-to"), &other)
        .await?;
    browser.click(&format!("{row} button.transfer-go")).await?;
    browser.click(&format!("{row} .transfer-confirm")).await?;
    browser
        .until(
            "the transfer ordered",
            &format!(
                "return document.getElementById('action-result').textContent.includes('to be transferred to {other}') \
                 && document.getElementById('action-error').hidden"
            ),
        )
        .await?;
    browser.assert_accessible("return-transfer").await?;
    let (_, text) = fleet
        .api("GET", &format!("/api/v1/returns/{arrived}"), None)
        .await?;
    assert!(text.contains("\"status\":\"receiving\""), "{text}");

    // The same page in Japanese: status, reason, unit state and timeline in words, no code.
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the return's page in Japanese",
            &format!(
                "return document.documentElement.lang === 'ja' && location.pathname === '/returns/{arrived}' \
                 && document.getElementById('status').textContent === '倉庫で受け入れ中' \
                 && document.getElementById('routing').textContent.includes('本日の割り当て') \
                 && document.querySelectorAll('#timeline li[data-kind=\"registered\"] strong')[0]?.textContent === '受付'"
            ),
        )
        .await?;
    let shown = browser.js("return document.body.innerText").await?;
    let shown = shown.as_str().unwrap_or_default();
    for code in [
        "too_small",
        "receiving",
        "unit_received",
        "Registered",
        "Cancel this return",
    ] {
        assert!(
            !shown.contains(code),
            "{code:?} on the Japanese page:\n{shown}"
        );
    }
    assert!(shown.contains("サイズが小さい"), "{shown}");
    browser.screenshot("return-ja").await?;
    browser.assert_accessible("return-ja").await?;
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the return's page in English",
            "return document.documentElement.lang === 'en'",
        )
        .await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_match_a_quarantined_unit_to_a_suggested_return() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let base = format!("http://{}", fleet.http());
    let here = fleet.site(0).location;
    // Two returns of one order: a parcel that names the order fits both, so it waits for ops.
    let mut rmas = Vec::new();
    for customer in ["C-1", "C-2"] {
        let body = json!({"merchant": "brand-a",
            "origin": {"latitude": here.lat(), "longitude": here.lon()},
            "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}],
            "order_ref": "ORD-TWICE", "customer": {"ref": customer}});
        let (status, text) = fleet
            .api("POST", "/api/v1/returns", Some(&body.to_string()))
            .await?;
        anyhow::ensure!(status == 201, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text)?;
        rmas.push(v["rma"].as_str().unwrap_or_default().to_owned());
    }
    let receipt = fleet
        .agent(0)
        .receive_unit_with_reference(
            None,
            modori_shared::domain::Sku::new("TEE-WHT-M")?,
            "B-0042",
            Some("ORD-TWICE".into()),
        )
        .await?;
    let lpn = receipt.lpn.to_string();
    wait_for("the unit in quarantine", TIMEOUT, || async {
        let (_, text) = fleet.api("GET", "/api/v1/quarantine", None).await?;
        Ok(text.contains(&lpn))
    })
    .await?;

    browser
        .login(&base, "/quarantine", &fleet.ops_key, "/quarantine")
        .await?;
    let row = format!("#unit-rows tr[data-lpn=\"{lpn}\"]");
    browser
        .until(
            "the unit with both returns suggested",
            &format!(
                "return document.querySelectorAll('{row} li[data-rma]').length === 2 \
                 && document.querySelector('{row}').textContent.includes('reference fits')"
            ),
        )
        .await?;
    browser.screenshot("quarantine").await?;
    browser.assert_accessible("quarantine").await?;
    // In Japanese: the same units, the suggestions in words, no status code.
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the quarantine screen in Japanese",
            &format!(
                "return document.documentElement.lang === 'ja' \
                 && document.querySelectorAll('{row} li[data-rma]').length === 2 \
                 && document.querySelector('{row}').textContent.includes('番号が一致') \
                 && document.querySelector('{row}').textContent.includes('倉庫へ輸送中')"
            ),
        )
        .await?;
    let shown = browser.js("return document.body.innerText").await?;
    let shown = shown.as_str().unwrap_or_default();
    for code in ["expected", "reference fits", "Match…"] {
        assert!(
            !shown.contains(code),
            "{code:?} on the Japanese screen:\n{shown}"
        );
    }
    browser.screenshot("quarantine-ja").await?;
    browser.assert_accessible("quarantine-ja").await?;
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the quarantine screen in English again",
            &format!(
                "return document.documentElement.lang === 'en' \
                 && document.querySelectorAll('{row} li[data-rma]').length === 2"
            ),
        )
        .await?;
    let chosen = &rmas[1];
    browser
        .click(&format!("{row} button.match[data-rma=\"{chosen}\"]"))
        .await?;
    browser.click(&format!("{row} .match-confirm")).await?;
    browser
        .until(
            "the unit matched and gone from the list",
            &format!(
                "return !document.querySelector('{row}') \
                 && document.getElementById('match-result').textContent.includes('{chosen}')"
            ),
        )
        .await?;
    let (_, text) = fleet
        .api("GET", &format!("/api/v1/returns/{chosen}"), None)
        .await?;
    assert!(text.contains(&lpn), "{text}");
    // Matching it again is refused in words: it no longer waits.
    let again = browser
        .js(&format!(
            "const token = await (await fetch('/ui/quarantine')).json().then(w => w.csrf); \
             const r = await fetch('/ui/quarantine/{lpn}/match', {{method: 'POST', \
               headers: {{'Content-Type': 'application/json', 'X-CSRF-Token': token}}, \
               body: JSON.stringify({{rma: '{}'}})}}); \
             return [r.status, await r.text()]",
            rmas[0]
        ))
        .await?;
    assert_eq!(again[0], json!(409), "{again}");
    assert!(
        again[1]
            .as_str()
            .unwrap_or_default()
            .contains("no longer waiting"),
        "{again}"
    );
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

/// The alert silences in force, as (alert, kind, key id, minutes muted for).
async fn silences(fleet: &TestFleet) -> anyhow::Result<Vec<(String, String, String, Option<i64>)>> {
    let now_ms = modori_runtime::clock::now_ms();
    let found = fleet
        .coordinator()
        .ctx()
        .db
        .call(move |c| modori_coordinator::store::alert_silences::in_force(c, now_ms))
        .await?;
    Ok(found
        .into_iter()
        .map(|s| {
            let minutes = s.until_ms.map(|u| (u - s.at_ms) / 60_000);
            (s.alert, s.kind, s.by_key_id, minutes)
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_acknowledge_an_alert_until_it_clears_and_mute_it_for_a_time() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    // Any unit in quarantine raises the backlog alert.
    fleet.config_tweak = Some(|c| c.alerts.quarantine_max = 0);
    fleet.start_coordinator().await?;
    let base = format!("http://{}", fleet.http());
    let site = fleet.site(0).id.to_string();
    let here = fleet.site(0).location;
    let body = json!({"origin": {"latitude": here.lat(), "longitude": here.lon()},
        "lines": [{"sku": "TEE-WHT-M", "qty": 2, "reason": "too_small"}]});
    let (status, text) = fleet
        .api("POST", "/api/v1/returns", Some(&body.to_string()))
        .await?;
    anyhow::ensure!(status == 201, "{text}");
    let rma = serde_json::from_str::<serde_json::Value>(&text)?["rma"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let unidentified = || async {
        let receipt = fleet
            .agent(0)
            .receive_unit(
                None,
                modori_shared::domain::Sku::new("TEE-WHT-M")?,
                "B-0042",
            )
            .await?;
        anyhow::Ok(receipt.lpn.to_string())
    };
    let first = unidentified().await?;

    browser.login(&base, "/", &fleet.ops_key, "/").await?;
    let key = format!("quarantine_backlog:{site}");
    let item = format!("#alert-list li[data-alert=\"{key}\"]");
    browser
        .until(
            "the quarantine alert with its actions",
            &format!(
                "return !!document.querySelector('{item} button.ack') \
                 && document.getElementById('alert-count').dataset.shouting === '1'"
            ),
        )
        .await?;
    browser.assert_accessible("dashboard-alert").await?;
    browser.click(&format!("{item} button.ack")).await?;
    browser
        .until(
            "the alert acknowledged and quiet",
            &format!(
                "const li = document.querySelector('{item}'); \
                 return !!li && li.dataset.silenced === 'acknowledged' \
                   && document.getElementById('alert-count').dataset.shouting === '0'"
            ),
        )
        .await?;
    // Who and when, in the database, and said on the page.
    let recorded = silences(&fleet).await?;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let (alert, kind, by, until) = &recorded[0];
    assert_eq!(
        (alert.as_str(), kind.as_str(), until),
        (key.as_str(), "acknowledged", &None)
    );
    assert!(!by.is_empty());
    let said = browser
        .js(&format!(
            "return document.querySelector('{item}').textContent"
        ))
        .await?;
    assert!(
        said.as_str().unwrap_or_default().contains(by.as_str()),
        "{said}"
    );

    // The condition clears: the acknowledgement ends, and the next unit shouts again.
    let (status, text) = fleet
        .api(
            "POST",
            &format!("/api/v1/quarantine/{first}/match"),
            Some(&json!({"rma": rma}).to_string()),
        )
        .await?;
    anyhow::ensure!(status == 200, "{text}");
    wait_for("the acknowledgement ended", TIMEOUT, || async {
        Ok(silences(&fleet).await?.is_empty())
    })
    .await?;
    unidentified().await?;
    browser
        .until(
            "the alert shouting again",
            &format!(
                "const li = document.querySelector('{item}'); \
                 return !!li && !li.dataset.silenced \
                   && document.getElementById('alert-count').dataset.shouting === '1'"
            ),
        )
        .await?;
    // Muted for four hours.
    browser
        .select(&format!("{item} select.mute-minutes"), "240")
        .await?;
    browser.click(&format!("{item} button.mute")).await?;
    browser
        .until(
            "the alert muted",
            &format!(
                "const li = document.querySelector('{item}'); \
                 return !!li && li.dataset.silenced === 'muted' && li.textContent.includes('muted until') \
                   && document.getElementById('alert-count').dataset.shouting === '0'"
            ),
        )
        .await?;
    let recorded = silences(&fleet).await?;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(
        (recorded[0].1.as_str(), recorded[0].3),
        ("muted", Some(240))
    );
    browser.js("window.scrollTo(0, 0); return true").await?;
    browser.screenshot("dashboard-alert-muted").await?;
    browser.assert_accessible("dashboard-alert-muted").await?;
    // The alert's figures come as parameters, said in the page's language.
    assert_eq!(
        browser
            .js(&format!(
                "return document.querySelector('{item} .alert-text')?.textContent"
            ))
            .await?,
        json!("units in quarantine: 1 (alert above 0)")
    );
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the muted alert in Japanese",
            &format!(
                "const li = document.querySelector('{item}'); \
                 return document.documentElement.lang === 'ja' && !!li \
                   && li.querySelector('.alert-text')?.textContent === '保留中の商品 1 点（0 点を超えると通知）' \
                   && li.textContent.includes('保留品が多すぎます') && li.textContent.includes('まで一時停止')"
            ),
        )
        .await?;
    browser.screenshot("dashboard-alert-muted-ja").await?;
    browser
        .assert_accessible("dashboard-alert-muted-ja")
        .await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_open_a_sites_page_from_the_dashboard() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let fleet = TestFleet::start_with(small_fleet(2)).await?;
    let base = format!("http://{}", fleet.http());
    let (here, there) = (fleet.site(0).id.clone(), fleet.site(1).id.clone());
    for (site, detail) in [
        (&here, "an anomaly of here"),
        (&there, "an anomaly of there"),
    ] {
        let (s, d) = (site.clone(), detail.to_owned());
        fleet
            .coordinator()
            .ctx()
            .db
            .call(move |c| {
                modori_coordinator::store::record_anomaly(
                    c,
                    &s,
                    modori_coordinator::anomaly::AnomalyKind::Impersonation,
                    &modori_coordinator::store::details::Detail::english(d),
                    modori_runtime::clock::now_ms(),
                )
            })
            .await?;
    }
    // A unit of a return received here, for its throughput.
    let at = fleet.site(0).location;
    let body = json!({"origin": {"latitude": at.lat(), "longitude": at.lon()},
        "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]});
    let (status, text) = fleet
        .api("POST", "/api/v1/returns", Some(&body.to_string()))
        .await?;
    anyhow::ensure!(status == 201, "{text}");
    let rma = serde_json::from_str::<serde_json::Value>(&text)?["rma"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let agent = fleet.agent(0);
    wait_for("the return expected here", TIMEOUT, || {
        let (agent, rma) = (agent.clone(), rma.clone());
        async move {
            let pending = agent
                .db()
                .call(|c| modori_agent::work::pending_expected_returns(c, 100))
                .await?;
            Ok(pending.iter().any(|p| p.rma.as_str() == rma))
        }
    })
    .await?;
    agent
        .receive_unit(
            Some(modori_shared::domain::RmaId::new(rma.clone())?),
            modori_shared::domain::Sku::new("TEE-WHT-M")?,
            "B-0042",
        )
        .await?;

    browser.login(&base, "/", &fleet.ops_key, "/").await?;
    let link = format!("#site-rows a.site-link[href=\"/sites/{here}\"]");
    browser
        .until(
            "the site's link",
            &format!("return !!document.querySelector('{link}')"),
        )
        .await?;
    browser.click(&link).await?;
    browser
        .until(
            "the site's page with its backlog, throughput and own anomaly",
            "return document.querySelectorAll('#backlog-rows tr[data-step]').length === 8 \
             && document.querySelector('#throughput-rows tr[data-event=\"unit_received\"] td.num')?.textContent === '1' \
             && document.getElementById('link').dataset.online === 'true' \
             && document.querySelectorAll('#anomaly-rows tr[data-anomaly]').length === 1 \
             && document.getElementById('anomaly-rows').textContent.includes('an anomaly of here')",
        )
        .await?;
    browser.js("window.scrollTo(0, 0); return true").await?;
    let shot = browser.screenshot("site").await?;
    assert!(std::fs::metadata(&shot)?.len() > 10_000, "{shot:?}");
    browser.assert_accessible("site").await?;

    // In Japanese, back on the same page: steps, events and the anomaly's kind in words.
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the site's page in Japanese",
            &format!(
                "return document.documentElement.lang === 'ja' && location.pathname === '/sites/{here}' \
                 && document.querySelector('#backlog-rows tr[data-step=\"quarantine\"] td')?.textContent === '保留中の商品' \
                 && document.querySelector('#throughput-rows tr[data-event=\"unit_received\"] td')?.textContent === '受け入れた商品' \
                 && document.querySelector('#anomaly-rows tr[data-anomaly] td:nth-child(2)')?.textContent === '他の倉庫を名乗る操作'"
            ),
        )
        .await?;
    let shown = browser.js("return document.body.innerText").await?;
    let shown = shown.as_str().unwrap_or_default();
    for code in [
        "impersonation",
        "unit_received",
        "printer",
        "online (",
        "Backlog",
        " s ago",
    ] {
        assert!(
            !shown.contains(code),
            "{code:?} on the Japanese page:\n{shown}"
        );
    }
    browser.screenshot("site-ja").await?;
    browser.assert_accessible("site-ja").await?;
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the site's page in English",
            "return document.documentElement.lang === 'en'",
        )
        .await?;

    // A site that is not in the fleet is said so.
    browser.c().goto(&format!("{base}/sites/atlantis")).await?;
    browser
        .until(
            "the refusal",
            "const p = document.getElementById('load-error'); \
             return !p.hidden && p.textContent.includes('no site') && p.textContent.includes('atlantis')",
        )
        .await?;
    browser.assert_accessible("site-unknown").await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

/// An anomaly's and a timeline event's detail are stored as a code and its parameters beside
/// the English: a unit of a return received at a site it was not sent to (held in quarantine)
/// and a graded unit's timeline read in Japanese with no English left, and in English again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomalies_and_timeline_details_are_said_in_the_pages_language() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let fleet = TestFleet::start_with(small_fleet(2)).await?;
    let base = format!("http://{}", fleet.http());
    let (here, there) = (fleet.site(0).id.clone(), fleet.site(1).id.clone());
    let at = fleet.site(0).location;
    // The merchant names its category; the dashboard's reasons by category show the name.
    let catalog = json!({"items": [{"sku": "TEE-WHT-M", "category": "tee", "price_yen": 1900,
        "category_name_ja": "Tシャツ", "category_name_en": "T-shirts"}]});
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(&catalog.to_string()))
        .await?;
    anyhow::ensure!(status == 200, "{text}");
    let (_, text) = fleet.api("GET", "/api/v1/catalog/brand-a", None).await?;
    assert!(
        text.contains(r#""category_name_ja":"Tシャツ""#)
            && text.contains(r#""category_name_en":"T-shirts""#),
        "{text}"
    );
    let body = json!({"merchant": "brand-a", "origin": {"latitude": at.lat(), "longitude": at.lon()},
        "lines": [{"sku": "TEE-WHT-M", "qty": 2, "reason": "too_small"}]});
    let (status, text) = fleet
        .api("POST", "/api/v1/returns", Some(&body.to_string()))
        .await?;
    anyhow::ensure!(status == 201, "{text}");
    let rma = serde_json::from_str::<serde_json::Value>(&text)?["rma"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let routed = serde_json::from_str::<serde_json::Value>(&text)?["site"].clone();
    anyhow::ensure!(routed == json!(here.as_str()), "{text}");
    let tracking = serde_json::from_str::<serde_json::Value>(&text)?["label"]["tracking"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        !tracking.is_empty(),
        "a label with a tracking number: {text}"
    );
    let events = json!({"carrier": "sim", "events": [
        {"tracking": tracking, "status": "in_transit", "at_ms": modori_runtime::clock::now_ms(), "location": "Hakata"}]});
    let (status, text) = fleet
        .api("POST", "/api/v1/carrier-events", Some(&events.to_string()))
        .await?;
    anyhow::ensure!(status == 200, "{text}");
    let agent = fleet.agent(0);
    wait_for("the return expected here", TIMEOUT, || {
        let (agent, rma) = (agent.clone(), rma.clone());
        async move {
            let pending = agent
                .db()
                .call(|c| modori_agent::work::pending_expected_returns(c, 100))
                .await?;
            Ok(pending.iter().any(|p| p.rma.as_str() == rma))
        }
    })
    .await?;
    let sku = modori_shared::domain::Sku::new("TEE-WHT-M")?;
    let receipt = agent
        .receive_unit(
            Some(modori_shared::domain::RmaId::new(rma.clone())?),
            sku.clone(),
            "B-0042",
        )
        .await?;
    agent
        .grade_unit(
            receipt.lpn.clone(),
            modori_shared::domain::Grade::B,
            "B-0042",
        )
        .await?;
    // The other unit of the parcel reaches the other site, which the return was not sent to.
    let stray = fleet
        .agent(1)
        .receive_unit(
            Some(modori_shared::domain::RmaId::new(rma.clone())?),
            sku,
            "B-0043",
        )
        .await?;
    let stray = stray.lpn.to_string();
    wait_for(
        "the graded unit and the stray one at the centre",
        TIMEOUT,
        || async {
            let (_, ret) = fleet
                .api("GET", &format!("/api/v1/returns/{rma}"), None)
                .await?;
            let (_, anomalies) = fleet.api("GET", "/api/v1/anomalies", None).await?;
            Ok(ret.contains("\"detail_code\":\"graded\"") && anomalies.contains(&stray))
        },
    )
    .await?;
    // The API says it by code and parameters, beside the English it always said.
    let (_, text) = fleet.api("GET", "/api/v1/anomalies", None).await?;
    let anomalies: serde_json::Value = serde_json::from_str(&text)?;
    let stray_anomaly = anomalies
        .as_array()
        .and_then(|a| a.iter().find(|a| a["lpn"] == json!(stray)))
        .context("the stray unit's anomaly")?;
    assert_eq!(
        stray_anomaly["detail_code"],
        json!("not_routed_here"),
        "{stray_anomaly}"
    );
    assert_eq!(
        stray_anomaly["detail_params"]["routed_to"],
        json!(here.as_str()),
        "{stray_anomaly}"
    );
    assert!(
        stray_anomaly["detail"]
            .as_str()
            .unwrap_or_default()
            .ends_with("held in quarantine"),
        "{stray_anomaly}"
    );

    browser
        .login(&base, "/returns", &fleet.ops_key, "/returns")
        .await?;
    browser.c().goto(&format!("{base}/returns/{rma}")).await?;
    browser
        .until(
            "the graded unit's timeline in English",
            "const g = document.querySelector('#timeline li[data-kind=\"unit_graded\"]'); \
             return document.documentElement.lang === 'en' && !!g && g.textContent.includes('grade B')",
        )
        .await?;
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the graded unit's timeline in Japanese",
            "const g = document.querySelector('#timeline li[data-kind=\"unit_graded\"]'); \
             const r = document.querySelector('#timeline li[data-kind=\"unit_received\"]'); \
             const t = document.querySelector('#timeline li[data-kind=\"carrier_in_transit\"]'); \
             return document.documentElement.lang === 'ja' && !!g && !!r && !!t \
               && g.textContent.includes('グレード B') && r.textContent.includes('TEE-WHT-M を受け入れ（予定どおり）') \
               && t.textContent.includes('配送中') && t.textContent.includes('Hakata で配送中')",
        )
        .await?;
    // Every event says itself in Japanese, none marked as English.
    let english = browser
        .js(
            "return [...document.querySelectorAll('#timeline [lang=\"en\"]')] \
               .map(n => n.textContent)",
        )
        .await?;
    assert_eq!(english, json!([]));
    let shown = browser
        .js("return document.getElementById('timeline').innerText")
        .await?;
    let shown = shown.as_str().unwrap_or_default();
    assert!(shown.contains(&format!("{here} へ送付")), "{shown}");
    for english in [
        "grade B",
        "received (",
        "matched)",
        "routed to",
        "in_transit",
    ] {
        assert!(
            !shown.contains(english),
            "{english:?} in the Japanese timeline:\n{shown}"
        );
    }
    browser.screenshot("return-timeline-ja").await?;
    browser.assert_accessible("return-timeline-ja").await?;

    // The stray unit's anomaly on the other site's page, in Japanese.
    browser.c().goto(&format!("{base}/sites/{there}")).await?;
    let row = "#anomaly-rows tr[data-anomaly=\"return_not_routed_here\"]";
    browser
        .until(
            "the quarantine anomaly in Japanese",
            &format!(
                "const r = document.querySelector('{row}'); \
                 return document.documentElement.lang === 'ja' && !!r \
                   && r.textContent.includes('この返品の送り先は {here} です。保留にしています') \
                   && document.getElementById('site-name').textContent === '仙台返品センター（宮城野区）'"
            ),
        )
        .await?;
    let shown = browser.js(VISIBLE_TEXT).await?;
    let shown = shown.as_str().unwrap_or_default();
    for english in ["received at", "routed to", "held in quarantine", "against"] {
        assert!(
            !shown.contains(english),
            "{english:?} on the Japanese page:\n{shown}"
        );
    }
    assert_eq!(
        browser
            .js(&format!(
                "return document.querySelectorAll('{row} [lang=\"en\"]').length"
            ))
            .await?,
        json!(0)
    );
    browser.screenshot("site-anomaly-ja").await?;
    browser.assert_accessible("site-anomaly-ja").await?;
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the quarantine anomaly in English",
            &format!(
                "const r = document.querySelector('{row}'); \
                 return document.documentElement.lang === 'en' && !!r \
                   && r.textContent.includes('which was sent to {here}; held in quarantine') \
                   && document.getElementById('site-name').textContent === 'Sendai returns centre (Miyagino-ku)'"
            ),
        )
        .await?;
    // The category by its name on the dashboard, in either language; no code.
    browser.c().goto(&format!("{base}/")).await?;
    let category =
        "document.querySelector('#reasons-category tr[data-reason=\"too_small\"] td')?.textContent";
    browser
        .until(
            "the category's English name",
            &format!("return document.documentElement.lang === 'en' && {category} === 'T-shirts'"),
        )
        .await?;
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the category's Japanese name",
            &format!("return document.documentElement.lang === 'ja' && {category} === 'Tシャツ'"),
        )
        .await?;
    browser
        .js("document.getElementById('reasons-category').scrollIntoView(); return true")
        .await?;
    browser.screenshot("dashboard-category-ja").await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

/// Kanto's three sites and the Tokyo area's stores lie within 60 km: on the main frame they
/// would overlap, so they are drawn in an inset where every one is at least
/// `KANTO_MARKERS_PX_MIN` from every other in the page Chromium renders (and the inset's
/// place is outlined on the main frame).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_draws_kantos_sites_and_stores_apart() -> anyhow::Result<()> {
    const KANTO_MARKERS_PX_MIN: f64 = 10.0;
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let fleet = TestFleet::start().await?;
    let base = format!("http://{}", fleet.http());
    browser.login(&base, "/", &fleet.ops_key, "/").await?;
    browser
        .until(
            "the sites and stores on the map",
            "return document.querySelectorAll('#map-sites g').length === 9 \
             && document.querySelectorAll('#map-stores rect').length > 0",
        )
        .await?;
    let kanto = browser
        .js(
            "const sites = ['saitama', 'chiba', 'yokohama'];
             const stores = ['st-shibuya', 'st-shinjuku', 'st-ginza', 'kb-ikebukuro', 'kb-kichijoji',
                             'st-kawasaki', 'kb-minatomirai', 'kb-funabashi', 'st-kashiwa',
                             'st-omiya', 'kb-kawagoe'];
             const centre = (el) => { const r = el.getBoundingClientRect();
                                      return [r.left + r.width / 2, r.top + r.height / 2]; };
             const marks = sites.map((id) => [id, document.querySelector(`#map-sites g[data-site='${id}'] circle`)])
               .concat(stores.map((id) => [id, document.querySelector(`#map-stores rect[data-store='${id}']`)]));
             const missing = marks.filter(([, el]) => !el).map(([id]) => id);
             if (missing.length) return {missing};
             let closest = {px: Infinity};
             for (let i = 0; i < marks.length; i++) for (let j = i + 1; j < marks.length; j++) {
               const [a, b] = [centre(marks[i][1]), centre(marks[j][1])];
               const px = Math.hypot(a[0] - b[0], a[1] - b[1]);
               if (px < closest.px) closest = {px, a: marks[i][0], b: marks[j][0]};
             }
             return {closest, outlined: !!document.querySelector(\"#map-svg rect[data-inset='kanto']\")};",
        )
        .await?;
    assert_eq!(kanto["missing"], serde_json::Value::Null, "{kanto}");
    let px = kanto["closest"]["px"].as_f64().unwrap_or_default();
    assert!(px >= KANTO_MARKERS_PX_MIN, "closest pair: {kanto}");
    assert_eq!(kanto["outlined"], json!(true), "{kanto}");
    browser.assert_accessible("dashboard-kanto").await?;
    let shot = browser.screenshot("dashboard-kanto").await?;
    println!(
        "closest Kanto markers: {kanto}; screenshot {}",
        shot.display()
    );
    fleet.shutdown().await;
    Ok(())
}
