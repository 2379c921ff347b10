//! Crash faults with real processes: a failpoint aborts the coordinator or an agent at an exact
//! point (mid-batch, between the durable commit and the ack), or the test `kill -9`s one under
//! load; after a restart on the same files, every op and command is applied exactly once.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use modori_tests::procs::{Binaries, ProcFleet};
use modori_tests::wait_for;

const SIGABRT: i32 = 6;
const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};
/// Generous: CI runs these beside other tests on two cores.
const TIMEOUT: Duration = Duration::from_secs(60);
const OPS_SQL: &str = "SELECT COUNT(*) FROM ops WHERE site = ?1";
const UNITS_SQL: &str = "SELECT COUNT(*) FROM units WHERE site = ?1";
const ANOMALIES_SQL: &str = "SELECT COUNT(*) FROM anomalies";
/// What the apply path counts per batch in the batch's transaction (the throughput chart's and
/// the statement's counts), for the whole fleet (`?1 = ?1` takes the site parameter every count
/// is given).
const OPS_COUNTED_SQL: &str =
    "SELECT COALESCE(SUM(n), 0) FROM ops_per_minute WHERE kind = 'unit_received' AND ?1 = ?1";
const RECEIPTS_BILLED_SQL: &str =
    "SELECT COALESCE(SUM(n), 0) FROM billable_daily WHERE activity = 'receipt' AND ?1 = ?1";
/// Ops an agent recorded in all its epochs.
const RECORDED_SQL: &str = "SELECT op_head_seq + (SELECT COALESCE(SUM(head_seq), 0)
    FROM retired_epochs) FROM sync_state WHERE id = 1";

/// Records `n` receipts at site `i` while its link is down, so they travel as one batch.
async fn offline_receipts(f: &ProcFleet, i: usize, n: usize) -> anyhow::Result<Vec<String>> {
    let mut lpns = Vec::new();
    for _ in 0..n {
        lpns.push(f.receive(i, "TEE-WHT-M").await?);
    }
    Ok(lpns)
}

async fn wait_applied(f: &ProcFleet, i: usize, n: u64) -> anyhow::Result<()> {
    wait_for(
        "all ops applied at the coordinator",
        TIMEOUT,
        || async move {
            Ok(f.coordinator_count(OPS_SQL, i)? >= n && f.status(i).await?["outbox_pending"] == 0)
        },
    )
    .await
}

fn assert_exactly_once(f: &ProcFleet, i: usize, n: u64) -> anyhow::Result<()> {
    assert_eq!(f.coordinator_count(OPS_SQL, i)?, n, "{}", f.logs());
    assert_eq!(f.coordinator_count(UNITS_SQL, i)?, n, "{}", f.logs());
    assert_eq!(f.coordinator_count(ANOMALIES_SQL, i)?, 0, "{}", f.logs());
    Ok(())
}

/// The fleet's `n` receipts counted once each, as the ops themselves.
fn assert_counted_once(f: &ProcFleet, n: u64) -> anyhow::Result<()> {
    assert_eq!(f.coordinator_count(OPS_COUNTED_SQL, 0)?, n, "{}", f.logs());
    assert_eq!(
        f.coordinator_count(RECEIPTS_BILLED_SQL, 0)?,
        n,
        "{}",
        f.logs()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_dies_after_part_of_a_batch_is_applied() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_agent(0, None)?;
    offline_receipts(&f, 0, 10).await?;
    // Dies after 3 of the batch's 10 ops are applied, inside the uncommitted transaction.
    f.start_coordinator(Some("coordinator-apply-op=3*off->return"))
        .await?;
    let status = f.coordinator_exit(TIMEOUT).await?;
    assert_eq!(status.signal(), Some(SIGABRT), "{}", f.logs());
    assert_eq!(
        f.coordinator_count(OPS_SQL, 0)?,
        0,
        "the partial batch must roll back"
    );

    f.start_coordinator(None).await?;
    wait_applied(&f, 0, 10).await?;
    assert_exactly_once(&f, 0, 10)?;
    assert_counted_once(&f, 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_dies_between_the_durable_commit_and_the_ack() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_agent(0, None)?;
    offline_receipts(&f, 0, 10).await?;
    f.start_coordinator(Some("coordinator-before-op-ack=return"))
        .await?;
    let status = f.coordinator_exit(TIMEOUT).await?;
    assert_eq!(status.signal(), Some(SIGABRT), "{}", f.logs());
    assert_eq!(
        f.coordinator_count(OPS_SQL, 0)?,
        10,
        "the batch committed before the crash"
    );
    assert_eq!(
        f.status(0).await?["last_acked_seq"],
        0,
        "no ack reached the agent"
    );

    // The agent resends nothing twice: the hello tells it what is already applied.
    f.start_coordinator(None).await?;
    wait_applied(&f, 0, 10).await?;
    assert_eq!(f.status(0).await?["last_acked_seq"], 10);
    assert_exactly_once(&f, 0, 10)?;
    assert_counted_once(&f, 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_dies_with_a_batch_in_flight() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_agent(0, Some("agent-after-batch-sent=return"))?;
    offline_receipts(&f, 0, 10).await?;
    f.start_coordinator(None).await?;
    let status = f.agent_exit(0, TIMEOUT).await?;
    assert_eq!(status.signal(), Some(SIGABRT), "{}", f.logs());

    f.start_agent(0, None)?;
    wait_applied(&f, 0, 10).await?;
    assert_exactly_once(&f, 0, 10)?;
    assert_counted_once(&f, 10)
}

/// Five returns routed to site 0 (the origin is the site itself).
async fn post_returns(f: &ProcFleet, n: usize) -> anyhow::Result<()> {
    let site = &f.sites[0];
    for k in 0..n {
        let body = serde_json::json!({
            "rma": format!("RMA-CRASH-{k}"),
            "origin": {"latitude": site.location.lat(), "longitude": site.location.lon()},
            "lines": [{"sku": "JKT-DENIM-L", "qty": 1, "reason": "too_large"}],
        });
        let (status, text) = http_post(f, "/api/v1/returns", &body.to_string()).await?;
        assert_eq!(status, 201, "{text}");
        let routed: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(routed["site"], site.id.as_str(), "{routed}");
    }
    Ok(())
}

async fn http_post(f: &ProcFleet, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    modori_tests::http_request_as(f.http, Some(&f.ops_key), "POST", path, Some(body)).await
}

const COMMANDS_SQL: &str = "SELECT COUNT(*) FROM applied_commands";
/// What site 0's command stream holds: the disposition rules, then five returns, each with
/// its carrier tracking number.
const N_COMMANDS: u64 = 1 + 5 * 2;
const EXPECTED_SQL: &str = "SELECT COUNT(*) FROM expected_returns";

async fn wait_commands(f: &ProcFleet, n: u64) -> anyhow::Result<()> {
    wait_for(
        "commands applied and acknowledged",
        TIMEOUT,
        || async move {
            let acked = f.coordinator_count(
                "SELECT COALESCE(MAX(acked_seq), 0) FROM command_streams WHERE site = ?1",
                0,
            )?;
            Ok(acked >= n && f.status(0).await?["last_applied_command_seq"] == n)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_dies_after_part_of_a_command_batch_is_applied() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_coordinator(None).await?;
    post_returns(&f, 5).await?;
    f.start_agent(0, Some("agent-apply-command=2*off->return"))?;
    let status = f.agent_exit(0, TIMEOUT).await?;
    assert_eq!(status.signal(), Some(SIGABRT), "{}", f.logs());
    assert_eq!(
        f.agent_count(0, COMMANDS_SQL)?,
        0,
        "the partial batch must roll back"
    );

    f.start_agent(0, None)?;
    wait_commands(&f, N_COMMANDS).await?;
    assert_eq!(f.agent_count(0, COMMANDS_SQL)?, N_COMMANDS);
    assert_eq!(f.agent_count(0, EXPECTED_SQL)?, 5);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_dies_between_the_command_commit_and_the_ack() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_coordinator(None).await?;
    post_returns(&f, 5).await?;
    f.start_agent(0, Some("agent-before-command-ack=return"))?;
    let status = f.agent_exit(0, TIMEOUT).await?;
    assert_eq!(status.signal(), Some(SIGABRT), "{}", f.logs());
    assert_eq!(
        f.agent_count(0, COMMANDS_SQL)?,
        N_COMMANDS,
        "applied durably before the crash"
    );
    assert_eq!(
        f.coordinator_count(
            "SELECT COALESCE(MAX(acked_seq), 0) FROM command_streams WHERE site = ?1",
            0
        )?,
        0
    );

    f.start_agent(0, None)?;
    wait_commands(&f, N_COMMANDS).await?;
    assert_eq!(
        f.agent_count(0, COMMANDS_SQL)?,
        N_COMMANDS,
        "nothing applied twice"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_and_applies_nothing_twice() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_coordinator(None).await?;
    f.start_agent(0, None)?;
    f.start_agent(1, None)?;
    let mut confirmed: Vec<(usize, String)> = Vec::new();
    // Rounds of receipts, with the agent, then the coordinator, then both killed in between.
    for round in 0..4 {
        for k in 0..30 {
            let site = k % 2;
            // A receipt confirmed to the station is durable; one refused by a dying agent is not.
            if let Ok(lpn) = f.receive(site, "SNK-RUN-27").await {
                confirmed.push((site, lpn));
            }
        }
        match round {
            0 => {
                f.kill_agent(0)?;
                f.start_agent(0, None)?;
            }
            1 => {
                f.kill_coordinator()?;
                f.start_coordinator(None).await?;
            }
            2 => {
                f.kill_agent(1)?;
                f.kill_coordinator()?;
                f.start_coordinator(None).await?;
                f.start_agent(1, None)?;
            }
            _ => {}
        }
    }
    let mut recorded = 0;
    for site in 0..2 {
        // Every start of an agent begins a new epoch: what it recorded is the heads of all.
        let head = f.agent_count(site, RECORDED_SQL)?;
        recorded += head;
        let n_confirmed = confirmed.iter().filter(|(s, _)| *s == site).count() as u64;
        assert!(
            head >= n_confirmed,
            "site {site}: head {head} < {n_confirmed} confirmed receipts"
        );
        wait_applied(&f, site, head).await?;
        assert_exactly_once(&f, site, head)?;
    }
    assert_counted_once(&f, recorded)?;
    let (status, body) =
        modori_tests::http_request_as(f.http, Some(&f.ops_key), "GET", "/api/v1/sites", None)
            .await?;
    assert_eq!(status, 200);
    let sites: Vec<serde_json::Value> = serde_json::from_str(&body)?;
    assert_eq!(sites[0]["lag_ops"], 0, "{}", sites[0]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_both_services_cleanly_with_nothing_lost() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_coordinator(None).await?;
    f.start_agent(0, None)?;
    offline_receipts(&f, 0, 20).await?;
    // The agent drains what it has in flight, says goodbye and exits 0.
    let status = f.terminate_agent(0, TIMEOUT).await?;
    assert!(status.success(), "{status:?}\n{}", f.logs());
    let logs = f.logs();
    assert!(
        !logs.contains("connection lost"),
        "the coordinator saw a clean goodbye:\n{logs}"
    );
    f.start_agent(0, None)?;
    wait_applied(&f, 0, 20).await?;
    assert_exactly_once(&f, 0, 20)?;
    assert_counted_once(&f, 20)?;
    let status = f.terminate_coordinator(TIMEOUT).await?;
    assert!(status.success(), "{status:?}\n{}", f.logs());
    Ok(())
}
