//! GS1 element strings: application identifiers (AIs) and their values, in the FNC1 form
//! scanners transmit and in the bracketed form printed under the symbol.
//!
//! Only syntax and check digits are verified. GS1's association rules (for example that (21)
//! needs a (01)) are left to the caller, which knows what its station needs.

use std::fmt;

use thiserror::Error;

use super::gtin::{Gtin, GtinKind, GTIN14_LEN};
use super::{check, BarcodeError, GS};

/// Longest value of (10) and (21), per the GS1 General Specifications.
pub const GS1_TEXT_LEN_MAX: usize = 20;

/// Digits of an SSCC, AI (00).
const SSCC_LEN: usize = 18;

/// Digits of a YYMMDD date.
const DATE_LEN: usize = 6;

/// Digits of the shortest and longest AI.
const AI_LEN_MIN: usize = 2;
const AI_LEN_MAX: usize = 4;

/// How much of the data an "expected an AI" error quotes.
const QUOTE_LEN: usize = 8;

/// GS1 AI encodable character set 82, allowed in alphanumeric values such as (10) and (21).
const CSET82: &str =
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// Length of the AIs that start with each two-digit prefix (GS1 General Specifications: all AIs
/// sharing the first two digits have the same length). In the FNC1 form nothing marks where an
/// AI ends, so this is what lets an unsupported AI be named exactly instead of guessed at.
const AI_LEN_BY_PREFIX: &[(std::ops::RangeInclusive<u8>, usize)] = &[
    (0..=4, 2),
    (10..=13, 2),
    (15..=17, 2),
    (20..=22, 2),
    (23..=25, 3),
    (30..=30, 2),
    (31..=36, 4),
    (37..=37, 2),
    (39..=39, 4),
    (40..=42, 3),
    (43..=43, 4),
    (70..=70, 4),
    (71..=71, 3),
    (72..=72, 4),
    (80..=82, 4),
    (90..=99, 2),
];

/// The AIs this module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ai {
    /// (00) Serial Shipping Container Code.
    Sscc,
    /// (01) GTIN of the trade item.
    Gtin,
    /// (02) GTIN of the trade items contained in a logistic unit.
    Content,
    /// (10) Batch or lot number.
    Batch,
    /// (11) Production date.
    ProductionDate,
    /// (13) Packaging date.
    PackagingDate,
    /// (15) Best before date.
    BestBefore,
    /// (16) Sell by date.
    SellBy,
    /// (17) Expiration date.
    Expiry,
    /// (21) Serial number.
    Serial,
}

/// What the value of an AI looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueFormat {
    /// A GS1 key of this many digits, the last one a mod-10 check digit.
    Key(usize),
    /// YYMMDD.
    Date,
    /// 1 to this many characters of CSET 82; the only variable-length kind, ended by FNC1.
    Text(usize),
}

impl Ai {
    pub const ALL: [Ai; 10] = [
        Self::Sscc,
        Self::Gtin,
        Self::Content,
        Self::Batch,
        Self::ProductionDate,
        Self::PackagingDate,
        Self::BestBefore,
        Self::SellBy,
        Self::Expiry,
        Self::Serial,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Sscc => "00",
            Self::Gtin => "01",
            Self::Content => "02",
            Self::Batch => "10",
            Self::ProductionDate => "11",
            Self::PackagingDate => "13",
            Self::BestBefore => "15",
            Self::SellBy => "16",
            Self::Expiry => "17",
            Self::Serial => "21",
        }
    }

    /// The GS1 data title, as printed next to the value on a label.
    pub fn title(self) -> &'static str {
        match self {
            Self::Sscc => "SSCC",
            Self::Gtin => "GTIN",
            Self::Content => "CONTENT",
            Self::Batch => "BATCH/LOT",
            Self::ProductionDate => "PROD DATE",
            Self::PackagingDate => "PACK DATE",
            Self::BestBefore => "BEST BEFORE",
            Self::SellBy => "SELL BY",
            Self::Expiry => "EXPIRY",
            Self::Serial => "SERIAL",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|ai| ai.code() == code)
    }

    fn value_format(self) -> ValueFormat {
        match self {
            Self::Sscc => ValueFormat::Key(SSCC_LEN),
            Self::Gtin | Self::Content => ValueFormat::Key(GTIN14_LEN),
            Self::Batch | Self::Serial => ValueFormat::Text(GS1_TEXT_LEN_MAX),
            Self::ProductionDate
            | Self::PackagingDate
            | Self::BestBefore
            | Self::SellBy
            | Self::Expiry => ValueFormat::Date,
        }
    }
}

impl fmt::Display for Ai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}) {}", self.code(), self.title())
    }
}

/// A GS1 YYMMDD date. The century is not in the data: [`Gs1Date::year`] resolves it against
/// the caller's clock, as GS1 specifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gs1Date {
    yy: u8,
    month: u8,
    day: u8,
}

impl Gs1Date {
    pub fn yy(&self) -> u8 {
        self.yy
    }

    pub fn month(&self) -> u8 {
        self.month
    }

    /// `None` for day `00`, which GS1 defines as "the last day of the month".
    pub fn day(&self) -> Option<u8> {
        (self.day != 0).then_some(self.day)
    }

    /// The four-digit year, by the GS1 sliding window (General Specifications §7.12): a
    /// two-digit year 51 to 99 ahead of the current one is in the previous century, one 50 or
    /// more behind it is in the next century, anything else in the current one.
    pub fn year(&self, current_year: i32) -> i32 {
        let century = current_year.div_euclid(100) * 100;
        let diff = i32::from(self.yy) - current_year.rem_euclid(100);
        if diff >= 51 {
            century - 100 + i32::from(self.yy)
        } else if diff <= -50 {
            century + 100 + i32::from(self.yy)
        } else {
            century + i32::from(self.yy)
        }
    }
}

impl fmt::Display for Gs1Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}{:02}{:02}", self.yy, self.month, self.day)
    }
}

/// Why six digits are not a date.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum DateProblem {
    #[error("month {0:02} is outside 01-12")]
    Month(u8),
    #[error("month {month:02} has {last} days, not {day}")]
    Day { month: u8, day: u8, last: u8 },
}

/// Checks a YYMMDD date. February 29 is accepted when YY is a multiple of 4: without the
/// century that is exact for 2000-2099, the only century the GS1 window reaches until 2050.
fn parse_date(yymmdd: &[u8]) -> Result<Gs1Date, DateProblem> {
    let two = |i: usize| (yymmdd[i] - b'0') * 10 + (yymmdd[i + 1] - b'0');
    let (yy, month, day) = (two(0), two(2), two(4));
    let last = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if yy % 4 == 0 => 29,
        2 => 28,
        _ => return Err(DateProblem::Month(month)),
    };
    if day > last {
        return Err(DateProblem::Day { month, day, last });
    }
    Ok(Gs1Date { yy, month, day })
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Gs1Value {
    /// (00): the 18 digits, check digit verified.
    Sscc(String),
    /// (01), (02): check digit verified.
    Gtin(Gtin),
    /// (10), (21).
    Text(String),
    /// (11), (13), (15), (16), (17).
    Date(Gs1Date),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gs1Element {
    pub ai: Ai,
    pub value: Gs1Value,
}

/// The elements of one GS1 element string, in the order scanned, each AI at most once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gs1Message {
    elements: Vec<Gs1Element>,
}

impl Gs1Message {
    pub fn elements(&self) -> &[Gs1Element] {
        &self.elements
    }

    pub fn get(&self, ai: Ai) -> Option<&Gs1Value> {
        self.elements.iter().find(|e| e.ai == ai).map(|e| &e.value)
    }

    pub fn gtin(&self) -> Option<&Gtin> {
        match self.get(Ai::Gtin) {
            Some(Gs1Value::Gtin(g)) => Some(g),
            _ => None,
        }
    }

    pub fn sscc(&self) -> Option<&str> {
        match self.get(Ai::Sscc) {
            Some(Gs1Value::Sscc(s)) => Some(s),
            _ => None,
        }
    }

    pub fn batch(&self) -> Option<&str> {
        self.text(Ai::Batch)
    }

    pub fn serial(&self) -> Option<&str> {
        self.text(Ai::Serial)
    }

    pub fn expiry(&self) -> Option<Gs1Date> {
        match self.get(Ai::Expiry) {
            Some(Gs1Value::Date(d)) => Some(*d),
            _ => None,
        }
    }

    fn text(&self, ai: Ai) -> Option<&str> {
        match self.get(ai) {
            Some(Gs1Value::Text(s)) => Some(s),
            _ => None,
        }
    }

    /// GS1 allows an AI to repeat only with the same value; a repeat adds nothing.
    fn push(&mut self, element: Gs1Element) -> Result<(), BarcodeError> {
        match self.get(element.ai) {
            None => {
                self.elements.push(element);
                Ok(())
            }
            Some(v) if *v == element.value => Ok(()),
            Some(_) => Err(BarcodeError::Gs1DuplicateAi { ai: element.ai }),
        }
    }
}

fn quote(data: &str) -> String {
    data.chars().take(QUOTE_LEN).collect()
}

/// The FNC1 form, after the symbology identifier. Fixed-length values need no separator; a
/// variable-length one is ended by GS or the end of the data. A GS after a fixed-length value or
/// at the very end is tolerated because some printers emit one.
pub(crate) fn parse_fnc1(data: &str) -> Result<Gs1Message, BarcodeError> {
    // Some scanners transmit the leading FNC1 itself as a GS.
    let mut rest = data.strip_prefix(GS).unwrap_or(data);
    if rest.is_empty() {
        return Err(BarcodeError::Gs1Empty);
    }
    let mut message = Gs1Message {
        elements: Vec::new(),
    };
    while !rest.is_empty() {
        let (ai, after) = read_ai(rest)?;
        let end = after.find(GS).unwrap_or(after.len());
        let len = match ai.value_format() {
            ValueFormat::Key(n) => n,
            ValueFormat::Date => DATE_LEN,
            ValueFormat::Text(_) => end,
        };
        if end < len {
            return Err(length_error(ai, end));
        }
        message.push(element(ai, &after[..len])?)?;
        rest = after[len..].strip_prefix(GS).unwrap_or(&after[len..]);
    }
    Ok(message)
}

/// Reads the AI at the start of `rest`, by the length its first two digits imply.
fn read_ai(rest: &str) -> Result<(Ai, &str), BarcodeError> {
    let expected = || BarcodeError::Gs1ExpectedAi { found: quote(rest) };
    let prefix = rest.get(..AI_LEN_MIN).ok_or_else(expected)?;
    let prefix_value: u8 = prefix
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| prefix.parse().ok())
        .flatten()
        .ok_or_else(expected)?;
    let Some(&(_, ai_len)) = AI_LEN_BY_PREFIX
        .iter()
        .find(|(range, _)| range.contains(&prefix_value))
    else {
        return Err(BarcodeError::Gs1UnknownAi {
            ai: prefix.to_owned(),
        });
    };
    let code = rest.get(..ai_len).ok_or_else(expected)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    let ai = Ai::from_code(code).ok_or_else(|| BarcodeError::Gs1UnknownAi {
        ai: code.to_owned(),
    })?;
    Ok((ai, &rest[ai_len..]))
}

/// The bracketed form `(01)04912345678904(10)LOT42`. A `(` always starts the next AI, so a
/// value containing parentheses (which CSET 82 allows) can only be read from the FNC1 form.
pub(crate) fn parse_bracketed(data: &str) -> Result<Gs1Message, BarcodeError> {
    let mut message = Gs1Message {
        elements: Vec::new(),
    };
    let mut rest = data;
    while !rest.is_empty() {
        let expected = || BarcodeError::Gs1ExpectedAi { found: quote(rest) };
        let (code, after) = rest
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .ok_or_else(expected)?;
        if !(AI_LEN_MIN..=AI_LEN_MAX).contains(&code.len())
            || !code.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(expected());
        }
        let ai = Ai::from_code(code).ok_or_else(|| BarcodeError::Gs1UnknownAi {
            ai: code.to_owned(),
        })?;
        let end = after.find('(').unwrap_or(after.len());
        message.push(element(ai, &after[..end])?)?;
        rest = &after[end..];
    }
    if message.elements.is_empty() {
        return Err(BarcodeError::Gs1Empty);
    }
    Ok(message)
}

fn length_error(ai: Ai, found: usize) -> BarcodeError {
    let (min, max) = match ai.value_format() {
        ValueFormat::Key(n) => (n, n),
        ValueFormat::Date => (DATE_LEN, DATE_LEN),
        ValueFormat::Text(max) => (1, max),
    };
    BarcodeError::Gs1Length {
        ai,
        min,
        max,
        found,
    }
}

/// Validates one value: length, character set, then check digit or calendar.
fn element(ai: Ai, value: &str) -> Result<Gs1Element, BarcodeError> {
    let bad_char = |allowed: &dyn Fn(char) -> bool| {
        value
            .chars()
            .find(|c| !allowed(*c))
            .map(|ch| BarcodeError::Gs1BadCharacter { ai, ch })
    };
    let value = match ai.value_format() {
        ValueFormat::Key(n) => {
            if value.len() != n {
                return Err(length_error(ai, value.len()));
            }
            if let Some(e) = bad_char(&|c| c.is_ascii_digit()) {
                return Err(e);
            }
            let (body, found) = value.as_bytes().split_at(n - 1);
            let expected = check::gs1_mod10(body);
            if found[0] != expected {
                return Err(BarcodeError::Gs1CheckDigit {
                    ai,
                    expected: char::from(expected),
                    found: char::from(found[0]),
                });
            }
            if n == GTIN14_LEN {
                Gs1Value::Gtin(super::gtin::parse(value, GtinKind::Gtin14)?)
            } else {
                Gs1Value::Sscc(value.to_owned())
            }
        }
        ValueFormat::Date => {
            if value.len() != DATE_LEN {
                return Err(length_error(ai, value.len()));
            }
            if let Some(e) = bad_char(&|c| c.is_ascii_digit()) {
                return Err(e);
            }
            let date =
                parse_date(value.as_bytes()).map_err(|problem| BarcodeError::Gs1BadDate {
                    ai,
                    value: value.to_owned(),
                    problem,
                })?;
            Gs1Value::Date(date)
        }
        ValueFormat::Text(max) => {
            if value.is_empty() || value.len() > max {
                return Err(length_error(ai, value.len()));
            }
            if let Some(e) = bad_char(&|c| CSET82.contains(c)) {
                return Err(e);
            }
            Gs1Value::Text(value.to_owned())
        }
    };
    Ok(Gs1Element { ai, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GTIN: &str = "04912345678904";

    fn fnc1(parts: &[&str]) -> String {
        parts.join(&GS.to_string())
    }

    #[test]
    fn fnc1_form_reads_fixed_and_variable_fields() {
        let data = fnc1(&[&format!("01{GTIN}10LOT42"), "21SN001"]);
        let m = parse_fnc1(&data).unwrap();
        assert_eq!(m.gtin().unwrap().gtin14(), GTIN);
        assert_eq!(m.gtin().unwrap().kind(), GtinKind::Gtin14);
        assert_eq!(m.batch(), Some("LOT42"));
        assert_eq!(m.serial(), Some("SN001"));
        let order: Vec<Ai> = m.elements().iter().map(|e| e.ai).collect();
        assert_eq!(order, [Ai::Gtin, Ai::Batch, Ai::Serial]);
    }

    #[test]
    fn fnc1_form_tolerates_a_leading_a_trailing_and_a_needless_gs() {
        let data = format!("{GS}01{GTIN}{GS}17251231{GS}");
        let m = parse_fnc1(&data).unwrap();
        assert_eq!(m.gtin().unwrap().gtin14(), GTIN);
        assert_eq!(m.expiry().unwrap().to_string(), "251231");
    }

    #[test]
    fn bracketed_form_matches_the_fnc1_form() {
        let bracketed = parse_bracketed(&format!("(01){GTIN}(10)LOT42(21)SN001")).unwrap();
        let fnc1 = parse_fnc1(&fnc1(&[&format!("01{GTIN}10LOT42"), "21SN001"])).unwrap();
        assert_eq!(bracketed, fnc1);
    }

    #[test]
    fn sscc_is_checked() {
        let m = parse_bracketed("(00)106141411234567897").unwrap();
        assert_eq!(m.sscc(), Some("106141411234567897"));
        assert_eq!(
            parse_bracketed("(00)106141411234567898").unwrap_err(),
            BarcodeError::Gs1CheckDigit {
                ai: Ai::Sscc,
                expected: '7',
                found: '8'
            }
        );
    }

    #[test]
    fn a_wrong_gtin_check_digit_names_the_ai() {
        let err = parse_fnc1("0104912345678905").unwrap_err();
        assert_eq!(
            err,
            BarcodeError::Gs1CheckDigit {
                ai: Ai::Gtin,
                expected: '4',
                found: '5'
            }
        );
        assert_eq!(
            err.to_string(),
            "GS1 (01) GTIN: check digit should be 4, found 5"
        );
    }

    #[test]
    fn unknown_ais_are_named_exactly() {
        // (400) is a real three-digit AI that we do not read.
        assert_eq!(
            parse_fnc1(&format!("01{GTIN}400PO123")).unwrap_err(),
            BarcodeError::Gs1UnknownAi { ai: "400".into() }
        );
        // (3103) net weight: a four-digit AI.
        assert_eq!(
            parse_fnc1("3103001250").unwrap_err(),
            BarcodeError::Gs1UnknownAi { ai: "3103".into() }
        );
        // No AI starts with 05: only the prefix can be named.
        assert_eq!(
            parse_fnc1("0512345").unwrap_err(),
            BarcodeError::Gs1UnknownAi { ai: "05".into() }
        );
        assert_eq!(
            parse_bracketed("(99)X").unwrap_err(),
            BarcodeError::Gs1UnknownAi { ai: "99".into() }
        );
        assert_eq!(
            parse_fnc1("0512345").unwrap_err().to_string(),
            "GS1: unknown application identifier (05)"
        );
    }

    #[test]
    fn malformed_ais_are_refused() {
        for data in ["A1", "0", "31", &format!("01{GTIN}{GS}{GS}10X")] {
            assert!(
                matches!(parse_fnc1(data), Err(BarcodeError::Gs1ExpectedAi { .. })),
                "{data:?}"
            );
        }
        for data in [
            "01)x",
            "(01",
            "(1)x",
            "(01234)x",
            "(0A)x",
            &format!("x(01){GTIN}"),
        ] {
            assert!(
                matches!(
                    parse_bracketed(data),
                    Err(BarcodeError::Gs1ExpectedAi { .. })
                ),
                "{data:?}"
            );
        }
    }

    #[test]
    fn lengths_are_checked_per_ai() {
        // Truncated fixed field.
        assert_eq!(
            parse_fnc1("01049123").unwrap_err(),
            BarcodeError::Gs1Length {
                ai: Ai::Gtin,
                min: 14,
                max: 14,
                found: 6
            }
        );
        // A GS inside a fixed field.
        assert!(matches!(
            parse_fnc1(&format!("0104912{GS}345678904")),
            Err(BarcodeError::Gs1Length { found: 5, .. })
        ));
        assert!(matches!(
            parse_bracketed("(01)4912345678904"),
            Err(BarcodeError::Gs1Length { found: 13, .. })
        ));
        let long = "X".repeat(GS1_TEXT_LEN_MAX + 1);
        let err = parse_bracketed(&format!("(10){long}")).unwrap_err();
        assert_eq!(
            err,
            BarcodeError::Gs1Length {
                ai: Ai::Batch,
                min: 1,
                max: GS1_TEXT_LEN_MAX,
                found: GS1_TEXT_LEN_MAX + 1
            }
        );
        assert_eq!(
            err.to_string(),
            "GS1 (10) BATCH/LOT: 21 characters, expected 1 to 20"
        );
        assert!(matches!(
            parse_fnc1(&format!("10{GS}21A")),
            Err(BarcodeError::Gs1Length {
                ai: Ai::Batch,
                found: 0,
                ..
            })
        ));
        assert!(matches!(
            parse_bracketed("(21)"),
            Err(BarcodeError::Gs1Length {
                ai: Ai::Serial,
                found: 0,
                ..
            })
        ));
        assert!(parse_bracketed(&format!("(21){}", "x".repeat(GS1_TEXT_LEN_MAX))).is_ok());
    }

    #[test]
    fn characters_are_checked_per_ai() {
        assert_eq!(
            parse_bracketed("(10)LOT 42").unwrap_err(),
            BarcodeError::Gs1BadCharacter {
                ai: Ai::Batch,
                ch: ' '
            }
        );
        assert_eq!(
            parse_bracketed("(10)LOT#42").unwrap_err(),
            BarcodeError::Gs1BadCharacter {
                ai: Ai::Batch,
                ch: '#'
            }
        );
        assert_eq!(
            parse_bracketed("(01)0491234567890A").unwrap_err(),
            BarcodeError::Gs1BadCharacter {
                ai: Ai::Gtin,
                ch: 'A'
            }
        );
        assert!(matches!(
            parse_bracketed("(17)25O101"),
            Err(BarcodeError::Gs1BadCharacter { ch: 'O', .. })
        ));
        // Everything CSET 82 allows is accepted, parentheses included in the FNC1 form.
        assert_eq!(
            parse_fnc1("10a(b)-_/.:?").unwrap().batch(),
            Some("a(b)-_/.:?")
        );
    }

    #[test]
    fn dates_are_checked_against_the_calendar() {
        let date = |s: &str| parse_bracketed(&format!("(17){s}")).map(|m| m.expiry().unwrap());
        assert_eq!(date("251231").unwrap().day(), Some(31));
        assert_eq!(date("250200").unwrap().day(), None);
        assert_eq!(date("240229").unwrap().month(), 2);
        assert_eq!(
            date("250229").unwrap_err(),
            BarcodeError::Gs1BadDate {
                ai: Ai::Expiry,
                value: "250229".into(),
                problem: DateProblem::Day {
                    month: 2,
                    day: 29,
                    last: 28
                }
            }
        );
        assert!(matches!(
            date("251301"),
            Err(BarcodeError::Gs1BadDate {
                problem: DateProblem::Month(13),
                ..
            })
        ));
        assert!(matches!(
            date("250001"),
            Err(BarcodeError::Gs1BadDate {
                problem: DateProblem::Month(0),
                ..
            })
        ));
        assert!(matches!(
            date("250431"),
            Err(BarcodeError::Gs1BadDate {
                problem: DateProblem::Day { last: 30, .. },
                ..
            })
        ));
        assert_eq!(
            date("251301").unwrap_err().to_string(),
            "GS1 (17) EXPIRY: 251301 is not a date: month 13 is outside 01-12"
        );
        let m = parse_bracketed("(11)240101(13)240102(15)250101(16)250102").unwrap();
        assert!(matches!(m.get(Ai::SellBy), Some(Gs1Value::Date(_))));
    }

    #[test]
    fn the_century_follows_the_gs1_window() {
        let d = |yy| Gs1Date {
            yy,
            month: 1,
            day: 1,
        };
        assert_eq!(d(25).year(2025), 2025);
        assert_eq!(d(75).year(2025), 2075);
        assert_eq!(d(76).year(2025), 1976);
        assert_eq!(d(0).year(2025), 2000);
        assert_eq!(d(99).year(2050), 2099);
        assert_eq!(d(0).year(2050), 2100);
        assert_eq!(d(10).year(2090), 2110);
    }

    #[test]
    fn repeated_ais_must_agree() {
        let same = parse_bracketed("(10)A(10)A").unwrap();
        assert_eq!(same.elements().len(), 1);
        assert_eq!(
            parse_bracketed("(10)A(10)B").unwrap_err(),
            BarcodeError::Gs1DuplicateAi { ai: Ai::Batch }
        );
    }

    #[test]
    fn empty_messages_are_refused() {
        assert_eq!(parse_fnc1("").unwrap_err(), BarcodeError::Gs1Empty);
        assert_eq!(
            parse_fnc1(&GS.to_string()).unwrap_err(),
            BarcodeError::Gs1Empty
        );
    }

    #[test]
    fn the_prefix_table_covers_every_supported_ai() {
        for ai in Ai::ALL {
            let prefix: u8 = ai.code()[..2].parse().unwrap();
            let (_, len) = AI_LEN_BY_PREFIX
                .iter()
                .find(|(r, _)| r.contains(&prefix))
                .unwrap();
            assert_eq!(*len, ai.code().len(), "{ai}");
            assert_eq!(Ai::from_code(ai.code()), Some(ai));
        }
    }
}
