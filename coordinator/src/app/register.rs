//! Registering a return: from the API (a merchant or ops) and from BORIS (a store's system)
//! here, at the store counter in `counter.rs`. Each entry point checks what the catalogue, the order and the
//! customer's history say, asks the return policy, routes the return and stores it with the
//! commands its site is sent, in one transaction, then wakes that site. Handlers only parse
//! the request and render the answer.
//!
//! Where the entry points differ, they differ here and say why: a return sent by a system
//! drops the lines the policy refuses and goes on with the rest (the answer lists them, the
//! customer keeps those items); at the counter the staff hand a refused item back across the
//! desk, so one refused line refuses the registration, naming that line.

use std::sync::Arc;

use modori_shared::domain::{Coordinates, MerchantId, ReturnLine, RmaId, Sku, StoreId};
use tracing::info;

use super::route::{register, RoutedReturn};
use super::AppError;
use crate::policy::{self, PolicyDecision, PolicyLine, Resolution};
use crate::store::details::Detail;
use crate::store::{self, StoreError};
use crate::{routing, CoordinatorError, Ctx};

/// A return sent by the API or BORIS, each field checked for its shape.
pub struct Registration {
    pub rma: RmaId,
    pub merchant: Option<MerchantId>,
    pub origin: Coordinates,
    pub origin_label: String,
    pub origin_store: Option<StoreId>,
    pub lines: Vec<ReturnLine>,
    pub customer: Option<store::Customer>,
    pub order_ref: Option<String>,
    pub order_date_ms: Option<i64>,
    pub method: String,
    pub resolution: Resolution,
    /// What a store saw at its counter (BORIS only).
    pub store_condition: Option<store::counter_checks::StoreCondition>,
}

/// The label a registered return travels under.
pub struct Label {
    pub carrier: Option<String>,
    pub tracking: Option<String>,
    pub to_name: String,
    pub from: String,
    /// ZPL for the default label media.
    pub zpl: String,
}

/// What registering a return sent by the API or BORIS did.
pub struct Registered {
    /// For a returnless refund: the nearest site, no candidates and no command.
    pub routed: RoutedReturn,
    /// The policy's decision (a merchant's return only).
    pub decision: Option<PolicyDecision>,
    /// None for a returnless refund.
    pub label: Option<Label>,
    /// Why the customer keeps the goods and is refunded at once, when so.
    pub returnless: Option<String>,
    /// The replacement set aside for an exchange.
    pub reservation: Option<store::reservations::Reservation>,
}

/// The terms stored with a return the policy accepted.
pub(super) fn terms(
    ctx: &Ctx,
    resolution: &Resolution,
    decision: Option<&PolicyDecision>,
    method: String,
    order: (Option<String>, Option<i64>),
    carriage: (Option<String>, Option<String>),
    store_condition: Option<String>,
) -> store::commerce::Terms {
    let exchange_sku = match resolution {
        Resolution::Exchange { sku } => Sku::new(sku.clone()).ok(),
        _ => None,
    };
    store::commerce::Terms {
        order_ref: order.0,
        order_date_ms: order.1,
        method,
        resolution: resolution.kind(),
        exchange_sku,
        fee_yen: decision.map_or(0, |d| d.fee_yen),
        credit_bonus_percent: match (resolution, decision) {
            (Resolution::StoreCredit, Some(d)) if d.store_credit_bonus_yen > 0 => {
                ctx.config.policy.terms.store_credit_bonus_percent
            }
            _ => 0,
        },
        value_yen: decision.map_or(0, |d| d.value_yen),
        carrier: carriage.0,
        tracking: carriage.1,
        policy_json: decision
            .and_then(|d| serde_json::to_string(d).ok())
            .unwrap_or_default(),
        advance_exchange: ctx.config.policy.advance_exchange_for_trusted
            && decision.is_some_and(|d| d.tier == policy::Tier::Trusted),
        store_condition,
    }
}

/// An exchange is for a product the merchant sells: in its catalogue (`not_in_catalogue`
/// otherwise), not final sale, and of the returned SKUs' style.
pub(super) fn check_exchange(
    sku: &str,
    wanted_final_sale: Option<bool>,
    style_refusal: Option<String>,
    not_in_catalogue: impl FnOnce() -> AppError,
) -> Result<(), AppError> {
    match wanted_final_sale {
        None => return Err(not_in_catalogue()),
        Some(true) => {
            return Err(AppError::invalid_field(
                "exchange_sku",
                format!("{sku} is a final-sale product: it is not offered in exchange"),
            ))
        }
        Some(false) => {}
    }
    match style_refusal {
        Some(why) => Err(AppError::invalid_field("exchange_sku", why)),
        None => Ok(()),
    }
}

/// Applies the return policy (for a merchant's return), routes and registers; the answer
/// carries the label. A return the policy refuses is `Rejected` with the reasons; the lines it
/// refuses of a return it accepts are left out.
pub async fn submit(ctx: &Arc<Ctx>, c: Registration, key_id: &str) -> Result<Registered, AppError> {
    if let Some(m) = &c.merchant {
        if !ctx.knows_merchant(m.as_str()) {
            return Err(AppError::unknown_field(
                "merchant",
                format!("no merchant {m} (merchants are configured in [[merchants]])"),
            ));
        }
    }
    let now_ms = ctx.clock.now_ms();
    let merchant = c.merchant.as_ref().map(|m| m.to_string());
    let skus: Vec<String> = c.lines.iter().map(|l| l.sku.to_string()).collect();
    let customer_ref = c.customer.as_ref().map(|c| c.reference.clone());
    let wanted = match &c.resolution {
        Resolution::Exchange { sku } => Some(sku.clone()),
        _ => None,
    };
    let (products, has_catalog, history, wanted_product, style_refusal) = ctx
        .db
        .call({
            let merchant = merchant.clone();
            move |conn| {
                let mut products = Vec::new();
                for sku in &skus {
                    products.push(store::catalog::product(conn, merchant.as_deref(), sku)?);
                }
                let wanted_product = match &wanted {
                    Some(sku) => store::catalog::product(conn, merchant.as_deref(), sku)?,
                    None => None,
                };
                let style_refusal = match &wanted {
                    Some(sku) => {
                        store::styles::exchange_refusal(conn, merchant.as_deref(), &skus, sku)?
                    }
                    None => None,
                };
                let has_catalog = match &merchant {
                    Some(m) => store::catalog::has_catalog(conn, m)?,
                    None => false,
                };
                let history = match &customer_ref {
                    Some(r) => store::commerce::history(conn, r, now_ms)?,
                    None => policy::History::default(),
                };
                Ok::<_, StoreError>((
                    products,
                    has_catalog,
                    history,
                    wanted_product,
                    style_refusal,
                ))
            }
        })
        .await?;
    if let Resolution::Exchange { sku } = &c.resolution {
        check_exchange(
            sku,
            wanted_product.as_ref().map(|p| p.1),
            style_refusal,
            || {
                AppError::unknown_field(
                    "exchange_sku",
                    format!(
                        "{sku} is not in the catalogue of {}: an exchange is for a product the \
                         merchant sells",
                        merchant.as_deref().unwrap_or("any merchant")
                    ),
                )
            },
        )?;
    }
    // A merchant with a catalogue must know every SKU it takes back.
    if has_catalog {
        if let Some(i) = products.iter().position(Option::is_none) {
            return Err(AppError::unknown_field(
                format!("lines[{i}].sku"),
                format!(
                    "{} is not in the catalogue of {}",
                    c.lines[i].sku,
                    merchant.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    let policy_lines: Vec<PolicyLine> = c
        .lines
        .iter()
        .zip(&products)
        .map(|(l, p)| PolicyLine {
            sku: l.sku.to_string(),
            qty: l.qty,
            reason: l.reason,
            // Without a catalogue nothing is priced, and nothing refused for it.
            price_yen: p.as_ref().map(|p| p.0).or((!has_catalog).then_some(0)),
            final_sale: p.as_ref().is_some_and(|p| p.1),
        })
        .collect();
    let decision = c.merchant.as_ref().map(|_| {
        let mut d = policy::decide(
            &ctx.config.policy,
            &policy_lines,
            &c.resolution,
            c.order_date_ms.unwrap_or(now_ms),
            now_ms,
            &history,
        );
        // The way the parcel travels costs the customer its own fee, deducted with the
        // return's.
        if d.accepted {
            d.fee_yen = d
                .fee_yen
                .saturating_add(ctx.config.policy.method_fee_yen.of(&c.method));
        }
        d
    });
    if let Some(d) = &decision {
        if !d.accepted {
            let mut reasons = d.reasons.clone();
            reasons.extend(
                d.refused_lines
                    .iter()
                    .map(|r| format!("lines[{}]: {}", r.line, r.reason)),
            );
            let field = if c.order_date_ms.is_some() && now_ms > d.window_ends_ms {
                "order_date"
            } else {
                "lines"
            };
            info!(rma = %c.rma, key_id, tier = ?d.tier, "return refused by the policy");
            return Err(AppError::Rejected {
                field: field.to_owned(),
                message: format!(
                    "the return policy refuses this return: {}",
                    reasons.join("; ")
                ),
            });
        }
    }
    let refused: Vec<usize> = decision
        .as_ref()
        .map(|d| d.refused_lines.iter().map(|r| r.line).collect())
        .unwrap_or_default();
    let lines: Vec<ReturnLine> = c
        .lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !refused.contains(i))
        .map(|(_, l)| l.clone())
        .collect();
    let carrier = crate::carrier::carriers()
        .first()
        .map(|c| c.id().to_owned());
    let tracking = Some(crate::carrier::simulated_tracking(tracking_seed(&c.rma)));
    let terms = terms(
        ctx,
        &c.resolution,
        decision.as_ref(),
        c.method.clone(),
        (c.order_ref.clone(), c.order_date_ms),
        (carrier.clone(), tracking.clone()),
        c.store_condition
            .as_ref()
            .and_then(|s| serde_json::to_string(s).ok()),
    );
    let from = c.origin_label.clone();
    let new_return = store::NewReturn {
        rma: c.rma.clone(),
        merchant: c.merchant.clone(),
        origin: c.origin,
        origin_label: c.origin_label.clone(),
        origin_store: c.origin_store.clone(),
        lines: lines.clone(),
        customer: c.customer.clone(),
        terms: Some(terms),
        order_ref: c.order_ref.clone(),
        resolution: None,
    };
    if let Some(why) = returnless_why(ctx, &c, &lines, &products, decision.as_ref()) {
        return register_returnless(ctx, new_return, why, decision, key_id).await;
    }
    check_label(ctx, &c, tracking.as_deref())?;
    let routed = match register(ctx, new_return).await {
        Ok(routed) => routed,
        Err(CoordinatorError::Store(e)) if e.is_unique_violation() => {
            return Err(AppError::Exists {
                field: "rma".into(),
                message: format!("return {} already exists", c.rma),
            })
        }
        Err(CoordinatorError::NoSiteFor(why)) => return Err(AppError::NoSite(why)),
        Err(e) => return Err(e.into()),
    };
    let site = ctx.fleet.sites.iter().find(|s| s.id == routed.site);
    let to_name = site.map(|s| s.name.clone()).unwrap_or_default();
    // Checked before the commit for every site (`check_label`): this cannot fail now.
    let zpl = modori_shared::label::zpl::return_label(
        modori_shared::label::zpl::LabelMedia::default(),
        &routed.rma,
        &routed.site,
        &to_name,
        &from,
        tracking.as_deref(),
    )
    .unwrap_or_else(|e| {
        tracing::error!(rma = %routed.rma, error = %e, "return label failed after its check");
        String::new()
    });
    info!(rma = %routed.rma, site = %routed.site, key_id, "return registered");
    let reservation = {
        let rma = routed.rma.clone();
        // Stored already: an unreadable reservation is left out of the answer (GET shows
        // it), not turned into an error that would say nothing was stored.
        ctx.db
            .call(move |conn| store::reservations::reservation(conn, &rma))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(rma = %routed.rma, error = %e, "reservation unreadable");
                None
            })
    };
    Ok(Registered {
        routed,
        decision,
        label: Some(Label {
            carrier,
            tracking,
            to_name,
            from,
            zpl,
        }),
        returnless: None,
        reservation,
    })
}

/// Builds the return label for every site it could be routed to, before anything is stored:
/// data the label refuses (a control character in a postal code, an over-long origin) is
/// refused naming the request's field, never a failure after the return was saved.
fn check_label(ctx: &Ctx, c: &Registration, tracking: Option<&str>) -> Result<(), AppError> {
    use modori_shared::label::zpl::{return_label, LabelMedia, ZplError};
    for site in &ctx.fleet.sites {
        let media = LabelMedia::default();
        let Err(e) = return_label(
            media,
            &c.rma,
            &site.id,
            &site.name,
            &c.origin_label,
            tracking,
        ) else {
            continue;
        };
        let field = match &e {
            ZplError::ControlChar { field, .. }
            | ZplError::BarcodeChar { field, .. }
            | ZplError::TooLong { field, .. }
            | ZplError::Empty { field }
            | ZplError::NoGlyph { field, .. }
            | ZplError::Barcode { field, .. }
            | ZplError::DoesNotFit { field, .. } => *field,
        };
        let named = match field {
            "rma" => "rma",
            "from" if c.origin_label.starts_with("postal:") => "origin.postal_code",
            "from" if c.origin_label.starts_with("store:") => "origin.store_id",
            "from" => "origin",
            // Site names, ids and tracking numbers are ours: a configuration fault.
            _ => return Err(AppError::internal(&e)),
        };
        return Err(AppError::invalid_field(
            named,
            format!("cannot be printed on the return label: {e}"),
        ));
    }
    Ok(())
}

/// Why the customer should keep the goods, when bringing them back costs more than they would
/// recover and the merchant allows it for every line's category. Not for an exchange.
fn returnless_why(
    ctx: &Ctx,
    c: &Registration,
    lines: &[ReturnLine],
    products: &[Option<(u64, bool, bool, String)>],
    decision: Option<&PolicyDecision>,
) -> Option<Detail> {
    let merchant = c.merchant.as_ref()?;
    decision?;
    if matches!(c.resolution, Resolution::Exchange { .. }) || lines.is_empty() {
        return None;
    }
    let rules = &ctx.config.policy.returnless;
    let site = routing::nearest_site(&ctx.fleet.sites, c.origin)?
        .site
        .id
        .clone();
    let mut recovered: i64 = 0;
    for line in lines {
        let i = c.lines.iter().position(|l| l.sku == line.sku)?;
        let (price, _, _, category) = products.get(i)?.as_ref()?;
        if !policy::returnless_allowed(rules, merchant.as_str(), category) {
            return None;
        }
        let unit = crate::valuation::UnitFacts {
            price_yen: *price,
            grade: policy::expected_grade(line.reason),
            site: &site,
        };
        let best = crate::valuation::decide(&ctx.config.valuation, &unit, &ctx.fleet.sites);
        let per_unit = best.options.first().map_or(0, |o| o.value_yen.max(0));
        recovered += per_unit * i64::from(line.qty);
    }
    let cost = ctx.config.policy.return_cost_yen.of(&c.method);
    (i64::try_from(cost).unwrap_or(i64::MAX) > recovered)
        .then(|| Detail::returnless_kept(&c.method, cost, recovered))
}

async fn register_returnless(
    ctx: &Arc<Ctx>,
    r: store::NewReturn,
    why: Detail,
    decision: Option<PolicyDecision>,
    key_id: &str,
) -> Result<Registered, AppError> {
    let site = routing::nearest_site(&ctx.fleet.sites, r.origin)
        .map(|route| route.site.id.clone())
        .ok_or_else(|| AppError::internal(&"no site in the fleet"))?;
    let value = decision.as_ref().map_or(0, |d| d.value_yen);
    let refund = value.saturating_add(decision.as_ref().map_or(0, |d| d.store_credit_bonus_yen));
    let rma = r.rma.clone();
    let (s, w) = (site.clone(), why.clone());
    let now_ms = ctx.clock.now_ms();
    let stored = ctx
        .db
        .call(move |conn| store::returnless::register_returnless(conn, &r, &s, &w, refund, now_ms))
        .await;
    match stored {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(AppError::Exists {
                field: "rma".into(),
                message: format!("return {rma} already exists"),
            })
        }
        Err(e) => return Err(e.into()),
    }
    ctx.webhooks_wake();
    info!(rma = %rma, key_id, refund_yen = refund, "returnless refund");
    Ok(Registered {
        routed: RoutedReturn {
            rma,
            site,
            explanation: why.english.clone(),
            candidates: Vec::new(),
            command_seq: 0,
        },
        decision,
        label: None,
        returnless: Some(why.english),
        reservation: None,
    })
}

/// A number for the simulated carrier's slip, from the RMA (stable, so a retried registration
/// prints the same slip).
pub(super) fn tracking_seed(rma: &RmaId) -> u64 {
    rma.as_str()
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)))
}
