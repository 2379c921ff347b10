//! Per-merchant activity billing: the monthly statement, as JSON or CSV.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modori_shared::domain::MerchantId;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::{ApiError, ApiPath, ErrorBody};
use crate::store::billing::{self, Statement};
use crate::Ctx;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MonthQuery {
    /// `YYYY-MM`, a month in Japan time.
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    month: String,
}

async fn load(
    ctx: &Ctx,
    caller: &Caller,
    merchant: String,
    query: Result<Query<MonthQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Statement, ApiError> {
    let merchant = MerchantId::new(merchant).map_err(|e| ApiError::invalid_path("merchant", e))?;
    caller.require_merchant(&merchant)?;
    if !ctx.knows_merchant(merchant.as_str()) {
        return Err(ApiError::not_found(format!("no merchant {merchant}")));
    }
    let Query(q) = query.map_err(|e| ApiError::invalid_field("month", e.body_text()))?;
    let rates = ctx.config.billing.clone();
    let now_ms = ctx.clock.now_ms();
    let month = q.month.clone();
    let found = ctx
        .db
        .call(move |c| billing::statement(c, &rates, merchant.as_str(), &month, now_ms))
        .await?;
    found.ok_or_else(|| {
        ApiError::invalid_field(
            "month",
            format!("{:?} is not a month: expected YYYY-MM", q.month),
        )
    })
}

/// A merchant's statement for a month: each billable activity (receipts, gradings, relabels,
/// refurbishments, disposals, transfers, storage days) with its quantity, rate and amount.
#[utoipa::path(get, path = "/api/v1/billing/{merchant}", tag = "billing",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant", pattern = "^[a-z0-9-]{1,64}$"), MonthQuery),
    responses(
        (status = 200, body = Statement),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn statement(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    query: Result<Query<MonthQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Statement>, ApiError> {
    Ok(Json(load(&ctx, &caller, merchant, query).await?))
}

/// The same statement as CSV (`merchant,month,activity,quantity,rate_yen,amount_yen`).
#[utoipa::path(get, path = "/api/v1/billing/{merchant}/csv", tag = "billing",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant", pattern = "^[a-z0-9-]{1,64}$"), MonthQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn statement_csv(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    query: Result<Query<MonthQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let s = load(&ctx, &caller, merchant, query).await?;
    let name = format!(
        "attachment; filename=\"modori-{}-{}.csv\"",
        s.merchant, s.month
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        billing::csv(&s),
    )
        .into_response())
}
