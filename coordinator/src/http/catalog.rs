//! Merchants' catalogues: stored here and sent to every site, so stations resolve product
//! scans offline. Ops keys, or the merchant's own.

use std::collections::BTreeMap;
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
use crate::store::category_names::Names;
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
    /// The category's name on the Japanese pages (1 to 64 characters, no control character);
    /// pages without a name show the code. Every item of one category that names it gives
    /// the same name; one not given keeps the name stored before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    category_name_ja: Option<String>,
    /// The category's name on the English pages, as `category_name_ja`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    category_name_en: Option<String>,
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

/// Longest category name, in characters.
pub const CATEGORY_NAME_CHARS_MAX: usize = 64;

/// A category's name a page can show, as the document's pattern says: some text, not too
/// long, no control character.
fn check_category_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > CATEGORY_NAME_CHARS_MAX {
        return Err(format!(
            "must be at most {CATEGORY_NAME_CHARS_MAX} characters"
        ));
    }
    match name.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("must not hold the control character {c:?}")),
        None => Ok(()),
    }
}

/// The category names the request's items give, checked: each a name a page can show, and
/// every item of one category naming it alike. The error names the field (`items[3].category_name_ja`).
fn category_names(items: &[CatalogEntry]) -> Result<BTreeMap<String, Names>, ApiError> {
    let mut out: BTreeMap<String, Names> = BTreeMap::new();
    for (i, e) in items.iter().enumerate() {
        for (lang, given) in [("ja", &e.category_name_ja), ("en", &e.category_name_en)] {
            let Some(name) = given else { continue };
            let field = format!("items[{i}].category_name_{lang}");
            check_category_name(name).map_err(|why| ApiError::invalid_field(field.clone(), why))?;
            let names = out.entry(e.category.clone()).or_default();
            let kept = match lang {
                "ja" => &mut names.ja,
                _ => &mut names.en,
            };
            if let Some(before) = kept.as_deref().filter(|b| *b != name.as_str()) {
                return Err(ApiError::invalid_field(
                    field,
                    format!(
                        "category {} is named {before:?} by an earlier item, not {name:?}",
                        e.category
                    ),
                ));
            }
            *kept = Some(name.clone());
        }
    }
    Ok(out)
}

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
    let names = category_names(&req.items)?;
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
        .call(move |c| {
            let queued = store::put_styled_catalog(c, m.as_str(), &items, &styles, &sites, now_ms)?;
            store::category_names::put(c, m.as_str(), &names)?;
            Ok::<_, store::StoreError>(queued)
        })
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
    let (items, mut styles, names) = ctx
        .db
        .call(move |c| {
            Ok::<_, store::StoreError>((
                store::catalog(c, m.as_str(), CATALOG_ITEMS_PER_REQUEST_MAX)?,
                store::styles::styles(c, m.as_str())?,
                store::category_names::of_merchant(c, m.as_str())?,
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
                category_name_ja: names.get(&i.category).and_then(|n| n.ja.clone()),
                category_name_en: names.get(&i.category).and_then(|n| n.en.clone()),
                category: i.category,
                price_yen: i.price_yen,
                final_sale: i.final_sale,
                needs_testing: i.needs_testing,
                style: styles.remove(i.sku.as_str()),
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(category: &str, ja: Option<&str>, en: Option<&str>) -> CatalogEntry {
        CatalogEntry {
            sku: "TEE-WHT-M".into(),
            gtin: None,
            category: category.into(),
            category_name_ja: ja.map(str::to_owned),
            category_name_en: en.map(str::to_owned),
            price_yen: 1900,
            final_sale: false,
            needs_testing: false,
            style: None,
        }
    }

    #[test]
    fn category_names_are_checked_and_one_category_is_named_alike() {
        let items = [
            entry("tee", Some("Tシャツ"), None),
            entry("tee", Some("Tシャツ"), Some("T-shirts")),
            entry("cap", None, None),
        ];
        let names = category_names(&items).unwrap();
        assert_eq!(
            names.get("tee"),
            Some(&Names {
                ja: Some("Tシャツ".into()),
                en: Some("T-shirts".into())
            })
        );
        assert!(!names.contains_key("cap"));
        let refused = |items: &[CatalogEntry]| {
            let e = category_names(items).unwrap_err();
            serde_json::to_string(&e.body()).unwrap()
        };
        let twice = refused(&[
            entry("tee", Some("Tシャツ"), None),
            entry("tee", Some("シャツ"), None),
        ]);
        assert!(twice.contains("items[1].category_name_ja"), "{twice}");
        let long = "長".repeat(CATEGORY_NAME_CHARS_MAX + 1);
        let too_long = refused(&[entry("tee", None, Some(&long))]);
        assert!(too_long.contains("items[0].category_name_en"), "{too_long}");
        let control = refused(&[entry("tee", Some("T\nシャツ"), None)]);
        assert!(control.contains("control character"), "{control}");
        assert!(refused(&[entry("tee", Some(""), None)]).contains("empty"));
    }
}
