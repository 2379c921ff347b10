//! JSON numbers written with a fraction or an exponent but holding a whole value (`947.0`,
//! `9.47e2`) rewritten as integers before a body is parsed. The API document types counts as
//! JSON Schema `integer`, which by its definition includes `947.0`; serde would refuse it for a
//! `u32`. A real fraction (`947.5`) is left alone and still refused at its field, so nothing is
//! ever rounded.

/// 2^53: every whole f64 below it is exact; one at or beyond it may already have been rounded
/// while parsing, so it stays as written (and an integer field refuses it).
pub const EXACT_INTEGER_BOUND: f64 = 9_007_199_254_740_992.0;

/// The body with every whole-valued non-integer number token written as an integer. Bytes
/// inside strings are never touched; text that is not JSON is returned as is for the parser to
/// refuse.
pub fn whole_numbers_as_integers(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    let mut in_string = false;
    while i < body.len() {
        let b = body[i];
        if in_string {
            match b {
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < body.len()
                && matches!(body[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            let token = &body[start..i];
            if let Some(whole) = whole_value(token) {
                let buf = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
                buf.extend_from_slice(&body[copied..start]);
                buf.extend_from_slice(whole.as_bytes());
                copied = i;
            }
            continue;
        }
        i += 1;
    }
    match out {
        Some(mut buf) => {
            buf.extend_from_slice(&body[copied..]);
            std::borrow::Cow::Owned(buf)
        }
        None => std::borrow::Cow::Borrowed(body),
    }
}

/// The integer text of a number token with a fraction or exponent whose value is whole and
/// exact; None for anything else (plain integers included: they need no rewrite).
fn whole_value(token: &[u8]) -> Option<String> {
    if !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return None;
    }
    let text = std::str::from_utf8(token).ok()?;
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() || value.fract() != 0.0 || value.abs() >= EXACT_INTEGER_BOUND {
        return None;
    }
    // The magnitude bound above makes the conversion exact.
    #[allow(clippy::cast_possible_truncation)]
    let whole = value as i64;
    Some(whole.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(s: &str) -> String {
        String::from_utf8(whole_numbers_as_integers(s.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn whole_values_become_integers_and_fractions_stay() {
        assert_eq!(rewrite(r#"{"qty": 14.0}"#), r#"{"qty": 14}"#);
        assert_eq!(
            rewrite(r#"[9.47e2, -2.0, 1E3, -0.0]"#),
            "[947, -2, 1000, 0]"
        );
        assert_eq!(
            rewrite(r#"{"qty": 14.5, "n": 12}"#),
            r#"{"qty": 14.5, "n": 12}"#
        );
        assert_eq!(
            rewrite("[1e400, 9007199254740993.0]"),
            "[1e400, 9007199254740993.0]"
        );
    }

    #[test]
    fn strings_are_left_alone() {
        let s = r#"{"sku": "A-1.0", "note": "say \"2.0\" 3.0", "qty": 3.0}"#;
        assert_eq!(
            rewrite(s),
            r#"{"sku": "A-1.0", "note": "say \"2.0\" 3.0", "qty": 3}"#
        );
    }
}
