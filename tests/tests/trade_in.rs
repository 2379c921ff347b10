//! Trade-in prices and quotes over the API as a merchant's system uses them: the table put
//! and read back, every refusal naming its field, quotes priced by SKU before category at
//! the grade the described condition would get, kept and found again, never across
//! merchants.

use modori_tests::{config_key, http_request_as, small_fleet, TestFleet};
use serde_json::{json, Value};

async fn call(
    fleet: &TestFleet,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let text = body.map(|b| b.to_string());
    let (status, answer) =
        http_request_as(fleet.http(), Some(key), method, path, text.as_deref()).await?;
    Ok((status, serde_json::from_str(&answer).unwrap_or(Value::Null)))
}

const PRICES: &str = "/api/v1/merchants/brand-a/trade-in/prices";
const QUOTES: &str = "/api/v1/merchants/brand-a/trade-in/quotes";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_prices_trade_ins_and_quotes_them_by_condition() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (merchant, merchant_entry) = config_key("merchant:brand-a");
    let (other, other_entry) = config_key("merchant:brand-b");
    fleet.extra_keys = vec![merchant_entry, other_entry];
    fleet.start_coordinator().await?;
    let catalog = json!({"items": [
        {"sku": "PHN-PRO-256", "category": "phone", "price_yen": 120000},
        {"sku": "PHN-MINI", "category": "phone", "price_yen": 60000},
        {"sku": "TEE-WHT-M", "category": "tee", "price_yen": 1900}]});
    let (status, answer) = call(
        &fleet,
        &merchant,
        "PUT",
        "/api/v1/catalog/brand-a",
        Some(catalog),
    )
    .await?;
    anyhow::ensure!(status == 200, "{answer}");

    // Nothing priced yet: nothing is taken.
    let (status, answer) = call(&fleet, &merchant, "GET", PRICES, None).await?;
    assert_eq!((status, answer), (200, json!({"prices": []})));
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        QUOTES,
        Some(json!({"sku": "PHN-MINI", "condition": "good"})),
    )
    .await?;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (404, &json!("sku")),
        "{answer}"
    );

    let table = json!({"prices": [
        {"category": "phone", "grade": "A", "price_yen": 30000},
        {"category": "phone", "grade": "B", "price_yen": 21000},
        {"category": "phone", "grade": "C", "price_yen": 12000},
        {"sku": "PHN-PRO-256", "grade": "A", "price_yen": 61000},
        // A later row for the same category and grade replaces the earlier.
        {"category": "phone", "grade": "B", "price_yen": 22000}]});
    let (status, stored) = call(&fleet, &merchant, "PUT", PRICES, Some(table)).await?;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(
        stored["prices"],
        json!([
            {"category": "phone", "grade": "A", "price_yen": 30000},
            {"category": "phone", "grade": "C", "price_yen": 12000},
            {"sku": "PHN-PRO-256", "grade": "A", "price_yen": 61000},
            {"category": "phone", "grade": "B", "price_yen": 22000}])
    );
    let (_, read) = call(&fleet, &merchant, "GET", PRICES, None).await?;
    assert_eq!(read, stored);

    // Each refusal names its field and leaves the table as it was.
    for (body, field) in [
        (
            json!({"prices": [{"sku": "PHN-MINI", "category": "phone", "grade": "A", "price_yen": 1}]}),
            "prices[0]",
        ),
        (
            json!({"prices": [{"grade": "A", "price_yen": 1}]}),
            "prices[0]",
        ),
        (
            json!({"prices": [{"category": "phone", "grade": "E", "price_yen": 1}]}),
            "prices[0].grade",
        ),
        (
            json!({"prices": [{"category": "Phone", "grade": "A", "price_yen": 1}]}),
            "prices[0].category",
        ),
        (
            json!({"prices": [{"sku": "phn mini", "grade": "A", "price_yen": 1}]}),
            "prices[0].sku",
        ),
        (
            json!({"prices": [{"category": "phone", "grade": "A", "price_yen": 10_000_001}]}),
            "prices[0].price_yen",
        ),
        (
            json!({"prices": [{"category": "phone", "grade": "A", "price_yen": -5}]}),
            "prices[0].price_yen",
        ),
        (
            json!({"prices": [{"category": "phone", "grade": "A", "price_yen": 1, "currency": "JPY"}]}),
            "prices[0]",
        ),
    ] {
        let (status, answer) = call(&fleet, &merchant, "PUT", PRICES, Some(body.clone())).await?;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["error"]["field"]
                .as_str()
                .is_some_and(|f| f.starts_with(field)),
            "{body}: {answer}"
        );
    }
    let (_, read) = call(&fleet, &merchant, "GET", PRICES, None).await?;
    assert_eq!(read, stored, "refused tables changed nothing");

    // A SKU's own row before its category's, at the grade the condition would get.
    for (sku, condition, grade, yen) in [
        ("PHN-PRO-256", "like_new", "A", 61000),
        ("PHN-PRO-256", "good", "B", 22000),
        ("PHN-MINI", "like_new", "A", 30000),
        ("PHN-MINI", "fair", "C", 12000),
    ] {
        let (status, q) = call(
            &fleet,
            &merchant,
            "POST",
            QUOTES,
            Some(json!({"sku": sku, "condition": condition})),
        )
        .await?;
        assert_eq!(status, 201, "{sku} {condition}: {q}");
        assert_eq!(
            (&q["sku"], &q["expected_grade"], &q["quote_yen"]),
            (&json!(sku), &json!(grade), &json!(yen)),
            "{q}"
        );
        let id = q["quote_id"].as_str().unwrap_or_default();
        assert!(id.starts_with("TQ-") && id.len() == 13, "{q}");
        assert!(
            q["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{q}"
        );
        // Kept, and found again by its merchant only.
        let (status, again) =
            call(&fleet, &merchant, "GET", &format!("{QUOTES}/{id}"), None).await?;
        assert_eq!((status, &again), (200, &q));
        let (status, _) = call(&fleet, &other, "GET", &format!("{QUOTES}/{id}"), None).await?;
        assert_eq!(status, 403);
        let (status, _) = call(
            &fleet,
            &fleet.ops_key,
            "GET",
            &format!("/api/v1/merchants/brand-b/trade-in/quotes/{id}"),
            None,
        )
        .await?;
        assert_eq!(status, 404);
    }

    // Not bought in that condition, not bought at all, not in the catalogue, not a condition.
    for (body, status_wanted, field) in [
        (
            json!({"sku": "PHN-MINI", "condition": "poor"}),
            404,
            "condition",
        ),
        (json!({"sku": "TEE-WHT-M", "condition": "good"}), 404, "sku"),
        (json!({"sku": "NOPE-1", "condition": "good"}), 404, "sku"),
        (
            json!({"sku": "PHN-MINI", "condition": "mint"}),
            422,
            "condition",
        ),
    ] {
        let (status, answer) = call(&fleet, &merchant, "POST", QUOTES, Some(body.clone())).await?;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (status_wanted, &json!(field)),
            "{body}: {answer}"
        );
    }
    // Another merchant's key reaches none of it.
    let quote = json!({"sku": "PHN-MINI", "condition": "good"});
    for (method, path, body) in [
        ("GET", PRICES, None),
        ("PUT", PRICES, Some(json!({"prices": []}))),
        ("POST", QUOTES, Some(quote)),
    ] {
        let (status, answer) = call(&fleet, &other, method, path, body).await?;
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
    // An empty table takes no more trade-ins; quotes given keep their price.
    let (status, _) = call(
        &fleet,
        &merchant,
        "PUT",
        PRICES,
        Some(json!({"prices": []})),
    )
    .await?;
    assert_eq!(status, 200);
    let (status, _) = call(
        &fleet,
        &merchant,
        "POST",
        QUOTES,
        Some(json!({"sku": "PHN-MINI", "condition": "good"})),
    )
    .await?;
    assert_eq!(status, 404);
    fleet.shutdown().await;
    Ok(())
}

/// A customer gets a quote on the portal, on a phone, in Japanese: the products the merchant
/// buys back by their category's name, a condition, the quote kept under its number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_gets_a_trade_in_quote_on_the_portal() -> anyhow::Result<()> {
    let Some(browser) = modori_tests::browser::Browser::start().await? else {
        return Ok(());
    };
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let key = fleet.ops_key.clone();
    let base = format!("http://{}", fleet.http());
    // Nothing priced yet: the page says so.
    browser
        .c()
        .goto(&format!("{base}/r/brand-a/trade-in"))
        .await?;
    browser
        .until(
            "no trade-in offered",
            "return !!document.getElementById('no-trade-in')",
        )
        .await?;
    let catalog = json!({"items": [
        {"sku": "PHN-MINI", "category": "phone", "price_yen": 60000,
         "category_name_ja": "スマートフォン", "category_name_en": "Phones"},
        {"sku": "TEE-WHT-M", "category": "tee", "price_yen": 1900}]});
    let (status, answer) = call(
        &fleet,
        &key,
        "PUT",
        "/api/v1/catalog/brand-a",
        Some(catalog),
    )
    .await?;
    anyhow::ensure!(status == 200, "{answer}");
    let table = json!({"prices": [
        {"category": "phone", "grade": "B", "price_yen": 22000},
        {"category": "phone", "grade": "C", "price_yen": 12000}]});
    let (status, answer) = call(&fleet, &key, "PUT", PRICES, Some(table)).await?;
    anyhow::ensure!(status == 200, "{answer}");

    browser
        .c()
        .goto(&format!("{base}/r/brand-a/trade-in"))
        .await?;
    browser
        .until("the quote form", "return !!document.getElementById('sku')")
        .await?;
    // Only what the merchant buys back, by its category's name.
    let options = browser
        .js("return [...document.querySelectorAll('#sku option')].map(o => o.textContent)")
        .await?;
    assert_eq!(options, json!(["PHN-MINI（スマートフォン）"]));
    browser.screenshot("trade-in-form-ja").await?;
    browser.assert_accessible("trade-in-form-ja").await?;
    browser.click("input[name=condition][value=fair]").await?;
    browser.click("#get-quote").await?;
    browser
        .until("the quote", "return !!document.getElementById('quote-yen')")
        .await?;
    let shown = browser
        .js("return [document.getElementById('quote-yen').textContent, document.getElementById('quote-id').textContent]")
        .await?;
    assert_eq!(shown[0], json!("¥12,000"), "{shown}");
    let id = shown[1].as_str().unwrap_or_default().to_owned();
    browser.screenshot("trade-in-quote-ja").await?;
    browser.assert_accessible("trade-in-quote-ja").await?;
    // Kept: the merchant's system finds it by its number.
    let (status, q) = call(&fleet, &key, "GET", &format!("{QUOTES}/{id}"), None).await?;
    assert_eq!(status, 200, "{q}");
    assert_eq!(
        (&q["sku"], &q["condition"], &q["quote_yen"]),
        (&json!("PHN-MINI"), &json!("fair"), &json!(12000))
    );
    // A form from elsewhere (no cookie of the page) is refused; a SKU the page did not offer
    // is asked again.
    let post = |cookie: String, body: String| {
        let http = fleet.http();
        async move {
            let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
            if !cookie.is_empty() {
                headers.push(("Cookie", cookie.as_str()));
            }
            modori_tests::http_raw(
                http,
                "POST",
                "/r/brand-a/trade-in",
                &headers,
                Some(body.as_bytes()),
            )
            .await
        }
    };
    let res = post(String::new(), "csrf=00&sku=PHN-MINI&condition=good".into()).await?;
    assert_eq!(res.status, 403, "{}", res.body);
    let form =
        modori_tests::http_raw(fleet.http(), "GET", "/r/brand-a/trade-in", &[], None).await?;
    let cookie = form
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let csrf = cookie
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    for (fields, said) in [
        ("sku=TEE-WHT-M&condition=good", "商品と状態を選んでください"),
        ("sku=PHN-MINI&condition=mint", "商品と状態を選んでください"),
        // In that condition, not bought.
        (
            "sku=PHN-MINI&condition=like_new&lang=en",
            "We cannot buy this product in that condition",
        ),
    ] {
        let res = post(cookie.clone(), format!("csrf={csrf}&{fields}")).await?;
        assert_eq!(res.status, 422, "{fields}: {}", res.body);
        assert!(res.body.contains(said), "{fields}: {}", res.body);
    }
    fleet.shutdown().await;
    Ok(())
}
