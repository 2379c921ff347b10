//! The receiving half of one sequenced stream: which items of a batch to apply, which are
//! duplicates (checked against the stored payload hash), where a gap starts; the high-water
//! mark moves only once the driver has made the apply durable.

use crate::domain::Epoch;
use crate::wire::messages::Sequenced;
use crate::wire::payload::{payload_hash, PayloadHash};

/// A duplicate seq whose payload differs from the one applied: raise an alarm, apply nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub seq: u64,
    pub stored: PayloadHash,
    pub received: PayloadHash,
}

/// What to do with one received batch. The driver applies `apply` (indexes into the batch) and
/// records `new_applied` in one durable transaction, then calls [`Receiver::commit`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The high-water mark the plan was made from; [`Receiver::commit`] checks it still holds,
    /// so two plans of the same state cannot both be committed (an item applied twice).
    pub base_applied: u64,
    pub apply: Vec<usize>,
    pub n_duplicates: usize,
    pub conflicts: Vec<Conflict>,
    /// First seq past a hole: it and everything after it in the batch were dropped.
    pub gap_at: Option<u64>,
    pub new_applied: u64,
}

/// The receiving half of one sequenced stream (one site and epoch).
#[derive(Debug)]
pub struct Receiver {
    epoch: Epoch,
    /// Highest seq durably applied. Only [`Self::commit`] moves it.
    applied: u64,
}

impl Receiver {
    pub fn new(epoch: Epoch, applied: u64) -> Self {
        Self { epoch, applied }
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Classifies a batch without changing state. `stored_hash` answers the payload hash of an
    /// already applied seq (None if it is not kept).
    pub fn plan(
        &self,
        batch: &[Sequenced],
        mut stored_hash: impl FnMut(u64) -> Option<PayloadHash>,
    ) -> Plan {
        let mut plan = Plan {
            base_applied: self.applied,
            new_applied: self.applied,
            ..Plan::default()
        };
        for (i, item) in batch.iter().enumerate() {
            let next = plan.new_applied + 1;
            if item.seq == next {
                plan.apply.push(i);
                plan.new_applied = next;
                continue;
            }
            if item.seq > next {
                plan.gap_at = Some(item.seq);
                break;
            }
            plan.n_duplicates += 1;
            let received = payload_hash(&item.payload);
            // A seq applied earlier in this same batch is not stored yet.
            let stored = plan
                .apply
                .iter()
                .map(|&j| &batch[j])
                .find(|earlier| earlier.seq == item.seq)
                .map(|earlier| payload_hash(&earlier.payload))
                .or_else(|| stored_hash(item.seq));
            if let Some(stored) = stored.filter(|stored| *stored != received) {
                plan.conflicts.push(Conflict {
                    seq: item.seq,
                    stored,
                    received,
                });
            }
        }
        plan
    }

    /// The driver made the plan's applies durable: move the high-water mark. Returns the seq to
    /// acknowledge (cumulative; also sent when nothing new was applied, so a sender whose ack was
    /// lost learns where to resume).
    pub fn commit(&mut self, plan: &Plan) -> u64 {
        assert_eq!(
            plan.base_applied, self.applied,
            "plan made at high-water mark {} committed at {}: its items would apply twice",
            plan.base_applied, self.applied
        );
        assert!(
            plan.new_applied >= plan.base_applied,
            "plan moves the high-water mark back"
        );
        self.applied = plan.new_applied;
        self.applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u64, byte: u8) -> Sequenced {
        Sequenced {
            seq,
            payload: vec![byte],
        }
    }

    #[test]
    fn applies_in_order_and_stops_at_a_gap() {
        let r = Receiver::new(Epoch(1), 2);
        let plan = r.plan(&[item(3, 3), item(4, 4), item(6, 6), item(7, 7)], |_| None);
        assert_eq!(plan.apply, vec![0, 1]);
        assert_eq!(plan.gap_at, Some(6));
        assert_eq!(plan.new_applied, 4);
    }

    #[test]
    fn duplicates_are_checked_against_the_stored_hash() {
        let r = Receiver::new(Epoch(1), 2);
        let plan = r.plan(&[item(1, 1), item(2, 9), item(3, 3), item(3, 4)], |seq| {
            Some(payload_hash(&[seq as u8]))
        });
        assert_eq!(plan.apply, vec![2]);
        assert_eq!(plan.n_duplicates, 3);
        let seqs: Vec<_> = plan.conflicts.iter().map(|c| c.seq).collect();
        assert_eq!(
            seqs,
            vec![2, 3],
            "seq 2 differs from store, seq 3 from earlier in batch"
        );
    }

    #[test]
    fn a_plan_commits_once() {
        let mut r = Receiver::new(Epoch(1), 0);
        let plan = r.plan(&[item(1, 1), item(2, 2)], |_| None);
        assert_eq!(r.commit(&plan), 2);
        let empty = r.plan(&[item(2, 2)], |_| None);
        assert_eq!(r.commit(&empty), 2, "a batch of duplicates re-acks");
        let result = std::panic::catch_unwind(move || r.commit(&plan));
        assert!(
            result.is_err(),
            "the same plan twice would apply its items twice"
        );
    }
}
