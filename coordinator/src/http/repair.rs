//! Repairs over the API: the products a merchant repairs, its parts-and-labour table by
//! defect code, a repair request (a return of kind repair, routed and labelled like any
//! return), and where a repair stands (its quote once inspected). Ops keys, or the
//! merchant's own.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use modori_shared::domain::{DefectCode, Sku};
use modori_shared::repair::{Fault, RateRow};
use modori_shared::tradein::PriceKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::merchant_portal::known_merchant;
use super::rfc3339;
use crate::app::repair;
use crate::app::repair_answer;
use crate::store::orders::Contact;
use crate::store::repairs::{Answered, Decision, Overridden, Repair};
use crate::Ctx;

/// The products a merchant repairs: a repair may be asked for a SKU listed, or any SKU of a
/// category listed.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairProducts {
    /// At most 10,000 (`repair::PRODUCTS_MAX`).
    #[schema(max_items = 10_000)]
    products: Vec<RepairProduct>,
}

/// A SKU or a category, one of them.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairProduct {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    sku: Option<String>,
    /// A catalogue category code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    category: Option<String>,
}

fn key_view(key: Option<PriceKey>) -> (Option<String>, Option<String>) {
    match key {
        Some(PriceKey::Sku(s)) => (Some(s), None),
        Some(PriceKey::Category(c)) => (None, Some(c)),
        None => (None, None),
    }
}

fn key_of(
    field: &str,
    sku: Option<String>,
    category: Option<String>,
) -> Result<Option<PriceKey>, ApiError> {
    match (sku, category) {
        (Some(sku), None) => Ok(Some(PriceKey::Sku(
            Sku::new(sku)
                .map_err(|e| ApiError::invalid_field(format!("{field}.sku"), e))?
                .to_string(),
        ))),
        (None, Some(category)) => Ok(Some(PriceKey::Category(category))),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(ApiError::invalid_field(
            field,
            "name a sku or a category, not both",
        )),
    }
}

/// The products the merchant repairs, in the order they were put.
#[utoipa::path(get, path = "/api/v1/merchants/{merchant}/repair/products", tag = "repair",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    responses(
        (status = 200, body = RepairProducts),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody)))]
pub async fn get_products(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
) -> Result<Json<RepairProducts>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    products_now(&ctx, merchant.as_str()).await
}

async fn products_now(ctx: &Ctx, merchant: &str) -> Result<Json<RepairProducts>, ApiError> {
    let keys = repair::products(ctx, merchant).await?;
    Ok(Json(RepairProducts {
        products: keys
            .into_iter()
            .map(|k| {
                let (sku, category) = key_view(Some(k));
                RepairProduct { sku, category }
            })
            .collect(),
    }))
}

/// Replaces the products the merchant repairs as a whole (an empty list repairs nothing);
/// repairs asked for before go on.
#[utoipa::path(put, path = "/api/v1/merchants/{merchant}/repair/products", tag = "repair",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = RepairProducts,
    responses(
        (status = 200, description = "Stored; the list now in force", body = RepairProducts),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "An entry is not valid; `field` names it", body = ErrorBody)))]
pub async fn put_products(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    ApiJson(body): ApiJson<RepairProducts>,
) -> Result<Json<RepairProducts>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let mut keys = Vec::with_capacity(body.products.len());
    for (i, p) in body.products.into_iter().enumerate() {
        let field = format!("products[{i}]");
        let key = key_of(&field, p.sku, p.category)?
            .ok_or_else(|| ApiError::invalid_field(field, "name a sku or a category"))?;
        keys.push(key);
    }
    let n_products = keys.len();
    repair::put_products(&ctx, merchant.as_str(), keys).await?;
    tracing::info!(merchant = %merchant, key_id = %caller.key_id, n_products, "repair products put");
    products_now(&ctx, merchant.as_str()).await
}

/// A merchant's parts-and-labour table by defect code. A repair is quoted the sum of a row
/// for each defect its inspection found: the SKU's row, else its category's, else the row
/// for any product; a defect no row prices (here or in `policy.repair.rates`) leaves the
/// repair unquoted until one does.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairRates {
    /// At most 10,000 rows (`repair::RATE_ROWS_MAX`).
    #[schema(max_items = 10_000)]
    rates: Vec<RepairRateBody>,
}

/// What mending one defect costs, on a `sku`, a `category`, or (neither) any product.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairRateBody {
    /// A defect code as the sites grade it (`stain`, `tear`, `scratch`, `dent`,
    /// `missing_part`, `missing_tags`, `not_working`, `odor`, `packaging_damaged`).
    #[schema(
        pattern = "^(stain|tear|scratch|dent|missing_part|missing_tags|not_working|odor|packaging_damaged)$"
    )]
    defect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    category: Option<String>,
    /// In yen, at most 1,000,000 (`repair::RATE_YEN_MAX`).
    #[schema(maximum = 1_000_000)]
    parts_yen: u64,
    /// In yen, at most 1,000,000 (`repair::RATE_YEN_MAX`).
    #[schema(maximum = 1_000_000)]
    labour_yen: u64,
}

impl From<RateRow> for RepairRateBody {
    fn from(r: RateRow) -> Self {
        let (sku, category) = key_view(r.key);
        Self {
            defect: r.defect.as_str().to_owned(),
            sku,
            category,
            parts_yen: r.parts_yen,
            labour_yen: r.labour_yen,
        }
    }
}

async fn rates_now(ctx: &Ctx, merchant: &str) -> Result<Json<RepairRates>, ApiError> {
    let rows = repair::rates(ctx, merchant).await?;
    Ok(Json(RepairRates {
        rates: rows.into_iter().map(Into::into).collect(),
    }))
}

/// The merchant's parts-and-labour table, in the order it was put.
#[utoipa::path(get, path = "/api/v1/merchants/{merchant}/repair/rates", tag = "repair",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    responses(
        (status = 200, body = RepairRates),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody)))]
pub async fn get_rates(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
) -> Result<Json<RepairRates>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    rates_now(&ctx, merchant.as_str()).await
}

/// Replaces the merchant's parts-and-labour table as a whole; quotes made before keep their
/// price, and a repair waiting for a price is quoted at the next pass once its defects are
/// priced (how ops price one).
#[utoipa::path(put, path = "/api/v1/merchants/{merchant}/repair/rates", tag = "repair",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = RepairRates,
    responses(
        (status = 200, description = "Stored; the table now in force", body = RepairRates),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "A row is not valid; `field` names it", body = ErrorBody)))]
pub async fn put_rates(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    ApiJson(body): ApiJson<RepairRates>,
) -> Result<Json<RepairRates>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let mut rows = Vec::with_capacity(body.rates.len());
    for (i, r) in body.rates.into_iter().enumerate() {
        let field = format!("rates[{i}]");
        let defect = DefectCode::parse(&r.defect)
            .map_err(|e| ApiError::invalid_field(format!("{field}.defect"), e))?;
        rows.push(RateRow {
            defect,
            key: key_of(&field, r.sku, r.category)?,
            parts_yen: r.parts_yen,
            labour_yen: r.labour_yen,
        });
    }
    let n_rows = rows.len();
    repair::put_rates(&ctx, merchant.as_str(), rows).await?;
    tracing::info!(merchant = %merchant, key_id = %caller.key_id, n_rows, "repair rates put");
    rates_now(&ctx, merchant.as_str()).await
}

/// What the owner of an item asks to have repaired.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairRequest {
    /// A SKU of the merchant's catalogue that it repairs.
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    sku: String,
    /// The fault, from a fixed list.
    #[schema(pattern = "^(no_power|screen|battery|buttons_or_ports|water_damage|noise|other)$")]
    fault: String,
    /// The owner's own words for it: at most 1,000 characters (`repair::FAULT_TEXT_CHARS_MAX`).
    #[serde(default)]
    #[schema(max_length = 1000)]
    fault_text: String,
    /// The owner's postal code (`530-0001` or `5300001`), of a code in Japan Post's data: the
    /// return is routed from there.
    #[schema(pattern = "^[0-9]{3}-?[0-9]{4}$")]
    postal_code: String,
    /// `carrier_pickup`, `home_pickup`, `konbini_dropoff` or `store_dropoff`.
    #[schema(pattern = "^(carrier_pickup|home_pickup|konbini_dropoff|store_dropoff)$")]
    method: String,
    /// Where the owner is told of the return and the quote; without it, the merchant tells
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

/// A repair and where it stands.
#[derive(Serialize, ToSchema)]
pub struct RepairView {
    /// The return the item travels under (`GET /api/v1/returns/{rma}`: its label, its
    /// timeline).
    rma: String,
    sku: String,
    fault: String,
    fault_text: String,
    /// RFC 3339.
    requested_at: Option<String>,
    /// The defect codes its inspection found, once graded.
    #[serde(skip_serializing_if = "Option::is_none")]
    defects: Option<Vec<String>>,
    /// Defects found that no table prices: the repair waits for a price
    /// (`PUT /api/v1/merchants/{merchant}/repair/rates`).
    unpriced: Vec<String>,
    /// The quote once inspected.
    #[serde(skip_serializing_if = "Option::is_none")]
    quote: Option<RepairQuoteView>,
    /// `accepted` (repaired and charged) or `declined` (to be returned as it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<String>,
    /// `customer`, `merchant`, or `deadline` (the configured default).
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_by: Option<String>,
    /// Once accepted: the repair's charge, in yen.
    #[serde(skip_serializing_if = "Option::is_none")]
    charge_yen: Option<u64>,
    /// Once accepted at a site that does not refurbish: the site the unit is transferred to.
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_to: Option<String>,
}

/// A repair's quote: a line per defect found.
#[derive(Serialize, ToSchema)]
pub struct RepairQuoteView {
    lines: Vec<RepairQuoteLine>,
    total_yen: u64,
    /// RFC 3339: unanswered by then, `policy.repair.default_after_deadline` applies.
    answer_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RepairQuoteLine {
    defect: String,
    parts_yen: u64,
    labour_yen: u64,
}

impl From<Repair> for RepairView {
    fn from(r: Repair) -> Self {
        let names = |d: &[DefectCode]| d.iter().map(|d| d.as_str().to_owned()).collect();
        let (decision, decided_by) = r
            .decision
            .map(|(d, by, _)| (d.as_str().to_owned(), by))
            .unzip();
        Self {
            decision,
            decided_by,
            charge_yen: r.charge_yen,
            transfer_to: r.transfer_to,
            rma: r.request.rma,
            sku: r.request.sku,
            fault: r.request.fault.as_str().to_owned(),
            fault_text: r.request.fault_text,
            requested_at: rfc3339(r.request.requested_ms),
            defects: r.defects.as_deref().map(names),
            unpriced: names(&r.unpriced),
            quote: r.quote.map(|q| RepairQuoteView {
                lines: q
                    .lines
                    .into_iter()
                    .map(|l| RepairQuoteLine {
                        defect: l.defect.as_str().to_owned(),
                        parts_yen: l.parts_yen,
                        labour_yen: l.labour_yen,
                    })
                    .collect(),
                total_yen: q.total_yen,
                answer_by: rfc3339(q.deadline_ms),
            }),
        }
    }
}

/// The return a repair travels under.
#[derive(Serialize, ToSchema)]
pub struct RepairRequested {
    /// Its label and timeline: `GET /api/v1/returns/{rma}`.
    rma: String,
    /// The site it was routed to.
    site: String,
}

/// Asks for a repair of an item the merchant repairs: it becomes a return of one unit, of
/// kind repair, routed and labelled like any return; its quote follows its inspection.
#[utoipa::path(post, path = "/api/v1/merchants/{merchant}/repairs", tag = "repair",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = RepairRequest,
    responses(
        (status = 201, description = "Requested: the return is registered", body = RepairRequested),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant; the SKU is not in its catalogue or not repaired by it (`field`: `sku`); or the postal code is not in Japan Post's data (`postal_code`)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "A field is not valid; `field` names it", body = ErrorBody),
        (status = 503, description = "No site can take the return today", body = ErrorBody)))]
pub async fn create_repair(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    ApiJson(body): ApiJson<RepairRequest>,
) -> Result<(StatusCode, Json<RepairRequested>), ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let sku = Sku::new(body.sku).map_err(|e| ApiError::invalid_field("sku", e))?;
    let fault = Fault::parse(&body.fault).map_err(|e| ApiError::invalid_field("fault", e))?;
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
    let asked = repair::Asked {
        sku,
        fault,
        fault_text: body.fault_text,
        postal_code: body.postal_code,
        method: body.method,
        contact,
    };
    let requested = repair::request(&ctx, &merchant, asked, ctx.clock.now_ms()).await?;
    tracing::info!(merchant = %merchant, key_id = %caller.key_id, rma = %requested.rma,
                   "repair requested over the API");
    Ok((
        StatusCode::CREATED,
        Json(RepairRequested {
            rma: requested.rma.to_string(),
            site: requested.site,
        }),
    ))
}

/// A repair of the merchant's, and where it stands.
#[utoipa::path(get, path = "/api/v1/merchants/{merchant}/repairs/{rma}", tag = "repair",
    security(("bearer" = [])),
    params(
        ("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$"),
        ("rma" = String, Path, description = "The repair's return", pattern = "^[A-Z0-9._-]{1,64}$")),
    responses(
        (status = 200, body = RepairView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant, or no repair of it under that RMA", body = ErrorBody)))]
pub async fn get_repair(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath((merchant, rma)): ApiPath<(String, String)>,
) -> Result<Json<RepairView>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let found = repair::of_return(&ctx, &rma)
        .await?
        .filter(|r| r.request.merchant == merchant.as_str())
        .ok_or_else(|| ApiError::not_found(format!("no repair {rma} of {merchant}")))?;
    Ok(Json(found.into()))
}

/// The owner's answer to a repair's quote.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairAnswer {
    /// `accept` (repaired and charged as quoted) or `decline` (returned as it is).
    #[schema(pattern = "^(accept|decline)$")]
    answer: String,
}

/// Answers a repair's quote for its owner: once, before its deadline. Accepted at a site that
/// does not refurbish, the unit's transfer to the nearest site that does is ordered. The same
/// answer again changes nothing (200).
#[utoipa::path(post, path = "/api/v1/merchants/{merchant}/repairs/{rma}/answer", tag = "repair",
    security(("bearer" = [])),
    params(
        ("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$"),
        ("rma" = String, Path, description = "The repair's return", pattern = "^[A-Z0-9._-]{1,64}$")),
    request_body = RepairAnswer,
    responses(
        (status = 200, description = "Answered; where the repair now stands", body = RepairView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant, or no repair of it under that RMA", body = ErrorBody),
        (status = 409, description = "Nothing to answer: not quoted yet, answered otherwise before, or past its deadline (`field`: `answer`)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`answer` is not accept or decline", body = ErrorBody)))]
pub async fn answer(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath((merchant, rma)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RepairAnswer>,
) -> Result<Json<RepairView>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let decision = match body.answer.as_str() {
        "accept" => Decision::Accepted,
        "decline" => Decision::Declined,
        _ => return Err(ApiError::invalid_field("answer", "accept or decline")),
    };
    let not_found = || ApiError::not_found(format!("no repair {rma} of {merchant}"));
    repair::of_return(&ctx, &rma)
        .await?
        .filter(|r| r.request.merchant == merchant.as_str())
        .ok_or_else(not_found)?;
    let refused = |why: String| Err(ApiError::conflict(why).with_field("answer"));
    match repair_answer::answer(&ctx, &rma, decision, "merchant").await? {
        Answered::Recorded(_) | Answered::Already(_) => {}
        Answered::Conflict(d) => {
            return refused(format!("the quote on {rma} was {} already", d.as_str()))
        }
        Answered::NotOpen => {
            return refused(format!(
                "no quote on {rma} is open: not quoted yet, or past its deadline"
            ))
        }
        Answered::NotFound => return Err(not_found()),
    }
    tracing::info!(merchant = %merchant, key_id = %caller.key_id, rma = %rma,
                   answer = decision.as_str(), "repair quote answered over the API");
    let now = repair::of_return(&ctx, &rma)
        .await?
        .ok_or_else(|| ApiError::internal(&"repair vanished after its answer"))?;
    Ok(Json(now.into()))
}

/// Highest amount ops may set a repair's quote to, in yen.
pub const QUOTE_OVERRIDE_YEN_MAX: u64 = 10_000_000;

/// Ops' revised quote on a disputed repair, and why.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairOverride {
    /// In yen, 0 to 10,000,000 (`QUOTE_OVERRIDE_YEN_MAX`).
    #[schema(minimum = 0, maximum = 10_000_000)]
    quote_yen: i64,
    /// Why, for the record and the merchant: 1 to 500 characters
    /// (`OVERRIDE_REASON_CHARS_MAX`), not only spaces.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    reason: String,
}

/// Overrides a repair's quote while it is quoted and unanswered (ops only), once, with a
/// reason: the customer answers the revised quote by a fresh deadline, since a new price
/// needs their consent, and is told by mail; the merchant by its webhook. The same override
/// again changes nothing (200).
#[utoipa::path(post, path = "/api/v1/returns/{rma}/repair/override", tag = "repair",
    security(("bearer" = [])),
    params(("rma" = String, Path, description = "The repair's return", pattern = "^[A-Z0-9._-]{1,64}$")),
    request_body = RepairOverride,
    responses(
        (status = 200, description = "Overridden; where the repair now stands", body = RepairView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Not an ops key", body = ErrorBody),
        (status = 404, description = "No repair return of that RMA", body = ErrorBody),
        (status = 409, description = "Nothing to override: not quoted yet, answered already, or overridden otherwise before (`field`: `quote_yen`)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`quote_yen` or `reason` is not valid; `field` names it", body = ErrorBody)))]
pub async fn override_quote(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(rma): ApiPath<String>,
    ApiJson(body): ApiJson<RepairOverride>,
) -> Result<Json<RepairView>, ApiError> {
    caller.require_ops("overriding a repair quote")?;
    let (amount_yen, reason) = super::trade_in::override_terms(
        "quote_yen",
        body.quote_yen,
        QUOTE_OVERRIDE_YEN_MAX,
        &body.reason,
        "quote",
    )?;
    let overridden =
        repair_answer::override_quote(&ctx, &rma, amount_yen, reason, &caller.key_id).await?;
    let refused = |why: String| Err(ApiError::conflict(why).with_field("quote_yen"));
    match overridden {
        Overridden::Recorded { .. } | Overridden::Already => {}
        Overridden::OverriddenBefore => {
            return refused(format!(
                "the quote on {rma} was overridden otherwise before"
            ))
        }
        Overridden::Decided(d) => {
            return refused(format!("the quote on {rma} was {} already", d.as_str()))
        }
        Overridden::NotQuoted => {
            return refused(format!(
                "{rma} is not quoted yet: there is no quote to override"
            ))
        }
        Overridden::NotFound => {
            return Err(ApiError::not_found(format!("{rma} is not a repair return")))
        }
    }
    let now = repair::of_return(&ctx, &rma)
        .await?
        .ok_or_else(|| ApiError::internal(&"repair vanished after its override"))?;
    Ok(Json(now.into()))
}
