//! Label text as ZPL graphic fields (`^GF`), drawn from the bundled font.
//!
//! Why graphics and not the printer's fonts: `^A0` and the other resident fonts have no kanji,
//! and a CJK printer font (`^CW` + `^A@`) is an option card or a download that not every site's
//! printer has. Drawing the text here makes every printer print the same glyphs, and lets the
//! layout measure a line exactly before it is placed, so long names wrap or shrink instead of
//! running off the label. The font is a subset of Noto Sans CJK JP Bold (SIL OFL 1.1, see
//! `shared/fonts/`): ASCII, half-width katakana and all of Windows-31J.

use std::fmt::Write as _;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont};

static FONT_BYTES: &[u8] = include_bytes!("../../fonts/label-font-jp.otf");

fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        // The font is part of the binary and checked by the tests: failing here is a build bug.
        FontRef::try_from_slice(FONT_BYTES).expect("bundled label font parses")
    })
}

/// The first character of `text` the font has no glyph for.
pub fn missing_glyph(text: &str) -> Option<char> {
    let font = font();
    text.chars()
        .find(|&ch| ch != ' ' && font.glyph_id(ch) == GlyphId(0))
}

/// Where the baseline sits in the em box, from its top: the ideographic em box of Noto Sans CJK
/// runs from 0.88 em above the baseline to 0.12 em below.
const BASELINE_EM: f32 = 0.88;

/// The scale at which the font's em is `height_dots`: a kanji fills the em, so `height_dots` is
/// the height of the text as printed (ab_glyph's own scale counts ascent plus descent, larger).
fn scale(height_dots: u32) -> PxScale {
    let font = font();
    let units_per_em = font.units_per_em().unwrap_or(1000.0);
    PxScale::from(height_dots as f32 * font.height_unscaled() / units_per_em)
}

/// Width in dots of `text` on one line `height_dots` tall.
pub fn width_dots(text: &str, height_dots: u32) -> u32 {
    let font = font().as_scaled(scale(height_dots));
    let mut width = 0.0f32;
    let mut previous: Option<GlyphId> = None;
    for ch in text.chars() {
        let id = font.glyph_id(ch);
        if let Some(p) = previous {
            width += font.kern(p, id);
        }
        width += font.h_advance(id);
        previous = Some(id);
    }
    width.ceil() as u32
}

/// `text` split into lines of at most `width_dots`, at spaces when it can and between any two
/// characters when it must (Japanese has no spaces); `None` if a single character is too wide.
pub fn wrap(text: &str, height_dots: u32, width_max_dots: u32) -> Option<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for ch in text.chars() {
        let mut candidate = line.clone();
        candidate.push(ch);
        if width_dots(&candidate, height_dots) <= width_max_dots {
            line = candidate;
            continue;
        }
        if width_dots(&ch.to_string(), height_dots) > width_max_dots {
            return None;
        }
        // Break at the last space of the line if there is one, else here.
        let (done, rest) = match line.rfind(' ') {
            Some(i) if i > 0 => (line[..i].to_owned(), line[i + 1..].to_owned()),
            _ => (std::mem::take(&mut line), String::new()),
        };
        lines.push(done);
        line = rest;
        if ch != ' ' || !line.is_empty() {
            line.push(ch);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    Some(lines)
}

/// Room below the em box for Latin descenders (g, y, p reach 0.2 em below the baseline).
const DESCENDER_EM: f32 = 0.1;

/// One line of text as a 1-bit image: the em box and room for descenders.
pub struct Bitmap {
    pub width_dots: u32,
    pub height_dots: u32,
    /// Row-major, `true` is black.
    dots: Vec<bool>,
}

impl Bitmap {
    /// Draws `text`; coverage of half a dot or more prints, which keeps bold strokes solid.
    pub fn text(text: &str, height_dots: u32) -> Self {
        let width_dots = width_dots(text, height_dots).max(1);
        let em_dots = height_dots;
        let height_dots = em_dots + (DESCENDER_EM * em_dots as f32).ceil() as u32;
        let mut bitmap = Self {
            width_dots,
            height_dots,
            dots: vec![false; (width_dots * height_dots) as usize],
        };
        let font = font().as_scaled(scale(em_dots));
        let baseline = BASELINE_EM * em_dots as f32;
        let mut x = 0.0f32;
        let mut previous: Option<GlyphId> = None;
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(p) = previous {
                x += font.kern(p, id);
            }
            let glyph = id.with_scale_and_position(font.scale(), ab_glyph::point(x, baseline));
            if let Some(outlined) = font.outline_glyph(glyph) {
                let bounds = outlined.px_bounds();
                outlined.draw(|gx, gy, coverage| {
                    let px = bounds.min.x as i64 + i64::from(gx);
                    let py = bounds.min.y as i64 + i64::from(gy);
                    if coverage >= 0.5 {
                        bitmap.set(px, py);
                    }
                });
            }
            x += font.h_advance(id);
            previous = Some(id);
        }
        bitmap
    }

    fn set(&mut self, x: i64, y: i64) {
        if (0..i64::from(self.width_dots)).contains(&x)
            && (0..i64::from(self.height_dots)).contains(&y)
        {
            self.dots[(y as u32 * self.width_dots + x as u32) as usize] = true;
        }
    }

    pub fn n_black_dots(&self) -> usize {
        self.dots.iter().filter(|d| **d).count()
    }

    /// The `^GF` command (ASCII hex with ZPL's run-length compression).
    pub fn to_gf(&self) -> String {
        let bytes_per_row = self.width_dots.div_ceil(8);
        let total = bytes_per_row * self.height_dots;
        let mut out = format!("^GFA,{total},{total},{bytes_per_row},");
        let mut previous: Option<String> = None;
        for row in self.dots.chunks(self.width_dots as usize) {
            let mut hex = String::with_capacity(bytes_per_row as usize * 2);
            for byte in row.chunks(8) {
                let mut value = 0u8;
                for (i, black) in byte.iter().enumerate() {
                    if *black {
                        value |= 0x80 >> i;
                    }
                }
                let _ = write!(hex, "{value:02X}");
            }
            if previous.as_deref() == Some(hex.as_str()) {
                out.push(':');
            } else {
                out.push_str(&compress_row(&hex));
                previous = Some(hex);
            }
        }
        out
    }
}

/// One row of hex in ZPL's compressed form: `,` ends a row of trailing zeros, and a run of one
/// hex digit is a count (`G`–`Y` 1–19, `g`–`z` 20–400 in twenties) before the digit.
fn compress_row(hex: &str) -> String {
    let trimmed = hex.trim_end_matches('0');
    let mut out = String::new();
    let bytes = trimmed.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        let mut n = 1;
        while i + n < bytes.len() && bytes[i + n] == digit {
            n += 1;
        }
        if n > 2 {
            out.push_str(&run_count(n));
        } else if n == 2 {
            out.push(char::from(digit));
        }
        out.push(char::from(digit));
        i += n;
    }
    if trimmed.len() < hex.len() {
        out.push(',');
    }
    out
}

fn run_count(mut n: usize) -> String {
    let mut out = String::new();
    while n >= 20 {
        let twenties = (n / 20).min(20);
        out.push(char::from(b'g' + (twenties - 1) as u8));
        n -= twenties * 20;
    }
    if n > 0 {
        out.push(char::from(b'G' + (n - 1) as u8));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_font_has_kanji_kana_and_ascii() {
        assert_eq!(
            missing_glyph("千葉返品センター（市川）髙﨑 ｶﾀｶﾅ A-z_0.9"),
            None
        );
        assert_eq!(missing_glyph("😀"), Some('😀'));
        let bitmap = Bitmap::text("千葉", 40);
        assert!(
            bitmap.width_dots >= 70 && bitmap.width_dots <= 85,
            "{}",
            bitmap.width_dots
        );
        assert!(bitmap.n_black_dots() > 300);
    }

    #[test]
    fn long_text_wraps_at_spaces_or_anywhere() {
        let lines = wrap("Yokohama returns centre (Tsurumi-ku)", 30, 300).unwrap();
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines
            .iter()
            .all(|l| width_dots(l, 30) <= 300 && !l.starts_with(' ')));
        assert_eq!(lines.join(" "), "Yokohama returns centre (Tsurumi-ku)");
        let jp = wrap("千葉返品センター（市川）千葉返品センター（市川）", 30, 200).unwrap();
        assert!(jp.len() >= 3, "{jp:?}");
        assert_eq!(
            jp.concat(),
            "千葉返品センター（市川）千葉返品センター（市川）"
        );
        assert_eq!(wrap("千", 30, 10), None);
    }

    #[test]
    fn rows_compress_by_runs_trailing_zeros_and_repeats() {
        assert_eq!(compress_row("FFFFF000"), "KF,");
        assert_eq!(compress_row("0F"), "0F");
        assert_eq!(compress_row(&"A".repeat(45)), "hKA");
        assert_eq!(run_count(400), "z");
        assert_eq!(run_count(419), "zY");
    }
}
