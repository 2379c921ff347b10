//! The coordinator's HTTP side: health, the versioned JSON API, metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::store;
use crate::Ctx;

/// Anomalies returned by one request at most.
pub const ANOMALIES_LIST_MAX: usize = 500;

pub fn router(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/sites", get(sites))
        .route("/api/v1/anomalies", get(anomalies))
        .fallback(not_found)
        .with_state(ctx)
}

#[derive(Serialize)]
struct ApiError {
    error: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route; see /api/v1/sites")
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(ctx): State<Arc<Ctx>>) -> Response {
    ctx.metrics.sites_online.set(ctx.live.n_online() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ctx.metrics.render(),
    )
        .into_response()
}

#[derive(Serialize)]
struct SiteView {
    id: String,
    name: String,
    latitude: f64,
    longitude: f64,
    online: bool,
    protocol_version: Option<u16>,
    epoch: Option<String>,
    /// Highest op seq of the site's current epoch applied here.
    applied_seq: u64,
    /// Ops the site has recorded that are not applied here yet; null when unknown.
    lag_ops: Option<u64>,
    last_seen: Option<String>,
    commands_sent_seq: u64,
    commands_acked_seq: u64,
}

fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

async fn sites(State(ctx): State<Arc<Ctx>>) -> Response {
    let ids: Vec<_> = ctx.fleet.sites.iter().map(|s| s.id.clone()).collect();
    let synced = ctx
        .db
        .call(move |c| {
            ids.iter()
                .map(|id| store::site_sync(c, id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
    let synced = match synced {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let views: Vec<SiteView> = ctx
        .fleet
        .sites
        .iter()
        .zip(synced)
        .map(|(site, sync)| {
            let live = ctx.live.get(&site.id);
            // The live connection knows the current epoch; otherwise the newest one stored.
            let epoch = live.epoch.or(sync.epoch);
            let applied_seq = if live.epoch.is_some() && live.epoch != sync.epoch {
                live.applied_seq
            } else {
                sync.applied_seq.max(live.applied_seq)
            };
            let lag_ops = live
                .outbox_head_seq
                .map(|head| head.saturating_sub(applied_seq));
            if let Some(lag) = lag_ops {
                ctx.metrics.site_lag(&site.id, lag);
            }
            SiteView {
                id: site.id.to_string(),
                name: site.name.clone(),
                latitude: site.location.lat(),
                longitude: site.location.lon(),
                online: live.connection.is_some(),
                protocol_version: live.protocol_version,
                epoch: epoch.map(|e| e.to_string()),
                applied_seq,
                lag_ops,
                last_seen: live.last_seen_ms.and_then(rfc3339),
                commands_sent_seq: sync.command_head_seq,
                commands_acked_seq: sync.command_acked_seq,
            }
        })
        .collect();
    Json(views).into_response()
}

async fn anomalies(State(ctx): State<Arc<Ctx>>) -> Response {
    match ctx
        .db
        .call(|c| store::anomalies(c, ANOMALIES_LIST_MAX))
        .await
    {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
