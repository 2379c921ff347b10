//! The ops console's returns list page (`/returns`) and what it reads: a page of the list
//! (`/ui/returns`) and its CSV export (`/ui/returns.csv`), through the session, with the
//! API's query checked by the API's code (`return_list`).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::error::ApiError;
use super::page::page;
use super::return_list::{self, ListQuery, ReturnList};
use super::session::{self, Browser, NoSession};
use crate::apikeys::Scope;
use crate::Ctx;

pub(super) const RETURNS_HTML: &str = include_str!("../../web/returns.html");

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/returns", get(returns_page))
        .route("/ui/returns", get(list))
        .route("/ui/returns.csv", get(export))
}

/// The list page, for an ops session.
async fn returns_page(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    match Browser::of(&ctx, &headers).await {
        Ok(b) if b.scope == Scope::Ops => page(super::i18n::render(
            RETURNS_HTML,
            super::i18n::lang_of(&headers),
        )),
        Ok(_) => Redirect::to("/store").into_response(),
        Err(NoSession::Missing) => session::to_login("/returns"),
        Err(NoSession::Failed(e)) => e.into_response(),
    }
}

/// What the filters can be set to.
#[derive(Serialize)]
struct Choices {
    sites: Vec<String>,
    stores: Vec<String>,
    /// The configured ones; others may be typed.
    merchants: Vec<String>,
}

/// A page of the list with what the page needs to show it.
#[derive(Serialize)]
struct ListPage {
    #[serde(flatten)]
    list: ReturnList,
    choices: Choices,
    /// The zone times are shown in (`http.time_zone`).
    time_zone: String,
}

async fn list(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ListPage>, ApiError> {
    browser.require_ops()?;
    let listing = return_list::query(q)?.checked(&ctx)?;
    let list = return_list::page(&ctx, listing).await?;
    let choices = Choices {
        sites: ctx.fleet.sites.iter().map(|s| s.id.to_string()).collect(),
        stores: ctx.fleet.stores.iter().map(|s| s.id.to_string()).collect(),
        merchants: ctx
            .config
            .merchants
            .iter()
            .map(|m| m.id.to_string())
            .collect(),
    };
    Ok(Json(ListPage {
        list,
        choices,
        time_zone: ctx.config.http.time_zone.clone(),
    }))
}

async fn export(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    browser.require_ops()?;
    let listing = return_list::query(q)?.checked(&ctx)?;
    return_list::export(&ctx, listing).await
}
