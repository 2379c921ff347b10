//! The ops console's page of one return (`/returns/{rma}`): its timeline, units and
//! decisions (read from `/ui/returns/{rma}`), and the actions ops may take on it, each posted
//! with the session's CSRF token and carried out by the use case the API calls.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use modori_shared::domain::{Lpn, RmaId, SiteId};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson, ApiPath};
use super::page::page;
use super::session::{self, Browser, NoSession};
use crate::apikeys::Scope;
use crate::store::transfers::OrderError;
use crate::store::{lifecycle, StoreError};
use crate::Ctx;

pub(super) const RETURN_HTML: &str = include_str!("../../web/return.html");

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/returns/{rma}", get(return_page))
        .route("/ui/returns/{rma}/cancel", post(cancel))
        .route("/ui/units/{lpn}/transfer", post(transfer))
        .route(
            "/ui/returns/{rma}/trade-in/override",
            post(super::trade_in::override_from_page),
        )
}

/// The page, for an ops session (it reads the return itself).
async fn return_page(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    match Browser::of(&ctx, &headers).await {
        Ok(b) if b.scope == Scope::Ops => page(super::i18n::render(
            RETURN_HTML,
            super::i18n::lang_of(&headers),
        )),
        Ok(_) => Redirect::to("/store").into_response(),
        // A login lands on the list (its landings are a fixed set: no open redirect).
        Err(NoSession::Missing) => session::to_login("/returns"),
        Err(NoSession::Failed(e)) => e.into_response(),
    }
}

#[derive(Serialize)]
struct Cancelled {
    rma: String,
    status: String,
}

/// Cancels the return, as `POST /api/v1/returns/{rma}/cancel` does; the timeline records the
/// session's key.
async fn cancel(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    headers: HeaderMap,
    ApiPath(rma): ApiPath<String>,
) -> Result<Json<Cancelled>, ApiError> {
    browser.require_ops()?;
    browser.require_csrf(&headers)?;
    let rma = RmaId::new(rma).map_err(|e| ApiError::invalid_path("rma", e))?;
    let by = format!("ops console, key {}", browser.key_id);
    match crate::app::withdraw::cancel_return(&ctx, rma.clone(), by).await? {
        lifecycle::Cancel::Cancelled { .. } | lifecycle::Cancel::AlreadyCancelled => {
            Ok(Json(Cancelled {
                rma: rma.to_string(),
                status: lifecycle::CANCELLED.to_owned(),
            }))
        }
        lifecycle::Cancel::NotFound => Err(ApiError::not_found(format!("no return {rma}"))),
        lifecycle::Cancel::NotOpen(status) => Err(ApiError::conflict(format!(
            "{rma} cannot be cancelled: it is {status}, and only a return nothing of which has \
             arrived at its site can be cancelled."
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferRequest {
    to: String,
}

#[derive(Serialize)]
struct TransferOrdered {
    lpn: String,
    from: String,
    to: String,
}

/// Orders a unit moved to another site, as `POST /api/v1/units/{lpn}/transfer` does.
async fn transfer(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    headers: HeaderMap,
    ApiPath(lpn): ApiPath<String>,
    ApiJson(req): ApiJson<TransferRequest>,
) -> Result<Json<TransferOrdered>, ApiError> {
    browser.require_ops()?;
    browser.require_csrf(&headers)?;
    let lpn = Lpn::new(lpn).map_err(|e| ApiError::invalid_path("lpn", e))?;
    let to = SiteId::new(req.to).map_err(|e| ApiError::invalid_field("to", e))?;
    tracing::info!(lpn = %lpn, to = %to, key_id = %browser.key_id, "ops console: transfer");
    match crate::app::stock::transfer(&ctx, lpn.clone(), to.clone()).await {
        Ok((from, _)) => Ok(Json(TransferOrdered {
            lpn: lpn.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        })),
        Err(e @ OrderError::UnknownUnit(_)) => Err(ApiError::not_found(e.to_string())),
        Err(e @ OrderError::UnknownSite(_)) => Err(ApiError::unknown_field("to", e)),
        Err(e @ (OrderError::SameSite { .. } | OrderError::Departed { .. })) => {
            Err(ApiError::conflict(e.to_string()))
        }
        Err(OrderError::UnknownReturn(r)) => Err(ApiError::not_found(format!("no return {r}"))),
        Err(OrderError::Store(e)) => Err(e.into()),
        Err(OrderError::Db(e)) => Err(StoreError::from(e).into()),
    }
}
