//! The customer's trade-in quote on the portal: the merchant's products it buys back, the
//! condition the customer describes, and the quote from its price table, kept under a number
//! the customer can quote. What follows (sending the item, the offer after inspection) is
//! the API's for now.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use modori_shared::tradein::Condition;
use serde::Deserialize;

use super::render::{self, banner, head, japan_time, page_foot, Lang};
use super::{
    brand, csrf_checked, merchant_of, new_csrf_token, portal_page, with_csrf_cookie, LangQuery,
};
use crate::app::trade_in::{self, Offered};
use crate::app::AppError;
use crate::http::error::{ApiError, ApiPath};
use crate::http::page::html_escape;
use crate::http::receipt::yen;
use crate::merchants::MerchantEntry;
use crate::Ctx;

pub fn router() -> Router<Arc<Ctx>> {
    Router::new().route("/r/{merchant}/trade-in", get(form_page).post(quote))
}

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

fn quote_html(brand: &MerchantEntry, lang: Lang, q: &crate::store::trade_in::Quote) -> String {
    let path = format!("/r/{}/trade-in", brand.id);
    let title = lang.pick("買取のお見積もり", "Your trade-in quote");
    let condition = conditions(lang)
        .into_iter()
        .find(|(c, _, _)| *c == q.condition)
        .map_or(q.condition.as_str(), |(_, name, _)| name);
    format!(
        "{}{}<h1>{title}</h1>\
         <p class=\"amount\" id=\"quote-yen\">{}</p>\
         <dl><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>\
         <dt>{}</dt><dd id=\"quote-id\">{}</dd><dt>{}</dt><dd>{}</dd></dl>\
         <p>{}</p><p><a href=\"{}?lang={}\">{}</a></p>{}",
        head(lang, title),
        banner(brand, lang, &path),
        yen(q.quote_yen),
        lang.pick("商品", "Product"),
        html_escape(&q.sku),
        lang.pick("お申し出の状態", "Condition you described"),
        html_escape(condition),
        lang.pick("見積もり番号", "Quote number"),
        html_escape(&q.quote_id),
        lang.pick("有効期限", "Valid until"),
        html_escape(&japan_time(q.expires_ms, lang)),
        lang.pick(
            "検品の結果がお申し出の状態と同じかそれより良ければ、この金額でお支払いします。状態が悪い場合は改めて金額をご提示し、ご了承いただけないときは商品を無料でお返しします。",
            "If inspection finds the item as described or better, we pay this amount. If it is worse, we offer a new price; if you decline it, we send the item back free of charge.",
        ),
        html_escape(&path),
        lang.code(),
        lang.pick("別の商品を見積もる", "Quote another item"),
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
                return Ok(portal_page(StatusCode::OK, quote_html(&name, lang, &q)));
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
