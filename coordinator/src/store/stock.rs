//! Sellable stock across the fleet and the demand the merchants reported: what restock
//! rebalancing weighs.

use std::collections::BTreeMap;

use modori_shared::domain::{Lpn, SiteId, Sku};
use rusqlite::Connection;

use super::StoreError;
use crate::rebalance::Stock;

/// A sellable unit `u`: grade A, on a restock shelf. Rebalancing moves these and an exchange
/// reserves one, so both select with this one condition.
macro_rules! sellable_unit_sql {
    () => {
        "u.state = 'placed:restock' AND u.grade = 'A'"
    };
}
pub(crate) use sellable_unit_sql;

/// Sellable units by site and SKU, and the units of each SKU each site sells in the horizon.
pub type StockAndDemand = (Vec<Stock>, BTreeMap<(SiteId, Sku), u32>);

pub fn stock_and_demand(c: &mut Connection) -> Result<StockAndDemand, StoreError> {
    let mut stock: Vec<Stock> = Vec::new();
    {
        let mut stmt = c.prepare_cached(concat!(
            "SELECT u.site, u.sku, u.lpn,
                    COALESCE((SELECT price_yen FROM catalog WHERE sku = u.sku ORDER BY merchant LIMIT 1), 0)
             FROM units u WHERE ",
            sellable_unit_sql!(),
            "
             ORDER BY u.site, u.sku, u.updated_ms, u.lpn"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (site, sku, lpn, price) = row?;
            let (site, sku, lpn) = (SiteId::new(site)?, Sku::new(sku)?, Lpn::new(lpn)?);
            match stock.last_mut() {
                Some(s) if s.site == site && s.sku == sku => s.lpns.push(lpn),
                _ => stock.push(Stock {
                    site,
                    sku,
                    price_yen: u64::try_from(price).unwrap_or(0),
                    lpns: vec![lpn],
                }),
            }
        }
    }
    let mut demand = BTreeMap::new();
    let mut stmt = c.prepare_cached("SELECT site, sku, units FROM demand")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (site, sku, units) = row?;
        demand.insert(
            (SiteId::new(site)?, Sku::new(sku)?),
            u32::try_from(units).unwrap_or(0),
        );
    }
    Ok((stock, demand))
}
