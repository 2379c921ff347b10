//! One process per data dir: an exclusive `flock` on a lock file inside it, held for the life of
//! the process, with the holder's pid written in for the error a second process prints.
//!
//! Why: two services on one database each take over the other's `ctl.sock`, metrics port and
//! link to the coordinator, and both write the outbox. A lock file beside the database, rather
//! than a pid file, cannot go stale: the kernel drops the lock when the holder dies, `kill -9`
//! included. Shared by the agent and the coordinator (which depends on this crate for its IO
//! helpers), each with its own file name.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

/// The agent's lock file, in its data dir.
pub const AGENT_LOCK_FILE: &str = "agent.lock";
/// The coordinator's lock file, in its data dir.
pub const COORDINATOR_LOCK_FILE: &str = "coordinator.lock";
/// Most bytes read from a lock file for the holder's pid (a pid and a newline).
const PID_BYTES_MAX: u64 = 32;

#[derive(Debug, Error)]
pub enum DirLockError {
    #[error(
        "{path} is held by another process{}: one process per data dir; stop it first",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Held { path: PathBuf, holder: Option<u32> },
    #[error("locking {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: Flock<File>,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock `file_name` in `dir` (created if missing) without waiting.
    pub fn acquire(dir: &Path, file_name: &str) -> Result<Self, DirLockError> {
        let path = dir.join(file_name);
        let io = |source| DirLockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        // Not truncated on open: until the lock is ours, the pid in it is the holder's.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                return Err(DirLockError::Held {
                    holder: read_pid(&mut file),
                    path,
                })
            }
            Err((_, errno)) => return Err(io(std::io::Error::from(errno))),
        };
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(PID_BYTES_MAX).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = DirLock::acquire(dir.path(), AGENT_LOCK_FILE).expect("first lock");
        match DirLock::acquire(dir.path(), AGENT_LOCK_FILE) {
            Err(DirLockError::Held { path, holder }) => {
                assert_eq!(path, first.path());
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("second lock: {other:?}"),
        }
        // Another service's lock in the same dir is independent.
        DirLock::acquire(dir.path(), COORDINATOR_LOCK_FILE).expect("other file");
        drop(first);
        DirLock::acquire(dir.path(), AGENT_LOCK_FILE).expect("free again");
    }
}
