//! Repairs: the products a merchant repairs and its parts-and-labour table, and a repair
//! request turned into a return of one unit, routed and labelled like any return and
//! expected at its site through the command stream (the site receives and grades it as a
//! return, with defect codes). Its quote follows grading, in the refunds' pass
//! (`store::repairs::quote_graded`).
//!
//! The repair is written before its return is registered, so the return is a repair from
//! its first op; when no site can take it, the repair is forgotten again.

use std::sync::Arc;

use modori_shared::domain::{MerchantId, ReasonCode, ReturnLine, RmaId, Sku};
use modori_shared::repair::{self, Fault, RateRow};
use modori_shared::tradein::PriceKey;
use tracing::info;

use super::route::register;
use super::AppError;
use crate::store::orders::{Contact, Order};
use crate::store::repairs::{self, Repair, Request};
use crate::{store, CoordinatorError, Ctx};

pub async fn put_products(ctx: &Ctx, merchant: &str, keys: Vec<PriceKey>) -> Result<(), AppError> {
    repair::check_products(&keys).map_err(|(i, e)| match i {
        Some(i) => AppError::invalid_field(format!("products[{i}].category"), e),
        None => AppError::invalid_field("products", e),
    })?;
    let m = merchant.to_owned();
    ctx.db
        .call(move |c| repairs::put_products(c, &m, &keys))
        .await
        .map_err(CoordinatorError::from)?;
    Ok(())
}

pub async fn products(ctx: &Ctx, merchant: &str) -> Result<Vec<PriceKey>, AppError> {
    let m = merchant.to_owned();
    Ok(ctx
        .db
        .call(move |c| repairs::products(c, &m))
        .await
        .map_err(CoordinatorError::from)?)
}

/// Replaces `merchant`'s parts-and-labour table; a later row for the same defect and key
/// replaces an earlier one.
pub async fn put_rates(ctx: &Ctx, merchant: &str, rows: Vec<RateRow>) -> Result<(), AppError> {
    repair::check_rates(&rows).map_err(|(i, e)| {
        let field = match (i, &e) {
            (None, _) => "rates".to_owned(),
            (Some(i), repair::RateError::BadCategory) => format!("rates[{i}].category"),
            (Some(i), _) => format!("rates[{i}]"),
        };
        AppError::invalid_field(field, e)
    })?;
    let rows = repair::deduplicated(rows);
    let m = merchant.to_owned();
    ctx.db
        .call(move |c| repairs::put_rates(c, &m, &rows))
        .await
        .map_err(CoordinatorError::from)?;
    Ok(())
}

pub async fn rates(ctx: &Ctx, merchant: &str) -> Result<Vec<RateRow>, AppError> {
    let m = merchant.to_owned();
    Ok(ctx
        .db
        .call(move |c| repairs::rates(c, &m))
        .await
        .map_err(CoordinatorError::from)?)
}

/// Most products a portal page offers for repair (a select a customer can still read).
pub const OFFERED_MAX: usize = 500;
/// Most catalogue items read to find them: above any merchant's range of products.
const CATALOG_SCANNED_MAX: usize = 1_000_000;

/// The SKUs of `merchant`'s catalogue it repairs, with what it calls their category.
pub async fn offered(ctx: &Ctx, merchant: &str) -> Result<Vec<super::trade_in::Offered>, AppError> {
    let m = merchant.to_owned();
    Ok(ctx
        .db
        .call(move |c| -> Result<_, store::StoreError> {
            let keys = repairs::products(c, &m)?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let items = store::catalog::catalog(c, &m, CATALOG_SCANNED_MAX)?;
            let names = store::category_names::of_merchant(c, &m)?;
            Ok(items
                .into_iter()
                .filter(|i| repair::repairs(&keys, i.sku.as_str(), &i.category))
                .take(OFFERED_MAX)
                .map(|i| super::trade_in::Offered {
                    sku: i.sku.to_string(),
                    names: names.get(&i.category).cloned().unwrap_or_default(),
                    category: i.category,
                })
                .collect())
        })
        .await
        .map_err(CoordinatorError::from)?)
}

/// What the owner asks: the item, its fault, and how it leaves them.
pub struct Asked {
    pub sku: Sku,
    pub fault: Fault,
    /// Their own words (checked by the caller: at most `repair::FAULT_TEXT_CHARS_MAX`).
    pub fault_text: String,
    pub postal_code: String,
    /// One of `store::commerce::METHODS`.
    pub method: String,
    /// How the owner is told of the quote; none: the merchant tells them.
    pub contact: Option<Contact>,
}

/// A repair requested: its return, routed.
pub struct Requested {
    pub rma: RmaId,
    pub site: String,
}

/// Turns the owner's request into a repair return of `merchant` at `now_ms`.
pub async fn request(
    ctx: &Arc<Ctx>,
    merchant: &MerchantId,
    asked: Asked,
    now_ms: i64,
) -> Result<Requested, AppError> {
    if asked.fault_text.chars().count() > repair::FAULT_TEXT_CHARS_MAX {
        return Err(AppError::invalid_field(
            "fault_text",
            format!("longer than {} characters", repair::FAULT_TEXT_CHARS_MAX),
        ));
    }
    let (origin, prefecture) = crate::postal::origin(&asked.postal_code).map_err(|e| match e {
        crate::postal::PostalError::Unknown(_) => AppError::unknown_field("postal_code", e),
        crate::postal::PostalError::Shape(_) => AppError::invalid_field("postal_code", e),
    })?;
    if !store::commerce::METHODS.contains(&asked.method.as_str()) {
        return Err(AppError::invalid_field(
            "method",
            format!("one of {}", store::commerce::METHODS.join(", ")),
        ));
    }
    let (m, s) = (merchant.to_string(), asked.sku.to_string());
    let known = ctx
        .db
        .call(move |c| -> Result<_, store::StoreError> {
            let Some((_, _, _, category)) = store::catalog::product(c, Some(&m), &s)? else {
                return Ok(Err(format!("{s} is not in {m}'s catalogue")));
            };
            let keys = repairs::products(c, &m)?;
            if !repair::repairs(&keys, &s, &category) {
                return Ok(Err(format!("{m} does not repair {s}")));
            }
            Ok(Ok(()))
        })
        .await
        .map_err(CoordinatorError::from)?;
    known.map_err(|why| AppError::unknown_field("sku", why))?;

    let rma = RmaId::new(crate::ids::new_rma_id(now_ms))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let req = Request {
        rma: rma.to_string(),
        merchant: merchant.to_string(),
        sku: asked.sku.to_string(),
        fault: asked.fault,
        fault_text: asked.fault_text.trim().to_owned(),
        requested_ms: now_ms,
    };
    let contact = asked.contact.map(|contact| Order {
        merchant: merchant.to_string(),
        order_ref: rma.to_string(),
        customer_ref: None,
        ordered_ms: now_ms,
        lines: Vec::new(),
        contact: Some(contact),
    });
    ctx.db
        .call(move |c| repairs::insert_request(c, &req, contact.as_ref()))
        .await
        .map_err(CoordinatorError::from)?;
    let carrier = crate::carrier::carriers()
        .first()
        .map(|c| c.id().to_owned());
    let tracking = Some(crate::carrier::simulated_tracking(
        super::register::tracking_seed(&rma),
    ));
    // Nothing is refunded for a repair (the refunds' pass leaves repairs out): the terms
    // carry how the parcel travels.
    let terms = store::commerce::Terms {
        order_ref: Some(rma.to_string()),
        order_date_ms: Some(now_ms),
        method: asked.method.clone(),
        carrier,
        tracking,
        ..store::commerce::Terms::default()
    };
    let new_return = store::NewReturn {
        rma: rma.clone(),
        merchant: Some(merchant.clone()),
        origin,
        origin_label: format!("{} {prefecture}", asked.postal_code),
        origin_store: None,
        lines: vec![ReturnLine {
            sku: asked.sku.clone(),
            qty: 1,
            reason: ReasonCode::Defective,
        }],
        customer: None,
        terms: Some(terms),
        order_ref: Some(rma.to_string()),
        resolution: None,
    };
    let routed = match register(ctx, new_return).await {
        Ok(routed) => routed,
        Err(e) => {
            let r = rma.to_string();
            ctx.db
                .call(move |c| repairs::forget_unregistered(c, &r))
                .await
                .map_err(CoordinatorError::from)?;
            return Err(match e {
                CoordinatorError::NoSiteFor(why) => AppError::NoSite(why),
                e => e.into(),
            });
        }
    };
    info!(merchant = %merchant, rma = %routed.rma, site = %routed.site, sku = %asked.sku,
          fault = asked.fault.as_str(), "repair requested");
    Ok(Requested {
        rma: routed.rma,
        site: routed.site.to_string(),
    })
}

/// The repair return `rma` is, if it is one.
pub async fn of_return(ctx: &Ctx, rma: &str) -> Result<Option<Repair>, AppError> {
    let r = rma.to_owned();
    Ok(ctx
        .db
        .call(move |c| repairs::of_return(c, &r))
        .await
        .map_err(CoordinatorError::from)?)
}
