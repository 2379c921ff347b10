//! One SQLite database behind one thread.
//!
//! rusqlite calls block and a `Connection` is not `Sync`, so each database gets a dedicated
//! thread that owns its connection and runs jobs from a bounded queue in arrival order. Async
//! code awaits the answer; a full queue makes callers wait (backpressure), never grows memory.
//! Both the agent and the coordinator use this.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::Migrations;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// Jobs waiting for the database thread. A caller beyond this waits for room.
pub const DB_QUEUE_DEPTH: usize = 256;
/// How long a statement waits for a lock held by another connection (a backup, `ctl`).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum DbError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path}: migration failed: {source}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: rusqlite_migration::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database thread has stopped")]
    Closed,
    #[error("database {path} failed its integrity check ({detail}); restore it from a backup")]
    Corrupt { path: PathBuf, detail: String },
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A sequence number or count as SQLite stores it (signed 64-bit). Ours stay far below
/// `i64::MAX`; a larger one saturates rather than wraps.
pub fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer back as a sequence number or count; a negative one (never written) is 0.
pub fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Handle to the database thread. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    jobs: mpsc::Sender<Job>,
    path: PathBuf,
}

impl Db {
    /// Opens (creating if needed) the database, applies pending migrations, and starts its thread.
    ///
    /// Durability: WAL with `synchronous=FULL`, so a committed transaction has been fsynced
    /// before `commit` returns: an acknowledgement sent after a commit survives power loss.
    pub fn open(path: &Path, migrations: &Migrations<'static>) -> Result<Self, DbError> {
        Self::open_with(path, migrations, None)
    }

    /// Like [`Self::open`], capping the database at `size_bytes_max` (SQLite's
    /// `max_page_count`): past it writes fail with "full" instead of filling the disk, and what
    /// is already stored stays intact. Checks the file's integrity before anything else.
    pub fn open_with(
        path: &Path,
        migrations: &Migrations<'static>,
        size_bytes_max: Option<u64>,
    ) -> Result<Self, DbError> {
        let open_err = |source| DbError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(open_err)?;
        if check != "ok" {
            return Err(DbError::Corrupt {
                path: path.to_owned(),
                detail: check,
            });
        }
        if let Some(bytes) = size_bytes_max {
            let page_size: u64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(open_err)?;
            conn.pragma_update(None, "max_page_count", (bytes / page_size.max(1)).max(1))
                .map_err(open_err)?;
        }
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrations
            .to_latest(&mut conn)
            .map_err(|source| DbError::Migrate {
                path: path.to_owned(),
                source,
            })?;
        let (jobs, mut rx) = mpsc::channel::<Job>(DB_QUEUE_DEPTH);
        let name = format!(
            "sqlite-{}",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("db")
        );
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                while let Some(job) = rx.blocking_recv() {
                    job(&mut conn);
                }
                // Fold the WAL back into the main file so a stopped database is one file.
                let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
            })
            .map_err(|e| DbError::Open {
                path: path.to_owned(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok(Self {
            jobs,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Jobs waiting for the database thread right now (at most [`DB_QUEUE_DEPTH`]).
    pub fn queue_depth(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }

    /// Runs `f` on the database thread and returns its result.
    pub async fn call<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| E::from(DbError::Closed))?;
        rx.await.map_err(|_| E::from(DbError::Closed))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_file_is_refused_at_open_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
                 CREATE INDEX t_v ON t (v);",
            )
            .unwrap();
            for i in 0..2000 {
                conn.execute("INSERT INTO t (v) VALUES (?1)", [format!("value-{i}")])
                    .unwrap();
            }
        }
        let mut bytes = std::fs::read(&path).unwrap();
        // Scribble over the middle of the file: pages of the table and its index.
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 4096] {
            *b = 0x5a;
        }
        std::fs::write(&path, bytes).unwrap();
        let err = Db::open(&path, &Migrations::new(vec![]))
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(text.contains("site.db"), "{text}");
    }
}
