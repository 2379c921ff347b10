//! Sans-IO sync: one [`Sender`] and one [`Receiver`] per direction per site.
//!
//! Upstream, the agent's outbox is the sender and the coordinator the receiver; downstream the
//! roles swap, with the same code. Items are numbered 1, 2, 3… inside an epoch. The receiver
//! applies exactly the next seq, counts lower ones as duplicates (checking their payload hash)
//! and drops higher ones as a gap; it acknowledges cumulatively, and only after the driver says
//! the apply is durable ([`Receiver::commit`]). The sender keeps everything above the last ack
//! and sends it again after a reconnect or a retransmit timeout (go-back-N). Together: every
//! item is applied once, in order, whatever the transport loses, duplicates or reorders. Progress
//! counts on the transport keeping order within a connection (one QUIC stream): a batch that
//! arrives past a gap is dropped and waits for the reconnect or the retransmit timeout.
//!
//! Time comes in as `now_ms` from the caller; nothing here reads a clock.

mod receiver;
mod sender;

pub use receiver::{Conflict, Plan, Receiver};
pub use sender::{BatchRequest, Sender, SenderError};

use crate::wire::{messages::Sequenced, MAX_FRAME_BYTES};

/// Default most items in one batch.
pub const BATCH_OPS_MAX_DEFAULT: usize = 512;
/// Default most payload bytes in one batch. A quarter of the frame limit leaves room for framing
/// and for a single op at the per-op limit.
pub const BATCH_BYTES_MAX_DEFAULT: usize = MAX_FRAME_BYTES / 4;
/// Largest payload of one op or command, in bytes. Checked when the item is recorded, so a batch
/// of one always fits in a frame.
pub const ITEM_PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// Default batches sent and not yet acknowledged. This is the backpressure bound: a sender with a
/// full window waits for acks instead of pushing more.
pub const INFLIGHT_BATCHES_MAX_DEFAULT: usize = 4;
/// Default time without any ack before unacknowledged batches are sent again, in milliseconds.
pub const RETRANSMIT_AFTER_MS_DEFAULT: u64 = 30_000;

/// Bounds on what a sender puts on the wire at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    pub ops_max: usize,
    pub bytes_max: usize,
    pub inflight_batches_max: usize,
    pub retransmit_after_ms: u64,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            ops_max: BATCH_OPS_MAX_DEFAULT,
            bytes_max: BATCH_BYTES_MAX_DEFAULT,
            inflight_batches_max: INFLIGHT_BATCHES_MAX_DEFAULT,
            retransmit_after_ms: RETRANSMIT_AFTER_MS_DEFAULT,
        }
    }
}

/// Cuts loaded items to the byte budget. Always keeps the first item (it fits a frame, see
/// [`ITEM_PAYLOAD_BYTES_MAX`]), so a batch is never empty while items are pending.
pub fn cut_batch(mut items: Vec<Sequenced>, bytes_max: usize) -> Vec<Sequenced> {
    let mut total = 0usize;
    let keep = items
        .iter()
        .position(|item| {
            total += item.payload.len() + 16;
            total > bytes_max
        })
        .unwrap_or(items.len())
        .max(1);
    items.truncate(keep);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_batch_respects_bytes_but_keeps_one() {
        let item = |seq| Sequenced {
            seq,
            payload: vec![0; 100],
        };
        let items: Vec<_> = (1..=10).map(item).collect();
        assert_eq!(cut_batch(items.clone(), 350).len(), 3);
        assert_eq!(cut_batch(items.clone(), 10).len(), 1);
        assert_eq!(cut_batch(items, 1_000_000).len(), 10);
        assert!(cut_batch(vec![], 10).is_empty());
    }
}
