//! The ops console's quarantine screen (`/quarantine`): the units really waiting to be
//! matched (the API's definition, `store::quarantine`), oldest first, each with the returns
//! it may belong to (`store::match_suggestions`), and the match, posted with the session's
//! CSRF token and carried out by `app::quarantine` as the API's match is.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use modori_shared::domain::{Lpn, RmaId};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson, ApiPath};
use super::page::page;
use super::rfc3339;
use super::session::{self, Browser, NoSession};
use crate::apikeys::Scope;
use crate::store::{self, match_suggestions, QuarantinedUnit};
use crate::Ctx;

pub(super) const QUARANTINE_HTML: &str = include_str!("../../web/quarantine.html");
/// Units the screen lists at most (the oldest first: they have waited longest).
pub const QUARANTINE_SCREEN_UNITS_MAX: usize = 100;
/// Returns suggested per unit at most.
pub const SUGGESTIONS_PER_UNIT_MAX: usize = 5;

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/quarantine", get(quarantine_page))
        .route("/ui/quarantine", get(waiting))
        .route("/ui/quarantine/{lpn}/match", post(match_unit))
}

async fn quarantine_page(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    match Browser::of(&ctx, &headers).await {
        Ok(b) if b.scope == Scope::Ops => page(super::i18n::render(
            QUARANTINE_HTML,
            super::i18n::lang_of(&headers),
        )),
        Ok(_) => Redirect::to("/store").into_response(),
        Err(NoSession::Missing) => session::to_login("/quarantine"),
        Err(NoSession::Failed(e)) => e.into_response(),
    }
}

/// A waiting unit with the returns it may belong to.
#[derive(Serialize)]
struct WaitingUnit {
    #[serde(flatten)]
    unit: QuarantinedUnit,
    /// Since when it has waited (RFC 3339).
    since: Option<String>,
    suggestions: Vec<match_suggestions::Suggestion>,
}

#[derive(Serialize)]
struct Waiting {
    units: Vec<WaitingUnit>,
    time_zone: String,
    csrf: String,
}

async fn waiting(State(ctx): State<Arc<Ctx>>, browser: Browser) -> Result<Json<Waiting>, ApiError> {
    browser.require_ops()?;
    let units = ctx
        .db
        .call(|c| {
            store::quarantine(c, QUARANTINE_SCREEN_UNITS_MAX)?
                .into_iter()
                .map(|unit| {
                    let suggestions =
                        match_suggestions::for_unit(c, &unit.lpn, SUGGESTIONS_PER_UNIT_MAX)?;
                    Ok::<_, store::StoreError>(WaitingUnit {
                        since: rfc3339(unit.updated_ms),
                        unit,
                        suggestions,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(Json(Waiting {
        units,
        time_zone: ctx.config.http.time_zone.clone(),
        csrf: session::csrf_token(&browser.session_id),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchRequest {
    rma: String,
}

#[derive(Serialize)]
struct Matched {
    lpn: String,
    rma: String,
    site: String,
}

async fn match_unit(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    headers: HeaderMap,
    ApiPath(lpn): ApiPath<String>,
    ApiJson(req): ApiJson<MatchRequest>,
) -> Result<Json<Matched>, ApiError> {
    browser.require_ops()?;
    browser.require_csrf(&headers)?;
    let lpn = Lpn::new(lpn).map_err(|e| ApiError::invalid_path("lpn", e))?;
    let rma = RmaId::new(req.rma.trim()).map_err(|e| ApiError::invalid_field("rma", e))?;
    tracing::info!(lpn = %lpn, rma = %rma, key_id = %browser.key_id, "ops console: match");
    match crate::app::quarantine::match_unit(&ctx, lpn.clone(), rma.clone()).await {
        Ok(site) => Ok(Json(Matched {
            lpn: lpn.to_string(),
            rma: rma.to_string(),
            site: site.to_string(),
        })),
        Err(e @ (store::MatchError::UnknownUnit(_) | store::MatchError::UnknownReturn(_))) => {
            Err(ApiError::not_found(e.to_string()))
        }
        Err(store::MatchError::NotQuarantined(_)) => Err(ApiError::conflict(format!(
            "{lpn} is no longer waiting: it was matched or released meanwhile"
        ))),
        Err(store::MatchError::Store(e)) => Err(e.into()),
    }
}
