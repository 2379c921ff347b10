//! `lag_ops` (GET /api/v1/sites and /metrics) never claims an offline site is caught up: ops it
//! records while nobody hears from it are unknown here, so the lag is null with a reason.

use std::time::Duration;

use modori_shared::domain::Sku;
use modori_tests::{http_get, wait_for, TestFleet};

const TIMEOUT: Duration = Duration::from_secs(30);

async fn site_view(fleet: &TestFleet, site: &str) -> anyhow::Result<serde_json::Value> {
    let (status, body) = fleet.api("GET", "/api/v1/sites", None).await?;
    anyhow::ensure!(status == 200, "{status}: {body}");
    let sites: Vec<serde_json::Value> = serde_json::from_str(&body)?;
    sites
        .into_iter()
        .find(|s| s["id"] == site)
        .ok_or_else(|| anyhow::anyhow!("no site {site} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_site_has_no_lag_of_zero() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    let site = fleet.site(0).id.to_string();
    for _ in 0..3 {
        fleet
            .agent(0)
            .receive_unit(None, Sku::new("TEE-WHT-M")?, "B-7")
            .await?;
    }
    let agent = fleet.agent(0);
    wait_for("site 0 synced", TIMEOUT, || {
        let agent = agent.clone();
        async move {
            let s = agent.status().await?;
            Ok(s.connected && s.outbox_pending == 0)
        }
    })
    .await?;
    let f = &fleet;
    let s = &site;
    wait_for("lag 0 while online", TIMEOUT, || async move {
        let view = site_view(f, s).await?;
        Ok(view["online"] == true && view["lag_ops"] == 0)
    })
    .await?;

    // Offline, the site goes on recording: the coordinator cannot know how many.
    fleet.stop_agent(0).await;
    let f = &fleet;
    wait_for("site 0 offline", TIMEOUT, || async move {
        Ok(site_view(f, s).await?["online"] == false)
    })
    .await?;
    let view = site_view(&fleet, &site).await?;
    assert!(view["lag_ops"].is_null(), "{view}");
    let reason = view["lag_ops_unknown"].as_str().unwrap_or_default();
    assert!(reason.contains("offline"), "{view}");
    let (_, metrics) = http_get(fleet.http(), "/metrics").await?;
    let series = format!("modori_site_lag_ops{{site=\"{site}\"}}");
    assert!(
        !metrics.lines().any(|l| l.starts_with(&series)),
        "a stale lag gauge for an offline site: {metrics}"
    );
    Ok(())
}
