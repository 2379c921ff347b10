//! Leases on background work: the same answers on SQLite and on a real PostgreSQL, one holder
//! out of many asking at once on separate connections of each backend, and a coordinator that
//! holds its workers' leases while it runs and gives them up when it stops.

use std::time::Duration;

use modori_coordinator::store::leases::{self, Lease};
use modori_coordinator::store::pg::migrate;
use modori_coordinator::store::pg::pool::{PgDb, PoolSettings};
use modori_coordinator::store::sql::Sql;
use modori_tests::postgres::{same_on_both, target, Cluster};
use modori_tests::{http_get, small_fleet, TestFleet};

const TERM: i64 = 30_000;

fn held(lease: &Lease) -> bool {
    matches!(lease, Lease::Held { .. })
}

#[test]
fn one_holder_at_a_time_until_the_term_passes_on_both_backends() -> anyhow::Result<()> {
    same_on_both(|c: &mut dyn Sql| {
        let mut seen = Vec::new();
        let a = leases::acquire(c, "webhooks", "replica-a", 1_000, TERM)?;
        assert_eq!(
            a,
            Lease::Held {
                taken_ms: 1_000,
                expires_ms: 1_000 + TERM
            }
        );
        seen.push(a);
        // Another replica is refused while A's term runs, and told whose it is.
        let b = leases::acquire(c, "webhooks", "replica-b", 2_000, TERM)?;
        assert_eq!(
            b,
            Lease::HeldBy {
                holder: "replica-a".into(),
                expires_ms: 1_000 + TERM
            }
        );
        seen.push(b);
        // Another lease is free for B.
        assert!(held(&leases::acquire(
            c,
            "customer_messages",
            "replica-b",
            2_000,
            TERM
        )?));
        // A renews: its hold began at its first take; the term runs from now.
        let renewed = leases::acquire(c, "webhooks", "replica-a", 20_000, TERM)?;
        assert_eq!(
            renewed,
            Lease::Held {
                taken_ms: 1_000,
                expires_ms: 20_000 + TERM
            }
        );
        seen.push(renewed);
        // A stops renewing (it died): B takes the lease once the term has passed, not before.
        assert!(!held(&leases::acquire(
            c,
            "webhooks",
            "replica-b",
            20_000 + TERM - 1,
            TERM
        )?));
        let taken_over = leases::acquire(c, "webhooks", "replica-b", 20_000 + TERM, TERM)?;
        assert_eq!(
            taken_over,
            Lease::Held {
                taken_ms: 20_000 + TERM,
                expires_ms: 20_000 + 2 * TERM
            }
        );
        seen.push(taken_over);
        // A, back, is refused; B gives it up at its stop and A may take it at once.
        assert!(!held(&leases::acquire(
            c,
            "webhooks",
            "replica-a",
            20_000 + TERM + 1,
            TERM
        )?));
        assert!(!leases::release(c, "webhooks", "replica-a")?, "not A's");
        assert!(leases::release(c, "webhooks", "replica-b")?);
        assert!(held(&leases::acquire(
            c,
            "webhooks",
            "replica-a",
            20_000 + TERM + 2,
            TERM
        )?));
        let all: Vec<(String, String)> = leases::all(c)?
            .into_iter()
            .map(|l| (l.name, l.holder))
            .collect();
        assert_eq!(
            all,
            [
                ("customer_messages".into(), "replica-b".into()),
                ("webhooks".into(), "replica-a".into())
            ]
        );
        Ok(seen)
    })?;
    Ok(())
}

/// Replicas asking for the same free lease at the same instant, each on a connection of its
/// own: exactly one gets it.
const RIVALS: usize = 12;

fn rivals_on(connect: impl Fn() -> anyhow::Result<Box<dyn Sql + Send>>) -> anyhow::Result<usize> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(RIVALS));
    let threads: Vec<_> = (0..RIVALS)
        .map(|i| {
            let mut conn = connect()?;
            let barrier = barrier.clone();
            Ok(std::thread::spawn(move || {
                barrier.wait();
                leases::acquire(
                    conn.as_mut(),
                    "sweeps",
                    &format!("replica-{i}"),
                    5_000,
                    TERM,
                )
            }))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut winners = 0;
    for t in threads {
        let lease = t
            .join()
            .map_err(|_| anyhow::anyhow!("a rival panicked"))??;
        winners += usize::from(held(&lease));
    }
    Ok(winners)
}

#[test]
fn rivals_on_separate_connections_get_one_holder_on_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("coordinator.db");
    let mut first = rusqlite::Connection::open(&path)?;
    modori_coordinator::store::migrations().to_latest(&mut first)?;
    let winners = rivals_on(|| {
        let c = rusqlite::Connection::open(&path)?;
        c.busy_timeout(Duration::from_secs(30))?;
        Ok(Box::new(c))
    })?;
    assert_eq!(winners, 1);
    Ok(())
}

#[test]
fn rivals_on_separate_connections_get_one_holder_on_postgres() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::shared()? else {
        return Ok(());
    };
    let target = target(&cluster.url(&cluster.create_database()?))?;
    let mut client = target.connect(None)?;
    migrate::to_latest(&mut client, &target)?;
    let winners = rivals_on(|| {
        Ok(Box::new(modori_coordinator::store::sql::PgSql::new(
            target.connect(None)?,
        )))
    })?;
    assert_eq!(winners, 1);
    // The pool's connections ask as the coordinator will: still that one holder.
    let rt = tokio::runtime::Runtime::new()?;
    let again = rt.block_on(async {
        let db = PgDb::open(&target, None, PoolSettings::default()).await?;
        db.call(|c| leases::acquire(c, "sweeps", "replica-late", 6_000, TERM))
            .await
            .map_err(anyhow::Error::from)
    })?;
    assert!(!held(&again), "{again:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_holds_its_workers_leases_and_gives_them_up_at_stop() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (status, text) = http_get(fleet.http(), "/metrics").await?;
    assert_eq!(status, 200);
    assert!(
        text.contains("modori_lease_held{lease=\"sweeps\"} 1"),
        "the sweeps' lease is not held:\n{text}"
    );
    let holder = fleet
        .coordinator()
        .ctx()
        .db
        .call(|c| leases::all(c))
        .await?;
    assert_eq!(holder.len(), 1, "{holder:?}");
    assert_eq!(holder[0].name, "sweeps");
    assert!(
        holder[0]
            .holder
            .starts_with(&fleet.coordinator().quic_addr().to_string()),
        "{holder:?}"
    );

    // A clean stop gives the leases up: a replica need not wait out their term.
    let db_path = fleet.coordinator_config().db_path();
    fleet.coordinator.take().expect("running").shutdown().await;
    let conn = rusqlite::Connection::open(&db_path)?;
    let left: i64 = conn.query_row("SELECT COUNT(*) FROM leases", [], |r| r.get(0))?;
    assert_eq!(left, 0, "leases left behind at a clean stop");
    drop(conn);
    fleet.start_coordinator().await?;
    fleet.shutdown().await;
    Ok(())
}
