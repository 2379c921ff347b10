//! Totes: store drop-offs gathered for their site.

use tracing::info;

use crate::{store, CoordinatorError, Ctx};

/// Plans the totes of store drop-offs due now and tells their sites; `scheduled` for the
/// periodic pass (which also honours the pickup hours).
pub async fn plan_totes(ctx: &Ctx, scheduled: bool) -> Result<usize, CoordinatorError> {
    let config = ctx.config.consolidation.clone();
    let now_ms = ctx.clock.now_ms();
    let queued = ctx
        .db
        .call(move |c| store::totes::plan(c, &config, now_ms, scheduled))
        .await?;
    for (site, _) in queued.iter() {
        info!(site = %site, "tote of store drop-offs planned");
    }
    let n = queued.len();
    ctx.wake(queued);
    Ok(n)
}
