//! Counts the apply path keeps per batch, not per op: ops applied per minute and kind (the
//! dashboard's throughput chart) and the counted billable activities per merchant and Japan
//! day (the monthly statement).
//!
//! Why: a row per op in an indexed table is a B-tree insert per index per op inside the apply
//! transaction, which is what bounds how fast sites catch up. A batch of 512 receipts adds one
//! to a handful of counters instead. The counts are written in the batch's own transaction, so
//! they are exactly as durable and as exactly-once as the ops they count: a crash before the
//! commit loses the batch and its counts together, a batch sent again is a duplicate and counts
//! nothing.
//!
//! What stays a row: storage (a unit's days in a bin need its start and end, `billable`), the
//! op itself (`ops`, with its kind and when it was applied).

use std::collections::BTreeMap;

use rusqlite::{params, Transaction};

use super::StoreError;

/// The throughput counts' bucket: a throughput asked for in buckets of a multiple of it is
/// exact (the dashboard's is one minute).
pub const OPS_TALLY_BUCKET_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Japan is UTC+9 all year.
const JST_MS: i64 = 9 * 60 * 60 * 1000;

/// The schema, and the counts of what was applied before it, taken from the rows they replace.
pub const MIGRATION: &str = r#"
    CREATE TABLE ops_per_minute (
        minute_ms INTEGER NOT NULL,
        kind      TEXT NOT NULL,
        n         INTEGER NOT NULL,
        PRIMARY KEY (minute_ms, kind)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO ops_per_minute (minute_ms, kind, n)
        SELECT applied_ms / 60000 * 60000, kind, COUNT(*) FROM ops GROUP BY 1, 2;
    DROP INDEX ops_applied;
    CREATE TABLE billable_daily (
        merchant TEXT NOT NULL,
        activity TEXT NOT NULL,
        day      INTEGER NOT NULL,
        n        INTEGER NOT NULL,
        PRIMARY KEY (merchant, activity, day)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO billable_daily (merchant, activity, day, n)
        SELECT merchant, activity, (at_ms + 32400000) / 86400000, COUNT(*) FROM billable
        WHERE activity NOT IN ('storage_start', 'storage_end') GROUP BY 1, 2, 3;
    DELETE FROM billable WHERE activity NOT IN ('storage_start', 'storage_end');
"#;

/// The Japan day (days since 1970-01-01 in Japan time) of an instant.
pub fn jst_day(at_ms: i64) -> i64 {
    (at_ms + JST_MS).div_euclid(DAY_MS)
}

/// What one batch adds to the counts, gathered while its ops apply.
#[derive(Debug, Default)]
pub struct Tally {
    ops: BTreeMap<(i64, &'static str), i64>,
    billed: BTreeMap<(String, &'static str, i64), i64>,
}

impl Tally {
    /// An op of `kind` applied at `applied_ms`.
    pub fn op(&mut self, applied_ms: i64, kind: &'static str) {
        let minute = applied_ms.div_euclid(OPS_TALLY_BUCKET_MS) * OPS_TALLY_BUCKET_MS;
        *self.ops.entry((minute, kind)).or_default() += 1;
    }

    /// A counted activity (as the statement names it) billed to `merchant`, done at `at_ms`
    /// by the site's clock.
    pub fn billed(&mut self, merchant: String, activity: &'static str, at_ms: i64) {
        *self
            .billed
            .entry((merchant, activity, jst_day(at_ms)))
            .or_default() += 1;
    }

    /// Adds the batch's counts, in the batch's transaction.
    pub fn write(self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let mut ops = tx.prepare_cached(
            "INSERT INTO ops_per_minute (minute_ms, kind, n) VALUES (?1, ?2, ?3)
             ON CONFLICT (minute_ms, kind) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((minute, kind), n) in self.ops {
            ops.execute(params![minute, kind, n])?;
        }
        let mut billed = tx.prepare_cached(
            "INSERT INTO billable_daily (merchant, activity, day, n) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (merchant, activity, day) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((merchant, activity, day), n) in self.billed {
            billed.execute(params![merchant, activity, day, n])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use modori_shared::domain::{Epoch, Lpn, SiteId, Sku};
    use modori_shared::op::{OpBody, OpRecord};
    use modori_shared::station::ReceiptKind;
    use modori_shared::wire::messages::Sequenced;
    use modori_shared::wire::payload::encode_op;
    use rusqlite::Connection;

    use super::*;
    use crate::store::billing::{statement, BillingRates, UNASSIGNED};
    use crate::store::dashboard::throughput;
    use crate::store::{apply_op_batch, init, migrations};

    /// 2026-11-10 12:00 JST.
    const NOV_10_NOON_JST: i64 = 1_794_279_600_000;

    fn receipts(site: &SiteId, seqs: std::ops::RangeInclusive<u64>) -> Vec<Sequenced> {
        seqs.map(|seq| Sequenced {
            seq,
            payload: encode_op(&OpRecord {
                site: site.clone(),
                at_ms: NOV_10_NOON_JST,
                operator: "B-1".into(),
                station: "recv-1".into(),
                body: OpBody::UnitReceived {
                    lpn: Lpn::new(format!("LPN-{seq}")).unwrap(),
                    rma: None,
                    sku: Sku::new("TEE-M").unwrap(),
                    receipt: ReceiptKind::Matched,
                    parcel_ref: None,
                },
            })
            .unwrap(),
        })
        .collect()
    }

    fn receipts_billed(conn: &Connection) -> u64 {
        let s = statement(
            conn,
            &BillingRates::default(),
            UNASSIGNED,
            "2026-11",
            NOV_10_NOON_JST + 1,
        )
        .unwrap()
        .unwrap();
        s.lines
            .iter()
            .find(|l| l.activity == "receipt")
            .map_or(0, |l| l.quantity)
    }

    fn ops_counted(conn: &Connection) -> u64 {
        throughput(&mut crate::store::sql::sqlite(conn), 0, OPS_TALLY_BUCKET_MS)
            .unwrap()
            .iter()
            .filter(|(_, kind, _)| kind == "unit_received")
            .map(|(_, _, n)| n)
            .sum()
    }

    #[test]
    fn a_batch_counts_once_and_a_batch_sent_again_counts_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        let site = SiteId::new("osaka").unwrap();
        let applied_at = 1_794_279_600_000 + 90_000;
        let first = apply_op_batch(
            &mut conn,
            &site,
            Epoch(1),
            &receipts(&site, 1..=5),
            applied_at,
        )
        .unwrap();
        assert_eq!(first.n_applied, 5);
        // The same ops again (a lost ack), overlapping the next ones.
        let again = apply_op_batch(
            &mut conn,
            &site,
            Epoch(1),
            &receipts(&site, 3..=7),
            applied_at + 60_000,
        )
        .unwrap();
        assert_eq!((again.n_applied, again.n_duplicates), (2, 3));
        assert_eq!(receipts_billed(&conn), 7);
        assert_eq!(ops_counted(&conn), 7);
        let per_minute = throughput(
            &mut crate::store::sql::sqlite(&conn),
            0,
            OPS_TALLY_BUCKET_MS,
        )
        .unwrap();
        assert!(
            per_minute.contains(&(applied_at / 60_000 * 60_000, "unit_received".into(), 5))
                && per_minute.contains(&(
                    applied_at / 60_000 * 60_000 + 60_000,
                    "unit_received".into(),
                    2
                )),
            "{per_minute:?}"
        );
    }

    #[test]
    fn what_was_stored_as_rows_before_is_counted_the_same_after_the_migration() {
        // The schema version that made the counts: the first with `billable_daily`.
        let mut scratch = Connection::open_in_memory().unwrap();
        let counted_from = (1..)
            .find(|&v| {
                migrations().to_version(&mut scratch, v).unwrap();
                scratch
                    .query_row(
                        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'billable_daily'",
                        [],
                        |r| r.get::<_, i64>(0),
                    )
                    .unwrap()
                    == 1
            })
            .unwrap();
        let mut conn = Connection::open_in_memory().unwrap();
        migrations()
            .to_version(&mut conn, counted_from - 1)
            .unwrap();
        for (i, activity) in ["receipt", "receipt", "grading", "storage_start"]
            .iter()
            .enumerate()
        {
            conn.execute(
                "INSERT INTO billable (merchant, activity, lpn, site, at_ms) VALUES ('unassigned', ?1, ?2, 'osaka', ?3)",
                rusqlite::params![activity, format!("LPN-{i}"), NOV_10_NOON_JST],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO ops (site, epoch, seq, kind, hash, payload, applied_ms) VALUES ('osaka', 1, ?1, 'unit_received', x'00', x'00', ?2)",
                rusqlite::params![i as i64 + 1, NOV_10_NOON_JST],
            )
            .unwrap();
        }
        migrations().to_latest(&mut conn).unwrap();
        assert_eq!(receipts_billed(&conn), 2);
        assert_eq!(ops_counted(&conn), 4);
        let ledger: Vec<String> = conn
            .prepare("SELECT activity FROM billable")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ledger, ["storage_start"], "storage stays a row per unit");
    }

    #[test]
    fn japan_days_begin_at_midnight_in_japan() {
        // 2026-11-10 00:00 JST is 2026-11-09 15:00 UTC.
        let midnight = NOV_10_NOON_JST - 12 * 60 * 60 * 1000;
        assert_eq!(jst_day(midnight), jst_day(midnight - 1) + 1);
        assert_eq!(jst_day(midnight), jst_day(NOV_10_NOON_JST));
    }
}
