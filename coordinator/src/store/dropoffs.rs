//! A parcel handed in at a store's counter against its QR code: recorded once on the
//! return's timeline as `dropped_off` (the customer is told, as of every step).

use rusqlite::{params, Connection, OptionalExtension};

use super::details::Detail;
use super::sql::Sql;
use super::StoreError;

/// The timeline's kind of the event.
pub const DROPPED_OFF: &str = "dropped_off";

/// Records that `rma`'s parcel was handed in at `store` at `now_ms`, unless it already was;
/// returns whether this call recorded it.
pub fn record(
    conn: &mut Connection,
    rma: &str,
    store: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let already: Option<i64> = tx
        .query_row(
            "SELECT id FROM return_events WHERE rma = ?1 AND kind = ?2 LIMIT 1",
            params![rma, DROPPED_OFF],
            |r| r.get(0),
        )
        .optional()?;
    if already.is_some() {
        return Ok(false);
    }
    super::lifecycle::insert_event(
        &tx,
        rma,
        DROPPED_OFF,
        None,
        None,
        &Detail::handed_in_at_store(store),
        now_ms,
        now_ms,
    )?;
    tx.commit()?;
    Ok(true)
}

/// Whether `rma`'s parcel was handed in at a store.
pub fn dropped_off(conn: &mut dyn Sql, rma: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM return_events WHERE rma = ?1 AND kind = ?2 LIMIT 1",
            &[&rma, &DROPPED_OFF],
        )?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parcel_is_recorded_as_handed_in_once() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrations().to_latest(&mut c).unwrap();
        assert!(!dropped_off(&mut c, "RMA-1").unwrap());
        assert!(record(&mut c, "RMA-1", "st-ginza", 1_000).unwrap());
        assert!(!record(&mut c, "RMA-1", "st-ginza", 2_000).unwrap());
        assert!(dropped_off(&mut c, "RMA-1").unwrap());
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM return_events WHERE rma = 'RMA-1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
    }
}
