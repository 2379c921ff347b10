//! The customer's repair on the portal: the merchant's products it repairs, the fault (one
//! of a fixed list, and the customer's own words), and how the item is sent; the request
//! becomes a return of kind repair (through `app::repair`) with its label and QR code, and
//! on the return's status page the repair's fault and, once inspected, its quote.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use modori_shared::domain::{MerchantId, Sku};
use modori_shared::repair::{Fault, FAULT_TEXT_CHARS_MAX};
use serde::Deserialize;

use super::render::{self, banner, head, japan_time, page_foot, Lang};
use super::trade_in::SEND_METHODS;
use super::{
    brand, csrf_checked, merchant_of, new_csrf_token, portal_page, with_csrf_cookie, LangQuery,
};
use crate::app::repair::{self, Asked};
use crate::app::repair_answer;
use crate::app::trade_in::Offered;
use crate::app::AppError;
use crate::http::error::{ApiError, ApiPath};
use crate::http::page::html_escape;
use crate::http::receipt::yen;
use crate::merchants::MerchantEntry;
use crate::notify::{is_token_shaped, token_hash};
use crate::store::orders::Contact;
use crate::store::repairs::{Answered, Decision, Repair};
use crate::{store, Ctx};

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/r/{merchant}/repair", get(form_page).post(request))
        .route("/r/{merchant}/s/{token}/repair", post(answer))
}

/// The fault's words for the customer.
fn fault_words(lang: Lang, f: Fault) -> &'static str {
    match f {
        Fault::NoPower => lang.pick("電源が入らない", "Does not switch on"),
        Fault::Screen => lang.pick("画面の割れ・表示の不具合", "Cracked or faulty screen"),
        Fault::Battery => lang.pick(
            "バッテリーの減りが早い・充電できない",
            "Battery drains or will not charge",
        ),
        Fault::ButtonsOrPorts => lang.pick("ボタン・端子の不具合", "Buttons or ports do not work"),
        Fault::WaterDamage => lang.pick("水濡れ", "Water damage"),
        Fault::Noise => lang.pick("異音がする", "Makes a strange noise"),
        Fault::Other => lang.pick("その他", "Something else"),
    }
}

/// What the customer typed, shown again when something was wrong.
#[derive(Default)]
struct Refill {
    sku: String,
    fault: String,
    fault_text: String,
    postal_code: String,
    email: String,
    method: String,
}

fn form_html(
    brand: &MerchantEntry,
    lang: Lang,
    csrf: &str,
    offered: &[Offered],
    refill: &Refill,
    problem: Option<&str>,
) -> String {
    let path = format!("/r/{}/repair", brand.id);
    let title = lang.pick("修理のお申し込み", "Ask for a repair");
    let foot = page_foot(lang, Some(brand.id.as_str()));
    if offered.is_empty() {
        return format!(
            "{}{}<h1>{title}</h1><p id=\"no-repair\">{}</p>{foot}",
            head(lang, title),
            banner(brand, lang, &path),
            lang.pick(
                "現在、修理を受け付けている商品はありません。",
                "No product is repaired at the moment."
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
            let selected = if o.sku == refill.sku { " selected" } else { "" };
            format!(
                "<option value=\"{0}\"{selected}>{0}（{1}）</option>",
                html_escape(&o.sku),
                html_escape(category)
            )
        })
        .collect();
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
    let faults: String = Fault::ALL
        .iter()
        .enumerate()
        .map(|(i, f)| {
            radio(
                "fault",
                f.as_str(),
                &refill.fault,
                i == 0,
                fault_words(lang, *f),
            )
        })
        .collect();
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
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"problem\" role=\"alert\">{}</p>", html_escape(p))
    });
    format!(
        "{}{}<h1>{title}</h1><p>{}</p>{problem}\
         <form method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <label>{}<select name=\"sku\" id=\"sku\">{options}</select></label>\
         <fieldset><legend>{}</legend>{faults}</fieldset>\
         <label>{}<textarea name=\"fault_text\" id=\"fault-text\" rows=\"4\" maxlength=\"{FAULT_TEXT_CHARS_MAX}\">{}</textarea></label>\
         <label>{}<input name=\"postal_code\" id=\"postal-code\" autocomplete=\"postal-code\" inputmode=\"numeric\" required value=\"{}\"></label>\
         <label>{}<input type=\"email\" name=\"email\" id=\"email\" autocomplete=\"email\" required value=\"{}\"></label>\
         <fieldset><legend>{}</legend>{methods}</fieldset>\
         <button type=\"submit\" id=\"ask-repair\">{}</button></form>{foot}",
        head(lang, title),
        banner(brand, lang, &path),
        lang.pick(
            "商品と症状を選んでお送りください。届いた商品を検品し、部品代と作業代の見積もりをお知らせします。修理するかどうかは見積もりを見てからお決めいただけます。",
            "Choose the product and what is wrong, and send it to us. We inspect it and tell you what parts and labour would cost; you decide whether to have it repaired once you have seen the quote.",
        ),
        html_escape(&path),
        html_escape(csrf),
        lang.code(),
        lang.pick("商品", "Product"),
        lang.pick("症状", "What is wrong"),
        lang.pick("詳しい症状（任意）", "Tell us more (optional)"),
        html_escape(&refill.fault_text),
        lang.pick("郵便番号", "Postal code"),
        html_escape(&refill.postal_code),
        lang.pick("メールアドレス（見積もりをお知らせします）", "Email (we send you the quote)"),
        html_escape(&refill.email),
        lang.pick("送り方", "How you send it"),
        lang.pick("修理を申し込む", "Ask for the repair"),
    )
}

/// The page after the request: the return's number, how to send it, its label and QR code
/// (both under `status_path`), and the status page where the quote will be.
fn requested_html(
    brand: &MerchantEntry,
    lang: Lang,
    rma: &str,
    fault: Fault,
    method: &str,
    status_path: &str,
) -> String {
    let path = format!("/r/{}/repair", brand.id);
    let status_url = format!("{status_path}?lang={}", lang.code());
    let title = lang.pick("修理のお申し込み", "Your repair");
    format!(
        "{}{}<h1>{}</h1>\
         <dl><dt>{}</dt><dd class=\"rma\" id=\"rma\">{}</dd><dt>{}</dt><dd>{}</dd>\
         <dt>{}</dt><dd>{}</dd>\
         <dt>{}</dt><dd><img class=\"qr\" src=\"{}/qr.svg\" width=\"240\" height=\"240\" alt=\"{}\"></dd></dl>\
         {}<p><a class=\"status\" id=\"status-link\" href=\"{}\">{}</a></p>{}",
        head(lang, title),
        banner(brand, lang, &path),
        lang.pick("修理のお申し込みを受け付けました", "Your repair is booked"),
        lang.pick("受付番号", "Repair number"),
        html_escape(rma),
        lang.pick("症状", "What is wrong"),
        html_escape(fault_words(lang, fault)),
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
            "検品結果と修理の見積もりはこちらでご確認いただけます",
            "See the inspection and the quote here"
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
    let offered = repair::offered(&ctx, merchant.as_str()).await?;
    let name = brand(&ctx, &merchant).await?;
    let html = form_html(&name, lang, &csrf, &offered, &Refill::default(), None);
    Ok(with_csrf_cookie(portal_page(StatusCode::OK, html), &csrf))
}

#[derive(Deserialize)]
struct RequestForm {
    csrf: String,
    lang: Option<String>,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    fault: String,
    #[serde(default)]
    fault_text: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    method: String,
}

fn typed(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}

async fn request(
    State(ctx): State<Arc<Ctx>>,
    ApiPath(merchant): ApiPath<String>,
    headers: HeaderMap,
    Form(form): Form<RequestForm>,
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
    let refill = Refill {
        sku: typed(&form.sku, super::TYPED_BYTES_MAX),
        fault: typed(&form.fault, super::TYPED_BYTES_MAX),
        fault_text: typed(&form.fault_text, FAULT_TEXT_CHARS_MAX),
        postal_code: typed(&form.postal_code, super::TYPED_BYTES_MAX),
        email: typed(&form.email, super::TYPED_BYTES_MAX),
        method: typed(&form.method, super::TYPED_BYTES_MAX),
    };
    let again = |problem: &str, offered: &[Offered]| {
        let html = form_html(&name, lang, csrf, offered, &refill, Some(problem));
        with_csrf_cookie(portal_page(StatusCode::UNPROCESSABLE_ENTITY, html), csrf)
    };
    let offered = repair::offered(&ctx, merchant.as_str()).await?;
    let choose = lang.pick(
        "商品と症状を選んでください。",
        "Choose a product and what is wrong with it.",
    );
    // A SKU, fault or method the page did not list is a form from elsewhere.
    let (Ok(sku), Ok(fault), true) = (
        Sku::new(refill.sku.clone()),
        Fault::parse(&refill.fault),
        SEND_METHODS.contains(&refill.method.as_str()),
    ) else {
        return Ok(again(choose, &offered));
    };
    if !crate::http::orders::valid_email(&refill.email) {
        return Ok(again(
            lang.pick(
                "メールアドレスを確認してください。",
                "Please check the email address.",
            ),
            &offered,
        ));
    }
    let asked = Asked {
        sku,
        fault,
        fault_text: refill.fault_text.clone(),
        postal_code: refill.postal_code.clone(),
        method: refill.method.clone(),
        contact: Some(Contact {
            email: refill.email.clone(),
            phone: String::new(),
            line_user_id: None,
            language: lang.code().to_owned(),
        }),
    };
    let requested = match repair::request(&ctx, &merchant, asked, ctx.clock.now_ms()).await {
        Ok(r) => r,
        Err(AppError::Invalid { field, .. } | AppError::Unknown { field, .. })
            if field == "postal_code" =>
        {
            return Ok(again(
                lang.pick(
                    "郵便番号を確認してください（例：530-0001）。",
                    "Please check the postal code (e.g. 530-0001).",
                ),
                &offered,
            ))
        }
        Err(AppError::Unknown { .. } | AppError::Invalid { .. }) => {
            return Ok(again(choose, &offered))
        }
        Err(e) => return Err(e.into()),
    };
    let token = crate::app::portal::status_token(&ctx, requested.rma.as_str()).await?;
    let status_path = format!("/r/{merchant}/s/{token}");
    tracing::info!(merchant = %merchant, rma = %requested.rma, "repair requested on the portal");
    let html = requested_html(
        &name,
        lang,
        requested.rma.as_str(),
        fault,
        &refill.method,
        &status_path,
    );
    Ok(portal_page(StatusCode::CREATED, html))
}

/// The repair part of a return's status page, when the return is a repair: the fault, once
/// inspected the defects found and the quote, and while it is open, the form to answer it
/// (with the CSRF token its cookie must carry).
pub(super) async fn status_section(
    ctx: &Ctx,
    merchant: &MerchantId,
    rma: &str,
    lang: Lang,
    self_path: &str,
) -> Result<Option<(String, Option<String>)>, ApiError> {
    let Some(r) = repair::of_return(ctx, rma).await? else {
        return Ok(None);
    };
    if r.request.merchant != merchant.as_str() {
        return Ok(None);
    }
    let now_ms = ctx.clock.now_ms();
    let open = r.decision.is_none() && r.quote.as_ref().is_some_and(|q| now_ms <= q.deadline_ms);
    let csrf = if open { Some(new_csrf_token()?) } else { None };
    let shipped = crate::app::trade_in_offer::shipped_back(ctx, rma).await?;
    Ok(Some((
        section_html(lang, &r, &shipped, self_path, csrf.as_deref()),
        csrf,
    )))
}

fn section_html(
    lang: Lang,
    r: &Repair,
    shipped: &[(i64, Option<String>)],
    self_path: &str,
    csrf: Option<&str>,
) -> String {
    let mut rows = format!(
        "<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd id=\"repair-fault\">{}</dd>",
        lang.pick("商品", "Product"),
        html_escape(&r.request.sku),
        lang.pick("症状", "What is wrong"),
        html_escape(fault_words(lang, r.request.fault)),
    );
    if !r.request.fault_text.is_empty() {
        rows.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>",
            lang.pick("お申し出の内容", "In your words"),
            html_escape(&r.request.fault_text)
        ));
    }
    let mut lines = String::new();
    if let Some(q) = &r.quote {
        for l in &q.lines {
            lines.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
                html_escape(defect_words(lang, l.defect)),
                yen(l.parts_yen),
                yen(l.labour_yen)
            ));
        }
        rows.push_str(&format!(
            "<dt>{}</dt><dd id=\"repair-quote\">{}</dd><dt>{}</dt><dd>{}</dd>",
            lang.pick("修理の見積もり額", "Repair quote"),
            yen(q.total_yen),
            lang.pick("回答期限", "Answer by"),
            html_escape(&japan_time(q.deadline_ms, lang)),
        ));
    }
    let table = if lines.is_empty() {
        String::new()
    } else {
        format!(
            "<table class=\"repair-lines\"><caption>{}</caption><thead><tr><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>{lines}</tbody></table>",
            lang.pick("見積もりの内訳", "What the quote is made of"),
            lang.pick("検品で見つかった不具合", "Found at inspection"),
            lang.pick("部品代", "Parts"),
            lang.pick("作業代", "Labour"),
        )
    };
    if let Some(c) = r.charge_yen {
        rows.push_str(&format!(
            "<dt>{}</dt><dd id=\"repair-charge\">{}</dd>",
            lang.pick("修理代", "Repair charge"),
            yen(c)
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
    let state = match (&r.quote, r.defects.is_some()) {
        _ if r.decision.is_some() => match &r.decision {
            Some((Decision::Declined, _, _)) if !shipped.is_empty() => lang.pick(
                "修理はお断りとして承りました。商品は修理せずにそのまま、お客様へ返送中です。",
                "The repair was declined: the item is on its way back to you as it is.",
            ),
            Some((Decision::Accepted, _, _)) => lang.pick(
                "修理を承りました。修理が終わりしだい商品をお返しします。",
                "Your repair is agreed: we send the item back once it is repaired.",
            ),
            _ => lang.pick(
                "修理はお断りとして承りました。商品は修理せずにそのままお返しします。",
                "The repair was declined: the item is to be returned to you as it is.",
            ),
        },
        (Some(_), _) if csrf.is_none() => lang.pick(
            "回答期限を過ぎました。まもなく結果をお知らせします。",
            "The deadline has passed; we will tell you the outcome shortly.",
        ),
        (Some(q), _) if q.lines.is_empty() => lang.pick(
            "検品では不具合が見つかりませんでした。",
            "Inspection found nothing wrong with the item.",
        ),
        (Some(_), _) => lang.pick(
            "検品の結果をもとに修理の見積もりをお知らせします。",
            "Here is what the repair would cost, from the inspection.",
        ),
        (None, true) => lang.pick(
            "検品が終わりました。見積もりをまもなくお知らせします。",
            "The item has been inspected; we will send the quote shortly.",
        ),
        (None, false) => lang.pick(
            "商品の到着と検品のあと、修理の見積もりをお知らせします。",
            "We send you the quote once the item has arrived and been inspected.",
        ),
    };
    let form = csrf.map_or_else(String::new, |csrf| {
        format!(
            "<form method=\"post\" action=\"{}/repair\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"lang\" value=\"{}\">\
             <button type=\"submit\" name=\"answer\" value=\"accept\" id=\"accept-repair\">{}</button>\
             <button type=\"submit\" name=\"answer\" value=\"decline\" id=\"decline-repair\" class=\"secondary\">{}</button>\
             </form>",
            html_escape(self_path),
            html_escape(csrf),
            lang.code(),
            lang.pick("この見積もりで修理する", "Repair it at this quote"),
            lang.pick("修理せずに返送してもらう", "Decline and have it sent back as it is"),
        )
    });
    format!(
        "<section class=\"repair\" aria-labelledby=\"repair-title\">\
         <h2 id=\"repair-title\">{}</h2><dl>{rows}</dl>{table}\
         <p id=\"repair-state\">{}</p>{form}</section>",
        lang.pick("修理", "Repair"),
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

/// The customer's answer to a repair's quote, from the status page: recorded once, then the
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
    match repair_answer::answer(&ctx, &rma, decision, "customer").await? {
        Answered::Recorded(_) | Answered::Already(_) => {}
        Answered::NotFound => return Ok(not_found()),
        Answered::Conflict(_) | Answered::NotOpen => {
            let title = lang.pick("修理", "Repair");
            let html = format!(
                "{}{}<h1>{title}</h1><p class=\"problem\" role=\"alert\">{}</p><p><a href=\"{}\">{}</a></p>{}",
                head(lang, title),
                banner(&name, lang, &page_path),
                lang.pick(
                    "この見積もりにはもう回答できません（回答済みか、期限を過ぎています）。",
                    "This quote can no longer be answered: it was answered already, or its deadline passed.",
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

/// A defect code in the customer's words.
fn defect_words(lang: Lang, d: modori_shared::domain::DefectCode) -> &'static str {
    use modori_shared::domain::DefectCode as D;
    match d {
        D::Stain => lang.pick("汚れ", "Stain"),
        D::Tear => lang.pick("破れ", "Tear"),
        D::Scratch => lang.pick("傷", "Scratch"),
        D::Dent => lang.pick("へこみ", "Dent"),
        D::MissingPart => lang.pick("部品の欠品", "Missing part"),
        D::MissingTags => lang.pick("タグの欠品", "Missing tags"),
        D::NotWorking => lang.pick("動作不良", "Not working"),
        D::Odor => lang.pick("におい", "Odour"),
        D::PackagingDamaged => lang.pick("箱の傷み", "Damaged packaging"),
    }
}
