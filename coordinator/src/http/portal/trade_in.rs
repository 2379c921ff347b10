//! The customer's trade-in on the portal: the merchant's products it buys back, the condition
//! the customer describes and the quote from its price table, kept under a number the
//! customer can quote; then sending the item against the quote (a return with its label and
//! QR code, through `app::trade_in_send`), and on the return's status page the offer after
//! inspection, with a form to accept or decline a counter-offer.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use modori_shared::domain::MerchantId;
use modori_shared::tradein::Condition;
use serde::Deserialize;

use super::render::{self, banner, head, japan_time, page_foot, Lang};
use super::{
    brand, csrf_checked, merchant_of, new_csrf_token, portal_page, with_csrf_cookie, LangQuery,
};
use crate::app::trade_in::{self, Offered};
use crate::app::{trade_in_offer, trade_in_send, AppError};
use crate::http::error::{ApiError, ApiPath};
use crate::http::page::html_escape;
use crate::http::receipt::yen;
use crate::merchants::MerchantEntry;
use crate::notify::{is_token_shaped, token_hash};
use crate::store::orders::Contact;
use crate::store::trade_in::Quote;
use crate::store::trade_in_returns::{Answered, Decision, Payout, TradeIn};

/// A unit sent back: when it left, and the carrier's number when the site gave one.
type ShipBack = (i64, Option<String>);
use crate::{store, Ctx};

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/r/{merchant}/trade-in", get(form_page).post(quote))
        .route("/r/{merchant}/trade-in/{quote_id}/send", post(send))
        .route("/r/{merchant}/s/{token}/trade-in", post(answer))
}

/// The ways a portal customer sends a trade-in: handed in at a counter, no pickup to book.
pub(super) const SEND_METHODS: [&str; 2] = ["konbini_dropoff", "store_dropoff"];

/// The conditions a customer chooses from, best first, with what each means.
fn conditions(lang: Lang) -> [(Condition, &'static str, &'static str); 5] {
    [
        (
            Condition::LikeNew,
            lang.pick("新品同様", "Like new"),
            lang.pick(
                "使用感がなく、付属品がそろっている",
                "No signs of use, everything included",
            ),
        ),
        (
            Condition::Good,
            lang.pick("良い", "Good"),
            lang.pick("小さな使用感がある", "Light signs of use"),
        ),
        (
            Condition::Fair,
            lang.pick("やや傷あり", "Fair"),
            lang.pick("目立つ傷や汚れがある", "Visible scratches or marks"),
        ),
        (
            Condition::Poor,
            lang.pick("傷が多い", "Poor"),
            lang.pick("大きな傷、へこみ、欠けがある", "Heavy wear, dents or chips"),
        ),
        (
            Condition::NotWorking,
            lang.pick("動作しない", "Not working"),
            lang.pick(
                "電源が入らない、正しく動かない",
                "Does not switch on or work properly",
            ),
        ),
    ]
}

fn form_html(
    brand: &MerchantEntry,
    lang: Lang,
    csrf: &str,
    offered: &[Offered],
    problem: Option<&str>,
) -> String {
    let path = format!("/r/{}/trade-in", brand.id);
    let title = lang.pick("買取のお見積もり", "Get a trade-in quote");
    let foot = page_foot(lang, Some(brand.id.as_str()));
    if offered.is_empty() {
        return format!(
            "{}{}<h1>{title}</h1><p id=\"no-trade-in\">{}</p>{foot}",
            head(lang, title),
            banner(brand, lang, &path),
            lang.pick(
                "現在、買取を受け付けている商品はありません。",
                "No product is bought back at the moment."
            ),
        );
    }
    let options: String = offered
        .iter()
        .map(|o| {
            let category = match lang {
                Lang::Ja => o.names.ja.as_deref(),
                Lang::En => o.names.en.as_deref(),
            }
            .unwrap_or(&o.category);
            format!(
                "<option value=\"{0}\">{0}（{1}）</option>",
                html_escape(&o.sku),
                html_escape(category)
            )
        })
        .collect();
    let radios: String = conditions(lang)
        .iter()
        .enumerate()
        .map(|(i, (c, name, means))| {
            format!(
                "<label class=\"choice\"><input type=\"radio\" name=\"condition\" value=\"{}\"{}> \
                 <strong>{}</strong> <span class=\"hint\">{}</span></label>",
                c.as_str(),
                if i == 1 { " checked" } else { "" },
                html_escape(name),
                html_escape(means)
            )
        })
        .collect();
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"problem\" role=\"alert\">{}</p>", html_escape(p))
    });
    format!(
        "{}{}<h1>{title}</h1><p>{}</p>{problem}\
         <form method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <label>{}<select name=\"sku\" id=\"sku\">{options}</select></label>\
         <fieldset><legend>{}</legend>{radios}</fieldset>\
         <button type=\"submit\" id=\"get-quote\">{}</button></form>{foot}",
        head(lang, title),
        banner(brand, lang, &path),
        lang.pick(
            "商品と状態を選ぶと、買取金額の見積もりをお知らせします。金額は届いた商品を検品して確定します。",
            "Choose the product and its condition to see what we would pay. The price is final once we have inspected the item.",
        ),
        html_escape(&path),
        html_escape(csrf),
        lang.code(),
        lang.pick("商品", "Product"),
        lang.pick("商品の状態", "Its condition"),
        lang.pick("見積もりを見る", "See the quote"),
    )
}

/// What the customer typed into the send form, shown again when something was wrong.
#[derive(Default)]
struct SendRefill {
    postal_code: String,
    email: String,
    method: String,
    payout: String,
}

fn condition_words(lang: Lang, c: Condition) -> &'static str {
    conditions(lang)
        .into_iter()
        .find(|(k, _, _)| *k == c)
        .map_or(c.as_str(), |(_, name, _)| name)
}

fn payout_words(lang: Lang, p: Payout) -> &'static str {
    match p {
        Payout::StoreCredit => lang.pick(
            "ストアクレジット（ボーナス付き）",
            "Store credit (with a bonus)",
        ),
        Payout::BankTransfer => lang.pick("銀行振込", "Bank transfer"),
    }
}

fn quote_html(
    brand: &MerchantEntry,
    lang: Lang,
    q: &Quote,
    csrf: &str,
    bonus_percent: u32,
    refill: &SendRefill,
    problem: Option<&str>,
) -> String {
    let path = format!("/r/{}/trade-in", brand.id);
    let title = lang.pick("買取のお見積もり", "Your trade-in quote");
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"problem\" role=\"alert\">{}</p>", html_escape(p))
    });
    let radio = |name: &str, value: &str, chosen: &str, first: bool, words: &str| {
        let checked = if chosen == value || (chosen.is_empty() && first) {
            " checked"
        } else {
            ""
        };
        format!(
            "<label class=\"choice\"><input type=\"radio\" name=\"{name}\" value=\"{value}\"{checked}> {}</label>",
            html_escape(words)
        )
    };
    let methods: String = SEND_METHODS
        .iter()
        .enumerate()
        .map(|(i, m)| {
            radio(
                "method",
                m,
                &refill.method,
                i == 0,
                render::method_words(m, lang),
            )
        })
        .collect();
    let credit = match lang {
        Lang::Ja => format!("ストアクレジット（{bonus_percent}% のボーナス付き）"),
        Lang::En => format!("Store credit (with a {bonus_percent}% bonus)"),
    };
    let payouts = format!(
        "{}{}",
        radio("payout", "store_credit", &refill.payout, true, &credit),
        radio(
            "payout",
            "bank_transfer",
            &refill.payout,
            false,
            payout_words(lang, Payout::BankTransfer)
        )
    );
    format!(
        "{}{}<h1>{title}</h1>\
         <p class=\"amount\" id=\"quote-yen\">{}</p>\
         <dl><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>\
         <dt>{}</dt><dd id=\"quote-id\">{}</dd><dt>{}</dt><dd>{}</dd></dl>\
         <p>{}</p>\
         <h2>{}</h2>{problem}\
         <form method=\"post\" action=\"{}/{}/send\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <label>{}<input name=\"postal_code\" id=\"postal-code\" autocomplete=\"postal-code\" inputmode=\"numeric\" required value=\"{}\"></label>\
         <label>{}<input type=\"email\" name=\"email\" id=\"email\" autocomplete=\"email\" required value=\"{}\"></label>\
         <fieldset><legend>{}</legend>{methods}</fieldset>\
         <fieldset><legend>{}</legend>{payouts}</fieldset>\
         <button type=\"submit\" id=\"send-item\">{}</button></form>\
         <p><a href=\"{}?lang={}\">{}</a></p>{}",
        head(lang, title),
        banner(brand, lang, &path),
        yen(q.quote_yen),
        lang.pick("商品", "Product"),
        html_escape(&q.sku),
        lang.pick("お申し出の状態", "Condition you described"),
        html_escape(condition_words(lang, q.condition)),
        lang.pick("見積もり番号", "Quote number"),
        html_escape(&q.quote_id),
        lang.pick("有効期限", "Valid until"),
        html_escape(&japan_time(q.expires_ms, lang)),
        lang.pick(
            "検品の結果がお申し出の状態と同じかそれより良ければ、この金額でお支払いします。状態が悪い場合は改めて金額をご提示し、ご了承いただけないときは商品を無料でお返しします。",
            "If inspection finds the item as described or better, we pay this amount. If it is worse, we offer a new price; if you decline it, we send the item back free of charge.",
        ),
        lang.pick("この見積もりで商品を送る", "Send the item at this quote"),
        html_escape(&path),
        html_escape(&q.quote_id),
        html_escape(csrf),
        lang.code(),
        lang.pick("郵便番号", "Postal code"),
        html_escape(&refill.postal_code),
        lang.pick("メールアドレス（検品結果をお知らせします）", "Email (we tell you the result of the inspection)"),
        html_escape(&refill.email),
        lang.pick("送り方", "How you send it"),
        lang.pick("お受け取り方法", "How you are paid"),
        lang.pick("送る手続きをする", "Send it"),
        html_escape(&path),
        lang.code(),
        lang.pick("別の商品を見積もる", "Quote another item"),
        page_foot(lang, Some(brand.id.as_str())),
    )
}

/// The page after sending: the return's number, how to send it, its label and QR code (both
/// under `status_path`), and the status page where the offer will be, in `lang`.
fn sent_html(
    brand: &MerchantEntry,
    lang: Lang,
    sent: &trade_in_send::Sent,
    method: &str,
    payout: Payout,
    status_path: &str,
) -> String {
    let path = format!("/r/{}/trade-in", brand.id);
    let status_url = format!("{status_path}?lang={}", lang.code());
    let title = lang.pick("商品の発送手続き", "Sending your item");
    format!(
        "{}{}<h1>{}</h1>\
         <dl><dt>{}</dt><dd class=\"rma\" id=\"rma\">{}</dd><dt>{}</dt><dd>{}</dd>\
         <dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>\
         <dt>{}</dt><dd><img class=\"qr\" src=\"{}/qr.svg\" width=\"240\" height=\"240\" alt=\"{}\"></dd></dl>\
         {}<p><a class=\"status\" id=\"status-link\" href=\"{}\">{}</a></p>{}",
        head(lang, title),
        banner(brand, lang, &path),
        lang.pick("発送の手続きが完了しました", "Your item is ready to send"),
        lang.pick("返品番号", "Return number"),
        html_escape(sent.rma.as_str()),
        lang.pick("見積もり番号", "Quote number"),
        html_escape(&sent.quote.quote_id),
        lang.pick("見積もり額", "Quote"),
        yen(sent.quote.quote_yen),
        lang.pick("お受け取り方法", "How you are paid"),
        html_escape(payout_words(lang, payout)),
        lang.pick("送り方", "How you send it"),
        html_escape(render::method_words(method, lang)),
        lang.pick("持ち込み用QRコード", "QR code for the drop-off"),
        html_escape(status_path),
        lang.pick(
            "店頭でこのQRコードをお見せください（ラベルの印刷は不要です）",
            "Show this QR code at the counter (no label to print)"
        ),
        render::label_links(status_path, lang),
        html_escape(&status_url),
        lang.pick(
            "検品結果と買取金額はこちらでご確認いただけます",
            "See the inspection and the offer here"
        ),
        page_foot(lang, Some(brand.id.as_str())),
    )
}

async fn form_page(
    State(ctx): State<Arc<Ctx>>,
    ApiPath(merchant): ApiPath<String>,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let lang = Lang::parse(q.lang.as_deref());
    let csrf = new_csrf_token()?;
    let offered = trade_in::offered(&ctx, merchant.as_str()).await?;
    let html = form_html(&brand(&ctx, &merchant).await?, lang, &csrf, &offered, None);
    Ok(with_csrf_cookie(portal_page(StatusCode::OK, html), &csrf))
}

#[derive(Deserialize)]
struct QuoteForm {
    csrf: String,
    lang: Option<String>,
    sku: String,
    condition: String,
}

async fn quote(
    State(ctx): State<Arc<Ctx>>,
    ApiPath(merchant): ApiPath<String>,
    headers: HeaderMap,
    Form(form): Form<QuoteForm>,
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
    // The quote checks what the page offered (a product of the catalogue the merchant buys
    // back, at a priced grade); the offer is read again only to show the form once more.
    let choose = lang.pick(
        "商品と状態を選んでください。",
        "Choose a product and its condition.",
    );
    let problem = match Condition::parse(&form.condition) {
        // A condition or a SKU the page did not list is a form from elsewhere.
        Err(_) => choose,
        Ok(condition) => match trade_in::quote(&ctx, merchant.as_str(), &form.sku, condition).await
        {
            Ok(q) => {
                tracing::info!(merchant = %merchant, quote_id = %q.quote_id, sku = %q.sku,
                               condition = %q.condition, quote_yen = q.quote_yen, "trade-in quoted on the portal");
                let bonus = ctx.config.policy.terms.store_credit_bonus_percent;
                let html = quote_html(&name, lang, &q, csrf, bonus, &SendRefill::default(), None);
                return Ok(with_csrf_cookie(portal_page(StatusCode::OK, html), csrf));
            }
            Err(AppError::Unknown { field, .. }) if field == "sku" => choose,
            Err(AppError::Unknown { .. }) => lang.pick(
                "この状態の商品は買取できません。",
                "We cannot buy this product in that condition.",
            ),
            Err(e) => return Err(e.into()),
        },
    };
    let offered = trade_in::offered(&ctx, merchant.as_str()).await?;
    let html = form_html(&name, lang, csrf, &offered, Some(problem));
    Ok(with_csrf_cookie(
        portal_page(StatusCode::UNPROCESSABLE_ENTITY, html),
        csrf,
    ))
}

#[derive(Deserialize)]
struct SendForm {
    csrf: String,
    lang: Option<String>,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    payout: String,
}

/// Sends the item against the quote: the return is registered (or found, when sent before)
/// and the page gives its label, its QR code and its status page.
async fn send(
    State(ctx): State<Arc<Ctx>>,
    ApiPath((merchant, quote_id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<SendForm>,
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
    let quote = match trade_in::get_quote(&ctx, merchant.as_str(), &quote_id).await {
        Ok(q) => q,
        Err(AppError::NotFound(_)) => {
            return Ok(portal_page(
                StatusCode::NOT_FOUND,
                render::unknown_link(lang),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let refill = SendRefill {
        postal_code: form
            .postal_code
            .trim()
            .chars()
            .take(super::TYPED_BYTES_MAX)
            .collect(),
        email: form
            .email
            .trim()
            .chars()
            .take(super::TYPED_BYTES_MAX)
            .collect(),
        method: form.method.clone(),
        payout: form.payout.clone(),
    };
    let again = |problem: &str| {
        let bonus = ctx.config.policy.terms.store_credit_bonus_percent;
        let html = quote_html(&name, lang, &quote, csrf, bonus, &refill, Some(problem));
        Ok(with_csrf_cookie(
            portal_page(StatusCode::UNPROCESSABLE_ENTITY, html),
            csrf,
        ))
    };
    let (Some(payout), true) = (
        Payout::parse(&form.payout),
        SEND_METHODS.contains(&form.method.as_str()),
    ) else {
        return again(lang.pick(
            "送り方とお受け取り方法を選んでください。",
            "Choose how you send it and how you are paid.",
        ));
    };
    if !crate::http::orders::valid_email(&refill.email) {
        return again(lang.pick(
            "メールアドレスを確認してください。",
            "Please check the email address.",
        ));
    }
    let sending = trade_in_send::Sending {
        postal_code: refill.postal_code.clone(),
        method: form.method.clone(),
        payout,
        contact: Some(Contact {
            email: refill.email.clone(),
            phone: String::new(),
            line_user_id: None,
            language: lang.code().to_owned(),
        }),
    };
    let sent =
        match trade_in_send::send(&ctx, &merchant, &quote_id, sending, ctx.clock.now_ms()).await {
            Ok(sent) => sent,
            Err(AppError::Invalid { field, .. } | AppError::Unknown { field, .. })
                if field == "postal_code" =>
            {
                return again(lang.pick(
                    "郵便番号を確認してください（例：530-0001）。",
                    "Please check the postal code (e.g. 530-0001).",
                ))
            }
            Err(AppError::Exists { .. }) => {
                let problem = lang.pick(
                    "このお見積もりは有効期限を過ぎています。もう一度お見積もりください。",
                    "This quote has expired. Please ask for a new one.",
                );
                let offered = trade_in::offered(&ctx, merchant.as_str()).await?;
                let html = form_html(&name, lang, csrf, &offered, Some(problem));
                return Ok(with_csrf_cookie(
                    portal_page(StatusCode::CONFLICT, html),
                    csrf,
                ));
            }
            Err(e) => return Err(e.into()),
        };
    let token = crate::app::portal::status_token(&ctx, sent.rma.as_str()).await?;
    let status_path = format!("/r/{merchant}/s/{token}");
    tracing::info!(merchant = %merchant, quote_id = %quote_id, rma = %sent.rma,
                   fresh = sent.fresh, "trade-in sent on the portal");
    let html = sent_html(&name, lang, &sent, &form.method, payout, &status_path);
    let code = if sent.fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(portal_page(code, html))
}

/// The trade-in part of a return's status page, when the return is a trade-in: the quote,
/// the offer once graded, and while a counter-offer is open, the form to answer it (with the
/// CSRF token its cookie must carry).
pub(super) async fn status_section(
    ctx: &Ctx,
    merchant: &MerchantId,
    rma: &str,
    lang: Lang,
    self_path: &str,
) -> Result<Option<(String, Option<String>)>, ApiError> {
    let Some(t) = trade_in_offer::of_return(ctx, rma).await? else {
        return Ok(None);
    };
    let q = trade_in::get_quote(ctx, merchant.as_str(), &t.quote_id).await?;
    let now_ms = ctx.clock.now_ms();
    let open = t.decision.is_none()
        && t.offer
            .is_some_and(|o| o.counter && o.deadline_ms.is_some_and(|d| now_ms <= d));
    let csrf = if open { Some(new_csrf_token()?) } else { None };
    let shipped = trade_in_offer::shipped_back(ctx, rma).await?;
    Ok(Some((
        section_html(lang, &t, &q, &shipped, self_path, csrf.as_deref()),
        csrf,
    )))
}

fn section_html(
    lang: Lang,
    t: &TradeIn,
    q: &Quote,
    shipped: &[ShipBack],
    self_path: &str,
    csrf: Option<&str>,
) -> String {
    let mut rows = format!(
        "<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>\
         <dt>{}</dt><dd id=\"trade-in-quote\">{}</dd><dt>{}</dt><dd>{}</dd>",
        lang.pick("見積もり番号", "Quote number"),
        html_escape(&q.quote_id),
        lang.pick("商品", "Product"),
        html_escape(&q.sku),
        lang.pick("お申し出の状態", "Condition you described"),
        html_escape(condition_words(lang, q.condition)),
        lang.pick("見積もり額", "Quote"),
        yen(q.quote_yen),
        lang.pick("お受け取り方法", "How you are paid"),
        html_escape(payout_words(lang, t.payout)),
    );
    if let Some(g) = t.graded {
        rows.push_str(&format!(
            "<dt>{}</dt><dd id=\"trade-in-grade\">{}</dd>",
            lang.pick("検品結果のグレード", "Grade found"),
            g.as_str()
        ));
    }
    if let Some(o) = t.offer {
        rows.push_str(&format!(
            "<dt>{}</dt><dd id=\"trade-in-offer\">{}</dd>",
            lang.pick("買取金額", "Our offer"),
            yen(o.amount_yen)
        ));
        if let (true, Some(d)) = (o.counter, o.deadline_ms) {
            rows.push_str(&format!(
                "<dt>{}</dt><dd>{}</dd>",
                lang.pick("回答期限", "Answer by"),
                html_escape(&japan_time(d, lang))
            ));
        }
    }
    if let Some(p) = t.payout_yen {
        rows.push_str(&format!(
            "<dt>{}</dt><dd id=\"trade-in-payout\">{}</dd>",
            lang.pick("お支払い額", "You are paid"),
            yen(p)
        ));
    }
    for (n, (_, tracking)) in shipped.iter().enumerate() {
        rows.push_str(&format!(
            "<dt>{}</dt><dd id=\"ship-back-tracking-{n}\">{}</dd>",
            lang.pick("返送の追跡番号", "Tracking number of the item sent back"),
            html_escape(
                tracking
                    .as_deref()
                    .unwrap_or(lang.pick("（なし）", "(none)"))
            )
        ));
    }
    let state = match (&t.offer, &t.decision) {
        (None, _) => lang.pick(
            "商品の到着と検品のあと、買取金額をお知らせします。",
            "We tell you our offer once the item has arrived and been inspected.",
        ),
        (Some(_), Some((Decision::Accepted, by, _))) if by == store::trade_in_returns::BY_AUTOMATIC => lang.pick(
            "お申し出のとおりの状態でしたので、お見積もりの金額で買取が成立しました。",
            "The item was as you described it: we buy it at the quoted price.",
        ),
        (Some(_), Some((Decision::Accepted, _, _))) => lang.pick(
            "ご提示した金額で買取が成立しました。",
            "The trade-in is agreed at the price offered.",
        ),
        (Some(_), Some((Decision::Declined, _, _))) if !shipped.is_empty() => lang.pick(
            "買取はお断りとして承りました。商品はお客様へ返送中です。",
            "The offer was declined: the item is on its way back to you.",
        ),
        (Some(_), Some((Decision::Declined, _, _))) => lang.pick(
            "買取はお断りとして承りました。商品はお客様へ返送されます。",
            "The offer was declined: the item is to be returned to you.",
        ),
        (Some(_), None) if csrf.is_some() => lang.pick(
            "検品の結果、お申し出の状態と異なっていたため、買取金額を改めてご提示します。期限までにご承諾かお断りをお選びください。お断りの場合は商品を無料でお返しします。",
            "Inspection found the item in a different condition than described, so we offer a new price. Please accept or decline it by the deadline; if you decline, we send the item back free of charge.",
        ),
        (Some(_), None) => lang.pick(
            "回答期限を過ぎました。まもなく結果をお知らせします。",
            "The deadline has passed; we will tell you the outcome shortly.",
        ),
    };
    let form = csrf.map_or_else(String::new, |csrf| {
        format!(
            "<form method=\"post\" action=\"{}/trade-in\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"lang\" value=\"{}\">\
             <button type=\"submit\" name=\"answer\" value=\"accept\" id=\"accept-offer\">{}</button>\
             <button type=\"submit\" name=\"answer\" value=\"decline\" id=\"decline-offer\" class=\"secondary\">{}</button>\
             </form>",
            html_escape(self_path),
            html_escape(csrf),
            lang.code(),
            lang.pick("この金額で承諾する", "Accept this offer"),
            lang.pick("お断りして商品を返送してもらう", "Decline and have the item sent back"),
        )
    });
    format!(
        "<section class=\"trade-in\" aria-labelledby=\"trade-in-title\">\
         <h2 id=\"trade-in-title\">{}</h2><dl>{rows}</dl>\
         <p id=\"trade-in-state\">{}</p>{form}</section>",
        lang.pick("買取", "Trade-in"),
        html_escape(state),
    )
}

#[derive(Deserialize)]
struct AnswerForm {
    csrf: String,
    lang: Option<String>,
    #[serde(default)]
    answer: String,
}

/// The customer's answer to a counter-offer, from the status page: recorded once, then the
/// status page again.
async fn answer(
    State(ctx): State<Arc<Ctx>>,
    ApiPath((merchant, token)): ApiPath<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<AnswerForm>,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let lang = Lang::parse(form.lang.as_deref());
    let not_found = || portal_page(StatusCode::NOT_FOUND, render::unknown_link(lang));
    if !is_token_shaped(&token) {
        return Ok(not_found());
    }
    let name = brand(&ctx, &merchant).await?;
    if csrf_checked(&headers, &form.csrf).is_none() {
        return Ok(portal_page(
            StatusCode::FORBIDDEN,
            render::stale_form(&name, lang),
        ));
    }
    let hash = token_hash(&token);
    let owner = ctx
        .db
        .call(move |c| store::notifications::token_return(c, &hash))
        .await?;
    let Some((rma, Some(owner))) = owner else {
        return Ok(not_found());
    };
    if owner != merchant.as_str() {
        return Ok(not_found());
    }
    let decision = match form.answer.as_str() {
        "accept" => Decision::Accepted,
        "decline" => Decision::Declined,
        _ => return Ok(not_found()),
    };
    let page_path = format!("/r/{merchant}/s/{token}");
    let status_path = format!("{page_path}?lang={}", lang.code());
    match trade_in_offer::answer(&ctx, &rma, decision, "customer").await? {
        Answered::Recorded { .. } | Answered::Already(_) => {}
        Answered::NotFound => return Ok(not_found()),
        Answered::Conflict(_) | Answered::NotOpen => {
            let html = format!(
                "{}{}<h1>{}</h1><p class=\"problem\" role=\"alert\">{}</p><p><a href=\"{}\">{}</a></p>{}",
                head(lang, lang.pick("買取", "Trade-in")),
                banner(&name, lang, &page_path),
                lang.pick("買取", "Trade-in"),
                lang.pick(
                    "このご提示にはもう回答できません（回答済みか、期限を過ぎています）。",
                    "This offer can no longer be answered: it was answered already, or its deadline passed.",
                ),
                html_escape(&status_path),
                lang.pick("状況を見る", "See where it stands"),
                page_foot(lang, Some(merchant.as_str())),
            );
            return Ok(portal_page(StatusCode::CONFLICT, html));
        }
    }
    let mut res = portal_page(StatusCode::SEE_OTHER, String::new());
    let location = HeaderValue::from_str(&status_path)
        .map_err(|e| ApiError::internal(&format!("status page path: {e}")))?;
    res.headers_mut().insert(header::LOCATION, location);
    Ok(res)
}
