//! The PostgreSQL backend so far, against a real server (`modori_tests::postgres`): the
//! throwaway cluster itself; TLS to it; a coordinator refusing to serve on it.

use modori_coordinator::pki::PkiPaths;
use modori_coordinator::store::pg::{Backend, PgTarget};
use modori_coordinator::Coordinator;
use modori_demo::local::{coordinator_config, ensure_pki};
use modori_tests::postgres::Cluster;
use modori_tests::small_fleet;

fn target(url: &str) -> anyhow::Result<PgTarget> {
    match Backend::parse(Some(url), None)? {
        Backend::Postgres(t) => Ok(*t),
        Backend::Sqlite => anyhow::bail!("{url} chose SQLite"),
    }
}

#[test]
fn the_throwaway_cluster_runs_unprivileged_with_fsync_and_leaves_nothing() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start()? else {
        return Ok(());
    };
    let (a, b) = (cluster.create_database()?, cluster.create_database()?);
    assert_ne!(a, b);
    let mut client = cluster.client(&a)?;
    let fsync: String = client.query_one("SHOW fsync", &[])?.get(0);
    assert_eq!(fsync, "on");
    // A fresh database holds no table of ours.
    let n: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'",
            &[],
        )?
        .get(0);
    assert_eq!(n, 0);
    // Its data lives in the cluster's temporary folder, removed below.
    let data: String = client
        .query_one("SELECT pg_catalog.current_setting('data_directory')", &[])?
        .get(0);
    assert!(
        data.starts_with(&cluster.dir().display().to_string()),
        "{data}"
    );
    let (port, dir) = (cluster.port(), cluster.dir().to_owned());
    drop(client);
    drop(cluster);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server still answers on {port}"
    );
    assert!(!dir.exists(), "{} was left behind", dir.display());
    Ok(())
}

#[test]
fn tls_to_postgres_verifies_the_server_against_storage_ca_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = PkiPaths::new(dir.path().join("pki"));
    // The fleet's server certificate (for 127.0.0.1, from the fleet CA) serves as the
    // database's.
    ensure_pki(&pki, &small_fleet(1).sites)?;
    let Some(cluster) = Cluster::start_tls(&pki.server_cert(), &pki.server_key())? else {
        return Ok(());
    };
    let db = cluster.create_database()?;
    let target = target(&cluster.url_with_sslmode(&db, "require"))?;

    // Over TLS, by the server's own account.
    let mut client = target.connect(Some(&pki.ca_cert()))?;
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()",
            &[],
        )?
        .get(0);
    assert!(ssl, "the connection is not encrypted");

    // Without the CA the certificate is not trusted: no connection, whatever `require` says.
    let refused = target
        .connect(None)
        .err()
        .expect("an untrusted server was accepted");
    assert!(refused.to_string().contains("certificate"), "{refused}");
    Ok(())
}

#[tokio::test]
async fn a_coordinator_started_on_postgres_refuses_before_touching_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = PkiPaths::new(dir.path().join("pki"));
    let fleet = small_fleet(1);
    ensure_pki(&pki, &fleet.sites)?;
    let data = dir.path().join("coordinator");
    let mut config = coordinator_config(&data, &pki, "127.0.0.1:0".parse()?);
    config.storage.url = Some("postgres://modori@127.0.0.1:1/modori".into());
    let refused = Coordinator::start(config, fleet)
        .await
        .err()
        .expect("it served on PostgreSQL");
    assert!(refused.to_string().contains("not served yet"), "{refused}");
    assert!(!data.exists(), "the SQLite data dir was made");
    Ok(())
}
