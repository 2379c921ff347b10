//! What a merchant sets for its customers: the portal's name, colour and logo, its policy in
//! the merchant's words, the reasons and ways back it offers, and the messages' wording. The
//! config seeds them (`[[merchants]]`); the merchant API replaces them at run time, stored in
//! the database (`store::merchant_portal`), so a change shows on the next page or message.
//! Plain data and its checks; no IO.

use modori_shared::domain::ReasonCode;
use serde::{Deserialize, Serialize};

use crate::merchants::{MerchantEntry, TemplateEntry};
use crate::notify::templates;

/// Longest merchant name shown to customers, in characters.
pub const NAME_CHARS_MAX: usize = 100;
/// Longest policy text, in characters.
pub const POLICY_TEXT_CHARS_MAX: usize = 4000;
/// Longest logo URL, in bytes.
pub const LOGO_URL_BYTES_MAX: usize = 2048;

/// A merchant's portal and message settings, as stored and as the API shows them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub colour: Option<String>,
    #[serde(default)]
    pub logo_url: Option<String>,
    #[serde(default)]
    pub policy_text: Option<String>,
    /// Reason codes offered, in order; empty: every one.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Ways back offered, in order; empty: every one.
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub templates: Vec<TemplateEntry>,
}

impl PortalSettings {
    /// The settings a config entry gives.
    pub fn of(entry: &MerchantEntry) -> Self {
        Self {
            name: entry.name.clone(),
            colour: entry.colour.clone(),
            logo_url: entry.logo_url.clone(),
            policy_text: entry.policy_text.clone(),
            reasons: entry.reasons.clone(),
            methods: entry.methods.clone(),
            templates: entry.templates.clone(),
        }
    }

    /// `entry` with these settings in place of its own (its id and webhook stay).
    pub fn applied_to(self, entry: MerchantEntry) -> MerchantEntry {
        MerchantEntry {
            name: self.name,
            colour: self.colour,
            logo_url: self.logo_url,
            policy_text: self.policy_text,
            reasons: self.reasons,
            methods: self.methods,
            templates: self.templates,
            ..entry
        }
    }
}

/// The reason codes a merchant offers, in its order (every one when it lists none).
pub fn reasons_offered(entry: &MerchantEntry) -> Vec<ReasonCode> {
    if entry.reasons.is_empty() {
        return ReasonCode::ALL.to_vec();
    }
    entry
        .reasons
        .iter()
        .filter_map(|r| ReasonCode::parse(r).ok())
        .collect()
}

/// The ways back a merchant offers, in its order (every one when it lists none).
pub fn methods_offered(entry: &MerchantEntry) -> Vec<&'static str> {
    if entry.methods.is_empty() {
        return crate::store::commerce::METHODS.to_vec();
    }
    entry
        .methods
        .iter()
        .filter_map(|m| {
            crate::store::commerce::METHODS
                .iter()
                .find(|k| **k == m.as_str())
                .copied()
        })
        .collect()
}

/// Checks every setting; the error names the field (`colour`, `templates[2].body`) and says
/// what it must be.
pub fn check(s: &PortalSettings) -> Result<(), (String, String)> {
    if let Some(name) = &s.name {
        if !one_line(name, NAME_CHARS_MAX) {
            return Err((
                "name".into(),
                format!("must be 1..={NAME_CHARS_MAX} characters on one line"),
            ));
        }
    }
    if let Some(colour) = &s.colour {
        if parse_colour(colour).is_none() {
            return Err((
                "colour".into(),
                format!("{colour:?} is not a colour: #rrggbb, six hex digits"),
            ));
        }
    }
    if let Some(url) = &s.logo_url {
        check_logo_url(url).map_err(|m| ("logo_url".to_owned(), m))?;
    }
    if let Some(text) = &s.policy_text {
        let n = text.chars().count();
        if n == 0 || n > POLICY_TEXT_CHARS_MAX || text.chars().any(|c| c.is_control() && c != '\n')
        {
            return Err((
                "policy_text".into(),
                format!("must be 1..={POLICY_TEXT_CHARS_MAX} characters, lines apart by newlines"),
            ));
        }
    }
    for (i, r) in s.reasons.iter().enumerate() {
        if ReasonCode::parse(r).is_err() {
            return Err((
                format!("reasons[{i}]"),
                format!(
                    "unknown reason code {:?}; known: {}",
                    r.chars().take(40).collect::<String>(),
                    ReasonCode::ALL_NAMES.join(", ")
                ),
            ));
        }
    }
    let methods = crate::store::commerce::METHODS;
    for (i, m) in s.methods.iter().enumerate() {
        if !methods.contains(&m.as_str()) {
            return Err((
                format!("methods[{i}]"),
                format!(
                    "unknown method {:?}; known: {}",
                    m.chars().take(40).collect::<String>(),
                    methods.join(", ")
                ),
            ));
        }
    }
    templates::check(&s.templates)
}

/// A `#rrggbb` colour as its three channels.
pub fn parse_colour(s: &str) -> Option<[u8; 3]> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}

/// Only `https://` with a host, so a page served over TLS never loads its logo in the clear
/// and the portal's CSP can allow images from `https:` alone.
fn check_logo_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err("must be an https:// URL".into());
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !host_ok {
        return Err("must name a host after https://".into());
    }
    if url.len() > LOGO_URL_BYTES_MAX || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "must be at most {LOGO_URL_BYTES_MAX} printable ASCII characters"
        ));
    }
    Ok(())
}

fn one_line(s: &str, chars_max: usize) -> bool {
    let n = s.chars().count();
    n > 0 && n <= chars_max && !s.chars().any(char::is_control)
}

/// The text colour that reads on `background`: black or white, whichever contrasts more
/// (WCAG's relative luminance), so any colour a merchant picks keeps its header legible.
pub fn text_on(background: [u8; 3]) -> &'static str {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(background[0]) + 0.7152 * lin(background[1]) + 0.0722 * lin(background[2]);
    // Contrast with black is (l + 0.05) / 0.05, with white 1.05 / (l + 0.05).
    if (l + 0.05) * (l + 0.05) > 0.05 * 1.05 {
        "#000000"
    } else {
        "#ffffff"
    }
}

/// The merchant's stylesheet for its portal pages (served from the portal's own origin, as
/// its CSP allows no inline style): the header in its colour.
pub fn brand_css(entry: &MerchantEntry) -> String {
    match entry.colour.as_deref().and_then(parse_colour) {
        Some(rgb) => format!(
            "body > header {{ background: #{:02x}{:02x}{:02x}; color: {}; }}\n\
             body > header .lang {{ color: inherit; }}\n",
            rgb[0],
            rgb[1],
            rgb[2],
            text_on(rgb)
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(s: PortalSettings) -> String {
        check(&s).unwrap_err().0
    }

    #[test]
    fn each_bad_setting_is_refused_by_name() {
        let colour = |c: &str| PortalSettings {
            colour: Some(c.into()),
            ..PortalSettings::default()
        };
        for bad in ["red", "#12345", "#1234567", "#12345g", "123456"] {
            assert_eq!(field(colour(bad)), "colour", "{bad}");
        }
        assert!(check(&colour("#A0b1C2")).is_ok());
        let logo = |u: &str| PortalSettings {
            logo_url: Some(u.into()),
            ..PortalSettings::default()
        };
        for bad in [
            "http://x.jp/l.png",
            "https:///l.png",
            "https://x.jp/a b",
            "ftp://x",
        ] {
            assert_eq!(field(logo(bad)), "logo_url", "{bad}");
        }
        assert!(check(&logo("https://cdn.example.jp/logo.png?v=2")).is_ok());
        let reasons = PortalSettings {
            reasons: vec!["too_small".into(), "bored".into()],
            ..PortalSettings::default()
        };
        assert_eq!(field(reasons), "reasons[1]");
        let methods = PortalSettings {
            methods: vec!["drone".into()],
            ..PortalSettings::default()
        };
        assert_eq!(field(methods), "methods[0]");
        let name = PortalSettings {
            name: Some("a\nb".into()),
            ..PortalSettings::default()
        };
        assert_eq!(field(name), "name");
        let policy = PortalSettings {
            policy_text: Some(String::new()),
            ..PortalSettings::default()
        };
        assert_eq!(field(policy), "policy_text");
    }

    #[test]
    fn the_header_text_contrasts_with_any_colour() {
        assert_eq!(text_on([0, 0, 0]), "#ffffff");
        assert_eq!(text_on([255, 255, 255]), "#000000");
        assert_eq!(text_on([0x1a, 0x3c, 0x8e]), "#ffffff");
        assert_eq!(text_on([0xff, 0xd7, 0x00]), "#000000");
    }

    #[test]
    fn offers_keep_the_merchants_order_and_default_to_everything() {
        let mut m = MerchantEntry::default();
        assert_eq!(reasons_offered(&m).len(), ReasonCode::ALL.len());
        assert_eq!(
            methods_offered(&m),
            crate::store::commerce::METHODS.to_vec()
        );
        m.reasons = vec!["defective".into(), "too_small".into()];
        m.methods = vec!["konbini_dropoff".into()];
        assert_eq!(
            reasons_offered(&m),
            vec![ReasonCode::Defective, ReasonCode::TooSmall]
        );
        assert_eq!(methods_offered(&m), vec!["konbini_dropoff"]);
    }
}
