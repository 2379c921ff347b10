//! Carrier tracking numbers whose check rule is public.
//!
//! - The 12-digit slips of Yamato Transport, Sagawa Express and Japan Post's domestic parcels
//!   (Yu-Pack) all use "7DR": the last digit is the first 11 digits, read as a number, modulo 7
//!   (so it is never 7, 8 or 9). The rule is the same for the three, and which number ranges
//!   belong to which carrier is not published, so the number alone cannot name its carrier:
//!   [`TrackingNumber::possible_carriers`] lists all three.
//! - International post uses UPU S10: two service letters, eight serial digits, a mod-11 check
//!   digit with weights 8 6 4 2 3 5 9 7, and the ISO 3166 country of the posting operator
//!   (`JP` for Japan Post).
//!
//! Not read: Japan Post's other domestic numbers (registered mail and the like) and other
//! carriers' formats, whose check rules are not published or not certain; S10 country codes are
//! not checked against the ISO 3166 list.

use std::fmt;

use super::{check, BarcodeError, Format};

/// Characters of an S10 number.
const S10_LEN: usize = 13;
/// Serial digits of an S10 number, before its check digit.
const S10_SERIAL_DIGITS: usize = 8;
/// The posting country of Japan Post's S10 numbers.
const S10_JAPAN: &str = "JP";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carrier {
    Yamato,
    Sagawa,
    JapanPost,
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Yamato => "Yamato Transport",
            Self::Sagawa => "Sagawa Express",
            Self::JapanPost => "Japan Post",
        })
    }
}

/// A tracking number whose check digit has been verified.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TrackingNumber {
    /// 12 digits, 7DR.
    Japan12(String),
    /// UPU S10, e.g. `EJ123456785JP`.
    UpuS10(String),
}

impl TrackingNumber {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Japan12(s) | Self::UpuS10(s) => s,
        }
    }

    /// The carriers that issue numbers of this form. Empty for an S10 number of a foreign
    /// postal operator, whose country [`TrackingNumber::s10_country`] gives.
    pub fn possible_carriers(&self) -> &'static [Carrier] {
        match self {
            Self::Japan12(_) => &[Carrier::Yamato, Carrier::Sagawa, Carrier::JapanPost],
            Self::UpuS10(s) if s.ends_with(S10_JAPAN) => &[Carrier::JapanPost],
            Self::UpuS10(_) => &[],
        }
    }

    /// The posting country of an S10 number.
    pub fn s10_country(&self) -> Option<&str> {
        match self {
            Self::UpuS10(s) => Some(&s[S10_LEN - 2..]),
            Self::Japan12(_) => None,
        }
    }
}

/// Two letters, anything, two letters, 13 characters: what only an S10 number looks like.
/// The 12-digit slip number (7DR) whose first 11 digits are `body`; `None` unless `body` is
/// 11 ASCII digits. For simulated carriers and tests.
pub fn japan12_encode(body: &str) -> Option<String> {
    if body.len() != 11 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let check = check::seven_dr(body.as_bytes());
    Some(format!("{body}{}", char::from(check)))
}

pub(crate) fn looks_like_s10(data: &str) -> bool {
    let b = data.as_bytes();
    b.len() == S10_LEN
        && [0, 1, S10_LEN - 2, S10_LEN - 1]
            .iter()
            .all(|&i| b[i].is_ascii_uppercase())
}

pub(crate) fn parse_s10(data: &str) -> Result<TrackingNumber, BarcodeError> {
    let digits = &data[2..S10_LEN - 2];
    if let Some(ch) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(BarcodeError::BadCharacter {
            format: Format::UpuS10,
            part: "serial",
            ch,
            allowed: "0-9",
        });
    }
    let (serial, found) = digits.as_bytes().split_at(S10_SERIAL_DIGITS);
    let expected = check::s10(serial);
    if found[0] != expected {
        return Err(BarcodeError::CheckCharacter {
            format: Format::UpuS10,
            expected: char::from(expected),
            found: char::from(found[0]),
        });
    }
    Ok(TrackingNumber::UpuS10(data.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s10_numbers_are_checked() {
        let t = parse_s10("EJ123456785JP").unwrap();
        assert_eq!(t.s10_country(), Some("JP"));
        assert_eq!(t.possible_carriers(), &[Carrier::JapanPost]);
        assert_eq!(
            parse_s10("EJ123456784JP").unwrap_err(),
            BarcodeError::CheckCharacter {
                format: Format::UpuS10,
                expected: '5',
                found: '4'
            }
        );
        assert!(matches!(
            parse_s10("EJ12345678XJP"),
            Err(BarcodeError::BadCharacter { ch: 'X', .. })
        ));
        let foreign = parse_s10("RR123456785GB").unwrap();
        assert!(foreign.possible_carriers().is_empty());
        assert_eq!(foreign.s10_country(), Some("GB"));
    }

    #[test]
    fn s10_shape_needs_upper_case_letters_at_both_ends() {
        assert!(looks_like_s10("EJ123456785JP"));
        assert!(!looks_like_s10("ej123456785JP"));
        assert!(!looks_like_s10("EJ123456785J"));
        assert!(!looks_like_s10("E1123456785JP"));
    }

    #[test]
    fn twelve_digit_slips_could_be_any_of_three_carriers() {
        let t = TrackingNumber::Japan12("444413758703".into());
        assert_eq!(t.possible_carriers().len(), 3);
        assert_eq!(t.s10_country(), None);
        assert_eq!(t.as_str(), "444413758703");
    }
}
