//! Placing a label's fields on its printer's media: top to bottom, every size computed from the
//! media's width, length and resolution, so a label either fits or is refused, never clipped.
//!
//! Barcodes. An id goes into Code 128 (with code set C for digit runs, see
//! [`super::code128`]) when its symbol and both ten-module quiet zones fit the printable
//! width at a module of at least [`MODULE_MM_MIN`]; the module is then the widest that fits, up
//! to [`MODULE_MM_MAX`]. Longer ids (a 64-character RMA is 759 modules: 190 mm at 0.25 mm) go
//! into a QR code, which every 2D imager reads and `zbarimg` decodes (Data Matrix would be as
//! small, but fewer decoders read it). The QR code stands at the right edge; text beside it
//! flows in the narrower column.
//!
//! Text is drawn by [`super::font`] at a nominal height; a line too long shrinks down to
//! [`TEXT_MM_MIN`], then wraps over at most [`TEXT_LINES_MAX`] lines.

use std::fmt::Write as _;

use super::code128::{self, Run, Set, QUIET_MODULES};
use serde::{Deserialize, Serialize};

use super::fields::{check_barcode, check_text, ZplError};
use super::font::{self, Bitmap};

/// Blank border of every label: the slack of label stock against the print head.
pub const MARGIN_MM: f64 = 2.0;
/// Space between two fields.
pub const GAP_MM: f64 = 0.8;
/// Narrowest Code 128 module printed: 10 mil, what handheld laser and imager scanners read
/// from thermal labels at arm's length.
pub const MODULE_MM_MIN: f64 = 0.25;
/// Widest Code 128 module: wider buys nothing but a longer scan.
pub const MODULE_MM_MAX: f64 = 0.5;
/// Smallest QR module: 2D imagers read 0.33 mm (13 mil) from thermal print reliably.
pub const QR_MODULE_MM_MIN: f64 = 0.33;
/// Quiet zone of a QR code, in modules (ISO/IEC 18004).
pub const QR_QUIET_MODULES: u32 = 4;
/// Smallest text: a kanji needs about 20 dots at 203 dpi to keep its strokes apart.
pub const TEXT_MM_MIN: f64 = 2.5;
/// Most lines a wrapped text may take; more and it is refused as not fitting.
pub const TEXT_LINES_MAX: usize = 3;
/// Byte-mode capacity of QR versions 1.. at error correction level M (ISO/IEC 18004 table 7).
const QR_BYTES_M: [usize; 10] = [14, 26, 42, 62, 84, 106, 122, 152, 180, 213];
const MM_PER_INCH: f64 = 25.4;

/// The label stock a printer holds and its resolution.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
pub struct LabelMedia {
    pub width_mm: f64,
    pub length_mm: f64,
    pub resolution_dpi: u32,
}

impl Default for LabelMedia {
    /// 4 × 2 in at 203 dpi: the commonest desktop thermal label.
    fn default() -> Self {
        Self::inches(4.0, 2.0, 203)
    }
}

impl std::fmt::Display for LabelMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} × {:.1} mm at {} dpi",
            self.width_mm, self.length_mm, self.resolution_dpi
        )
    }
}

impl LabelMedia {
    pub fn inches(width_in: f64, length_in: f64, resolution_dpi: u32) -> Self {
        Self {
            width_mm: width_in * MM_PER_INCH,
            length_mm: length_in * MM_PER_INCH,
            resolution_dpi,
        }
    }

    /// `mm` in dots, rounded down: what is drawn must stay inside.
    pub fn dots(&self, mm: f64) -> u32 {
        // The epsilon keeps 6 in at 300 dpi 1800 dots, not 1799.99….
        (mm * f64::from(self.resolution_dpi) / MM_PER_INCH + 1e-6).floor() as u32
    }

    /// `mm` in dots, rounded up: for minimums.
    fn dots_up(&self, mm: f64) -> u32 {
        (mm * f64::from(self.resolution_dpi) / MM_PER_INCH - 1e-6).ceil() as u32
    }

    pub fn width_dots(&self) -> u32 {
        self.dots(self.width_mm)
    }

    pub fn length_dots(&self) -> u32 {
        self.dots(self.length_mm)
    }
}

/// A QR code standing at the right edge: text above its bottom is narrower.
struct Column {
    bottom_dots: u32,
    left_dots: u32,
}

/// A label under construction.
pub struct Label {
    kind: &'static str,
    media: LabelMedia,
    zpl: String,
    y_dots: u32,
    column: Option<Column>,
}

impl Label {
    pub fn new(kind: &'static str, media: LabelMedia) -> Self {
        let zpl = format!(
            "^XA^PW{}^LL{}^LH0,0\n",
            media.width_dots(),
            media.length_dots()
        );
        Self {
            kind,
            media,
            zpl,
            y_dots: media.dots(MARGIN_MM),
            column: None,
        }
    }

    fn margin(&self) -> u32 {
        self.media.dots(MARGIN_MM)
    }

    fn right(&self) -> u32 {
        self.media.width_dots().saturating_sub(self.margin())
    }

    /// Width free for text at the cursor.
    fn text_width(&self) -> u32 {
        let right = match &self.column {
            Some(c) if self.y_dots < c.bottom_dots => c.left_dots,
            _ => self.right(),
        };
        right.saturating_sub(self.margin())
    }

    fn does_not_fit(&self, field: &'static str, why: String) -> ZplError {
        ZplError::DoesNotFit {
            label: self.kind,
            field,
            media: self.media.to_string(),
            why,
        }
    }

    fn advance(&mut self, field: &'static str, height_dots: u32) -> Result<u32, ZplError> {
        let y = self.y_dots;
        let bottom = y + height_dots;
        let limit = self.media.length_dots().saturating_sub(self.margin());
        if bottom > limit {
            return Err(self.does_not_fit(
                field,
                format!("needs {bottom} of {limit} dots of the label's length"),
            ));
        }
        self.y_dots = bottom + self.media.dots(GAP_MM);
        Ok(y)
    }

    /// `caption` is a literal of ours; `value` is data, `size_mm` the nominal height.
    pub fn text(
        mut self,
        size_mm: f64,
        caption: &str,
        field: &'static str,
        value: &str,
    ) -> Result<Self, ZplError> {
        check_text(field, value)?;
        let text = format!("{caption}{value}");
        if let Some(ch) = font::missing_glyph(&text) {
            return Err(ZplError::NoGlyph { field, ch });
        }
        let width = self.text_width();
        let (height, lines) = self.fit_text(&text, size_mm, width).ok_or_else(|| {
            self.does_not_fit(
                field,
                format!(
                    "{} characters do not fit {TEXT_LINES_MAX} lines of {width} dots at {TEXT_MM_MIN} mm",
                    text.chars().count()
                ),
            )
        })?;
        comment(&mut self.zpl, &text);
        for line in lines {
            let bitmap = Bitmap::text(&line, height);
            let y = self.advance(field, bitmap.height_dots)?;
            let _ = writeln!(self.zpl, "^FO{},{y}{}^FS", self.margin(), bitmap.to_gf());
        }
        Ok(self)
    }

    /// The largest height from `size_mm` down to [`TEXT_MM_MIN`] at which `text` takes one
    /// line; failing that, the smallest height wrapped into at most [`TEXT_LINES_MAX`] lines,
    /// which keeps a long name from pushing the fields below it off the label.
    fn fit_text(&self, text: &str, size_mm: f64, width: u32) -> Option<(u32, Vec<String>)> {
        let (max, min) = (
            self.media.dots(size_mm),
            self.media.dots_up(TEXT_MM_MIN.min(size_mm)),
        );
        (min..=max)
            .rev()
            .find(|h| font::width_dots(text, *h) <= width)
            .map(|h| (h, vec![text.to_owned()]))
            .or_else(|| {
                font::wrap(text, min, width)
                    .filter(|lines| lines.len() <= TEXT_LINES_MAX)
                    .map(|lines| (min, lines))
            })
    }

    /// The id as Code 128 `height_mm` tall if it fits the width, else as a QR code.
    pub fn barcode(
        mut self,
        height_mm: f64,
        field: &'static str,
        value: &str,
    ) -> Result<Self, ZplError> {
        check_barcode(field, value)?;
        comment(&mut self.zpl, value);
        let symbol = code128::symbol_modules(value).map_err(|e| ZplError::Barcode {
            field,
            why: e.to_string(),
        })?;
        let modules = symbol + 2 * QUIET_MODULES;
        let room = self.right() - self.margin();
        let module = (room / modules).min(self.media.dots(MODULE_MM_MAX).max(1));
        if module >= self.media.dots_up(MODULE_MM_MIN) {
            let height = self.media.dots(height_mm);
            let y = self.advance(field, height)?;
            let x = self.margin() + QUIET_MODULES * module;
            let _ = writeln!(
                self.zpl,
                "^FO{x},{y}^BY{module}^BCN,{height},N,N,N,N^FD{}^FS",
                zpl_code128_data(value, field)?
            );
            return Ok(self);
        }
        self.qr(field, value)
    }

    fn qr(mut self, field: &'static str, value: &str) -> Result<Self, ZplError> {
        let version = QR_BYTES_M
            .iter()
            .position(|n| value.len() <= *n)
            .ok_or_else(|| self.does_not_fit(field, "too long for a QR code".to_owned()))?;
        let modules = 17 + 4 * (version as u32 + 1) + 2 * QR_QUIET_MODULES;
        let magnification = self.media.dots_up(QR_MODULE_MM_MIN).clamp(1, 10);
        let side = modules * magnification;
        let left = self
            .right()
            .saturating_sub(side - QR_QUIET_MODULES * magnification);
        if left < self.margin() + self.media.dots(TEXT_MM_MIN * 4.0) {
            return Err(
                self.does_not_fit(field, format!("a QR code of {side} dots leaves no room"))
            );
        }
        let y = self.y_dots;
        let bottom = y + side;
        let limit = self.media.length_dots().saturating_sub(self.margin());
        if bottom > limit {
            return Err(self.does_not_fit(
                field,
                format!("a QR code needs {bottom} of {limit} dots of the label's length"),
            ));
        }
        let x = left + QR_QUIET_MODULES * magnification;
        // ^BQ draws the symbol below its ^FO by its own quiet zone; MA = level M, automatic
        // mode selection.
        let _ = writeln!(self.zpl, "^FO{x},{y}^BQN,2,{magnification}^FDMA,{value}^FS");
        self.column = Some(Column {
            bottom_dots: bottom,
            left_dots: left,
        });
        Ok(self)
    }

    pub fn finish(self) -> Result<String, ZplError> {
        let mut zpl = self.zpl;
        zpl.push_str("^XZ");
        Ok(zpl)
    }
}

/// `text` as a `^FX` comment before the field that draws it: printers ignore it, and a job in a
/// log or a `printed/` folder says what it prints. A comment ends at the next `^` or `~`, so
/// those become `?` here.
fn comment(zpl: &mut String, text: &str) {
    let text: String = text
        .chars()
        .map(|c| if matches!(c, '^' | '~') { '?' } else { c })
        .collect();
    let _ = writeln!(zpl, "^FX{text}");
}

/// `value` as `^BC` data: each run prefixed with the invocation code of its set (`>:` start B,
/// `>;` start C, `>6` code B, `>5` code C), so the printer encodes exactly the symbols counted.
fn zpl_code128_data(value: &str, field: &'static str) -> Result<String, ZplError> {
    let runs = code128::runs(value).map_err(|e| ZplError::Barcode {
        field,
        why: e.to_string(),
    })?;
    let mut out = String::new();
    for (i, Run { set, text }) in runs.iter().enumerate() {
        out.push_str(match (i, set) {
            (0, Set::B) => ">:",
            (0, Set::C) => ">;",
            (_, Set::B) => ">6",
            (_, Set::C) => ">5",
        });
        out.push_str(text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_sizes_in_dots() {
        let m = LabelMedia::default();
        assert_eq!((m.width_dots(), m.length_dots()), (812, 406));
        let m = LabelMedia::inches(4.0, 6.0, 300);
        assert_eq!((m.width_dots(), m.length_dots()), (1200, 1800));
    }

    #[test]
    fn code128_data_switches_sets() {
        assert_eq!(
            zpl_code128_data("LPN-CHIBA-256E-0000001M", "lpn").unwrap(),
            ">:LPN-CHIBA-256E-0>5000001>6M"
        );
        assert_eq!(zpl_code128_data("12345678", "lpn").unwrap(), ">;12345678");
    }

    #[test]
    fn a_short_id_is_code128_and_a_long_one_a_qr_code() {
        let m = LabelMedia::default();
        let zpl = Label::new("t", m)
            .barcode(10.0, "lpn", "LPN-CHIBA-256E-0000001M")
            .unwrap()
            .finish()
            .unwrap();
        // 23 characters with a set C run: 20 symbols and quiet zones, 2 dots a module.
        assert!(zpl.contains("^BY2^BCN,79,N,N,N,N^FD>:LPN"), "{zpl}");
        let long = "R".repeat(64);
        let zpl = Label::new("t", m)
            .barcode(10.0, "rma", &long)
            .unwrap()
            .finish()
            .unwrap();
        assert!(zpl.contains(&format!("^BQN,2,3^FDMA,{long}^FS")), "{zpl}");
    }

    #[test]
    fn text_shrinks_then_wraps_then_is_refused() {
        let m = LabelMedia::default();
        let one = Label::new("t", m)
            .text(6.0, "TO ", "to", "Yokohama")
            .unwrap();
        assert_eq!(one.zpl.matches("^GFA").count(), 1);
        let long = "千葉返品センター（市川）".repeat(5);
        let wrapped = Label::new("t", m).text(6.0, "TO ", "to", &long).unwrap();
        assert!(wrapped.zpl.matches("^GFA").count() >= 2, "{}", wrapped.zpl);
        let too_long = "千".repeat(64);
        let err = Label::new("t", LabelMedia::inches(2.0, 1.0, 203))
            .text(6.0, "TO ", "to", &too_long)
            .err()
            .unwrap();
        assert!(
            matches!(err, ZplError::DoesNotFit { field: "to", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("does not fit"), "{err}");
    }
}
