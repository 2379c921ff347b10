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
use super::ops::CUSTOMER_REF_CHARS_MAX;
use super::rfc3339;
use crate::apikeys::Scope;
use crate::app::register::{self, Registered, Registration};
use crate::policy::{self, ResolutionKind};
use crate::store::{self, lifecycle};
use crate::Ctx;

/// Lines one return may carry at most.
pub const RETURN_LINES_MAX: usize = modori_shared::domain::RETURN_LINES_MAX;
/// Longest customer address, in bytes.
pub const CUSTOMER_ADDRESS_BYTES_MAX: usize = 400;
/// Decimals of a point origin as it is labelled and stored (1e-5 degrees is about a metre).
pub const POINT_DECIMALS: usize = 5;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReturn {
    /// The commerce system's RMA id (`A-Z 0-9 - _ .`); generated when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    rma: Option<String>,
    /// The merchant the return belongs to. A merchant key may register only its own (and
    /// when absent it is the key's); an ops key may leave it out. The return policy applies
    /// to a merchant's returns.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    merchant: Option<String>,
    #[schema(value_type = Origin)]
    origin: OriginIn,
    /// 1 to 100 lines (`RETURN_LINES_MAX`) of at most 20 units each: 2,000 units at most.
    #[schema(min_items = 1, max_items = 100)]
    lines: Vec<NewLine>,
    /// Personal data, kept only as long as `privacy.retention_days`.
    #[serde(default)]
    customer: Option<NewCustomer>,
    /// The order's reference in the commerce system (matches unidentified parcels).
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,64}$")]
    order_ref: Option<String>,
    /// The order date, `YYYY-MM-DD` (Japan) or RFC 3339: the return window counts from it.
    #[serde(default)]
    order_date: Option<String>,
    /// `carrier_pickup` (default), `home_pickup`, `konbini_dropoff` or `store_dropoff`.
    #[serde(default)]
    #[schema(pattern = "^(carrier_pickup|home_pickup|konbini_dropoff|store_dropoff)$")]
    method: Option<String>,
    /// `refund` (default), `store_credit` or `exchange` (with `exchange_sku`).
    #[serde(default)]
    #[schema(pattern = "^(refund|store_credit|exchange)$")]
    resolution: Option<String>,
    /// The SKU wanted in exchange.
    #[serde(default)]
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    exchange_sku: Option<String>,
}

/// What the commerce system knows of the order and wants for the customer.
#[derive(Default)]
pub struct OrderTerms {
    order_ref: Option<String>,
    order_date: Option<String>,
    method: Option<String>,
    resolution: Option<String>,
    exchange_sku: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// 1 to 64 characters (`CUSTOMER_REF_CHARS_MAX`), not starting with `anon-`.
    #[serde(rename = "ref")]
    #[schema(pattern = "^(?!anon-)[\\s\\S]{1,64}$")]
    reference: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

/// Where the parcel starts: a store or konbini of the fleet, a point (a carrier pickup), or a
/// Japanese postal code (routed from its prefecture).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, untagged)]
pub enum Origin {
    Store {
        #[schema(pattern = "^[a-z0-9-]{1,64}$")]
        store_id: String,
    },
    Point {
        #[schema(minimum = -90.0, maximum = 90.0)]
        latitude: f64,
        #[schema(minimum = -180.0, maximum = 180.0)]
        longitude: f64,
    },
    Postal {
        /// Seven digits, as `123-4567` or `1234567`, of a code in Japan Post's data.
        #[schema(pattern = "^[0-9]{3}-?[0-9]{4}$")]
        postal_code: String,
    },
}

/// An origin as sent, read field by field so a wrong value is named by its own path
/// (`origin.postal_code`), which an untagged enum cannot do ("no variant matched" at `origin`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginIn {
    #[serde(default, deserialize_with = "present")]
    store_id: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    latitude: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    longitude: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    postal_code: Option<serde_json::Value>,
}

/// A field that is there, `null` included (serde's `Option` reads `null` as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

impl OriginIn {
    fn checked(self) -> Result<Origin, ApiError> {
        let text = |v: serde_json::Value, field: &str| match v {
            serde_json::Value::String(s) => Ok(s),
            other => Err(ApiError::invalid_field(
                format!("origin.{field}"),
                format!("expected a string, got {other}"),
            )),
        };
        let number = |v: serde_json::Value, field: &str| {
            v.as_f64().ok_or_else(|| {
                ApiError::invalid_field(
                    format!("origin.{field}"),
                    format!("expected a number, got {v}"),
                )
            })
        };
        match (
            self.store_id,
            self.latitude,
            self.longitude,
            self.postal_code,
        ) {
            (Some(id), None, None, None) => Ok(Origin::Store {
                store_id: text(id, "store_id")?,
            }),
            (None, Some(lat), Some(lon), None) => Ok(Origin::Point {
                latitude: number(lat, "latitude")?,
                longitude: number(lon, "longitude")?,
            }),
            (None, None, None, Some(code)) => Ok(Origin::Postal {
                postal_code: text(code, "postal_code")?,
            }),
            (None, Some(_), None, None) => Err(ApiError::invalid_field(
                "origin.longitude",
                "a point needs its longitude",
            )),
            (None, None, Some(_), None) => Err(ApiError::invalid_field(
                "origin.latitude",
                "a point needs its latitude",
            )),
            _ => Err(ApiError::invalid_field(
                "origin",
                "give exactly one of store_id, latitude and longitude, or postal_code",
            )),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLine {
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    sku: String,
    /// Units of the SKU: 1 to 20 (`LINE_QTY_MAX`).
    #[schema(minimum = 1, maximum = 20)]
    qty: u32,
    /// too_small, too_large, not_as_described, damaged_in_transit, defective,
    /// wrong_item_sent, changed_mind, arrived_late, other.
    #[schema(
        pattern = "^(too_small|too_large|not_as_described|damaged_in_transit|defective|wrong_item_sent|changed_mind|arrived_late|other)$"
    )]
    reason: String,
    /// The customer's words, for customer service (at most 500 bytes).
    #[serde(default)]
    note: Option<String>,
}

/// Longest line note, order reference, in bytes.
pub const NOTE_BYTES_MAX: usize = 500;
pub const ORDER_REF_BYTES_MAX: usize = 64;

/// What the carrier label carries, and its ZPL.
#[derive(Serialize, ToSchema)]
pub struct LabelView {
    rma: String,
    carrier: Option<String>,
    tracking: Option<String>,
    to_site: String,
    to_name: String,
    from: String,
    /// ZPL for a 4 × 2 inch label printer.
    zpl: String,
}

#[derive(Serialize, ToSchema)]
pub struct RefusedLine {
    /// Index into `lines`.
    line: usize,
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct Routed {
    rma: String,
    site: String,
    explanation: String,
    /// Every site weighed, best first: its distance, today's load, score or why left out.
    #[schema(value_type = Vec<Object>)]
    candidates: Vec<crate::routing::Candidate>,
    command_seq: u64,
    /// Lines the policy refused (final sale); the others are accepted.
    refused_lines: Vec<RefusedLine>,
    fee_yen: u64,
    store_credit_bonus_yen: u64,
    /// Value of the accepted lines at list price.
    value_yen: u64,
    /// new, regular, trusted or strict (serial returners).
    tier: Option<String>,
    /// standard or strict.
    terms: Option<String>,
    abuse_score: Option<u32>,
    /// The label it travels under; none for a returnless refund.
    label: Option<LabelView>,
    /// Why the customer keeps the goods and is refunded at once, when so.
    returnless: Option<String>,
    /// The replacement set aside for an exchange: where, which unit, and why.
    reservation: Option<store::reservations::Reservation>,
}

impl From<Registered> for Routed {
    fn from(r: Registered) -> Self {
        let d = r.decision.as_ref();
        let label = r.label.map(|l| LabelView {
            rma: r.routed.rma.to_string(),
            carrier: l.carrier,
            tracking: l.tracking,
            to_site: r.routed.site.to_string(),
            to_name: l.to_name,
            from: l.from,
            zpl: l.zpl,
        });
        Routed {
            rma: r.routed.rma.to_string(),
            site: r.routed.site.to_string(),
            explanation: r.routed.explanation,
            candidates: r.routed.candidates,
            command_seq: r.routed.command_seq,
            refused_lines: d
                .map(|d| {
                    d.refused_lines
                        .iter()
                        .map(|r| RefusedLine {
                            line: r.line,
                            reason: r.reason.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            // A returnless refund costs the customer nothing.
            fee_yen: if r.returnless.is_some() {
                0
            } else {
                d.map_or(0, |d| d.fee_yen)
            },
            store_credit_bonus_yen: d.map_or(0, |d| d.store_credit_bonus_yen),
            value_yen: d.map_or(0, |d| d.value_yen),
            tier: d
                .and_then(|d| serde_json::to_value(d.tier).ok())
                .and_then(|v| v.as_str().map(str::to_owned)),
            terms: d.map(|d| d.terms.to_owned()),
            abuse_score: d.map(|d| d.abuse.score),
            label,
            returnless: r.returnless,
            reservation: r.reservation,
        }
    }
}

fn customer(c: NewCustomer) -> Result<store::Customer, ApiError> {
    if c.reference.is_empty()
        || c.reference.chars().count() > CUSTOMER_REF_CHARS_MAX
        || c.reference.starts_with("anon-")
    {
        return Err(ApiError::invalid_field(
            "customer.ref",
            format!("must be 1..={CUSTOMER_REF_CHARS_MAX} characters and not start with anon-"),
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
    if l.note.as_ref().is_some_and(|n| n.len() > NOTE_BYTES_MAX) {
        return Err(ApiError::invalid_field(
            field("note"),
            format!("longer than {NOTE_BYTES_MAX} bytes"),
        ));
    }
    ReturnLine::requested(sku, l.qty, reason).map_err(|e| ApiError::invalid_field(field("qty"), e))
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
            .require_ops("registering returns here (ops or the merchant; a store registers at /api/v1/stores/{store_id}/returns)")
            .map(|()| None),
    }
}

/// `YYYY-MM-DD` (midnight in Japan) or RFC 3339, in Unix milliseconds.
fn order_date_ms(text: &str) -> Result<i64, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid_field("order_date", "expected YYYY-MM-DD or an RFC 3339 time")
    })?;
    let midnight = d
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis());
    midnight
        .map(|ms| ms - 9 * 60 * 60 * 1000)
        .ok_or_else(|| ApiError::invalid_field("order_date", "not a date"))
}

fn check_origin(
    ctx: &Ctx,
    origin: Origin,
) -> Result<(String, Coordinates, Option<StoreId>), ApiError> {
    match origin {
        Origin::Store { store_id } => {
            let id = StoreId::new(store_id.clone())
                .map_err(|e| ApiError::invalid_field("origin.store_id", e))?;
            let store = ctx
                .fleet
                .stores
                .iter()
                .find(|s| s.id == id)
                .ok_or_else(|| {
                    ApiError::unknown_field("origin.store_id", format!("unknown store {id}"))
                })?;
            Ok((format!("store:{id}"), store.location, Some(id)))
        }
        Origin::Point {
            latitude,
            longitude,
        } => {
            let c = Coordinates::new(latitude, longitude)
                .map_err(|e| ApiError::invalid_field("origin", e))?;
            // Rounded to about a metre: the label prints it in at most 64 characters, and any
            // point the document allows fits.
            Ok((
                format!("point:{latitude:.POINT_DECIMALS$},{longitude:.POINT_DECIMALS$}"),
                c,
                None,
            ))
        }
        Origin::Postal { postal_code } => {
            let (c, prefecture) = crate::postal::origin(&postal_code).map_err(|e| match e {
                crate::postal::PostalError::Unknown(_) => {
                    ApiError::unknown_field("origin.postal_code", e)
                }
                crate::postal::PostalError::Shape(_) => {
                    ApiError::invalid_field("origin.postal_code", e)
                }
            })?;
            Ok((format!("postal:{postal_code} ({prefecture})"), c, None))
        }
    }
}

pub(crate) fn check(
    merchant: Option<MerchantId>,
    rma: Option<String>,
    origin: (String, Coordinates, Option<StoreId>),
    lines: Vec<NewLine>,
    customer_in: Option<NewCustomer>,
    order: OrderTerms,
    now_ms: i64,
) -> Result<Registration, ApiError> {
    let (origin_label, origin, origin_store) = origin;
    if lines.is_empty() || lines.len() > RETURN_LINES_MAX {
        return Err(ApiError::invalid_field(
            "lines",
            format!("must hold 1..={RETURN_LINES_MAX} lines"),
        ));
    }
    let lines = lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| line(i, l))
        .collect::<Result<Vec<_>, _>>()?;
    let rma = match rma {
        Some(r) => RmaId::new(r).map_err(|e| ApiError::invalid_field("rma", e))?,
        None => RmaId::new(crate::ids::new_rma_id(now_ms)).map_err(|e| ApiError::internal(&e))?,
    };
    let customer = customer_in.map(customer).transpose()?;
    if order
        .order_ref
        .as_ref()
        .is_some_and(|r| r.is_empty() || r.len() > ORDER_REF_BYTES_MAX)
    {
        return Err(ApiError::invalid_field(
            "order_ref",
            format!("must be 1..={ORDER_REF_BYTES_MAX} bytes"),
        ));
    }
    let order_date_ms = order.order_date.as_deref().map(order_date_ms).transpose()?;
    let default_method = if origin_store.is_some() {
        "store_dropoff"
    } else {
        "carrier_pickup"
    };
    let method = order.method.unwrap_or_else(|| default_method.to_owned());
    if !store::commerce::METHODS.contains(&method.as_str()) {
        return Err(ApiError::invalid_field(
            "method",
            format!(
                "unknown method {method:?}; expected one of {:?}",
                store::commerce::METHODS
            ),
        ));
    }
    let named = order.resolution.as_deref().unwrap_or("refund");
    let resolution = match (named.parse::<ResolutionKind>(), order.exchange_sku) {
        (Ok(ResolutionKind::Refund), None) => policy::Resolution::Refund,
        (Ok(ResolutionKind::StoreCredit), None) => policy::Resolution::StoreCredit,
        (Ok(ResolutionKind::Exchange), Some(sku)) => {
            Sku::new(sku.clone()).map_err(|e| ApiError::invalid_field("exchange_sku", e))?;
            policy::Resolution::Exchange { sku }
        }
        (Ok(ResolutionKind::Exchange), None) => {
            return Err(ApiError::invalid_field(
                "exchange_sku",
                "an exchange names the SKU wanted",
            ))
        }
        (Ok(ResolutionKind::Refund | ResolutionKind::StoreCredit), Some(_)) => {
            return Err(ApiError::invalid_field(
                "exchange_sku",
                "only an exchange names a SKU wanted",
            ))
        }
        (Err(_), _) => {
            let other = named;
            return Err(ApiError::invalid_field(
                "resolution",
                format!("unknown resolution {other:?}; expected refund, store_credit or exchange"),
            ));
        }
    };
    Ok(Registration {
        rma,
        merchant,
        origin,
        origin_label,
        origin_store,
        lines,
        customer,
        order_ref: order.order_ref,
        order_date_ms,
        method,
        resolution,
        store_condition: None,
    })
}

/// Registers a return: the return policy decides (window, final sale, fees, credit bonus, the
/// customer's tier), the routing picks the site (distance, today's load, testing), the site is
/// sent the expected return (and the exchange to ship), and the answer carries the label.
#[utoipa::path(post, path = "/api/v1/returns", tag = "returns", security(("bearer" = [])),
    request_body = NewReturn,
    responses(
        (status = 201, description = "Registered and routed", body = Routed),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "The key's merchant is not the body's", body = ErrorBody),
        (status = 404, description = "The merchant, store, postal code or SKU named \
                                      is not known (`field` names it)", body = ErrorBody),
        (status = 409, description = "This RMA is already registered", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "A field is wrong (`field` names it), or the policy refuses \
                                      the return (`code` rejected, the reasons in `message`)",
         body = ErrorBody)))]
pub async fn create_return(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewReturn>,
) -> Result<(StatusCode, Json<Routed>), ApiError> {
    let merchant = merchant_of(&caller, req.merchant)?;
    let origin = check_origin(&ctx, req.origin.checked()?)?;
    let order = OrderTerms {
        order_ref: req.order_ref,
        order_date: req.order_date,
        method: req.method,
        resolution: req.resolution,
        exchange_sku: req.exchange_sku,
    };
    let checked = check(
        merchant,
        req.rma,
        origin,
        req.lines,
        req.customer,
        order,
        ctx.clock.now_ms(),
    )?;
    let registered = register::submit(&ctx, checked, &caller.key_id).await?;
    Ok((StatusCode::CREATED, Json(registered.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreReturn {
    #[serde(default)]
    rma: Option<String>,
    /// What the counter staff saw (command-card choices), compared later with the site's
    /// grading; mismatches are counted per store.
    #[serde(default)]
    condition: Option<store::counter_checks::StoreCondition>,
    /// The merchant whose goods come back.
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    merchant: String,
    /// 1 to 100 lines (`RETURN_LINES_MAX`) of at most 20 units each: 2,000 units at most.
    #[schema(min_items = 1, max_items = 100)]
    lines: Vec<NewLine>,
    #[serde(default)]
    customer: Option<NewCustomer>,
    /// The order's reference in the commerce system (matches unidentified parcels).
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,64}$")]
    order_ref: Option<String>,
    /// The order date, `YYYY-MM-DD` (Japan) or RFC 3339: the return window counts from it.
    #[serde(default)]
    order_date: Option<String>,
    /// `carrier_pickup` (default), `home_pickup`, `konbini_dropoff` or `store_dropoff`.
    #[serde(default)]
    #[schema(pattern = "^(carrier_pickup|home_pickup|konbini_dropoff|store_dropoff)$")]
    method: Option<String>,
    /// `refund` (default), `store_credit` or `exchange` (with `exchange_sku`).
    #[serde(default)]
    #[schema(pattern = "^(refund|store_credit|exchange)$")]
    resolution: Option<String>,
    /// The SKU wanted in exchange.
    #[serde(default)]
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    exchange_sku: Option<String>,
}

/// BORIS: a store registers an in-store return. It is routed from the store to the nearest
/// suitable site and the answer carries the label the store ships it under.
#[utoipa::path(post, path = "/api/v1/stores/{store_id}/returns", tag = "returns",
    security(("bearer" = [])),
    params(("store_id" = String, Path, description = "The store taking the return", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = StoreReturn,
    responses(
        (status = 201, description = "Registered and routed", body = Routed),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Another store's key", body = ErrorBody),
        (status = 404, description = "No such store, or the merchant or a SKU named is not \
                                      known (`field` names it)", body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_store_return(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(store_id): ApiPath<String>,
    ApiJson(req): ApiJson<StoreReturn>,
) -> Result<(StatusCode, Json<Routed>), ApiError> {
    let id = StoreId::new(store_id).map_err(|e| ApiError::invalid_path("store_id", e))?;
    if !ctx.fleet.stores.iter().any(|s| s.id == id) {
        return Err(ApiError::not_found(format!("no store {id}")));
    }
    match &caller.scope {
        Scope::Ops => {}
        Scope::Store(own) if *own == id => {}
        _ => {
            return Err(ApiError::forbidden(format!(
                "API key {} (scope {}) does not cover store {id}",
                caller.key_id, caller.scope
            )))
        }
    }
    let merchant =
        MerchantId::new(req.merchant).map_err(|e| ApiError::invalid_field("merchant", e))?;
    let origin = check_origin(
        &ctx,
        Origin::Store {
            store_id: id.to_string(),
        },
    )?;
    let mut order = OrderTerms {
        order_ref: req.order_ref,
        order_date: req.order_date,
        method: req.method,
        resolution: req.resolution,
        exchange_sku: req.exchange_sku,
    };
    if order
        .method
        .as_deref()
        .is_some_and(|m| m != "store_dropoff")
    {
        return Err(ApiError::invalid_field(
            "method",
            "a return registered at a store is a store_dropoff",
        ));
    }
    order.method = Some("store_dropoff".into());
    if req
        .condition
        .as_ref()
        .and_then(|c| c.photo_ref.as_ref())
        .is_some_and(|p| p.len() > store::counter_checks::PHOTO_REF_BYTES_MAX)
    {
        return Err(ApiError::invalid_field(
            "condition.photo_ref",
            format!(
                "longer than {} bytes",
                store::counter_checks::PHOTO_REF_BYTES_MAX
            ),
        ));
    }
    let condition = req.condition;
    let mut checked = check(
        Some(merchant),
        req.rma,
        origin,
        req.lines,
        req.customer,
        order,
        ctx.clock.now_ms(),
    )?;
    checked.store_condition = condition;
    let registered = register::submit(&ctx, checked, &caller.key_id).await?;
    Ok((StatusCode::CREATED, Json(registered.into())))
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
    /// The detail in English.
    detail: Option<String>,
    /// The detail's code, for a client to say it in its language with `detail_params`;
    /// absent for an event recorded before codes or whose words come from elsewhere.
    detail_code: Option<String>,
    /// The parameters of `detail_code`'s text, by name.
    detail_params: Option<std::collections::BTreeMap<String, String>>,
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
    /// Every site the routing weighed, best first, with its score or why it was left out.
    #[schema(value_type = Option<Vec<Object>>)]
    routing_candidates: Option<serde_json::Value>,
    /// The order, method, resolution, fees, tracking, refund and the policy's decision.
    #[schema(value_type = Option<Object>)]
    terms: Option<serde_json::Value>,
    /// Its units, with the centre's disposition decision and why.
    units: Vec<store::commerce::UnitDecision>,
    /// The replacement set aside for an exchange.
    reservation: Option<store::reservations::Reservation>,
    /// The customer's contact, from the order the return was registered against (ops and the
    /// merchant's keys only); absent without one, or once the customer was erased.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_contact: Option<super::orders::ContactEntry>,
    /// The messages the customer was sent or is due, oldest first.
    customer_messages: Vec<MessageView>,
}

/// One message to the customer about the return.
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    /// registered, dropped_off, arrived, inspected, refund_issued, exchange_shipped, delayed,
    /// or a trade-in's trade_in_registered, counter_offer, offer_revised, trade_in_accepted, trade_in_declined,
    /// trade_in_shipped_back or trade_in_paid, or a repair's repair_registered, repair_quoted,
    /// repair_accepted, repair_declined, repair_quote_revised or repair_shipped_back.
    kind: String,
    /// queued, sent, failed, opted_out or unreachable.
    status: String,
    attempts: u32,
    /// email or line, once sent.
    channel: Option<String>,
}

fn line_view(l: lifecycle::Line) -> LineView {
    LineView {
        sku: l.sku,
        qty: l.qty,
        reason: l.reason,
    }
}

fn return_view(
    r: lifecycle::Return,
    d: store::commerce::Decisions,
    contact: Option<store::orders::Contact>,
    messages: Vec<store::notifications::Recorded>,
) -> ReturnView {
    ReturnView {
        customer_contact: contact.map(super::orders::contact_entry),
        customer_messages: messages
            .into_iter()
            .map(|(kind, status, attempts, channel)| MessageView {
                kind,
                status,
                attempts,
                channel,
            })
            .collect(),
        routing_candidates: d.candidates,
        terms: d.terms,
        units: d.units,
        reservation: d.reservation,
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
                detail_code: e.detail_code,
                detail_params: e.detail_params,
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
    params(("rma" = String, Path, description = "The return's RMA id", pattern = "^[A-Z0-9._-]{1,64}$")),
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
    let (found, decisions, contact, messages) = ctx
        .db
        .call(move |c| {
            let contact = store::notifications::contact_of_return(c, r.as_str())?;
            Ok::<_, store::StoreError>((
                lifecycle::get(c, &r)?,
                store::commerce::decisions(c, &r)?,
                contact.map(|(_, contact)| contact),
                store::notifications::of_return(c, r.as_str())?,
            ))
        })
        .await?;
    let ret = found.ok_or_else(|| ApiError::not_found(format!("no return {rma}")))?;
    caller.require_return(rma.as_str(), &ret.owner)?;
    // A store's key sees the return it took, not how to reach its customer.
    let contact = contact.filter(|_| !matches!(caller.scope, Scope::Store(_)));
    Ok(Json(return_view(ret, decisions, contact, messages)))
}

#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    rma: String,
    status: String,
}

/// Cancels a return nothing of which has been received; its site stops expecting it (a parcel
/// that still comes goes to quarantine). Cancelling a cancelled return changes nothing.
#[utoipa::path(post, path = "/api/v1/returns/{rma}/cancel", tag = "returns", security(("bearer" = [])),
    params(("rma" = String, Path, description = "The return's RMA id", pattern = "^[A-Z0-9._-]{1,64}$")),
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
    match crate::app::withdraw::cancel_return(&ctx, rma.clone(), by).await? {
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
