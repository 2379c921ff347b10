//! A site database that goes back in time behind the agent's back (an older file copied over
//! it, a snapshot of it put back) never loses a receipt confirmed afterwards and never prints a
//! plate twice, even while the site works offline; the coordinator and `ctl status` say what
//! happened.

use std::path::Path;
use std::time::Duration;

use modori_runtime::backup;
use modori_shared::domain::Sku;
use modori_tests::{coordinator_count, small_fleet, wait_for, TestFleet};

const TIMEOUT: Duration = Duration::from_secs(60);
const OPS: &str = "SELECT COUNT(*) FROM ops WHERE site = ?1";
const UNITS: &str = "SELECT COUNT(*) FROM units WHERE site = ?1";
const ANOMALIES: &str = "SELECT COUNT(*) FROM anomalies WHERE site = ?1";
const REWOUND_BY_6: &str = "SELECT COUNT(*) FROM anomalies WHERE site = ?1
    AND kind = 'database_rewound' AND detail LIKE '%went back in time: 6 ops, new epoch%'";

async fn receive(fleet: &TestFleet, n: usize) -> anyhow::Result<Vec<String>> {
    let mut lpns = Vec::new();
    for _ in 0..n {
        let receipt = fleet
            .agent(0)
            .receive_unit(None, Sku::new("DRS-LINEN-S")?, "B")
            .await?;
        lpns.push(receipt.lpn.to_string());
    }
    Ok(lpns)
}

async fn synced(fleet: &TestFleet) -> anyhow::Result<()> {
    let agent = fleet.agent(0);
    wait_for("site 0 synced", TIMEOUT, || {
        let agent = agent.clone();
        async move {
            let s = agent.status().await?;
            Ok(s.connected && s.outbox_pending == 0 && s.retired_pending == 0)
        }
    })
    .await
}

/// Waits until the stopped service's database is closed: its last connection folds the WAL
/// back in and deletes it. Only then is the file alone the whole database, safe to copy.
async fn closed(db: &Path) -> anyhow::Result<()> {
    let wal = modori_runtime::sqlite::companion(db, "-wal");
    wait_for("the database closed", TIMEOUT, || {
        let wal = wal.clone();
        async move { Ok(!wal.exists()) }
    })
    .await
}

/// Puts `from` in place of the stopped service's database, as a careless technician would: a
/// plain file copy, the WAL and its index removed.
async fn copy_over(from: &Path, db: &Path) -> anyhow::Result<()> {
    closed(db).await?;
    for suffix in ["-wal", "-shm"] {
        let companion = modori_runtime::sqlite::companion(db, suffix);
        if companion.exists() {
            std::fs::remove_file(companion)?;
        }
    }
    std::fs::copy(from, db)?;
    Ok(())
}

/// Checks the end state: every receipt at the coordinator once, under distinct plates, and the
/// rollback reported there and at the site.
async fn everything_arrived_once(
    fleet: &TestFleet,
    lpns: &[String],
    n_ops: u64,
) -> anyhow::Result<()> {
    let site = fleet.site(0).id.to_string();
    let mut distinct = lpns.to_vec();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        lpns.len(),
        "a plate was printed twice: {lpns:?}"
    );
    let agent = fleet.agent(0);
    wait_for("the rollback reported at the site", TIMEOUT, || {
        let agent = agent.clone();
        async move { Ok(!agent.status().await?.database_rollbacks.is_empty()) }
    })
    .await?;
    synced(fleet).await?;
    let c = fleet.coordinator();
    assert_eq!(coordinator_count(c, UNITS, &site).await?, lpns.len() as u64);
    // Every receipt, and the report of the rollback.
    assert_eq!(coordinator_count(c, OPS, &site).await?, n_ops);
    assert_eq!(coordinator_count(c, REWOUND_BY_6, &site).await?, 1);
    assert_eq!(
        coordinator_count(c, ANOMALIES, &site).await?,
        1,
        "no duplicate plate, no hash mismatch"
    );
    let status = fleet.agent(0).status().await?;
    assert_eq!(status.database_rollbacks.len(), 1);
    assert_eq!(status.database_rollbacks[0].new_epoch, status.epoch);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_copy_of_a_stopped_database_loses_nothing_confirmed_offline_afterwards(
) -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let db = fleet.agent_config(0).db_path();
    let mut lpns = receive(&fleet, 5).await?;
    synced(&fleet).await?;
    fleet.stop_agent(0).await;
    closed(&db).await?;
    let old = fleet.dir.path().join("site0.old.db");
    std::fs::copy(&db, &old)?;

    fleet.restart_agent(0).await?;
    lpns.extend(receive(&fleet, 6).await?);
    synced(&fleet).await?;
    fleet.stop_agent(0).await;
    // Head office is unreachable, and the old file goes back in.
    fleet.coordinator.take().expect("running").shutdown().await;
    copy_over(&old, &db).await?;
    fleet.restart_agent(0).await?;
    lpns.extend(receive(&fleet, 15).await?);

    fleet.start_coordinator().await?;
    everything_arrived_once(&fleet, &lpns, 5 + 6 + 15 + 1).await?;
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_put_back_is_found_at_the_hello_and_nothing_confirmed_after_is_lost(
) -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let db = fleet.agent_config(0).db_path();
    let mut lpns = receive(&fleet, 5).await?;
    synced(&fleet).await?;
    // A snapshot in the middle of a run: the coordinator gets six more ops of the same epoch.
    let snapshot = fleet.dir.path().join("site0.snapshot.db");
    backup::backup(&db, &snapshot)?;
    lpns.extend(receive(&fleet, 6).await?);
    synced(&fleet).await?;
    fleet.stop_agent(0).await;
    copy_over(&snapshot, &db).await?;
    fleet.restart_agent(0).await?;
    lpns.extend(receive(&fleet, 15).await?);

    everything_arrived_once(&fleet, &lpns, 5 + 6 + 15 + 1).await?;
    fleet.shutdown().await;
    Ok(())
}

/// Registers a return (routed to site 0, the only one) and waits until the site holds it.
async fn register_and_deliver(fleet: &TestFleet) -> anyhow::Result<String> {
    let body = r#"{"origin": {"store_id": "st-fukuoka-tenjin"},
                   "lines": [{"sku": "BAG-TOTE-BLK", "qty": 1, "reason": "changed_mind"}]}"#;
    let (status, text) = fleet.api("POST", "/api/v1/returns", Some(body)).await?;
    anyhow::ensure!(status == 201, "{status} {text}");
    let routed: serde_json::Value = serde_json::from_str(&text)?;
    let rma = routed["rma"].as_str().unwrap_or_default().to_owned();
    let db = fleet.agent_config(0).db_path();
    let wanted = rma.clone();
    wait_for("the expected return at the site", TIMEOUT, || {
        let db = db.clone();
        let rma = wanted.clone();
        async move {
            let conn = rusqlite::Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            let n: i64 = conn.query_row(
                "SELECT COUNT(*) FROM expected_returns WHERE rma = ?1",
                [&rma],
                |r| r.get(0),
            )?;
            Ok(n == 1)
        }
    })
    .await?;
    Ok(rma)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_database_copied_back_never_reuses_a_command_seq() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let db = fleet.coordinator_dir().join("coordinator.db");
    register_and_deliver(&fleet).await?;
    fleet.coordinator.take().expect("running").shutdown().await;
    closed(&db).await?;
    let old = fleet.dir.path().join("coordinator.old.db");
    std::fs::copy(&db, &old)?;
    fleet.start_coordinator().await?;
    // A command the old file does not have reaches the site...
    register_and_deliver(&fleet).await?;
    let before = fleet.agent(0).status().await?;
    fleet.coordinator.take().expect("running").shutdown().await;
    copy_over(&old, &db).await?;
    fleet.start_coordinator().await?;
    // ...and the next one, numbered from the old file's head, would have taken its seq: the
    // site would have taken it for the command it already applied and never seen this return.
    register_and_deliver(&fleet).await?;
    let after = fleet.agent(0).status().await?;
    assert_ne!(
        after.command_epoch, before.command_epoch,
        "a new command epoch"
    );
    fleet.shutdown().await;
    Ok(())
}
