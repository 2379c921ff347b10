//! The portal's pages as HTML, in the customer's language: every word a customer reads is
//! here, in Japanese and in English, with no internal code shown.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};
use modori_shared::domain::MerchantId;

use modori_shared::domain::{ReasonCode, Store};

use super::upload::PHOTOS_PER_ITEM_MAX;
use super::NOTE_CHARS_MAX;
use crate::app::portal::Pickup;
use crate::fleet::OpeningHours;
use crate::http::page::html_escape;
use crate::merchants::MerchantEntry;
use crate::notify::templates::merchant_name;
use crate::policy::MethodFees;
use crate::policy::{PolicyDecision, Resolution};
use crate::portal_settings::{methods_offered, reasons_offered};
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

    pub(super) fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    pub(super) fn pick(self, ja: &'static str, en: &'static str) -> &'static str {
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

pub(super) fn head(lang: Lang, title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/r/assets/portal.css\"></head><body>",
        lang.code(),
        html_escape(title)
    )
}

/// Where the privacy notice is.
pub const PRIVACY_PATH: &str = "/r/privacy";

/// Where a merchant's pages link for the privacy notice: the notice under its brand; the
/// portal's own for a page that names no merchant.
fn privacy_path(merchant: Option<&str>) -> String {
    merchant.map_or_else(|| PRIVACY_PATH.to_owned(), |m| format!("/r/{m}/privacy"))
}

/// The end of every page: the link to the privacy notice.
pub(super) fn page_foot(lang: Lang, merchant: Option<&str>) -> String {
    format!(
        "</main><footer><a class=\"privacy\" href=\"{}?lang={}\">{}</a></footer></body></html>",
        html_escape(&privacy_path(merchant)),
        lang.code(),
        lang.pick(
            "個人情報の取り扱いについて",
            "How we handle your personal data"
        )
    )
}

/// The privacy notice: what the portal collects, why, for how long, and whom to ask, under
/// Japan's Act on the Protection of Personal Information. Under the merchant's brand (name,
/// colours, logo, policy text) when it is opened from the merchant's pages.
pub fn privacy_notice(
    brand: Option<&MerchantEntry>,
    lang: Lang,
    retention_days: u32,
    upload_kept_hours: i64,
) -> String {
    let merchant = brand.map(|b| b.id.as_str());
    let foot = page_foot(lang, merchant);
    let path = privacy_path(merchant);
    let (title, body) = match lang {
        Lang::Ja => (
            "個人情報の取り扱いについて",
            format!(
                "<h2>お預かりする情報</h2><ul>\
                 <li>注文番号と、ご注文時のメールアドレスまたは電話番号（ご本人の確認のため）</li>\
                 <li>ご住所の郵便番号（お近くの持ち込み先と返品先の倉庫を選ぶため）</li>\
                 <li>返品の理由、詳しいご説明、商品の写真（返品の判断と検品のため）</li>\
                 <li>集荷の日時（配送業者に集荷を依頼するため）</li>\
                 <li>アクセス元のIPアドレスと失敗した照会の回数（なりすましを防ぐため）</li></ul>\
                 <h2>利用の目的</h2><p>返品・交換の受付、集荷・持ち込み・倉庫での受け取りと検品、返金・交換品の発送、\
                 そして各段階のお知らせ（メール・LINE）のためにのみ利用します。広告には利用しません。</p>\
                 <h2>保存の期間</h2><p>お名前・ご連絡先・写真・ご説明は、返品のお申し込みから{retention_days}日後に削除\
                 または仮名化します。お申し込みに至らなかった写真は{upload_kept_hours}時間後に削除します。\
                 照会の失敗の記録は、試行制限の期間が過ぎると削除します。</p>\
                 <h2>お問い合わせ・削除のご依頼</h2><p>ご注文のショップのお問い合わせ窓口にご連絡ください。\
                 ショップからのご依頼により、当社はお客様の情報（写真、お知らせの予定、状況ページのリンクを含む）を\
                 倉庫の記録からも削除します。</p>"
            ),
        ),
        Lang::En => (
            "How we handle your personal data",
            format!(
                "<h2>What we collect</h2><ul>\
                 <li>Your order number and the email address or phone number you ordered with (to know it is you)</li>\
                 <li>Your postal code (to find the nearest drop-off points and the warehouse your return goes to)</li>\
                 <li>Why you return an item, what you tell us of it, and your photos (to decide on the return and inspect it)</li>\
                 <li>The day and time of a pickup (to book the carrier)</li>\
                 <li>Your IP address and how many lookups failed (to stop others opening your order)</li></ul>\
                 <h2>Why</h2><p>Only to take your return or exchange, collect and receive it, inspect it, refund \
                 you or ship the exchange, and tell you (by email or LINE) at each step. Never for advertising.</p>\
                 <h2>For how long</h2><p>Your name, contact, photos and notes are deleted or pseudonymised \
                 {retention_days} days after you ask for the return. Photos of a request you did not finish are \
                 deleted after {upload_kept_hours} hours. Records of failed lookups are deleted once their \
                 lockout period is over.</p>\
                 <h2>Whom to ask</h2><p>Contact the customer service of the shop you ordered from. At the shop's \
                 request we delete your data, including your photos, the messages still to be sent and the \
                 links to your return's status page, here and at our warehouses.</p>"
            ),
        ),
    };
    let (top, policy_text) = match brand {
        Some(brand) => (banner(brand, lang, &path), policy(brand, lang)),
        None => (
            format!(
                "<header><span class=\"shop\">Modori</span>\
                 <a class=\"lang\" href=\"{}?lang={other}\" lang=\"{other}\">{label}</a></header><main>",
                html_escape(&path),
                other = if lang == Lang::Ja { "en" } else { "ja" },
                label = if lang == Lang::Ja { "English" } else { "日本語" },
            ),
            String::new(),
        ),
    };
    format!(
        "{}{top}<h1>{title}</h1>{body}{policy_text}{foot}",
        head(lang, title),
    )
}

/// The header of every page: the merchant's logo, name and colours (its own stylesheet, as
/// the CSP allows no inline style), and the language switch.
pub(super) fn banner(brand: &MerchantEntry, lang: Lang, switch_href: &str) -> String {
    let (label, other) = match lang {
        Lang::Ja => ("English", "en"),
        Lang::En => ("日本語", "ja"),
    };
    let style = if brand.colour.is_some() || brand.logo_url.is_some() {
        format!(
            "<link rel=\"stylesheet\" href=\"/r/{}/brand.css\">",
            html_escape(&brand.id)
        )
    } else {
        String::new()
    };
    // The name is beside the logo, so the image adds nothing to read: an empty alt.
    let logo = brand.logo_url.as_deref().map_or_else(String::new, |url| {
        format!(
            "<img class=\"logo\" src=\"{}\" alt=\"\" referrerpolicy=\"no-referrer\">",
            html_escape(url)
        )
    });
    format!(
        "{style}<header><span class=\"shop\">{logo}{}</span>\
         <a class=\"lang\" href=\"{}?lang={other}\" lang=\"{other}\">{label}</a></header><main>",
        html_escape(merchant_name(brand)),
        html_escape(switch_href)
    )
}

/// The merchant's return policy in its own words, when it gives one.
fn policy(brand: &MerchantEntry, lang: Lang) -> String {
    let Some(text) = brand.policy_text.as_deref() else {
        return String::new();
    };
    let paragraphs: String = text
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("<p>{}</p>", html_escape(l)))
        .collect();
    format!(
        "<section class=\"policy\"><h2>{}</h2>{paragraphs}</section>",
        lang.pick("返品ポリシー", "Return policy")
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
    brand: &MerchantEntry,
    lang: Lang,
    csrf: &str,
    problem: Option<Problem>,
) -> String {
    let foot = page_foot(lang, Some(merchant.as_str()));
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
         <button type=\"submit\">{}</button></form>{}{foot}",
        head(lang, lang.pick("返品・交換のお申し込み", "Returns and exchanges")),
        banner(brand, lang, &path),
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
        policy(brand, lang),
    )
}

/// The answer to a form whose CSRF token is not its page's (an old tab, or another site),
/// or that chose what its page did not offer; under the merchant's brand like its pages.
pub fn stale_form(brand: &MerchantEntry, lang: Lang) -> String {
    let foot = page_foot(lang, Some(brand.id.as_str()));
    let form = format!("/r/{}", brand.id);
    let again = format!("{form}?lang={}", lang.code());
    format!(
        "{}{}<h1>{}</h1><p><a href=\"{}\">{}</a></p>{foot}",
        head(
            lang,
            lang.pick("もう一度お試しください", "Please try again")
        ),
        banner(brand, lang, &form),
        lang.pick("ページの有効期限が切れました。", "This page has expired."),
        html_escape(&again),
        lang.pick("最初からやり直す", "Start again"),
    )
}

/// The answer to a link that opens nothing (mistyped, guessed, or of a forgotten customer).
pub fn unknown_link(lang: Lang) -> String {
    let foot = page_foot(lang, None);
    format!(
        "{}<main><h1>{}</h1><p>{}</p>{foot}",
        head(lang, lang.pick("ページが見つかりません", "Page not found")),
        lang.pick("ページが見つかりません", "Page not found"),
        lang.pick(
            "このリンクは無効か、有効期限が切れています。",
            "This link is not valid, or no longer."
        ),
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

/// A reason code in the customer's words.
pub fn reason_words(r: ReasonCode, lang: Lang) -> &'static str {
    match r {
        ReasonCode::TooSmall => lang.pick("サイズが小さい", "Too small"),
        ReasonCode::TooLarge => lang.pick("サイズが大きい", "Too large"),
        ReasonCode::NotAsDescribed => lang.pick("説明と違う", "Not as described"),
        ReasonCode::DamagedInTransit => lang.pick("配送中に破損", "Damaged in delivery"),
        ReasonCode::Defective => lang.pick("不良品", "Faulty"),
        ReasonCode::WrongItemSent => lang.pick("違う商品が届いた", "Wrong item sent"),
        ReasonCode::ChangedMind => lang.pick("イメージと違った・不要になった", "Changed my mind"),
        ReasonCode::ArrivedLate => lang.pick("届くのが遅かった", "Arrived too late"),
        ReasonCode::Other => lang.pick("その他", "Other"),
    }
}

/// A way of sending a return back, in the customer's words.
pub fn method_words(method: &str, lang: Lang) -> &'static str {
    match method {
        "home_pickup" => lang.pick(
            "ご自宅で集荷（梱包をお手伝い）",
            "Home pickup (we help pack)",
        ),
        "konbini_dropoff" => lang.pick("コンビニから発送", "Drop off at a konbini"),
        "store_dropoff" => lang.pick("店舗へ持ち込み", "Drop off at a store"),
        _ => lang.pick("配送業者の集荷", "Carrier pickup"),
    }
}

/// An outcome in the customer's words.
pub fn outcome_words(r: &Resolution, lang: Lang) -> String {
    match r {
        Resolution::Refund => lang.pick("返金", "Refund").to_owned(),
        Resolution::StoreCredit => lang
            .pick(
                "ストアクレジット（ボーナス付き）",
                "Store credit (with a bonus)",
            )
            .to_owned(),
        Resolution::Exchange { sku } => match lang {
            Lang::Ja => format!("{sku} に交換"),
            Lang::En => format!("Exchange for {sku}"),
        },
    }
}

/// What the order page's form needs besides the order: its token, the contact the order
/// was opened with (posted again, so registering checks it again), and what to fill it with.
pub struct Opened<'a> {
    pub csrf: &'a str,
    pub contact: &'a str,
    pub refill: &'a Refill,
    /// Each method's fee.
    pub fees: &'a MethodFees,
    /// The days a pickup may be booked on.
    pub pickup_dates: &'a [NaiveDate],
}

/// A form shown again: what the customer had typed and chosen, the photos already kept of
/// each line (by upload id), and what was wrong with each line.
#[derive(Default)]
pub struct Refill {
    pub fields: Vec<(String, String)>,
    pub kept: Vec<(usize, Vec<String>)>,
    pub problems: Vec<(usize, LineProblem)>,
    /// A pickup method was chosen without a day and slot that may be booked.
    pub pickup_missing: bool,
}

impl Refill {
    fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn kept(&self, line: usize) -> &[String] {
        self.kept
            .iter()
            .find(|(i, _)| *i == line)
            .map_or(&[], |(_, k)| k.as_slice())
    }
}

/// What was wrong with a line of a form shown again.
#[derive(Clone, Debug)]
pub enum LineProblem {
    /// The note is longer than this many characters.
    NoteTooLong(usize),
    /// A file that is not a JPEG, PNG or WebP image.
    NotAnImage(String),
    /// A photo larger than this many bytes.
    TooLarge(String, usize),
    /// A photo beyond this many.
    TooMany(String, usize),
}

/// A line's problem in the customer's words.
pub fn problem_words(p: &LineProblem, lang: Lang) -> String {
    match (p, lang) {
        (LineProblem::NoteTooLong(max), Lang::Ja) => {
            format!("ご説明は{max}文字以内でお書きください。")
        }
        (LineProblem::NoteTooLong(max), Lang::En) => {
            format!("Please keep the description to {max} characters.")
        }
        (LineProblem::NotAnImage(name), Lang::Ja) => format!(
            "「{name}」は写真として読み取れませんでした。JPEG・PNG・WebP の写真をお選びください。"
        ),
        (LineProblem::NotAnImage(name), Lang::En) => {
            format!("“{name}” is not a photo we can read. Please choose a JPEG, PNG or WebP photo.")
        }
        (LineProblem::TooLarge(name, max), Lang::Ja) => format!(
            "「{name}」は大きすぎます。{}MB以下の写真をお選びください。",
            max / (1024 * 1024)
        ),
        (LineProblem::TooLarge(name, max), Lang::En) => format!(
            "“{name}” is too large. Please choose a photo of at most {} MB.",
            max / (1024 * 1024)
        ),
        (LineProblem::TooMany(name, max), Lang::Ja) => {
            format!("写真は1点につき{max}枚までです。「{name}」はお預かりしていません。")
        }
        (LineProblem::TooMany(name, max), Lang::En) => {
            format!("At most {max} photos per item: “{name}” was not added.")
        }
    }
}

/// The order a customer opened: each line with whether it may be returned and why not, and
/// for each that may, the reason and the outcome to choose; then where from and how.
pub fn order_page(
    brand: &MerchantEntry,
    lang: Lang,
    order: &Order,
    facts: &[LineFacts],
    window_days: u32,
    now_ms: i64,
    opened: &Opened<'_>,
) -> String {
    let foot = page_foot(lang, Some(brand.id.as_str()));
    let refill = opened.refill;
    let window_ends_ms = order.ordered_ms + i64::from(window_days) * DAY_MS;
    let mut lines = String::new();
    let mut n_returnable = 0;
    let offered = reasons_offered(brand);
    for (i, (l, f)) in order.lines.iter().zip(facts).enumerate() {
        let (ok, why) = line_decision(l.qty, f, window_ends_ms, now_ms, lang);
        let price = f
            .item
            .as_ref()
            .map_or_else(String::new, |i| format!(" · ¥{}", i.0));
        let choice = if ok {
            n_returnable += 1;
            line_choice(
                i,
                l.qty
                    .saturating_sub(u32::try_from(f.returned).unwrap_or(u32::MAX)),
                &f.variants,
                &l.sku,
                &offered,
                lang,
                refill,
            )
        } else {
            String::new()
        };
        lines.push_str(&format!(
            "<li class=\"line {}\"><span class=\"sku\">{}</span>\
             <span class=\"qty\">× {}{}</span><p class=\"decision\">{}</p>{}</li>",
            if ok { "returnable" } else { "refused" },
            html_escape(&l.sku),
            l.qty,
            price,
            html_escape(&why),
            choice
        ));
    }
    let path = format!("/r/{}", order.merchant);
    let rest = if n_returnable == 0 {
        "</ul>".to_owned()
    } else {
        let chosen = refill.value("method");
        let offered_methods = methods_offered(brand);
        let methods: String = offered_methods
            .iter()
            .map(|m| {
                format!(
                    "<option value=\"{m}\"{}>{}（{}）</option>",
                    selected(chosen == Some(*m)),
                    method_words(m, lang),
                    fee_words(opened.fees.of(m), lang)
                )
            })
            .collect();
        // The day and slot are asked only of a merchant that offers a pickup at all.
        let pickup = if offered_methods
            .iter()
            .any(|m| crate::app::portal::PICKUP_METHODS.contains(m))
        {
            pickup_fields(lang, opened.pickup_dates, refill)
        } else {
            String::new()
        };
        format!(
            "</ul><label>{}<input name=\"postal_code\" id=\"postal_code\" required \
             inputmode=\"numeric\" maxlength=\"8\" placeholder=\"530-0001\" value=\"{}\"></label>\
             <label>{}<select name=\"method\" id=\"method\">{methods}</select></label>\
             {pickup}<button type=\"submit\">{}</button></form>",
            lang.pick("ご住所の郵便番号", "Your postal code"),
            html_escape(refill.value("postal_code").unwrap_or_default()),
            lang.pick("返送の方法", "How to send it back"),
            lang.pick("返品を申し込む", "Request the return"),
        )
    };
    format!(
        "{}{}<h1>{}</h1><p>{} {}</p>\
         <form method=\"post\" action=\"{}/returns\" enctype=\"multipart/form-data\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <input type=\"hidden\" name=\"order_ref\" value=\"{}\">\
         <input type=\"hidden\" name=\"contact\" value=\"{}\">\
         <ul class=\"lines\">{}{}{}{foot}",
        head(lang, lang.pick("ご注文の商品", "Your order")),
        banner(brand, lang, &path),
        lang.pick("ご注文の商品", "Your order"),
        lang.pick("注文番号", "Order number"),
        html_escape(&order.order_ref),
        html_escape(&path),
        html_escape(opened.csrf),
        lang.code(),
        html_escape(&order.order_ref),
        html_escape(opened.contact),
        lines,
        rest,
        policy(brand, lang),
    )
}

/// A method's fee in the customer's words.
fn fee_words(yen: u64, lang: Lang) -> String {
    match (yen, lang) {
        (0, _) => lang.pick("手数料無料", "no fee").to_owned(),
        (n, Lang::Ja) => format!("手数料 ¥{n}"),
        (n, Lang::En) => format!("fee ¥{n}"),
    }
}

/// A pickup slot in the customer's words, as Japan's carriers name them.
pub fn slot_words(slot: &str, lang: Lang) -> &'static str {
    match slot {
        "am" => lang.pick("午前中", "Morning (until noon)"),
        "14-16" => lang.pick("14〜16時", "14:00–16:00"),
        "16-18" => lang.pick("16〜18時", "16:00–18:00"),
        "18-20" => lang.pick("18〜20時", "18:00–20:00"),
        _ => lang.pick("19〜21時", "19:00–21:00"),
    }
}

/// A day in the customer's words with its weekday (`12月7日（月）` / `Mon 7 Dec`).
pub fn day_words(date: NaiveDate, lang: Lang) -> String {
    match lang {
        Lang::Ja => {
            let wd = ["月", "火", "水", "木", "金", "土", "日"]
                [date.weekday().num_days_from_monday() as usize];
            format!("{}月{}日（{wd}）", date.month(), date.day())
        }
        Lang::En => date.format("%a %-d %b").to_string(),
    }
}

/// The day and slot of a pickup, asked for whichever method is chosen (a page without
/// script cannot hide them) and used only for a pickup.
fn pickup_fields(lang: Lang, dates: &[NaiveDate], refill: &Refill) -> String {
    let date = refill.value("pickup_date");
    let dates: String = dates
        .iter()
        .map(|d| {
            let key = crate::app::portal::pickup_date_key(*d);
            format!(
                "<option value=\"{key}\"{}>{}</option>",
                selected(date == Some(key.as_str())),
                day_words(*d, lang)
            )
        })
        .collect();
    let slot = refill.value("pickup_slot");
    let slots: String = crate::app::portal::PICKUP_SLOTS
        .iter()
        .map(|s| {
            format!(
                "<option value=\"{s}\"{}>{}</option>",
                selected(slot == Some(*s)),
                slot_words(s, lang)
            )
        })
        .collect();
    let problem = if refill.pickup_missing {
        format!(
            "<p class=\"problem\" role=\"alert\">{}</p>",
            lang.pick(
                "集荷の日と時間帯をお選びください。",
                "Please choose a day and a time for the pickup."
            )
        )
    } else {
        String::new()
    };
    format!(
        "<fieldset class=\"pickup\"><legend>{}</legend>{problem}\
         <label>{}<select name=\"pickup_date\" id=\"pickup_date\">{dates}</select></label>\
         <label>{}<select name=\"pickup_slot\" id=\"pickup_slot\">{slots}</select></label></fieldset>",
        lang.pick("集荷の場合の日時", "For a pickup: when"),
        lang.pick("集荷日", "Day"),
        lang.pick("時間帯", "Time"),
    )
}

fn selected(yes: bool) -> &'static str {
    if yes {
        " selected"
    } else {
        ""
    }
}

/// The choices of one returnable line: whether to return it (and how many), why (from the
/// list, in the customer's words, and in photos), and what instead.
fn line_choice(
    i: usize,
    returnable: u32,
    variants: &[String],
    sku: &str,
    offered: &[ReasonCode],
    lang: Lang,
    refill: &Refill,
) -> String {
    let reason = refill.value(&format!("reason{i}"));
    let reasons: String = offered
        .iter()
        .map(|r| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                r.as_str(),
                selected(reason == Some(r.as_str())),
                reason_words(*r, lang)
            )
        })
        .collect();
    let outcome = refill.value(&format!("outcome{i}"));
    let mut outcomes = format!(
        "<option value=\"refund\"{}>{}</option><option value=\"store_credit\"{}>{}</option>",
        selected(outcome == Some("refund")),
        outcome_words(&Resolution::Refund, lang),
        selected(outcome == Some("store_credit")),
        outcome_words(&Resolution::StoreCredit, lang)
    );
    for v in variants.iter().filter(|v| v.as_str() != sku) {
        let r = Resolution::Exchange { sku: v.clone() };
        let value = format!("exchange:{v}");
        outcomes.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            html_escape(&value),
            selected(outcome == Some(value.as_str())),
            html_escape(&outcome_words(&r, lang))
        ));
    }
    let problems: String = refill
        .problems
        .iter()
        .filter(|(l, _)| *l == i)
        .map(|(_, p)| {
            format!(
                "<p class=\"problem\" role=\"alert\">{}</p>",
                html_escape(&problem_words(p, lang))
            )
        })
        .collect();
    let kept = refill.kept(i);
    let kept_html = if kept.is_empty() {
        String::new()
    } else {
        let hidden: String = kept
            .iter()
            .map(|k| {
                format!(
                    "<input type=\"hidden\" name=\"kept{i}\" value=\"{}\">",
                    html_escape(k)
                )
            })
            .collect();
        let words = match lang {
            Lang::Ja => format!("写真{}枚をお預かりしています。", kept.len()),
            Lang::En => format!("{} photo(s) already added.", kept.len()),
        };
        format!("{hidden}<p class=\"kept\">{}</p>", html_escape(&words))
    };
    let checked = if refill.value(&format!("line{i}")).is_some() {
        " checked"
    } else {
        ""
    };
    let qty = refill
        .value(&format!("qty{i}"))
        .and_then(|q| q.parse::<u32>().ok())
        .filter(|q| (1..=returnable).contains(q))
        .unwrap_or(1);
    let note = refill.value(&format!("note{i}")).unwrap_or_default();
    format!(
        "<div class=\"choice\">{problems}<label class=\"pick\"><input type=\"checkbox\" name=\"line{i}\" \
         value=\"1\"{checked}> {}</label>\
         <label>{}<input name=\"qty{i}\" type=\"number\" min=\"1\" max=\"{returnable}\" value=\"{qty}\"></label>\
         <label>{}<select name=\"reason{i}\">{reasons}</select></label>\
         <label>{}<textarea name=\"note{i}\" rows=\"3\" maxlength=\"{note_max}\">{}</textarea></label>\
         {kept_html}<label>{}<input name=\"photo{i}\" type=\"file\" multiple \
         accept=\"image/jpeg,image/png,image/webp\"></label>\
         <label>{}<select name=\"outcome{i}\">{outcomes}</select></label></div>",
        lang.pick("この商品を返品・交換する", "Return or exchange this item"),
        lang.pick("数量", "Quantity"),
        lang.pick("理由", "Reason"),
        lang.pick("詳しいご説明（任意）", "Tell us more (optional)"),
        html_escape(note),
        match lang {
            Lang::Ja => format!("写真（任意・{PHOTOS_PER_ITEM_MAX}枚まで）"),
            Lang::En => format!("Photos (optional, up to {PHOTOS_PER_ITEM_MAX})"),
        },
        lang.pick("ご希望", "What you would like instead"),
        note_max = NOTE_CHARS_MAX,
    )
}

/// One return registered, or refused, as the confirmation shows it.
pub enum Outcome<'a> {
    Registered {
        rma: &'a str,
        resolution: &'a Resolution,
        skus: Vec<String>,
        decision: Option<&'a PolicyDecision>,
        returnless: bool,
        /// The return's status page.
        status_url: String,
        /// Whether to show the QR code a drop-off point scans instead of a printed label.
        show_qr: bool,
    },
    Refused {
        resolution: &'a Resolution,
    },
}

/// The confirmation: each return registered with its breakdown, and what was refused.
/// How the parcels of a confirmation travel: the method, its fee, the pickup booked, and
/// the drop-off points nearest the customer with their distance and opening hours.
pub struct Sending<'a> {
    pub method: &'a str,
    pub method_fee_yen: u64,
    pub pickup: Option<&'a Pickup>,
    pub dropoffs: &'a [(Store, f64, Option<OpeningHours>)],
}

/// Opening hours in the customer's words.
pub fn hours_words(h: OpeningHours, lang: Lang) -> String {
    match h {
        OpeningHours::AllDay => lang.pick("24時間営業", "Open 24 hours").to_owned(),
        OpeningHours::Daily {
            opens_min,
            closes_min,
        } => {
            let t = |m: u16| format!("{}:{:02}", m / 60, m % 60);
            match lang {
                Lang::Ja => format!("営業時間 {}〜{}", t(opens_min), t(closes_min)),
                Lang::En => format!("Open {}–{}", t(opens_min), t(closes_min)),
            }
        }
    }
}

/// Links to a return's label as a PDF, on A4 and on a 4×6 in label sheet.
pub(super) fn label_links(status_url: &str, lang: Lang) -> String {
    let url = html_escape(status_url);
    format!(
        "<p class=\"labels\">{} <a class=\"label-a4\" href=\"{url}/label.pdf?size=a4\">{}</a> · \
         <a class=\"label-4x6\" href=\"{url}/label.pdf?size=4x6\">{}</a></p>",
        lang.pick("返送ラベル（PDF）：", "Return label (PDF):"),
        lang.pick("A4用紙", "A4 paper"),
        lang.pick("4×6インチのラベル", "4×6 in label"),
    )
}

/// A pickup in the customer's words.
pub fn pickup_words(date: NaiveDate, slot: &str, lang: Lang) -> String {
    format!("{} {}", day_words(date, lang), slot_words(slot, lang))
}

pub fn confirmation(
    brand: &MerchantEntry,
    merchant: &str,
    lang: Lang,
    sending: &Sending<'_>,
    outcomes: &[Outcome<'_>],
) -> String {
    let foot = page_foot(lang, Some(merchant));
    let (method, dropoffs) = (sending.method, sending.dropoffs);
    let mut items = String::new();
    for o in outcomes {
        match o {
            Outcome::Registered {
                rma,
                resolution,
                skus,
                decision,
                returnless,
                status_url,
                show_qr,
            } => {
                let mut rows = format!(
                    "<dt>{}</dt><dd class=\"rma\">{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>",
                    lang.pick("返品番号", "Return number"),
                    html_escape(rma),
                    lang.pick("商品", "Items"),
                    html_escape(&skus.join(", ")),
                    lang.pick("ご希望", "Outcome"),
                    html_escape(&outcome_words(resolution, lang)),
                );
                if let Some(d) = decision {
                    let yen = |n: u64| format!("¥{n}");
                    let value_label = match resolution {
                        Resolution::Refund => {
                            lang.pick("返金額（手数料差引前）", "Refund (before the fee)")
                        }
                        Resolution::StoreCredit => lang.pick("クレジット額", "Credit"),
                        Resolution::Exchange { .. } => lang.pick("商品の価格", "Item value"),
                    };
                    rows.push_str(&format!(
                        "<dt>{value_label}</dt><dd class=\"value\">{}</dd>",
                        yen(d.value_yen)
                    ));
                    if d.store_credit_bonus_yen > 0 {
                        rows.push_str(&format!(
                            "<dt>{}</dt><dd class=\"bonus\">{}</dd>",
                            lang.pick("ボーナス", "Bonus"),
                            yen(d.store_credit_bonus_yen)
                        ));
                    }
                    let method_fee = sending.method_fee_yen.min(d.fee_yen);
                    rows.push_str(&format!(
                        "<dt>{}</dt><dd class=\"fee\">{}</dd>",
                        lang.pick("手数料", "Fee"),
                        yen(d.fee_yen - method_fee)
                    ));
                    if method_fee > 0 {
                        rows.push_str(&format!(
                            "<dt>{}</dt><dd class=\"method-fee\">{}</dd>",
                            lang.pick("返送方法の手数料", "Fee for the way you send it"),
                            yen(method_fee)
                        ));
                    }
                    if !matches!(resolution, Resolution::Exchange { .. }) {
                        let net = d
                            .value_yen
                            .saturating_add(d.store_credit_bonus_yen)
                            .saturating_sub(d.fee_yen);
                        rows.push_str(&format!(
                            "<dt>{}</dt><dd class=\"net\">{}</dd>",
                            lang.pick("お受け取り額（手数料差引後）", "You receive (after fees)"),
                            yen(net)
                        ));
                    }
                }
                let how = if *returnless {
                    lang.pick(
                        "この商品は返送不要です。お手元に残したまま返金いたします。",
                        "You need not send this back: keep it, and you are refunded.",
                    )
                } else {
                    method_words(method, lang)
                };
                rows.push_str(&format!(
                    "<dt>{}</dt><dd>{}</dd>",
                    lang.pick("返送", "Sending back"),
                    html_escape(how)
                ));
                if let (Some(p), false) = (sending.pickup, *returnless) {
                    rows.push_str(&format!(
                        "<dt>{}</dt><dd class=\"pickup\">{}</dd>",
                        lang.pick("集荷日時", "Pickup"),
                        html_escape(&pickup_words(p.date, p.slot, lang))
                    ));
                }
                if *show_qr && !*returnless {
                    rows.push_str(&format!(
                        "<dt>{}</dt><dd><img class=\"qr\" src=\"{}/qr.svg\" width=\"240\" height=\"240\" alt=\"{}\"></dd>",
                        lang.pick("持ち込み用QRコード", "QR code for the drop-off"),
                        html_escape(status_url),
                        lang.pick(
                            "店頭でこのQRコードをお見せください（ラベルの印刷は不要です）",
                            "Show this QR code at the counter (no label to print)"
                        ),
                    ));
                }
                let labels = if *returnless {
                    String::new()
                } else {
                    label_links(status_url, lang)
                };
                items.push_str(&format!(
                    "<section class=\"return\"><dl>{rows}</dl>{labels}\
                     <p><a class=\"status\" href=\"{}\">{}</a></p></section>",
                    html_escape(status_url),
                    lang.pick("返品の状況を見る", "See where your return stands")
                ));
            }
            Outcome::Refused { resolution } => items.push_str(&format!(
                "<p class=\"problem\" role=\"alert\">{}</p>",
                html_escape(&match lang {
                    Lang::Ja => format!(
                        "「{}」のお申し込みはお受けできませんでした。返品の条件をご確認ください。",
                        outcome_words(resolution, lang)
                    ),
                    Lang::En => format!(
                        "We could not accept the request for “{}”. Please check the return terms.",
                        outcome_words(resolution, lang)
                    ),
                })
            )),
        }
    }
    if !dropoffs.is_empty() && items.contains("class=\"return\"") {
        let points: String = dropoffs
            .iter()
            .map(|(store, km, hours)| {
                let hours = hours.map_or_else(String::new, |h| {
                    format!(" <span class=\"hours\">{}</span>", hours_words(h, lang))
                });
                format!(
                    "<li><span class=\"place\">{}</span> <span class=\"km\">{km:.1} km</span>{hours}</li>",
                    html_escape(&store.name)
                )
            })
            .collect();
        items.push_str(&format!(
            "<h2>{}</h2><ol class=\"dropoffs\">{points}</ol>",
            lang.pick("お近くの持ち込み先", "Nearest drop-off points")
        ));
    }
    let path = format!("/r/{merchant}");
    format!(
        "{}{}<h1>{}</h1>{items}{}{foot}",
        head(lang, lang.pick("お申し込みの内容", "Your return")),
        banner(brand, lang, &path),
        if outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Registered { .. }))
        {
            lang.pick("お申し込みを受け付けました", "Your return is registered")
        } else {
            lang.pick(
                "お申し込みをお受けできませんでした",
                "Your return was not accepted",
            )
        },
        policy(brand, lang),
    )
}

/// A timeline event in the customer's words; none for the steps that are ours alone.
pub fn event_words(kind: &str, lang: Lang) -> Option<&'static str> {
    Some(match kind {
        "registered" => lang.pick("お申し込みを受け付けました", "We received your request"),
        "dropped_off" => lang.pick(
            "返品物を店舗でお預かりしました",
            "Your parcel was handed in at the store",
        ),
        "unit_received" | "unit_matched" => lang.pick(
            "返品物が倉庫に到着しました",
            "Your item arrived at our warehouse",
        ),
        "unit_graded" => lang.pick("返品物の検品が終わりました", "Your item was inspected"),
        "refunded" => lang.pick("返金いたしました", "Your refund was issued"),
        "exchange_shipped" => lang.pick("交換品を発送しました", "Your exchange was shipped"),
        "trade_in_offer" => lang.pick("買取金額が確定しました", "Our offer was made"),
        "trade_in_counter_offer" => {
            lang.pick("買取金額を改めてご提示しました", "We made you a new offer")
        }
        "trade_in_offer_overridden" => lang.pick("買取金額を見直しました", "We revised our offer"),
        "trade_in_accepted" => lang.pick("買取が成立しました", "The trade-in was agreed"),
        "trade_in_declined" => lang.pick(
            "買取はお断りとなりました（商品は返送されます）",
            "The offer was declined (the item is to be returned to you)",
        ),
        "repair_quoted" => lang.pick(
            "修理の見積もりをお知らせしました",
            "We sent you the repair quote",
        ),
        "repair_accepted" => lang.pick("修理を承りました", "Your repair was agreed"),
        "repair_quote_overridden" => lang.pick(
            "修理の見積もりを見直しました",
            "We revised your repair quote",
        ),
        "repair_declined" => lang.pick(
            "修理はお断りとなりました（商品はそのまま返送されます）",
            "The repair was declined (the item is to be returned as it is)",
        ),
        "shipped_back" => lang.pick(
            "商品をお客様へ返送しました",
            "Your item was sent back to you",
        ),
        "cancelled" => lang.pick("お申し込みは取り消されました", "Your return was cancelled"),
        "expired" => lang.pick(
            "期限内に返品物が届かなかったため、お申し込みは終了しました",
            "Your return closed: the item did not reach us in time",
        ),
        _ => return None,
    })
}

/// What a status page is about: a plain return, or a trade-in or a repair with the part of
/// the page only it has.
pub enum StatusOf<'a> {
    Return,
    TradeIn(&'a str),
    Repair(&'a str),
}

/// A return's status page: what happened to it, in the customer's words and Japan time,
/// newest last.
pub fn status_page(
    brand: &MerchantEntry,
    lang: Lang,
    rma: &str,
    events: &[(String, i64)],
    self_path: &str,
    pickup: Option<(NaiveDate, &str)>,
    about: StatusOf<'_>,
) -> String {
    let foot = page_foot(lang, Some(brand.id.as_str()));
    let pickup = pickup.map_or_else(String::new, |(date, slot)| {
        format!(
            "<p class=\"pickup\">{} {}</p>",
            lang.pick("集荷日時：", "Pickup:"),
            html_escape(&pickup_words(date, slot, lang))
        )
    });
    let mut items = String::new();
    for (kind, at_ms) in events {
        let Some(words) = event_words(kind, lang) else {
            continue;
        };
        items.push_str(&format!(
            "<li><time>{}</time> {}</li>",
            japan_time(*at_ms, lang),
            html_escape(words)
        ));
    }
    // A trade-in or a repair travels as a return, but its owner sold it or wants it back
    // mended: the page says so.
    let (title, heading, number, section) = match about {
        StatusOf::Return => (
            lang.pick("返品の状況", "Your return"),
            lang.pick("返品の状況", "Where your return stands"),
            lang.pick("返品番号", "Return number"),
            "",
        ),
        StatusOf::TradeIn(section) => (
            lang.pick("買取の状況", "Your trade-in"),
            lang.pick("買取の状況", "Where your trade-in stands"),
            lang.pick("受付番号", "Trade-in number"),
            section,
        ),
        StatusOf::Repair(section) => (
            lang.pick("修理の状況", "Your repair"),
            lang.pick("修理の状況", "Where your repair stands"),
            lang.pick("受付番号", "Repair number"),
            section,
        ),
    };
    format!(
        "{}{}<h1>{}</h1><p>{} {}</p>{pickup}{section}<ol class=\"timeline\">{items}</ol>{}{}{foot}",
        head(lang, title),
        banner(brand, lang, self_path),
        heading,
        number,
        html_escape(rma),
        label_links(self_path, lang),
        policy(brand, lang),
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
    fn a_returnless_refund_is_explained_in_the_customers_words() {
        let outcome = Outcome::Registered {
            rma: "RMA-1",
            resolution: &Resolution::Refund,
            skus: vec!["TEE-WHT-M".into()],
            decision: None,
            returnless: true,
            status_url: "/r/m/s/t".into(),
            show_qr: true,
        };
        let sending = Sending {
            method: "konbini_dropoff",
            method_fee_yen: 0,
            pickup: None,
            dropoffs: &[],
        };
        let brand = MerchantEntry {
            id: "m".into(),
            name: Some("店".into()),
            ..MerchantEntry::default()
        };
        let ja = confirmation(&brand, "m", Lang::Ja, &sending, &[outcome]);
        assert!(
            ja.contains("返送不要です。お手元に残したまま返金いたします"),
            "{ja}"
        );
        assert!(
            !ja.contains("qr.svg"),
            "nothing to drop off, no code to show: {ja}"
        );
    }

    #[test]
    fn times_are_japan_time() {
        // 2026-12-05 06:00 UTC is 15:00 in Japan.
        let ms = 1_796_450_400_000;
        assert_eq!(japan_time(ms, Lang::Ja), "2026年12月5日 15:00");
        assert_eq!(japan_time(ms, Lang::En), "5 Dec 2026 15:00 JST");
    }
}
