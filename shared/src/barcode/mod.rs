//! What a station scanner sends: one line of text, classified and validated into a [`Scan`].
//!
//! The rule of this module is that bad input never becomes a wrong record. Every format that has
//! a check character is verified; an unrecognised or damaged scan is a [`BarcodeError`] naming
//! the format that was recognised and what is wrong with it, short enough for a station display.
//! Nothing here does IO or reads a clock.
//!
//! # Formats
//!
//! | scan | example | check |
//! | --- | --- | --- |
//! | EAN-13 / JAN, EAN-8, UPC-A, GTIN-14 | `4901234567894` | GS1 mod 10 |
//! | GS1 element string, FNC1 form | `]C1` `0104912345678904` `10LOT42` GS `21SN001` | per AI |
//! | GS1 element string, bracketed | `(01)04912345678904(10)LOT42(21)SN001` | per AI |
//! | RMA | `RMA-0123456789-L` | ISO/IEC 7064 MOD 37,36 |
//! | LPN | `LPN-OSAKA-00A3-0000017` + check | ISO/IEC 7064 MOD 37,36 |
//! | station command card | `CMD-GRADE-A-` + check | ISO/IEC 7064 MOD 37,36 |
//! | bin (shelf-edge label) | `BIN-A0103-` + check | ISO/IEC 7064 MOD 37,36 |
//! | tote (store drop-offs) | `TOTE-0123456789-` + check | ISO/IEC 7064 MOD 37,36 |
//! | staff badge | `BADGE-0042` + check | ISO/IEC 7064 MOD 37,36 |
//! | Yamato / Sagawa / Japan Post slip | `444413758703` | 7DR (first 11 digits mod 7) |
//! | UPU S10 (international post) | `EJ123456785JP` | UPU S10 mod 11 |
//!
//! Our own labels use ISO/IEC 7064 MOD 37,36 because it is a published standard (ISAN and GRid
//! use it) whose single check character stays inside `0-9 A-Z`: it fits
//! [`Lpn`](crate::domain::Lpn) and [`RmaId`](crate::domain::RmaId), prints in Code 39 and Code 128 without escapes, and, unlike MOD 37-2, never needs
//! the `*` that Code 39 reserves. It detects every single-character substitution, which is what
//! a smudged or misread label produces, and almost every adjacent transposition.
//!
//! # Twelve digits
//!
//! A UPC-A and a Japanese carrier slip are both 12 digits. A random 12-digit string passes the
//! UPC-A check one time in ten and the 7DR check one time in ten, so both checks decide:
//!
//! - valid only as UPC-A: a product; valid only as 7DR: a tracking number;
//! - valid as both: [`ParseOptions::twelve_digits`] decides; the default is the product, and a
//!   station that receives parcels uses [`ParseOptions::receiving_parcels`];
//! - valid as neither: [`BarcodeError::TwelveDigits`], naming both expected check digits.
//!
//! A scanner that sends AIM symbology identifiers settles it without guessing: a UPC-A is only
//! ever printed as a UPC-A symbol (`]E0`), while carriers print slips in Codabar (NW-7), ITF or
//! Code 128, so any other identifier rules the product out and `]E0` rules the slip out.
//!
//! # Scanner set-up this module assumes
//!
//! - UPC-E is expanded to UPC-A by the scanner. Unexpanded UPC-E is 8 digits, like EAN-8, and
//!   would name a different product; under `]E0` it is refused, without an identifier it cannot
//!   be told apart (UPC-E is rare on goods sold in Japan, EAN-8 "short JAN" is not).
//! - Codabar start/stop characters are not transmitted.
//! - The keyboard wedge sends half-width characters; full-width ones (an IME left on) are
//!   refused with [`BarcodeError::FullWidth`] so staff know what to switch.

mod check;
mod gs1;
mod gtin;
mod labels;
mod tracking;

#[cfg(test)]
mod tests;

use std::fmt;

use thiserror::Error;

use crate::domain::DomainError;

pub use gs1::{Ai, DateProblem, Gs1Date, Gs1Element, Gs1Message, Gs1Value, GS1_TEXT_LEN_MAX};
pub use gtin::{ean13_complete, Gtin, GtinKind, GTIN14_LEN};
pub use labels::{
    badge_encode, bin_encode, command_encode, lpn_encode, lpn_site_code, rma_encode, tote_encode,
    Badge, BinLabel, LpnLabel, RmaLabel, StationCommand, ToteLabel, BADGE_DIGITS_MAX,
    BADGE_DIGITS_MIN, BADGE_PREFIX, BIN_CODE_LEN_MAX, BIN_PREFIX, COMMAND_PREFIX,
    LPN_COUNTER_DIGITS_MAX, LPN_COUNTER_DIGITS_MIN, LPN_GENERATION_DIGITS, LPN_PREFIX,
    LPN_SITE_CODE_LEN_MAX, RMA_BODY_LEN, RMA_PREFIX, TOTE_PREFIX,
};
pub use tracking::{japan12_encode, Carrier, TrackingNumber};

/// Longest scan accepted, in bytes, after the line ending is trimmed. Comfortably above every
/// format here (the longest LPN is 64 bytes, a GS1-128 symbol holds at most 48 data characters)
/// and small enough that a stuck key or a scanner in the wrong mode is refused at once.
pub const MAX_SCAN_BYTES: usize = 128;

/// ASCII GS, which scanners transmit for FNC1 inside a GS1 element string.
pub const GS: char = '\u{1D}';

/// Length of an AIM symbology identifier (ISO/IEC 15424): `]`, a code letter, a modifier.
const SYMBOLOGY_ID_LEN: usize = 3;

/// Full-width forms of the printable ASCII characters (U+FF01..U+FF5E) and the ideographic
/// space, which a keyboard-wedge scanner produces when an IME is on.
const FULL_WIDTH: std::ops::RangeInclusive<char> = '\u{FF01}'..='\u{FF5E}';
const IDEOGRAPHIC_SPACE: char = '\u{3000}';

/// What the data after a symbology identifier is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carries {
    /// A GS1 element string in FNC1 form.
    Gs1,
    /// EAN-13, UPC-A (as 12 or 13 digits) or unexpanded UPC-E.
    Ean13OrUpc,
    /// EAN-8.
    Ean8,
    /// Anything else; never a UPC-A.
    Plain,
}

/// AIM symbology identifiers we know. An unknown one is refused rather than guessed at.
const SYMBOLOGIES: &[(&str, Carries)] = &[
    ("]C1", Carries::Gs1),        // GS1-128
    ("]e0", Carries::Gs1),        // GS1 DataBar
    ("]d2", Carries::Gs1),        // GS1 DataMatrix
    ("]Q3", Carries::Gs1),        // GS1 QR Code
    ("]E0", Carries::Ean13OrUpc), // EAN-13, UPC-A, UPC-E
    ("]E4", Carries::Ean8),       // EAN-8
    ("]C0", Carries::Plain),      // Code 128
    ("]A0", Carries::Plain),      // Code 39
    ("]F0", Carries::Plain),      // Codabar (NW-7)
    ("]I0", Carries::Plain),      // ITF
    ("]Q1", Carries::Plain),      // QR Code
    ("]d1", Carries::Plain),      // Data Matrix
];

/// Which reading wins when 12 digits are valid both as a UPC-A and as a carrier slip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TwelveDigitPreference {
    /// Products are what most stations scan.
    #[default]
    Product,
    /// For a receiving station that scans parcel labels.
    Tracking,
}

/// Per-station scanner configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ParseOptions {
    pub twelve_digits: TwelveDigitPreference,
}

impl ParseOptions {
    /// A station that receives parcels: ambiguous 12 digits are a tracking number.
    pub fn receiving_parcels() -> Self {
        Self {
            twelve_digits: TwelveDigitPreference::Tracking,
        }
    }
}

/// One validated scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scan {
    /// A trade item number from an EAN/UPC symbol or a bare GTIN-14.
    Product(Gtin),
    /// A GS1 element string (GS1-128 and the other GS1 symbologies, or the bracketed form).
    Gs1(Gs1Message),
    Rma(RmaLabel),
    Lpn(LpnLabel),
    Command(StationCommand),
    Badge(Badge),
    Tracking(TrackingNumber),
    Bin(BinLabel),
    Tote(ToteLabel),
}

impl Scan {
    pub fn format(&self) -> Format {
        match self {
            Self::Product(g) => g.kind().format(),
            Self::Gs1(_) => Format::Gs1,
            Self::Rma(_) => Format::Rma,
            Self::Lpn(_) => Format::Lpn,
            Self::Command(_) => Format::Command,
            Self::Badge(_) => Format::Badge,
            Self::Bin(_) => Format::Bin,
            Self::Tote(_) => Format::Tote,
            Self::Tracking(TrackingNumber::Japan12(_)) => Format::CarrierSlip,
            Self::Tracking(TrackingNumber::UpuS10(_)) => Format::UpuS10,
        }
    }
}

/// A recognised format, as errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Ean8,
    UpcA,
    Ean13,
    Gtin14,
    Gs1,
    Rma,
    Lpn,
    Command,
    Badge,
    Bin,
    Tote,
    /// The 12-digit 7DR slips of Yamato, Sagawa and Japan Post.
    CarrierSlip,
    UpuS10,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ean8 => "EAN-8",
            Self::UpcA => "UPC-A",
            Self::Ean13 => "EAN-13",
            Self::Gtin14 => "GTIN-14",
            Self::Gs1 => "GS1",
            Self::Rma => "RMA",
            Self::Lpn => "LPN",
            Self::Command => "command card",
            Self::Badge => "staff badge",
            Self::Bin => "bin label",
            Self::Tote => "tote label",
            Self::CarrierSlip => "carrier slip",
            Self::UpuS10 => "UPU S10",
        })
    }
}

/// "4" or "4 to 8", for length errors.
fn count_text(min: usize, max: usize) -> String {
    if min == max {
        min.to_string()
    } else {
        format!("{min} to {max}")
    }
}

/// Why a scan was refused. Positions are 1-based character positions in the scanned text.
#[derive(Debug, Error, PartialEq)]
pub enum BarcodeError {
    #[error("empty scan")]
    Empty,
    #[error("scan is {len} bytes, longer than the {MAX_SCAN_BYTES} accepted")]
    TooLong { len: usize },
    #[error("control character {code:#04x} at position {position}")]
    ControlCharacter { position: usize, code: u8 },
    #[error("full-width character {ch:?} at position {position}: switch the input to half-width")]
    FullWidth { position: usize, ch: char },
    #[error("character {ch:?} at position {position} is not ASCII")]
    NonAscii { position: usize, ch: char },
    #[error("unknown symbology identifier {id:?}")]
    UnknownSymbology { id: String },
    #[error("unrecognised barcode {text:?}")]
    UnknownFormat { text: String },
    #[error("{len} digits fit no numeric format (EAN-8: 8, UPC-A: 12, EAN-13: 13, GTIN-14: 14)")]
    DigitCount { len: usize },
    #[error("UPC-E {digits}: set the scanner to expand UPC-E to UPC-A")]
    UnexpandedUpcE { digits: String },
    #[error("{format}: expected the form {expected}")]
    Shape {
        format: Format,
        expected: &'static str,
    },
    #[error("{format}: {part} has {found} characters, expected {}", count_text(*min, *max))]
    Length {
        format: Format,
        part: &'static str,
        min: usize,
        max: usize,
        found: usize,
    },
    #[error("{format}: {part} has character {ch:?}; allowed: {allowed}")]
    BadCharacter {
        format: Format,
        part: &'static str,
        ch: char,
        allowed: &'static str,
    },
    #[error("{format}: check character should be {expected}, found {found}")]
    CheckCharacter {
        format: Format,
        expected: char,
        found: char,
    },
    #[error(
        "12 digits {digits}: check digit {found} fits neither UPC-A (expects {upc_a}) \
         nor a carrier slip (expects {carrier_slip})"
    )]
    TwelveDigits {
        digits: String,
        found: char,
        upc_a: char,
        carrier_slip: char,
    },
    #[error("{format}: no check character")]
    MissingCheck { format: Format },
    #[error("command card: unknown command {name:?}")]
    UnknownCommand { name: String },
    #[error("LPN: counter {digits} is zero-padded beyond {LPN_COUNTER_DIGITS_MIN} digits")]
    LpnCounterNotCanonical { digits: String },
    #[error("LPN: counter {digits} is larger than {}", u64::MAX)]
    LpnCounterTooLarge { digits: String },
    #[error("GS1: no data")]
    Gs1Empty,
    #[error("GS1: expected an application identifier at {found:?}")]
    Gs1ExpectedAi { found: String },
    #[error("GS1: unknown application identifier ({ai})")]
    Gs1UnknownAi { ai: String },
    #[error("GS1 {ai}: {found} characters, expected {}", count_text(*min, *max))]
    Gs1Length {
        ai: Ai,
        min: usize,
        max: usize,
        found: usize,
    },
    #[error("GS1 {ai}: character {ch:?} is not allowed")]
    Gs1BadCharacter { ai: Ai, ch: char },
    #[error("GS1 {ai}: check digit should be {expected}, found {found}")]
    Gs1CheckDigit { ai: Ai, expected: char, found: char },
    #[error("GS1 {ai}: {value} is not a date: {problem}")]
    Gs1BadDate {
        ai: Ai,
        value: String,
        problem: DateProblem,
    },
    #[error("GS1 {ai}: appears twice with different values")]
    Gs1DuplicateAi { ai: Ai },
    /// A domain constructor refused a value this module built; only reachable through a bug.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// Classifies and validates one scan with the default options.
pub fn parse(input: &str) -> Result<Scan, BarcodeError> {
    parse_with(input, ParseOptions::default())
}

/// Classifies and validates one scan.
pub fn parse_with(input: &str, options: ParseOptions) -> Result<Scan, BarcodeError> {
    let text = clean(input)?;
    let (carries, data) = split_symbology(text)?;
    let offset = text.len() - data.len();
    let gs1 = match carries {
        Some(c) => c == Carries::Gs1,
        None => data.starts_with(GS),
    };
    if gs1 {
        return gs1::parse_fnc1(data).map(Scan::Gs1);
    }
    // Only FNC1 form gives GS a meaning; anywhere else it is line noise.
    if let Some(i) = data.find(GS) {
        return Err(BarcodeError::ControlCharacter {
            position: offset + i + 1,
            code: GS as u8,
        });
    }
    if data.is_empty() {
        return Err(BarcodeError::Empty);
    }
    match carries {
        Some(Carries::Ean13OrUpc | Carries::Ean8) => parse_ean_upc(data, carries),
        _ => parse_plain(data, options, carries == Some(Carries::Plain)),
    }
}

/// Input hygiene: trims the line ending and refuses what no format contains, naming where.
fn clean(input: &str) -> Result<&str, BarcodeError> {
    let text = input.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(BarcodeError::Empty);
    }
    if text.len() > MAX_SCAN_BYTES {
        return Err(BarcodeError::TooLong { len: text.len() });
    }
    for (i, ch) in text.chars().enumerate() {
        let position = i + 1;
        if FULL_WIDTH.contains(&ch) || ch == IDEOGRAPHIC_SPACE {
            return Err(BarcodeError::FullWidth { position, ch });
        }
        if !ch.is_ascii() {
            return Err(BarcodeError::NonAscii { position, ch });
        }
        if ch.is_ascii_control() && ch != GS {
            return Err(BarcodeError::ControlCharacter {
                position,
                code: ch as u8,
            });
        }
    }
    Ok(text)
}

/// Splits off an AIM symbology identifier, if the scanner sends them. `text` is ASCII.
fn split_symbology(text: &str) -> Result<(Option<Carries>, &str), BarcodeError> {
    if !text.starts_with(']') {
        return Ok((None, text));
    }
    let id = text.get(..SYMBOLOGY_ID_LEN).unwrap_or(text);
    match SYMBOLOGIES.iter().find(|(known, _)| *known == id) {
        Some((_, carries)) => Ok((Some(*carries), &text[SYMBOLOGY_ID_LEN..])),
        None => Err(BarcodeError::UnknownSymbology { id: id.to_owned() }),
    }
}

/// Data from an EAN/UPC symbol: only a GTIN can be in it.
fn parse_ean_upc(data: &str, carries: Option<Carries>) -> Result<Scan, BarcodeError> {
    if let Some(ch) = data.chars().find(|c| !c.is_ascii_digit()) {
        return Err(BarcodeError::BadCharacter {
            format: Format::Ean13,
            part: "EAN/UPC symbol",
            ch,
            allowed: "0-9",
        });
    }
    let kind = match (carries, data.len()) {
        (Some(Carries::Ean8), 8) => GtinKind::Ean8,
        (Some(Carries::Ean13OrUpc), 12) => GtinKind::UpcA,
        (Some(Carries::Ean13OrUpc), 13) => GtinKind::Ean13,
        (Some(Carries::Ean13OrUpc), 8) => {
            return Err(BarcodeError::UnexpandedUpcE {
                digits: data.to_owned(),
            })
        }
        (_, len) => return Err(BarcodeError::DigitCount { len }),
    };
    gtin::parse(data, kind).map(Scan::Product)
}

/// Data without a symbology identifier, or from a symbology that is not EAN/UPC (`plain`).
fn parse_plain(data: &str, options: ParseOptions, plain: bool) -> Result<Scan, BarcodeError> {
    if data.starts_with('(') {
        return gs1::parse_bracketed(data).map(Scan::Gs1);
    }
    if data.starts_with(RMA_PREFIX) {
        return labels::parse_rma(data).map(Scan::Rma);
    }
    if data.starts_with(LPN_PREFIX) {
        return labels::parse_lpn(data).map(Scan::Lpn);
    }
    if data.starts_with(COMMAND_PREFIX) {
        return labels::parse_command(data).map(Scan::Command);
    }
    if data.starts_with(BADGE_PREFIX) {
        return labels::parse_badge(data).map(Scan::Badge);
    }
    if data.starts_with(BIN_PREFIX) {
        return labels::parse_bin(data).map(Scan::Bin);
    }
    if data.starts_with(TOTE_PREFIX) {
        return labels::parse_tote(data).map(Scan::Tote);
    }
    if data.bytes().all(|b| b.is_ascii_digit()) {
        return parse_digits(data, options, plain);
    }
    if tracking::looks_like_s10(data) {
        return tracking::parse_s10(data).map(Scan::Tracking);
    }
    Err(BarcodeError::UnknownFormat {
        text: data.to_owned(),
    })
}

fn parse_digits(digits: &str, options: ParseOptions, plain: bool) -> Result<Scan, BarcodeError> {
    let kind = match digits.len() {
        8 => GtinKind::Ean8,
        12 => return parse_twelve(digits, options, plain),
        13 => GtinKind::Ean13,
        GTIN14_LEN => GtinKind::Gtin14,
        len => return Err(BarcodeError::DigitCount { len }),
    };
    gtin::parse(digits, kind).map(Scan::Product)
}

/// See "Twelve digits" in the module documentation.
fn parse_twelve(digits: &str, options: ParseOptions, plain: bool) -> Result<Scan, BarcodeError> {
    let d = digits.as_bytes();
    let (body, found) = (&d[..11], d[11]);
    let upc_a = check::gs1_mod10(body);
    let carrier_slip = check::seven_dr(body);
    let as_product = !plain && found == upc_a;
    let as_tracking = found == carrier_slip;
    let prefer_tracking = options.twelve_digits == TwelveDigitPreference::Tracking;
    if as_tracking && (!as_product || prefer_tracking) {
        return Ok(Scan::Tracking(TrackingNumber::Japan12(digits.to_owned())));
    }
    if as_product {
        return gtin::parse(digits, GtinKind::UpcA).map(Scan::Product);
    }
    if plain {
        return Err(BarcodeError::CheckCharacter {
            format: Format::CarrierSlip,
            expected: char::from(carrier_slip),
            found: char::from(found),
        });
    }
    Err(BarcodeError::TwelveDigits {
        digits: digits.to_owned(),
        found: char::from(found),
        upc_a: char::from(upc_a),
        carrier_slip: char::from(carrier_slip),
    })
}
