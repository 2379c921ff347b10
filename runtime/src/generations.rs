//! The epochs a data directory has started, kept in a file beside the database.
//!
//! Every start of the agent begins a new epoch (see `store::start_epoch_at_boot`); the low 16
//! bits of an epoch are the generation printed on its LPN labels. A database can go back in time
//! without the process knowing: a file copied over it, a damaged WAL whose tail SQLite drops, a
//! restored snapshot. Its LPN counter then stands behind numbers already printed, possibly
//! while the site is offline and nobody can tell it. So a new epoch is chosen against this file,
//! not the database: its generation is never one recorded here, and it is written and fsynced
//! here before the database uses it. A database rolled back alone therefore never prints a
//! plate twice. The file also shows a database older than the last run: its epoch is not the
//! last one recorded, and the epochs after it are the lives it lost, checked at the
//! coordinator. (A snapshot of the whole machine rolls this file back too; the generation is
//! then random among the 65,536 less those recorded, and the coordinator's duplicate-LPN
//! anomaly is the last guard.)

use std::io::Write;
use std::path::{Path, PathBuf};

use modori_shared::domain::Epoch;
use thiserror::Error;

/// How many past epochs the file keeps (newest last). A crash loop restarting every second
/// takes over an hour to pass it; older generations may then be drawn again, which collides
/// only if the database was also rolled back across them.
pub const EPOCHS_KEPT: usize = 4096;

#[derive(Debug, Error)]
pub enum GenerationsError {
    #[error("epochs file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("epochs file {path}, line {line}: {text:?} is not an epoch (16 hex digits); fix or delete the file (it guards LPN uniqueness)")]
    Malformed {
        path: PathBuf,
        line: usize,
        text: String,
    },
}

/// The file beside the database at `db`: `agent.db` → `agent.db.epochs`.
pub fn path_for(db: &Path) -> PathBuf {
    crate::sqlite::companion(db, ".epochs")
}

/// The LPN generation of an epoch: its low 16 bits.
pub fn generation(epoch: Epoch) -> u16 {
    (epoch.0 & 0xffff) as u16
}

/// The epochs recorded at `path`, oldest first; none if the file does not exist.
pub fn read(path: &Path) -> Result<Vec<Epoch>, GenerationsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(GenerationsError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let l = l.trim();
            u64::from_str_radix(l, 16)
                .ok()
                .filter(|_| l.len() == 16)
                .map(Epoch)
                .ok_or_else(|| GenerationsError::Malformed {
                    path: path.to_owned(),
                    line: i + 1,
                    text: l.to_owned(),
                })
        })
        .collect()
}

/// The epochs recorded after `db_epoch`: runs of this data directory that the database does
/// not know, so it went back in time. Empty when `db_epoch` is the last one, or is not
/// recorded at all (a database restored on purpose, or older than this file).
pub fn lost_after(recorded: &[Epoch], db_epoch: Epoch) -> Vec<Epoch> {
    match recorded.iter().rposition(|e| *e == db_epoch) {
        Some(i) => recorded[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// A new epoch whose generation is recorded neither at `path` nor in `current` (the
/// database's), recorded durably (temporary file, fsync, rename, fsync of the directory)
/// before it is returned. Only then may the database start it.
pub fn reserve(path: &Path, current: Epoch) -> Result<Epoch, GenerationsError> {
    let mut recorded = read(path)?;
    let taken = |g: u16| g == generation(current) || recorded.iter().any(|e| generation(*e) == g);
    let epoch = loop {
        // 47 random bits above the generation: the top bit stays clear for SQLite.
        let e = Epoch(rand::random::<u64>() >> 1);
        if e.0 != 0 && !taken(generation(e)) {
            break e;
        }
    };
    recorded.push(epoch);
    let keep_from = recorded.len().saturating_sub(EPOCHS_KEPT);
    let text: String = recorded[keep_from..]
        .iter()
        .map(|e| format!("{:016X}\n", e.0))
        .collect();
    let io = |source| GenerationsError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = crate::sqlite::companion(path, ".tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_generation_is_never_one_already_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("agent.db"));
        assert_eq!(read(&path).unwrap(), Vec::<Epoch>::new());
        let current = Epoch(0x0123_0007);
        let mut seen = Vec::new();
        for _ in 0..300 {
            let e = reserve(&path, current).unwrap();
            assert_ne!(generation(e), 0x0007);
            assert!(
                !seen.iter().any(|s| generation(*s) == generation(e)),
                "generation of {e} drawn twice"
            );
            seen.push(e);
        }
        assert_eq!(read(&path).unwrap(), seen);
    }

    #[test]
    fn the_epochs_after_the_database_are_the_lost_runs() {
        let e = |n| Epoch(n);
        let recorded = [e(1), e(2), e(3)];
        assert_eq!(lost_after(&recorded, e(1)), vec![e(2), e(3)]);
        assert_eq!(lost_after(&recorded, e(3)), Vec::<Epoch>::new());
        assert_eq!(
            lost_after(&recorded, e(9)),
            Vec::<Epoch>::new(),
            "restored on purpose"
        );
    }

    #[test]
    fn a_damaged_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("agent.db"));
        std::fs::write(&path, "00000000000000A3\nzz\n").unwrap();
        let err = reserve(&path, Epoch(1)).unwrap_err().to_string();
        assert!(
            err.contains("agent.db.epochs") && err.contains("line 2"),
            "{err}"
        );
    }
}
