//! Wake-ups across coordinators over a real PostgreSQL (LISTEN/NOTIFY): every listener hears a
//! committed one, none a rolled-back one, and a listener cut off by a server restart connects
//! again and wakes everything for what it may have missed.

use std::sync::mpsc;
use std::time::Duration;

use modori_coordinator::store::pg::wakeups::{self, Listener, Wake};
use modori_coordinator::store::pg::PgTarget;
use modori_coordinator::store::sql::{in_transaction, PgSql, Sql, SqlError};
use modori_tests::postgres::{target, Cluster};

/// The longest a wake-up may take to arrive here: a liveness bound for two busy cores, not a
/// measured latency.
const ARRIVAL_BOUND: Duration = Duration::from_secs(60);

fn listener(target: &PgTarget) -> anyhow::Result<(Listener, mpsc::Receiver<Wake>)> {
    let (tx, rx) = mpsc::channel();
    let l = Listener::start(target.clone(), None, move |w| {
        let _ = tx.send(w);
    })?;
    Ok((l, rx))
}

/// Sends a marker until every listener has heard it, so each is known to be listening, then
/// drops whatever else they heard meanwhile.
fn until_listening(conn: &mut dyn Sql, rxs: &[&mpsc::Receiver<Wake>]) -> anyhow::Result<()> {
    let marker = Wake::Commands("ready".into());
    for rx in rxs {
        let deadline = std::time::Instant::now() + ARRIVAL_BOUND;
        loop {
            wakeups::send(conn, &marker)?;
            if rx.recv_timeout(Duration::from_millis(200)).ok() == Some(marker.clone()) {
                break;
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "a listener never listened"
            );
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    for rx in rxs {
        while rx.try_recv().is_ok() {}
    }
    Ok(())
}

#[test]
fn every_listener_hears_a_committed_wake_and_none_a_rolled_back_one() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::shared()? else {
        return Ok(());
    };
    let url = cluster.url(&cluster.create_database()?);
    let target = target(&url)?;
    let mut conn = PgSql::new(target.connect(None)?);
    let (a, rx_a) = listener(&target)?;
    let (b, rx_b) = listener(&target)?;
    until_listening(&mut conn, &[&rx_a, &rx_b])?;

    // Sent inside a transaction that then fails: never delivered.
    let failed: Result<(), SqlError> = in_transaction(&mut conn, |tx| {
        wakeups::send(tx, &Wake::Commands("osaka".into()))?;
        Err(SqlError::NoRow)
    });
    assert!(failed.is_err());
    // Sent inside one that commits: delivered to both, after the commit.
    in_transaction(&mut conn, |tx| {
        wakeups::send(tx, &Wake::Webhooks)?;
        wakeups::send(tx, &Wake::Commands("sapporo".into()))
    })?;
    for rx in [&rx_a, &rx_b] {
        // Notifications arrive in commit order: had the rolled-back one been sent, it would
        // come first.
        assert_eq!(rx.recv_timeout(ARRIVAL_BOUND)?, Wake::Webhooks);
        assert_eq!(
            rx.recv_timeout(ARRIVAL_BOUND)?,
            Wake::Commands("sapporo".into())
        );
    }
    a.stop();
    b.stop();
    Ok(())
}

#[test]
fn on_sqlite_a_wake_is_nothing_to_send() -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open_in_memory()?;
    wakeups::send(&mut conn, &Wake::Webhooks)?;
    Ok(())
}

#[test]
fn a_listener_cut_off_by_a_restart_connects_again_and_wakes_everything() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start()? else {
        return Ok(());
    };
    let url = cluster.url(&cluster.create_database()?);
    let target = target(&url)?;
    let (listening, rx) = listener(&target)?;
    until_listening(&mut PgSql::new(target.connect(None)?), &[&rx])?;

    cluster.stop()?;
    cluster.restart()?;
    // What was sent while it was away is lost: it wakes everything once it is back.
    let first = rx.recv_timeout(ARRIVAL_BOUND)?;
    assert_eq!(first, Wake::All);
    let mut conn = PgSql::new(target.connect(None)?);
    wakeups::send(&mut conn, &Wake::CustomerMessages)?;
    let next = loop {
        match rx.recv_timeout(ARRIVAL_BOUND)? {
            Wake::All => continue,
            other => break other,
        }
    };
    assert_eq!(next, Wake::CustomerMessages);
    listening.stop();
    Ok(())
}
