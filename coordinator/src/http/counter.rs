//! The store counter's endpoints (a store session; the store is the session's): look an
//! order up, register a return of some of its lines with the customer's choice, see the site
//! it is routed to, print its label (ZPL, or a page for any printer) and the customer's
//! receipt (`receipt.rs`), list the store's returns of today and those still on their way.
//!
//! A return registered here goes through the same use case as `POST /api/v1/returns`
//! (`app::register`), from the store's coordinates with `origin_store` set, after the
//! return policy (window, final sale, fees) has accepted it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use modori_shared::domain::{
    MerchantId, ReasonCode, ReturnLine, RmaId, Sku, Store, StoreId, StoreKind,
};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson, ApiPath};
use super::i18n::{lang_of, Lang};
use super::orders::valid_order_ref;
use super::page::html_escape;
use super::rfc3339;
use super::session::Browser;
use crate::app::counter;
use crate::policy::{self, Resolution};
use crate::store::category_names::{self, Names};
use crate::store::counter_checks::{StoreCondition, PHOTO_REF_BYTES_MAX};
use crate::store::dashboard::{self as queries, StoreReturn};
use crate::store::lifecycle;
use crate::store::orders::{self, LineFacts, Order, ORDERS_FOUND_MAX};
use crate::{store, Ctx};

/// Returns listed at a store's counter at most.
pub const STORE_RECENT_MAX: usize = 100;
/// Longest lookup text, in bytes.
pub const LOOKUP_BYTES_MAX: usize = 64;

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/ui/store/state", get(state))
        .route("/ui/store/orders", get(lookup))
        .route("/ui/store/returns", post(register))
        .route("/ui/store/labels/{rma}", get(label_page))
        .route("/ui/store/labels/{rma}/zpl", get(label_zpl))
}

fn the_store(ctx: &Ctx, id: &StoreId) -> Result<Store, ApiError> {
    ctx.fleet
        .stores
        .iter()
        .find(|s| &s.id == id)
        .cloned()
        .ok_or_else(|| ApiError::forbidden(format!("store {id} is not in the fleet any more")))
}

#[derive(Serialize)]
struct StoreInfo {
    id: String,
    name: String,
    kind: &'static str,
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct StoreState {
    store: StoreInfo,
    /// Returns registered here today (in Japan, where every store is), and older ones that
    /// have not reached their site yet, newest first: each keeps its label and receipt.
    recent: Vec<StoreReturn>,
    /// The reason codes a line may carry.
    reasons: Vec<&'static str>,
    /// The zone the page shows times in (`http.time_zone`).
    time_zone: String,
}

async fn state(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
) -> Result<Json<StoreState>, ApiError> {
    let id = browser.require_store()?;
    let store = the_store(&ctx, &id)?;
    let s = id.clone();
    let today_ms = crate::app::route::start_of_day_jst(ctx.clock.now_ms());
    let recent = ctx
        .db
        .call(move |c| queries::store_recent(c, s.as_str(), today_ms, STORE_RECENT_MAX))
        .await?;
    Ok(Json(StoreState {
        store: StoreInfo {
            id: store.id.to_string(),
            name: store.name,
            kind: match store.kind {
                StoreKind::Retail => "retail",
                StoreKind::Konbini => "konbini",
            },
            latitude: store.location.lat(),
            longitude: store.location.lon(),
        },
        recent,
        reasons: ReasonCode::ALL.iter().map(|r| r.as_str()).collect(),
        time_zone: ctx.config.http.time_zone.clone(),
    }))
}

#[derive(Deserialize)]
struct LookupQuery {
    q: String,
}

#[derive(Serialize)]
struct FoundLine {
    sku: String,
    ordered: u32,
    /// Already in a return of this order.
    returned: u64,
    /// What may still be returned.
    returnable: u64,
    category: Option<String>,
    /// What the merchant calls the category in the counter's language, when it says.
    category_name: Option<String>,
    price_yen: Option<u64>,
    final_sale: bool,
    /// What the customer may take in exchange: the sellable variants of this SKU's style
    /// (empty when it has none; any catalogue SKU may then be typed).
    variants: Vec<String>,
}

#[derive(Serialize)]
struct FoundOrder {
    merchant: String,
    order_ref: String,
    customer_ref: Option<String>,
    ordered_at: Option<String>,
    /// The standard terms' window end; a customer on strict terms has less.
    window_ends_at: Option<String>,
    lines: Vec<FoundLine>,
}

fn found_order(
    o: Order,
    facts: Vec<LineFacts>,
    names: &BTreeMap<String, Names>,
    lang: Lang,
    terms: &policy::Terms,
) -> FoundOrder {
    let lines = o
        .lines
        .iter()
        .zip(facts)
        .map(|(l, f)| FoundLine {
            sku: l.sku.clone(),
            ordered: l.qty,
            returned: f.returned,
            returnable: u64::from(l.qty).saturating_sub(f.returned),
            category: f.item.as_ref().map(|i| i.2.clone()),
            category_name: f.item.as_ref().and_then(|i| {
                let n = names.get(&i.2)?;
                match lang {
                    Lang::Ja => n.ja.clone(),
                    Lang::En => n.en.clone(),
                }
            }),
            price_yen: f.item.as_ref().map(|i| i.0),
            final_sale: f.item.as_ref().is_some_and(|i| i.1),
            variants: f.variants,
        })
        .collect();
    FoundOrder {
        window_ends_at: rfc3339(o.ordered_ms + i64::from(terms.return_window_days) * 86_400_000),
        ordered_at: rfc3339(o.ordered_ms),
        merchant: o.merchant,
        order_ref: o.order_ref,
        customer_ref: o.customer_ref,
        lines,
    }
}

/// Orders whose reference or customer reference is `q`, with what may still be returned of
/// each line.
async fn lookup(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    headers: HeaderMap,
    Query(query): Query<LookupQuery>,
) -> Result<Json<Vec<FoundOrder>>, ApiError> {
    browser.require_store()?;
    let lang = lang_of(&headers);
    let q = query.q.trim().to_owned();
    if q.is_empty() || q.len() > LOOKUP_BYTES_MAX {
        return Err(ApiError::invalid_field(
            "q",
            format!("type an order or customer reference (1..={LOOKUP_BYTES_MAX} bytes)"),
        ));
    }
    let terms = ctx.config.policy.terms.clone();
    let found = ctx
        .db
        .call(move |c| -> Result<_, store::StoreError> {
            let found = orders::find_with_facts(c, &q, ORDERS_FOUND_MAX)?;
            let mut names = BTreeMap::new();
            for (o, _) in &found {
                if !names.contains_key(&o.merchant) {
                    names.insert(
                        o.merchant.clone(),
                        category_names::of_merchant(c, &o.merchant)?,
                    );
                }
            }
            Ok((found, names))
        })
        .await?;
    let (found, names) = found;
    Ok(Json(
        found
            .into_iter()
            .map(|(o, facts)| {
                let of_merchant = names.get(&o.merchant).cloned().unwrap_or_default();
                found_order(o, facts, &of_merchant, lang, &terms)
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterLine {
    sku: String,
    qty: u32,
    reason: String,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Choice {
    Refund,
    StoreCredit,
    Exchange,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterReturn {
    merchant: String,
    order_ref: String,
    lines: Vec<CounterLine>,
    resolution: Choice,
    /// The variant the customer takes instead (exchange only).
    #[serde(default)]
    exchange_sku: Option<String>,
    /// What the clerk saw of the goods (tags on, opened, visibly used, damaged, the photo's
    /// reference); absent when not checked.
    #[serde(default)]
    condition: Option<StoreCondition>,
    /// Only ask the policy (fees, bonus, refusals); register nothing.
    #[serde(default)]
    dry_run: bool,
}

/// A photo reference the clerk typed: what the store's camera or tablet numbered it, in
/// printable characters, at most `PHOTO_REF_BYTES_MAX` bytes.
fn checked_condition(c: Option<StoreCondition>) -> Result<Option<StoreCondition>, ApiError> {
    let Some(mut c) = c else { return Ok(None) };
    if let Some(photo) = c.photo_ref.take() {
        let photo = photo.trim().to_owned();
        if photo.is_empty() || photo.len() > PHOTO_REF_BYTES_MAX {
            return Err(ApiError::invalid_field(
                "condition.photo_ref",
                format!("the photo's reference, 1..={PHOTO_REF_BYTES_MAX} bytes"),
            ));
        }
        if photo.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                "condition.photo_ref",
                "the photo's reference holds a control character",
            ));
        }
        c.photo_ref = Some(photo);
    }
    Ok(Some(c))
}

#[derive(Serialize)]
struct PolicyView {
    terms: &'static str,
    tier: policy::Tier,
    fee_yen: u64,
    value_yen: u64,
    store_credit_bonus_yen: u64,
    window_ends_at: Option<String>,
}

#[derive(Serialize)]
struct Registered {
    /// Absent on a dry run.
    rma: Option<String>,
    site: Option<String>,
    site_name: Option<String>,
    explanation: Option<String>,
    policy: PolicyView,
    /// For an exchange: whether the replacement was ordered from the site.
    exchange_ordered: Option<bool>,
}

/// Registers a return at the counter (or, `dry_run`, only quotes the policy's terms).
async fn register(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    ApiJson(req): ApiJson<CounterReturn>,
) -> Result<Response, ApiError> {
    let store_id = browser.require_store()?;
    let store = the_store(&ctx, &store_id)?;
    let merchant =
        MerchantId::new(req.merchant).map_err(|e| ApiError::invalid_field("merchant", e))?;
    if !valid_order_ref(&req.order_ref) {
        return Err(ApiError::invalid_field(
            "order_ref",
            "not an order reference",
        ));
    }
    if req.lines.is_empty() || req.lines.len() > super::returns::RETURN_LINES_MAX {
        return Err(ApiError::invalid_field(
            "lines",
            format!(
                "pick 1..={} lines of the order",
                super::returns::RETURN_LINES_MAX
            ),
        ));
    }
    let mut lines = Vec::new();
    for (i, l) in req.lines.into_iter().enumerate() {
        let field = |f: &str| format!("lines[{i}].{f}");
        let sku = Sku::new(l.sku).map_err(|e| ApiError::invalid_field(field("sku"), e))?;
        let reason = ReasonCode::parse(&l.reason)
            .map_err(|e| ApiError::invalid_field(field("reason"), e))?;
        lines.push(
            ReturnLine::requested(sku, l.qty, reason)
                .map_err(|e| ApiError::invalid_field(field("qty"), e))?,
        );
    }
    let exchange = match (req.resolution, req.exchange_sku) {
        (Choice::Exchange, Some(s)) => {
            Some(Sku::new(s).map_err(|e| ApiError::invalid_field("exchange_sku", e))?)
        }
        (Choice::Exchange, None) => {
            return Err(ApiError::invalid_field(
                "exchange_sku",
                "an exchange needs the SKU the customer takes instead",
            ))
        }
        _ => None,
    };
    let resolution = match (req.resolution, exchange) {
        (Choice::Exchange, Some(sku)) => Resolution::Exchange {
            sku: sku.to_string(),
        },
        (Choice::StoreCredit, _) => Resolution::StoreCredit,
        _ => Resolution::Refund,
    };
    let condition = checked_condition(req.condition)?;
    let exchange_ordered = matches!(resolution, Resolution::Exchange { .. }).then_some(true);
    let done = counter::at_counter(
        &ctx,
        counter::CounterReturn {
            store,
            merchant,
            order_ref: req.order_ref,
            lines,
            resolution,
            condition,
            dry_run: req.dry_run,
        },
        &browser.key_id,
    )
    .await?;
    let decision = done.decision;
    let policy_view = PolicyView {
        terms: decision.terms,
        tier: decision.tier,
        fee_yen: decision.fee_yen,
        value_yen: decision.value_yen,
        store_credit_bonus_yen: decision.store_credit_bonus_yen,
        window_ends_at: rfc3339(decision.window_ends_ms),
    };
    let Some(routed) = done.routed else {
        return Ok(Json(Registered {
            rma: None,
            site: None,
            site_name: None,
            explanation: None,
            policy: policy_view,
            exchange_ordered: None,
        })
        .into_response());
    };
    // Set aside when registered (see `store::reservations`): at a site, or from the merchant's stock.
    let site_name = ctx.fleet.site(&routed.site).map(|s| s.name.clone());
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            rma: Some(routed.rma.to_string()),
            site: Some(routed.site.to_string()),
            site_name,
            explanation: Some(routed.explanation),
            policy: policy_view,
            exchange_ordered,
        }),
    )
        .into_response())
}

/// A return of this store, for its label: (RMA, site id, site name, store name).
pub(super) async fn labelled(
    ctx: &Arc<Ctx>,
    browser: &Browser,
    rma: String,
) -> Result<(RmaId, modori_shared::domain::SiteId, String, String), ApiError> {
    let store_id = browser.require_store()?;
    let store = the_store(ctx, &store_id)?;
    let rma = RmaId::new(rma).map_err(|e| ApiError::invalid_path("rma", e))?;
    let r = rma.clone();
    let ret = ctx
        .db
        .call(move |c| lifecycle::get(c, &r))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no return {rma}")))?;
    if ret.owner.origin_store.as_deref() != Some(store_id.as_str()) {
        return Err(ApiError::forbidden(format!(
            "return {rma} was not registered at {store_id}"
        )));
    }
    let site = modori_shared::domain::SiteId::new(ret.site).map_err(|e| ApiError::internal(&e))?;
    let site_name = ctx
        .fleet
        .site(&site)
        .map_or_else(|| site.to_string(), |s| s.name.clone());
    Ok((rma, site, site_name, store.name))
}

/// The return label in ZPL, to download for a label printer.
async fn label_zpl(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    ApiPath(rma): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (rma, site, site_name, store_name) = labelled(&ctx, &browser, rma).await?;
    let zpl = modori_shared::label::zpl::return_label(
        modori_shared::label::zpl::LabelMedia::default(),
        &rma,
        &site,
        &site_name,
        &store_name,
        None,
    )
    .map_err(|e| ApiError::internal(&e))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/zpl; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{rma}.zpl\""),
            ),
        ],
        zpl,
    )
        .into_response())
}

/// The return label as a page to print on any printer: destination, RMA barcode (Code 128,
/// as on the ZPL label), origin.
async fn label_page(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    ApiPath(rma): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (rma, site, site_name, store_name) = labelled(&ctx, &browser, rma).await?;
    let barcode = modori_shared::label::svg::page_svg(rma.as_str(), 90)
        .map_err(|e| ApiError::internal(&e))?;
    let e = |s: &str| html_escape(s);
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Return label {rma}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/ui/assets/style.css"></head>
<body class="label-page">
<main class="label" id="label">
  <p class="label-to">TO</p>
  <h1 id="label-site">{site_name}</h1>
  <p>Site <strong>{site}</strong></p>
  <div class="barcode">{barcode}</div>
  <p class="label-rma" id="label-rma">{rma}</p>
  <p>From {store_name}</p>
</main>
<footer class="no-print"><p><a href="/store">Back to the counter</a> · <a href="/ui/store/labels/{rma}/zpl">ZPL file</a> · use your browser's Print</p></footer>
</body></html>"#,
        rma = e(rma.as_str()),
        site_name = e(&site_name),
        site = e(site.as_str()),
        store_name = e(&store_name),
    );
    Ok(super::page::page(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_reference_is_trimmed_and_checked() {
        let with = |photo: &str| {
            checked_condition(Some(StoreCondition {
                tags_on: true,
                photo_ref: Some(photo.into()),
                ..StoreCondition::default()
            }))
        };
        let kept = with(" IMG-0042 ").ok().flatten();
        assert_eq!(kept.and_then(|c| c.photo_ref).as_deref(), Some("IMG-0042"));
        for bad in ["", "  ", "IMG\n42", &"x".repeat(PHOTO_REF_BYTES_MAX + 1)] {
            assert!(with(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(checked_condition(None), Ok(None)));
    }
}
