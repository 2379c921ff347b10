//! Merchants' orders: what the commerce system sold, so a store counter without a POS
//! integration can look a customer's order up and take its items back. Ops keys, or the
//! merchant's own.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use modori_shared::domain::{MerchantId, Sku};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::ops::CUSTOMER_REF_CHARS_MAX;
use super::rfc3339;
use crate::store::orders::{
    self, Order, OrderLine, ORDERS_PER_REQUEST_MAX, ORDER_LINES_MAX, ORDER_REF_BYTES_MAX,
};
use crate::Ctx;

/// Most units of one line of an order.
pub const ORDER_LINE_QTY_MAX: u32 = 10_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrdersRequest {
    /// 1 to 1,000 orders (`ORDERS_PER_REQUEST_MAX`).
    #[schema(min_items = 1, max_items = 1000)]
    orders: Vec<OrderEntry>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderEntry {
    /// The commerce system's order reference (printable ASCII, no spaces, 1-64 bytes).
    #[serde(rename = "ref")]
    #[schema(pattern = "^[!-~]{1,64}$")]
    reference: String,
    /// The commerce system's customer reference (personal data: pseudonymised with the
    /// customer's returns): 1 to 64 characters, not starting with `anon-`.
    #[serde(default)]
    #[schema(pattern = "^(?!anon-)[\\s\\S]{1,64}$")]
    customer_ref: Option<String>,
    /// When the order was placed (RFC 3339): the return window counts from it.
    #[schema(format = DateTime)]
    ordered_at: String,
    /// 1 to 100 lines (`ORDER_LINES_MAX`).
    #[schema(min_items = 1, max_items = 100)]
    lines: Vec<OrderLineEntry>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineEntry {
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    sku: String,
    /// 1 to 10,000 (`ORDER_LINE_QTY_MAX`).
    #[schema(minimum = 1, maximum = 10_000)]
    qty: u32,
}

#[derive(Serialize, ToSchema)]
pub struct OrdersStored {
    merchant: String,
    n_orders: usize,
}

/// Whether `s` can be an order reference.
pub fn valid_order_ref(s: &str) -> bool {
    !s.is_empty() && s.len() <= ORDER_REF_BYTES_MAX && s.bytes().all(|b| b.is_ascii_graphic())
}

fn order(merchant: &MerchantId, i: usize, e: OrderEntry) -> Result<Order, ApiError> {
    let field = |f: &str| format!("orders[{i}].{f}");
    if !valid_order_ref(&e.reference) {
        return Err(ApiError::invalid_field(
            field("ref"),
            format!("must be 1..={ORDER_REF_BYTES_MAX} bytes of printable ASCII, no spaces"),
        ));
    }
    if let Some(c) = &e.customer_ref {
        if c.is_empty() || c.chars().count() > CUSTOMER_REF_CHARS_MAX || c.starts_with("anon-") {
            return Err(ApiError::invalid_field(
                field("customer_ref"),
                format!("must be 1..={CUSTOMER_REF_CHARS_MAX} characters and not start with anon-"),
            ));
        }
    }
    let ordered_ms = chrono::DateTime::parse_from_rfc3339(&e.ordered_at)
        .map_err(|err| {
            ApiError::invalid_field(field("ordered_at"), format!("not RFC 3339: {err}"))
        })?
        .timestamp_millis();
    if e.lines.is_empty() || e.lines.len() > ORDER_LINES_MAX {
        return Err(ApiError::invalid_field(
            field("lines"),
            format!("must hold 1..={ORDER_LINES_MAX} lines"),
        ));
    }
    let lines = e
        .lines
        .into_iter()
        .enumerate()
        .map(|(j, l)| {
            let sku = Sku::new(l.sku)
                .map_err(|err| ApiError::invalid_field(field(&format!("lines[{j}].sku")), err))?;
            if l.qty == 0 || l.qty > ORDER_LINE_QTY_MAX {
                return Err(ApiError::invalid_field(
                    field(&format!("lines[{j}].qty")),
                    format!("must be 1..={ORDER_LINE_QTY_MAX}"),
                ));
            }
            Ok(OrderLine {
                sku: sku.to_string(),
                qty: l.qty,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Order {
        merchant: merchant.to_string(),
        order_ref: e.reference,
        customer_ref: e.customer_ref,
        ordered_ms,
        lines,
    })
}

fn merchant_param(merchant: String) -> Result<MerchantId, ApiError> {
    MerchantId::new(merchant).map_err(|e| ApiError::invalid_path("merchant", e))
}

/// Stores orders of a merchant (an order with a known reference is replaced).
#[utoipa::path(put, path = "/api/v1/orders/{merchant}", tag = "orders", security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = OrdersRequest,
    responses(
        (status = 200, body = OrdersStored),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_orders(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    ApiJson(req): ApiJson<OrdersRequest>,
) -> Result<Json<OrdersStored>, ApiError> {
    let merchant = merchant_param(merchant)?;
    caller.require_merchant(&merchant)?;
    if req.orders.is_empty() || req.orders.len() > ORDERS_PER_REQUEST_MAX {
        return Err(ApiError::invalid_field(
            "orders",
            format!("must hold 1..={ORDERS_PER_REQUEST_MAX} orders"),
        ));
    }
    let parsed = req
        .orders
        .into_iter()
        .enumerate()
        .map(|(i, e)| order(&merchant, i, e))
        .collect::<Result<Vec<_>, _>>()?;
    let m = merchant.clone();
    let now_ms = ctx.clock.now_ms();
    let n_orders = ctx
        .db
        .call(move |c| orders::put_orders(c, m.as_str(), &parsed, now_ms))
        .await?;
    tracing::info!(merchant = %merchant, n_orders, key_id = %caller.key_id, "orders stored");
    Ok(Json(OrdersStored {
        merchant: merchant.to_string(),
        n_orders,
    }))
}

/// One order as stored.
#[derive(Serialize, ToSchema)]
pub struct OrderView {
    merchant: String,
    #[serde(rename = "ref")]
    reference: String,
    customer_ref: Option<String>,
    ordered_at: Option<String>,
    lines: Vec<OrderLineEntry>,
}

impl From<Order> for OrderView {
    fn from(o: Order) -> Self {
        Self {
            merchant: o.merchant,
            reference: o.order_ref,
            customer_ref: o.customer_ref,
            ordered_at: rfc3339(o.ordered_ms),
            lines: o
                .lines
                .into_iter()
                .map(|l| OrderLineEntry {
                    sku: l.sku,
                    qty: l.qty,
                })
                .collect(),
        }
    }
}

/// One order of a merchant.
#[utoipa::path(get, path = "/api/v1/orders/{merchant}/{reference}", tag = "orders", security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$"),
           ("reference" = String, Path, description = "The order reference", pattern = "^[!-~]{1,64}$")),
    responses(
        (status = 200, body = OrderView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_order(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath((merchant, reference)): ApiPath<(String, String)>,
) -> Result<Json<OrderView>, ApiError> {
    let merchant = merchant_param(merchant)?;
    caller.require_merchant(&merchant)?;
    if !valid_order_ref(&reference) {
        return Err(ApiError::invalid_path(
            "reference",
            format!("must be 1..={ORDER_REF_BYTES_MAX} bytes of printable ASCII"),
        ));
    }
    let (m, r) = (merchant.clone(), reference.clone());
    let found = ctx.db.call(move |c| orders::get(c, m.as_str(), &r)).await?;
    let order = found.ok_or_else(|| {
        ApiError::not_found(format!("no order {reference} of merchant {merchant}"))
    })?;
    Ok(Json(order.into()))
}
