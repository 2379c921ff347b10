//! Trade-ins over the API: a merchant's price table (by SKU or category, and grade), quotes
//! from it for an item in the condition its owner describes, the item sent against its
//! quote (a return), and the answer to a counter-offer after grading. Ops keys, or the
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
use crate::app::{trade_in, trade_in_offer, trade_in_send};
use crate::store::orders::Contact;
use crate::store::trade_in::Quote;
use crate::store::trade_in_returns::{Answered, Decision, Overridden, Payout, TradeIn};
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
    /// Once the item is sent against the quote: its return and where the offer stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    trade_in: Option<TradeInReturn>,
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
            trade_in: None,
        }
    }
}

/// A trade-in's return and where its offer stands.
#[derive(Serialize, ToSchema)]
pub struct TradeInReturn {
    /// The return the item travels under (`GET /api/v1/returns/{rma}`: its label, its
    /// timeline).
    rma: String,
    /// `store_credit` (with the merchant's store-credit bonus) or `bank_transfer`.
    payout: String,
    /// The grade the site gave, once graded.
    #[serde(skip_serializing_if = "Option::is_none")]
    graded: Option<String>,
    /// The offer once graded: the quote when graded as described or better.
    #[serde(skip_serializing_if = "Option::is_none")]
    offer_yen: Option<u64>,
    /// The offer is lower than the quote: the customer (or the merchant for them) accepts or
    /// declines it by `answer_by`.
    counter_offer: bool,
    /// RFC 3339: a counter-offer's deadline; unanswered, `policy.trade_in.default_after_deadline`
    /// applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    answer_by: Option<String>,
    /// `accepted` or `declined` (declined: the item is to be sent back to the customer).
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<String>,
    /// `customer`, `merchant`, `automatic` (graded as described), `deadline`, or `ops` (an
    /// override at or above the quote).
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_by: Option<String>,
    /// What the customer is owed once accepted, the store-credit bonus included; confirmed
    /// paid as a refund is (`POST /api/v1/returns/{rma}/refund`).
    #[serde(skip_serializing_if = "Option::is_none")]
    payout_yen: Option<u64>,
}

impl From<TradeIn> for TradeInReturn {
    fn from(t: TradeIn) -> Self {
        let (decision, decided_by) = t
            .decision
            .map(|(d, by, _)| (d.as_str().to_owned(), by))
            .unzip();
        Self {
            rma: t.rma,
            payout: t.payout.as_str().to_owned(),
            graded: t.graded.map(|g| g.as_str().to_owned()),
            offer_yen: t.offer.map(|o| o.amount_yen),
            counter_offer: t.offer.is_some_and(|o| o.counter),
            answer_by: t.offer.and_then(|o| o.deadline_ms).and_then(rfc3339),
            decision,
            decided_by,
            payout_yen: t.payout_yen,
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
    let sent = trade_in::sent(&ctx, &q.quote_id).await?;
    let mut answer: TradeInQuote = q.into();
    answer.trade_in = sent.map(Into::into);
    Ok(Json(answer))
}

/// How the item leaves its owner, and how they want to be paid.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The owner's postal code (`530-0001` or `5300001`), of a code in Japan Post's data: the
    /// return is routed from there.
    #[schema(pattern = "^[0-9]{3}-?[0-9]{4}$")]
    postal_code: String,
    /// `carrier_pickup`, `home_pickup`, `konbini_dropoff` or `store_dropoff`.
    #[schema(pattern = "^(carrier_pickup|home_pickup|konbini_dropoff|store_dropoff)$")]
    method: String,
    /// `store_credit` (with the merchant's store-credit bonus) or `bank_transfer`.
    #[schema(pattern = "^(store_credit|bank_transfer)$")]
    payout: String,
    /// Where the owner is told of the return and the offer; without it, the merchant tells
    /// them.
    #[serde(default)]
    #[schema(
        pattern = "^[A-Za-z0-9_%+-]{1,32}(\\.[A-Za-z0-9_%+-]{1,16})?@[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?){0,3}\\.[A-Za-z]{2,16}$"
    )]
    email: Option<String>,
    /// The language of those messages: `ja` (default) or `en`.
    #[serde(default)]
    #[schema(pattern = "^(ja|en)$")]
    language: Option<String>,
}

/// The return a trade-in travels under.
#[derive(Serialize, ToSchema)]
pub struct TradeInSent {
    quote_id: String,
    /// Its label and timeline: `GET /api/v1/returns/{rma}`.
    rma: String,
    /// The site it was routed to.
    site: String,
}

/// Sends the item against a valid quote: it becomes a return of one unit, routed and labelled
/// like any return, whose offer follows its grading. Sent again, the quote answers the same
/// return (200).
#[utoipa::path(post, path = "/api/v1/merchants/{merchant}/trade-in/quotes/{quote_id}/send", tag = "trade-in",
    security(("bearer" = [])),
    params(
        ("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$"),
        ("quote_id" = String, Path, description = "As the quote gave it", pattern = "^TQ-[0-9A-Z]{10}$")),
    request_body = SendRequest,
    responses(
        (status = 201, description = "Sent: the return is registered", body = TradeInSent),
        (status = 200, description = "Sent before: the same return", body = TradeInSent),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant or quote, or the postal code is not in Japan Post's data (`field`: `postal_code`)", body = ErrorBody),
        (status = 409, description = "The quote expired before it was sent (`field`: `quote_id`)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "A field is not valid; `field` names it", body = ErrorBody),
        (status = 503, description = "No site can take the return today", body = ErrorBody)))]
pub async fn send(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath((merchant, quote_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SendRequest>,
) -> Result<(StatusCode, Json<TradeInSent>), ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let payout = Payout::parse(&body.payout)
        .ok_or_else(|| ApiError::invalid_field("payout", "store_credit or bank_transfer"))?;
    let language = body.language.unwrap_or_else(|| "ja".into());
    if !["ja", "en"].contains(&language.as_str()) {
        return Err(ApiError::invalid_field("language", "ja or en"));
    }
    let contact = match body.email {
        Some(email) if super::orders::valid_email(&email) => Some(Contact {
            email,
            phone: String::new(),
            line_user_id: None,
            language,
        }),
        Some(_) => return Err(ApiError::invalid_field("email", "not an email address")),
        None => None,
    };
    let sending = trade_in_send::Sending {
        postal_code: body.postal_code,
        method: body.method,
        payout,
        contact,
    };
    let sent = trade_in_send::send(&ctx, &merchant, &quote_id, sending, ctx.clock.now_ms()).await?;
    tracing::info!(merchant = %merchant, key_id = %caller.key_id, quote_id = %sent.quote.quote_id,
                   rma = %sent.rma, fresh = sent.fresh, "trade-in sent over the API");
    let status = if sent.fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(TradeInSent {
            quote_id: sent.quote.quote_id,
            rma: sent.rma.to_string(),
            site: sent.site,
        }),
    ))
}

/// The owner's answer to a counter-offer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// `accept` (the lower offer is paid) or `decline` (the item is sent back).
    #[schema(pattern = "^(accept|decline)$")]
    answer: String,
}

/// Answers the counter-offer made after grading, for its owner: once, before its deadline.
/// The same answer again changes nothing (200).
#[utoipa::path(post, path = "/api/v1/merchants/{merchant}/trade-in/quotes/{quote_id}/answer", tag = "trade-in",
    security(("bearer" = [])),
    params(
        ("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$"),
        ("quote_id" = String, Path, description = "As the quote gave it", pattern = "^TQ-[0-9A-Z]{10}$")),
    request_body = AnswerRequest,
    responses(
        (status = 200, description = "Answered; where the trade-in now stands", body = TradeInReturn),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant or quote, or the quote was not sent", body = ErrorBody),
        (status = 409, description = "Nothing to answer: not graded yet, accepted as quoted, answered otherwise before, or past its deadline", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`answer` is not accept or decline", body = ErrorBody)))]
pub async fn answer(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath((merchant, quote_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<AnswerRequest>,
) -> Result<Json<TradeInReturn>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let decision = match body.answer.as_str() {
        "accept" => Decision::Accepted,
        "decline" => Decision::Declined,
        _ => return Err(ApiError::invalid_field("answer", "accept or decline")),
    };
    let q = trade_in::get_quote(&ctx, merchant.as_str(), &quote_id).await?;
    let Some(sent) = trade_in::sent(&ctx, &q.quote_id).await? else {
        return Err(ApiError::not_found(format!(
            "quote {quote_id} was not sent: there is no offer to answer"
        )));
    };
    let answered = trade_in_offer::answer(&ctx, &sent.rma, decision, "merchant").await?;
    let refused = |why: String| Err(ApiError::conflict(why).with_field("answer"));
    match answered {
        Answered::Recorded { .. } | Answered::Already(_) => {}
        Answered::Conflict(d) => {
            return refused(format!(
                "the offer on {quote_id} was {} already",
                d.as_str()
            ))
        }
        Answered::NotOpen => {
            return refused(format!(
                "no counter-offer on {quote_id} is open: not graded yet, or past its deadline"
            ))
        }
        Answered::NotFound => {
            return Err(ApiError::not_found(format!(
                "no trade-in return of {quote_id}"
            )))
        }
    }
    tracing::info!(merchant = %merchant, key_id = %caller.key_id, quote_id = %quote_id,
                   answer = decision.as_str(), "trade-in counter-offer answered over the API");
    let now = trade_in::sent(&ctx, &q.quote_id)
        .await?
        .ok_or_else(|| ApiError::internal(&"trade-in vanished after its answer"))?;
    Ok(Json(now.into()))
}

/// Longest reason an override may give, in characters: a sentence or two for the record.
pub const OVERRIDE_REASON_CHARS_MAX: usize = 500;

/// An ops override's amount (`field`, 0 to `max_yen`) and its reason, trimmed, as an
/// override of a trade-in's offer or a repair's quote (`what`) takes them; a refusal names
/// the field.
pub fn override_terms<'r>(
    field: &'static str,
    amount: i64,
    max_yen: u64,
    reason: &'r str,
    what: &str,
) -> Result<(u64, &'r str), ApiError> {
    let amount_yen = u64::try_from(amount)
        .ok()
        .filter(|y| *y <= max_yen)
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!("{amount} is not an amount from 0 to {max_yen} yen"),
            )
        })?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid_field(
            "reason",
            format!("say why the {what} is overridden"),
        ));
    }
    if reason.chars().count() > OVERRIDE_REASON_CHARS_MAX {
        return Err(ApiError::invalid_field(
            "reason",
            format!("longer than {OVERRIDE_REASON_CHARS_MAX} characters"),
        ));
    }
    Ok((amount_yen, reason))
}

/// Ops' new offer on a disputed trade-in, and why.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// In yen, 0 to 10,000,000 (`tradein::PRICE_YEN_MAX`). At or above the quote it is
    /// accepted at once; below it, the customer answers it as a counter-offer.
    #[schema(minimum = 0, maximum = 10_000_000)]
    offer_yen: i64,
    /// Why, for the record and the merchant: 1 to 500 characters
    /// (`OVERRIDE_REASON_CHARS_MAX`), not only spaces.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    reason: String,
}

/// Overrides a trade-in's offer while it is offered and undecided (ops only), once, with a
/// reason: at or above the quote it is accepted at once, since the customer gets at least
/// what they were promised; below it, it stays a counter-offer with a fresh deadline, since
/// less than the quote needs the customer's consent. The customer is told by mail and the
/// merchant by its webhook. The same override again changes nothing (200).
#[utoipa::path(post, path = "/api/v1/returns/{rma}/trade-in/override", tag = "trade-in",
    security(("bearer" = [])),
    params(("rma" = String, Path, description = "The trade-in's return", pattern = "^[A-Z0-9._-]{1,64}$")),
    request_body = OverrideRequest,
    responses(
        (status = 200, description = "Overridden; where the trade-in now stands", body = TradeInReturn),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Not an ops key", body = ErrorBody),
        (status = 404, description = "No trade-in return of that RMA", body = ErrorBody),
        (status = 409, description = "Nothing to override: not graded yet, decided or paid already, or overridden otherwise before (`field`: `offer_yen`)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`offer_yen` or `reason` is not valid; `field` names it", body = ErrorBody)))]
pub async fn override_offer(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(rma): ApiPath<String>,
    ApiJson(body): ApiJson<OverrideRequest>,
) -> Result<Json<TradeInReturn>, ApiError> {
    caller.require_ops("overriding a trade-in offer")?;
    overridden(&ctx, &rma, body, &caller.key_id).await
}

/// The same override from the return's page in the ops console, by the session's key.
pub(super) async fn override_from_page(
    State(ctx): State<Arc<Ctx>>,
    browser: super::session::Browser,
    headers: axum::http::HeaderMap,
    ApiPath(rma): ApiPath<String>,
    ApiJson(body): ApiJson<OverrideRequest>,
) -> Result<Json<TradeInReturn>, ApiError> {
    browser.require_ops()?;
    browser.require_csrf(&headers)?;
    overridden(&ctx, &rma, body, &browser.key_id).await
}

async fn overridden(
    ctx: &Ctx,
    rma: &str,
    body: OverrideRequest,
    key_id: &str,
) -> Result<Json<TradeInReturn>, ApiError> {
    let (amount_yen, reason) = override_terms(
        "offer_yen",
        body.offer_yen,
        modori_shared::tradein::PRICE_YEN_MAX,
        &body.reason,
        "offer",
    )?;
    let overridden = trade_in_offer::override_offer(ctx, rma, amount_yen, reason, key_id).await?;
    let refused = |why: String| Err(ApiError::conflict(why).with_field("offer_yen"));
    match overridden {
        Overridden::Recorded { .. } | Overridden::Already => {}
        Overridden::OverriddenBefore => {
            return refused(format!(
                "the offer on {rma} was overridden otherwise before"
            ))
        }
        Overridden::Decided(d) => {
            return refused(format!("the offer on {rma} was {} already", d.as_str()))
        }
        Overridden::NotOffered => {
            return refused(format!(
                "{rma} is not graded yet: there is no offer to override"
            ))
        }
        Overridden::NotFound => {
            return Err(ApiError::not_found(format!(
                "{rma} is not a trade-in return"
            )))
        }
    }
    let now = trade_in_offer::of_return(ctx, rma)
        .await?
        .ok_or_else(|| ApiError::internal(&"trade-in vanished after its override"))?;
    Ok(Json(now.into()))
}
