//! A coordinator and the nine real sites over loopback QUIC with real certificates: receipts
//! made at every site are applied exactly once at the centre, and every site receives and
//! persists the expected return routed to it.

use std::time::Duration;

use modori_agent::work;
use modori_shared::domain::{ReasonCode, ReturnLine, RmaId, Sku};
use modori_tests::{coordinator_count, http_get, wait_for, TestFleet};

const RECEIPTS_PER_SITE: u64 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_sites_sync_exactly_once_and_receive_commands() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    let n_sites = fleet.fleet.sites.len();
    assert_eq!(n_sites, 9);

    // One expected return routed to each site: the origin is the site itself.
    for (i, site) in fleet.fleet.sites.iter().enumerate() {
        let lines = vec![ReturnLine::new(
            Sku::new("TEE-WHT-M")?,
            1,
            ReasonCode::TooSmall,
        )?];
        let routed = fleet
            .coordinator()
            .register_return(
                RmaId::new(format!("RMA-E2E-{i}"))?,
                "test".into(),
                site.location,
                lines,
            )
            .await?;
        assert_eq!(routed.site, site.id, "{}", routed.explanation);
    }
    // Receipts at every site, concurrently with the commands flowing down.
    for i in 0..n_sites {
        let agent = fleet.agent(i);
        for _ in 0..RECEIPTS_PER_SITE {
            agent
                .receive_unit(None, Sku::new("SNK-RUN-27")?, "B-TEST")
                .await?;
        }
    }

    for i in 0..n_sites {
        let site = fleet.site(i).id.to_string();
        let agent = fleet.agent(i);
        wait_for(
            &format!("{site}: expected return persisted"),
            Duration::from_secs(30),
            || {
                let agent = agent.clone();
                async move {
                    let pending = agent
                        .db()
                        .call(|c| work::pending_expected_returns(c, 10))
                        .await?;
                    Ok(pending.len() == 1)
                }
            },
        )
        .await?;
        let c = fleet.coordinator();
        wait_for(
            &format!("{site}: all receipts applied"),
            Duration::from_secs(30),
            || {
                let site = site.clone();
                async move {
                    Ok(
                        coordinator_count(c, "SELECT COUNT(*) FROM ops WHERE site = ?1", &site)
                            .await?
                            >= RECEIPTS_PER_SITE,
                    )
                }
            },
        )
        .await?;
    }
    // Exactly once: no more rows than ops made, one unit per receipt, nothing anomalous.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..n_sites {
        let site = fleet.site(i).id.to_string();
        let c = fleet.coordinator();
        assert_eq!(
            coordinator_count(c, "SELECT COUNT(*) FROM ops WHERE site = ?1", &site).await?,
            RECEIPTS_PER_SITE
        );
        assert_eq!(
            coordinator_count(c, "SELECT COUNT(*) FROM units WHERE site = ?1", &site).await?,
            RECEIPTS_PER_SITE
        );
        assert_eq!(
            coordinator_count(c, "SELECT COUNT(*) FROM anomalies WHERE site = ?1", &site).await?,
            0
        );
        let status = fleet.agent(i).status().await?;
        assert_eq!(status.last_acked_seq, RECEIPTS_PER_SITE, "{site}");
        // The disposition rules every site gets, then its expected return.
        assert_eq!(status.last_applied_command_seq, 2, "{site}");
        assert_eq!(status.outbox_pending, 0, "{site}");
    }

    let (status, body) = fleet.api("GET", "/api/v1/sites", None).await?;
    assert_eq!(status, 200, "{body}");
    let sites: Vec<serde_json::Value> = serde_json::from_str(&body)?;
    assert_eq!(sites.len(), 9);
    for s in &sites {
        assert_eq!(s["online"], true, "{s}");
        assert_eq!(s["applied_seq"], RECEIPTS_PER_SITE, "{s}");
        assert_eq!(s["lag_ops"], 0, "{s}");
        assert!(
            s["last_seen"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{s}"
        );
        assert!(s["name"].as_str().is_some_and(|n| !n.is_empty()));
        // The fleet file names every site in Japanese too.
        assert!(
            s["name_ja"]
                .as_str()
                .is_some_and(|n| !n.is_ascii() && n.contains("返品センター")),
            "{s}"
        );
    }
    let (status, body) = http_get(fleet.http(), "/healthz").await?;
    assert_eq!((status, body.trim()), (200, "ok"));
    fleet.shutdown().await;
    Ok(())
}
