//! The coordinator's HTTP side: health, metrics and the versioned JSON API (`/api/v1`).
//!
//! - One registration: every route is added with `OpenApiRouter::routes(routes!(handler))`
//!   from a handler annotated with `#[utoipa::path]`, so a route cannot exist without its
//!   documentation. The document is served at [`OPENAPI_PATH`].
//! - Every error answer is JSON (`error`), axum's own included.
//! - Every `/api/v1` route but the document needs an API key (`auth`); handlers check scope.

mod auth;
mod billing;
mod catalog;
mod commerce;
mod error;
mod keys;
mod ops;
mod returns;
mod stock;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{middleware, Extension, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{is_json, ApiError, ErrorBody, ErrorDetail, API_BODY_BYTES_MAX};

use crate::Ctx;

/// Where the OpenAPI document is served (without a key: it describes, it shows no data).
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
/// Anomalies returned by one request at most.
pub const ANOMALIES_LIST_MAX: usize = 500;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Modori coordinator API",
        description = "Returns and exchanges across the fleet's sites. Every /api/v1 route but \
                       this document needs `Authorization: Bearer <key>`; keys are scoped to \
                       `ops`, `merchant:<id>` or `store:<id>`. Every error is JSON: \
                       `{\"error\": {\"status\", \"code\", \"field\"?, \"message\"}}`."
    ),
    modifiers(&BearerKeys),
    tags(
        (name = "service", description = "Health, metrics and this document"),
        (name = "returns", description = "Returns (RMAs): registration, status, timeline, cancel"),
        (name = "catalog", description = "Merchants' catalogues, sent to every site"),
        (name = "ops", description = "Central ops: sites, anomalies, quarantine, personal data"),
        (name = "keys", description = "API keys (ops scope)"),
        (name = "analytics", description = "Return reasons, customers' history and abuse score"),
        (name = "stock", description = "Demand, rebalancing transfers, resale listings"),
        (name = "billing", description = "Per-merchant activity statements"),
    )
)]
struct ApiDoc;

/// The `bearer` security scheme the routes refer to.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("modori_<64 hex digits>")
                    .build(),
            ),
        );
    }
}

/// Every route with its documentation.
fn api() -> OpenApiRouter<Arc<Ctx>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(ops::sites))
        .routes(routes!(ops::anomalies))
        .routes(routes!(ops::quarantine))
        .routes(routes!(ops::match_unit))
        .routes(routes!(ops::forget_customer))
        .routes(routes!(returns::create_return))
        .routes(routes!(returns::create_store_return))
        .routes(routes!(commerce::confirm_refund))
        .routes(routes!(commerce::carrier_events))
        .routes(routes!(commerce::reasons))
        .routes(routes!(commerce::customer))
        .routes(routes!(commerce::store_checks))
        .routes(routes!(commerce::store_waiting))
        .routes(routes!(stock::put_demand))
        .routes(routes!(stock::rebalance))
        .routes(routes!(stock::transfer_unit))
        .routes(routes!(stock::list_listings))
        .routes(routes!(stock::sell_listing))
        .routes(routes!(billing::statement))
        .routes(routes!(billing::statement_csv))
        .routes(routes!(returns::get_return))
        .routes(routes!(returns::cancel_return))
        .routes(routes!(catalog::put_catalog, catalog::get_catalog))
        .routes(routes!(keys::create_key, keys::list_keys))
        .routes(routes!(keys::revoke_key))
}

/// The OpenAPI document of [`router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

pub fn router(ctx: Arc<Ctx>) -> Router {
    let (routes, doc) = api().split_for_parts();
    // Layers run outside in: JSON errors, then the key check, then the body limit.
    routes
        .fallback(route_not_found)
        .layer(Extension(Arc::new(doc)))
        .layer(DefaultBodyLimit::max(API_BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(
            ctx.clone(),
            auth::require_key,
        ))
        .layer(middleware::from_fn(error::json_errors))
        .with_state(ctx)
}

async fn route_not_found() -> ApiError {
    error::route_not_found()
}

pub(crate) fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Liveness, for systemd and load balancers.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The coordinator answers", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Prometheus metrics (OpenMetrics text). Open, like `/healthz`: keep `http.listen` on
/// loopback or behind a proxy.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "OpenMetrics text", body = String,
               content_type = "application/openmetrics-text")))]
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

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object)))]
async fn openapi_json(Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>) -> Response {
    axum::Json(doc.as_ref()).into_response()
}
