//! Percentiles of measured durations.

use std::time::Duration;

use serde::Serialize;

/// Distribution of a set of durations, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Summarises `samples` (sorted in place); `None` when there are none.
pub fn summarize(samples: &mut [Duration]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let total: Duration = samples.iter().sum();
    Some(Summary {
        n: samples.len(),
        p50_ms: ms(percentile(samples, 50.0)),
        p99_ms: ms(percentile(samples, 99.0)),
        max_ms: ms(samples[samples.len() - 1]),
        mean_ms: ms(total) / samples.len() as f64,
    })
}

/// Nearest-rank percentile of sorted, non-empty `sorted`: the smallest sample with at least
/// `pct` percent of the samples at or below it.
pub fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    assert!(!sorted.is_empty(), "percentile of nothing");
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = summarize(&mut v).unwrap();
        assert_eq!(
            (s.n, s.p50_ms, s.p99_ms, s.max_ms),
            (100, 50.0, 99.0, 100.0)
        );
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        assert_eq!(percentile(&[Duration::from_millis(7)], 99.0).as_millis(), 7);
        assert!(summarize(&mut []).is_none());
    }
}
