//! Code 128 symbol values for a value, with the fewest symbols: code set B for text, code set C
//! (two digits per symbol) for digit runs long enough to pay for the switch. The ZPL label and
//! the store counter's SVG both draw from these values, so their widths are known before drawing.
//!
//! Only printable ASCII is encoded (code set A, for control characters, is never needed: ids are
//! printable). The choice of sets is a shortest path over (position, set); an id has at most a few
//! dozen characters, so the table is tiny.

use thiserror::Error;

/// Longest value encoded: the longest id the domain accepts.
pub const VALUE_CHARS_MAX: usize = crate::domain::ID_LEN_MAX;
/// Modules of quiet zone each side (ISO/IEC 15417 asks for at least ten).
pub const QUIET_MODULES: u32 = 10;
/// Modules of every symbol but the stop symbol.
pub const SYMBOL_MODULES: u32 = 11;
/// Modules of the stop symbol (its pattern ends in a two-module bar).
pub const STOP_MODULES: u32 = 13;

pub const CODE_C: u8 = 99;
pub const CODE_B: u8 = 100;
pub const START_B: u8 = 104;
pub const START_C: u8 = 105;
pub const STOP: u8 = 106;

/// Bar and space widths (in modules) of each symbol value, bar first (ISO/IEC 15417).
pub const PATTERNS: [&str; 107] = [
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
    #[error("{0:?} cannot be in a Code 128 barcode (printable ASCII only)")]
    Char(char),
    #[error("an empty value has no barcode")]
    Empty,
    #[error("{0} characters; a barcode holds at most {VALUE_CHARS_MAX}")]
    TooLong(usize),
}

/// A code set of the encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    B,
    C,
}

/// One step of an encoding: a run of the value's characters in one code set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub set: Set,
    pub text: String,
}

/// `value` split into code-set runs with the fewest symbols.
pub fn runs(value: &str) -> Result<Vec<Run>, Code128Error> {
    check(value)?;
    let bytes = value.as_bytes();
    let n = bytes.len();
    // cost[i][s]: fewest symbols to encode bytes[i..] when the current set is s.
    const INF: usize = usize::MAX / 4;
    let mut cost = vec![[INF; 2]; n + 1];
    cost[n] = [0, 0];
    let digits = |i: usize| i + 1 < n && bytes[i].is_ascii_digit() && bytes[i + 1].is_ascii_digit();
    for i in (0..n).rev() {
        let in_b = 1 + cost[i + 1][0];
        let in_c = if digits(i) { 1 + cost[i + 2][1] } else { INF };
        cost[i][0] = in_b.min(1 + in_c);
        cost[i][1] = in_c.min(1 + in_b);
    }
    let mut set = if cost[0][1] < cost[0][0] {
        Set::C
    } else {
        Set::B
    };
    let mut out: Vec<Run> = Vec::new();
    let mut i = 0;
    while i < n {
        let stay = if set == Set::C { digits(i) } else { true };
        let (here_b, here_c) = (
            1 + cost[i + 1][0],
            if digits(i) { 1 + cost[i + 2][1] } else { INF },
        );
        let keep = match set {
            Set::B => here_b <= 1 + here_c,
            Set::C => stay && here_c <= 1 + here_b,
        };
        if !keep {
            set = if set == Set::B { Set::C } else { Set::B };
        }
        let step = if set == Set::C { 2 } else { 1 };
        match out.last_mut() {
            Some(run) if run.set == set => run.text.push_str(&value[i..i + step]),
            _ => out.push(Run {
                set,
                text: value[i..i + step].to_owned(),
            }),
        }
        i += step;
    }
    Ok(out)
}

/// The symbol values of `value`: start, the data (with set switches), the check symbol, stop.
pub fn symbols(value: &str) -> Result<Vec<u8>, Code128Error> {
    let runs = runs(value)?;
    let mut out = Vec::with_capacity(value.len() + 4);
    for (k, run) in runs.iter().enumerate() {
        out.push(match (k, run.set) {
            (0, Set::B) => START_B,
            (0, Set::C) => START_C,
            (_, Set::B) => CODE_B,
            (_, Set::C) => CODE_C,
        });
        match run.set {
            Set::B => out.extend(run.text.bytes().map(|b| b - b' ')),
            Set::C => out.extend(
                run.text
                    .as_bytes()
                    .chunks(2)
                    .map(|p| (p[0] - b'0') * 10 + (p[1] - b'0')),
            ),
        }
    }
    let check = out
        .iter()
        .enumerate()
        .map(|(i, v)| i.max(1) * usize::from(*v))
        .sum::<usize>()
        % 103;
    out.push(u8::try_from(check).unwrap_or(0));
    out.push(STOP);
    Ok(out)
}

/// Width of `value`'s symbol in modules, without quiet zones.
pub fn symbol_modules(value: &str) -> Result<u32, Code128Error> {
    let n = u32::try_from(symbols(value)?.len()).unwrap_or(u32::MAX);
    Ok((n - 1) * SYMBOL_MODULES + STOP_MODULES)
}

/// The bars of `value`'s symbol, each as (first module, width in modules) counted from the
/// left edge of its quiet zone, and the width of the whole in modules, quiet zones included:
/// what any drawing of the barcode (a PDF's vector bars) lays out.
pub fn bars(value: &str) -> Result<(Vec<(u32, u32)>, u32), Code128Error> {
    let mut x = QUIET_MODULES;
    let mut out = Vec::new();
    for symbol in symbols(value)? {
        for (i, w) in PATTERNS[usize::from(symbol)].bytes().enumerate() {
            let w = u32::from(w - b'0');
            if i % 2 == 0 {
                out.push((x, w));
            }
            x += w;
        }
    }
    Ok((out, x + QUIET_MODULES))
}

fn check(value: &str) -> Result<(), Code128Error> {
    if value.is_empty() {
        return Err(Code128Error::Empty);
    }
    let n_chars = value.chars().count();
    if n_chars > VALUE_CHARS_MAX {
        return Err(Code128Error::TooLong(n_chars));
    }
    match value.chars().find(|c| !(' '..='~').contains(c)) {
        Some(c) => Err(Code128Error::Char(c)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_has_its_width_and_all_differ() {
        for (i, p) in PATTERNS.iter().enumerate() {
            let modules: u32 = p.bytes().map(|b| u32::from(b - b'0')).sum();
            let want = if i == usize::from(STOP) {
                STOP_MODULES
            } else {
                SYMBOL_MODULES
            };
            assert_eq!(modules, want, "symbol {i}");
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
        assert_eq!(symbols(&"A".repeat(65)), Err(Code128Error::TooLong(65)));
    }

    #[test]
    fn digit_runs_go_to_code_set_c_when_that_is_shorter() {
        let set = |v: &str| {
            runs(v)
                .unwrap()
                .iter()
                .map(|r| (r.set, r.text.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(set("1234"), [(Set::C, "1234".to_owned())]);
        // Four digits in the middle cost a switch there and back: no gain.
        assert_eq!(set("A1234B"), [(Set::B, "A1234B".to_owned())]);
        assert_eq!(
            set("LPN-CHIBA-256E-0000001M"),
            [
                (Set::B, "LPN-CHIBA-256E-0".to_owned()),
                (Set::C, "000001".to_owned()),
                (Set::B, "M".to_owned()),
            ]
        );
        // An odd run keeps its first digit in set B.
        assert_eq!(
            set("12345"),
            [(Set::B, "1".to_owned()), (Set::C, "2345".to_owned())]
        );
        // Start C, 12 34 56, check, stop: 5 symbols of 11 modules and the stop's 13.
        assert_eq!(symbol_modules("123456").unwrap(), 5 * 11 + 13);
        assert_eq!(symbol_modules("ABC").unwrap(), 11 * 3 + 35);
    }

    #[test]
    fn the_bars_span_the_symbol_between_its_quiet_zones() {
        let (bars, width) = bars("RMA-12345").unwrap();
        let symbol = symbol_modules("RMA-12345").unwrap();
        assert_eq!(width, symbol + 2 * QUIET_MODULES);
        assert_eq!(bars.first().map(|b| b.0), Some(QUIET_MODULES));
        let (last, w) = *bars.last().unwrap();
        // The stop pattern ends in a two-module bar.
        assert_eq!((last + w, w), (QUIET_MODULES + symbol, 2));
        assert!(
            bars.windows(2).all(|p| p[0].0 + p[0].1 < p[1].0),
            "bars never touch"
        );
    }

    #[test]
    fn the_encoding_reads_back_to_the_value() {
        for value in [
            "0",
            "00",
            "A0000000000B",
            "RMA-20261204-000123",
            "9_9.9-99999",
            "0099",
            "99100099",
        ] {
            let mut text = String::new();
            let mut set = Set::B;
            let s = symbols(value).unwrap();
            for &v in &s[..s.len() - 2] {
                match (set, v) {
                    (_, START_B) | (Set::C, CODE_B) => set = Set::B,
                    (_, START_C) | (Set::B, CODE_C) => set = Set::C,
                    (Set::B, v) => text.push(char::from(v + b' ')),
                    (Set::C, v) => text.push_str(&format!("{v:02}")),
                }
            }
            assert_eq!(text, value);
        }
    }
}
