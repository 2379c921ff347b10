//! The wall clock. `shared` never reads one: the services read it here and pass the time in.
//!
//! [`Clock`] is the injectable form: a service holds one (the coordinator in its context) so a
//! test can stand time still or move it. [`now_ms`] is the system clock read directly, for
//! what has no service at hand (ids, command-line tools, the agent).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time, in Unix milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The operating system's clock: what a service runs on unless a test gives it another.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A clock that reads what it was last set to, for tests that jump ahead by days.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self(AtomicI64::new(now_ms))
    }

    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Wall-clock Unix milliseconds, for timestamps that people read. A clock set before 1970
/// reads as 0 rather than failing: a timestamp is never worth refusing an action for.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_after_2020_and_a_manual_one_what_it_was_set_to() {
        // 2020-01-01T00:00:00Z.
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
        let manual = ManualClock::new(5);
        assert_eq!(manual.now_ms(), 5);
        manual.set(7);
        assert_eq!(manual.now_ms(), 7);
    }
}
