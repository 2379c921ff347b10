//! The HTTP API: registering a return routes it and sends it to the site; every error is JSON
//! naming the field; the OpenAPI document lists exactly the routes the router serves.

use std::collections::BTreeSet;
use std::time::Duration;

use modori_agent::work;
use modori_coordinator::http::API_BODY_BYTES_MAX;
use modori_tests::{coordinator_count, http_raw, http_request, wait_for, TestFleet};

/// The `error` object of a JSON error answer.
fn error_of(status: u16, text: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {status} {text}"));
    assert_eq!(v["error"]["status"], status, "{text}");
    assert!(v["error"]["code"].is_string(), "{text}");
    assert!(v["error"]["message"].is_string(), "{text}");
    v["error"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_from_a_store_is_routed_to_the_nearest_site() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    let body = r#"{"origin": {"store_id": "st-fukuoka-tenjin"},
                   "lines": [{"sku": "BAG-TOTE-BLK", "qty": 2, "reason": "changed_mind"}]}"#;
    let (status, text) = fleet.api("POST", "/api/v1/returns", Some(body)).await?;
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
    let (status, text) = fleet.api("POST", "/api/v1/returns", Some(&again)).await?;
    assert_eq!(status, 409, "{text}");
    assert_eq!(error_of(409, &text)["field"], "rma");
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_json_errors_naming_the_field_and_store_nothing() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(modori_tests::small_fleet(1)).await?;
    let line = |l: &str| format!(r#"{{"origin": {{"store_id": "st-ginza"}}, "lines": [{l}]}}"#);
    // (body, status, code, field, a word of the message)
    let cases = [
        (
            r#"{"origin": {"store_id": "st-nowhere"}, "lines": [{"sku": "A", "qty": 1, "reason": "other"}]}"#.to_owned(),
            404, "not_found", "origin.store_id", "st-nowhere",
        ),
        (
            r#"{"origin": {"latitude": 95, "longitude": 135}, "lines": [{"sku": "A", "qty": 1, "reason": "other"}]}"#.to_owned(),
            422, "invalid_field", "origin", "latitude",
        ),
        (line(""), 422, "invalid_field", "lines", "1..="),
        (line(r#"{"sku": "A", "qty": 0, "reason": "other"}"#), 422, "invalid_field", "lines[0].qty", "quantity"),
        (line(r#"{"sku": "A", "qty": -3, "reason": "other"}"#), 422, "invalid_field", "lines[0].qty", "invalid value"),
        (line(r#"{"sku": "A", "qty": "two", "reason": "other"}"#), 422, "invalid_field", "lines[0].qty", "invalid type"),
        (line(r#"{"sku": "A", "qty": 99999999999999999999999, "reason": "other"}"#), 422, "invalid_field", "lines[0].qty", ""),
        (line(r#"{"sku": "A", "qty": 1, "reason": "other"}, {"sku": "a b", "qty": 1, "reason": "other"}"#), 422, "invalid_field", "lines[1].sku", "sku"),
        (line(r#"{"sku": "A", "qty": 1, "reason": "meh"}"#), 422, "invalid_field", "lines[0].reason", "too_small"),
        (line(r#"{"sku": "A", "qty": 1}"#), 422, "invalid_field", "lines[0].reason", "missing field"),
        (r#"{"origin": {"store_id": "st-ginza"}, "lines": [], "colour": "red"}"#.to_owned(), 422, "invalid_field", "colour", "unknown field"),
        (r#"{"origin": {"store_id": "st-ginza"}}"#.to_owned(), 422, "invalid_field", "lines", "missing field"),
        (r#"{"origin": {"store_id": "st-ginza"}, "lines": [], "merchant": "Brand A"}"#.to_owned(), 422, "invalid_field", "merchant", "merchant"),
        (r#"{"origin": "#.to_owned(), 400, "invalid_json", "", "EOF"),
        (r#"{"lines": [{"sku": "A""#.to_owned(), 400, "invalid_json", "", "EOF"),
        (r#"{"origin": {"store_id": "st-ginza"}, "lines": []} x"#.to_owned(), 400, "invalid_json", "", "trailing"),
    ];
    for (body, status, code, field, word) in cases {
        let (got, text) = fleet.api("POST", "/api/v1/returns", Some(&body)).await?;
        assert_eq!(got, status, "{body} -> {text}");
        let e = error_of(status, &text);
        assert_eq!(e["code"], code, "{body} -> {text}");
        match field {
            "" => assert!(e.get("field").is_none(), "{body} -> {text}"),
            f => assert_eq!(e["field"], f, "{body} -> {text}"),
        }
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains(word)),
            "{body} -> {text}"
        );
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
        (
            r#"{"items": [{"sku": "A", "category": "x", "price_yen": 1.5}]}"#,
            "items[0].price_yen",
        ),
        (r#"{"items": []}"#, "items"),
    ];
    for (body, field) in catalog_cases {
        let (status, text) = fleet
            .api("PUT", "/api/v1/catalog/brand-a", Some(body))
            .await?;
        assert_eq!(status, 422, "{body} -> {text}");
        assert_eq!(error_of(422, &text)["field"], field, "{body} -> {text}");
    }
    // A path parameter that is not an id.
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/Brand%20A", Some(r#"{"items": []}"#))
        .await?;
    assert_eq!(status, 400, "{text}");
    let e = error_of(400, &text);
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str()),
        (Some("invalid_path"), Some("merchant"))
    );
    let (status, text) = fleet.api("GET", "/api/v1/returns/%FF%FE", None).await?;
    assert_eq!(status, 400, "{text}");
    assert_eq!(error_of(400, &text)["code"], "invalid_path");
    let (status, text) = fleet
        .api(
            "POST",
            "/api/v1/quarantine/LPN-X/match",
            Some(r#"{"rma": "RMA-1"}"#),
        )
        .await?;
    assert_eq!(status, 404, "{text}");
    assert_eq!(error_of(404, &text)["code"], "not_found");

    // What axum answers by itself is JSON too.
    let (status, text) = fleet.api("GET", "/api/v1/nothing", None).await?;
    assert_eq!(status, 404, "{text}");
    assert_eq!(error_of(404, &text)["code"], "route_not_found");
    let (status, text) = http_request(fleet.http(), "GET", "/nothing", None).await?;
    assert_eq!(
        (status, error_of(404, &text)["code"].clone()),
        (404, "route_not_found".into())
    );
    let key = format!("Bearer {}", fleet.ops_key);
    let res = http_raw(
        fleet.http(),
        "DELETE",
        "/api/v1/sites",
        &[("Authorization", &key)],
        None,
    )
    .await?;
    assert_eq!(res.status, 405, "{res:?}");
    assert_eq!(error_of(405, &res.body)["code"], "method_not_allowed");
    assert_eq!(res.header("allow"), Some("GET,HEAD"), "{res:?}");
    let body = r#"{"origin": {"store_id": "st-ginza"}, "lines": []}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut headers = vec![("Authorization", key.as_str())];
        headers.extend(content_type.map(|c| ("Content-Type", c)));
        let res = http_raw(
            fleet.http(),
            "POST",
            "/api/v1/returns",
            &headers,
            Some(body.as_bytes()),
        )
        .await?;
        assert_eq!(res.status, 415, "{content_type:?}: {res:?}");
        assert_eq!(error_of(415, &res.body)["code"], "unsupported_media_type");
    }
    let huge = vec![b' '; API_BODY_BYTES_MAX + 1];
    let res = http_raw(
        fleet.http(),
        "PUT",
        "/api/v1/catalog/brand-a",
        &[
            ("Authorization", &key),
            ("Content-Type", "application/json"),
        ],
        Some(&huge),
    )
    .await?;
    assert_eq!(res.status, 413, "{}", res.head);
    assert_eq!(error_of(413, &res.body)["code"], "body_too_large");

    // Health and metrics stay open; the API is still answering.
    assert_eq!(
        http_request(fleet.http(), "GET", "/healthz", None).await?.0,
        200
    );
    assert_eq!(
        http_request(fleet.http(), "GET", "/metrics", None).await?.0,
        200
    );
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

/// An example value for each path parameter.
fn fill(path: &str) -> String {
    path.replace("{rma}", "RMA-NOPE")
        .replace("{merchant}", "brand-a")
        .replace("{lpn}", "LPN-NOPE")
        .replace("{reference}", "C-NOPE")
        .replace("{id}", "1")
        .replace("{store_id}", "st-shibuya")
        .replace("{site}", "osaka")
        .replace("{quote_id}", "TQ-0000000000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_exactly_the_routes_served() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(modori_tests::small_fleet(1)).await?;
    // Served without a key, and the same document the code builds.
    let (status, text) = http_request(fleet.http(), "GET", "/api/v1/openapi.json", None).await?;
    assert_eq!(status, 200, "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(
        doc,
        serde_json::to_value(modori_coordinator::http::openapi())?
    );
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "{doc}"
    );
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    // Every route this project serves (README's table) is in the document.
    for path in [
        "/healthz",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/sites",
        "/api/v1/anomalies",
        "/api/v1/returns",
        "/api/v1/returns.csv",
        "/api/v1/returns/{rma}",
        "/api/v1/returns/{rma}/cancel",
        "/api/v1/catalog/{merchant}",
        "/api/v1/orders/{merchant}",
        "/api/v1/orders/{merchant}/{reference}",
        "/api/v1/notifications/{merchant}/opt-out",
        "/api/v1/quarantine",
        "/api/v1/quarantine/{lpn}/match",
        "/api/v1/customers/{reference}",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
        "/api/v1/stores/{store_id}/returns",
        "/api/v1/returns/{rma}/refund",
        "/api/v1/carrier-events",
        "/api/v1/analytics/reasons",
        "/api/v1/analytics/customers/{reference}",
        "/api/v1/demand/{site}",
        "/api/v1/rebalance",
        "/api/v1/units/{lpn}/transfer",
        "/api/v1/listings",
        "/api/v1/listings/{id}/sold",
        "/api/v1/billing/{merchant}",
        "/api/v1/billing/{merchant}/csv",
        "/api/v1/analytics/stores",
        "/api/v1/stores/{store_id}/waiting",
        "/api/v1/merchants/{merchant}/trade-in/prices",
        "/api/v1/merchants/{merchant}/trade-in/quotes",
        "/api/v1/merchants/{merchant}/trade-in/quotes/{quote_id}",
    ] {
        assert!(documented.contains(path), "{path} is not documented");
    }
    // Every documented operation is served (its answer is not the fallback's 404 nor a 405),
    // and every other method on a documented path is a 405: the router serves nothing on
    // these paths that the document does not describe.
    let key = format!("Bearer {}", fleet.ops_key);
    let mut n_operations = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "delete", "patch"] {
            let url = fill(path);
            let upper = method.to_ascii_uppercase();
            let res =
                http_raw(fleet.http(), &upper, &url, &[("Authorization", &key)], None).await?;
            let ctx = format!("{upper} {url}: {} {}", res.status, res.body);
            assert!(res.status < 500, "{ctx}");
            if item.get(method).is_some() {
                n_operations += 1;
                assert_ne!(res.status, 405, "{ctx}");
                if res.status >= 400 {
                    assert_ne!(
                        error_of(res.status, &res.body)["code"],
                        "route_not_found",
                        "{ctx}"
                    );
                }
                let op = &item[method];
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{ctx}"
                );
                if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                    assert_eq!(op["security"][0]["bearer"], serde_json::json!([]), "{ctx}");
                }
            } else {
                assert_eq!(res.status, 405, "{ctx}");
            }
        }
    }
    assert_eq!(n_operations, 52, "every operation was probed");
    fleet.shutdown().await;
    Ok(())
}
