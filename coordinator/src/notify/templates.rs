//! The words of each message: built-in templates per event and language (Japanese first,
//! English), which a merchant may replace in its `[[merchants.templates]]`. A template names
//! the merchant and the return by placeholders; the links to the return's status page and to
//! unsubscribe are always added below it, so no template can leave them out.

use super::{Kind, Language};
use crate::merchants::MerchantEntry;
pub use crate::merchants::TemplateEntry;

/// Placeholders a template may use.
pub const PLACEHOLDERS: [&str; 2] = ["{merchant}", "{rma}"];
/// The placeholder every body must use: a message that does not say which return it is
/// about leaves a customer with two returns guessing.
pub const BODY_PLACEHOLDER_REQUIRED: &str = "{rma}";
/// Longest subject of a template, in characters.
pub const SUBJECT_CHARS_MAX: usize = 200;
/// Longest body of a template, in characters.
pub const BODY_CHARS_MAX: usize = 4000;

/// A message's subject and plain text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
}

fn builtin(kind: Kind, language: Language) -> (&'static str, &'static str) {
    match (language, kind) {
        (Language::Ja, Kind::Registered) => (
            "【{merchant}】返品のお申し込みを受け付けました",
            "{merchant}をご利用いただき、ありがとうございます。\n返品（受付番号 {rma}）のお申し込みを受け付けました。商品のご返送をお待ちしております。",
        ),
        (Language::Ja, Kind::DroppedOff) => (
            "【{merchant}】返品商品を店舗でお預かりしました",
            "返品（受付番号 {rma}）の商品を店舗でお預かりしました。倉庫へお送りします。",
        ),
        (Language::Ja, Kind::Arrived) => (
            "【{merchant}】返品商品が倉庫に到着しました",
            "返品（受付番号 {rma}）の商品が倉庫に到着しました。これから検品いたします。",
        ),
        (Language::Ja, Kind::Inspected) => (
            "【{merchant}】返品商品の検品が完了しました",
            "返品（受付番号 {rma}）の商品の検品が完了しました。返金または交換の手続きに進みます。",
        ),
        (Language::Ja, Kind::RefundIssued) => (
            "【{merchant}】返金が完了しました",
            "返品（受付番号 {rma}）の返金手続きが完了しました。ご利用の決済方法により、反映まで数日かかる場合がございます。",
        ),
        (Language::Ja, Kind::ExchangeShipped) => (
            "【{merchant}】交換商品を発送しました",
            "返品（受付番号 {rma}）の交換商品を発送しました。到着まで今しばらくお待ちください。",
        ),
        (Language::Ja, Kind::Delayed) => (
            "【{merchant}】返品の処理に時間がかかっております",
            "返品（受付番号 {rma}）の処理に通常より時間がかかっております。ご迷惑をおかけして申し訳ございません。",
        ),
        (Language::Ja, Kind::CounterOffer) => (
            "【{merchant}】買取金額を改めてご提示します",
            "お送りいただいた商品（受付番号 {rma}）を検品したところ、お申し出の状態と異なっていたため、買取金額を改めてご提示します。下記のページで金額をご確認のうえ、期限までにご承諾またはお断りをお選びください。お断りの場合は商品を無料でお返しします。",
        ),
        (Language::Ja, Kind::TradeInAccepted) => (
            "【{merchant}】買取が成立しました",
            "お送りいただいた商品（受付番号 {rma}）の買取が成立しました。お支払いの手続きを進めます。金額は下記のページでご確認いただけます。",
        ),
        (Language::Ja, Kind::TradeInDeclined) => (
            "【{merchant}】買取はお断りとなりました",
            "お送りいただいた商品（受付番号 {rma}）の買取はお断りとなりました。商品はお客様へ返送いたします。",
        ),
        (Language::Ja, Kind::TradeInShippedBack) => (
            "【{merchant}】買取をお断りした商品を返送しました",
            "買取をお断りされた商品（受付番号 {rma}）をお客様へ返送しました。お届けまでの追跡番号は下記のページでご確認いただけます。",
        ),
        (Language::Ja, Kind::TradeInPaid) => (
            "【{merchant}】買取代金のお支払いが完了しました",
            "お送りいただいた商品（受付番号 {rma}）の買取代金のお支払いが完了しました。ご利用ありがとうございました。",
        ),
        (Language::Ja, Kind::TradeInRegistered) => (
            "【{merchant}】買取のお申し込みを受け付けました",
            "{merchant}の買取をご利用いただきありがとうございます。\n買取のお申し込み（受付番号 {rma}）を受け付けました。商品をお送りください。到着後に検品し、買取金額をお知らせします。",
        ),
        (Language::Ja, Kind::OfferRevised) => (
            "【{merchant}】買取金額を見直しました",
            "お送りいただいた商品（受付番号 {rma}）の買取金額を見直しました。下記のページで新しい金額をご確認のうえ、期限までにご承諾またはお断りをお選びください。お断りの場合は商品を無料でお返しします。",
        ),
        (Language::En, Kind::Registered) => (
            "{merchant}: we have your return request",
            "Thank you for shopping with {merchant}.\nYour return {rma} is registered. Please send the items back.",
        ),
        (Language::En, Kind::DroppedOff) => (
            "{merchant}: we have your parcel",
            "The parcel of your return {rma} was handed in at the store. It is on its way to our warehouse.",
        ),
        (Language::En, Kind::Arrived) => (
            "{merchant}: your return arrived at our warehouse",
            "The items of your return {rma} arrived at our warehouse. We will inspect them next.",
        ),
        (Language::En, Kind::Inspected) => (
            "{merchant}: your return was inspected",
            "The items of your return {rma} have been inspected. Your refund or exchange comes next.",
        ),
        (Language::En, Kind::RefundIssued) => (
            "{merchant}: your refund was issued",
            "The refund of your return {rma} was issued. Depending on your payment method it may take a few days to show.",
        ),
        (Language::En, Kind::ExchangeShipped) => (
            "{merchant}: your exchange is on its way",
            "The replacement for your return {rma} has been shipped.",
        ),
        (Language::En, Kind::CounterOffer) => (
            "{merchant}: a new offer for your trade-in",
            "We inspected the item you sent (number {rma}) and found it in a different condition than described, so we offer a new price. Please see it on the page below and accept or decline it by the deadline shown there. If you decline, we send the item back free of charge.",
        ),
        (Language::En, Kind::TradeInAccepted) => (
            "{merchant}: your trade-in is agreed",
            "The trade-in of the item you sent (number {rma}) is agreed. We are arranging your payment; see the amount on the page below.",
        ),
        (Language::En, Kind::TradeInDeclined) => (
            "{merchant}: your trade-in was declined",
            "The trade-in of the item you sent (number {rma}) was declined. We will send the item back to you.",
        ),
        (Language::En, Kind::TradeInShippedBack) => (
            "{merchant}: the item of your declined trade-in is on its way back",
            "The item you sent for trade-in (number {rma}) is on its way back to you. Its tracking number is on the page below.",
        ),
        (Language::En, Kind::TradeInPaid) => (
            "{merchant}: your trade-in was paid",
            "The payment for the item you sent (number {rma}) has been made. Thank you.",
        ),
        (Language::En, Kind::TradeInRegistered) => (
            "{merchant}: we have your trade-in request",
            "Thank you for trading in with {merchant}.\nYour trade-in {rma} is registered. Please send the item; once it is inspected we tell you our offer.",
        ),
        (Language::En, Kind::OfferRevised) => (
            "{merchant}: we revised our offer for your trade-in",
            "We reviewed our offer for the item you sent (number {rma}) and revised it. Please see the new amount on the page below and accept or decline it by the deadline shown there. If you decline, we send the item back free of charge.",
        ),
        (Language::Ja, Kind::RepairRegistered) => (
            "【{merchant}】修理のお申し込みを受け付けました",
            "{merchant}の修理をご利用いただきありがとうございます。\n修理のお申し込み（受付番号 {rma}）を受け付けました。商品をお送りください。到着後に検品し、修理の見積もりをお知らせします。",
        ),
        (Language::Ja, Kind::RepairQuoted) => (
            "【{merchant}】修理のお見積もりをお知らせします",
            "お送りいただいた商品（受付番号 {rma}）を検品し、修理のお見積もりを作成しました。下記のページで部品代と作業代をご確認のうえ、期限までに修理するかどうかをお選びください。お断りの場合は商品をそのままお返しします。",
        ),
        (Language::Ja, Kind::RepairAccepted) => (
            "【{merchant}】修理を承りました",
            "お送りいただいた商品（受付番号 {rma}）の修理を、お見積もりの金額で承りました。修理の進み具合は下記のページでご確認いただけます。",
        ),
        (Language::Ja, Kind::RepairDeclined) => (
            "【{merchant}】修理はお断りとなりました",
            "お送りいただいた商品（受付番号 {rma}）の修理はお断りとなりました。商品は修理せずにそのままお返しします。",
        ),
        (Language::Ja, Kind::RepairShippedBack) => (
            "【{merchant}】修理でお預かりした商品を返送しました",
            "修理でお預かりした商品（受付番号 {rma}）をお客様へ返送しました。お届けまでの追跡番号は下記のページでご確認いただけます。",
        ),
        (Language::En, Kind::RepairShippedBack) => (
            "{merchant}: the item you sent for repair is on its way back",
            "The item you sent for repair (number {rma}) is on its way back to you. Its tracking number is on the page below.",
        ),
        (Language::Ja, Kind::RepairQuoteRevised) => (
            "【{merchant}】修理のお見積もりを見直しました",
            "お送りいただいた商品（受付番号 {rma}）の修理のお見積もりを見直しました。下記のページで新しい金額をご確認のうえ、期限までに修理するかどうかをお選びください。お断りの場合は商品を修理せずにそのままお返しします。",
        ),
        (Language::En, Kind::RepairQuoteRevised) => (
            "{merchant}: we revised your repair quote",
            "We revised the quote for repairing the item you sent (number {rma}). Please see the new amount on the page below and tell us by the deadline shown there whether to repair it. If you decline, we send the item back as it is.",
        ),
        (Language::En, Kind::RepairRegistered) => (
            "{merchant}: we have your repair request",
            "Thank you for choosing {merchant} for your repair.\nYour repair {rma} is registered. Please send the item; once it is inspected we send you a quote.",
        ),
        (Language::En, Kind::RepairQuoted) => (
            "{merchant}: your repair quote",
            "We inspected the item you sent (number {rma}) and quoted its repair. Please see the parts and labour on the page below and tell us by the deadline shown there whether to repair it. If you decline, we send the item back as it is.",
        ),
        (Language::En, Kind::RepairAccepted) => (
            "{merchant}: your repair is under way",
            "You accepted the quote for the item you sent (number {rma}): we repair it at the quoted price. See how it stands on the page below.",
        ),
        (Language::En, Kind::RepairDeclined) => (
            "{merchant}: your repair was declined",
            "The repair of the item you sent (number {rma}) was declined. We send the item back to you as it is.",
        ),
        (Language::En, Kind::Delayed) => (
            "{merchant}: your return is taking longer than usual",
            "Your return {rma} is taking longer than usual. We are sorry for the wait.",
        ),
    }
}

fn footer(language: Language) -> &'static str {
    match language {
        Language::Ja => "\n\n返品の状況はこちらからご確認いただけます：\n{status_url}\n\nこのお知らせの配信停止はこちら：\n{unsubscribe_url}\n\n{merchant}",
        Language::En => "\n\nSee where your return stands:\n{status_url}\n\nStop these messages:\n{unsubscribe_url}\n\n{merchant}",
    }
}

/// The name customers know the merchant by.
pub fn merchant_name(merchant: &MerchantEntry) -> &str {
    merchant.name.as_deref().unwrap_or(&merchant.id)
}

/// The message of `kind` for a return `rma` of `merchant`, in `language`.
pub fn render(
    merchant: &MerchantEntry,
    kind: Kind,
    language: Language,
    rma: &str,
    status_url: &str,
    unsubscribe_url: &str,
) -> Rendered {
    let own = merchant
        .templates
        .iter()
        .find(|t| t.event == kind.as_str() && t.language == language.as_str());
    let (subject, body) = match own {
        Some(t) => (t.subject.as_str(), t.body.as_str()),
        None => builtin(kind, language),
    };
    let name = merchant_name(merchant);
    let fill = |s: &str| s.replace("{merchant}", name).replace("{rma}", rma);
    let text = format!("{}{}", fill(body), footer(language))
        .replace("{status_url}", status_url)
        .replace("{unsubscribe_url}", unsubscribe_url)
        .replace("{merchant}", name);
    Rendered {
        subject: fill(subject),
        text,
    }
}

/// Checks a merchant's templates; the error names the field (`templates[i].body`).
pub fn check(templates: &[TemplateEntry]) -> Result<(), (String, String)> {
    for (i, t) in templates.iter().enumerate() {
        let field = |f: &str| format!("templates[{i}].{f}");
        if Kind::parse(&t.event).is_none() {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            return Err((field("event"), format!("one of {}", known.join(", "))));
        }
        if Language::parse(&t.language).is_none() {
            return Err((field("language"), "ja or en".into()));
        }
        if templates[..i]
            .iter()
            .any(|o| o.event == t.event && o.language == t.language)
        {
            return Err((
                field("event"),
                "this event and language is listed twice".into(),
            ));
        }
        let n = t.subject.chars().count();
        if n == 0 || n > SUBJECT_CHARS_MAX || t.subject.chars().any(char::is_control) {
            return Err((
                field("subject"),
                format!("must be 1..={SUBJECT_CHARS_MAX} characters on one line"),
            ));
        }
        let n = t.body.chars().count();
        if n == 0 || n > BODY_CHARS_MAX || t.body.chars().any(|c| c.is_control() && c != '\n') {
            return Err((
                field("body"),
                format!("must be 1..={BODY_CHARS_MAX} characters, lines apart by newlines"),
            ));
        }
        if !t.body.contains(BODY_PLACEHOLDER_REQUIRED) {
            return Err((
                field("body"),
                format!("must name the return by {BODY_PLACEHOLDER_REQUIRED}"),
            ));
        }
        for (f, text) in [("subject", &t.subject), ("body", &t.body)] {
            if let Some(unknown) = unknown_placeholder(text) {
                return Err((
                    field(f),
                    format!(
                        "unknown placeholder {unknown}; known: {}",
                        PLACEHOLDERS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn unknown_placeholder(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start..];
        let end = after.find('}').map_or(after.len(), |e| e + 1);
        let candidate = &after[..end];
        if !PLACEHOLDERS.contains(&candidate) {
            return Some(candidate.chars().take(40).collect());
        }
        rest = &after[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant(templates: Vec<TemplateEntry>) -> MerchantEntry {
        MerchantEntry {
            id: "brand-a".into(),
            name: Some("ブランドA".into()),
            templates,
            ..MerchantEntry::default()
        }
    }

    #[test]
    fn every_event_has_words_in_both_languages_with_the_links_and_the_name() {
        let m = merchant(Vec::new());
        for kind in Kind::ALL {
            for lang in [Language::Ja, Language::En] {
                let r = render(&m, kind, lang, "RMA-1", "https://x/s/t", "https://x/u/t");
                assert!(r.subject.contains("ブランドA"), "{kind:?} {lang:?}");
                assert!(r.text.contains("RMA-1"), "{kind:?} {lang:?}: {}", r.text);
                assert!(r.text.contains("https://x/s/t"));
                assert!(r.text.contains("https://x/u/t"));
                assert!(!r.text.contains('{'), "{}", r.text);
            }
        }
        let ja = render(&m, Kind::Arrived, Language::Ja, "R", "s", "u");
        assert_eq!(ja.subject, "【ブランドA】返品商品が倉庫に到着しました");
    }

    #[test]
    fn a_merchants_template_replaces_the_builtin_one_and_keeps_the_links() {
        let m = merchant(vec![TemplateEntry {
            event: "registered".into(),
            language: "ja".into(),
            subject: "{merchant}より：受付 {rma}".into(),
            body: "ご返品（{rma}）ありがとうございます。".into(),
        }]);
        let r = render(&m, Kind::Registered, Language::Ja, "R-9", "S", "U");
        assert_eq!(r.subject, "ブランドAより：受付 R-9");
        assert!(r.text.starts_with("ご返品（R-9）ありがとうございます。"));
        assert!(
            r.text.contains("\nS\n") && r.text.contains("\nU\n"),
            "{}",
            r.text
        );
        let en = render(&m, Kind::Registered, Language::En, "R-9", "S", "U");
        assert!(en.subject.contains("we have your return request"));
        assert!(check(&m.templates).is_ok());
    }

    #[test]
    fn templates_are_checked() {
        let t = |event: &str, language: &str, subject: &str, body: &str| TemplateEntry {
            event: event.into(),
            language: language.into(),
            subject: subject.into(),
            body: body.into(),
        };
        for (bad, field) in [
            (t("shipped", "ja", "s", "b"), "templates[0].event"),
            (t("arrived", "fr", "s", "b"), "templates[0].language"),
            (t("arrived", "ja", "a\nb", "b"), "templates[0].subject"),
            (t("arrived", "ja", "s", "{rma} {name}"), "templates[0].body"),
            (t("arrived", "ja", "s", ""), "templates[0].body"),
            (
                t("arrived", "ja", "s", "no return named"),
                "templates[0].body",
            ),
        ] {
            assert_eq!(check(&[bad]).unwrap_err().0, field);
        }
        let twice = vec![
            t("arrived", "ja", "s", "{rma}"),
            t("arrived", "ja", "s", "{rma}"),
        ];
        assert_eq!(check(&twice).unwrap_err().0, "templates[1].event");
    }
}
