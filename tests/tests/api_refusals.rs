//! Validate, then store: every write route of the API is sent a request it refuses (4xx), and
//! the coordinator's database reads back unchanged, table by table. Requests whose first items
//! are good and whose last one is wrong show that no part of a batch is kept.

use modori_tests::{small_fleet, TestFleet};

/// Every table's name and row count.
async fn tables(fleet: &TestFleet) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(fleet
        .coordinator()
        .ctx()
        .db
        .call(|c| {
            let names: Vec<String> = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut counts = Vec::new();
            for name in names {
                let n: i64 = c.query_row(&format!("SELECT COUNT(*) FROM \"{name}\""), [], |r| {
                    r.get(0)
                })?;
                counts.push((name, n));
            }
            Ok::<_, modori_coordinator::store::StoreError>(counts)
        })
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_route_refuses_before_it_stores() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    // The site's own syncing would change the tables under the test.
    fleet.stop_agent(0).await;
    let site = fleet.fleet.sites[0].id.to_string();
    let good_item = r#"{"sku": "TEE-1", "category": "tops", "price_yen": 100}"#;
    let good_line = r#"{"sku": "TEE-1", "qty": 1, "reason": "other"}"#;
    let cases: Vec<(&str, String, Option<String>)> = vec![
        (
            "PUT",
            "/api/v1/catalog/brand-a".into(),
            Some(format!(
                r#"{{"items": [{good_item}, {{"sku": "TEE-2", "gtin": "4901234567890",
                    "category": "tops", "price_yen": 100}}]}}"#
            )),
        ),
        (
            "PUT",
            "/api/v1/orders/brand-a".into(),
            Some(
                r#"{"orders": [{"ref": "ORD-1", "ordered_at": "2026-11-01T00:00:00Z",
                    "lines": [{"sku": "TEE-1", "qty": 1}]},
                   {"ref": "ORD 2", "ordered_at": "2026-11-01T00:00:00Z",
                    "lines": [{"sku": "TEE-1", "qty": 1}]}]}"#
                    .into(),
            ),
        ),
        (
            "PUT",
            "/api/v1/orders/brand-a".into(),
            Some(
                r#"{"orders": [{"ref": "ORD-1", "ordered_at": "2026-11-01T00:00:00Z",
                    "lines": [{"sku": "TEE-1", "qty": 1}],
                    "contact": {"email": "hanako@example.jp", "phone": "090-1234-5678"}},
                   {"ref": "ORD-2", "ordered_at": "2026-11-01T00:00:00Z",
                    "lines": [{"sku": "TEE-1", "qty": 1}],
                    "contact": {"email": "hanako@example.jp", "phone": "090-1234-5678",
                                "line_user_id": "U-not-an-id"}}]}"#
                    .into(),
            ),
        ),
        (
            "PUT",
            "/api/v1/notifications/brand-a/opt-out".into(),
            Some(r#"{"email": "hanako at example.jp", "opted_out": true}"#.into()),
        ),
        (
            "POST",
            "/api/v1/returns".into(),
            Some(format!(
                r#"{{"rma": "RMA-REFUSED-1", "origin": {{"store_id": "st-ginza"}},
                    "lines": [{good_line}, {{"sku": "TEE-1", "qty": 1, "reason": "meh"}}]}}"#
            )),
        ),
        (
            "POST",
            "/api/v1/stores/st-ginza/returns".into(),
            Some(format!(
                r#"{{"rma": "RMA-REFUSED-2", "merchant": "brand-a", "resolution": "exchange",
                    "lines": [{good_line}]}}"#
            )),
        ),
        ("POST", "/api/v1/returns/RMA-NONE/cancel".into(), None),
        ("POST", "/api/v1/returns/RMA-NONE/refund".into(), None),
        (
            "POST",
            "/api/v1/carrier-events".into(),
            Some(
                r#"{"carrier": "sim", "events": [
                    {"tracking": "123456789012", "status": "in_transit", "at_ms": 1},
                    {"tracking": "123456789012", "status": "lost", "at_ms": 2}]}"#
                    .into(),
            ),
        ),
        (
            "POST",
            "/api/v1/quarantine/LPN-NONE/match".into(),
            Some(r#"{"rma": "RMA-NONE"}"#.into()),
        ),
        (
            "DELETE",
            format!("/api/v1/customers/{}", "C".repeat(65)),
            None,
        ),
        (
            "POST",
            "/api/v1/keys".into(),
            Some(r#"{"scope": "store:st-nowhere", "label": "x"}"#.into()),
        ),
        ("DELETE", "/api/v1/keys/no-such-key".into(), None),
        (
            "PUT",
            format!("/api/v1/demand/{site}"),
            Some(r#"[{"sku": "TEE-1", "units": 3}, {"sku": "tee 2", "units": 1}]"#.into()),
        ),
        (
            "POST",
            "/api/v1/units/LPN-NONE/transfer".into(),
            Some(r#"{"to": "nowhere"}"#.into()),
        ),
        ("POST", "/api/v1/listings/NONE/sold".into(), None),
    ];
    let before = tables(&fleet).await?;
    for (method, path, body) in &cases {
        let (status, text) = fleet.api(method, path, body.as_deref()).await?;
        assert!(
            (400..500).contains(&status),
            "{method} {path}: {status} {text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(v["error"]["status"], status, "{method} {path}: {text}");
        let after = tables(&fleet).await?;
        assert_eq!(before, after, "{method} {path} stored something: {text}");
    }
    // Rebalancing is for ops: a merchant's request is refused and orders no move.
    let (status, text) = fleet
        .api(
            "POST",
            "/api/v1/keys",
            Some(r#"{"scope": "merchant:brand-a"}"#),
        )
        .await?;
    assert_eq!(status, 201, "{text}");
    let merchant = serde_json::from_str::<serde_json::Value>(&text)?["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let before = tables(&fleet).await?;
    let (status, text) = modori_tests::http_request_as(
        fleet.http(),
        Some(&merchant),
        "POST",
        "/api/v1/rebalance",
        None,
    )
    .await?;
    assert_eq!(status, 403, "{text}");
    assert_eq!(before, tables(&fleet).await?, "rebalance stored something");
    fleet.shutdown().await;
    Ok(())
}
