//! Registering a return at a store's counter: lines of one of the merchant's orders, not
//! returned yet, with the customer's choice; the same policy, terms and route as a return sent
//! by the API (`register.rs`), from the store's coordinates.

use std::collections::BTreeMap;
use std::sync::Arc;

use modori_shared::domain::{MerchantId, ReturnLine, RmaId, Store};
use tracing::info;

use super::register::{check_exchange, terms};
use super::route::{register, RoutedReturn};
use super::AppError;
use crate::ids::new_rma_id;
use crate::policy::{self, PolicyDecision, PolicyLine, Resolution};
use crate::store::dashboard as queries;
use crate::store::details::Detail;
use crate::store::orders::{self, Order};
use crate::store::{self, StoreError};
use crate::{CoordinatorError, Ctx};

/// A return asked for at a store's counter, of lines of one of the merchant's orders.
pub struct CounterReturn {
    pub store: Store,
    pub merchant: MerchantId,
    pub order_ref: String,
    pub lines: Vec<ReturnLine>,
    pub resolution: Resolution,
    /// What the clerk saw of the goods, compared later with the site's grading as the API's
    /// store returns are (`store::counter_checks`); none when the clerk did not check.
    pub condition: Option<store::counter_checks::StoreCondition>,
    /// Only ask the policy (fees, bonus, refusals); store nothing.
    pub dry_run: bool,
}

/// What a counter return did: the policy's terms, and the route unless it was a dry run.
pub struct CounterRegistered {
    pub decision: PolicyDecision,
    pub routed: Option<RoutedReturn>,
}

/// What the order and the catalogue say of a counter return, read in one go.
struct Facts {
    order: Order,
    returned: BTreeMap<String, u64>,
    catalog: Vec<Option<(u64, bool, String)>>,
    /// The catalogue's entry of the SKU wanted in exchange.
    wanted: Option<(u64, bool, String)>,
    /// Why the SKU wanted is not of the returned SKUs' style, when it is not.
    style_refusal: Option<String>,
    history: policy::History,
}

fn counter_resolution_detail(r: &Resolution, p: &PolicyDecision) -> Detail {
    match r {
        Resolution::Exchange { sku } => Detail::chosen_exchange_at_counter(sku.as_str(), p.fee_yen),
        Resolution::StoreCredit => Detail::chosen_credit_at_counter(p.store_credit_bonus_yen),
        Resolution::Refund => Detail::chosen_refund_at_counter(p.fee_yen),
    }
}

/// Registers a return at a store's counter, of lines of one of the merchant's orders not
/// returned yet (or, `dry_run`, only asks the policy).
pub async fn at_counter(
    ctx: &Arc<Ctx>,
    req: CounterReturn,
    key_id: &str,
) -> Result<CounterRegistered, AppError> {
    let CounterReturn {
        store,
        merchant,
        order_ref,
        lines,
        resolution,
        condition,
        dry_run,
    } = req;
    let now_ms = ctx.clock.now_ms();
    let (m, r) = (merchant.clone(), order_ref.clone());
    let skus: Vec<String> = lines.iter().map(|l| l.sku.to_string()).collect();
    let wanted = match &resolution {
        Resolution::Exchange { sku } => Some(sku.clone()),
        _ => None,
    };
    let facts = ctx
        .db
        .call(move |c| {
            let Some(order) = orders::get(c, m.as_str(), &r)? else {
                return Ok(None);
            };
            let history = match order.customer_ref.as_deref() {
                Some(customer) => store::commerce::history(c, customer, now_ms)?,
                None => policy::History::default(),
            };
            Ok::<_, StoreError>(Some(Facts {
                returned: orders::returned_qty(c, m.as_str(), &r)?,
                catalog: skus
                    .iter()
                    .map(|s| queries::catalog_item(c, m.as_str(), s))
                    .collect::<Result<_, _>>()?,
                wanted: match &wanted {
                    Some(sku) => queries::catalog_item(c, m.as_str(), sku)?,
                    None => None,
                },
                style_refusal: match &wanted {
                    Some(sku) => store::styles::exchange_refusal(c, Some(m.as_str()), &skus, sku)?,
                    None => None,
                },
                history,
                order,
            }))
        })
        .await?;
    let facts = facts.ok_or_else(|| {
        AppError::NotFound(format!("no order {order_ref} of merchant {merchant}"))
    })?;
    if let Resolution::Exchange { sku } = &resolution {
        check_exchange(
            sku,
            facts.wanted.as_ref().map(|w| w.1),
            facts.style_refusal.clone(),
            || {
                AppError::invalid_field(
                    "exchange_sku",
                    format!("{sku} is not in the catalogue of {merchant}"),
                )
            },
        )?;
    }
    // Each line must be on the order, and not returned already (lines of one SKU together).
    let mut asked: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        let ordered = facts
            .order
            .lines
            .iter()
            .filter(|o| o.sku == l.sku.as_str())
            .map(|o| u64::from(o.qty))
            .sum::<u64>();
        if ordered == 0 {
            return Err(AppError::invalid_field(
                format!("lines[{i}].sku"),
                format!("{} is not on order {}", l.sku, facts.order.order_ref),
            ));
        }
        let left = ordered.saturating_sub(facts.returned.get(l.sku.as_str()).copied().unwrap_or(0));
        let total = asked.entry(l.sku.as_str()).or_default();
        *total += u64::from(l.qty);
        if *total > left {
            return Err(AppError::invalid_field(
                format!("lines[{i}].qty"),
                format!("only {left} of {} may still be returned", l.sku),
            ));
        }
    }
    let policy_lines: Vec<PolicyLine> = lines
        .iter()
        .zip(&facts.catalog)
        .map(|(l, item)| PolicyLine {
            sku: l.sku.to_string(),
            qty: l.qty,
            reason: l.reason,
            price_yen: item.as_ref().map(|i| i.0),
            final_sale: item.as_ref().is_some_and(|i| i.1),
        })
        .collect();
    let decision = policy::decide(
        &ctx.config.policy,
        &policy_lines,
        &resolution,
        facts.order.ordered_ms,
        now_ms,
        &facts.history,
    );
    if let Some(refusal) = decision.refused_lines.first() {
        return Err(AppError::invalid_field(
            format!("lines[{}]", refusal.line),
            format!("the return policy refuses this line: {}", refusal.reason),
        ));
    }
    if !decision.accepted {
        return Err(AppError::invalid_field(
            "order_ref",
            format!("the return policy refuses: {}", decision.reasons.join("; ")),
        ));
    }
    if dry_run {
        return Ok(CounterRegistered {
            decision,
            routed: None,
        });
    }
    let rma = RmaId::new(new_rma_id(now_ms)).map_err(|e| AppError::internal(&e))?;
    let customer = facts
        .order
        .customer_ref
        .clone()
        .filter(|c| !c.starts_with("anon-"))
        .map(|reference| store::Customer {
            reference,
            name: None,
            address: None,
        });
    // The replacement of an exchange is reserved now, like any exchange's.
    let terms = terms(
        ctx,
        &resolution,
        Some(&decision),
        "store_dropoff".into(),
        (
            Some(facts.order.order_ref.clone()),
            Some(facts.order.ordered_ms),
        ),
        (None, None),
        condition.and_then(|c| serde_json::to_string(&c).ok()),
    );
    let routed = register(
        ctx,
        store::NewReturn {
            rma,
            merchant: Some(merchant),
            origin: store.location,
            origin_label: format!("store:{}", store.id),
            origin_store: Some(store.id.clone()),
            lines,
            customer,
            terms: Some(terms),
            order_ref: Some(facts.order.order_ref.clone()),
            resolution: Some(counter_resolution_detail(&resolution, &decision)),
        },
    )
    .await
    .map_err(|e| match e {
        CoordinatorError::NoSiteFor(why) => AppError::NoSite(why),
        e => e.into(),
    })?;
    info!(rma = %routed.rma, store = %store.id, site = %routed.site,
          key_id, "return registered at the store counter");
    Ok(CounterRegistered {
        decision,
        routed: Some(routed),
    })
}
