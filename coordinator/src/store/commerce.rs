//! The commerce side of a return at the centre: the terms it was accepted on (order, method,
//! resolution, fees, tracking), the customer's history for the policy, carrier tracking
//! events, the refund once graded, demand per site for rebalancing, and return analytics.
//!
//! Invariants: tracking events, the refund and its confirmation each write their timeline row
//! in the same transaction as their state; the refund is computed once, when every unit
//! received for the return is graded and its parcel is closed.

use modori_shared::domain::{Grade, RmaId, SiteId, Sku};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;

use modori_runtime::sqlite::to_i64;

use super::details::Detail;
use super::StoreError;
use crate::carrier::{TrackingEvent, TrackingStatus};
use crate::policy::{self, History, PolicyConfig, ResolutionKind};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Reasons that are nobody's fault but the customer's choice: an item coming back worn on
/// one of them is a sign of wardrobing, and counts in the customer's abuse score.
pub const NO_FAULT_REASONS: [&str; 4] = ["changed_mind", "too_small", "too_large", "arrived_late"];

/// The window of `History::returns_90d`, in milliseconds.
pub const HISTORY_RECENT_MS: i64 = 90 * DAY_MS;

/// How the parcel travels from the customer.
pub const METHODS: [&str; 4] = [
    "carrier_pickup",
    "home_pickup",
    "konbini_dropoff",
    "store_dropoff",
];

/// What the commerce system asked and the policy granted, stored with the return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Terms {
    pub order_ref: Option<String>,
    pub order_date_ms: Option<i64>,
    /// One of [`METHODS`].
    pub method: String,
    pub resolution: ResolutionKind,
    /// The SKU wanted in exchange.
    pub exchange_sku: Option<Sku>,
    pub fee_yen: u64,
    pub credit_bonus_percent: u32,
    pub value_yen: u64,
    pub carrier: Option<String>,
    pub tracking: Option<String>,
    /// The policy's decision (tier, abuse score and its factors), as JSON.
    pub policy_json: String,
    /// Ship the exchange's replacement before the return arrives (a trusted customer).
    pub advance_exchange: bool,
    /// What the store saw at its counter (BORIS), as JSON.
    pub store_condition: Option<String>,
}

/// Writes the terms of a just-registered return, inside its registration's transaction.
pub fn store_terms(tx: &Transaction<'_>, rma: &RmaId, t: &Terms) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE returns SET order_ref = ?2, order_date_ms = ?3, method = ?4, resolution = ?5,
                exchange_sku = ?6, fee_yen = ?7, credit_bonus_percent = ?8, value_yen = ?9,
                carrier = ?10, tracking = ?11, policy_json = ?12, store_condition = ?13
         WHERE rma = ?1",
        params![
            rma.as_str(),
            t.order_ref,
            t.order_date_ms,
            t.method,
            t.resolution.as_str(),
            t.exchange_sku.as_ref().map(Sku::as_str),
            to_i64(t.fee_yen),
            t.credit_bonus_percent,
            to_i64(t.value_yen),
            t.carrier,
            t.tracking,
            t.policy_json,
            t.store_condition
        ],
    )?;
    Ok(())
}

/// The customer's past returns, as the policy weighs them: for the API, BORIS and the
/// counter alike, and for the dashboard's abuse flags. A receipt that was not what the
/// return announced (a wrong item, more than announced) or a shortage is a mismatch.
pub fn history(conn: &Connection, customer_ref: &str, now_ms: i64) -> Result<History, StoreError> {
    let returns_total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM returns WHERE customer_ref = ?1",
        [customer_ref],
        |r| r.get(0),
    )?;
    let returns_90d: i64 = conn.query_row(
        "SELECT COUNT(*) FROM returns WHERE customer_ref = ?1 AND created_ms >= ?2",
        params![customer_ref, now_ms - HISTORY_RECENT_MS],
        |r| r.get(0),
    )?;
    let used_on_no_fault: i64 = conn.query_row(
        "SELECT COUNT(*) FROM units u JOIN returns r ON u.rma = r.rma
         WHERE r.customer_ref = ?1 AND u.grade IN ('C', 'D', 'X')
           AND EXISTS (SELECT 1 FROM json_each(r.lines_json) l
                       WHERE json_extract(l.value, '$.sku') = u.sku
                         AND json_extract(l.value, '$.reason') IN (?2, ?3, ?4, ?5))",
        params![
            customer_ref,
            NO_FAULT_REASONS[0],
            NO_FAULT_REASONS[1],
            NO_FAULT_REASONS[2],
            NO_FAULT_REASONS[3]
        ],
        |r| r.get(0),
    )?;
    let receipt_mismatches: i64 = conn.query_row(
        "SELECT COUNT(*) FROM returns r WHERE r.customer_ref = ?1 AND (
            (r.shortages_json IS NOT NULL AND r.shortages_json != '[]')
            OR EXISTS (SELECT 1 FROM units u WHERE (u.rma = r.rma OR u.claimed_rma = r.rma)
                       AND u.receipt IN ('wrong_item', 'over')))",
        [customer_ref],
        |r| r.get(0),
    )?;
    let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(History {
        returns_90d: n(returns_90d),
        returns_total: n(returns_total),
        used_on_no_fault: n(used_on_no_fault),
        receipt_mismatches: n(receipt_mismatches),
    })
}

/// Units routed to each site since `since_ms` (the start of the day), for routing by load:
/// capacity is in units, so a return counts as many times as it has units.
pub fn routed_since(conn: &Connection, since_ms: i64) -> Result<Vec<(String, u32)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.site, SUM(json_extract(l.value, '$.qty'))
         FROM returns r, json_each(r.lines_json) l
         WHERE r.created_ms >= ?1 GROUP BY r.site",
    )?;
    let rows = stmt.query_map([since_ms], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    rows.map(|r| r.map(|(s, n)| (s, u32::try_from(n).unwrap_or(u32::MAX))))
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// What one carrier post did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ingested {
    pub n_applied: usize,
    /// Tracking numbers no return carries.
    pub unknown_tracking: Vec<String>,
}

/// Applies tracking events: each becomes a timeline row of the return carrying the number,
/// and moves its transit status forward (never back: events arrive out of order).
pub fn ingest_tracking(
    conn: &mut Connection,
    carrier: &str,
    events: &[TrackingEvent],
    now_ms: i64,
) -> Result<Ingested, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = Ingested::default();
    for e in events {
        let found: Option<(String, String, Option<String>)> = tx
            .query_row(
                "SELECT rma, site, transit_status FROM returns WHERE tracking = ?1 AND carrier = ?2",
                params![e.tracking, carrier],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((rma, site, current)) = found else {
            if !out.unknown_tracking.contains(&e.tracking) {
                out.unknown_tracking.push(e.tracking.clone());
            }
            continue;
        };
        let rank = |s: &str| match s {
            "picked_up" => 1,
            "in_transit" => 2,
            "delivered_to_site" => 3,
            _ => 0,
        };
        let newer = current.as_deref().map_or(0, rank) < rank(e.status.as_str())
            || e.status == TrackingStatus::Exception;
        if newer {
            tx.execute(
                "UPDATE returns SET transit_status = ?2 WHERE rma = ?1",
                params![rma, e.status.as_str()],
            )?;
        }
        let detail = Detail::carrier_update(
            carrier,
            &e.tracking,
            e.status.as_str(),
            e.location.as_deref(),
        );
        super::lifecycle::insert_event(
            &tx,
            &rma,
            &format!("carrier_{}", e.status.as_str()),
            Some(&site),
            None,
            &detail,
            e.at_ms,
            now_ms,
        )?;
        out.n_applied += 1;
    }
    tx.commit()?;
    Ok(out)
}

/// Returns refunds computed per pass at most.
pub const REFUNDS_PER_PASS_MAX: usize = 256;

/// Computes the refund of every received return whose units are all graded: each unit's
/// price by its grade's share, less the fee, plus the store-credit bonus; a trade-in's offer
/// instead (`trade_in_returns::offer_graded`), a repair's quote (`repairs::quote_graded`).
/// Returns how many.
pub fn compute_refunds(
    conn: &mut Connection,
    config: &PolicyConfig,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ready: Vec<(String, String, Option<String>, i64, String, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT r.rma, r.site, r.merchant, COALESCE(r.fee_yen, 0), COALESCE(r.resolution, 'refund'),
                    COALESCE(r.credit_bonus_percent, 0)
             FROM returns r
             WHERE r.status = 'received' AND r.refund_yen IS NULL
               AND COALESCE(r.resolution, 'refund') != 'exchange'
               AND NOT EXISTS (SELECT 1 FROM trade_in_returns t WHERE t.rma = r.rma)
               AND NOT EXISTS (SELECT 1 FROM repairs p WHERE p.rma = r.rma)
               AND EXISTS (SELECT 1 FROM units u WHERE u.rma = r.rma AND u.state != 'voided')
               AND NOT EXISTS (SELECT 1 FROM units u WHERE u.rma = r.rma AND u.state != 'voided'
                               AND u.grade IS NULL)
             LIMIT ?1",
        )?;
        let rows = stmt.query_map([to_i64(REFUNDS_PER_PASS_MAX as u64)], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let n = ready.len();
    for (rma, site, merchant, fee, resolution, bonus) in ready {
        let units: Vec<(String, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT sku, grade FROM units WHERE rma = ?1 AND state != 'voided' AND grade IS NOT NULL",
            )?;
            let rows = stmt.query_map([&rma], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut graded = Vec::with_capacity(units.len());
        for (sku, grade) in units {
            let price =
                super::catalog::product(&mut super::sql::sqlite(&tx), merchant.as_deref(), &sku)?
                    .map_or(0, |p| p.0);
            graded.push((price, Grade::parse(&grade)?));
        }
        let store_credit = resolution.parse() == Ok(ResolutionKind::StoreCredit);
        let bonus = store_credit.then(|| u32::try_from(bonus).unwrap_or(0));
        let amount =
            policy::refund_after_grading(config, &graded, u64::try_from(fee).unwrap_or(0), bonus);
        tx.execute(
            "UPDATE returns SET refund_yen = ?2 WHERE rma = ?1",
            params![rma, to_i64(amount)],
        )?;
        let detail = Detail::refund_after_grading(store_credit, amount, graded.len(), fee);
        super::lifecycle::insert_event(
            &tx,
            &rma,
            "refund_computed",
            Some(&site),
            None,
            &detail,
            now_ms,
            now_ms,
        )?;
    }
    // A trade-in is paid what its grade is offered, not refunded.
    let n_offered = super::trade_in_returns::offer_graded(&tx, &config.trade_in, now_ms)?;
    // A repair is quoted from its defects, not refunded.
    let n_quoted = super::repairs::quote_graded(&tx, &config.repair, now_ms)?;
    tx.commit()?;
    Ok(n + n_offered + n_quoted)
}

/// The merchant confirms the refund was paid.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirm {
    Confirmed { amount_yen: i64 },
    AlreadyConfirmed { amount_yen: i64 },
    NotComputed,
    NotFound,
}

pub fn confirm_refund(
    conn: &mut Connection,
    rma: &RmaId,
    now_ms: i64,
) -> Result<Confirm, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row: Option<(String, Option<i64>, Option<i64>)> = tx
        .query_row(
            "SELECT site, refund_yen, refund_confirmed_ms FROM returns WHERE rma = ?1",
            [rma.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let outcome = match row {
        None => Confirm::NotFound,
        Some((_, None, _)) => Confirm::NotComputed,
        Some((_, Some(amount_yen), Some(_))) => Confirm::AlreadyConfirmed { amount_yen },
        Some((site, Some(amount_yen), None)) => {
            tx.execute(
                "UPDATE returns SET refund_confirmed_ms = ?2 WHERE rma = ?1",
                params![rma.as_str(), now_ms],
            )?;
            super::lifecycle::insert_event(
                &tx,
                rma.as_str(),
                "refunded",
                Some(&site),
                None,
                &Detail::refund_paid(amount_yen),
                now_ms,
                now_ms,
            )?;
            Confirm::Confirmed { amount_yen }
        }
    };
    tx.commit()?;
    Ok(outcome)
}

/// Units of `sku` each site sells within the rebalancing horizon (replaces the site's rows).
pub fn put_demand(
    conn: &mut Connection,
    site: &SiteId,
    demand: &[(Sku, u32)],
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM demand WHERE site = ?1", [site.as_str()])?;
    for (sku, units) in demand {
        tx.execute(
            "INSERT INTO demand (site, sku, units) VALUES (?1, ?2, ?3)",
            params![site.as_str(), sku.as_str(), units],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Reasons counted by SKU (and its category), for root-cause analysis.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ReasonCount {
    pub sku: String,
    pub category: Option<String>,
    pub reason: String,
    pub units: i64,
}

pub fn reasons(
    conn: &Connection,
    merchant: Option<&str>,
    limit: usize,
) -> Result<Vec<ReasonCount>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT json_extract(l.value, '$.sku') AS sku,
                (SELECT category FROM catalog c WHERE c.sku = json_extract(l.value, '$.sku')
                   AND (r.merchant IS NULL OR c.merchant = r.merchant) LIMIT 1),
                json_extract(l.value, '$.reason') AS reason,
                SUM(json_extract(l.value, '$.qty')) AS units
         FROM returns r, json_each(r.lines_json) l
         WHERE ?1 IS NULL OR r.merchant = ?1
         GROUP BY sku, reason ORDER BY units DESC, sku, reason LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![merchant, to_i64(limit as u64)], |r| {
        Ok(ReasonCount {
            sku: r.get(0)?,
            category: r.get(1)?,
            reason: r.get(2)?,
            units: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether a customer reference has any return at all (its analytics are then meaningful).
pub fn customer_known(conn: &Connection, customer_ref: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM returns WHERE customer_ref = ?1 LIMIT 1",
            [customer_ref],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Quarantined units looked at per pass at most.
pub const MATCHES_PER_PASS_MAX: usize = 256;

/// Matches quarantined units to returns when the match is certain: what was found with the
/// parcel (its reference) is exactly one return's tracking number, order reference, RMA,
/// customer reference or customer name, and that return lists the unit's SKU. Each match is recorded and sent to the unit's site
/// (`MatchUnidentified`); an uncertain one is left for ops. Returns the commands queued.
/// `since_ms`: only units received since (after a batch); all of them when `None` (the
/// periodic pass, for returns registered after their parcel arrived).
pub fn match_quarantined(
    conn: &mut Connection,
    now_ms: i64,
    since_ms: Option<i64>,
) -> Result<super::Queued, StoreError> {
    let candidates: Vec<(String, String)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT u.lpn, (SELECT r.rma FROM returns r
                            WHERE (r.tracking = u.parcel_ref OR r.order_ref = u.parcel_ref
                                   OR r.rma = u.parcel_ref OR r.customer_ref = u.parcel_ref
                                   OR r.customer_name = u.parcel_ref)
                              AND EXISTS (SELECT 1 FROM json_each(r.lines_json) l
                                          WHERE json_extract(l.value, '$.sku') = u.sku))
             FROM units u
             WHERE u.quarantine = 1 AND u.parcel_ref IS NOT NULL AND u.receipt = 'unidentified'
               AND u.updated_ms >= ?2 AND u.state != 'voided'
               AND (SELECT COUNT(*) FROM returns r
                    WHERE (r.tracking = u.parcel_ref OR r.order_ref = u.parcel_ref
                           OR r.rma = u.parcel_ref OR r.customer_ref = u.parcel_ref
                           OR r.customer_name = u.parcel_ref)
                      AND EXISTS (SELECT 1 FROM json_each(r.lines_json) l
                                  WHERE json_extract(l.value, '$.sku') = u.sku)) = 1
             LIMIT ?1",
        )?;
        let rows = stmt.query_map(
            params![
                to_i64(MATCHES_PER_PASS_MAX as u64),
                since_ms.unwrap_or(i64::MIN)
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    let mut queued = super::Queued::none();
    for (lpn, rma) in candidates {
        let lpn = modori_shared::domain::Lpn::new(lpn)?;
        let rma = RmaId::new(rma)?;
        match super::match_unidentified(conn, &lpn, &rma, now_ms) {
            Ok((_, told)) => {
                tracing::info!(lpn = %lpn, rma = %rma, "quarantined unit matched by its parcel reference");
                queued.extend(told);
            }
            Err(super::MatchError::Store(e)) => return Err(e),
            // Moved on since it was read (matched by ops meanwhile): nothing to do.
            Err(_) => {}
        }
    }
    Ok(queued)
}

/// A unit of a return and the centre's disposition decision for it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct UnitDecision {
    pub lpn: String,
    pub site: String,
    pub sku: String,
    pub state: String,
    pub grade: Option<String>,
    /// The disposition the value model chose, and why (every option priced).
    pub decided: Option<String>,
    pub decision_why: Option<String>,
}

/// What was decided for a return beyond its timeline: the routing candidates, its terms, and
/// each unit's disposition decision.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decisions {
    pub candidates: Option<serde_json::Value>,
    pub terms: Option<serde_json::Value>,
    pub units: Vec<UnitDecision>,
    pub reservation: Option<super::reservations::Reservation>,
}

pub fn decisions(conn: &Connection, rma: &RmaId) -> Result<Decisions, StoreError> {
    let row: Option<(Option<String>, serde_json::Value)> = conn
        .query_row(
            "SELECT routing_candidates, order_ref, order_date_ms, method, resolution, exchange_sku,
                    fee_yen, credit_bonus_percent, value_yen, carrier, tracking, transit_status,
                    refund_yen, refund_confirmed_ms, policy_json, store_condition, returnless
             FROM returns WHERE rma = ?1",
            [rma.as_str()],
            |r| {
                let policy: Option<String> = r.get(14)?;
                Ok((
                    r.get(0)?,
                    serde_json::json!({
                        "order_ref": r.get::<_, Option<String>>(1)?,
                        "order_date_ms": r.get::<_, Option<i64>>(2)?,
                        "method": r.get::<_, Option<String>>(3)?,
                        "resolution": r.get::<_, Option<String>>(4)?,
                        "exchange_sku": r.get::<_, Option<String>>(5)?,
                        "fee_yen": r.get::<_, Option<i64>>(6)?,
                        "store_credit_bonus_percent": r.get::<_, Option<i64>>(7)?,
                        "value_yen": r.get::<_, Option<i64>>(8)?,
                        "carrier": r.get::<_, Option<String>>(9)?,
                        "tracking": r.get::<_, Option<String>>(10)?,
                        "transit_status": r.get::<_, Option<String>>(11)?,
                        "refund_yen": r.get::<_, Option<i64>>(12)?,
                        "refund_confirmed_ms": r.get::<_, Option<i64>>(13)?,
                        "policy": policy
                            .filter(|p| !p.is_empty())
                            .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok()),
                        "store_condition": r.get::<_, Option<String>>(15)?
                            .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok()),
                        "returnless": r.get::<_, Option<String>>(16)?,
                    }),
                ))
            },
        )
        .optional()?;
    let Some((candidates, terms)) = row else {
        return Ok(Decisions::default());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT lpn, site, sku, state, grade, decided, decision_why FROM units
         WHERE rma = ?1 ORDER BY lpn",
    )?;
    let units = stmt
        .query_map([rma.as_str()], |r| {
            Ok(UnitDecision {
                lpn: r.get(0)?,
                site: r.get(1)?,
                sku: r.get(2)?,
                state: r.get(3)?,
                grade: r.get(4)?,
                decided: r.get(5)?,
                decision_why: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Decisions {
        candidates: candidates.and_then(|c| serde_json::from_str(&c).ok()),
        terms: Some(terms),
        units,
        reservation: super::reservations::reservation(&mut super::sql::sqlite(conn), rma)?,
    })
}

/// Parcels the simulated carrier moves per pass at most.
pub const SIMULATED_PARCELS_PER_PASS_MAX: usize = 500;

/// The simulated carrier moves every parcel it carries along (`carrier::simulated_progress`
/// over `transit_ms` from registration) and posts what happened since its last pass. For the
/// demo; returns how many events were applied.
pub fn simulate_carrier(
    conn: &mut Connection,
    now_ms: i64,
    transit_ms: i64,
) -> Result<usize, StoreError> {
    let moving: Vec<(String, i64, Option<String>)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT tracking, created_ms, transit_status FROM returns
             WHERE carrier = 'sim' AND tracking IS NOT NULL AND status = 'expected'
               AND COALESCE(transit_status, '') != 'delivered_to_site'
             ORDER BY created_ms LIMIT ?1",
        )?;
        let rows = stmt.query_map([to_i64(SIMULATED_PARCELS_PER_PASS_MAX as u64)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let done = |current: &Option<String>, s: TrackingStatus| match current.as_deref() {
        Some("delivered_to_site") => true,
        Some("in_transit") => s != TrackingStatus::DeliveredToSite,
        Some("picked_up") => s == TrackingStatus::PickedUp,
        _ => false,
    };
    let events: Vec<TrackingEvent> = moving
        .into_iter()
        .flat_map(|(tracking, created_ms, current)| {
            crate::carrier::simulated_progress(created_ms, now_ms, transit_ms)
                .into_iter()
                .filter(|(s, _)| !done(&current, *s))
                .map(|(status, at_ms)| TrackingEvent {
                    tracking: tracking.clone(),
                    status,
                    at_ms,
                    location: None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(ingest_tracking(conn, "sim", &events, now_ms)?.n_applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{init, migrations};

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms,
                                  status, carrier, tracking)
             VALUES ('RMA-1', 'osaka', 'store:st-x', '[]', '', 1, 0, 'expected', 'sim', '123456789013');",
        )
        .unwrap();
        conn
    }

    fn transit(conn: &Connection) -> Option<String> {
        conn.query_row(
            "SELECT transit_status FROM returns WHERE rma = 'RMA-1'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn the_simulated_carrier_moves_a_parcel_along_once_per_step() {
        let mut conn = open();
        assert_eq!(simulate_carrier(&mut conn, 40_000, 60_000).unwrap(), 2);
        assert_eq!(transit(&conn).as_deref(), Some("in_transit"));
        assert_eq!(
            simulate_carrier(&mut conn, 45_000, 60_000).unwrap(),
            0,
            "nothing new"
        );
        assert_eq!(simulate_carrier(&mut conn, 61_000, 60_000).unwrap(), 1);
        assert_eq!(transit(&conn).as_deref(), Some("delivered_to_site"));
        assert_eq!(simulate_carrier(&mut conn, 99_000, 60_000).unwrap(), 0);
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM return_events WHERE kind LIKE 'carrier_%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn a_quarantined_unit_is_matched_only_when_one_return_fits() {
        let mut conn = open();
        conn.execute_batch(
            "UPDATE returns SET lines_json = '[{\"sku\":\"TEE\",\"qty\":1,\"reason\":\"other\"}]',
                                customer_name = '山田 太郎', order_ref = 'ORD-9';
             INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms, status, order_ref)
               VALUES ('RMA-2', 'osaka', 'x', '[{\"sku\":\"CAP\",\"qty\":1,\"reason\":\"other\"}]', '', 2, 0, 'expected', 'ORD-9');
             INSERT INTO units (lpn, site, sku, state, updated_ms, receipt, parcel_ref, quarantine) VALUES
               ('LPN-A', 'osaka', 'TEE', 'received', 0, 'unidentified', '山田 太郎', 1),
               ('LPN-B', 'osaka', 'CAP', 'received', 0, 'unidentified', 'ORD-9', 1),
               ('LPN-C', 'osaka', 'SOCK', 'received', 0, 'unidentified', 'ORD-9', 1),
               ('LPN-D', 'osaka', 'TEE', 'received', 0, 'unidentified', 'nobody', 1);",
        )
        .unwrap();
        let told = match_quarantined(&mut conn, 10, None).unwrap();
        assert_eq!(told.len(), 2, "{told:?}");
        let matched = |lpn: &str| -> Option<String> {
            conn.query_row(
                "SELECT rma FROM units WHERE lpn = ?1 AND quarantine = 0",
                [lpn],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
            .flatten()
        };
        assert_eq!(
            matched("LPN-A").as_deref(),
            Some("RMA-1"),
            "by the customer's name"
        );
        assert_eq!(
            matched("LPN-B").as_deref(),
            Some("RMA-2"),
            "the order's return listing a cap"
        );
        assert_eq!(
            matched("LPN-C"),
            None,
            "no return of that order lists socks"
        );
        assert_eq!(matched("LPN-D"), None);
    }

    #[test]
    fn a_late_event_is_recorded_but_never_moves_the_status_back() {
        let mut conn = open();
        let event = |status| TrackingEvent {
            tracking: "123456789013".into(),
            status,
            at_ms: 1,
            location: None,
        };
        let out = ingest_tracking(
            &mut conn,
            "sim",
            &[event(TrackingStatus::DeliveredToSite)],
            5,
        )
        .unwrap();
        assert_eq!(out.n_applied, 1);
        ingest_tracking(&mut conn, "sim", &[event(TrackingStatus::PickedUp)], 6).unwrap();
        assert_eq!(transit(&conn).as_deref(), Some("delivered_to_site"));
        let other =
            ingest_tracking(&mut conn, "yamato", &[event(TrackingStatus::PickedUp)], 7).unwrap();
        assert_eq!(
            other.unknown_tracking,
            ["123456789013"],
            "numbers are per carrier"
        );
    }
}
