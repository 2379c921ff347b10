//! Sellable stock across the fleet and the demand the merchants reported: what restock
//! rebalancing weighs.

use std::collections::BTreeMap;

use super::sql::Sql;
use super::StoreError;
use crate::rebalance::Stock;
use modori_shared::domain::{Lpn, SiteId, Sku};

/// A sellable unit `u`: grade A, on a restock shelf, and not ordered back to its customer (a
/// declined trade-in keeps its shelf until it is packed). Rebalancing moves these and an
/// exchange reserves one, so both select with this one condition.
macro_rules! sellable_unit_sql {
    () => {
        "u.state = 'placed:restock' AND u.grade = 'A'
         AND NOT EXISTS (SELECT 1 FROM ship_backs sb WHERE sb.lpn = u.lpn)"
    };
}
pub(crate) use sellable_unit_sql;

/// Sellable units by site and SKU, and the units of each SKU each site sells in the horizon.
pub type StockAndDemand = (Vec<Stock>, BTreeMap<(SiteId, Sku), u32>);

pub fn stock_and_demand(c: &mut dyn Sql) -> Result<StockAndDemand, StoreError> {
    let mut stock: Vec<Stock> = Vec::new();
    let rows = c.map_rows(
        concat!(
            "SELECT u.site, u.sku, u.lpn,
                    COALESCE((SELECT price_yen FROM catalog WHERE sku = u.sku ORDER BY merchant LIMIT 1), 0)
             FROM units u WHERE ",
            sellable_unit_sql!(),
            "
             ORDER BY u.site, u.sku, u.updated_ms, u.lpn"
        ),
        &[],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<i64>(3)?,
            ))
        },
    )?;
    for (site, sku, lpn, price) in rows {
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
    let mut demand = BTreeMap::new();
    let rows = c.map_rows("SELECT site, sku, units FROM demand", &[], |r| {
        Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?))
    })?;
    for (site, sku, units) in rows {
        demand.insert(
            (SiteId::new(site)?, Sku::new(sku)?),
            u32::try_from(units).unwrap_or(0),
        );
    }
    Ok((stock, demand))
}
