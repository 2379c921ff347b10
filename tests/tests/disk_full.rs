//! A full disk at a site: past its size cap the database refuses new work with a clear error,
//! the database and its WAL together never pass the cap, nothing half-written appears, the file stays intact, and every receipt confirmed before
//! still reaches the coordinator exactly once.

use std::time::Duration;

use modori_agent::store::StoreError;
use modori_agent::{Agent, AgentError};
use modori_runtime::sqlite::bytes_on_disk;
use modori_shared::domain::Sku;
use modori_tests::{coordinator_count, wait_for, TestFleet};

/// Small enough to fill in a few hundred receipts.
const DATABASE_BYTES_MAX: u64 = 160 * 1024;
const RECEIPTS_MAX: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_refuses_new_work_and_loses_nothing() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    fleet.stop_agent(0).await;
    let mut config = fleet.agent_config(0);
    config.storage.database_bytes_max = Some(DATABASE_BYTES_MAX);
    let db_path = config.db_path();
    let agent = Agent::start(config).await?;
    let handle = agent.handle();

    let mut confirmed = 0u64;
    let refusal = loop {
        match handle
            .receive_unit(None, Sku::new("JKT-DENIM-L")?, "B")
            .await
        {
            Ok(_) => confirmed += 1,
            Err(e) => break e,
        }
        // The cap is on the disk: the database and its write-ahead log together, measured
        // between jobs of the database thread (a status read queues behind the receipt).
        handle.status().await?;
        let on_disk = bytes_on_disk(&db_path);
        assert!(
            on_disk <= DATABASE_BYTES_MAX,
            "{on_disk} bytes on disk after {confirmed} receipts, past the cap of {DATABASE_BYTES_MAX}"
        );
        assert!((confirmed as usize) < RECEIPTS_MAX, "the cap never bit");
    };
    assert!(
        matches!(refusal, AgentError::Store(StoreError::Full)),
        "{refusal}"
    );
    assert!(refusal.to_string().contains("full"), "{refusal}");
    // Refused again, and nothing half-written: the outbox holds exactly the confirmed receipts.
    assert!(handle
        .receive_unit(None, Sku::new("JKT-DENIM-L")?, "B")
        .await
        .is_err());
    assert_eq!(handle.status().await?.outbox_head_seq, confirmed);

    let site = fleet.site(0).id.to_string();
    let c = fleet.coordinator();
    wait_for("confirmed receipts synced", Duration::from_secs(60), || {
        let site = site.clone();
        async move {
            Ok(
                coordinator_count(c, "SELECT COUNT(*) FROM ops WHERE site = ?1", &site).await?
                    >= confirmed,
            )
        }
    })
    .await?;
    assert_eq!(
        coordinator_count(c, "SELECT COUNT(*) FROM ops WHERE site = ?1", &site).await?,
        confirmed
    );
    assert_eq!(
        coordinator_count(c, "SELECT COUNT(*) FROM units WHERE site = ?1", &site).await?,
        confirmed
    );

    let check = rusqlite::Connection::open_with_flags(
        &db_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let integrity: String = check.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    assert_eq!(integrity, "ok");
    agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}
