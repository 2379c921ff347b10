//! Trade-in quotes: a merchant's price table checked and stored, and a quote for one of its
//! products in the condition the customer describes, priced at the grade that condition would
//! get and kept for `QUOTE_VALID_DAYS`.

use modori_shared::tradein::{self, Condition, PriceError, PriceRow};

use super::AppError;
use crate::store::{self, trade_in};
use crate::Ctx;

/// How long a quote is honoured: long enough to pack and send the item.
pub const QUOTE_VALID_DAYS: i64 = 14;

const DAY_MS: i64 = 86_400_000;

/// Replaces `merchant`'s price table after checking it whole; a refused table leaves the
/// stored one as it was.
/// A later row for the same SKU or category and grade replaces an earlier one.
pub async fn put_prices(ctx: &Ctx, merchant: &str, rows: Vec<PriceRow>) -> Result<(), AppError> {
    if let Err((row, e)) = tradein::check_table(&rows) {
        let field = match (row, &e) {
            (Some(i), PriceError::TooHigh(_)) => format!("prices[{i}].price_yen"),
            (Some(i), PriceError::BadCategory) => format!("prices[{i}].category"),
            (_, PriceError::TooManyRows) | (None, _) => "prices".to_owned(),
        };
        return Err(AppError::invalid_field(field, e));
    }
    let rows = tradein::deduplicated(rows);
    let m = merchant.to_owned();
    ctx.db
        .call(move |c| trade_in::put_prices(c, &m, &rows))
        .await
        .map_err(crate::CoordinatorError::from)?;
    Ok(())
}

pub async fn prices(ctx: &Ctx, merchant: &str) -> Result<Vec<PriceRow>, AppError> {
    let m = merchant.to_owned();
    Ok(ctx
        .db
        .call(move |c| trade_in::prices(c, &m))
        .await
        .map_err(crate::CoordinatorError::from)?)
}

/// Quotes `sku` of `merchant`'s catalogue in `condition`, and keeps the quote.
pub async fn quote(
    ctx: &Ctx,
    merchant: &str,
    sku: &str,
    condition: Condition,
) -> Result<trade_in::Quote, AppError> {
    let now_ms = ctx.clock.now_ms();
    let quote_id = crate::ids::new_quote_id(now_ms);
    let (m, s) = (merchant.to_owned(), sku.to_owned());
    let grade = condition.expected_grade();
    let found = ctx
        .db
        .call(move |c| -> Result<_, store::StoreError> {
            let Some((_, _, _, category)) = store::catalog::product(c, Some(&m), &s)? else {
                return Ok(Err(AppError::Unknown {
                    field: "sku".into(),
                    message: format!("{s} is not in {m}'s catalogue"),
                }));
            };
            let rows = trade_in::prices(c, &m)?;
            if !tradein::takes(&rows, &s, &category) {
                return Ok(Err(AppError::Unknown {
                    field: "sku".into(),
                    message: format!("{m} does not take {s} as a trade-in"),
                }));
            }
            let Some(quote_yen) = tradein::price(&rows, &s, &category, grade) else {
                return Ok(Err(AppError::Unknown {
                    field: "condition".into(),
                    message: format!(
                        "{m} does not buy {s} in this condition (it would be graded {grade})"
                    ),
                }));
            };
            let q = trade_in::Quote {
                quote_id,
                merchant: m,
                sku: s,
                condition,
                grade,
                quote_yen,
                created_ms: now_ms,
                expires_ms: now_ms + QUOTE_VALID_DAYS * DAY_MS,
            };
            trade_in::insert_quote(c, &q)?;
            Ok(Ok(q))
        })
        .await
        .map_err(crate::CoordinatorError::from)?;
    found
}

/// A quote given before, of `merchant`.
pub async fn get_quote(
    ctx: &Ctx,
    merchant: &str,
    quote_id: &str,
) -> Result<trade_in::Quote, AppError> {
    let (m, q) = (merchant.to_owned(), quote_id.to_owned());
    ctx.db
        .call(move |c| trade_in::quote(c, &m, &q))
        .await
        .map_err(crate::CoordinatorError::from)?
        .ok_or_else(|| AppError::NotFound(format!("no trade-in quote {quote_id} of {merchant}")))
}

/// The trade-in sent against quote `quote_id`, if it was.
pub async fn sent(
    ctx: &Ctx,
    quote_id: &str,
) -> Result<Option<store::trade_in_returns::TradeIn>, AppError> {
    let q = quote_id.to_owned();
    Ok(ctx
        .db
        .call(move |c| store::trade_in_returns::of_quote(c, &q))
        .await
        .map_err(crate::CoordinatorError::from)?)
}

/// Most products a portal page offers for a trade-in (a select a customer can still read).
pub const OFFERED_MAX: usize = 500;
/// Most catalogue items read to find them: above any merchant's range of products.
const CATALOG_SCANNED_MAX: usize = 1_000_000;

/// A product a merchant takes as a trade-in: its SKU, its category, and what the merchant
/// calls the category.
#[derive(Clone, Debug)]
pub struct Offered {
    pub sku: String,
    pub category: String,
    pub names: store::category_names::Names,
}

/// The products of `merchant`'s catalogue it takes as trade-ins, by SKU.
pub async fn offered(ctx: &Ctx, merchant: &str) -> Result<Vec<Offered>, AppError> {
    let m = merchant.to_owned();
    Ok(ctx
        .db
        .call(move |c| -> Result<_, store::StoreError> {
            let rows = trade_in::prices(c, &m)?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let items = store::catalog::catalog(c, &m, CATALOG_SCANNED_MAX)?;
            let names = store::category_names::of_merchant(c, &m)?;
            Ok(items
                .into_iter()
                .filter(|i| tradein::takes(&rows, i.sku.as_str(), &i.category))
                .take(OFFERED_MAX)
                .map(|i| Offered {
                    sku: i.sku.to_string(),
                    names: names.get(&i.category).cloned().unwrap_or_default(),
                    category: i.category,
                })
                .collect())
        })
        .await
        .map_err(crate::CoordinatorError::from)?)
}
