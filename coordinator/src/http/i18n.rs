//! The words of the ops console's pages (the dashboard, the returns list, a return's page,
//! the quarantine screen and a site's page), the store counter's and the login form's, in
//! Japanese and English, from `coordinator/assets/i18n/{ja,en}.toml`, built into the binary.
//! A page's HTML names its texts as `{{section.key}}`; its script reads the same texts from
//! a JSON block the page carries (`{{texts}}`), through `t()` in `common.js`.
//!
//! The language is the `modori_lang` cookie's, set by the pages' switch (`/ui/lang/{lang}`),
//! else the browser's first choice (`Accept-Language`), else Japanese.

use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub use crate::texts::{texts, Lang};

use super::error::{ApiError, ApiPath};
use super::page::html_escape;

/// The cookie that keeps the chosen language.
pub const LANG_COOKIE: &str = "modori_lang";
/// How long the choice is kept: a year, like any display preference.
pub const LANG_COOKIE_MAX_AGE_S: u64 = 365 * 86_400;

/// The language a request asks for: the cookie's, else the browser's first, else Japanese.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == LANG_COOKIE)
        .and_then(|(_, value)| Lang::parse(value));
    if let Some(lang) = cookie {
        return lang;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|first| first.trim().to_ascii_lowercase())
        .and_then(|first| Lang::parse(first.get(..2).unwrap_or_default()))
        .unwrap_or(Lang::Ja)
}

/// `html` with its `{{section.key}}` texts in `lang`, `{{lang}}`, `{{other_lang}}` and
/// `{{texts}}` (every text as JSON, safe inside a `<script type="application/json">`).
pub fn render(html: &str, lang: Lang) -> String {
    let texts = texts(lang);
    let mut out = String::with_capacity(html.len() + 4096);
    let mut rest = html;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        match name {
            "lang" => out.push_str(lang.code()),
            "other_lang" => out.push_str(lang.other().code()),
            "texts" => out.push_str(
                &serde_json::to_string(texts)
                    .unwrap_or_else(|_| "{}".into())
                    .replace("</", "<\\/"),
            ),
            key => out.push_str(&html_escape(texts.get(key).map_or(key, String::as_str))),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

pub fn router() -> Router<std::sync::Arc<crate::Ctx>> {
    Router::new().route("/ui/lang/{lang}", get(switch))
}

#[derive(Deserialize)]
struct SwitchQuery {
    next: Option<String>,
}

/// A page of this coordinator to go back to: a path, never another site.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p)
            if p.starts_with('/') && !p.starts_with("//") && !p.contains(['\\', '\r', '\n']) =>
        {
            p
        }
        _ => "/",
    }
}

/// Keeps the language chosen and goes back to the page it was chosen on.
async fn switch(
    ApiPath(lang): ApiPath<String>,
    Query(query): Query<SwitchQuery>,
) -> Result<Response, ApiError> {
    let lang = Lang::parse(&lang).ok_or_else(|| ApiError::invalid_path("lang", "ja or en"))?;
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age={LANG_COOKIE_MAX_AGE_S}; SameSite=Lax",
        lang.code()
    );
    let location = local_path(query.next.as_deref()).to_owned();
    let mut res = StatusCode::SEE_OTHER.into_response();
    let h = res.headers_mut();
    h.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(&e))?,
    );
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|e| ApiError::internal(&e))?,
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::texts::{parse, Texts, EN_TOML, JA_TOML};

    #[test]
    fn both_languages_have_the_same_keys_and_no_empty_text() {
        let ja = parse(JA_TOML).unwrap();
        let en = parse(EN_TOML).unwrap();
        let only = |a: &Texts, b: &Texts| -> Vec<String> {
            a.keys().filter(|k| !b.contains_key(*k)).cloned().collect()
        };
        assert!(
            only(&ja, &en).is_empty(),
            "only in ja.toml: {:?}",
            only(&ja, &en)
        );
        assert!(
            only(&en, &ja).is_empty(),
            "only in en.toml: {:?}",
            only(&en, &ja)
        );
        for (lang, texts) in [("ja", &ja), ("en", &en)] {
            for (k, v) in texts {
                assert!(!v.trim().is_empty(), "{lang}: {k} is empty");
            }
        }
        // A placeholder in one language is in the other.
        let holes = |s: &str| -> Vec<String> {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(h, _)| h.to_owned()))
                .collect();
            v.sort();
            v
        };
        for (k, v) in &en {
            assert_eq!(holes(v), holes(&ja[k]), "{k}");
        }
    }

    #[test]
    fn every_text_the_pages_and_scripts_name_exists() {
        let pages = [
            include_str!("../../web/login.html"),
            include_str!("../../web/store.html"),
            include_str!("../../web/quarantine.html"),
            include_str!("../../web/site.html"),
            include_str!("../../web/return.html"),
            include_str!("../../web/returns.html"),
            include_str!("../../web/dashboard.html"),
        ];
        let scripts = [
            include_str!("../../web/common.js"),
            include_str!("../../web/store.js"),
            include_str!("../../web/quarantine.js"),
            include_str!("../../web/site.js"),
            include_str!("../../web/return.js"),
            include_str!("../../web/returns.js"),
            include_str!("../../web/dashboard.js"),
        ];
        let en = texts(Lang::En);
        for page in pages {
            let rendered = render(page, Lang::En);
            assert!(!rendered.contains("{{"), "a placeholder left: {rendered}");
            for part in page.split("{{").skip(1) {
                let name = part.split("}}").next().unwrap_or_default();
                if !["lang", "other_lang", "texts"].contains(&name) {
                    assert!(en.contains_key(name), "{name} is not in the texts");
                }
            }
        }
        let mut n_keys = 0;
        for script in scripts {
            for (at, _) in script.match_indices("t(\"") {
                let before = script[..at].chars().last().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' || before == '.' {
                    continue;
                }
                let key = script[at + 3..].split('"').next().unwrap_or_default();
                // `t("reason." + code)`: a section the script completes.
                let known = match key.strip_suffix('.') {
                    Some(_) => en.keys().any(|k| k.starts_with(key)),
                    None => en.contains_key(key),
                };
                assert!(known, "t(\"{key}\") is not in the texts");
                n_keys += 1;
            }
        }
        assert!(n_keys > 20, "only {n_keys} texts named by the scripts");
        // Every disposition a return's page shows has its words.
        for d in modori_shared::domain::Disposition::ALL_NAMES {
            assert!(en.contains_key(&format!("disposition.{d}")), "{d}");
        }
        // Every anomaly a site's page lists has its words.
        for k in crate::anomaly::AnomalyKind::ALL {
            assert!(
                en.contains_key(&format!("anomaly.{}", k.as_str())),
                "{}",
                k.as_str()
            );
        }
        // Every factor of an abuse score, and every kind of store, the dashboard names.
        for f in crate::policy::factor_keys() {
            assert!(en.contains_key(&format!("abuse_factor.{f}")), "{f}");
        }
        for k in ["retail", "konbini"] {
            assert!(en.contains_key(&format!("store_kind.{k}")), "{k}");
        }
        // Every alert kind has its words, and a text with exactly its parameters as holes.
        for (kind, names) in crate::dashboard::ALERT_PARAMS {
            assert!(en.contains_key(&format!("alert.{kind}")), "{kind}");
            let text = &en[&format!("alert_text.{kind}")];
            let mut holes: Vec<&str> = text
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(h, _)| h))
                .collect();
            holes.sort_unstable();
            assert_eq!(holes, names, "alert_text.{kind}");
        }
        // Every code an anomaly's or event's detail may carry has a text in both languages
        // with exactly its parameters as holes, and every code among its parameters its words.
        for (lang, texts) in [("ja", texts(Lang::Ja)), ("en", en)] {
            for (code, names) in crate::store::details::DETAIL_PARAMS {
                let key = format!("detail.{code}");
                let text = texts
                    .get(&key)
                    .unwrap_or_else(|| panic!("{lang}: {key} missing"));
                let mut holes: Vec<&str> = text
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split_once('}').map(|(h, _)| h))
                    .collect();
                holes.sort_unstable();
                holes.dedup();
                assert_eq!(holes, names, "{lang}: {key}");
            }
            let n_details = texts.keys().filter(|k| k.starts_with("detail.")).count();
            assert_eq!(
                n_details,
                crate::store::details::DETAIL_PARAMS.len(),
                "{lang}: a detail text no code uses"
            );
        }
        for d in modori_shared::domain::DefectCode::ALL {
            assert!(
                en.contains_key(&format!("defect.{}", d.as_str())),
                "{}",
                d.as_str()
            );
        }
        {
            use modori_shared::station::ReceiptKind as R;
            for r in [
                R::Matched,
                R::Over,
                R::WrongItem,
                R::Unidentified,
                R::FinalSale,
            ] {
                assert!(
                    en.contains_key(&format!("receipt.{}", r.as_str())),
                    "{}",
                    r.as_str()
                );
            }
        }
        // The steps a unit's state machine refuses (`UnitState`'s events), as keys.
        for s in [
            "grade",
            "disposition",
            "undo_of_a_disposition",
            "departure",
            "arrival",
            "void",
        ] {
            assert!(en.contains_key(&format!("refused_step.{s}")), "{s}");
        }
        for d in ["vendor", "recycler", "disposal"] {
            assert!(en.contains_key(&format!("departure.{d}")), "{d}");
        }
        // Every kind of a return's timeline, every transit status a carrier reports and
        // every way of sending a return back has its words.
        for k in crate::store::lifecycle::TIMELINE_KINDS {
            assert!(en.contains_key(&format!("timeline.{k}")), "timeline.{k}");
        }
        for s in crate::carrier::TrackingStatus::ALL {
            assert!(en.contains_key(&format!("transit.{}", s.as_str())), "{s:?}");
        }
        for m in crate::store::commerce::METHODS {
            assert!(en.contains_key(&format!("method.{m}")), "{m}");
        }
        // Every event the dashboard charts has its words.
        for k in crate::dashboard::THROUGHPUT_KINDS {
            assert!(en.contains_key(&format!("event.{k}")), "{k}");
        }
        // Every reason a line may carry has its words.
        for r in modori_shared::domain::ReasonCode::ALL {
            assert!(
                en.contains_key(&format!("reason.{}", r.as_str())),
                "{}",
                r.as_str()
            );
        }
    }

    #[test]
    fn the_cookie_wins_then_the_browser_then_japanese() {
        let mut h = HeaderMap::new();
        assert_eq!(lang_of(&h), Lang::Ja);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("en-US,en;q=0.9"),
        );
        assert_eq!(lang_of(&h), Lang::En);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("modori_session=x; modori_lang=ja"),
        );
        assert_eq!(lang_of(&h), Lang::Ja);
        assert_eq!(local_path(Some("//evil.example")), "/");
        assert_eq!(local_path(Some("https://evil.example")), "/");
        assert_eq!(local_path(Some("/store")), "/store");
        let html = render(
            "<html lang=\"{{lang}}\">{{counter.find}}<a>{{common.other_lang_name}}</a>",
            Lang::Ja,
        );
        assert_eq!(html, "<html lang=\"ja\">検索<a>English</a>");
    }
}
