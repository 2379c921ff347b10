//! The link's trust rules: only certificates of the fleet CA get in.

use std::time::Duration;

use modori_agent::Agent;
use modori_coordinator::local::ensure_pki;
use modori_coordinator::pki::PkiPaths;
use modori_shared::domain::Sku;
use modori_tests::{coordinator_count, TestFleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_with_a_certificate_from_another_ca_is_refused() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    // Same site name, but its certificate comes from a CA the coordinator does not trust.
    fleet.stop_agent(0).await;
    let rogue = PkiPaths::new(fleet.dir.path().join("rogue-pki"));
    ensure_pki(&rogue, &fleet.fleet.sites)?;
    let mut config = fleet.agent_config(0);
    config.tls.cert = rogue.site_cert(&fleet.site(0).id);
    config.tls.key = rogue.site_key(&fleet.site(0).id);
    config.storage.data_dir = fleet.dir.path().join("rogue-site");
    config.ctl.socket = Some(fleet.dir.path().join("rogue-site").join("ctl.sock"));
    let rogue_agent = Agent::start(config).await?;
    rogue_agent
        .handle()
        .receive_unit(None, Sku::new("X-1")?, "B")
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let status = rogue_agent.handle().status().await?;
    assert!(!status.connected);
    assert_eq!(status.n_connects, 0, "the handshake must never complete");
    assert!(status.last_error.is_some(), "{status:?}");
    let site = fleet.site(0).id.to_string();
    assert_eq!(
        coordinator_count(
            fleet.coordinator(),
            "SELECT COUNT(*) FROM ops WHERE site = ?1",
            &site
        )
        .await?,
        0
    );
    assert!(fleet
        .coordinator()
        .ctx()
        .live
        .get(&fleet.site(0).id)
        .connection
        .is_none());
    rogue_agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}
