//! The coordinator's HTTP side: health, metrics and the versioned JSON API (`/api/v1`).
//!
//! - One registration: every route is added with `OpenApiRouter::routes(routes!(handler))`
//!   from a handler annotated with `#[utoipa::path]`, so a route cannot exist without its
//!   documentation. The document is served at [`OPENAPI_PATH`].
//! - Every error answer is JSON (`error`), axum's own included.
//! - Every `/api/v1` route but the document needs an API key (`auth`); handlers check scope.
//! - The browser pages (`/`, `/store`, `/login`, `/ui/…`) are a separate router (`ui`,
//!   `counter`), authenticated by a session cookie (`session`), outside the API document.
//!   The customers' unsubscribe page (`/r/{merchant}/u/{token}`, `notifications`) takes the
//!   token its link carries instead.
//! - The customer portal (`/r/{merchant}`, `portal`) is public: no key and no session; it
//!   carries its own headers, CSRF tokens and lookup lockouts.
//! - Every request's latency is recorded by route in `modori_http_request_duration_seconds`.

mod alert_actions;
mod auth;
mod billing;
mod catalog;
mod commerce;
mod counter;
pub mod delta;
mod doc_rules;
mod error;
pub(crate) mod i18n;
mod integral;
mod keys;
pub mod long_uri;
mod merchant_portal;
mod notifications;
mod ops;
mod orders;
pub(crate) mod page;
pub mod portal;
mod quarantine_page;
mod receipt;
mod repair;
mod return_list;
mod return_page;
mod returns;
mod returns_page;
pub mod serve;
pub mod session;
mod site_page;
mod stock;
mod trade_in;
pub mod ui;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{middleware, Extension, Router};
use modori_shared::exposition::Format;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{is_json, ApiError, ErrorBody, ErrorDetail, API_BODY_BYTES_MAX};
pub use trade_in::OVERRIDE_REASON_CHARS_MAX;

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
                       `{\"error\": {\"status\", \"code\", \"field\"?, \"message\"}}`. \
                       Integer fields take whole numbers, also written `947.0` or `9.47e2`; \
                       a fraction (`947.5`) is refused (422 naming the field), because \
                       quantities, prices and ids are counted and stored as integers and a \
                       fraction must not be dropped silently."
    ),
    modifiers(&BearerKeys),
    tags(
        (name = "service", description = "Health, metrics and this document"),
        (name = "returns", description = "Returns (RMAs): registration, status, timeline, cancel"),
        (name = "catalog", description = "Merchants' catalogues, sent to every site"),
        (name = "merchants", description = "A merchant's portal: its look, policy text, offer and messages"),
        (name = "orders", description = "Merchants' orders, which store counters look returns up by, and their customers' contact and opt-out"),
        (name = "ops", description = "Central ops: sites, anomalies, quarantine, personal data"),
        (name = "keys", description = "API keys (ops scope)"),
        (name = "analytics", description = "Return reasons, customers' history and abuse score"),
        (name = "stock", description = "Demand, rebalancing transfers, resale listings"),
        (name = "billing", description = "Per-merchant activity statements"),
        (name = "trade-in", description = "Trade-ins (買取): a merchant's prices by SKU or category and grade, and quotes from them"),
        (name = "repair", description = "Repairs (修理): the products a merchant repairs, its parts-and-labour table by defect code, and repair requests quoted after inspection"),
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
        .routes(routes!(returns::create_return, return_list::list_returns))
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
        .routes(routes!(return_list::export_returns))
        .routes(routes!(returns::get_return))
        .routes(routes!(returns::cancel_return))
        .routes(routes!(catalog::put_catalog, catalog::get_catalog))
        .routes(routes!(
            merchant_portal::get_portal,
            merchant_portal::put_portal
        ))
        .routes(routes!(trade_in::get_prices, trade_in::put_prices))
        .routes(routes!(trade_in::create_quote))
        .routes(routes!(trade_in::get_quote))
        .routes(routes!(trade_in::send))
        .routes(routes!(trade_in::answer))
        .routes(routes!(trade_in::override_offer))
        .routes(routes!(repair::get_products, repair::put_products))
        .routes(routes!(repair::get_rates, repair::put_rates))
        .routes(routes!(repair::create_repair))
        .routes(routes!(repair::get_repair))
        .routes(routes!(repair::answer))
        .routes(routes!(repair::override_quote))
        .routes(routes!(orders::put_orders))
        .routes(routes!(orders::get_order))
        .routes(routes!(notifications::put_opt_out))
        .routes(routes!(keys::create_key, keys::list_keys))
        .routes(routes!(keys::revoke_key))
}

/// The OpenAPI document of [`router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = split_api();
    doc
}

/// The routes and their document, with the rules the route derives cannot state (the bodies'
/// schemas exist only once every route is in).
fn split_api() -> (axum::Router<Arc<Ctx>>, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = api().split_for_parts();
    doc_rules::ExchangeNamesSku.modify(&mut doc);
    doc_rules::OriginFormsAreClosed.modify(&mut doc);
    doc_rules::PriceNamesOneKey.modify(&mut doc);
    (routes, doc)
}

pub fn router(ctx: Arc<Ctx>) -> Router {
    let (routes, doc) = split_api();
    // Layers run outside in: latency, JSON errors, then the key check, then the body limit.
    routes
        .merge(ui::router())
        .merge(notifications::router())
        .merge(portal::router())
        .fallback(route_not_found)
        .layer(Extension(Arc::new(doc)))
        .layer(DefaultBodyLimit::max(API_BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(
            ctx.clone(),
            auth::require_key,
        ))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(long_uri::refuse_long_uri))
        .layer(middleware::from_fn_with_state(ctx.clone(), observe))
        .with_state(ctx)
}

/// Middleware: the time to each answer's head, by method, route pattern and status class.
async fn observe(State(ctx): State<Arc<Ctx>>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    ctx.metrics.http_request(
        &method,
        &route,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
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

/// Prometheus metrics: OpenMetrics text when `Accept` asks for it, else the classic text format
/// 0.0.4. Open, like `/healthz`: keep `http.listen` on loopback or behind a proxy.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Metrics in the form `Accept` asks for", content(
        (String = "text/plain"),
        (String = "application/openmetrics-text")))))]
async fn metrics(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    ctx.metrics.sites_online.set(ctx.live.n_online() as i64);
    ctx.metrics
        .db_queue_depth
        .set(i64::try_from(ctx.db.queue_depth()).unwrap_or(i64::MAX));
    let ids: Vec<_> = ctx.fleet.sites.iter().map(|s| s.id.clone()).collect();
    let streams = ctx
        .db
        .call(move |c| {
            ids.into_iter()
                .map(|id| crate::store::command_stream(c, &id).map(|hw| (id, hw)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
    match streams {
        Ok(streams) => {
            for (site, (head, acked)) in streams {
                ctx.metrics
                    .site_commands_pending(&site, head.saturating_sub(acked));
                let live = ctx.live.get(&site);
                ctx.metrics
                    .site_lag(&site, live.lag_ops(live.applied_seq).ok());
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: command streams unreadable"),
    }
    // Pipeline gauges, lag seconds, devices and alerts come with a dashboard snapshot.
    if let Err(e) = ctx.dashboard.snapshot(&ctx, ctx.clock.now_ms()).await {
        tracing::warn!(error = %e, "metrics: dashboard figures unreadable");
    }
    (
        [(header::CONTENT_TYPE, format.content_type())],
        ctx.metrics.render(format),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object)))]
async fn openapi_json(Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>) -> Response {
    axum::Json(doc.as_ref()).into_response()
}

#[cfg(test)]
mod tests {
    /// What every operation can answer whatever its handler does, by what it reads: a JSON
    /// body (400 malformed, 413 too large, 415 not JSON, 422 a wrong field), a path parameter
    /// (400), a key (401). The document must list them, or a client (and schemathesis) meets
    /// statuses it was not told of.
    #[test]
    fn every_operation_lists_the_statuses_its_extractors_answer() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let listed = |status: &str| op["responses"].get(status).is_some();
                let mut needed = Vec::new();
                if op.get("requestBody").is_some() {
                    needed.extend(["400", "413", "415", "422"]);
                }
                if path.contains('{') {
                    needed.push("400");
                }
                if op.get("security").is_some() {
                    needed.push("401");
                }
                for status in needed {
                    if !listed(status) {
                        missing.push(format!("{method} {path}: {status}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "not listed:\n{}", missing.join("\n"));
    }

    /// An id in a path is refused (400) unless it has the id's characters: the document says
    /// which, so a schema-valid id is never refused for its shape.
    #[test]
    fn id_path_parameters_carry_the_ids_pattern() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                for p in params.iter().filter(|p| p["in"] == "path") {
                    let name = p["name"].as_str().unwrap_or_default();
                    let ids = ["rma", "lpn", "merchant", "store_id", "site"];
                    if ids.contains(&name) && p["schema"]["pattern"].as_str().is_none() {
                        missing.push(format!("{method} {path}: {name}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "no pattern:\n{}", missing.join("\n"));
    }
}
