//! Ship-backs: a unit sent back, as it is, to the customer of its return. A declined
//! trade-in is one; a repair declined or done is another. [`order`] is what any of them calls
//! inside its own transaction.
//!
//! Invariants: one ship-back per unit (`lpn` is the key), so an answer given twice, a sweep
//! run again or a restart orders nothing twice; the order and its `ShipBack` command are
//! written in the caller's transaction, and the command goes to the site that holds the unit
//! then. It is shipped once, when the site's `UnitDeparted` with the `ToCustomer` departure
//! applies, with the carrier's tracking number.

use modori_shared::domain::{Lpn, RmaId, SiteId};
use modori_shared::op::CommandBody;

use super::commands::enqueue;
use super::queued::Queued;
use super::sql::Sql;
use super::StoreError;

pub const MIGRATION: &str = r#"
CREATE TABLE ship_backs (
    lpn        TEXT PRIMARY KEY,
    rma        TEXT NOT NULL,
    site       TEXT NOT NULL,
    cause      TEXT NOT NULL,
    ordered_ms INTEGER NOT NULL,
    shipped_ms INTEGER,
    tracking   TEXT
) STRICT;
CREATE INDEX ship_backs_rma ON ship_backs (rma);
"#;

pub const MIGRATION_PG: &str = r#"
CREATE TABLE ship_backs (
    lpn        TEXT PRIMARY KEY,
    rma        TEXT NOT NULL,
    site       TEXT NOT NULL,
    cause      TEXT NOT NULL,
    ordered_ms BIGINT NOT NULL,
    shipped_ms BIGINT,
    tracking   TEXT
);
CREATE INDEX ship_backs_rma ON ship_backs (rma);
"#;

/// Why a unit goes back: a declined trade-in.
pub const CAUSE_TRADE_IN_DECLINED: &str = "trade_in_declined";
/// Why a unit goes back: its repair's quote was declined, so it goes back as it is.
pub const CAUSE_REPAIR_DECLINED: &str = "repair_declined";

/// One unit's ship-back as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipBack {
    pub lpn: String,
    pub site: String,
    pub ordered_ms: i64,
    /// When it left, with the carrier's number when the site gave one.
    pub shipped: Option<(i64, Option<String>)>,
}

/// Orders every unit of return `rma` still at a site back to its customer, for `cause`,
/// inside the caller's transaction: one `ShipBack` command to each unit's site, once per
/// unit. Voided units and units already gone are left out. Returns the commands queued.
pub fn order(
    tx: &mut dyn Sql,
    rma: &RmaId,
    cause: &str,
    now_ms: i64,
) -> Result<Queued, StoreError> {
    let units = tx.map_rows(
        "SELECT lpn, site FROM units
         WHERE rma = ?1 AND state != 'voided' AND state NOT LIKE 'departed:%'
         ORDER BY lpn",
        &[&rma.as_str()],
        |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
    )?;
    let mut queued = Queued::none();
    for (lpn, site) in units {
        let n = tx.execute(
            "INSERT INTO ship_backs (lpn, rma, site, cause, ordered_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (lpn) DO NOTHING",
            &[&lpn, &rma.as_str(), &site, &cause, &now_ms],
        )?;
        if n == 0 {
            continue;
        }
        let site = SiteId::new(site)?;
        let command = CommandBody::ShipBack {
            lpn: Lpn::new(lpn)?,
            rma: rma.clone(),
        };
        let seq = enqueue(tx, &site, &command, now_ms)?;
        queued.push(site, seq);
    }
    Ok(queued)
}

/// Records that `lpn` left for the customer of `rma`; false when no ship-back of it to that
/// customer waited (it was shipped already; the site refuses one never ordered).
pub fn shipped(
    tx: &mut dyn Sql,
    lpn: &Lpn,
    rma: &RmaId,
    tracking: Option<&str>,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let n = tx.execute(
        "UPDATE ship_backs SET shipped_ms = ?3, tracking = ?4
         WHERE lpn = ?1 AND rma = ?2 AND shipped_ms IS NULL",
        &[&lpn.as_str(), &rma.as_str(), &at_ms, &tracking],
    )?;
    Ok(n == 1)
}

/// The ship-backs of return `rma`, by LPN.
pub fn of_return(conn: &mut dyn Sql, rma: &str) -> Result<Vec<ShipBack>, StoreError> {
    Ok(conn.map_rows(
        "SELECT lpn, site, ordered_ms, shipped_ms, tracking FROM ship_backs
         WHERE rma = ?1 ORDER BY lpn",
        &[&rma],
        |r| {
            Ok(ShipBack {
                lpn: r.get(0)?,
                site: r.get(1)?,
                ordered_ms: r.get(2)?,
                shipped: r
                    .get::<Option<i64>>(3)?
                    .map(|at| Ok::<_, super::sql::SqlError>((at, r.get(4)?)))
                    .transpose()?,
            })
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::sqlite;
    use crate::store::stock::stock_and_demand;
    use crate::store::{init, migrations};
    use rusqlite::Connection;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO units (lpn, site, sku, rma, state, grade, updated_ms) VALUES
               ('L1', 'osaka', 'PHN', 'RMA-1', 'placed:restock', 'A', 0),
               ('L2', 'osaka', 'PHN', 'RMA-1', 'voided', NULL, 0),
               ('L3', 'sendai', 'PHN', 'RMA-1', 'disposed:resale', 'B', 0),
               ('L4', 'osaka', 'PHN', 'RMA-1', 'departed:recycle', 'D', 0),
               ('L5', 'osaka', 'PHN', 'RMA-2', 'placed:restock', 'A', 0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn each_unit_still_at_a_site_is_ordered_back_once_to_the_site_holding_it() {
        let conn = open();
        let rma = RmaId::new("RMA-1").unwrap();
        let mut sql = sqlite(&conn);
        let queued = order(&mut sql, &rma, CAUSE_TRADE_IN_DECLINED, 7).unwrap();
        let osaka = SiteId::new("osaka").unwrap();
        let sendai = SiteId::new("sendai").unwrap();
        assert!(queued.seq_for(&osaka).is_some() && queued.seq_for(&sendai).is_some());
        let again = order(&mut sql, &rma, CAUSE_TRADE_IN_DECLINED, 8).unwrap();
        assert_eq!(again, Queued::none(), "ordered once");
        let held: Vec<(String, String)> = of_return(&mut sql, "RMA-1")
            .unwrap()
            .into_iter()
            .map(|s| (s.lpn, s.site))
            .collect();
        assert_eq!(
            held,
            [
                ("L1".into(), "osaka".into()),
                ("L3".into(), "sendai".into())
            ],
            "voided and departed units are left out"
        );
        // No longer stock an exchange may reserve or rebalancing may move.
        let (stock, _) = stock_and_demand(&mut sql).unwrap();
        let lpns: Vec<&str> = stock
            .iter()
            .flat_map(|s| s.lpns.iter().map(Lpn::as_str))
            .collect();
        assert_eq!(lpns, ["L5"]);
        // Shipped once, with its number; a second departure report changes nothing.
        let l1 = Lpn::new("L1").unwrap();
        assert!(shipped(&mut sql, &l1, &rma, Some("T-1"), 9).unwrap());
        assert!(!shipped(&mut sql, &l1, &rma, Some("T-2"), 10).unwrap());
        let first = &of_return(&mut sql, "RMA-1").unwrap()[0];
        assert_eq!(first.shipped, Some((9, Some("T-1".into()))));
    }
}
