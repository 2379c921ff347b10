//! The PostgreSQL backend so far, against a real server (`modori_tests::postgres`): the
//! throwaway cluster itself; the schema from one list of migrations on both backends, compared
//! table by table; migrators racing on one database; `modori-coordinator check` on both
//! backends (current, a migration behind, newer than the build, a stopped server); TLS to it;
//! `run` refusing to serve on PostgreSQL after reaching it.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use anyhow::Context;
use modori_coordinator::pki::PkiPaths;
use modori_coordinator::store::pg::migrate::{self, VERSIONS_TABLE};
use modori_coordinator::store::{migrations, MIGRATIONS};
use modori_coordinator::Coordinator;
use modori_demo::local::{coordinator_config, ensure_pki};
use modori_tests::postgres::{target, Cluster};
use modori_tests::procs::{Binaries, ProcFleet};
use modori_tests::small_fleet;

const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};
/// Generous: two cores run the server, the coordinator and other tests at once.
const TIMEOUT: Duration = Duration::from_secs(60);

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
            // An expression's column has no name (an index on `lower(order_ref)`).
            let cols: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
                .query_map([&index], |r| {
                    Ok(r.get::<_, Option<String>>(0)?
                        .unwrap_or_else(|| EXPRESSION.to_owned()))
                })?
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

/// An index column that is an expression, on either backend (its text is not compared).
const EXPRESSION: &str = "(expression)";

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
                    ARRAY(SELECT COALESCE(a.attname::text, $2) \
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                          LEFT JOIN pg_catalog.pg_attribute a \
                            ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                          ORDER BY k.ord) \
             FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_class t ON t.oid = i.indrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = current_schema() AND t.relname = $1",
            &[&name, &EXPRESSION],
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

/// A coordinator's config files (no agents) with `storage.url` set to `url`.
fn fleet_with_url(url: Option<&str>) -> anyhow::Result<ProcFleet> {
    let site = modori_tests::real_fleet().sites[0].clone();
    let f = ProcFleet::with_sites(BINS, Vec::new(), vec![site])?;
    let url = url.map(str::to_owned);
    f.edit_coordinator_config(|c| c.storage.url = url)?;
    Ok(f)
}

/// `modori-coordinator ARGS --config` of `f` with `env` set: (success, output).
fn coordinator(
    f: &ProcFleet,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<(bool, String)> {
    let out = Command::new(BINS.coordinator)
        .args(args)
        .arg("--config")
        .arg(f.dir.path().join("coordinator.toml"))
        .env_remove("FAILPOINTS")
        .env_remove("PGPASSWORD")
        .envs(env.iter().copied())
        .output()
        .context("running the coordinator")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ modori-coordinator {}\n{text}", args.join(" "));
    Ok((out.status.success(), text))
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no `{name}` line in: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_on_sqlite_says_reachable_current_behind_and_newer() -> anyhow::Result<()> {
    let mut f = fleet_with_url(None)?;
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(ok, "{out}");
    assert!(line(&out, "database").starts_with("WARN"), "{out}");
    assert!(
        line(&out, "database").contains("does not exist yet"),
        "{out}"
    );

    // Beside the running coordinator: it holds the sweeps' lease, under its QUIC address.
    f.start_coordinator(None).await?;
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(ok, "{out}");
    let seen = line(&out, "coordinators");
    assert!(
        seen.starts_with("PASS")
            && seen.contains("1 coordinator running: ")
            && seen.contains(&f.quic_addr().to_string())
            && seen.contains("(sweeps)"),
        "{out}"
    );
    // Killed, it leaves its leases held: seen running until their term runs out.
    f.kill_coordinator()?;
    let (_, out) = coordinator(&f, &["check"], &[])?;
    assert!(
        line(&out, "coordinators").contains("1 coordinator running"),
        "{out}"
    );
    // Stopped cleanly, it gave them up.
    f.start_coordinator(None).await?;
    f.terminate_coordinator(TIMEOUT).await?;
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(ok, "{out}");
    let seen = line(&out, "coordinators");
    assert!(
        seen.starts_with("PASS") && seen.contains("none running now"),
        "{out}"
    );
    let db = line(&out, "database");
    assert!(
        db.starts_with("PASS") && db.contains("reachable in ") && db.contains(" ms"),
        "{out}"
    );
    let n = MIGRATIONS.len();
    assert!(
        line(&out, "migrations").contains(&format!("current ({n} of {n})")),
        "{out}"
    );

    // A database one migration behind: what a start of this build would bring up to date.
    let path = f.coordinator_db_path();
    for file in [
        path.clone(),
        path.with_extension("db-wal"),
        path.with_extension("db-shm"),
    ] {
        if file.exists() {
            std::fs::remove_file(&file)?;
        }
    }
    let mut conn = rusqlite::Connection::open(&path)?;
    migrations().to_version(&mut conn, n - 1)?;
    drop(conn);
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(ok, "{out}");
    let behind = line(&out, "migrations");
    assert!(
        behind.starts_with("WARN") && behind.contains("1 migration to apply"),
        "{out}"
    );

    // Newer than this build: refused, and the start refuses it too.
    let conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "user_version", n + 1)?;
    drop(conn);
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(!ok, "{out}");
    let newer = line(&out, "migrations");
    assert!(
        newer.starts_with("FAIL") && newer.contains("database is newer than this build"),
        "{out}"
    );
    Ok(())
}

/// A database whose text would not compare byte by byte as SQLite's does (an ICU locale, an
/// encoding other than UTF-8) is refused by `check` and by the migrator, which creates nothing.
#[test]
fn a_database_that_sorts_text_otherwise_is_refused_before_anything_is_created() -> anyhow::Result<()>
{
    let Some(cluster) = Cluster::start()? else {
        return Ok(());
    };
    let mut admin = cluster.client("postgres")?;
    for (name, options, said) in [
        (
            "modori_icu",
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
            "ICU locale",
        ),
        (
            "modori_latin1",
            "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'",
            "LATIN1",
        ),
    ] {
        admin.batch_execute(&format!(
            "CREATE DATABASE {name}_{} TEMPLATE template0 {options}",
            std::process::id()
        ))?;
        let db = format!("{name}_{}", std::process::id());
        let url = cluster.url(&db);
        let target = target(&url)?;
        let f = fleet_with_url(Some(&url))?;
        let (ok, out) = coordinator(&f, &["check"], &[])?;
        assert!(!ok, "{out}");
        let refused = line(&out, "database");
        assert!(
            refused.starts_with("FAIL") && refused.contains(said) && refused.contains("LOCALE 'C'"),
            "{out}"
        );
        let mut client = target.connect(None)?;
        assert!(matches!(
            migrate::to_latest(&mut client, &target),
            Err(modori_coordinator::store::pg::PgError::TextOrder { .. })
        ));
        let n_tables: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
                &[],
            )?
            .get(0);
        assert_eq!(n_tables, 0, "{db}: nothing created");
    }
    Ok(())
}

#[test]
fn check_on_postgres_says_reachable_current_behind_newer_and_stopped() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start()? else {
        return Ok(());
    };
    let db = cluster.create_database()?;
    let url = cluster.url(&db);
    let target = target(&url)?;
    let f = fleet_with_url(Some(&url))?;
    let n = MIGRATIONS.len();

    // Never migrated: every migration to apply.
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(ok, "{out}");
    let db_line = line(&out, "database");
    assert!(
        db_line.starts_with("PASS") && db_line.contains("reachable in "),
        "{out}"
    );
    assert!(
        !out.contains(modori_tests::postgres::SUPERUSER_PASSWORD),
        "{out}"
    );
    assert!(
        line(&out, "migrations").contains(&format!("{n} migrations to apply")),
        "{out}"
    );

    // One migration behind.
    let mut client = target.connect(None)?;
    migrate::to_version(&mut client, &target, n - 1)?;
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(ok, "{out}");
    let behind = line(&out, "migrations");
    assert!(
        behind.starts_with("WARN") && behind.contains("1 migration to apply"),
        "{out}"
    );

    // Current, with the password from PGPASSWORD instead of the URL.
    migrate::to_latest(&mut client, &target)?;
    f.edit_coordinator_config(|c| c.storage.url = Some(cluster.url_without_password(&db)))?;
    let (ok, out) = coordinator(
        &f,
        &["check"],
        &[("PGPASSWORD", modori_tests::postgres::SUPERUSER_PASSWORD)],
    )?;
    assert!(ok, "{out}");
    assert!(
        line(&out, "migrations").contains(&format!("current ({n} of {n})")),
        "{out}"
    );
    // Without it the server refuses us, and check says so.
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(!ok, "{out}");
    assert!(line(&out, "database").starts_with("FAIL"), "{out}");
    assert!(out.contains("password"), "{out}");
    f.edit_coordinator_config(|c| c.storage.url = Some(url.clone()))?;

    // Newer than this build: refused, untouched.
    client.execute(
        &format!("INSERT INTO {VERSIONS_TABLE} (version) VALUES ($1)"),
        &[&i64::try_from(n + 1)?],
    )?;
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(!ok, "{out}");
    assert!(
        line(&out, "migrations").contains("database is newer than this build"),
        "{out}"
    );
    assert!(matches!(
        migrate::to_latest(&mut client, &target),
        Err(modori_coordinator::store::pg::PgError::Newer { .. })
    ));
    drop(client);

    // The server gone: unreachable, said on one line, exit 1.
    cluster.stop()?;
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(!ok, "{out}");
    let gone = line(&out, "database");
    assert!(
        gone.starts_with("FAIL") && gone.contains("unreachable"),
        "{out}"
    );
    assert!(
        out.contains(&format!("127.0.0.1:{}", cluster.port())),
        "{out}"
    );
    Ok(())
}

#[test]
fn run_on_postgres_reaches_it_then_refuses_to_serve() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start()? else {
        return Ok(());
    };
    let db = cluster.create_database()?;
    let url = cluster.url(&db);
    let f = fleet_with_url(Some(&url))?;

    let (ok, out) = coordinator(&f, &["run"], &[])?;
    assert!(!ok, "it served: {out}");
    assert!(out.contains("is reachable and its schema current"), "{out}");
    assert!(out.contains("not serving"), "{out}");
    assert!(
        !out.contains(modori_tests::postgres::SUPERUSER_PASSWORD),
        "{out}"
    );
    // Reaching it brought the schema up to this build.
    let target = target(&url)?;
    let mut client = target.connect(None)?;
    let status = migrate::status(&mut client, &target)?;
    assert_eq!(status.applied, MIGRATIONS.len());
    // Nothing was made of the SQLite file it did not serve from.
    assert!(!f.coordinator_db_path().exists());
    drop(client);

    cluster.stop()?;
    let (ok, out) = coordinator(&f, &["run"], &[])?;
    assert!(!ok, "{out}");
    assert!(out.contains("is not usable"), "{out}");
    assert!(out.contains("not serving"), "{out}");

    // The commands that work on the SQLite file refuse rather than act on a file that is not
    // the database.
    let backup = f.dir.path().join("backup.db");
    for args in [
        vec!["backup", backup.to_str().context("path")?],
        vec!["keys", "list"],
    ] {
        let (ok, out) = coordinator(&f, &args, &[])?;
        assert!(!ok, "{out}");
        assert!(out.contains("works on the SQLite database"), "{out}");
    }
    assert!(!backup.exists());

    // A malformed URL is refused when the config loads, naming the key.
    f.edit_coordinator_config(|c| {
        c.storage.url = Some("postgres://modori@db/modori?sslmode=sometimes".into())
    })?;
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(!ok, "{out}");
    assert!(out.contains("storage.url"), "{out}");
    Ok(())
}

#[test]
fn tls_to_postgres_verifies_the_server_against_storage_ca_file() -> anyhow::Result<()> {
    let f = fleet_with_url(None)?;
    // The fleet's server certificate (for 127.0.0.1, from the fleet CA) serves as the
    // database's.
    let pki = f.pki();
    let Some(cluster) = Cluster::start_tls(&pki.server_cert(), &pki.server_key())? else {
        return Ok(());
    };
    let db = cluster.create_database()?;
    let url = cluster.url_with_sslmode(&db, "require");
    let target = target(&url)?;

    // Over TLS, by the server's own account.
    let mut client = target.connect(Some(&pki.ca_cert()))?;
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()",
            &[],
        )?
        .get(0);
    assert!(ssl, "the connection is not encrypted");
    drop(client);

    let ca = pki.ca_cert();
    f.edit_coordinator_config(|c| {
        c.storage.url = Some(url.clone());
        c.storage.ca_file = Some(ca);
    })?;
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(ok, "{out}");
    assert!(line(&out, "database").starts_with("PASS"), "{out}");

    // Without the CA the certificate is not trusted: no connection, whatever `require` says.
    f.edit_coordinator_config(|c| c.storage.ca_file = None)?;
    let (ok, out) = coordinator(&f, &["check"], &[])?;
    assert!(!ok, "{out}");
    assert!(line(&out, "database").starts_with("FAIL"), "{out}");
    assert!(out.contains("certificate"), "{out}");
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
    assert!(refused.to_string().contains("not serving"), "{refused}");
    assert!(!data.exists(), "the SQLite data dir was made");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_copies_a_real_coordinators_database_row_for_row() -> anyhow::Result<()> {
    // The PostgreSQL client and the commands block: off the runtime's workers.
    use tokio::task::block_in_place as blocking;
    let Some(cluster) = blocking(Cluster::shared)? else {
        return Ok(());
    };
    let site = modori_tests::real_fleet().sites[0].clone();
    let mut f = ProcFleet::with_sites(BINS, vec![site.clone()], Vec::new())?;
    f.start_coordinator(None).await?;
    f.start_agent(0, None)?;
    // Returns registered over the API (commands queued to the site) and receipts the site
    // sends (ops applied), for a database a real run filled.
    for k in 0..3 {
        let body = serde_json::json!({
            "rma": format!("RMA-MOVE-{k}"),
            "origin": {"latitude": site.location.lat(), "longitude": site.location.lon()},
            "lines": [{"sku": "JKT-DENIM-L", "qty": 1, "reason": "too_large"}],
        });
        let (status, text) = modori_tests::http_request_as(
            f.http,
            Some(&f.ops_key),
            "POST",
            "/api/v1/returns",
            Some(&body.to_string()),
        )
        .await?;
        assert_eq!(status, 201, "{text}");
    }
    for _ in 0..5 {
        f.receive(0, "JKT-DENIM-L").await?;
    }
    let fleet = &f;
    modori_tests::wait_for("the receipts applied", TIMEOUT, || async move {
        Ok(fleet.coordinator_count("SELECT COUNT(*) FROM ops WHERE site = ?1", 0)? >= 5)
    })
    .await?;

    let db = blocking(|| cluster.create_database())?;
    let url = cluster.url(&db);
    // A running coordinator holds its data dir: no copy of a database that still changes.
    let (ok, out) = blocking(|| coordinator(&f, &["migrate-store", "--to", &url], &[]))?;
    assert!(!ok, "{out}");
    assert!(out.contains("is in use"), "{out}");

    f.terminate_agent(0, TIMEOUT).await?;
    f.terminate_coordinator(TIMEOUT).await?;
    blocking(|| copied_row_for_row(&f, &cluster, &url))
}

fn copied_row_for_row(f: &ProcFleet, cluster: &Cluster, url: &str) -> anyhow::Result<()> {
    let (ok, out) = coordinator(f, &["migrate-store", "--to", url], &[])?;
    assert!(ok, "{out}");
    assert!(
        out.contains("every table's count and checksum match"),
        "{out}"
    );

    // Counted again from outside, table by table.
    let sqlite = rusqlite::Connection::open(f.coordinator_db_path())?;
    let target = target(url)?;
    let mut client = target.connect(None)?;
    let tables: Vec<String> = sqlite
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for table in &tables {
        let here: i64 =
            sqlite.query_row(&format!("SELECT COUNT(*) FROM \"{table}\""), [], |r| {
                r.get(0)
            })?;
        let there: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM \"{table}\""), &[])?
            .get(0);
        assert_eq!(here, there, "table {table}");
        assert!(
            out.contains(&format!("{table} ")),
            "{table} not reported: {out}"
        );
    }
    for table in [
        "ops",
        "returns",
        "commands",
        "op_streams",
        "units",
        "return_events",
    ] {
        let n: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?
            .get(0);
        assert!(n > 0, "{table} is empty: the run filled too little to test");
    }
    // A site's position came along: the same high-water mark on both sides.
    let hwm_sql = "SELECT MAX(applied_seq) FROM op_streams";
    let here: i64 = sqlite.query_row(hwm_sql, [], |r| r.get(0))?;
    let there: i64 = client.query_one(hwm_sql, &[])?.get(0);
    assert_eq!(here, there);
    // The next id the store takes follows the copied ones.
    let max_id: i64 = client
        .query_one("SELECT COALESCE(MAX(id), 0) FROM return_events", &[])?
        .get(0);
    let next: i64 = client
        .query_one(
            "INSERT INTO return_events (rma, kind, at_ms, recorded_ms) \
             VALUES ('RMA-NEXT', 'registered', 0, 0) RETURNING id",
            &[],
        )?
        .get(0);
    assert!(next > max_id, "id {next} after {max_id}");
    drop(client);

    // The same target again: not fresh, refused, left as it was.
    let (ok, out) = coordinator(f, &["migrate-store", "--to", url], &[])?;
    assert!(!ok, "{out}");
    assert!(out.contains("not a fresh database"), "{out}");

    // A source behind this build: refused, nothing made in the target.
    sqlite.pragma_update(None, "user_version", MIGRATIONS.len() - 1)?;
    drop(sqlite);
    let other = cluster.create_database()?;
    let (ok, out) = coordinator(f, &["migrate-store", "--to", &cluster.url(&other)], &[])?;
    assert!(!ok, "{out}");
    assert!(out.contains("of this build's"), "{out}");
    let status = migrate::status(&mut cluster.client(&other)?, &target)?;
    assert_eq!(status.applied, 0);
    Ok(())
}
