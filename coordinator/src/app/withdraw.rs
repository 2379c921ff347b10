//! Withdrawing returns at their sites: a cancellation asked for, and the expiry of returns
//! nothing of which arrived in time.

use std::sync::Arc;

use modori_shared::domain::RmaId;
use tracing::info;

use crate::{store, CoordinatorError, Ctx};

/// Cancels a return nothing of which has arrived, and withdraws it at its site.
pub async fn cancel_return(
    ctx: &Arc<Ctx>,
    rma: RmaId,
    by: String,
) -> Result<store::lifecycle::Cancel, CoordinatorError> {
    let r = rma.clone();
    let now_ms = ctx.clock.now_ms();
    let mut outcome = ctx
        .db
        .call(move |c| store::lifecycle::cancel(c, &r, &by, now_ms))
        .await?;
    if let store::lifecycle::Cancel::Cancelled { site, queued, .. } = &mut outcome {
        info!(rma = %rma, site = %site, "return cancelled; withdrawn at its site");
        ctx.wake(std::mem::take(queued));
        // Its exchange's stock may be released at another site.
        super::logged("waking the sites", &rma, super::wake_all_streams(ctx).await);
    }
    Ok(outcome)
}

/// Expires the returns nothing of which was received within `returns.expire_after_days` of
/// `now_ms`, here and at their sites; returns how many. Runs at start and every
/// [`crate::SWEEP_INTERVAL`].
pub async fn expire_returns(ctx: &Arc<Ctx>, now_ms: i64) -> Result<usize, CoordinatorError> {
    let cutoff = now_ms - i64::from(ctx.config.returns.expire_after_days) * 86_400_000;
    let mut n = 0;
    loop {
        let expired = ctx
            .db
            .call(move |c| store::lifecycle::expire_before(c, cutoff, now_ms))
            .await?;
        for (rma, site, _) in expired.iter() {
            info!(rma = %rma, site = %site, "return expired; withdrawn at its site");
        }
        let n_expired = expired.len();
        ctx.wake(expired.queued);
        if n_expired > 0 {
            super::wake_all_streams(ctx).await?;
        }
        n += n_expired;
        if n_expired < store::lifecycle::EXPIRE_BATCH_MAX {
            return Ok(n);
        }
    }
}
