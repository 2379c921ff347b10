//! ZPL: the labels a site prints, and the printer's `~HS` host status answer. Both are plain
//! data in, bytes or values out, so they are tested without a printer.
//!
//! Each field is preceded by a `^FX` comment with its text, so a job in a log says what it
//! prints.
//!
//! Every label is laid out for its printer's media by [`super::layout`]: it fits, with
//! its barcode's quiet zones, or it is refused with [`ZplError::DoesNotFit`]. Text (site and
//! store names, often Japanese) is drawn as graphic fields from the bundled font, so no data
//! text reaches the printer as ZPL and nothing needs escaping; control characters are refused
//! ([`ZplError::ControlChar`]): a newline or NUL in label data is a bug upstream. Barcode data
//! is checked: printable ASCII without `^`, `~` and `>` (the Code 128 invocation prefix in
//! `^BC` data), else [`ZplError::BarcodeChar`], because a barcode that does not scan back to
//! the stored value is worse than no label. Every field holds at most [`FIELD_CHARS_MAX`]
//! characters.

use crate::domain::{Disposition, Grade, Lpn, RmaId, SiteId, Sku};
use serde::Serialize;

pub use super::fields::{check_barcode, check_text, ZplError, FIELD_CHARS_MAX};
use super::layout::Label;
pub use super::layout::LabelMedia;

/// Largest job. Label text is drawn as graphic fields, so a job grows with the resolution: the
/// largest label with the longest names is 23 KB at 203 dpi, 49 KB at 300 and 163 KB at 600
/// (a config whose media would need more is refused). At most 16 MiB queued per printer.
pub const JOB_BYTES_MAX: usize = 256 * 1024;
/// Longest `~HS` answer string; string 1, the longest, is 32 bytes on current firmware.
const HOST_STATUS_STRING_BYTES_MAX: usize = 96;
/// `~HS` answers three strings.
const HOST_STATUS_N_STRINGS: usize = 3;
const STX: u8 = 0x02;
const ETX: u8 = 0x03;

/// The host status query the driver sends after each job.
pub const HOST_STATUS_QUERY: &[u8] = b"~HS";

/// The license plate stuck on a unit at receiving: LPN barcode and text, SKU, grade, site.
pub fn lpn_label(
    media: LabelMedia,
    lpn: &Lpn,
    sku: &Sku,
    grade: Option<Grade>,
    site: &SiteId,
) -> Result<String, ZplError> {
    let mut label = Label::new("lpn", media)
        .barcode(12.0, "lpn", lpn.as_str())?
        .text(5.0, "", "lpn", lpn.as_str())?
        .text(4.0, "SKU ", "sku", sku.as_str())?;
    if let Some(grade) = grade {
        label = label.text(4.0, "Grade ", "grade", grade.as_str())?;
    }
    label.text(3.5, "Site ", "site", site.as_str())?.finish()
}

/// Where a unit goes after grading: the disposition and the zone of the site in large type,
/// and the LPN as a barcode that the putaway station scans before the bin.
pub fn disposition_label(
    media: LabelMedia,
    lpn: &Lpn,
    disposition: Disposition,
    zone: &str,
    site: &SiteId,
) -> Result<String, ZplError> {
    let headline = disposition.as_str().to_ascii_uppercase().replace('_', " ");
    Label::new("disposition", media)
        .text(7.0, "", "disposition", &headline)?
        .barcode(10.0, "lpn", lpn.as_str())?
        .text(5.0, "Zone ", "zone", zone)?
        .text(4.0, "LPN ", "lpn", lpn.as_str())?
        .text(3.5, "Site ", "site", site.as_str())?
        .finish()
}

/// Stuck on one unit packed for another site: the destination in large type and the LPN as
/// the barcode the destination's receiving station scans.
pub fn unit_transfer_label(
    media: LabelMedia,
    lpn: &Lpn,
    sku: &Sku,
    from: &SiteId,
    to: &SiteId,
) -> Result<String, ZplError> {
    Label::new("unit transfer", media)
        .text(7.0, "TO ", "to", to.as_str())?
        .barcode(10.0, "lpn", lpn.as_str())?
        .text(4.0, "LPN ", "lpn", lpn.as_str())?
        .text(4.0, "SKU ", "sku", sku.as_str())?
        .text(3.5, "TRANSFER from ", "from", from.as_str())?
        .finish()
}

/// Stuck on the replacement shipped for an exchange: the RMA it answers and the unit.
pub fn exchange_label(
    media: LabelMedia,
    lpn: &Lpn,
    sku: &Sku,
    rma: &RmaId,
    site: &SiteId,
) -> Result<String, ZplError> {
    let label = Label::new("exchange", media).text(6.0, "EXCHANGE ", "rma", rma.as_str())?;
    to_customer(label, lpn, sku, rma, site)
}

/// Stuck on a unit sent back as it is to the customer of its return (a declined trade-in):
/// what it is and the RMA in large type, then the same fields as an exchange's.
pub fn ship_back_label(
    media: LabelMedia,
    lpn: &Lpn,
    sku: &Sku,
    rma: &RmaId,
    site: &SiteId,
) -> Result<String, ZplError> {
    let label =
        Label::new("ship-back", media).text(6.0, "RETURN TO CUSTOMER ", "rma", rma.as_str())?;
    to_customer(label, lpn, sku, rma, site)
}

/// What every parcel to a customer carries below its headline: the RMA as the barcode the
/// carrier's slip is matched by, the unit and the site.
fn to_customer(
    label: Label,
    lpn: &Lpn,
    sku: &Sku,
    rma: &RmaId,
    site: &SiteId,
) -> Result<String, ZplError> {
    label
        .barcode(10.0, "rma", rma.as_str())?
        .text(4.0, "LPN ", "lpn", lpn.as_str())?
        .text(4.0, "SKU ", "sku", sku.as_str())?
        .text(3.5, "Site ", "site", site.as_str())?
        .finish()
}

/// Stuck on a shipment of units moving between sites.
pub fn transfer_label(
    media: LabelMedia,
    from: &SiteId,
    to: &SiteId,
    n_lpns: usize,
) -> Result<String, ZplError> {
    Label::new("transfer", media)
        .text(5.0, "TRANSFER from ", "from", from.as_str())?
        .text(10.0, "TO ", "to", to.as_str())?
        .text(6.0, "", "n_lpns", &format!("{n_lpns} units (LPNs)"))?
        .finish()
}

/// The label a return travels under, from a customer or a store to its site: the RMA as the
/// barcode the site's receiving station scans, where it goes, where from, and the carrier's
/// tracking number when there is one.
pub fn return_label(
    media: LabelMedia,
    rma: &RmaId,
    to_site: &SiteId,
    to_name: &str,
    from: &str,
    tracking: Option<&str>,
) -> Result<String, ZplError> {
    let mut label = Label::new("return", media)
        .text(6.0, "TO ", "to", to_name)?
        .barcode(12.0, "rma", rma.as_str())?
        .text(4.5, "", "rma", rma.as_str())?
        .text(3.5, "Site ", "site", to_site.as_str())?
        .text(3.5, "From ", "from", from)?;
    if let Some(tracking) = tracking {
        label = label.text(3.5, "Tracking ", "tracking", tracking)?;
    }
    label.finish()
}

/// The label of a tote of store drop-offs: the tote barcode the site's receiving station scans
/// to receive every return in it at once.
pub fn tote_label(
    media: LabelMedia,
    tote: &str,
    to_site: &SiteId,
    to_name: &str,
    from_store: &str,
    n_returns: usize,
) -> Result<String, ZplError> {
    Label::new("tote", media)
        .text(6.0, "TO ", "to", to_name)?
        .barcode(12.0, "tote", tote)?
        .text(4.5, "", "tote", tote)?
        .text(3.5, "Site ", "site", to_site.as_str())?
        .text(3.5, "From ", "from", from_store)?
        .text(3.5, "", "n_returns", &format!("{n_returns} returns"))?
        .finish()
}

/// Checks that every label kind fits `media` with the longest ids the domain accepts and the
/// widest names (kanji), so a printer whose stock is too small is refused in the config, not
/// at the first scan after a unit was stored.
/// Returns the size of the largest of those labels in bytes: text drawn as graphics makes a job
/// grow with the resolution.
pub fn check_media(media: LabelMedia) -> Result<usize, ZplError> {
    let mut bytes_max = 0;
    for label in WorstCase::new().labels(media) {
        bytes_max = bytes_max.max(label?.len());
    }
    Ok(bytes_max)
}

/// The longest values of every label field.
pub struct WorstCase {
    pub lpn: Lpn,
    pub sku: Sku,
    pub rma: RmaId,
    pub tote: String,
    pub site: SiteId,
    pub name: String,
    pub tracking: String,
}

impl Default for WorstCase {
    fn default() -> Self {
        Self::new()
    }
}

impl WorstCase {
    pub fn new() -> Self {
        let id = |p: &str| format!("{p}{}", "9".repeat(FIELD_CHARS_MAX - p.len()));
        let code = |p: &str| id(p).replace('9', "W");
        Self {
            lpn: Lpn::new(code("LPN-")).expect("a valid worst-case id"),
            sku: Sku::new(code("SKU-")).expect("a valid worst-case id"),
            rma: RmaId::new(code("RMA-")).expect("a valid worst-case id"),
            tote: code("TOTE-"),
            site: SiteId::new("w".repeat(FIELD_CHARS_MAX)).expect("a valid worst-case id"),
            // The widest glyph of the font, as often as a field allows.
            name: "鬱".repeat(FIELD_CHARS_MAX),
            tracking: id("T"),
        }
    }

    /// Every label kind with these values, in the order of [`LABEL_KINDS`].
    pub fn labels(&self, media: LabelMedia) -> Vec<Result<String, ZplError>> {
        vec![
            lpn_label(media, &self.lpn, &self.sku, Some(Grade::B), &self.site),
            disposition_label(
                media,
                &self.lpn,
                Disposition::ReturnToVendor,
                &self.name,
                &self.site,
            ),
            unit_transfer_label(media, &self.lpn, &self.sku, &self.site, &self.site),
            exchange_label(media, &self.lpn, &self.sku, &self.rma, &self.site),
            ship_back_label(media, &self.lpn, &self.sku, &self.rma, &self.site),
            return_label(
                media,
                &self.rma,
                &self.site,
                &self.name,
                &self.name,
                Some(&self.tracking),
            ),
            tote_label(
                media,
                &self.tote,
                &self.site,
                &self.name,
                &self.name,
                usize::MAX,
            ),
            transfer_label(media, &self.site, &self.site, usize::MAX),
        ]
    }
}

/// The label kinds, as [`WorstCase::labels`] lists them.
pub const LABEL_KINDS: [&str; 8] = [
    "lpn",
    "disposition",
    "unit transfer",
    "exchange",
    "ship-back",
    "return",
    "tote",
    "transfer",
];

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
pub struct HostStatusParser {
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

    #[test]
    fn text_refuses_control_characters_and_overlong_values() {
        assert_eq!(check_text("f", "千葉 A-1"), Ok(()));
        assert_eq!(
            check_text("f", "a\nb"),
            Err(ZplError::ControlChar {
                field: "f",
                ch: '\n'
            })
        );
        let long = "x".repeat(FIELD_CHARS_MAX + 1);
        assert!(matches!(
            check_text("f", &long),
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

    /// Data text reaches the printer only as graphics: no `^FD` but barcode data.
    fn assert_text_is_graphics(zpl: &str, n_barcodes: usize) {
        assert_eq!(zpl.matches("^FD").count(), n_barcodes, "{zpl}");
        assert!(zpl.contains("^GFA,"), "{zpl}");
        assert!(zpl.starts_with("^XA") && zpl.ends_with("^XZ"), "{zpl}");
    }

    #[test]
    fn every_label_kind_fits_both_media_at_both_densities_with_the_longest_ids() {
        let w = WorstCase::new();
        for media in [
            LabelMedia::inches(4.0, 2.0, 203),
            LabelMedia::inches(4.0, 2.0, 300),
            LabelMedia::inches(4.0, 6.0, 203),
            LabelMedia::inches(4.0, 6.0, 300),
            LabelMedia::inches(4.0, 6.0, 600),
        ] {
            let labels = w.labels(media);
            let (transfer, with_barcode) = labels.split_last().unwrap();
            for label in with_barcode {
                let zpl = label.as_ref().unwrap_or_else(|e| panic!("{media}: {e}"));
                assert_text_is_graphics(zpl, 1);
                assert!(
                    zpl.contains("^BQN"),
                    "a 64-character id is a QR code: {zpl}"
                );
            }
            assert_text_is_graphics(transfer.as_ref().unwrap(), 0);
            let bytes = check_media(media).unwrap();
            assert!(bytes <= JOB_BYTES_MAX, "{media}: {bytes}");
        }
    }

    #[test]
    fn a_label_that_cannot_fit_is_refused_naming_the_field() {
        let tiny = LabelMedia::inches(1.0, 0.5, 203);
        let lpn = Lpn::new("LPN-OSA-000042").unwrap();
        let sku = Sku::new("SKU_TEE.M").unwrap();
        let site = SiteId::new("osaka").unwrap();
        let err = lpn_label(tiny, &lpn, &sku, None, &site).unwrap_err();
        assert!(
            matches!(err, ZplError::DoesNotFit { label: "lpn", .. }),
            "{err}"
        );
        let zpl = lpn_label(LabelMedia::default(), &lpn, &sku, None, &site).unwrap();
        assert!(
            zpl.contains("^BCN,95,N,N,N,N^FD>:LPN-OSA->5000042^FS"),
            "{zpl}"
        );
        assert_eq!(
            return_label(
                LabelMedia::default(),
                &RmaId::new("R").unwrap(),
                &site,
                "😀",
                "x",
                None
            ),
            Err(ZplError::NoGlyph {
                field: "to",
                ch: '😀'
            })
        );
        let sneaky = return_label(
            LabelMedia::default(),
            &RmaId::new("R").unwrap(),
            &site,
            "x^XZ~JA",
            "y",
            None,
        )
        .unwrap();
        assert!(sneaky.contains("^FXTO x?XZ?JA\n"), "{sneaky}");
        assert_eq!(sneaky.matches("^XZ").count(), 1, "{sneaky}");
        assert!(!sneaky.contains('~'), "{sneaky}");
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
