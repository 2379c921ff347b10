//! The hourly sweeps: personal data past its retention, returns past their expiry, trade-in
//! and repair answers past their deadline, follow-up passes a crash postponed, expired browser
//! sessions, tote planning and resale markdowns. One coordinator at a time runs them (their
//! lease); each also runs at start.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;

use crate::{app, store, Ctx, SWEEP_INTERVAL};

/// Runs the sweeps at start and every [`SWEEP_INTERVAL`] until shutdown.
pub async fn run(ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>) {
    let mut lease = app::leases::LeaseHold::new("sweeps", app::leases::SWEEP_LEASE_TERM);
    loop {
        if lease.hold(&ctx).await {
            if let Err(e) = app::privacy::privacy_sweep(&ctx, ctx.clock.now_ms()).await {
                tracing::warn!(error = %e, "personal data sweep failed");
            }
            if let Err(e) = app::withdraw::expire_returns(&ctx, ctx.clock.now_ms()).await {
                tracing::warn!(error = %e, "return expiry sweep failed");
            }
            if let Err(e) = app::trade_in_offer::settle_overdue(&ctx, ctx.clock.now_ms()).await {
                tracing::warn!(error = %e, "trade-in deadline sweep failed");
            }
            if let Err(e) = app::repair_answer::settle_overdue(&ctx, ctx.clock.now_ms()).await {
                tracing::warn!(error = %e, "repair deadline sweep failed");
            }
            if let Err(e) = app::batch::after_ops_applied(&ctx, None).await {
                tracing::warn!(error = %e, "decisions, listings, refunds and matches postponed");
            }
            let now_ms = ctx.clock.now_ms();
            match ctx
                .db
                .call(move |c| store::sessions::prune(c, now_ms))
                .await
            {
                Ok(n) if n > 0 => info!(n_sessions = n, "expired browser sessions deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "session sweep failed"),
            }
            if let Err(e) = app::totes::plan_totes(&ctx, true).await {
                tracing::warn!(error = %e, "tote planning failed");
            }
            let resale = ctx.config.resale.clone();
            let now_ms = ctx.clock.now_ms();
            match ctx
                .db
                .call(move |c| store::listings::mark_down(c, &resale, now_ms))
                .await
            {
                Ok(n) if n > 0 => info!(n_repriced = n, "resale listings marked down"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "resale markdown failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = shutdown.changed() => break,
        }
    }
    lease.release(&ctx).await;
}
