//! Barcode scanners in serial mode: each scan arrives as one line of ASCII ended by the
//! scanner's configured suffix. The framing is sans-IO (`LineFramer`) so it is tested without
//! a port; [`ScannerDriver`] is the task that owns the port and hands scans to the station.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tokio_serial::SerialStream;
use tracing::{debug, error, info, warn};

use super::{
    check_common, check_still_there, open_port, sleep_or_stopped, stopped, Backoff,
    DeviceConfigError, DeviceError, DeviceState, StateTx, BAUD_RATE_DEFAULT, SESSION_STABLE_AFTER,
};

/// Default longest scan, terminator excluded: GS1-128 and 2D codes in serial mode stay far below.
pub const LINE_BYTES_MAX_DEFAULT: usize = 256;
/// Upper bound of `line_bytes_max`: the framer's buffer never grows past it.
pub const LINE_BYTES_MAX_LIMIT: usize = 4096;
/// One read from the port: a scan or two at a time.
const READ_CHUNK_BYTES: usize = 512;
/// How often an open scanner's stable path is checked to still lead to the open node.
const PATH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The suffix the scanner is programmed to send after each scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineTerminator {
    /// Carriage return: the factory suffix of most scanners.
    #[default]
    Cr,
    Lf,
    /// A line ends at LF; the CR before it is removed.
    Crlf,
}

impl LineTerminator {
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Cr => b"\r",
            Self::Lf => b"\n",
            Self::Crlf => b"\r\n",
        }
    }

    fn end_byte(self) -> u8 {
        match self {
            Self::Cr => b'\r',
            Self::Lf | Self::Crlf => b'\n',
        }
    }
}

/// One `[[scanners]]` entry.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScannerConfig {
    /// Name in events, logs and status, e.g. `receiving-1`.
    pub name: String,
    /// Stable path of the port: `/dev/serial/by-id/...` (or any symlink), never `/dev/ttyUSBn`,
    /// whose number changes on replug. Absolute.
    pub path: PathBuf,
    /// Default 9600 (8N1, no flow control).
    #[serde(default = "baud_rate_default")]
    pub baud_rate: u32,
    /// `cr` (default), `lf` or `crlf`: the suffix programmed into the scanner.
    #[serde(default)]
    pub line_terminator: LineTerminator,
    /// Longer scans are refused (the station gives the bad signal and says why) and the reader
    /// resyncs at the next terminator.
    /// Default 256, at most 4096.
    #[serde(default = "line_bytes_max_default")]
    pub line_bytes_max: usize,
}

fn baud_rate_default() -> u32 {
    BAUD_RATE_DEFAULT
}

fn line_bytes_max_default() -> usize {
    LINE_BYTES_MAX_DEFAULT
}

impl ScannerConfig {
    /// A config with every default, for tests and the demo.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            baud_rate: BAUD_RATE_DEFAULT,
            line_terminator: LineTerminator::default(),
            line_bytes_max: LINE_BYTES_MAX_DEFAULT,
        }
    }

    pub fn validate(&self) -> Result<(), DeviceConfigError> {
        check_common(&self.name, &self.path, self.baud_rate)?;
        if self.line_bytes_max == 0 || self.line_bytes_max > LINE_BYTES_MAX_LIMIT {
            return Err(DeviceConfigError {
                key: "line_bytes_max",
                message: format!("must be 1..={LINE_BYTES_MAX_LIMIT}"),
            });
        }
        Ok(())
    }
}

/// A complete scan, terminator removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanReceived {
    pub scanner: Arc<str>,
    /// The text scanned; empty when the line could not be read (`unreadable`).
    pub line: String,
    /// Why a line that arrived could not be read. The station still answers it (bad signal
    /// and the reason), so the operator never takes a refused scan for a recorded one.
    pub unreadable: Option<Unreadable>,
}

/// A line the scanner sent that is no scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreadable {
    TooLong {
        n_bytes: usize,
        line_bytes_max: usize,
    },
    NotUtf8 {
        n_bytes: usize,
    },
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong {
                n_bytes,
                line_bytes_max,
            } => write!(
                f,
                "scan not read: {n_bytes} bytes, longer than the {line_bytes_max} this scanner accepts; scan again"
            ),
            Self::NotUtf8 { n_bytes } => write!(
                f,
                "scan not read: {n_bytes} bytes that are not text (scanner baud rate or mode?); scan again"
            ),
        }
    }
}

/// What the framer made of the bytes so far.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Framed {
    Line(Vec<u8>),
    /// A line longer than the limit was skipped up to and including its terminator.
    TooLong {
        n_bytes: usize,
    },
}

/// Splits a byte stream into lines with a bounded buffer. After an over-long line it discards
/// up to the next terminator, so the following scan starts clean.
#[derive(Debug)]
struct LineFramer {
    terminator: LineTerminator,
    line_bytes_max: usize,
    line: Vec<u8>,
    /// `Some(n)` while skipping the rest of an over-long line of `n` bytes so far.
    n_skipped: Option<usize>,
}

impl LineFramer {
    fn new(terminator: LineTerminator, line_bytes_max: usize) -> Self {
        assert!(line_bytes_max > 0, "validated by ScannerConfig::validate");
        Self {
            terminator,
            line_bytes_max,
            line: Vec::new(),
            n_skipped: None,
        }
    }

    /// Appends what each complete line became to `out`; keeps a partial line for later.
    fn push(&mut self, bytes: &[u8], out: &mut Vec<Framed>) {
        let end = self.terminator.end_byte();
        // Room for the CR of a CRLF, which is part of the terminator, not of the line.
        let held_max = self.line_bytes_max + usize::from(self.terminator == LineTerminator::Crlf);
        for &byte in bytes {
            if byte == end {
                out.push(self.finish_line());
            } else if let Some(n) = self.n_skipped.as_mut() {
                *n += 1;
            } else if self.line.len() == held_max {
                self.n_skipped = Some(self.line.len() + 1);
                self.line.clear();
            } else {
                self.line.push(byte);
            }
        }
    }

    fn finish_line(&mut self) -> Framed {
        if let Some(n_bytes) = self.n_skipped.take() {
            return Framed::TooLong { n_bytes };
        }
        let mut line = std::mem::take(&mut self.line);
        if self.terminator == LineTerminator::Crlf && line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > self.line_bytes_max {
            return Framed::TooLong {
                n_bytes: line.len(),
            };
        }
        Framed::Line(line)
    }
}

/// The task of one scanner. Build it with [`ScannerDriver::new`], spawn [`ScannerDriver::run`].
pub struct ScannerDriver {
    config: ScannerConfig,
    name: Arc<str>,
    events: mpsc::Sender<ScanReceived>,
    state: StateTx,
    shutdown: watch::Receiver<bool>,
}

enum SessionEnd {
    Failed(DeviceError),
    /// Shutdown was asked for, or nobody receives scans any more.
    Stop,
}

impl ScannerDriver {
    /// `events` is bounded: when the station falls behind, the driver waits and the scanner's
    /// own buffer (then the kernel's) holds the scans, instead of scans being dropped.
    pub fn new(
        config: ScannerConfig,
        events: mpsc::Sender<ScanReceived>,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, watch::Receiver<DeviceState>) {
        let (state, state_rx) = StateTx::new();
        let name = Arc::from(config.name.as_str());
        let driver = Self {
            config,
            name,
            events,
            state,
            shutdown,
        };
        (driver, state_rx)
    }

    /// Runs until shutdown (or until the receiver of scans is dropped).
    pub async fn run(mut self) {
        let mut backoff = Backoff::new();
        loop {
            match open_port(&self.config.path, self.config.baud_rate) {
                Ok((port, device)) => {
                    info!(scanner = %self.name, device = %device.display(), "scanner connected");
                    self.state.connected(&device);
                    let started = Instant::now();
                    match self.session(port, &device).await {
                        SessionEnd::Stop => return,
                        SessionEnd::Failed(e) => {
                            warn!(scanner = %self.name, error = %e, "scanner disconnected");
                            self.state.disconnected(&e);
                        }
                    }
                    if started.elapsed() >= SESSION_STABLE_AFTER {
                        backoff.reset();
                    }
                }
                Err(e) => {
                    if self.state.disconnected(&e) {
                        warn!(scanner = %self.name, error = %e, "scanner unavailable");
                    } else {
                        debug!(scanner = %self.name, error = %e, "scanner still unavailable");
                    }
                }
            }
            if sleep_or_stopped(backoff.next_delay(), &mut self.shutdown).await {
                return;
            }
        }
    }

    /// Reads until the port fails. A partial line dies with the session: half a scan is noise.
    async fn session(&mut self, mut port: SerialStream, device: &Path) -> SessionEnd {
        let mut framer = LineFramer::new(self.config.line_terminator, self.config.line_bytes_max);
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        let mut framed = Vec::new();
        let mut path_check = tokio::time::interval_at(
            tokio::time::Instant::now() + PATH_CHECK_INTERVAL,
            PATH_CHECK_INTERVAL,
        );
        path_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stopped(&mut self.shutdown) => return SessionEnd::Stop,
                _ = path_check.tick() => {
                    if let Err(e) = check_still_there(&self.config.path, device) {
                        return SessionEnd::Failed(e);
                    }
                }
                read = port.read(&mut chunk) => match read {
                    // A tty reads end of file once it is hung up: the USB adapter (or the pty
                    // master) is gone.
                    Ok(0) => return SessionEnd::Failed(DeviceError::HungUp { device: device.to_owned() }),
                    Ok(n) => framer.push(&chunk[..n], &mut framed),
                    Err(source) => {
                        return SessionEnd::Failed(DeviceError::Read { device: device.to_owned(), source });
                    }
                },
            }
            for frame in framed.drain(..) {
                if let Some(event) = self.event(frame) {
                    let sent = tokio::select! {
                        sent = self.events.send(event) => sent.is_ok(),
                        _ = stopped(&mut self.shutdown) => false,
                    };
                    if !sent {
                        return SessionEnd::Stop;
                    }
                }
            }
        }
    }

    fn event(&self, frame: Framed) -> Option<ScanReceived> {
        let unreadable = |why: Unreadable| ScanReceived {
            scanner: self.name.clone(),
            line: String::new(),
            unreadable: Some(why),
        };
        match frame {
            Framed::TooLong { n_bytes } => {
                error!(scanner = %self.name, n_bytes, line_bytes_max = self.config.line_bytes_max,
                       "scan refused: line too long");
                Some(unreadable(Unreadable::TooLong {
                    n_bytes,
                    line_bytes_max: self.config.line_bytes_max,
                }))
            }
            Framed::Line(line) if line.is_empty() => None,
            Framed::Line(line) => match String::from_utf8(line) {
                Ok(line) => {
                    debug!(scanner = %self.name, line = %line, "scan received");
                    Some(ScanReceived {
                        scanner: self.name.clone(),
                        line,
                        unreadable: None,
                    })
                }
                Err(e) => {
                    let n_bytes = e.as_bytes().len();
                    error!(scanner = %self.name, n_bytes,
                           "scan refused: not UTF-8 (baud rate mismatch?)");
                    Some(unreadable(Unreadable::NotUtf8 { n_bytes }))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(terminator: LineTerminator, max: usize, chunks: &[&[u8]]) -> Vec<Framed> {
        let mut framer = LineFramer::new(terminator, max);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk, &mut out);
        }
        out
    }

    fn line(s: &str) -> Framed {
        Framed::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn splits_on_each_terminator_across_chunks() {
        assert_eq!(
            frame(LineTerminator::Cr, 16, &[b"AB", b"C\rDE\r", b"F"]),
            vec![line("ABC"), line("DE")]
        );
        assert_eq!(
            frame(LineTerminator::Lf, 16, &[b"ABC\n", b"\nDE\n"]),
            vec![line("ABC"), line(""), line("DE")]
        );
        assert_eq!(
            frame(LineTerminator::Crlf, 16, &[b"ABC\r", b"\nDE\r\n"]),
            vec![line("ABC"), line("DE")]
        );
    }

    #[test]
    fn over_long_line_is_skipped_up_to_its_terminator() {
        let out = frame(LineTerminator::Cr, 4, &[b"ABCD\r", b"ABCDE", b"FGH\rOK\r"]);
        assert_eq!(
            out,
            vec![line("ABCD"), Framed::TooLong { n_bytes: 8 }, line("OK")]
        );
    }

    #[test]
    fn crlf_allows_a_full_line_plus_its_cr_but_not_more() {
        let out = frame(
            LineTerminator::Crlf,
            4,
            &[b"ABCD\r\nABCDE\nABCDEF\r\nOK\r\n"],
        );
        assert_eq!(
            out,
            vec![
                line("ABCD"),
                Framed::TooLong { n_bytes: 5 },
                Framed::TooLong { n_bytes: 7 },
                line("OK"),
            ]
        );
    }

    #[test]
    fn config_defaults_and_unknown_keys() {
        let config: ScannerConfig =
            toml::from_str("name = \"recv-1\"\npath = \"/dev/serial/by-id/usb-scanner\"\n")
                .unwrap();
        assert_eq!(
            config,
            ScannerConfig::new("recv-1", "/dev/serial/by-id/usb-scanner")
        );
        config.validate().unwrap();

        let crlf: ScannerConfig =
            toml::from_str("name = \"a\"\npath = \"/dev/x\"\nline_terminator = \"crlf\"\n")
                .unwrap();
        assert_eq!(crlf.line_terminator, LineTerminator::Crlf);

        let unknown =
            toml::from_str::<ScannerConfig>("name = \"a\"\npath = \"/dev/x\"\nbaud = 1\n");
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));

        let mut bad = ScannerConfig::new("a", "/dev/x");
        bad.line_bytes_max = LINE_BYTES_MAX_LIMIT + 1;
        assert_eq!(bad.validate().unwrap_err().key, "line_bytes_max");
        bad = ScannerConfig::new("a", "dev/x");
        assert_eq!(bad.validate().unwrap_err().key, "path");
        bad = ScannerConfig::new("a", "/dev/x");
        bad.baud_rate = 9601;
        assert_eq!(bad.validate().unwrap_err().key, "baud_rate");
    }
}
