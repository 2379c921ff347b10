//! The customer's receipt of a return taken at a store's counter, printed on the counter's
//! printer: the RMA, the items and why, what the customer chose and its fee, the store, the
//! date in Japan time, and a QR code of the return's status page (the portal's
//! `/r/{merchant}/s/{token}`, a fresh token stored by its hash like every other). In the
//! customer's words, Japanese unless `?lang=en`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use modori_shared::domain::ReasonCode;
use qrcode::render::svg;
use qrcode::QrCode;
use serde::Deserialize;

use super::counter::labelled;
use super::error::{ApiError, ApiPath};
use super::page::html_escape;
use super::portal::render::{japan_time, outcome_words, reason_words, Lang};
use super::session::Browser;
use crate::policy::Resolution;
use crate::store::{self, lifecycle, StoreError};
use crate::Ctx;

/// The QR code's side on the page, in CSS pixels: about 25 mm printed, which phone cameras
/// read from a hand's length.
pub const QR_SIDE_PX: u32 = 200;

#[derive(Deserialize)]
pub struct ReceiptQuery {
    lang: Option<String>,
}

/// The public base the status page is reached at: `notifications.public_base_url`, else the
/// host this page was asked of (a coordinator on a shop's network, tried locally).
fn public_base(ctx: &Ctx, headers: &HeaderMap) -> String {
    ctx.config.notifications.base_url().map_or_else(
        || {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        },
        str::to_owned,
    )
}

/// `¥12,345`.
pub(crate) fn yen(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    out.push('¥');
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// The customer's choice as stored with the return's terms.
fn resolution_of(terms: &serde_json::Value) -> Resolution {
    match terms["resolution"].as_str() {
        Some("exchange") => Resolution::Exchange {
            sku: terms["exchange_sku"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        },
        Some("store_credit") => Resolution::StoreCredit,
        _ => Resolution::Refund,
    }
}

fn words(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

/// The customer's receipt, printed at the store counter.
pub fn router() -> axum::Router<Arc<Ctx>> {
    axum::Router::new().route("/ui/store/receipts/{rma}", axum::routing::get(receipt_page))
}

async fn receipt_page(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    headers: HeaderMap,
    Query(query): Query<ReceiptQuery>,
    ApiPath(rma): ApiPath<String>,
) -> Result<Response, ApiError> {
    let lang = Lang::parse(query.lang.as_deref());
    let (rma, _site, _site_name, store_name) = labelled(&ctx, &browser, rma).await?;
    let (token, hash) = crate::notify::mint_token().map_err(|e| ApiError::internal(&e))?;
    let now_ms = ctx.clock.now_ms();
    let r = rma.clone();
    let (ret, decisions) = ctx
        .db
        .call(move |c| {
            store::notifications::put_token(c, r.as_str(), &hash, now_ms)?;
            Ok::<_, StoreError>((lifecycle::get(c, &r)?, store::commerce::decisions(c, &r)?))
        })
        .await?;
    let ret = ret.ok_or_else(|| ApiError::not_found(format!("no return {rma}")))?;
    let merchant = ret
        .owner
        .merchant
        .clone()
        .ok_or_else(|| ApiError::not_found(format!("return {rma} has no merchant")))?;
    let status_url = format!("{}/r/{merchant}/s/{token}", public_base(&ctx, &headers));
    let qr = QrCode::new(status_url.as_bytes()).map_err(|e| ApiError::internal(&e))?;
    let qr_svg = qr
        .render::<svg::Color<'_>>()
        .min_dimensions(QR_SIDE_PX, QR_SIDE_PX)
        .build();
    // Inline in HTML, the XML declaration has no place.
    let qr_svg = qr_svg
        .find("<svg")
        .map_or(qr_svg.as_str(), |i| &qr_svg[i..])
        .to_owned();
    let terms = decisions.terms.unwrap_or_default();
    let resolution = resolution_of(&terms);
    let fee_yen = terms["fee_yen"].as_u64().unwrap_or(0);
    let bonus_yen = terms["policy"]["store_credit_bonus_yen"]
        .as_u64()
        .filter(|_| resolution == Resolution::StoreCredit)
        .unwrap_or(0);
    let e = |s: &str| html_escape(s);
    let items: String = ret
        .lines
        .iter()
        .map(|l| {
            let reason = l
                .reason
                .as_deref()
                .and_then(|r| ReasonCode::parse(r).ok())
                .map_or("", |r| reason_words(r, lang));
            format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                e(&l.sku),
                l.qty,
                e(reason)
            )
        })
        .collect();
    let mut money = String::new();
    money.push_str(&format!(
        "<dt>{}</dt><dd id=\"receipt-fee\">{}</dd>",
        words(lang, "手数料", "Fee"),
        yen(fee_yen)
    ));
    if bonus_yen > 0 {
        money.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>",
            words(lang, "ストアクレジットのボーナス", "Store credit bonus"),
            yen(bonus_yen)
        ));
    }
    let (other_lang, other_label) = match lang {
        Lang::Ja => ("en", "English"),
        Lang::En => ("ja", "日本語"),
    };
    let html = format!(
        r#"<!doctype html>
<html lang="{lang_code}"><head><meta charset="utf-8"><title>{title} {rma}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/ui/assets/style.css"></head>
<body class="receipt-page">
<main class="receipt" id="receipt">
  <h1>{title}</h1>
  <p class="receipt-store" id="receipt-store">{store_name}</p>
  <dl>
    <dt>{rma_label}</dt><dd class="receipt-rma" id="receipt-rma">{rma}</dd>
    <dt>{date_label}</dt><dd id="receipt-date">{date}</dd>
    <dt>{outcome_label}</dt><dd id="receipt-outcome">{outcome}</dd>
    {money}
  </dl>
  <table class="receipt-items">
    <caption>{items_label}</caption>
    <thead><tr><th scope="col">{sku_label}</th><th scope="col" class="num">{qty_label}</th><th scope="col">{reason_label}</th></tr></thead>
    <tbody>{items}</tbody>
  </table>
  <figure class="receipt-qr">
    <div class="qr" id="receipt-qr" role="img" aria-label="{qr_alt}">{qr_svg}</div>
    <figcaption>{qr_caption}</figcaption>
  </figure>
</main>
<footer class="no-print"><a href="/store">{back}</a> · <a href="?lang={other_lang}" lang="{other_lang}">{other_label}</a> · {print_hint}</footer>
</body></html>"#,
        lang_code = match lang {
            Lang::Ja => "ja",
            Lang::En => "en",
        },
        title = words(lang, "返品受付票", "Return receipt"),
        rma = e(rma.as_str()),
        store_name = e(&store_name),
        rma_label = words(lang, "返品番号", "Return number"),
        date_label = words(lang, "受付日時", "Received at the store"),
        date = e(&japan_time(ret.created_ms, lang)),
        outcome_label = words(lang, "ご希望", "Your choice"),
        outcome = e(&outcome_words(&resolution, lang)),
        items_label = words(lang, "返品する商品", "Items returned"),
        sku_label = words(lang, "商品番号", "Item"),
        qty_label = words(lang, "数量", "Quantity"),
        reason_label = words(lang, "理由", "Reason"),
        qr_alt = words(
            lang,
            "返品状況ページのQRコード",
            "QR code of the return's status page"
        ),
        qr_caption = words(
            lang,
            "返品の状況はこのQRコードからご確認いただけます。",
            "Scan to follow your return."
        ),
        back = words(lang, "受付画面に戻る", "Back to the counter"),
        print_hint = words(
            lang,
            "ブラウザの印刷で印刷してください",
            "use your browser's Print"
        ),
    );
    Ok(super::page::page(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yen_is_grouped_by_thousands() {
        assert_eq!(yen(0), "¥0");
        assert_eq!(yen(300), "¥300");
        assert_eq!(yen(2900), "¥2,900");
        assert_eq!(yen(1_234_567), "¥1,234,567");
    }
}
