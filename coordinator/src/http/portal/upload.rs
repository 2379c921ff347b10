//! The portal's return form as posted: its fields, and the photos of its items read as
//! multipart parts, each bounded in size and judged by its first bytes (never by the name or
//! type the browser gives it), so what is stored can only ever be served back as the image it
//! is.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use axum::Form;

use axum::http::StatusCode;

use crate::http::error::ApiError;

fn bad_form(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_form", message)
}

/// Photos a customer may show of one item.
pub const PHOTOS_PER_ITEM_MAX: usize = 3;
/// Largest photo accepted, in bytes (5 MiB: a phone's photo, not its RAW file).
pub const PHOTO_BYTES_MAX: usize = 5 * 1024 * 1024;
/// Largest return form, photos included, in bytes (48 MiB): the photos of three items at
/// their largest, with room for a file too large to be refused in words. It bounds what one
/// request holds in memory; a larger body is refused whole.
pub const FORM_BODY_BYTES_MAX: usize = 48 * 1024 * 1024;
/// Longest text field of the form, in bytes (a note is bounded more tightly in characters).
pub const FORM_FIELD_BYTES_MAX: usize = 8 * 1024;
/// Parts one form may have, fields and photos together.
pub const FORM_PARTS_MAX: usize = 1_024;

/// The kinds of image accepted, as their first bytes show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
    Webp,
}

impl ImageType {
    /// The type `bytes` begin as, if one accepted.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }

    /// The type of a stored content type (only ever one of ours).
    pub fn of_content_type(s: &str) -> Option<Self> {
        [Self::Jpeg, Self::Png, Self::Webp]
            .into_iter()
            .find(|t| t.content_type() == s)
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }
}

/// Why a photo was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhotoProblem {
    NotAnImage,
    TooLarge,
}

/// A photo posted for line `line` of the order.
pub struct PostedPhoto {
    pub line: usize,
    /// The file's name as the browser gave it, only to name it back to the customer.
    pub file_name: String,
    pub checked: Result<(ImageType, Vec<u8>), PhotoProblem>,
}

/// The form as posted: its text fields in order, and its photos.
pub struct Posted {
    pub fields: Vec<(String, String)>,
    pub photos: Vec<PostedPhoto>,
}

impl Posted {
    /// The first value of field `name`, trimmed; empty when there is none.
    pub fn field(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or_default()
    }

    /// Every value of field `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

/// Reads a return form posted as `multipart/form-data` (with photos) or as a plain form.
pub async fn read(req: Request) -> Result<Posted, ApiError> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(req, &())
            .await
            .map_err(|e| bad_form(e.body_text()))?;
        return Ok(Posted {
            fields,
            photos: Vec::new(),
        });
    }
    let mut parts = Multipart::from_request(req, &())
        .await
        .map_err(|e| bad_form(e.body_text()))?;
    let mut posted = Posted {
        fields: Vec::new(),
        photos: Vec::new(),
    };
    let broken = |e: axum::extract::multipart::MultipartError| bad_form(e.body_text());
    let mut n_parts = 0;
    while let Some(mut part) = parts.next_field().await.map_err(broken)? {
        n_parts += 1;
        if n_parts > FORM_PARTS_MAX {
            return Err(bad_form(format!(
                "the form has more than {FORM_PARTS_MAX} parts"
            )));
        }
        let name = part.name().unwrap_or_default().to_owned();
        let photo_line = name
            .strip_prefix("photo")
            .and_then(|i| i.parse::<usize>().ok());
        if let (Some(line), Some(file_name)) = (photo_line, part.file_name().map(str::to_owned)) {
            let mut bytes = Vec::new();
            let mut too_large = false;
            while let Some(chunk) = part.chunk().await.map_err(broken)? {
                // Past the limit the rest is read and dropped, so the form's other parts
                // still arrive.
                if !too_large && bytes.len() + chunk.len() > PHOTO_BYTES_MAX {
                    too_large = true;
                    bytes = Vec::new();
                }
                if !too_large {
                    bytes.extend_from_slice(&chunk);
                }
            }
            // A file input left empty posts a part with no name and no bytes.
            if file_name.is_empty() && bytes.is_empty() && !too_large {
                continue;
            }
            let checked = if too_large {
                Err(PhotoProblem::TooLarge)
            } else {
                ImageType::sniff(&bytes)
                    .map(|t| (t, bytes))
                    .ok_or(PhotoProblem::NotAnImage)
            };
            posted.photos.push(PostedPhoto {
                line,
                file_name,
                checked,
            });
            continue;
        }
        let mut value = Vec::new();
        while let Some(chunk) = part.chunk().await.map_err(broken)? {
            if value.len() + chunk.len() > FORM_FIELD_BYTES_MAX {
                return Err(bad_form(format!(
                    "the form's field {name} is longer than {FORM_FIELD_BYTES_MAX} bytes"
                )));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value)
            .map_err(|_| bad_form(format!("the form's field {name} is not UTF-8")))?;
        posted.fields.push((name, value));
    }
    Ok(posted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_known_by_its_first_bytes_only() {
        assert_eq!(
            ImageType::sniff(b"\xFF\xD8\xFF\xE0rest"),
            Some(ImageType::Jpeg)
        );
        assert_eq!(
            ImageType::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageType::Png)
        );
        assert_eq!(
            ImageType::sniff(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(ImageType::Webp)
        );
        for not in [
            &b"<html><script>alert(1)</script>"[..],
            b"%PDF-1.7",
            b"GIF89a",
            b"RIFF\x10\0\0\0WAVE",
            b"\xFF\xD8",
            b"",
        ] {
            assert_eq!(ImageType::sniff(not), None, "{not:?}");
        }
        for t in [ImageType::Jpeg, ImageType::Png, ImageType::Webp] {
            assert_eq!(ImageType::of_content_type(t.content_type()), Some(t));
        }
    }
}
