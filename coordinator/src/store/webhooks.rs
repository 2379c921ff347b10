//! Where each merchant's webhook deliveries stand: its cursor over the timeline events, and
//! the next event to post.

use modori_runtime::sqlite::to_i64;

use super::sql::{Sql, SqlError};
use super::StoreError;
use crate::webhooks::retry_delay;

/// Where one merchant's deliveries stand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub last_event_id: i64,
    pub attempts: u32,
    pub next_attempt_ms: i64,
}

/// Where `merchant`'s deliveries stand (the start when none was made).
pub fn cursor(conn: &mut dyn Sql, merchant: &str) -> Result<Cursor, StoreError> {
    Ok(conn
        .map_row_opt(
            "SELECT last_event_id, attempts, next_attempt_ms FROM webhook_cursors WHERE merchant = ?1",
            &[&merchant],
            |r| {
                let attempts: i64 = r.get(1)?;
                Ok(Cursor {
                    last_event_id: r.get(0)?,
                    attempts: u32::try_from(attempts).map_err(|_| SqlError::Column {
                        column: 1,
                        expected: "a count of attempts (0 to 4294967295)",
                        found: "an integer out of that range",
                    })?,
                    next_attempt_ms: r.get(2)?,
                })
            },
        )?
        .unwrap_or_default())
}

/// The next event of `merchant`'s returns after `after_id`, as the JSON body to post.
pub fn next_event(
    conn: &mut dyn Sql,
    merchant: &str,
    after_id: i64,
) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    let event = conn.map_row_opt(
        "SELECT e.id, e.rma, e.kind, e.site, e.lpn, e.detail, e.at_ms, e.recorded_ms, r.status
         FROM return_events e JOIN returns r ON r.rma = e.rma
         WHERE r.merchant = ?1 AND e.id > ?2 ORDER BY e.id LIMIT 1",
        &[&merchant, &after_id],
        |r| {
            let id: i64 = r.get(0)?;
            let body = serde_json::json!({
                "event_id": id,
                "merchant": merchant,
                "rma": r.get::<String>(1)?,
                "kind": r.get::<String>(2)?,
                "site": r.get::<Option<String>>(3)?,
                "lpn": r.get::<Option<String>>(4)?,
                "detail": r.get::<Option<String>>(5)?,
                "at_ms": r.get::<i64>(6)?,
                "recorded_ms": r.get::<i64>(7)?,
                "return_status": r.get::<String>(8)?,
            });
            Ok((id, body.to_string().into_bytes()))
        },
    )?;
    Ok(event)
}

/// Records the outcome of posting event `event_id`: delivered (the cursor moves on) or failed
/// (the same event is tried again after the backoff).
pub fn record_attempt(
    conn: &mut dyn Sql,
    merchant: &str,
    event_id: i64,
    outcome: Result<(), String>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let c = cursor(conn, merchant)?;
    let (last, attempts, next, error, delivered) = match outcome {
        Ok(()) => (event_id, 0, 0, None, 1),
        Err(e) => {
            let attempts = c.attempts.saturating_add(1);
            let delay = to_i64(retry_delay(attempts).as_millis() as u64);
            (c.last_event_id, attempts, now_ms + delay, Some(e), 0)
        }
    };
    conn.execute(
        "INSERT INTO webhook_cursors (merchant, last_event_id, attempts, next_attempt_ms, last_error, delivered)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (merchant) DO UPDATE SET last_event_id = excluded.last_event_id,
            attempts = excluded.attempts, next_attempt_ms = excluded.next_attempt_ms,
            last_error = excluded.last_error,
            delivered = webhook_cursors.delivered + excluded.delivered",
        &[&merchant, &last, &attempts, &next, &error, &delivered],
    )?;
    Ok(())
}
