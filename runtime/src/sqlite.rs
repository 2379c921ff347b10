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
/// Under a size cap, the write-ahead log may use this fraction (1/n) of it and the database
/// pages the rest: the cap bounds both files on disk together, not the main file alone.
pub const WAL_SHARE_OF_CAP_DIVISOR: u64 = 4;

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
    /// A file that exists but holds nothing (0 bytes, or a database without a single table) is
    /// never taken for a new database: it is what a truncated copy or a failed restore leaves,
    /// and starting afresh over it would silently forget everything the site did.
    #[error("database {path} exists but is empty ({detail}); refusing to start a new database over it: restore a backup, or delete the file to start afresh")]
    Empty { path: PathBuf, detail: String },
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// What the database thread is asked to do.
enum Msg {
    Run(Job),
    /// Stop taking jobs, fold the WAL in, close the file, then say so.
    Close(oneshot::Sender<()>),
}

/// A sequence number or count as SQLite stores it (signed 64-bit). Ours stay far below
/// `i64::MAX`; a larger one saturates rather than wraps.
pub fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer back as a sequence number or count; a negative one (never written) is 0.
pub fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Refuses a file at `path` that exists with 0 bytes; returns whether a file exists.
fn refuse_empty_file(path: &Path) -> Result<bool, DbError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => Err(DbError::Empty {
            path: path.to_owned(),
            detail: "0 bytes".into(),
        }),
        Ok(_) => Ok(true),
        Err(_) => Ok(false),
    }
}

/// `path` with `suffix` appended to its file name, as SQLite names the WAL (`agent.db-wal`).
pub fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Bytes the database takes on disk: the main file and its write-ahead log.
pub fn bytes_on_disk(path: &Path) -> u64 {
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    len(path) + len(&companion(path, "-wal"))
}

/// Splits `bytes_max` between the database pages (`max_page_count`: past it a write fails
/// "full" and nothing half-written stays) and the WAL (checkpointed, and truncated back, once
/// it holds its share).
fn cap_size(conn: &Connection, bytes_max: u64) -> rusqlite::Result<()> {
    let page_size: u64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))?
        .max(1)
        .unsigned_abs();
    let wal_bytes = bytes_max / WAL_SHARE_OF_CAP_DIVISOR;
    let pages = (bytes_max - wal_bytes) / page_size;
    conn.pragma_update(None, "max_page_count", pages.max(1))?;
    conn.pragma_update(None, "wal_autocheckpoint", (wal_bytes / page_size).max(1))?;
    conn.pragma_update(None, "journal_size_limit", wal_bytes)?;
    Ok(())
}

/// After each job: once the database and its WAL together pass the pages' share of
/// `bytes_max`, folds the WAL into the database and truncates it. The database pages never
/// pass that share, so the next transaction (smaller than the WAL's share) finds room below
/// the cap and both files together stay within it.
fn keep_under_cap(conn: &Connection, path: &Path, bytes_max: u64) {
    if bytes_on_disk(path) <= bytes_max - bytes_max / WAL_SHARE_OF_CAP_DIVISOR {
        return;
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(db = %path.display(), error = %e, "checkpoint to keep the database under its size cap failed");
    }
}

/// Handle to the database thread. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    jobs: mpsc::Sender<Msg>,
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
        let existed = refuse_empty_file(path)?;
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
        if existed {
            let n_tables: i64 = conn
                .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(open_err)?;
            if n_tables == 0 {
                return Err(DbError::Empty {
                    path: path.to_owned(),
                    detail: "no tables".into(),
                });
            }
        }
        if let Some(bytes) = size_bytes_max {
            cap_size(&conn, bytes).map_err(open_err)?;
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
        if let Some(cap) = size_bytes_max {
            // Migrations go through the WAL too.
            keep_under_cap(&conn, path, cap);
        }
        let (jobs, mut rx) = mpsc::channel::<Msg>(DB_QUEUE_DEPTH);
        let db_path = path.to_owned();
        let name = format!(
            "sqlite-{}",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("db")
        );
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let mut closed_for = None;
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        Msg::Run(job) => job(&mut conn),
                        Msg::Close(done) => {
                            closed_for = Some(done);
                            break;
                        }
                    }
                    if let Some(cap) = size_bytes_max {
                        keep_under_cap(&conn, &db_path, cap);
                    }
                }
                // Jobs still queued behind a close are dropped: their callers get `Closed`.
                drop(rx);
                // Fold the WAL back into the main file so a stopped database is one file.
                let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
                drop(conn);
                if let Some(done) = closed_for {
                    let _ = done.send(());
                }
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
            .send(Msg::Run(job))
            .await
            .map_err(|_| E::from(DbError::Closed))?;
        rx.await.map_err(|_| E::from(DbError::Closed))?
    }

    /// Finishes the jobs queued before it, then closes the database and returns once the
    /// file is closed with its WAL folded in. Dropping the last handle closes it too, but
    /// without waiting: a process that copies or hands over the file after a stop must call
    /// this first, or it may copy a database whose rows are still in a WAL being deleted.
    /// Calls after it fail with [`DbError::Closed`].
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.jobs.send(Msg::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_refused_naming_it_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.db");
        std::fs::write(&path, b"").unwrap();
        let err = Db::open(&path, &Migrations::new(vec![]))
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(matches!(err, DbError::Empty { .. }), "{text}");
        assert!(
            text.contains("site.db") && text.contains("0 bytes"),
            "{text}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);

        // A database without tables (what a failed copy can leave) is refused the same way.
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .pragma_update(None, "user_version", 1)
            .unwrap();
        let err = Db::open(&other, &Migrations::new(vec![]))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("other.db"), "{err}");

        // Where no file exists, a new database is made.
        let schema = Migrations::new(vec![rusqlite_migration::M::up("CREATE TABLE t (v)")]);
        Db::open(&dir.path().join("new.db"), &schema).expect("created");
    }

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

    #[test]
    fn after_close_the_main_file_alone_holds_every_commit_and_later_calls_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.db");
        let migrations = Migrations::new(vec![rusqlite_migration::M::up(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);",
        )]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let db = Db::open(&path, &migrations).unwrap();
            let kept = db.clone();
            for i in 0..200 {
                db.call(move |c| {
                    c.execute("INSERT INTO t (v) VALUES (?1)", [format!("row-{i}")])
                        .map_err(DbError::from)
                })
                .await
                .unwrap();
            }
            // Another handle still alive: close must not wait for every handle to drop.
            db.close().await;
            let after: Result<(), DbError> = kept.call(|_| Ok(())).await;
            assert!(matches!(after, Err(DbError::Closed)), "{after:?}");
        });
        // What a backup copying only the main file right after the stop would get.
        let wal = dir.path().join("site.db-wal");
        assert!(
            std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0,
            "the WAL still holds pages after close"
        );
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        let conn = Connection::open(&copy).unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 200);
    }
}
