//! A site restored from a backup starts a new epoch: what the backup held unacknowledged is
//! delivered once under its old keys, new ops are numbered afresh and never taken for
//! duplicates, and no label plate is printed twice.

use std::time::Duration;

use modori_agent::restore;
use modori_runtime::backup;
use modori_runtime::clock;
use modori_shared::domain::Sku;
use modori_tests::{coordinator_count, wait_for, TestFleet};

const TIMEOUT: Duration = Duration::from_secs(30);
const OPS: &str = "SELECT COUNT(*) FROM ops WHERE site = ?1";
const UNITS: &str = "SELECT COUNT(*) FROM units WHERE site = ?1";
const EPOCHS: &str = "SELECT COUNT(*) FROM op_streams WHERE site = ?1";
const ANOMALIES: &str = "SELECT COUNT(*) FROM anomalies WHERE site = ?1";
const REWOUND_BY_3: &str = "SELECT COUNT(*) FROM anomalies WHERE site = ?1
    AND kind = 'database_rewound' AND detail LIKE '%went back in time: 3 ops%'";

async fn receive(fleet: &TestFleet, n: usize) -> anyhow::Result<()> {
    for _ in 0..n {
        fleet
            .agent(0)
            .receive_unit(None, Sku::new("DRS-LINEN-S")?, "B")
            .await?;
    }
    Ok(())
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

/// Restores `file` at site 0 (stopped first) and starts it again.
async fn restore(
    fleet: &mut TestFleet,
    file: &std::path::Path,
) -> anyhow::Result<restore::Restored> {
    fleet.stop_agent(0).await;
    let restored = restore::restore(&fleet.agent_config(0), file, clock::now_ms())?;
    fleet.restart_agent(0).await?;
    Ok(restored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_ops_of_the_backup_are_delivered_once_and_new_ops_start_a_new_epoch(
) -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    let site = fleet.site(0).id.to_string();
    receive(&fleet, 5).await?;
    synced(&fleet).await?;

    // The line to head office is down: five receipts wait in the outbox when the backup runs.
    fleet.coordinator.take().expect("running").shutdown().await;
    receive(&fleet, 5).await?;
    let file = fleet.dir.path().join("site0.backup.db");
    backup::backup(&fleet.agent_config(0).db_path(), &file)?;
    // Three more, then the disk dies: these were never sent and are gone with it.
    receive(&fleet, 3).await?;

    let restored = restore(&mut fleet, &file).await?;
    assert_eq!(restored.n_retired_pending, 5);
    assert!(restored.replaced.is_some());
    fleet.start_coordinator().await?;
    synced(&fleet).await?;
    receive(&fleet, 4).await?;
    synced(&fleet).await?;

    let c = fleet.coordinator();
    assert_eq!(coordinator_count(c, OPS, &site).await?, 10 + 4);
    assert_eq!(coordinator_count(c, UNITS, &site).await?, 10 + 4);
    assert_eq!(coordinator_count(c, EPOCHS, &site).await?, 2);
    assert_eq!(coordinator_count(c, ANOMALIES, &site).await?, 0);
    let status = fleet.agent(0).status().await?;
    assert_eq!((status.outbox_head_seq, status.last_acked_seq), (4, 4));
    // Every start of the agent begins its own epoch, the one after the restore too.
    assert_ne!(status.epoch, restored.old_epoch.to_string());
    assert_ne!(status.epoch, restored.new_epoch.to_string());
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_whose_pending_ops_already_arrived_adds_nothing_twice() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    let site = fleet.site(0).id.to_string();
    fleet.coordinator.take().expect("running").shutdown().await;
    receive(&fleet, 6).await?;
    let file = fleet.dir.path().join("site0.backup.db");
    backup::backup(&fleet.agent_config(0).db_path(), &file)?;
    assert!(
        backup::backup(&fleet.agent_config(0).db_path(), &file).is_err(),
        "never overwrites"
    );
    // The link comes back and everything, including what the backup holds as pending, arrives;
    // then more receipts, whose plates the restored counter will number again.
    fleet.start_coordinator().await?;
    receive(&fleet, 3).await?;
    synced(&fleet).await?;

    restore(&mut fleet, &file).await?;
    synced(&fleet).await?;
    receive(&fleet, 3).await?;
    synced(&fleet).await?;

    let c = fleet.coordinator();
    // The three receipts after the backup reached the coordinator but are not in the restored
    // database: the site reports that it went back in time (one op, one anomaly).
    assert_eq!(coordinator_count(c, OPS, &site).await?, 9 + 3 + 1);
    assert_eq!(
        coordinator_count(c, UNITS, &site).await?,
        9 + 3,
        "new plates never collide"
    );
    assert_eq!(coordinator_count(c, ANOMALIES, &site).await?, 1);
    assert_eq!(coordinator_count(c, REWOUND_BY_3, &site).await?, 1);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_while_the_agent_runs() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    let file = fleet.dir.path().join("b.db");
    backup::backup(&fleet.agent_config(0).db_path(), &file)?;
    let err = restore::restore(&fleet.agent_config(0), &file, clock::now_ms())
        .expect_err("agent running");
    assert!(err.to_string().contains("stop it"), "{err}");
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_restored_from_backup_gets_back_what_it_lacks_from_the_sites(
) -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    let site = fleet.site(0).id.to_string();
    receive(&fleet, 5).await?;
    synced(&fleet).await?;
    let before = fleet.agent(0).status().await?;
    let file = fleet.dir.path().join("coordinator.backup.db");
    backup::backup(&fleet.coordinator_dir().join("coordinator.db"), &file)?;
    // Five more reach the coordinator after the backup: its disk then dies.
    receive(&fleet, 5).await?;
    synced(&fleet).await?;

    let c = fleet.coordinator.take().expect("running");
    let mut config = c.ctx().config.clone();
    // The test fleet binds port 0; a real config names the port the check knocks on.
    config.http.listen = c.http_addr();
    assert!(
        modori_coordinator::restore(&config, &file).is_err(),
        "refused while it runs"
    );
    c.shutdown().await;
    let replaced = modori_coordinator::restore(&config, &file)?;
    assert!(replaced.is_some());
    fleet.start_coordinator().await?;
    let epoch = fleet.coordinator().ctx().command_epoch;
    synced(&fleet).await?;

    let c = fleet.coordinator();
    assert_eq!(
        coordinator_count(c, OPS, &site).await?,
        10,
        "the sites resent what the backup lacked"
    );
    assert_eq!(coordinator_count(c, UNITS, &site).await?, 10);
    assert_eq!(coordinator_count(c, ANOMALIES, &site).await?, 0);
    // Commands flow again under the new epoch.
    let agent = fleet.agent(0);
    wait_for("commands of the new epoch applied", TIMEOUT, || {
        let agent = agent.clone();
        async move {
            let s = agent.status().await?;
            Ok(s.command_epoch == Some(epoch.to_string()) && s.last_applied_command_seq >= 1)
        }
    })
    .await?;
    assert_ne!(before.command_epoch, Some(epoch.to_string()));
    fleet.shutdown().await;
    Ok(())
}

/// Every start of an agent retires its epoch: ops the coordinator acknowledged in that epoch
/// after its backup was taken must still come back when the backup is put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_restored_from_backup_gets_back_the_ops_of_epochs_retired_since(
) -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    let site = fleet.site(0).id.to_string();
    receive(&fleet, 5).await?;
    synced(&fleet).await?;
    let file = fleet.dir.path().join("coordinator.backup.db");
    backup::backup(&fleet.coordinator_dir().join("coordinator.db"), &file)?;
    receive(&fleet, 5).await?;
    synced(&fleet).await?;
    // The agent restarts: the epoch of those ten is retired, delivered and checked.
    fleet.restart_agent(0).await?;
    receive(&fleet, 2).await?;
    synced(&fleet).await?;
    assert_eq!(
        coordinator_count(fleet.coordinator(), OPS, &site).await?,
        12
    );

    let c = fleet.coordinator.take().expect("running");
    let mut config = c.ctx().config.clone();
    config.http.listen = c.http_addr();
    c.shutdown().await;
    modori_coordinator::restore(&config, &file)?;
    fleet.start_coordinator().await?;
    let c = fleet.coordinator();
    wait_for("every op back at the coordinator", TIMEOUT, || async {
        Ok(coordinator_count(c, OPS, &site).await? == 12)
    })
    .await?;
    synced(&fleet).await?;
    assert_eq!(coordinator_count(c, UNITS, &site).await?, 12);
    assert_eq!(coordinator_count(c, ANOMALIES, &site).await?, 0);
    fleet.shutdown().await;
    Ok(())
}
