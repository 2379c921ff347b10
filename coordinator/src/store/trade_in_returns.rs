//! Trade-ins sent: a quote turned into a return (its RMA), the offer once the unit is graded,
//! the customer's answer to a counter-offer (or the default at its deadline), and the payout.
//!
//! Invariants: a quote is linked to one RMA (`quote_id` is the key, `rma` unique), written
//! before the return is registered so a retried send registers the same RMA; the offer is
//! made once (`offered_ms IS NULL` guards it inside the transaction that writes its
//! timeline rows), and so is the answer (`decision IS NULL`). The payout owed is the return's
//! `refund_yen`, so the merchant confirms it as it confirms a refund.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use modori_runtime::sqlite::to_i64;
use modori_shared::domain::{Grade, RmaId};
use modori_shared::tradein::{self, Offer};

use super::details::Detail;
use super::lifecycle::insert_event;
use super::ship_backs;
use super::StoreError;
use crate::policy::{AfterDeadline, TradeInTerms};

pub const MIGRATION: &str = r#"
CREATE TABLE trade_in_returns (
    quote_id    TEXT PRIMARY KEY,
    rma         TEXT NOT NULL UNIQUE,
    payout      TEXT NOT NULL CHECK (payout IN ('store_credit', 'bank_transfer')),
    sent_ms     INTEGER NOT NULL,
    graded      TEXT,
    offer_yen   INTEGER,
    counter     INTEGER CHECK (counter IN (0, 1)),
    offered_ms  INTEGER,
    deadline_ms INTEGER,
    decision    TEXT CHECK (decision IN ('accepted', 'declined')),
    decided_by  TEXT,
    decided_ms  INTEGER,
    payout_yen  INTEGER
) STRICT;
CREATE INDEX trade_in_returns_unoffered ON trade_in_returns (rma) WHERE offered_ms IS NULL;
CREATE INDEX trade_in_returns_open ON trade_in_returns (deadline_ms)
    WHERE counter = 1 AND decision IS NULL;
"#;

/// An ops override of the offer: recorded once, with its reason, key and time.
pub const MIGRATION_OVERRIDE: &str = r#"
ALTER TABLE trade_in_returns ADD COLUMN override_yen INTEGER;
ALTER TABLE trade_in_returns ADD COLUMN override_reason TEXT;
ALTER TABLE trade_in_returns ADD COLUMN override_by TEXT;
ALTER TABLE trade_in_returns ADD COLUMN override_ms INTEGER;
"#;

pub const MIGRATION_OVERRIDE_PG: &str = r#"
ALTER TABLE trade_in_returns ADD COLUMN override_yen BIGINT;
ALTER TABLE trade_in_returns ADD COLUMN override_reason TEXT;
ALTER TABLE trade_in_returns ADD COLUMN override_by TEXT;
ALTER TABLE trade_in_returns ADD COLUMN override_ms BIGINT;
"#;

pub const MIGRATION_PG: &str = r#"
CREATE TABLE trade_in_returns (
    quote_id    TEXT PRIMARY KEY,
    rma         TEXT NOT NULL UNIQUE,
    payout      TEXT NOT NULL CHECK (payout IN ('store_credit', 'bank_transfer')),
    sent_ms     BIGINT NOT NULL,
    graded      TEXT,
    offer_yen   BIGINT,
    counter     BIGINT CHECK (counter IN (0, 1)),
    offered_ms  BIGINT,
    deadline_ms BIGINT,
    decision    TEXT CHECK (decision IN ('accepted', 'declined')),
    decided_by  TEXT,
    decided_ms  BIGINT,
    payout_yen  BIGINT
);
CREATE INDEX trade_in_returns_unoffered ON trade_in_returns (rma) WHERE offered_ms IS NULL;
CREATE INDEX trade_in_returns_open ON trade_in_returns (deadline_ms)
    WHERE counter = 1 AND decision IS NULL;
"#;

/// Trade-ins offered, or settled at their deadline, in one pass at most.
pub const PER_PASS_MAX: usize = 256;

const DAY_MS: i64 = 86_400_000;

/// Who decided, besides the customer and the merchant: the offer as quoted, accepted
/// without asking, and the default applied at a counter-offer's deadline.
pub const BY_AUTOMATIC: &str = "automatic";
pub const BY_DEADLINE: &str = "deadline";
/// An ops override at or above the quote, accepted for the customer.
pub const BY_OPS: &str = "ops";

/// How the customer is paid for an accepted trade-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payout {
    /// Store credit, with the merchant's bonus on top.
    StoreCredit,
    /// A bank transfer the merchant makes.
    BankTransfer,
}

impl Payout {
    pub const ALL_NAMES: [&'static str; 2] = ["store_credit", "bank_transfer"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StoreCredit => "store_credit",
            Self::BankTransfer => "bank_transfer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "store_credit" => Some(Self::StoreCredit),
            "bank_transfer" => Some(Self::BankTransfer),
            _ => None,
        }
    }
}

/// The customer's answer, or what stands for it.
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

/// A trade-in as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradeIn {
    pub quote_id: String,
    pub rma: String,
    pub payout: Payout,
    pub sent_ms: i64,
    /// The grade found, once graded.
    pub graded: Option<Grade>,
    pub offer: Option<MadeOffer>,
    pub decision: Option<(Decision, String, i64)>,
    /// What is owed the customer once accepted (the bonus included for store credit).
    pub payout_yen: Option<u64>,
}

/// The offer once graded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadeOffer {
    pub amount_yen: u64,
    /// Worse than described: the customer answers by `deadline_ms`.
    pub counter: bool,
    pub offered_ms: i64,
    pub deadline_ms: Option<i64>,
}

const COLUMNS: &str = "quote_id, rma, payout, sent_ms, graded, offer_yen, counter, offered_ms,
                       deadline_ms, decision, decided_by, decided_ms, payout_yen";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TradeInRow> {
    Ok(TradeInRow {
        quote_id: r.get(0)?,
        rma: r.get(1)?,
        payout: r.get(2)?,
        sent_ms: r.get(3)?,
        graded: r.get(4)?,
        offer_yen: r.get(5)?,
        counter: r.get(6)?,
        offered_ms: r.get(7)?,
        deadline_ms: r.get(8)?,
        decision: r.get(9)?,
        decided_by: r.get(10)?,
        decided_ms: r.get(11)?,
        payout_yen: r.get(12)?,
    })
}

struct TradeInRow {
    quote_id: String,
    rma: String,
    payout: String,
    sent_ms: i64,
    graded: Option<String>,
    offer_yen: Option<i64>,
    counter: Option<i64>,
    offered_ms: Option<i64>,
    deadline_ms: Option<i64>,
    decision: Option<String>,
    decided_by: Option<String>,
    decided_ms: Option<i64>,
    payout_yen: Option<i64>,
}

impl TradeInRow {
    fn into_trade_in(self) -> Result<TradeIn, StoreError> {
        let yen = |v: i64| u64::try_from(v).unwrap_or(0);
        let offer = match (self.offer_yen, self.offered_ms) {
            (Some(amount), Some(offered_ms)) => Some(MadeOffer {
                amount_yen: yen(amount),
                counter: self.counter == Some(1),
                offered_ms,
                deadline_ms: self.deadline_ms,
            }),
            _ => None,
        };
        let decision = match (self.decision, self.decided_by, self.decided_ms) {
            (Some(d), Some(by), Some(at)) => Decision::parse(&d).map(|d| (d, by, at)),
            _ => None,
        };
        Ok(TradeIn {
            quote_id: self.quote_id,
            rma: self.rma,
            // The column's CHECK allows only the two.
            payout: Payout::parse(&self.payout).unwrap_or(Payout::BankTransfer),
            sent_ms: self.sent_ms,
            graded: self.graded.as_deref().map(Grade::parse).transpose()?,
            offer,
            decision,
            payout_yen: self.payout_yen.map(yen),
        })
    }
}

/// Links `quote_id` to `rma` unless it is linked already, with the customer's contact kept
/// as an order under the quote's number (so messages reach it as a return's, and the
/// retention sweep erases it); answers the RMA the quote is linked to and whether its return
/// is registered.
pub fn link(
    conn: &mut Connection,
    quote_id: &str,
    rma: &str,
    payout: Payout,
    contact: Option<&super::orders::Order>,
    now_ms: i64,
) -> Result<(String, bool), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx.execute(
        "INSERT INTO trade_in_returns (quote_id, rma, payout, sent_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (quote_id) DO NOTHING",
        params![quote_id, rma, payout.as_str(), now_ms],
    )?;
    if let (1, Some(order)) = (n, contact) {
        super::orders::put_order(&tx, &order.merchant, order, now_ms)?;
    }
    let linked: String = tx.query_row(
        "SELECT rma FROM trade_in_returns WHERE quote_id = ?1",
        [quote_id],
        |r| r.get(0),
    )?;
    let registered = tx
        .query_row(
            "SELECT 1 FROM returns WHERE rma = ?1",
            [&linked],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    tx.commit()?;
    Ok((linked, registered))
}

/// The trade-in sent against `quote_id`, if it was.
pub fn of_quote(conn: &Connection, quote_id: &str) -> Result<Option<TradeIn>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM trade_in_returns WHERE quote_id = ?1"),
        [quote_id],
        row,
    )
    .optional()?
    .map(TradeInRow::into_trade_in)
    .transpose()
}

/// The trade-in return `rma` is, if it is one.
pub fn of_return(conn: &Connection, rma: &str) -> Result<Option<TradeIn>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM trade_in_returns WHERE rma = ?1"),
        [rma],
        row,
    )
    .optional()?
    .map(TradeInRow::into_trade_in)
    .transpose()
}

/// What the customer is paid for `amount_yen`: store credit carries the bonus.
fn payout_yen(payout: Payout, amount_yen: u64, bonus_percent: u32) -> (u64, u64) {
    let bonus = match payout {
        Payout::StoreCredit => amount_yen.saturating_mul(u64::from(bonus_percent)) / 100,
        Payout::BankTransfer => 0,
    };
    (amount_yen.saturating_add(bonus), bonus)
}

/// Records the acceptance of the offer on `rma` and what it pays, as the return's amount
/// owed (confirmed by the merchant as a refund is).
fn accept(
    tx: &Transaction<'_>,
    rma: &str,
    site: &str,
    by: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let (payout, amount, bonus_percent): (String, i64, i64) = tx.query_row(
        "SELECT t.payout, t.offer_yen, COALESCE(r.credit_bonus_percent, 0)
         FROM trade_in_returns t JOIN returns r ON r.rma = t.rma WHERE t.rma = ?1",
        [rma],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let payout = Payout::parse(&payout).unwrap_or(Payout::BankTransfer);
    let (total, bonus) = payout_yen(
        payout,
        u64::try_from(amount).unwrap_or(0),
        u32::try_from(bonus_percent).unwrap_or(0),
    );
    tx.execute(
        "UPDATE trade_in_returns SET decision = 'accepted', decided_by = ?2, decided_ms = ?3,
                payout_yen = ?4 WHERE rma = ?1",
        params![rma, by, now_ms, to_i64(total)],
    )?;
    tx.execute(
        "UPDATE returns SET refund_yen = ?2 WHERE rma = ?1",
        params![rma, to_i64(total)],
    )?;
    let at_deadline = by == BY_DEADLINE;
    let detail = match payout {
        Payout::StoreCredit => Detail::trade_in_credit(total, bonus, at_deadline),
        Payout::BankTransfer => Detail::trade_in_transfer(total, at_deadline),
    };
    insert_event(
        tx,
        rma,
        "trade_in_accepted",
        Some(site),
        None,
        &detail,
        now_ms,
        now_ms,
    )?;
    Ok(total)
}

/// Records the decline of the offer on `rma` and orders its item back to the customer at the
/// site that holds it (store/ship_backs.rs), in the same transaction: the decision and the
/// order stand or fall together, and both happen once.
fn decline(
    tx: &Transaction<'_>,
    rma: &str,
    site: &str,
    by: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE trade_in_returns SET decision = 'declined', decided_by = ?2, decided_ms = ?3
         WHERE rma = ?1",
        params![rma, by, now_ms],
    )?;
    // Its sites are woken by the use case after the commit, whichever of the three ways the
    // decline came (`app::wake_all_streams`), so what was queued is not carried back here.
    let _queued = ship_backs::order(
        &mut super::sql::sqlite(tx),
        &RmaId::new(rma)?,
        ship_backs::CAUSE_TRADE_IN_DECLINED,
        now_ms,
    )?;
    insert_event(
        tx,
        rma,
        "trade_in_declined",
        Some(site),
        None,
        &Detail::trade_in_declined(by == BY_DEADLINE),
        now_ms,
        now_ms,
    )
}

/// Makes the offer on every trade-in whose return is received with every unit graded and
/// not offered yet, inside the caller's transaction (the refunds' pass): as quoted (or
/// better) is accepted at once; worse is a counter-offer with `terms.counter_offer_days` to
/// answer. The worst grade of its units prices it. Returns how many were offered.
pub fn offer_graded(
    tx: &Transaction<'_>,
    terms: &TradeInTerms,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let ready: Vec<(String, String, String, String, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT t.rma, r.site, q.merchant, q.sku, q.quote_yen
             FROM trade_in_returns t
             JOIN returns r ON r.rma = t.rma
             JOIN trade_in_quotes q ON q.quote_id = t.quote_id
             WHERE t.offered_ms IS NULL AND r.status = 'received'
               AND EXISTS (SELECT 1 FROM units u WHERE u.rma = t.rma AND u.state != 'voided')
               AND NOT EXISTS (SELECT 1 FROM units u WHERE u.rma = t.rma
                               AND u.state != 'voided' AND u.grade IS NULL)
             LIMIT ?1",
        )?;
        let rows = stmt.query_map([to_i64(PER_PASS_MAX as u64)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let n = ready.len();
    for (rma, site, merchant, sku, quote_yen) in ready {
        let grades: Vec<String> = {
            let mut stmt = tx.prepare_cached(
                "SELECT grade FROM units WHERE rma = ?1 AND state != 'voided' AND grade IS NOT NULL",
            )?;
            let rows = stmt.query_map([&rma], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut worst = Grade::A;
        for g in &grades {
            let g = Grade::parse(g)?;
            if g.index() > worst.index() {
                worst = g;
            }
        }
        let category = super::catalog::product(&mut super::sql::sqlite(tx), Some(&merchant), &sku)?
            .map(|p| p.3)
            .unwrap_or_default();
        let table = super::trade_in::prices(tx, &merchant)?;
        let graded_price = tradein::price(&table, &sku, &category, worst);
        let quoted = u64::try_from(quote_yen).unwrap_or(0);
        let offer = tradein::offer_after_grading(quoted, graded_price);
        let (amount, counter, deadline) = match offer {
            Offer::AsQuoted { amount_yen } => (amount_yen, 0, None),
            Offer::Counter { amount_yen, .. } => (
                amount_yen,
                1,
                Some(now_ms + i64::from(terms.counter_offer_days) * DAY_MS),
            ),
        };
        let changed = tx.execute(
            "UPDATE trade_in_returns SET graded = ?2, offer_yen = ?3, counter = ?4,
                    offered_ms = ?5, deadline_ms = ?6
             WHERE rma = ?1 AND offered_ms IS NULL",
            params![
                rma,
                worst.as_str(),
                to_i64(amount),
                counter,
                now_ms,
                deadline
            ],
        )?;
        if changed == 0 {
            continue;
        }
        match deadline {
            None => {
                let detail = Detail::trade_in_as_quoted(amount, worst.as_str());
                insert_event(
                    tx,
                    &rma,
                    "trade_in_offer",
                    Some(&site),
                    None,
                    &detail,
                    now_ms,
                    now_ms,
                )?;
                accept(tx, &rma, &site, BY_AUTOMATIC, now_ms)?;
            }
            Some(deadline_ms) => {
                let detail = Detail::trade_in_counter(amount, quoted, worst.as_str(), deadline_ms);
                insert_event(
                    tx,
                    &rma,
                    "trade_in_counter_offer",
                    Some(&site),
                    None,
                    &detail,
                    now_ms,
                    now_ms,
                )?;
            }
        }
    }
    Ok(n)
}

/// What answering a counter-offer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answered {
    /// Recorded now; the payout owed when accepted.
    Recorded {
        decision: Decision,
        payout_yen: Option<u64>,
    },
    /// Answered before with the same answer: nothing changes.
    Already(Decision),
    /// Answered before otherwise, or accepted at once as quoted: it stands.
    Conflict(Decision),
    /// Not offered yet (the item is not graded), or the deadline passed.
    NotOpen,
    /// No trade-in return `rma`.
    NotFound,
}

/// Records the answer `decision` to the counter-offer on `rma`, by `by` (`customer`,
/// `merchant`), once, before its deadline.
pub fn answer(
    conn: &mut Connection,
    rma: &str,
    decision: Decision,
    by: &str,
    now_ms: i64,
) -> Result<Answered, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(t) = of_return(&tx, rma)? else {
        return Ok(Answered::NotFound);
    };
    let outcome = match (t.offer, t.decision) {
        (_, Some((d, _, _))) if d == decision => Answered::Already(d),
        (_, Some((d, _, _))) => Answered::Conflict(d),
        (None, None) => Answered::NotOpen,
        (Some(o), None) if o.deadline_ms.is_none_or(|d| now_ms > d) => Answered::NotOpen,
        (Some(_), None) => {
            let site: String =
                tx.query_row("SELECT site FROM returns WHERE rma = ?1", [rma], |r| {
                    r.get(0)
                })?;
            let payout_yen = match decision {
                Decision::Accepted => Some(accept(&tx, rma, &site, by, now_ms)?),
                Decision::Declined => {
                    decline(&tx, rma, &site, by, now_ms)?;
                    None
                }
            };
            Answered::Recorded {
                decision,
                payout_yen,
            }
        }
    };
    tx.commit()?;
    Ok(outcome)
}

/// What an ops override of an offer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overridden {
    /// Recorded now: at or above the quote, accepted at once (with the payout owed); below
    /// it, a counter-offer open until the new deadline.
    Recorded {
        accepted: bool,
        payout_yen: Option<u64>,
        deadline_ms: Option<i64>,
    },
    /// The same override was recorded before: nothing changes.
    Already,
    /// Overridden before with another amount or reason: that one stands.
    OverriddenBefore,
    /// Decided already (accepted, declined, or paid): the offer stands.
    Decided(Decision),
    /// Not offered yet: the item is not graded.
    NotOffered,
    /// No trade-in return `rma`.
    NotFound,
}

/// An ops override of the offer on a trade-in: the amount, why, and the key that made it.
pub struct Override<'a> {
    pub amount_yen: u64,
    pub reason: &'a str,
    pub key_id: &'a str,
}

/// Replaces the offer on `rma`, once, while it is offered and undecided. At or above the
/// quote the customer is given at least what they were promised, so it is accepted at once;
/// below it, it is a counter-offer the customer answers by a fresh deadline of
/// `terms.counter_offer_days`, since less than the quote needs their consent.
pub fn override_offer(
    conn: &mut Connection,
    rma: &str,
    o: &Override<'_>,
    terms: &TradeInTerms,
    now_ms: i64,
) -> Result<Overridden, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(t) = of_return(&tx, rma)? else {
        return Ok(Overridden::NotFound);
    };
    let before: Option<(i64, String)> = tx.query_row(
        "SELECT override_yen, override_reason FROM trade_in_returns WHERE rma = ?1",
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
    if let Some((d, _, _)) = t.decision {
        return Ok(Overridden::Decided(d));
    }
    let Some(offer) = t.offer else {
        return Ok(Overridden::NotOffered);
    };
    let (site, quoted): (String, i64) = tx.query_row(
        "SELECT r.site, q.quote_yen FROM trade_in_returns t
         JOIN returns r ON r.rma = t.rma JOIN trade_in_quotes q ON q.quote_id = t.quote_id
         WHERE t.rma = ?1",
        [rma],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let accepted = o.amount_yen >= u64::try_from(quoted).unwrap_or(0);
    let deadline_ms = (!accepted).then(|| now_ms + i64::from(terms.counter_offer_days) * DAY_MS);
    tx.execute(
        "UPDATE trade_in_returns SET offer_yen = ?2, counter = ?3, deadline_ms = ?4,
                override_yen = ?2, override_reason = ?5, override_by = ?6, override_ms = ?7
         WHERE rma = ?1",
        params![
            rma,
            to_i64(o.amount_yen),
            i64::from(!accepted),
            deadline_ms,
            o.reason,
            o.key_id,
            now_ms
        ],
    )?;
    let detail = Detail::trade_in_overridden(
        o.amount_yen,
        offer.amount_yen,
        o.reason,
        o.key_id,
        deadline_ms,
    );
    // A lower offer is told the customer as revised (its counter-offer was told already);
    // one accepted at once is told by its acceptance alone, so it stands as the offer made.
    let kind = if accepted {
        "trade_in_offer"
    } else {
        "trade_in_offer_overridden"
    };
    insert_event(&tx, rma, kind, Some(&site), None, &detail, now_ms, now_ms)?;
    let payout_yen = if accepted {
        Some(accept(&tx, rma, &site, BY_OPS, now_ms)?)
    } else {
        None
    };
    tx.commit()?;
    Ok(Overridden::Recorded {
        accepted,
        payout_yen,
        deadline_ms,
    })
}

/// Applies `default` to up to [`PER_PASS_MAX`] counter-offers unanswered past their
/// deadline at `now_ms`, each once; returns their RMAs.
pub fn settle_overdue(
    conn: &mut Connection,
    default: AfterDeadline,
    now_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let due: Vec<(String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT t.rma, r.site FROM trade_in_returns t JOIN returns r ON r.rma = t.rma
             WHERE t.counter = 1 AND t.decision IS NULL AND t.deadline_ms < ?1
             ORDER BY t.deadline_ms LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, to_i64(PER_PASS_MAX as u64)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for (rma, site) in &due {
        match default {
            AfterDeadline::Accept => {
                accept(&tx, rma, site, BY_DEADLINE, now_ms)?;
            }
            AfterDeadline::Decline => decline(&tx, rma, site, BY_DEADLINE, now_ms)?,
        }
    }
    tx.commit()?;
    Ok(due.into_iter().map(|(rma, _)| rma).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::trade_in::{insert_quote, put_prices, Quote};
    use crate::store::{init, migrations, register_return, NewReturn};
    use modori_shared::domain::{
        Coordinates, Lpn, MerchantId, ReasonCode, ReturnLine, RmaId, SiteId, Sku,
    };
    use modori_shared::op::OpBody;
    use modori_shared::station::ReceiptKind;
    use modori_shared::tradein::{Condition, PriceKey, PriceRow};

    const NOW_MS: i64 = 1_000_000;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        let row = |grade, price_yen| PriceRow {
            key: PriceKey::Sku("PHN".into()),
            grade,
            price_yen,
        };
        let table = [row(Grade::B, 22_000), row(Grade::C, 12_000)];
        put_prices(&mut conn, "brand-a", &table).unwrap();
        conn
    }

    fn site() -> SiteId {
        SiteId::new("osaka").unwrap()
    }

    /// Quote `n` of PHN as good (22,000 yen), sent as return `n`, received and graded `grade`
    /// at Osaka in its own batch of ops; returns the RMA.
    fn graded(conn: &mut Connection, n: u64, grade: Grade) -> String {
        let (quote_id, rma) = (format!("TQ-{n}"), format!("RMA-{n}"));
        let q = Quote {
            quote_id: quote_id.clone(),
            merchant: "brand-a".into(),
            sku: "PHN".into(),
            condition: Condition::Good,
            grade: Grade::B,
            quote_yen: 22_000,
            created_ms: 0,
            expires_ms: NOW_MS,
        };
        insert_quote(conn, &q).unwrap();
        let linked = link(conn, &quote_id, &rma, Payout::BankTransfer, None, 0).unwrap();
        assert_eq!(linked, (rma.clone(), false));
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
        // No site is connected in these tests: nothing to wake.
        let _ = register_return(conn, &r, &site(), "nearest", "[]", &[], 0).unwrap();
        // Linked again: the same return, now registered.
        let again = link(conn, &quote_id, "RMA-OTHER", Payout::StoreCredit, None, 1).unwrap();
        assert_eq!(again, (rma.clone(), true));
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
                grade,
                defects: vec![],
            },
            OpBody::ParcelClosed {
                rma: id,
                shortages: vec![],
            },
        ];
        crate::store::test_ops::apply_bodies(conn, &site(), 3 * (n - 1) + 1, bodies.into());
        rma
    }

    fn offer_pass(conn: &mut Connection) -> usize {
        let tx = conn.transaction().unwrap();
        let n = offer_graded(&tx, &TradeInTerms::default(), NOW_MS).unwrap();
        tx.commit().unwrap();
        n
    }

    fn kinds(conn: &Connection, rma: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT kind FROM return_events WHERE rma = ?1 AND kind LIKE 'trade_in%' ORDER BY id")
            .unwrap();
        let rows = stmt.query_map([rma], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn each_offer_and_each_answer_is_made_once() {
        let mut conn = open();
        let as_described = graded(&mut conn, 1, Grade::B);
        let worse = graded(&mut conn, 2, Grade::C);
        assert_eq!(offer_pass(&mut conn), 2);
        assert_eq!(offer_pass(&mut conn), 0, "offered once");
        assert_eq!(
            kinds(&conn, &as_described),
            ["trade_in_offer", "trade_in_accepted"]
        );
        assert_eq!(kinds(&conn, &worse), ["trade_in_counter_offer"]);
        let t = of_return(&conn, &as_described).unwrap().unwrap();
        assert_eq!(t.payout_yen, Some(22_000));
        let t = of_return(&conn, &worse).unwrap().unwrap();
        let offer = t.offer.unwrap();
        let deadline_ms = offer.deadline_ms.unwrap();
        assert_eq!((offer.amount_yen, offer.counter), (12_000, true));
        assert_eq!(deadline_ms, NOW_MS + 7 * DAY_MS);

        // Accepted as quoted: nothing to decline.
        let answer_now = |c: &mut Connection, rma: &str, d| answer(c, rma, d, "customer", NOW_MS);
        assert_eq!(
            answer_now(&mut conn, &as_described, Decision::Declined).unwrap(),
            Answered::Conflict(Decision::Accepted)
        );
        assert_eq!(
            answer_now(&mut conn, &worse, Decision::Declined).unwrap(),
            Answered::Recorded {
                decision: Decision::Declined,
                payout_yen: None
            }
        );
        assert_eq!(
            answer_now(&mut conn, &worse, Decision::Declined).unwrap(),
            Answered::Already(Decision::Declined)
        );
        assert_eq!(
            answer_now(&mut conn, &worse, Decision::Accepted).unwrap(),
            Answered::Conflict(Decision::Declined)
        );
        assert_eq!(
            answer_now(&mut conn, "RMA-NONE", Decision::Accepted).unwrap(),
            Answered::NotFound
        );
        assert_eq!(
            kinds(&conn, &worse),
            ["trade_in_counter_offer", "trade_in_declined"]
        );
        // Answered: nothing is left for the deadline.
        let after = deadline_ms + 1;
        assert!(settle_overdue(&mut conn, AfterDeadline::Accept, after)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn an_unanswered_counter_offer_takes_the_default_once_after_its_deadline() {
        let mut conn = open();
        let rma = graded(&mut conn, 1, Grade::C);
        offer_pass(&mut conn);
        let deadline_ms = NOW_MS + 7 * DAY_MS;
        let settle = |c: &mut Connection, at| settle_overdue(c, AfterDeadline::Accept, at).unwrap();
        assert!(settle(&mut conn, deadline_ms).is_empty(), "not past it yet");
        assert_eq!(
            answer(
                &mut conn,
                &rma,
                Decision::Accepted,
                "customer",
                deadline_ms + 1
            )
            .unwrap(),
            Answered::NotOpen,
            "past its deadline, the customer's answer comes too late"
        );
        assert_eq!(
            settle(&mut conn, deadline_ms + 1),
            std::slice::from_ref(&rma)
        );
        assert!(settle(&mut conn, deadline_ms + 2).is_empty(), "once");
        let t = of_return(&conn, &rma).unwrap().unwrap();
        assert_eq!(
            t.decision.map(|(d, by, _)| (d, by)),
            Some((Decision::Accepted, BY_DEADLINE.to_owned()))
        );
        assert_eq!(t.payout_yen, Some(12_000));
        let owed: Option<i64> = conn
            .query_row(
                "SELECT refund_yen FROM returns WHERE rma = ?1",
                [&rma],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(owed, Some(12_000), "owed as the return's refund");
    }

    #[test]
    fn an_override_is_recorded_once_below_the_quote_as_a_counter_offer_and_at_it_accepted() {
        let mut conn = open();
        let terms = TradeInTerms::default();
        let lower = graded(&mut conn, 1, Grade::C);
        let o = |amount_yen, reason| Override {
            amount_yen,
            reason,
            key_id: "k-ops",
        };
        let later_ms = NOW_MS + DAY_MS;
        assert_eq!(
            override_offer(&mut conn, &lower, &o(18_000, "receipt"), &terms, later_ms).unwrap(),
            Overridden::NotOffered,
            "not graded into an offer yet"
        );
        offer_pass(&mut conn);
        let deadline_ms = later_ms + i64::from(terms.counter_offer_days) * DAY_MS;
        assert_eq!(
            override_offer(&mut conn, &lower, &o(18_000, "receipt"), &terms, later_ms).unwrap(),
            Overridden::Recorded {
                accepted: false,
                payout_yen: None,
                deadline_ms: Some(deadline_ms)
            }
        );
        let again = override_offer(&mut conn, &lower, &o(18_000, "receipt"), &terms, later_ms);
        assert_eq!(again.unwrap(), Overridden::Already);
        let other = override_offer(&mut conn, &lower, &o(19_000, "receipt"), &terms, later_ms);
        assert_eq!(other.unwrap(), Overridden::OverriddenBefore);
        let t = of_return(&conn, &lower).unwrap().unwrap();
        let offer = t.offer.unwrap();
        assert_eq!(
            (offer.amount_yen, offer.counter, offer.deadline_ms),
            (18_000, true, Some(deadline_ms))
        );
        assert_eq!(
            kinds(&conn, &lower),
            ["trade_in_counter_offer", "trade_in_offer_overridden"]
        );

        let up = graded(&mut conn, 2, Grade::C);
        offer_pass(&mut conn);
        let recorded = override_offer(&mut conn, &up, &o(22_000, "error"), &terms, later_ms);
        assert_eq!(
            recorded.unwrap(),
            Overridden::Recorded {
                accepted: true,
                payout_yen: Some(22_000),
                deadline_ms: None
            }
        );
        let t = of_return(&conn, &up).unwrap().unwrap();
        assert_eq!(
            t.decision.map(|(d, by, _)| (d, by)),
            Some((Decision::Accepted, BY_OPS.to_owned()))
        );
        let decided = graded(&mut conn, 3, Grade::B);
        offer_pass(&mut conn);
        assert_eq!(
            override_offer(&mut conn, &decided, &o(25_000, "x"), &terms, later_ms).unwrap(),
            Overridden::Decided(Decision::Accepted)
        );
        let none = override_offer(&mut conn, "RMA-NONE", &o(1, "x"), &terms, later_ms);
        assert_eq!(none.unwrap(), Overridden::NotFound);
    }

    #[test]
    fn store_credit_carries_the_bonus_and_a_transfer_does_not() {
        assert_eq!(payout_yen(Payout::StoreCredit, 12_000, 10), (13_200, 1_200));
        assert_eq!(payout_yen(Payout::BankTransfer, 12_000, 10), (12_000, 0));
        assert_eq!(payout_yen(Payout::StoreCredit, 999, 10), (1_098, 99));
        for name in Payout::ALL_NAMES {
            assert_eq!(Payout::parse(name).map(Payout::as_str), Some(name));
        }
        assert_eq!(Payout::parse("cash"), None);
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_declined_item_is_ordered_back_once_shipped_and_billed() {
        use crate::store::billing::{statement, BillingRates};
        use modori_shared::domain::{Departure, Disposition};
        let mut conn = open();
        let declined = graded(&mut conn, 1, Grade::C);
        let silent = graded(&mut conn, 2, Grade::C);
        let _as_described = graded(&mut conn, 3, Grade::B);
        assert_eq!(offer_pass(&mut conn), 3);
        let ordered = |c: &Connection| {
            count(
                c,
                "SELECT COUNT(*) FROM ship_backs s JOIN commands c
                 ON c.site = s.site AND c.kind = 'ship_back' WHERE s.shipped_ms IS NULL",
            )
        };
        assert_eq!(ordered(&conn), 0, "nothing declined yet");
        // By the customer: ordered with the decline, and only once however often it comes.
        for _ in 0..2 {
            answer(&mut conn, &declined, Decision::Declined, "customer", NOW_MS).unwrap();
        }
        assert_eq!(ordered(&conn), 1);
        let sent: Vec<u8> = conn
            .query_row(
                "SELECT payload FROM commands WHERE kind = 'ship_back'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            modori_shared::wire::payload::decode_command(&sent).unwrap(),
            modori_shared::op::CommandBody::ShipBack {
                lpn: Lpn::new("L1").unwrap(),
                rma: RmaId::new(declined.clone()).unwrap()
            }
        );
        // By the default at the deadline, once.
        let after = NOW_MS + 8 * DAY_MS;
        for _ in 0..2 {
            settle_overdue(&mut conn, AfterDeadline::Decline, after).unwrap();
        }
        assert_eq!(
            count(
                &conn,
                "SELECT COUNT(*) FROM commands WHERE kind = 'ship_back'"
            ),
            2
        );
        let ship_backs = |c: &Connection, rma: &str| {
            crate::store::ship_backs::of_return(&mut crate::store::sql::sqlite(c), rma).unwrap()
        };
        assert_eq!(ship_backs(&conn, &silent).len(), 1);

        // The site disposes of it and ships it back with the carrier's number.
        let lpn = Lpn::new("L1").unwrap();
        let back = Departure::ToCustomer {
            rma: RmaId::new(declined.clone()).unwrap(),
        };
        let bodies = vec![
            OpBody::DispositionSet {
                lpn: lpn.clone(),
                disposition: Disposition::Refurbish,
            },
            OpBody::UnitDeparted {
                lpn,
                departure: back,
                tracking: Some("123456789013".into()),
            },
        ];
        crate::store::test_ops::apply_bodies(&mut conn, &site(), 10, bodies);
        let shipped = ship_backs(&conn, &declined);
        assert_eq!(
            shipped[0].shipped.as_ref().map(|(_, t)| t.clone()),
            Some(Some("123456789013".to_owned()))
        );
        let (code, params): (String, String) = conn
            .query_row(
                "SELECT detail_code, detail_params FROM return_events
                 WHERE rma = ?1 AND kind = 'shipped_back'",
                [&declined],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(code, "departed_to_customer_tracked");
        assert!(params.contains("123456789013"), "{params}");

        // Billed once each: three trade-ins inspected, one paid out, one sent back.
        let s = statement(&conn, &BillingRates::default(), "brand-a", "1970-01", after)
            .unwrap()
            .unwrap();
        let quantity = |activity: &str| {
            s.lines
                .iter()
                .find(|l| l.activity == activity)
                .map(|l| l.quantity)
        };
        assert_eq!(
            (
                quantity("trade_in_inspection"),
                quantity("trade_in_payout"),
                quantity("ship_back")
            ),
            (Some(3), Some(1), Some(1)),
            "{s:?}"
        );
    }
}
