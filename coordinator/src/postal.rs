//! Japanese postal codes to a prefecture and a point to route from.
//!
//! A return from a commerce system often carries only the customer's postal code (`〒530-0001`).
//! Japan Post allots the first three digits by region, so they name the prefecture; routing
//! then starts from the prefecture's capital, which is close enough to choose among nine sites
//! hundreds of kilometres apart. A handful of three-digit areas straddle a prefecture border;
//! there the table names the prefecture holding most of the area.

use modori_shared::domain::Coordinates;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PostalError {
    #[error("postal code {0:?}: expected 7 digits, as 123-4567 or 1234567")]
    Shape(String),
    #[error("postal code {0:?}: no prefecture has the area {1:03}")]
    UnknownArea(String, u16),
}

/// A prefecture and the point its returns are routed from (its capital's city hall).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prefecture {
    pub name: &'static str,
    pub lat: f64,
    pub lon: f64,
}

/// (first three digits from, to inclusive, prefecture index in [`PREFECTURES`]).
const AREAS: &[(u16, u16, usize)] = &[
    (1, 9, 0),      // Hokkaido (Sapporo)
    (10, 19, 4),    // Akita
    (20, 29, 2),    // Iwate
    (30, 39, 1),    // Aomori
    (40, 99, 0),    // Hokkaido
    (100, 209, 12), // Tokyo
    (210, 259, 13), // Kanagawa
    (260, 299, 11), // Chiba
    (300, 319, 7),  // Ibaraki
    (320, 329, 8),  // Tochigi
    (330, 369, 10), // Saitama
    (370, 379, 9),  // Gunma
    (380, 399, 19), // Nagano
    (400, 409, 18), // Yamanashi
    (410, 439, 21), // Shizuoka
    (440, 499, 22), // Aichi
    (500, 509, 20), // Gifu
    (510, 519, 23), // Mie
    (520, 529, 24), // Shiga
    (530, 599, 26), // Osaka
    (600, 629, 25), // Kyoto
    (630, 639, 28), // Nara
    (640, 649, 29), // Wakayama
    (650, 679, 27), // Hyogo
    (680, 689, 30), // Tottori
    (690, 699, 31), // Shimane
    (700, 719, 32), // Okayama
    (720, 739, 33), // Hiroshima
    (740, 759, 34), // Yamaguchi
    (760, 769, 36), // Kagawa
    (770, 779, 35), // Tokushima
    (780, 789, 38), // Kochi
    (790, 799, 37), // Ehime
    (800, 839, 39), // Fukuoka
    (840, 849, 40), // Saga
    (850, 859, 41), // Nagasaki
    (860, 869, 42), // Kumamoto
    (870, 879, 43), // Oita
    (880, 889, 44), // Miyazaki
    (890, 899, 45), // Kagoshima
    (900, 909, 46), // Okinawa
    (910, 919, 17), // Fukui
    (920, 929, 16), // Ishikawa
    (930, 939, 15), // Toyama
    (940, 959, 14), // Niigata
    (960, 979, 6),  // Fukushima
    (980, 989, 3),  // Miyagi
    (990, 999, 5),  // Yamagata
];

/// The 47 prefectures in the order of their JIS codes (01 Hokkaido … 47 Okinawa).
pub const PREFECTURES: [Prefecture; 47] = [
    p("Hokkaido", 43.0642, 141.3469),
    p("Aomori", 40.8244, 140.7400),
    p("Iwate", 39.7036, 141.1527),
    p("Miyagi", 38.2688, 140.8721),
    p("Akita", 39.7186, 140.1024),
    p("Yamagata", 38.2404, 140.3633),
    p("Fukushima", 37.7503, 140.4676),
    p("Ibaraki", 36.3418, 140.4468),
    p("Tochigi", 36.5657, 139.8836),
    p("Gunma", 36.3912, 139.0609),
    p("Saitama", 35.8570, 139.6489),
    p("Chiba", 35.6047, 140.1233),
    p("Tokyo", 35.6895, 139.6917),
    p("Kanagawa", 35.4478, 139.6425),
    p("Niigata", 37.9026, 139.0236),
    p("Toyama", 36.6953, 137.2113),
    p("Ishikawa", 36.5947, 136.6256),
    p("Fukui", 36.0652, 136.2216),
    p("Yamanashi", 35.6642, 138.5684),
    p("Nagano", 36.6513, 138.1810),
    p("Gifu", 35.3912, 136.7223),
    p("Shizuoka", 34.9769, 138.3831),
    p("Aichi", 35.1802, 136.9066),
    p("Mie", 34.7303, 136.5086),
    p("Shiga", 35.0045, 135.8686),
    p("Kyoto", 35.0212, 135.7556),
    p("Osaka", 34.6863, 135.5200),
    p("Hyogo", 34.6913, 135.1830),
    p("Nara", 34.6851, 135.8329),
    p("Wakayama", 34.2260, 135.1675),
    p("Tottori", 35.5039, 134.2377),
    p("Shimane", 35.4723, 133.0505),
    p("Okayama", 34.6618, 133.9344),
    p("Hiroshima", 34.3966, 132.4596),
    p("Yamaguchi", 34.1859, 131.4714),
    p("Tokushima", 34.0658, 134.5593),
    p("Kagawa", 34.3401, 134.0434),
    p("Ehime", 33.8416, 132.7657),
    p("Kochi", 33.5597, 133.5311),
    p("Fukuoka", 33.6064, 130.4181),
    p("Saga", 33.2494, 130.2988),
    p("Nagasaki", 32.7448, 129.8737),
    p("Kumamoto", 32.7898, 130.7417),
    p("Oita", 33.2381, 131.6126),
    p("Miyazaki", 31.9111, 131.4239),
    p("Kagoshima", 31.5602, 130.5581),
    p("Okinawa", 26.2124, 127.6809),
];

const fn p(name: &'static str, lat: f64, lon: f64) -> Prefecture {
    Prefecture { name, lat, lon }
}

/// The prefecture of a postal code written `1234567`, `123-4567` or `〒123-4567`.
pub fn prefecture(code: &str) -> Result<&'static Prefecture, PostalError> {
    let digits: String = code
        .trim()
        .trim_start_matches('〒')
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if digits.len() != 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PostalError::Shape(code.chars().take(16).collect()));
    }
    let area: u16 = digits[..3]
        .parse()
        .map_err(|_| PostalError::Shape(code.to_owned()))?;
    AREAS
        .iter()
        .find(|(from, to, _)| (*from..=*to).contains(&area))
        .map(|(_, _, i)| &PREFECTURES[*i])
        .ok_or_else(|| PostalError::UnknownArea(digits.clone(), area))
}

/// The point a return from `code` is routed from.
pub fn origin(code: &str) -> Result<(Coordinates, &'static str), PostalError> {
    let p = prefecture(code)?;
    let point = Coordinates::new(p.lat, p.lon).map_err(|_| PostalError::Shape(code.to_owned()))?;
    Ok((point, p.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postal_codes_name_their_prefecture() {
        for (code, name) in [
            ("530-0001", "Osaka"),
            ("〒100-0005", "Tokyo"),
            ("8120011", "Fukuoka"),
            ("060-0001", "Hokkaido"),
            ("980-0021", "Miyagi"),
            ("900-0001", "Okinawa"),
            ("220-0011", "Kanagawa"),
            ("730-0011", "Hiroshima"),
            ("460-0008", "Aichi"),
        ] {
            assert_eq!(prefecture(code).unwrap().name, name, "{code}");
        }
    }

    #[test]
    fn every_area_is_covered_once_and_every_prefecture_is_reachable() {
        let mut seen = [false; 47];
        for area in 1..=999u16 {
            let n = AREAS
                .iter()
                .filter(|(from, to, _)| (*from..=*to).contains(&area))
                .count();
            assert_eq!(n, 1, "area {area:03}");
        }
        for (_, _, i) in AREAS {
            seen[*i] = true;
        }
        assert!(seen.iter().all(|s| *s), "{seen:?}");
    }

    #[test]
    fn malformed_codes_are_named() {
        assert!(matches!(prefecture("53-0001"), Err(PostalError::Shape(_))));
        assert!(matches!(prefecture("abc-defg"), Err(PostalError::Shape(_))));
        assert_eq!(
            prefecture("000-0000"),
            Err(PostalError::UnknownArea("0000000".into(), 0))
        );
    }
}
