//! The site database: units, expected returns, the outbox and the sync bookkeeping.
//!
//! Invariant: every state change is written in the same transaction as its outbox op (the
//! transactional outbox), so the site's state and what it will report can never disagree, and
//! an op exists durably before anyone is told it happened. Applied commands are recorded with
//! their (epoch, seq) and hash in the same transaction as their effect.

use modori_shared::barcode;
use modori_shared::domain::{
    Disposition, DomainError, Epoch, Grade, Lpn, RmaId, SiteId, Sku, UnitState,
};
use modori_shared::op::{CommandBody, OpBody, OpRecord};
use modori_shared::sync::{Plan, ITEM_PAYLOAD_BYTES_MAX};
use modori_shared::wire::messages::Sequenced;
use modori_shared::wire::payload::{self, payload_hash, PayloadHash};
use modori_shared::wire::WireError;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use rusqlite_migration::{Migrations, M};
use thiserror::Error;

use crate::sqlite::DbError;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// The database reached its size cap (or the disk is full): nothing was written.
    #[error("the site database is full; nothing was recorded (free space or raise storage.database_bytes_max)")]
    Full,
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("unknown unit {0}: no receipt with that LPN at this site")]
    UnknownUnit(String),
    #[error("op payload of {0} bytes is over the {ITEM_PAYLOAD_BYTES_MAX}-byte limit")]
    PayloadTooLarge(usize),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Self::Full,
            _ => Self::Sqlite(e),
        }
    }
}

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            r#"
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) STRICT;
        -- One row: the sync positions of both directions.
        CREATE TABLE sync_state (
            id                  INTEGER PRIMARY KEY CHECK (id = 1),
            op_epoch            INTEGER NOT NULL,
            op_head_seq         INTEGER NOT NULL,
            op_acked_seq        INTEGER NOT NULL,
            command_epoch       INTEGER,
            command_applied_seq INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE outbox (
            seq        INTEGER PRIMARY KEY,
            kind       TEXT NOT NULL,
            payload    BLOB NOT NULL,
            created_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE applied_commands (
            epoch      INTEGER NOT NULL,
            seq        INTEGER NOT NULL,
            kind       TEXT NOT NULL,
            hash       BLOB NOT NULL,
            applied_ms INTEGER NOT NULL,
            PRIMARY KEY (epoch, seq)
        ) STRICT;
        CREATE TABLE expected_returns (
            rma         TEXT PRIMARY KEY,
            lines_json  TEXT NOT NULL,
            received_ms INTEGER
        ) STRICT;
        CREATE TABLE units (
            lpn         TEXT PRIMARY KEY,
            sku         TEXT NOT NULL,
            rma         TEXT,
            state       TEXT NOT NULL,
            operator    TEXT NOT NULL,
            received_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE inventory (
            sku TEXT PRIMARY KEY,
            qty INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE lpn_counter (
            id   INTEGER PRIMARY KEY CHECK (id = 1),
            next INTEGER NOT NULL
        ) STRICT;
        "#,
        ),
        // Epochs given up by a restore, and their unacknowledged ops, delivered before the
        // current epoch's (see `backup`).
        M::up(
            r#"
        CREATE TABLE retired_epochs (
            epoch      INTEGER PRIMARY KEY,
            head_seq   INTEGER NOT NULL,
            acked_seq  INTEGER NOT NULL,
            retired_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE retired_outbox (
            epoch   INTEGER NOT NULL,
            seq     INTEGER NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (epoch, seq)
        ) STRICT;
        "#,
        ),
    ])
}

/// Where both sync directions stand, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncSnapshot {
    pub op_epoch: Epoch,
    pub op_head_seq: u64,
    pub op_acked_seq: u64,
    pub command_epoch: Option<Epoch>,
    pub command_applied_seq: u64,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Creates the sync row (and the database epoch) on first start; returns the stored positions.
pub fn init(conn: &mut Connection, site: &SiteId) -> Result<SyncSnapshot, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored_site: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'site'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match stored_site {
        Some(s) if s != site.as_str() => {
            return Err(StoreError::Corrupt(format!(
                "this database belongs to site {s:?}, but the config says {site}"
            )))
        }
        Some(_) => {}
        None => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('site', ?1)",
                [site.as_str()],
            )?;
            // The epoch is random so a restored or reinstalled site never reuses a key. SQLite
            // integers are signed; the top bit is cleared so it round-trips unchanged.
            let epoch = new_epoch_id(Epoch(0));
            tx.execute(
                "INSERT INTO sync_state VALUES (1, ?1, 0, 0, NULL, 0)",
                [to_i64(epoch.0)],
            )?;
            tx.execute("INSERT INTO lpn_counter VALUES (1, 1)", [])?;
        }
    }
    tx.commit()?;
    snapshot(conn)
}

pub fn snapshot(conn: &Connection) -> Result<SyncSnapshot, StoreError> {
    Ok(conn.query_row(
        "SELECT op_epoch, op_head_seq, op_acked_seq, command_epoch, command_applied_seq
         FROM sync_state WHERE id = 1",
        [],
        |r| {
            Ok(SyncSnapshot {
                op_epoch: Epoch(to_u64(r.get(0)?)),
                op_head_seq: to_u64(r.get(1)?),
                op_acked_seq: to_u64(r.get(2)?),
                command_epoch: r.get::<_, Option<i64>>(3)?.map(|e| Epoch(to_u64(e))),
                command_applied_seq: to_u64(r.get(4)?),
            })
        },
    )?)
}

/// Appends an op to the outbox inside the caller's transaction and returns its seq.
fn record_op(
    tx: &Transaction<'_>,
    site: &SiteId,
    operator: &str,
    body: OpBody,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let kind = body.kind();
    let bytes = payload::encode_op(&OpRecord {
        site: site.clone(),
        at_ms: now_ms,
        operator: operator.to_owned(),
        body,
    })?;
    if bytes.len() > ITEM_PAYLOAD_BYTES_MAX {
        return Err(StoreError::PayloadTooLarge(bytes.len()));
    }
    let seq: i64 = tx.query_row(
        "UPDATE sync_state SET op_head_seq = op_head_seq + 1 WHERE id = 1 RETURNING op_head_seq",
        [],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO outbox (seq, kind, payload, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![seq, kind, bytes, now_ms],
    )?;
    Ok(to_u64(seq))
}

/// The label of the `n`th unit received in a database of `epoch`. The epoch's low 16 bits (its
/// generation) are part of it, so a site restored from a backup, whose counter starts again
/// from the backup's value, never prints a plate that already exists; its check character
/// makes a misread plate an error at the scanner, never another unit.
pub fn lpn_for(site: &SiteId, epoch: Epoch, n: u64) -> Result<Lpn, StoreError> {
    let generation = (epoch.0 & 0xffff) as u16;
    barcode::lpn_encode(site, generation, n)
        .map_err(|e| StoreError::Corrupt(format!("LPN for site {site}: {e}")))
}

/// A unit received and labelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub lpn: Lpn,
    pub seq: u64,
    /// Whether the parcel matched an expected return routed to this site.
    pub expected: bool,
}

/// Receives one unit: assigns its LPN, stores it, and records the op, in one transaction.
pub fn receive_unit(
    conn: &mut Connection,
    site: &SiteId,
    rma: Option<&RmaId>,
    sku: &Sku,
    operator: &str,
    now_ms: i64,
) -> Result<Receipt, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n: i64 = tx.query_row(
        "UPDATE lpn_counter SET next = next + 1 WHERE id = 1 RETURNING next - 1",
        [],
        |r| r.get(0),
    )?;
    let epoch: i64 = tx.query_row("SELECT op_epoch FROM sync_state WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    let lpn = lpn_for(site, Epoch(to_u64(epoch)), to_u64(n))?;
    let expected = match rma {
        Some(rma) => tx.execute(
            "UPDATE expected_returns SET received_ms = COALESCE(received_ms, ?2) WHERE rma = ?1",
            params![rma.as_str(), now_ms],
        )? > 0,
        None => false,
    };
    tx.execute(
        "INSERT INTO units (lpn, sku, rma, state, operator, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            lpn.as_str(),
            sku.as_str(),
            rma.map(RmaId::as_str),
            UnitState::Received.encode(),
            operator,
            now_ms
        ],
    )?;
    let body = OpBody::UnitReceived {
        lpn: lpn.clone(),
        rma: rma.cloned(),
        sku: sku.clone(),
    };
    let seq = record_op(&tx, site, operator, body, now_ms)?;
    tx.commit()?;
    Ok(Receipt { lpn, seq, expected })
}

fn unit_state(tx: &Transaction<'_>, lpn: &Lpn) -> Result<(UnitState, Sku), StoreError> {
    let row: Option<(String, String)> = tx
        .query_row(
            "SELECT state, sku FROM units WHERE lpn = ?1",
            [lpn.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (state, sku) = row.ok_or_else(|| StoreError::UnknownUnit(lpn.to_string()))?;
    Ok((UnitState::decode(&state)?, Sku::new(sku)?))
}

fn set_state(tx: &Transaction<'_>, lpn: &Lpn, state: UnitState) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE units SET state = ?2 WHERE lpn = ?1",
        params![lpn.as_str(), state.encode()],
    )?;
    Ok(())
}

/// Grades a unit; the lifecycle is checked before anything is written.
pub fn grade_unit(
    conn: &mut Connection,
    site: &SiteId,
    lpn: &Lpn,
    grade: Grade,
    operator: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (state, _) = unit_state(&tx, lpn)?;
    set_state(&tx, lpn, state.grade(lpn, grade)?)?;
    let seq = record_op(
        &tx,
        site,
        operator,
        OpBody::UnitGraded {
            lpn: lpn.clone(),
            grade,
        },
        now_ms,
    )?;
    tx.commit()?;
    Ok(seq)
}

/// Sets a graded unit's disposition. Restocking also adds it to sellable inventory, as a delta.
pub fn dispose_unit(
    conn: &mut Connection,
    site: &SiteId,
    lpn: &Lpn,
    disposition: Disposition,
    operator: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (state, sku) = unit_state(&tx, lpn)?;
    set_state(&tx, lpn, state.dispose(lpn, disposition)?)?;
    let mut seq = record_op(
        &tx,
        site,
        operator,
        OpBody::DispositionSet {
            lpn: lpn.clone(),
            disposition,
        },
        now_ms,
    )?;
    if disposition == Disposition::Restock {
        tx.execute(
            "INSERT INTO inventory (sku, qty) VALUES (?1, 1)
             ON CONFLICT (sku) DO UPDATE SET qty = qty + 1",
            [sku.as_str()],
        )?;
        seq = record_op(
            &tx,
            site,
            operator,
            OpBody::InventoryAdjusted { sku, delta: 1 },
            now_ms,
        )?;
    }
    tx.commit()?;
    Ok(seq)
}

/// Which outbox a sync session streams: an epoch retired by a restore (delivered first), or
/// the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxStream {
    Retired {
        epoch: Epoch,
        head_seq: u64,
        acked_seq: u64,
    },
    Current,
}

/// The stream the next session should deliver: the oldest retired epoch with ops pending,
/// otherwise the current epoch.
pub fn next_stream(conn: &Connection) -> Result<OutboxStream, StoreError> {
    let retired: Option<(i64, i64, i64)> = conn
        .query_row(
            "SELECT epoch, head_seq, acked_seq FROM retired_epochs
             WHERE acked_seq < head_seq ORDER BY retired_ms, epoch LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match retired {
        Some((e, h, a)) => OutboxStream::Retired {
            epoch: Epoch(to_u64(e)),
            head_seq: to_u64(h),
            acked_seq: to_u64(a),
        },
        None => OutboxStream::Current,
    })
}

/// Up to `max` items of `stream` from `first_seq` on, in order.
pub fn load_ops(
    conn: &Connection,
    stream: OutboxStream,
    first_seq: u64,
    max: usize,
) -> Result<Vec<Sequenced>, StoreError> {
    let map = |r: &rusqlite::Row<'_>| {
        Ok(Sequenced {
            seq: to_u64(r.get(0)?),
            payload: r.get(1)?,
        })
    };
    let rows = match stream {
        OutboxStream::Current => conn
            .prepare_cached(
                "SELECT seq, payload FROM outbox WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )?
            .query_map(params![to_i64(first_seq), to_i64(max as u64)], map)?
            .collect::<Result<_, _>>()?,
        OutboxStream::Retired { epoch, .. } => conn
            .prepare_cached(
                "SELECT seq, payload FROM retired_outbox WHERE epoch = ?1 AND seq >= ?2
                 ORDER BY seq LIMIT ?3",
            )?
            .query_map(
                params![to_i64(epoch.0), to_i64(first_seq), to_i64(max as u64)],
                map,
            )?
            .collect::<Result<_, _>>()?,
    };
    Ok(rows)
}

/// Records the coordinator's cumulative ack of `stream`. It moves back only when a restored
/// coordinator answers the hello with less than it had acknowledged (`Sender::on_connected`).
/// Acknowledged ops of a retired epoch are deleted; they exist at the coordinator.
pub fn set_op_acked(conn: &Connection, stream: OutboxStream, seq: u64) -> Result<(), StoreError> {
    match stream {
        OutboxStream::Current => {
            conn.execute(
                "UPDATE sync_state SET op_acked_seq = ?1 WHERE id = 1",
                [to_i64(seq)],
            )?;
        }
        OutboxStream::Retired {
            epoch, head_seq, ..
        } => {
            conn.execute(
                "UPDATE retired_epochs SET acked_seq = ?2 WHERE epoch = ?1",
                params![to_i64(epoch.0), to_i64(seq.min(head_seq))],
            )?;
            conn.execute(
                "DELETE FROM retired_outbox WHERE epoch = ?1 AND seq <= ?2",
                params![to_i64(epoch.0), to_i64(seq)],
            )?;
        }
    }
    Ok(())
}

/// Gives the database a new epoch (after a restore): unacknowledged ops of the old one are
/// retired for delivery, numbering starts again at 1. Returns (old, new, ops retired).
pub fn start_new_epoch(
    tx: &Transaction<'_>,
    now_ms: i64,
) -> Result<(Epoch, Epoch, u64), StoreError> {
    let snap = snapshot(tx)?;
    let pending = snap.op_head_seq.saturating_sub(snap.op_acked_seq);
    if pending > 0 {
        tx.execute(
            "INSERT INTO retired_epochs (epoch, head_seq, acked_seq, retired_ms) VALUES (?1, ?2, ?3, ?4)",
            params![
                to_i64(snap.op_epoch.0),
                to_i64(snap.op_head_seq),
                to_i64(snap.op_acked_seq),
                now_ms
            ],
        )?;
        tx.execute(
            "INSERT INTO retired_outbox (epoch, seq, payload)
             SELECT ?1, seq, payload FROM outbox WHERE seq > ?2",
            params![to_i64(snap.op_epoch.0), to_i64(snap.op_acked_seq)],
        )?;
    }
    tx.execute("DELETE FROM outbox", [])?;
    let new_epoch = new_epoch_id(snap.op_epoch);
    tx.execute(
        "UPDATE sync_state SET op_epoch = ?1, op_head_seq = 0, op_acked_seq = 0 WHERE id = 1",
        [to_i64(new_epoch.0)],
    )?;
    Ok((snap.op_epoch, new_epoch, pending))
}

/// A random epoch, different from `old` in its low 16 bits too (the LPN generation).
fn new_epoch_id(old: Epoch) -> Epoch {
    loop {
        let e = (rand::random::<u64>() >> 1).max(1);
        if (e & 0xffff) != (old.0 & 0xffff) {
            return Epoch(e);
        }
    }
}

/// Ops of retired epochs still to deliver.
pub fn retired_pending(conn: &Connection) -> Result<u64, StoreError> {
    count(
        conn,
        "SELECT COALESCE(SUM(head_seq - acked_seq), 0) FROM retired_epochs",
    )
}

pub fn command_hash(
    conn: &Connection,
    epoch: Epoch,
    seq: u64,
) -> Result<Option<PayloadHash>, StoreError> {
    let hash: Option<Vec<u8>> = conn
        .query_row(
            "SELECT hash FROM applied_commands WHERE epoch = ?1 AND seq = ?2",
            params![to_i64(epoch.0), to_i64(seq)],
            |r| r.get(0),
        )
        .optional()?;
    Ok(hash.and_then(|h| h.try_into().ok()))
}

/// Applies the planned commands of a batch and moves the command high-water mark, in one
/// transaction. A command that cannot be decoded is recorded (so the stream advances) and
/// reported to the caller for logging; the coordinator is trusted, but a bug there must not
/// wedge a site.
pub fn apply_commands(
    conn: &mut Connection,
    epoch: Epoch,
    batch: &[Sequenced],
    plan: &Plan,
    now_ms: i64,
) -> Result<Vec<(u64, String)>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut rejected = Vec::new();
    for &i in &plan.apply {
        let item = &batch[i];
        let kind = match payload::decode_command(&item.payload) {
            Ok(command) => {
                let kind = command.kind();
                apply_command(&tx, command)?;
                kind
            }
            Err(e) => {
                rejected.push((item.seq, e.to_string()));
                "undecodable"
            }
        };
        tx.execute(
            "INSERT INTO applied_commands (epoch, seq, kind, hash, applied_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![to_i64(epoch.0), to_i64(item.seq), kind, payload_hash(&item.payload).to_vec(), now_ms],
        )?;
        // Fault tests: die with part of the batch applied and nothing committed.
        fail::fail_point!("agent-apply-command", |_| std::process::abort());
    }
    tx.execute(
        "UPDATE sync_state SET command_epoch = ?1, command_applied_seq = ?2 WHERE id = 1",
        params![to_i64(epoch.0), to_i64(plan.new_applied)],
    )?;
    tx.commit()?;
    Ok(rejected)
}

fn apply_command(tx: &Transaction<'_>, command: CommandBody) -> Result<(), StoreError> {
    match command {
        CommandBody::ExpectedReturn { rma, lines } => {
            let lines: Vec<serde_json::Value> = lines
                .iter()
                .map(|l| serde_json::json!({"sku": l.sku.as_str(), "qty": l.qty, "reason": l.reason.as_str()}))
                .collect();
            tx.execute(
                "INSERT INTO expected_returns (rma, lines_json) VALUES (?1, ?2)
                 ON CONFLICT (rma) DO UPDATE SET lines_json = excluded.lines_json",
                params![rma.as_str(), serde_json::Value::Array(lines).to_string()],
            )?;
        }
        CommandBody::DispositionOverride { lpn, disposition } => {
            // Recorded for the grader's next scan of this unit; the station applies it.
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![format!("override:{lpn}"), disposition.as_str()],
            )?;
        }
    }
    Ok(())
}

/// An expected return routed here and not yet received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedReturn {
    pub rma: RmaId,
    pub skus: Vec<Sku>,
}

pub fn pending_expected_returns(
    conn: &Connection,
    max: usize,
) -> Result<Vec<ExpectedReturn>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT rma, lines_json FROM expected_returns WHERE received_ms IS NULL ORDER BY rowid LIMIT ?1",
    )?;
    let rows = stmt.query_map([to_i64(max as u64)], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (rma, lines) = row?;
        let lines: Vec<serde_json::Value> =
            serde_json::from_str(&lines).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut skus = Vec::new();
        for line in lines {
            let sku = line["sku"].as_str().unwrap_or_default();
            let qty = line["qty"].as_u64().unwrap_or(0);
            for _ in 0..qty {
                skus.push(Sku::new(sku)?);
            }
        }
        out.push(ExpectedReturn {
            rma: RmaId::new(rma)?,
            skus,
        });
    }
    Ok(out)
}

/// Units in `state` (text form prefix, e.g. `received` or `graded`), oldest first.
pub fn units_in_state(
    conn: &Connection,
    state_prefix: &str,
    max: usize,
) -> Result<Vec<(Lpn, UnitState)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT lpn, state FROM units WHERE state LIKE ?1 || '%' ORDER BY received_ms, lpn LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![state_prefix, to_i64(max as u64)], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (lpn, state) = row?;
        out.push((Lpn::new(lpn)?, UnitState::decode(&state)?));
    }
    Ok(out)
}

pub fn count(conn: &Connection, sql: &str) -> Result<u64, StoreError> {
    Ok(to_u64(conn.query_row(sql, [], |r| r.get(0))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use modori_shared::domain::{ReasonCode, ReturnLine};
    use modori_shared::sync::Receiver;

    fn open() -> (Connection, SiteId) {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let site = SiteId::new("nagoya").unwrap();
        init(&mut conn, &site).unwrap();
        (conn, site)
    }

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }

    #[test]
    fn receipt_and_its_op_are_written_together() {
        let (mut conn, site) = open();
        let sku = Sku::new("SHOE-42").unwrap();
        let r = receive_unit(&mut conn, &site, None, &sku, "B-1", 10).unwrap();
        assert_eq!(r.seq, 1);
        let epoch = snapshot(&conn).unwrap().op_epoch;
        let prefix = format!("LPN-NAGOYA-{:04X}-0000001", epoch.0 & 0xffff);
        assert!(r.lpn.as_str().starts_with(&prefix), "{}", r.lpn);
        match barcode::parse(r.lpn.as_str()).unwrap() {
            barcode::Scan::Lpn(label) => assert!(label.is_from_site(&site)),
            other => panic!("an LPN reads back as {other:?}"),
        }
        let ops = load_ops(&conn, OutboxStream::Current, 1, 10).unwrap();
        assert_eq!(ops.len(), 1);
        let op = payload::decode_op(&ops[0].payload).unwrap();
        assert_eq!(op.site, site);
        assert!(matches!(op.body, OpBody::UnitReceived { rma: None, .. }));
        assert_eq!(snapshot(&conn).unwrap().op_head_seq, 1);
    }

    #[test]
    fn invalid_transition_writes_nothing() {
        let (mut conn, site) = open();
        let sku = Sku::new("SHOE-42").unwrap();
        let r = receive_unit(&mut conn, &site, None, &sku, "B-1", 10).unwrap();
        let err =
            dispose_unit(&mut conn, &site, &r.lpn, Disposition::Restock, "B-1", 11).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
        assert_eq!(snapshot(&conn).unwrap().op_head_seq, 1);
        grade_unit(&mut conn, &site, &r.lpn, Grade::A, "B-1", 12).unwrap();
        let seq = dispose_unit(&mut conn, &site, &r.lpn, Disposition::Restock, "B-1", 13).unwrap();
        assert_eq!(seq, 4, "disposition + inventory delta");
        assert_eq!(count(&conn, "SELECT qty FROM inventory").unwrap(), 1);
    }

    #[test]
    fn database_of_another_site_is_refused() {
        let (mut conn, _) = open();
        let err = init(&mut conn, &SiteId::new("sendai").unwrap()).unwrap_err();
        assert!(err.to_string().contains("nagoya"), "{err}");
    }

    #[test]
    fn commands_apply_once_and_expected_return_is_matched() {
        let (mut conn, site) = open();
        let rma = RmaId::new("RMA-1").unwrap();
        let cmd = CommandBody::ExpectedReturn {
            rma: rma.clone(),
            lines: vec![ReturnLine::new(Sku::new("A").unwrap(), 2, ReasonCode::TooSmall).unwrap()],
        };
        let batch = vec![Sequenced {
            seq: 1,
            payload: payload::encode_command(&cmd).unwrap(),
        }];
        let mut receiver = Receiver::new(Epoch(5), 0);
        let plan = receiver.plan(&batch, |_| None);
        apply_commands(&mut conn, Epoch(5), &batch, &plan, 1).unwrap();
        receiver.commit(&plan);
        let again = receiver.plan(&batch, |seq| command_hash(&conn, Epoch(5), seq).unwrap());
        assert!(again.apply.is_empty() && again.conflicts.is_empty());
        let pending = pending_expected_returns(&conn, 10).unwrap();
        assert_eq!(pending[0].skus.len(), 2);
        let r = receive_unit(
            &mut conn,
            &site,
            Some(&rma),
            &Sku::new("A").unwrap(),
            "B",
            2,
        )
        .unwrap();
        assert!(r.expected);
        assert!(pending_expected_returns(&conn, 10).unwrap().is_empty());
        let snap = snapshot(&conn).unwrap();
        assert_eq!(
            (snap.command_epoch, snap.command_applied_seq),
            (Some(Epoch(5)), 1)
        );
    }
}

#[cfg(test)]
mod epoch_tests {
    use super::*;

    #[test]
    fn a_new_epoch_retires_unacknowledged_ops_and_restarts_numbering() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let site = SiteId::new("chiba").unwrap();
        init(&mut conn, &site).unwrap();
        let sku = Sku::new("S").unwrap();
        let mut lpns = Vec::new();
        for t in 0..5 {
            lpns.push(
                receive_unit(&mut conn, &site, None, &sku, "B", t)
                    .unwrap()
                    .lpn,
            );
        }
        set_op_acked(&conn, OutboxStream::Current, 2).unwrap();
        let tx = conn.transaction().unwrap();
        let (old, new, pending) = start_new_epoch(&tx, 100).unwrap();
        tx.commit().unwrap();
        assert_ne!(old, new);
        assert_eq!(pending, 3);
        let stream = next_stream(&conn).unwrap();
        assert_eq!(
            stream,
            OutboxStream::Retired {
                epoch: old,
                head_seq: 5,
                acked_seq: 2
            }
        );
        let ops = load_ops(&conn, stream, 3, 10).unwrap();
        assert_eq!(ops.iter().map(|o| o.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        let r = receive_unit(&mut conn, &site, None, &sku, "B", 200).unwrap();
        assert_eq!(r.seq, 1, "numbering starts again in the new epoch");
        assert!(
            !lpns.contains(&r.lpn),
            "a new generation never reuses a plate"
        );
        set_op_acked(&conn, stream, 5).unwrap();
        assert_eq!(next_stream(&conn).unwrap(), OutboxStream::Current);
        assert_eq!(retired_pending(&conn).unwrap(), 0);
    }
}
