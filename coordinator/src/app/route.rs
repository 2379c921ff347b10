//! Routing a return to a site and storing it there: the step every registration ends with.

use std::sync::Arc;

use modori_shared::domain::{Coordinates, ReturnLine, RmaId, SiteId};

use crate::store::{self, StoreError};
use crate::{routing, CoordinatorError, Ctx};

/// A return registered and routed.
#[derive(Clone, Debug)]
pub struct RoutedReturn {
    pub rma: RmaId,
    pub site: SiteId,
    pub explanation: String,
    /// Every site weighed, best first, with its score or why it was left out.
    pub candidates: Vec<routing::Candidate>,
    pub command_seq: u64,
}

/// Routes a return from `origin` to the nearest site, stores it and queues the expected return
/// for that site, in one transaction, then wakes that site's connection. No merchant: seen by
/// ops keys only.
pub async fn register_return(
    ctx: &Arc<Ctx>,
    rma: RmaId,
    origin_label: String,
    origin: Coordinates,
    lines: Vec<ReturnLine>,
) -> Result<RoutedReturn, CoordinatorError> {
    register(
        ctx,
        store::NewReturn {
            rma,
            merchant: None,
            origin,
            origin_label,
            origin_store: None,
            lines,
            customer: None,
            terms: None,
            order_ref: None,
            resolution: None,
        },
    )
    .await
}

/// The start of today in Japan (UTC+9, no daylight saving), in Unix milliseconds: routing
/// counts each site's load from then.
pub fn start_of_day_jst(now_ms: i64) -> i64 {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    const JST_MS: i64 = 9 * 60 * 60 * 1000;
    (now_ms + JST_MS).div_euclid(DAY_MS) * DAY_MS - JST_MS
}

/// Routes `r` (by distance, today's load per site and what its products need: electronics go
/// only to sites that test them) and registers it there, with its candidates; the site is
/// sent the expected return, and an exchange order when the customer wants a replacement.
pub async fn register(
    ctx: &Arc<Ctx>,
    r: store::NewReturn,
) -> Result<RoutedReturn, CoordinatorError> {
    let merchant = r.merchant.as_ref().map(|m| m.to_string());
    let skus: Vec<String> = r.lines.iter().map(|l| l.sku.to_string()).collect();
    let since = start_of_day_jst(ctx.clock.now_ms());
    let (needs_testing, routed) = ctx
        .db
        .call(move |c| {
            let mut testing = false;
            for sku in &skus {
                testing |=
                    store::catalog::product(c, merchant.as_deref(), sku)?.is_some_and(|p| p.2);
            }
            Ok::<_, StoreError>((testing, store::commerce::routed_since(c, since)?))
        })
        .await?;
    let needs = routing::Needs {
        testing: needs_testing,
        n_units: u32::try_from(modori_shared::domain::n_units(&r.lines)).unwrap_or(u32::MAX),
    };
    let load = |s: &SiteId| {
        routed
            .iter()
            .find(|(id, _)| id == s.as_str())
            .map_or(0, |(_, n)| *n)
    };
    let (route, candidates) = routing::route(&ctx.fleet.sites, r.origin, needs, load);
    let Some(route) = route else {
        let why: Vec<String> = candidates
            .iter()
            .map(|c| format!("{}: {}", c.site, c.excluded.as_deref().unwrap_or("?")))
            .collect();
        return Err(CoordinatorError::NoSiteFor(why.join("; ")));
    };
    let site = route.site.id.clone();
    let explanation = route.explanation;
    let rma = r.rma.clone();
    let candidates_json = serde_json::to_string(&candidates).unwrap_or_default();
    let (s, e) = (site.clone(), explanation.clone());
    let sites = ctx.fleet.sites.clone();
    let exchange = r.terms.as_ref().is_some_and(|t| t.exchange_sku.is_some());
    let from_store = r.origin_store.is_some();
    let now_ms = ctx.clock.now_ms();
    let queued = ctx
        .db
        .call(move |c| store::register_return(c, &r, &s, &e, &candidates_json, &sites, now_ms))
        .await?;
    let command_seq = queued.seq_for(&site).unwrap_or(0);
    ctx.wake(queued);
    // The return is stored: what follows is redone by later passes, so a failure is logged
    // rather than answered (an error answer must mean nothing was stored).
    if exchange {
        // Its replacement may have been ordered from another site.
        super::logged("waking the sites", &rma, super::wake_all_streams(ctx).await);
    }
    if from_store {
        super::logged(
            "planning totes",
            &rma,
            super::totes::plan_totes(ctx, false).await,
        );
    }
    Ok(RoutedReturn {
        rma,
        site,
        explanation,
        candidates,
        command_seq,
    })
}
