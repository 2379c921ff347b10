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

pub mod apikeys;
pub mod billing;
pub mod catalog;
pub mod command_epochs;
pub mod commerce;
pub mod counter_checks;
pub mod dashboard;
pub mod decisions;
pub mod lifecycle;
pub mod listings;
pub mod orders;
pub mod quarantine;
pub mod queued;
pub mod reservations;
pub mod returnless;
pub mod rules;
pub mod runs;
pub mod stock;
pub mod styles;
pub mod totes;
pub mod transfers;
pub mod webhooks;

pub use catalog::{catalog, put_catalog, put_styled_catalog};
pub use quarantine::{match_unidentified, quarantine, MatchError, QuarantinedUnit};
pub use queued::Queued;
pub use rules::sync_disposition_rules;
pub use runs::{clear_run, run, set_run};

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

impl StoreError {
    /// A row with this key (an RMA, an id) is stored already.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Conflict(_))
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
        -- Upstream high-water mark per site and epoch. No time window: kept for ever.
        CREATE TABLE op_streams (
            site          TEXT NOT NULL,
            epoch         INTEGER NOT NULL,
            applied_seq   INTEGER NOT NULL,
            first_seen_ms INTEGER NOT NULL,
            PRIMARY KEY (site, epoch)
        ) STRICT;
        CREATE TABLE ops (
            site       TEXT NOT NULL,
            epoch      INTEGER NOT NULL,
            seq        INTEGER NOT NULL,
            kind       TEXT NOT NULL,
            hash       BLOB NOT NULL,
            payload    BLOB NOT NULL,
            applied_ms INTEGER NOT NULL,
            PRIMARY KEY (site, epoch, seq)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE anomalies (
            id     INTEGER PRIMARY KEY,
            site   TEXT NOT NULL,
            epoch  INTEGER,
            seq    INTEGER,
            kind   TEXT NOT NULL,
            lpn    TEXT,
            detail TEXT NOT NULL,
            at_ms  INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE units (
            lpn        TEXT PRIMARY KEY,
            site       TEXT NOT NULL,
            sku        TEXT NOT NULL,
            rma        TEXT,
            state      TEXT NOT NULL,
            updated_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE inventory (
            site TEXT NOT NULL,
            sku  TEXT NOT NULL,
            qty  INTEGER NOT NULL,
            PRIMARY KEY (site, sku)
        ) STRICT;
        -- Downstream: one command stream per site, numbered in the coordinator's epoch.
        CREATE TABLE command_streams (
            site      TEXT PRIMARY KEY,
            head_seq  INTEGER NOT NULL,
            acked_seq INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE commands (
            site       TEXT NOT NULL,
            seq        INTEGER NOT NULL,
            kind       TEXT NOT NULL,
            payload    BLOB NOT NULL,
            created_ms INTEGER NOT NULL,
            PRIMARY KEY (site, seq)
        ) STRICT;
        CREATE TABLE returns (
            rma         TEXT PRIMARY KEY,
            site        TEXT NOT NULL,
            origin      TEXT NOT NULL,
            lines_json  TEXT NOT NULL,
            routing     TEXT NOT NULL,
            command_seq INTEGER NOT NULL,
            created_ms  INTEGER NOT NULL
        ) STRICT;
        "#,
        ),
        // Station work reported by the sites: how units arrived (quarantine for unidentified
        // ones), grades kept for undoing a disposition, parcel closings, the catalogue.
        M::up(
            r#"
        ALTER TABLE units ADD COLUMN receipt TEXT NOT NULL DEFAULT 'matched';
        ALTER TABLE units ADD COLUMN parcel_ref TEXT;
        ALTER TABLE units ADD COLUMN quarantine INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE units ADD COLUMN grade TEXT;
        ALTER TABLE returns ADD COLUMN status TEXT NOT NULL DEFAULT 'expected';
        ALTER TABLE returns ADD COLUMN shortages_json TEXT;
        CREATE TABLE catalog (
            merchant      TEXT NOT NULL,
            sku           TEXT NOT NULL,
            gtin14        TEXT,
            category      TEXT NOT NULL,
            price_yen     INTEGER NOT NULL,
            final_sale    INTEGER NOT NULL,
            needs_testing INTEGER NOT NULL,
            PRIMARY KEY (merchant, sku)
        ) STRICT;
        "#,
        ),
        M::up("ALTER TABLE units ADD COLUMN defects TEXT;"),
        // Personal data (Japan's APPI), pseudonymised after the retention period or on request.
        M::up(
            r#"
        ALTER TABLE returns ADD COLUMN customer_ref TEXT;
        ALTER TABLE returns ADD COLUMN customer_name TEXT;
        ALTER TABLE returns ADD COLUMN customer_address TEXT;
        CREATE INDEX returns_customer ON returns (customer_ref);
        "#,
        ),
        // API keys (see `apikeys`): only the SHA-256 of each key.
        M::up(
            r#"
        CREATE TABLE api_keys (
            id         TEXT PRIMARY KEY,
            sha256     TEXT NOT NULL UNIQUE,
            scope      TEXT NOT NULL,
            label      TEXT,
            source     TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            revoked_ms INTEGER
        ) STRICT;
        "#,
        ),
        // The life of a return (see `lifecycle`): who it belongs to, where it was registered,
        // and its timeline. Returns registered before get their `registered` event.
        M::up(
            r#"
        ALTER TABLE returns ADD COLUMN merchant TEXT;
        ALTER TABLE returns ADD COLUMN origin_store TEXT;
        CREATE INDEX returns_status_created ON returns (status, created_ms);
        CREATE INDEX units_rma ON units (rma);
        CREATE TABLE return_events (
            id          INTEGER PRIMARY KEY,
            rma         TEXT NOT NULL,
            kind        TEXT NOT NULL,
            site        TEXT,
            lpn         TEXT,
            detail      TEXT,
            at_ms       INTEGER NOT NULL,
            recorded_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX return_events_rma ON return_events (rma, id);
        INSERT INTO return_events (rma, kind, site, detail, at_ms, recorded_ms)
            SELECT rma, 'registered', site, routing, created_ms, created_ms FROM returns;
        "#,
        ),
        // Disposition execution reported by the sites: the bin a unit is in, its function
        // test, a transfer in flight; the replacement an exchange asks for and the unit sent.
        M::up(
            r#"
        ALTER TABLE units ADD COLUMN bin TEXT;
        ALTER TABLE units ADD COLUMN tested INTEGER;
        ALTER TABLE units ADD COLUMN transfer_to TEXT;
        -- The centre's disposition by value (NULL: not decided yet for the current grade).
        ALTER TABLE units ADD COLUMN decided TEXT;
        ALTER TABLE units ADD COLUMN decision_why TEXT;
        ALTER TABLE returns ADD COLUMN exchange_sku TEXT;
        ALTER TABLE returns ADD COLUMN exchange_lpn TEXT;
        -- Resale listings (see listings.rs): one live listing per unit and channel.
        CREATE TABLE listings (
            id             INTEGER PRIMARY KEY,
            lpn            TEXT NOT NULL,
            channel        TEXT NOT NULL,
            site           TEXT NOT NULL,
            sku            TEXT NOT NULL,
            grade          TEXT NOT NULL,
            list_price_yen INTEGER NOT NULL,
            price_yen      INTEGER NOT NULL,
            status         TEXT NOT NULL,
            created_ms     INTEGER NOT NULL,
            updated_ms     INTEGER NOT NULL
        ) STRICT;
        CREATE UNIQUE INDEX listings_live ON listings (lpn, channel) WHERE status = 'listed';
        CREATE INDEX listings_lpn ON listings (lpn);
        "#,
        ),
        // The commerce side of a return (see `commerce`): the order, how it travels, what the
        // customer wants, the fees and bonus granted, tracking, the refund; demand per site
        // for rebalancing; how far each merchant's webhook has been delivered.
        M::up(
            r#"
        ALTER TABLE returns ADD COLUMN order_ref TEXT;
        ALTER TABLE returns ADD COLUMN order_date_ms INTEGER;
        ALTER TABLE returns ADD COLUMN method TEXT;
        ALTER TABLE returns ADD COLUMN resolution TEXT;
        ALTER TABLE returns ADD COLUMN fee_yen INTEGER;
        ALTER TABLE returns ADD COLUMN credit_bonus_percent INTEGER;
        ALTER TABLE returns ADD COLUMN value_yen INTEGER;
        ALTER TABLE returns ADD COLUMN carrier TEXT;
        ALTER TABLE returns ADD COLUMN tracking TEXT;
        ALTER TABLE returns ADD COLUMN transit_status TEXT;
        ALTER TABLE returns ADD COLUMN policy_json TEXT;
        ALTER TABLE returns ADD COLUMN refund_yen INTEGER;
        ALTER TABLE returns ADD COLUMN refund_confirmed_ms INTEGER;
        ALTER TABLE returns ADD COLUMN routing_candidates TEXT;
        CREATE INDEX returns_tracking ON returns (tracking);
        CREATE INDEX returns_order_ref ON returns (order_ref);
        CREATE TABLE demand (
            site  TEXT NOT NULL,
            sku   TEXT NOT NULL,
            units INTEGER NOT NULL,
            PRIMARY KEY (site, sku)
        ) STRICT;
        CREATE TABLE billable (
            id       INTEGER PRIMARY KEY,
            merchant TEXT NOT NULL,
            activity TEXT NOT NULL,
            lpn      TEXT NOT NULL,
            site     TEXT NOT NULL,
            at_ms    INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX billable_merchant ON billable (merchant, activity, at_ms);
        CREATE INDEX billable_lpn ON billable (lpn);
        CREATE TABLE webhook_cursors (
            merchant        TEXT PRIMARY KEY,
            last_event_id   INTEGER NOT NULL,
            attempts        INTEGER NOT NULL,
            next_attempt_ms INTEGER NOT NULL,
            last_error      TEXT,
            delivered       INTEGER NOT NULL
        ) STRICT;
        "#,
        ),
        // The condition a store saw (`counter_checks`), a refund without the return
        // (`returnless`), and the stock reserved for an exchange (`reservations`).
        M::up(
            r#"
        ALTER TABLE returns ADD COLUMN store_condition TEXT;
        ALTER TABLE returns ADD COLUMN returnless TEXT;
        CREATE TABLE reservations (
            rma        TEXT PRIMARY KEY,
            sku        TEXT NOT NULL,
            site       TEXT,
            lpn        TEXT,
            status     TEXT NOT NULL,
            advance    INTEGER NOT NULL,
            order_seq  INTEGER,
            why        TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX reservations_lpn ON reservations (lpn) WHERE status = 'reserved';
        "#,
        ),
        // Store drop-offs consolidated into totes (see `totes`).
        M::up(
            r#"
        ALTER TABLE returns ADD COLUMN tote TEXT;
        CREATE TABLE totes (
            tote        TEXT PRIMARY KEY,
            store       TEXT NOT NULL,
            site        TEXT NOT NULL,
            status      TEXT NOT NULL,
            n_returns   INTEGER NOT NULL,
            created_ms  INTEGER NOT NULL,
            received_ms INTEGER
        ) STRICT;
        CREATE INDEX returns_waiting ON returns (origin_store, status) WHERE tote IS NULL;
        "#,
        ),
        // The dashboard and the store counter (see `dashboard`, `orders`): indexes for their
        // counts, the orders stores look returns up by, and the order a return came from.
        M::up(
            r#"
        CREATE INDEX units_state_site ON units (state, site, quarantine);
        CREATE INDEX units_transfer_to ON units (transfer_to) WHERE transfer_to IS NOT NULL;
        CREATE INDEX ops_applied ON ops (applied_ms);
        CREATE INDEX returns_created ON returns (created_ms);
        CREATE INDEX returns_origin_store ON returns (origin_store, status);
        CREATE TABLE orders (
            merchant     TEXT NOT NULL,
            order_ref    TEXT NOT NULL,
            customer_ref TEXT,
            ordered_ms   INTEGER NOT NULL,
            lines_json   TEXT NOT NULL,
            updated_ms   INTEGER NOT NULL,
            PRIMARY KEY (merchant, order_ref)
        ) STRICT;
        CREATE INDEX orders_ref ON orders (order_ref);
        CREATE INDEX orders_customer ON orders (customer_ref);
        "#,
        ),
        // The passes after each batch look only at what may need them: disposed units not
        // decided yet, quarantined units that came with a reference.
        M::up(
            r#"
        CREATE INDEX units_undecided ON units (lpn)
            WHERE decided IS NULL AND state >= 'disposed:' AND state < 'disposed;';
        CREATE INDEX units_matchable ON units (updated_ms)
            WHERE quarantine = 1 AND parcel_ref IS NOT NULL AND receipt = 'unidentified';
        "#,
        ),
        // A unit received against a return that may not count it (routed elsewhere, a SKU it
        // does not list, beyond its quantity after its parcel closed) keeps that return here
        // only as a claim, for the anomaly and the customer's history, never as its `rma`.
        M::up(
            r#"
        ALTER TABLE units ADD COLUMN claimed_rma TEXT;
        CREATE INDEX units_claimed_rma ON units (claimed_rma) WHERE claimed_rma IS NOT NULL;
        CREATE INDEX units_waiting ON units (site) WHERE quarantine = 1;
        "#,
        ),
        // A catalogue item's style groups the variants of one product, for exchanges.
        M::up(
            r#"
        ALTER TABLE catalog ADD COLUMN style TEXT;
        CREATE INDEX catalog_style ON catalog (merchant, style) WHERE style IS NOT NULL;
        "#,
        ),
        // Every start numbers the command streams in a new epoch (store/command_epochs.rs).
        M::up(command_epochs::MIGRATION),
    ])
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

/// The result of applying one upstream batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Highest seq now durably applied: the value to acknowledge.
    pub applied_seq: u64,
    pub n_applied: usize,
    pub n_duplicates: usize,
    pub n_anomalies: usize,
    pub gap_at: Option<u64>,
    /// Commands the batch queued for sites (a transfer announced to its destination), to
    /// wake their connections once the batch has committed.
    pub commands_queued: Queued,
    /// The kinds of op applied, so what follows a batch runs only the passes they can need.
    pub kinds: std::collections::BTreeSet<OpKind>,
    /// When the newest op applied by this batch happened, by the site's clock: how far
    /// behind the centre is while a site catches up.
    pub last_op_at_ms: Option<i64>,
}

pub fn op_applied_seq(conn: &Connection, site: &SiteId, epoch: Epoch) -> Result<u64, StoreError> {
    let applied: Option<i64> = conn
        .prepare_cached("SELECT applied_seq FROM op_streams WHERE site = ?1 AND epoch = ?2")?
        .query_row(params![site.as_str(), to_i64(epoch.0)], |r| r.get(0))
        .optional()?;
    Ok(applied.map_or(0, to_u64))
}

fn stored_op_hash(
    tx: &Transaction<'_>,
    site: &SiteId,
    epoch: Epoch,
    seq: u64,
) -> Option<PayloadHash> {
    tx.prepare_cached("SELECT hash FROM ops WHERE site = ?1 AND epoch = ?2 AND seq = ?3")
        .and_then(|mut stmt| {
            stmt.query_row(params![site.as_str(), to_i64(epoch.0), to_i64(seq)], |r| {
                r.get::<_, Vec<u8>>(0)
            })
        })
        .ok()
        .and_then(|h| h.try_into().ok())
}

#[allow(clippy::too_many_arguments)]
fn anomaly(
    tx: &Transaction<'_>,
    site: &SiteId,
    epoch: Option<Epoch>,
    seq: Option<u64>,
    kind: AnomalyKind,
    lpn: Option<&Lpn>,
    detail: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    tracing::warn!(site = %site, seq, kind = kind.as_str(), lpn = lpn.map(Lpn::as_str), detail, "anomaly recorded");
    tx.prepare_cached(
        "INSERT INTO anomalies (site, epoch, seq, kind, lpn, detail, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
            site.as_str(),
            epoch.map(|e| to_i64(e.0)),
            seq.map(to_i64),
            kind.as_str(),
            lpn.map(Lpn::as_str),
            detail,
            now_ms
        ],
    )?;
    Ok(())
}

/// Records an anomaly outside a batch (e.g. a hello that names another site).
pub fn record_anomaly(
    conn: &mut Connection,
    site: &SiteId,
    kind: AnomalyKind,
    detail: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    anomaly(&tx, site, None, None, kind, None, detail, now_ms)?;
    tx.commit()?;
    Ok(())
}

/// Prepared statements a coordinator connection keeps: every statement of the apply path, with
/// room to spare (rusqlite's default of 16 would evict them in turn).
pub const STATEMENT_CACHE_CAPACITY: usize = 128;

/// Applies one upstream batch from `site` (the certificate's site) exactly once, in order.
///
/// The statements of this path run once or twice per op, thousands of times a second while a
/// site catches up: they are prepared once per connection (`prepare_cached`), not parsed again
/// for every op; the connection's cache holds [`STATEMENT_CACHE_CAPACITY`] of them.
pub fn apply_op_batch(
    conn: &mut Connection,
    site: &SiteId,
    epoch: Epoch,
    batch: &[Sequenced],
    now_ms: i64,
) -> Result<BatchOutcome, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied = op_applied_seq(&tx, site, epoch)?;
    let receiver = Receiver::new(epoch, applied);
    let plan: Plan = receiver.plan(batch, |seq| stored_op_hash(&tx, site, epoch, seq));
    let mut n_anomalies = 0;
    let mut commands_queued = Queued::none();
    let mut kinds = std::collections::BTreeSet::new();
    let mut last_op_at_ms = None;
    for c in &plan.conflicts {
        n_anomalies += 1;
        let detail = format!(
            "seq {} arrived again with payload hash {} but {} was applied",
            c.seq,
            hex(&c.received[..8]),
            hex(&c.stored[..8])
        );
        anomaly(
            &tx,
            site,
            Some(epoch),
            Some(c.seq),
            AnomalyKind::HashMismatch,
            None,
            &detail,
            now_ms,
        )?;
    }
    for &i in &plan.apply {
        let item = &batch[i];
        let kind = match payload::decode_op(&item.payload) {
            Ok(op) => {
                let kind = op.body.kind();
                kinds.insert(op.body.op_kind());
                last_op_at_ms = Some(op.at_ms);
                n_anomalies += apply_op(
                    &tx,
                    site,
                    (epoch, item.seq),
                    op,
                    now_ms,
                    &mut commands_queued,
                )?;
                kind
            }
            Err(e) => {
                n_anomalies += 1;
                anomaly(
                    &tx,
                    site,
                    Some(epoch),
                    Some(item.seq),
                    AnomalyKind::Undecodable,
                    None,
                    &e.to_string(),
                    now_ms,
                )?;
                AnomalyKind::Undecodable.as_str()
            }
        };
        tx.prepare_cached(
            "INSERT INTO ops (site, epoch, seq, kind, hash, payload, applied_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
                site.as_str(),
                to_i64(epoch.0),
                to_i64(item.seq),
                kind,
                payload_hash(&item.payload).to_vec(),
                item.payload,
                now_ms
            ],
        )?;
        // Fault tests: die with part of the batch applied and nothing committed.
        fail::fail_point!("coordinator-apply-op", |_| std::process::abort());
    }
    tx.prepare_cached(
        "INSERT INTO op_streams (site, epoch, applied_seq, first_seen_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (site, epoch) DO UPDATE SET applied_seq = excluded.applied_seq",
    )?
    .execute(params![
        site.as_str(),
        to_i64(epoch.0),
        to_i64(plan.new_applied),
        now_ms
    ])?;
    tx.commit()?;
    let mut receiver = receiver;
    Ok(BatchOutcome {
        applied_seq: receiver.commit(&plan),
        n_applied: plan.apply.len(),
        n_duplicates: plan.n_duplicates,
        n_anomalies,
        gap_at: plan.gap_at,
        commands_queued,
        last_op_at_ms,
        kinds,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies one op's effect to the central view, with its row in the timeline of the unit's
/// return; returns how many anomalies it raised.
fn apply_op(
    tx: &Transaction<'_>,
    site: &SiteId,
    (epoch, seq): (Epoch, u64),
    op: OpRecord,
    now_ms: i64,
    commands_queued: &mut Queued,
) -> Result<usize, StoreError> {
    let note = |kind: AnomalyKind, lpn: Option<&Lpn>, detail: &str| {
        anomaly(tx, site, Some(epoch), Some(seq), kind, lpn, detail, now_ms).map(|()| 1)
    };
    if &op.site != site {
        let detail = format!(
            "op names site {} but came over the connection of {site}; not applied",
            op.site
        );
        return note(AnomalyKind::Impersonation, None, &detail);
    }
    let event = lifecycle::OpEvent {
        site,
        at_ms: op.at_ms,
        now_ms,
    };
    let bill =
        |activity: billing::Activity, lpn: &Lpn| billing::record(tx, activity, lpn, site, op.at_ms);
    // Ops are facts: a site that moved a quarantined unit on (an agent from before the gate)
    // is applied as reported, and ops see it.
    let n_breaches = match gated_unit(&op.body) {
        Some(lpn) if is_quarantined(tx, lpn)? => note(
            AnomalyKind::QuarantineBreached,
            Some(lpn),
            &format!("{} of a unit still in quarantine", op.body.kind()),
        )?,
        _ => 0,
    };
    let applied = match op.body {
        OpBody::UnitReceived {
            lpn,
            rma,
            sku,
            receipt,
            parcel_ref,
        } => {
            // A parcel the site could not place keeps the RMA it bore as its reference: one
            // routed to another site is that return's claim all the same.
            let named = match (&rma, &parcel_ref) {
                (Some(rma), _) => Some(rma.clone()),
                (None, Some(r)) => routed_elsewhere(tx, site, r)?,
                (None, None) => None,
            };
            let claim = match &named {
                Some(rma) => claim_of(tx, site, rma, &sku, receipt)?,
                None => Claim::None,
            };
            let (attached, claimed) = match &claim {
                Claim::Counts => (rma.as_ref(), None),
                Claim::Refused { .. } => (None, named.as_ref()),
                Claim::None => (None, None),
            };
            // A refused claim keeps the RMA as the reference to match by, as an unidentified
            // parcel's does; `misrouted` keeps it from being matched back automatically.
            let parcel_ref = parcel_ref.or_else(|| claimed.map(ToString::to_string));
            let stored_receipt = match &claim {
                Claim::Refused {
                    kind: AnomalyKind::ReturnNotRoutedHere,
                    ..
                } => "misrouted",
                _ => receipt.as_str(),
            };
            let quarantined = match &claim {
                Claim::Refused { .. } => true,
                Claim::Counts | Claim::None => receipt.holds_in_quarantine(false),
            };
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO units (lpn, site, sku, rma, state, updated_ms, receipt, parcel_ref, quarantine, claimed_rma)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (lpn) DO NOTHING",
                )?
                .execute(params![
                    lpn.as_str(),
                    site.as_str(),
                    sku.as_str(),
                    attached.map(RmaId::as_str),
                    UnitState::Received.encode(),
                    now_ms,
                    stored_receipt,
                    parcel_ref,
                    quarantined,
                    claimed.map(RmaId::as_str),
                ],
            )?;
            if inserted == 0 {
                return note(
                    AnomalyKind::DuplicateLpn,
                    Some(&lpn),
                    "a unit with this LPN was already received",
                );
            }
            bill(billing::Activity::Receipt, &lpn)?;
            match (claim, attached) {
                (Claim::Refused { kind, detail }, _) => note(kind, Some(&lpn), &detail),
                (_, Some(rma)) => match event.unit_received(tx, rma, &lpn, &sku, receipt)? {
                    Some(detail) => note(AnomalyKind::ClosedReturnReceived, Some(&lpn), &detail),
                    None => Ok(0),
                },
                _ => Ok(0),
            }
        }
        OpBody::UnitGraded {
            lpn,
            grade,
            defects,
        } => match transition(tx, site, &lpn, now_ms, |s| s.grade(&lpn, grade))? {
            Ok(()) => {
                let listed: Vec<&str> = defects.iter().map(|d| d.as_str()).collect();
                // A new grade is a new decision.
                tx.execute(
                    "UPDATE units SET grade = ?2, defects = ?3, decided = NULL WHERE lpn = ?1",
                    params![lpn.as_str(), grade.as_str(), listed.join(",")],
                )?;
                let detail = match listed.is_empty() {
                    true => format!("grade {}", grade.as_str()),
                    false => format!("grade {}; defects {}", grade.as_str(), listed.join(", ")),
                };
                event.unit_event(tx, &lpn, "unit_graded", &detail)?;
                bill(billing::Activity::Grading, &lpn)?;
                Ok(0)
            }
            Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
        },
        OpBody::DispositionUndone { lpn, grade } => {
            match transition(tx, site, &lpn, now_ms, |s| s.undo_disposition(&lpn, grade))? {
                Ok(()) => {
                    let detail = format!("disposition undone; graded {} again", grade.as_str());
                    event.unit_event(tx, &lpn, "disposition_undone", &detail)?;
                    Ok(0)
                }
                Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
            }
        }
        OpBody::ParcelClosed { rma, shortages } => {
            let shortages_json = serde_json::to_string(
                &shortages
                    .iter()
                    .map(|(s, n)| serde_json::json!({"sku": s.as_str(), "qty": n}))
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default();
            match event.parcel_closed(tx, &rma, &shortages, &shortages_json)? {
                lifecycle::ParcelClosed::Recorded => Ok(0),
                lifecycle::ParcelClosed::UnknownReturn => note(
                    AnomalyKind::UnknownReturn,
                    None,
                    &format!("parcel of {rma} closed, but no such return is registered"),
                ),
                lifecycle::ParcelClosed::ReturnClosed(status) => note(
                    AnomalyKind::ClosedReturnReceived,
                    None,
                    &format!("parcel of {rma} closed at the site, but the return is {status}"),
                ),
            }
        }
        OpBody::DispositionSet { lpn, disposition } => {
            match transition(tx, site, &lpn, now_ms, |s| s.dispose(&lpn, disposition))? {
                Ok(()) => {
                    let detail = format!("disposition {}", disposition.as_str());
                    event.unit_event(tx, &lpn, "disposition_set", &detail)?;
                    bill(billing::Activity::Relabel, &lpn)?;
                    if disposition == Disposition::Refurbish {
                        bill(billing::Activity::Refurbishment, &lpn)?;
                    }
                    Ok(0)
                }
                Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
            }
        }
        OpBody::ReceiptVoided { lpn } => {
            match transition(tx, site, &lpn, now_ms, |s| s.void(&lpn))? {
                Ok(()) => {
                    event.unit_event(tx, &lpn, "receipt_voided", "receipt voided at the site")?;
                    if billing::in_storage(tx, &lpn)? {
                        bill(billing::Activity::StorageEnd, &lpn)?;
                    }
                    Ok(0)
                }
                Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
            }
        }
        OpBody::UnitPutAway { lpn, bin } => {
            match transition(tx, site, &lpn, now_ms, |s| s.put_away(&lpn))? {
                Ok(()) => {
                    tx.execute(
                        "UPDATE units SET bin = ?2 WHERE lpn = ?1",
                        params![lpn.as_str(), bin.as_str()],
                    )?;
                    event.unit_event(tx, &lpn, "unit_put_away", &format!("bin {bin}"))?;
                    if !billing::in_storage(tx, &lpn)? {
                        bill(billing::Activity::StorageStart, &lpn)?;
                    }
                    Ok(0)
                }
                Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
            }
        }
        OpBody::UnitTested { lpn, passed } => {
            let n = tx.execute(
                "UPDATE units SET tested = ?3, updated_ms = ?4 WHERE lpn = ?1 AND site = ?2",
                params![lpn.as_str(), site.as_str(), passed, now_ms],
            )?;
            if n == 0 {
                return note(
                    AnomalyKind::InvalidTransition,
                    Some(&lpn),
                    "test of a unit not held here",
                );
            }
            let detail = if passed {
                "function test passed"
            } else {
                "function test failed"
            };
            event.unit_event(tx, &lpn, "unit_tested", detail)?;
            Ok(0)
        }
        OpBody::UnitDeparted {
            lpn,
            departure,
            tracking,
        } => match transition(tx, site, &lpn, now_ms, |s| s.depart(&lpn, &departure))? {
            Ok(()) => {
                let detail = match &tracking {
                    Some(t) => format!("{departure}, tracking {t}"),
                    None => departure.to_string(),
                };
                event.unit_event(tx, &lpn, "unit_departed", &detail)?;
                if billing::in_storage(tx, &lpn)? {
                    bill(billing::Activity::StorageEnd, &lpn)?;
                }
                match &departure {
                    Departure::Transfer { .. } => bill(billing::Activity::Transfer, &lpn)?,
                    Departure::Recycler | Departure::Disposal => {
                        bill(billing::Activity::Disposal, &lpn)?
                    }
                    Departure::Vendor | Departure::Exchange { .. } => {}
                }
                if let Departure::Exchange { rma } = &departure {
                    event.return_event(tx, rma, "exchange_shipped", &lpn, &detail)?;
                }
                match departed(tx, site, &lpn, &departure, now_ms, commands_queued)? {
                    Ok(()) => Ok(0),
                    Err(detail) => note(AnomalyKind::IncompleteUnit, Some(&lpn), &detail),
                }
            }
            Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
        },
        OpBody::TransferReceived { lpn, from } => {
            let expected: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT site, transfer_to FROM units WHERE lpn = ?1",
                    [lpn.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let detail = match expected {
                Some((owner, Some(to))) if owner == from.as_str() && to == site.as_str() => None,
                Some((owner, to)) => Some(format!(
                    "arrived from {from}, but the unit is at {owner} with transfer to {}",
                    to.as_deref().unwrap_or("none")
                )),
                None => Some("no receipt of this unit is known".to_owned()),
            };
            if let Some(detail) = detail {
                return note(AnomalyKind::InvalidTransition, Some(&lpn), &detail);
            }
            // The unit changes hands: the arriving site owns it from here on.
            tx.execute(
                "UPDATE units SET site = ?2, transfer_to = NULL WHERE lpn = ?1",
                params![lpn.as_str(), site.as_str()],
            )?;
            match transition(tx, site, &lpn, now_ms, |s| s.arrive(&lpn))? {
                Ok(()) => {
                    event.unit_event(tx, &lpn, "transfer_received", &format!("from {from}"))?;
                    Ok(0)
                }
                Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
            }
        }
        OpBody::UnitMatched { lpn, rma } => {
            let n = tx.execute(
                "UPDATE units SET rma = ?3, quarantine = 0, updated_ms = ?4
                 WHERE lpn = ?1 AND site = ?2 AND quarantine = 1",
                params![lpn.as_str(), site.as_str(), rma.as_str(), now_ms],
            )?;
            if n == 0 {
                return note(
                    AnomalyKind::InvalidTransition,
                    Some(&lpn),
                    &format!("matched to {rma} at the site, but not in quarantine here"),
                );
            }
            event.unit_event(tx, &lpn, "unit_matched", "matched at the site")?;
            Ok(0)
        }
        OpBody::ToteReceived { tote } => {
            let n = tx.execute(
                "UPDATE totes SET status = 'received', received_ms = ?3 WHERE tote = ?1 AND site = ?2",
                params![tote.as_str(), site.as_str(), now_ms],
            )?;
            if n == 0 {
                return note(
                    AnomalyKind::UnknownTote,
                    None,
                    &format!("tote {tote} received, but none was sent to this site"),
                );
            }
            Ok(0)
        }
        OpBody::DatabaseRewound {
            epoch: rewound,
            head_seq,
            new_epoch,
        } => {
            // What this coordinator applied of that epoch beyond the site's head existed only
            // in the database the site lost; what the site confirmed after it and had not sent
            // is gone with it.
            let applied: i64 = tx
                .prepare_cached(
                    "SELECT applied_seq FROM op_streams WHERE site = ?1 AND epoch = ?2",
                )?
                .query_row(params![site.as_str(), to_i64(rewound.0)], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let n_ops = to_u64(applied).saturating_sub(head_seq);
            note(
                AnomalyKind::DatabaseRewound,
                None,
                &format!(
                    "database of site {site} went back in time: {n_ops} ops, new epoch {new_epoch} \
                     (epoch {rewound} held {head_seq} ops at the site, {applied} were applied here)"
                ),
            )
        }
        OpBody::InventoryAdjusted { sku, delta } => {
            tx.prepare_cached(
                "INSERT INTO inventory (site, sku, qty) VALUES (?1, ?2, ?3)
                 ON CONFLICT (site, sku) DO UPDATE SET qty = qty + excluded.qty",
            )?
            .execute(params![site.as_str(), sku.as_str(), delta])?;
            Ok(0)
        }
        OpBody::UnitReleased {
            lpn,
            supervisor,
            reason,
        } => {
            let n = tx.execute(
                "UPDATE units SET quarantine = 0, updated_ms = ?3
                 WHERE lpn = ?1 AND site = ?2 AND quarantine = 1",
                params![lpn.as_str(), site.as_str(), now_ms],
            )?;
            if n == 0 {
                return note(
                    AnomalyKind::InvalidTransition,
                    Some(&lpn),
                    "released from quarantine at the site, but not in quarantine here",
                );
            }
            let detail = format!("released from quarantine by {supervisor}: {reason}");
            event.unit_event(tx, &lpn, "unit_released", &detail)?;
            let claimed: Option<String> = tx
                .query_row(
                    "SELECT claimed_rma FROM units WHERE lpn = ?1 AND rma IS NULL",
                    [lpn.as_str()],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            if let Some(claimed) = claimed {
                let claimed = RmaId::new(claimed)?;
                event.return_event(tx, &claimed, "unit_released", &lpn, &detail)?;
            }
            Ok(0)
        }
    };
    applied.map(|n| n + n_breaches)
}

/// The unit an op moves on through grading, disposition, putaway or departure: what the
/// quarantine gate holds back at the sites.
fn gated_unit(body: &OpBody) -> Option<&Lpn> {
    match body {
        OpBody::UnitGraded { lpn, .. }
        | OpBody::DispositionSet { lpn, .. }
        | OpBody::UnitPutAway { lpn, .. }
        | OpBody::UnitDeparted { lpn, .. } => Some(lpn),
        _ => None,
    }
}

fn is_quarantined(tx: &Transaction<'_>, lpn: &Lpn) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("SELECT quarantine FROM units WHERE lpn = ?1")?
        .query_row([lpn.as_str()], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// Whether a unit a site received against a return may count as that return's unit.
enum Claim {
    /// It names no return.
    None,
    Counts,
    /// It waits in quarantine unattached; `kind` and `detail` are the anomaly raised.
    Refused {
        kind: AnomalyKind,
        detail: String,
    },
}

/// The return a parcel reference names when that return is routed to another site.
fn routed_elsewhere(
    tx: &Transaction<'_>,
    site: &SiteId,
    reference: &str,
) -> Result<Option<RmaId>, StoreError> {
    let Ok(rma) = RmaId::new(reference) else {
        return Ok(None);
    };
    let routed_to: Option<String> = tx
        .prepare_cached("SELECT site FROM returns WHERE rma = ?1")?
        .query_row([rma.as_str()], |r| r.get(0))
        .optional()?;
    Ok(routed_to.filter(|s| s != site.as_str()).map(|_| rma))
}

/// Decides [`Claim`] for a unit of `sku` received at `site` against `rma`: the return must be
/// routed to this site and list the SKU, and an over unit must come before the parcel closed.
fn claim_of(
    tx: &Transaction<'_>,
    site: &SiteId,
    rma: &RmaId,
    sku: &Sku,
    receipt: ReceiptKind,
) -> Result<Claim, StoreError> {
    let row: Option<(String, String, String)> = tx
        .prepare_cached("SELECT site, status, lines_json FROM returns WHERE rma = ?1")?
        .query_row([rma.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((routed_to, status, lines_json)) = row else {
        // An RMA this coordinator never registered: nothing to attach it to, as before.
        return Ok(Claim::None);
    };
    let refused = |kind, detail: String| Ok(Claim::Refused { kind, detail });
    if routed_to != site.as_str() || receipt == ReceiptKind::Unidentified {
        return refused(
            AnomalyKind::ReturnNotRoutedHere,
            format!("{sku} received at {site} against {rma}, which is routed to {routed_to}; held in quarantine"),
        );
    }
    let listed = serde_json::from_str::<Vec<serde_json::Value>>(&lines_json)
        .unwrap_or_default()
        .iter()
        .any(|l| l["sku"].as_str() == Some(sku.as_str()));
    if !listed || receipt == ReceiptKind::WrongItem {
        return refused(
            AnomalyKind::WrongItem,
            format!("{sku} received at {site} against {rma}, which does not list it; held in quarantine"),
        );
    }
    if receipt == ReceiptKind::Over && status == lifecycle::RECEIVED {
        return refused(
            AnomalyKind::OverAfterClose,
            format!("{sku} received at {site} against {rma} beyond its quantity after its parcel closed; held in quarantine"),
        );
    }
    Ok(Claim::Counts)
}

/// What a departure sets in motion: a transfer is announced to the site it goes to (so that
/// site can receive it offline), an exchange's replacement is recorded against its return.
/// The inner `Err(detail)` is an anomaly: the unit's record lacks what the transfer needs.
fn departed(
    tx: &Transaction<'_>,
    site: &SiteId,
    lpn: &Lpn,
    departure: &Departure,
    now_ms: i64,
    commands_queued: &mut Queued,
) -> Result<Result<(), String>, StoreError> {
    tx.execute("UPDATE units SET bin = NULL WHERE lpn = ?1", [lpn.as_str()])?;
    listings::delist_unit(tx, lpn, now_ms)?;
    match departure {
        Departure::Transfer { to } => {
            let (sku, grade, state): (String, Option<String>, String) = tx.query_row(
                "SELECT sku, grade, state FROM units WHERE lpn = ?1",
                [lpn.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let Some(disposition) = UnitState::decode(&state)?.disposition() else {
                return Ok(Err("transferred without a disposition".into()));
            };
            let Some(grade) = grade.as_deref().map(Grade::parse).transpose()? else {
                return Ok(Err("transferred without a grade".into()));
            };
            tx.execute(
                "UPDATE units SET transfer_to = ?2 WHERE lpn = ?1",
                params![lpn.as_str(), to.as_str()],
            )?;
            let command = CommandBody::ExpectedTransfer {
                lpn: lpn.clone(),
                sku: Sku::new(sku)?,
                grade,
                disposition,
                from: site.clone(),
            };
            let seq = enqueue_command(tx, to, &command, now_ms)?;
            commands_queued.push(to.clone(), seq);
        }
        Departure::Exchange { rma } => {
            tx.execute(
                "UPDATE returns SET exchange_lpn = ?2 WHERE rma = ?1",
                params![rma.as_str(), lpn.as_str()],
            )?;
            reservations::shipped(tx, rma, lpn.as_str(), now_ms)?;
        }
        Departure::Vendor | Departure::Recycler | Departure::Disposal => {}
    }
    Ok(Ok(()))
}

/// Moves a unit to a new state. The inner `Err(detail)` says why the move is not allowed (the
/// caller records it as an anomaly); the outer error is a database failure.
fn transition(
    tx: &Transaction<'_>,
    site: &SiteId,
    lpn: &Lpn,
    now_ms: i64,
    next: impl FnOnce(UnitState) -> Result<UnitState, DomainError>,
) -> Result<Result<(), String>, StoreError> {
    let row: Option<(String, String)> = tx
        .prepare_cached("SELECT state, site FROM units WHERE lpn = ?1")?
        .query_row([lpn.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((state, owner)) = row else {
        return Ok(Err("no receipt of this unit is known".into()));
    };
    if owner != site.as_str() {
        return Ok(Err(format!("unit belongs to site {owner}")));
    }
    let new_state = match next(UnitState::decode(&state)?) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.to_string())),
    };
    tx.prepare_cached("UPDATE units SET state = ?2, updated_ms = ?3 WHERE lpn = ?1")?
        .execute(params![lpn.as_str(), new_state.encode(), now_ms])?;
    Ok(Ok(()))
}

/// Appends a command to a site's stream inside the caller's transaction; returns its seq.
pub fn enqueue_command(
    tx: &Transaction<'_>,
    site: &SiteId,
    command: &CommandBody,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let bytes = payload::encode_command(command)?;
    if bytes.len() > ITEM_PAYLOAD_BYTES_MAX {
        return Err(StoreError::PayloadTooLarge(bytes.len()));
    }
    let seq: i64 = tx.query_row(
        "INSERT INTO command_streams (site, head_seq, acked_seq) VALUES (?1, 1, 0)
         ON CONFLICT (site) DO UPDATE SET head_seq = head_seq + 1
         RETURNING head_seq",
        [site.as_str()],
        |r| r.get(0),
    )?;
    tx.execute(
        // Issued in the running epoch, the last started (store/command_epochs.rs).
        "INSERT INTO commands (site, seq, kind, payload, created_ms, epoch_ordinal)
         VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(ordinal), 1) FROM command_epochs))",
        params![site.as_str(), seq, command.kind(), bytes, now_ms],
    )?;
    Ok(to_u64(seq))
}

/// The head of every site's command stream, to wake the connections of sites that a
/// transaction may have queued commands for.
pub fn command_heads(conn: &Connection) -> Result<Vec<(SiteId, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT site, head_seq FROM command_streams")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (site, head) = row?;
        out.push((SiteId::new(site)?, to_u64(head)));
    }
    Ok(out)
}

/// (head, acked) of a site's command stream.
pub fn command_stream(conn: &Connection, site: &SiteId) -> Result<(u64, u64), StoreError> {
    let row: Option<(i64, i64)> = conn
        .query_row(
            "SELECT head_seq, acked_seq FROM command_streams WHERE site = ?1",
            [site.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.map_or((0, 0), |(h, a)| (to_u64(h), to_u64(a))))
}

pub fn load_commands(
    conn: &Connection,
    site: &SiteId,
    first_seq: u64,
    max: usize,
) -> Result<Vec<Sequenced>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, payload FROM commands WHERE site = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![site.as_str(), to_i64(first_seq), to_i64(max as u64)],
        |r| {
            Ok(Sequenced {
                seq: to_u64(r.get(0)?),
                payload: r.get(1)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn set_command_acked(conn: &Connection, site: &SiteId, seq: u64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE command_streams SET acked_seq = ?2 WHERE site = ?1",
        params![site.as_str(), to_i64(seq)],
    )?;
    Ok(())
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
    pub resolution: Option<String>,
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
                &tx,
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

/// Pseudonymises the returns in `rmas` here, rewrites their queued expected-return commands
/// without the name, and tells each site concerned to erase what it holds. Returns the sites
/// told, with the command's seq.
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
/// sites that hold them. Returns how many returns, and the sites told.
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
    orders::pseudonymise(&tx, reference, &pseudonym(reference))?;
    tx.commit()?;
    Ok((rmas.len(), told))
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
    orders::pseudonymise_before(&tx, cutoff_ms, pseudonym)?;
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
    let (head, acked) = command_stream(conn, site)?;
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
    pub at_ms: i64,
}

pub fn anomalies(conn: &Connection, limit: usize) -> Result<Vec<AnomalyRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, site, epoch, seq, kind, lpn, detail, at_ms FROM anomalies ORDER BY id DESC LIMIT ?1",
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

#[cfg(test)]
mod tests {
    use super::*;
    use modori_shared::domain::{Grade, Sku};

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
        let waiting: Vec<String> = quarantine(&conn, 10)
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
        // The dashboard counts the same set.
        let counts = dashboard::counts(&conn).unwrap();
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
        let commands = load_commands(&conn, &fukuoka, 1, 10).unwrap();
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
