//! The schema on PostgreSQL: the PostgreSQL texts of `schema::MIGRATIONS`, each applied in a
//! transaction of its own with its row in the versions table, under a transaction-scoped
//! advisory lock, so replicas starting together apply each migration once and a replica that
//! dies mid-way leaves the database at the last whole migration.

use postgres::Client;

use super::{PgError, PgTarget};
use crate::store::schema::{SchemaStatus, MIGRATIONS};

/// One row per applied migration (1-based, in `schema::MIGRATIONS` order).
pub const VERSIONS_TABLE: &str = "modori_schema_versions";
/// The advisory lock every migrator of a database takes ("modori" in ASCII): one key for the
/// whole schema, since migrations apply in order.
pub const MIGRATION_LOCK_KEY: i64 = 0x6d6f_646f_7269;

/// The libc collations that order text by its bytes (UTF-8's byte order is its code points').
const BYTEWISE_COLLATIONS: [&str; 4] = ["C", "POSIX", "C.UTF-8", "C.utf8"];

/// Refuses a database whose text would not compare as SQLite's does: the store's range
/// conditions (a state's prefix), its keys and its orderings are written for byte order, and
/// UTF-8 (a customer's name in Japanese).
pub fn check_text_order(client: &mut Client, target: &PgTarget) -> Result<(), PgError> {
    let row = client
        .query_one(
            "SELECT pg_encoding_to_char(encoding), datcollate, datlocprovider::text \
             FROM pg_catalog.pg_database WHERE datname = current_database()",
            &[],
        )
        .map_err(|e| target.query_error(e))?;
    let (encoding, collate, provider): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    let order = if encoding != "UTF8" {
        Some(format!("stores text as {encoding}, not UTF8"))
    } else if provider != "c" {
        Some("sorts text by an ICU locale".to_owned())
    } else if !BYTEWISE_COLLATIONS.contains(&collate.as_str()) {
        Some(format!("sorts text by the locale {collate}"))
    } else {
        None
    };
    match order {
        Some(order) => Err(PgError::TextOrder {
            target: target.describe(),
            order,
        }),
        None => Ok(()),
    }
}

/// The database's status, without changing it.
pub fn status(client: &mut Client, target: &PgTarget) -> Result<SchemaStatus, PgError> {
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables \
             WHERE schemaname = current_schema() AND tablename = $1)",
            &[&VERSIONS_TABLE],
        )
        .map_err(|e| target.query_error(e))?
        .get(0);
    let applied = if exists {
        let n: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM {VERSIONS_TABLE}"), &[])
            .map_err(|e| target.query_error(e))?
            .get(0);
        usize::try_from(n).unwrap_or(usize::MAX)
    } else {
        0
    };
    Ok(SchemaStatus {
        applied,
        build: MIGRATIONS.len(),
    })
}

/// Applies what the database lacks, one migration per transaction; returns how many this call
/// applied. A database newer than this build is refused, untouched.
pub fn to_latest(client: &mut Client, target: &PgTarget) -> Result<usize, PgError> {
    to_version(client, target, MIGRATIONS.len())
}

/// Applies migrations up to `version` (the first `version` of the list): `to_latest`, and for
/// tests a database left behind on purpose.
pub fn to_version(
    client: &mut Client,
    target: &PgTarget,
    version: usize,
) -> Result<usize, PgError> {
    assert!(
        version <= MIGRATIONS.len(),
        "migration {version} does not exist"
    );
    check_text_order(client, target)?;
    let mut n_applied = 0;
    loop {
        let q = |e| target.query_error(e);
        let mut tx = client.transaction().map_err(q)?;
        // Held to this transaction's end: a second migrator waits here, then sees this one's
        // rows and applies nothing twice.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .map_err(q)?;
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (
                version    BIGINT PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )"
        ))
        .map_err(q)?;
        let applied: i64 = tx
            .query_one(
                &format!("SELECT COALESCE(MAX(version), 0) FROM {VERSIONS_TABLE}"),
                &[],
            )
            .map_err(q)?
            .get(0);
        let applied = usize::try_from(applied).unwrap_or(usize::MAX);
        if applied > MIGRATIONS.len() {
            return Err(PgError::Newer {
                target: target.describe(),
                database: applied,
                build: MIGRATIONS.len(),
            });
        }
        if applied >= version {
            tx.commit().map_err(q)?;
            return Ok(n_applied);
        }
        tx.batch_execute(MIGRATIONS[applied].postgres).map_err(q)?;
        let next = i64::try_from(applied + 1).unwrap_or(i64::MAX);
        tx.execute(
            &format!("INSERT INTO {VERSIONS_TABLE} (version) VALUES ($1)"),
            &[&next],
        )
        .map_err(q)?;
        tx.commit().map_err(q)?;
        tracing::info!(target_db = %target.describe(), version = applied + 1, "PostgreSQL migration applied");
        n_applied += 1;
    }
}
