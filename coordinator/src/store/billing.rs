//! Per-merchant activity billing for the 3PL: every billable activity at a site is counted, with
//! its merchant, in the transaction applying the op that did it; a monthly statement prices the
//! counts with the configured rates.
//!
//! Invariants: one count per billable op (ops apply once, so activities bill once); counted
//! activities (receipts, gradings, relabels, …) are kept as counts per merchant, activity and
//! Japan day (`billable_daily`, see `tallies`), storage as the `billable` ledger's start and end
//! rows per unit (its days need both ends); the merchant of a unit is its return's, or the
//! catalogue's owner of its SKU, or `unassigned`; the day and month of an activity are the
//! site's clock at the op, in Japan time. Storage is billed per day a unit spends in a bin (from
//! its first put-away until it leaves), within the month.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use modori_shared::domain::{Lpn, RmaId, SiteId, Sku};

use super::tallies::{jst_day, Tally};
use super::StoreError;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const JST_MS: i64 = 9 * 60 * 60 * 1000;

/// Merchant of activities whose unit belongs to no known merchant.
pub const UNASSIGNED: &str = "unassigned";

/// A billable activity (the ledger's and the counts' `activity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    Receipt,
    Grading,
    /// A disposition label printed on the unit.
    Relabel,
    Refurbishment,
    /// Handed to the recycler or to disposal.
    Disposal,
    Transfer,
    /// A unit sent back to the customer of its return (a declined trade-in, a repair).
    ShipBack,
    /// A unit went into a bin for the first time: storage days start.
    StorageStart,
    /// A unit left its site: storage days end.
    StorageEnd,
}

impl Activity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::Grading => "grading",
            Self::Relabel => "relabel",
            Self::Refurbishment => "refurbishment",
            Self::Disposal => "disposal",
            Self::Transfer => "transfer",
            Self::ShipBack => "ship_back",
            Self::StorageStart => "storage_start",
            Self::StorageEnd => "storage_end",
        }
    }
}

/// Yen per activity (`[billing]` in the coordinator's config).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BillingRates {
    pub receipt_yen: u64,
    pub grading_yen: u64,
    pub relabel_yen: u64,
    pub refurbishment_yen: u64,
    pub disposal_yen: u64,
    pub transfer_yen: u64,
    /// Per unit sent back to its customer.
    pub ship_back_yen: u64,
    /// Per trade-in inspected and offered (on top of its units' gradings).
    pub trade_in_inspection_yen: u64,
    /// Per trade-in payout handled (the payout itself is owed to the customer, not billed).
    pub trade_in_payout_yen: u64,
    /// Per repair quoted after inspection (on top of its units' gradings).
    pub repair_inspection_yen: u64,
    /// Per repair accepted: the repair handled (the quoted charge is the customer's to pay
    /// the merchant, not billed).
    pub repair_yen: u64,
    /// Per unit per day in a bin.
    pub storage_day_yen: u64,
}

impl Default for BillingRates {
    fn default() -> Self {
        Self {
            receipt_yen: 120,
            grading_yen: 180,
            relabel_yen: 30,
            refurbishment_yen: 900,
            disposal_yen: 60,
            transfer_yen: 250,
            ship_back_yen: 250,
            trade_in_inspection_yen: 300,
            trade_in_payout_yen: 100,
            repair_inspection_yen: 300,
            repair_yen: 500,
            storage_day_yen: 5,
        }
    }
}

/// Billing while one batch applies: counted activities go to the batch's [`Tally`], storage to
/// the ledger; each (return, SKU) pair's merchant is looked up once per batch (neither a
/// return's merchant nor the catalogue changes while a batch applies).
#[derive(Debug, Default)]
pub struct Biller {
    merchants: HashMap<(Option<String>, String), String>,
}

impl Biller {
    /// Bills one activity of `lpn`, done at `site` at `at_ms` (the site's clock).
    pub fn record(
        &mut self,
        tx: &Transaction<'_>,
        tally: &mut Tally,
        activity: Activity,
        lpn: &Lpn,
        site: &SiteId,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let merchant = self.merchant_of(tx, lpn)?;
        match activity {
            Activity::StorageStart | Activity::StorageEnd => {
                tx.prepare_cached(
                    "INSERT INTO billable (merchant, activity, lpn, site, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    merchant,
                    activity.as_str(),
                    lpn.as_str(),
                    site.as_str(),
                    at_ms
                ])?;
            }
            _ => tally.billed(merchant, activity.as_str(), at_ms),
        }
        Ok(())
    }

    /// Bills a receipt, whose unit's return (`rma`, when it counts as that return's) and SKU
    /// the caller has at hand: nothing to read back.
    pub fn receipt(
        &mut self,
        tx: &Transaction<'_>,
        tally: &mut Tally,
        rma: Option<&RmaId>,
        sku: &Sku,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let key = (rma.map(ToString::to_string), sku.to_string());
        let merchant = self.merchant(tx, key)?;
        tally.billed(merchant, Activity::Receipt.as_str(), at_ms);
        Ok(())
    }

    /// The merchant a unit's activities are billed to.
    fn merchant_of(&mut self, tx: &Transaction<'_>, lpn: &Lpn) -> Result<String, StoreError> {
        let unit: Option<(Option<String>, String)> = tx
            .prepare_cached("SELECT rma, sku FROM units WHERE lpn = ?1")?
            .query_row([lpn.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match unit {
            Some(key) => self.merchant(tx, key),
            None => Ok(UNASSIGNED.to_owned()),
        }
    }

    /// The merchant of a unit of return `key.0` (if any) and SKU `key.1`.
    fn merchant(
        &mut self,
        tx: &Transaction<'_>,
        key: (Option<String>, String),
    ) -> Result<String, StoreError> {
        if let Some(merchant) = self.merchants.get(&key) {
            return Ok(merchant.clone());
        }
        let merchant: Option<String> = tx
            .prepare_cached(
                "SELECT COALESCE(
                    (SELECT merchant FROM returns WHERE rma = ?1),
                    (SELECT merchant FROM catalog WHERE sku = ?2 ORDER BY merchant LIMIT 1))",
            )?
            .query_row(params![key.0, key.1], |r| r.get(0))?;
        let merchant = merchant.unwrap_or_else(|| UNASSIGNED.to_owned());
        self.merchants.insert(key, merchant.clone());
        Ok(merchant)
    }
}

/// Whether the unit is in storage now (a move between bins does not start it again; a unit
/// transferred and shelved at its new site does).
pub fn in_storage(tx: &Transaction<'_>, lpn: &Lpn) -> Result<bool, StoreError> {
    let last: Option<String> = tx
        .prepare_cached(
            "SELECT activity FROM billable WHERE lpn = ?1
               AND activity IN ('storage_start', 'storage_end') ORDER BY id DESC LIMIT 1",
        )?
        .query_row([lpn.as_str()], |r| r.get(0))
        .optional()?;
    Ok(last.as_deref() == Some("storage_start"))
}

/// The span of a month `YYYY-MM` in Japan, as Unix milliseconds `[start, end)`.
pub fn month_span(month: &str) -> Option<(i64, i64)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    let start = chrono::NaiveDate::from_ymd_opt(y, m, 1)?;
    let next = if m == 12 {
        chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1)?
    } else {
        chrono::NaiveDate::from_ymd_opt(y, m + 1, 1)?
    };
    let ms = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis() - JST_MS)
    };
    Some((ms(start)?, ms(next)?))
}

/// One line of a statement.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct StatementLine {
    pub activity: String,
    pub quantity: u64,
    pub rate_yen: u64,
    pub amount_yen: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Statement {
    pub merchant: String,
    pub month: String,
    pub lines: Vec<StatementLine>,
    pub total_yen: u64,
}

/// The statement of `merchant` for `month` (`YYYY-MM`): each activity counted in the month and
/// priced, and the unit-days spent in bins within it. `None` for a malformed month.
pub fn statement(
    conn: &Connection,
    rates: &BillingRates,
    merchant: &str,
    month: &str,
    now_ms: i64,
) -> Result<Option<Statement>, StoreError> {
    let Some((start, end)) = month_span(month) else {
        return Ok(None);
    };
    // Days not yet lived are not billed.
    let storage_end = end.min(now_ms);
    let count = |activity: Activity| -> Result<u64, StoreError> {
        let n: i64 = conn.query_row(
            "SELECT COALESCE(SUM(n), 0) FROM billable_daily WHERE merchant = ?1 AND activity = ?2
               AND day >= ?3 AND day < ?4",
            params![merchant, activity.as_str(), jst_day(start), jst_day(end)],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    // Each stored unit's days in bins overlapping the month, counted in whole days begun.
    let storage_ms: i64 = conn.query_row(
        "SELECT COALESCE(SUM(MAX(0, MIN(COALESCE(
                    (SELECT MIN(e.at_ms) FROM billable e WHERE e.lpn = s.lpn
                       AND e.activity = 'storage_end' AND e.id > s.id), ?3), ?3)
                  - MAX(s.at_ms, ?2))), 0)
         FROM billable s
         WHERE s.merchant = ?1 AND s.activity = 'storage_start' AND s.at_ms < ?3",
        params![merchant, start, storage_end],
        |r| r.get(0),
    )?;
    let storage_days = u64::try_from((storage_ms + DAY_MS - 1) / DAY_MS).unwrap_or(0);
    let priced = [
        (
            Activity::Receipt.as_str(),
            count(Activity::Receipt)?,
            rates.receipt_yen,
        ),
        (
            Activity::Grading.as_str(),
            count(Activity::Grading)?,
            rates.grading_yen,
        ),
        (
            Activity::Relabel.as_str(),
            count(Activity::Relabel)?,
            rates.relabel_yen,
        ),
        (
            Activity::Refurbishment.as_str(),
            count(Activity::Refurbishment)?,
            rates.refurbishment_yen,
        ),
        (
            Activity::Disposal.as_str(),
            count(Activity::Disposal)?,
            rates.disposal_yen,
        ),
        (
            Activity::Transfer.as_str(),
            count(Activity::Transfer)?,
            rates.transfer_yen,
        ),
        (
            Activity::ShipBack.as_str(),
            count(Activity::ShipBack)?,
            rates.ship_back_yen,
        ),
        (
            TRADE_IN_INSPECTION,
            trade_ins(conn, merchant, OFFERED_AT, start, end)?,
            rates.trade_in_inspection_yen,
        ),
        (
            TRADE_IN_PAYOUT,
            trade_ins(conn, merchant, PAID_AT, start, end)?,
            rates.trade_in_payout_yen,
        ),
        (
            REPAIR_INSPECTION,
            repairs(conn, merchant, QUOTED_AT, start, end)?,
            rates.repair_inspection_yen,
        ),
        (
            REPAIR,
            repairs(conn, merchant, ACCEPTED_AT, start, end)?,
            rates.repair_yen,
        ),
    ];
    let mut lines: Vec<StatementLine> = priced
        .into_iter()
        .map(|(activity, quantity, rate_yen)| StatementLine {
            activity: activity.to_owned(),
            quantity,
            rate_yen,
            amount_yen: quantity.saturating_mul(rate_yen),
        })
        .collect();
    lines.push(StatementLine {
        activity: "storage_days".into(),
        quantity: storage_days,
        rate_yen: rates.storage_day_yen,
        amount_yen: storage_days.saturating_mul(rates.storage_day_yen),
    });
    Ok(Some(Statement {
        merchant: merchant.to_owned(),
        month: month.to_owned(),
        total_yen: lines.iter().map(|l| l.amount_yen).sum(),
        lines,
    }))
}

/// A statement's line of the trade-ins whose offer was made in the month (each inspected
/// once, whatever its number of units), and of those whose payout was settled in it.
pub const TRADE_IN_INSPECTION: &str = "trade_in_inspection";
pub const TRADE_IN_PAYOUT: &str = "trade_in_payout";

/// When a trade-in was offered, and when it was paid out (accepted, whoever accepted).
const OFFERED_AT: &str = "t.offered_ms";
const PAID_AT: &str = "CASE WHEN t.decision = 'accepted' THEN t.decided_ms END";

/// Trade-ins of `merchant` whose time `at` (one of the two above) falls within `[start,
/// end)`. Counted from their one row each, so each counts once however often an answer or a
/// sweep came.
fn trade_ins(
    conn: &Connection,
    merchant: &str,
    at: &str,
    start: i64,
    end: i64,
) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM trade_in_returns t JOIN returns r ON r.rma = t.rma
             WHERE r.merchant = ?1 AND {at} >= ?2 AND {at} < ?3"
        ),
        params![merchant, start, end],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A statement's line of the repairs quoted in the month (each inspected once, whatever its
/// number of units), and of those accepted in it (by the customer, the merchant or the
/// default at the deadline).
pub const REPAIR_INSPECTION: &str = "repair_inspection";
pub const REPAIR: &str = "repair";

/// When a repair was quoted, and when it was accepted.
const QUOTED_AT: &str = "p.quoted_ms";
const ACCEPTED_AT: &str = "CASE WHEN p.decision = 'accepted' THEN p.decided_ms END";

/// Repairs of `merchant` whose time `at` (one of the two above) falls within `[start, end)`,
/// from their one row each, so each counts once however often an answer or a sweep came.
fn repairs(
    conn: &Connection,
    merchant: &str,
    at: &str,
    start: i64,
    end: i64,
) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM repairs p
             WHERE p.merchant = ?1 AND {at} >= ?2 AND {at} < ?3"
        ),
        params![merchant, start, end],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The statement as CSV: a header, one row per activity, and the total.
pub fn csv(s: &Statement) -> String {
    let mut out = String::from("merchant,month,activity,quantity,rate_yen,amount_yen\n");
    for l in &s.lines {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            s.merchant, s.month, l.activity, l.quantity, l.rate_yen, l.amount_yen
        ));
    }
    out.push_str(&format!(
        "{},{},total,,,{}\n",
        s.merchant, s.month, s.total_yen
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_japanese_months() {
        let (start, end) = month_span("2026-11").unwrap();
        // 2026-11-01 00:00 JST is 2026-10-31 15:00 UTC.
        assert_eq!(start, 1_793_458_800_000);
        assert_eq!(end - start, 30 * DAY_MS);
        let (_, dec_end) = month_span("2026-12").unwrap();
        assert_eq!(dec_end, month_span("2027-01").unwrap().0);
        for bad in ["2026-13", "2026-1", "26-11", "november", "2026-00"] {
            assert_eq!(month_span(bad), None, "{bad}");
        }
    }
}
