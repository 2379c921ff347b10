//! Modori's own labels: RMAs, LPNs, bins, station command cards and staff badges.
//!
//! Each ends in one check character: ISO/IEC 7064 MOD 37,36 over the label's letters and
//! digits in order, i.e. the text before the check character with its hyphens removed. The
//! prefix (`RMA`, `LPN`, `CMD`, `BADGE`) is part of it, so a body valid under one prefix is not
//! automatically valid under another. Hyphens are structure, not data: every parser requires
//! them at exact places, so a damaged hyphen is a shape error. Together, any single-character
//! substitution of a label is refused, never read as another label.

use std::fmt;

use crate::domain::{Bin, DefectCode, Disposition, Grade, Lpn, RmaId, SiteId, ToteId, ID_LEN_MAX};

use super::{check, BarcodeError, Format};

pub const RMA_PREFIX: &str = "RMA-";
/// Characters between `RMA-` and the `-` before the check character.
pub const RMA_BODY_LEN: usize = 10;

pub const LPN_PREFIX: &str = "LPN-";
/// Hex digits of the database generation.
pub const LPN_GENERATION_DIGITS: usize = 4;
/// The counter is zero-padded to this many digits.
pub const LPN_COUNTER_DIGITS_MIN: usize = 7;
/// Digits of `u64::MAX`, the largest counter.
pub const LPN_COUNTER_DIGITS_MAX: usize = 20;
/// Longest site code such that every LPN fits [`ID_LEN_MAX`]: the prefix, two hyphens, the
/// generation, the longest counter and the check character take the rest.
pub const LPN_SITE_CODE_LEN_MAX: usize = ID_LEN_MAX
    - LPN_PREFIX.len()
    - HYPHEN.len_utf8()
    - LPN_GENERATION_DIGITS
    - HYPHEN.len_utf8()
    - LPN_COUNTER_DIGITS_MAX
    - CHECK_LEN;

pub const COMMAND_PREFIX: &str = "CMD-";

pub const TOTE_PREFIX: &str = "TOTE-";

pub const BIN_PREFIX: &str = "BIN-";
/// Longest bin code: zone, aisle, bay and level (`A0103`) fit with room to spare, and a BIN
/// label stays short enough to print large on a shelf edge.
pub const BIN_CODE_LEN_MAX: usize = 12;

pub const BADGE_PREFIX: &str = "BADGE-";
pub const BADGE_DIGITS_MIN: usize = 4;
pub const BADGE_DIGITS_MAX: usize = 8;

/// Every label ends in exactly one check character.
const CHECK_LEN: usize = 1;
/// Separator between the parts of a label.
const HYPHEN: char = '-';

const RMA_SHAPE: &str = "RMA-<10 letters or digits>-<check>";
const LPN_SHAPE: &str = "LPN-<site>-<generation>-<counter><check>";
const COMMAND_SHAPE: &str = "CMD-<command>-<check>";
const BIN_SHAPE: &str = "BIN-<code>-<check>";
const TOTE_SHAPE: &str = "TOTE-<10 letters or digits>-<check>";

const UPPER_ALNUM: &str = "A-Z 0-9";
const DIGITS: &str = "0-9";
const UPPER_HEX: &str = "0-9 A-F";

fn is_upper_alnum(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

fn is_upper_hex(c: char) -> bool {
    c.is_ascii_digit() || ('A'..='F').contains(&c)
}

/// The check character of a label whose text before the check is `text`.
fn label_check(format: Format, text: &str) -> Result<char, BarcodeError> {
    let data = text.bytes().filter(|b| char::from(*b) != HYPHEN);
    check::mod37_36(data)
        .map(char::from)
        .ok_or_else(|| BarcodeError::BadCharacter {
            format,
            part: "label",
            ch: text
                .chars()
                .find(|c| *c != HYPHEN && !is_upper_alnum(*c))
                .unwrap_or('?'),
            allowed: "A-Z 0-9 -",
        })
}

/// Verifies `found` against the check of `text`.
fn verify(format: Format, text: &str, found: &str) -> Result<(), BarcodeError> {
    let mut chars = found.chars();
    let (Some(found), None) = (chars.next(), chars.next()) else {
        return Err(BarcodeError::Length {
            format,
            part: "check character",
            min: CHECK_LEN,
            max: CHECK_LEN,
            found: found.len(),
        });
    };
    if !is_upper_alnum(found) {
        return Err(BarcodeError::BadCharacter {
            format,
            part: "check character",
            ch: found,
            allowed: UPPER_ALNUM,
        });
    }
    let expected = label_check(format, text)?;
    if found != expected {
        return Err(BarcodeError::CheckCharacter {
            format,
            expected,
            found,
        });
    }
    Ok(())
}

fn require(
    format: Format,
    part: &'static str,
    value: &str,
    allowed: &'static str,
    ok: fn(char) -> bool,
) -> Result<(), BarcodeError> {
    match value.chars().find(|c| !ok(*c)) {
        Some(ch) => Err(BarcodeError::BadCharacter {
            format,
            part,
            ch,
            allowed,
        }),
        None => Ok(()),
    }
}

fn require_len(
    format: Format,
    part: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), BarcodeError> {
    if (min..=max).contains(&value.len()) {
        Ok(())
    } else {
        Err(BarcodeError::Length {
            format,
            part,
            min,
            max,
            found: value.len(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// RMA

/// A return authorisation label, `RMA-0123456789-L`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RmaLabel {
    rma: RmaId,
}

impl RmaLabel {
    /// The full label text, as stored.
    pub fn rma(&self) -> &RmaId {
        &self.rma
    }

    /// The ten characters between the hyphens.
    pub fn body(&self) -> &str {
        &self.rma.as_str()[RMA_PREFIX.len()..RMA_PREFIX.len() + RMA_BODY_LEN]
    }
}

fn check_rma_body(body: &str) -> Result<(), BarcodeError> {
    require_len(Format::Rma, "body", body, RMA_BODY_LEN, RMA_BODY_LEN)?;
    require(Format::Rma, "body", body, UPPER_ALNUM, is_upper_alnum)
}

/// The label text for an RMA body of [`RMA_BODY_LEN`] characters `A-Z 0-9`.
pub fn rma_encode(body: &str) -> Result<String, BarcodeError> {
    check_rma_body(body)?;
    let text = format!("{RMA_PREFIX}{body}");
    let check = label_check(Format::Rma, &text)?;
    Ok(format!("{text}-{check}"))
}

pub(crate) fn parse_rma(data: &str) -> Result<RmaLabel, BarcodeError> {
    let rest = &data[RMA_PREFIX.len()..];
    let (body, found) = rest.rsplit_once(HYPHEN).ok_or(BarcodeError::Shape {
        format: Format::Rma,
        expected: RMA_SHAPE,
    })?;
    check_rma_body(body)?;
    verify(Format::Rma, &data[..RMA_PREFIX.len() + body.len()], found)?;
    Ok(RmaLabel {
        rma: RmaId::new(data)?,
    })
}

// ---------------------------------------------------------------------------------------------
// LPN

/// A licence plate label, `LPN-<SITE>-<GEN>-<NNNNNNN><C>`, e.g. `LPN-OSAKA-00A3-0000017` and
/// its check character.
///
/// SITE is the site code ([`lpn_site_code`]): the site id upper-cased with its hyphens removed,
/// so the label has exactly three hyphens and each part is found without guessing. GEN is the
/// low 16 bits of the site database's epoch in four upper-case hex digits: a database restored
/// from a backup gets a new epoch and counts again from where the backup stood, and GEN keeps its
/// labels apart from those the lost database printed (unless the two epochs share their low 16
/// bits, a 1 in 65,536 chance that the coordinator's duplicate-LPN anomaly catches). The counter
/// is zero-padded to [`LPN_COUNTER_DIGITS_MIN`] digits and never padded further, so one LPN has
/// exactly one spelling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LpnLabel {
    lpn: Lpn,
    site_code: String,
    generation: u16,
    counter: u64,
}

impl LpnLabel {
    pub fn lpn(&self) -> &Lpn {
        &self.lpn
    }

    pub fn site_code(&self) -> &str {
        &self.site_code
    }

    pub fn generation(&self) -> u16 {
        self.generation
    }

    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Whether this label was printed for `site`. A site code cannot be turned back into a site
    /// id (the hyphens are gone), so compare this way.
    pub fn is_from_site(&self, site: &SiteId) -> bool {
        self.site_code == lpn_site_code(site)
    }
}

/// The site's code on LPN labels: its id upper-cased, hyphens removed (`rogue-site` →
/// `ROGUESITE`). Two site ids differing only in hyphens would share a code, so a fleet must
/// not contain such a pair.
pub fn lpn_site_code(site: &SiteId) -> String {
    site.as_str()
        .chars()
        .filter(|c| *c != HYPHEN)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn check_site_code(code: &str) -> Result<(), BarcodeError> {
    require_len(Format::Lpn, "site code", code, 1, LPN_SITE_CODE_LEN_MAX)?;
    require(Format::Lpn, "site code", code, UPPER_ALNUM, is_upper_alnum)
}

/// The LPN for unit number `n` of `site` in database generation `generation`. Fails only for a
/// site whose code is empty (an id made of hyphens) or longer than [`LPN_SITE_CODE_LEN_MAX`],
/// which could not fit a [`Lpn`].
pub fn lpn_encode(site: &SiteId, generation: u16, n: u64) -> Result<Lpn, BarcodeError> {
    let code = lpn_site_code(site);
    check_site_code(&code)?;
    let text = format!(
        "{LPN_PREFIX}{code}-{generation:0gen_width$X}-{n:0count_width$}",
        gen_width = LPN_GENERATION_DIGITS,
        count_width = LPN_COUNTER_DIGITS_MIN
    );
    let check = label_check(Format::Lpn, &text)?;
    Ok(Lpn::new(format!("{text}{check}"))?)
}

pub(crate) fn parse_lpn(data: &str) -> Result<LpnLabel, BarcodeError> {
    let shape = BarcodeError::Shape {
        format: Format::Lpn,
        expected: LPN_SHAPE,
    };
    let mut parts = data[LPN_PREFIX.len()..].split(HYPHEN);
    let (Some(site_code), Some(generation), Some(tail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(shape);
    };
    check_site_code(site_code)?;
    require_len(
        Format::Lpn,
        "generation",
        generation,
        LPN_GENERATION_DIGITS,
        LPN_GENERATION_DIGITS,
    )?;
    require(
        Format::Lpn,
        "generation",
        generation,
        UPPER_HEX,
        is_upper_hex,
    )?;
    // The check character is the last one; `tail` is ASCII (scan hygiene), so byte slicing is
    // on character boundaries.
    let Some(split) = tail.len().checked_sub(CHECK_LEN) else {
        return Err(BarcodeError::MissingCheck {
            format: Format::Lpn,
        });
    };
    let (digits, found) = tail.split_at(split);
    require_len(
        Format::Lpn,
        "counter",
        digits,
        LPN_COUNTER_DIGITS_MIN,
        LPN_COUNTER_DIGITS_MAX,
    )?;
    require(Format::Lpn, "counter", digits, DIGITS, |c| {
        c.is_ascii_digit()
    })?;
    if digits.len() > LPN_COUNTER_DIGITS_MIN && digits.starts_with('0') {
        return Err(BarcodeError::LpnCounterNotCanonical {
            digits: digits.to_owned(),
        });
    }
    let counter = digits
        .parse::<u64>()
        .map_err(|_| BarcodeError::LpnCounterTooLarge {
            digits: digits.to_owned(),
        })?;
    verify(Format::Lpn, &data[..data.len() - CHECK_LEN], found)?;
    Ok(LpnLabel {
        lpn: Lpn::new(data)?,
        site_code: site_code.to_owned(),
        // Four hex digits always fit.
        generation: u16::from_str_radix(generation, 16).map_err(|_| shape)?,
        counter,
    })
}

// ---------------------------------------------------------------------------------------------
// Totes

/// A tote label, `TOTE-0123456789-` and its check character: store drop-offs shipped together.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ToteLabel {
    tote: ToteId,
}

impl ToteLabel {
    pub fn tote(&self) -> &ToteId {
        &self.tote
    }
}

fn check_tote_body(body: &str) -> Result<(), BarcodeError> {
    require_len(Format::Tote, "body", body, RMA_BODY_LEN, RMA_BODY_LEN)?;
    require(Format::Tote, "body", body, UPPER_ALNUM, is_upper_alnum)
}

/// The label text of a tote with a body of [`RMA_BODY_LEN`] characters `A-Z 0-9`.
pub fn tote_encode(body: &str) -> Result<String, BarcodeError> {
    check_tote_body(body)?;
    let text = format!("{TOTE_PREFIX}{body}");
    let check = label_check(Format::Tote, &text)?;
    Ok(format!("{text}-{check}"))
}

pub(crate) fn parse_tote(data: &str) -> Result<ToteLabel, BarcodeError> {
    let rest = &data[TOTE_PREFIX.len()..];
    let (body, found) = rest.rsplit_once(HYPHEN).ok_or(BarcodeError::Shape {
        format: Format::Tote,
        expected: TOTE_SHAPE,
    })?;
    check_tote_body(body)?;
    verify(Format::Tote, &data[..TOTE_PREFIX.len() + body.len()], found)?;
    Ok(ToteLabel {
        tote: ToteId::new(data)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Bins

/// A shelf-edge label, `BIN-A0103-` and its check character: where a unit is put away.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BinLabel {
    bin: Bin,
}

impl BinLabel {
    pub fn bin(&self) -> &Bin {
        &self.bin
    }
}

fn check_bin_code(code: &str) -> Result<(), BarcodeError> {
    require_len(Format::Bin, "code", code, 1, BIN_CODE_LEN_MAX)?;
    require(Format::Bin, "code", code, UPPER_ALNUM, is_upper_alnum)
}

/// The label text of bin `code` (1 to [`BIN_CODE_LEN_MAX`] characters `A-Z 0-9`).
pub fn bin_encode(code: &str) -> Result<String, BarcodeError> {
    check_bin_code(code)?;
    let text = format!("{BIN_PREFIX}{code}");
    let check = label_check(Format::Bin, &text)?;
    Ok(format!("{text}-{check}"))
}

pub(crate) fn parse_bin(data: &str) -> Result<BinLabel, BarcodeError> {
    let rest = &data[BIN_PREFIX.len()..];
    let (code, found) = rest.rsplit_once(HYPHEN).ok_or(BarcodeError::Shape {
        format: Format::Bin,
        expected: BIN_SHAPE,
    })?;
    check_bin_code(code)?;
    verify(Format::Bin, &data[..BIN_PREFIX.len() + code.len()], found)?;
    Ok(BinLabel {
        bin: Bin::new(code)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Station command cards

/// A laminated card at a station that, scanned, acts like a button.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StationCommand {
    Grade(Grade),
    Dispose(Disposition),
    /// A defect found on the unit being graded (several may be scanned before the grade).
    Defect(DefectCode),
    /// The unit in front of the station is finished.
    Done,
    /// Abandon the action in progress.
    Cancel,
    /// The unit cannot be matched to a return.
    Unidentified,
    /// Void the unit.
    Void,
    /// Print the unit's label again.
    Reprint,
    /// The unit passed its function test (electronics must, before grade A).
    TestPass,
    /// The unit failed its function test.
    TestFail,
    /// The unit leaves the site now: packed for its transfer, or handed to the vendor,
    /// recycler or disposal its disposition names.
    Ship,
}

impl StationCommand {
    pub const ALL: [StationCommand; 28] = [
        Self::Grade(Grade::A),
        Self::Grade(Grade::B),
        Self::Grade(Grade::C),
        Self::Grade(Grade::D),
        Self::Grade(Grade::X),
        Self::Dispose(Disposition::Restock),
        Self::Dispose(Disposition::Resale),
        Self::Dispose(Disposition::Refurbish),
        Self::Dispose(Disposition::Recycle),
        Self::Dispose(Disposition::Dispose),
        Self::Dispose(Disposition::ReturnToVendor),
        Self::Done,
        Self::Cancel,
        Self::Unidentified,
        Self::Void,
        Self::Reprint,
        Self::Defect(DefectCode::Stain),
        Self::Defect(DefectCode::Tear),
        Self::Defect(DefectCode::Scratch),
        Self::Defect(DefectCode::Dent),
        Self::Defect(DefectCode::MissingPart),
        Self::Defect(DefectCode::MissingTags),
        Self::Defect(DefectCode::NotWorking),
        Self::Defect(DefectCode::Odor),
        Self::Defect(DefectCode::PackagingDamaged),
        Self::TestPass,
        Self::TestFail,
        Self::Ship,
    ];

    /// The name on the card, between `CMD-` and the check character.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Grade(Grade::A) => "GRADE-A",
            Self::Grade(Grade::B) => "GRADE-B",
            Self::Grade(Grade::C) => "GRADE-C",
            Self::Grade(Grade::D) => "GRADE-D",
            Self::Grade(Grade::X) => "GRADE-X",
            Self::Dispose(Disposition::Restock) => "DISP-RESTOCK",
            Self::Dispose(Disposition::Resale) => "DISP-RESALE",
            Self::Dispose(Disposition::Refurbish) => "DISP-REFURBISH",
            Self::Dispose(Disposition::Recycle) => "DISP-RECYCLE",
            Self::Dispose(Disposition::Dispose) => "DISP-DISPOSE",
            Self::Dispose(Disposition::ReturnToVendor) => "DISP-RTV",
            Self::Done => "DONE",
            Self::Cancel => "CANCEL",
            Self::Unidentified => "UNIDENTIFIED",
            Self::Void => "VOID",
            Self::Reprint => "REPRINT",
            Self::Defect(DefectCode::Stain) => "DEF-STAIN",
            Self::Defect(DefectCode::Tear) => "DEF-TEAR",
            Self::Defect(DefectCode::Scratch) => "DEF-SCRATCH",
            Self::Defect(DefectCode::Dent) => "DEF-DENT",
            Self::Defect(DefectCode::MissingPart) => "DEF-MISSING-PART",
            Self::Defect(DefectCode::MissingTags) => "DEF-MISSING-TAGS",
            Self::Defect(DefectCode::NotWorking) => "DEF-NOT-WORKING",
            Self::Defect(DefectCode::Odor) => "DEF-ODOR",
            Self::Defect(DefectCode::PackagingDamaged) => "DEF-PACKAGING",
            Self::TestPass => "TEST-PASS",
            Self::TestFail => "TEST-FAIL",
            Self::Ship => "SHIP",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for StationCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text of the card for `command`, e.g. `CMD-DONE-` and its check character.
pub fn command_encode(command: StationCommand) -> String {
    let text = format!("{COMMAND_PREFIX}{}", command.name());
    match label_check(Format::Command, &text) {
        Ok(check) => format!("{text}-{check}"),
        // Unreachable: names are checked below at compile time. A card without its check
        // character is refused by `parse`, so even then nothing is misread.
        Err(_) => text,
    }
}

/// Every command name is `A-Z` and inner hyphens, so it always has a check character.
const _: () = {
    let mut i = 0;
    while i < StationCommand::ALL.len() {
        let name = StationCommand::ALL[i].name().as_bytes();
        assert!(
            !name.is_empty() && name[0] != HYPHEN as u8 && name[name.len() - 1] != HYPHEN as u8
        );
        let mut j = 0;
        while j < name.len() {
            assert!(name[j].is_ascii_uppercase() || name[j] == HYPHEN as u8);
            j += 1;
        }
        i += 1;
    }
};

pub(crate) fn parse_command(data: &str) -> Result<StationCommand, BarcodeError> {
    let rest = &data[COMMAND_PREFIX.len()..];
    if StationCommand::from_name(rest).is_some() {
        return Err(BarcodeError::MissingCheck {
            format: Format::Command,
        });
    }
    let (name, found) = rest.rsplit_once(HYPHEN).ok_or(BarcodeError::Shape {
        format: Format::Command,
        expected: COMMAND_SHAPE,
    })?;
    let command = StationCommand::from_name(name).ok_or_else(|| BarcodeError::UnknownCommand {
        name: name.to_owned(),
    })?;
    verify(
        Format::Command,
        &data[..COMMAND_PREFIX.len() + name.len()],
        found,
    )?;
    Ok(command)
}

// ---------------------------------------------------------------------------------------------
// Staff badges

/// A staff badge, `BADGE-` + [`BADGE_DIGITS_MIN`] to [`BADGE_DIGITS_MAX`] digits + check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Badge {
    number: String,
}

impl Badge {
    /// The badge number as printed, leading zeros included: `0042` and `42` are different
    /// badges.
    pub fn number(&self) -> &str {
        &self.number
    }
}

fn check_badge_number(number: &str) -> Result<(), BarcodeError> {
    require_len(
        Format::Badge,
        "number",
        number,
        BADGE_DIGITS_MIN,
        BADGE_DIGITS_MAX,
    )?;
    require(Format::Badge, "number", number, DIGITS, |c| {
        c.is_ascii_digit()
    })
}

/// The badge text for `number`.
pub fn badge_encode(number: &str) -> Result<String, BarcodeError> {
    check_badge_number(number)?;
    let text = format!("{BADGE_PREFIX}{number}");
    let check = label_check(Format::Badge, &text)?;
    Ok(format!("{text}{check}"))
}

pub(crate) fn parse_badge(data: &str) -> Result<Badge, BarcodeError> {
    let rest = &data[BADGE_PREFIX.len()..];
    let Some(split) = rest.len().checked_sub(CHECK_LEN) else {
        return Err(BarcodeError::MissingCheck {
            format: Format::Badge,
        });
    };
    let (number, found) = rest.split_at(split);
    check_badge_number(number)?;
    verify(Format::Badge, &data[..data.len() - CHECK_LEN], found)?;
    Ok(Badge {
        number: number.to_owned(),
    })
}
