//! The site database: units, expected returns, the outbox and the sync bookkeeping.
//!
//! Invariant: every state change is written in the same transaction as its outbox op (the
//! transactional outbox), so the site's state and what it will report can never disagree, and
//! an op exists durably before anyone is told it happened. Applied commands are recorded with
//! their (epoch, seq) and hash in the same transaction as their effect.

use modori_shared::domain::{Epoch, RmaId, SiteId};
use modori_shared::op::CommandBody;
use modori_shared::sync::Plan;
use modori_shared::wire::messages::Sequenced;
use modori_shared::wire::payload::{self, payload_hash, PayloadHash};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use rusqlite_migration::{Migrations, M};

use modori_runtime::sqlite::{to_i64, to_u64};

pub mod error;

pub use error::StoreError;

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
        // Station work: how each unit arrived, the catalogue to resolve scans offline, and
        // the audit trail (who did what to which unit, when, where).
        M::up(
            r#"
        ALTER TABLE units ADD COLUMN receipt TEXT NOT NULL DEFAULT 'matched';
        ALTER TABLE units ADD COLUMN parcel_ref TEXT;
        ALTER TABLE units ADD COLUMN quarantine INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE units ADD COLUMN grade TEXT;
        CREATE INDEX units_rma ON units (rma);
        CREATE TABLE catalog (
            sku           TEXT PRIMARY KEY,
            gtin14        TEXT,
            category      TEXT NOT NULL,
            price_yen     INTEGER NOT NULL,
            final_sale    INTEGER NOT NULL,
            needs_testing INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX catalog_gtin ON catalog (gtin14);
        CREATE TABLE audit (
            id       INTEGER PRIMARY KEY,
            lpn      TEXT,
            rma      TEXT,
            action   TEXT NOT NULL,
            detail   TEXT,
            operator TEXT NOT NULL,
            station  TEXT NOT NULL,
            at_ms    INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX audit_lpn ON audit (lpn);
        "#,
        ),
        // Grading: defects found, and the coordinator's rules that propose a disposition.
        M::up(
            r#"
        ALTER TABLE units ADD COLUMN defects TEXT;
        CREATE TABLE disposition_rules (
            id          INTEGER PRIMARY KEY,
            category    TEXT,
            grade       TEXT NOT NULL,
            disposition TEXT NOT NULL
        ) STRICT;
        "#,
        ),
        // Personal data (Japan's APPI): the customer's name, kept only for the retention period.
        M::up(
            r#"
        ALTER TABLE expected_returns ADD COLUMN customer_name TEXT;
        ALTER TABLE expected_returns ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
        "#,
        ),
        // Disposition execution: where a unit is (its bin), how it left, its function test;
        // the orders the coordinator sends for transfers and exchanges, and units on their way
        // here. Sellable stock by SKU and bin is read from the units themselves.
        M::up(
            r#"
        ALTER TABLE units ADD COLUMN bin TEXT;
        ALTER TABLE units ADD COLUMN tested INTEGER;
        ALTER TABLE units ADD COLUMN departure TEXT;
        CREATE INDEX units_bin ON units (bin) WHERE bin IS NOT NULL;
        CREATE TABLE transfer_orders (
            lpn        TEXT PRIMARY KEY,
            to_site    TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE expected_transfers (
            lpn         TEXT PRIMARY KEY,
            sku         TEXT NOT NULL,
            grade       TEXT NOT NULL,
            disposition TEXT NOT NULL,
            from_site   TEXT NOT NULL,
            created_ms  INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE exchange_orders (
            rma         TEXT PRIMARY KEY,
            sku         TEXT NOT NULL,
            shipped_lpn TEXT,
            created_ms  INTEGER NOT NULL
        ) STRICT;
        "#,
        ),
        // Totes of store drop-offs on their way here, received with one scan.
        M::up(
            r#"
        CREATE TABLE expected_totes (
            tote        TEXT PRIMARY KEY,
            rmas_json   TEXT NOT NULL,
            created_ms  INTEGER NOT NULL,
            received_ms INTEGER
        ) STRICT;
        "#,
        ),
        // Every start retires the epoch it found and checks it once against the coordinator
        // (`unchecked`): a coordinator ahead of it means the database went back in time,
        // recorded in `rollbacks`.
        M::up(
            r#"
        ALTER TABLE retired_epochs ADD COLUMN unchecked INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE rollbacks (
            epoch           INTEGER PRIMARY KEY,
            head_seq        INTEGER NOT NULL,
            coordinator_seq INTEGER NOT NULL,
            new_epoch       INTEGER NOT NULL,
            detected_ms     INTEGER NOT NULL
        ) STRICT;
        "#,
        ),
        // The carrier's number of an expected return, so its slip opens the parcel.
        M::up(
            r#"
        ALTER TABLE expected_returns ADD COLUMN tracking TEXT;
        CREATE INDEX expected_returns_tracking ON expected_returns (tracking)
            WHERE tracking IS NOT NULL;
        "#,
        ),
        // A retired epoch keeps its acknowledged ops for `storage.outbox_keep_days`, as the
        // current outbox does: a coordinator put back from a backup asks for them again.
        M::up(
            r#"
        ALTER TABLE retired_outbox ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
        "#,
        ),
        // Units the coordinator ordered back to the customer of their return: one order per
        // unit, kept with the time it left.
        M::up(
            r#"
        CREATE TABLE ship_backs (
            lpn        TEXT PRIMARY KEY,
            rma        TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            shipped_ms INTEGER
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

/// The stream the next session should deliver: the oldest retired epoch with ops pending or
/// not yet checked against the coordinator, otherwise the current epoch.
pub fn next_stream(conn: &Connection) -> Result<OutboxStream, StoreError> {
    let retired: Option<(i64, i64, i64)> = conn
        .query_row(
            "SELECT epoch, head_seq, acked_seq FROM retired_epochs
             WHERE acked_seq < head_seq OR unchecked = 1 ORDER BY retired_ms, epoch LIMIT 1",
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
            // Acknowledged to its head, the epoch has been checked: the coordinator answered
            // the hello with no more than this database holds.
            conn.execute(
                "UPDATE retired_epochs SET acked_seq = ?2,
                     unchecked = CASE WHEN ?2 >= head_seq THEN 0 ELSE unchecked END
                 WHERE epoch = ?1",
                params![to_i64(epoch.0), to_i64(seq.min(head_seq))],
            )?;
        }
    }
    Ok(())
}

/// Deletes acknowledged ops recorded before `cutoff_ms`; returns how many.
pub fn prune_outbox(conn: &Connection, cutoff_ms: i64) -> Result<usize, StoreError> {
    let current = conn.execute(
        "DELETE FROM outbox WHERE created_ms < ?1 AND seq <= (SELECT op_acked_seq FROM sync_state WHERE id = 1)",
        [cutoff_ms],
    )?;
    let retired = conn.execute(
        "DELETE FROM retired_outbox WHERE created_ms < ?1
             AND seq <= (SELECT acked_seq FROM retired_epochs r WHERE r.epoch = retired_outbox.epoch)",
        [cutoff_ms],
    )?;
    Ok(current + retired)
}

/// The coordinator runs under a command epoch this site had not seen: it restarted, and may
/// have been put back from a backup that lacks ops it once acknowledged. Every retired epoch
/// still holding ops is checked again at a hello (which resends what the coordinator lacks);
/// returns how many.
pub fn recheck_retired(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE retired_epochs SET unchecked = 1
         WHERE unchecked = 0
           AND EXISTS (SELECT 1 FROM retired_outbox o WHERE o.epoch = retired_epochs.epoch)",
        [],
    )?)
}

/// Erases personal data older than `cutoff_ms` (the retention period): customer names of
/// expected returns, and references found with parcels no longer in quarantine. Returns the
/// number of rows changed.
pub fn erase_personal_data_before(conn: &Connection, cutoff_ms: i64) -> Result<usize, StoreError> {
    let names = conn.execute(
        "UPDATE expected_returns SET customer_name = NULL WHERE customer_name IS NOT NULL AND created_ms < ?1",
        [cutoff_ms],
    )?;
    let refs = conn.execute(
        "UPDATE units SET parcel_ref = NULL WHERE parcel_ref IS NOT NULL AND quarantine = 0 AND received_ms < ?1",
        [cutoff_ms],
    )?;
    Ok(names + refs)
}

/// Gives the database a new epoch (after a restore): unacknowledged ops of the old one are
/// retired for delivery, numbering starts again at 1. Returns (old, new, ops retired).
pub fn start_new_epoch(
    tx: &Transaction<'_>,
    now_ms: i64,
) -> Result<(Epoch, Epoch, u64), StoreError> {
    let old = snapshot(tx)?.op_epoch;
    retire_and_start(tx, now_ms, new_epoch_id(old), false)
}

/// At every start of the agent: a new `epoch` whose LPN generation was reserved beside the
/// database (`generations`), so labels printed from here on are new whatever state
/// the database came back in. The epoch found is retired and checked once against the
/// coordinator, even with nothing pending: that check is how a database that went back in
/// time is found. Returns (old, new, ops retired).
pub fn start_epoch_at_boot(
    tx: &Transaction<'_>,
    now_ms: i64,
    epoch: Epoch,
    lost: &[Epoch],
    created: bool,
) -> Result<(Epoch, Epoch, u64), StoreError> {
    // A database created by this very start has no past to check.
    let started = retire_and_start(tx, now_ms, epoch, !created)?;
    // Runs of this data directory the database does not know: nothing of them is here, and
    // the coordinator's mark for each says how much was lost.
    for e in lost {
        tx.execute(
            "INSERT OR IGNORE INTO retired_epochs (epoch, head_seq, acked_seq, retired_ms, unchecked)
             VALUES (?1, 0, 0, ?2, 1)",
            params![to_i64(e.0), now_ms],
        )?;
    }
    Ok(started)
}

fn retire_and_start(
    tx: &Transaction<'_>,
    now_ms: i64,
    new_epoch: Epoch,
    check: bool,
) -> Result<(Epoch, Epoch, u64), StoreError> {
    let snap = snapshot(tx)?;
    let pending = snap.op_head_seq.saturating_sub(snap.op_acked_seq);
    if snap.op_head_seq > 0 || check {
        tx.execute(
            "INSERT INTO retired_epochs (epoch, head_seq, acked_seq, retired_ms, unchecked)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (epoch) DO UPDATE SET head_seq = excluded.head_seq,
                 acked_seq = excluded.acked_seq, unchecked = excluded.unchecked",
            params![
                to_i64(snap.op_epoch.0),
                to_i64(snap.op_head_seq),
                to_i64(snap.op_acked_seq),
                now_ms,
                i64::from(check)
            ],
        )?;
        // Acknowledged ops too (those not pruned yet): a coordinator put back from a backup
        // may lack them, and asks again when it next hears of this epoch.
        tx.execute(
            "INSERT OR IGNORE INTO retired_outbox (epoch, seq, payload, created_ms)
             SELECT ?1, seq, payload, created_ms FROM outbox",
            [to_i64(snap.op_epoch.0)],
        )?;
    }
    tx.execute("DELETE FROM outbox", [])?;
    tx.execute(
        "UPDATE sync_state SET op_epoch = ?1, op_head_seq = 0, op_acked_seq = 0 WHERE id = 1",
        [to_i64(new_epoch.0)],
    )?;
    Ok((snap.op_epoch, new_epoch, pending))
}

/// A database that went back in time, as found at a hello.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rollback {
    /// The epoch whose ops the coordinator had more of than the database held.
    pub epoch: String,
    pub head_seq: u64,
    pub coordinator_seq: u64,
    /// The epoch the site went on under (started at the agent's start).
    pub new_epoch: String,
    pub detected_ms: i64,
}

/// Records that the coordinator had applied `coordinator_seq` ops of the retired `epoch`
/// whose head here is `head_seq`, and reports it upstream as an op of the current epoch, in
/// one transaction. Returns the current epoch, or `None` when this rollback was already
/// recorded.
pub fn record_rollback(
    conn: &mut Connection,
    site: &SiteId,
    epoch: Epoch,
    head_seq: u64,
    coordinator_seq: u64,
    now_ms: i64,
) -> Result<Option<Epoch>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = snapshot(&tx)?.op_epoch;
    let n = tx.execute(
        "INSERT OR IGNORE INTO rollbacks (epoch, head_seq, coordinator_seq, new_epoch, detected_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            to_i64(epoch.0),
            to_i64(head_seq),
            to_i64(coordinator_seq),
            to_i64(current.0),
            now_ms
        ],
    )?;
    if n == 0 {
        return Ok(None);
    }
    let who = crate::work::Actor {
        operator: "system".into(),
        station: "sync".into(),
    };
    let body = modori_shared::op::OpBody::DatabaseRewound {
        epoch,
        head_seq,
        new_epoch: current,
    };
    crate::work::record_op(&tx, site, &who, body, now_ms)?;
    tx.commit()?;
    Ok(Some(current))
}

/// Every rollback this database has recorded, newest first.
pub fn rollbacks(conn: &Connection) -> Result<Vec<Rollback>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT epoch, head_seq, coordinator_seq, new_epoch, detected_ms FROM rollbacks
         ORDER BY detected_ms DESC",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Rollback {
                epoch: Epoch(to_u64(r.get(0)?)).to_string(),
                head_seq: to_u64(r.get(1)?),
                coordinator_seq: to_u64(r.get(2)?),
                new_epoch: Epoch(to_u64(r.get(3)?)).to_string(),
                detected_ms: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
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

/// Ops this database recorded in all its epochs: the current head and every retired epoch's.
pub fn ops_recorded(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT op_head_seq + (SELECT COALESCE(SUM(head_seq), 0) FROM retired_epochs)
         FROM sync_state WHERE id = 1",
        [],
        |r| r.get(0),
    )?;
    Ok(to_u64(n))
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

/// Moves the command position from `from` to the same seq of the coordinator's new epoch `to`
/// (the coordinator vouched that both number the same commands up to `after_seq`); at 0, the
/// new epoch starts from scratch whatever the position was.
pub fn carry_commands_over(
    conn: &Connection,
    from: Epoch,
    to: Epoch,
    after_seq: u64,
) -> Result<(), StoreError> {
    if after_seq == 0 {
        conn.execute(
            "UPDATE sync_state SET command_epoch = ?1, command_applied_seq = 0 WHERE id = 1",
            [to_i64(to.0)],
        )?;
        return Ok(());
    }
    let n = conn.execute(
        "UPDATE sync_state SET command_epoch = ?2, command_applied_seq = ?3
         WHERE id = 1 AND command_epoch = ?1 AND command_applied_seq = ?3",
        params![to_i64(from.0), to_i64(to.0), to_i64(after_seq)],
    )?;
    if n != 1 {
        return Err(StoreError::Refused(format!(
            "command position {after_seq} of epoch {from} is not this site's: nothing carried over"
        )));
    }
    Ok(())
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
                apply_command(&tx, command, now_ms)?;
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

fn apply_command(
    tx: &Transaction<'_>,
    command: CommandBody,
    now_ms: i64,
) -> Result<(), StoreError> {
    match command {
        CommandBody::ExpectedReturn {
            rma,
            lines,
            customer_name,
        } => {
            let lines: Vec<serde_json::Value> = lines
                .iter()
                .map(|l| serde_json::json!({"sku": l.sku.as_str(), "qty": l.qty, "reason": l.reason.as_str()}))
                .collect();
            tx.execute(
                "INSERT INTO expected_returns (rma, lines_json, customer_name, created_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (rma) DO UPDATE SET lines_json = excluded.lines_json",
                params![rma.as_str(), serde_json::Value::Array(lines).to_string(), customer_name, now_ms],
            )?;
        }
        CommandBody::ForgetCustomer { rmas } => {
            for rma in rmas {
                tx.execute(
                    "UPDATE expected_returns SET customer_name = NULL WHERE rma = ?1",
                    [rma.as_str()],
                )?;
                tx.execute(
                    "UPDATE units SET parcel_ref = NULL WHERE rma = ?1",
                    [rma.as_str()],
                )?;
            }
        }
        CommandBody::DispositionOverride { lpn, disposition } => {
            let site: String =
                tx.query_row("SELECT value FROM meta WHERE key = 'site'", [], |r| {
                    r.get(0)
                })?;
            crate::work::apply_override(tx, &SiteId::new(site)?, &lpn, disposition, now_ms)?;
        }
        CommandBody::CatalogUpdate { items } => {
            for i in items {
                tx.execute(
                    "INSERT INTO catalog (sku, gtin14, category, price_yen, final_sale, needs_testing)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (sku) DO UPDATE SET gtin14 = excluded.gtin14, category = excluded.category,
                       price_yen = excluded.price_yen, final_sale = excluded.final_sale,
                       needs_testing = excluded.needs_testing",
                    params![
                        i.sku.as_str(),
                        i.gtin14,
                        i.category,
                        to_i64(i.price_yen),
                        i.final_sale,
                        i.needs_testing
                    ],
                )?;
            }
        }
        CommandBody::DispositionRules { rules } => {
            tx.execute("DELETE FROM disposition_rules", [])?;
            for r in rules {
                tx.execute(
                    "INSERT INTO disposition_rules (category, grade, disposition) VALUES (?1, ?2, ?3)",
                    params![r.category, r.grade.as_str(), r.disposition.as_str()],
                )?;
            }
        }
        CommandBody::TransferOrder { lpn, to } => {
            tx.execute(
                "INSERT INTO transfer_orders (lpn, to_site, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (lpn) DO UPDATE SET to_site = excluded.to_site",
                params![lpn.as_str(), to.as_str(), now_ms],
            )?;
        }
        CommandBody::ExpectedTransfer {
            lpn,
            sku,
            grade,
            disposition,
            from,
        } => {
            tx.execute(
                "INSERT INTO expected_transfers (lpn, sku, grade, disposition, from_site, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (lpn) DO NOTHING",
                params![
                    lpn.as_str(),
                    sku.as_str(),
                    grade.as_str(),
                    disposition.as_str(),
                    from.as_str(),
                    now_ms
                ],
            )?;
        }
        CommandBody::ExpectedTote { tote, rmas } => {
            let rmas: Vec<&str> = rmas.iter().map(|r| r.as_str()).collect();
            tx.execute(
                "INSERT INTO expected_totes (tote, rmas_json, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tote) DO NOTHING",
                params![
                    tote.as_str(),
                    serde_json::to_string(&rmas).unwrap_or_default(),
                    now_ms
                ],
            )?;
        }
        CommandBody::ExchangeWithdrawn { rma } => {
            let n = tx.execute(
                "DELETE FROM exchange_orders WHERE rma = ?1 AND shipped_lpn IS NULL",
                [rma.as_str()],
            )?;
            let detail = if n == 1 {
                "exchange withdrawn: its replacement is not to ship"
            } else {
                "exchange withdrawn, but nothing was waiting to ship here"
            };
            tx.execute(
                "INSERT INTO audit (rma, action, detail, operator, station, at_ms)
                 VALUES (?1, 'exchange_withdrawn', ?2, 'coordinator', 'coordinator', ?3)",
                params![rma.as_str(), detail, now_ms],
            )?;
        }
        CommandBody::ExchangeOrder { rma, sku } => {
            tx.execute(
                "INSERT INTO exchange_orders (rma, sku, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (rma) DO NOTHING",
                params![rma.as_str(), sku.as_str(), now_ms],
            )?;
        }
        CommandBody::ShipBack { lpn, rma } => crate::work::order_ship_back(tx, &lpn, &rma, now_ms)?,
        CommandBody::WithdrawExpectedReturn { rma } => withdraw_expected(tx, &rma, now_ms)?,
        CommandBody::ReturnTracking { rma, tracking } => {
            tx.execute(
                "UPDATE expected_returns SET tracking = ?2 WHERE rma = ?1",
                params![rma.as_str(), tracking],
            )?;
        }
        CommandBody::MatchUnidentified { lpn, rma } => {
            let n = tx.execute(
                "UPDATE units SET rma = ?2, quarantine = 0 WHERE lpn = ?1 AND quarantine = 1",
                params![lpn.as_str(), rma.as_str()],
            )?;
            let detail = if n == 1 {
                "left quarantine"
            } else {
                "not in quarantine here; no change"
            };
            tx.execute(
                "INSERT INTO audit (lpn, rma, action, detail, operator, station, at_ms)
                 VALUES (?1, ?2, 'matched_to_return', ?3, 'coordinator', 'coordinator', ?4)",
                params![lpn.as_str(), rma.as_str(), detail, now_ms],
            )?;
        }
    }
    Ok(())
}

/// The coordinator cancelled (or expired) a return: it is no longer expected here, unless
/// something of it was already received (then the units are facts, the coordinator hears of
/// them and shows ops; the expected return stays so the parcel can be finished). A parcel that
/// still arrives is received as unidentified, with its RMA as the parcel reference.
fn withdraw_expected(tx: &Transaction<'_>, rma: &RmaId, now_ms: i64) -> Result<(), StoreError> {
    let n_units: i64 = tx.query_row(
        "SELECT COUNT(*) FROM units WHERE rma = ?1",
        [rma.as_str()],
        |r| r.get(0),
    )?;
    let detail = if n_units > 0 {
        "withdrawn by the coordinator, but units of it were already received here; kept"
    } else if tx.execute(
        "DELETE FROM expected_returns WHERE rma = ?1 AND received_ms IS NULL",
        [rma.as_str()],
    )? == 1
    {
        "withdrawn by the coordinator: no longer expected"
    } else {
        "withdrawn by the coordinator: was not expected here; no change"
    };
    tx.execute(
        "INSERT INTO audit (lpn, rma, action, detail, operator, station, at_ms)
         VALUES (NULL, ?1, 'return_withdrawn', ?2, 'coordinator', 'coordinator', ?3)",
        params![rma.as_str(), detail, now_ms],
    )?;
    Ok(())
}

pub fn count(conn: &Connection, sql: &str) -> Result<u64, StoreError> {
    Ok(to_u64(conn.query_row(sql, [], |r| r.get(0))?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::work::{self, Actor};
    use modori_shared::domain::{ReasonCode, ReturnLine, RmaId, Sku};
    use modori_shared::station::{Effect, ReceiptKind};
    use modori_shared::sync::Receiver;

    pub(crate) fn open() -> (Connection, SiteId) {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let site = SiteId::new("nagoya").unwrap();
        init(&mut conn, &site).unwrap();
        (conn, site)
    }

    pub(crate) fn receive(
        conn: &mut Connection,
        site: &SiteId,
        rma: Option<&RmaId>,
        sku: &str,
    ) -> work::Recorded {
        let sku = Sku::new(sku).unwrap();
        let receipt = work::receipt_kind(conn, rma, &sku).unwrap();
        let effect = Effect::Receive {
            rma: rma.cloned(),
            sku,
            receipt,
            parcel_ref: None,
        };
        work::record(conn, site, &Actor::new("B-1", "recv-1"), &effect, 10).unwrap()
    }

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }

    #[test]
    fn database_of_another_site_is_refused() {
        let (mut conn, _) = open();
        let err = init(&mut conn, &SiteId::new("sendai").unwrap()).unwrap_err();
        assert!(err.to_string().contains("nagoya"), "{err}");
    }

    #[test]
    fn a_command_newer_than_this_build_is_recorded_as_undecodable_and_the_stream_goes_on() {
        let (mut conn, _) = open();
        let ship_back = CommandBody::ShipBack {
            lpn: modori_shared::domain::Lpn::new("LPN-1").unwrap(),
            rma: RmaId::new("RMA-1").unwrap(),
        };
        let known = payload::encode_command(&ship_back).unwrap();
        // The next variant index after the last this build knows: to this build what a
        // ship-back is to an agent built before it.
        let mut newer = known.clone();
        newer[1] += 1;
        let batch = vec![
            Sequenced {
                seq: 1,
                payload: newer,
            },
            Sequenced {
                seq: 2,
                payload: known,
            },
        ];
        let receiver = Receiver::new(Epoch(5), 0);
        let plan = receiver.plan(&batch, |_| None);
        let rejected = apply_commands(&mut conn, Epoch(5), &batch, &plan, 1).unwrap();
        assert_eq!(
            rejected.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            [1]
        );
        let kinds: Vec<String> = conn
            .prepare("SELECT kind FROM applied_commands ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kinds, ["undecodable", "ship_back"]);
        assert_eq!(snapshot(&conn).unwrap().command_applied_seq, 2);
        assert_eq!(
            count(&conn, "SELECT COUNT(*) FROM ship_backs WHERE rma = 'RMA-1'").unwrap(),
            1
        );
    }

    #[test]
    fn commands_apply_once_and_feed_the_stations() {
        let (mut conn, site) = open();
        let rma = RmaId::new("RMA-1").unwrap();
        let commands = [
            CommandBody::ExpectedReturn {
                customer_name: Some("山田 太郎".into()),
                rma: rma.clone(),
                lines: vec![
                    ReturnLine::new(Sku::new("A").unwrap(), 2, ReasonCode::TooSmall).unwrap(),
                ],
            },
            CommandBody::CatalogUpdate {
                items: vec![modori_shared::CatalogItem {
                    sku: Sku::new("A").unwrap(),
                    gtin14: Some("04901234567894".into()),
                    category: "tops".into(),
                    price_yen: 2900,
                    final_sale: false,
                    needs_testing: false,
                }],
            },
        ];
        let batch: Vec<Sequenced> = commands
            .iter()
            .enumerate()
            .map(|(i, c)| Sequenced {
                seq: i as u64 + 1,
                payload: payload::encode_command(c).unwrap(),
            })
            .collect();
        let mut receiver = Receiver::new(Epoch(5), 0);
        let plan = receiver.plan(&batch, |_| None);
        apply_commands(&mut conn, Epoch(5), &batch, &plan, 1).unwrap();
        receiver.commit(&plan);
        let again = receiver.plan(&batch, |seq| command_hash(&conn, Epoch(5), seq).unwrap());
        assert!(again.apply.is_empty() && again.conflicts.is_empty());
        let snap = snapshot(&conn).unwrap();
        assert_eq!(
            (snap.command_epoch, snap.command_applied_seq),
            (Some(Epoch(5)), 2)
        );

        use modori_shared::station::Lookup;
        let lookup = work::SiteLookup(&conn);
        assert_eq!(
            lookup.sku_for_gtin("04901234567894"),
            Some(Sku::new("A").unwrap())
        );
        assert_eq!(
            work::pending_expected_returns(&conn, 10).unwrap()[0]
                .skus
                .len(),
            2
        );
        let r = receive(&mut conn, &site, Some(&rma), "A");
        assert!(r.lpn.is_some());
        assert_eq!(
            work::pending_expected_returns(&conn, 10).unwrap()[0]
                .skus
                .len(),
            1
        );
        receive(&mut conn, &site, Some(&rma), "A");
        assert_eq!(
            work::receipt_kind(&conn, Some(&rma), &Sku::new("A").unwrap()).unwrap(),
            ReceiptKind::Over
        );
    }

    fn apply(conn: &mut Connection, first_seq: u64, commands: &[CommandBody]) {
        let batch: Vec<Sequenced> = commands
            .iter()
            .enumerate()
            .map(|(i, c)| Sequenced {
                seq: first_seq + i as u64,
                payload: payload::encode_command(c).unwrap(),
            })
            .collect();
        let mut receiver = Receiver::new(Epoch(5), first_seq - 1);
        let plan = receiver.plan(&batch, |_| None);
        apply_commands(conn, Epoch(5), &batch, &plan, 1).unwrap();
        receiver.commit(&plan);
    }

    #[test]
    fn a_withdrawn_return_is_no_longer_expected_unless_units_of_it_arrived() {
        let (mut conn, site) = open();
        let expect = |rma: &RmaId| CommandBody::ExpectedReturn {
            customer_name: None,
            rma: rma.clone(),
            lines: vec![ReturnLine::new(Sku::new("A").unwrap(), 1, ReasonCode::Other).unwrap()],
        };
        let (quiet, busy) = (RmaId::new("RMA-Q").unwrap(), RmaId::new("RMA-B").unwrap());
        apply(&mut conn, 1, &[expect(&quiet), expect(&busy)]);
        receive(&mut conn, &site, Some(&busy), "A");
        apply(
            &mut conn,
            3,
            &[
                CommandBody::WithdrawExpectedReturn { rma: quiet.clone() },
                CommandBody::WithdrawExpectedReturn { rma: busy.clone() },
            ],
        );
        assert!(work::expected_parcel(&conn, &quiet).unwrap().is_none());
        assert!(work::expected_parcel(&conn, &busy).unwrap().is_some());
        // A parcel of the withdrawn return that still arrives goes to quarantine.
        assert_eq!(
            work::receipt_kind(&conn, Some(&quiet), &Sku::new("A").unwrap()).unwrap(),
            ReceiptKind::Unidentified
        );
        assert_eq!(
            count(
                &conn,
                "SELECT COUNT(*) FROM audit WHERE action = 'return_withdrawn'"
            )
            .unwrap(),
            2
        );
    }
}

#[cfg(test)]
mod prune_tests {
    use super::tests::{open, receive};
    use super::*;

    #[test]
    fn only_acknowledged_old_ops_are_pruned() {
        let (mut conn, site) = open();
        for _ in 0..5 {
            receive(&mut conn, &site, None, "S");
        }
        set_op_acked(&conn, OutboxStream::Current, 3).unwrap();
        assert_eq!(prune_outbox(&conn, 0).unwrap(), 0, "nothing is old enough");
        assert_eq!(
            prune_outbox(&conn, i64::MAX).unwrap(),
            3,
            "only the acknowledged"
        );
        let left: Vec<u64> = load_ops(&conn, OutboxStream::Current, 1, 10)
            .unwrap()
            .iter()
            .map(|o| o.seq)
            .collect();
        assert_eq!(left, vec![4, 5]);
    }
}

#[cfg(test)]
mod epoch_tests {
    use super::tests::{open, receive};
    use super::*;

    #[test]
    fn a_new_epoch_retires_unacknowledged_ops_and_restarts_numbering() {
        let (mut conn, site) = open();
        let mut lpns = Vec::new();
        for _ in 0..5 {
            lpns.push(receive(&mut conn, &site, None, "S").lpn.unwrap());
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
        let r = receive(&mut conn, &site, None, "S");
        assert_eq!(r.seq, 1, "numbering starts again in the new epoch");
        assert!(
            !lpns.contains(r.lpn.as_ref().unwrap()),
            "a new generation never reuses a plate"
        );
        set_op_acked(&conn, stream, 5).unwrap();
        assert_eq!(next_stream(&conn).unwrap(), OutboxStream::Current);
        assert_eq!(retired_pending(&conn).unwrap(), 0);
    }
}
