//! The answer to a repair's quote: the customer (on the status page) or the merchant (over
//! the API) accepts or declines it, and the configured default
//! (`policy.repair.default_after_deadline`) is applied to those unanswered at their deadline.
//! Each answer is recorded once, with its timeline row, which the merchant's webhooks and
//! the customer's messages follow; an acceptance at a site that does not refurbish queues
//! the unit's transfer in the same transaction, and the sites told are woken after it.

use std::sync::Arc;

use tracing::info;

use super::AppError;
use crate::store::repairs::{self, Answered, Decision, Overridden, Override};
use crate::{CoordinatorError, Ctx};

/// Answers the quote on repair return `rma` for `by` (`customer`, `merchant`).
pub async fn answer(
    ctx: &Ctx,
    rma: &str,
    decision: Decision,
    by: &'static str,
) -> Result<Answered, AppError> {
    let now_ms = ctx.clock.now_ms();
    let (r, sites) = (rma.to_owned(), ctx.fleet.sites.clone());
    let answered = ctx
        .db
        .call(move |c| repairs::answer(c, &r, decision, by, &sites, now_ms))
        .await
        .map_err(CoordinatorError::from)?;
    if let Answered::Recorded(d) = &answered {
        info!(rma, by, decision = d.as_str(), "repair quote answered");
        super::wake_all_streams(ctx).await?;
        ctx.webhooks_wake();
    }
    Ok(answered)
}

/// Overrides the quote on repair return `rma` for ops after a dispute (see
/// [`repairs::override_quote`]); the customer is told of the revised quote by the message its
/// timeline row calls for, the merchant by its webhook.
pub async fn override_quote(
    ctx: &Ctx,
    rma: &str,
    amount_yen: u64,
    reason: &str,
    key_id: &str,
) -> Result<Overridden, AppError> {
    let now_ms = ctx.clock.now_ms();
    let terms = ctx.config.policy.repair.clone();
    let (r, why, key) = (rma.to_owned(), reason.to_owned(), key_id.to_owned());
    let overridden = ctx
        .db
        .call(move |c| {
            let o = Override {
                amount_yen,
                reason: &why,
                key_id: &key,
            };
            repairs::override_quote(c, &r, &o, &terms, now_ms)
        })
        .await
        .map_err(CoordinatorError::from)?;
    if let Overridden::Recorded { deadline_ms } = &overridden {
        info!(
            rma,
            key_id, amount_yen, deadline_ms, "repair quote overridden"
        );
        ctx.webhooks_wake();
    }
    Ok(overridden)
}

/// Applies the configured default to every quote unanswered past its deadline at `now_ms`;
/// returns how many. Runs at start and every [`crate::SWEEP_INTERVAL`].
pub async fn settle_overdue(ctx: &Arc<Ctx>, now_ms: i64) -> Result<usize, CoordinatorError> {
    let default = ctx.config.policy.repair.default_after_deadline;
    let mut n = 0;
    loop {
        let sites = ctx.fleet.sites.clone();
        let settled = ctx
            .db
            .call(move |c| repairs::settle_overdue(c, default, &sites, now_ms))
            .await?;
        for rma in &settled {
            info!(rma = %rma, default = ?default, "repair quote unanswered at its deadline");
        }
        n += settled.len();
        if !settled.is_empty() {
            super::wake_all_streams(ctx).await?;
            ctx.webhooks_wake();
        }
        if settled.len() < repairs::PER_PASS_MAX {
            return Ok(n);
        }
    }
}
