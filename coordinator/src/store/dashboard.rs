//! What the ops dashboard and the store counter read: counts per step and site, throughput,
//! return reasons, grades, recovered value, customers' histories, anomalies with their
//! return, a return's units with the centre's decisions, and a store's waiting returns.
//!
//! Read-only. Every list is capped by its caller's `limit`; the counts run over indexes made
//! for them (`units_state_site`, `units_transfer_to`, `returns_created`,
//! `returns_origin_store`), and the ops counted per minute (`ops_per_minute`).

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use modori_shared::station::WAITING_TO_BE_MATCHED_SQL;

use super::{to_i64, to_u64, StoreError};

/// Units and returns at each step, fleet-wide.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Pipeline {
    /// Returns registered and routed, nothing of them arrived yet.
    pub expected: u64,
    /// Returns whose parcel is being received (some units arrived).
    pub receiving: u64,
    /// On their way: units transferred between sites, and returns whose parcel the carrier
    /// has picked up and not delivered yet.
    pub in_transit: u64,
    /// Units received and waiting for grading (identified ones).
    pub received: u64,
    /// Units received unidentified, waiting to be matched to a return.
    pub quarantine: u64,
    /// Units graded, waiting for a disposition.
    pub graded: u64,
    /// Units with each disposition still at their site (to put away or in a bin).
    pub disposed: BTreeMap<String, u64>,
    /// Units that left their site, by disposition.
    pub departed: BTreeMap<String, u64>,
}

/// What waits at one site, step by step.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SiteBacklog {
    pub expected: u64,
    pub receiving: u64,
    pub received: u64,
    pub quarantine: u64,
    pub graded: u64,
    /// Disposed, not put away or shipped yet.
    pub disposed: u64,
    /// In a bin.
    pub placed: u64,
    /// Transfers on their way to this site.
    pub inbound: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    pub pipeline: Pipeline,
    pub sites: BTreeMap<String, SiteBacklog>,
    /// Returns registered at each store and not arrived at their site yet.
    pub stores_waiting: BTreeMap<String, u64>,
    /// Totes planned at each store, waiting for pickup.
    pub stores_totes: BTreeMap<String, u64>,
    /// Per store: its counter's condition checks against the sites' grades.
    pub store_checks: BTreeMap<String, super::counter_checks::StoreCheck>,
    pub n_anomalies: u64,
}

/// The counts of every step, per site and fleet-wide.
pub fn counts(conn: &Connection) -> Result<Counts, StoreError> {
    let mut out = Counts::default();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT site, status, COUNT(*) FROM returns WHERE status IN ('expected', 'receiving')
             GROUP BY site, status",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (site, status, n) = row?;
            let n = to_u64(n);
            let backlog = out.sites.entry(site).or_default();
            if status == "expected" {
                backlog.expected += n;
                out.pipeline.expected += n;
            } else {
                backlog.receiving += n;
                out.pipeline.receiving += n;
            }
        }
    }
    {
        // Departed units sort first (`departed:…`) and voided ones last: the range leaves
        // both out of the scan.
        let mut stmt = conn.prepare_cached(
            "SELECT site, state, quarantine, COUNT(*) FROM units
             WHERE state >= 'disposed:' AND state < 'voided'
             GROUP BY site, state, quarantine",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (site, state, quarantine, n) = row?;
            let n = to_u64(n);
            let backlog = out.sites.entry(site).or_default();
            let p = &mut out.pipeline;
            let (step, disposition) = state.split_once(':').unwrap_or((state.as_str(), ""));
            // Quarantined units are counted below, by the one definition: every one in this
            // range waits to be matched, so none counts twice.
            match (quarantine != 0, step) {
                (true, _) => {}
                (false, "received") => {
                    backlog.received += n;
                    p.received += n;
                }
                (false, "graded") => {
                    backlog.graded += n;
                    p.graded += n;
                }
                (false, "disposed") => {
                    backlog.disposed += n;
                    *p.disposed.entry(disposition.to_owned()).or_default() += n;
                }
                (false, "placed") => {
                    backlog.placed += n;
                    *p.disposed.entry(disposition.to_owned()).or_default() += n;
                }
                _ => {}
            }
        }
    }
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT site, COUNT(*) FROM units WHERE {WAITING_TO_BE_MATCHED_SQL} GROUP BY site"
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (site, n) = row?;
            let n = to_u64(n);
            out.sites.entry(site).or_default().quarantine += n;
            out.pipeline.quarantine += n;
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT state, COUNT(*) FROM units WHERE state >= 'departed:' AND state < 'departed;'
             GROUP BY state",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let disposition = state.split_once(':').map_or("", |(_, d)| d).to_owned();
            *out.pipeline.departed.entry(disposition).or_default() += to_u64(n);
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT transfer_to, COUNT(*) FROM units WHERE transfer_to IS NOT NULL GROUP BY transfer_to",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (site, n) = row?;
            out.sites.entry(site).or_default().inbound += to_u64(n);
            out.pipeline.in_transit += to_u64(n);
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT site, COUNT(*) FROM returns
             WHERE transit_status IN ('picked_up', 'in_transit') AND status = 'expected'
             GROUP BY site",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (site, n) = row?;
            out.sites.entry(site).or_default().inbound += to_u64(n);
            out.pipeline.in_transit += to_u64(n);
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT origin_store, COUNT(*) FROM returns
             WHERE origin_store IS NOT NULL AND status = 'expected' GROUP BY origin_store",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (store, n) = row?;
            out.stores_waiting.insert(store, to_u64(n));
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT store, COUNT(*) FROM totes WHERE status = 'planned' GROUP BY store",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (store, n) = row?;
            out.stores_totes.insert(store, to_u64(n));
        }
    }
    for check in super::counter_checks::store_checks(&mut super::sql::sqlite(conn))? {
        out.store_checks.insert(check.store.clone(), check);
    }
    out.n_anomalies = to_u64(conn.query_row("SELECT COUNT(*) FROM anomalies", [], |r| r.get(0))?);
    Ok(out)
}

/// Events per time bucket: ops applied by kind, and returns registered (`registered`).
/// Rows are (bucket start in Unix ms, kind, count), oldest first. Ops are counted per minute
/// (`tallies`): buckets and `since_ms` are exact in whole minutes.
pub fn throughput(
    conn: &Connection,
    since_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<(i64, String, u64)>, StoreError> {
    let bucket_ms = bucket_ms.max(1);
    let mut out = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT minute_ms / ?2, kind, SUM(n) FROM ops_per_minute WHERE minute_ms >= ?1
         GROUP BY 1, 2",
    )?;
    let rows = stmt.query_map(params![since_ms, bucket_ms], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (b, kind, n) = row?;
        out.push((b * bucket_ms, kind, to_u64(n)));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT created_ms / ?2, COUNT(*) FROM returns WHERE created_ms >= ?1 GROUP BY 1",
    )?;
    let rows = stmt.query_map(params![since_ms, bucket_ms], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (b, n) = row?;
        out.push((b * bucket_ms, "registered".to_owned(), to_u64(n)));
    }
    out.sort();
    Ok(out)
}

/// Units of returns with one reason, grouped by a key (a SKU or a category).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    pub key: String,
    pub reason: String,
    pub qty: u64,
    /// A category's names (`category_names`), when the merchants gave them; the page shows
    /// the code without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_ja: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
}

/// The most frequent (key, reason) pairs of the returns registered since `since_ms`, keyed by
/// SKU (`by_category` false) or by the catalogue's category.
pub fn top_reasons(
    conn: &Connection,
    since_ms: i64,
    by_category: bool,
    limit: usize,
) -> Result<Vec<ReasonCount>, StoreError> {
    let key = if by_category {
        "COALESCE(c.category, 'uncatalogued')"
    } else {
        "json_extract(j.value, '$.sku')"
    };
    let sql = format!(
        "SELECT {key}, json_extract(j.value, '$.reason'), SUM(json_extract(j.value, '$.qty'))
         FROM returns r, json_each(r.lines_json) j
         LEFT JOIN catalog c ON c.merchant = r.merchant AND c.sku = json_extract(j.value, '$.sku')
         WHERE r.created_ms >= ?1
         GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![since_ms, to_i64(limit as u64)], |r| {
        Ok(ReasonCount {
            key: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
            reason: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            qty: to_u64(r.get::<_, Option<i64>>(2)?.unwrap_or(0)),
            name_ja: None,
            name_en: None,
        })
    })?;
    let mut out: Vec<ReasonCount> = rows.collect::<Result<_, _>>()?;
    if by_category {
        let names = super::category_names::fleet_wide(&mut super::sql::sqlite(conn))?;
        for r in &mut out {
            if let Some(n) = names.get(&r.key) {
                r.name_ja.clone_from(&n.ja);
                r.name_en.clone_from(&n.en);
            }
        }
    }
    Ok(out)
}

/// Graded units by grade (their current grade), fleet-wide.
pub fn grade_mix(conn: &Connection) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT grade, COUNT(*) FROM units WHERE grade IS NOT NULL AND state != 'voided' GROUP BY grade",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (g, n) = row?;
        out.insert(g, to_u64(n));
    }
    Ok(out)
}

/// Disposed units grouped by (disposition, grade): how many, and the sum of their list
/// prices where the catalogue knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DisposedValue {
    pub disposition: String,
    pub grade: String,
    pub n_units: u64,
    pub list_price_yen: u64,
}

pub fn disposed_values(conn: &Connection) -> Result<Vec<DisposedValue>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT substr(u.state, instr(u.state, ':') + 1), COALESCE(u.grade, ''), COUNT(*),
                COALESCE(SUM(c.price_yen), 0)
         FROM units u
         LEFT JOIN returns r ON r.rma = u.rma
         LEFT JOIN catalog c ON c.merchant = r.merchant AND c.sku = u.sku
         WHERE u.state LIKE 'disposed:%' OR u.state LIKE 'placed:%' OR u.state LIKE 'departed:%'
         GROUP BY 1, 2",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(DisposedValue {
            disposition: r.get(0)?,
            grade: r.get(1)?,
            n_units: to_u64(r.get(2)?),
            list_price_yen: to_u64(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Resale listings: (units sold, yen realised, units listed now, yen asked now).
pub fn resale_totals(conn: &Connection) -> Result<(u64, u64, u64, u64), StoreError> {
    let (n_sold, sold): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(price_yen), 0) FROM listings WHERE status = 'sold'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // A unit is listed on several channels at once: count it once, at its best price.
    let (n_listed, listed): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(p), 0) FROM
           (SELECT MAX(price_yen) AS p FROM listings WHERE status = 'listed' GROUP BY lpn)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((
        to_u64(n_sold),
        to_u64(sold),
        to_u64(n_listed),
        to_u64(listed),
    ))
}

/// The customers with the most returns since `since_ms` (at least `min_returns`), and those
/// who sent a unit back worn (graded C or worse) on a no-fault reason: whose abuse score is
/// worth computing. At most `limit`. The recent returns are read first and their units by
/// `units_rma` (`CROSS JOIN` keeps that order: `units_rma` holds only units with a return,
/// which could otherwise look cheaper to scan whole).
pub fn abuse_candidates(
    conn: &Connection,
    since_ms: i64,
    min_returns: u32,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT customer_ref FROM returns
         WHERE created_ms >= ?1 AND customer_ref IS NOT NULL AND customer_ref NOT LIKE 'anon-%'
         GROUP BY customer_ref HAVING COUNT(*) >= ?2
         UNION
         SELECT r.customer_ref FROM returns r CROSS JOIN units u ON u.rma = r.rma
         WHERE u.grade IN ('C', 'D', 'X') AND r.created_ms >= ?1
           AND r.customer_ref IS NOT NULL AND r.customer_ref NOT LIKE 'anon-%'
         LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![since_ms, min_returns, to_i64(limit as u64)], |r| {
        r.get(0)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An anomaly with the return of its unit, when it has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnomalyView {
    pub id: i64,
    pub site: String,
    pub kind: String,
    pub seq: Option<i64>,
    pub lpn: Option<String>,
    pub rma: Option<String>,
    pub detail: String,
    /// The detail's code and parameters (`details`); none for an anomaly recorded before.
    pub detail_code: Option<String>,
    pub detail_params: Option<std::collections::BTreeMap<String, String>>,
    pub at_ms: i64,
}

/// The newest anomalies, newest first.
pub fn anomalies(conn: &Connection, limit: usize) -> Result<Vec<AnomalyView>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.site, a.kind, a.seq, a.lpn, u.rma, a.detail, a.at_ms, a.detail_code,
                a.detail_params
         FROM anomalies a LEFT JOIN units u ON u.lpn = a.lpn
         ORDER BY a.id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([to_i64(limit as u64)], |r| {
        Ok(AnomalyView {
            id: r.get(0)?,
            site: r.get(1)?,
            kind: r.get(2)?,
            seq: r.get(3)?,
            lpn: r.get(4)?,
            rma: r.get(5)?,
            detail: r.get(6)?,
            at_ms: r.get(7)?,
            detail_code: r.get(8)?,
            detail_params: super::details::read_params(r.get(9)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One unit of a return, with the centre's disposition decision and its reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnitDecision {
    pub lpn: String,
    pub site: String,
    pub sku: String,
    pub state: String,
    pub receipt: String,
    pub grade: Option<String>,
    pub defects: Option<String>,
    pub tested: Option<bool>,
    pub bin: Option<String>,
    pub transfer_to: Option<String>,
    pub decided: Option<String>,
    pub decision_why: Option<String>,
}

/// The units received for `rma` (at most `limit`).
pub fn units_of_return(
    conn: &Connection,
    rma: &str,
    limit: usize,
) -> Result<Vec<UnitDecision>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT lpn, site, sku, state, receipt, grade, defects, tested, bin, transfer_to,
                decided, decision_why
         FROM units WHERE rma = ?1 ORDER BY lpn LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![rma, to_i64(limit as u64)], |r| {
        Ok(UnitDecision {
            lpn: r.get(0)?,
            site: r.get(1)?,
            sku: r.get(2)?,
            state: r.get(3)?,
            receipt: r.get(4)?,
            grade: r.get(5)?,
            defects: r.get::<_, Option<String>>(6)?.filter(|d| !d.is_empty()),
            tested: r.get(7)?,
            bin: r.get(8)?,
            transfer_to: r.get(9)?,
            decided: r.get(10)?,
            decision_why: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A return registered at a store, as its counter lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreReturn {
    pub rma: String,
    pub site: String,
    pub status: String,
    pub merchant: Option<String>,
    pub order_ref: Option<String>,
    pub lines: serde_json::Value,
    pub created_ms: i64,
}

/// Returns registered at `store` that have not reached their site yet, newest first.
pub fn store_waiting(
    conn: &Connection,
    store: &str,
    limit: usize,
) -> Result<Vec<StoreReturn>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT rma, site, status, merchant, order_ref, lines_json, created_ms FROM returns
         WHERE origin_store = ?1 AND status = 'expected' ORDER BY created_ms DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![store, to_i64(limit as u64)], |r| {
        Ok(StoreReturn {
            rma: r.get(0)?,
            site: r.get(1)?,
            status: r.get(2)?,
            merchant: r.get(3)?,
            order_ref: r.get(4)?,
            lines: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
            created_ms: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Returns registered at `store` that have not reached their site yet, or were registered
/// since `since_ms` (the start of the store's day) wherever they are now; newest first.
pub fn store_recent(
    conn: &Connection,
    store: &str,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<StoreReturn>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT rma, site, status, merchant, order_ref, lines_json, created_ms FROM returns
         WHERE origin_store = ?1 AND (status = 'expected' OR created_ms >= ?2)
         ORDER BY created_ms DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![store, since_ms, to_i64(limit as u64)], |r| {
        Ok(StoreReturn {
            rma: r.get(0)?,
            site: r.get(1)?,
            status: r.get(2)?,
            merchant: r.get(3)?,
            order_ref: r.get(4)?,
            lines: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
            created_ms: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What the catalogue says of a merchant's SKU: (price, final sale, category).
pub fn catalog_item(
    conn: &Connection,
    merchant: &str,
    sku: &str,
) -> Result<Option<(u64, bool, String)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT price_yen, final_sale, category FROM catalog WHERE merchant = ?1 AND sku = ?2",
            params![merchant, sku],
            |r| Ok((to_u64(r.get(0)?), r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{apply_op_batch, init, migrations, register_return, Customer, NewReturn};
    use modori_shared::domain::{
        Coordinates, Disposition, Epoch, Grade, Lpn, ReasonCode, ReturnLine, RmaId, SiteId, Sku,
        StoreId,
    };
    use modori_shared::op::{OpBody, OpRecord};
    use modori_shared::station::ReceiptKind;
    use modori_shared::wire::messages::Sequenced;
    use modori_shared::wire::payload;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn
    }

    fn register(conn: &mut Connection, rma: &str, reason: ReasonCode, customer: &str) {
        let r = NewReturn {
            rma: RmaId::new(rma).unwrap(),
            merchant: None,
            origin: Coordinates::new(34.7, 135.5).unwrap(),
            origin_label: "store:st-umeda".into(),
            origin_store: Some(StoreId::new("st-umeda").unwrap()),
            lines: vec![ReturnLine::new(Sku::new("TEE").unwrap(), 1, reason).unwrap()],
            customer: Some(Customer {
                reference: customer.into(),
                name: None,
                address: None,
            }),
            terms: None,
            order_ref: None,
            resolution: Some(crate::store::details::Detail::chosen_refund_at_counter(0)),
        };
        // No site is connected in these tests: nothing to wake.
        let _ = register_return(
            conn,
            &r,
            &SiteId::new("osaka").unwrap(),
            "nearest",
            "[]",
            &[],
            1000,
        )
        .unwrap();
    }

    fn op(seq: u64, body: OpBody) -> Sequenced {
        Sequenced {
            seq,
            payload: payload::encode_op(&OpRecord {
                site: SiteId::new("osaka").unwrap(),
                at_ms: 0,
                operator: "B".into(),
                station: "recv-1".into(),
                body,
            })
            .unwrap(),
        }
    }

    #[test]
    fn steps_are_counted_per_site_and_a_worn_unit_counts_against_its_customer() {
        let mut conn = open();
        register(&mut conn, "RMA-1", ReasonCode::ChangedMind, "C-1");
        register(&mut conn, "RMA-2", ReasonCode::Defective, "C-1");
        let lpn = Lpn::new("L1").unwrap();
        let batch = vec![
            op(
                1,
                OpBody::UnitReceived {
                    lpn: lpn.clone(),
                    rma: Some(RmaId::new("RMA-1").unwrap()),
                    sku: Sku::new("TEE").unwrap(),
                    receipt: ReceiptKind::Matched,
                    parcel_ref: None,
                },
            ),
            op(
                2,
                OpBody::UnitGraded {
                    lpn: lpn.clone(),
                    grade: Grade::D,
                    defects: vec![],
                },
            ),
            op(
                3,
                OpBody::UnitReceived {
                    lpn: Lpn::new("L2").unwrap(),
                    rma: None,
                    sku: Sku::new("TEE").unwrap(),
                    receipt: ReceiptKind::Unidentified,
                    parcel_ref: None,
                },
            ),
            op(
                4,
                OpBody::DispositionSet {
                    lpn,
                    disposition: Disposition::Recycle,
                },
            ),
        ];
        let osaka = SiteId::new("osaka").unwrap();
        apply_op_batch(&mut conn, &osaka, Epoch(1), &batch, 5000).unwrap();
        let c = counts(&conn).unwrap();
        assert_eq!(c.pipeline.expected, 1, "{c:?}");
        assert_eq!(c.pipeline.receiving, 1, "{c:?}");
        assert_eq!(c.pipeline.quarantine, 1, "{c:?}");
        assert_eq!(c.pipeline.disposed.get("recycle"), Some(&1), "{c:?}");
        assert_eq!(c.sites["osaka"].disposed, 1);
        assert_eq!(c.stores_waiting.get("st-umeda"), Some(&1));
        let history = crate::store::commerce::history(&conn, "C-1", 2000).unwrap();
        assert_eq!(
            (
                history.returns_total,
                history.returns_90d,
                history.used_on_no_fault
            ),
            (2, 2, 1)
        );
        assert_eq!(
            abuse_candidates(&conn, 0, 2, 10).unwrap(),
            vec!["C-1".to_owned()]
        );
        let reasons = top_reasons(&conn, 0, false, 10).unwrap();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(grade_mix(&conn).unwrap().get("D"), Some(&1));
        let throughput = throughput(&conn, 0, 60_000).unwrap();
        assert!(
            throughput
                .iter()
                .any(|(_, k, n)| k == "unit_received" && *n == 2),
            "{throughput:?}"
        );
        let units = units_of_return(&conn, "RMA-1", 10).unwrap();
        assert_eq!(units[0].state, "disposed:recycle");
        let values = disposed_values(&conn).unwrap();
        assert_eq!(values[0].disposition, "recycle", "{values:?}");
        assert_eq!(store_waiting(&conn, "st-umeda", 10).unwrap().len(), 1);
        // The counter's list keeps today's returns once they have arrived, older ones not.
        let recent = |since| store_recent(&conn, "st-umeda", since, 10).unwrap();
        assert_eq!(recent(i64::MAX).len(), 1);
        let today = recent(0);
        assert_eq!(today.len(), 2, "{today:?}");
        assert!(today
            .iter()
            .any(|r| r.rma == "RMA-1" && r.status != "expected"));
    }
}
