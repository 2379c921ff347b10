//! Check-character algorithms. Each one is a published standard, so labels made by other tools
//! and the worked examples in those standards validate here too, and the tests can compare
//! against them.
//!
//! Callers validate the character set first; these functions only compute.

/// ISO/IEC 7064 MOD 37,36 works over this alphabet; a character's value is its index.
pub(crate) const ALNUM: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `M` of the hybrid system MOD 37,36 (the alphabet size; the second modulus is `M + 1`).
const MOD37_36_M: u32 = 36;

/// UPU S10 §5: weights of the eight serial digits, left to right.
const S10_WEIGHTS: [u32; 8] = [8, 6, 4, 2, 3, 5, 9, 7];

/// The modulus of the UPU S10 check digit.
const S10_MODULUS: u32 = 11;

/// The divisor of the "7DR" rule of Japanese parcel carriers.
const SEVEN_DR_DIVISOR: u64 = 7;

/// GS1 mod-10 check digit (GS1 General Specifications §7.9.1), shared by every GS1 key: GTIN-8,
/// -12, -13, -14 and SSCC. `digits` are the ASCII digits before the check digit; weights 3 and 1
/// alternate starting with 3 at the rightmost, which is why any key can be left-padded with
/// zeros (to GTIN-14) without changing its check digit.
pub(crate) fn gs1_mod10(digits: &[u8]) -> u8 {
    debug_assert!(digits.iter().all(u8::is_ascii_digit));
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 0 {
                3 * v
            } else {
                v
            }
        })
        .sum();
    b'0' + ((10 - sum % 10) % 10) as u8
}

fn alnum_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        _ => None,
    }
}

/// ISO/IEC 7064 MOD 37,36 (hybrid system) over `0-9 A-Z`; the check character is in the same
/// alphabet. `None` if any character is outside it.
///
/// Every single-character substitution changes the result: each step maps the running value
/// injectively (addition mod 36 over 36 consecutive values, then doubling mod the prime 37), so
/// a change in one position survives to the end.
pub(crate) fn mod37_36(chars: impl IntoIterator<Item = u8>) -> Option<u8> {
    let m = MOD37_36_M;
    let mut p = m;
    for c in chars {
        let s = match (p + alnum_value(c)?) % m {
            0 => m,
            s => s,
        };
        p = (2 * s) % (m + 1);
    }
    Some(ALNUM[((m + 1 - p) % m) as usize])
}

/// "7DR": the first 11 digits read as a number, modulo 7. Used on the 12-digit slips of Yamato
/// Transport, Sagawa Express and Japan Post domestic parcels.
pub(crate) fn seven_dr(digits: &[u8]) -> u8 {
    debug_assert!(digits.iter().all(u8::is_ascii_digit));
    // 11 digits are below 10^11, far inside u64.
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    b'0' + (n % SEVEN_DR_DIVISOR) as u8
}

/// UPU S10 check digit over the 8 serial digits: 11 minus the weighted sum mod 11, where 10
/// becomes 0 and 11 becomes 5.
pub(crate) fn s10(serial: &[u8]) -> u8 {
    debug_assert!(serial.len() == S10_WEIGHTS.len() && serial.iter().all(u8::is_ascii_digit));
    let sum: u32 = serial
        .iter()
        .zip(S10_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    match S10_MODULUS - sum % S10_MODULUS {
        10 => b'0',
        11 => b'5',
        c => b'0' + c as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gs1_mod10_matches_published_examples() {
        // GS1 General Specifications worked example (GTIN-13 629104150021 → 3).
        assert_eq!(gs1_mod10(b"629104150021"), b'3');
        // The JAN example printed in GS1 Japan's material.
        assert_eq!(gs1_mod10(b"490123456789"), b'4');
        // Padding with zeros never changes a GS1 check digit.
        assert_eq!(gs1_mod10(b"0490123456789"), b'4');
        assert_eq!(gs1_mod10(b"00000000490123456789"), b'4');
        // The SSCC of GS1's examples, (00) 106141411234567897.
        assert_eq!(gs1_mod10(b"10614141123456789"), b'7');
    }

    #[test]
    fn mod37_36_matches_the_iso_example_and_rejects_other_characters() {
        // The example of ISO/IEC 7064 (also python-stdnum's doctest).
        assert_eq!(mod37_36(*b"A12425GABC1234002"), Some(b'M'));
        assert_eq!(mod37_36(*b"a1"), None);
        assert_eq!(mod37_36(*b"A-1"), None);
        // Empty input is defined (check of nothing) and in the alphabet.
        assert!(mod37_36([]).is_some_and(|c| ALNUM.contains(&c)));
    }

    #[test]
    fn mod37_36_validates_its_own_output() {
        // Hybrid-system validation: appending the check and running the recurrence ends at 1.
        let body = *b"RMA0123456789";
        let check = mod37_36(body).unwrap();
        let m = MOD37_36_M;
        let mut p = m;
        for c in body.iter().chain([check].iter()) {
            let s = match (p + alnum_value(*c).unwrap()) % m {
                0 => m,
                s => s,
            };
            if c == &check {
                assert_eq!(s, 1);
            }
            p = (2 * s) % (m + 1);
        }
    }

    #[test]
    fn seven_dr_matches_published_examples() {
        // nanoappli's worked example: 12345678901 ÷ 7 leaves 3.
        assert_eq!(seven_dr(b"12345678901"), b'3');
        assert_eq!(seven_dr(b"44441375870"), b'3');
        assert_eq!(seven_dr(b"00000000000"), b'0');
        assert_eq!(
            seven_dr(b"99999999999"),
            b'0' + (99_999_999_999u64 % 7) as u8
        );
    }

    #[test]
    fn s10_covers_the_special_remainders() {
        // 12345678: weighted sum 204, 204 mod 11 = 6, 11 - 6 = 5.
        assert_eq!(s10(b"12345678"), b'5');
        // Sum 0 → 11 - 0 = 11 → 5.
        assert_eq!(s10(b"00000000"), b'5');
        // A weighted sum of 1 mod 11 gives 10, which is printed as 0.
        let ten = (0..100_000_000u32)
            .map(|n| format!("{n:08}"))
            .find(|s| {
                let sum: u32 = s
                    .bytes()
                    .zip(S10_WEIGHTS)
                    .map(|(d, w)| u32::from(d - b'0') * w)
                    .sum();
                sum % 11 == 1
            })
            .unwrap();
        assert_eq!(s10(ten.as_bytes()), b'0');
    }
}
