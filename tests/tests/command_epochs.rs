//! The coordinator numbers its command streams in a new epoch at every start. A restart costs a
//! site nothing (its position is carried over); a coordinator database put back by hand, with
//! the runs file that would have told, never hands a site a seq it already applied for other
//! content: the site gets every command it lacks, and ops see an anomaly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use modori_agent::AgentHandle;
use modori_coordinator::runs_path;
use modori_shared::domain::{ReasonCode, ReturnLine, RmaId, Sku};
use modori_tests::{coordinator_count, small_fleet, wait_for, TestFleet};
use rusqlite::OpenFlags;

const TIMEOUT: Duration = Duration::from_secs(30);
const HEAD: &str = "SELECT COALESCE(MAX(head_seq), 0) FROM command_streams WHERE site = ?1";
const REWOUND: &str =
    "SELECT COUNT(*) FROM anomalies WHERE site = ?1 AND kind = 'coordinator_rewound'";

async fn register(fleet: &TestFleet, rma: &str) -> anyhow::Result<()> {
    let lines = vec![ReturnLine::new(
        Sku::new("KNIT-NAVY-M")?,
        1,
        ReasonCode::Defective,
    )?];
    let routed = fleet
        .coordinator()
        .register_return(
            RmaId::new(rma)?,
            "test".into(),
            fleet.site(0).location,
            lines,
        )
        .await?;
    assert_eq!(
        routed.site,
        fleet.site(0).id,
        "a one-site fleet routes here"
    );
    Ok(())
}

/// Waits until site 0 has applied every command of its stream in the coordinator's epoch.
async fn commands_synced(fleet: &TestFleet) -> anyhow::Result<()> {
    let c = fleet.coordinator();
    let site = fleet.site(0).id.to_string();
    let epoch = c.ctx().command_epoch.to_string();
    let head = coordinator_count(c, HEAD, &site).await?;
    let agent: AgentHandle = fleet.agent(0);
    wait_for("site 0 applied its command stream", TIMEOUT, || {
        let agent = agent.clone();
        let epoch = epoch.clone();
        async move {
            let s = agent.status().await?;
            Ok(s.command_epoch.as_deref() == Some(epoch.as_str())
                && s.last_applied_command_seq == head)
        }
    })
    .await
}

fn site_db(fleet: &TestFleet) -> anyhow::Result<rusqlite::Connection> {
    Ok(rusqlite::Connection::open_with_flags(
        fleet.agent_config(0).db_path(),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?)
}

fn n_applied_commands(fleet: &TestFleet) -> anyhow::Result<u64> {
    Ok(site_db(fleet)?.query_row("SELECT COUNT(*) FROM applied_commands", [], |r| r.get(0))?)
}

fn expected_here(fleet: &TestFleet, rma: &str) -> anyhow::Result<bool> {
    Ok(site_db(fleet)?.query_row(
        "SELECT EXISTS (SELECT 1 FROM expected_returns WHERE rma = ?1)",
        [rma],
        |r| r.get(0),
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_carries_each_sites_command_position_over() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let site = fleet.site(0).id.to_string();
    for n in 1..=3 {
        register(&fleet, &format!("RMA-CARRY-{n}")).await?;
    }
    commands_synced(&fleet).await?;
    let first_epoch = fleet.coordinator().ctx().command_epoch;
    let applied = n_applied_commands(&fleet)?;

    fleet.start_coordinator().await?;
    assert_ne!(fleet.coordinator().ctx().command_epoch, first_epoch);
    register(&fleet, "RMA-CARRY-4").await?;
    commands_synced(&fleet).await?;

    assert_eq!(
        n_applied_commands(&fleet)?,
        applied + 1,
        "only the new command is applied, not the whole stream again"
    );
    assert!(expected_here(&fleet, "RMA-CARRY-4")?);
    let c = fleet.coordinator();
    assert_eq!(coordinator_count(c, REWOUND, &site).await?, 0);
    fleet.shutdown().await;
    Ok(())
}

/// The coordinator's files, as a VM snapshot would take them.
fn coordinator_files(db: &Path) -> Vec<PathBuf> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    vec![db.to_owned(), wal.into(), shm.into(), runs_path(db)]
}

fn copy_files(files: &[PathBuf], from_dir: &Path, to_dir: &Path) -> anyhow::Result<()> {
    for file in files {
        let name = file.file_name().expect("a file name");
        let (from, to) = (from_dir.join(name), to_dir.join(name));
        if from.exists() {
            std::fs::copy(&from, &to)?;
        } else if to.exists() {
            std::fs::remove_file(&to)?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_put_back_with_its_runs_file_reuses_no_seq_the_site_applied(
) -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let site = fleet.site(0).id.to_string();
    register(&fleet, "RMA-KEPT-1").await?;
    register(&fleet, "RMA-KEPT-2").await?;
    commands_synced(&fleet).await?;

    // A snapshot of the stopped coordinator: database, WAL and runs file together, so nothing
    // on its disk can tell it was put back.
    let db = fleet.coordinator_config().db_path();
    let files = coordinator_files(&db);
    let live_dir = db.parent().expect("a data dir").to_owned();
    let snapshot = fleet.dir.path().join("snapshot");
    std::fs::create_dir_all(&snapshot)?;
    fleet.coordinator.take().expect("running").shutdown().await;
    copy_files(&files, &live_dir, &snapshot)?;

    fleet.start_coordinator().await?;
    register(&fleet, "RMA-LOST-3").await?;
    register(&fleet, "RMA-LOST-4").await?;
    commands_synced(&fleet).await?;
    let head_before = coordinator_count(fleet.coordinator(), HEAD, &site).await?;

    fleet.coordinator.take().expect("running").shutdown().await;
    copy_files(&files, &snapshot, &live_dir)?;
    fleet.start_coordinator().await?;
    // The put-back database numbers on from its own head: these take the seqs of the lost two.
    register(&fleet, "RMA-AFTER-5").await?;
    register(&fleet, "RMA-AFTER-6").await?;
    let c = fleet.coordinator();
    assert_eq!(
        coordinator_count(c, HEAD, &site).await?,
        head_before,
        "the seqs of the lost commands were issued again"
    );
    commands_synced(&fleet).await?;

    for rma in ["RMA-KEPT-1", "RMA-KEPT-2", "RMA-AFTER-5", "RMA-AFTER-6"] {
        assert!(expected_here(&fleet, rma)?, "{rma} reached the site");
    }
    let c = fleet.coordinator();
    assert_eq!(coordinator_count(c, REWOUND, &site).await?, 1);
    let (_, body) = fleet.api("GET", "/api/v1/anomalies", None).await?;
    assert!(
        body.contains("coordinator database went back in time"),
        "ops see it: {body}"
    );
    fleet.shutdown().await;
    Ok(())
}
