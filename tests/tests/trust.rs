//! The link's trust rules: only certificates of the fleet CA get in.

use std::time::Duration;

use modori_agent::Agent;
use modori_coordinator::pki::PkiPaths;
use modori_demo::local::ensure_pki;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_site_is_cut_off_and_refused_until_reinstated() -> anyhow::Result<()> {
    use modori_coordinator::revocation::Revoked;
    use modori_tests::wait_for;

    let fleet = TestFleet::start().await?;
    let site = fleet.site(0).id.clone();
    let agent = fleet.agent(0);
    let other = fleet.agent(1);
    wait_for("site 0 online", Duration::from_secs(20), || {
        let agent = agent.clone();
        async move { Ok(agent.status().await?.connected) }
    })
    .await?;

    fleet.coordinator().revoke(Revoked {
        sites: [site.clone()].into(),
        ..Revoked::default()
    });
    wait_for("site 0 cut off", Duration::from_secs(20), || {
        let agent = agent.clone();
        async move { Ok(!agent.status().await?.connected) }
    })
    .await?;
    let connects = agent.status().await?.n_connects;
    agent.receive_unit(None, Sku::new("X-1")?, "B").await?;
    // Reconnect attempts keep failing in the TLS handshake.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = agent.status().await?;
    assert_eq!(status.n_connects, connects, "{status:?}");
    assert!(!status.connected);
    assert_eq!(status.outbox_pending, 1, "the site keeps working offline");
    assert!(other.status().await?.connected, "other sites are untouched");

    fleet.coordinator().revoke(Revoked::default());
    wait_for("site 0 back and synced", Duration::from_secs(30), || {
        let agent = agent.clone();
        async move {
            let s = agent.status().await?;
            Ok(s.connected && s.outbox_pending == 0)
        }
    })
    .await?;
    assert_eq!(
        coordinator_count(
            fleet.coordinator(),
            "SELECT COUNT(*) FROM ops WHERE site = ?1",
            site.as_str()
        )
        .await?,
        1
    );
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_naming_another_site_are_anomalies_not_effects() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    // An agent configured as site 0 but holding site 1's certificate.
    fleet.stop_agent(1).await;
    let mut config = fleet.agent_config(0);
    config.tls.cert = fleet.pki.site_cert(&fleet.site(1).id);
    config.tls.key = fleet.pki.site_key(&fleet.site(1).id);
    config.storage.data_dir = fleet.dir.path().join("impostor");
    config.ctl.socket = Some(fleet.dir.path().join("impostor").join("ctl.sock"));
    let impostor = Agent::start(config).await?;
    for _ in 0..3 {
        impostor
            .handle()
            .receive_unit(None, Sku::new("X-1")?, "B")
            .await?;
    }
    let c = fleet.coordinator();
    let (claimed, actual) = (fleet.site(0).id.to_string(), fleet.site(1).id.to_string());
    modori_tests::wait_for("impersonation anomalies", Duration::from_secs(20), || {
        let actual = actual.clone();
        async move {
            Ok(coordinator_count(
                c,
                "SELECT COUNT(*) FROM anomalies WHERE site = ?1 AND kind = 'impersonation'",
                &actual,
            )
            .await?
                == 3)
        }
    })
    .await?;
    // The stream advanced (ops are facts) but nothing was applied to either site's units.
    assert_eq!(
        coordinator_count(c, "SELECT COUNT(*) FROM ops WHERE site = ?1", &actual).await?,
        3
    );
    assert_eq!(
        coordinator_count(c, "SELECT COUNT(*) FROM units WHERE site = ?1", &actual).await?,
        0
    );
    assert_eq!(
        coordinator_count(c, "SELECT COUNT(*) FROM units WHERE site = ?1", &claimed).await?,
        0
    );
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM anomalies WHERE site = ?1 AND kind = 'hello_site_mismatch'",
            &actual
        )
        .await?,
        1
    );
    assert_eq!(
        impostor.handle().status().await?.outbox_pending,
        0,
        "acknowledged, not blocked"
    );
    impostor.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}
