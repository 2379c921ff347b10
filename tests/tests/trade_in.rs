//! Trade-in prices and quotes over the API as a merchant's system uses them: the table put
//! and read back, every refusal naming its field, quotes priced by SKU before category at
//! the grade the described condition would get, kept and found again, never across
//! merchants; then items sent against quotes, graded at their site, offered, answered and
//! paid once.

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

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const DAY_MS: i64 = 86_400_000;

/// Brand-a's phones bought back by category: A 30,000, B 22,000, C 12,000 yen.
async fn phones_priced(fleet: &TestFleet, key: &str) -> anyhow::Result<()> {
    let catalog = json!({"items": [
        {"sku": "PHN-MINI", "category": "phone", "price_yen": 60000,
         "category_name_ja": "スマートフォン", "category_name_en": "Phones"}]});
    let (status, answer) =
        call(fleet, key, "PUT", "/api/v1/catalog/brand-a", Some(catalog)).await?;
    anyhow::ensure!(status == 200, "{answer}");
    let table = json!({"prices": [
        {"category": "phone", "grade": "A", "price_yen": 30000},
        {"category": "phone", "grade": "B", "price_yen": 22000},
        {"category": "phone", "grade": "C", "price_yen": 12000}]});
    let (status, answer) = call(fleet, key, "PUT", PRICES, Some(table)).await?;
    anyhow::ensure!(status == 200, "{answer}");
    Ok(())
}

async fn quote_good(fleet: &TestFleet, key: &str) -> anyhow::Result<String> {
    let (status, q) = call(
        fleet,
        key,
        "POST",
        QUOTES,
        Some(json!({"sku": "PHN-MINI", "condition": "good"})),
    )
    .await?;
    anyhow::ensure!(status == 201, "{q}");
    Ok(q["quote_id"].as_str().unwrap_or_default().to_owned())
}

/// The site receives the trade-in's parcel, grades its unit and closes the parcel, as for any
/// return.
async fn received_and_graded(
    fleet: &TestFleet,
    rma: &str,
    grade: modori_shared::domain::Grade,
) -> anyhow::Result<()> {
    use modori_shared::domain::{RmaId, Sku};
    use modori_shared::station::{Effect, ReceiptKind};
    let rma = RmaId::new(rma)?;
    let agent = fleet.agent(0);
    let config = fleet.agent_config(0);
    let sql = format!(
        "SELECT COUNT(*) FROM expected_returns WHERE rma = '{}'",
        rma.as_str()
    );
    modori_tests::wait_for("the trade-in expected at its site", TIMEOUT, || {
        let (config, sql) = (&config, &sql);
        async move { Ok(modori_tests::stations::agent_count(config, sql)? == 1) }
    })
    .await?;
    let receipt = agent
        .receive_unit(Some(rma.clone()), Sku::new("PHN-MINI")?, "B-0001")
        .await?;
    assert_eq!(receipt.receipt, ReceiptKind::Matched);
    agent
        .grade_unit(receipt.lpn.clone(), grade, "B-0001")
        .await?;
    agent
        .record(
            Effect::CloseParcel {
                rma,
                shortages: vec![],
            },
            modori_agent::work::Actor::new("B-0001", "recv-1"),
        )
        .await?;
    Ok(())
}

/// The quote as the merchant reads it, once its trade-in has `field`.
async fn quote_once(
    fleet: &TestFleet,
    key: &str,
    quote_id: &str,
    what: &str,
    field: &'static str,
) -> anyhow::Result<Value> {
    let path = format!("{QUOTES}/{quote_id}");
    modori_tests::wait_for(what, TIMEOUT, || {
        let path = path.clone();
        async move {
            let (_, q) = call(fleet, key, "GET", &path, None).await?;
            Ok(!q["trade_in"][field].is_null())
        }
    })
    .await?;
    let (_, q) = call(fleet, key, "GET", &path, None).await?;
    Ok(q)
}

fn kinds_of(ret: &Value) -> Vec<String> {
    ret["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

/// Items sent against their quotes over the API, received and graded at their site like any
/// return: as described, the quote is accepted at once and paid as store credit with its
/// bonus; worse, a counter-offer the merchant accepts for its customer, or one left to its
/// deadline where the default (decline) applies, once. Each wrong send or answer is refused
/// with nothing changed, and a restart makes no second offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_sent_against_quotes_are_offered_after_grading_and_answered_once(
) -> anyhow::Result<()> {
    use modori_shared::domain::Grade;
    const SECRET: &str = "brand-a-webhook-secret";
    let (hook_url, hooks) = webhook_receiver(SECRET).await?;
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (merchant, merchant_entry) = config_key("merchant:brand-a");
    let (other, other_entry) = config_key("merchant:brand-b");
    fleet.extra_keys = vec![merchant_entry, other_entry];
    fleet.merchants = vec![modori_coordinator::webhooks::MerchantEntry {
        id: "brand-a".into(),
        webhook_url: Some(hook_url),
        webhook_secret: Some(SECRET.into()),
        ..Default::default()
    }];
    fleet.start_coordinator().await?;
    phones_priced(&fleet, &merchant).await?;
    let send_body = |payout: &str| json!({"postal_code": "060-0001", "method": "konbini_dropoff", "payout": payout});

    // Refused, each naming what is wrong, with nothing sent.
    let described = quote_good(&fleet, &merchant).await?;
    let send_path = format!("{QUOTES}/{described}/send");
    for (key, path, body, status_wanted, field) in [
        (
            &merchant,
            format!("{QUOTES}/TQ-0000000000/send"),
            send_body("store_credit"),
            404,
            None,
        ),
        (
            &other,
            send_path.clone(),
            send_body("store_credit"),
            403,
            None,
        ),
        (
            &fleet.ops_key,
            format!("/api/v1/merchants/brand-b/trade-in/quotes/{described}/send"),
            send_body("store_credit"),
            404,
            None,
        ),
        (
            &merchant,
            send_path.clone(),
            send_body("cash"),
            422,
            Some("payout"),
        ),
        (
            &merchant,
            send_path.clone(),
            json!({"postal_code": "06O-OOO1", "method": "konbini_dropoff", "payout": "store_credit"}),
            422,
            Some("postal_code"),
        ),
        (
            &merchant,
            send_path.clone(),
            json!({"postal_code": "000-0000", "method": "konbini_dropoff", "payout": "store_credit"}),
            404,
            Some("postal_code"),
        ),
        (
            &merchant,
            send_path.clone(),
            json!({"postal_code": "060-0001", "method": "by_pigeon", "payout": "store_credit"}),
            422,
            Some("method"),
        ),
        (
            &merchant,
            send_path.clone(),
            json!({"postal_code": "060-0001", "method": "konbini_dropoff",
                   "payout": "store_credit", "email": "not an address"}),
            422,
            Some("email"),
        ),
    ] {
        let (status, answer) = call(&fleet, key, "POST", &path, Some(body.clone())).await?;
        assert_eq!(status, status_wanted, "{path} {body}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], json!(field), "{answer}");
        }
    }
    let (_, q) = call(
        &fleet,
        &merchant,
        "GET",
        &format!("{QUOTES}/{described}"),
        None,
    )
    .await?;
    assert!(q["trade_in"].is_null(), "nothing sent yet: {q}");
    // A quote past its validity is not sent (the use case at a time 15 days on).
    let expired = quote_good(&fleet, &merchant).await?;
    let ctx = fleet.coordinator().ctx().clone();
    let later_ms = ctx.clock.now_ms() + 15 * DAY_MS;
    let brand_a = modori_shared::domain::MerchantId::new("brand-a")?;
    let refused = modori_coordinator::app::trade_in_send::send(
        &ctx,
        &brand_a,
        &expired,
        modori_coordinator::app::trade_in_send::Sending {
            postal_code: "060-0001".into(),
            method: "konbini_dropoff".into(),
            payout: modori_coordinator::store::trade_in_returns::Payout::StoreCredit,
            contact: None,
        },
        later_ms,
    )
    .await;
    assert!(
        matches!(&refused, Err(modori_coordinator::app::AppError::Exists { field, .. }) if field == "quote_id"),
        "{:?}",
        refused.as_ref().err()
    );
    let (_, q) = call(
        &fleet,
        &merchant,
        "GET",
        &format!("{QUOTES}/{expired}"),
        None,
    )
    .await?;
    assert!(
        q["trade_in"].is_null(),
        "an expired quote sends nothing: {q}"
    );

    // Sent: a return routed like any; sent again, the same return.
    let (status, sent) = call(
        &fleet,
        &merchant,
        "POST",
        &send_path,
        Some(send_body("bank_transfer")),
    )
    .await?;
    assert_eq!(status, 201, "{sent}");
    let rma = sent["rma"].as_str().unwrap_or_default().to_owned();
    let (status, again) = call(
        &fleet,
        &merchant,
        "POST",
        &send_path,
        Some(send_body("store_credit")),
    )
    .await?;
    assert_eq!((status, &again["rma"]), (200, &json!(rma)), "{again}");
    let (status, ret) = call(
        &fleet,
        &merchant,
        "GET",
        &format!("/api/v1/returns/{rma}"),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{ret}");
    assert_eq!(kinds_of(&ret), ["registered"], "one return: {ret}");

    // Graded as described: accepted at once, to be paid by transfer as quoted.
    received_and_graded(&fleet, &rma, Grade::B).await?;
    let q = quote_once(
        &fleet,
        &merchant,
        &described,
        "the offer as quoted",
        "decision",
    )
    .await?;
    assert_eq!(
        (
            &q["trade_in"]["offer_yen"],
            &q["trade_in"]["counter_offer"],
            &q["trade_in"]["decision"],
            &q["trade_in"]["decided_by"],
            &q["trade_in"]["payout_yen"]
        ),
        (
            &json!(22000),
            &json!(false),
            &json!("accepted"),
            &json!("automatic"),
            &json!(22000)
        ),
        "{q}"
    );
    // Nothing to answer: declining conflicts, accepting again changes nothing.
    let answer_path = format!("{QUOTES}/{described}/answer");
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        &answer_path,
        Some(json!({"answer": "decline"})),
    )
    .await?;
    assert_eq!(status, 409, "{answer}");
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        &answer_path,
        Some(json!({"answer": "accept"})),
    )
    .await?;
    assert_eq!(
        (status, &answer["payout_yen"]),
        (200, &json!(22000)),
        "{answer}"
    );
    // The transfer is confirmed made as a refund is.
    let (status, paid) = call(
        &fleet,
        &merchant,
        "POST",
        &format!("/api/v1/returns/{rma}/refund"),
        Some(json!({})),
    )
    .await?;
    assert_eq!(
        (status, &paid["amount_yen"]),
        (200, &json!(22000)),
        "{paid}"
    );

    // Graded worse: a counter-offer at the grade's price, accepted by the merchant for its
    // customer: store credit with the 10 % bonus, issued; then declining it conflicts.
    let worse = quote_good(&fleet, &merchant).await?;
    let (status, sent) = call(
        &fleet,
        &merchant,
        "POST",
        &format!("{QUOTES}/{worse}/send"),
        Some(send_body("store_credit")),
    )
    .await?;
    assert_eq!(status, 201, "{sent}");
    let worse_rma = sent["rma"].as_str().unwrap_or_default().to_owned();
    let worse_answer = format!("{QUOTES}/{worse}/answer");
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        &worse_answer,
        Some(json!({"answer": "accept"})),
    )
    .await?;
    assert_eq!(status, 409, "not graded yet: {answer}");
    received_and_graded(&fleet, &worse_rma, Grade::C).await?;
    let q = quote_once(&fleet, &merchant, &worse, "the counter-offer", "offer_yen").await?;
    assert_eq!(
        (
            &q["trade_in"]["offer_yen"],
            &q["trade_in"]["counter_offer"],
            &q["trade_in"]["graded"]
        ),
        (&json!(12000), &json!(true), &json!("C")),
        "{q}"
    );
    assert!(
        q["trade_in"]["decision"].is_null() && q["trade_in"]["answer_by"].is_string(),
        "{q}"
    );
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        &worse_answer,
        Some(json!({"answer": "maybe"})),
    )
    .await?;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (422, &json!("answer")),
        "{answer}"
    );
    let (status, answer) = call(
        &fleet,
        &other,
        "POST",
        &worse_answer,
        Some(json!({"answer": "accept"})),
    )
    .await?;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        &worse_answer,
        Some(json!({"answer": "accept"})),
    )
    .await?;
    assert_eq!(
        (
            status,
            &answer["decision"],
            &answer["decided_by"],
            &answer["payout_yen"]
        ),
        (200, &json!("accepted"), &json!("merchant"), &json!(13200)),
        "{answer}"
    );
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        &worse_answer,
        Some(json!({"answer": "decline"})),
    )
    .await?;
    assert_eq!(status, 409, "{answer}");
    let (status, issued) = call(
        &fleet,
        &merchant,
        "POST",
        &format!("/api/v1/returns/{worse_rma}/refund"),
        Some(json!({})),
    )
    .await?;
    assert_eq!(
        (status, &issued["amount_yen"]),
        (200, &json!(13200)),
        "{issued}"
    );

    // Left unanswered: at its deadline the default (decline) applies, once.
    let silent = quote_good(&fleet, &merchant).await?;
    let (_, sent) = call(
        &fleet,
        &merchant,
        "POST",
        &format!("{QUOTES}/{silent}/send"),
        Some(send_body("store_credit")),
    )
    .await?;
    let silent_rma = sent["rma"].as_str().unwrap_or_default().to_owned();
    received_and_graded(&fleet, &silent_rma, Grade::C).await?;
    quote_once(
        &fleet,
        &merchant,
        &silent,
        "the second counter-offer",
        "offer_yen",
    )
    .await?;
    let settle = modori_coordinator::app::trade_in_offer::settle_overdue;
    assert_eq!(settle(&ctx, ctx.clock.now_ms()).await?, 0, "not due yet");
    let past_deadline_ms = ctx.clock.now_ms() + 8 * DAY_MS;
    assert_eq!(settle(&ctx, past_deadline_ms).await?, 1);
    assert_eq!(settle(&ctx, past_deadline_ms + DAY_MS).await?, 0, "once");
    let (_, q) = call(
        &fleet,
        &merchant,
        "GET",
        &format!("{QUOTES}/{silent}"),
        None,
    )
    .await?;
    assert_eq!(
        (&q["trade_in"]["decision"], &q["trade_in"]["decided_by"]),
        (&json!("declined"), &json!("deadline")),
        "{q}"
    );
    assert!(q["trade_in"]["payout_yen"].is_null(), "{q}");
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        &format!("{QUOTES}/{silent}/answer"),
        Some(json!({"answer": "accept"})),
    )
    .await?;
    assert_eq!(status, 409, "after the default: {answer}");
    // Declined by the default, its item goes back too: shipped from its site, the event at
    // the merchant's webhook with the others (checked below).
    ship_back_at_site(&fleet, &merchant, &silent_rma, "123456789020").await?;

    // A restart redoes every pass: no offer is made twice, every step has its code and
    // reaches the merchant's webhook once, in order, signed.
    fleet.start_coordinator().await?;
    for (rma, wanted) in [
        (&rma, vec!["trade_in_offer", "trade_in_accepted"]),
        (
            &worse_rma,
            vec!["trade_in_counter_offer", "trade_in_accepted"],
        ),
        (
            &silent_rma,
            vec!["trade_in_counter_offer", "trade_in_declined"],
        ),
    ] {
        let (_, ret) = call(
            &fleet,
            &merchant,
            "GET",
            &format!("/api/v1/returns/{rma}"),
            None,
        )
        .await?;
        let trade_in: Vec<String> = kinds_of(&ret)
            .into_iter()
            .filter(|k| k.starts_with("trade_in"))
            .collect();
        assert_eq!(trade_in, wanted, "{ret}");
        assert!(
            !kinds_of(&ret).contains(&"refund_computed".to_owned()),
            "a trade-in is not refunded: {ret}"
        );
        for e in ret["events"].as_array().into_iter().flatten() {
            assert!(
                !e["detail"].is_string() || e["detail_code"].is_string(),
                "{e}"
            );
        }
        let n_events = kinds_of(&ret).len();
        modori_tests::wait_for("the return's events at the webhook", TIMEOUT, || {
            let got = hooks
                .lock()
                .map(|h| h.iter().filter(|(r, _, _)| r == rma).count());
            async move { Ok(got.map_err(|e| anyhow::anyhow!("{e}"))? >= n_events) }
        })
        .await?;
        let delivered: Vec<(String, bool)> = hooks
            .lock()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .iter()
            .filter(|(r, _, _)| r == rma)
            .map(|(_, k, valid)| (k.clone(), *valid))
            .collect();
        let timeline: Vec<(String, bool)> = kinds_of(&ret).into_iter().map(|k| (k, true)).collect();
        assert_eq!(delivered, timeline, "each once, in order, signed");
    }
    // Each trade-in's receipt and inspection is billed to the merchant like a return's.
    let month = (chrono::Utc::now() + chrono::Duration::hours(9))
        .format("%Y-%m")
        .to_string();
    let (status, statement) = call(
        &fleet,
        &merchant,
        "GET",
        &format!("/api/v1/billing/brand-a?month={month}"),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{statement}");
    let quantity = |activity: &str| {
        statement["lines"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["activity"] == activity))
            .map(|l| l["quantity"].clone())
    };
    assert_eq!(
        (quantity("receipt"), quantity("grading")),
        (Some(json!(3)), Some(json!(3))),
        "{statement}"
    );
    fleet.shutdown().await;
    Ok(())
}

type Hooks = std::sync::Arc<std::sync::Mutex<Vec<(String, String, bool)>>>;

/// The merchant's webhook endpoint: each event's return, kind and whether its signature holds.
async fn webhook_receiver(secret: &'static str) -> anyhow::Result<(String, Hooks)> {
    use modori_coordinator::webhooks;
    let received: Hooks = Hooks::default();
    let log = received.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let log = log.clone();
                async move {
                    let signature = headers
                        .get(webhooks::SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok());
                    let now_s = chrono::Utc::now().timestamp();
                    let valid = webhooks::verify(secret, signature, &body, now_s).is_ok();
                    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                    if let Ok(mut log) = log.lock() {
                        log.push((
                            event["rma"].as_str().unwrap_or_default().to_owned(),
                            event["kind"].as_str().unwrap_or_default().to_owned(),
                            valid,
                        ));
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, received))
}

static MAIL_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// Customers' mail to the test SMTP server (its port set by the test before the start).
fn with_mail(config: &mut modori_coordinator::config::CoordinatorConfig) {
    mail_to(config, &MAIL_PORT);
}

/// The override test's own SMTP server, as tests of one binary run side by side.
static OVERRIDE_MAIL_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

fn with_override_mail(config: &mut modori_coordinator::config::CoordinatorConfig) {
    mail_to(config, &OVERRIDE_MAIL_PORT);
}

fn mail_to(
    config: &mut modori_coordinator::config::CoordinatorConfig,
    port: &std::sync::atomic::AtomicU16,
) {
    use modori_coordinator::notify::mail::{MailSection, Security};
    config.notifications.public_base_url = Some("https://returns.example.jp".into());
    config.mail = Some(MailSection {
        host: "127.0.0.1".into(),
        port: Some(port.load(std::sync::atomic::Ordering::SeqCst)),
        security: Security::Plain,
        username: None,
        password: None,
        from: "ブランドA 買取受付 <tradein@brand-a.example.jp>".into(),
        timeout_seconds: 5,
        ca_cert: None,
    });
}

/// A customer sends an item from the portal's quote page in Chromium, in Japanese: the
/// return's number, QR code (read by zbarimg) and status link; the site grades it worse than
/// described; the counter-offer reaches the customer's mailbox (a real SMTP server) and the
/// status page, where the customer declines it: recorded as to be sent back, and nothing may
/// change it after; ops see the trade-in on the return's page. axe-core judges every page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_offer_is_mailed_and_declined_on_the_status_page() -> anyhow::Result<()> {
    use modori_shared::domain::Grade;
    let Some(browser) = modori_tests::browser::Browser::start().await? else {
        return Ok(());
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    MAIL_PORT.store(port, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir()?;
    let sink = modori_tests::smtp::Sink::start(port, &dir.path().join("mail.jsonl"), &[])?;
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    fleet.merchants = vec![modori_coordinator::webhooks::MerchantEntry {
        id: "brand-a".into(),
        name: Some("ブランドA".into()),
        ..Default::default()
    }];
    fleet.config_tweak = Some(with_mail);
    fleet.start_coordinator().await?;
    let key = fleet.ops_key.clone();
    phones_priced(&fleet, &key).await?;
    let base = format!("http://{}", fleet.http());

    // Quoted as good (grade B, 22,000 yen), then sent from the quote page.
    browser
        .c()
        .goto(&format!("{base}/r/brand-a/trade-in"))
        .await?;
    browser
        .until("the quote form", "return !!document.getElementById('sku')")
        .await?;
    browser.click("#get-quote").await?;
    browser
        .until("the quote", "return !!document.getElementById('send-item')")
        .await?;
    let quote_id = browser
        .js("return document.getElementById('quote-id').textContent")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    browser.assert_accessible("trade-in-send-form-ja").await?;
    // A wrong postal code is asked again, what was typed kept.
    browser.fill("#postal-code", "123").await?;
    browser.fill("#email", "hanako@example.jp").await?;
    browser.click("#send-item").await?;
    browser
        .until(
            "the postal code asked again",
            "return !!document.querySelector('.problem')",
        )
        .await?;
    let kept = browser
        .js("return document.getElementById('email').value")
        .await?;
    assert_eq!(kept, json!("hanako@example.jp"));
    browser.assert_accessible("trade-in-send-again-ja").await?;
    browser
        .js("document.getElementById('postal-code').value = ''; return true")
        .await?;
    browser.fill("#postal-code", "060-0001").await?;
    browser.click("#send-item").await?;
    browser
        .until("the item sent", "return !!document.getElementById('rma')")
        .await?;
    let shot = browser.screenshot("trade-in-sent-ja").await?;
    browser.assert_accessible("trade-in-sent-ja").await?;
    // The drop-off's QR code, read by zbarimg from the page as a counter's scanner reads it.
    let decoded = std::process::Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(&shot)
        .output()?;
    let scanned = String::from_utf8_lossy(&decoded.stdout).trim().to_owned();
    assert!(scanned.contains("/ui/store/scan/"), "decoded {scanned:?}");
    let sent = browser
        .js("return [document.getElementById('rma').textContent, document.getElementById('status-link').href, !!document.querySelector('img.qr'), !!document.querySelector('a.label-a4')]")
        .await?;
    let rma = sent[0].as_str().unwrap_or_default().to_owned();
    let status_url = sent[1].as_str().unwrap_or_default().to_owned();
    assert_eq!((&sent[2], &sent[3]), (&json!(true), &json!(true)), "{sent}");
    let (_, q) = call(&fleet, &key, "GET", &format!("{QUOTES}/{quote_id}"), None).await?;
    assert_eq!(q["trade_in"]["rma"], json!(rma), "{q}");

    // Before grading, the status page says the offer follows the inspection.
    browser.c().goto(&status_url).await?;
    browser
        .until(
            "the trade-in on the status page",
            "return !!document.getElementById('trade-in-state')",
        )
        .await?;
    let quoted = browser
        .js("return document.getElementById('trade-in-quote').textContent")
        .await?;
    assert_eq!(quoted, json!("¥22,000"));
    let heading = browser
        .js("return document.querySelector('h1').textContent")
        .await?;
    assert_eq!(heading, json!("買取の状況"), "a trade-in, not a return");
    assert_eq!(
        browser
            .js("return !!document.getElementById('decline-offer')")
            .await?,
        json!(false)
    );

    // Graded C: a counter-offer of 12,000 yen, mailed.
    received_and_graded(&fleet, &rma, Grade::C).await?;
    let subject = "【ブランドA】買取金額を改めてご提示します";
    modori_tests::wait_for("the counter-offer mail", TIMEOUT, || {
        let got = sink.messages();
        async move { Ok(got?.iter().any(|m| m["subject"] == subject)) }
    })
    .await?;
    let mails = sink.messages()?;
    let mail = mails
        .iter()
        .find(|m| m["subject"] == subject)
        .ok_or_else(|| anyhow::anyhow!("no counter-offer mail"))?;
    assert_eq!(mail["rcpt_tos"], json!(["hanako@example.jp"]));
    let text = modori_tests::smtp::text_of(mail);
    assert!(text.contains(&rma), "{text}");
    assert!(
        text.contains("https://returns.example.jp/r/brand-a/s/"),
        "{text}"
    );
    assert_eq!(mails.iter().filter(|m| m["subject"] == subject).count(), 1);

    browser.c().goto(&status_url).await?;
    browser
        .until(
            "the counter-offer form",
            "return !!document.getElementById('decline-offer')",
        )
        .await?;
    let offer = browser
        .js("return document.getElementById('trade-in-offer').textContent")
        .await?;
    assert_eq!(offer, json!("¥12,000"));
    browser.screenshot("trade-in-counter-offer-ja").await?;
    browser
        .assert_accessible("trade-in-counter-offer-ja")
        .await?;
    // The form's token, to post the form again after it was answered.
    let csrf = browser
        .js("return document.querySelector('input[name=csrf]').value")
        .await?;
    browser.click("#decline-offer").await?;
    browser
        .until(
            "the decline recorded",
            "return !document.getElementById('decline-offer') && document.getElementById('trade-in-state').textContent.includes('返送')",
        )
        .await?;
    browser.assert_accessible("trade-in-declined-ja").await?;
    // Told of the decline by mail too; never of a grading as if a refund or exchange followed.
    let declined = "【ブランドA】買取はお断りとなりました";
    modori_tests::wait_for("the decline's mail", TIMEOUT, || {
        let got = sink.messages();
        async move { Ok(got?.iter().any(|m| m["subject"] == declined)) }
    })
    .await?;
    let subjects: Vec<Value> = sink
        .messages()?
        .iter()
        .map(|m| m["subject"].clone())
        .collect();
    assert!(
        !subjects.contains(&json!("【ブランドA】返品商品の検品が完了しました")),
        "{subjects:?}"
    );
    let (_, q) = call(&fleet, &key, "GET", &format!("{QUOTES}/{quote_id}"), None).await?;
    assert_eq!(
        (&q["trade_in"]["decision"], &q["trade_in"]["decided_by"]),
        (&json!("declined"), &json!("customer")),
        "{q}"
    );
    // After the decline, an accept is refused and a form from elsewhere never counts.
    let (status, answer) = call(
        &fleet,
        &key,
        "POST",
        &format!("{QUOTES}/{quote_id}/answer"),
        Some(json!({"answer": "accept"})),
    )
    .await?;
    assert_eq!(status, 409, "{answer}");
    let path = status_url
        .trim_start_matches(&base)
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let forged = modori_tests::http_raw(
        fleet.http(),
        "POST",
        &format!("{path}/trade-in"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&b"csrf=00&answer=accept"[..]),
    )
    .await?;
    assert_eq!(forged.status, 403, "{}", forged.body);
    // The customer's own form posted again, accepting now: refused in their words.
    let again = format!(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '{path}/trade-in'; \
         for (const [k, v] of [['csrf', {csrf}], ['lang', 'ja'], ['answer', 'accept']]) {{ \
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.append(i); }} \
         document.body.append(f); f.submit(); return true"
    );
    browser.js(&again).await?;
    browser
        .until(
            "the late answer refused",
            "return !!document.querySelector('.problem') && document.body.textContent.includes('回答済み')",
        )
        .await?;
    browser.assert_accessible("trade-in-answered-ja").await?;
    let (_, after) = call(&fleet, &key, "GET", &format!("{QUOTES}/{quote_id}"), None).await?;
    assert_eq!(after, q, "nothing changed");

    // Ops see on the return's page that it is a trade-in, with its quote and its outcome.
    browser.login(&base, "/returns", &key, "/returns").await?;
    browser.c().goto(&format!("{base}/returns/{rma}")).await?;
    let shown = format!(
        "const d = document.getElementById('trade-in'); \
         return !d.hidden && d.textContent.includes('{quote_id}') && d.textContent.includes('¥12,000')"
    );
    browser
        .until("the trade-in on the ops page", &shown)
        .await?;
    browser.screenshot("ops-return-trade-in").await?;
    browser.assert_accessible("ops-return-trade-in").await?;

    shipped_back_and_billed(&fleet, &browser, &sink, &key, &rma, &status_url).await?;
    fleet.shutdown().await;
    Ok(())
}

/// Waits for the site to be ordered to send back the unit of `rma`, disposes of it as its
/// rules would and ships it back with `tracking`, as its putaway station's SHIP would; then
/// waits for the centre's timeline to say so.
async fn ship_back_at_site(
    fleet: &TestFleet,
    key: &str,
    rma: &str,
    tracking: &str,
) -> anyhow::Result<()> {
    use modori_agent::work::Actor;
    use modori_shared::domain::{Departure, Disposition, Lpn, RmaId};
    use modori_shared::station::Effect;
    let config = fleet.agent_config(0);
    let sql = format!("SELECT lpn FROM ship_backs WHERE rma = '{rma}'");
    modori_tests::wait_for("the ship-back ordered at the site", TIMEOUT, || {
        let (config, sql) = (&config, &sql);
        async move { Ok(modori_tests::stations::agent_query::<String>(config, sql).is_ok()) }
    })
    .await?;
    let lpn = Lpn::new(modori_tests::stations::agent_query::<String>(
        &config, &sql,
    )?)?;
    let who = || Actor::new("B-0001", "put-1");
    let agent = fleet.agent(0);
    let dispose = Effect::Dispose {
        lpn: lpn.clone(),
        disposition: Disposition::Refurbish,
    };
    agent.record(dispose, who()).await?;
    let depart = Effect::Depart {
        lpn,
        departure: Departure::ToCustomer {
            rma: RmaId::new(rma)?,
        },
        tracking: Some(tracking.to_owned()),
    };
    agent.record(depart, who()).await?;
    let path = format!("/api/v1/returns/{rma}");
    modori_tests::wait_for("the ship-back on the timeline", TIMEOUT, || {
        let path = path.clone();
        async move {
            let (_, ret) = call(fleet, key, "GET", &path, None).await?;
            Ok(kinds_of(&ret).contains(&"shipped_back".to_owned()))
        }
    })
    .await?;
    Ok(())
}

/// After the decline on the status page: the site was ordered to send the item back, once;
/// its putaway flow ships it with the carrier's number and its own label; the timeline,
/// the status page and a mail say so, and the month's bill counts the inspection and the
/// ship-back once each.
async fn shipped_back_and_billed(
    fleet: &TestFleet,
    browser: &modori_tests::browser::Browser,
    sink: &modori_tests::smtp::Sink,
    key: &str,
    rma: &str,
    status_url: &str,
) -> anyhow::Result<()> {
    use modori_agent::work::{Actor, LabelData, SiteLookup};
    use modori_shared::domain::{Departure, Disposition, Lpn, RmaId};
    use modori_shared::station::{way_out, Effect, Lookup};
    let agent = fleet.agent(0);
    let config = fleet.agent_config(0);
    modori_tests::wait_for("the ship-back ordered at the site", TIMEOUT, || {
        let config = &config;
        async move {
            Ok(
                modori_tests::stations::agent_count(config, "SELECT COUNT(*) FROM ship_backs")?
                    == 1,
            )
        }
    })
    .await?;
    let lpn = Lpn::new(modori_tests::stations::agent_query::<String>(
        &config,
        "SELECT lpn FROM ship_backs",
    )?)?;
    let who = || Actor::new("B-0001", "put-1");
    // Superseded, not refused: the unit is disposed of as usual, but its disposition's way
    // out is refused and SHIP sends it back.
    agent
        .record(
            Effect::Dispose {
                lpn: lpn.clone(),
                disposition: Disposition::Recycle,
            },
            who(),
        )
        .await?;
    let tracking = "123456789013";
    let depart = |departure| Effect::Depart {
        lpn: lpn.clone(),
        departure,
        tracking: Some(tracking.to_owned()),
    };
    let refused = agent.record(depart(Departure::Recycler), who()).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("ship it back")),
        "{refused:?}"
    );
    let way = agent
        .db()
        .call({
            let lpn = lpn.clone();
            move |c| {
                let site = SiteLookup(c);
                Ok::<_, modori_agent::store::StoreError>(
                    site.unit(&lpn).and_then(|u| way_out(&site, &u)),
                )
            }
        })
        .await?;
    let back = Departure::ToCustomer {
        rma: RmaId::new(rma)?,
    };
    assert_eq!(way.as_ref(), Some(&back), "SHIP sends it back");
    let shipped = agent.record(depart(back), who()).await?;
    assert!(
        matches!(&shipped.label, Some(LabelData::ShipBack { rma: r, .. }) if r.as_str() == rma),
        "{:?}",
        shipped.label
    );

    // The centre: the timeline, coded with the tracking number.
    let path = format!("/api/v1/returns/{rma}");
    modori_tests::wait_for("the ship-back on the timeline", TIMEOUT, || {
        let path = path.clone();
        async move {
            let (_, ret) = call(fleet, key, "GET", &path, None).await?;
            Ok(kinds_of(&ret).contains(&"shipped_back".to_owned()))
        }
    })
    .await?;
    let (_, ret) = call(fleet, key, "GET", &path, None).await?;
    let events: Vec<&Value> = ret["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "shipped_back")
        .collect();
    assert_eq!(events.len(), 1, "{ret}");
    assert_eq!(
        events[0]["detail_code"],
        json!("departed_to_customer_tracked"),
        "{ret}"
    );
    assert!(
        events[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(tracking)),
        "{ret}"
    );

    // The customer: the status page and a mail, in 買取 words.
    browser.c().goto(status_url).await?;
    browser
        .until(
            "the tracking number on the status page",
            &format!(
                "const t = document.getElementById('ship-back-tracking-0'); \
                 return !!t && t.textContent === '{tracking}' \
                   && document.getElementById('trade-in-state').textContent.includes('返送中')"
            ),
        )
        .await?;
    browser.screenshot("trade-in-shipped-back-ja").await?;
    browser
        .assert_accessible("trade-in-shipped-back-ja")
        .await?;
    let subject = "【ブランドA】買取をお断りした商品を返送しました";
    modori_tests::wait_for("the ship-back's mail", TIMEOUT, || {
        let got = sink.messages();
        async move { Ok(got?.iter().any(|m| m["subject"] == subject)) }
    })
    .await?;
    let mails = sink.messages()?;
    let mail = mails
        .iter()
        .find(|m| m["subject"] == subject)
        .ok_or_else(|| anyhow::anyhow!("no ship-back mail"))?;
    assert_eq!(mail["rcpt_tos"], json!(["hanako@example.jp"]));
    let text = modori_tests::smtp::text_of(mail);
    assert!(text.contains(rma) && text.contains("返送"), "{text}");

    // The merchant's bill: the trade-in inspected once, sent back once, nothing paid out.
    let month = (chrono::Utc::now() + chrono::Duration::hours(9))
        .format("%Y-%m")
        .to_string();
    let (status, statement) = call(
        fleet,
        key,
        "GET",
        &format!("/api/v1/billing/brand-a?month={month}"),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{statement}");
    let quantity = |activity: &str| {
        statement["lines"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["activity"] == activity))
            .map(|l| l["quantity"].clone())
    };
    assert_eq!(
        (
            quantity("trade_in_inspection"),
            quantity("ship_back"),
            quantity("trade_in_payout")
        ),
        (Some(json!(1)), Some(json!(1)), Some(json!(0))),
        "{statement}"
    );
    Ok(())
}

/// Sends a quote as good of PHN-MINI over the API, with the customer's address for mail, and
/// has it received and graded `grade`; returns (quote id, RMA) once its offer is made.
async fn sent_and_graded(
    fleet: &TestFleet,
    key: &str,
    grade: modori_shared::domain::Grade,
) -> anyhow::Result<(String, String)> {
    let quote_id = quote_good(fleet, key).await?;
    let body = json!({"postal_code": "060-0001", "method": "konbini_dropoff",
                      "payout": "bank_transfer", "email": "taro@example.jp"});
    let (status, sent) = call(
        fleet,
        key,
        "POST",
        &format!("{QUOTES}/{quote_id}/send"),
        Some(body),
    )
    .await?;
    anyhow::ensure!(status == 201, "{sent}");
    let rma = sent["rma"].as_str().unwrap_or_default().to_owned();
    received_and_graded(fleet, &rma, grade).await?;
    quote_once(fleet, key, &quote_id, "the offer", "offer_yen").await?;
    Ok((quote_id, rma))
}

/// Ops override a disputed offer with a reason, once: below the quote it stays a
/// counter-offer with a fresh deadline, mailed to the customer as revised; at the quote it
/// is accepted at once. Each step is on the timeline with its code (the key and the reason
/// in it) and at the merchant's webhook. Every wrong override is refused naming its problem,
/// with nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_override_a_disputed_offer_once_with_a_reason() -> anyhow::Result<()> {
    use modori_shared::domain::Grade;
    const SECRET: &str = "brand-a-webhook-secret";
    let Some(browser) = modori_tests::browser::Browser::start().await? else {
        return Ok(());
    };
    let (hook_url, hooks) = webhook_receiver(SECRET).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    OVERRIDE_MAIL_PORT.store(port, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir()?;
    let sink = modori_tests::smtp::Sink::start(port, &dir.path().join("mail.jsonl"), &[])?;
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (merchant, merchant_entry) = config_key("merchant:brand-a");
    fleet.extra_keys = vec![merchant_entry];
    fleet.merchants = vec![modori_coordinator::webhooks::MerchantEntry {
        id: "brand-a".into(),
        name: Some("ブランドA".into()),
        webhook_url: Some(hook_url),
        webhook_secret: Some(SECRET.into()),
        ..Default::default()
    }];
    fleet.config_tweak = Some(with_override_mail);
    fleet.start_coordinator().await?;
    let ops = fleet.ops_key.clone();
    phones_priced(&fleet, &merchant).await?;

    // Graded C: a counter-offer of 12,000 yen against the quote of 22,000.
    let (disputed, rma) = sent_and_graded(&fleet, &merchant, Grade::C).await?;
    let path = format!("/api/v1/returns/{rma}/trade-in/override");
    let (_, before) = call(&fleet, &ops, "GET", &format!("{QUOTES}/{disputed}"), None).await?;
    assert_eq!(before["trade_in"]["offer_yen"], json!(12000), "{before}");
    let why = "the scratch was there when sold: the customer sent the receipt";
    let long = "x".repeat(modori_coordinator::http::OVERRIDE_REASON_CHARS_MAX + 1);
    for (key, path, body, status_wanted, field) in [
        (
            &merchant,
            path.clone(),
            json!({"offer_yen": 18000, "reason": why}),
            403,
            None,
        ),
        (
            &ops,
            "/api/v1/returns/RMA-NOT-A-TRADE-IN/trade-in/override".to_owned(),
            json!({"offer_yen": 18000, "reason": why}),
            404,
            None,
        ),
        (
            &ops,
            path.clone(),
            json!({"offer_yen": -1, "reason": why}),
            422,
            Some("offer_yen"),
        ),
        (
            &ops,
            path.clone(),
            json!({"offer_yen": modori_shared::tradein::PRICE_YEN_MAX + 1, "reason": why}),
            422,
            Some("offer_yen"),
        ),
        (
            &ops,
            path.clone(),
            json!({"offer_yen": 18000}),
            422,
            Some("reason"),
        ),
        (
            &ops,
            path.clone(),
            json!({"offer_yen": 18000, "reason": "  "}),
            422,
            Some("reason"),
        ),
        (
            &ops,
            path.clone(),
            json!({"offer_yen": 18000, "reason": long}),
            422,
            Some("reason"),
        ),
    ] {
        let (status, answer) = call(&fleet, key, "POST", &path, Some(body.clone())).await?;
        assert_eq!(status, status_wanted, "{path} {body}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], json!(field), "{answer}");
        }
    }
    let (_, q) = call(&fleet, &ops, "GET", &format!("{QUOTES}/{disputed}"), None).await?;
    assert_eq!(q, before, "nothing changed");

    // Below the quote, from the return's page in the ops console: still a counter-offer,
    // with a fresh deadline, once.
    let base = format!("http://{}", fleet.http());
    browser.login(&base, "/returns", &ops, "/returns").await?;
    browser.c().goto(&format!("{base}/returns/{rma}")).await?;
    browser
        .until(
            "the override form",
            "return !document.getElementById('override-form').hidden",
        )
        .await?;
    browser
        .assert_accessible("ops-trade-in-override-form")
        .await?;
    browser.fill("#override-yen", "18000").await?;
    browser.fill("#override-reason", why).await?;
    browser.click("#override-go").await?;
    browser
        .until(
            "the override recorded",
            "return document.getElementById('action-result').textContent.includes('¥18,000') && document.getElementById('trade-in').textContent.includes('¥18,000')",
        )
        .await?;
    browser.assert_accessible("ops-trade-in-overridden").await?;
    let body = json!({"offer_yen": 18000, "reason": why});
    let (status, overridden) =
        call(&fleet, &ops, "GET", &format!("{QUOTES}/{disputed}"), None).await?;
    assert_eq!(status, 200, "{overridden}");
    let overridden = overridden["trade_in"].clone();
    assert_eq!(
        (
            &overridden["offer_yen"],
            &overridden["counter_offer"],
            &overridden["decision"]
        ),
        (&json!(18000), &json!(true), &Value::Null),
        "{overridden}"
    );
    assert!(
        overridden["answer_by"].as_str() >= before["trade_in"]["answer_by"].as_str(),
        "a fresh deadline: {overridden} after {before}"
    );
    let (status, again) = call(&fleet, &ops, "POST", &path, Some(body)).await?;
    assert_eq!((status, &again), (200, &overridden), "the same again");
    let (status, other) = call(
        &fleet,
        &ops,
        "POST",
        &path,
        Some(json!({"offer_yen": 20000, "reason": why})),
    )
    .await?;
    assert_eq!(
        (status, &other["error"]["field"]),
        (409, &json!("offer_yen")),
        "{other}"
    );
    // The customer is told of the revised offer by mail, once, and answers it as before.
    let revised = "【ブランドA】買取金額を見直しました";
    modori_tests::wait_for("the revised offer's mail", TIMEOUT, || {
        let got = sink.messages();
        async move { Ok(got?.iter().any(|m| m["subject"] == revised)) }
    })
    .await?;
    let mails = sink.messages()?;
    let mail = mails
        .iter()
        .find(|m| m["subject"] == revised)
        .ok_or_else(|| anyhow::anyhow!("no revised offer mail"))?;
    assert_eq!(mail["rcpt_tos"], json!(["taro@example.jp"]));
    assert!(modori_tests::smtp::text_of(mail).contains(&rma));
    assert_eq!(mails.iter().filter(|m| m["subject"] == revised).count(), 1);
    // Registered, the customer was told of a trade-in (買取), never of a return (返品).
    assert!(
        mails
            .iter()
            .any(|m| m["subject"] == "【ブランドA】買取のお申し込みを受け付けました"),
        "{mails:?}"
    );
    assert!(
        !mails
            .iter()
            .any(|m| m["subject"] == "【ブランドA】返品のお申し込みを受け付けました"),
        "{mails:?}"
    );
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        &format!("{QUOTES}/{disputed}/answer"),
        Some(json!({"answer": "accept"})),
    )
    .await?;
    assert_eq!(
        (status, &answer["payout_yen"]),
        (200, &json!(18000)),
        "{answer}"
    );
    // Decided: no override any more.
    let (status, late) = call(
        &fleet,
        &ops,
        "POST",
        &path,
        Some(json!({"offer_yen": 20000, "reason": why})),
    )
    .await?;
    assert_eq!(status, 409, "{late}");

    // At the quote: accepted at once for the customer, paid as overridden.
    let (_, rma_up) = sent_and_graded(&fleet, &merchant, Grade::C).await?;
    let up_path = format!("/api/v1/returns/{rma_up}/trade-in/override");
    let (status, up) = call(
        &fleet,
        &ops,
        "POST",
        &up_path,
        Some(json!({"offer_yen": 22000, "reason": "graded in error"})),
    )
    .await?;
    assert_eq!(status, 200, "{up}");
    assert_eq!(
        (
            &up["counter_offer"],
            &up["decision"],
            &up["decided_by"],
            &up["payout_yen"]
        ),
        (
            &json!(false),
            &json!("accepted"),
            &json!("ops"),
            &json!(22000)
        ),
        "{up}"
    );
    let agreed = "【ブランドA】買取が成立しました";
    modori_tests::wait_for("the agreement's mail", TIMEOUT, || {
        let got = sink.messages();
        async move { Ok(got?.iter().filter(|m| m["subject"] == agreed).count() == 2) }
    })
    .await?;
    // Graded as described, accepted at once: nothing to override.
    let (_, rma_as_quoted) = sent_and_graded(&fleet, &merchant, Grade::B).await?;
    let (status, refused) = call(
        &fleet,
        &ops,
        "POST",
        &format!("/api/v1/returns/{rma_as_quoted}/trade-in/override"),
        Some(json!({"offer_yen": 25000, "reason": why})),
    )
    .await?;
    assert_eq!(status, 409, "{refused}");

    // Each override is on the timeline with its code, its key and its reason, and reaches
    // the merchant's webhook with every other step, once, in order, signed.
    for (rma, wanted, code, reason) in [
        (
            &rma,
            vec![
                "trade_in_counter_offer",
                "trade_in_offer_overridden",
                "trade_in_accepted",
            ],
            "trade_in_overridden_counter",
            why,
        ),
        (
            &rma_up,
            vec![
                "trade_in_counter_offer",
                "trade_in_offer",
                "trade_in_accepted",
            ],
            "trade_in_overridden",
            "graded in error",
        ),
    ] {
        let (_, ret) = call(&fleet, &ops, "GET", &format!("/api/v1/returns/{rma}"), None).await?;
        let trade_in: Vec<String> = kinds_of(&ret)
            .into_iter()
            .filter(|k| k.starts_with("trade_in"))
            .collect();
        assert_eq!(trade_in, wanted, "{ret}");
        let e = ret["events"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["detail_code"] == code)
            .ok_or_else(|| anyhow::anyhow!("no {code} in {ret}"))?;
        let detail = e["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(reason) && detail.contains("overridden by "),
            "{e}"
        );
        let n_events = kinds_of(&ret).len();
        modori_tests::wait_for("the return's events at the webhook", TIMEOUT, || {
            let got = hooks
                .lock()
                .map(|h| h.iter().filter(|(r, _, _)| r == rma).count());
            async move { Ok(got.map_err(|e| anyhow::anyhow!("{e}"))? >= n_events) }
        })
        .await?;
        let delivered: Vec<(String, bool)> = hooks
            .lock()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .iter()
            .filter(|(r, _, _)| r == rma)
            .map(|(_, k, valid)| (k.clone(), *valid))
            .collect();
        let timeline: Vec<(String, bool)> = kinds_of(&ret).into_iter().map(|k| (k, true)).collect();
        assert_eq!(delivered, timeline, "each once, in order, signed");
    }
    fleet.shutdown().await;
    Ok(())
}
