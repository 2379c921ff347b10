//! Repairs: the products each merchant repairs, its parts-and-labour table by defect code,
//! and each repair request (an RMA of kind repair): the fault its owner named, and once its
//! unit is graded, the quote from the defects found.
//!
//! Invariants: a repair is written before its return is registered (`rma` is the key), so a
//! return that is a repair is known as one from its first op; the quote is made once
//! (`quoted_ms IS NULL` guards it inside the transaction that writes its timeline row); a
//! repair whose defects the tables do not price stays unquoted, with those defects named
//! (`unpriced`, told on the timeline once), until ops price them; the answer is recorded once
//! (`decision IS NULL`), with the transfer to a site that refurbishes queued in its
//! transaction.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use modori_runtime::sqlite::to_i64;
use modori_shared::domain::{DefectCode, Lpn, RmaId, Site, SiteId};
use modori_shared::op::CommandBody;
use modori_shared::repair::{self, Fault, QuoteLine, RateRow, Workshop};
use modori_shared::tradein::PriceKey;

use super::details::Detail;
use super::lifecycle::insert_event;
use super::StoreError;
use crate::policy::{AfterDeadline, RepairTerms};

pub const MIGRATION: &str = r#"
CREATE TABLE repair_products (
    merchant TEXT NOT NULL,
    key_kind TEXT NOT NULL CHECK (key_kind IN ('sku', 'category')),
    key      TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (merchant, key_kind, key)
) STRICT, WITHOUT ROWID;
CREATE TABLE repair_rates (
    merchant   TEXT NOT NULL,
    defect     TEXT NOT NULL,
    -- 'any': every product without a row of its SKU or category (key '').
    key_kind   TEXT NOT NULL CHECK (key_kind IN ('any', 'sku', 'category')),
    key        TEXT NOT NULL,
    parts_yen  INTEGER NOT NULL,
    labour_yen INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (merchant, defect, key_kind, key)
) STRICT, WITHOUT ROWID;
CREATE TABLE repairs (
    rma          TEXT PRIMARY KEY,
    merchant     TEXT NOT NULL,
    sku          TEXT NOT NULL,
    fault        TEXT NOT NULL,
    fault_text   TEXT NOT NULL,
    requested_ms INTEGER NOT NULL,
    defects      TEXT,
    unpriced     TEXT,
    quote_yen    INTEGER,
    quote_lines  TEXT,
    quoted_ms    INTEGER,
    deadline_ms  INTEGER,
    decision     TEXT CHECK (decision IN ('accepted', 'declined')),
    decided_by   TEXT,
    decided_ms   INTEGER,
    -- Once accepted: what the customer is charged, and the site the unit is sent to when
    -- its own does not refurbish.
    charge_yen   INTEGER,
    transfer_to  TEXT
) STRICT;
CREATE INDEX repairs_unquoted ON repairs (rma) WHERE quoted_ms IS NULL;
CREATE INDEX repairs_open ON repairs (deadline_ms)
    WHERE quoted_ms IS NOT NULL AND decision IS NULL;
"#;

pub const MIGRATION_PG: &str = r#"
CREATE TABLE repair_products (
    merchant TEXT NOT NULL,
    key_kind TEXT NOT NULL CHECK (key_kind IN ('sku', 'category')),
    key      TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (merchant, key_kind, key)
);
CREATE TABLE repair_rates (
    merchant   TEXT NOT NULL,
    defect     TEXT NOT NULL,
    key_kind   TEXT NOT NULL CHECK (key_kind IN ('any', 'sku', 'category')),
    key        TEXT NOT NULL,
    parts_yen  BIGINT NOT NULL,
    labour_yen BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    PRIMARY KEY (merchant, defect, key_kind, key)
);
CREATE TABLE repairs (
    rma          TEXT PRIMARY KEY,
    merchant     TEXT NOT NULL,
    sku          TEXT NOT NULL,
    fault        TEXT NOT NULL,
    fault_text   TEXT NOT NULL,
    requested_ms BIGINT NOT NULL,
    defects      TEXT,
    unpriced     TEXT,
    quote_yen    BIGINT,
    quote_lines  TEXT,
    quoted_ms    BIGINT,
    deadline_ms  BIGINT,
    decision     TEXT CHECK (decision IN ('accepted', 'declined')),
    decided_by   TEXT,
    decided_ms   BIGINT,
    charge_yen   BIGINT,
    transfer_to  TEXT
);
CREATE INDEX repairs_unquoted ON repairs (rma) WHERE quoted_ms IS NULL;
CREATE INDEX repairs_open ON repairs (deadline_ms)
    WHERE quoted_ms IS NOT NULL AND decision IS NULL;
"#;

/// Ops' override of a disputed quote: the amount, why, who and when; set once.
pub const MIGRATION_OVERRIDE: &str = r#"
ALTER TABLE repairs ADD COLUMN override_yen INTEGER;
ALTER TABLE repairs ADD COLUMN override_reason TEXT;
ALTER TABLE repairs ADD COLUMN override_by TEXT;
ALTER TABLE repairs ADD COLUMN override_ms INTEGER;
"#;

pub const MIGRATION_OVERRIDE_PG: &str = r#"
ALTER TABLE repairs ADD COLUMN override_yen BIGINT;
ALTER TABLE repairs ADD COLUMN override_reason TEXT;
ALTER TABLE repairs ADD COLUMN override_by TEXT;
ALTER TABLE repairs ADD COLUMN override_ms BIGINT;
"#;

/// Repairs quoted in one pass at most.
pub const PER_PASS_MAX: usize = 256;

const DAY_MS: i64 = 86_400_000;

fn key_parts(key: Option<&PriceKey>) -> (&'static str, &str) {
    match key {
        None => ("any", ""),
        Some(PriceKey::Sku(s)) => ("sku", s.as_str()),
        Some(PriceKey::Category(c)) => ("category", c.as_str()),
    }
}

fn key_of(kind: &str, key: String) -> Option<PriceKey> {
    match kind {
        "sku" => Some(PriceKey::Sku(key)),
        "category" => Some(PriceKey::Category(key)),
        _ => None,
    }
}

/// Replaces the list of products `merchant` repairs (checked by the caller).
pub fn put_products(
    conn: &mut Connection,
    merchant: &str,
    keys: &[PriceKey],
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM repair_products WHERE merchant = ?1",
        [merchant],
    )?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO repair_products (merchant, key_kind, key, position)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?;
        for (i, k) in keys.iter().enumerate() {
            let (kind, key) = key_parts(Some(k));
            insert.execute(params![merchant, kind, key, to_i64(i as u64)])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The products `merchant` repairs, in the order they were put.
pub fn products(conn: &Connection, merchant: &str) -> Result<Vec<PriceKey>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT key_kind, key FROM repair_products WHERE merchant = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([merchant], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, key) = row?;
        out.extend(key_of(&kind, key));
    }
    Ok(out)
}

/// Replaces `merchant`'s parts-and-labour table with `rows` (checked and deduplicated by
/// the caller), in one transaction.
pub fn put_rates(
    conn: &mut Connection,
    merchant: &str,
    rows: &[RateRow],
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM repair_rates WHERE merchant = ?1", [merchant])?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO repair_rates
                 (merchant, defect, key_kind, key, parts_yen, labour_yen, position)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (i, r) in rows.iter().enumerate() {
            let (kind, key) = key_parts(r.key.as_ref());
            insert.execute(params![
                merchant,
                r.defect.as_str(),
                kind,
                key,
                to_i64(r.parts_yen),
                to_i64(r.labour_yen),
                to_i64(i as u64)
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// `merchant`'s parts-and-labour table, in the order it was put.
pub fn rates(conn: &Connection, merchant: &str) -> Result<Vec<RateRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT defect, key_kind, key, parts_yen, labour_yen FROM repair_rates
         WHERE merchant = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([merchant], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let yen = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut out = Vec::new();
    for row in rows {
        let (defect, kind, key, parts, labour) = row?;
        out.push(RateRow {
            defect: DefectCode::parse(&defect)?,
            key: key_of(&kind, key),
            parts_yen: yen(parts),
            labour_yen: yen(labour),
        });
    }
    Ok(out)
}

/// A repair as its owner asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub rma: String,
    pub merchant: String,
    pub sku: String,
    pub fault: Fault,
    pub fault_text: String,
    pub requested_ms: i64,
}

/// Writes a repair request before its return is registered, with the owner's contact kept as
/// an order under the repair's number (so messages reach it as a return's, and the retention
/// sweep erases it).
pub fn insert_request(
    conn: &mut Connection,
    r: &Request,
    contact: Option<&super::orders::Order>,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO repairs (rma, merchant, sku, fault, fault_text, requested_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            r.rma,
            r.merchant,
            r.sku,
            r.fault.as_str(),
            r.fault_text,
            r.requested_ms
        ],
    )?;
    if let Some(order) = contact {
        super::orders::put_order(&tx, &order.merchant, order, r.requested_ms)?;
    }
    tx.commit()?;
    Ok(())
}

/// Forgets a request whose return could not be registered (no site could take it), so no
/// repair stands without its return.
pub fn forget_unregistered(conn: &Connection, rma: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM repairs WHERE rma = ?1
           AND NOT EXISTS (SELECT 1 FROM returns r WHERE r.rma = repairs.rma)",
        [rma],
    )?;
    Ok(())
}

/// The customer's answer to a quote, or what stands for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Accepted,
    Declined,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Declined => "declined",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "accepted" => Some(Self::Accepted),
            "declined" => Some(Self::Declined),
            _ => None,
        }
    }
}

/// A repair's quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MadeQuote {
    pub lines: Vec<QuoteLine>,
    pub total_yen: u64,
    pub quoted_ms: i64,
    pub deadline_ms: i64,
}

/// A repair as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    pub request: Request,
    /// The defects found at inspection, once graded.
    pub defects: Option<Vec<DefectCode>>,
    /// Defects found that no table prices: the quote waits for ops to price them.
    pub unpriced: Vec<DefectCode>,
    pub quote: Option<MadeQuote>,
    pub decision: Option<(Decision, String, i64)>,
    /// Once accepted: the repair's charge.
    pub charge_yen: Option<u64>,
    /// Once accepted at a site that does not refurbish: where the unit is sent.
    pub transfer_to: Option<String>,
}

const COLUMNS: &str = "rma, merchant, sku, fault, fault_text, requested_ms, defects, unpriced,
                       quote_yen, quote_lines, quoted_ms, deadline_ms, decision, decided_by,
                       decided_ms, charge_yen, transfer_to";

type RepairRow = (
    Request,
    Option<String>,
    Option<String>,
    (Option<i64>, Option<String>, Option<i64>, Option<i64>),
    (Option<String>, Option<String>, Option<i64>),
    (Option<i64>, Option<String>),
);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RepairRow, String)> {
    let fault: String = r.get(3)?;
    Ok((
        (
            Request {
                rma: r.get(0)?,
                merchant: r.get(1)?,
                sku: r.get(2)?,
                // Parsed below, where a wrong one is an error.
                fault: Fault::Other,
                fault_text: r.get(4)?,
                requested_ms: r.get(5)?,
            },
            r.get(6)?,
            r.get(7)?,
            (r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?),
            (r.get(12)?, r.get(13)?, r.get(14)?),
            (r.get(15)?, r.get(16)?),
        ),
        fault,
    ))
}

fn codes(text: Option<&str>) -> Result<Vec<DefectCode>, StoreError> {
    text.unwrap_or_default()
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|c| DefectCode::parse(c).map_err(StoreError::from))
        .collect()
}

fn joined(defects: &[DefectCode]) -> String {
    defects
        .iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Quote lines as stored: `defect:parts:labour`, comma-separated.
fn lines_text(lines: &[QuoteLine]) -> String {
    lines
        .iter()
        .map(|l| format!("{}:{}:{}", l.defect.as_str(), l.parts_yen, l.labour_yen))
        .collect::<Vec<_>>()
        .join(",")
}

fn bad_line(part: &str) -> StoreError {
    StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
        9,
        rusqlite::types::Type::Text,
        format!("repair quote line {part:?} is not defect:parts:labour").into(),
    ))
}

fn parse_lines(text: &str) -> Result<Vec<QuoteLine>, StoreError> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let mut fields = part.split(':');
        let (Some(defect), Some(parts), Some(labour), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad_line(part));
        };
        let yen = |s: &str| s.parse::<u64>().map_err(|_| bad_line(part));
        out.push(QuoteLine {
            defect: DefectCode::parse(defect)?,
            parts_yen: yen(parts)?,
            labour_yen: yen(labour)?,
        });
    }
    Ok(out)
}

fn into_repair((row, fault): (RepairRow, String)) -> Result<Repair, StoreError> {
    let (mut request, defects, unpriced, (yen, lines, quoted_ms, deadline_ms), decided, accepted) =
        row;
    request.fault = Fault::parse(&fault)?;
    let quote = match (yen, lines, quoted_ms, deadline_ms) {
        (Some(yen), Some(lines), Some(quoted_ms), Some(deadline_ms)) => Some(MadeQuote {
            lines: parse_lines(&lines)?,
            total_yen: u64::try_from(yen).unwrap_or(0),
            quoted_ms,
            deadline_ms,
        }),
        _ => None,
    };
    let decision = match decided {
        (Some(d), Some(by), Some(at)) => Decision::parse(&d).map(|d| (d, by, at)),
        _ => None,
    };
    Ok(Repair {
        request,
        defects: defects.as_deref().map(|d| codes(Some(d))).transpose()?,
        unpriced: codes(unpriced.as_deref())?,
        quote,
        decision,
        charge_yen: accepted.0.map(|y| u64::try_from(y).unwrap_or(0)),
        transfer_to: accepted.1,
    })
}

/// The repair return `rma` is, if it is one.
pub fn of_return(conn: &Connection, rma: &str) -> Result<Option<Repair>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM repairs WHERE rma = ?1"),
        [rma],
        row,
    )
    .optional()?
    .map(into_repair)
    .transpose()
}

/// Quotes every repair whose return is received with every unit graded and that is not
/// quoted yet, inside the caller's transaction (the refunds' pass), from the merchant's
/// table and then `terms.rates`; the customer answers by `terms.answer_days`. A repair with
/// a defect neither prices stays unquoted with the defects named, told on the timeline the
/// first time, and is tried again each pass (ops price it by putting a rate), after those
/// never tried, so repairs waiting for ops never hold a newly graded one back. Returns how
/// many were quoted.
pub fn quote_graded(
    tx: &Transaction<'_>,
    terms: &RepairTerms,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let ready: Vec<(String, String, String, String, Option<String>)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT p.rma, r.site, p.merchant, p.sku, p.unpriced
             FROM repairs p JOIN returns r ON r.rma = p.rma
             WHERE p.quoted_ms IS NULL AND r.status = 'received'
               AND EXISTS (SELECT 1 FROM units u WHERE u.rma = p.rma AND u.state != 'voided')
               AND NOT EXISTS (SELECT 1 FROM units u WHERE u.rma = p.rma
                               AND u.state != 'voided' AND u.grade IS NULL)
             ORDER BY p.unpriced IS NOT NULL, p.requested_ms
             LIMIT ?1",
        )?;
        let rows = stmt.query_map([to_i64(PER_PASS_MAX as u64)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut n = 0;
    for (rma, site, merchant, sku, unpriced_before) in ready {
        let found: Vec<Option<String>> = {
            let mut stmt = tx
                .prepare_cached("SELECT defects FROM units WHERE rma = ?1 AND state != 'voided'")?;
            let rows = stmt.query_map([&rma], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut defects = Vec::new();
        for d in &found {
            defects.extend(codes(d.as_deref())?);
        }
        defects.sort();
        defects.dedup();
        let category = super::catalog::product(&mut super::sql::sqlite(tx), Some(&merchant), &sku)?
            .map(|p| p.3)
            .unwrap_or_default();
        let own = rates(tx, &merchant)?;
        let configured = terms.rows();
        let tables: [&[RateRow]; 2] = [&own, &configured];
        match repair::quote(&tables, &sku, &category, &defects) {
            Ok(q) => {
                let deadline_ms = now_ms + i64::from(terms.answer_days) * DAY_MS;
                let changed = tx.execute(
                    "UPDATE repairs SET defects = ?2, unpriced = NULL, quote_yen = ?3,
                            quote_lines = ?4, quoted_ms = ?5, deadline_ms = ?6
                     WHERE rma = ?1 AND quoted_ms IS NULL",
                    params![
                        rma,
                        joined(&defects),
                        to_i64(q.total_yen),
                        lines_text(&q.lines),
                        now_ms,
                        deadline_ms
                    ],
                )?;
                if changed == 0 {
                    continue;
                }
                n += 1;
                let detail = Detail::repair_quoted(q.total_yen, &joined(&defects), deadline_ms);
                insert_event(
                    tx,
                    &rma,
                    "repair_quoted",
                    Some(&site),
                    None,
                    &detail,
                    now_ms,
                    now_ms,
                )?;
            }
            Err(missing) => {
                let named = joined(&missing);
                if unpriced_before.as_deref() == Some(named.as_str()) {
                    continue;
                }
                tx.execute(
                    "UPDATE repairs SET defects = ?2, unpriced = ?3 WHERE rma = ?1",
                    params![rma, joined(&defects), named],
                )?;
                insert_event(
                    tx,
                    &rma,
                    "repair_unpriced",
                    Some(&site),
                    None,
                    &Detail::repair_unpriced(&named),
                    now_ms,
                    now_ms,
                )?;
            }
        }
    }
    Ok(n)
}

/// Who decided, besides the customer and the merchant: the default applied at the deadline.
pub const BY_DEADLINE: &str = "deadline";

/// Records the acceptance of the quote on `rma` (its site `site`): the charge is the quote,
/// and when the site does not refurbish, a transfer of each of its units still there to the
/// nearest site that does is queued, in the same transaction (so once).
fn accept(
    tx: &Transaction<'_>,
    rma: &str,
    site: &str,
    by: &str,
    sites: &[Site],
    now_ms: i64,
) -> Result<(), StoreError> {
    let charge: i64 = tx.query_row("SELECT quote_yen FROM repairs WHERE rma = ?1", [rma], |r| {
        r.get(0)
    })?;
    let holder = SiteId::new(site)?;
    let to = match repair::workshop(sites, &holder) {
        Workshop::Here => None,
        Workshop::Transfer(to) => Some(Some(to)),
        Workshop::Nowhere => Some(None),
    };
    if let Some(Some(to)) = &to {
        let units: Vec<(String, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT lpn, site FROM units WHERE rma = ?1 AND state NOT IN ('voided')
                   AND state NOT LIKE 'departed%'",
            )?;
            let rows = stmt.query_map([rma], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (lpn, at) in units.into_iter().filter(|(_, at)| at != to.as_str()) {
            let command = CommandBody::TransferOrder {
                lpn: Lpn::new(lpn)?,
                to: to.clone(),
            };
            super::commands::enqueue_command(tx, &SiteId::new(at)?, &command, now_ms)?;
        }
    }
    let transfer_to = to.as_ref().and_then(|t| t.as_ref()).map(SiteId::as_str);
    tx.execute(
        "UPDATE repairs SET decision = 'accepted', decided_by = ?2, decided_ms = ?3,
                charge_yen = ?4, transfer_to = ?5 WHERE rma = ?1",
        params![rma, by, now_ms, charge, transfer_to],
    )?;
    let detail = Detail::repair_accepted(
        u64::try_from(charge).unwrap_or(0),
        by == BY_DEADLINE,
        to.as_ref().map(|t| t.as_ref().map(SiteId::as_str)),
    );
    insert_event(
        tx,
        rma,
        "repair_accepted",
        Some(site),
        None,
        &detail,
        now_ms,
        now_ms,
    )
}

/// Records the decline of the quote on `rma` and orders its item back, as it is, to the
/// customer at the site that holds it (store/ship_backs.rs), in the same transaction: the
/// decision and the order stand or fall together, and both happen once.
fn decline(
    tx: &Transaction<'_>,
    rma: &str,
    site: &str,
    by: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE repairs SET decision = 'declined', decided_by = ?2, decided_ms = ?3
         WHERE rma = ?1",
        params![rma, by, now_ms],
    )?;
    // Its sites are woken by the use case after the commit, whichever way the decline came
    // (`app::wake_all_streams`), so what was queued is not carried back here.
    let _queued = super::ship_backs::order(
        &mut super::sql::sqlite(tx),
        &RmaId::new(rma)?,
        super::ship_backs::CAUSE_REPAIR_DECLINED,
        now_ms,
    )?;
    insert_event(
        tx,
        rma,
        "repair_declined",
        Some(site),
        None,
        &Detail::repair_declined(by == BY_DEADLINE),
        now_ms,
        now_ms,
    )
}

/// What answering a quote did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answered {
    Recorded(Decision),
    /// Answered before with the same answer: nothing changes.
    Already(Decision),
    /// Answered before otherwise: it stands.
    Conflict(Decision),
    /// Not quoted yet, or past the quote's deadline.
    NotOpen,
    /// No repair `rma`.
    NotFound,
}

/// Records the answer `decision` to the quote on `rma`, by `by` (`customer`, `merchant`),
/// once, before its deadline; `sites` is the fleet, where an accepted repair may be sent.
pub fn answer(
    conn: &mut Connection,
    rma: &str,
    decision: Decision,
    by: &str,
    sites: &[Site],
    now_ms: i64,
) -> Result<Answered, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(r) = of_return(&tx, rma)? else {
        return Ok(Answered::NotFound);
    };
    let outcome = match (&r.quote, &r.decision) {
        (_, Some((d, _, _))) if *d == decision => Answered::Already(*d),
        (_, Some((d, _, _))) => Answered::Conflict(*d),
        (None, None) => Answered::NotOpen,
        (Some(q), None) if now_ms > q.deadline_ms => Answered::NotOpen,
        (Some(_), None) => {
            let site: String =
                tx.query_row("SELECT site FROM returns WHERE rma = ?1", [rma], |r| {
                    r.get(0)
                })?;
            match decision {
                Decision::Accepted => accept(&tx, rma, &site, by, sites, now_ms)?,
                Decision::Declined => decline(&tx, rma, &site, by, now_ms)?,
            }
            Answered::Recorded(decision)
        }
    };
    tx.commit()?;
    Ok(outcome)
}

/// What overriding a quote did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overridden {
    /// The revised quote stands, to be answered by `deadline_ms`.
    Recorded { deadline_ms: i64 },
    /// The same override was recorded before: nothing changes.
    Already,
    /// Overridden before with another amount or reason: that one stands.
    OverriddenBefore,
    /// Answered already: the quote stands.
    Decided(Decision),
    /// Not quoted yet: nothing to override.
    NotQuoted,
    /// No repair `rma`.
    NotFound,
}

/// An ops override of a repair's quote: the amount, why, and the key that made it.
pub struct Override<'a> {
    pub amount_yen: u64,
    pub reason: &'a str,
    pub key_id: &'a str,
}

/// Replaces the quote on `rma`, once, while it is quoted and unanswered (its deadline past
/// or not: the default has not applied yet). The customer answers the revised quote by a
/// fresh deadline of `terms.answer_days`, since a new price needs their consent either way;
/// the quote's lines stay as found, for the record of what was inspected.
pub fn override_quote(
    conn: &mut Connection,
    rma: &str,
    o: &Override<'_>,
    terms: &RepairTerms,
    now_ms: i64,
) -> Result<Overridden, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(r) = of_return(&tx, rma)? else {
        return Ok(Overridden::NotFound);
    };
    let before: Option<(i64, String)> = tx.query_row(
        "SELECT override_yen, override_reason FROM repairs WHERE rma = ?1",
        [rma],
        |r| {
            Ok(r.get::<_, Option<i64>>(0)?
                .zip(r.get::<_, Option<String>>(1)?))
        },
    )?;
    if let Some((yen, reason)) = before {
        let same = u64::try_from(yen).ok() == Some(o.amount_yen) && reason == o.reason;
        return Ok(if same {
            Overridden::Already
        } else {
            Overridden::OverriddenBefore
        });
    }
    if let Some((d, _, _)) = r.decision {
        return Ok(Overridden::Decided(d));
    }
    let Some(quote) = r.quote else {
        return Ok(Overridden::NotQuoted);
    };
    let site: String = tx.query_row("SELECT site FROM returns WHERE rma = ?1", [rma], |r| {
        r.get(0)
    })?;
    let deadline_ms = now_ms + i64::from(terms.answer_days) * DAY_MS;
    tx.execute(
        "UPDATE repairs SET quote_yen = ?2, deadline_ms = ?3, override_yen = ?2,
                override_reason = ?4, override_by = ?5, override_ms = ?6
         WHERE rma = ?1",
        params![
            rma,
            to_i64(o.amount_yen),
            deadline_ms,
            o.reason,
            o.key_id,
            now_ms
        ],
    )?;
    let detail = Detail::repair_overridden(
        o.amount_yen,
        quote.total_yen,
        o.reason,
        o.key_id,
        deadline_ms,
    );
    insert_event(
        &tx,
        rma,
        "repair_quote_overridden",
        Some(&site),
        None,
        &detail,
        now_ms,
        now_ms,
    )?;
    tx.commit()?;
    Ok(Overridden::Recorded { deadline_ms })
}

/// Applies `default` to up to [`PER_PASS_MAX`] quotes unanswered past their deadline at
/// `now_ms`, each once; returns their RMAs.
pub fn settle_overdue(
    conn: &mut Connection,
    default: AfterDeadline,
    sites: &[Site],
    now_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let due: Vec<(String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT p.rma, r.site FROM repairs p JOIN returns r ON r.rma = p.rma
             WHERE p.quoted_ms IS NOT NULL AND p.decision IS NULL AND p.deadline_ms < ?1
             ORDER BY p.deadline_ms LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, to_i64(PER_PASS_MAX as u64)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for (rma, site) in &due {
        match default {
            AfterDeadline::Accept => accept(&tx, rma, site, BY_DEADLINE, sites, now_ms)?,
            AfterDeadline::Decline => decline(&tx, rma, site, BY_DEADLINE, now_ms)?,
        }
    }
    tx.commit()?;
    Ok(due.into_iter().map(|(rma, _)| rma).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{init, migrations, register_return, NewReturn};
    use modori_shared::domain::{
        Coordinates, Grade, Lpn, MerchantId, ReasonCode, ReturnLine, RmaId, SiteId, Sku,
    };
    use modori_shared::op::OpBody;
    use modori_shared::station::ReceiptKind;

    const NOW_MS: i64 = 1_000_000;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn
    }

    fn site() -> SiteId {
        SiteId::new("osaka").unwrap()
    }

    /// Repair `n` of PHN, received and graded C with `defects` at Osaka in its own batch of
    /// ops; returns the RMA.
    fn graded(conn: &mut Connection, n: u64, defects: Vec<DefectCode>) -> String {
        let rma = format!("RMA-{n:04}");
        let req = Request {
            rma: rma.clone(),
            merchant: "brand-a".into(),
            sku: "PHN".into(),
            fault: Fault::Screen,
            fault_text: "cracked in a fall".into(),
            requested_ms: 0,
        };
        insert_request(conn, &req, None).unwrap();
        assert!(
            insert_request(conn, &req, None).is_err(),
            "one repair per RMA"
        );
        let id = RmaId::new(rma.clone()).unwrap();
        let r = NewReturn {
            rma: id.clone(),
            merchant: Some(MerchantId::new("brand-a").unwrap()),
            origin: Coordinates::new(34.7, 135.5).unwrap(),
            origin_label: "point:34.7,135.5".into(),
            origin_store: None,
            lines: vec![ReturnLine::new(Sku::new("PHN").unwrap(), 1, ReasonCode::Other).unwrap()],
            customer: None,
            terms: None,
            order_ref: None,
            resolution: None,
        };
        let _ = register_return(conn, &r, &site(), "nearest", "[]", &[], 0).unwrap();
        forget_unregistered(conn, &rma).unwrap();
        assert!(of_return(conn, &rma).unwrap().is_some(), "registered: kept");
        let lpn = Lpn::new(format!("L{n}")).unwrap();
        let bodies = [
            OpBody::UnitReceived {
                lpn: lpn.clone(),
                rma: Some(id.clone()),
                sku: Sku::new("PHN").unwrap(),
                receipt: ReceiptKind::Matched,
                parcel_ref: None,
            },
            OpBody::UnitGraded {
                lpn,
                grade: Grade::C,
                defects,
            },
            OpBody::ParcelClosed {
                rma: id,
                shortages: vec![],
            },
        ];
        crate::store::test_ops::apply_bodies(conn, &site(), 3 * (n - 1) + 1, bodies.into());
        rma
    }

    fn quote_pass(conn: &mut Connection, terms: &RepairTerms) -> usize {
        let tx = conn.transaction().unwrap();
        let n = quote_graded(&tx, terms, NOW_MS).unwrap();
        tx.commit().unwrap();
        n
    }

    fn kinds(conn: &Connection, rma: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT kind FROM return_events WHERE rma = ?1 AND kind LIKE 'repair%' ORDER BY id",
            )
            .unwrap();
        let rows = stmt.query_map([rma], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_graded_repair_is_quoted_once_and_an_unpriced_defect_waits_for_ops() {
        let mut conn = open();
        let configured = RepairTerms {
            rates: vec![crate::policy::RepairRate {
                defect: "not_working".into(),
                sku: None,
                category: None,
                parts_yen: 3_000,
                labour_yen: 4_000,
            }],
            ..RepairTerms::default()
        };
        let own = [RateRow {
            defect: DefectCode::Scratch,
            key: Some(PriceKey::Sku("PHN".into())),
            parts_yen: 500,
            labour_yen: 1_500,
        }];
        put_rates(&mut conn, "brand-a", &own).unwrap();
        assert_eq!(rates(&conn, "brand-a").unwrap(), own);
        let priced = graded(
            &mut conn,
            1,
            vec![DefectCode::Scratch, DefectCode::NotWorking],
        );
        let unpriced = graded(&mut conn, 2, vec![DefectCode::Dent, DefectCode::Scratch]);
        assert_eq!(quote_pass(&mut conn, &configured), 1);
        assert_eq!(quote_pass(&mut conn, &configured), 0, "quoted once");
        assert_eq!(kinds(&conn, &priced), ["repair_quoted"]);
        assert_eq!(kinds(&conn, &unpriced), ["repair_unpriced"], "told once");
        let r = of_return(&conn, &priced).unwrap().unwrap();
        let q = r.quote.unwrap();
        assert_eq!(q.total_yen, 9_000);
        assert_eq!(q.deadline_ms, NOW_MS + 14 * DAY_MS);
        assert_eq!(
            q.lines.iter().map(|l| l.defect).collect::<Vec<_>>(),
            [DefectCode::Scratch, DefectCode::NotWorking]
        );
        assert_eq!(r.request.fault, Fault::Screen);
        let r = of_return(&conn, &unpriced).unwrap().unwrap();
        assert_eq!(r.unpriced, [DefectCode::Dent]);
        assert!(r.quote.is_none());

        // Ops price the dent: the next pass quotes it, once.
        let mut with_dent = own.to_vec();
        with_dent.push(RateRow {
            defect: DefectCode::Dent,
            key: None,
            parts_yen: 0,
            labour_yen: 2_500,
        });
        put_rates(&mut conn, "brand-a", &with_dent).unwrap();
        assert_eq!(quote_pass(&mut conn, &configured), 1);
        assert_eq!(quote_pass(&mut conn, &configured), 0);
        assert_eq!(
            kinds(&conn, &unpriced),
            ["repair_unpriced", "repair_quoted"]
        );
        let r = of_return(&conn, &unpriced).unwrap().unwrap();
        assert_eq!(r.quote.map(|q| q.total_yen), Some(4_500));
        assert!(r.unpriced.is_empty());
    }

    #[test]
    fn repairs_waiting_for_a_price_never_hold_a_newly_graded_one_back() {
        let mut conn = open();
        let terms = RepairTerms {
            rates: vec![crate::policy::RepairRate {
                defect: "dent".into(),
                sku: None,
                category: None,
                parts_yen: 0,
                labour_yen: 1_000,
            }],
            ..RepairTerms::default()
        };
        // Numbered so the fresh one comes last by RMA and by insertion alike.
        let n_waiting = PER_PASS_MAX as u64 + 1;
        for n in 1..=n_waiting {
            graded(&mut conn, n, vec![DefectCode::Odor]);
        }
        assert_eq!(quote_pass(&mut conn, &terms), 0);
        let fresh = graded(&mut conn, n_waiting + 1, vec![DefectCode::Dent]);
        assert_eq!(quote_pass(&mut conn, &terms), 1);
        assert!(of_return(&conn, &fresh).unwrap().unwrap().quote.is_some());
    }

    fn fleet() -> Vec<Site> {
        use modori_shared::domain::{Capability, Coordinates};
        let site = |id: &str, lat, lon, capabilities| Site {
            id: SiteId::new(id).unwrap(),
            name: id.into(),
            location: Coordinates::new(lat, lon).unwrap(),
            capabilities,
            daily_capacity_units: 100,
        };
        vec![
            site("osaka", 34.7, 135.5, vec![]),
            site("kobe", 34.69, 135.19, vec![Capability::Refurbish]),
            site("sendai", 38.27, 140.87, vec![Capability::Refurbish]),
        ]
    }

    fn transfers(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM commands WHERE kind = 'transfer_order' AND site = 'osaka'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// Every ship-back command queued, and the causes of `rma`'s ship-backs.
    fn ship_backs(conn: &Connection, rma: &str) -> (i64, Vec<String>) {
        let commands = conn
            .query_row(
                "SELECT COUNT(*) FROM commands WHERE kind = 'ship_back' AND site = 'osaka'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut stmt = conn
            .prepare("SELECT cause FROM ship_backs WHERE rma = ?1 ORDER BY lpn")
            .unwrap();
        let causes = stmt.query_map([rma], |r| r.get(0)).unwrap();
        (commands, causes.collect::<Result<_, _>>().unwrap())
    }

    #[test]
    fn each_answer_is_made_once_and_an_acceptance_moves_the_unit_to_a_site_that_refurbishes() {
        let mut conn = open();
        let terms = RepairTerms {
            rates: vec![crate::policy::RepairRate {
                defect: "not_working".into(),
                sku: None,
                category: None,
                parts_yen: 3_000,
                labour_yen: 4_000,
            }],
            ..RepairTerms::default()
        };
        let accepted = graded(&mut conn, 1, vec![DefectCode::NotWorking]);
        let declined = graded(&mut conn, 2, vec![DefectCode::NotWorking]);
        let silent = graded(&mut conn, 3, vec![DefectCode::NotWorking]);
        let unquoted = graded(&mut conn, 4, vec![DefectCode::Odor]);
        assert_eq!(quote_pass(&mut conn, &terms), 3);
        let sites = fleet();
        let answer_now = |c: &mut Connection, rma: &str, d| {
            answer(c, rma, d, "customer", &sites, NOW_MS + DAY_MS)
        };
        assert_eq!(
            answer_now(&mut conn, &unquoted, Decision::Accepted).unwrap(),
            Answered::NotOpen
        );
        assert_eq!(
            answer_now(&mut conn, &accepted, Decision::Accepted).unwrap(),
            Answered::Recorded(Decision::Accepted)
        );
        assert_eq!(transfers(&conn), 1, "to Kobe, the nearest that refurbishes");
        assert_eq!(
            answer_now(&mut conn, &accepted, Decision::Accepted).unwrap(),
            Answered::Already(Decision::Accepted)
        );
        assert_eq!(
            answer_now(&mut conn, &accepted, Decision::Declined).unwrap(),
            Answered::Conflict(Decision::Accepted)
        );
        assert_eq!(transfers(&conn), 1, "ordered once");
        let r = of_return(&conn, &accepted).unwrap().unwrap();
        assert_eq!(r.charge_yen, Some(7_000));
        assert_eq!(r.transfer_to.as_deref(), Some("kobe"));
        assert_eq!(
            answer_now(&mut conn, &declined, Decision::Declined).unwrap(),
            Answered::Recorded(Decision::Declined)
        );
        assert_eq!(
            kinds(&conn, &declined),
            ["repair_quoted", "repair_declined"]
        );
        assert_eq!(
            of_return(&conn, &declined).unwrap().unwrap().charge_yen,
            None
        );
        let cause = vec![crate::store::ship_backs::CAUSE_REPAIR_DECLINED.to_owned()];
        let sent_back = (1, cause.clone());
        assert_eq!(
            ship_backs(&conn, &declined),
            sent_back,
            "sent back as it is"
        );
        assert_eq!(
            answer_now(&mut conn, &declined, Decision::Declined).unwrap(),
            Answered::Already(Decision::Declined)
        );
        assert_eq!(ship_backs(&conn, &declined), sent_back, "once");
        assert_eq!(ship_backs(&conn, &accepted).1, Vec::<String>::new());
        assert_eq!(
            answer(
                &mut conn,
                "RMA-NONE",
                Decision::Accepted,
                "customer",
                &sites,
                0
            )
            .unwrap(),
            Answered::NotFound
        );

        // Unanswered: the default at the deadline, once; too late for the customer after it.
        let deadline_ms = NOW_MS + 14 * DAY_MS;
        let settle =
            |c: &mut Connection, at| settle_overdue(c, AfterDeadline::Decline, &sites, at).unwrap();
        assert!(settle(&mut conn, deadline_ms).is_empty(), "not past it yet");
        assert_eq!(
            answer(
                &mut conn,
                &silent,
                Decision::Accepted,
                "customer",
                &sites,
                deadline_ms + 1
            )
            .unwrap(),
            Answered::NotOpen
        );
        assert_eq!(
            settle(&mut conn, deadline_ms + 1),
            std::slice::from_ref(&silent)
        );
        assert!(settle(&mut conn, deadline_ms + 2).is_empty(), "once");
        let r = of_return(&conn, &silent).unwrap().unwrap();
        assert_eq!(
            r.decision.map(|(d, by, _)| (d, by)),
            Some((Decision::Declined, BY_DEADLINE.to_owned()))
        );
        assert_eq!(
            ship_backs(&conn, &silent),
            (2, cause),
            "the default sends it back too"
        );

        // Billed once each: three repairs inspected and quoted, one accepted.
        let s = crate::store::billing::statement(
            &conn,
            &crate::store::billing::BillingRates::default(),
            "brand-a",
            "1970-01",
            deadline_ms + 2,
        )
        .unwrap()
        .unwrap();
        let line = |activity: &str| {
            s.lines
                .iter()
                .find(|l| l.activity == activity)
                .map(|l| (l.quantity, l.amount_yen))
        };
        assert_eq!(
            (line("repair_inspection"), line("repair")),
            (Some((3, 900)), Some((1, 500))),
            "{s:?}"
        );
        assert_eq!(transfers(&conn), 1);
    }

    #[test]
    fn ops_override_a_quote_once_with_a_fresh_deadline_while_it_is_unanswered() {
        let mut conn = open();
        let terms = RepairTerms {
            rates: vec![crate::policy::RepairRate {
                defect: "not_working".into(),
                sku: None,
                category: None,
                parts_yen: 3_000,
                labour_yen: 4_000,
            }],
            ..RepairTerms::default()
        };
        let disputed = graded(&mut conn, 1, vec![DefectCode::NotWorking]);
        let unquoted = graded(&mut conn, 2, vec![DefectCode::Odor]);
        assert_eq!(quote_pass(&mut conn, &terms), 1);
        let o = Override {
            amount_yen: 5_000,
            reason: "the part is under warranty",
            key_id: "ops-1",
        };
        let later = NOW_MS + DAY_MS;
        let mut over =
            |rma: &str, o: &Override<'_>| override_quote(&mut conn, rma, o, &terms, later).unwrap();
        assert_eq!(over("RMA-NONE", &o), Overridden::NotFound);
        assert_eq!(over(&unquoted, &o), Overridden::NotQuoted);
        let deadline_ms = later + 14 * DAY_MS;
        assert_eq!(over(&disputed, &o), Overridden::Recorded { deadline_ms });
        assert_eq!(over(&disputed, &o), Overridden::Already);
        let other = Override {
            amount_yen: 4_000,
            ..o
        };
        assert_eq!(over(&disputed, &other), Overridden::OverriddenBefore);
        let r = of_return(&conn, &disputed).unwrap().unwrap();
        let q = r.quote.unwrap();
        assert_eq!((q.total_yen, q.deadline_ms), (5_000, deadline_ms));
        assert_eq!(q.lines.len(), 1, "the lines found stay on record");
        assert_eq!(
            kinds(&conn, &disputed),
            ["repair_quoted", "repair_quote_overridden"]
        );
        // Accepted, it is charged as revised; answered, nothing is overridden any more.
        let sites = fleet();
        let accepted = answer(
            &mut conn,
            &disputed,
            Decision::Accepted,
            "customer",
            &sites,
            later,
        );
        assert_eq!(accepted.unwrap(), Answered::Recorded(Decision::Accepted));
        let r = of_return(&conn, &disputed).unwrap().unwrap();
        assert_eq!(r.charge_yen, Some(5_000));
        let declined = graded(&mut conn, 3, vec![DefectCode::NotWorking]);
        assert_eq!(quote_pass(&mut conn, &terms), 1);
        let d = answer(
            &mut conn,
            &declined,
            Decision::Declined,
            "customer",
            &sites,
            later,
        );
        assert_eq!(d.unwrap(), Answered::Recorded(Decision::Declined));
        assert_eq!(
            override_quote(&mut conn, &declined, &o, &terms, later).unwrap(),
            Overridden::Decided(Decision::Declined)
        );
    }

    #[test]
    fn products_and_quote_lines_read_back_as_put() {
        let mut conn = open();
        let keys = [
            PriceKey::Category("phone".into()),
            PriceKey::Sku("TAB-10".into()),
        ];
        put_products(&mut conn, "brand-a", &keys).unwrap();
        assert_eq!(products(&conn, "brand-a").unwrap(), keys);
        assert!(products(&conn, "brand-b").unwrap().is_empty());
        let lines = vec![
            QuoteLine {
                defect: DefectCode::Dent,
                parts_yen: 1,
                labour_yen: 2,
            },
            QuoteLine {
                defect: DefectCode::NotWorking,
                parts_yen: 30,
                labour_yen: 0,
            },
        ];
        assert_eq!(parse_lines(&lines_text(&lines)).unwrap(), lines);
        assert!(parse_lines("dent:1").is_err());
    }
}
