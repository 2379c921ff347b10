//! The coordinator's pool of PostgreSQL connections against a real server: writers on
//! different connections never interleave, a server that restarts is reconnected to with
//! nothing lost, and an unreachable one is named.

use std::time::Duration;

use modori_coordinator::store::pg::pool::{PgDb, PoolSettings};
use modori_coordinator::store::pg::PgError;
use modori_coordinator::store::sql::{in_transaction, SqlError};
use modori_tests::postgres::{target, Cluster};

const TABLE: &str = "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);
                     INSERT INTO counter VALUES (1, 0)";

/// The driver's blocking client (the test cluster's) must not run on the async runtime, so the
/// tests drive their own.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

#[test]
fn writers_on_every_connection_of_the_pool_never_interleave() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::shared()? else {
        return Ok(());
    };
    let url = cluster.url(&cluster.create_database()?);
    runtime()?.block_on(interleaving(&url))
}

async fn interleaving(url: &str) -> anyhow::Result<()> {
    let settings = PoolSettings {
        size: 6,
        checkout_timeout: Duration::from_secs(60),
    };
    let db = PgDb::open(&target(url)?, None, settings).await?;
    db.call(|c| c.batch(TABLE)).await?;
    const WRITERS: i64 = 48;
    // Each reads the counter and writes it back one higher, with a pause between: two writers
    // inside that gap at once would both write the same value and one increment would be lost.
    let calls: Vec<_> = (0..WRITERS)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                db.call(|c| {
                    in_transaction(c, |tx| {
                        let n: i64 = tx.one_value("SELECT n FROM counter WHERE id = 1", &[])?;
                        std::thread::sleep(Duration::from_millis(3));
                        tx.execute("UPDATE counter SET n = ?1 WHERE id = 1", &[&(n + 1)])?;
                        Ok::<_, SqlError>(())
                    })
                })
                .await
            })
        })
        .collect();
    for call in calls {
        call.await??;
    }
    let (open, _) = db.connections();
    assert!(open > 1, "the calls ran on one connection only ({open})");
    let n: i64 = db
        .call(|c| c.one_value("SELECT n FROM counter WHERE id = 1", &[]))
        .await?;
    assert_eq!(n, WRITERS, "increments lost to interleaved writers");
    Ok(())
}

#[test]
fn a_restarted_server_is_reconnected_to_and_nothing_committed_is_lost() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start()? else {
        return Ok(());
    };
    let url = cluster.url(&cluster.create_database()?);
    runtime()?.block_on(restart(&cluster, &url))
}

async fn restart(cluster: &Cluster, url: &str) -> anyhow::Result<()> {
    let target = target(url)?;
    let settings = PoolSettings {
        size: 3,
        checkout_timeout: Duration::from_secs(3),
    };
    let db = PgDb::open(&target, None, settings).await?;
    db.call(|c| c.batch(TABLE)).await?;
    for _ in 0..5 {
        db.call(|c| {
            in_transaction(c, |tx| {
                tx.execute("UPDATE counter SET n = n + 1 WHERE id = 1", &[])
            })
        })
        .await?;
    }

    cluster.stop()?;
    let down: Result<i64, SqlError> = db
        .call(|c| c.one_value("SELECT n FROM counter WHERE id = 1", &[]))
        .await;
    let err = down.expect_err("answered with the server stopped");
    assert!(
        matches!(err, SqlError::Connection(_)),
        "not a connection error: {err}"
    );
    assert!(
        err.to_string().contains(&target.describe()),
        "the server is not named: {err}"
    );

    cluster.restart()?;
    // The pool's connections died with the server; the first call after finds them broken
    // and connects again, without the coordinator restarting.
    let n: i64 = db
        .call(|c| c.one_value("SELECT n FROM counter WHERE id = 1", &[]))
        .await?;
    assert_eq!(n, 5, "commits before the restart");
    db.call(|c| {
        in_transaction(c, |tx| {
            tx.execute("UPDATE counter SET n = n + 1 WHERE id = 1", &[])
        })
    })
    .await?;
    let n: i64 = db
        .call(|c| c.one_value("SELECT n FROM counter WHERE id = 1", &[]))
        .await?;
    assert_eq!(n, 6);
    Ok(())
}

#[tokio::test]
async fn a_server_that_is_not_there_is_named_at_open() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url =
        format!("postgres://modori:pw@127.0.0.1:{port}/modori?sslmode=disable&connect_timeout=2");
    let target = target(&url)?;
    match PgDb::open(&target, None, PoolSettings::default()).await {
        Err(e @ PgError::Connect { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&format!("127.0.0.1:{port}/modori")), "{text}");
            assert!(!text.contains("pw"), "the password leaked: {text}");
        }
        Err(e) => panic!("not a connection error: {e}"),
        Ok(_) => panic!("opened a pool to nothing"),
    }
    Ok(())
}
