//! The QR code a customer shows at a store instead of a printed label, and the counter's
//! side of it: the code carries the counter's URL of the return with its status token (256
//! random bits, no personal data); a store session that opens it sees the return, where it
//! goes and its barcode, to print on the counter's printer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Redirect;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Form;
use axum::Router;
use modori_shared::domain::RmaId;
use qrcode::render::svg;
use qrcode::QrCode;
use serde::Deserialize;

use super::{merchant_of, portal_page, render};
use crate::http::error::{ApiError, ApiPath};
use crate::http::i18n::{lang_of, texts, Lang};
use crate::http::page::html_escape;
use crate::http::session::{csrf_token, Browser};
use crate::notify::{is_token_shaped, token_hash};
use crate::store::{self, lifecycle};
use crate::Ctx;

/// Where the counter opens a return by the token its QR code carries.
pub const SCAN_PATH: &str = "/ui/store/scan";

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/r/{merchant}/s/{token}/qr.svg", get(qr_svg))
        .route("/ui/store/scan/{token}", get(scan))
        .route("/ui/store/scan/{token}/received", post(received))
}

/// The return a token opens, when it is of `merchant` (any merchant when none).
pub(super) async fn token_return(
    ctx: &Ctx,
    merchant: Option<String>,
    token: &str,
) -> Result<Option<lifecycle::Return>, ApiError> {
    if !is_token_shaped(token) {
        return Ok(None);
    }
    let hash = token_hash(token);
    Ok(ctx
        .db
        .call(move |c| -> Result<_, store::StoreError> {
            let Some((rma, owner)) = store::notifications::token_return(c, &hash)? else {
                return Ok(None);
            };
            if merchant.is_some() && owner != merchant {
                return Ok(None);
            }
            let Ok(rma) = RmaId::new(rma) else {
                return Ok(None);
            };
            lifecycle::get(c, &rma)
        })
        .await?)
}

/// The counter's URL of a token: under `http.ops_base_url` (where the counters reach the
/// ops listener) or `notifications.public_base_url` when set, else the host this page was
/// asked of.
fn scan_url(ctx: &Ctx, headers: &HeaderMap, token: &str) -> String {
    let configured = ctx
        .config
        .http
        .ops_base_url
        .as_deref()
        .or(ctx.config.notifications.base_url());
    let base = configured.map_or_else(
        || {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        },
        str::to_owned,
    );
    format!("{base}{SCAN_PATH}/{token}")
}

async fn qr_svg(
    State(ctx): State<Arc<Ctx>>,
    ApiPath((merchant, token)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    if token_return(&ctx, Some(merchant.to_string()), &token)
        .await?
        .is_none()
    {
        return Ok(portal_page(
            StatusCode::NOT_FOUND,
            render::unknown_link(render::Lang::Ja),
        ));
    }
    let code = QrCode::new(scan_url(&ctx, &headers, &token).as_bytes())
        .map_err(|e| ApiError::internal(&e))?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        image,
    )
        .into_response())
}

/// The counter opens a return from its QR code: what it is, where it goes, its barcode, in
/// the counter's language (`scan.*` in the i18n files).
async fn scan(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    browser.require_store()?;
    let lang = lang_of(&headers);
    let texts = texts(lang);
    let w = |key: &str| html_escape(texts.get(key).map_or(key, String::as_str));
    let ret = token_return(&ctx, None, &token)
        .await?
        .ok_or_else(|| ApiError::not_found("this code opens no return"))?;
    let site_name = match lang {
        Lang::Ja => ctx.fleet.names_ja.get(ret.site.as_str()).cloned(),
        Lang::En => None,
    }
    .or_else(|| {
        ctx.fleet
            .sites
            .iter()
            .find(|s| s.id.as_str() == ret.site)
            .map(|s| s.name.clone())
    })
    .unwrap_or_else(|| ret.site.clone());
    let barcode =
        modori_shared::label::svg::page_svg(&ret.rma, 90).map_err(|e| ApiError::internal(&e))?;
    let lines: String = ret
        .lines
        .iter()
        .map(|l| format!("<li>{} × {}</li>", html_escape(&l.sku), l.qty))
        .collect();
    let r = ret.rma.clone();
    let handed_in = ctx
        .db
        .call(move |c| store::dropoffs::dropped_off(c, &r))
        .await?;
    let receive = if handed_in {
        format!("<p id=\"received\">{}</p>", w("scan.handed_in"))
    } else {
        format!(
            "<form method=\"post\" action=\"{SCAN_PATH}/{}/received\" class=\"no-print\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" class=\"primary\" id=\"receive\">{}</button></form>",
            html_escape(&token),
            csrf_token(&browser.session_id),
            w("scan.hand_in")
        )
    };
    let e = |s: &str| html_escape(s);
    let status = texts
        .get(&format!("status.{}", ret.status))
        .map_or(ret.status.as_str(), String::as_str);
    let html = format!(
        r#"<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title} {rma}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/ui/assets/style.css"></head>
<body class="label-page">
<main class="label" id="label">
  <p class="label-to">{to}</p>
  <h1 id="label-site">{site_name}</h1>
  <p>{site_word} <strong>{site}</strong> · <span id="scan-status">{status}</span></p>
  <div class="barcode">{barcode}</div>
  <p class="label-rma" id="label-rma">{rma}</p>
  <ul id="scan-lines">{lines}</ul>
</main>
<footer class="no-print">{receive}
<p><a href="/store">{back}</a> · <a id="lang-switch" href="/ui/lang/{other}?next={here}" lang="{other}">{other_name}</a> · {print_hint}</p></footer>
</body></html>"#,
        lang = lang.code(),
        title = w("scan.title"),
        to = w("scan.to"),
        site_word = w("scan.site"),
        rma = e(&ret.rma),
        site_name = e(&site_name),
        site = e(&ret.site),
        status = e(status),
        back = w("scan.back"),
        other = lang.other().code(),
        here = e(&format!("{SCAN_PATH}/{token}")),
        other_name = w("common.other_lang_name"),
        print_hint = w("scan.print_hint"),
    );
    Ok(crate::http::page::page(html))
}

#[derive(Deserialize)]
struct ReceivedForm {
    csrf: String,
}

/// The counter took the parcel a QR code opened: recorded once on the return's timeline,
/// which tells the customer; back to the return's page.
async fn received(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    ApiPath(token): ApiPath<String>,
    Form(form): Form<ReceivedForm>,
) -> Result<Response, ApiError> {
    let store_id = browser.require_store()?;
    let expected = csrf_token(&browser.session_id);
    let same = expected.len() == form.csrf.len()
        && expected
            .bytes()
            .zip(form.csrf.bytes())
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0;
    if !same {
        return Err(ApiError::forbidden(
            "this form did not come from a page of this session: reload the page and try again",
        ));
    }
    let ret = token_return(&ctx, None, &token)
        .await?
        .ok_or_else(|| ApiError::not_found("this code opens no return"))?;
    let (rma, at, now_ms) = (ret.rma.clone(), store_id.to_string(), ctx.clock.now_ms());
    let recorded = ctx
        .db
        .call(move |c| store::dropoffs::record(c, &rma, &at, now_ms))
        .await?;
    if recorded {
        tracing::info!(rma = %ret.rma, store = %store_id, "counter: a parcel handed in against its QR code");
        ctx.webhooks_wake();
    }
    Ok(Redirect::to(&format!("{SCAN_PATH}/{token}")).into_response())
}
