//! What ops do about an alert from the dashboard: acknowledge it (it stops shouting until its
//! condition clears) or mute it for a time. Each is posted with the session's CSRF token and
//! recorded with the session's key and the time (`store::alert_silences`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson};
use super::session::{self, Browser};
use crate::store::alert_silences::{self, ACKNOWLEDGED, MUTED};
use crate::Ctx;

/// The longest mute, in minutes (a week): a longer silence is a threshold to change.
pub const ALERT_MUTE_MINUTES_MAX: u32 = 7 * 24 * 60;

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/ui/csrf", get(csrf))
        .route("/ui/alerts/acknowledge", post(acknowledge))
        .route("/ui/alerts/mute", post(mute))
}

#[derive(Serialize)]
struct Csrf {
    csrf: String,
}

/// The session's CSRF token, for a page whose reads carry none (the dashboard's are shared).
async fn csrf(browser: Browser) -> Result<Json<Csrf>, ApiError> {
    browser.require_ops()?;
    Ok(Json(Csrf {
        csrf: session::csrf_token(&browser.session_id),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcknowledgeRequest {
    alert: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteRequest {
    alert: String,
    minutes: u32,
}

#[derive(Serialize)]
struct Silenced {
    alert: String,
    kind: &'static str,
    by_key_id: String,
    until_ms: Option<i64>,
}

/// Checks the request and that `alert` is raised now, then records the silence.
async fn record(
    ctx: &Ctx,
    browser: &Browser,
    headers: &HeaderMap,
    alert: String,
    kind: &'static str,
    until_ms: Option<i64>,
) -> Result<Json<Silenced>, ApiError> {
    browser.require_ops()?;
    browser.require_csrf(headers)?;
    let now_ms = ctx.clock.now_ms();
    let raised = ctx.dashboard.snapshot(ctx, now_ms).await?.alerts;
    if !raised.iter().any(|a| a.key == alert) {
        return Err(ApiError::conflict(format!(
            "the alert {alert} is no longer raised: its condition cleared"
        )));
    }
    let (a, by) = (alert.clone(), browser.key_id.clone());
    ctx.db
        .call(move |c| alert_silences::silence(c, &a, kind, &by, now_ms, until_ms))
        .await?;
    ctx.dashboard.invalidate().await;
    tracing::info!(alert = %alert, kind, key_id = %browser.key_id, until_ms, "alert silenced");
    Ok(Json(Silenced {
        alert,
        kind,
        by_key_id: browser.key_id.clone(),
        until_ms,
    }))
}

async fn acknowledge(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<AcknowledgeRequest>,
) -> Result<Json<Silenced>, ApiError> {
    record(&ctx, &browser, &headers, req.alert, ACKNOWLEDGED, None).await
}

async fn mute(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<MuteRequest>,
) -> Result<Json<Silenced>, ApiError> {
    if !(1..=ALERT_MUTE_MINUTES_MAX).contains(&req.minutes) {
        return Err(ApiError::invalid_field(
            "minutes",
            format!("a mute lasts 1 to {ALERT_MUTE_MINUTES_MAX} minutes"),
        ));
    }
    let until_ms = ctx.clock.now_ms() + i64::from(req.minutes) * 60_000;
    record(&ctx, &browser, &headers, req.alert, MUTED, Some(until_ms)).await
}
