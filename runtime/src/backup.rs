//! Online backups of a service's database, and the swap that puts one back.
//!
//! A backup is `VACUUM INTO`: a consistent snapshot taken through SQLite while the service keeps
//! running (never a file copy, which could catch a half-written page or miss the WAL). What a
//! restored database must then become (a new epoch at a site, a new command epoch at the
//! coordinator) is each service's own step, passed to [`restore_database`] as `prepare`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} already exists; choose a new file for the backup")]
    Exists(PathBuf),
    #[error("backup {path} failed its integrity check: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("the service is running ({0} answers); stop it before restoring")]
    ServiceRunning(String),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("preparing the restored database: {0}")]
    Prepare(String),
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |source| BackupError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a consistent snapshot of the database at `db` to `target` (which must not exist).
pub fn backup(db: &Path, target: &Path) -> Result<(), BackupError> {
    if target.exists() {
        return Err(BackupError::Exists(target.to_owned()));
    }
    let conn =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sqlite(db))?;
    conn.busy_timeout(crate::sqlite::BUSY_TIMEOUT)
        .map_err(sqlite(db))?;
    let target_str = target.to_str().ok_or_else(|| BackupError::Io {
        path: target.to_owned(),
        source: std::io::Error::other("path is not UTF-8"),
    })?;
    conn.execute("VACUUM INTO ?1", [target_str])
        .map_err(sqlite(db))?;
    check_integrity(target)
}

fn check_integrity(path: &Path) -> Result<(), BackupError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite(path))?;
    let detail: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    if detail != "ok" {
        return Err(BackupError::Corrupt {
            path: path.to_owned(),
            detail,
        });
    }
    Ok(())
}

/// SQLite's companions of a database file: its write-ahead log and the log's index.
const COMPANIONS: [&str; 2] = ["-wal", "-shm"];

/// `path` with `suffix` appended to its file name (`agent.db` → `agent.db-wal`), which is how
/// SQLite names a database's companions.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Moves the database at `db` to `aside` together with its WAL and shared-memory index. The
/// WAL holds every transaction committed since the last checkpoint (after an unclean stop,
/// possibly all the recent ones): renamed with the file, SQLite opens the kept copy with all of
/// them; deleted, they would be lost.
fn move_aside(db: &Path, aside: &Path) -> Result<(), BackupError> {
    std::fs::rename(db, aside).map_err(io(db))?;
    for suffix in COMPANIONS {
        let from = with_suffix(db, suffix);
        if from.exists() {
            std::fs::rename(&from, with_suffix(aside, suffix)).map_err(io(&from))?;
        }
    }
    Ok(())
}

/// Puts `backup` in place of the database at `db`: checks it, copies it beside `db`, lets
/// `prepare` adapt the copy (migrations, a new epoch), then swaps it in with a rename and keeps
/// the database it replaces (file, WAL and index together), renamed. Both the agent and the coordinator restore this way.
pub fn restore_database<E: From<BackupError>>(
    backup: &Path,
    db: &Path,
    prepare: impl FnOnce(&mut Connection) -> Result<(), E>,
    now_ms: i64,
) -> Result<Option<PathBuf>, E> {
    check_integrity(backup)?;
    let staging = db.with_extension("db.restoring");
    let _ = std::fs::remove_file(&staging);
    std::fs::copy(backup, &staging).map_err(io(&staging))?;
    {
        let mut conn = Connection::open(&staging).map_err(sqlite(&staging))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite(&staging))?;
        prepare(&mut conn)?;
    }
    let replaced = if db.exists() {
        let aside = db.with_extension(format!("db.replaced-{now_ms}"));
        move_aside(db, &aside)?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&staging, db).map_err(io(db))?;
    if let Some(dir) = db.parent() {
        // The rename is durable only once the directory entry is.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(path: &Path) -> i64 {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn the_replaced_database_is_kept_with_the_rows_only_its_wal_held() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("site.db");
        let snapshot = dir.path().join("snapshot.db");
        let conn = Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        for v in 0..10 {
            conn.execute("INSERT INTO t VALUES (?1)", [v]).unwrap();
        }
        backup(&db, &snapshot).unwrap();
        for v in 10..15 {
            conn.execute("INSERT INTO t VALUES (?1)", [v]).unwrap();
        }
        // A process that stopped without a checkpoint: the last rows live only in the WAL.
        std::mem::forget(conn);
        assert!(with_suffix(&db, "-wal").metadata().unwrap().len() > 0);

        let aside = restore_database(&snapshot, &db, |_| Ok::<_, BackupError>(()), 7)
            .unwrap()
            .expect("a database was replaced");
        assert_eq!(count(&db), 10, "the backup is in place");
        assert!(!with_suffix(&db, "-wal").exists(), "no stale WAL beside it");
        assert_eq!(
            count(&aside),
            15,
            "the kept copy has every row, the WAL's too"
        );
    }
}
