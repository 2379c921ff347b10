//! The customer portal (`/r/{merchant}`), the first page of Modori that faces the public: a
//! customer opens their order with its reference and the email address or phone number on it
//! (`app::portal::lookup`) and sees what of it may be returned and why not. Japanese first,
//! English by the switch on every page; plain HTML forms that work without script.
//!
//! Every form carries a CSRF token that must equal the one in the page's cookie (a site that
//! posts here cannot read it), and every answer carries the headers of [`portal_page`].

mod label;
mod photos;
pub(crate) mod render;
mod repair;
mod scan;
mod trade_in;
mod upload;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Query, Request, State};
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
use crate::app::portal::{self, ItemWords, Lookup, PortalReturn};
use crate::app::AppError;
use crate::merchants::MerchantEntry;
use crate::notify::{is_token_shaped, token_hash};
use crate::policy::Resolution;
use crate::{store, Ctx};
pub use render::Lang;
pub use upload::{PHOTOS_PER_ITEM_MAX, PHOTO_BYTES_MAX};

/// The cookie that holds a portal page's CSRF token.
pub const CSRF_COOKIE: &str = "modori_portal_csrf";
/// Random bytes of a CSRF token (128 bits).
pub const CSRF_TOKEN_BYTES: usize = 16;
/// Longest order reference or contact a customer may type, in bytes.
pub const TYPED_BYTES_MAX: usize = 128;
/// Longest note a customer may write of an item beside its reason, in characters.
pub const NOTE_CHARS_MAX: usize = 500;

/// Own sources only, no script at all yet, no framing, forms post only here. Images also
/// from any `https:` origin, for the merchant's logo (`logo_url` is https only): with no
/// script and no referrer, loading one tells its host nothing the page holds.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' https:; \
     frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/r/assets/portal.css", get(stylesheet))
        .route(render::PRIVACY_PATH, get(privacy))
        .route("/r/{merchant}", get(lookup_page).post(lookup))
        .route("/r/{merchant}/brand.css", get(brand_stylesheet))
        .route("/r/{merchant}/privacy", get(merchant_privacy))
        .route(
            "/r/{merchant}/returns",
            post(register).layer(DefaultBodyLimit::max(upload::FORM_BODY_BYTES_MAX)),
        )
        .route("/r/{merchant}/s/{token}", get(status))
        .merge(scan::router())
        .merge(photos::router())
        .merge(label::router())
        .merge(trade_in::router())
        .merge(repair::router())
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

/// The merchant as its customers see it now (`app::merchant_settings`): name, colours,
/// logo, policy text and what it offers.
async fn brand(ctx: &Ctx, merchant: &MerchantId) -> Result<MerchantEntry, ApiError> {
    Ok(crate::app::merchant_settings::entry(ctx, merchant.as_str()).await?)
}

async fn lookup_page(
    State(ctx): State<Arc<Ctx>>,
    ApiPath(merchant): ApiPath<String>,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let lang = Lang::parse(q.lang.as_deref());
    let csrf = new_csrf_token()?;
    let html = render::lookup_form(&merchant, &brand(&ctx, &merchant).await?, lang, &csrf, None);
    Ok(with_csrf_cookie(portal_page(StatusCode::OK, html), &csrf))
}

/// A form's page with the cookie its token is checked against when the form comes back.
fn with_csrf_cookie(mut res: Response, csrf: &str) -> Response {
    let cookie = format!("{CSRF_COOKIE}={csrf}; HttpOnly; SameSite=Strict; Path=/r/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
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
    let name = brand(&ctx, &merchant).await?;
    let Some(csrf) = csrf_checked(&headers, &form.csrf) else {
        return Ok(portal_page(
            StatusCode::FORBIDDEN,
            render::stale_form(&name, lang),
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
            let fresh = render::Refill::default();
            let dates = portal::pickup_dates(now_ms);
            let opened = render::Opened {
                csrf,
                contact,
                refill: &fresh,
                fees: &ctx.config.policy.method_fee_yen,
                pickup_dates: &dates,
            };
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
/// A form with a photo or a note refused is shown again as it was filled in, its good photos
/// kept.
async fn register(
    State(ctx): State<Arc<Ctx>>,
    ApiPath(merchant): ApiPath<String>,
    Client(client): Client,
    req: Request,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let headers = req.headers().clone();
    let posted = upload::read(req).await?;
    let field = |name: &str| posted.field(name);
    let lang = Lang::parse(Some(field("lang")));
    let name = brand(&ctx, &merchant).await?;
    let Some(csrf) = csrf_checked(&headers, field("csrf")) else {
        return Ok(portal_page(
            StatusCode::FORBIDDEN,
            render::stale_form(&name, lang),
        ));
    };
    let (order_ref, contact) = (field("order_ref"), field("contact"));
    if order_ref.len() > TYPED_BYTES_MAX || contact.len() > TYPED_BYTES_MAX {
        return Ok(portal_page(
            StatusCode::FORBIDDEN,
            render::stale_form(&name, lang),
        ));
    }
    let (order, facts) =
        match portal::lookup(&ctx, merchant.as_str(), order_ref, contact, client).await? {
            Lookup::Found(order, facts) => (*order, facts),
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
    // Only what the merchant offers, as the page showed it; a way back it does not offer is
    // refused before any photo is kept.
    let method = field("method").to_owned();
    if !crate::portal_settings::methods_offered(&name).contains(&method.as_str()) {
        return Ok(portal_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            render::stale_form(&name, lang),
        ));
    }
    let offered = crate::portal_settings::reasons_offered(&name);
    let (words, mut refill) = item_words(&ctx, merchant.as_str(), &order, &posted).await?;
    let now_ms = ctx.clock.now_ms();
    let pickup = portal::pickup_of(field("pickup_date"), field("pickup_slot"), now_ms);
    refill.pickup_missing = portal::PICKUP_METHODS.contains(&method.as_str()) && pickup.is_none();
    if !refill.problems.is_empty() || refill.pickup_missing {
        let window_days = ctx.config.policy.terms.return_window_days;
        let dates = portal::pickup_dates(now_ms);
        let opened = render::Opened {
            csrf,
            contact,
            refill: &refill,
            fees: &ctx.config.policy.method_fee_yen,
            pickup_dates: &dates,
        };
        let html = render::order_page(&name, lang, &order, &facts, window_days, now_ms, &opened);
        return Ok(portal_page(StatusCode::UNPROCESSABLE_ENTITY, html));
    }
    let mut lines = Vec::new();
    for (i, l) in order.lines.iter().enumerate() {
        if field(&format!("line{i}")).is_empty() {
            continue;
        }
        let problem = || {
            let html = render::stale_form(&name, lang);
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
        if qty == 0 || qty > l.qty || !offered.contains(&reason) {
            return problem();
        }
        lines.push((ReturnLine { sku, qty, reason }, outcome));
    }
    if lines.is_empty() {
        return Ok(portal_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            render::stale_form(&name, lang),
        ));
    }
    let pickup = pickup.filter(|_| portal::PICKUP_METHODS.contains(&method.as_str()));
    let req = PortalReturn {
        merchant: merchant.clone(),
        order,
        lines,
        postal_code: field("postal_code").to_owned(),
        method: method.clone(),
        words,
        pickup: pickup.clone(),
    };
    let done = match portal::register_returns(&ctx, req).await {
        Ok(done) => done,
        Err(AppError::Invalid { .. }) => {
            return Ok(portal_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                render::stale_form(&name, lang),
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
    let dropoffs: Vec<_> = done
        .dropoffs
        .iter()
        .map(|(store, km)| {
            let hours = ctx.fleet.opening_hours.get(store.id.as_str()).copied();
            (store.clone(), *km, hours)
        })
        .collect();
    let sending = render::Sending {
        method: &method,
        method_fee_yen: ctx.config.policy.method_fee_yen.of(&method),
        pickup: pickup.as_ref(),
        dropoffs: &dropoffs,
    };
    Ok(portal_page(
        status,
        render::confirmation(&name, merchant.as_str(), lang, &sending, &outcomes),
    ))
}

/// The notes and photos of the lines chosen, the photos checked and kept; and, when any is
/// refused, the form to show again with what was wrong.
async fn item_words(
    ctx: &Ctx,
    merchant: &str,
    order: &store::orders::Order,
    posted: &upload::Posted,
) -> Result<(Vec<ItemWords>, render::Refill), ApiError> {
    let mut words = Vec::new();
    let mut refill = render::Refill {
        fields: posted.fields.clone(),
        ..render::Refill::default()
    };
    for (i, l) in order.lines.iter().enumerate() {
        if posted.field(&format!("line{i}")).is_empty() {
            continue;
        }
        let note = posted.field(&format!("note{i}")).to_owned();
        if note.chars().count() > NOTE_CHARS_MAX {
            refill
                .problems
                .push((i, render::LineProblem::NoteTooLong(NOTE_CHARS_MAX)));
        }
        let carried = posted.all(&format!("kept{i}"));
        let mut kept =
            portal::kept_photos(ctx, merchant, &order.order_ref, &l.sku, carried).await?;
        for photo in posted.photos.iter().filter(|p| p.line == i) {
            let name = photo.file_name.clone();
            let problem = match &photo.checked {
                Err(upload::PhotoProblem::NotAnImage) => render::LineProblem::NotAnImage(name),
                Err(upload::PhotoProblem::TooLarge) => {
                    render::LineProblem::TooLarge(name, upload::PHOTO_BYTES_MAX)
                }
                Ok(_) if kept.len() >= upload::PHOTOS_PER_ITEM_MAX => {
                    render::LineProblem::TooMany(name, upload::PHOTOS_PER_ITEM_MAX)
                }
                Ok((ty, bytes)) => {
                    let id = portal::keep_photo(
                        ctx,
                        merchant,
                        &order.order_ref,
                        &l.sku,
                        ty.content_type(),
                        bytes.clone(),
                    )
                    .await?;
                    kept.push(id);
                    continue;
                }
            };
            refill.problems.push((i, problem));
        }
        refill.kept.push((i, kept.clone()));
        words.push(ItemWords {
            sku: l.sku.clone(),
            note,
            uploads: kept,
        });
    }
    Ok((words, refill))
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
            let pickup = store::pickups::get(c, rma.as_str())?;
            Ok(store::lifecycle::get(c, &rma)?.map(|r| (r, pickup)))
        })
        .await?;
    let Some((ret, pickup)) = found else {
        return Ok(not_found());
    };
    let pickup = pickup.and_then(|(date, slot)| {
        chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
            .ok()
            .map(|d| (d, slot))
    });
    let events: Vec<(String, i64)> = ret
        .events
        .iter()
        .map(|e| (e.kind.clone(), e.at_ms))
        .collect();
    let name = brand(&ctx, &merchant).await?;
    let path = format!("/r/{merchant}/s/{token}");
    let (trade_in, csrf) = trade_in::status_section(&ctx, &merchant, &ret.rma, lang, &path)
        .await?
        .unwrap_or_default();
    let (repair, repair_csrf) = repair::status_section(&ctx, &merchant, &ret.rma, lang, &path)
        .await?
        .unwrap_or_default();
    // A return is a trade-in or a repair, never both: one form at most.
    let csrf = csrf.or(repair_csrf);
    let about = if !trade_in.is_empty() {
        render::StatusOf::TradeIn(&trade_in)
    } else if !repair.is_empty() {
        render::StatusOf::Repair(&repair)
    } else {
        render::StatusOf::Return
    };
    let page = portal_page(
        StatusCode::OK,
        render::status_page(
            &name,
            lang,
            &ret.rma,
            &events,
            &path,
            pickup.as_ref().map(|(d, s)| (*d, s.as_str())),
            about,
        ),
    );
    Ok(match csrf {
        Some(csrf) => with_csrf_cookie(page, &csrf),
        None => page,
    })
}

/// The privacy notice the pages that name no merchant link to.
async fn privacy(State(ctx): State<Arc<Ctx>>, Query(q): Query<LangQuery>) -> Response {
    let html = render::privacy_notice(
        None,
        Lang::parse(q.lang.as_deref()),
        ctx.config.privacy.retention_days,
        portal::UPLOAD_KEPT_MS / 3_600_000,
    );
    portal_page(StatusCode::OK, html)
}

/// The privacy notice a merchant's pages link to, under the merchant's brand like them.
async fn merchant_privacy(
    State(ctx): State<Arc<Ctx>>,
    ApiPath(merchant): ApiPath<String>,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let html = render::privacy_notice(
        Some(&brand(&ctx, &merchant).await?),
        Lang::parse(q.lang.as_deref()),
        ctx.config.privacy.retention_days,
        portal::UPLOAD_KEPT_MS / 3_600_000,
    );
    Ok(portal_page(StatusCode::OK, html))
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

/// The merchant's own colours for its pages (empty when it sets none).
async fn brand_stylesheet(
    State(ctx): State<Arc<Ctx>>,
    ApiPath(merchant): ApiPath<String>,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let css = crate::portal_settings::brand_css(&brand(&ctx, &merchant).await?);
    Ok((
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        css,
    )
        .into_response())
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
