//! The customer portal (`/r/{merchant}`), the first page of Modori that faces the public: a
//! customer opens their order with its reference and the email address or phone number on it
//! (`app::portal::lookup`) and sees what of it may be returned and why not. Japanese first,
//! English by the switch on every page; plain HTML forms that work without script.
//!
//! Every form carries a CSRF token that must equal the one in the page's cookie (a site that
//! posts here cannot read it), and every answer carries the headers of [`portal_page`].

pub(crate) mod render;
mod scan;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use modori_shared::domain::{MerchantId, ReasonCode, ReturnLine, RmaId, Sku};
use rand::TryRngCore;
use serde::Deserialize;

use super::error::{ApiError, ApiPath};
use super::long_uri::Peer;
use crate::app::portal::{self, Lookup, PortalReturn};
use crate::app::AppError;
use crate::notify::{is_token_shaped, token_hash};
use crate::policy::Resolution;
use crate::{store, Ctx};
pub use render::Lang;

/// The cookie that holds a portal page's CSRF token.
pub const CSRF_COOKIE: &str = "modori_portal_csrf";
/// Random bytes of a CSRF token (128 bits).
pub const CSRF_TOKEN_BYTES: usize = 16;
/// Longest order reference or contact a customer may type, in bytes.
pub const TYPED_BYTES_MAX: usize = 128;

/// Own sources only, no script at all yet, no framing, forms post only here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/r/assets/portal.css", get(stylesheet))
        .route("/r/{merchant}", get(lookup_page).post(lookup))
        .route("/r/{merchant}/returns", post(register))
        .route("/r/{merchant}/s/{token}", get(status))
        .merge(scan::router())
}

/// The client's address as the listener saw it; the unspecified address when the router runs
/// without one (every such client then shares one allowance, the cautious side).
pub struct Client(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<Peer>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0 .0.ip()),
        ))
    }
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

fn merchant_of(merchant: String) -> Result<MerchantId, ApiError> {
    MerchantId::new(merchant).map_err(|e| ApiError::invalid_path("merchant", e))
}

/// The name the merchant's customers know it by (`merchants[].name`), else its id.
fn merchant_name(ctx: &Ctx, merchant: &MerchantId) -> String {
    ctx.config
        .merchants
        .iter()
        .find(|m| m.id == merchant.as_str())
        .and_then(|m| m.name.clone())
        .unwrap_or_else(|| merchant.to_string())
}

async fn lookup_page(
    State(ctx): State<Arc<Ctx>>,
    ApiPath(merchant): ApiPath<String>,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let lang = Lang::parse(q.lang.as_deref());
    let csrf = new_csrf_token()?;
    let html = render::lookup_form(
        &merchant,
        &merchant_name(&ctx, &merchant),
        lang,
        &csrf,
        None,
    );
    let mut res = portal_page(StatusCode::OK, html);
    let cookie = format!("{CSRF_COOKIE}={csrf}; HttpOnly; SameSite=Strict; Path=/r/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[derive(Deserialize)]
struct LookupForm {
    csrf: String,
    lang: Option<String>,
    order_ref: String,
    contact: String,
}

async fn lookup(
    State(ctx): State<Arc<Ctx>>,
    ApiPath(merchant): ApiPath<String>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<LookupForm>,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let lang = Lang::parse(form.lang.as_deref());
    let name = merchant_name(&ctx, &merchant);
    let Some(csrf) = csrf_checked(&headers, &form.csrf) else {
        return Ok(portal_page(
            StatusCode::FORBIDDEN,
            render::stale_form(&merchant, lang),
        ));
    };
    let (order_ref, contact) = (form.order_ref.trim(), form.contact.trim());
    if order_ref.is_empty()
        || contact.is_empty()
        || order_ref.len() > TYPED_BYTES_MAX
        || contact.len() > TYPED_BYTES_MAX
    {
        let html =
            render::lookup_form(&merchant, &name, lang, csrf, Some(render::Problem::Missing));
        return Ok(portal_page(StatusCode::UNPROCESSABLE_ENTITY, html));
    }
    let found = portal::lookup(&ctx, merchant.as_str(), order_ref, contact, client).await?;
    Ok(match found {
        Lookup::Found(order, facts) => {
            let window_days = ctx.config.policy.terms.return_window_days;
            let now_ms = ctx.clock.now_ms();
            let opened = render::Opened { csrf, contact };
            portal_page(
                StatusCode::OK,
                render::order_page(&name, lang, &order, &facts, window_days, now_ms, &opened),
            )
        }
        Lookup::NotFound => portal_page(
            StatusCode::NOT_FOUND,
            render::lookup_form(
                &merchant,
                &name,
                lang,
                csrf,
                Some(render::Problem::NotFound),
            ),
        ),
        Lookup::LockedOut { until_ms } => portal_page(
            StatusCode::TOO_MANY_REQUESTS,
            render::lookup_form(
                &merchant,
                &name,
                lang,
                csrf,
                Some(render::Problem::LockedOut { until_ms }),
            ),
        ),
    })
}

/// Registers what the customer chose on their order's page, after opening the order again
/// with the contact the page carries (so the lookup's checks and lockouts hold here too).
async fn register(
    State(ctx): State<Arc<Ctx>>,
    ApiPath(merchant): ApiPath<String>,
    Client(client): Client,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or_default()
    };
    let lang = Lang::parse(Some(field("lang")));
    let name = merchant_name(&ctx, &merchant);
    let Some(csrf) = csrf_checked(&headers, field("csrf")) else {
        return Ok(portal_page(
            StatusCode::FORBIDDEN,
            render::stale_form(&merchant, lang),
        ));
    };
    let (order_ref, contact) = (field("order_ref"), field("contact"));
    if order_ref.len() > TYPED_BYTES_MAX || contact.len() > TYPED_BYTES_MAX {
        return Ok(portal_page(
            StatusCode::FORBIDDEN,
            render::stale_form(&merchant, lang),
        ));
    }
    let order = match portal::lookup(&ctx, merchant.as_str(), order_ref, contact, client).await? {
        Lookup::Found(order, _) => *order,
        Lookup::NotFound | Lookup::LockedOut { .. } => {
            let html = render::lookup_form(
                &merchant,
                &name,
                lang,
                csrf,
                Some(render::Problem::NotFound),
            );
            return Ok(portal_page(StatusCode::NOT_FOUND, html));
        }
    };
    let mut lines = Vec::new();
    for (i, l) in order.lines.iter().enumerate() {
        if field(&format!("line{i}")).is_empty() {
            continue;
        }
        let problem = || {
            let html = render::stale_form(&merchant, lang);
            Ok(portal_page(StatusCode::UNPROCESSABLE_ENTITY, html))
        };
        let Ok(qty) = field(&format!("qty{i}")).parse::<u32>() else {
            return problem();
        };
        let (Ok(reason), Ok(sku)) = (
            ReasonCode::parse(field(&format!("reason{i}"))),
            Sku::new(l.sku.clone()),
        ) else {
            return problem();
        };
        let outcome = match field(&format!("outcome{i}")) {
            "refund" => Resolution::Refund,
            "store_credit" => Resolution::StoreCredit,
            other => match other.strip_prefix("exchange:") {
                Some(wanted) if Sku::new(wanted.to_owned()).is_ok() => Resolution::Exchange {
                    sku: wanted.to_owned(),
                },
                _ => return problem(),
            },
        };
        if qty == 0 || qty > l.qty {
            return problem();
        }
        lines.push((ReturnLine { sku, qty, reason }, outcome));
    }
    if lines.is_empty() {
        return Ok(portal_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            render::stale_form(&merchant, lang),
        ));
    }
    let method = field("method").to_owned();
    let req = PortalReturn {
        merchant: merchant.clone(),
        order,
        lines,
        postal_code: field("postal_code").to_owned(),
        method: method.clone(),
    };
    let done = match portal::register_returns(&ctx, req).await {
        Ok(done) => done,
        Err(AppError::Invalid { .. }) => {
            return Ok(portal_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                render::stale_form(&merchant, lang),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let outcomes: Vec<render::Outcome<'_>> = done
        .outcomes
        .iter()
        .map(|o| match &o.registered {
            Ok(reg) => render::Outcome::Registered {
                rma: reg.routed.rma.as_str(),
                resolution: &o.resolution,
                skus: o.skus.clone(),
                decision: reg.decision.as_ref(),
                returnless: reg.returnless.is_some(),
                status_url: format!(
                    "/r/{merchant}/s/{}",
                    o.status_token.as_deref().unwrap_or_default()
                ),
                show_qr: method == "store_dropoff" || method == "konbini_dropoff",
            },
            Err(_) => render::Outcome::Refused {
                resolution: &o.resolution,
            },
        })
        .collect();
    let status = if outcomes
        .iter()
        .any(|o| matches!(o, render::Outcome::Registered { .. }))
    {
        StatusCode::CREATED
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(portal_page(
        status,
        render::confirmation(
            &name,
            merchant.as_str(),
            lang,
            &method,
            &outcomes,
            &done.dropoffs,
        ),
    ))
}

/// A return's status page, opened by the token its confirmation and its messages link to.
/// A token that is not of this merchant's return is answered as one that does not exist.
async fn status(
    State(ctx): State<Arc<Ctx>>,
    ApiPath((merchant, token)): ApiPath<(String, String)>,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let lang = Lang::parse(q.lang.as_deref());
    let not_found = || portal_page(StatusCode::NOT_FOUND, render::unknown_link(lang));
    if !is_token_shaped(&token) {
        return Ok(not_found());
    }
    let hash = token_hash(&token);
    let m = merchant.to_string();
    let found = ctx
        .db
        .call(move |c| -> Result<_, crate::store::StoreError> {
            let Some((rma, Some(owner))) = store::notifications::token_return(c, &hash)? else {
                return Ok(None);
            };
            if owner != m {
                return Ok(None);
            }
            let Ok(rma) = RmaId::new(rma) else {
                return Ok(None);
            };
            store::lifecycle::get(c, &rma)
        })
        .await?;
    let Some(ret) = found else {
        return Ok(not_found());
    };
    let events: Vec<(String, i64)> = ret
        .events
        .iter()
        .map(|e| (e.kind.clone(), e.at_ms))
        .collect();
    let name = merchant_name(&ctx, &merchant);
    let path = format!("/r/{merchant}/s/{token}");
    Ok(portal_page(
        StatusCode::OK,
        render::status_page(&name, lang, &ret.rma, &events, &path),
    ))
}

/// The form's CSRF token when it is the cookie's.
fn csrf_checked<'a>(headers: &HeaderMap, typed: &'a str) -> Option<&'a str> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == CSRF_COOKIE)
        .map(|(_, v)| v)?;
    let same = cookie.len() == typed.len()
        && cookie
            .bytes()
            .zip(typed.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    (same && typed.len() == 2 * CSRF_TOKEN_BYTES).then_some(typed)
}

fn new_csrf_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; CSRF_TOKEN_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| ApiError::internal(&format!("no random bytes for a form token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A portal page with the headers every one carries: its own CSP, no framing, no referrer
/// (its URLs may carry a status token), never cached (it shows an order).
pub fn portal_page(status: StatusCode, html: String) -> Response {
    let mut res = super::page::html_page(status, html, CONTENT_SECURITY_POLICY);
    res.headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        include_str!("../../../web/portal/portal.css"),
    )
        .into_response()
}
