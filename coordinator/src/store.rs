//! The coordinator's database: applied ops, the central unit and inventory view, anomalies,
//! returns, and each site's command stream.
//!
//! Invariants:
//! - An op's effect, its dedup record (site, epoch, seq, hash) and the stream's high-water mark
//!   are written in one transaction; the ack is sent only after that transaction commits
//!   (`synchronous=FULL`), so an acknowledged op survives power loss.
//! - Ops are facts: an op that is wrong (invalid transition, names another site, undecodable)
//!   is recorded as an anomaly and the stream advances past it. Nothing here refuses an op.
//! - Storage is reached only through the functions of this module, so a PostgreSQL backend can
//!   replace SQLite without touching the sync or routing code.

use modori_shared::domain::{
    Coordinates, Departure, Disposition, DomainError, Epoch, Grade, Lpn, MerchantId, ReturnLine,
    RmaId, SiteId, Sku, StoreId, UnitState,
};
use modori_shared::op::{CommandBody, OpBody, OpKind, OpRecord};
use modori_shared::station::ReceiptKind;
use modori_shared::sync::{Plan, Receiver, ITEM_PAYLOAD_BYTES_MAX};
use modori_shared::wire::messages::Sequenced;
use modori_shared::wire::payload::{self, payload_hash, PayloadHash};
use modori_shared::wire::WireError;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use rusqlite_migration::{Migrations, M};
use serde::Serialize;
use thiserror::Error;

use modori_runtime::sqlite::{to_i64, to_u64, DbError};

use crate::anomaly::AnomalyKind;

mod apply;
mod commands;
mod schema;

pub mod alert_notices;
pub mod alert_silences;
pub mod apikeys;
pub mod billing;
pub mod catalog;
pub mod category_names;
pub mod command_epochs;
pub mod commerce;
pub mod counter_checks;
pub mod dashboard;
pub mod decisions;
pub mod details;
pub mod dropoffs;
pub mod leases;
pub mod lifecycle;
pub mod listings;
pub mod match_suggestions;
pub mod merchant_portal;
pub mod notifications;
pub mod orders;
pub mod pg;
pub mod photos;
pub mod pickups;
pub mod portal;
pub mod probe;
pub mod quarantine;
pub mod queued;
pub mod repairs;
pub mod reservations;
pub mod return_list;
pub mod returnless;
pub mod rules;
pub mod runs;
pub mod sessions;
pub mod ship_backs;
pub mod site_activity;
pub mod sql;
pub mod stock;
pub mod styles;
pub mod tallies;
pub mod totes;
pub mod trade_in;
pub mod trade_in_returns;
pub mod transfers;
pub mod webhooks;

pub use apply::{
    apply_op_batch, apply_op_batches, apply_op_group, op_applied_seq, record_anomaly, BatchOutcome,
    SiteBatch,
};
pub use catalog::{catalog, put_catalog, put_styled_catalog};
pub use commands::{
    command_heads, command_stream, enqueue_command, load_commands, set_command_acked,
};
pub use quarantine::{match_unidentified, quarantine, MatchError, QuarantinedUnit};
pub use queued::Queued;
pub use rules::sync_disposition_rules;
pub use runs::{clear_run, run, set_run};
pub use schema::{migrations, Migration, SchemaStatus, MIGRATIONS};

/// What went wrong in the store. SQLite's error codes are read here and nowhere else: what
/// callers need to tell apart has its own variant.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database thread is gone or its queue refused the job.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A row with this key is stored already (a unique or other constraint).
    #[error("database error: {0}")]
    Conflict(rusqlite::Error),
    /// The database stayed locked by another connection past the busy timeout.
    #[error("database error: {0}")]
    Busy(rusqlite::Error),
    /// The file is damaged or not a database.
    #[error("database error: {0}")]
    Corrupt(rusqlite::Error),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A statement failed through [`sql::Sql`] (on either backend).
    #[error("database error: {0}")]
    Sql(sql::SqlError),
    #[error("command payload of {0} bytes is over the {ITEM_PAYLOAD_BYTES_MAX}-byte limit")]
    PayloadTooLarge(usize),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let code = match &e {
            rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
            _ => None,
        };
        match code {
            Some(ErrorCode::ConstraintViolation) => Self::Conflict(e),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy(e),
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Self::Corrupt(e),
            _ => Self::Sqlite(e),
        }
    }
}

impl From<sql::SqlError> for StoreError {
    fn from(e: sql::SqlError) -> Self {
        match e {
            // SQLite's own error keeps its kind (conflict, busy, corrupt).
            sql::SqlError::Sqlite(e) => Self::from(e),
            e => Self::Sql(e),
        }
    }
}

impl StoreError {
    /// A row with this key (an RMA, an id) is stored already.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Conflict(_) => true,
            Self::Sql(e) => e.is_conflict(),
            _ => false,
        }
    }
}

/// Prepared statements a coordinator connection keeps: every statement of the apply path, with
/// room to spare (rusqlite's default of 16 would evict them in turn).
pub const STATEMENT_CACHE_CAPACITY: usize = 128;

/// Lowercase hex of `bytes`, for anomaly details and pseudonyms.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The coordinator database's epoch, which numbers every command stream. Created on first start.
pub fn init(conn: &mut Connection) -> Result<Epoch, StoreError> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'command_epoch'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let epoch = match stored.and_then(|s| s.parse::<u64>().ok()) {
        Some(e) => e,
        None => {
            let e = (rand::random::<u64>() >> 1).max(1);
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('command_epoch', ?1)",
                [e.to_string()],
            )?;
            e
        }
    };
    tx.commit()?;
    Ok(Epoch(epoch))
}

/// A return to register: whose it is, where it comes from, what it holds.
#[derive(Clone, Debug)]
pub struct NewReturn {
    pub rma: RmaId,
    /// The merchant it belongs to; a return without one is seen by ops keys only.
    pub merchant: Option<MerchantId>,
    /// Where it starts, for routing.
    pub origin: Coordinates,
    /// How the origin is shown (`store:<id>`, `point:<lat>,<lon>`).
    pub origin_label: String,
    /// The store it was registered at, if any: that store's key may follow it.
    pub origin_store: Option<StoreId>,
    pub lines: Vec<ReturnLine>,
    pub customer: Option<Customer>,
    /// What a commerce system asked and the policy granted (none for a bare registration).
    pub terms: Option<commerce::Terms>,
    /// The merchant's order the return is for, when known (the store counter looks it up).
    pub order_ref: Option<String>,
    /// What the customer chose instead of the item, in words for the timeline (the store
    /// counter asks); `None` when the commerce system keeps that itself.
    pub resolution: Option<details::Detail>,
}

/// A return routed to a site: stored with its `registered` event and sent to the site as an
/// expected return, in one transaction. Returns the command seq.
/// `candidates_json` is every site the routing weighed, with its score or why it was left out.
pub fn register_return(
    conn: &mut Connection,
    r: &NewReturn,
    site: &SiteId,
    routing: &str,
    candidates_json: &str,
    sites: &[modori_shared::domain::Site],
    now_ms: i64,
) -> Result<Queued, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let customer = r.customer.as_ref();
    let command = CommandBody::ExpectedReturn {
        rma: r.rma.clone(),
        lines: r.lines.to_vec(),
        customer_name: customer.and_then(|c| c.name.clone()),
    };
    let seq = enqueue_command(&tx, site, &command, now_ms)?;
    let lines_json = serde_json::to_string(
        &r.lines
            .iter()
            .map(|l| serde_json::json!({"sku": l.sku.as_str(), "qty": l.qty, "reason": l.reason.as_str()}))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    tx.execute(
        "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms,
                              customer_ref, customer_name, customer_address, merchant, origin_store,
                              order_ref)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            r.rma.as_str(),
            site.as_str(),
            r.origin_label,
            lines_json,
            routing,
            to_i64(seq),
            now_ms,
            customer.map(|c| c.reference.as_str()),
            customer.and_then(|c| c.name.as_deref()),
            customer.and_then(|c| c.address.as_deref()),
            r.merchant.as_ref().map(MerchantId::as_str),
            r.origin_store.as_ref().map(StoreId::as_str),
            r.order_ref,
        ],
    )?;
    lifecycle::registered(&tx, &r.rma, site, routing, now_ms)?;
    if let Some(resolution) = &r.resolution {
        lifecycle::resolution_chosen(&tx, &r.rma, resolution, now_ms)?;
    }
    let mut last_seq = seq;
    let mut others = Queued::none();
    if let Some(terms) = &r.terms {
        commerce::store_terms(&tx, &r.rma, terms)?;
        // The site opens the parcel by its carrier slip too; a number the wire cannot carry
        // stays at the centre (its parcel still opens by the RMA).
        if let Some(tracking) = terms
            .tracking
            .as_ref()
            .filter(|t| !t.is_empty() && t.len() <= payload::PARCEL_REF_LEN_MAX)
        {
            let command = CommandBody::ReturnTracking {
                rma: r.rma.clone(),
                tracking: tracking.clone(),
            };
            last_seq = last_seq.max(enqueue_command(&tx, site, &command, now_ms)?);
        }
        // The replacement is set aside now, at whichever site holds one; the order to ship
        // it goes out at receipt (at once for an advance exchange).
        if let Some(sku) = &terms.exchange_sku {
            let (_, queued) = reservations::reserve(
                &mut sql::sqlite(&tx),
                &r.rma,
                sku,
                r.origin,
                sites,
                terms.advance_exchange,
                now_ms,
            )?;
            if let Some((to, seq)) = queued {
                if &to == site {
                    last_seq = last_seq.max(seq);
                } else {
                    others.push(to, seq);
                }
            }
        }
    }
    tx.execute(
        "UPDATE returns SET routing_candidates = ?2 WHERE rma = ?1",
        params![r.rma.as_str(), candidates_json],
    )?;
    tx.commit()?;
    let mut queued = Queued::one(site.clone(), last_seq);
    queued.extend(others);
    Ok(queued)
}

/// The customer of a return: personal data, kept only as long as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// The commerce system's customer reference.
    pub reference: String,
    pub name: Option<String>,
    pub address: Option<String>,
}

/// A stable stand-in for a customer reference once it must be forgotten: the same customer
/// still counts as one in statistics, but cannot be looked up.
fn pseudonym(reference: &str) -> String {
    format!("anon-{}", hex(&payload_hash(reference.as_bytes())[..8]))
}

/// Pseudonymises the returns in `rmas` here, deletes their status tokens and customer
/// messages, rewrites their queued expected-return commands without the name, and tells each
/// site concerned to erase what it holds. Returns the sites told, with the command's seq.
fn erase_returns(
    tx: &Transaction<'_>,
    rmas: &[(RmaId, SiteId, String)],
    now_ms: i64,
) -> Result<Queued, StoreError> {
    let mut by_site: std::collections::BTreeMap<SiteId, Vec<RmaId>> =
        std::collections::BTreeMap::new();
    for (rma, site, reference) in rmas {
        tx.execute(
            "UPDATE returns SET customer_ref = ?2, customer_name = NULL, customer_address = NULL WHERE rma = ?1",
            params![rma.as_str(), pseudonym(reference)],
        )?;
        notifications::erase_return(tx, rma.as_str())?;
        photos::erase_return(&mut sql::sqlite(tx), rma.as_str())?;
        let command_seq: i64 = tx.query_row(
            "SELECT command_seq FROM returns WHERE rma = ?1",
            [rma.as_str()],
            |r| r.get(0),
        )?;
        let stored: Option<Vec<u8>> = tx
            .query_row(
                "SELECT payload FROM commands WHERE site = ?1 AND seq = ?2",
                params![site.as_str(), command_seq],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(Ok(CommandBody::ExpectedReturn { rma, lines, .. })) =
            stored.map(|p| payload::decode_command(&p))
        {
            let without = payload::encode_command(&CommandBody::ExpectedReturn {
                rma,
                lines,
                customer_name: None,
            })?;
            tx.execute(
                "UPDATE commands SET payload = ?3 WHERE site = ?1 AND seq = ?2",
                params![site.as_str(), command_seq, without],
            )?;
        }
        by_site.entry(site.clone()).or_default().push(rma.clone());
    }
    let mut told = Queued::none();
    for (site, rmas) in by_site {
        for chunk in rmas.chunks(payload::RETURN_LINES_MAX) {
            let seq = enqueue_command(
                tx,
                &site,
                &CommandBody::ForgetCustomer {
                    rmas: chunk.to_vec(),
                },
                now_ms,
            )?;
            told.push(site.clone(), seq);
        }
    }
    Ok(told)
}

fn returns_where(
    tx: &Transaction<'_>,
    sql: &str,
    arg: &dyn rusqlite::ToSql,
) -> Result<Vec<(RmaId, SiteId, String)>, StoreError> {
    let mut stmt = tx.prepare(sql)?;
    let rows = stmt.query_map([arg], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (rma, site, reference) = row?;
        out.push((RmaId::new(rma)?, SiteId::new(site)?, reference));
    }
    Ok(out)
}

/// A customer asked to be forgotten: their returns are pseudonymised here and erased at the
/// sites that hold them; their orders lose their contact, and the status tokens and messages
/// of every return of theirs are deleted. Returns how many returns (by the customer's
/// reference on the return or on its order), and the sites told.
pub fn forget_customer(
    conn: &mut Connection,
    reference: &str,
    now_ms: i64,
) -> Result<(usize, Queued), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let rmas = returns_where(
        &tx,
        "SELECT rma, site, customer_ref FROM returns WHERE customer_ref = ?1",
        &reference,
    )?;
    let told = erase_returns(&tx, &rmas, now_ms)?;
    // Returns registered against the customer's orders without naming the customer.
    let by_order = notifications::erase_customer_orders(&tx, reference)?;
    let n_returns = by_order
        .iter()
        .filter(|rma| !rmas.iter().any(|(r, ..)| r.as_str() == rma.as_str()))
        .count()
        + rmas.len();
    photos::erase_customer_uploads(&mut sql::sqlite(&tx), reference)?;
    orders::pseudonymise(&mut sql::sqlite(&tx), reference, &pseudonym(reference))?;
    tx.commit()?;
    Ok((n_returns, told))
}

/// Pseudonymises returns registered before `cutoff_ms` (the retention period) here and at
/// their sites. Returns how many, and the sites told.
pub fn erase_personal_data_before(
    conn: &mut Connection,
    cutoff_ms: i64,
    now_ms: i64,
) -> Result<(usize, Queued), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let rmas = returns_where(
        &tx,
        "SELECT rma, site, customer_ref FROM returns
         WHERE created_ms < ?1 AND customer_ref IS NOT NULL AND customer_ref NOT LIKE 'anon-%'",
        &cutoff_ms,
    )?;
    let told = erase_returns(&tx, &rmas, now_ms)?;
    orders::pseudonymise_before(&mut sql::sqlite(&tx), cutoff_ms, pseudonym)?;
    tx.commit()?;
    Ok((rmas.len(), told))
}

/// Per-site sync figures for the API.
#[derive(Clone, Debug, Default)]
pub struct SiteSync {
    pub epoch: Option<Epoch>,
    pub applied_seq: u64,
    pub command_head_seq: u64,
    pub command_acked_seq: u64,
}

/// The stream of the site's newest epoch (by first appearance).
pub fn site_sync(conn: &Connection, site: &SiteId) -> Result<SiteSync, StoreError> {
    let latest: Option<(i64, i64)> = conn
        .query_row(
            "SELECT epoch, applied_seq FROM op_streams WHERE site = ?1 ORDER BY first_seen_ms DESC, rowid DESC LIMIT 1",
            [site.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (head, acked) = command_stream(&mut sql::sqlite(conn), site)?;
    Ok(SiteSync {
        epoch: latest.map(|(e, _)| Epoch(to_u64(e))),
        applied_seq: latest.map_or(0, |(_, a)| to_u64(a)),
        command_head_seq: head,
        command_acked_seq: acked,
    })
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AnomalyRow {
    pub id: i64,
    pub site: String,
    pub epoch: Option<String>,
    pub seq: Option<i64>,
    pub kind: String,
    pub lpn: Option<String>,
    pub detail: String,
    /// The detail's code (`detail.<code>` in a page's texts), when it has one; anomalies
    /// recorded before codes keep only their English.
    pub detail_code: Option<String>,
    /// The parameters of `detail_code`'s text, by name.
    pub detail_params: Option<std::collections::BTreeMap<String, String>>,
    pub at_ms: i64,
}

pub fn anomalies(conn: &Connection, limit: usize) -> Result<Vec<AnomalyRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, site, epoch, seq, kind, lpn, detail, at_ms, detail_code, detail_params
         FROM anomalies ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([to_i64(limit as u64)], |r| {
        Ok(AnomalyRow {
            id: r.get(0)?,
            site: r.get(1)?,
            epoch: r
                .get::<_, Option<i64>>(2)?
                .map(|e| Epoch(to_u64(e)).to_string()),
            seq: r.get(3)?,
            kind: r.get(4)?,
            lpn: r.get(5)?,
            detail: r.get(6)?,
            at_ms: r.get(7)?,
            detail_code: r.get(8)?,
            detail_params: details::read_params(r.get(9)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn count(conn: &Connection, sql: &str, site: &str) -> Result<u64, StoreError> {
    Ok(to_u64(conn.query_row(sql, [site], |r| r.get(0))?))
}

/// Units given each disposition across the fleet, for the demo summary: whether still waiting
/// to be put away (`disposed:`), in a bin (`placed:`) or gone from the site (`departed:`), as
/// the dashboard counts them.
pub fn disposition_counts(conn: &Connection) -> Result<Vec<(Disposition, u64)>, StoreError> {
    let mut out = Vec::new();
    for name in Disposition::ALL_NAMES {
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM units
             WHERE state IN ('disposed:' || ?1, 'placed:' || ?1, 'departed:' || ?1)",
            [name],
            |r| r.get(0),
        )?;
        out.push((Disposition::parse(name)?, to_u64(n)));
    }
    Ok(out)
}

/// What the store's tests share: a station's op bodies applied as one batch.
#[cfg(test)]
pub(crate) mod test_ops {
    use super::*;

    /// Applies `bodies` as `site`'s ops from `first_seq` on, recorded by one operator at one
    /// station at 5 s and applied at 9 s.
    pub fn apply_bodies(
        conn: &mut Connection,
        site: &SiteId,
        first_seq: u64,
        bodies: Vec<OpBody>,
    ) -> BatchOutcome {
        let batch: Vec<Sequenced> = bodies
            .into_iter()
            .zip(first_seq..)
            .map(|(body, seq)| Sequenced {
                seq,
                payload: payload::encode_op(&OpRecord {
                    site: site.clone(),
                    at_ms: 5_000,
                    operator: "B-1".into(),
                    station: "recv-1".into(),
                    body,
                })
                .unwrap(),
            })
            .collect();
        apply_op_batch(conn, site, Epoch(1), &batch, 9_000).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modori_shared::domain::{Grade, Sku};
    use std::collections::BTreeMap;

    #[test]
    fn disposition_counts_follow_units_put_away_and_gone() {
        let conn = open();
        for (i, state) in [
            "disposed:restock",
            "placed:restock",
            "departed:restock",
            "departed:resale",
            "graded:B",
            "received",
        ]
        .iter()
        .enumerate()
        {
            conn.execute(
                "INSERT INTO units (lpn, site, sku, state, updated_ms) VALUES (?1, 's', 'A', ?2, 0)",
                params![format!("L{i}"), state],
            )
            .unwrap();
        }
        let counts = disposition_counts(&conn).unwrap();
        let n = |d: Disposition| counts.iter().find(|(x, _)| *x == d).map(|(_, n)| *n);
        assert_eq!(n(Disposition::Restock), Some(3), "{counts:?}");
        assert_eq!(n(Disposition::Resale), Some(1), "{counts:?}");
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 4, "{counts:?}");
    }

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn
    }

    fn op(site: &str, seq: u64, body: OpBody) -> Sequenced {
        Sequenced {
            seq,
            payload: payload::encode_op(&OpRecord {
                site: SiteId::new(site).unwrap(),
                at_ms: 0,
                operator: "B".into(),
                station: "recv-1".into(),
                body,
            })
            .unwrap(),
        }
    }

    fn received(site: &str, seq: u64, lpn: &str) -> Sequenced {
        op(
            site,
            seq,
            OpBody::UnitReceived {
                lpn: Lpn::new(lpn).unwrap(),
                rma: None,
                sku: Sku::new("S").unwrap(),
                receipt: ReceiptKind::Matched,
                parcel_ref: None,
            },
        )
    }

    #[test]
    fn a_unit_a_return_may_not_count_waits_in_quarantine_with_an_anomaly() {
        let mut conn = open();
        let osaka = SiteId::new("osaka").unwrap();
        conn.execute_batch(
            r#"INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms, status) VALUES
               ('SHOP-1', 'osaka', 'x', '[{"sku": "TEE", "qty": 1}]', 'x', 1, 0, 'received'),
               ('YOKO-1', 'yokohama', 'x', '[{"sku": "TEE", "qty": 1}]', 'x', 1, 0, 'expected');"#,
        )
        .unwrap();
        let unit = |seq, lpn: &str, rma: &str, sku: &str, receipt| {
            op(
                "osaka",
                seq,
                OpBody::UnitReceived {
                    lpn: Lpn::new(lpn).unwrap(),
                    rma: Some(RmaId::new(rma).unwrap()),
                    sku: Sku::new(sku).unwrap(),
                    receipt,
                    parcel_ref: None,
                },
            )
        };
        let batch = vec![
            unit(1, "L1", "YOKO-1", "CAP", ReceiptKind::Unidentified),
            unit(2, "L2", "SHOP-1", "CAP", ReceiptKind::Matched),
            unit(3, "L3", "SHOP-1", "TEE", ReceiptKind::Over),
            // A site from before the gate grades a quarantined unit: applied, and seen.
            op(
                "osaka",
                4,
                OpBody::UnitGraded {
                    lpn: Lpn::new("L2").unwrap(),
                    grade: Grade::B,
                    defects: vec![],
                },
            ),
            op(
                "osaka",
                5,
                OpBody::UnitReleased {
                    lpn: Lpn::new("L3").unwrap(),
                    supervisor: "B-0042".into(),
                    reason: "extra sock, customer told".into(),
                },
            ),
        ];
        let out = apply_op_batch(&mut conn, &osaka, Epoch(1), &batch, 0).unwrap();
        assert_eq!((out.n_applied, out.n_anomalies), (5, 4));
        let found: Vec<(String, Option<String>)> = anomalies(&conn, 10)
            .unwrap()
            .into_iter()
            .rev()
            .map(|a| (a.kind, a.lpn))
            .collect();
        let want = [
            ("return_not_routed_here", "L1"),
            ("wrong_item", "L2"),
            ("over_after_close", "L3"),
            ("quarantine_breached", "L2"),
        ];
        assert_eq!(
            found,
            want.map(|(k, l)| (k.to_owned(), Some(l.to_owned())))
                .to_vec()
        );
        let details: Vec<String> = anomalies(&conn, 10)
            .unwrap()
            .into_iter()
            .map(|a| a.detail)
            .collect();
        assert!(details
            .iter()
            .any(|d| d.contains("YOKO-1") && d.contains("yokohama")));
        // Each beside its code and parameters, for a page to say in its language.
        type Coded = (Option<String>, Option<BTreeMap<String, String>>);
        let coded: Vec<Coded> = anomalies(&conn, 10)
            .unwrap()
            .into_iter()
            .rev()
            .map(|a| (a.detail_code, a.detail_params))
            .collect();
        let params = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        let received = |rma, sku| [("rma", rma), ("site", "osaka"), ("sku", sku)];
        let not_here = [&received("YOKO-1", "CAP")[..], &[("routed_to", "yokohama")]].concat();
        assert_eq!(
            coded,
            vec![
                (Some("not_routed_here".into()), params(&not_here)),
                (
                    Some("not_listed".into()),
                    params(&received("SHOP-1", "CAP"))
                ),
                (
                    Some("over_after_close".into()),
                    params(&received("SHOP-1", "TEE"))
                ),
                (
                    Some("quarantine_breached".into()),
                    params(&[("op", "unit_graded")])
                ),
            ]
        );
        assert_eq!(
            count(
                &conn,
                "SELECT COUNT(*) FROM units WHERE rma IS NOT NULL AND site = ?1",
                "osaka"
            )
            .unwrap(),
            0,
            "no return counts any of them"
        );
        // L3 was released, L2 was graded (still waiting), L1 waits.
        let waiting: Vec<String> = quarantine(&mut conn, 10)
            .unwrap()
            .into_iter()
            .map(|u| u.lpn)
            .collect();
        assert_eq!(waiting, vec!["L1", "L2"]);
        let timeline: String = conn
            .query_row(
                "SELECT detail FROM return_events WHERE rma = 'SHOP-1' AND kind = 'unit_released'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            timeline.contains("B-0042") && timeline.contains("customer told"),
            "{timeline}"
        );
        let event = lifecycle::get(&conn, &RmaId::new("SHOP-1").unwrap())
            .unwrap()
            .unwrap()
            .events
            .into_iter()
            .find(|e| e.kind == "unit_released")
            .unwrap();
        assert_eq!(event.detail_code.as_deref(), Some("released"));
        assert_eq!(
            event.detail_params,
            params(&[
                ("reason", "extra sock, customer told"),
                ("supervisor", "B-0042")
            ])
        );
        // The dashboard counts the same set.
        let counts = dashboard::counts(&mut conn).unwrap();
        assert_eq!(counts.pipeline.quarantine, 2);
        assert_eq!(counts.sites["osaka"].quarantine, 2);
    }

    #[test]
    fn a_transfer_is_announced_to_its_destination_and_changes_hands_on_arrival() {
        let mut conn = open();
        let lpn = Lpn::new("LPN-OSAKA-0001-00000017").unwrap();
        let osaka = SiteId::new("osaka").unwrap();
        let fukuoka = SiteId::new("fukuoka").unwrap();
        let epoch = Epoch(1);
        let ops = vec![
            received("osaka", 1, lpn.as_str()),
            op(
                "osaka",
                2,
                OpBody::UnitGraded {
                    lpn: lpn.clone(),
                    grade: Grade::A,
                    defects: vec![],
                },
            ),
            op(
                "osaka",
                3,
                OpBody::DispositionSet {
                    lpn: lpn.clone(),
                    disposition: Disposition::Restock,
                },
            ),
            op(
                "osaka",
                4,
                OpBody::UnitPutAway {
                    lpn: lpn.clone(),
                    bin: modori_shared::domain::Bin::new("A0103").unwrap(),
                },
            ),
            op(
                "osaka",
                5,
                OpBody::UnitDeparted {
                    lpn: lpn.clone(),
                    departure: Departure::Transfer {
                        to: fukuoka.clone(),
                    },
                    tracking: None,
                },
            ),
        ];
        let outcome = apply_op_batch(&mut conn, &osaka, epoch, &ops, 10).unwrap();
        assert_eq!(outcome.n_anomalies, 0);
        assert_eq!(outcome.commands_queued, vec![(fukuoka.clone(), 1)]);
        let commands = load_commands(&mut conn, &fukuoka, 1, 10).unwrap();
        assert_eq!(
            payload::decode_command(&commands[0].payload).unwrap(),
            CommandBody::ExpectedTransfer {
                lpn: lpn.clone(),
                sku: Sku::new("S").unwrap(),
                grade: Grade::A,
                disposition: Disposition::Restock,
                from: osaka.clone(),
            }
        );
        // Arriving somewhere else than ordered is an anomaly, and changes nothing.
        let arrive = |site: &str| {
            op(
                site,
                1,
                OpBody::TransferReceived {
                    lpn: lpn.clone(),
                    from: osaka.clone(),
                },
            )
        };
        let sendai = SiteId::new("sendai").unwrap();
        let wrong = apply_op_batch(&mut conn, &sendai, epoch, &[arrive("sendai")], 11).unwrap();
        assert_eq!(wrong.n_anomalies, 1);
        let right = apply_op_batch(&mut conn, &fukuoka, epoch, &[arrive("fukuoka")], 12).unwrap();
        assert_eq!(right.n_anomalies, 0);
        let (owner, state): (String, String) = conn
            .query_row(
                "SELECT site, state FROM units WHERE lpn = ?1",
                [lpn.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (owner.as_str(), state.as_str()),
            ("fukuoka", "disposed:restock")
        );
        // The old site can no longer act on it.
        let late = op(
            "osaka",
            6,
            OpBody::UnitPutAway {
                lpn: lpn.clone(),
                bin: modori_shared::domain::Bin::new("A0103").unwrap(),
            },
        );
        assert_eq!(
            apply_op_batch(&mut conn, &osaka, epoch, &[late], 13)
                .unwrap()
                .n_anomalies,
            1
        );
    }

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }

    #[test]
    fn batch_applies_once_and_duplicates_are_counted() {
        let mut conn = open();
        let site = SiteId::new("osaka").unwrap();
        let batch = vec![received("osaka", 1, "L1"), received("osaka", 2, "L2")];
        let out = apply_op_batch(&mut conn, &site, Epoch(1), &batch, 0).unwrap();
        assert_eq!((out.applied_seq, out.n_applied), (2, 2));
        let again = apply_op_batch(&mut conn, &site, Epoch(1), &batch, 0).unwrap();
        assert_eq!(
            (again.applied_seq, again.n_applied, again.n_duplicates),
            (2, 0, 2)
        );
        assert_eq!(
            count(&conn, "SELECT COUNT(*) FROM units WHERE site = ?1", "osaka").unwrap(),
            2
        );
        // A new epoch starts from seq 1 again and is not mistaken for duplicates.
        let out =
            apply_op_batch(&mut conn, &site, Epoch(2), &[received("osaka", 1, "L3")], 0).unwrap();
        assert_eq!(out.n_applied, 1);
    }

    #[test]
    fn wrong_ops_become_anomalies_and_the_stream_advances() {
        let mut conn = open();
        let site = SiteId::new("osaka").unwrap();
        let lpn = Lpn::new("L1").unwrap();
        let batch = vec![
            received("sendai", 1, "L9"),
            op(
                "osaka",
                2,
                OpBody::DispositionSet {
                    lpn: lpn.clone(),
                    disposition: Disposition::Restock,
                },
            ),
            Sequenced {
                seq: 3,
                payload: vec![1, 255],
            },
            received("osaka", 4, "L1"),
            op(
                "osaka",
                5,
                OpBody::UnitGraded {
                    lpn,
                    grade: Grade::B,
                    defects: vec![],
                },
            ),
        ];
        let out = apply_op_batch(&mut conn, &site, Epoch(1), &batch, 0).unwrap();
        assert_eq!((out.applied_seq, out.n_applied, out.n_anomalies), (5, 5, 3));
        let kinds: Vec<String> = anomalies(&conn, 10)
            .unwrap()
            .into_iter()
            .map(|a| a.kind)
            .collect();
        assert_eq!(
            kinds,
            vec!["undecodable", "invalid_transition", "impersonation"]
        );
        assert_eq!(
            count(
                &conn,
                "SELECT COUNT(*) FROM units WHERE site = ?1",
                "sendai"
            )
            .unwrap(),
            0
        );
    }

    #[test]
    fn replay_with_different_payload_raises_an_alarm() {
        let mut conn = open();
        let site = SiteId::new("osaka").unwrap();
        apply_op_batch(&mut conn, &site, Epoch(1), &[received("osaka", 1, "L1")], 0).unwrap();
        let out = apply_op_batch(
            &mut conn,
            &site,
            Epoch(1),
            &[received("osaka", 1, "OTHER")],
            0,
        )
        .unwrap();
        assert_eq!((out.n_applied, out.n_anomalies), (0, 1));
        assert_eq!(anomalies(&conn, 1).unwrap()[0].kind, "hash_mismatch");
    }
}
