//! The words of the coordinator's pages and of what it tells people (alert notices), in
//! Japanese and English, from `coordinator/assets/i18n/{ja,en}.toml`, built into the binary.
//! Plain data: the pages (`http::i18n`) and the use cases read the same texts.

use std::collections::BTreeMap;
use std::sync::LazyLock;

pub(crate) const JA_TOML: &str = include_str!("../assets/i18n/ja.toml");
pub(crate) const EN_TOML: &str = include_str!("../assets/i18n/en.toml");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }
}

/// `section.key` → text.
pub type Texts = BTreeMap<String, String>;

/// The texts of a TOML file of sections of strings, flattened to `section.key`.
pub fn parse(source: &str) -> Result<Texts, String> {
    let table: toml::Table = source.parse().map_err(|e| format!("{e}"))?;
    let mut out = Texts::new();
    for (section, keys) in table {
        let toml::Value::Table(keys) = keys else {
            return Err(format!("{section} is not a section"));
        };
        for (key, value) in keys {
            let toml::Value::String(text) = value else {
                return Err(format!("{section}.{key} is not a string"));
            };
            out.insert(format!("{section}.{key}"), text);
        }
    }
    Ok(out)
}

static TEXTS: LazyLock<(Texts, Texts)> = LazyLock::new(|| {
    // Built into the binary and checked by the tests below: a failure is a programmer's.
    let ja = parse(JA_TOML).unwrap_or_else(|e| panic!("assets/i18n/ja.toml: {e}"));
    let en = parse(EN_TOML).unwrap_or_else(|e| panic!("assets/i18n/en.toml: {e}"));
    (ja, en)
});

pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Ja => &TEXTS.0,
        Lang::En => &TEXTS.1,
    }
}
