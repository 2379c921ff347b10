//! A site's batch of ops: applied exactly once and in order, the sites of the commands it
//! queued woken, and what follows it without being part of its effect.

use modori_shared::domain::{Epoch, SiteId};
use modori_shared::op::OpKind;
use modori_shared::wire::messages::Sequenced;
use tracing::{debug, warn};

use crate::store::{self, BatchOutcome, SiteBatch, StoreError};
use crate::Ctx;

/// Applies `ops` of `site`'s stream in `epoch` in a transaction (shared with other sites'
/// batches that arrived meanwhile, see `group_commit`), wakes the sites of the
/// commands it queued, then runs the passes its kinds of op need (a failure there is logged:
/// the next pass redoes it, and it must not cost the site its link). The outcome says what to
/// acknowledge.
pub async fn apply_batch(
    ctx: &Ctx,
    site: &SiteId,
    epoch: Epoch,
    ops: Vec<Sequenced>,
    applied_ms: i64,
) -> Result<BatchOutcome, StoreError> {
    let n_ops = ops.len();
    let batch = SiteBatch {
        site: site.clone(),
        epoch,
        ops,
        applied_ms,
    };
    let mut outcome = ctx.apply_groups.apply(&ctx.db, batch).await?;
    ctx.metrics
        .ops_applied(site, outcome.n_applied as u64, outcome.n_duplicates as u64);
    if let Some(gap) = outcome.gap_at {
        warn!(site = %site, gap_at = gap, applied = outcome.applied_seq, "gap in op stream; waiting for resend");
    }
    debug!(site = %site, n_ops, applied = outcome.applied_seq, n_anomalies = outcome.n_anomalies, "batch applied");
    ctx.wake(std::mem::take(&mut outcome.commands_queued));
    if outcome.n_applied > 0 {
        if let Err(e) = after_ops_applied(ctx, Some((&outcome.kinds, applied_ms))).await {
            warn!(site = %site, error = %e, "decisions and listings postponed");
        }
    }
    Ok(outcome)
}

/// What follows applied ops without being part of their effect, each found from what is
/// stored so a crash only postpones it: the centre's disposition decisions (waking the sites
/// told to change one), the listings of units put away for resale, refunds once graded,
/// automatic matches of quarantined units, exchange orders due at receipt. After a batch
/// (`batch` = the kinds it applied and when) only the passes those kinds can need run, over
/// what is new; at start and in the hourly sweep (`None`) every pass runs over everything.
pub async fn after_ops_applied(
    ctx: &Ctx,
    batch: Option<(&std::collections::BTreeSet<OpKind>, i64)>,
) -> Result<(), StoreError> {
    let valuation = ctx.config.valuation.clone();
    let resale = ctx.config.resale.clone();
    let policy = ctx.config.policy.clone();
    let sites = ctx.fleet.sites.clone();
    let needs = |kinds: &[OpKind]| batch.is_none_or(|(k, _)| kinds.iter().any(|x| k.contains(x)));
    let decide = needs(&[
        OpKind::DispositionSet,
        OpKind::DispositionUndone,
        OpKind::UnitGraded,
    ]);
    let list = needs(&[OpKind::UnitPutAway]);
    let refunds = needs(&[
        OpKind::UnitGraded,
        OpKind::ParcelClosed,
        OpKind::ToteReceived,
        OpKind::ReceiptVoided,
    ]);
    let matching = needs(&[OpKind::UnitReceived]);
    let since = batch.map(|(_, applied_ms)| applied_ms);
    let now = ctx.clock.now_ms();
    let queued = ctx
        .db
        .call(move |c| {
            let mut queued = store::Queued::none();
            if decide {
                queued.extend(store::decisions::decide_pending(
                    c, &valuation, &sites, now,
                )?);
            }
            if list {
                store::listings::list_pending(c, &resale, now)?;
            }
            if refunds {
                store::commerce::compute_refunds(c, &policy, now)?;
                queued.extend(store::reservations::order_due(c, now)?);
            }
            if matching {
                queued.extend(store::commerce::match_quarantined(c, now, since)?);
            }
            Ok::<_, StoreError>(queued)
        })
        .await?;
    ctx.wake(queued);
    ctx.webhooks_wake();
    Ok(())
}
