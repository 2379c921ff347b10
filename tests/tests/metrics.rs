//! Metrics an operator watches: the agent's sync position and catch-up on its local port, the
//! coordinator's applied ops and lag per site.

use std::time::Duration;

use modori_agent::Agent;
use modori_shared::domain::Sku;
use modori_tests::{http_get, wait_for, TestFleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_and_coordinator_export_sync_metrics() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    fleet.stop_agent(0).await;
    let mut config = fleet.agent_config(0);
    config.metrics.listen = Some("127.0.0.1:0".parse()?);
    let agent = Agent::start(config).await?;
    let addr = agent.metrics_addr().expect("metrics enabled");
    for _ in 0..3 {
        agent
            .handle()
            .receive_unit(None, Sku::new("CAP-WOOL-F")?, "B")
            .await?;
    }
    wait_for(
        "agent metrics show the acks",
        Duration::from_secs(20),
        || async move {
            let (_, text) = http_get(addr, "/metrics").await?;
            Ok(text.contains("modori_agent_ops_acked_total 3"))
        },
    )
    .await?;
    let (status, text) = http_get(addr, "/metrics").await?;
    assert_eq!(status, 200);
    for needle in [
        "modori_agent_outbox_pending 0",
        "modori_agent_outbox_head_seq 3",
        "modori_agent_connected 1",
        "modori_agent_connects_total 1",
        "modori_agent_catch_up_estimated_seconds",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }

    let site = fleet.site(0).id.to_string();
    let _ = fleet.api("GET", "/api/v1/sites", None).await?;
    let (status, text) = http_get(fleet.http(), "/metrics").await?;
    assert_eq!(status, 200);
    let applied = format!("modori_ops_applied_total{{site=\"{site}\"}} 3");
    assert!(text.contains(&applied), "{applied} missing from:\n{text}");
    assert!(
        text.contains(&format!("modori_site_lag_ops{{site=\"{site}\"}} 0")),
        "{text}"
    );
    assert!(text.contains("modori_sites_online 9"), "{text}");
    agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}
