//! The outbox of messages to customers (see `notify.rs`), the status-page tokens the messages
//! link to, and customers' opt-outs.
//!
//! Queueing is exactly once: messages are derived from what is stored, by the outbox's own
//! high-water marks (`notification_marks`): the last timeline row (`return_events.id`) read,
//! and the last return (by registration time) checked for a delay. The messages a pass derives
//! and the marks' advance commit in one transaction, so a crash either keeps both or neither:
//! an event is never skipped and never queued twice. `UNIQUE (rma, kind)` keeps one message
//! per return and kind (the first unit received is the arrival; later ones are not).
//!
//! Delivery is at least once: a message is marked sent after the channel took it, so a crash
//! between the two sends it again (with the same Message-ID / LINE retry key). A failure is
//! retried after a doubling delay (`notifications.retry_*`) until `notifications.attempts_max`,
//! then kept as `failed`. Nothing queued is lost on a restart: it is a row.
//!
//! A message reaches its customer through the contact of the return's order; a return without
//! one queues nothing. Tokens and messages are personal data: erased with the customer.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::orders::{contact_columns, Contact};
use super::{to_i64, StoreError};
use crate::notify::{self, Kind, NotificationsSection};

/// A message waiting to be sent (or retried).
pub const QUEUED: &str = "queued";
pub const SENT: &str = "sent";
/// Given up: `notifications.attempts_max` failures, or one that retrying cannot mend.
pub const FAILED: &str = "failed";
/// Not sent: the customer opted out before it went.
pub const OPTED_OUT: &str = "opted_out";
/// Not sent: the return's order has no contact (any more), or no channel reaches it.
pub const UNREACHABLE: &str = "unreachable";

/// The condition "return `r` has an order with a contact".
const HAS_CONTACT: &str = "EXISTS (SELECT 1 FROM orders o WHERE o.merchant = r.merchant
                                   AND o.order_ref = r.order_ref AND o.email IS NOT NULL)";

/// The merchant and customer contact of a return registered against an order.
pub fn contact_of_return(
    conn: &Connection,
    rma: &str,
) -> Result<Option<(String, Contact)>, StoreError> {
    let row = conn
        .query_row(
            "SELECT r.merchant, o.email, o.phone, o.line_user_id, o.language
             FROM returns r JOIN orders o ON o.merchant = r.merchant AND o.order_ref = r.order_ref
             WHERE r.rma = ?1",
            [rma],
            |r| Ok((r.get::<_, String>(0)?, contact_columns(r, 1)?)),
        )
        .optional()?;
    Ok(row.and_then(|(merchant, contact)| contact.map(|c| (merchant, c))))
}

struct Marks {
    last_event_id: i64,
    delay_created_ms: i64,
    delay_rma: String,
}

fn marks(tx: &Transaction<'_>) -> Result<Marks, StoreError> {
    Ok(tx.query_row(
        "SELECT last_event_id, delay_created_ms, delay_rma FROM notification_marks WHERE id = 1",
        [],
        |r| {
            Ok(Marks {
                last_event_id: r.get(0)?,
                delay_created_ms: r.get(1)?,
                delay_rma: r.get(2)?,
            })
        },
    )?)
}

fn insert(
    tx: &Transaction<'_>,
    rma: &str,
    kind: Kind,
    event_id: Option<i64>,
    now_ms: i64,
) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO notifications (rma, kind, event_id, status, attempts, next_attempt_ms, created_ms)
             VALUES (?1, ?2, ?3, 'queued', 0, ?4, ?4) ON CONFLICT (rma, kind) DO NOTHING",
        )?
        .execute(params![rma, kind.as_str(), event_id, now_ms])?)
}

/// Reads up to `batch_max` timeline rows past the mark and queues the messages they call for.
/// Returns (rows read, messages queued); called until it reads nothing new.
pub fn queue_from_timeline(
    conn: &mut Connection,
    batch_max: usize,
    now_ms: i64,
) -> Result<(usize, usize), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from = marks(&tx)?.last_event_id;
    let rows: Vec<(i64, String, String, bool, bool, bool)> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT e.id, e.rma, e.kind,
                    EXISTS (SELECT 1 FROM returns r WHERE r.rma = e.rma AND {HAS_CONTACT}),
                    EXISTS (SELECT 1 FROM trade_in_returns t WHERE t.rma = e.rma),
                    EXISTS (SELECT 1 FROM repairs p WHERE p.rma = e.rma)
             FROM return_events e WHERE e.id > ?1 ORDER BY e.id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![from, to_i64(batch_max as u64)], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut n = 0;
    for (id, rma, kind, reachable, trade_in, repair) in &rows {
        let kind = if *trade_in {
            Kind::from_trade_in_timeline(kind)
        } else if *repair {
            Kind::from_repair_timeline(kind)
        } else {
            Kind::from_timeline(kind)
        };
        if let (Some(kind), true) = (kind, reachable) {
            n += insert(&tx, rma, kind, Some(*id), now_ms)?;
        }
    }
    if let Some((last, ..)) = rows.last() {
        tx.execute(
            "UPDATE notification_marks SET last_event_id = ?1 WHERE id = 1",
            [last],
        )?;
    }
    tx.commit()?;
    Ok((rows.len(), n))
}

/// Checks up to `batch_max` returns registered `after_ms` or longer before `now_ms`, past the
/// mark, in registration order, and queues a delay notice for each still neither refunded nor
/// exchanged (nor cancelled or expired). Each return is checked once, when its time is up.
/// Returns (checked, queued).
pub fn queue_delayed(
    conn: &mut Connection,
    after_ms: i64,
    batch_max: usize,
    now_ms: i64,
) -> Result<(usize, usize), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let m = marks(&tx)?;
    let rows: Vec<(i64, String, bool)> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT r.created_ms, r.rma,
                    r.status NOT IN ('cancelled', 'expired') AND r.refund_confirmed_ms IS NULL
                    AND NOT EXISTS (SELECT 1 FROM return_events e
                                    WHERE e.rma = r.rma AND e.kind = 'exchange_shipped')
                    AND {HAS_CONTACT}
             FROM returns r
             WHERE (r.created_ms, r.rma) > (?1, ?2) AND r.created_ms <= ?3
             ORDER BY r.created_ms, r.rma LIMIT ?4"
        ))?;
        let rows = stmt.query_map(
            params![
                m.delay_created_ms,
                m.delay_rma,
                now_ms - after_ms,
                to_i64(batch_max as u64)
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    let mut n = 0;
    for (_, rma, delayed) in &rows {
        if *delayed {
            n += insert(&tx, rma, Kind::Delayed, None, now_ms)?;
        }
    }
    if let Some((created_ms, rma, _)) = rows.last() {
        tx.execute(
            "UPDATE notification_marks SET delay_created_ms = ?1, delay_rma = ?2 WHERE id = 1",
            params![created_ms, rma],
        )?;
    }
    tx.commit()?;
    Ok((rows.len(), n))
}

/// A message due to be sent, with what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub id: i64,
    pub rma: String,
    /// `None`: a kind this build does not know (written by a newer one); it is not sent.
    pub kind: Option<Kind>,
    pub attempts: u32,
    pub merchant: Option<String>,
    /// `None`: the contact was erased since it was queued.
    pub contact: Option<Contact>,
}

/// Messages queued and due at `now_ms`, oldest due first; at most `limit`. A message waits
/// while an earlier one of its return is still queued (retrying), so a customer never reads
/// that their parcel arrived before they read that it was registered.
pub fn due(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<Due>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.id, n.rma, n.kind, n.attempts, r.merchant,
                o.email, o.phone, o.line_user_id, o.language
         FROM notifications n
         LEFT JOIN returns r ON r.rma = n.rma
         LEFT JOIN orders o ON o.merchant = r.merchant AND o.order_ref = r.order_ref
         WHERE n.status = 'queued' AND n.next_attempt_ms <= ?1
           AND NOT EXISTS (SELECT 1 FROM notifications p
                           WHERE p.rma = n.rma AND p.status = 'queued' AND p.id < n.id)
         ORDER BY n.next_attempt_ms, n.id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now_ms, to_i64(limit as u64)], |r| {
        Ok(Due {
            id: r.get(0)?,
            rma: r.get(1)?,
            kind: Kind::parse(&r.get::<_, String>(2)?),
            attempts: r.get(3)?,
            merchant: r.get(4)?,
            contact: contact_columns(r, 5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What became of one attempt to send a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The channel (`email`, `line`) took it.
    Sent {
        channel: &'static str,
    },
    Failed {
        error: String,
        permanent: bool,
    },
    /// Not sent, for good: [`OPTED_OUT`] or [`UNREACHABLE`].
    Dropped {
        status: &'static str,
    },
}

/// Records an attempt on message `id`: a failure is retried after the backoff, unless it was
/// the last attempt allowed or cannot succeed. Returns the message's status after it.
pub fn record(
    conn: &Connection,
    id: i64,
    attempt: &Attempt,
    config: &NotificationsSection,
    now_ms: i64,
) -> Result<&'static str, StoreError> {
    match attempt {
        Attempt::Sent { channel } => {
            conn.execute(
                "UPDATE notifications SET status = 'sent', channel = ?2, attempts = attempts + 1,
                        last_error = NULL, done_ms = ?3 WHERE id = ?1",
                params![id, channel, now_ms],
            )?;
            Ok(SENT)
        }
        Attempt::Dropped { status } => {
            conn.execute(
                "UPDATE notifications SET status = ?2, done_ms = ?3 WHERE id = ?1",
                params![id, status, now_ms],
            )?;
            Ok(status)
        }
        Attempt::Failed { error, permanent } => {
            let attempts: u32 = conn.query_row(
                "SELECT attempts FROM notifications WHERE id = ?1",
                [id],
                |r| r.get(0),
            )?;
            let attempts = attempts.saturating_add(1);
            let error: String = error.chars().take(500).collect();
            if *permanent || attempts >= config.attempts_max {
                conn.execute(
                    "UPDATE notifications SET status = 'failed', attempts = ?2, last_error = ?3,
                            done_ms = ?4 WHERE id = ?1",
                    params![id, attempts, error, now_ms],
                )?;
                return Ok(FAILED);
            }
            let delay_ms = to_i64(config.retry_delay(attempts).as_millis() as u64);
            conn.execute(
                "UPDATE notifications SET attempts = ?2, last_error = ?3, next_attempt_ms = ?4
                 WHERE id = ?1",
                params![id, attempts, error, now_ms.saturating_add(delay_ms)],
            )?;
            Ok(QUEUED)
        }
    }
}

/// One message of a return as recorded: (kind, status, attempts, channel).
pub type Recorded = (String, String, u32, Option<String>);

/// The messages of a return, in the order they were queued.
pub fn of_return(conn: &Connection, rma: &str) -> Result<Vec<Recorded>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, status, attempts, channel FROM notifications WHERE rma = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([rma], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether the customer writing from `email` opted out of `merchant`'s messages.
pub fn is_opted_out(conn: &Connection, merchant: &str, email: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM notification_optouts WHERE merchant = ?1 AND email_sha256 = ?2",
        )?
        .exists(params![merchant, notify::email_hash(email)])?)
}

/// Sets whether the customer of `email` gets `merchant`'s messages.
pub fn set_opt_out(
    conn: &Connection,
    merchant: &str,
    email: &str,
    opted_out: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    let hash = notify::email_hash(email);
    if opted_out {
        conn.execute(
            "INSERT INTO notification_optouts (merchant, email_sha256, at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (merchant, email_sha256) DO NOTHING",
            params![merchant, hash, now_ms],
        )?;
    } else {
        conn.execute(
            "DELETE FROM notification_optouts WHERE merchant = ?1 AND email_sha256 = ?2",
            params![merchant, hash],
        )?;
    }
    Ok(())
}

/// Stores a status token of `rma` by its hash.
pub fn put_token(
    conn: &Connection,
    rma: &str,
    sha256: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO status_tokens (sha256, rma, created_ms) VALUES (?1, ?2, ?3)",
        params![sha256, rma, now_ms],
    )?;
    Ok(())
}

/// The return a token (by its hash) opens, and its merchant.
pub fn token_return(
    conn: &Connection,
    sha256: &str,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT t.rma, r.merchant FROM status_tokens t LEFT JOIN returns r ON r.rma = t.rma
             WHERE t.sha256 = ?1",
            [sha256],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Deletes the tokens and messages of `rma` (its customer is erased). Returns how many rows.
pub(crate) fn erase_return(tx: &Transaction<'_>, rma: &str) -> Result<usize, StoreError> {
    let tokens = tx.execute("DELETE FROM status_tokens WHERE rma = ?1", [rma])?;
    let messages = tx.execute("DELETE FROM notifications WHERE rma = ?1", [rma])?;
    Ok(tokens + messages)
}

/// Deletes the tokens and messages of every return registered against an order of the
/// customer `reference` (before their orders are pseudonymised). Returns those returns.
pub(crate) fn erase_customer_orders(
    tx: &Transaction<'_>,
    reference: &str,
) -> Result<Vec<String>, StoreError> {
    let rmas: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT r.rma FROM returns r
             JOIN orders o ON o.merchant = r.merchant AND o.order_ref = r.order_ref
             WHERE o.customer_ref = ?1",
        )?;
        let rows = stmt.query_map([reference], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for rma in &rmas {
        erase_return(tx, rma)?;
        super::photos::erase_return(&mut super::sql::sqlite(tx), rma)?;
    }
    Ok(rmas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::orders::{put_orders, Order, OrderLine};
    use crate::store::{forget_customer, init, migrations};

    const HOUR_MS: i64 = 3_600_000;

    fn open(path: &std::path::Path) -> Connection {
        let mut conn = Connection::open(path).unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn
    }

    fn order(conn: &mut Connection, order_ref: &str, email: Option<&str>) {
        let contact = email.map(|e| Contact {
            email: e.into(),
            phone: "090-1234-5678".into(),
            line_user_id: None,
            language: "ja".into(),
        });
        let o = Order {
            merchant: "brand-a".into(),
            order_ref: order_ref.into(),
            customer_ref: Some(format!("cust-{order_ref}")),
            ordered_ms: 0,
            lines: vec![OrderLine {
                sku: "TEE".into(),
                qty: 1,
            }],
            contact,
        };
        put_orders(conn, "brand-a", &[o], 0).unwrap();
    }

    fn register(conn: &Connection, rma: &str, order_ref: &str, created_ms: i64) {
        conn.execute(
            "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms,
                                  merchant, order_ref)
             VALUES (?1, 'osaka', 'test', '[]', 'test', 0, ?2, 'brand-a', ?3)",
            params![rma, created_ms, order_ref],
        )
        .unwrap();
        event(conn, rma, "registered", created_ms);
    }

    fn event(conn: &Connection, rma: &str, kind: &str, at_ms: i64) {
        conn.execute(
            "INSERT INTO return_events (rma, kind, detail, at_ms, recorded_ms)
             VALUES (?1, ?2, '', ?3, ?3)",
            params![rma, kind, at_ms],
        )
        .unwrap();
    }

    fn kinds(conn: &Connection, rma: &str) -> Vec<String> {
        of_return(conn, rma)
            .unwrap()
            .into_iter()
            .map(|(k, ..)| k)
            .collect()
    }

    #[test]
    fn each_event_is_queued_exactly_once_across_restarts_and_only_with_a_contact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut conn = open(&path);
        order(&mut conn, "O-1", Some("hanako@example.jp"));
        order(&mut conn, "O-2", None);
        register(&conn, "R-1", "O-1", 10);
        register(&conn, "R-2", "O-2", 10);
        assert_eq!(
            contact_of_return(&conn, "R-1")
                .unwrap()
                .map(|(m, c)| (m, c.email)),
            Some(("brand-a".into(), "hanako@example.jp".into()))
        );
        assert_eq!(contact_of_return(&conn, "R-2").unwrap(), None);
        // The coordinator stops before any pass read the events: they wait in the timeline.
        drop(conn);
        let mut conn = open(&path);
        assert_eq!(queue_from_timeline(&mut conn, 100, 20).unwrap(), (2, 1));
        assert_eq!(kinds(&conn, "R-1"), ["registered"]);
        assert!(kinds(&conn, "R-2").is_empty(), "no contact, no message");
        // A restart after the pass: the mark holds, nothing is queued twice.
        drop(conn);
        let mut conn = open(&path);
        assert_eq!(queue_from_timeline(&mut conn, 100, 30).unwrap(), (0, 0));
        // Two units arrive and are graded: one arrival, one inspection; internal steps
        // (dispositions, the computed refund) are not the customer's.
        for kind in [
            "unit_received",
            "unit_received",
            "unit_graded",
            "disposition_set",
            "unit_graded",
            "refund_computed",
            "refunded",
        ] {
            event(&conn, "R-1", kind, 40);
        }
        // In batches smaller than what waits: the mark moves batch by batch.
        assert_eq!(queue_from_timeline(&mut conn, 3, 50).unwrap(), (3, 2));
        drop(conn);
        let mut conn = open(&path);
        assert_eq!(queue_from_timeline(&mut conn, 3, 60).unwrap(), (3, 0));
        assert_eq!(queue_from_timeline(&mut conn, 3, 60).unwrap(), (1, 1));
        assert_eq!(queue_from_timeline(&mut conn, 3, 60).unwrap(), (0, 0));
        assert_eq!(
            kinds(&conn, "R-1"),
            ["registered", "arrived", "inspected", "refund_issued"]
        );
    }

    #[test]
    fn a_return_unresolved_past_the_delay_gets_one_notice_and_a_resolved_one_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("c.db"));
        order(&mut conn, "O-1", Some("a@example.jp"));
        order(&mut conn, "O-2", Some("b@example.jp"));
        order(&mut conn, "O-3", Some("c@example.jp"));
        register(&conn, "R-slow", "O-1", 1000);
        register(&conn, "R-refunded", "O-2", 1000);
        register(&conn, "R-exchanged", "O-3", 2000);
        conn.execute(
            "UPDATE returns SET refund_confirmed_ms = 5 WHERE rma = 'R-refunded'",
            [],
        )
        .unwrap();
        event(&conn, "R-exchanged", "exchange_shipped", 3000);
        let after = 48 * HOUR_MS;
        assert_eq!(
            queue_delayed(&mut conn, after, 100, 1000 + after - 1).unwrap(),
            (0, 0)
        );
        assert_eq!(
            queue_delayed(&mut conn, after, 100, 2000 + after).unwrap(),
            (3, 1)
        );
        assert_eq!(
            queue_delayed(&mut conn, after, 100, 9000 + after).unwrap(),
            (0, 0)
        );
        assert_eq!(kinds(&conn, "R-slow"), ["delayed"]);
        assert!(kinds(&conn, "R-refunded").is_empty());
        assert!(kinds(&conn, "R-exchanged").is_empty());
    }

    #[test]
    fn failures_back_off_until_the_last_attempt_and_opt_outs_are_kept_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("c.db"));
        order(&mut conn, "O-1", Some("Hanako@Example.jp"));
        register(&conn, "R-1", "O-1", 0);
        queue_from_timeline(&mut conn, 100, 0).unwrap();
        let config = NotificationsSection {
            attempts_max: 3,
            retry_first_seconds: 10,
            ..NotificationsSection::default()
        };
        let d = due(&conn, 0, 10).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, Some(Kind::Registered));
        let id = d[0].id;
        let failed = Attempt::Failed {
            error: "connection refused".into(),
            permanent: false,
        };
        assert_eq!(record(&conn, id, &failed, &config, 0).unwrap(), QUEUED);
        // The parcel arrives meanwhile: its message waits for the registration's.
        event(&conn, "R-1", "unit_received", 5);
        queue_from_timeline(&mut conn, 100, 5).unwrap();
        assert!(due(&conn, 9_999, 10).unwrap().is_empty(), "backing off");
        assert_eq!(due(&conn, 10_000, 10).unwrap().len(), 1);
        assert_eq!(record(&conn, id, &failed, &config, 10_000).unwrap(), QUEUED);
        assert!(due(&conn, 29_999, 10).unwrap().is_empty(), "twice as long");
        assert_eq!(record(&conn, id, &failed, &config, 30_000).unwrap(), FAILED);
        let next = due(&conn, 30_000, 10).unwrap();
        assert_eq!(
            next.iter().map(|d| d.kind).collect::<Vec<_>>(),
            [Some(Kind::Arrived)],
            "once the first is given up, the next goes"
        );
        assert_eq!(of_return(&conn, "R-1").unwrap()[0].2, 3);

        set_opt_out(&conn, "brand-a", "hanako@example.jp", true, 1).unwrap();
        assert!(is_opted_out(&conn, "brand-a", "HANAKO@example.jp").unwrap());
        assert!(!is_opted_out(&conn, "brand-b", "hanako@example.jp").unwrap());
        let stored: String = conn
            .query_row("SELECT email_sha256 FROM notification_optouts", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(!stored.contains('@'));
        set_opt_out(&conn, "brand-a", "hanako@example.jp", false, 2).unwrap();
        assert!(!is_opted_out(&conn, "brand-a", "hanako@example.jp").unwrap());
    }

    #[test]
    fn forgetting_a_customer_deletes_their_tokens_messages_and_contact() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("c.db"));
        order(&mut conn, "O-1", Some("a@example.jp"));
        order(&mut conn, "O-2", Some("b@example.jp"));
        register(&conn, "R-1", "O-1", 0);
        register(&conn, "R-2", "O-2", 0);
        conn.execute(
            "UPDATE returns SET customer_ref = 'cust-O-1' WHERE rma = 'R-1'",
            [],
        )
        .unwrap();
        queue_from_timeline(&mut conn, 100, 0).unwrap();
        let (_, hash_1) = notify::mint_token().unwrap();
        let (_, hash_2) = notify::mint_token().unwrap();
        put_token(&conn, "R-1", &hash_1, 0).unwrap();
        put_token(&conn, "R-2", &hash_2, 0).unwrap();
        assert_eq!(
            token_return(&conn, &hash_1).unwrap(),
            Some(("R-1".into(), Some("brand-a".into())))
        );

        let (n, _) = forget_customer(&mut conn, "cust-O-1", 1).unwrap();
        assert_eq!(n, 1);
        assert_eq!(token_return(&conn, &hash_1).unwrap(), None);
        assert!(of_return(&conn, "R-1").unwrap().is_empty());
        assert_eq!(contact_of_return(&conn, "R-1").unwrap(), None);
        // Another customer keeps theirs.
        assert!(token_return(&conn, &hash_2).unwrap().is_some());
        assert_eq!(kinds(&conn, "R-2"), ["registered"]);

        // A customer named only on their order (the return was registered without them).
        let (n, _) = forget_customer(&mut conn, "cust-O-2", 2).unwrap();
        assert_eq!(n, 1);
        assert_eq!(token_return(&conn, &hash_2).unwrap(), None);
        assert!(of_return(&conn, "R-2").unwrap().is_empty());
        assert_eq!(contact_of_return(&conn, "R-2").unwrap(), None);
    }

    #[test]
    fn the_retention_sweep_erases_old_contacts_tokens_and_messages() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("c.db"));
        order(&mut conn, "O-old", Some("old@example.jp"));
        register(&conn, "R-OLD", "O-old", 0);
        conn.execute(
            "UPDATE returns SET customer_ref = 'cust-O-old' WHERE rma = 'R-OLD'",
            [],
        )
        .unwrap();
        queue_from_timeline(&mut conn, 100, 0).unwrap();
        let (_, hash) = notify::mint_token().unwrap();
        put_token(&conn, "R-OLD", &hash, 0).unwrap();
        let (n, _) = crate::store::erase_personal_data_before(&mut conn, 1, 2).unwrap();
        assert_eq!(n, 1);
        assert_eq!(token_return(&conn, &hash).unwrap(), None);
        assert!(of_return(&conn, "R-OLD").unwrap().is_empty());
        assert_eq!(contact_of_return(&conn, "R-OLD").unwrap(), None);
    }
}
