//! The life of a return through the API: its timeline follows what its site does with the
//! units; a return nothing of which has arrived can be cancelled, and expires after
//! `returns.expire_after_days`; either way its site stops expecting it.

use std::time::Duration;

use modori_agent::work;
use modori_agent::AgentHandle;
use modori_runtime::clock;
use modori_shared::domain::{Disposition, Grade, Lpn, RmaId, Sku};
use modori_tests::{http_request_as, small_fleet, wait_for, TestFleet};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Registers a return of `merchant` at site 0 with the ops key; returns its RMA.
async fn register(fleet: &TestFleet, merchant: &str) -> anyhow::Result<String> {
    let here = fleet.site(0).location;
    let body = serde_json::json!({
        "merchant": merchant,
        "origin": {"latitude": here.lat(), "longitude": here.lon()},
        "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}],
    });
    let (status, text) = fleet
        .api("POST", "/api/v1/returns", Some(&body.to_string()))
        .await?;
    anyhow::ensure!(status == 201, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(v["rma"].as_str().unwrap_or_default().to_owned())
}

async fn expected_at_site(agent: &AgentHandle, rma: &str) -> anyhow::Result<bool> {
    let rma = rma.to_owned();
    let pending = agent
        .db()
        .call(|c| work::pending_expected_returns(c, 100))
        .await?;
    Ok(pending.iter().any(|p| p.rma.as_str() == rma))
}

async fn wait_expected(agent: &AgentHandle, rma: &str, expected: bool) -> anyhow::Result<()> {
    let what = format!("{rma} expected at the site: {expected}");
    wait_for(&what, TIMEOUT, || async move {
        Ok(expected_at_site(agent, rma).await? == expected)
    })
    .await
}

async fn view(fleet: &TestFleet, rma: &str) -> anyhow::Result<serde_json::Value> {
    let (status, text) = fleet
        .api("GET", &format!("/api/v1/returns/{rma}"), None)
        .await?;
    anyhow::ensure!(status == 200, "{text}");
    Ok(serde_json::from_str(&text)?)
}

fn kinds(v: &serde_json::Value) -> Vec<String> {
    v["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn cancel(fleet: &TestFleet, rma: &str) -> anyhow::Result<(u16, String)> {
    fleet
        .api("POST", &format!("/api/v1/returns/{rma}/cancel"), None)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_shows_what_the_site_did_with_the_units() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let rma = register(&fleet, "brand-a").await?;
    let agent = fleet.agent(0);
    wait_expected(&agent, &rma, true).await?;
    let v = view(&fleet, &rma).await?;
    assert_eq!(
        (v["status"].as_str(), v["merchant"].as_str()),
        (Some("expected"), Some("brand-a"))
    );
    assert_eq!(kinds(&v), ["registered"], "{v}");
    assert_eq!(v["lines"][0]["sku"], "TEE-WHT-M", "{v}");

    let receipt = agent
        .receive_unit(
            Some(RmaId::new(rma.clone())?),
            Sku::new("TEE-WHT-M")?,
            "B-0042",
        )
        .await?;
    let lpn: Lpn = receipt.lpn.clone();
    agent.grade_unit(lpn.clone(), Grade::A, "B-0042").await?;
    agent
        .dispose_unit(lpn.clone(), Disposition::Restock, "B-0042")
        .await?;
    wait_for("the site's ops in the timeline", TIMEOUT, || async {
        Ok(kinds(&view(&fleet, &rma).await?).len() == 4)
    })
    .await?;
    let v = view(&fleet, &rma).await?;
    assert_eq!(
        kinds(&v),
        [
            "registered",
            "unit_received",
            "unit_graded",
            "disposition_set"
        ],
        "{v}"
    );
    assert_eq!(v["status"], "receiving", "{v}");
    for e in &v["events"].as_array().expect("events")[1..] {
        assert_eq!(e["lpn"], lpn.as_str(), "{e}");
        assert_eq!(e["site"], fleet.site(0).id.as_str(), "{e}");
        assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    }
    assert_eq!(v["events"][2]["detail"], "grade A", "{v}");
    assert_eq!(v["events"][3]["detail"], "disposition restock", "{v}");
    // The merchant's own key sees the same.
    let (status, text) = fleet
        .api(
            "POST",
            "/api/v1/keys",
            Some(r#"{"scope": "merchant:brand-a"}"#),
        )
        .await?;
    assert_eq!(status, 201, "{text}");
    let created: serde_json::Value = serde_json::from_str(&text)?;
    let merchant_key = created["key"].as_str().unwrap_or_default().to_owned();
    let (status, text) = http_request_as(
        fleet.http(),
        Some(&merchant_key),
        "GET",
        &format!("/api/v1/returns/{rma}"),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    // Something of it arrived: too late to cancel.
    let (status, text) = cancel(&fleet, &rma).await?;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("receiving"), "{text}");
    let (status, _) = fleet.api("GET", "/api/v1/returns/RMA-NONE", None).await?;
    assert_eq!(status, 404);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_return_is_withdrawn_at_its_site() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let rma = register(&fleet, "brand-a").await?;
    let agent = fleet.agent(0);
    wait_expected(&agent, &rma, true).await?;
    let (status, text) = cancel(&fleet, &rma).await?;
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(v["status"], "cancelled");
    wait_expected(&agent, &rma, false).await?;
    // Cancelling again changes nothing; the timeline says who cancelled.
    assert_eq!(cancel(&fleet, &rma).await?.0, 200);
    let v = view(&fleet, &rma).await?;
    assert_eq!(v["status"], "cancelled", "{v}");
    assert_eq!(kinds(&v), ["registered", "cancelled"], "{v}");
    assert!(
        v["events"][1]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("API key cfg-")),
        "{v}"
    );
    // A parcel that still comes goes to quarantine at the site, its RMA kept as reference.
    let late = agent
        .receive_unit(
            Some(RmaId::new(rma.clone())?),
            Sku::new("TEE-WHT-M")?,
            "B-0042",
        )
        .await?;
    assert_eq!(
        late.receipt,
        modori_shared::station::ReceiptKind::Unidentified
    );
    let (status, text) = cancel(&fleet, "RMA-NONE").await?;
    assert_eq!(status, 404, "{text}");
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_nothing_of_which_arrives_expires() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let rma = register(&fleet, "brand-a").await?;
    let agent = fleet.agent(0);
    wait_expected(&agent, &rma, true).await?;
    let ctx = fleet.coordinator().ctx().clone();
    let days = i64::from(ctx.config.returns.expire_after_days);
    assert_eq!(days, 30, "the default");
    let day_ms = 86_400_000;
    assert_eq!(
        modori_coordinator::expire_returns(&ctx, clock::now_ms() + (days - 1) * day_ms).await?,
        0
    );
    assert_eq!(
        modori_coordinator::expire_returns(&ctx, clock::now_ms() + (days + 1) * day_ms).await?,
        1
    );
    let v = view(&fleet, &rma).await?;
    assert_eq!(v["status"], "expired", "{v}");
    assert_eq!(kinds(&v), ["registered", "expired"], "{v}");
    wait_expected(&agent, &rma, false).await?;
    let (status, text) = cancel(&fleet, &rma).await?;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("expired"), "{text}");
    fleet.shutdown().await;
    Ok(())
}
