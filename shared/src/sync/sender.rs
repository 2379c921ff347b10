//! The sending half of one sequenced stream: what to send next within the window, what an
//! ack settles, when to resend. No IO and no clock: the driver passes the time in.

use std::collections::VecDeque;

use thiserror::Error;

use super::BatchLimits;
use crate::domain::Epoch;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SenderError {
    /// The receiver has applied more than we ever recorded in this epoch: our database lost
    /// items it had already sent (restored from a backup without a new epoch).
    #[error(
        "receiver has applied up to seq {receiver} of epoch {epoch}, but only {head} exist here"
    )]
    ReceiverAhead {
        epoch: Epoch,
        receiver: u64,
        head: u64,
    },
    #[error("ack for epoch {got}, but this stream is epoch {ours}")]
    WrongEpoch { ours: Epoch, got: Epoch },
}

/// What the driver should load and send next: up to `ops_max` items starting at `first_seq`.
/// `ops_max` never reaches past the head the sender knows of, so items recorded after the
/// last [`Sender::on_recorded`] wait for the next batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchRequest {
    pub first_seq: u64,
    pub ops_max: usize,
}

/// The sending half of one sequenced stream.
#[derive(Debug)]
pub struct Sender {
    epoch: Epoch,
    /// Highest seq the receiver has confirmed durable.
    acked: u64,
    /// Highest seq handed to the transport since the last (re)connect or rewind.
    sent: u64,
    /// Highest seq durably recorded locally.
    head: u64,
    /// Last seq and send time of each batch not yet acknowledged, oldest first.
    inflight: VecDeque<(u64, u64)>,
    connected: bool,
    limits: BatchLimits,
}

impl Sender {
    pub fn new(epoch: Epoch, acked: u64, head: u64, limits: BatchLimits) -> Self {
        assert!(acked <= head, "acked {acked} beyond head {head}");
        Self {
            epoch,
            acked,
            sent: acked,
            head,
            inflight: VecDeque::new(),
            connected: false,
            limits,
        }
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }
    pub fn acked(&self) -> u64 {
        self.acked
    }
    pub fn head(&self) -> u64 {
        self.head
    }
    pub fn pending(&self) -> u64 {
        self.head - self.acked
    }
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// A new item is durable locally and may be sent.
    pub fn on_recorded(&mut self, seq: u64) {
        self.head = self.head.max(seq);
    }

    /// A connection is up and the receiver says it has applied up to `receiver_applied`:
    /// resume right after it. The receiver's answer is read from its durable state on this very
    /// connection, so it is authoritative both ways: above our acked seq, an ack was lost; below
    /// it, the receiver lost state it had acknowledged (restored from a backup) and we send the
    /// difference again rather than leave a hole it can never fill. Returns the new acked seq
    /// when it changed, so the driver can persist it.
    pub fn on_connected(&mut self, receiver_applied: u64) -> Result<Option<u64>, SenderError> {
        if receiver_applied > self.head {
            return Err(SenderError::ReceiverAhead {
                epoch: self.epoch,
                receiver: receiver_applied,
                head: self.head,
            });
        }
        self.connected = true;
        self.inflight.clear();
        let changed = (receiver_applied != self.acked).then_some(receiver_applied);
        self.acked = receiver_applied;
        self.sent = self.acked;
        Ok(changed)
    }

    /// The limits this sender was built with (the driver cuts batches by `bytes_max`).
    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.inflight.clear();
        self.sent = self.acked;
    }

    /// The next batch to send, if connected, the window has room and items are waiting.
    pub fn next_batch(&self) -> Option<BatchRequest> {
        let room = self.inflight.len() < self.limits.inflight_batches_max;
        (self.connected && room && self.sent < self.head).then(|| BatchRequest {
            first_seq: self.sent + 1,
            ops_max: self
                .limits
                .ops_max
                .min(usize::try_from(self.head - self.sent).unwrap_or(usize::MAX)),
        })
    }

    /// The driver sent items up to `last_seq` (starting where [`Self::next_batch`] said).
    pub fn on_batch_sent(&mut self, last_seq: u64, now_ms: u64) {
        assert!(
            last_seq > self.sent && last_seq <= self.head,
            "batch end {last_seq} outside ({}, {}]",
            self.sent,
            self.head
        );
        self.sent = last_seq;
        self.inflight.push_back((last_seq, now_ms));
    }

    /// A cumulative ack arrived. Returns the new acked seq when it moved forward, so the driver
    /// can persist it (and prune what it no longer needs to keep).
    pub fn on_ack(
        &mut self,
        epoch: Epoch,
        up_to: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, SenderError> {
        if epoch != self.epoch {
            return Err(SenderError::WrongEpoch {
                ours: self.epoch,
                got: epoch,
            });
        }
        if up_to > self.head {
            return Err(SenderError::ReceiverAhead {
                epoch: self.epoch,
                receiver: up_to,
                head: self.head,
            });
        }
        if up_to <= self.acked {
            return Ok(None);
        }
        self.acked = up_to;
        // An ack for items sent before a rewind moves the send point forward too.
        self.sent = self.sent.max(up_to);
        while self
            .inflight
            .front()
            .is_some_and(|(last, _)| *last <= up_to)
        {
            self.inflight.pop_front();
        }
        // The remaining batches were sent before this ack arrived; give them a fresh timer.
        for batch in &mut self.inflight {
            batch.1 = batch.1.max(now_ms);
        }
        Ok(Some(up_to))
    }

    /// When [`Self::handle_timeout`] should next be called, if anything is in flight.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.inflight
            .front()
            .map(|(_, sent_at)| sent_at + self.limits.retransmit_after_ms)
    }

    /// No ack for too long: send everything unacknowledged again.
    pub fn handle_timeout(&mut self, now_ms: u64) -> bool {
        let expired = self
            .poll_timeout()
            .is_some_and(|deadline| now_ms >= deadline);
        if expired {
            self.inflight.clear();
            self.sent = self.acked;
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(acked: u64, head: u64) -> Sender {
        let limits = BatchLimits {
            ops_max: 10,
            inflight_batches_max: 2,
            retransmit_after_ms: 100,
            ..BatchLimits::default()
        };
        Sender::new(Epoch(1), acked, head, limits)
    }

    #[test]
    fn sends_nothing_until_connected_then_resumes_after_receiver() {
        let mut s = sender(0, 50);
        assert_eq!(s.next_batch(), None);
        assert_eq!(s.on_connected(20), Ok(Some(20)));
        assert_eq!(
            s.next_batch(),
            Some(BatchRequest {
                first_seq: 21,
                ops_max: 10
            })
        );
    }

    #[test]
    fn window_bounds_inflight_batches() {
        let mut s = sender(0, 50);
        s.on_connected(0).unwrap();
        s.on_batch_sent(10, 0);
        s.on_batch_sent(20, 0);
        assert_eq!(s.next_batch(), None, "window of 2 is full");
        assert_eq!(s.on_ack(Epoch(1), 10, 5), Ok(Some(10)));
        assert_eq!(s.next_batch().unwrap().first_seq, 21);
        assert_eq!(s.on_ack(Epoch(1), 5, 6), Ok(None), "stale ack ignored");
    }

    #[test]
    fn batch_request_stops_at_the_known_head() {
        let mut s = sender(0, 3);
        s.on_connected(0).unwrap();
        assert_eq!(s.next_batch().unwrap().ops_max, 3);
    }

    #[test]
    fn timeout_rewinds_to_last_ack() {
        let mut s = sender(0, 50);
        s.on_connected(0).unwrap();
        s.on_batch_sent(10, 0);
        assert_eq!(s.poll_timeout(), Some(100));
        assert!(!s.handle_timeout(99));
        assert!(s.handle_timeout(100));
        assert_eq!(s.next_batch().unwrap().first_seq, 1);
    }

    #[test]
    fn receiver_behind_our_ack_gets_the_difference_again() {
        let mut s = sender(30, 50);
        assert_eq!(s.on_connected(10), Ok(Some(10)));
        assert_eq!(s.acked(), 10);
        assert_eq!(s.next_batch().unwrap().first_seq, 11);
    }

    #[test]
    fn receiver_ahead_of_our_head_is_an_error() {
        let mut s = sender(0, 5);
        assert!(matches!(
            s.on_connected(6),
            Err(SenderError::ReceiverAhead { .. })
        ));
        s.on_connected(0).unwrap();
        assert!(s.on_ack(Epoch(1), 6, 0).is_err());
        assert!(matches!(
            s.on_ack(Epoch(2), 1, 0),
            Err(SenderError::WrongEpoch { .. })
        ));
    }
}
