//! The ids the coordinator makes (RMAs, totes): a body of [`ID_BODY_CHARS`] base-36
//! characters under the label's check character.

/// Characters of a made id's body, before its check character.
pub const ID_BODY_CHARS: usize = 10;

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `v` modulo 36^[`ID_BODY_CHARS`] in `0-9 A-Z`, most significant first, zero-padded.
pub fn base36_body(mut v: u64) -> String {
    let mut body = [b'0'; ID_BODY_CHARS];
    for c in body.iter_mut().rev() {
        *c = ALPHABET[(v % 36) as usize];
        v /= 36;
    }
    body.iter().map(|&b| char::from(b)).collect()
}

/// Ten base-36 characters from the time and a counter: time-ordered and unique within this
/// coordinator.
fn time_ordered_body(now_ms: i64) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1000;
    base36_body(u64::try_from(now_ms).unwrap_or(0) * 1000 + n)
}

/// A fresh RMA id made at `now_ms` (the coordinator's clock), printable as a label with its
/// check character.
pub fn new_rma_id(now_ms: i64) -> String {
    let body = time_ordered_body(now_ms);
    // Ten characters of A-Z 0-9 always encode.
    modori_shared::barcode::rma_encode(&body).unwrap_or(body)
}

/// A fresh trade-in quote id, `TQ-` and ten base-36 characters (never printed as a barcode).
pub fn new_quote_id(now_ms: i64) -> String {
    format!("TQ-{}", time_ordered_body(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_ten_base36_characters_most_significant_first() {
        assert_eq!(base36_body(0), "0000000000");
        assert_eq!(base36_body(35), "000000000Z");
        assert_eq!(base36_body(36), "0000000010");
        assert_eq!(base36_body(36u64.pow(10) + 1), "0000000001");
    }

    #[test]
    fn an_rma_id_is_made_from_the_time_it_is_given() {
        let earlier = new_rma_id(1_764_000_000_000);
        let later = new_rma_id(1_764_000_060_000);
        assert!(earlier < later, "{earlier} {later}");
        let again = new_rma_id(1_764_000_000_000);
        assert_ne!(earlier, again, "the counter tells ids of one instant apart");
        assert_eq!(
            earlier[..7],
            again[..7],
            "the same instant, the same time digits"
        );
    }
}
