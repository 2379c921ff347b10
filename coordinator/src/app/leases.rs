//! This coordinator's hold on the leases of its background workers (`store::leases`): a worker
//! asks before each round and skips the round while another coordinator holds its lease.

use std::time::Duration;

use crate::store::leases::{self, Lease};
use crate::Ctx;

/// A worker's lease lasts this long unrenewed: the work of a coordinator that died passes to
/// another within it (and that one's next round). Workers tick every second, so a holder
/// renews long before the end.
pub const WORKER_LEASE_TERM: Duration = Duration::from_secs(30);

/// The lease of the hourly sweeps (`crate::SWEEP_INTERVAL`): longer than two of their rounds,
/// so a holder's late round never lets it lapse.
pub const SWEEP_LEASE_TERM: Duration = Duration::from_secs(3 * 3600);

/// One worker's lease, as this coordinator last knew it.
pub struct LeaseHold {
    name: &'static str,
    term_ms: i64,
    held_until_ms: Option<i64>,
}

impl LeaseHold {
    pub fn new(name: &'static str, term: Duration) -> Self {
        Self {
            name,
            term_ms: i64::try_from(term.as_millis()).unwrap_or(i64::MAX),
            held_until_ms: None,
        }
    }

    /// Whether this coordinator may do the worker's round now. A held lease with more than
    /// half its term left is not written again, so a worker ticking every second costs a
    /// write per half term, not per round.
    pub async fn hold(&mut self, ctx: &Ctx) -> bool {
        let now_ms = ctx.clock.now_ms();
        if self
            .held_until_ms
            .is_some_and(|until| now_ms.saturating_add(self.term_ms / 2) < until)
        {
            return true;
        }
        let (name, term_ms, holder) = (self.name, self.term_ms, ctx.lease_holder.clone());
        let asked = ctx
            .db
            .call(move |c| leases::acquire(c, name, &holder, now_ms, term_ms))
            .await;
        let held = match asked {
            Ok(Lease::Held {
                taken_ms,
                expires_ms,
            }) => {
                if self.held_until_ms.is_none() {
                    tracing::info!(lease = name, taken_ms, "lease taken");
                }
                Some(expires_ms)
            }
            Ok(Lease::HeldBy { holder, expires_ms }) => {
                if self.held_until_ms.is_some() {
                    tracing::warn!(lease = name, %holder, expires_ms, "lease lost to another coordinator");
                }
                None
            }
            Err(e) => {
                // Unknown whether it is still ours: skip the round rather than risk two.
                tracing::warn!(lease = name, error = %e, "lease not renewed");
                None
            }
        };
        self.held_until_ms = held;
        ctx.metrics.set_lease_held(name, held.is_some());
        held.is_some()
    }

    /// Gives the lease up at a clean stop, so another coordinator need not wait out its term.
    pub async fn release(&mut self, ctx: &Ctx) {
        if self.held_until_ms.take().is_none() {
            return;
        }
        let (name, holder) = (self.name, ctx.lease_holder.clone());
        if let Err(e) = ctx
            .db
            .call(move |c| leases::release(c, name, &holder))
            .await
        {
            tracing::warn!(lease = name, error = %e, "lease not given up; it lapses at its term");
        }
        ctx.metrics.set_lease_held(name, false);
    }
}
