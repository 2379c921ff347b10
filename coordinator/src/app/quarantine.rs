//! Quarantine: a unit received without a return it could be matched to, matched by ops.

use modori_shared::domain::{Lpn, RmaId, SiteId};

use crate::store::{self, MatchError};
use crate::Ctx;

/// Matches quarantined unit `lpn` to return `rma`, here and at the unit's site (woken once
/// committed); returns that site.
pub async fn match_unit(ctx: &Ctx, lpn: Lpn, rma: RmaId) -> Result<SiteId, MatchError> {
    let now_ms = ctx.clock.now_ms();
    let (site, queued) = ctx
        .db
        .call(move |c| store::match_unidentified(c, &lpn, &rma, now_ms))
        .await?;
    ctx.wake(queued);
    Ok(site)
}
