//! The runs of the coordinator and its command epochs: how a start knows its database is
//! older than the last run, and a restore starts a new epoch.

use modori_shared::domain::Epoch;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::StoreError;

/// The run of the coordinator that last opened this database, if one recorded itself.
pub fn run(conn: &Connection) -> Result<Option<Epoch>, StoreError> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'run'", [], |r| r.get(0))
        .optional()?;
    Ok(v.and_then(|s| s.parse::<u64>().ok()).map(Epoch))
}

/// Records `run` as the run that opened this database.
pub fn set_run(conn: &Connection, run: Epoch) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('run', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [run.0.to_string()],
    )?;
    Ok(())
}

/// Forgets which run opened this database: done to a backup, so whenever it is put back (by
/// `restore` or by hand) the next start knows it is older than the last run.
pub fn clear_run(conn: &Connection) -> Result<(), StoreError> {
    conn.execute("DELETE FROM meta WHERE key = 'run'", [])?;
    Ok(())
}

/// Gives a restored coordinator database a new command epoch: every site then receives its
/// whole command stream again under new keys (and applies each command once), instead of the
/// coordinator reusing seqs the sites already applied with other payloads.
pub fn start_new_command_epoch(conn: &mut Connection) -> Result<Epoch, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let old: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'command_epoch'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let epoch = loop {
        let e = (rand::random::<u64>() >> 1).max(1);
        if old.as_deref() != Some(e.to_string().as_str()) {
            break e;
        }
    };
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('command_epoch', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [epoch.to_string()],
    )?;
    tx.execute("UPDATE command_streams SET acked_seq = 0", [])?;
    tx.commit()?;
    Ok(Epoch(epoch))
}
