//! Alerts told to people: each raise of an alert (from when the dashboard's thresholds raise it
//! to when it clears) and the outbox of its notices, one row per event and recipient, sent at
//! least once and retried until delivered or given up. A raise is told once, again after the
//! re-notify interval while nobody silenced it, and once more when it clears; a silenced
//! alert's notices are not sent.

use std::collections::{BTreeMap, BTreeSet};

use modori_runtime::sqlite::to_i64;

use super::alert_silences;
use super::sql::{in_transaction, Row, Sql, SqlError};
use super::StoreError;

/// The migration that makes the tables (appended to `schema::migrations`).
pub const MIGRATION: &str = r#"
    CREATE TABLE alert_raises (
        id          INTEGER PRIMARY KEY,
        alert       TEXT NOT NULL,
        message     TEXT NOT NULL,
        raised_ms   INTEGER NOT NULL,
        notified_ms INTEGER,
        cleared_ms  INTEGER
    ) STRICT;
    CREATE UNIQUE INDEX alert_raises_open ON alert_raises (alert) WHERE cleared_ms IS NULL;
    CREATE TABLE alert_notices (
        id              INTEGER PRIMARY KEY,
        raise_id        INTEGER NOT NULL REFERENCES alert_raises (id),
        alert           TEXT NOT NULL,
        event           TEXT NOT NULL,
        channel         TEXT NOT NULL,
        recipient       TEXT NOT NULL,
        message         TEXT NOT NULL,
        status          TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        last_error      TEXT,
        created_ms      INTEGER NOT NULL,
        done_ms         INTEGER
    ) STRICT;
    CREATE INDEX alert_notices_queued ON alert_notices (next_attempt_ms) WHERE status = 'queued';
"#;

/// A raise's and a notice's figures by name (the alert's `params`, as JSON), so a notice is
/// written in `[alerts] language` from the same texts as the pages; older rows have none and
/// are told in their English.
pub const MIGRATION_PARAMS: &str = r#"
    ALTER TABLE alert_raises ADD COLUMN params TEXT;
    ALTER TABLE alert_notices ADD COLUMN params TEXT;
"#;

/// The first notice of a raise.
pub const RAISED: &str = "raised";
/// A raise told again after the re-notify interval.
pub const REMINDER: &str = "reminder";
/// The raise's condition is gone.
pub const CLEARED: &str = "cleared";

/// Channels of a notice.
pub const EMAIL: &str = "email";
pub const WEBHOOK: &str = "webhook";

/// An alert raised now, as the dashboard words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Raised {
    pub key: String,
    pub message: String,
    /// The alert's figures by name, as a JSON object.
    pub params: String,
}

/// Where a notice goes: [`EMAIL`] and an address, or [`WEBHOOK`] and a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub channel: &'static str,
    pub to: String,
}

/// What one pass of [`reconcile`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub n_raised: usize,
    pub n_cleared: usize,
    pub n_queued: usize,
}

struct Open {
    id: i64,
    notified_ms: Option<i64>,
    message: String,
    params: Option<String>,
}

/// Brings the raises in line with the alerts raised now, queueing the notices that calls for
/// to each of `recipients`, in one transaction. `renotify_ms`: how long after it was last told
/// a raise is told again (`None`: never). `may_clear`: whether an open raise missing from
/// `raised` has cleared, or may only not have been judged yet (just after a start).
pub fn reconcile(
    conn: &mut dyn Sql,
    raised: &[Raised],
    recipients: &[Recipient],
    renotify_ms: Option<i64>,
    may_clear: bool,
    now_ms: i64,
) -> Result<Reconciled, StoreError> {
    in_transaction(conn, |tx| {
        let silenced: BTreeSet<String> = alert_silences::in_force(tx, now_ms)?
            .into_iter()
            .map(|s| s.alert)
            .collect();
        let mut open: BTreeMap<String, Open> = tx
            .map_rows(
                "SELECT id, alert, notified_ms, message, params FROM alert_raises
                 WHERE cleared_ms IS NULL",
                &[],
                |r| {
                    Ok((
                        r.get::<String>(1)?,
                        Open {
                            id: r.get(0)?,
                            notified_ms: r.get(2)?,
                            message: r.get(3)?,
                            params: r.get(4)?,
                        },
                    ))
                },
            )?
            .into_iter()
            .collect();
        let mut out = Reconciled::default();
        for a in raised {
            let quiet = silenced.contains(&a.key);
            let Some(o) = open.remove(&a.key) else {
                let id: i64 = tx.one_value(
                    "INSERT INTO alert_raises (alert, message, raised_ms, notified_ms, params)
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    &[
                        &a.key,
                        &a.message,
                        &now_ms,
                        &(!quiet).then_some(now_ms),
                        &a.params,
                    ],
                )?;
                out.n_raised += 1;
                if !quiet {
                    let notice = Notice {
                        raise_id: id,
                        alert: &a.key,
                        event: RAISED,
                        message: &a.message,
                        params: Some(&a.params),
                    };
                    out.n_queued += queue(tx, recipients, &notice, now_ms)?;
                }
                continue;
            };
            let event = match (quiet, o.notified_ms, renotify_ms) {
                (true, ..) => None,
                (false, None, _) => Some(RAISED),
                (false, Some(told), Some(every)) if now_ms - told >= every => Some(REMINDER),
                _ => None,
            };
            if let Some(event) = event {
                let notice = Notice {
                    raise_id: o.id,
                    alert: &a.key,
                    event,
                    message: &a.message,
                    params: Some(&a.params),
                };
                out.n_queued += queue(tx, recipients, &notice, now_ms)?;
            }
            tx.execute(
                "UPDATE alert_raises SET message = ?2, params = ?5,
                    notified_ms = CASE WHEN ?3 <> 0 THEN ?4 ELSE notified_ms END
                 WHERE id = ?1",
                &[&o.id, &a.message, &event.is_some(), &now_ms, &a.params],
            )?;
        }
        if may_clear {
            for (alert, o) in open {
                tx.execute(
                    "UPDATE alert_raises SET cleared_ms = ?2 WHERE id = ?1",
                    &[&o.id, &now_ms],
                )?;
                out.n_cleared += 1;
                // Only those told of the raise are told it cleared.
                if o.notified_ms.is_some() && !silenced.contains(&alert) {
                    let notice = Notice {
                        raise_id: o.id,
                        alert: &alert,
                        event: CLEARED,
                        message: &o.message,
                        params: o.params.as_deref(),
                    };
                    out.n_queued += queue(tx, recipients, &notice, now_ms)?;
                }
            }
        }
        Ok(out)
    })
}

/// One event of a raise, to be told to every recipient.
struct Notice<'a> {
    raise_id: i64,
    alert: &'a str,
    event: &'a str,
    message: &'a str,
    params: Option<&'a str>,
}

/// Queues `notice` to each of `recipients`; returns how many notices that made.
fn queue(
    tx: &mut dyn Sql,
    recipients: &[Recipient],
    notice: &Notice<'_>,
    now_ms: i64,
) -> Result<usize, StoreError> {
    for r in recipients {
        tx.execute(
            "INSERT INTO alert_notices
                (raise_id, alert, event, channel, recipient, message, status,
                 next_attempt_ms, created_ms, params)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7, ?8)",
            &[
                &notice.raise_id,
                &notice.alert,
                &notice.event,
                &r.channel,
                &r.to,
                &notice.message,
                &now_ms,
                &notice.params,
            ],
        )?;
    }
    Ok(recipients.len())
}

/// A count of attempts, stored as a whole number.
fn attempts(r: &Row, column: usize) -> Result<u32, SqlError> {
    let n: i64 = r.get(column)?;
    u32::try_from(n).map_err(|_| SqlError::Column {
        column,
        expected: "a count of attempts (0 to 4294967295)",
        found: "an integer out of that range",
    })
}

/// A notice due to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub id: i64,
    pub alert: String,
    /// [`RAISED`], [`REMINDER`] or [`CLEARED`].
    pub event: String,
    /// [`EMAIL`] or [`WEBHOOK`].
    pub channel: String,
    pub recipient: String,
    pub message: String,
    /// The alert's figures by name (JSON), when it was queued with them.
    pub params: Option<String>,
    pub raised_ms: i64,
    pub attempts: u32,
}

/// The notices due at `now_ms`, oldest first, at most `limit`. Those of an alert silenced
/// since they were queued are marked `silenced` first and never sent.
pub fn due(conn: &mut dyn Sql, now_ms: i64, limit: usize) -> Result<Vec<Due>, StoreError> {
    in_transaction(conn, |tx| {
        tx.execute(
            "UPDATE alert_notices SET status = 'silenced', done_ms = ?1
             WHERE status = 'queued' AND alert IN (
                SELECT alert FROM alert_silences
                WHERE ended_ms IS NULL AND (until_ms IS NULL OR until_ms > ?1))",
            &[&now_ms],
        )?;
        Ok(tx.map_rows(
            "SELECT n.id, n.alert, n.event, n.channel, n.recipient, n.message, r.raised_ms,
                    n.attempts, n.params
             FROM alert_notices n JOIN alert_raises r ON r.id = n.raise_id
             WHERE n.status = 'queued' AND n.next_attempt_ms <= ?1 ORDER BY n.id LIMIT ?2",
            &[&now_ms, &to_i64(limit as u64)],
            |r| {
                Ok(Due {
                    id: r.get(0)?,
                    alert: r.get(1)?,
                    event: r.get(2)?,
                    channel: r.get(3)?,
                    recipient: r.get(4)?,
                    message: r.get(5)?,
                    raised_ms: r.get(6)?,
                    attempts: attempts(r, 7)?,
                    params: r.get(8)?,
                })
            },
        )?)
    })
}

/// The outcome of one attempt to send a notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// Tried again at `retry_at_ms`, or given up (`None`: the last attempt, or one that cannot
    /// succeed).
    Failed {
        error: String,
        retry_at_ms: Option<i64>,
    },
}

/// Records an attempt; returns the notice's status after it.
pub fn record(
    conn: &mut dyn Sql,
    id: i64,
    attempt: &Attempt,
    now_ms: i64,
) -> Result<&'static str, StoreError> {
    let (status, next, error) = match attempt {
        Attempt::Sent => ("sent", None, None),
        Attempt::Failed {
            error,
            retry_at_ms: Some(at),
        } => ("queued", Some(*at), Some(error.as_str())),
        Attempt::Failed {
            error,
            retry_at_ms: None,
        } => ("failed", None, Some(error.as_str())),
    };
    conn.execute(
        "UPDATE alert_notices SET status = ?2, attempts = attempts + 1,
            next_attempt_ms = COALESCE(?3, next_attempt_ms), last_error = ?4,
            done_ms = CASE WHEN ?2 = 'queued' THEN NULL ELSE CAST(?5 AS BIGINT) END
         WHERE id = ?1",
        &[&id, &status, &next, &error, &now_ms],
    )?;
    Ok(status)
}

/// One notice as recorded: (alert, event, channel, status, attempts).
pub type Recorded = (String, String, String, String, u32);

/// Every notice, oldest first (for tests and inspection).
pub fn all(conn: &mut dyn Sql) -> Result<Vec<Recorded>, StoreError> {
    Ok(conn.map_rows(
        "SELECT alert, event, channel, status, attempts FROM alert_notices ORDER BY id",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, attempts(r, 4)?)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;

    fn raised(key: &str) -> Raised {
        Raised {
            key: key.into(),
            message: format!("{key} is up"),
            params: "{}".into(),
        }
    }

    fn to() -> Vec<Recipient> {
        vec![
            Recipient {
                channel: EMAIL,
                to: "ops@example.jp".into(),
            },
            Recipient {
                channel: WEBHOOK,
                to: "https://hooks.example.jp/x".into(),
            },
        ]
    }

    fn events(c: &mut rusqlite::Connection) -> Vec<(String, String)> {
        all(c)
            .unwrap()
            .into_iter()
            .filter(|n| n.2 == EMAIL)
            .map(|n| (n.0, n.1))
            .collect()
    }

    #[test]
    fn a_raise_is_told_once_reminded_after_the_interval_and_told_when_it_clears() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut c).unwrap();
        let a = [raised("site_offline:osaka")];
        let every = Some(1000);
        let r = reconcile(&mut c, &a, &to(), every, true, 0).unwrap();
        assert_eq!((r.n_raised, r.n_queued), (1, 2));
        // Still raised: nothing new until the interval has passed since it was told.
        assert_eq!(
            reconcile(&mut c, &a, &to(), every, true, 999)
                .unwrap()
                .n_queued,
            0
        );
        assert_eq!(
            reconcile(&mut c, &a, &to(), every, true, 1000)
                .unwrap()
                .n_queued,
            2
        );
        assert_eq!(
            reconcile(&mut c, &a, &to(), None, true, 5000)
                .unwrap()
                .n_queued,
            0
        );
        // Gone, but not judged yet: the raise stays open.
        assert_eq!(
            reconcile(&mut c, &[], &to(), every, false, 1100)
                .unwrap()
                .n_cleared,
            0
        );
        let r = reconcile(&mut c, &[], &to(), every, true, 1200).unwrap();
        assert_eq!((r.n_cleared, r.n_queued), (1, 2));
        // Raised again: a new raise, told again.
        assert_eq!(
            reconcile(&mut c, &a, &to(), every, true, 1300)
                .unwrap()
                .n_raised,
            1
        );
        let key = "site_offline:osaka".to_owned();
        assert_eq!(
            events(&mut c),
            [
                (key.clone(), RAISED.to_owned()),
                (key.clone(), REMINDER.to_owned()),
                (key.clone(), CLEARED.to_owned()),
                (key, RAISED.to_owned()),
            ]
        );
    }

    #[test]
    fn a_silenced_alert_is_not_told_and_its_queued_notices_are_not_sent() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut c).unwrap();
        let muted = [raised("lag_ops:tokyo")];
        alert_silences::silence(
            &mut c,
            "lag_ops:tokyo",
            alert_silences::MUTED,
            "k",
            0,
            Some(500),
        )
        .unwrap();
        let r = reconcile(&mut c, &muted, &to(), Some(10_000), true, 10).unwrap();
        assert_eq!((r.n_raised, r.n_queued), (1, 0));
        // The mute ends while it is still raised: now it is told, as a raise.
        let r = reconcile(&mut c, &muted, &to(), Some(10_000), true, 600).unwrap();
        assert_eq!(r.n_queued, 2);
        assert_eq!(events(&mut c), [("lag_ops:tokyo".into(), RAISED.into())]);
        // Acknowledged before the queued notices went out: they never go.
        alert_silences::silence(
            &mut c,
            "lag_ops:tokyo",
            alert_silences::ACKNOWLEDGED,
            "k",
            700,
            None,
        )
        .unwrap();
        assert!(due(&mut c, 800, 10).unwrap().is_empty());
        let statuses: Vec<String> = all(&mut c).unwrap().into_iter().map(|n| n.3).collect();
        assert_eq!(statuses, ["silenced", "silenced"]);
    }

    #[test]
    fn a_failed_notice_waits_for_its_retry_and_a_sent_one_is_not_due_again() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut c).unwrap();
        reconcile(
            &mut c,
            &[raised("device_down:kobe:p1")],
            &to(),
            None,
            true,
            0,
        )
        .unwrap();
        let d = due(&mut c, 0, 10).unwrap();
        assert_eq!(d.len(), 2);
        let failed = Attempt::Failed {
            error: "refused".into(),
            retry_at_ms: Some(100),
        };
        assert_eq!(record(&mut c, d[0].id, &failed, 0).unwrap(), "queued");
        assert_eq!(record(&mut c, d[1].id, &Attempt::Sent, 0).unwrap(), "sent");
        assert!(due(&mut c, 99, 10).unwrap().is_empty());
        let again = due(&mut c, 100, 10).unwrap();
        assert_eq!((again.len(), again[0].attempts), (1, 1));
        let given_up = Attempt::Failed {
            error: "refused".into(),
            retry_at_ms: None,
        };
        assert_eq!(
            record(&mut c, again[0].id, &given_up, 100).unwrap(),
            "failed"
        );
        assert!(due(&mut c, 10_000, 10).unwrap().is_empty());
    }
}
