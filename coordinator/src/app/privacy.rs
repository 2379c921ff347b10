//! Personal data: pseudonymised when the retention period ends or when a customer asks to be
//! forgotten, here and at the sites that hold it.

use std::sync::Arc;

use tracing::info;

use crate::{store, CoordinatorError, Ctx};

/// Pseudonymises returns older than the retention period here and at their sites; returns how
/// many. Runs at start and every [`crate::SWEEP_INTERVAL`].
pub async fn privacy_sweep(ctx: &Arc<Ctx>, now_ms: i64) -> Result<usize, CoordinatorError> {
    let cutoff = now_ms - i64::from(ctx.config.privacy.retention_days) * 86_400_000;
    let (n, told) = ctx
        .db
        .call(move |c| store::erase_personal_data_before(c, cutoff, now_ms))
        .await?;
    ctx.wake(told);
    if n > 0 {
        info!(
            n_returns = n,
            "personal data past its retention pseudonymised"
        );
    }
    Ok(n)
}

/// A customer asked to be forgotten: their returns are pseudonymised here, and the sites that
/// hold them are told to erase what they keep. Returns how many returns.
pub async fn forget_customer(ctx: &Arc<Ctx>, reference: String) -> Result<usize, CoordinatorError> {
    let now_ms = ctx.clock.now_ms();
    let (n, told) = ctx
        .db
        .call(move |c| store::forget_customer(c, &reference, now_ms))
        .await?;
    ctx.wake(told);
    Ok(n)
}
