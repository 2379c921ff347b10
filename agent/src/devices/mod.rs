//! Serial devices of a site: barcode scanners and ZPL label printers, driven through
//! tokio-serial. The simulated ones of the demo and the tests (`modori_demo::pty`) are
//! pseudo-terminals that go through this same driver code.
//!
//! Each device is one task that owns its port. Devices get unplugged and replugged all day, so
//! a driver never gives up: on any sign of unplug it closes the port, reports
//! [`DeviceState::Disconnected`] on a watch channel (for `ctl status` and metrics) and reopens
//! the configured path with capped exponential backoff, resolving it again each time because a
//! replugged USB adapter comes back under a new device node (`/dev/ttyUSB0` → `/dev/ttyUSB1`)
//! while its `/dev/serial/by-id/...` link keeps its name.
//!
//! Architecture invariant: the drivers never block a station. A scan is handed over a bounded
//! channel; a print is queued and acknowledged later through its ticket.

pub mod printer;
pub mod scanner;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;
use tokio::sync::watch;
use tokio_serial::{SerialPortBuilderExt, SerialStream};

use modori_runtime::clock;

/// First reopen delay after a device went away; doubles up to [`RECONNECT_BACKOFF_MAX`].
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest wait between two reopen attempts: how late, at worst, a replugged device is noticed.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A session that lasted this long resets the backoff, so a device that flaps (opens, then dies
/// at once) is retried ever more slowly while one unplugged after hours of work comes back fast.
pub const SESSION_STABLE_AFTER: Duration = Duration::from_secs(5);
/// Baud rates a config may name: what USB-serial adapters, scanners and Zebra printers share.
pub const BAUD_RATES: &[u32] = &[1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200];
/// Default baud rate of scanners and printers: the factory setting of both.
pub const BAUD_RATE_DEFAULT: u32 = 9600;
/// Longest device name; names appear in every event, log line and status row.
pub const NAME_BYTES_MAX: usize = 64;

/// Whether a device is usable now, observed through a `watch` receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceState {
    /// The port is open (and, for a printer, the printer answered its host status).
    Connected {
        /// The device node the stable path resolved to when it was opened.
        device: PathBuf,
        since_unix_ms: i64,
    },
    /// The device is away; the driver keeps trying to reopen it.
    Disconnected {
        since_unix_ms: i64,
        /// Failures since `since_unix_ms`: the loss itself, then each failed reopen.
        n_failures: u32,
        /// Why the last attempt failed; `None` before the first attempt.
        last_error: Option<String>,
    },
}

impl DeviceState {
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected { .. })
    }
}

/// What ends a device session or an open attempt. Every variant is an operating condition
/// (unplug, power, cabling), handled by reconnecting.
#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("cannot resolve {path}: {source} (unplugged?)")]
    Resolve {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open {device}: {source}")]
    Open {
        device: PathBuf,
        #[source]
        source: tokio_serial::Error,
    },
    #[error("{path} now resolves to {now} instead of {device} (replugged)")]
    Moved {
        path: PathBuf,
        device: PathBuf,
        now: PathBuf,
    },
    #[error("{device} hung up (unplugged?)")]
    HungUp { device: PathBuf },
    #[error("read from {device}: {source}")]
    Read {
        device: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write to {device}: {source}")]
    Write {
        device: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write to {device} not finished after {timeout_ms} ms (flow control stuck?)")]
    WriteTimeout { device: PathBuf, timeout_ms: u64 },
    #[error(
        "no host status from {device} within {timeout_ms} ms (printer off or unplugged, \
         media or ribbon out, head open)"
    )]
    StatusTimeout { device: PathBuf, timeout_ms: u64 },
}

/// A config value out of range; `key` is relative to the device's own section.
#[derive(Debug, Error)]
#[error("{key}: {message}")]
pub struct DeviceConfigError {
    pub key: &'static str,
    pub message: String,
}

fn check_common(name: &str, path: &Path, baud_rate: u32) -> Result<(), DeviceConfigError> {
    if name.is_empty() || name.len() > NAME_BYTES_MAX {
        return Err(DeviceConfigError {
            key: "name",
            message: format!("must be 1..={NAME_BYTES_MAX} bytes"),
        });
    }
    if !path.is_absolute() {
        return Err(DeviceConfigError {
            key: "path",
            message: "must be absolute, e.g. /dev/serial/by-id/...".into(),
        });
    }
    if !BAUD_RATES.contains(&baud_rate) {
        return Err(DeviceConfigError {
            key: "baud_rate",
            message: format!("must be one of {BAUD_RATES:?}"),
        });
    }
    Ok(())
}

/// Resolves the stable path now (a replugged adapter may be a new node) and opens that node;
/// tokio-serial opens it exclusively (TIOCEXCL + flock), so no other program can interleave.
fn open_port(path: &Path, baud_rate: u32) -> Result<(SerialStream, PathBuf), DeviceError> {
    let device = resolve(path)?;
    let port = tokio_serial::new(device.to_string_lossy(), baud_rate)
        .open_native_async()
        .map_err(|source| DeviceError::Open {
            device: device.clone(),
            source,
        })?;
    Ok((port, device))
}

fn resolve(path: &Path) -> Result<PathBuf, DeviceError> {
    std::fs::canonicalize(path).map_err(|source| DeviceError::Resolve {
        path: path.to_owned(),
        source,
    })
}

/// Some adapters vanish without hanging up the open port; a stable path that no longer leads
/// to the open node is the other sign of an unplug.
fn check_still_there(path: &Path, device: &Path) -> Result<(), DeviceError> {
    let now = resolve(path)?;
    if now != device {
        return Err(DeviceError::Moved {
            path: path.to_owned(),
            device: device.to_owned(),
            now,
        });
    }
    Ok(())
}

/// Capped doubling without jitter: one site's devices do not stampede anything shared.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: RECONNECT_BACKOFF_MIN,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(RECONNECT_BACKOFF_MAX);
        delay
    }

    fn reset(&mut self) {
        self.next = RECONNECT_BACKOFF_MIN;
    }
}

/// The sending half of a device's state, which keeps `since` across repeated failures.
struct StateTx(watch::Sender<DeviceState>);

impl StateTx {
    fn new() -> (Self, watch::Receiver<DeviceState>) {
        let (tx, rx) = watch::channel(DeviceState::Disconnected {
            since_unix_ms: clock::now_ms(),
            n_failures: 0,
            last_error: None,
        });
        (Self(tx), rx)
    }

    fn connected(&self, device: &Path) {
        self.0.send_replace(DeviceState::Connected {
            device: device.to_owned(),
            since_unix_ms: clock::now_ms(),
        });
    }

    /// Returns whether this is news (a first failure or a different error), so callers log
    /// news at warn and repeats of a known outage at debug.
    fn disconnected(&self, error: &DeviceError) -> bool {
        let message = error.to_string();
        let mut news = true;
        self.0.send_modify(|state| match state {
            DeviceState::Disconnected {
                n_failures,
                last_error,
                ..
            } => {
                news = last_error.as_deref() != Some(message.as_str());
                *n_failures = n_failures.saturating_add(1);
                *last_error = Some(message);
            }
            DeviceState::Connected { .. } => {
                *state = DeviceState::Disconnected {
                    since_unix_ms: clock::now_ms(),
                    n_failures: 1,
                    last_error: Some(message),
                };
            }
        });
        news
    }
}

/// Resolves once shutdown is asked for, or when its sender is gone (nobody can ask any more).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Sleeps for `delay`; returns `true` if shutdown came first.
async fn sleep_or_stopped(delay: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = stopped(shutdown) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays[0], RECONNECT_BACKOFF_MIN);
        assert_eq!(delays[1], RECONNECT_BACKOFF_MIN * 2);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap(), RECONNECT_BACKOFF_MAX);
        backoff.reset();
        assert_eq!(backoff.next_delay(), RECONNECT_BACKOFF_MIN);
    }

    #[test]
    fn disconnected_keeps_since_and_reports_only_news() {
        let (tx, rx) = StateTx::new();
        let gone = DeviceError::HungUp {
            device: "/dev/ttyUSB0".into(),
        };
        assert!(tx.disconnected(&gone), "first error is news");
        let since = match &*rx.borrow() {
            DeviceState::Disconnected { since_unix_ms, .. } => *since_unix_ms,
            other => panic!("{other:?}"),
        };
        assert!(!tx.disconnected(&gone), "the same error again is not");
        match &*rx.borrow() {
            DeviceState::Disconnected {
                since_unix_ms,
                n_failures,
                last_error,
            } => {
                assert_eq!(*since_unix_ms, since);
                assert_eq!(*n_failures, 2);
                assert!(last_error.as_deref().unwrap().contains("hung up"));
            }
            other => panic!("{other:?}"),
        }
        tx.connected(Path::new("/dev/ttyUSB0"));
        assert!(rx.borrow().is_connected());
        assert!(tx.disconnected(&gone), "losing a connected device is news");
    }
}
