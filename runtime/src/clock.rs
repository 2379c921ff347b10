//! The wall clock. `shared` never reads one: the services read it here and pass the time in.
//!
//! [`Clock`] is the injectable form, held by a service that wants its time replaceable in
//! tests; [`now_ms`] is the system clock read directly, for the many places that only stamp
//! what happened now.

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
    fn the_system_clock_reads_after_2020() {
        // 2020-01-01T00:00:00Z.
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
