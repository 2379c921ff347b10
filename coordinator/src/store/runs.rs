//! The runs of the coordinator: how a start knows its database is older than the last run
//! (command epochs, one per start, are in `command_epochs.rs`).

use modori_shared::domain::Epoch;

use super::sql::Sql;
use super::StoreError;

/// The run of the coordinator that last opened this database, if one recorded itself.
pub fn run(conn: &mut dyn Sql) -> Result<Option<Epoch>, StoreError> {
    let v: Option<String> =
        conn.map_row_opt("SELECT value FROM meta WHERE key = 'run'", &[], |r| {
            r.get(0)
        })?;
    Ok(v.and_then(|s| s.parse::<u64>().ok()).map(Epoch))
}

/// Records `run` as the run that opened this database.
pub fn set_run(conn: &mut dyn Sql, run: Epoch) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('run', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&run.0.to_string()],
    )?;
    Ok(())
}

/// Forgets which run opened this database: done to a backup, so whenever it is put back (by
/// `restore` or by hand) the next start knows it is older than the last run.
pub fn clear_run(conn: &mut dyn Sql) -> Result<(), StoreError> {
    conn.execute("DELETE FROM meta WHERE key = 'run'", &[])?;
    Ok(())
}
