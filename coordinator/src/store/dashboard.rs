//! What the ops dashboard and the store counter read: counts per step and site, throughput,
//! return reasons, grades, recovered value, customers' histories, anomalies with their
//! return, a return's units with the centre's decisions, and a store's waiting returns.
//!
//! Read-only. Every list is capped by its caller's `limit`; the counts run over indexes made
//! for them (`units_state_site`, `units_transfer_to`, `returns_created`,
//! `returns_origin_store`), and the ops counted per minute (`ops_per_minute`).

use std::collections::BTreeMap;

use serde::Serialize;

use modori_shared::station::WAITING_TO_BE_MATCHED_SQL;

use super::sql::{Dialect, Row, Sql, SqlError};
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

/// A `(text, count)` row of a grouped count.
fn text_count(r: &Row) -> Result<(String, u64), SqlError> {
    Ok((r.get(0)?, to_u64(r.get(1)?)))
}

/// The counts of every step, per site and fleet-wide.
pub fn counts(conn: &mut dyn Sql) -> Result<Counts, StoreError> {
    let mut out = Counts::default();
    let rows = conn.map_rows(
        "SELECT site, status, COUNT(*) FROM returns WHERE status IN ('expected', 'receiving')
         GROUP BY site, status",
        &[],
        |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, to_u64(r.get(2)?))),
    )?;
    for (site, status, n) in rows {
        let backlog = out.sites.entry(site).or_default();
        if status == "expected" {
            backlog.expected += n;
            out.pipeline.expected += n;
        } else {
            backlog.receiving += n;
            out.pipeline.receiving += n;
        }
    }
    // Departed units sort first (`departed:…`) and voided ones last: the range leaves both
    // out of the scan.
    let rows = conn.map_rows(
        "SELECT site, state, quarantine, COUNT(*) FROM units
         WHERE state >= 'disposed:' AND state < 'voided'
         GROUP BY site, state, quarantine",
        &[],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<i64>(2)?,
                to_u64(r.get(3)?),
            ))
        },
    )?;
    for (site, state, quarantine, n) in rows {
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
    let rows = conn.map_rows(
        &format!(
            "SELECT site, COUNT(*) FROM units WHERE {WAITING_TO_BE_MATCHED_SQL} GROUP BY site"
        ),
        &[],
        text_count,
    )?;
    for (site, n) in rows {
        out.sites.entry(site).or_default().quarantine += n;
        out.pipeline.quarantine += n;
    }
    let rows = conn.map_rows(
        "SELECT state, COUNT(*) FROM units WHERE state >= 'departed:' AND state < 'departed;'
         GROUP BY state",
        &[],
        text_count,
    )?;
    for (state, n) in rows {
        let disposition = state.split_once(':').map_or("", |(_, d)| d).to_owned();
        *out.pipeline.departed.entry(disposition).or_default() += n;
    }
    let rows = conn.map_rows(
        "SELECT transfer_to, COUNT(*) FROM units WHERE transfer_to IS NOT NULL GROUP BY transfer_to",
        &[],
        text_count,
    )?;
    for (site, n) in rows {
        out.sites.entry(site).or_default().inbound += n;
        out.pipeline.in_transit += n;
    }
    let rows = conn.map_rows(
        "SELECT site, COUNT(*) FROM returns
         WHERE transit_status IN ('picked_up', 'in_transit') AND status = 'expected'
         GROUP BY site",
        &[],
        text_count,
    )?;
    for (site, n) in rows {
        out.sites.entry(site).or_default().inbound += n;
        out.pipeline.in_transit += n;
    }
    out.stores_waiting = conn
        .map_rows(
            "SELECT origin_store, COUNT(*) FROM returns
             WHERE origin_store IS NOT NULL AND status = 'expected' GROUP BY origin_store",
            &[],
            text_count,
        )?
        .into_iter()
        .collect();
    out.stores_totes = conn
        .map_rows(
            "SELECT store, COUNT(*) FROM totes WHERE status = 'planned' GROUP BY store",
            &[],
            text_count,
        )?
        .into_iter()
        .collect();
    for check in super::counter_checks::store_checks(conn)? {
        out.store_checks.insert(check.store.clone(), check);
    }
    out.n_anomalies = to_u64(conn.one_value("SELECT COUNT(*) FROM anomalies", &[])?);
    Ok(out)
}

/// Events per time bucket: ops applied by kind, and returns registered (`registered`).
/// Rows are (bucket start in Unix ms, kind, count), oldest first. Ops are counted per minute
/// (`tallies`): buckets and `since_ms` are exact in whole minutes.
pub fn throughput(
    conn: &mut dyn Sql,
    since_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<(i64, String, u64)>, StoreError> {
    let bucket_ms = bucket_ms.max(1);
    let mut out = conn.map_rows(
        "SELECT minute_ms / ?2, kind, CAST(SUM(n) AS BIGINT) FROM ops_per_minute
         WHERE minute_ms >= ?1 GROUP BY 1, 2",
        &[&since_ms, &bucket_ms],
        |r| {
            Ok((
                r.get::<i64>(0)? * bucket_ms,
                r.get::<String>(1)?,
                to_u64(r.get(2)?),
            ))
        },
    )?;
    out.extend(conn.map_rows(
        "SELECT created_ms / ?2, COUNT(*) FROM returns WHERE created_ms >= ?1 GROUP BY 1",
        &[&since_ms, &bucket_ms],
        |r| {
            Ok((
                r.get::<i64>(0)? * bucket_ms,
                "registered".to_owned(),
                to_u64(r.get(1)?),
            ))
        },
    )?);
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

/// A return's lines as rows `j` beside the return `r`, and the text of a line's field `sku`,
/// `reason` or `qty` (a whole number), in each dialect.
pub(crate) struct LineRows {
    pub from: &'static str,
    pub sku: &'static str,
    pub reason: &'static str,
    pub qty: &'static str,
}

pub(crate) fn line_rows(dialect: Dialect) -> LineRows {
    match dialect {
        Dialect::Sqlite => LineRows {
            from: "returns r, json_each(r.lines_json) j",
            sku: "json_extract(j.value, '$.sku')",
            reason: "json_extract(j.value, '$.reason')",
            qty: "json_extract(j.value, '$.qty')",
        },
        Dialect::Postgres => LineRows {
            from: "returns r CROSS JOIN LATERAL jsonb_array_elements(r.lines_json::jsonb) j",
            sku: "(j.value->>'sku')",
            reason: "(j.value->>'reason')",
            qty: "CAST(j.value->>'qty' AS BIGINT)",
        },
    }
}

/// The most frequent (key, reason) pairs of the returns registered since `since_ms`, keyed by
/// SKU (`by_category` false) or by the catalogue's category.
pub fn top_reasons(
    conn: &mut dyn Sql,
    since_ms: i64,
    by_category: bool,
    limit: usize,
) -> Result<Vec<ReasonCount>, StoreError> {
    let LineRows {
        from,
        sku,
        reason,
        qty,
    } = line_rows(conn.dialect());
    let key = if by_category {
        "COALESCE(c.category, 'uncatalogued')"
    } else {
        sku
    };
    let sql = format!(
        "SELECT {key}, {reason}, CAST(SUM({qty}) AS BIGINT)
         FROM {from}
         LEFT JOIN catalog c ON c.merchant = r.merchant AND c.sku = {sku}
         WHERE r.created_ms >= ?1
         GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT ?2"
    );
    let mut out = conn.map_rows(&sql, &[&since_ms, &to_i64(limit as u64)], |r| {
        Ok(ReasonCount {
            key: r.get::<Option<String>>(0)?.unwrap_or_default(),
            reason: r.get::<Option<String>>(1)?.unwrap_or_default(),
            qty: to_u64(r.get::<Option<i64>>(2)?.unwrap_or(0)),
            name_ja: None,
            name_en: None,
        })
    })?;
    if by_category {
        let names = super::category_names::fleet_wide(conn)?;
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
pub fn grade_mix(conn: &mut dyn Sql) -> Result<BTreeMap<String, u64>, StoreError> {
    Ok(conn
        .map_rows(
            "SELECT grade, COUNT(*) FROM units WHERE grade IS NOT NULL AND state != 'voided' GROUP BY grade",
            &[],
            text_count,
        )?
        .into_iter()
        .collect())
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

pub fn disposed_values(conn: &mut dyn Sql) -> Result<Vec<DisposedValue>, StoreError> {
    let position = match conn.dialect() {
        Dialect::Sqlite => "instr(u.state, ':')",
        Dialect::Postgres => "strpos(u.state, ':')",
    };
    Ok(conn.map_rows(
        &format!(
            "SELECT substr(u.state, {position} + 1), COALESCE(u.grade, ''), COUNT(*),
                    COALESCE(CAST(SUM(c.price_yen) AS BIGINT), 0)
             FROM units u
             LEFT JOIN returns r ON r.rma = u.rma
             LEFT JOIN catalog c ON c.merchant = r.merchant AND c.sku = u.sku
             WHERE u.state LIKE 'disposed:%' OR u.state LIKE 'placed:%' OR u.state LIKE 'departed:%'
             GROUP BY 1, 2"
        ),
        &[],
        |r| {
            Ok(DisposedValue {
                disposition: r.get(0)?,
                grade: r.get(1)?,
                n_units: to_u64(r.get(2)?),
                list_price_yen: to_u64(r.get(3)?),
            })
        },
    )?)
}

/// Resale listings: (units sold, yen realised, units listed now, yen asked now).
pub fn resale_totals(conn: &mut dyn Sql) -> Result<(u64, u64, u64, u64), StoreError> {
    let pair = |r: &Row| -> Result<(i64, i64), SqlError> { Ok((r.get(0)?, r.get(1)?)) };
    let (n_sold, sold) = pair(&conn.query_one(
        "SELECT COUNT(*), COALESCE(CAST(SUM(price_yen) AS BIGINT), 0) FROM listings
         WHERE status = 'sold'",
        &[],
    )?)?;
    // A unit is listed on several channels at once: count it once, at its best price.
    let (n_listed, listed) = pair(&conn.query_one(
        "SELECT COUNT(*), COALESCE(CAST(SUM(p) AS BIGINT), 0) FROM
           (SELECT MAX(price_yen) AS p FROM listings WHERE status = 'listed' GROUP BY lpn) AS best",
        &[],
    )?)?;
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
/// `units_rma` (on SQLite, `CROSS JOIN` keeps that order: `units_rma` holds only units with a
/// return, which could otherwise look cheaper to scan whole; PostgreSQL has no such join and
/// plans by its statistics). A pseudonym (`anon-…`) is left out in any letter case, as
/// SQLite's `LIKE` does.
pub fn abuse_candidates(
    conn: &mut dyn Sql,
    since_ms: i64,
    min_returns: u32,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let join = match conn.dialect() {
        Dialect::Sqlite => "CROSS JOIN",
        Dialect::Postgres => "JOIN",
    };
    Ok(conn.map_rows(
        &format!(
            "SELECT customer_ref FROM returns
             WHERE created_ms >= ?1 AND customer_ref IS NOT NULL
               AND lower(customer_ref) NOT LIKE 'anon-%'
             GROUP BY customer_ref HAVING COUNT(*) >= ?2
             UNION
             SELECT r.customer_ref FROM returns r {join} units u ON u.rma = r.rma
             WHERE u.grade IN ('C', 'D', 'X') AND r.created_ms >= ?1
               AND r.customer_ref IS NOT NULL AND lower(r.customer_ref) NOT LIKE 'anon-%'
             LIMIT ?3"
        ),
        &[&since_ms, &min_returns, &to_i64(limit as u64)],
        |r| r.get(0),
    )?)
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

/// The columns [`anomaly_view`] reads, of anomalies `a` joined to their unit `u`.
pub(crate) const ANOMALY_COLUMNS: &str =
    "a.id, a.site, a.kind, a.seq, a.lpn, u.rma, a.detail, a.at_ms, a.detail_code, a.detail_params";

pub(crate) fn anomaly_view(r: &Row) -> Result<AnomalyView, SqlError> {
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
}

/// The newest anomalies, newest first.
pub fn anomalies(conn: &mut dyn Sql, limit: usize) -> Result<Vec<AnomalyView>, StoreError> {
    Ok(conn.map_rows(
        &format!(
            "SELECT {ANOMALY_COLUMNS} FROM anomalies a LEFT JOIN units u ON u.lpn = a.lpn
             ORDER BY a.id DESC LIMIT ?1"
        ),
        &[&to_i64(limit as u64)],
        anomaly_view,
    )?)
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
    conn: &mut dyn Sql,
    rma: &str,
    limit: usize,
) -> Result<Vec<UnitDecision>, StoreError> {
    Ok(conn.map_rows(
        "SELECT lpn, site, sku, state, receipt, grade, defects, tested, bin, transfer_to,
                decided, decision_why
         FROM units WHERE rma = ?1 ORDER BY lpn LIMIT ?2",
        &[&rma, &to_i64(limit as u64)],
        |r| {
            Ok(UnitDecision {
                lpn: r.get(0)?,
                site: r.get(1)?,
                sku: r.get(2)?,
                state: r.get(3)?,
                receipt: r.get(4)?,
                grade: r.get(5)?,
                defects: r.get::<Option<String>>(6)?.filter(|d| !d.is_empty()),
                tested: r.get(7)?,
                bin: r.get(8)?,
                transfer_to: r.get(9)?,
                decided: r.get(10)?,
                decision_why: r.get(11)?,
            })
        },
    )?)
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

fn store_return(r: &Row) -> Result<StoreReturn, SqlError> {
    Ok(StoreReturn {
        rma: r.get(0)?,
        site: r.get(1)?,
        status: r.get(2)?,
        merchant: r.get(3)?,
        order_ref: r.get(4)?,
        lines: serde_json::from_str(&r.get::<String>(5)?).unwrap_or_default(),
        created_ms: r.get(6)?,
    })
}

/// Returns registered at `store` that have not reached their site yet, newest first.
pub fn store_waiting(
    conn: &mut dyn Sql,
    store: &str,
    limit: usize,
) -> Result<Vec<StoreReturn>, StoreError> {
    Ok(conn.map_rows(
        "SELECT rma, site, status, merchant, order_ref, lines_json, created_ms FROM returns
         WHERE origin_store = ?1 AND status = 'expected' ORDER BY created_ms DESC LIMIT ?2",
        &[&store, &to_i64(limit as u64)],
        store_return,
    )?)
}

/// Returns registered at `store` that have not reached their site yet, or were registered
/// since `since_ms` (the start of the store's day) wherever they are now; newest first.
pub fn store_recent(
    conn: &mut dyn Sql,
    store: &str,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<StoreReturn>, StoreError> {
    Ok(conn.map_rows(
        "SELECT rma, site, status, merchant, order_ref, lines_json, created_ms FROM returns
         WHERE origin_store = ?1 AND (status = 'expected' OR created_ms >= ?2)
         ORDER BY created_ms DESC LIMIT ?3",
        &[&store, &since_ms, &to_i64(limit as u64)],
        store_return,
    )?)
}

/// What the catalogue says of a merchant's SKU: (price, final sale, category).
pub fn catalog_item(
    conn: &mut dyn Sql,
    merchant: &str,
    sku: &str,
) -> Result<Option<(u64, bool, String)>, StoreError> {
    Ok(conn.map_row_opt(
        "SELECT price_yen, final_sale, category FROM catalog WHERE merchant = ?1 AND sku = ?2",
        &[&merchant, &sku],
        |r| Ok((to_u64(r.get(0)?), r.get(1)?, r.get(2)?)),
    )?)
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
    use rusqlite::Connection;

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
        let c = counts(&mut conn).unwrap();
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
            abuse_candidates(&mut conn, 0, 2, 10).unwrap(),
            vec!["C-1".to_owned()]
        );
        let reasons = top_reasons(&mut conn, 0, false, 10).unwrap();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(grade_mix(&mut conn).unwrap().get("D"), Some(&1));
        let throughput = throughput(&mut conn, 0, 60_000).unwrap();
        assert!(
            throughput
                .iter()
                .any(|(_, k, n)| k == "unit_received" && *n == 2),
            "{throughput:?}"
        );
        let units = units_of_return(&mut conn, "RMA-1", 10).unwrap();
        assert_eq!(units[0].state, "disposed:recycle");
        let values = disposed_values(&mut conn).unwrap();
        assert_eq!(values[0].disposition, "recycle", "{values:?}");
        assert_eq!(store_waiting(&mut conn, "st-umeda", 10).unwrap().len(), 1);
        // The counter's list keeps today's returns once they have arrived, older ones not.
        let mut recent = |since| store_recent(&mut conn, "st-umeda", since, 10).unwrap();
        assert_eq!(recent(i64::MAX).len(), 1);
        let today = recent(0);
        assert_eq!(today.len(), 2, "{today:?}");
        assert!(today
            .iter()
            .any(|r| r.rma == "RMA-1" && r.status != "expected"));
    }
}
