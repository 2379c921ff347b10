//! Returns (RMAs): registration and routing, status with the timeline, cancellation.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use modori_shared::domain::{Coordinates, MerchantId, ReasonCode, ReturnLine, RmaId, Sku, StoreId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::ops::CUSTOMER_REF_BYTES_MAX;
use super::rfc3339;
use crate::apikeys::Scope;
use crate::store::{self, lifecycle};
use crate::Ctx;

/// Lines one return may carry at most.
pub const RETURN_LINES_MAX: usize = modori_shared::wire::payload::RETURN_LINES_MAX;
/// Longest customer address, in bytes.
pub const CUSTOMER_ADDRESS_BYTES_MAX: usize = 400;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReturn {
    /// The commerce system's RMA id (`A-Z 0-9 - _ .`); generated when absent.
    #[serde(default)]
    rma: Option<String>,
    /// The merchant the return belongs to. A merchant key may register only its own (and
    /// when absent it is the key's); an ops key may leave it out.
    #[serde(default)]
    merchant: Option<String>,
    origin: Origin,
    lines: Vec<NewLine>,
    /// Personal data, kept only as long as `privacy.retention_days`.
    #[serde(default)]
    customer: Option<NewCustomer>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

/// Where the parcel starts: a store or konbini of the fleet, or a point (a carrier pickup).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, untagged)]
pub enum Origin {
    Store { store_id: String },
    Point { latitude: f64, longitude: f64 },
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLine {
    sku: String,
    /// At least 1.
    qty: u32,
    /// too_small, too_large, not_as_described, damaged_in_transit, defective,
    /// wrong_item_sent, changed_mind, arrived_late, other.
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct Routed {
    rma: String,
    site: String,
    explanation: String,
    command_seq: u64,
}

fn customer(c: NewCustomer) -> Result<store::Customer, ApiError> {
    if c.reference.is_empty()
        || c.reference.len() > CUSTOMER_REF_BYTES_MAX
        || c.reference.starts_with("anon-")
    {
        return Err(ApiError::invalid_field(
            "customer.ref",
            format!("must be 1..={CUSTOMER_REF_BYTES_MAX} bytes and not start with anon-"),
        ));
    }
    let name_max = modori_shared::wire::payload::CUSTOMER_NAME_BYTES_MAX;
    if c.name.as_ref().is_some_and(|n| n.len() > name_max) {
        return Err(ApiError::invalid_field(
            "customer.name",
            format!("longer than {name_max} bytes"),
        ));
    }
    if c.address
        .as_ref()
        .is_some_and(|a| a.len() > CUSTOMER_ADDRESS_BYTES_MAX)
    {
        return Err(ApiError::invalid_field(
            "customer.address",
            format!("longer than {CUSTOMER_ADDRESS_BYTES_MAX} bytes"),
        ));
    }
    Ok(store::Customer {
        reference: c.reference,
        name: c.name,
        address: c.address,
    })
}

fn line(i: usize, l: NewLine) -> Result<ReturnLine, ApiError> {
    let field = |f: &str| format!("lines[{i}].{f}");
    let sku = Sku::new(l.sku).map_err(|e| ApiError::invalid_field(field("sku"), e))?;
    let reason =
        ReasonCode::parse(&l.reason).map_err(|e| ApiError::invalid_field(field("reason"), e))?;
    ReturnLine::new(sku, l.qty, reason).map_err(|e| ApiError::invalid_field(field("qty"), e))
}

/// Whose return it is: the body's merchant, checked against the key.
fn merchant_of(caller: &Caller, named: Option<String>) -> Result<Option<MerchantId>, ApiError> {
    let named = named
        .map(MerchantId::new)
        .transpose()
        .map_err(|e| ApiError::invalid_field("merchant", e))?;
    match (&caller.scope, named) {
        (Scope::Ops, named) => Ok(named),
        (Scope::Merchant(own), None) => Ok(Some(own.clone())),
        (Scope::Merchant(_), Some(m)) => caller.require_merchant(&m).map(|()| Some(m)),
        (Scope::Store(_), _) => caller
            .require_ops("registering returns (ops or the merchant)")
            .map(|()| None),
    }
}

/// Registers a return and routes it to the nearest site, which is sent the expected return.
#[utoipa::path(post, path = "/api/v1/returns", tag = "returns", security(("bearer" = [])),
    request_body = NewReturn,
    responses(
        (status = 201, description = "Registered and routed", body = Routed),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "The key's merchant is not the body's", body = ErrorBody),
        (status = 409, description = "This RMA is already registered", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "A field is wrong; `field` names it", body = ErrorBody)))]
pub async fn create_return(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewReturn>,
) -> Result<(StatusCode, Json<Routed>), ApiError> {
    let merchant = merchant_of(&caller, req.merchant)?;
    let (origin_label, origin, origin_store) = match req.origin {
        Origin::Store { store_id } => {
            let id = StoreId::new(store_id.clone())
                .map_err(|e| ApiError::invalid_field("origin.store_id", e))?;
            let store = ctx
                .fleet
                .stores
                .iter()
                .find(|s| s.id == id)
                .ok_or_else(|| {
                    ApiError::invalid_field("origin.store_id", format!("unknown store {id}"))
                })?;
            (format!("store:{id}"), store.location, Some(id))
        }
        Origin::Point {
            latitude,
            longitude,
        } => {
            let c = Coordinates::new(latitude, longitude)
                .map_err(|e| ApiError::invalid_field("origin", e))?;
            (format!("point:{latitude},{longitude}"), c, None)
        }
    };
    if req.lines.is_empty() || req.lines.len() > RETURN_LINES_MAX {
        return Err(ApiError::invalid_field(
            "lines",
            format!("must hold 1..={RETURN_LINES_MAX} lines"),
        ));
    }
    let lines = req
        .lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| line(i, l))
        .collect::<Result<Vec<_>, _>>()?;
    let rma = match req.rma {
        Some(r) => RmaId::new(r).map_err(|e| ApiError::invalid_field("rma", e))?,
        None => RmaId::new(crate::new_rma_id()).map_err(|e| ApiError::internal(&e))?,
    };
    let customer = req.customer.map(customer).transpose()?;
    let registered = crate::register(
        &ctx,
        store::NewReturn {
            rma: rma.clone(),
            merchant,
            origin,
            origin_label,
            origin_store,
            lines,
            customer,
            order_ref: None,
            resolution: None,
        },
    )
    .await;
    match registered {
        Ok(routed) => {
            tracing::info!(rma = %routed.rma, site = %routed.site, key_id = %caller.key_id, "return registered");
            Ok((
                StatusCode::CREATED,
                Json(Routed {
                    rma: routed.rma.to_string(),
                    site: routed.site.to_string(),
                    explanation: routed.explanation,
                    command_seq: routed.command_seq,
                }),
            ))
        }
        Err(crate::CoordinatorError::Store(store::StoreError::Sqlite(
            rusqlite::Error::SqliteFailure(e, _),
        ))) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(ApiError::conflict(format!("return {rma} already exists")).with_field("rma"))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct LineView {
    sku: String,
    qty: u64,
    /// Absent for a shortage.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    /// registered, unit_received, unit_matched, unit_graded, disposition_set,
    /// disposition_undone, receipt_voided, parcel_closed, cancelled, expired.
    kind: String,
    site: Option<String>,
    lpn: Option<String>,
    detail: Option<String>,
    /// When it happened (RFC 3339; for a site's op, by the site's clock).
    at: Option<String>,
    /// When the coordinator recorded it (RFC 3339).
    recorded_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReturnView {
    rma: String,
    merchant: Option<String>,
    /// expected, receiving, received, cancelled or expired.
    status: String,
    /// The site it is routed to.
    site: String,
    origin: String,
    routing: String,
    lines: Vec<LineView>,
    /// Lines short when its parcel was closed.
    shortages: Vec<LineView>,
    created_at: Option<String>,
    /// Oldest first.
    events: Vec<EventView>,
}

fn line_view(l: lifecycle::Line) -> LineView {
    LineView {
        sku: l.sku,
        qty: l.qty,
        reason: l.reason,
    }
}

fn return_view(r: lifecycle::Return) -> ReturnView {
    ReturnView {
        rma: r.rma,
        merchant: r.owner.merchant,
        status: r.status,
        site: r.site,
        origin: r.origin,
        routing: r.routing,
        lines: r.lines.into_iter().map(line_view).collect(),
        shortages: r.shortages.into_iter().map(line_view).collect(),
        created_at: rfc3339(r.created_ms),
        events: r
            .events
            .into_iter()
            .map(|e| EventView {
                kind: e.kind,
                site: e.site,
                lpn: e.lpn,
                detail: e.detail,
                at: rfc3339(e.at_ms),
                recorded_at: rfc3339(e.recorded_ms),
            })
            .collect(),
    }
}

fn rma_param(rma: String) -> Result<RmaId, ApiError> {
    RmaId::new(rma).map_err(|e| ApiError::invalid_path("rma", e))
}

/// A return's status and its whole timeline: registered, units received, graded and
/// disposed at the site, parcel closed, cancelled or expired.
#[utoipa::path(get, path = "/api/v1/returns/{rma}", tag = "returns", security(("bearer" = [])),
    params(("rma" = String, Path, description = "The return's RMA id")),
    responses(
        (status = 200, body = ReturnView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Another merchant's or store's return", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_return(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(rma): ApiPath<String>,
) -> Result<Json<ReturnView>, ApiError> {
    let rma = rma_param(rma)?;
    let r = rma.clone();
    let found = ctx.db.call(move |c| lifecycle::get(c, &r)).await?;
    let ret = found.ok_or_else(|| ApiError::not_found(format!("no return {rma}")))?;
    caller.require_return(rma.as_str(), &ret.owner)?;
    Ok(Json(return_view(ret)))
}

#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    rma: String,
    status: String,
}

/// Cancels a return nothing of which has been received; its site stops expecting it (a parcel
/// that still comes goes to quarantine). Cancelling a cancelled return changes nothing.
#[utoipa::path(post, path = "/api/v1/returns/{rma}/cancel", tag = "returns", security(("bearer" = [])),
    params(("rma" = String, Path, description = "The return's RMA id")),
    responses(
        (status = 200, body = Cancelled),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Units of it were received, or it expired", body = ErrorBody)))]
pub async fn cancel_return(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(rma): ApiPath<String>,
) -> Result<Json<Cancelled>, ApiError> {
    let rma = rma_param(rma)?;
    let r = rma.clone();
    let owner = ctx.db.call(move |c| lifecycle::owner(c, &r)).await?;
    let owner = owner.ok_or_else(|| ApiError::not_found(format!("no return {rma}")))?;
    caller.require_return(rma.as_str(), &owner)?;
    let by = format!("API key {}", caller.key_id);
    match crate::cancel_return(&ctx, rma.clone(), by).await? {
        lifecycle::Cancel::Cancelled { .. } | lifecycle::Cancel::AlreadyCancelled => {
            Ok(Json(Cancelled {
                rma: rma.to_string(),
                status: lifecycle::CANCELLED.to_owned(),
            }))
        }
        lifecycle::Cancel::NotFound => Err(ApiError::not_found(format!("no return {rma}"))),
        lifecycle::Cancel::NotOpen(status) => Err(ApiError::conflict(format!(
            "return {rma} is {status}: only a return nothing of which has arrived can be cancelled"
        ))),
    }
}
