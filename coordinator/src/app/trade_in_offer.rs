//! After a trade-in is graded: its offer is made by the refunds' pass
//! (`store::trade_in_returns::offer_graded`, after each grading batch and in the sweep); here
//! the customer (on the status page) or the merchant (over the API) answers a counter-offer,
//! and the configured default (`policy.trade_in.default_after_deadline`) is applied to those
//! unanswered at their deadline. Each answer is recorded once, with its timeline row, which
//! the merchant's webhooks and the customer's messages follow; a decline also orders the item
//! back to the customer at its site (`store::ship_backs`), whose connection is woken here.

use std::sync::Arc;

use tracing::{info, warn};

use super::AppError;
use crate::policy::AfterDeadline;
use crate::store::trade_in_returns::{self, Answered, Decision, Overridden, TradeIn};
use crate::store::{ship_backs, sql};
use crate::{CoordinatorError, Ctx};

/// Answers the counter-offer on trade-in return `rma` for `by` (`customer`, `merchant`).
pub async fn answer(
    ctx: &Ctx,
    rma: &str,
    decision: Decision,
    by: &'static str,
) -> Result<Answered, AppError> {
    let now_ms = ctx.clock.now_ms();
    let r = rma.to_owned();
    let answered = ctx
        .db
        .call(move |c| trade_in_returns::answer(c, &r, decision, by, now_ms))
        .await
        .map_err(CoordinatorError::from)?;
    if let Answered::Recorded { payout_yen, .. } = &answered {
        info!(
            rma,
            by,
            decision = decision.as_str(),
            payout_yen,
            "trade-in counter-offer answered"
        );
        ctx.webhooks_wake();
        if decision == Decision::Declined {
            // The decline ordered the item back at its site; a site not woken now gets the
            // command when it next connects.
            if let Err(e) = super::wake_all_streams(ctx).await {
                warn!(rma, error = %e, "sites not woken after a trade-in decline");
            }
        }
    }
    Ok(answered)
}

/// Overrides the offer on trade-in return `rma` for ops (see
/// [`trade_in_returns::override_offer`] for when it is accepted at once).
pub async fn override_offer(
    ctx: &Ctx,
    rma: &str,
    amount_yen: u64,
    reason: &str,
    key_id: &str,
) -> Result<Overridden, AppError> {
    let now_ms = ctx.clock.now_ms();
    let terms = ctx.config.policy.trade_in.clone();
    let (r, why, key) = (rma.to_owned(), reason.to_owned(), key_id.to_owned());
    let overridden = ctx
        .db
        .call(move |c| {
            let o = trade_in_returns::Override {
                amount_yen,
                reason: &why,
                key_id: &key,
            };
            trade_in_returns::override_offer(c, &r, &o, &terms, now_ms)
        })
        .await
        .map_err(CoordinatorError::from)?;
    if let Overridden::Recorded { accepted, .. } = &overridden {
        info!(
            rma,
            key_id, amount_yen, accepted, "trade-in offer overridden"
        );
        ctx.webhooks_wake();
    }
    Ok(overridden)
}

/// The trade-in return `rma` is, if it is one.
pub async fn of_return(ctx: &Ctx, rma: &str) -> Result<Option<TradeIn>, AppError> {
    let r = rma.to_owned();
    Ok(ctx
        .db
        .call(move |c| trade_in_returns::of_return(c, &r))
        .await
        .map_err(CoordinatorError::from)?)
}

/// When each unit of return `rma` sent back (a declined trade-in's, a repair's; the status
/// pages of both show it) left its site, with the carrier's tracking number (none before the
/// site ships it).
pub async fn shipped_back(ctx: &Ctx, rma: &str) -> Result<Vec<(i64, Option<String>)>, AppError> {
    let r = rma.to_owned();
    let all = ctx
        .db
        .call(move |c| ship_backs::of_return(&mut sql::sqlite(c), &r))
        .await
        .map_err(CoordinatorError::from)?;
    Ok(all.into_iter().filter_map(|s| s.shipped).collect())
}

/// Applies the configured default to every counter-offer unanswered past its deadline at
/// `now_ms`; returns how many. Runs at start and every [`crate::SWEEP_INTERVAL`].
pub async fn settle_overdue(ctx: &Arc<Ctx>, now_ms: i64) -> Result<usize, CoordinatorError> {
    let default = ctx.config.policy.trade_in.default_after_deadline;
    let mut n = 0;
    loop {
        let settled = ctx
            .db
            .call(move |c| trade_in_returns::settle_overdue(c, default, now_ms))
            .await?;
        for rma in &settled {
            info!(rma = %rma, default = ?default, "trade-in counter-offer unanswered at its deadline");
        }
        n += settled.len();
        if !settled.is_empty() {
            ctx.webhooks_wake();
            if default == AfterDeadline::Decline {
                // Each decline ordered its item back at its site.
                super::wake_all_streams(ctx).await?;
            }
        }
        if settled.len() < trade_in_returns::PER_PASS_MAX {
            return Ok(n);
        }
    }
}
