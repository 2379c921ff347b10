//! The pickup a customer booked on the portal for a return the carrier collects: the day (in
//! Japan) and the carrier's time slot, kept with the return and shown on its confirmation
//! and status page.

use super::sql::Sql;
use super::StoreError;

/// The migration that makes the table (appended to `schema::migrations`).
pub const MIGRATION: &str = r#"
    CREATE TABLE return_pickups (
        rma  TEXT PRIMARY KEY,
        date TEXT NOT NULL,
        slot TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
"#;

/// Books (or moves) `rma`'s pickup to `date` (`YYYY-MM-DD`, Japan) in `slot`.
pub fn put(conn: &mut dyn Sql, rma: &str, date: &str, slot: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO return_pickups (rma, date, slot) VALUES (?1, ?2, ?3)
         ON CONFLICT (rma) DO UPDATE SET date = excluded.date, slot = excluded.slot",
        &[&rma, &date, &slot],
    )?;
    Ok(())
}

/// `rma`'s pickup: its date and slot, if one was booked.
pub fn get(conn: &mut dyn Sql, rma: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn.map_row_opt(
        "SELECT date, slot FROM return_pickups WHERE rma = ?1",
        &[&rma],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pickup_booked_again_is_moved() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrations().to_latest(&mut c).unwrap();
        assert_eq!(get(&mut c, "RMA-1").unwrap(), None);
        put(&mut c, "RMA-1", "2026-12-07", "am").unwrap();
        put(&mut c, "RMA-1", "2026-12-08", "18-20").unwrap();
        assert_eq!(
            get(&mut c, "RMA-1").unwrap(),
            Some(("2026-12-08".into(), "18-20".into()))
        );
    }
}
