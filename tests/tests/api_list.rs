//! The returns list through the API: a search finds a return by each of its references, the
//! filters and the sort combine, pages are bounded, the CSV carries the same rows, a key
//! of a merchant sees only its returns, and a value that is not valid is refused by name.

use modori_tests::{http_raw, http_request_as, small_fleet, TestFleet};
use serde_json::{json, Value};

/// Registers a return of `merchant` for `customer` with order `order`; returns its RMA and
/// the tracking number of its label.
async fn register(
    fleet: &TestFleet,
    merchant: &str,
    customer: (&str, &str),
    order: &str,
) -> anyhow::Result<(String, String)> {
    let here = fleet.site(0).location;
    let body = json!({
        "merchant": merchant,
        "origin": {"latitude": here.lat(), "longitude": here.lon()},
        "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}],
        "customer": {"ref": customer.0, "name": customer.1},
        "order_ref": order,
    });
    let (status, text) = fleet
        .api("POST", "/api/v1/returns", Some(&body.to_string()))
        .await?;
    anyhow::ensure!(status == 201, "{text}");
    let v: Value = serde_json::from_str(&text)?;
    let text_of = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Ok((text_of(&v["rma"]), text_of(&v["label"]["tracking"])))
}

/// The RMAs of a list query, and its total.
async fn rmas(fleet: &TestFleet, query: &str) -> anyhow::Result<(Vec<String>, u64)> {
    let (status, text) = fleet
        .api("GET", &format!("/api/v1/returns?{query}"), None)
        .await?;
    anyhow::ensure!(status == 200, "{query}: {status} {text}");
    let v: Value = serde_json::from_str(&text)?;
    let rmas = v["returns"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["rma"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok((rmas, v["total"].as_u64().unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_search_filter_sort_page_and_export_returns() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(2)).await?;
    let (yamada, _) = register(&fleet, "brand-a", ("cust-1", "山田 太郎"), "ORD-100").await?;
    // Registered a moment apart, so newest first is one order.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (sato, _) = register(&fleet, "brand-a", ("cust-2", "佐藤 花子"), "ORD-200").await?;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (other, tracking) = register(&fleet, "brand-b", ("cust-3", "鈴木 一郎"), "ORD-300").await?;
    let (status, text) = fleet
        .api("POST", &format!("/api/v1/returns/{sato}/cancel"), None)
        .await?;
    anyhow::ensure!(status == 200, "{text}");

    // Newest first by default; each reference finds its return.
    assert_eq!(
        rmas(&fleet, "").await?,
        (vec![other.clone(), sato.clone(), yamada.clone()], 3)
    );
    for q in [
        "ORD-100".to_owned(),
        "cust-1".to_owned(),
        "%E5%B1%B1%E7%94%B0".to_owned(), // 山田, the start of the name
        yamada.clone(),
    ] {
        assert_eq!(
            rmas(&fleet, &format!("q={q}")).await?.0,
            std::slice::from_ref(&yamada),
            "{q}"
        );
    }
    anyhow::ensure!(!tracking.is_empty(), "no tracking number for {other}");
    assert_eq!(
        rmas(&fleet, &format!("q={tracking}")).await?.0,
        std::slice::from_ref(&other)
    );

    // Filters combine; a sort and pages.
    assert_eq!(
        rmas(&fleet, "status=cancelled").await?.0,
        std::slice::from_ref(&sato)
    );
    assert_eq!(
        rmas(&fleet, "merchant=brand-a&status=expected").await?.0,
        std::slice::from_ref(&yamada)
    );
    let site = fleet.site(0).id.to_string();
    assert_eq!(rmas(&fleet, &format!("site={site}")).await?.1, 3);
    assert_eq!(rmas(&fleet, "from=2000-01-01&to=2000-12-31").await?.1, 0);
    assert_eq!(rmas(&fleet, "from=2000-01-01&to=2999-12-31").await?.1, 3);
    assert_eq!(rmas(&fleet, "from=2999-01-01&to=2000-12-31").await?.1, 0);
    let (page, total) = rmas(&fleet, "sort=created&per_page=2&page=2").await?;
    assert_eq!((page, total), (vec![other.clone()], 3));

    // The CSV has the same rows as the list, with a header.
    let res = http_raw(
        fleet.http(),
        "GET",
        "/api/v1/returns.csv?merchant=brand-a&sort=created",
        &[("Authorization", &format!("Bearer {}", fleet.ops_key))],
        None,
    )
    .await?;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("x-total-count"), Some("2"));
    let lines: Vec<&str> = res.body.lines().collect();
    assert!(lines[0].starts_with("rma,status,site,"), "{}", lines[0]);
    assert_eq!(lines.len(), 3, "{}", res.body);
    assert!(
        lines[1].starts_with(&format!("{yamada},expected,")),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("山田 太郎"), "{}", lines[1]);

    // A merchant's key lists its own returns only.
    let (status, text) = fleet
        .api(
            "POST",
            "/api/v1/keys",
            Some(r#"{"scope": "merchant:brand-b"}"#),
        )
        .await?;
    anyhow::ensure!(status == 201, "{text}");
    let key: Value = serde_json::from_str(&text)?;
    let key = key["key"].as_str().unwrap_or_default();
    let (status, text) =
        http_request_as(fleet.http(), Some(key), "GET", "/api/v1/returns", None).await?;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text)?;
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["returns"][0]["rma"], other.as_str(), "{v}");
    let (status, _) = http_request_as(
        fleet.http(),
        Some(key),
        "GET",
        "/api/v1/returns?merchant=brand-a",
        None,
    )
    .await?;
    assert_eq!(status, 403);

    // What is not valid is refused, naming the field.
    for (query, field) in [
        ("status=lost", "status"),
        ("store=NOT_AN_ID", "store"),
        ("from=05%2F12%2F2026", "from"),
        ("from=2026-02-30", "from"),
        ("status=", "status"),
        ("sort=price", "sort"),
        ("per_page=201", "per_page"),
        ("page=0", "page"),
        ("colour=red", "query"),
    ] {
        let (status, text) = fleet
            .api("GET", &format!("/api/v1/returns?{query}"), None)
            .await?;
        assert_eq!(status, 422, "{query}: {text}");
        let v: Value = serde_json::from_str(&text)?;
        assert_eq!(v["error"]["field"], field, "{query}: {v}");
    }
    // A site or store that does not exist: nothing could match, so it is named as unknown.
    let (status, text) = fleet
        .api("GET", "/api/v1/returns?site=atlantis", None)
        .await?;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("\"site\""), "{text}");
    fleet.shutdown().await;
    Ok(())
}
