//! Alerts silenced by ops: acknowledged (until the alert's condition clears) or muted (until
//! a time), each with the key of the session that did it and when. A silence is ended, not
//! deleted, so the record of who silenced what stays.

use serde::Serialize;

use super::sql::{in_transaction, Dialect, Sql};
use super::StoreError;

/// The migration that makes the table (appended to `schema::migrations`).
pub const MIGRATION: &str = r#"
    CREATE TABLE alert_silences (
        id        INTEGER PRIMARY KEY,
        alert     TEXT NOT NULL,
        kind      TEXT NOT NULL,
        by_key_id TEXT NOT NULL,
        at_ms     INTEGER NOT NULL,
        until_ms  INTEGER,
        ended_ms  INTEGER
    ) STRICT;
    CREATE UNIQUE INDEX alert_silences_open ON alert_silences (alert) WHERE ended_ms IS NULL;
"#;

/// An acknowledgement: it holds while the alert stays raised.
pub const ACKNOWLEDGED: &str = "acknowledged";
/// A mute: it holds until its `until_ms`.
pub const MUTED: &str = "muted";

/// A silence in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Silence {
    /// The alert's key (`kind:site`, `device_down:site:device`).
    pub alert: String,
    /// [`ACKNOWLEDGED`] or [`MUTED`].
    pub kind: String,
    /// The API key id of the session that silenced it.
    pub by_key_id: String,
    pub at_ms: i64,
    /// When a mute ends.
    pub until_ms: Option<i64>,
}

/// Silences `alert` from `now_ms` (`until_ms` for a mute), ending the silence before it.
pub fn silence(
    conn: &mut dyn Sql,
    alert: &str,
    kind: &str,
    by_key_id: &str,
    now_ms: i64,
    until_ms: Option<i64>,
) -> Result<(), StoreError> {
    in_transaction(conn, |tx| {
        tx.execute(
            "UPDATE alert_silences SET ended_ms = ?2 WHERE alert = ?1 AND ended_ms IS NULL",
            &[&alert, &now_ms],
        )?;
        tx.execute(
            "INSERT INTO alert_silences (alert, kind, by_key_id, at_ms, until_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &[&alert, &kind, &by_key_id, &now_ms, &until_ms],
        )?;
        Ok(())
    })
}

/// The silences in force at `now_ms`.
pub fn in_force(conn: &mut dyn Sql, now_ms: i64) -> Result<Vec<Silence>, StoreError> {
    Ok(conn.map_rows(
        "SELECT alert, kind, by_key_id, at_ms, until_ms FROM alert_silences
         WHERE ended_ms IS NULL AND (until_ms IS NULL OR until_ms > ?1) ORDER BY alert",
        &[&now_ms],
        |r| {
            Ok(Silence {
                alert: r.get(0)?,
                kind: r.get(1)?,
                by_key_id: r.get(2)?,
                at_ms: r.get(3)?,
                until_ms: r.get(4)?,
            })
        },
    )?)
}

/// Ends the acknowledgements of `alerts`, whose condition cleared; returns how many.
pub fn end_acknowledged(
    conn: &mut dyn Sql,
    alerts: &[String],
    now_ms: i64,
) -> Result<usize, StoreError> {
    let list = serde_json::to_string(alerts).unwrap_or_else(|_| "[]".into());
    // The keys cross as one JSON array, so the statement's text is the same for any number.
    let sql = match conn.dialect() {
        Dialect::Sqlite => {
            "UPDATE alert_silences SET ended_ms = ?2
             WHERE ended_ms IS NULL AND kind = ?3 AND alert IN (SELECT value FROM json_each(?1))"
        }
        Dialect::Postgres => {
            "UPDATE alert_silences SET ended_ms = ?2
             WHERE ended_ms IS NULL AND kind = ?3
               AND alert IN (SELECT jsonb_array_elements_text(CAST(?1 AS TEXT)::jsonb))"
        }
    };
    let n = conn.execute(sql, &[&list, &now_ms, &ACKNOWLEDGED])?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;

    #[test]
    fn a_mute_ends_at_its_time_an_acknowledgement_when_ended_and_both_stay_recorded() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut c).unwrap();
        silence(&mut c, "site_offline:osaka", ACKNOWLEDGED, "k1", 10, None).unwrap();
        silence(&mut c, "lag_ops:tokyo", MUTED, "k2", 10, Some(100)).unwrap();
        let keys = |c: &mut rusqlite::Connection, at| -> Vec<String> {
            in_force(c, at)
                .unwrap()
                .into_iter()
                .map(|s| s.alert)
                .collect()
        };
        assert_eq!(keys(&mut c, 50), ["lag_ops:tokyo", "site_offline:osaka"]);
        assert_eq!(keys(&mut c, 100), ["site_offline:osaka"]);
        // A mute is not ended by its condition; an acknowledgement is.
        let both = ["site_offline:osaka".to_owned(), "lag_ops:tokyo".to_owned()];
        assert_eq!(end_acknowledged(&mut c, &both, 60).unwrap(), 1);
        assert_eq!(keys(&mut c, 61), ["lag_ops:tokyo"]);
        // Silenced again: the new one replaces the old, the old stays on record.
        silence(&mut c, "lag_ops:tokyo", ACKNOWLEDGED, "k3", 70, None).unwrap();
        let now = in_force(&mut c, 71).unwrap();
        assert_eq!(
            (now[0].kind.as_str(), now[0].by_key_id.as_str()),
            (ACKNOWLEDGED, "k3")
        );
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM alert_silences", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }
}
