//! Trade-ins over the API: a merchant's price table (by SKU or category, and grade) and
//! quotes from it for an item in the condition its owner describes. Ops keys, or the
//! merchant's own.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use modori_shared::domain::{Grade, Sku};
use modori_shared::tradein::{Condition, PriceKey, PriceRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::merchant_portal::known_merchant;
use super::rfc3339;
use crate::app::trade_in;
use crate::store::trade_in::Quote;
use crate::Ctx;

/// A merchant's trade-in prices. A product is taken as a trade-in when its SKU or its
/// category has a row; a later row for the same SKU or category and grade replaces an
/// earlier one.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TradeInPrices {
    /// At most 10,000 rows (`tradein::PRICE_ROWS_MAX`).
    #[schema(max_items = 10_000)]
    prices: Vec<TradeInPrice>,
}

/// What one unit of a SKU, or of any SKU of a category without a row of its own, is bought
/// for at a grade. Names a `sku` or a `category`, not both.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TradeInPrice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    sku: Option<String>,
    /// A catalogue category code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    category: Option<String>,
    /// The grade a site gives: A (as new) to D, X (not working).
    #[schema(pattern = "^[ABCDX]$")]
    grade: String,
    /// In yen, at most 10,000,000 (`tradein::PRICE_YEN_MAX`).
    #[schema(maximum = 10_000_000)]
    price_yen: u64,
}

impl From<PriceRow> for TradeInPrice {
    fn from(r: PriceRow) -> Self {
        let (sku, category) = match r.key {
            PriceKey::Sku(s) => (Some(s), None),
            PriceKey::Category(c) => (None, Some(c)),
        };
        Self {
            sku,
            category,
            grade: r.grade.as_str().to_owned(),
            price_yen: r.price_yen,
        }
    }
}

fn price_row(i: usize, p: TradeInPrice) -> Result<PriceRow, ApiError> {
    let field = |name: &str| format!("prices[{i}].{name}");
    let key = match (p.sku, p.category) {
        (Some(sku), None) => PriceKey::Sku(
            Sku::new(sku)
                .map_err(|e| ApiError::invalid_field(field("sku"), e))?
                .to_string(),
        ),
        (None, Some(category)) => PriceKey::Category(category),
        _ => {
            return Err(ApiError::invalid_field(
                format!("prices[{i}]"),
                "name a sku or a category, one of them",
            ))
        }
    };
    let grade = Grade::parse(&p.grade).map_err(|e| ApiError::invalid_field(field("grade"), e))?;
    Ok(PriceRow {
        key,
        grade,
        price_yen: p.price_yen,
    })
}

/// The merchant's trade-in prices, in the order they were put.
#[utoipa::path(get, path = "/api/v1/merchants/{merchant}/trade-in/prices", tag = "trade-in",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    responses(
        (status = 200, body = TradeInPrices),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody)))]
pub async fn get_prices(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
) -> Result<Json<TradeInPrices>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let rows = trade_in::prices(&ctx, merchant.as_str()).await?;
    Ok(Json(TradeInPrices {
        prices: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Replaces the merchant's trade-in prices as a whole (an empty list takes no trade-ins);
/// quotes given before keep their price.
#[utoipa::path(put, path = "/api/v1/merchants/{merchant}/trade-in/prices", tag = "trade-in",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = TradeInPrices,
    responses(
        (status = 200, description = "Stored; the table now in force", body = TradeInPrices),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "A row is not valid; `field` names it", body = ErrorBody)))]
pub async fn put_prices(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    ApiJson(body): ApiJson<TradeInPrices>,
) -> Result<Json<TradeInPrices>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let rows = body
        .prices
        .into_iter()
        .enumerate()
        .map(|(i, p)| price_row(i, p))
        .collect::<Result<Vec<_>, _>>()?;
    let n_rows = rows.len();
    trade_in::put_prices(&ctx, merchant.as_str(), rows).await?;
    tracing::info!(merchant = %merchant, key_id = %caller.key_id, n_rows, "trade-in prices put");
    let rows = trade_in::prices(&ctx, merchant.as_str()).await?;
    Ok(Json(TradeInPrices {
        prices: rows.into_iter().map(Into::into).collect(),
    }))
}

/// What the owner of an item says of it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// A SKU of the merchant's catalogue.
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    sku: String,
    /// `like_new` (priced at grade A), `good` (B), `fair` (C), `poor` (D) or `not_working` (X).
    #[schema(pattern = "^(like_new|good|fair|poor|not_working)$")]
    condition: String,
}

/// A quote: what the item is bought for if the site grades it as described.
#[derive(Serialize, ToSchema)]
pub struct TradeInQuote {
    quote_id: String,
    sku: String,
    condition: String,
    /// The grade the condition described would get, at which the quote is priced.
    expected_grade: String,
    quote_yen: u64,
    /// RFC 3339: honoured until then (`trade_in::QUOTE_VALID_DAYS` after it was given).
    expires_at: Option<String>,
}

impl From<Quote> for TradeInQuote {
    fn from(q: Quote) -> Self {
        Self {
            quote_id: q.quote_id,
            sku: q.sku,
            condition: q.condition.as_str().to_owned(),
            expected_grade: q.grade.as_str().to_owned(),
            quote_yen: q.quote_yen,
            expires_at: rfc3339(q.expires_ms),
        }
    }
}

/// Quotes an item of the merchant's catalogue in the condition its owner describes, from the
/// merchant's trade-in prices, and keeps the quote.
#[utoipa::path(post, path = "/api/v1/merchants/{merchant}/trade-in/quotes", tag = "trade-in",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = QuoteRequest,
    responses(
        (status = 201, description = "Quoted", body = TradeInQuote),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant; the SKU is not in its catalogue; or the merchant does not buy it (`field`: `sku`), or not in that condition (`condition`)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "A field is not valid; `field` names it", body = ErrorBody)))]
pub async fn create_quote(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    ApiJson(body): ApiJson<QuoteRequest>,
) -> Result<(StatusCode, Json<TradeInQuote>), ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let sku = Sku::new(body.sku).map_err(|e| ApiError::invalid_field("sku", e))?;
    let condition =
        Condition::parse(&body.condition).map_err(|e| ApiError::invalid_field("condition", e))?;
    let q = trade_in::quote(&ctx, merchant.as_str(), sku.as_str(), condition).await?;
    tracing::info!(merchant = %merchant, quote_id = %q.quote_id, sku = %q.sku,
                   condition = %q.condition, quote_yen = q.quote_yen, "trade-in quoted");
    Ok((StatusCode::CREATED, Json(q.into())))
}

/// A quote given before.
#[utoipa::path(get, path = "/api/v1/merchants/{merchant}/trade-in/quotes/{quote_id}", tag = "trade-in",
    security(("bearer" = [])),
    params(
        ("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$"),
        ("quote_id" = String, Path, description = "As the quote gave it", pattern = "^TQ-[0-9A-Z]{10}$")),
    responses(
        (status = 200, body = TradeInQuote),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant or quote", body = ErrorBody)))]
pub async fn get_quote(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath((merchant, quote_id)): ApiPath<(String, String)>,
) -> Result<Json<TradeInQuote>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let q = trade_in::get_quote(&ctx, merchant.as_str(), &quote_id).await?;
    Ok(Json(q.into()))
}
