//! One site's backlog never starves another: while site 0 drains a large outbox (recorded while
//! its agent was down), a single op recorded at site 1 is applied at the coordinator before
//! site 0's backlog is done. Proven from the coordinator's own `ops.applied_ms` column, not from
//! timing: when site 1's op was applied, site 0 had ops applied already but not all of them.
//! Then both sites drain completely and every op is applied exactly once.

use std::time::Duration;

use anyhow::bail;

use modori_agent::store::{self, StoreError};
use modori_agent::work::{self, Actor};
use modori_agent::AgentHandle;
use modori_coordinator::fleet::Fleet;
use modori_coordinator::Coordinator;
use modori_runtime::clock;
use modori_runtime::sqlite::Db;
use modori_shared::domain::{SiteId, Sku};
use modori_shared::station::{Effect, ReceiptKind};
use modori_tests::{assert_exactly_once, coordinator_count, real_fleet, wait_for, TestFleet};
use tokio::time::Instant;

/// Receipts waiting at site 0 when its agent comes back: ~100 batches of the default 512 ops.
/// The coordinator applies them fast (about a second for 50,000 on a 2-core debug build), so
/// the backlog is large enough that site 1 records well before the end of the drain.
const BACKLOG: u64 = 50_000;
const BACKLOGGED: usize = 0;
const OTHER: usize = 1;
const DRAIN_WITHIN: Duration = Duration::from_secs(45);

const OPS_SQL: &str = "SELECT COUNT(*) FROM ops WHERE site = ?1";
/// Ops of site ?1 applied no later than the first op of any other site. With a two-site fleet
/// where the other site records a single op, that is "applied by the time site 1's op was".
const APPLIED_NO_LATER_THAN_OTHER_SQL: &str = "SELECT COUNT(*) FROM ops WHERE site = ?1
     AND applied_ms <= (SELECT MIN(applied_ms) FROM ops WHERE site <> ?1)";

fn two_sites() -> Fleet {
    let mut fleet = real_fleet();
    fleet.sites.truncate(2);
    fleet
}

/// Writes `n` receipts straight into a stopped site's database, through the same store
/// function the agent uses (so each has its outbox op). Test setup only: fsync is off for speed.
async fn record_backlog(fleet: &TestFleet, i: usize, n: u64) -> anyhow::Result<()> {
    let config = fleet.agent_config(i);
    let db = Db::open(&config.db_path(), &store::migrations())?;
    let site = fleet.site(i).id.clone();
    let sku = Sku::new("SNK-RUN-27")?;
    db.call(move |c| {
        c.pragma_update(None, "synchronous", "OFF")?;
        let who = Actor::new("backlog", "test");
        let effect = Effect::Receive {
            rma: None,
            sku,
            receipt: ReceiptKind::Unidentified,
            parcel_ref: None,
        };
        for _ in 0..n {
            work::record(c, &site, &who, &effect, clock::now_ms())?;
        }
        c.pragma_update(None, "synchronous", "FULL")?;
        Ok::<_, StoreError>(())
    })
    .await?;
    Ok(())
}

/// Waits until the coordinator has applied part of `site`'s backlog. Polls the coordinator's
/// in-memory view every millisecond rather than with `wait_for`'s 50 ms: the later site 1
/// records, the less of the backlog is left to show that site 1 did not wait for it.
async fn wait_until_draining(c: &Coordinator, site: &SiteId) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRAIN_WITHIN;
    while c.ctx().live.get(site).applied_seq == 0 {
        if Instant::now() >= deadline {
            bail!("{site} did not start draining within {DRAIN_WITHIN:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn wait_synced(fleet: &TestFleet, agent: &AgentHandle) -> anyhow::Result<()> {
    let site = agent.site().to_string();
    let head = agent.status().await?.n_ops_recorded;
    wait_for(
        &format!("{site}: coordinator has all {head} ops"),
        DRAIN_WITHIN,
        || {
            let site = site.clone();
            async move { Ok(coordinator_count(fleet.coordinator(), OPS_SQL, &site).await? >= head) }
        },
    )
    .await?;
    wait_for(
        &format!("{site}: outbox acknowledged"),
        DRAIN_WITHIN,
        || {
            let agent = agent.clone();
            async move {
                let s = agent.status().await?;
                Ok(s.outbox_pending == 0 && s.retired_pending == 0)
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_at_one_site_does_not_starve_another() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(two_sites()).await?;
    let backlogged = fleet.site(BACKLOGGED).id.to_string();

    // Site 0 is down while its crew keeps receiving.
    fleet.stop_agent(BACKLOGGED).await;
    record_backlog(&fleet, BACKLOGGED, BACKLOG).await?;
    let other = fleet.agent(OTHER);
    wait_for("site 1 connected", DRAIN_WITHIN, || {
        let other = other.clone();
        async move { Ok(other.status().await?.connected) }
    })
    .await?;

    // Site 0 comes back and starts draining; as soon as the coordinator has applied some of
    // its backlog, site 1 records one op.
    fleet.restart_agent(BACKLOGGED).await?;
    let coordinator = fleet.coordinator();
    wait_until_draining(coordinator, &fleet.site(BACKLOGGED).id).await?;
    let draining = coordinator_count(coordinator, OPS_SQL, &backlogged).await?;
    assert!(
        draining < BACKLOG,
        "site 0 drained all {BACKLOG} ops before site 1 could even record; make BACKLOG bigger"
    );
    other
        .receive_unit(None, Sku::new("TEE-WHT-M")?, "other")
        .await?;
    let other_site = other.site().to_string();
    wait_for("site 1's op applied", DRAIN_WITHIN, || {
        let other_site = other_site.clone();
        async move { Ok(coordinator_count(coordinator, OPS_SQL, &other_site).await? == 1) }
    })
    .await?;

    // When site 1's op was applied, site 0's backlog was under way but not done.
    let site0_applied_by_then =
        coordinator_count(coordinator, APPLIED_NO_LATER_THAN_OTHER_SQL, &backlogged).await?;
    assert!(
        site0_applied_by_then >= draining,
        "site 0 had applied {draining} ops before site 1 recorded, \
         but only {site0_applied_by_then} by the time site 1's op was applied"
    );
    assert!(
        site0_applied_by_then < BACKLOG,
        "site 1's op waited for site 0's whole backlog of {BACKLOG}"
    );
    eprintln!(
        "site 1's op was applied when site 0 had applied {site0_applied_by_then} of {BACKLOG} \
         backlogged ops"
    );

    // Both drain completely, exactly once.
    let backlogged_agent = fleet.agent(BACKLOGGED);
    wait_synced(&fleet, &backlogged_agent).await?;
    wait_synced(&fleet, &other).await?;
    // Nothing but receipts at either site: the ops recorded are the receipt count (the
    // backlog went out under the epoch it was written in, retired when the agent started).
    assert_eq!(backlogged_agent.status().await?.n_ops_recorded, BACKLOG);
    assert_exactly_once(&fleet, &backlogged_agent, BACKLOG).await?;
    assert_eq!(other.status().await?.n_ops_recorded, 1);
    assert_exactly_once(&fleet, &other, 1).await?;

    fleet.shutdown().await;
    Ok(())
}
