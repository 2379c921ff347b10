//! Hostile input at the returns API: every quantity, list and string is bounded (the largest
//! return the schema allows is taken, one unit more is refused), every refusal comes before
//! anything is stored (a retry of the corrected request is a 201, not a 409), and capacity
//! and load count units.

use modori_shared::domain::{LINE_QTY_MAX, RETURN_LINES_MAX, RETURN_UNITS_MAX};
use modori_tests::{small_fleet, TestFleet};
use serde_json::{json, Value};

fn error(text: &str) -> (String, String) {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (
        v["error"]["code"].as_str().unwrap_or_default().to_owned(),
        v["error"]["field"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn n_returns(fleet: &TestFleet) -> anyhow::Result<i64> {
    Ok(fleet
        .coordinator()
        .ctx()
        .db
        .call(|c| {
            c.query_row("SELECT COUNT(*) FROM returns", [], |r| r.get::<_, i64>(0))
                .map_err(modori_coordinator::store::StoreError::from)
        })
        .await?)
}

fn lines(n_lines: usize, qty: u32) -> Value {
    (0..n_lines)
        .map(|i| json!({"sku": format!("SKU-{i}"), "qty": qty, "reason": "too_small"}))
        .collect()
}

async fn post(fleet: &TestFleet, path: &str, body: &Value) -> anyhow::Result<(u16, String)> {
    fleet.api("POST", path, Some(&body.to_string())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_quantity_and_list_is_bounded_and_a_refusal_stores_nothing() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let here = fleet.site(0).location;
    let origin = json!({"latitude": here.lat(), "longitude": here.lon()});
    let refused = [
        (lines(1, LINE_QTY_MAX + 1), "lines[0].qty"),
        (lines(1, i32::MAX as u32), "lines[0].qty"),
        (lines(1, 0), "lines[0].qty"),
        (lines(RETURN_LINES_MAX + 1, 1), "lines"),
        (lines(0, 1), "lines"),
    ];
    for (i, (lines, field)) in refused.into_iter().enumerate() {
        let body = json!({"rma": format!("RMA-BIG-{i}"), "origin": origin, "lines": lines});
        let (status, text) = post(&fleet, "/api/v1/returns", &body).await?;
        assert_eq!(status, 422, "{field}: {text}");
        assert_eq!(
            error(&text),
            ("invalid_field".into(), field.into()),
            "{text}"
        );
        let (status, _) = fleet
            .api("GET", &format!("/api/v1/returns/RMA-BIG-{i}"), None)
            .await?;
        assert_eq!(status, 404, "{field}: nothing stored");
    }
    // A store's registration is bounded the same way.
    let body = json!({"rma": "RMA-BIG-STORE", "merchant": "brand-a",
                      "lines": lines(1, LINE_QTY_MAX + 1)});
    let (status, text) = post(&fleet, "/api/v1/stores/st-ginza/returns", &body).await?;
    assert_eq!(status, 422, "{text}");
    assert_eq!(error(&text).1, "lines[0].qty", "{text}");
    assert_eq!(n_returns(&fleet).await?, 0);

    // The largest return the schema allows is taken, and fills the site by its units.
    assert_eq!(
        u64::from(RETURN_UNITS_MAX),
        RETURN_LINES_MAX as u64 * u64::from(LINE_QTY_MAX)
    );
    let body = json!({"rma": "RMA-LARGEST", "origin": origin,
                      "lines": lines(RETURN_LINES_MAX, LINE_QTY_MAX)});
    let (status, text) = post(&fleet, "/api/v1/returns", &body).await?;
    assert_eq!(status, 201, "{text}");
    let body = json!({"rma": "RMA-ONE", "origin": origin, "lines": lines(1, 1)});
    let (status, text) = post(&fleet, "/api/v1/returns", &body).await?;
    assert_eq!(status, 201, "{text}");
    let routed: Value = serde_json::from_str(&text)?;
    assert_eq!(
        routed["candidates"][0]["routed_today"],
        json!(RETURN_UNITS_MAX),
        "load counts units: {routed}"
    );
    // Sapporo takes 2,500 units a day: another 2,000-unit return does not fit any more.
    let capacity = fleet.site(0).daily_capacity_units;
    assert!(capacity < 2 * RETURN_UNITS_MAX + 1, "{capacity}");
    let body = json!({"rma": "RMA-SECOND-LARGEST", "origin": origin,
                      "lines": lines(RETURN_LINES_MAX, LINE_QTY_MAX)});
    let (status, text) = post(&fleet, "/api/v1/returns", &body).await?;
    assert_eq!((status, error(&text).0), (422, "no_site".into()), "{text}");
    assert!(text.contains("full today"), "{text}");
    assert_eq!(n_returns(&fleet).await?, 2);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postal_code_the_label_cannot_print_is_refused_before_anything_is_stored(
) -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    for (i, bad) in ["060\n0001", "060\t0001", "060-0001\r"]
        .into_iter()
        .enumerate()
    {
        let rma = format!("RMA-CTRL-{i}");
        let body = json!({"rma": rma, "origin": {"postal_code": bad},
                          "lines": lines(1, 1)});
        let (status, text) = post(&fleet, "/api/v1/returns", &body).await?;
        assert_eq!(status, 422, "{bad:?}: {text}");
        assert_eq!(
            error(&text),
            ("invalid_field".into(), "origin.postal_code".into()),
            "{text}"
        );
        let (status, _) = fleet
            .api("GET", &format!("/api/v1/returns/{rma}"), None)
            .await?;
        assert_eq!(status, 404, "{bad:?}: nothing stored");
        // Corrected, the same RMA is registered: nothing of the refused one was kept.
        let body = json!({"rma": rma, "origin": {"postal_code": "060-0001"},
                          "lines": lines(1, 1)});
        let (status, text) = post(&fleet, "/api/v1/returns", &body).await?;
        assert_eq!(status, 201, "{text}");
    }
    assert_eq!(n_returns(&fleet).await?, 3);
    // A wrong origin is named by its own field, not as the whole origin.
    for (origin, field) in [
        (json!({"postal_code": null}), "origin.postal_code"),
        (json!({"postal_code": 530}), "origin.postal_code"),
        (json!({"store_id": null}), "origin.store_id"),
        (json!({"latitude": 35.0}), "origin.longitude"),
        (
            json!({"latitude": "35", "longitude": 139.0}),
            "origin.latitude",
        ),
        (
            json!({"store_id": "st-ginza", "postal_code": "060-0001"}),
            "origin",
        ),
    ] {
        let body = json!({"origin": origin, "lines": lines(1, 1)});
        let (status, text) = post(&fleet, "/api/v1/returns", &body).await?;
        assert_eq!(status, 422, "{origin}: {text}");
        assert_eq!(error(&text).1, field, "{origin}: {text}");
    }
    let body = json!({"origin": {"postal_code": "060-0001", "colour": 1}, "lines": lines(1, 1)});
    let (status, text) = post(&fleet, "/api/v1/returns", &body).await?;
    assert_eq!(
        (status, error(&text).1),
        (422, "origin.colour".into()),
        "{text}"
    );
    assert_eq!(n_returns(&fleet).await?, 3);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_with_every_decimal_is_labelled_rounded_and_whole_numbers_count_as_integers(
) -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    // A point as a phone reports it (sixteen significant digits), a quantity written `2.0`.
    let body = json!({"rma": "RMA-POINT-1",
        "origin": {"latitude": 35.681_236_123_456_8, "longitude": -139.767_125_123_456_8},
        "lines": [{"sku": "A", "qty": 2.0, "reason": "other"}]});
    let (status, text) = post(&fleet, "/api/v1/returns", &body).await?;
    assert_eq!(status, 201, "{text}");
    let routed: Value = serde_json::from_str(&text)?;
    assert_eq!(
        routed["label"]["from"], "point:35.68124,-139.76713",
        "{routed}"
    );
    // A real fraction is still refused, at its field.
    let body = json!({"rma": "RMA-POINT-2", "origin": {"latitude": 35.0, "longitude": 139.0},
        "lines": [{"sku": "A", "qty": 2.5, "reason": "other"}]});
    let (status, text) = post(&fleet, "/api/v1/returns", &body).await?;
    assert_eq!(
        (status, error(&text)),
        (422, ("invalid_field".into(), "lines[0].qty".into())),
        "{text}"
    );
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_too_long_is_a_json_414_at_any_length() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let key = format!("Bearer {}", fleet.ops_key);
    // Past the router's limit, past hyper's own (65,534 bytes), and far past both.
    for n in [9_000, 70_000, 100_000] {
        let path = format!("/api/v1/returns/{}", "A".repeat(n));
        let res = modori_tests::http_raw(
            fleet.http(),
            "GET",
            &path,
            &[("Authorization", key.as_str())],
            None,
        )
        .await?;
        assert_eq!(res.status, 414, "{n}: {}", res.body);
        assert_eq!(res.header("content-type"), Some("application/json"), "{n}");
        let v: Value = serde_json::from_str(&res.body)?;
        assert_eq!(
            (v["error"]["status"].as_u64(), v["error"]["code"].as_str()),
            (Some(414), Some("uri_too_long")),
            "{n}: {v}"
        );
    }
    // The server keeps answering.
    let (status, _) = fleet.api("GET", "/api/v1/sites", None).await?;
    assert_eq!(status, 200);
    fleet.shutdown().await;
    Ok(())
}
