//! The ops console's page of one site (`/sites/{site}`): its link and devices, its backlog at
//! each step and its alerts (from the dashboard's snapshot), its throughput over the last
//! half hour and its newest anomalies (`store::site_activity`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::error::{ApiError, ApiPath};
use super::page::page;
use super::session::{self, Browser, NoSession};
use crate::apikeys::Scope;
use crate::dashboard::{Alert, SiteView, THROUGHPUT_BUCKETS, THROUGHPUT_BUCKET_MS};
use crate::store::dashboard::AnomalyView;
use crate::store::{site_activity, StoreError};
use crate::Ctx;

pub(super) const SITE_HTML: &str = include_str!("../../web/site.html");
/// Anomalies the page lists at most, newest first.
pub const SITE_ANOMALIES_MAX: usize = 20;

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/sites/{site}", get(site_page))
        .route("/ui/sites/{site}", get(site))
}

async fn site_page(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    match Browser::of(&ctx, &headers).await {
        Ok(b) if b.scope == Scope::Ops => page(super::i18n::render(
            SITE_HTML,
            super::i18n::lang_of(&headers),
        )),
        Ok(_) => Redirect::to("/store").into_response(),
        Err(NoSession::Missing) => session::to_login("/"),
        Err(NoSession::Failed(e)) => e.into_response(),
    }
}

#[derive(Serialize)]
struct SitePage {
    now_ms: i64,
    site: SiteView,
    alerts: Vec<Alert>,
    /// Per timeline event kind, one count per minute over the last half hour, oldest first.
    throughput: BTreeMap<String, Vec<u64>>,
    throughput_start_ms: i64,
    throughput_bucket_ms: i64,
    anomalies: Vec<AnomalyView>,
    time_zone: String,
}

async fn site(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SitePage>, ApiError> {
    browser.require_ops()?;
    let now_ms = ctx.clock.now_ms();
    let snapshot = ctx.dashboard.snapshot(&ctx, now_ms).await?;
    let site = snapshot
        .sites
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no site {id:?} in the fleet")))?;
    let alerts = snapshot
        .alerts
        .into_iter()
        .filter(|a| a.site == id)
        .collect();
    let start_ms =
        (now_ms / THROUGHPUT_BUCKET_MS - THROUGHPUT_BUCKETS as i64 + 1) * THROUGHPUT_BUCKET_MS;
    let sid = site.id.clone();
    let (rows, anomalies) = ctx
        .db
        .call(move |c| {
            Ok::<_, StoreError>((
                site_activity::throughput(c, &sid, start_ms, THROUGHPUT_BUCKET_MS)?,
                site_activity::anomalies(c, &sid, SITE_ANOMALIES_MAX)?,
            ))
        })
        .await?;
    let mut throughput: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (bucket_ms, kind, n) in rows {
        let i = usize::try_from((bucket_ms - start_ms) / THROUGHPUT_BUCKET_MS).ok();
        let series = throughput
            .entry(kind)
            .or_insert_with(|| vec![0; THROUGHPUT_BUCKETS]);
        if let Some(slot) = i.and_then(|i| series.get_mut(i)) {
            *slot += n;
        }
    }
    Ok(Json(SitePage {
        now_ms,
        site,
        alerts,
        throughput,
        throughput_start_ms: start_ms,
        throughput_bucket_ms: THROUGHPUT_BUCKET_MS,
        anomalies,
        time_zone: ctx.config.http.time_zone.clone(),
    }))
}
