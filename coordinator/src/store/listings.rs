//! Resale listings as stored: a unit listed on every channel taking its grade, marked down,
//! delisted, sold once.
//!
//! Invariants: a unit has at most one live listing per channel; listings are created and
//! delisted in the transaction that applies the op causing it; a sale closes every other
//! listing of the unit in the same transaction, so a unit is never sold twice.

use modori_shared::domain::{Grade, Lpn};
use serde::Serialize;
use thiserror::Error;

use modori_runtime::sqlite::to_i64;

use super::sql::{in_transaction, Sql, SqlError};
use super::StoreError;
use crate::listings::{asking_price, ResaleConfig};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Lists `lpn` on every channel taking its grade, if it has a catalogue price; returns how
/// many listings were created.
pub fn list_unit(
    tx: &mut dyn Sql,
    config: &ResaleConfig,
    lpn: &Lpn,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let unit: Option<(String, String, Option<String>, Option<i64>)> = tx.map_row_opt(
        "SELECT u.site, u.sku, u.grade,
                (SELECT price_yen FROM catalog c WHERE c.sku = u.sku ORDER BY merchant LIMIT 1)
         FROM units u WHERE u.lpn = ?1",
        &[&lpn.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let Some((site, sku, Some(grade), Some(price))) = unit else {
        return Ok(0);
    };
    let grade = Grade::parse(&grade)?;
    let price = u64::try_from(price).unwrap_or(0);
    let mut n = 0;
    for channel in &config.channels {
        let Some(asking) = asking_price(config, channel, price, grade, 0) else {
            continue;
        };
        n += tx.execute(
            "INSERT INTO listings (lpn, channel, site, sku, grade, list_price_yen, price_yen, status, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'listed', ?8, ?8)
             ON CONFLICT (lpn, channel) WHERE status = 'listed' DO NOTHING",
            &[
                &lpn.as_str(),
                &channel.name,
                &site,
                &sku,
                &grade.as_str(),
                &to_i64(price),
                &to_i64(asking),
                &now_ms,
            ],
        )?;
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Units listed per pass at most; the rest wait for the next pass.
pub const LISTINGS_PER_PASS_MAX: usize = 512;

/// Lists every unit put away for resale and never listed; returns how many listings were
/// created. Found from what is stored, so a crash before a pass loses nothing.
pub fn list_pending(
    conn: &mut dyn Sql,
    config: &ResaleConfig,
    now_ms: i64,
) -> Result<usize, StoreError> {
    in_transaction(conn, |tx| {
        // A traded-in unit is the customer's until they accept the offer: not listed while
        // the offer waits for an answer, nor after it was declined (it goes back to them).
        // A repaired one is always the customer's.
        let pending: Vec<String> = tx.map_rows(
            "SELECT lpn FROM units WHERE state = 'placed:resale'
               AND lpn NOT IN (SELECT lpn FROM listings)
               AND NOT EXISTS (SELECT 1 FROM trade_in_returns t WHERE t.rma = units.rma
                                 AND (t.decision IS NULL OR t.decision <> 'accepted'))
               AND NOT EXISTS (SELECT 1 FROM repairs p WHERE p.rma = units.rma)
             LIMIT ?1",
            &[&to_i64(LISTINGS_PER_PASS_MAX as u64)],
            |r| r.get(0),
        )?;
        let mut n = 0;
        for lpn in pending {
            n += list_unit(tx, config, &Lpn::new(lpn)?, now_ms)?;
        }
        Ok(n)
    })
}

/// Closes every live listing of `lpn` (it left its site, or was sold elsewhere).
pub fn delist_unit(tx: &mut dyn Sql, lpn: &Lpn, now_ms: i64) -> Result<usize, StoreError> {
    let n = tx.execute(
        "UPDATE listings SET status = 'delisted', updated_ms = ?2 WHERE lpn = ?1 AND status = 'listed'",
        &[&lpn.as_str(), &now_ms],
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Applies the markdown schedule to every live listing; returns how many prices changed.
pub fn mark_down(
    conn: &mut dyn Sql,
    config: &ResaleConfig,
    now_ms: i64,
) -> Result<usize, StoreError> {
    in_transaction(conn, |tx| {
        let live: Vec<(i64, String, String, i64, i64, i64)> = tx.map_rows(
            "SELECT id, channel, grade, list_price_yen, price_yen, created_ms FROM listings WHERE status = 'listed'",
            &[],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )?;
        let mut n = 0;
        for (id, channel, grade, list_price, current, created_ms) in live {
            let Some(channel) = config.channels.iter().find(|c| c.name == channel) else {
                continue;
            };
            let age_days = u32::try_from((now_ms - created_ms).max(0) / DAY_MS).unwrap_or(u32::MAX);
            let grade = Grade::parse(&grade)?;
            let price = u64::try_from(list_price).unwrap_or(0);
            let Some(asking) = asking_price(config, channel, price, grade, age_days) else {
                continue;
            };
            let asking = to_i64(asking);
            if asking != current {
                tx.execute(
                    "UPDATE listings SET price_yen = ?2, updated_ms = ?3 WHERE id = ?1",
                    &[&id, &asking, &now_ms],
                )?;
                n += 1;
            }
        }
        Ok(n)
    })
}

#[derive(Debug, Error)]
pub enum SaleError {
    #[error("no listing {0}")]
    Unknown(i64),
    #[error("listing {id} is {status}, not for sale")]
    NotListed { id: i64, status: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<modori_runtime::sqlite::DbError> for SaleError {
    fn from(e: modori_runtime::sqlite::DbError) -> Self {
        Self::Store(e.into())
    }
}

impl From<rusqlite::Error> for SaleError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<SqlError> for SaleError {
    fn from(e: SqlError) -> Self {
        Self::Store(e.into())
    }
}

/// A listing sold: it is closed as sold and every other listing of its unit is delisted.
/// Returns the unit's LPN and the price it sold for.
pub fn sell(conn: &mut dyn Sql, id: i64, now_ms: i64) -> Result<(String, i64), SaleError> {
    in_transaction(conn, |tx| {
        let row: Option<(String, String, i64)> = tx.map_row_opt(
            "SELECT lpn, status, price_yen FROM listings WHERE id = ?1",
            &[&id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let Some((lpn, status, price)) = row else {
            return Err(SaleError::Unknown(id));
        };
        if status != "listed" {
            return Err(SaleError::NotListed { id, status });
        }
        tx.execute(
            "UPDATE listings SET status = 'sold', updated_ms = ?2 WHERE id = ?1",
            &[&id, &now_ms],
        )?;
        tx.execute(
            "UPDATE listings SET status = 'delisted', updated_ms = ?2 WHERE lpn = ?1 AND status = 'listed'",
            &[&lpn, &now_ms],
        )?;
        Ok((lpn, price))
    })
}

/// A listing as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Listing {
    pub id: i64,
    pub lpn: String,
    pub channel: String,
    pub site: String,
    pub sku: String,
    pub grade: String,
    pub price_yen: i64,
    pub status: String,
}

/// Listings with `status` (all when `None`), newest first.
pub fn listings(
    conn: &mut dyn Sql,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<Listing>, StoreError> {
    Ok(conn.map_rows(
        "SELECT id, lpn, channel, site, sku, grade, price_yen, status FROM listings
         WHERE CAST(?1 AS TEXT) IS NULL OR status = ?1 ORDER BY id DESC LIMIT ?2",
        &[&status, &to_i64(limit as u64)],
        |r| {
            Ok(Listing {
                id: r.get(0)?,
                lpn: r.get(1)?,
                channel: r.get(2)?,
                site: r.get(3)?,
                sku: r.get(4)?,
                grade: r.get(5)?,
                price_yen: r.get(6)?,
                status: r.get(7)?,
            })
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{init, migrations};
    use rusqlite::Connection;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO catalog (merchant, sku, category, price_yen, final_sale, needs_testing)
               VALUES ('brand-a', 'COAT', 'outerwear', 20000, 0, 0);
             INSERT INTO units (lpn, site, sku, state, grade, updated_ms)
               VALUES ('LPN-1', 'osaka', 'COAT', 'placed:resale', 'B', 0),
                      ('LPN-2', 'osaka', 'COAT', 'placed:resale', 'X', 0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn prices_follow_the_grade_and_the_markdown_schedule() {
        let config = ResaleConfig::default();
        let outlet = &config.channels[0];
        assert_eq!(
            asking_price(&config, outlet, 20000, Grade::B, 0),
            Some(12000)
        );
        assert_eq!(
            asking_price(&config, outlet, 20000, Grade::B, 14),
            Some(10800)
        );
        assert_eq!(
            asking_price(&config, outlet, 20000, Grade::B, 45),
            Some(9000)
        );
        assert_eq!(
            asking_price(&config, outlet, 20000, Grade::B, 365),
            Some(6000)
        );
        assert_eq!(asking_price(&config, outlet, 20000, Grade::X, 0), None);
    }

    #[test]
    fn a_traded_in_unit_is_listed_only_once_its_offer_is_accepted() {
        let mut conn = open();
        conn.execute_batch(
            "UPDATE units SET state = 'graded' WHERE lpn = 'LPN-2';
             INSERT INTO units (lpn, site, sku, rma, state, grade, updated_ms)
               VALUES ('LPN-T1', 'osaka', 'COAT', 'RMA-T1', 'placed:resale', 'B', 0),
                      ('LPN-T2', 'osaka', 'COAT', 'RMA-T2', 'placed:resale', 'B', 0);
             INSERT INTO trade_in_returns (quote_id, rma, payout, sent_ms, decision)
               VALUES ('Q-1', 'RMA-T1', 'store_credit', 0, NULL),
                      ('Q-2', 'RMA-T2', 'store_credit', 0, 'declined');",
        )
        .unwrap();
        let config = ResaleConfig::default();
        let listed = |conn: &mut Connection| -> Vec<String> {
            let mut stmt = conn
                .prepare("SELECT DISTINCT lpn FROM listings ORDER BY lpn")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        list_pending(&mut conn, &config, 0).unwrap();
        assert_eq!(
            listed(&mut conn),
            ["LPN-1"],
            "undecided and declined kept back"
        );
        conn.execute(
            "UPDATE trade_in_returns SET decision = 'accepted' WHERE rma = 'RMA-T1'",
            [],
        )
        .unwrap();
        list_pending(&mut conn, &config, 1).unwrap();
        assert_eq!(listed(&mut conn), ["LPN-1", "LPN-T1"]);
    }

    #[test]
    fn listed_on_every_channel_marked_down_and_sold_once() {
        let mut conn = open();
        let config = ResaleConfig::default();
        assert_eq!(
            list_pending(&mut conn, &config, 0).unwrap(),
            2,
            "the X unit is not listed"
        );
        assert_eq!(list_pending(&mut conn, &config, 0).unwrap(), 0, "once");
        let mut tx = conn.transaction().unwrap();
        let lpn = Lpn::new("LPN-1").unwrap();
        assert_eq!(
            list_unit(&mut tx, &config, &lpn, 0).unwrap(),
            0,
            "once per channel"
        );
        tx.commit().unwrap();
        assert_eq!(mark_down(&mut conn, &config, 13 * DAY_MS).unwrap(), 0);
        assert_eq!(mark_down(&mut conn, &config, 15 * DAY_MS).unwrap(), 2);
        let live = listings(&mut conn, Some("listed"), 10).unwrap();
        let prices: Vec<i64> = live.iter().map(|l| l.price_yen).collect();
        assert_eq!(prices, [9900, 10800]);
        let (sold_lpn, price) = sell(&mut conn, live[1].id, 16 * DAY_MS).unwrap();
        assert_eq!((sold_lpn.as_str(), price), ("LPN-1", 10800));
        assert!(listings(&mut conn, Some("listed"), 10).unwrap().is_empty());
        assert!(matches!(
            sell(&mut conn, live[0].id, 17 * DAY_MS),
            Err(SaleError::NotListed { .. })
        ));
        assert!(matches!(
            sell(&mut conn, 999, 17 * DAY_MS),
            Err(SaleError::Unknown(999))
        ));
    }

    #[test]
    fn a_unit_leaving_its_site_is_delisted() {
        let mut conn = open();
        list_pending(&mut conn, &ResaleConfig::default(), 0).unwrap();
        let mut tx = conn.transaction().unwrap();
        assert_eq!(
            delist_unit(&mut tx, &Lpn::new("LPN-1").unwrap(), 5).unwrap(),
            2
        );
        tx.commit().unwrap();
        assert!(listings(&mut conn, Some("listed"), 10).unwrap().is_empty());
        assert_eq!(listings(&mut conn, Some("delisted"), 10).unwrap().len(), 2);
    }
}
