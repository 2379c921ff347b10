//! The PostgreSQL backend so far, against a real server (`modori_tests::postgres`): the
//! throwaway cluster itself; the schema from one list of migrations on both backends, compared
//! table by table; migrators racing on one database; TLS to it; a coordinator refusing to
//! serve on it.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use modori_coordinator::pki::PkiPaths;
use modori_coordinator::store::pg::migrate::{self, VERSIONS_TABLE};
use modori_coordinator::store::pg::{Backend, PgTarget};
use modori_coordinator::store::{migrations, MIGRATIONS};
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

/// A fresh database of the shared cluster, its URL and a client; `None` when PostgreSQL is
/// missing and not required.
fn fresh_database() -> anyhow::Result<Option<(Arc<Cluster>, String)>> {
    let Some(cluster) = Cluster::shared()? else {
        return Ok(None);
    };
    let db = cluster.create_database()?;
    let url = cluster.url(&db);
    Ok(Some((cluster, url)))
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

/// A table as both backends can describe it: columns in order (name, type class, NOT NULL),
/// the primary key, and every other index (columns, unique, partial).
#[derive(Debug, PartialEq, Eq)]
struct Table {
    name: String,
    columns: Vec<(String, String, bool)>,
    primary_key: Vec<String>,
    indexes: BTreeSet<(Vec<String>, bool, bool)>,
}

fn class(declared: &str) -> String {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" | "smallint" => "integer",
        "text" | "character varying" => "text",
        "blob" | "bytea" => "blob",
        "real" | "double precision" => "real",
        other => return other.to_owned(),
    }
    .to_owned()
}

fn sqlite_tables(conn: &rusqlite::Connection) -> anyhow::Result<Vec<Table>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut tables = Vec::new();
    for name in names {
        let mut columns = Vec::new();
        let mut pk: Vec<(i64, String)> = Vec::new();
        let mut stmt =
            conn.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)")?;
        let mut rows = stmt.query([&name])?;
        while let Some(r) = rows.next()? {
            let (col, ty, notnull, in_pk): (String, String, bool, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            // SQLite lets a rowid table's TEXT key hold NULL (a legacy quirk); the store never
            // writes one, and PostgreSQL's keys are NOT NULL: a key column counts as NOT NULL.
            columns.push((col.clone(), class(&ty), notnull || in_pk > 0));
            if in_pk > 0 {
                pk.push((in_pk, col));
            }
        }
        pk.sort();
        let mut indexes = BTreeSet::new();
        let list: Vec<(String, bool, String, bool)> = conn
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")?
            .query_map([&name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        for (index, unique, origin, partial) in list {
            if origin == "pk" {
                continue;
            }
            let cols: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
                .query_map([&index], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            indexes.insert((cols, unique, partial));
        }
        tables.push(Table {
            name,
            columns,
            primary_key: pk.into_iter().map(|(_, c)| c).collect(),
            indexes,
        });
    }
    Ok(tables)
}

fn postgres_tables(client: &mut postgres::Client) -> anyhow::Result<Vec<Table>> {
    let names: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_catalog.pg_tables \
             WHERE schemaname = current_schema() AND tablename <> $1 ORDER BY tablename",
            &[&VERSIONS_TABLE],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut tables = Vec::new();
    for name in names {
        let columns = client
            .query(
                "SELECT column_name::text, data_type::text, is_nullable = 'NO' \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
                &[&name],
            )?
            .iter()
            .map(|r| (r.get(0), class(r.get(1)), r.get(2)))
            .collect();
        let mut primary_key = Vec::new();
        let mut indexes = BTreeSet::new();
        for r in client.query(
            "SELECT i.indisprimary, i.indisunique, i.indpred IS NOT NULL, \
                    ARRAY(SELECT a.attname::text \
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                          JOIN pg_catalog.pg_attribute a \
                            ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                          ORDER BY k.ord) \
             FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_class t ON t.oid = i.indrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = current_schema() AND t.relname = $1",
            &[&name],
        )? {
            let (primary, unique, partial, cols): (bool, bool, bool, Vec<String>) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            if primary {
                primary_key = cols;
            } else {
                indexes.insert((cols, unique, partial));
            }
        }
        tables.push(Table {
            name,
            columns,
            primary_key,
            indexes,
        });
    }
    Ok(tables)
}

#[test]
fn both_backends_migrate_to_the_same_tables_columns_keys_and_indexes() -> anyhow::Result<()> {
    let Some((_cluster, url)) = fresh_database()? else {
        return Ok(());
    };
    let mut conn = rusqlite::Connection::open_in_memory()?;
    migrations().to_latest(&mut conn)?;
    let sqlite = sqlite_tables(&conn)?;

    let target = target(&url)?;
    let mut client = target.connect(None)?;
    assert_eq!(migrate::to_latest(&mut client, &target)?, MIGRATIONS.len());
    let postgres = postgres_tables(&mut client)?;

    let names = |t: &[Table]| t.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&sqlite), names(&postgres), "the tables differ");
    assert!(sqlite.len() > 30, "only {} tables", sqlite.len());
    for (s, p) in sqlite.iter().zip(&postgres) {
        assert_eq!(
            s, p,
            "table {} differs (left SQLite, right PostgreSQL)",
            s.name
        );
    }
    // Migrated again: nothing to apply, nothing changed.
    assert_eq!(migrate::to_latest(&mut client, &target)?, 0);
    assert_eq!(postgres_tables(&mut client)?, postgres);
    Ok(())
}

#[test]
fn migrators_starting_together_apply_each_migration_once() -> anyhow::Result<()> {
    let Some((_cluster, url)) = fresh_database()? else {
        return Ok(());
    };
    const N_MIGRATORS: usize = 3;
    let barrier = Arc::new(Barrier::new(N_MIGRATORS));
    let handles: Vec<_> = (0..N_MIGRATORS)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || -> anyhow::Result<usize> {
                let target = target(&url)?;
                let mut client = target.connect(None)?;
                barrier.wait();
                Ok(migrate::to_latest(&mut client, &target)?)
            })
        })
        .collect();
    let mut applied = Vec::new();
    for h in handles {
        applied.push(
            h.join()
                .map_err(|_| anyhow::anyhow!("a migrator panicked"))??,
        );
    }
    assert_eq!(
        applied.iter().sum::<usize>(),
        MIGRATIONS.len(),
        "each migration once in all: {applied:?}"
    );
    let target = target(&url)?;
    let mut client = target.connect(None)?;
    let versions: Vec<i64> = client
        .query(
            &format!("SELECT version FROM {VERSIONS_TABLE} ORDER BY version"),
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i64> = (1..=i64::try_from(MIGRATIONS.len())?).collect();
    assert_eq!(versions, expected);
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
