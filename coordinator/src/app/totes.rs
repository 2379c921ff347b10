//! Totes: store drop-offs gathered for their site.

use tracing::info;

use crate::{chrono_ms, store, CoordinatorError, Ctx};

/// Plans the totes of store drop-offs due now and tells their sites; `scheduled` for the
/// periodic pass (which also honours the pickup hours).
pub async fn plan_totes(ctx: &Ctx, scheduled: bool) -> Result<usize, CoordinatorError> {
    let config = ctx.config.consolidation.clone();
    let queued = ctx
        .db
        .call(move |c| store::totes::plan(c, &config, chrono_ms(), scheduled))
        .await?;
    for (site, _) in queued.iter() {
        info!(site = %site, "tote of store drop-offs planned");
    }
    let n = queued.len();
    ctx.wake(queued);
    Ok(n)
}
