//! The HTTP API: registering a return routes it and sends it to the site; bad requests get a
//! clear error naming the field, and nothing is stored.

use std::time::Duration;

use modori_agent::work;
use modori_tests::{coordinator_count, http_request, wait_for, TestFleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_from_a_store_is_routed_to_the_nearest_site() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    let body = r#"{"origin": {"store_id": "st-fukuoka-tenjin"},
                   "lines": [{"sku": "BAG-TOTE-BLK", "qty": 2, "reason": "changed_mind"}]}"#;
    let (status, text) = http_request(fleet.http(), "POST", "/api/v1/returns", Some(body)).await?;
    assert_eq!(status, 201, "{text}");
    let routed: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(routed["site"], "fukuoka", "{routed}");
    assert!(
        routed["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("km")),
        "{routed}"
    );
    let rma = routed["rma"].as_str().unwrap_or_default().to_owned();

    let i = fleet
        .fleet
        .sites
        .iter()
        .position(|s| s.id.as_str() == "fukuoka")
        .expect("fukuoka");
    let agent = fleet.agent(i);
    wait_for(
        "the expected return at the site",
        Duration::from_secs(20),
        || {
            let agent = agent.clone();
            let rma = rma.clone();
            async move {
                let pending = agent
                    .db()
                    .call(|c| work::pending_expected_returns(c, 10))
                    .await?;
                Ok(pending
                    .iter()
                    .any(|p| p.rma.as_str() == rma && p.skus.len() == 2))
            }
        },
    )
    .await?;

    let again = format!(
        r#"{{"rma": "{rma}", "origin": {{"latitude": 35.0, "longitude": 135.0}},
                             "lines": [{{"sku": "A", "qty": 1, "reason": "other"}}]}}"#
    );
    let (status, text) =
        http_request(fleet.http(), "POST", "/api/v1/returns", Some(&again)).await?;
    assert_eq!(status, 409, "{text}");
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_problem_and_store_nothing() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    let cases = [
        (
            r#"{"origin": {"store_id": "st-nowhere"}, "lines": [{"sku": "A", "qty": 1, "reason": "other"}]}"#,
            "st-nowhere",
        ),
        (
            r#"{"origin": {"latitude": 95, "longitude": 135}, "lines": [{"sku": "A", "qty": 1, "reason": "other"}]}"#,
            "latitude",
        ),
        (
            r#"{"origin": {"store_id": "st-ginza"}, "lines": []}"#,
            "lines",
        ),
        (
            r#"{"origin": {"store_id": "st-ginza"}, "lines": [{"sku": "A", "qty": 0, "reason": "other"}]}"#,
            "lines[0].qty",
        ),
        (
            r#"{"origin": {"store_id": "st-ginza"}, "lines": [{"sku": "a b", "qty": 1, "reason": "other"}]}"#,
            "lines[0].sku",
        ),
        (
            r#"{"origin": {"store_id": "st-ginza"}, "lines": [{"sku": "A", "qty": 1, "reason": "meh"}]}"#,
            "too_small",
        ),
        (
            r#"{"origin": {"store_id": "st-ginza"}, "lines": [], "colour": "red"}"#,
            "colour",
        ),
        (r#"{"origin": "#, "EOF"),
    ];
    for (body, needle) in cases {
        let (status, text) =
            http_request(fleet.http(), "POST", "/api/v1/returns", Some(body)).await?;
        assert_eq!(status, 400, "{body} -> {text}");
        assert!(text.contains(needle), "{body} -> {text}");
    }
    let catalog_cases = [
        (
            r#"{"items": [{"sku": "A", "gtin": "4901234567895", "category": "tops", "price_yen": 1}]}"#,
            "items[0].gtin",
        ),
        (
            r#"{"items": [{"sku": "A", "gtin": "RMA-0000000001-X", "category": "tops", "price_yen": 1}]}"#,
            "items[0].gtin",
        ),
        (
            r#"{"items": [{"sku": "a a", "category": "tops", "price_yen": 1}]}"#,
            "items[0].sku",
        ),
        (
            r#"{"items": [{"sku": "A", "category": "", "price_yen": 1}]}"#,
            "items[0].category",
        ),
        (r#"{"items": []}"#, "items"),
    ];
    for (body, needle) in catalog_cases {
        let (status, text) =
            http_request(fleet.http(), "PUT", "/api/v1/catalog/brand-a", Some(body)).await?;
        assert_eq!(status, 400, "{body} -> {text}");
        assert!(text.contains(needle), "{body} -> {text}");
    }
    let (status, text) = http_request(
        fleet.http(),
        "POST",
        "/api/v1/quarantine/LPN-X/match",
        Some(r#"{"rma": "RMA-1"}"#),
    )
    .await?;
    assert_eq!(status, 404, "{text}");
    let (status, text) = http_request(fleet.http(), "GET", "/api/v1/nothing", None).await?;
    assert_eq!(status, 404, "{text}");
    for site in &fleet.fleet.sites {
        let n = coordinator_count(
            fleet.coordinator(),
            "SELECT COUNT(*) FROM returns WHERE site = ?1",
            site.id.as_str(),
        )
        .await?;
        assert_eq!(n, 0);
    }
    fleet.shutdown().await;
    Ok(())
}
