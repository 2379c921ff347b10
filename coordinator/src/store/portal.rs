//! The customer portal's memory of failed order lookups: per client address and per order,
//! how many failed in the current window and until when further tries are refused. Kept in
//! the database so a restart does not hand an attacker a fresh allowance.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::orders::{self, LineFacts, Order};
use super::StoreError;

/// The migration that makes the table (appended to `schema::migrations`).
pub const MIGRATION: &str = r#"
    CREATE TABLE portal_attempts (
        key             TEXT PRIMARY KEY,
        failures        INTEGER NOT NULL,
        window_start_ms INTEGER NOT NULL,
        locked_until_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
"#;

/// How many failed lookups a key may make in a window before it is locked out, and for how
/// long.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub failures_max: u32,
    pub window_ms: i64,
    pub lockout_ms: i64,
}

/// The latest end of a lockout among `keys` still in force at `now_ms`.
pub fn locked_until(
    conn: &Connection,
    keys: &[String],
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT locked_until_ms FROM portal_attempts WHERE key = ?1 AND locked_until_ms > ?2",
    )?;
    let mut latest = None;
    for key in keys {
        let until: Option<i64> = stmt
            .query_row(params![key, now_ms], |r| r.get(0))
            .optional()?;
        latest = latest.max(until);
    }
    Ok(latest)
}

/// Counts a failed lookup against every key, locking a key out once it reaches
/// `limits.failures_max` in its window; returns the lockout's end when one began. Rows whose
/// window and lockout are both over are deleted, so the table holds only live attackers.
pub fn record_failure(
    conn: &mut Connection,
    keys: &[String],
    now_ms: i64,
    limits: Limits,
) -> Result<Option<i64>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM portal_attempts WHERE window_start_ms <= ?1 AND locked_until_ms <= ?2",
        params![now_ms - limits.window_ms, now_ms],
    )?;
    let mut locked = None;
    for key in keys {
        let failures: u32 = tx.query_row(
            "INSERT INTO portal_attempts (key, failures, window_start_ms, locked_until_ms)
             VALUES (?1, 1, ?2, 0)
             ON CONFLICT (key) DO UPDATE SET
               failures = CASE WHEN window_start_ms <= ?2 - ?3 THEN 1 ELSE failures + 1 END,
               window_start_ms = CASE WHEN window_start_ms <= ?2 - ?3 THEN ?2 ELSE window_start_ms END
             RETURNING failures",
            params![key, now_ms, limits.window_ms],
            |r| r.get(0),
        )?;
        if failures >= limits.failures_max {
            let until = now_ms + limits.lockout_ms;
            tx.execute(
                "UPDATE portal_attempts SET locked_until_ms = ?2, failures = 0, window_start_ms = ?3
                 WHERE key = ?1",
                params![key, until, now_ms],
            )?;
            locked = locked.max(Some(until));
        }
    }
    tx.commit()?;
    Ok(locked)
}

/// The order of `merchant` whose reference is `order_ref` in any letter case, with the facts
/// of its lines.
pub fn order(
    conn: &Connection,
    merchant: &str,
    order_ref: &str,
) -> Result<Option<(Order, Vec<LineFacts>)>, StoreError> {
    let stored: Option<String> = conn
        .query_row(
            "SELECT order_ref FROM orders WHERE merchant = ?1 AND order_ref = ?2 COLLATE NOCASE
             LIMIT 1",
            params![merchant, order_ref],
            |r| r.get(0),
        )
        .optional()?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let Some(o) = orders::get(&mut super::sql::sqlite(conn), merchant, &stored)? else {
        return Ok(None);
    };
    let facts = orders::facts_of(&mut super::sql::sqlite(conn), &o)?;
    Ok(Some((o, facts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        failures_max: 3,
        window_ms: 60_000,
        lockout_ms: 600_000,
    };

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrations().to_latest(&mut c).unwrap();
        c
    }

    #[test]
    fn the_third_failure_in_a_window_locks_the_key_out() {
        let mut c = db();
        let keys = vec!["addr:1".to_owned(), "order:m/A".to_owned()];
        assert_eq!(record_failure(&mut c, &keys, 1_000, LIMITS).unwrap(), None);
        assert_eq!(record_failure(&mut c, &keys, 2_000, LIMITS).unwrap(), None);
        assert_eq!(locked_until(&c, &keys, 2_000).unwrap(), None);
        assert_eq!(
            record_failure(&mut c, &keys, 3_000, LIMITS).unwrap(),
            Some(603_000)
        );
        assert_eq!(locked_until(&c, &keys[1..], 4_000).unwrap(), Some(603_000));
        assert_eq!(locked_until(&c, &keys, 603_000).unwrap(), None);
    }

    #[test]
    fn failures_of_an_old_window_are_forgotten() {
        let mut c = db();
        let keys = vec!["addr:1".to_owned()];
        record_failure(&mut c, &keys, 0, LIMITS).unwrap();
        record_failure(&mut c, &keys, 1_000, LIMITS).unwrap();
        assert_eq!(record_failure(&mut c, &keys, 70_000, LIMITS).unwrap(), None);
        assert_eq!(locked_until(&c, &keys, 70_000).unwrap(), None);
    }
}
