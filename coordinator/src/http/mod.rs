//! The coordinator's HTTP side: health, the versioned JSON API, metrics.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use modori_agent::sync_client::chrono_ms;
use modori_shared::domain::{Coordinates, ReasonCode, ReturnLine, RmaId, Sku, StoreId};
use serde::{Deserialize, Serialize};

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
        .route("/api/v1/returns", axum::routing::post(create_return))
        .route(
            "/api/v1/catalog/{merchant}",
            axum::routing::put(put_catalog),
        )
        .route("/api/v1/quarantine", get(quarantine))
        .route(
            "/api/v1/customers/{reference}",
            axum::routing::delete(forget_customer),
        )
        .route(
            "/api/v1/quarantine/{lpn}/match",
            axum::routing::post(match_unit),
        )
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

/// Lines one return may carry at most.
pub const RETURN_LINES_MAX: usize = modori_shared::wire::payload::RETURN_LINES_MAX;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewReturn {
    /// The commerce system's RMA id; generated when absent.
    rma: Option<String>,
    origin: Origin,
    lines: Vec<NewLine>,
    /// Personal data, kept only as long as `privacy.retention_days`.
    #[serde(default)]
    customer: Option<NewCustomer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCustomer {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

/// Longest customer reference, in bytes.
pub const CUSTOMER_REF_BYTES_MAX: usize = 64;
/// Longest customer address, in bytes.
pub const CUSTOMER_ADDRESS_BYTES_MAX: usize = 400;

fn customer(c: NewCustomer) -> Result<crate::store::Customer, (&'static str, String)> {
    if c.reference.is_empty()
        || c.reference.len() > CUSTOMER_REF_BYTES_MAX
        || c.reference.starts_with("anon-")
    {
        return Err((
            "customer.ref",
            format!("must be 1..={CUSTOMER_REF_BYTES_MAX} bytes and not start with anon-"),
        ));
    }
    let name_max = modori_shared::wire::payload::CUSTOMER_NAME_BYTES_MAX;
    if c.name.as_ref().is_some_and(|n| n.len() > name_max) {
        return Err(("customer.name", format!("longer than {name_max} bytes")));
    }
    if c.address
        .as_ref()
        .is_some_and(|a| a.len() > CUSTOMER_ADDRESS_BYTES_MAX)
    {
        return Err((
            "customer.address",
            format!("longer than {CUSTOMER_ADDRESS_BYTES_MAX} bytes"),
        ));
    }
    Ok(crate::store::Customer {
        reference: c.reference,
        name: c.name,
        address: c.address,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, untagged)]
enum Origin {
    Store { store_id: String },
    Point { latitude: f64, longitude: f64 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLine {
    sku: String,
    qty: u32,
    reason: String,
}

#[derive(Serialize)]
struct Routed {
    rma: String,
    site: String,
    explanation: String,
    command_seq: u64,
}

fn bad_request(field: &str, problem: impl std::fmt::Display) -> Response {
    error(StatusCode::BAD_REQUEST, format!("{field}: {problem}"))
}

fn parse_line(l: NewLine) -> Result<ReturnLine, (&'static str, String)> {
    let sku = Sku::new(l.sku).map_err(|e| ("sku", e.to_string()))?;
    let reason = ReasonCode::parse(&l.reason).map_err(|e| ("reason", e.to_string()))?;
    ReturnLine::new(sku, l.qty, reason).map_err(|e| ("qty", e.to_string()))
}

/// Registers a return and routes it to the nearest site, which is sent the expected return.
async fn create_return(
    State(ctx): State<Arc<Ctx>>,
    body: Result<Json<NewReturn>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let (label, origin) = match req.origin {
        Origin::Store { store_id } => {
            let Ok(id) = StoreId::new(store_id.clone()) else {
                return bad_request("origin.store_id", format!("{store_id:?} is not a store id"));
            };
            match ctx.fleet.stores.iter().find(|s| s.id == id) {
                Some(store) => (format!("store:{id}"), store.location),
                None => return bad_request("origin.store_id", format!("unknown store {id}")),
            }
        }
        Origin::Point {
            latitude,
            longitude,
        } => match Coordinates::new(latitude, longitude) {
            Ok(c) => (format!("point:{latitude},{longitude}"), c),
            Err(e) => return bad_request("origin", e),
        },
    };
    if req.lines.is_empty() || req.lines.len() > RETURN_LINES_MAX {
        return bad_request("lines", format!("must hold 1..={RETURN_LINES_MAX} lines"));
    }
    let mut lines = Vec::with_capacity(req.lines.len());
    for (i, l) in req.lines.into_iter().enumerate() {
        match parse_line(l) {
            Ok(line) => lines.push(line),
            Err((field, problem)) => return bad_request(&format!("lines[{i}].{field}"), problem),
        }
    }
    let rma = match req.rma {
        Some(r) => match RmaId::new(r) {
            Ok(r) => r,
            Err(e) => return bad_request("rma", e),
        },
        None => match RmaId::new(crate::new_rma_id()) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
    };
    let customer = match req.customer.map(customer).transpose() {
        Ok(c) => c,
        Err((field, problem)) => return bad_request(field, problem),
    };
    match crate::register_customer_return(&ctx, rma.clone(), label, origin, lines, customer).await {
        Ok(routed) => (
            StatusCode::CREATED,
            Json(Routed {
                rma: routed.rma.to_string(),
                site: routed.site.to_string(),
                explanation: routed.explanation,
                command_seq: routed.command_seq,
            }),
        )
            .into_response(),
        Err(crate::CoordinatorError::Store(crate::store::StoreError::Sqlite(
            rusqlite::Error::SqliteFailure(e, _),
        ))) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            error(StatusCode::CONFLICT, format!("return {rma} already exists"))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Items one catalogue request may carry at most.
pub const CATALOG_ITEMS_PER_REQUEST_MAX: usize = 20_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogRequest {
    items: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogEntry {
    sku: String,
    /// JAN / EAN-13, EAN-8, UPC-A or GTIN-14 digits, check digit included.
    gtin: Option<String>,
    category: String,
    price_yen: u64,
    #[serde(default)]
    final_sale: bool,
    #[serde(default)]
    needs_testing: bool,
}

/// A catalogue entry checked; the error names the field (`sku`, `gtin`, `category`).
fn catalog_item(e: CatalogEntry) -> Result<modori_shared::CatalogItem, (&'static str, String)> {
    let sku = Sku::new(e.sku).map_err(|err| ("sku", err.to_string()))?;
    let gtin14 = match e.gtin {
        None => None,
        Some(g) => match modori_shared::barcode::parse(&g) {
            Ok(modori_shared::barcode::Scan::Product(gtin)) => Some(gtin.gtin14().to_owned()),
            Ok(other) => {
                return Err((
                    "gtin",
                    format!("{g:?} is a {}, not a product code", other.format()),
                ))
            }
            Err(err) => return Err(("gtin", err.to_string())),
        },
    };
    if e.category.is_empty() || e.category.len() > modori_shared::wire::payload::OPERATOR_LEN_MAX {
        return Err(("category", "must be 1..=64 bytes".into()));
    }
    Ok(modori_shared::CatalogItem {
        sku,
        gtin14,
        category: e.category,
        price_yen: e.price_yen,
        final_sale: e.final_sale,
        needs_testing: e.needs_testing,
    })
}

/// Replaces catalogue entries of a merchant and sends them to every site, so stations resolve
/// product scans offline.
async fn put_catalog(
    State(ctx): State<Arc<Ctx>>,
    Path(merchant): Path<String>,
    body: Result<Json<CatalogRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Err(e) = modori_shared::domain::MerchantId::new(merchant.clone()) {
        return bad_request("merchant", e);
    }
    if req.items.is_empty() || req.items.len() > CATALOG_ITEMS_PER_REQUEST_MAX {
        return bad_request(
            "items",
            format!("must hold 1..={CATALOG_ITEMS_PER_REQUEST_MAX} items"),
        );
    }
    let mut items = Vec::with_capacity(req.items.len());
    for (i, e) in req.items.into_iter().enumerate() {
        match catalog_item(e) {
            Ok(item) => items.push(item),
            Err((field, problem)) => return bad_request(&format!("items[{i}].{field}"), problem),
        }
    }
    let n_items = items.len();
    let sites: Vec<_> = ctx.fleet.sites.iter().map(|s| s.id.clone()).collect();
    let m = merchant.clone();
    let queued = ctx
        .db
        .call(move |c| store::put_catalog(c, &m, &items, &sites, chrono_ms()))
        .await;
    match queued {
        Ok(queued) => {
            for (site, seq) in &queued {
                ctx.live.command_queued(site, *seq);
            }
            Json(serde_json::json!({"merchant": merchant, "n_items": n_items, "n_sites": queued.len()})).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Units received as unidentified, waiting to be matched.
async fn quarantine(State(ctx): State<Arc<Ctx>>) -> Response {
    match ctx
        .db
        .call(|c| store::quarantine(c, ANOMALIES_LIST_MAX))
        .await
    {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchRequest {
    rma: String,
}

/// Matches a quarantined unit to a registered return; its site is told.
async fn match_unit(
    State(ctx): State<Arc<Ctx>>,
    Path(lpn): Path<String>,
    body: Result<Json<MatchRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let lpn = match modori_shared::domain::Lpn::new(lpn) {
        Ok(l) => l,
        Err(e) => return bad_request("lpn", e),
    };
    let rma = match RmaId::new(req.rma) {
        Ok(r) => r,
        Err(e) => return bad_request("rma", e),
    };
    let (l, r) = (lpn.clone(), rma.clone());
    match ctx
        .db
        .call(move |c| store::match_unidentified(c, &l, &r, chrono_ms()))
        .await
    {
        Ok((site, seq)) => {
            ctx.live.command_queued(&site, seq);
            Json(serde_json::json!({"lpn": lpn.as_str(), "rma": rma.as_str(), "site": site.as_str()})).into_response()
        }
        Err(e @ (store::MatchError::UnknownUnit(_) | store::MatchError::UnknownReturn(_))) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e @ store::MatchError::NotQuarantined(_)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A customer's request to be forgotten: their returns are pseudonymised here and the sites
/// that hold them are told to erase what they keep.
async fn forget_customer(State(ctx): State<Arc<Ctx>>, Path(reference): Path<String>) -> Response {
    if reference.is_empty() || reference.len() > CUSTOMER_REF_BYTES_MAX {
        return bad_request(
            "reference",
            format!("must be 1..={CUSTOMER_REF_BYTES_MAX} bytes"),
        );
    }
    match crate::forget_customer(&ctx, reference.clone()).await {
        Ok(0) => error(
            StatusCode::NOT_FOUND,
            format!("no return of customer {reference:?} holds personal data"),
        ),
        Ok(n) => Json(serde_json::json!({"customer": reference, "n_returns": n})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
