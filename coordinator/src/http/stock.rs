//! Stock across the fleet (ops keys): demand per site, restock rebalancing (transfer orders),
//! a transfer of one unit, and resale listings.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use modori_shared::domain::{Lpn, SiteId, Sku};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::rebalance::Move;
use crate::store::listings::{self, Listing, SaleError};
use crate::store::transfers::OrderError;
use crate::store::{commerce, StoreError};
use crate::Ctx;

/// Demand rows one request may carry.
pub const DEMAND_ROWS_MAX: usize = 10_000;
/// Listings returned by one request at most.
pub const LISTINGS_LIST_MAX: usize = 1000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemandRow {
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    sku: String,
    /// Units the site sells within the rebalancing horizon.
    #[schema(value_type = u64, maximum = 4_294_967_295_u64)]
    units: u32,
}

#[derive(Serialize, ToSchema)]
pub struct DemandSet {
    site: String,
    rows: usize,
}

fn site_param(ctx: &Ctx, site: String) -> Result<SiteId, ApiError> {
    let id = SiteId::new(site).map_err(|e| ApiError::invalid_path("site", e))?;
    if !ctx.fleet.sites.iter().any(|s| s.id == id) {
        return Err(ApiError::not_found(format!("no site {id}")));
    }
    Ok(id)
}

/// Replaces a site's demand: how many units of each SKU it sells within the horizon.
#[utoipa::path(put, path = "/api/v1/demand/{site}", tag = "stock", security(("bearer" = [])),
    params(("site" = String, Path, description = "The site", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = Vec<DemandRow>,
    responses(
        (status = 200, body = DemandSet),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn put_demand(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(site): ApiPath<String>,
    ApiJson(rows): ApiJson<Vec<DemandRow>>,
) -> Result<Json<DemandSet>, ApiError> {
    caller.require_ops("demand")?;
    let site = site_param(&ctx, site)?;
    if rows.len() > DEMAND_ROWS_MAX {
        return Err(ApiError::invalid_field(
            "",
            format!("at most {DEMAND_ROWS_MAX} rows"),
        ));
    }
    let demand = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Sku::new(r.sku)
                .map(|s| (s, r.units))
                .map_err(|e| ApiError::invalid_field(format!("[{i}].sku"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = demand.len();
    let s = site.clone();
    ctx.db
        .call(move |c| commerce::put_demand(c, &s, &demand))
        .await?;
    Ok(Json(DemandSet {
        site: site.to_string(),
        rows: n,
    }))
}

/// Plans restock rebalancing from the sellable grade-A stock and the demand, and orders each
/// move from the site holding the unit (a transfer order it executes at its putaway station).
#[utoipa::path(post, path = "/api/v1/rebalance", tag = "stock", security(("bearer" = [])),
    responses(
        (status = 200, description = "The moves ordered, with why each pays", body = Vec<Move>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn rebalance(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
) -> Result<Json<Vec<Move>>, ApiError> {
    caller.require_ops("rebalancing")?;
    let ordered = crate::app::stock::rebalance(&ctx).await?;
    tracing::info!(n_moves = ordered.len(), key_id = %caller.key_id, "rebalancing ordered");
    Ok(Json(ordered))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The site the unit goes to.
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    to: String,
}

#[derive(Serialize, ToSchema)]
pub struct TransferOrdered {
    lpn: String,
    from: String,
    to: String,
    command_seq: u64,
}

/// Orders one unit moved to another site; the site holding it packs it at its putaway station.
#[utoipa::path(post, path = "/api/v1/units/{lpn}/transfer", tag = "stock",
    security(("bearer" = [])),
    params(("lpn" = String, Path, description = "The unit's LPN", pattern = "^[A-Z0-9._-]{1,64}$")),
    request_body = TransferRequest,
    responses(
        (status = 200, body = TransferOrdered),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Already there, or gone", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn transfer_unit(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(lpn): ApiPath<String>,
    ApiJson(req): ApiJson<TransferRequest>,
) -> Result<Json<TransferOrdered>, ApiError> {
    caller.require_ops("transfers")?;
    let lpn = Lpn::new(lpn).map_err(|e| ApiError::invalid_path("lpn", e))?;
    let to = SiteId::new(req.to).map_err(|e| ApiError::invalid_field("to", e))?;
    match crate::app::stock::transfer(&ctx, lpn.clone(), to.clone()).await {
        Ok((from, seq)) => Ok(Json(TransferOrdered {
            lpn: lpn.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            command_seq: seq,
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListingsQuery {
    /// `listed`, `sold` or `delisted`; all when absent.
    #[param(pattern = "^(listed|sold|delisted)$")]
    status: Option<String>,
}

/// Resale listings, newest first.
#[utoipa::path(get, path = "/api/v1/listings", tag = "stock", security(("bearer" = [])),
    params(ListingsQuery),
    responses(
        (status = 200, body = Vec<Listing>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_listings(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    query: Result<Query<ListingsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Listing>>, ApiError> {
    caller.require_ops("resale listings")?;
    let Query(q) = query.map_err(|e| ApiError::invalid_field("query", e.body_text()))?;
    if let Some(s) = &q.status {
        if !["listed", "sold", "delisted"].contains(&s.as_str()) {
            return Err(ApiError::invalid_field(
                "status",
                "expected listed, sold or delisted",
            ));
        }
    }
    let rows = ctx
        .db
        .call(move |c| listings::listings(c, q.status.as_deref(), LISTINGS_LIST_MAX))
        .await?;
    Ok(Json(rows))
}

#[derive(Serialize, ToSchema)]
pub struct Sold {
    id: i64,
    lpn: String,
    price_yen: i64,
}

/// A channel sold a listing: it closes as sold and the unit's other listings are delisted.
#[utoipa::path(post, path = "/api/v1/listings/{id}/sold", tag = "stock",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The listing's id")),
    responses(
        (status = 200, body = Sold),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not listed any more", body = ErrorBody)))]
pub async fn sell_listing(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Sold>, ApiError> {
    caller.require_ops("resale listings")?;
    let now_ms = ctx.clock.now_ms();
    match ctx.db.call(move |c| listings::sell(c, id, now_ms)).await {
        Ok((lpn, price_yen)) => Ok(Json(Sold { id, lpn, price_yen })),
        Err(e @ SaleError::Unknown(_)) => Err(ApiError::not_found(e.to_string())),
        Err(e @ SaleError::NotListed { .. }) => Err(ApiError::conflict(e.to_string())),
        Err(SaleError::Store(e)) => Err(e.into()),
    }
}
