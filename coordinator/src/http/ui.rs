//! The browser pages: the ops dashboard at `/` and the store counter at `/store`, their login,
//! static assets, and the JSON and server-sent events they read.
//!
//! These routes are not the API: they are not in the OpenAPI document and take a session
//! cookie (`session`), not a bearer key. Pages are static files embedded in the binary (no
//! build step); no page holds a key. Errors of the `/ui` endpoints are the API's JSON errors.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{ApiError, ApiPath};
use super::page::page;
use super::rfc3339;
use super::session::{self, Browser, NoSession};
use crate::apikeys::Scope;
use crate::store::dashboard::{self as queries, UnitDecision};
use crate::store::lifecycle;
use crate::Ctx;

/// How often a live page is sent a new snapshot.
pub const SSE_PUSH_INTERVAL: Duration = Duration::from_secs(1);
/// What one open dashboard's stream may cost while the fleet is idle, in bytes a second: the
/// budget the deltas keep to (`tests/ui_sessions.rs` measures it over nine idle sites).
pub const SSE_IDLE_BYTES_PER_S_MAX: u64 = 2048;
/// A comment line is sent this often on a quiet stream, so proxies keep it open.
pub const SSE_KEEPALIVE: Duration = Duration::from_secs(15);
/// Live pages connected at once at most; more get a 503 and retry.
pub const SSE_STREAMS_MAX: usize = 64;
/// Units of one return shown in the decisions view at most.
pub const DECISION_UNITS_MAX: usize = 500;

const LOGIN_HTML: &str = include_str!("../../web/login.html");
const DASHBOARD_HTML: &str = include_str!("../../web/dashboard.html");
const STORE_HTML: &str = include_str!("../../web/store.html");
/// The pages' icon: SVG, served at the path browsers ask for whatever the page says.
const FAVICON_SVG: &str = include_str!("../../web/favicon.svg");
/// (name, content type, content) of every asset under `/ui/assets/`.
const ASSETS: [(&str, &str, &str); 9] = [
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/common.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/dashboard.js"),
    ),
    (
        "japan.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/japan.js"),
    ),
    (
        "quarantine.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/quarantine.js"),
    ),
    (
        "return.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/return.js"),
    ),
    (
        "returns.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/returns.js"),
    ),
    (
        "site.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/site.js"),
    ),
    (
        "store.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/store.js"),
    ),
];

/// The routes of the pages and their endpoints.
pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/", get(dashboard_page))
        .route("/store", get(store_page))
        .route("/login", get(login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/ui/assets/{name}", get(asset))
        .route("/favicon.ico", get(favicon))
        .route("/ui/state", get(state))
        .route("/ui/events", get(events))
        .route("/ui/returns/{rma}", get(decisions))
        .merge(super::counter::router())
        .merge(super::receipt::router())
        .merge(super::i18n::router())
        .merge(super::returns_page::router())
        .merge(super::return_page::router())
        .merge(super::quarantine_page::router())
        .merge(super::alert_actions::router())
        .merge(super::site_page::router())
}

async fn login_page(headers: HeaderMap) -> Response {
    page(super::i18n::render(
        LOGIN_HTML,
        super::i18n::lang_of(&headers),
    ))
}

/// The ops dashboard, for an ops session; a store session goes to its counter.
async fn dashboard_page(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    match Browser::of(&ctx, &headers).await {
        Ok(b) if b.scope == Scope::Ops => page(super::i18n::render(
            DASHBOARD_HTML,
            super::i18n::lang_of(&headers),
        )),
        Ok(_) => Redirect::to("/store").into_response(),
        Err(NoSession::Missing) => session::to_login("/"),
        Err(NoSession::Failed(e)) => e.into_response(),
    }
}

/// The store counter, for a store session; an ops session goes to the dashboard.
async fn store_page(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    match Browser::of(&ctx, &headers).await {
        Ok(b) if matches!(b.scope, Scope::Store(_)) => page(super::i18n::render(
            STORE_HTML,
            super::i18n::lang_of(&headers),
        )),
        Ok(_) => Redirect::to("/").into_response(),
        Err(NoSession::Missing) => session::to_login("/store"),
        Err(NoSession::Failed(e)) => e.into_response(),
    }
}

async fn asset(ApiPath(name): ApiPath<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => ApiError::not_found(format!("no asset {name}")).into_response(),
    }
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        FAVICON_SVG,
    )
        .into_response()
}

/// The dashboard's snapshot, once (the page reads it first, then follows `/ui/events`).
async fn state(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
) -> Result<Json<crate::dashboard::Snapshot>, ApiError> {
    browser.require_ops()?;
    Ok(Json(
        ctx.dashboard.snapshot(&ctx, ctx.clock.now_ms()).await?,
    ))
}

/// A live stream's hold on one of the [`SSE_STREAMS_MAX`] places, counted in the metrics.
struct StreamSlot {
    ctx: Arc<Ctx>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.ctx.metrics.sse_streams.dec();
    }
}

/// A place for one more live page, or a 503.
pub fn stream_slot(
    ctx: &Arc<Ctx>,
    streams: &Arc<Semaphore>,
) -> Result<impl Send + 'static, ApiError> {
    let permit = streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{SSE_STREAMS_MAX} live pages are open already; try again later"),
        )
    })?;
    ctx.metrics.sse_streams.inc();
    Ok(StreamSlot {
        ctx: ctx.clone(),
        _permit: permit,
    })
}

/// What a stream step yields next.
enum Step {
    First,
    Next,
    Done,
}

/// Server-sent events: a `snapshot` event with the whole dashboard first, then every
/// [`SSE_PUSH_INTERVAL`] a `delta` event with what changed since the last event (see
/// [`super::delta`]; a whole `snapshot` again when that is smaller); `logout` (and the end)
/// when the session ends; the stream ends when the coordinator stops.
async fn events(State(ctx): State<Arc<Ctx>>, browser: Browser) -> Result<Response, ApiError> {
    browser.require_ops()?;
    let slot = stream_slot(&ctx, &ctx.sse_streams)?;
    let shutdown = ctx.shutdown.clone();
    let sent: Option<serde_json::Value> = None;
    let stream = futures_util::stream::unfold(
        (ctx, browser, shutdown, slot, sent, Step::First),
        |(ctx, browser, mut shutdown, slot, sent, step)| async move {
            match step {
                Step::Done => return None,
                Step::First => {}
                Step::Next => {
                    tokio::select! {
                        _ = tokio::time::sleep(SSE_PUSH_INTERVAL) => {}
                        _ = shutdown.changed() => return None,
                    }
                }
            }
            if *shutdown.borrow() {
                return None;
            }
            let headers = session_headers(&browser.session_id);
            if Browser::of(&ctx, &headers).await.is_err() {
                let e = Event::default().event("logout").data("session ended");
                return Some((
                    Ok::<_, Infallible>(e),
                    (ctx, browser, shutdown, slot, sent, Step::Done),
                ));
            }
            let (event, sent) = match ctx.dashboard.snapshot(&ctx, ctx.clock.now_ms()).await {
                Ok(snapshot) => match serde_json::to_value(&snapshot) {
                    Ok(now) => (change_event(sent.as_ref(), &now), Some(now)),
                    Err(e) => (Event::default().event("problem").data(e.to_string()), sent),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "dashboard snapshot failed");
                    let problem = Event::default()
                        .event("problem")
                        .data("the coordinator could not read its database; retrying");
                    (problem, sent)
                }
            };
            Some((Ok(event), (ctx, browser, shutdown, slot, sent, Step::Next)))
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(SSE_KEEPALIVE))
        .into_response())
}

/// The event that brings a page from `sent` (what it was sent last, if anything) to `now`.
fn change_event(sent: Option<&serde_json::Value>, now: &serde_json::Value) -> Event {
    let whole = || Event::default().event("snapshot").data(now.to_string());
    let Some(sent) = sent else {
        return whole();
    };
    let changes = super::delta::diff(sent, now);
    if super::delta::encoded_len(&changes) >= super::delta::encoded_len(now) {
        return whole();
    }
    Event::default()
        .event("delta")
        .data(serde_json::Value::from(changes).to_string())
}

/// Headers carrying only the session cookie, to check a session again mid-stream.
pub fn session_headers(session_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{}={session_id}", session::SESSION_COOKIE)) {
        headers.insert(header::COOKIE, v);
    }
    headers
}

#[derive(Serialize)]
struct LineView {
    sku: String,
    qty: u64,
    reason: Option<String>,
}

#[derive(Serialize)]
struct EventView {
    kind: String,
    site: Option<String>,
    lpn: Option<String>,
    detail: Option<String>,
    detail_code: Option<String>,
    detail_params: Option<std::collections::BTreeMap<String, String>>,
    at: Option<String>,
}

/// The decisions view of one return: why it went to its site, what each unit became and why.
#[derive(Serialize)]
struct Decisions {
    rma: String,
    status: String,
    merchant: Option<String>,
    origin: String,
    site: String,
    /// The routing decision's explanation, stored with the return when it was routed (English).
    routing: String,
    /// Every site the routing weighed, best first (`routing::Candidate`), for the page to
    /// explain the decision in its language; absent for a return routed without them.
    routing_candidates: Option<serde_json::Value>,
    lines: Vec<LineView>,
    units: Vec<UnitDecision>,
    events: Vec<EventView>,
    /// The zone the page shows times in (`http.time_zone`).
    time_zone: String,
    /// The session's token for the actions the return's page posts.
    csrf: String,
    /// The fleet's sites, where a unit may be transferred.
    sites: Vec<String>,
    /// When the return is a trade-in: its quote and where the offer stands.
    trade_in: Option<TradeInView>,
    /// When the return is a repair: its fault and where its quote stands.
    repair: Option<RepairView>,
}

/// A repair return's fault and quote, for the return's page.
#[derive(Serialize)]
struct RepairView {
    fault: String,
    fault_text: String,
    defects: Vec<String>,
    unpriced: Vec<String>,
    quote_yen: Option<u64>,
    decision: Option<String>,
    charge_yen: Option<u64>,
    transfer_to: Option<String>,
}

/// A trade-in return's quote and offer, for the return's page.
#[derive(Serialize)]
struct TradeInView {
    quote_id: String,
    condition: String,
    expected_grade: String,
    quote_yen: u64,
    payout: String,
    offer_yen: Option<u64>,
    counter_offer: bool,
    decision: Option<String>,
    payout_yen: Option<u64>,
}

async fn decisions(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    ApiPath(rma): ApiPath<String>,
) -> Result<Json<Decisions>, ApiError> {
    browser.require_ops()?;
    let rma = modori_shared::domain::RmaId::new(rma.trim())
        .map_err(|e| ApiError::invalid_path("rma", e))?;
    let r = rma.clone();
    let (found, units, candidates, trade_in, repair) = ctx
        .db
        .call(move |c| {
            let repair = crate::store::repairs::of_return(c, r.as_str())?;
            let trade_in = match crate::store::trade_in_returns::of_return(c, r.as_str())? {
                Some(t) => crate::store::trade_in::quote_by_id(c, &t.quote_id)?.map(|q| (t, q)),
                None => None,
            };
            Ok::<_, crate::store::StoreError>((
                lifecycle::get(c, &r)?,
                queries::units_of_return(c, r.as_str(), DECISION_UNITS_MAX)?,
                crate::store::commerce::decisions(c, &r)?.candidates,
                trade_in,
                repair,
            ))
        })
        .await?;
    let ret = found.ok_or_else(|| ApiError::not_found(format!("no return {rma}")))?;
    Ok(Json(Decisions {
        rma: ret.rma,
        status: ret.status,
        merchant: ret.owner.merchant,
        origin: ret.origin,
        site: ret.site,
        routing: ret.routing,
        routing_candidates: candidates,
        lines: ret
            .lines
            .into_iter()
            .map(|l| LineView {
                sku: l.sku,
                qty: l.qty,
                reason: l.reason,
            })
            .collect(),
        units,
        events: ret
            .events
            .into_iter()
            .map(|e| EventView {
                kind: e.kind,
                site: e.site,
                lpn: e.lpn,
                detail: e.detail,
                detail_code: e.detail_code,
                detail_params: e.detail_params,
                at: rfc3339(e.at_ms),
            })
            .collect(),
        time_zone: ctx.config.http.time_zone.clone(),
        csrf: session::csrf_token(&browser.session_id),
        sites: ctx.fleet.sites.iter().map(|s| s.id.to_string()).collect(),
        trade_in: trade_in.map(|(t, q)| TradeInView {
            quote_id: q.quote_id,
            condition: q.condition.as_str().to_owned(),
            expected_grade: q.grade.as_str().to_owned(),
            quote_yen: q.quote_yen,
            payout: t.payout.as_str().to_owned(),
            offer_yen: t.offer.map(|o| o.amount_yen),
            counter_offer: t.offer.is_some_and(|o| o.counter),
            decision: t.decision.map(|(d, _, _)| d.as_str().to_owned()),
            payout_yen: t.payout_yen,
        }),
        repair: repair.map(|p| {
            let names = |d: &[modori_shared::domain::DefectCode]| {
                d.iter().map(|d| d.as_str().to_owned()).collect()
            };
            RepairView {
                fault: p.request.fault.as_str().to_owned(),
                fault_text: p.request.fault_text,
                defects: names(p.defects.as_deref().unwrap_or_default()),
                unpriced: names(&p.unpriced),
                quote_yen: p.quote.map(|q| q.total_yen),
                decision: p.decision.map(|(d, _, _)| d.as_str().to_owned()),
                charge_yen: p.charge_yen,
                transfer_to: p.transfer_to,
            }
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG AA for normal text.
    const CONTRAST_MIN: f64 = 4.5;

    /// The pages' stylesheet without its comments.
    fn style_css() -> String {
        let mut css = ASSETS
            .iter()
            .find(|(name, _, _)| *name == "style.css")
            .map(|(_, _, body)| *body)
            .expect("style.css is an asset");
        let mut out = String::new();
        while let Some(start) = css.find("/*") {
            out.push_str(&css[..start]);
            let end = css[start..].find("*/").expect("a closed comment");
            css = &css[start + end + 2..];
        }
        out.push_str(css);
        out
    }

    /// The body of the first rule whose selector list is exactly `selector`.
    fn rule<'a>(css: &'a str, selector: &str) -> &'a str {
        let start = css
            .find(&format!("\n{selector} {{"))
            .unwrap_or_else(|| panic!("no rule {selector}"));
        let body = &css[start + selector.len() + 3..];
        &body[..body.find('}').expect("a closed rule")]
    }

    /// The value of `property` in a rule body.
    fn property<'a>(body: &'a str, property: &str) -> &'a str {
        body.split(';')
            .filter_map(|d| d.split_once(':'))
            .find(|(name, _)| name.trim() == property)
            .map(|(_, value)| value.trim())
            .unwrap_or_else(|| panic!("no {property} in {body}"))
    }

    /// An sRGB colour with its alpha: `#rrggbb`, `rgba(r, g, b, a)` or `var(--name)`.
    fn colour(css: &str, value: &str) -> [f64; 4] {
        if let Some(name) = value.strip_prefix("var(").and_then(|v| v.strip_suffix(')')) {
            return colour(css, property(rule(css, ":root"), name));
        }
        if let Some(hex) = value.strip_prefix('#') {
            let c = |i: usize| f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap());
            return [c(0), c(2), c(4), 1.0];
        }
        let inner = value
            .strip_prefix("rgba(")
            .and_then(|v| v.strip_suffix(')'))
            .unwrap_or_else(|| panic!("a colour: {value}"));
        let parts: Vec<f64> = inner
            .split(',')
            .map(|p| p.trim().parse().unwrap())
            .collect();
        [parts[0], parts[1], parts[2], parts[3]]
    }

    /// `top` painted over the opaque `below`.
    fn over(top: [f64; 4], below: [f64; 4]) -> [f64; 4] {
        let mix = |i: usize| top[i] * top[3] + below[i] * (1.0 - top[3]);
        [mix(0), mix(1), mix(2), 1.0]
    }

    fn luminance(c: [f64; 4]) -> f64 {
        let lin = |v: f64| {
            let v = v / 255.0;
            if v <= 0.039_28 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
    }

    fn contrast(a: [f64; 4], b: [f64; 4]) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// Emoji and pictographs, which draw as boxes without an emoji font.
    fn is_pictograph(c: char) -> bool {
        matches!(u32::from(c), 0x2300..=0x23FF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x1F000..=0x1FAFF)
    }

    #[test]
    fn pages_draw_icons_not_emoji() {
        let pages = [
            ("login.html", LOGIN_HTML),
            ("dashboard.html", DASHBOARD_HTML),
            ("store.html", STORE_HTML),
            ("returns.html", super::super::returns_page::RETURNS_HTML),
            ("return.html", super::super::return_page::RETURN_HTML),
            (
                "quarantine.html",
                super::super::quarantine_page::QUARANTINE_HTML,
            ),
        ];
        for (name, text) in pages
            .into_iter()
            .chain(ASSETS.iter().map(|(n, _, t)| (*n, *t)))
        {
            let found: String = text.chars().filter(|c| is_pictograph(*c)).collect();
            assert!(found.is_empty(), "{name} has {found}");
        }
    }

    #[test]
    fn coloured_text_keeps_a_contrast_of_4_5_to_1_wherever_it_sits() {
        let css = &style_css();
        let var = |name: &str| colour(css, &format!("var({name})"));
        let panel = var("--panel");
        // Where pills and chips sit: the panels, the page, and the tinted rows of the sites table.
        let backdrops = [
            ("panel", panel),
            ("page", var("--bg")),
            (
                "a site row with a warning",
                over(
                    colour(
                        css,
                        property(rule(css, "#sites tr.state-warning td"), "background"),
                    ),
                    panel,
                ),
            ),
            (
                "an offline site row",
                over(
                    colour(
                        css,
                        property(rule(css, "#sites tr.state-offline td"), "background"),
                    ),
                    panel,
                ),
            ),
        ];
        for selector in [
            ".pill.ok",
            ".pill.warning",
            ".pill.bad, .pill.offline",
            ".dev.up",
            ".dev.down",
        ] {
            let body = rule(css, selector);
            let text = colour(css, property(body, "color"));
            let tint = colour(css, property(body, "background"));
            for (name, backdrop) in backdrops {
                let ratio = contrast(text, over(tint, backdrop));
                assert!(ratio >= CONTRAST_MIN, "{selector} on {name}: {ratio:.2}:1");
            }
        }
        let flagged = over(
            colour(css, property(rule(css, "tr.flagged td"), "background")),
            panel,
        );
        let ratio = contrast(var("--text"), flagged);
        assert!(ratio >= CONTRAST_MIN, "a flagged store's row: {ratio:.2}:1");
        let ratio = contrast(var("--bad-text"), panel);
        assert!(ratio >= CONTRAST_MIN, "an error on a panel: {ratio:.2}:1");
    }
}
