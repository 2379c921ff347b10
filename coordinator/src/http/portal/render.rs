//! The portal's pages as HTML, in the customer's language: every word a customer reads is
//! here, in Japanese and in English, with no internal code shown.

use chrono::{DateTime, FixedOffset};
use modori_shared::domain::MerchantId;

use crate::http::counter::html_escape;
use crate::store::orders::{LineFacts, Order};

const DAY_MS: i64 = 86_400_000;
/// Japan's offset from UTC, in seconds (no daylight saving time).
const JST_OFFSET_S: i32 = 9 * 3600;

/// The language of a page: Japanese first, English when asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("en") => Self::En,
            _ => Self::Ja,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    fn pick(self, ja: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::Ja => ja,
            Self::En => en,
        }
    }
}

/// Why the lookup form is shown again.
#[derive(Clone, Copy, Debug)]
pub enum Problem {
    Missing,
    NotFound,
    LockedOut { until_ms: i64 },
}

fn head(lang: Lang, title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/r/assets/portal.css\"></head><body>",
        lang.code(),
        html_escape(title)
    )
}

/// The header of every page: the merchant's name and the language switch.
fn banner(name: &str, lang: Lang, switch_href: &str) -> String {
    let (label, other) = match lang {
        Lang::Ja => ("English", "en"),
        Lang::En => ("日本語", "ja"),
    };
    format!(
        "<header><span class=\"shop\">{}</span>\
         <a class=\"lang\" href=\"{}?lang={other}\" lang=\"{other}\">{label}</a></header><main>",
        html_escape(name),
        html_escape(switch_href)
    )
}

/// A time in Japan, as customers read it (`2026年12月5日 15:04` / `5 Dec 2026 15:04`).
pub fn japan_time(ms: i64, lang: Lang) -> String {
    let Some(utc) = DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    let Some(jst) = FixedOffset::east_opt(JST_OFFSET_S) else {
        return String::new();
    };
    let t = utc.with_timezone(&jst);
    match lang {
        Lang::Ja => t.format("%Y年%-m月%-d日 %H:%M").to_string(),
        Lang::En => t.format("%-d %b %Y %H:%M JST").to_string(),
    }
}

fn japan_date(ms: i64, lang: Lang) -> String {
    let t = japan_time(ms, lang);
    t.split(' ')
        .take(if lang == Lang::Ja { 1 } else { 3 })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The form a customer opens their order with, and why it is shown again if it is.
pub fn lookup_form(
    merchant: &MerchantId,
    name: &str,
    lang: Lang,
    csrf: &str,
    problem: Option<Problem>,
) -> String {
    let path = format!("/r/{merchant}");
    let problem = problem.map(|p| {
        let text = match p {
            Problem::Missing => lang
                .pick(
                    "注文番号と、メールアドレスまたは電話番号を入力してください。",
                    "Enter your order number and your email address or phone number.",
                )
                .to_owned(),
            Problem::NotFound => lang
                .pick(
                    "該当するご注文が見つかりません。注文番号と、ご注文時のメールアドレスまたは電話番号をご確認ください。",
                    "We could not find that order. Check the order number and the email address or phone number you ordered with.",
                )
                .to_owned(),
            Problem::LockedOut { until_ms } => match lang {
                Lang::Ja => format!(
                    "試行回数が上限に達しました。{}以降にもう一度お試しください。",
                    japan_time(until_ms, lang)
                ),
                Lang::En => format!(
                    "Too many tries. Please try again after {}.",
                    japan_time(until_ms, lang)
                ),
            },
        };
        format!("<p class=\"problem\" role=\"alert\">{}</p>", html_escape(&text))
    });
    format!(
        "{}{}<h1>{}</h1><p>{}</p>{}\
         <form method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <label>{}<input name=\"order_ref\" id=\"order_ref\" required maxlength=\"64\" autocomplete=\"off\"></label>\
         <label>{}<input name=\"contact\" id=\"contact\" required maxlength=\"128\" autocomplete=\"email\"></label>\
         <button type=\"submit\">{}</button></form></main></body></html>",
        head(lang, lang.pick("返品・交換のお申し込み", "Returns and exchanges")),
        banner(name, lang, &path),
        lang.pick("返品・交換のお申し込み", "Return or exchange an item"),
        lang.pick(
            "ご注文の確認のため、注文番号と、ご注文時のメールアドレスまたは電話番号を入力してください。",
            "To find your order, enter its order number and the email address or phone number you ordered with.",
        ),
        problem.unwrap_or_default(),
        html_escape(&path),
        html_escape(csrf),
        lang.code(),
        lang.pick("注文番号", "Order number"),
        lang.pick("メールアドレスまたは電話番号", "Email address or phone number"),
        lang.pick("注文を確認する", "Find my order"),
    )
}

/// The answer to a form whose CSRF token is not its page's (an old tab, or another site).
pub fn stale_form(merchant: &MerchantId, lang: Lang) -> String {
    let path = format!("/r/{merchant}?lang={}", lang.code());
    format!(
        "{}<main><h1>{}</h1><p><a href=\"{}\">{}</a></p></main></body></html>",
        head(
            lang,
            lang.pick("もう一度お試しください", "Please try again")
        ),
        lang.pick("ページの有効期限が切れました。", "This page has expired."),
        html_escape(&path),
        lang.pick("最初からやり直す", "Start again"),
    )
}

/// Whether one line of an order may be returned, in the customer's words.
pub fn line_decision(
    ordered: u32,
    facts: &LineFacts,
    window_ends_ms: i64,
    now_ms: i64,
    lang: Lang,
) -> (bool, String) {
    if facts.item.as_ref().is_some_and(|i| i.1) {
        let s = lang.pick(
            "セール品（返品不可）のため、返品・交換はお受けできません。",
            "This was a final-sale item: it cannot be returned or exchanged.",
        );
        return (false, s.to_owned());
    }
    if u64::from(ordered) <= facts.returned {
        let s = lang.pick(
            "この商品はすでに返品のお申し込みがあります。",
            "A return of this item has already been made.",
        );
        return (false, s.to_owned());
    }
    let end = japan_date(window_ends_ms, lang);
    if now_ms > window_ends_ms {
        return (
            false,
            match lang {
                Lang::Ja => format!("返品期限（{end}）を過ぎています。"),
                Lang::En => format!("The return period ended on {end}."),
            },
        );
    }
    (
        true,
        match lang {
            Lang::Ja => format!("{end}まで返品・交換できます。"),
            Lang::En => format!("You can return or exchange this until {end}."),
        },
    )
}

/// The order a customer opened: each line with whether it may be returned and why not.
pub fn order_page(
    name: &str,
    lang: Lang,
    order: &Order,
    facts: &[LineFacts],
    window_days: u32,
    now_ms: i64,
) -> String {
    let window_ends_ms = order.ordered_ms + i64::from(window_days) * DAY_MS;
    let mut lines = String::new();
    for (l, f) in order.lines.iter().zip(facts) {
        let (ok, why) = line_decision(l.qty, f, window_ends_ms, now_ms, lang);
        let price = f
            .item
            .as_ref()
            .map_or_else(String::new, |i| format!(" · ¥{}", i.0));
        lines.push_str(&format!(
            "<li class=\"line {}\"><span class=\"sku\">{}</span>\
             <span class=\"qty\">× {}{}</span><p class=\"decision\">{}</p></li>",
            if ok { "returnable" } else { "refused" },
            html_escape(&l.sku),
            l.qty,
            price,
            html_escape(&why)
        ));
    }
    let path = format!("/r/{}", order.merchant);
    format!(
        "{}{}<h1>{}</h1><p>{} {}</p><ul class=\"lines\">{}</ul></main></body></html>",
        head(lang, lang.pick("ご注文の商品", "Your order")),
        banner(name, lang, &path),
        lang.pick("ご注文の商品", "Your order"),
        lang.pick("注文番号", "Order number"),
        html_escape(&order.order_ref),
        lines,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(final_sale: bool, returned: u64) -> LineFacts {
        LineFacts {
            returned,
            item: Some((4_900, final_sale, "apparel".into())),
            variants: Vec::new(),
        }
    }

    #[test]
    fn each_refusal_says_why_in_plain_words() {
        let end = 1_700_000_000_000;
        let (ok, why) = line_decision(1, &facts(true, 0), end, end - 1, Lang::Ja);
        assert!(!ok && why.contains("セール品"), "{why}");
        let (ok, why) = line_decision(1, &facts(false, 1), end, end - 1, Lang::En);
        assert!(!ok && why.contains("already"), "{why}");
        let (ok, why) = line_decision(1, &facts(false, 0), end, end + 1, Lang::En);
        assert!(!ok && why.contains("ended on 15 Nov 2023"), "{why}");
        let (ok, why) = line_decision(2, &facts(false, 1), end, end - 1, Lang::Ja);
        assert!(ok && why.contains("2023年11月15日まで"), "{why}");
    }

    #[test]
    fn times_are_japan_time() {
        // 2026-12-05 06:00 UTC is 15:00 in Japan.
        let ms = 1_796_450_400_000;
        assert_eq!(japan_time(ms, Lang::Ja), "2026年12月5日 15:00");
        assert_eq!(japan_time(ms, Lang::En), "5 Dec 2026 15:00 JST");
    }
}
