//! GTINs: EAN-13 (JAN), EAN-8, UPC-A (GTIN-12) and GTIN-14, normalised to GTIN-14 so one
//! product has one key whichever symbol it was scanned from.

use super::{check, BarcodeError, Format};

/// Digits of a GTIN-14, the form every GTIN is stored in.
pub const GTIN14_LEN: usize = 14;

/// GS1 Japan's country prefixes: a GTIN-13 or GTIN-8 starting with one of these is a JAN code.
const JAN_PREFIXES: [&str; 2] = ["45", "49"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GtinKind {
    Ean8,
    /// GTIN-12.
    UpcA,
    Ean13,
    /// ITF-14 cartons and AI (01).
    Gtin14,
}

impl GtinKind {
    pub fn digits(self) -> usize {
        match self {
            Self::Ean8 => 8,
            Self::UpcA => 12,
            Self::Ean13 => 13,
            Self::Gtin14 => GTIN14_LEN,
        }
    }

    pub(crate) fn format(self) -> Format {
        match self {
            Self::Ean8 => Format::Ean8,
            Self::UpcA => Format::UpcA,
            Self::Ean13 => Format::Ean13,
            Self::Gtin14 => Format::Gtin14,
        }
    }
}

/// A GTIN whose check digit has been verified.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gtin {
    gtin14: String,
    kind: GtinKind,
}

impl Gtin {
    /// The normalised key: left-padded with zeros to 14 digits.
    pub fn gtin14(&self) -> &str {
        &self.gtin14
    }

    /// The symbol it was read from.
    pub fn kind(&self) -> GtinKind {
        self.kind
    }

    /// The digits as the symbol carried them.
    pub fn as_scanned(&self) -> &str {
        &self.gtin14[GTIN14_LEN - self.kind.digits()..]
    }

    /// A JAN code: an EAN-13 or EAN-8 allocated by GS1 Japan.
    pub fn is_jan(&self) -> bool {
        matches!(self.kind, GtinKind::Ean13 | GtinKind::Ean8)
            && JAN_PREFIXES
                .iter()
                .any(|p| self.as_scanned().starts_with(p))
    }
}

/// Validates `digits` as a GTIN of `kind`: length, digits only, check digit.
pub(crate) fn parse(digits: &str, kind: GtinKind) -> Result<Gtin, BarcodeError> {
    let format = kind.format();
    if digits.len() != kind.digits() {
        return Err(BarcodeError::Length {
            format,
            part: "GTIN",
            min: kind.digits(),
            max: kind.digits(),
            found: digits.len(),
        });
    }
    if let Some(ch) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(BarcodeError::BadCharacter {
            format,
            part: "GTIN",
            ch,
            allowed: "0-9",
        });
    }
    let (body, found) = digits.as_bytes().split_at(digits.len() - 1);
    let expected = check::gs1_mod10(body);
    if found[0] != expected {
        return Err(BarcodeError::CheckCharacter {
            format,
            expected: char::from(expected),
            found: char::from(found[0]),
        });
    }
    Ok(Gtin {
        gtin14: format!("{digits:0>GTIN14_LEN$}"),
        kind,
    })
}

/// A JAN / EAN-13 from its first 12 digits: the GS1 check digit appended. For catalogues and
/// test data that are made, not scanned.
pub fn ean13_complete(first12: &str) -> Result<String, BarcodeError> {
    if first12.len() != 12 || !first12.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BarcodeError::Shape {
            format: Format::Ean13,
            expected: "12 digits before the check digit",
        });
    }
    let check = char::from(check::gs1_mod10(first12.as_bytes()));
    Ok(format!("{first12}{check}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_normalises_to_gtin14_and_keeps_what_was_scanned() {
        let cases = [
            ("4901234567894", GtinKind::Ean13, "04901234567894"),
            ("49123456", GtinKind::Ean8, "00000049123456"),
            ("012345678905", GtinKind::UpcA, "00012345678905"),
            ("14901234567891", GtinKind::Gtin14, "14901234567891"),
        ];
        for (digits, kind, gtin14) in cases {
            let g = parse(digits, kind).unwrap();
            assert_eq!(g.gtin14(), gtin14);
            assert_eq!(g.kind(), kind);
            assert_eq!(g.as_scanned(), digits);
        }
    }

    #[test]
    fn a_wrong_check_digit_names_the_kind_and_both_digits() {
        let err = parse("4901234567895", GtinKind::Ean13).unwrap_err();
        assert_eq!(
            err,
            BarcodeError::CheckCharacter {
                format: Format::Ean13,
                expected: '4',
                found: '5'
            }
        );
        assert_eq!(
            err.to_string(),
            "EAN-13: check character should be 4, found 5"
        );
        assert!(matches!(
            parse("49123457", GtinKind::Ean8),
            Err(BarcodeError::CheckCharacter {
                format: Format::Ean8,
                ..
            })
        ));
    }

    #[test]
    fn length_and_characters_are_checked_before_the_check_digit() {
        assert!(matches!(
            parse("490123456789", GtinKind::Ean13),
            Err(BarcodeError::Length { found: 12, .. })
        ));
        assert!(matches!(
            parse("49012345678A4", GtinKind::Ean13),
            Err(BarcodeError::BadCharacter { ch: 'A', .. })
        ));
    }

    #[test]
    fn jan_is_a_japanese_ean() {
        assert!(parse("4901234567894", GtinKind::Ean13).unwrap().is_jan());
        assert!(parse("49123456", GtinKind::Ean8).unwrap().is_jan());
        assert!(!parse("9501101021037", GtinKind::Ean13).unwrap().is_jan());
        // A UPC-A starting 45 is a US number, not a JAN.
        let upc = format!(
            "45000000000{}",
            char::from(check::gs1_mod10(b"45000000000"))
        );
        assert!(!parse(&upc, GtinKind::UpcA).unwrap().is_jan());
    }
}
