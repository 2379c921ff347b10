//! The store counter in a real headless Chromium at a tablet's size, judged by axe-core: the
//! condition the clerk checked, contradicted by the site's grading, shows in the dashboard's
//! "Checks contradicted" column; the return stays on the counter's list, with its reprint
//! links, after it has reached its site; the customer's receipt carries the return, its
//! items and outcome, the store and the date in Japan time, and a QR code that zbarimg decodes
//! to the return's status page, which opens; a wrong input is answered in the clerk's words.
//!
//! Screenshots are saved to `target/test-artifacts/`.

use fantoccini::Locator;
use modori_shared::domain::{Grade, RmaId, Sku};
use modori_tests::browser::{Browser, TIMEOUT};
use modori_tests::{small_fleet, wait_for, TestFleet};
use serde_json::json;

/// Ginza's returns go to Saitama, the third site of the fleet.
const SAITAMA: usize = 2;
const ORDER: &str = ".order[data-order=\"ORD-3003\"]";

/// A fleet of Sapporo, Sendai and Saitama; brand-a's catalogue and the order ORD-3003 of
/// C-77 (two T-shirts, a cap); the counter of st-ginza open at a tablet's size with the order
/// looked up. Returns the fleet.
async fn counter(browser: &Browser) -> anyhow::Result<TestFleet> {
    let (fleet, key) = fleet_with_order().await?;
    browser.c().set_window_size(1024, 1366).await?;
    let base = format!("http://{}", fleet.http());
    browser.login(&base, "/store", &key, "/store").await?;
    look_up(browser).await?;
    Ok(fleet)
}

/// The fleet, the catalogue and the order of [`counter`], and st-ginza's key.
async fn fleet_with_order() -> anyhow::Result<(TestFleet, String)> {
    let fleet = TestFleet::start_with(small_fleet(3)).await?;
    let catalog = json!({"items": [
        {"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900,
         "category_name_ja": "トップス", "category_name_en": "Tops"},
        {"sku": "CAP-WOOL", "category": "hats", "price_yen": 3900}]});
    let ordered_at = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let orders = json!({"orders": [{"ref": "ORD-3003", "customer_ref": "C-77",
        "ordered_at": ordered_at,
        "lines": [{"sku": "TEE-WHT-M", "qty": 2}, {"sku": "CAP-WOOL", "qty": 1}]}]});
    for (path, body) in [
        ("/api/v1/catalog/brand-a", catalog),
        ("/api/v1/orders/brand-a", orders),
    ] {
        let (status, text) = fleet.api("PUT", path, Some(&body.to_string())).await?;
        anyhow::ensure!(status == 200, "{path}: {text}");
    }
    let (status, text) = fleet
        .api(
            "POST",
            "/api/v1/keys",
            Some(r#"{"scope": "store:st-ginza", "label": "counter"}"#),
        )
        .await?;
    anyhow::ensure!(status == 201, "{text}");
    let key = serde_json::from_str::<serde_json::Value>(&text)?["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((fleet, key))
}

async fn look_up(browser: &Browser) -> anyhow::Result<()> {
    browser
        .until(
            "the store's name",
            "return (document.getElementById('store-name').dataset.store || '') === 'st-ginza'",
        )
        .await?;
    let q = browser.c().find(Locator::Css("#lookup-q")).await?;
    q.clear().await?;
    q.send_keys("C-77").await?;
    browser.click("#lookup-go").await?;
    browser
        .until(
            "the order found",
            &format!("return !!document.querySelector('{ORDER} .line[data-sku=\"TEE-WHT-M\"]')"),
        )
        .await?;
    // The category by the merchant's name for it in the page's language, not its code.
    let facts = browser
        .js(&format!(
            "return [document.documentElement.lang, \
                     document.querySelector('{ORDER} .line[data-sku=\"TEE-WHT-M\"]').textContent]"
        ))
        .await?;
    let (lang, text) = (
        facts[0].as_str().unwrap_or_default(),
        facts[1].as_str().unwrap_or_default(),
    );
    let name = if lang == "ja" {
        "トップス ·"
    } else {
        "Tops ·"
    };
    anyhow::ensure!(
        text.contains(name) && !text.contains("tops ·"),
        "{lang}: {text}"
    );
    Ok(())
}

/// Ticks `sku` coming back for `reason`.
async fn pick(browser: &Browser, sku: &str, reason: &str) -> anyhow::Result<()> {
    browser
        .click(&format!("{ORDER} .pick[data-sku=\"{sku}\"]"))
        .await?;
    browser
        .select(
            &format!("{ORDER} select.reason[data-sku=\"{sku}\"]"),
            reason,
        )
        .await
}

/// Clicks "Register return" and waits for the new RMA.
async fn register(browser: &Browser) -> anyhow::Result<String> {
    browser
        .js("const r = document.getElementById('result-rma'); if (r) r.id = 'result-rma-before'; return true")
        .await?;
    browser.click(&format!("{ORDER} .register")).await?;
    browser
        .until(
            "the registered return",
            "const r = document.getElementById('result-rma'); return !!r && r.textContent.startsWith('RMA-')",
        )
        .await?;
    Ok(browser
        .js("return document.getElementById('result-rma').textContent")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

async fn order_message(browser: &Browser) -> anyhow::Result<String> {
    Ok(browser
        .js(&format!(
            "return document.querySelector('{ORDER} .order-msg').textContent"
        ))
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_check_the_site_contradicts_shows_on_the_dashboard_and_the_return_stays_listed(
) -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let fleet = counter(&browser).await?;
    pick(&browser, "TEE-WHT-M", "changed_mind").await?;
    // The clerk checked: tags still on, not opened, not used, not damaged, a photo taken.
    for cond in ["checked", "tags_on", "photo"] {
        let css = if cond == "checked" {
            format!("{ORDER} .cond-checked")
        } else {
            format!("{ORDER} input.cond[data-cond=\"{cond}\"]")
        };
        browser.click(&css).await?;
    }
    // A photo ticked without its number is said in the clerk's words, and nothing is sent.
    browser.click(&format!("{ORDER} .register")).await?;
    let said = order_message(&browser).await?;
    assert!(said.starts_with("Type the photo's number"), "{said}");
    browser
        .c()
        .find(Locator::Css(&format!("{ORDER} .photo-ref")))
        .await?
        .send_keys("IMG-0042")
        .await?;
    browser.assert_accessible("counter-condition").await?;
    browser.screenshot("counter-condition").await?;
    let rma = register(&browser).await?;
    let stored = RmaId::new(rma.clone())?;
    let decisions = fleet
        .coordinator()
        .ctx()
        .db
        .call(move |c| modori_coordinator::store::commerce::decisions(c, &stored))
        .await?;
    let terms = decisions.terms.unwrap_or_default();
    assert_eq!(
        terms["store_condition"],
        json!({"tags_on": true, "opened": false, "visibly_used": false,
               "damaged": false, "photo_ref": "IMG-0042"}),
        "{terms}"
    );

    // The unit reaches Saitama, which finds it visibly worn: grade C, not the A the counter's
    // check implied.
    let agent = fleet.agent(SAITAMA);
    let expected = rma.clone();
    wait_for("the return expected at Saitama", TIMEOUT, || {
        let (agent, expected) = (agent.clone(), expected.clone());
        async move {
            let pending = agent
                .db()
                .call(|c| modori_agent::work::pending_expected_returns(c, 100))
                .await?;
            Ok(pending.iter().any(|p| p.rma.as_str() == expected))
        }
    })
    .await?;
    let receipt = agent
        .receive_unit(
            Some(RmaId::new(rma.clone())?),
            Sku::new("TEE-WHT-M")?,
            "B-0042",
        )
        .await?;
    agent.grade_unit(receipt.lpn, Grade::C, "B-0042").await?;
    wait_for("the grade at the coordinator", TIMEOUT, || async {
        let (_, text) = fleet
            .api("GET", &format!("/api/v1/returns/{rma}"), None)
            .await?;
        Ok(text.contains("\"status\":\"receiving\"") && text.contains("unit_graded"))
    })
    .await?;

    // Still on the counter's list, said to be at the warehouse, with its reprint links.
    browser.c().refresh().await?;
    browser
        .until(
            "the arrived return still listed",
            &format!(
                "const r = document.querySelector('#recent tr[data-rma=\"{rma}\"]'); \
                 return !!r && r.dataset.status !== 'expected' \
                 && r.querySelector('.where').textContent === 'At the warehouse, being received' \
                 && !!r.querySelector('a.label-link') && !!r.querySelector('a.receipt-link')"
            ),
        )
        .await?;
    browser.assert_accessible("counter-list").await?;
    browser.screenshot("counter-list").await?;

    // The dashboard's stores table: one check, one unit graded, one contradicted.
    let base = format!("http://{}", fleet.http());
    browser.click("#logout").await?;
    browser
        .until("logged out", "return location.pathname === '/login'")
        .await?;
    browser.login(&base, "/", &fleet.ops_key, "/").await?;
    browser
        .until(
            "st-ginza's check contradicted on the dashboard",
            "const r = document.querySelector('#store-rows tr[data-store=\"st-ginza\"]'); \
             return !!r && r.children[3].textContent === '1 / 1' && r.children[4].textContent === '1' \
             && r.classList.contains('flagged')",
        )
        .await?;
    browser.screenshot("dashboard-checks-contradicted").await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customers_receipt_has_a_qr_code_of_the_status_page_and_refusals_are_in_the_clerks_words(
) -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let fleet = counter(&browser).await?;
    pick(&browser, "TEE-WHT-M", "too_small").await?;
    browser
        .click(&format!("{ORDER} input.resolution[value=\"store_credit\"]"))
        .await?;
    let rma = register(&browser).await?;

    // The receipt: the return, its item and why, the choice, the store, the date in Japan.
    let base = format!("http://{}", fleet.http());
    browser
        .c()
        .goto(&format!("{base}/ui/store/receipts/{rma}"))
        .await?;
    browser
        .until(
            "the receipt",
            &format!(
                "return document.getElementById('receipt-rma')?.textContent === '{rma}' \
                 && !!document.querySelector('#receipt-qr svg')"
            ),
        )
        .await?;
    let text = browser
        .js("return document.getElementById('receipt').innerText")
        .await?;
    let text = text.as_str().unwrap_or_default();
    for expected in [
        "返品受付票",
        "TEE-WHT-M",
        "サイズが小さい",
        "ストアクレジット",
        "Store Ginza",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} not on the receipt:\n{text}"
        );
    }
    let date = browser
        .js("return document.getElementById('receipt-date').textContent")
        .await?;
    let jst = (chrono::Utc::now() + chrono::Duration::hours(9))
        .format("%Y年%-m月%-d日")
        .to_string();
    assert!(
        date.as_str().is_some_and(|d| d.starts_with(&jst)),
        "{date} is not today in Japan ({jst})"
    );
    assert_eq!(
        browser.js("return document.documentElement.lang").await?,
        json!("ja")
    );
    browser.assert_accessible("receipt").await?;
    let shot = browser.screenshot("counter-receipt").await?;
    let decoded = modori_tests::labels::decode(&shot)?;
    let prefix = format!("{base}/r/brand-a/s/");
    let url = decoded
        .iter()
        .find(|d| d.starts_with(&prefix))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no status URL decoded from {shot:?}: {decoded:?}"))?;
    let token = &url[prefix.len()..];
    assert!(
        token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{url}"
    );
    // The customer's phone opens it: the return's status page.
    let (status, page) = modori_tests::http_request_as(
        fleet.http(),
        None,
        "GET",
        &format!("/r/brand-a/s/{token}"),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&rma), "{page}");
    // In English when asked.
    browser
        .c()
        .goto(&format!("{base}/ui/store/receipts/{rma}?lang=en"))
        .await?;
    browser
        .until(
            "the receipt in English",
            "return document.documentElement.lang === 'en' \
             && document.getElementById('receipt-outcome')?.textContent === 'Store credit (with a bonus)'",
        )
        .await?;
    browser.assert_accessible("receipt-en").await?;

    // Meanwhile the other T-shirt was registered elsewhere (another clerk, the same order):
    // the counter's stale form is refused, in the clerk's words.
    browser.c().goto(&format!("{base}/store")).await?;
    look_up(&browser).await?;
    pick(&browser, "TEE-WHT-M", "too_large").await?;
    let elsewhere = browser
        .js(
            "return fetch('/ui/store/returns', {method: 'POST', credentials: 'same-origin', \
               headers: {'Content-Type': 'application/json'}, body: JSON.stringify({merchant: 'brand-a', \
               order_ref: 'ORD-3003', lines: [{sku: 'TEE-WHT-M', qty: 1, reason: 'too_large'}], \
               resolution: 'refund'})}).then(r => r.status)",
        )
        .await?;
    assert_eq!(elsewhere, json!(201));
    browser.click(&format!("{ORDER} .register")).await?;
    browser
        .until(
            "the refusal said",
            &format!(
                "return document.querySelector('{ORDER} .order-msg').classList.contains('error')"
            ),
        )
        .await?;
    let said = order_message(&browser).await?;
    assert!(said.starts_with("Too many of TEE-WHT-M:"), "{said}");
    assert!(said.contains("Look the order up again"), "{said}");
    assert!(
        !said.contains("lines["),
        "API wording shown to the clerk: {said}"
    );
    browser.assert_accessible("counter-refusal").await?;
    browser.screenshot("counter-refusal").await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}

/// What the page shows as text, its options and its placeholders included.
async fn shown_text(browser: &Browser) -> anyhow::Result<String> {
    Ok(browser
        .js(
            "return document.body.innerText + '\\n' + [...document.querySelectorAll('option')]\
             .map(o => o.text).join('\\n') + '\\n' + [...document.querySelectorAll('[placeholder]')]\
             .map(e => e.placeholder).join('\\n')",
        )
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Codes of the API that must never reach a clerk's eyes.
const CODES: [&str; 12] = [
    "too_small",
    "too_large",
    "changed_mind",
    "arrived_late",
    "not_as_described",
    "wrong_item_sent",
    "damaged_in_transit",
    "store_credit",
    "tags_on",
    "visibly_used",
    "expected",
    "lines[",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_and_the_counter_speak_japanese_and_english() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let (fleet, key) = fleet_with_order().await?;
    let base = format!("http://{}", fleet.http());
    browser.c().set_window_size(1024, 1366).await?;
    // The browser asks for English first: the login form is in English, and switches.
    browser.c().goto(&format!("{base}/login")).await?;
    browser
        .until(
            "the login form in English",
            "return document.documentElement.lang === 'en' && !!document.getElementById('key')",
        )
        .await?;
    browser.assert_accessible("login-en").await?;
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the login form in Japanese",
            "return document.documentElement.lang === 'ja' \
             && document.getElementById('login-submit').textContent === 'ログイン'",
        )
        .await?;
    browser.assert_accessible("login-ja").await?;
    browser.screenshot("login-ja").await?;

    // Logged in, the choice is kept: the counter is in Japanese.
    browser.login(&base, "/store", &key, "/store").await?;
    browser
        .until(
            "the counter in Japanese",
            "return document.documentElement.lang === 'ja'",
        )
        .await?;
    look_up(&browser).await?;
    browser
        .click(&format!("{ORDER} .pick[data-sku=\"TEE-WHT-M\"]"))
        .await?;
    browser.click(&format!("{ORDER} .cond-checked")).await?;
    // A line without its reason: said in Japanese, naming the item.
    browser.click(&format!("{ORDER} .register")).await?;
    let said = order_message(&browser).await?;
    assert_eq!(said, "TEE-WHT-M の理由を選んでください。");
    let reasons = browser
        .js(&format!(
            "return [...document.querySelectorAll('{ORDER} select.reason[data-sku=\"TEE-WHT-M\"] option')].map(o => o.text)"
        ))
        .await?;
    assert!(
        reasons
            .as_array()
            .is_some_and(|r| r.iter().any(|o| o == "届くのが遅かった")),
        "{reasons}"
    );
    browser
        .select(
            &format!("{ORDER} select.reason[data-sku=\"TEE-WHT-M\"]"),
            "arrived_late",
        )
        .await?;
    let rma = register(&browser).await?;
    browser
        .until(
            "the return listed in Japanese",
            &format!(
                "const r = document.querySelector('#recent tr[data-rma=\"{rma}\"] .where'); \
                 return !!r && r.textContent === '倉庫へ輸送中'"
            ),
        )
        .await?;
    let text = shown_text(&browser).await?;
    for code in CODES {
        assert!(
            !text.contains(code),
            "{code:?} shown on the Japanese counter:\n{text}"
        );
    }
    for words in [
        "返品受付",
        "店頭で確認した状態",
        "タグ付き",
        "ストアクレジット（ボーナス付き）",
    ] {
        assert!(
            text.contains(words),
            "{words:?} not on the Japanese counter:\n{text}"
        );
    }
    browser.assert_accessible("counter-ja").await?;
    browser.screenshot("counter-ja").await?;

    // And back to English.
    browser.click("#lang-switch").await?;
    browser
        .until(
            "the counter in English",
            "return document.documentElement.lang === 'en' \
             && document.querySelector('header.top h1').textContent === 'Returns counter'",
        )
        .await?;
    look_up(&browser).await?;
    let text = shown_text(&browser).await?;
    for code in CODES {
        assert!(
            !text.contains(code),
            "{code:?} shown on the English counter:\n{text}"
        );
    }
    assert!(text.contains("Arrived too late"), "{text}");
    browser.assert_accessible("counter-en").await?;
    browser.close().await?;
    fleet.shutdown().await;
    Ok(())
}
