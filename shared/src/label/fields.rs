//! What a label field may hold, checked before anything is laid out or printed: text without
//! control characters, Code 128 data the barcode can carry, at most [`FIELD_CHARS_MAX`]
//! characters (see `zpl` for why).

use thiserror::Error;

/// Longest field on a label: the longest id the domain accepts.
pub const FIELD_CHARS_MAX: usize = crate::domain::ID_LEN_MAX;

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
    #[error("{field}: the label font has no glyph for {ch:?}")]
    NoGlyph { field: &'static str, ch: char },
    #[error("{field}: {why}")]
    Barcode { field: &'static str, why: String },
    #[error("{label} label does not fit {media}: {field} {why}")]
    DoesNotFit {
        label: &'static str,
        field: &'static str,
        media: String,
        why: String,
    },
}

/// Checks `value` as label text: see the module's rules.
pub fn check_text(field: &'static str, value: &str) -> Result<(), ZplError> {
    check_len(field, value)?;
    match value.chars().find(|ch| ch.is_control()) {
        Some(ch) => Err(ZplError::ControlChar { field, ch }),
        None => Ok(()),
    }
}

/// Checks `value` as Code 128 data: see the module's rules.
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
