//! Catalogue styles over HTTP: a style is stored and round-trips through the catalogue; an
//! exchange of a styled SKU is for a variant of its style, at the API, the store route and the
//! counter; the counter's order lookup offers exactly the sellable variants.

use std::net::SocketAddr;

use modori_tests::{http_raw, small_fleet, HttpResponse, TestFleet};
use serde_json::{json, Value};

const CATALOG: &str = r#"{"items": [
    {"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900, "style": "TEE-1"},
    {"sku": "TEE-WHT-L", "category": "tops", "price_yen": 2900, "style": "TEE-1"},
    {"sku": "TEE-BLK-M", "category": "tops", "price_yen": 2900, "style": "TEE-1"},
    {"sku": "TEE-RED-S", "category": "tops", "price_yen": 1900, "style": "TEE-1", "final_sale": true},
    {"sku": "CAP-WOOL", "category": "hats", "price_yen": 3900, "style": "CAP-1"},
    {"sku": "SOCK-PLAIN", "category": "socks", "price_yen": 900}]}"#;

async fn store_session(fleet: &TestFleet, store: &str) -> anyhow::Result<String> {
    let body = json!({"scope": format!("store:{store}")}).to_string();
    let (status, text) = fleet.api("POST", "/api/v1/keys", Some(&body)).await?;
    anyhow::ensure!(status == 201, "{text}");
    let key = serde_json::from_str::<Value>(&text)?["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let form = format!("key={key}&next=%2Fstore");
    let res = http_raw(
        fleet.http(),
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    )
    .await?;
    res.header("set-cookie")
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no session: {}", res.body))
}

async fn post_json(
    addr: SocketAddr,
    path: &str,
    cookie: &str,
    body: &Value,
) -> anyhow::Result<HttpResponse> {
    let text = body.to_string();
    http_raw(
        addr,
        "POST",
        path,
        &[("Cookie", cookie), ("Content-Type", "application/json")],
        Some(text.as_bytes()),
    )
    .await
}

fn field_of(text: &str) -> String {
    serde_json::from_str::<Value>(text).map_or_else(
        |_| String::new(),
        |v| v["error"]["field"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_style_is_stored_and_round_trips_and_a_bad_one_is_refused_by_name() -> anyhow::Result<()>
{
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(CATALOG))
        .await?;
    assert_eq!(status, 200, "{text}");
    let (status, got) = fleet.api("GET", "/api/v1/catalog/brand-a", None).await?;
    assert_eq!(status, 200, "{got}");
    let v: Value = serde_json::from_str(&got)?;
    let style_of = |v: &Value, sku: &str| {
        v["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["sku"] == sku))
            .map(|i| i["style"].clone())
    };
    assert_eq!(style_of(&v, "TEE-WHT-L"), Some(json!("TEE-1")), "{got}");
    assert_eq!(style_of(&v, "CAP-WOOL"), Some(json!("CAP-1")), "{got}");
    assert_eq!(style_of(&v, "SOCK-PLAIN"), Some(Value::Null), "{got}");
    // What GET answered, PUT takes back unchanged.
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(&got))
        .await?;
    assert_eq!(status, 200, "{text}");
    let (_, again) = fleet.api("GET", "/api/v1/catalog/brand-a", None).await?;
    assert_eq!(serde_json::from_str::<Value>(&again)?, v);
    // A PUT without the style clears it: the entry is replaced.
    let plain = r#"{"items": [{"sku": "CAP-WOOL", "category": "hats", "price_yen": 3900}]}"#;
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(plain))
        .await?;
    assert_eq!(status, 200, "{text}");
    let (_, now) = fleet.api("GET", "/api/v1/catalog/brand-a", None).await?;
    let now: Value = serde_json::from_str(&now)?;
    assert_eq!(style_of(&now, "CAP-WOOL"), Some(Value::Null), "{now}");

    for bad in ["tee-1", "", "TEE 1", &"X".repeat(65)] {
        let body = json!({"items": [
            {"sku": "HAT-1", "category": "hats", "price_yen": 100},
            {"sku": "HAT-2", "category": "hats", "price_yen": 100, "style": bad}]});
        let (status, text) = fleet
            .api("PUT", "/api/v1/catalog/brand-a", Some(&body.to_string()))
            .await?;
        assert_eq!(
            (status, field_of(&text)),
            (422, "items[1].style".to_owned()),
            "{bad:?}: {text}"
        );
    }
    // Nothing of a refused catalogue was stored.
    let (_, after) = fleet.api("GET", "/api/v1/catalog/brand-a", None).await?;
    assert!(!after.contains("HAT-1"), "{after}");
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_is_for_a_variant_of_the_returned_style_everywhere() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let addr = fleet.http();
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(CATALOG))
        .await?;
    assert_eq!(status, 200, "{text}");
    let recent = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let orders = json!({"orders": [{"ref": "ORD-7", "customer_ref": "C-7", "ordered_at": recent,
        "lines": [{"sku": "TEE-WHT-M", "qty": 3}, {"sku": "SOCK-PLAIN", "qty": 1}]}]});
    let (status, text) = fleet
        .api("PUT", "/api/v1/orders/brand-a", Some(&orders.to_string()))
        .await?;
    assert_eq!(status, 200, "{text}");
    let store = store_session(&fleet, "st-ginza").await?;

    // The picker's list: the other sellable variants of the style, nothing else.
    let found = http_raw(
        addr,
        "GET",
        "/ui/store/orders?q=C-7",
        &[("Cookie", &store)],
        None,
    )
    .await?;
    assert_eq!(found.status, 200, "{}", found.body);
    let found: Value = serde_json::from_str(&found.body)?;
    assert_eq!(found[0]["lines"][0]["sku"], "TEE-WHT-M", "{found}");
    assert_eq!(
        found[0]["lines"][0]["variants"],
        json!(["TEE-BLK-M", "TEE-WHT-L"]),
        "{found}"
    );
    assert_eq!(found[0]["lines"][1]["variants"], json!([]), "{found}");
    // Without the store's session there is no list.
    let anon = http_raw(addr, "GET", "/ui/store/orders?q=C-7", &[], None).await?;
    assert_eq!(anon.status, 401, "{}", anon.body);

    let counter = |sku: &str, exchange: &str| {
        json!({"merchant": "brand-a", "order_ref": "ORD-7", "resolution": "exchange",
               "exchange_sku": exchange,
               "lines": [{"sku": sku, "qty": 1, "reason": "too_small"}]})
    };
    for wanted in ["CAP-WOOL", "SOCK-PLAIN"] {
        let res = post_json(
            addr,
            "/ui/store/returns",
            &store,
            &counter("TEE-WHT-M", wanted),
        )
        .await?;
        assert_eq!(
            (res.status, field_of(&res.body)),
            (422, "exchange_sku".to_owned()),
            "{}",
            res.body
        );
        assert!(res.body.contains("style TEE-1"), "{}", res.body);
    }
    let res = post_json(
        addr,
        "/ui/store/returns",
        &store,
        &counter("TEE-WHT-M", "TEE-WHT-L"),
    )
    .await?;
    assert_eq!(res.status, 201, "{}", res.body);
    // A SKU without a style keeps the catalogue rule: any sellable product.
    let res = post_json(
        addr,
        "/ui/store/returns",
        &store,
        &counter("SOCK-PLAIN", "CAP-WOOL"),
    )
    .await?;
    assert_eq!(res.status, 201, "{}", res.body);

    // The merchant API and the store route share the rule.
    let api = |exchange: &str| {
        json!({"merchant": "brand-a", "origin": {"postal_code": "812-0011"},
               "resolution": "exchange", "exchange_sku": exchange,
               "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]})
    };
    let store_route = |exchange: &str| {
        json!({"merchant": "brand-a", "resolution": "exchange", "exchange_sku": exchange,
               "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]})
    };
    for (path, body) in [
        ("/api/v1/returns", api("CAP-WOOL")),
        ("/api/v1/stores/st-ginza/returns", store_route("CAP-WOOL")),
    ] {
        let (status, text) = fleet.api("POST", path, Some(&body.to_string())).await?;
        assert_eq!(
            (status, field_of(&text)),
            (422, "exchange_sku".to_owned()),
            "{path}: {text}"
        );
        assert!(text.contains("style TEE-1"), "{text}");
    }
    for (path, body) in [
        ("/api/v1/returns", api("TEE-BLK-M")),
        ("/api/v1/stores/st-ginza/returns", store_route("TEE-WHT-L")),
    ] {
        let (status, text) = fleet.api("POST", path, Some(&body.to_string())).await?;
        assert_eq!(status, 201, "{path}: {text}");
    }
    fleet.shutdown().await;
    Ok(())
}
