//! The fleet's fixed geography: warehouse sites and store / konbini drop-off points, loaded
//! from `sites.toml` and `stores.toml`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use modori_runtime::config_file::CapabilityName;
use modori_runtime::config_file::{parse_toml, ConfigError};
use modori_shared::domain::{Coordinates, Site, SiteId, Store, StoreId, StoreKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SitesFile {
    sites: Vec<SiteEntry>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SiteEntry {
    id: String,
    name: String,
    /// Its name on the Japanese pages; they show `name` without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name_ja: Option<String>,
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    capabilities: Vec<CapabilityName>,
    daily_capacity_units: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoresFile {
    stores: Vec<StoreEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreEntry {
    id: String,
    name: String,
    kind: KindName,
    latitude: f64,
    longitude: f64,
    /// `"HH:MM-HH:MM"` in Japan time, or `"24h"`; a konbini is open all day unless said.
    #[serde(default)]
    opening_hours: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum KindName {
    Retail,
    Konbini,
}

#[derive(Clone, Debug)]
pub struct Fleet {
    pub sites: Vec<Site>,
    pub stores: Vec<Store>,
    /// When each drop-off point takes parcels, by store id (none known for a store whose
    /// entry does not say).
    pub opening_hours: HashMap<String, OpeningHours>,
    /// Each site's Japanese name, by site id, for those whose entry gives one.
    pub names_ja: HashMap<String, String>,
}

/// A site's Japanese name holds at most this many characters (a page's heading, not a label).
pub const NAME_JA_CHARS_MAX: usize = 64;

/// A Japanese name a page can show: some text, not too long, no control character.
fn shown_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("is empty".into());
    }
    if name.chars().count() > NAME_JA_CHARS_MAX {
        return Err(format!("is longer than {NAME_JA_CHARS_MAX} characters"));
    }
    match name.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("has the control character {c:?}")),
        None => Ok(()),
    }
}

/// When a drop-off point takes parcels, in Japan time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpeningHours {
    AllDay,
    /// From and until these minutes after midnight (until past midnight when smaller).
    Daily {
        opens_min: u16,
        closes_min: u16,
    },
}

impl OpeningHours {
    /// Reads `"24h"` or `"HH:MM-HH:MM"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim() == "24h" {
            return Ok(Self::AllDay);
        }
        let minutes = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
            (h < 24 && m < 60 && t.trim().len() == 5).then_some(h * 60 + m)
        };
        let bad = || format!("{s:?} is neither \"24h\" nor \"HH:MM-HH:MM\"");
        let (opens, closes) = s.split_once('-').ok_or_else(bad)?;
        match (minutes(opens), minutes(closes)) {
            (Some(opens_min), Some(closes_min)) if opens_min != closes_min => Ok(Self::Daily {
                opens_min,
                closes_min,
            }),
            _ => Err(bad()),
        }
    }
}

/// Site and store names are printed on return and tote labels, after the return is stored: a
/// name the label cannot carry (too long, a control character, a glyph the label font lacks)
/// is refused here, at startup, instead.
fn printable(name: &str) -> Result<(), String> {
    use modori_shared::label::{font as label_font, zpl};
    if name.is_empty() {
        return Err("empty".into());
    }
    zpl::check_text("name", name).map_err(|e| e.to_string())?;
    match label_font::missing_glyph(name) {
        Some(ch) => Err(format!(
            "{ch:?} cannot be printed on a label (no glyph in the label font)"
        )),
        None => Ok(()),
    }
}

fn invalid(path: &Path, key: String, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        key,
        message,
    }
}

impl Fleet {
    pub fn load(sites_path: &Path, stores_path: &Path) -> Result<Self, ConfigError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_owned(),
                source,
            })
        };
        Self::parse(
            sites_path,
            &read(sites_path)?,
            stores_path,
            &read(stores_path)?,
        )
    }

    pub fn parse(
        sites_path: &Path,
        sites: &str,
        stores_path: &Path,
        stores: &str,
    ) -> Result<Self, ConfigError> {
        let sites_file: SitesFile = parse_toml(sites_path, sites)?;
        let stores_file: StoresFile = parse_toml(stores_path, stores)?;
        let mut seen = HashSet::new();
        let mut codes = HashSet::new();
        let mut out_sites = Vec::new();
        let mut names_ja = HashMap::new();
        for (i, s) in sites_file.sites.into_iter().enumerate() {
            let key = |field: &str| format!("sites[{i}].{field}");
            let id =
                SiteId::new(s.id).map_err(|e| invalid(sites_path, key("id"), e.to_string()))?;
            if !seen.insert(id.to_string()) {
                return Err(invalid(
                    sites_path,
                    key("id"),
                    format!("duplicate site id {id}"),
                ));
            }
            // LPN plates carry the site id without hyphens; two sites must not share one.
            let code = modori_shared::barcode::lpn_site_code(&id);
            if !codes.insert(code.clone()) {
                return Err(invalid(
                    sites_path,
                    key("id"),
                    format!("site {id} prints the same LPN site code {code} as another site"),
                ));
            }
            printable(&s.name).map_err(|e| invalid(sites_path, key("name"), e))?;
            if let Some(name_ja) = s.name_ja {
                shown_name(&name_ja).map_err(|e| invalid(sites_path, key("name_ja"), e))?;
                names_ja.insert(id.to_string(), name_ja);
            }
            let location = Coordinates::new(s.latitude, s.longitude)
                .map_err(|e| invalid(sites_path, key("latitude"), e.to_string()))?;
            out_sites.push(Site {
                id,
                name: s.name,
                location,
                capabilities: s.capabilities.into_iter().map(Into::into).collect(),
                daily_capacity_units: s.daily_capacity_units,
            });
        }
        if out_sites.is_empty() {
            return Err(invalid(
                sites_path,
                "sites".into(),
                "at least one site is needed".into(),
            ));
        }
        let mut out_stores = Vec::new();
        let mut opening_hours = HashMap::new();
        for (i, s) in stores_file.stores.into_iter().enumerate() {
            let key = |field: &str| format!("stores[{i}].{field}");
            let id =
                StoreId::new(s.id).map_err(|e| invalid(stores_path, key("id"), e.to_string()))?;
            if !seen.insert(id.to_string()) {
                return Err(invalid(
                    stores_path,
                    key("id"),
                    format!("duplicate id {id}"),
                ));
            }
            printable(&s.name).map_err(|e| invalid(stores_path, key("name"), e))?;
            let location = Coordinates::new(s.latitude, s.longitude)
                .map_err(|e| invalid(stores_path, key("latitude"), e.to_string()))?;
            let hours = match (&s.opening_hours, s.kind) {
                (Some(h), _) => Some(
                    OpeningHours::parse(h)
                        .map_err(|e| invalid(stores_path, key("opening_hours"), e))?,
                ),
                (None, KindName::Konbini) => Some(OpeningHours::AllDay),
                (None, KindName::Retail) => None,
            };
            if let Some(h) = hours {
                opening_hours.insert(id.to_string(), h);
            }
            out_stores.push(Store {
                id,
                name: s.name,
                kind: match s.kind {
                    KindName::Retail => StoreKind::Retail,
                    KindName::Konbini => StoreKind::Konbini,
                },
                location,
            });
        }
        Ok(Self {
            sites: out_sites,
            stores: out_stores,
            opening_hours,
            names_ja,
        })
    }

    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.iter().find(|s| &s.id == id)
    }
}

/// `sites` as the text of a sites file that [`Fleet::load`] reads back: for fleets made up on
/// the spot (the load harness's simulated sites).
pub fn sites_toml(sites: &[Site]) -> Result<String, toml::ser::Error> {
    let file = SitesFile {
        sites: sites
            .iter()
            .map(|s| SiteEntry {
                id: s.id.to_string(),
                name: s.name.clone(),
                name_ja: None,
                latitude: s.location.lat(),
                longitude: s.location.lon(),
                capabilities: s.capabilities.iter().map(|c| (*c).into()).collect(),
                daily_capacity_units: s.daily_capacity_units,
            })
            .collect(),
    };
    toml::to_string(&file)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORES: &str = "[[stores]]\nid = \"st-a\"\nname = \"A\"\nkind = \"retail\"\nlatitude = 35.0\nlongitude = 139.0\n";

    fn sites(ids: &[&str]) -> String {
        ids.iter()
            .map(|id| {
                format!(
                    "[[sites]]\nid = \"{id}\"\nname = \"{id}\"\nlatitude = 35.0\nlongitude = 139.0\ndaily_capacity_units = 10\n"
                )
            })
            .collect()
    }

    #[test]
    fn opening_hours_are_read_and_a_konbini_is_open_all_day_unless_said() {
        assert_eq!(
            OpeningHours::parse("10:00-20:00"),
            Ok(OpeningHours::Daily {
                opens_min: 600,
                closes_min: 1200
            })
        );
        assert_eq!(OpeningHours::parse("24h"), Ok(OpeningHours::AllDay));
        for bad in ["10-20", "25:00-26:00", "10:00-10:00", "9:00-20:00", ""] {
            assert!(OpeningHours::parse(bad).is_err(), "{bad}");
        }
        let stores = format!(
            "{STORES}[[stores]]\nid = \"kb-a\"\nname = \"K\"\nkind = \"konbini\"\nlatitude = 35.0\nlongitude = 139.0\n\
             [[stores]]\nid = \"kb-b\"\nname = \"K\"\nkind = \"konbini\"\nlatitude = 35.0\nlongitude = 139.0\nopening_hours = \"07:00-23:00\"\n"
        );
        let fleet = Fleet::parse(Path::new("p"), &sites(&["a"]), Path::new("s"), &stores).unwrap();
        assert_eq!(fleet.opening_hours.get("st-a"), None);
        assert_eq!(fleet.opening_hours.get("kb-a"), Some(&OpeningHours::AllDay));
        assert!(matches!(
            fleet.opening_hours.get("kb-b"),
            Some(OpeningHours::Daily { opens_min: 420, .. })
        ));
        let wrong = STORES.replace(
            "longitude = 139.0\n",
            "longitude = 139.0\nopening_hours = \"all day\"\n",
        );
        let err = Fleet::parse(Path::new("p"), &sites(&["a"]), Path::new("s"), &wrong).unwrap_err();
        assert!(err.to_string().contains("opening_hours"), "{err}");
    }

    #[test]
    fn a_written_sites_file_reads_back_the_same() {
        let p = Path::new("sites.toml");
        let fleet = Fleet::parse(p, &sites(&["kobe-1", "nara"]), Path::new("s"), STORES).unwrap();
        let text = sites_toml(&fleet.sites).unwrap();
        let again = Fleet::parse(p, &text, Path::new("s"), STORES).unwrap();
        assert_eq!(again.sites, fleet.sites);
    }

    #[test]
    fn names_a_label_cannot_print_are_refused() {
        let p = Path::new("sites.toml");
        let named = |name: &str| {
            format!(
                "[[sites]]\nid = \"chiba\"\nname = \"{name}\"\nlatitude = 35.0\nlongitude = 139.0\ndaily_capacity_units = 10\n"
            )
        };
        assert!(Fleet::parse(
            p,
            &named("千葉返品センター（市川）"),
            Path::new("s"),
            STORES
        )
        .is_ok());
        let err = Fleet::parse(p, &named("千葉 😀"), Path::new("s"), STORES)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sites[0].name") && err.contains("glyph"),
            "{err}"
        );
        let err = Fleet::parse(p, &named(&"x".repeat(65)), Path::new("s"), STORES)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sites[0].name") && err.contains("at most"),
            "{err}"
        );
    }

    #[test]
    fn a_sites_japanese_name_is_kept_and_one_a_page_cannot_show_refused() {
        let p = Path::new("sites.toml");
        let named = |name_ja: &str| {
            format!(
                "[[sites]]\nid = \"chiba\"\nname = \"Chiba\"\nname_ja = \"{name_ja}\"\nlatitude = 35.0\nlongitude = 139.0\ndaily_capacity_units = 10\n"
            )
        };
        let fleet = Fleet::parse(
            p,
            &named("千葉返品センター（市川）"),
            Path::new("s"),
            STORES,
        )
        .unwrap();
        assert_eq!(
            fleet.names_ja.get("chiba").map(String::as_str),
            Some("千葉返品センター（市川）")
        );
        for (bad, why) in [
            (" ".to_owned(), "empty"),
            ("千".repeat(65), "longer"),
            ("千\\t葉".to_owned(), "control"),
        ] {
            let err = Fleet::parse(p, &named(&bad), Path::new("s"), STORES)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("sites[0].name_ja") && err.contains(why),
                "{err}"
            );
        }
        // Every shipped site has its Japanese name.
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let shipped =
            Fleet::load(&configs.join("sites.toml"), &configs.join("stores.toml")).unwrap();
        for site in &shipped.sites {
            assert!(
                shipped.names_ja.contains_key(site.id.as_str()),
                "{}",
                site.id
            );
        }
    }

    #[test]
    fn sites_sharing_an_lpn_code_are_refused() {
        let p = Path::new("sites.toml");
        assert!(Fleet::parse(p, &sites(&["kobe-1", "kobe-2"]), Path::new("s"), STORES).is_ok());
        let err = Fleet::parse(p, &sites(&["kobe-1", "kobe1"]), Path::new("s"), STORES)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sites[1].id") && err.contains("KOBE1"),
            "{err}"
        );
        let err = Fleet::parse(p, &sites(&["kobe", "kobe"]), Path::new("s"), STORES)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate"), "{err}");
    }
}
