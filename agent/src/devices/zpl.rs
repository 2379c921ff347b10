//! ZPL: the three labels a site prints, and the printer's `~HS` host status answer. Both are
//! plain data in, bytes or values out, so they are tested without a printer.
//!
//! Escaping rule. In ZPL a `^` or `~` anywhere starts a command, so data must never carry one
//! raw. Text fields are written with `^FH_` (field hex): `^`, `~`, `_` (the hex indicator itself)
//! and every byte of a non-ASCII character become `_` plus two hex digits; labels start with
//! `^CI28` so the printer decodes those bytes as UTF-8 (a kanji site name still needs a font that
//! has the glyphs). Control characters are refused ([`ZplError::ControlChar`]): a newline or
//! NUL in label data is a bug upstream. Barcode (Code 128) data is checked, not escaped: it must
//! be printable ASCII without `^`, `~` and `>` (the Code 128 invocation prefix in `^BC` data),
//! else [`ZplError::BarcodeChar`], because a barcode that does not scan back to the stored
//! value is worse than no label. Every field holds at most [`FIELD_CHARS_MAX`] characters.

use std::fmt::Write as _;

use modori_shared::domain::{Disposition, Grade, Lpn, RmaId, SiteId, Sku};
use serde::Serialize;
use thiserror::Error;

/// Longest field on a label; more would not fit a 4-inch label anyway.
pub const FIELD_CHARS_MAX: usize = 64;
/// Longest `~HS` answer string; string 1, the longest, is 32 bytes on current firmware.
const HOST_STATUS_STRING_BYTES_MAX: usize = 96;
/// `~HS` answers three strings.
const HOST_STATUS_N_STRINGS: usize = 3;
const STX: u8 = 0x02;
const ETX: u8 = 0x03;

/// The host status query the driver sends after each job.
pub const HOST_STATUS_QUERY: &[u8] = b"~HS";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ZplError {
    #[error("{field}: control character {ch:?} in label data")]
    ControlChar { field: &'static str, ch: char },
    #[error("{field}: {ch:?} cannot be in a Code 128 barcode (printable ASCII without ^ ~ >)")]
    BarcodeChar { field: &'static str, ch: char },
    #[error("{field}: {n_chars} characters, at most {FIELD_CHARS_MAX}")]
    TooLong { field: &'static str, n_chars: usize },
    #[error("{field}: empty")]
    Empty { field: &'static str },
}

/// `value` as the data of a `^FH_^FD` field: see the module's escaping rule.
pub fn escape_text(field: &'static str, value: &str) -> Result<String, ZplError> {
    check_len(field, value)?;
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        if ch.is_control() {
            return Err(ZplError::ControlChar { field, ch });
        }
        if matches!(ch, '^' | '~' | '_') || !ch.is_ascii() {
            let mut utf8 = [0u8; 4];
            for byte in ch.encode_utf8(&mut utf8).bytes() {
                let _ = write!(out, "_{byte:02X}");
            }
        } else {
            out.push(ch);
        }
    }
    Ok(out)
}

/// Checks `value` as Code 128 subset B data: see the module's escaping rule.
pub fn check_barcode<'a>(field: &'static str, value: &'a str) -> Result<&'a str, ZplError> {
    check_len(field, value)?;
    if value.is_empty() {
        return Err(ZplError::Empty { field });
    }
    match value
        .chars()
        .find(|ch| !(' '..='~').contains(ch) || matches!(ch, '^' | '~' | '>'))
    {
        Some(ch) => Err(ZplError::BarcodeChar { field, ch }),
        None => Ok(value),
    }
}

fn check_len(field: &'static str, value: &str) -> Result<(), ZplError> {
    let n_chars = value.chars().count();
    if n_chars > FIELD_CHARS_MAX {
        return Err(ZplError::TooLong { field, n_chars });
    }
    Ok(())
}

/// A label under construction: 4 × 2 inch at 203 dpi.
struct Label(String);

impl Label {
    const WIDTH_DOTS: u32 = 812;
    const LENGTH_DOTS: u32 = 406;
    const MARGIN_DOTS: u32 = 40;

    fn new() -> Self {
        Self(format!(
            "^XA^CI28^PW{}^LL{}\n",
            Self::WIDTH_DOTS,
            Self::LENGTH_DOTS
        ))
    }

    /// `caption` is a literal of ours; only `value` is data.
    fn text(
        mut self,
        y_dots: u32,
        height_dots: u32,
        caption: &str,
        field: &'static str,
        value: &str,
    ) -> Result<Self, ZplError> {
        let value = escape_text(field, value)?;
        let _ = writeln!(
            self.0,
            "^FO{},{y_dots}^A0N,{height_dots},{height_dots}^FH_^FD{caption}{value}^FS",
            Self::MARGIN_DOTS
        );
        Ok(self)
    }

    /// Code 128 without its own interpretation line: the human-readable copy is a text field.
    fn barcode(
        mut self,
        y_dots: u32,
        height_dots: u32,
        field: &'static str,
        value: &str,
    ) -> Result<Self, ZplError> {
        let value = check_barcode(field, value)?;
        let _ = writeln!(
            self.0,
            "^FO{},{y_dots}^BY3^BCN,{height_dots},N,N,N^FD{value}^FS",
            Self::MARGIN_DOTS
        );
        Ok(self)
    }

    fn finish(mut self) -> String {
        self.0.push_str("^XZ");
        self.0
    }
}

/// The license plate stuck on a unit at receiving: LPN barcode and text, SKU, grade, site.
pub fn lpn_label(
    lpn: &Lpn,
    sku: &Sku,
    grade: Option<Grade>,
    site: &SiteId,
) -> Result<String, ZplError> {
    let mut label = Label::new()
        .barcode(30, 120, "lpn", lpn.as_str())?
        .text(165, 50, "", "lpn", lpn.as_str())?
        .text(230, 34, "SKU ", "sku", sku.as_str())?;
    if let Some(grade) = grade {
        label = label.text(275, 34, "Grade ", "grade", grade.as_str())?;
    }
    Ok(label
        .text(330, 28, "Site ", "site", site.as_str())?
        .finish())
}

/// Where a unit goes after grading: the disposition and the zone of the site in large type,
/// and the LPN as a barcode that the putaway station scans before the bin.
pub fn disposition_label(
    lpn: &Lpn,
    disposition: Disposition,
    zone: &str,
    site: &SiteId,
) -> Result<String, ZplError> {
    let headline = disposition.as_str().to_ascii_uppercase().replace('_', " ");
    Ok(Label::new()
        .text(25, 70, "", "disposition", &headline)?
        .barcode(110, 100, "lpn", lpn.as_str())?
        .text(220, 40, "Zone ", "zone", zone)?
        .text(280, 34, "LPN ", "lpn", lpn.as_str())?
        .text(330, 28, "Site ", "site", site.as_str())?
        .finish())
}

/// Stuck on one unit packed for another site: the destination in large type and the LPN as
/// the barcode the destination's receiving station scans.
pub fn unit_transfer_label(
    lpn: &Lpn,
    sku: &Sku,
    from: &SiteId,
    to: &SiteId,
) -> Result<String, ZplError> {
    Ok(Label::new()
        .text(25, 70, "TO ", "to", to.as_str())?
        .barcode(110, 100, "lpn", lpn.as_str())?
        .text(220, 34, "LPN ", "lpn", lpn.as_str())?
        .text(265, 34, "SKU ", "sku", sku.as_str())?
        .text(330, 28, "TRANSFER from ", "from", from.as_str())?
        .finish())
}

/// Stuck on the replacement shipped for an exchange: the RMA it answers and the unit.
pub fn exchange_label(
    lpn: &Lpn,
    sku: &Sku,
    rma: &RmaId,
    site: &SiteId,
) -> Result<String, ZplError> {
    Ok(Label::new()
        .text(25, 60, "EXCHANGE ", "rma", rma.as_str())?
        .barcode(100, 100, "rma", rma.as_str())?
        .text(220, 34, "LPN ", "lpn", lpn.as_str())?
        .text(265, 34, "SKU ", "sku", sku.as_str())?
        .text(330, 28, "Site ", "site", site.as_str())?
        .finish())
}

/// Stuck on a shipment of units moving between sites.
pub fn transfer_label(from: &SiteId, to: &SiteId, n_lpns: usize) -> Result<String, ZplError> {
    Ok(Label::new()
        .text(30, 40, "TRANSFER from ", "from", from.as_str())?
        .text(100, 90, "TO ", "to", to.as_str())?
        .text(230, 50, "", "n_lpns", &format!("{n_lpns} units (LPNs)"))?
        .finish())
}

/// The label a return travels under, from a customer or a store to its site: the RMA as the
/// barcode the site's receiving station scans, where it goes, where from, and the carrier's
/// tracking number when there is one.
pub fn return_label(
    rma: &RmaId,
    to_site: &SiteId,
    to_name: &str,
    from: &str,
    tracking: Option<&str>,
) -> Result<String, ZplError> {
    let mut label = Label::new()
        .text(20, 50, "TO ", "to", to_name)?
        .barcode(80, 110, "rma", rma.as_str())?
        .text(200, 36, "", "rma", rma.as_str())?
        .text(245, 30, "Site ", "site", to_site.as_str())?
        .text(285, 30, "From ", "from", from)?;
    if let Some(tracking) = tracking {
        label = label.text(325, 30, "Tracking ", "tracking", tracking)?;
    }
    Ok(label.finish())
}

/// The label of a tote of store drop-offs: the tote barcode the site's receiving station scans
/// to receive every return in it at once.
pub fn tote_label(
    tote: &str,
    to_site: &SiteId,
    to_name: &str,
    from_store: &str,
    n_returns: usize,
) -> Result<String, ZplError> {
    Ok(Label::new()
        .text(20, 50, "TO ", "to", to_name)?
        .barcode(80, 110, "tote", tote)?
        .text(200, 36, "", "tote", tote)?
        .text(245, 30, "Site ", "site", to_site.as_str())?
        .text(285, 30, "From ", "from", from_store)?
        .text(325, 30, "", "n_returns", &format!("{n_returns} returns"))?
        .finish())
}

/// What the printer said about itself. A field the firmware left out or garbled reads as
/// `false` / `None`: any complete answer proves the printer alive, which is what a job needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostStatus {
    pub paper_out: bool,
    pub paused: bool,
    pub buffer_full: bool,
    pub head_open: bool,
    pub ribbon_out: bool,
    pub n_formats_in_buffer: Option<u32>,
    pub n_labels_remaining: Option<u32>,
}

impl HostStatus {
    /// Whether labels come out now; if not, jobs the printer accepted wait inside it.
    pub fn is_ready(&self) -> bool {
        !(self.paper_out || self.paused || self.buffer_full || self.head_open || self.ribbon_out)
    }

    /// Parses the bodies of string 1 (`aaa,b,c,dddd,eee,f,…`) and string 2
    /// (`mmm,n,o,p,…,uuuuuuuu,…`); string 3 (password, RAM) is of no use here.
    fn parse(strings: &[Vec<u8>]) -> Self {
        let fields = |i: usize| -> Vec<&str> {
            std::str::from_utf8(&strings[i])
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .collect()
        };
        let (one, two) = (fields(0), fields(1));
        let flag = |f: &[&str], i: usize| f.get(i) == Some(&"1");
        let number = |f: &[&str], i: usize| f.get(i).and_then(|v| v.parse().ok());
        Self {
            paper_out: flag(&one, 1),
            paused: flag(&one, 2),
            n_formats_in_buffer: number(&one, 4),
            buffer_full: flag(&one, 5),
            head_open: flag(&two, 2),
            ribbon_out: flag(&two, 3),
            n_labels_remaining: number(&two, 8),
        }
    }
}

/// Collects the three `STX … ETX` strings of a `~HS` answer from a byte stream; bytes outside
/// a frame (the CR LF after each ETX, line noise) are skipped.
#[derive(Debug, Default)]
pub(crate) struct HostStatusParser {
    strings: Vec<Vec<u8>>,
    /// The string being read, once its STX was seen.
    open: Option<Vec<u8>>,
}

impl HostStatusParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets a partial answer, e.g. a stale one before a new query.
    pub fn reset(&mut self) {
        self.strings.clear();
        self.open = None;
    }

    /// Returns the status once the third string is complete; bytes after it in `bytes` are
    /// dropped, as nothing is owed after an answer.
    pub fn push(&mut self, bytes: &[u8]) -> Option<HostStatus> {
        for &byte in bytes {
            match (byte, self.open.as_mut()) {
                (STX, _) => self.open = Some(Vec::new()),
                (ETX, Some(_)) => {
                    self.strings.extend(self.open.take());
                    if self.strings.len() == HOST_STATUS_N_STRINGS {
                        let status = HostStatus::parse(&self.strings);
                        self.reset();
                        return Some(status);
                    }
                }
                (_, Some(string)) if string.len() < HOST_STATUS_STRING_BYTES_MAX => {
                    string.push(byte)
                }
                // Too long for a status string: not one; wait for the next STX.
                (_, Some(_)) => self.open = None,
                (_, None) => {}
            }
        }
        None
    }
}

/// A `~HS` answer as a Zebra sends it, for the simulated printer and tests.
pub fn host_status_answer(status: &HostStatus) -> Vec<u8> {
    let bit = |b: bool| u8::from(b);
    let mut out = Vec::new();
    let strings = [
        format!(
            "030,{},{},1245,{:03},{},0,0,000,0,0,0",
            bit(status.paper_out),
            bit(status.paused),
            status.n_formats_in_buffer.unwrap_or(0),
            bit(status.buffer_full),
        ),
        format!(
            "001,0,{},{},1,2,4,0,{:08},1,000",
            bit(status.head_open),
            bit(status.ribbon_out),
            status.n_labels_remaining.unwrap_or(0),
        ),
        "1234,0".to_owned(),
    ];
    for string in strings {
        out.push(STX);
        out.extend_from_slice(string.as_bytes());
        out.extend_from_slice(&[ETX, b'\r', b'\n']);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (Lpn, Sku, SiteId) {
        (
            Lpn::new("LPN-OSA-000042").unwrap(),
            Sku::new("SKU_TEE.M").unwrap(),
            SiteId::new("osaka").unwrap(),
        )
    }

    /// Every `^`/`~` in a rendered label must start one of the commands we wrote.
    fn assert_only_our_commands(zpl: &str) {
        const OURS: &[&str] = &[
            "^XA", "^CI", "^PW", "^LL", "^FO", "^A0", "^FH", "^FD", "^FS", "^BY", "^BC", "^XZ",
        ];
        assert!(!zpl.contains('~'), "{zpl}");
        for (i, _) in zpl.match_indices('^') {
            assert!(
                OURS.iter().any(|c| zpl[i..].starts_with(c)),
                "stray ^ at {i}: {zpl}"
            );
        }
    }

    #[test]
    fn text_escapes_command_prefixes_and_non_ascii() {
        assert_eq!(escape_text("f", "A-1 b.c").unwrap(), "A-1 b.c");
        assert_eq!(escape_text("f", "a^b~c_d").unwrap(), "a_5Eb_7Ec_5Fd");
        assert_eq!(escape_text("f", "大阪").unwrap(), "_E5_A4_A7_E9_98_AA");
        assert_eq!(
            escape_text("f", "a\nb"),
            Err(ZplError::ControlChar {
                field: "f",
                ch: '\n'
            })
        );
        let long = "x".repeat(FIELD_CHARS_MAX + 1);
        assert!(matches!(
            escape_text("f", &long),
            Err(ZplError::TooLong { .. })
        ));
    }

    #[test]
    fn barcode_rejects_what_would_not_scan_back() {
        assert_eq!(check_barcode("b", "LPN-1_A.2").unwrap(), "LPN-1_A.2");
        for (bad, ch) in [("A^B", '^'), ("A~B", '~'), ("A>B", '>'), ("Aé", 'é')] {
            assert_eq!(
                check_barcode("b", bad),
                Err(ZplError::BarcodeChar { field: "b", ch })
            );
        }
        assert_eq!(check_barcode("b", ""), Err(ZplError::Empty { field: "b" }));
    }

    #[test]
    fn lpn_label_has_barcode_text_and_optional_grade() {
        let (lpn, sku, site) = ids();
        let zpl = lpn_label(&lpn, &sku, Some(Grade::B), &site).unwrap();
        assert!(zpl.starts_with("^XA") && zpl.trim_end().ends_with("^XZ"));
        assert!(zpl.contains("^BCN,120,N,N,N^FDLPN-OSA-000042^FS"), "{zpl}");
        assert!(zpl.contains("^FH_^FDSKU SKU_5FTEE.M^FS"), "{zpl}");
        assert!(zpl.contains("Grade B"));
        assert!(zpl.contains("Site osaka"));
        assert_only_our_commands(&zpl);
        let ungraded = lpn_label(&lpn, &sku, None, &site).unwrap();
        assert!(!ungraded.contains("Grade"));
    }

    #[test]
    fn disposition_label_escapes_text_and_carries_the_lpn_barcode() {
        let (lpn, sku, site) = ids();
        let zpl = disposition_label(&lpn, Disposition::ReturnToVendor, "R-01_02", &site).unwrap();
        assert!(zpl.contains("^FDRETURN TO VENDOR^FS"), "{zpl}");
        assert!(zpl.contains("^BCN,100,N,N,N^FDLPN-OSA-000042^FS"), "{zpl}");
        assert!(zpl.contains("^FDZone R-01_5F02^FS"), "{zpl}");
        assert_only_our_commands(&zpl);
        let to = SiteId::new("sendai").unwrap();
        let transfer = unit_transfer_label(&lpn, &sku, &site, &to).unwrap();
        assert!(transfer.contains("^FDTO sendai^FS"), "{transfer}");
        assert!(transfer.contains("^FDLPN-OSA-000042^FS"), "{transfer}");
        assert_only_our_commands(&transfer);
        let rma = RmaId::new("RMA-1").unwrap();
        let exchange = exchange_label(&lpn, &sku, &rma, &site).unwrap();
        assert!(exchange.contains("^FDEXCHANGE RMA-1^FS"), "{exchange}");
        assert_only_our_commands(&exchange);
    }

    #[test]
    fn transfer_label_names_both_sites_and_the_count() {
        let from = SiteId::new("osaka").unwrap();
        let to = SiteId::new("sendai").unwrap();
        let zpl = transfer_label(&from, &to, 12).unwrap();
        assert!(zpl.contains("TRANSFER from osaka"));
        assert!(zpl.contains("^FDTO sendai^FS"));
        assert!(zpl.contains("12 units (LPNs)"));
        assert_only_our_commands(&zpl);
    }

    #[test]
    fn a_return_label_carries_the_rma_barcode_and_both_ends() {
        let rma = RmaId::new("RMA-0123456789-L").unwrap();
        let to = SiteId::new("fukuoka").unwrap();
        let zpl = return_label(
            &rma,
            &to,
            "Fukuoka returns centre",
            "Store Tenjin",
            Some("123456789013"),
        )
        .unwrap();
        assert!(zpl.contains("^FDRMA-0123456789-L^FS"), "{zpl}");
        assert!(zpl.contains("TO Fukuoka returns centre"), "{zpl}");
        assert!(zpl.contains("From Store Tenjin"), "{zpl}");
        assert!(zpl.contains("Tracking 123456789013"), "{zpl}");
        assert_only_our_commands(&zpl);
        assert!(
            return_label(&rma, &to, "x^XZ", "y", None).is_ok(),
            "text is escaped"
        );
    }

    #[test]
    fn host_status_round_trips_through_noise_and_split_reads() {
        let status = HostStatus {
            paper_out: true,
            head_open: true,
            n_formats_in_buffer: Some(2),
            n_labels_remaining: Some(0),
            ..HostStatus::default()
        };
        let answer = host_status_answer(&status);
        let mut parser = HostStatusParser::new();
        assert_eq!(parser.push(b"\r\nnoise\x03"), None);
        let (a, b) = answer.split_at(17);
        assert_eq!(parser.push(a), None);
        assert_eq!(parser.push(b), Some(status.clone()));
        assert!(!status.is_ready());
        // Sample answer from the ZPL manual: an idle, ready printer.
        let manual = b"\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n\
                       \x02001,0,0,0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n";
        let ready = parser.push(manual).unwrap();
        assert!(ready.is_ready());
        assert_eq!(ready.n_formats_in_buffer, Some(0));
    }

    #[test]
    fn host_status_parser_drops_an_unbounded_string_and_resets() {
        let mut parser = HostStatusParser::new();
        let mut junk = vec![STX];
        junk.extend(std::iter::repeat_n(b'9', HOST_STATUS_STRING_BYTES_MAX + 1));
        junk.push(ETX);
        assert_eq!(parser.push(&junk), None);
        assert!(parser.strings.is_empty());
        parser.push(b"\x02a\x03\x02b\x03");
        parser.reset();
        assert_eq!(
            parser.push(b"\x02c\x03"),
            None,
            "a reset forgets old strings"
        );
    }
}
