//! The returns a quarantined unit may belong to, for ops to choose from: first those whose
//! reference is what was found with the parcel (tracking number, order, RMA, customer
//! reference or name, or the return the unit was received against), then open returns routed
//! to the unit's site that list its SKU, newest first. The automatic pass
//! (`commerce::match_quarantined`) takes only a single certain one; these are the rest.

use serde::Serialize;

use modori_runtime::sqlite::to_i64;

use super::sql::{Dialect, Sql};
use super::{lifecycle, StoreError};

/// A return suggested for a quarantined unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    pub rma: String,
    pub status: String,
    pub site: String,
    pub order_ref: Option<String>,
    pub customer_name: Option<String>,
    /// Whether its reference is what came with the parcel (else only its SKU and site fit).
    pub by_reference: bool,
}

/// At most `limit` returns `lpn` may belong to, best first; none for an unknown unit.
pub fn for_unit(
    conn: &mut dyn Sql,
    lpn: &str,
    limit: usize,
) -> Result<Vec<Suggestion>, StoreError> {
    // Whether a return lists the unit's SKU: its lines are a JSON array of objects.
    let lists_sku = match conn.dialect() {
        Dialect::Sqlite => {
            "EXISTS (SELECT 1 FROM json_each(r.lines_json) l
                     WHERE json_extract(l.value, '$.sku') = u.sku)"
        }
        Dialect::Postgres => {
            "EXISTS (SELECT 1 FROM jsonb_array_elements(r.lines_json::jsonb) l
                     WHERE l->>'sku' = u.sku)"
        }
    };
    // A reference compared with a missing one is unknown (NULL): ranked after false on both
    // backends, as SQLite ranks NULL lowest.
    let sql = format!(
        "WITH u AS (SELECT site, sku, parcel_ref, claimed_rma FROM units WHERE lpn = ?1)
         SELECT r.rma, r.status, r.site, r.order_ref, r.customer_name,
                (r.rma = u.claimed_rma OR r.tracking = u.parcel_ref OR r.order_ref = u.parcel_ref
                 OR r.rma = u.parcel_ref OR r.customer_ref = u.parcel_ref
                 OR r.customer_name = u.parcel_ref) AS by_reference
         FROM returns r, u
         WHERE r.status IN (?2, ?3)
           AND {lists_sku}
           AND (r.site = u.site OR r.rma = u.claimed_rma OR r.tracking = u.parcel_ref
                OR r.order_ref = u.parcel_ref OR r.rma = u.parcel_ref
                OR r.customer_ref = u.parcel_ref OR r.customer_name = u.parcel_ref)
         ORDER BY by_reference DESC NULLS LAST, r.created_ms DESC, r.rma
         LIMIT ?4"
    );
    Ok(conn.map_rows(
        &sql,
        &[
            &lpn,
            &lifecycle::EXPECTED,
            &lifecycle::RECEIVING,
            &to_i64(limit as u64),
        ],
        |r| {
            Ok(Suggestion {
                rma: r.get(0)?,
                status: r.get(1)?,
                site: r.get(2)?,
                order_ref: r.get(3)?,
                customer_name: r.get(4)?,
                by_reference: r.get::<Option<bool>>(5)?.unwrap_or(false),
            })
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;

    #[test]
    fn references_come_first_then_the_skus_open_returns_at_the_site() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let tee = r#"[{"sku":"TEE","qty":1,"reason":"too_small"}]"#;
        let cap = r#"[{"sku":"CAP","qty":1,"reason":"too_small"}]"#;
        for (rma, site, lines, status, order, at) in [
            ("R-REF", "tokyo", tee, "expected", "ORD-9", 1),
            ("R-SKU-OLD", "osaka", tee, "expected", "ORD-1", 2),
            ("R-SKU-NEW", "osaka", tee, "receiving", "ORD-2", 3),
            ("R-OTHER-SKU", "osaka", cap, "expected", "ORD-3", 4),
            ("R-CLOSED", "osaka", tee, "cancelled", "ORD-4", 5),
            ("R-ELSEWHERE", "tokyo", tee, "expected", "ORD-5", 6),
        ] {
            conn.execute(
                "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq,
                   created_ms, status, order_ref)
                 VALUES (?1, ?2, 'x', ?3, 'r', 1, ?4, ?5, ?6)",
                rusqlite::params![rma, site, lines, at, status, order],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO units (lpn, site, sku, state, updated_ms, quarantine, receipt, parcel_ref)
             VALUES ('L-1', 'osaka', 'TEE', 'received', 1, 1, 'unidentified', 'ORD-9')",
            [],
        )
        .unwrap();
        let got: Vec<(String, bool)> = for_unit(&mut conn, "L-1", 10)
            .unwrap()
            .into_iter()
            .map(|s| (s.rma, s.by_reference))
            .collect();
        assert_eq!(
            got,
            [
                ("R-REF".to_owned(), true),
                ("R-SKU-NEW".to_owned(), false),
                ("R-SKU-OLD".to_owned(), false)
            ]
        );
        assert!(for_unit(&mut conn, "L-NONE", 10).unwrap().is_empty());
        assert_eq!(for_unit(&mut conn, "L-1", 1).unwrap().len(), 1);
    }
}
