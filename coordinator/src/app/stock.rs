//! Stock across the fleet: a unit's transfer to another site, restock rebalancing (transfer
//! orders where they pay), and the replacement of an exchange shipped from a site.

use modori_shared::domain::{Lpn, RmaId, SiteId, Sku};

use crate::rebalance::{self, Move};
use crate::store::transfers::{self as orders, OrderError};
use crate::store::{self, Queued, StoreError};
use crate::Ctx;

/// [`orders::order_transfer`], then wakes the holding site's connection.
pub async fn transfer(ctx: &Ctx, lpn: Lpn, to: SiteId) -> Result<(SiteId, u64), OrderError> {
    let fleet: Vec<SiteId> = ctx.fleet.sites.iter().map(|s| s.id.clone()).collect();
    let now_ms = ctx.clock.now_ms();
    let (site, seq) = ctx
        .db
        .call(move |c| orders::order_transfer(c, &lpn, &to, &fleet, now_ms))
        .await?;
    ctx.wake(Queued::one(site.clone(), seq));
    Ok((site, seq))
}

/// [`orders::order_exchange`], then wakes the return's site's connection.
pub async fn exchange(ctx: &Ctx, rma: RmaId, sku: Sku) -> Result<(SiteId, u64), OrderError> {
    let now_ms = ctx.clock.now_ms();
    let (site, seq) = ctx
        .db
        .call(move |c| orders::order_exchange(c, &rma, &sku, now_ms))
        .await?;
    ctx.wake(Queued::one(site.clone(), seq));
    Ok((site, seq))
}

/// Orders the moves of sellable units that pay (`rebalance::plan`), each as a transfer from
/// the site holding the unit; a unit moved or gone since the stock was read is left out.
pub async fn rebalance(ctx: &Ctx) -> Result<Vec<Move>, StoreError> {
    let (stock, demand) = ctx.db.call(|c| store::stock::stock_and_demand(c)).await?;
    let moves = rebalance::plan(&ctx.config.rebalance, &ctx.fleet.sites, &stock, &demand);
    let mut ordered = Vec::with_capacity(moves.len());
    for m in moves {
        let (Ok(lpn), Ok(to)) = (Lpn::new(m.lpn.clone()), SiteId::new(m.to.clone())) else {
            continue;
        };
        match transfer(ctx, lpn, to).await {
            Ok(_) => ordered.push(m),
            // Moved or gone since the stock was read: not ordered.
            Err(OrderError::Store(e)) => return Err(e),
            Err(OrderError::Db(e)) => return Err(StoreError::from(e)),
            Err(_) => {}
        }
    }
    Ok(ordered)
}
