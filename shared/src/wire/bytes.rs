//! A byte string's serde form for the wire: the same bytes on the wire as a `Vec<u8>`'s
//! derived form (a length, then one byte per element: bincode writes a `u8` as itself), but
//! written and read as one slice instead of element by element through serde's sequence
//! calls. An op's payload is most of a batch, so this is most of encoding and decoding one.

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Serializer;

pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    /// A format without a byte-string form (a human-readable one) writes a sequence.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element()? {
            out.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use crate::wire::messages::Sequenced;
    use crate::wire::{decode_body, encode_body};

    /// `Sequenced` as it was derived before: its payload element by element.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct ElementWise {
        seq: u64,
        payload: Vec<u8>,
    }

    #[test]
    fn the_bytes_on_the_wire_are_the_element_wise_form_both_ways() {
        for len in [0_usize, 1, 127, 128, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let old = vec![ElementWise {
                seq: 1 << 40,
                payload: payload.clone(),
            }];
            let new = vec![Sequenced {
                seq: 1 << 40,
                payload,
            }];
            let old_bytes = encode_body("old", &old).unwrap();
            assert_eq!(encode_body("new", &new).unwrap(), old_bytes, "len {len}");
            let read: Vec<Sequenced> = decode_body("new", &old_bytes).unwrap();
            assert_eq!(read, new, "len {len}");
            let back: Vec<ElementWise> = decode_body("old", &old_bytes).unwrap();
            assert_eq!(back, old);
        }
    }

    #[test]
    fn a_length_past_the_frame_limit_is_refused_not_allocated() {
        // seq 1, then a payload length claiming 2^60 bytes (varint: 0xfd + 8 bytes big-endian).
        let mut body = vec![1_u8, 0xfd];
        body.extend_from_slice(&(1_u64 << 60).to_be_bytes());
        let err = decode_body::<Sequenced>("sequenced", &body).unwrap_err();
        assert!(err.to_string().contains("sequenced"), "{err}");
    }
}
