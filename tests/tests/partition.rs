//! Network faults between one site and the coordinator, made with the UDP proxy of
//! `modori_tests::proxy` while both ends run unmodified:
//!
//! - a full partition: the site keeps recording ops offline, the agent notices the dead link
//!   within a bound derived from its idle timeout, nothing recorded offline reaches the
//!   coordinator while cut, and after the heal every op is applied exactly once;
//! - a one-way partition where ops reach the coordinator but its acks never come back: after
//!   the heal the agent learns from the coordinator's mark that they were applied, and nothing
//!   is applied twice;
//! - a lossy link (random loss both ways while ops are recorded), then the same exactly-once
//!   checks after the heal.

use std::time::Duration;

use modori_agent::work::Actor;
use modori_agent::{Agent, AgentHandle};
use modori_coordinator::fleet::Fleet;
use modori_shared::domain::Sku;
use modori_shared::station::Effect;
use modori_tests::proxy::{Direction, UdpProxy};
use modori_tests::{assert_exactly_once, coordinator_count, real_fleet, wait_for, TestFleet};

/// Link timing of the proxied agent: short, so a cut is noticed in seconds, not half a minute.
const KEEPALIVE_SECONDS: u64 = 1;
const IDLE_TIMEOUT_SECONDS: u64 = 3;
/// Generous bound for the agent to declare the link dead: the idle timeout plus slack for
/// scheduling on a loaded machine.
const NOTICE_DEAD_LINK_WITHIN: Duration = Duration::from_secs(IDLE_TIMEOUT_SECONDS + 5);
/// Bound for anything that needs a (re)connection and a catch-up.
const SYNC_WITHIN: Duration = Duration::from_secs(30);

/// The site routed through the proxy.
const SITE: usize = 0;

const OPS_SQL: &str = "SELECT COUNT(*) FROM ops WHERE site = ?1";

/// Two sites are enough: the proxied one and a bystander that must stay unaffected.
fn two_sites() -> Fleet {
    let mut fleet = real_fleet();
    fleet.sites.truncate(2);
    fleet
}

/// Link timing short enough that a cut is noticed and retried in seconds.
fn short_link_timing(config: &mut modori_agent::config::AgentConfig) {
    config.sync.keepalive_interval_seconds = KEEPALIVE_SECONDS;
    config.sync.idle_timeout_seconds = IDLE_TIMEOUT_SECONDS;
    config.sync.reconnect_backoff_min_ms = 50;
    config.sync.reconnect_backoff_max_ms = 500;
}

/// Replaces the fleet's agent of `SITE` with one that reaches the coordinator through a fresh
/// proxy (same database, so the same epoch and outbox), with short link timing.
async fn agent_behind_proxy(fleet: &mut TestFleet) -> anyhow::Result<(UdpProxy, Agent)> {
    fleet.stop_agent(SITE).await;
    let proxy = UdpProxy::start(fleet.coordinator().quic_addr()).await?;
    let mut config = fleet.agent_config(SITE);
    config.coordinator.address = proxy.addr();
    short_link_timing(&mut config);
    config.validate(std::path::Path::new("partition-test"))?;
    let agent = Agent::start(config).await?;
    let handle = agent.handle();
    wait_for("proxied agent connected", SYNC_WITHIN, || {
        let handle = handle.clone();
        async move { Ok(handle.status().await?.connected) }
    })
    .await?;
    Ok((proxy, agent))
}

/// Records `n` receipts and tests every other unit: ops of two kinds, as a station would (the
/// units are unidentified, so quarantine holds them back from grading).
/// Returns how many receipts were recorded.
async fn record_ops(agent: &AgentHandle, n: u64, tag: &str) -> anyhow::Result<u64> {
    for i in 0..n {
        let receipt = agent
            .receive_unit(None, Sku::new("SNK-RUN-27")?, tag)
            .await?;
        if i % 2 == 0 {
            let test = Effect::Test {
                lpn: receipt.lpn,
                passed: true,
            };
            agent.record(test, Actor::new(tag, "grade-1")).await?;
        }
    }
    Ok(n)
}

async fn coordinator_ops(fleet: &TestFleet, site: &str) -> anyhow::Result<u64> {
    coordinator_count(fleet.coordinator(), OPS_SQL, site).await
}

/// Waits until the coordinator has every op the agent recorded and the agent has the ack.
async fn wait_synced(fleet: &TestFleet, agent: &AgentHandle) -> anyhow::Result<()> {
    let site = agent.site().to_string();
    let head = agent.status().await?.outbox_head_seq;
    wait_for(
        &format!("{site}: coordinator has all {head} ops"),
        SYNC_WITHIN,
        || {
            let site = site.clone();
            async move { Ok(coordinator_ops(fleet, &site).await? >= head) }
        },
    )
    .await?;
    wait_for(&format!("{site}: outbox acknowledged"), SYNC_WITHIN, || {
        let agent = agent.clone();
        async move { Ok(agent.status().await?.outbox_pending == 0) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_works_through_a_partition_and_syncs_exactly_once_after_heal() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(two_sites()).await?;
    let (proxy, agent) = agent_behind_proxy(&mut fleet).await?;
    let handle = agent.handle();
    let site = handle.site().to_string();
    let mut receipts = 0;

    // Online: ops flow through the proxy.
    receipts += record_ops(&handle, 10, "online").await?;
    wait_synced(&fleet, &handle).await?;
    let applied_before_cut = coordinator_ops(&fleet, &site).await?;
    assert_eq!(applied_before_cut, handle.status().await?.outbox_head_seq);
    assert!(proxy.stats().forwarded_up > 0 && proxy.stats().forwarded_down > 0);
    let n_connects_before = handle.status().await?.n_connects;

    // Cut. The site keeps working: every station action still commits locally.
    proxy.partition();
    let dropped_at_cut = proxy.stats().dropped();
    receipts += record_ops(&handle, 10, "offline").await?;
    wait_for(
        "agent notices the dead link",
        NOTICE_DEAD_LINK_WITHIN,
        || {
            let handle = handle.clone();
            async move { Ok(!handle.status().await?.connected) }
        },
    )
    .await?;
    // It retries in the background, and the retries hit the partition too.
    let dropped_at_notice = proxy.stats().dropped_up;
    wait_for("a reconnect attempt is dropped", SYNC_WITHIN, || {
        let dropped_up = proxy.stats().dropped_up;
        async move { Ok(dropped_up > dropped_at_notice) }
    })
    .await?;
    // Still working while it knows it is offline.
    receipts += record_ops(&handle, 6, "offline-known").await?;
    let offline = handle.status().await?;
    assert!(!offline.connected, "{offline:?}");
    assert_eq!(offline.n_connects, n_connects_before, "{offline:?}");
    assert!(
        offline.outbox_head_seq > applied_before_cut,
        "offline ops are in the outbox: {offline:?}"
    );
    assert_eq!(
        offline.outbox_pending,
        offline.outbox_head_seq - applied_before_cut,
        "nothing recorded offline was acknowledged: {offline:?}"
    );
    assert_eq!(
        coordinator_ops(&fleet, &site).await?,
        applied_before_cut,
        "the coordinator got no op recorded during the partition"
    );
    let cut = proxy.stats();
    assert!(
        cut.dropped_up > 0 && cut.dropped() > dropped_at_cut,
        "the partition dropped traffic: {cut:?}"
    );
    // The coordinator side times out too (same negotiated idle timeout) and forgets the link.
    let site_id = fleet.site(SITE).id.clone();
    wait_for(
        "coordinator drops the dead connection",
        NOTICE_DEAD_LINK_WITHIN,
        || {
            let live = fleet.coordinator().ctx().live.get(&site_id);
            async move { Ok(live.connection.is_none()) }
        },
    )
    .await?;
    // The bystander site never lost its own link.
    assert!(fleet.agent(1).status().await?.connected);

    // Heal: the agent reconnects, resumes after the coordinator's mark, and catches up.
    proxy.heal();
    wait_synced(&fleet, &handle).await?;
    let healed = handle.status().await?;
    assert!(healed.connected, "{healed:?}");
    assert!(
        healed.n_connects > n_connects_before,
        "caught up over a new connection: {healed:?}"
    );
    // One more op as a barrier: once it is applied, whatever was resent before it on the new
    // connection has been processed too, so the counts below are final.
    receipts += record_ops(&handle, 1, "after-heal").await?;
    wait_synced(&fleet, &handle).await?;
    assert_exactly_once(&fleet, &handle, receipts).await?;

    agent.shutdown().await;
    drop(proxy);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_syncs_exactly_once_over_a_lossy_link() -> anyhow::Result<()> {
    const LOSS: f64 = 0.2;
    let mut fleet = TestFleet::start_with(two_sites()).await?;
    let (proxy, agent) = agent_behind_proxy(&mut fleet).await?;
    let handle = agent.handle();
    let mut receipts = record_ops(&handle, 5, "online").await?;
    wait_synced(&fleet, &handle).await?;

    // 20 % of datagrams lost each way for a few seconds while the station keeps working. QUIC
    // recovers most losses; the agent may also time out and reconnect. Either way no op may be
    // lost or applied twice.
    proxy.set_loss(LOSS);
    let lossy_from = proxy.stats();
    for _ in 0..30 {
        receipts += record_ops(&handle, 2, "lossy").await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lossy = proxy.stats();
    assert!(
        lossy.dropped_up > lossy_from.dropped_up && lossy.dropped_down > lossy_from.dropped_down,
        "the lossy link dropped datagrams both ways: {lossy:?}"
    );
    assert!(
        lossy.forwarded() > lossy_from.forwarded(),
        "and forwarded others: {lossy:?}"
    );

    proxy.heal();
    wait_synced(&fleet, &handle).await?;
    receipts += record_ops(&handle, 1, "after-heal").await?;
    wait_synced(&fleet, &handle).await?;
    assert_exactly_once(&fleet, &handle, receipts).await?;

    agent.shutdown().await;
    drop(proxy);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_applied_but_never_acknowledged_are_not_applied_again() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(two_sites()).await?;
    let (proxy, agent) = agent_behind_proxy(&mut fleet).await?;
    let handle = agent.handle();
    let site = handle.site().to_string();
    let mut receipts = record_ops(&handle, 5, "online").await?;
    wait_synced(&fleet, &handle).await?;
    let acked_before = handle.status().await?.last_acked_seq;

    // Everything from the coordinator is lost, acks included; the ops still get through, up to
    // the agent's window of unacknowledged batches.
    proxy.partition_one_way(Direction::Down);
    receipts += record_ops(&handle, 10, "unacked").await?;
    wait_for(
        "coordinator applies ops the agent will not hear about",
        SYNC_WITHIN,
        || {
            let site = site.clone();
            let fleet = &fleet;
            async move { Ok(coordinator_ops(fleet, &site).await? > acked_before) }
        },
    )
    .await?;
    wait_for(
        "agent notices the dead link",
        NOTICE_DEAD_LINK_WITHIN,
        || {
            let handle = handle.clone();
            async move { Ok(!handle.status().await?.connected) }
        },
    )
    .await?;
    let unacked = handle.status().await?;
    assert_eq!(
        unacked.last_acked_seq, acked_before,
        "no ack crossed the one-way partition: {unacked:?}"
    );
    assert!(
        coordinator_ops(&fleet, &site).await? > unacked.last_acked_seq,
        "the coordinator holds ops the agent still counts as pending: {unacked:?}"
    );
    let stats = proxy.stats();
    assert!(
        stats.dropped_down > 0 && stats.dropped_up == 0,
        "only the way down was cut: {stats:?}"
    );

    // Heal: the mark in the coordinator's hello acknowledges what the agent never heard about,
    // and the agent resumes right after it instead of sending those ops again.
    proxy.heal();
    wait_synced(&fleet, &handle).await?;
    receipts += record_ops(&handle, 1, "after-heal").await?;
    wait_synced(&fleet, &handle).await?;
    assert_exactly_once(&fleet, &handle, receipts).await?;

    agent.shutdown().await;
    drop(proxy);
    fleet.shutdown().await;
    Ok(())
}

/// A site listing replicas of the coordinator: a first address that never answers is passed
/// over at start, and a link cut under it moves to the next replica within the idle timeout
/// and the backoff; every op is applied exactly once across the moves. (The replicas here are
/// two proxies in front of one coordinator: what is tested is the site's side of failover.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_fails_over_to_the_next_replica_and_applies_everything_once() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(two_sites()).await?;
    fleet.stop_agent(SITE).await;
    // Bound and never read: packets to it vanish, as to a replica whose machine died.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let first = UdpProxy::start(fleet.coordinator().quic_addr()).await?;
    let second = UdpProxy::start(fleet.coordinator().quic_addr()).await?;
    let mut config = fleet.agent_config(SITE);
    config.coordinator.address = silent.local_addr()?;
    config.coordinator.replicas = vec![first.addr(), second.addr()];
    short_link_timing(&mut config);
    config.validate(std::path::Path::new("failover-test"))?;
    let agent = Agent::start(config).await?;
    let handle = agent.handle();
    let connected_to = |addr: std::net::SocketAddr| {
        let handle = handle.clone();
        async move {
            let s = handle.status().await?;
            Ok(s.connected && s.coordinator == Some(addr.to_string()))
        }
    };
    // The silent address costs one connect timeout, then the first replica answers.
    let within = modori_agent::sync_client::CONNECT_TIMEOUT + SYNC_WITHIN;
    wait_for("connected through the first replica", within, || {
        connected_to(first.addr())
    })
    .await?;
    // The silent address was tried first: its socket holds the attempt's packets.
    silent.set_nonblocking(true)?;
    let mut packet = [0u8; 2048];
    assert!(
        silent.recv(&mut packet).is_ok(),
        "no connection was attempted to the first address"
    );
    let mut receipts = record_ops(&handle, 10, "first").await?;
    wait_synced(&fleet, &handle).await?;
    assert!(
        second.stats().forwarded_up == 0,
        "nothing went the second way yet"
    );

    // The first replica's machine goes: the link moves to the second.
    first.partition();
    receipts += record_ops(&handle, 10, "while-moving").await?;
    wait_for(
        "moved to the second replica",
        NOTICE_DEAD_LINK_WITHIN + SYNC_WITHIN,
        || connected_to(second.addr()),
    )
    .await?;
    receipts += record_ops(&handle, 5, "second").await?;
    wait_synced(&fleet, &handle).await?;
    assert!(second.stats().forwarded_up > 0);
    // A barrier op, so whatever was resent on the new link has been processed too.
    receipts += record_ops(&handle, 1, "barrier").await?;
    wait_synced(&fleet, &handle).await?;
    assert_exactly_once(&fleet, &handle, receipts).await?;

    agent.shutdown().await;
    drop((first, second, silent));
    fleet.shutdown().await;
    Ok(())
}
