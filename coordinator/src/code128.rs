//! Code 128 (code set B) as SVG, for the printable return label: the same symbology the ZPL
//! label asks the printer for (`^BC`), so a receiving station scans either.

use thiserror::Error;

/// Longest value encoded, in characters (an RMA is 16).
pub const VALUE_CHARS_MAX: usize = 48;
/// Modules of quiet zone on each side.
const QUIET_MODULES: u32 = 10;
const START_B: usize = 104;
const STOP: usize = 106;

/// Bar and space widths (in modules) of each symbol value, bar first (ISO/IEC 15417).
const PATTERNS: [&str; 107] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Code128Error {
    #[error("{0:?} cannot be encoded in Code 128 set B (printable ASCII only)")]
    Char(char),
    #[error("an empty value has no barcode")]
    Empty,
    #[error("longer than {VALUE_CHARS_MAX} characters")]
    TooLong,
}

/// The symbol values of `value`: start B, the characters, the check symbol, stop.
pub fn symbols(value: &str) -> Result<Vec<usize>, Code128Error> {
    if value.is_empty() {
        return Err(Code128Error::Empty);
    }
    if value.chars().count() > VALUE_CHARS_MAX {
        return Err(Code128Error::TooLong);
    }
    let mut out = vec![START_B];
    for c in value.chars() {
        match c {
            ' '..='~' => out.push(c as usize - ' ' as usize),
            other => return Err(Code128Error::Char(other)),
        }
    }
    let check = out
        .iter()
        .enumerate()
        .map(|(i, v)| i.max(1) * v)
        .sum::<usize>()
        % 103;
    out.push(check);
    out.push(STOP);
    Ok(out)
}

/// An SVG of `value`'s barcode, `module_px` wide per module and `height_px` tall.
pub fn svg(value: &str, module_px: u32, height_px: u32) -> Result<String, Code128Error> {
    let mut x = QUIET_MODULES;
    let mut rects = String::new();
    for symbol in symbols(value)? {
        for (i, w) in PATTERNS[symbol].bytes().enumerate() {
            let w = u32::from(w - b'0');
            if i % 2 == 0 {
                rects.push_str(&format!(
                    r#"<rect x="{}" y="0" width="{}" height="{height_px}"/>"#,
                    x * module_px,
                    w * module_px
                ));
            }
            x += w;
        }
    }
    let width = (x + QUIET_MODULES) * module_px;
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height_px}" viewBox="0 0 {width} {height_px}" shape-rendering="crispEdges" role="img"><rect width="{width}" height="{height_px}" fill="#fff"/><g fill="#000">{rects}</g></svg>"##
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_has_its_width_and_all_differ() {
        for (i, p) in PATTERNS.iter().enumerate() {
            let modules: u32 = p.bytes().map(|b| u32::from(b - b'0')).sum();
            assert_eq!(modules, if i == STOP { 13 } else { 11 }, "symbol {i}");
        }
        let mut unique = PATTERNS.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), PATTERNS.len());
    }

    #[test]
    fn the_check_symbol_is_the_weighted_sum() {
        // 104 + 48·1 + 42·2 + 42·3 + 17·4 + 18·5 + 19·6 + 35·7 = 879 ≡ 55 (mod 103).
        let s = symbols("PJJ123C").unwrap();
        assert_eq!(s[..2], [104, 48]);
        assert_eq!(s[s.len() - 2..], [55, 106]);
        assert_eq!(symbols(""), Err(Code128Error::Empty));
        assert_eq!(symbols("é"), Err(Code128Error::Char('é')));
        let svg = svg("RMA-0000000001-X", 2, 80).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{svg}");
    }
}
