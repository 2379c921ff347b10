//! The wire: length-prefixed bincode frames between agent and coordinator.
//!
//! Every bincode use in the workspace lives below this module, so a maintained
//! bincode-compatible crate can replace it in one place. Domain types never derive the wire
//! forms; `payload` converts explicitly and validates while decoding, so a decoded value is as
//! well formed as one built by hand.
//!
//! Frame: `u32` big-endian body length, then the bincode body. Decoding checks the length
//! against [`MAX_FRAME_BYTES`] before anything is allocated, decodes with the same limit (so an
//! inner length claiming 2^60 items is refused, not allocated), and requires the body to be
//! consumed exactly.
//!
//! Versions: the first frame each way is a [`handshake`] message whose encoding never changes.
//! Everything after it is encoded by the negotiated version ([`messages`]). The coordinator
//! speaks every version from [`PROTOCOL_VERSION_MIN`] to [`PROTOCOL_VERSION`]. Enums only ever gain variants at the end.
//!
//! Packing (version 4 on): a message's bincode body is compressed with zstd before it is
//! framed. A batch of ops repeats its site, operator, station, LPN prefix and SKUs op after op,
//! so it shrinks several times over: fewer bytes on a site's link, and fewer QUIC packets to
//! encrypt, send and acknowledge per op at both ends. Unpacking is bounded by
//! [`MAX_FRAME_BYTES`] like any frame body, so a small frame cannot claim a large one.

mod bytes;
pub mod handshake;
pub mod messages;
pub mod payload;

use std::cell::RefCell;

use bincode::config::{self, Configuration, Limit};
use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;

/// Largest frame body accepted or produced, in bytes. A batch is cut well below it (see
/// `sync::BatchLimits`); anything larger is refused before a byte of it is buffered.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Size of the length prefix.
pub const FRAME_HEADER_BYTES: usize = 4;
/// The protocol version this build speaks natively (N).
pub const PROTOCOL_VERSION: u16 = 4;
/// The first version whose message bodies are packed (see "Packing" above).
pub const PACKED_FROM_VERSION: u16 = 4;
/// zstd's level for packing: its fastest, which already finds the repetition in a batch.
pub const PACK_ZSTD_LEVEL: i32 = 1;
/// The oldest version still spoken, so sites can be upgraded one at a time.
pub const PROTOCOL_VERSION_MIN: u16 = 1;

type Codec = Configuration<config::BigEndian, config::Varint, Limit<MAX_FRAME_BYTES>>;

fn codec() -> Codec {
    config::standard()
        .with_big_endian()
        .with_variable_int_encoding()
        .with_limit::<MAX_FRAME_BYTES>()
}

#[derive(Debug, Error)]
pub enum WireError {
    #[error("frame of {len} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    FrameTooLarge { len: usize },
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("malformed {what}: {trailing} bytes left over after decoding")]
    TrailingBytes { what: &'static str, trailing: usize },
    #[error("could not encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("invalid {what}: {source}")]
    Invalid {
        what: &'static str,
        #[source]
        source: crate::domain::DomainError,
    },
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion { what: &'static str, version: u16 },
}

/// Encodes `value` as a complete frame (length prefix + body).
pub(crate) fn encode_frame<T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, WireError> {
    let mut out = vec![0u8; FRAME_HEADER_BYTES];
    bincode::serde::encode_into_std_write(value, &mut out, codec()).map_err(|e| {
        WireError::Encode {
            what,
            reason: e.to_string(),
        }
    })?;
    let len = out.len() - FRAME_HEADER_BYTES;
    if len > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge { len });
    }
    let prefix = u32::try_from(len).map_err(|_| WireError::FrameTooLarge { len })?;
    out[..FRAME_HEADER_BYTES].copy_from_slice(&prefix.to_be_bytes());
    Ok(out)
}

/// Frames a body already encoded (length prefix + body).
pub(crate) fn frame_of(body: &[u8]) -> Result<Vec<u8>, WireError> {
    let len = body.len();
    if len > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge { len });
    }
    let prefix = u32::try_from(len).map_err(|_| WireError::FrameTooLarge { len })?;
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + len);
    out.extend_from_slice(&prefix.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

thread_local! {
    /// zstd's contexts, one of each per thread that packs or unpacks, kept from one frame to
    /// the next: `zstd::bulk::compress` and `decompress` make and free a context (some hundred
    /// kilobytes of tables to allocate and clear) for every frame. A context keeps no state
    /// from one frame to the next that changes its output.
    static PACKER: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static UNPACKER: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Packs an encoded body (see "Packing" above).
pub(crate) fn pack(what: &'static str, body: &[u8]) -> Result<Vec<u8>, WireError> {
    PACKER
        .with(|cell| {
            let mut slot = cell.borrow_mut();
            let packer = match &mut *slot {
                Some(p) => p,
                None => slot.insert(zstd::bulk::Compressor::new(PACK_ZSTD_LEVEL)?),
            };
            packer.compress(body)
        })
        .map_err(|e| WireError::Encode {
            what,
            reason: format!("packing: {e}"),
        })
}

/// Unpacks a packed body, refusing one that would unpack past [`MAX_FRAME_BYTES`]. The buffer
/// is the size the frame declares (a packed frame names its content's size), not the limit.
pub(crate) fn unpack(what: &'static str, packed: &[u8]) -> Result<Vec<u8>, WireError> {
    if packed.len() > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge { len: packed.len() });
    }
    let malformed = |reason: String| WireError::Malformed {
        what,
        reason: format!("unpacking: {reason}"),
    };
    let capacity = match zstd::zstd_safe::get_frame_content_size(packed) {
        Ok(Some(n)) if n > MAX_FRAME_BYTES as u64 => {
            return Err(malformed(format!(
                "the frame declares {n} bytes, over the {MAX_FRAME_BYTES}-byte limit"
            )))
        }
        Ok(Some(n)) => usize::try_from(n).unwrap_or(MAX_FRAME_BYTES),
        // A frame that does not say stays bounded by the limit as it unpacks.
        Ok(None) => MAX_FRAME_BYTES,
        Err(e) => return Err(malformed(format!("not a zstd frame ({e})"))),
    };
    UNPACKER
        .with(|cell| {
            let mut slot = cell.borrow_mut();
            let unpacker = match &mut *slot {
                Some(u) => u,
                None => slot.insert(zstd::bulk::Decompressor::new()?),
            };
            unpacker.decompress(packed, capacity)
        })
        .map_err(|e| malformed(e.to_string()))
}

/// Reads a frame's length prefix and checks it against the limit, before the body is read.
pub fn frame_body_len(header: [u8; FRAME_HEADER_BYTES]) -> Result<usize, WireError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge { len });
    }
    Ok(len)
}

/// Splits one whole frame off the front of `buf`: `Ok(None)` while it is incomplete.
pub fn split_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, WireError> {
    let Some(header) = buf.get(..FRAME_HEADER_BYTES) else {
        return Ok(None);
    };
    let mut prefix = [0u8; FRAME_HEADER_BYTES];
    prefix.copy_from_slice(header);
    let len = frame_body_len(prefix)?;
    let end = FRAME_HEADER_BYTES + len;
    Ok(buf.get(FRAME_HEADER_BYTES..end).map(|body| (body, end)))
}

pub(crate) fn encode_body<T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(value, codec()).map_err(|e| WireError::Encode {
        what,
        reason: e.to_string(),
    })
}

/// Decodes a frame body (or payload) that must be consumed exactly.
pub(crate) fn decode_body<T: DeserializeOwned>(
    what: &'static str,
    body: &[u8],
) -> Result<T, WireError> {
    if body.len() > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge { len: body.len() });
    }
    let (value, consumed) =
        bincode::serde::decode_from_slice(body, codec()).map_err(|e| WireError::Malformed {
            what,
            reason: e.to_string(),
        })?;
    if consumed != body.len() {
        return Err(WireError::TrailingBytes {
            what,
            trailing: body.len() - consumed,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_prefix_is_refused_before_the_body_arrives() {
        let header = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes();
        assert!(matches!(
            frame_body_len(header),
            Err(WireError::FrameTooLarge { .. })
        ));
        // Only the 4-byte header is present: the limit is enforced without waiting for the body.
        assert!(matches!(
            split_frame(&header),
            Err(WireError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn incomplete_frames_are_a_normal_outcome() {
        assert!(split_frame(&[0, 0]).unwrap().is_none());
        assert!(split_frame(&[0, 0, 0, 3, 1]).unwrap().is_none());
        let (body, used) = split_frame(&[0, 0, 0, 1, 7, 9]).unwrap().unwrap();
        assert_eq!((body, used), (&[7u8][..], 5));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut body = encode_body("test", &5u32).unwrap();
        body.push(0);
        assert!(matches!(
            decode_body::<u32>("test", &body),
            Err(WireError::TrailingBytes { trailing: 1, .. })
        ));
    }
}
