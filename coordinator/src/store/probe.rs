//! Reaching the coordinator's database on either backend without changing it: how long a
//! connection and one round trip took, and how far its schema is against this build. What
//! `check` reports and `run` looks at before it starts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;

use super::leases::{self, LeaseRow};
use super::pg::{migrate, PgError, PgTarget};
use super::schema::{SchemaStatus, MIGRATIONS};
use super::sql::PgSql;
use super::StoreError;

/// A database reached.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Opening or connecting, and one round trip.
    pub elapsed: Duration,
    pub schema: SchemaStatus,
    /// The leases on background work: which coordinators are running (or stopped without
    /// giving theirs up).
    pub leases: Vec<LeaseRow>,
}

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("{} does not exist yet (the coordinator creates it at its first start)", .0.display())]
    Missing(PathBuf),
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("reading the leases: {0}")]
    Leases(#[from] StoreError),
}

/// The SQLite file at `path`, opened read-only (beside a running coordinator too).
pub fn sqlite(path: &Path) -> Result<Probe, ProbeError> {
    if !path.exists() {
        return Err(ProbeError::Missing(path.to_owned()));
    }
    let started = Instant::now();
    let err = |source| ProbeError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let mut conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(err)?;
    // `rusqlite_migration` keeps the number of migrations applied here.
    let applied: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    let elapsed = started.elapsed();
    Ok(Probe {
        elapsed,
        schema: SchemaStatus {
            applied: usize::try_from(applied).unwrap_or(0),
            build: MIGRATIONS.len(),
        },
        leases: leases::all_if_present(&mut conn)?,
    })
}

/// The PostgreSQL database of `target`: connected (TLS as its `sslmode` asks) and asked once.
/// Blocking: call it off the async runtime.
pub fn postgres(target: &PgTarget, ca_file: Option<&Path>) -> Result<Probe, ProbeError> {
    let started = Instant::now();
    let mut client = target.connect(ca_file)?;
    client
        .simple_query("SELECT 1")
        .map_err(|e| target.query_error(e))?;
    let elapsed = started.elapsed();
    migrate::check_text_order(&mut client, target)?;
    let schema = migrate::status(&mut client, target)?;
    let leases = leases::all_if_present(&mut PgSql::new(client))?;
    Ok(Probe {
        elapsed,
        schema,
        leases,
    })
}
