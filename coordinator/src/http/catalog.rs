//! Merchants' catalogues: stored here and sent to every site, so stations resolve product
//! scans offline. Ops keys, or the merchant's own.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use modori_shared::domain::{MerchantId, Sku};
use modori_shared::CatalogItem;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::store;
use crate::Ctx;

/// Items one catalogue request may carry (and one answer may list) at most.
pub const CATALOG_ITEMS_PER_REQUEST_MAX: usize = 20_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogRequest {
    /// The path's merchant, when given (so what `GET` answered can be sent back as it is).
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    merchant: Option<String>,
    /// 1 to 20,000 items (`CATALOG_ITEMS_PER_REQUEST_MAX`).
    #[schema(min_items = 1, max_items = 20_000)]
    items: Vec<CatalogEntry>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    sku: String,
    /// JAN / EAN-13, EAN-8, UPC-A or GTIN-14 digits, check digit included (GTIN-14 when read).
    #[serde(default)]
    gtin: Option<String>,
    /// A category code: 1 to 64 of `a-z 0-9 _ -` (pages show it by its name).
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    category: String,
    price_yen: u64,
    #[serde(default)]
    final_sale: bool,
    #[serde(default)]
    needs_testing: bool,
    /// The variant group (same product in other sizes and colours); an exchange of a styled
    /// SKU is for another SKU of its style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    style: Option<String>,
}

/// A style id has the shape of a SKU: 1 to 64 of `A-Z 0-9 . _ -`.
fn valid_style(s: &str) -> bool {
    (1..=STYLE_LEN_MAX).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// A category is a code, as the document's pattern says: what it accepts and this refuses
/// are the same strings.
fn valid_category(s: &str) -> bool {
    (1..=CATEGORY_LEN_MAX).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
}

/// Longest category code, in bytes (what a site's catalogue carries).
pub const CATEGORY_LEN_MAX: usize = modori_shared::wire::payload::OPERATOR_LEN_MAX;

/// Longest style id, in bytes (as long as a SKU).
pub const STYLE_LEN_MAX: usize = 64;

#[derive(Serialize, ToSchema)]
pub struct CatalogStored {
    merchant: String,
    n_items: usize,
    /// Sites the catalogue was sent to.
    n_sites: usize,
}

#[derive(Serialize, ToSchema)]
pub struct CatalogView {
    merchant: String,
    items: Vec<CatalogEntry>,
}

/// A catalogue entry checked, with its style; the error names the field (`items[3].gtin`).
fn catalog_item(i: usize, e: CatalogEntry) -> Result<(CatalogItem, Option<String>), ApiError> {
    let field = |f: &str| format!("items[{i}].{f}");
    if let Some(style) = &e.style {
        if !valid_style(style) {
            return Err(ApiError::invalid_field(
                field("style"),
                format!("{style:?} is not a style: 1..={STYLE_LEN_MAX} of A-Z 0-9 . _ -"),
            ));
        }
    }
    let sku = Sku::new(e.sku).map_err(|err| ApiError::invalid_field(field("sku"), err))?;
    let gtin14 = match e.gtin {
        None => None,
        Some(g) => match modori_shared::barcode::parse(&g) {
            Ok(modori_shared::barcode::Scan::Product(gtin)) => Some(gtin.gtin14().to_owned()),
            Ok(other) => {
                return Err(ApiError::invalid_field(
                    field("gtin"),
                    format!("{g:?} is a {}, not a product code", other.format()),
                ))
            }
            Err(err) => return Err(ApiError::invalid_field(field("gtin"), err)),
        },
    };
    if !valid_category(&e.category) {
        return Err(ApiError::invalid_field(
            field("category"),
            format!("must be a code of 1..={CATEGORY_LEN_MAX} of a-z 0-9 _ -"),
        ));
    }
    Ok((
        CatalogItem {
            sku,
            gtin14,
            category: e.category,
            price_yen: e.price_yen,
            final_sale: e.final_sale,
            needs_testing: e.needs_testing,
        },
        e.style,
    ))
}

fn merchant_param(merchant: String) -> Result<MerchantId, ApiError> {
    MerchantId::new(merchant).map_err(|e| ApiError::invalid_path("merchant", e))
}

/// Replaces catalogue entries of a merchant (by SKU) and sends them to every site.
#[utoipa::path(put, path = "/api/v1/catalog/{merchant}", tag = "catalog", security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = CatalogRequest,
    responses(
        (status = 200, body = CatalogStored),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn put_catalog(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    ApiJson(req): ApiJson<CatalogRequest>,
) -> Result<Json<CatalogStored>, ApiError> {
    let merchant = merchant_param(merchant)?;
    caller.require_merchant(&merchant)?;
    if !ctx.knows_merchant(merchant.as_str()) {
        return Err(ApiError::not_found(format!(
            "no merchant {merchant} (merchants are configured in [[merchants]])"
        )));
    }
    if req
        .merchant
        .as_ref()
        .is_some_and(|m| m != merchant.as_str())
    {
        return Err(ApiError::invalid_field(
            "merchant",
            format!("the body names another merchant than the path's {merchant}"),
        ));
    }
    if req.items.is_empty() || req.items.len() > CATALOG_ITEMS_PER_REQUEST_MAX {
        return Err(ApiError::invalid_field(
            "items",
            format!("must hold 1..={CATALOG_ITEMS_PER_REQUEST_MAX} items"),
        ));
    }
    let (items, styles): (Vec<_>, Vec<_>) = req
        .items
        .into_iter()
        .enumerate()
        .map(|(i, e)| catalog_item(i, e))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    let n_items = items.len();
    let sites: Vec<_> = ctx.fleet.sites.iter().map(|s| s.id.clone()).collect();
    let m = merchant.clone();
    let now_ms = ctx.clock.now_ms();
    let queued = ctx
        .db
        .call(move |c| store::put_styled_catalog(c, m.as_str(), &items, &styles, &sites, now_ms))
        .await?;
    let n_sites = queued.len();
    ctx.wake(queued);
    tracing::info!(merchant = %merchant, n_items, key_id = %caller.key_id, "catalogue stored");
    Ok(Json(CatalogStored {
        merchant: merchant.to_string(),
        n_items,
        n_sites,
    }))
}

/// A merchant's catalogue, by SKU.
#[utoipa::path(get, path = "/api/v1/catalog/{merchant}", tag = "catalog", security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    responses(
        (status = 200, body = CatalogView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody)))]
pub async fn get_catalog(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
) -> Result<Json<CatalogView>, ApiError> {
    let merchant = merchant_param(merchant)?;
    caller.require_merchant(&merchant)?;
    if !ctx.knows_merchant(merchant.as_str()) {
        return Err(ApiError::not_found(format!(
            "no merchant {merchant} (merchants are configured in [[merchants]])"
        )));
    }
    let m = merchant.clone();
    let (items, mut styles) = ctx
        .db
        .call(move |c| {
            Ok::<_, store::StoreError>((
                store::catalog(c, m.as_str(), CATALOG_ITEMS_PER_REQUEST_MAX)?,
                store::styles::styles(c, m.as_str())?,
            ))
        })
        .await?;
    Ok(Json(CatalogView {
        merchant: merchant.to_string(),
        items: items
            .into_iter()
            .map(|i| CatalogEntry {
                sku: i.sku.to_string(),
                gtin: i.gtin14,
                category: i.category,
                price_yen: i.price_yen,
                final_sale: i.final_sale,
                needs_testing: i.needs_testing,
                style: styles.remove(i.sku.as_str()),
            })
            .collect(),
    }))
}
