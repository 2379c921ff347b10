//! Watching the fleet from outside while it works: sync positions read from the databases (the
//! coordinator's applied high-water marks, the agents' acknowledged marks) and memory from
//! `/proc`. Read-only connections: WAL lets them read while the services write, and they take
//! nothing from the services' own database threads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;

/// How often positions are read while latencies are measured. Each latency is late by at most
/// this much (half of it on average); each round costs two indexed reads per watched site.
pub const ONLINE_POLL_INTERVAL: Duration = Duration::from_millis(2);
/// How often positions are read while a backlog drains (throughput and catch-up phases).
pub const DRAIN_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often memory is sampled.
pub const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(250);
/// How long a read waits for a lock held by a writer's checkpoint.
const READ_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum ObserveError {
    #[error("opening {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("reading a sync position: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the watcher thread panicked")]
    Panicked,
}

/// One site to watch: its applied mark at the coordinator, and its acknowledged mark in its
/// own database when given.
pub struct Watch {
    pub site: String,
    pub agent_db: Option<PathBuf>,
    /// The op epoch whose applied mark to follow (a backlog's: every start of an agent begins
    /// a new epoch, and the backlog is delivered under the one it was appended to); `None`:
    /// the highest mark of any epoch.
    pub epoch: Option<i64>,
}

/// The moments a position changed, oldest first, with its new value.
#[derive(Clone, Debug, Default)]
pub struct Series(Vec<(Instant, u64)>);

impl Series {
    fn observe(&mut self, at: Instant, value: u64) {
        if self.0.last().is_none_or(|(_, last)| *last != value) {
            self.0.push((at, value));
        }
    }

    /// When the position was first seen at or past `seq`. Positions only move forward.
    pub fn first_reaching(&self, seq: u64) -> Option<Instant> {
        let i = self.0.partition_point(|(_, v)| *v < seq);
        self.0.get(i).map(|(t, _)| *t)
    }

    /// The first value seen.
    pub fn first_value(&self) -> Option<u64> {
        self.0.first().map(|(_, v)| *v)
    }

    /// The last value seen.
    pub fn last_value(&self) -> Option<u64> {
        self.0.last().map(|(_, v)| *v)
    }
}

/// What a [`Poller`] saw, per watched site in order.
#[derive(Debug)]
pub struct Positions {
    pub applied: Vec<Series>,
    pub acked: Vec<Series>,
    pub n_rounds: u64,
    pub elapsed: Duration,
}

impl Positions {
    /// The mean time between two reads of the same position: the latencies' resolution.
    pub fn mean_round(&self) -> Duration {
        self.elapsed / u32::try_from(self.n_rounds.max(1)).unwrap_or(u32::MAX)
    }
}

/// Reads the watched positions every `interval` on its own thread.
pub struct Poller {
    stop: Arc<AtomicBool>,
    latest_applied: Arc<Vec<AtomicU64>>,
    latest_acked: Arc<Vec<AtomicU64>>,
    handle: JoinHandle<Result<Positions, ObserveError>>,
}

fn open_read_only(path: &Path) -> Result<Connection, ObserveError> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
            ObserveError::Open {
                path: path.to_owned(),
                source,
            }
        })?;
    conn.busy_timeout(READ_BUSY_TIMEOUT)?;
    Ok(conn)
}

impl Poller {
    pub fn start(
        coordinator_db: &Path,
        watches: Vec<Watch>,
        interval: Duration,
    ) -> Result<Self, ObserveError> {
        let coordinator = open_read_only(coordinator_db)?;
        let agents = watches
            .iter()
            .map(|w| w.agent_db.as_deref().map(open_read_only).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let n = watches.len();
        let stop = Arc::new(AtomicBool::new(false));
        let latest_applied: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| 0.into()).collect());
        let latest_acked: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| 0.into()).collect());
        let (s, la, lk) = (stop.clone(), latest_applied.clone(), latest_acked.clone());
        let sites: Vec<(String, Option<i64>)> =
            watches.into_iter().map(|w| (w.site, w.epoch)).collect();
        let handle = std::thread::Builder::new()
            .name("load-poller".into())
            .spawn(move || poll(coordinator, agents, sites, interval, s, la, lk))
            .map_err(|e| ObserveError::Open {
                path: coordinator_db.to_owned(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok(Self {
            stop,
            latest_applied,
            latest_acked,
            handle,
        })
    }

    /// Site `i`'s applied mark at the coordinator, as last read.
    pub fn applied(&self, i: usize) -> u64 {
        self.latest_applied[i].load(Ordering::Acquire)
    }

    /// Site `i`'s acknowledged mark in its database, as last read.
    pub fn acked(&self, i: usize) -> u64 {
        self.latest_acked[i].load(Ordering::Acquire)
    }

    /// Stops reading and returns what was seen.
    pub fn finish(self) -> Result<Positions, ObserveError> {
        self.stop.store(true, Ordering::Release);
        self.handle.join().map_err(|_| ObserveError::Panicked)?
    }
}

fn poll(
    coordinator: Connection,
    agents: Vec<Option<Connection>>,
    sites: Vec<(String, Option<i64>)>,
    interval: Duration,
    stop: Arc<AtomicBool>,
    latest_applied: Arc<Vec<AtomicU64>>,
    latest_acked: Arc<Vec<AtomicU64>>,
) -> Result<Positions, ObserveError> {
    let n = sites.len();
    let mut applied = vec![Series::default(); n];
    let mut acked = vec![Series::default(); n];
    let started = Instant::now();
    let mut n_rounds = 0u64;
    let mut next = started;
    loop {
        // Read once more after the stop, so the series end on the final positions.
        let stopping = stop.load(Ordering::Acquire);
        for i in 0..n {
            let a: i64 = coordinator
                .prepare_cached(
                    "SELECT COALESCE(MAX(applied_seq), 0) FROM op_streams
                     WHERE site = ?1 AND (?2 IS NULL OR epoch = ?2)",
                )?
                .query_row(rusqlite::params![&sites[i].0, sites[i].1], |r| r.get(0))?;
            let now = Instant::now();
            let a = u64::try_from(a).unwrap_or(0);
            applied[i].observe(now, a);
            latest_applied[i].store(a, Ordering::Release);
            if let Some(agent) = &agents[i] {
                let k: i64 = agent
                    .prepare_cached("SELECT op_acked_seq FROM sync_state WHERE id = 1")?
                    .query_row([], |r| r.get(0))?;
                let k = u64::try_from(k).unwrap_or(0);
                acked[i].observe(Instant::now(), k);
                latest_acked[i].store(k, Ordering::Release);
            }
        }
        n_rounds += 1;
        if stopping {
            break;
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Behind: start the next round now rather than bunching up to catch up.
            next = now;
        }
    }
    Ok(Positions {
        applied,
        acked,
        n_rounds,
        elapsed: started.elapsed(),
    })
}

/// The highest resident memory of each process, sampled on its own thread.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<u64>>,
}

impl RssSampler {
    pub fn start(pids: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut max = vec![0u64; pids.len()];
            loop {
                let stopping = s.load(Ordering::Acquire);
                for (m, pid) in max.iter_mut().zip(&pids) {
                    // A process that has exited keeps the maximum seen while it ran.
                    if let Ok(rss) = crate::procfs::rss_bytes(*pid) {
                        *m = (*m).max(rss);
                    }
                }
                if stopping {
                    return max;
                }
                std::thread::sleep(RSS_SAMPLE_INTERVAL);
            }
        });
        Self { stop, handle }
    }

    /// Stops sampling; the maximum per process, in the order given (0 if never read).
    pub fn finish(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_keeps_changes_and_finds_when_a_seq_was_reached() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut s = Series::default();
        for (ms, v) in [(0, 0), (1, 0), (2, 5), (3, 5), (4, 9)] {
            s.observe(at(ms), v);
        }
        assert_eq!(s.0.len(), 3);
        assert_eq!(s.first_reaching(1), Some(at(2)));
        assert_eq!(s.first_reaching(5), Some(at(2)));
        assert_eq!(s.first_reaching(6), Some(at(4)));
        assert_eq!(s.first_reaching(10), None);
        assert_eq!((s.first_value(), s.last_value()), (Some(0), Some(9)));
    }
}
