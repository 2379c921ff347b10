//! Restores that start a new epoch at a site.
//!
//! A restore puts a backup (`modori_runtime::backup`) back and gives the database a new epoch.
//! Everything the site did after the snapshot is gone with the disk it was on; what the snapshot
//! still held unacknowledged is kept as a *retired epoch* and delivered first under its old
//! (epoch, seq) keys, so the coordinator applies each of those ops exactly once whether or not it
//! had them already. New ops are numbered from 1 in the new epoch and can never be mistaken for
//! old ones.

use std::path::{Path, PathBuf};

use modori_runtime::backup::{restore_database, BackupError};
use rusqlite::TransactionBehavior;
use thiserror::Error;

use crate::config::AgentConfig;
use crate::store::{self, StoreError};

#[derive(Debug, Error)]
pub enum RestoreError {
    #[error("the agent is running (its ctl socket {0} answers); stop it before restoring")]
    AgentRunning(PathBuf),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    pub old_epoch: modori_shared::domain::Epoch,
    pub new_epoch: modori_shared::domain::Epoch,
    /// Unacknowledged ops of the old epoch kept for delivery.
    pub n_retired_pending: u64,
    /// Where the database that was replaced was moved, if there was one.
    pub replaced: Option<PathBuf>,
}

/// Restores `backup` as the site database of `config`, with a new epoch. The agent must be
/// stopped. The database it replaces is kept beside it, renamed, not deleted.
pub fn restore(config: &AgentConfig, backup: &Path, now_ms: i64) -> Result<Restored, RestoreError> {
    let socket = config.ctl_socket();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(RestoreError::AgentRunning(socket));
    }
    let mut epochs = None;
    let replaced = restore_database::<RestoreError>(
        backup,
        &config.db_path(),
        |conn| {
            store::migrations()
                .to_latest(conn)
                .map_err(|e| StoreError::Corrupt(format!("migrating the backup: {e}")))?;
            store::init(conn, &config.site_id())?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            epochs = Some(store::start_new_epoch(&tx, now_ms)?);
            tx.commit()?;
            Ok(())
        },
        now_ms,
    )?;
    let (old_epoch, new_epoch, n_retired_pending) = epochs.ok_or_else(|| {
        RestoreError::Store(StoreError::Corrupt("restore did not start an epoch".into()))
    })?;
    Ok(Restored {
        old_epoch,
        new_epoch,
        n_retired_pending,
        replaced,
    })
}
