//! What commerce systems and carriers post after a return is registered: the merchant's
//! confirmation that the refund was paid, carrier tracking events; and the analytics of
//! returns (reasons by SKU and category, a customer's history and abuse score).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use modori_shared::domain::{MerchantId, RmaId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::ops::CUSTOMER_REF_CHARS_MAX;
use crate::apikeys::Scope;
use crate::policy;
use crate::store::commerce::{self, Confirm, ReasonCount};
use crate::store::lifecycle;
use crate::Ctx;

/// Reason rows returned by one request at most.
pub const REASONS_LIST_MAX: usize = 500;

#[derive(Serialize, ToSchema)]
pub struct RefundView {
    rma: String,
    amount_yen: i64,
    /// `refunded` once confirmed.
    status: String,
}

/// The merchant confirms it paid the refund (or credit) computed after grading; the return's
/// timeline gets `refunded`, and the customer is told through the webhook.
#[utoipa::path(post, path = "/api/v1/returns/{rma}/refund", tag = "returns",
    security(("bearer" = [])),
    params(("rma" = String, Path, description = "The return's RMA id", pattern = "^[A-Z0-9._-]{1,64}$")),
    responses(
        (status = 200, body = RefundView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not graded yet: no refund computed", body = ErrorBody)))]
pub async fn confirm_refund(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(rma): ApiPath<String>,
) -> Result<Json<RefundView>, ApiError> {
    let rma = RmaId::new(rma).map_err(|e| ApiError::invalid_path("rma", e))?;
    let r = rma.clone();
    let owner = ctx.db.call(move |c| lifecycle::owner(c, &r)).await?;
    let owner = owner.ok_or_else(|| ApiError::not_found(format!("no return {rma}")))?;
    match &caller.scope {
        Scope::Ops => {}
        Scope::Merchant(m) if owner.merchant.as_deref() == Some(m.as_str()) => {}
        _ => {
            return Err(ApiError::forbidden(format!(
                "API key {} does not cover the refund of {rma} (ops or its merchant)",
                caller.key_id
            )))
        }
    }
    let r = rma.clone();
    let now_ms = ctx.clock.now_ms();
    let outcome = ctx
        .db
        .call(move |c| commerce::confirm_refund(c, &r, now_ms))
        .await?;
    match outcome {
        Confirm::Confirmed { amount_yen } | Confirm::AlreadyConfirmed { amount_yen } => {
            ctx.webhooks_wake();
            Ok(Json(RefundView {
                rma: rma.to_string(),
                amount_yen,
                status: "refunded".into(),
            }))
        }
        Confirm::NotComputed => Err(ApiError::conflict(format!(
            "the refund of {rma} is computed once its units are received and graded"
        ))),
        Confirm::NotFound => Err(ApiError::not_found(format!("no return {rma}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarrierPost {
    /// The carrier integration posting (`sim`).
    carrier: String,
    /// In the carrier's format (`sim`, the only carrier, is documented here): 1,000 at most
    /// (`EVENTS_PER_POST_MAX`).
    #[schema(value_type = Vec<SimCarrierEvent>, max_items = 1000)]
    events: serde_json::Value,
}

/// One tracking event in the `sim` carrier's format (read by `carrier::Simulated`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // The document's shape only; the carrier module parses the events.
pub struct SimCarrierEvent {
    /// 1 to 64 ASCII characters (`FIELD_BYTES_MAX`).
    #[schema(pattern = "^[ -~]{1,64}$")]
    tracking: String,
    #[schema(pattern = "^(picked_up|in_transit|delivered_to_site|exception)$")]
    status: String,
    /// Milliseconds since 1970.
    #[schema(minimum = 0)]
    at_ms: i64,
    /// Up to 64 ASCII characters (`FIELD_BYTES_MAX`).
    #[schema(pattern = "^[ -~]{0,64}$")]
    location: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CarrierAnswer {
    n_applied: usize,
    /// Tracking numbers no return carries.
    unknown_tracking: Vec<String>,
}

/// A carrier integration posts tracking events; each lands in the timeline of the return
/// carrying its number and moves the return's transit status (the "in transit" count).
#[utoipa::path(post, path = "/api/v1/carrier-events", tag = "returns", security(("bearer" = [])),
    request_body = CarrierPost,
    responses(
        (status = 200, body = CarrierAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Carrier integrations use an ops key", body = ErrorBody),
        (status = 404, description = "Unknown carrier", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn carrier_events(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(post): ApiJson<CarrierPost>,
) -> Result<Json<CarrierAnswer>, ApiError> {
    caller.require_ops("carrier events")?;
    let carrier = crate::carrier::carrier(&post.carrier)
        .map_err(|e| ApiError::not_found(e.to_string()).with_field("carrier"))?;
    let events = carrier.parse(&post.events).map_err(|e| match e {
        crate::carrier::CarrierError::Invalid { path, message } => {
            ApiError::invalid_field(path, message)
        }
        other => ApiError::invalid_field("events", other),
    })?;
    let id = carrier.id();
    let now_ms = ctx.clock.now_ms();
    let ingested = ctx
        .db
        .call(move |c| commerce::ingest_tracking(c, id, &events, now_ms))
        .await?;
    ctx.webhooks_wake();
    Ok(Json(CarrierAnswer {
        n_applied: ingested.n_applied,
        unknown_tracking: ingested.unknown_tracking,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReasonsQuery {
    /// Only this merchant's returns (a merchant key sees only its own).
    #[param(pattern = "^[a-z0-9-]{1,64}$")]
    merchant: Option<String>,
}

/// Return reasons by SKU (with its category), most returned first: for root-cause analysis.
#[utoipa::path(get, path = "/api/v1/analytics/reasons", tag = "analytics",
    security(("bearer" = [])), params(ReasonsQuery),
    responses(
        (status = 200, body = Vec<ReasonCount>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "A query parameter is wrong (`field` names it)",
         body = ErrorBody)))]
pub async fn reasons(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    query: Result<Query<ReasonsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ReasonCount>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_field("query", e.body_text()))?;
    let merchant = q
        .merchant
        .map(MerchantId::new)
        .transpose()
        .map_err(|e| ApiError::invalid_field("merchant", e))?;
    let merchant = match (&caller.scope, merchant) {
        (Scope::Ops, m) => m,
        (Scope::Merchant(own), None) => Some(own.clone()),
        (Scope::Merchant(_), Some(m)) => {
            caller.require_merchant(&m)?;
            Some(m)
        }
        (Scope::Store(_), _) => {
            caller.require_ops("return analytics (ops or a merchant)")?;
            None
        }
    };
    let rows = ctx
        .db
        .call(move |c| {
            commerce::reasons(
                c,
                merchant.as_ref().map(MerchantId::as_str),
                REASONS_LIST_MAX,
            )
        })
        .await?;
    Ok(Json(rows))
}

/// Per store: returns its counter checked, units the sites graded since, and how many the
/// site found in a worse condition than the store said.
#[utoipa::path(get, path = "/api/v1/analytics/stores", tag = "analytics",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<crate::store::counter_checks::StoreCheck>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn store_checks(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
) -> Result<Json<Vec<crate::store::counter_checks::StoreCheck>>, ApiError> {
    caller.require_ops("store condition checks")?;
    let rows = ctx
        .db
        .call(|c| crate::store::counter_checks::store_checks(c))
        .await?;
    Ok(Json(rows))
}

#[derive(Serialize, ToSchema)]
pub struct FactorView {
    name: String,
    count: u32,
    points: u32,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerView {
    reference: String,
    returns_total: u32,
    returns_90d: u32,
    /// Returns per 30 days over the last 90.
    return_rate_per_30d: f64,
    /// 0-100, with what makes it up.
    abuse_score: u32,
    factors: Vec<FactorView>,
    /// new, regular, trusted or strict.
    tier: String,
}

/// A customer's returns and abuse score with its factors (ops keys: a customer may shop at
/// several merchants).
#[utoipa::path(get, path = "/api/v1/analytics/customers/{reference}", tag = "analytics",
    security(("bearer" = [])),
    params(("reference" = String, Path, description = "The commerce system's customer reference")),
    responses(
        (status = 200, body = CustomerView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn customer(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(reference): ApiPath<String>,
) -> Result<Json<CustomerView>, ApiError> {
    caller.require_ops("customer analytics")?;
    if reference.is_empty() || reference.chars().count() > CUSTOMER_REF_CHARS_MAX {
        return Err(ApiError::invalid_path(
            "reference",
            format!("must be 1..={CUSTOMER_REF_CHARS_MAX} characters"),
        ));
    }
    let r = reference.clone();
    let now_ms = ctx.clock.now_ms();
    let (known, history) = ctx
        .db
        .call(move |c| {
            Ok::<_, crate::store::StoreError>((
                commerce::customer_known(c, &r)?,
                commerce::history(c, &r, now_ms)?,
            ))
        })
        .await?;
    if !known {
        return Err(ApiError::not_found(format!(
            "no returns of customer {reference}"
        )));
    }
    let abuse = policy::abuse_score(&history);
    let tier = policy::tier(&ctx.config.policy, &history, &abuse);
    Ok(Json(CustomerView {
        reference,
        returns_total: history.returns_total,
        returns_90d: history.returns_90d,
        return_rate_per_30d: f64::from(history.returns_90d) / 3.0,
        abuse_score: abuse.score,
        factors: abuse
            .factors
            .into_iter()
            .map(|f| FactorView {
                name: f.name.to_owned(),
                count: f.count,
                points: f.points,
            })
            .collect(),
        tier: serde_json::to_value(tier)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ToteView {
    #[serde(flatten)]
    tote: crate::store::totes::Tote,
    /// The tote's label, ZPL.
    zpl: String,
}

#[derive(Serialize, ToSchema)]
pub struct Waiting {
    store: String,
    /// Returns taken at the store and not in a tote yet.
    waiting: Vec<String>,
    /// Totes planned, waiting for pickup, each with its label.
    totes: Vec<ToteView>,
}

/// What waits at a store: its returns not yet in a tote, and the totes to ship with their
/// labels (the store sticks the label on and the carrier takes the tote).
#[utoipa::path(get, path = "/api/v1/stores/{store_id}/waiting", tag = "returns",
    security(("bearer" = [])),
    params(("store_id" = String, Path, description = "The store", pattern = "^[a-z0-9-]{1,64}$")),
    responses(
        (status = 200, body = Waiting),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn store_waiting(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(store_id): ApiPath<String>,
) -> Result<Json<Waiting>, ApiError> {
    let id = modori_shared::domain::StoreId::new(store_id)
        .map_err(|e| ApiError::invalid_path("store_id", e))?;
    let Some(store) = ctx.fleet.stores.iter().find(|s| s.id == id) else {
        return Err(ApiError::not_found(format!("no store {id}")));
    };
    match &caller.scope {
        Scope::Ops => {}
        Scope::Store(own) if *own == id => {}
        _ => {
            return Err(ApiError::forbidden(format!(
                "API key {} does not cover store {id}",
                caller.key_id
            )))
        }
    }
    let s = id.to_string();
    let (waiting, totes) = ctx
        .db
        .call(move |c| crate::store::totes::waiting(c, &s))
        .await?;
    let mut views = Vec::with_capacity(totes.len());
    for t in totes {
        let site = ctx.fleet.sites.iter().find(|s| s.id.as_str() == t.site);
        let (site_id, site_name) = match site {
            Some(s) => (s.id.clone(), s.name.clone()),
            None => continue,
        };
        let zpl = modori_shared::label::zpl::tote_label(
            modori_shared::label::zpl::LabelMedia::default(),
            &t.tote,
            &site_id,
            &site_name,
            &store.name,
            t.rmas.len(),
        )
        .map_err(|e| ApiError::internal(&e))?;
        views.push(ToteView { tote: t, zpl });
    }
    Ok(Json(Waiting {
        store: id.to_string(),
        waiting,
        totes: views,
    }))
}
