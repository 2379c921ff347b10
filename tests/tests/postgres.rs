//! The throwaway PostgreSQL the PostgreSQL tests run against (`modori_tests::postgres`).

use modori_tests::postgres::Cluster;

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
