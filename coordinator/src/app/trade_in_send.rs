//! Sending an item against its trade-in quote: the quote, unexpired and of the merchant,
//! becomes a return of one unit, routed and labelled like any return and expected at its site
//! through the command stream (the site receives and grades it as a return). The quote is
//! linked to the RMA before the return is registered, so a send repeated (or retried after a
//! failure) answers the same RMA and never registers a second return.

use std::sync::Arc;

use modori_shared::domain::{MerchantId, ReasonCode, ReturnLine, RmaId, Sku};
use tracing::info;

use super::route::{register, RoutedReturn};
use super::AppError;
use crate::policy::ResolutionKind;
use crate::store::orders::{Contact, Order};
use crate::store::trade_in_returns::{self, Payout};
use crate::store::{self, trade_in::Quote};
use crate::{CoordinatorError, Ctx};

/// What the customer says of how the parcel leaves them.
pub struct Sending {
    /// The customer's postal code, routed from.
    pub postal_code: String,
    /// One of `store::commerce::METHODS`.
    pub method: String,
    pub payout: Payout,
    /// How the customer is told of the offer (checked by the caller); none: the merchant
    /// tells them.
    pub contact: Option<Contact>,
}

/// A trade-in sent: its return, routed.
pub struct Sent {
    pub quote: Quote,
    pub rma: RmaId,
    pub site: String,
    /// False when the quote had been sent before: this is that return.
    pub fresh: bool,
}

/// Turns `merchant`'s quote `quote_id` into a trade-in return at `now_ms` (a quote expired
/// then is refused), or answers the return it was turned into before.
pub async fn send(
    ctx: &Arc<Ctx>,
    merchant: &MerchantId,
    quote_id: &str,
    sending: Sending,
    now_ms: i64,
) -> Result<Sent, AppError> {
    let quote = super::trade_in::get_quote(ctx, merchant.as_str(), quote_id).await?;
    let q = quote.quote_id.clone();
    let before = ctx
        .db
        .call(move |c| trade_in_returns::of_quote(c, &q))
        .await
        .map_err(CoordinatorError::from)?;
    // Refused for the quote's state, not the request's shape: a conflict (409), as a return
    // already stored is.
    if before.is_none() && now_ms > quote.expires_ms {
        return Err(AppError::Exists {
            field: "quote_id".into(),
            message: format!(
                "quote {quote_id} expired (quotes are honoured {} days): ask for a new one",
                super::trade_in::QUOTE_VALID_DAYS
            ),
        });
    }
    let (origin, prefecture) =
        crate::postal::origin(&sending.postal_code).map_err(|e| match e {
            crate::postal::PostalError::Unknown(_) => AppError::unknown_field("postal_code", e),
            crate::postal::PostalError::Shape(_) => AppError::invalid_field("postal_code", e),
        })?;
    if !store::commerce::METHODS.contains(&sending.method.as_str()) {
        return Err(AppError::invalid_field(
            "method",
            format!("one of {}", store::commerce::METHODS.join(", ")),
        ));
    }
    let sku = Sku::new(quote.sku.clone()).map_err(|e| AppError::Internal(e.to_string()))?;
    let fresh_rma = crate::ids::new_rma_id(now_ms);
    let contact = sending.contact.map(|contact| Order {
        merchant: merchant.to_string(),
        order_ref: quote.quote_id.clone(),
        customer_ref: None,
        ordered_ms: now_ms,
        lines: Vec::new(),
        contact: Some(contact),
    });
    let (q, payout) = (quote.quote_id.clone(), sending.payout);
    let (rma, registered) = ctx
        .db
        .call(move |c| trade_in_returns::link(c, &q, &fresh_rma, payout, contact.as_ref(), now_ms))
        .await
        .map_err(CoordinatorError::from)?;
    let rma = RmaId::new(rma).map_err(|e| AppError::Internal(e.to_string()))?;
    if registered {
        let site = site_of(ctx, &rma).await?;
        return Ok(Sent {
            quote,
            rma,
            site,
            fresh: false,
        });
    }
    // A trade-in is paid as store credit with the merchant's bonus, or by transfer: the
    // return's terms say which, as a return's resolution does.
    let (resolution, credit_bonus_percent) = match sending.payout {
        Payout::StoreCredit => (
            ResolutionKind::StoreCredit,
            ctx.config.policy.terms.store_credit_bonus_percent,
        ),
        Payout::BankTransfer => (ResolutionKind::Refund, 0),
    };
    let carrier = crate::carrier::carriers()
        .first()
        .map(|c| c.id().to_owned());
    let tracking = Some(crate::carrier::simulated_tracking(
        super::register::tracking_seed(&rma),
    ));
    let terms = store::commerce::Terms {
        order_ref: Some(quote.quote_id.clone()),
        order_date_ms: Some(quote.created_ms),
        method: sending.method.clone(),
        resolution,
        credit_bonus_percent,
        value_yen: quote.quote_yen,
        carrier,
        tracking,
        ..store::commerce::Terms::default()
    };
    let new_return = store::NewReturn {
        rma: rma.clone(),
        merchant: Some(merchant.clone()),
        origin,
        origin_label: format!("{} {prefecture}", sending.postal_code),
        origin_store: None,
        lines: vec![ReturnLine {
            sku,
            qty: 1,
            reason: ReasonCode::Other,
        }],
        customer: None,
        terms: Some(terms),
        order_ref: Some(quote.quote_id.clone()),
        resolution: None,
    };
    let routed: RoutedReturn = match register(ctx, new_return).await {
        Ok(routed) => routed,
        // Another send of the same quote registered it meanwhile.
        Err(CoordinatorError::Store(e)) if e.is_unique_violation() => {
            let site = site_of(ctx, &rma).await?;
            return Ok(Sent {
                quote,
                rma,
                site,
                fresh: false,
            });
        }
        Err(CoordinatorError::NoSiteFor(why)) => return Err(AppError::NoSite(why)),
        Err(e) => return Err(e.into()),
    };
    info!(merchant = %merchant, quote_id = %quote.quote_id, rma = %routed.rma,
          site = %routed.site, payout = sending.payout.as_str(), "trade-in sent");
    Ok(Sent {
        quote,
        rma: routed.rma,
        site: routed.site.to_string(),
        fresh: true,
    })
}

async fn site_of(ctx: &Ctx, rma: &RmaId) -> Result<String, AppError> {
    let r = rma.clone();
    let ret = ctx
        .db
        .call(move |c| store::lifecycle::get(c, &r))
        .await
        .map_err(CoordinatorError::from)?
        .ok_or_else(|| AppError::Internal(format!("trade-in return {rma} is not stored")))?;
    Ok(ret.site.to_string())
}
