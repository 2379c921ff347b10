//! ZPL label printers on a serial port, with a bounded job queue.
//!
//! A job is done only when the printer's host status (`~HS`) answers after it. A write to a
//! printer that is unplugged behind a live USB adapter, or switched off, still "succeeds": bytes
//! leaving the port prove nothing. So the driver sends the job, then `~HS`, and waits; no answer
//! within the timeout means the job is not done: it stays at the head of the queue, the printer
//! is marked disconnected, and after reconnecting (and a `~HS` answered again) the job is sent
//! again. An unplugged printer never loses a job and, normally, prints it once.
//!
//! Duplicate windows (what `ctl reprint`/void is for): a job is printed twice if the printer got
//! it but its answer was lost — unplugged between job and answer, the answer cut by a timeout,
//! or firmware that stays silent to `~HS` while media or ribbon is out or the head is open (the
//! job waits inside the printer, prints when the fault is cleared, and is resent once the
//! printer answers again). A late answer from a dropped session can also be read as the answer
//! of the next one; input is flushed at every open to keep that window small. Shutting down
//! mid-job marks the job failed though it may have printed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_serial::{ClearBuffer, SerialPort, SerialStream};
use tracing::{debug, info, warn};

use super::{
    check_common, open_port, sleep_or_stopped, stopped, Backoff, DeviceConfigError, DeviceError,
    DeviceState, StateTx, BAUD_RATE_DEFAULT,
};
use modori_shared::label::layout::LabelMedia;
use modori_shared::label::zpl::{
    check_media, HostStatus, HostStatusParser, HOST_STATUS_QUERY, JOB_BYTES_MAX,
};

/// Default wait for the `~HS` answer once the bytes had time to cross the wire. A Zebra
/// answers within tens of milliseconds; the three strings take 85 ms at 9600 baud.
pub const STATUS_TIMEOUT_MS_DEFAULT: u64 = 2000;
pub const STATUS_TIMEOUT_MS_MIN: u64 = 50;
pub const STATUS_TIMEOUT_MS_MAX: u64 = 60_000;
/// Jobs waiting per printer; beyond, `print` refuses so the station can tell the operator.
pub const JOB_QUEUE_MAX: usize = 64;
/// An idle printer is asked for its status this often, so a dead one shows as disconnected
/// (and paper out as such) before the next job, not after.
pub const IDLE_PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// 8N1 framing: a start bit, eight data bits, a stop bit.
const BITS_PER_BYTE_ON_WIRE: u64 = 10;
const READ_CHUNK_BYTES: usize = 256;

/// The printer language. Only ZPL for now; a variant per language keeps `type` meaningful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrinterKind {
    Zpl,
}

/// Label stock a config may name, in millimetres: from a 1-inch tag to an 8-inch shipping
/// label, what desktop and industrial thermal printers take.
pub const MEDIA_MM_MIN: f64 = 25.0;
pub const MEDIA_WIDTH_MM_MAX: f64 = 216.0;
pub const MEDIA_LENGTH_MM_MAX: f64 = 400.0;
/// Print head resolutions of Zebra printers.
pub const RESOLUTIONS_DPI: &[u32] = &[203, 300, 600];

/// One `[[printers]]` entry.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrinterConfig {
    /// Name in logs and status, e.g. `pack-1`.
    pub name: String,
    /// `type = "zpl"`: required, the printer language.
    // A field named `type` rather than `#[serde(tag = "type")]` with `flatten`: serde cannot
    // combine `flatten` with `deny_unknown_fields`.
    #[serde(rename = "type")]
    pub kind: PrinterKind,
    /// Stable path of the port: `/dev/serial/by-id/...` (or any symlink). Absolute.
    pub path: PathBuf,
    /// Default 9600 (8N1, no flow control).
    #[serde(default = "baud_rate_default")]
    pub baud_rate: u32,
    /// How long the printer may take to answer `~HS` once the job had time to cross the wire
    /// (bytes × 10 bits / baud rate). Default 2000 ms, 50..=60000.
    #[serde(default = "status_timeout_ms_default")]
    pub status_timeout_ms: u64,
    /// Width of the label stock across the print head. Default 101.6 (4 in).
    #[serde(default = "media_width_mm_default")]
    pub media_width_mm: f64,
    /// Length of one label. Default 50.8 (2 in); 152.4 for 4 × 6 in shipping labels.
    #[serde(default = "media_length_mm_default")]
    pub media_length_mm: f64,
    /// Print head resolution: 203, 300 or 600. Default 203.
    #[serde(default = "resolution_dpi_default")]
    pub resolution_dpi: u32,
}

fn media_width_mm_default() -> f64 {
    LabelMedia::default().width_mm
}

fn media_length_mm_default() -> f64 {
    LabelMedia::default().length_mm
}

fn resolution_dpi_default() -> u32 {
    LabelMedia::default().resolution_dpi
}

fn baud_rate_default() -> u32 {
    BAUD_RATE_DEFAULT
}

fn status_timeout_ms_default() -> u64 {
    STATUS_TIMEOUT_MS_DEFAULT
}

impl PrinterConfig {
    /// A ZPL printer with every default, for tests and the demo.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            kind: PrinterKind::Zpl,
            path: path.into(),
            baud_rate: BAUD_RATE_DEFAULT,
            status_timeout_ms: STATUS_TIMEOUT_MS_DEFAULT,
            media_width_mm: media_width_mm_default(),
            media_length_mm: media_length_mm_default(),
            resolution_dpi: resolution_dpi_default(),
        }
    }

    /// The label stock this printer holds.
    pub fn media(&self) -> LabelMedia {
        LabelMedia {
            width_mm: self.media_width_mm,
            length_mm: self.media_length_mm,
            resolution_dpi: self.resolution_dpi,
        }
    }

    pub fn validate(&self) -> Result<(), DeviceConfigError> {
        check_common(&self.name, &self.path, self.baud_rate)?;
        if !(STATUS_TIMEOUT_MS_MIN..=STATUS_TIMEOUT_MS_MAX).contains(&self.status_timeout_ms) {
            return Err(DeviceConfigError {
                key: "status_timeout_ms",
                message: format!("must be {STATUS_TIMEOUT_MS_MIN}..={STATUS_TIMEOUT_MS_MAX}"),
            });
        }
        for (key, value, max) in [
            ("media_width_mm", self.media_width_mm, MEDIA_WIDTH_MM_MAX),
            ("media_length_mm", self.media_length_mm, MEDIA_LENGTH_MM_MAX),
        ] {
            if !(MEDIA_MM_MIN..=max).contains(&value) {
                return Err(DeviceConfigError {
                    key,
                    message: format!("must be {MEDIA_MM_MIN}..={max} mm"),
                });
            }
        }
        if !RESOLUTIONS_DPI.contains(&self.resolution_dpi) {
            return Err(DeviceConfigError {
                key: "resolution_dpi",
                message: format!("must be one of {RESOLUTIONS_DPI:?}"),
            });
        }
        // Refused at startup rather than at the first scan: every label this site prints, with
        // the longest ids and names, must fit this stock.
        let bytes = check_media(self.media()).map_err(|e| DeviceConfigError {
            key: "media_width_mm",
            message: format!("labels do not fit this media: {e}"),
        })?;
        if bytes > JOB_BYTES_MAX {
            return Err(DeviceConfigError {
                key: "resolution_dpi",
                message: format!(
                    "the largest label on this media is {bytes} bytes, more than a job may be ({JOB_BYTES_MAX})"
                ),
            });
        }
        Ok(())
    }
}

/// A job's number, unique per printer for the life of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct JobId(pub u64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job-{}", self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for the printer; `n_attempts` sends were not confirmed.
    Queued { n_attempts: u32 },
    /// Written; waiting for the host status answer.
    Sent { n_attempts: u32 },
    /// The printer answered after the job: it holds the job (`status` says whether it can
    /// print now, e.g. paper out).
    Done { status: HostStatus },
    /// The driver stopped before the printer confirmed the job.
    Failed { reason: String },
}

#[derive(Debug, Error)]
pub enum PrintError {
    #[error("printer {printer}: {JOB_QUEUE_MAX} jobs already waiting")]
    QueueFull { printer: Arc<str> },
    #[error("printer {printer}: driver stopped")]
    Stopped { printer: Arc<str> },
    #[error("job of {n_bytes} bytes, at most {JOB_BYTES_MAX}")]
    TooLarge { n_bytes: usize },
    #[error("not a ZPL job: {reason}")]
    NotAFormat { reason: &'static str },
    #[error("{id} failed: {reason}")]
    Failed { id: JobId, reason: String },
}

/// Queues labels on one printer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PrinterHandle {
    name: Arc<str>,
    media: LabelMedia,
    jobs: mpsc::Sender<Job>,
    next_id: Arc<AtomicU64>,
    state: watch::Receiver<DeviceState>,
    status: watch::Receiver<Option<HostStatus>>,
}

/// A queued job: its id and its state as it moves.
#[derive(Debug)]
pub struct PrintTicket {
    id: JobId,
    state: watch::Receiver<JobState>,
}

impl PrintTicket {
    pub fn id(&self) -> JobId {
        self.id
    }

    pub fn state(&self) -> JobState {
        self.state.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<JobState> {
        self.state.clone()
    }

    /// Waits until the printer confirmed the job (or the driver gave up on it at shutdown).
    pub async fn done(mut self) -> Result<HostStatus, PrintError> {
        let id = self.id;
        let end = self
            .state
            .wait_for(|s| matches!(s, JobState::Done { .. } | JobState::Failed { .. }))
            .await;
        match end.as_deref() {
            Ok(JobState::Done { status }) => Ok(status.clone()),
            Ok(JobState::Failed { reason }) => Err(PrintError::Failed {
                id,
                reason: reason.clone(),
            }),
            _ => Err(PrintError::Failed {
                id,
                reason: "printer driver gone".into(),
            }),
        }
    }
}

impl PrinterHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues a job of ZPL formats (`^XA … ^XZ`, several allowed). `~` control commands are
    /// refused: the driver owns the control channel, and a stray `~HS` would answer for a job
    /// that was not received. Never waits: a full queue is an error to show the operator.
    /// The label stock the printer holds: what its labels are laid out for.
    pub fn media(&self) -> LabelMedia {
        self.media
    }

    pub fn print(&self, zpl: impl Into<String>) -> Result<PrintTicket, PrintError> {
        let zpl = zpl.into();
        check_job(&zpl)?;
        let id = JobId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (state, state_rx) = watch::channel(JobState::Queued { n_attempts: 0 });
        let job = Job {
            id,
            zpl: zpl.into_bytes(),
            state,
            n_attempts: 0,
        };
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PrintError::QueueFull {
                printer: self.name.clone(),
            },
            mpsc::error::TrySendError::Closed(_) => PrintError::Stopped {
                printer: self.name.clone(),
            },
        })?;
        debug!(printer = %self.name, job = %id, "print job queued");
        Ok(PrintTicket {
            id,
            state: state_rx,
        })
    }

    pub fn state(&self) -> watch::Receiver<DeviceState> {
        self.state.clone()
    }

    /// The last host status while connected; `None` while disconnected.
    pub fn host_status(&self) -> watch::Receiver<Option<HostStatus>> {
        self.status.clone()
    }

    /// Jobs waiting in the queue, not counting the one being printed.
    pub fn n_jobs_waiting(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }
}

fn check_job(zpl: &str) -> Result<(), PrintError> {
    if zpl.len() > JOB_BYTES_MAX {
        return Err(PrintError::TooLarge { n_bytes: zpl.len() });
    }
    let body = zpl.trim();
    if !body.starts_with("^XA") || !body.ends_with("^XZ") {
        return Err(PrintError::NotAFormat {
            reason: "must start with ^XA and end with ^XZ",
        });
    }
    if body.contains('~') {
        return Err(PrintError::NotAFormat {
            reason: "contains a ~ control command",
        });
    }
    Ok(())
}

#[derive(Debug)]
struct Job {
    id: JobId,
    zpl: Vec<u8>,
    state: watch::Sender<JobState>,
    n_attempts: u32,
}

/// An open port to a printer, with the status parser of its session.
struct Link {
    port: SerialStream,
    device: PathBuf,
    parser: HostStatusParser,
    baud_rate: u32,
    status_timeout: Duration,
}

impl Link {
    /// Sends `payload` then `~HS`, and waits for the answer. The deadline covers the time the
    /// bytes need on the wire: `write_all` returns once they are in the kernel's buffer.
    async fn exchange(&mut self, payload: &[u8]) -> Result<HostStatus, DeviceError> {
        let mut bytes = Vec::with_capacity(payload.len() + HOST_STATUS_QUERY.len());
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(HOST_STATUS_QUERY);
        let wire_ms = bytes.len() as u64 * BITS_PER_BYTE_ON_WIRE * 1000 / u64::from(self.baud_rate);
        let timeout = Duration::from_millis(wire_ms) + self.status_timeout;
        let timeout_ms = timeout.as_millis() as u64;
        let deadline = Instant::now() + timeout;
        self.parser.reset();
        // No flush(): on a tty it is tcdrain, which blocks a runtime thread until the UART
        // has sent everything.
        match tokio::time::timeout_at(deadline, self.port.write_all(&bytes)).await {
            Err(_) => {
                return Err(DeviceError::WriteTimeout {
                    device: self.device.clone(),
                    timeout_ms,
                })
            }
            Ok(Err(source)) => {
                return Err(DeviceError::Write {
                    device: self.device.clone(),
                    source,
                })
            }
            Ok(Ok(())) => {}
        }
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        let answer = async {
            loop {
                let n = self.read_some(&mut chunk).await?;
                if let Some(status) = self.parser.push(&chunk[..n]) {
                    return Ok(status);
                }
            }
        };
        tokio::time::timeout_at(deadline, answer)
            .await
            .unwrap_or_else(|_| {
                Err(DeviceError::StatusTimeout {
                    device: self.device.clone(),
                    timeout_ms,
                })
            })
    }

    async fn read_some(&mut self, chunk: &mut [u8]) -> Result<usize, DeviceError> {
        match self.port.read(chunk).await {
            // A tty reads end of file once it is hung up: the adapter (or pty master) is gone.
            Ok(0) => Err(DeviceError::HungUp {
                device: self.device.clone(),
            }),
            Ok(n) => Ok(n),
            Err(source) => Err(DeviceError::Read {
                device: self.device.clone(),
                source,
            }),
        }
    }
}

/// The task of one printer. Build it with [`PrinterDriver::new`], spawn [`PrinterDriver::run`].
pub struct PrinterDriver {
    config: PrinterConfig,
    name: Arc<str>,
    jobs: mpsc::Receiver<Job>,
    /// The job at the head of the queue, kept until the printer confirms it.
    current: Option<Job>,
    state: StateTx,
    status: watch::Sender<Option<HostStatus>>,
    shutdown: watch::Receiver<bool>,
}

enum SessionEnd {
    Failed(DeviceError),
    Stop,
}

impl PrinterDriver {
    pub fn new(config: PrinterConfig, shutdown: watch::Receiver<bool>) -> (Self, PrinterHandle) {
        let name: Arc<str> = Arc::from(config.name.as_str());
        let (jobs_tx, jobs) = mpsc::channel(JOB_QUEUE_MAX);
        let (state, state_rx) = StateTx::new();
        let (status, status_rx) = watch::channel(None);
        let handle = PrinterHandle {
            name: name.clone(),
            media: config.media(),
            jobs: jobs_tx,
            next_id: Arc::new(AtomicU64::new(1)),
            state: state_rx,
            status: status_rx,
        };
        let driver = Self {
            config,
            name,
            jobs,
            current: None,
            state,
            status,
            shutdown,
        };
        (driver, handle)
    }

    /// Runs until shutdown, or until every handle is dropped and the queue is empty. Jobs not
    /// confirmed by then are marked failed.
    pub async fn run(mut self) {
        let mut backoff = Backoff::new();
        loop {
            // An attempt that failed before the printer answered; a lost session reports itself.
            let failed = match open_port(&self.config.path, self.config.baud_rate) {
                Err(e) => Some(e),
                Ok((port, device)) => {
                    let mut link = Link {
                        port,
                        device,
                        parser: HostStatusParser::new(),
                        baud_rate: self.config.baud_rate,
                        status_timeout: Duration::from_millis(self.config.status_timeout_ms),
                    };
                    // A late answer from an earlier session must not answer this one's query.
                    if let Err(e) = link.port.clear(ClearBuffer::Input) {
                        debug!(printer = %self.name, error = %e, "cannot flush printer input");
                    }
                    let probe = tokio::select! {
                        probe = link.exchange(&[]) => probe,
                        _ = stopped(&mut self.shutdown) => break,
                    };
                    match probe {
                        Err(e) => Some(e),
                        Ok(status) => {
                            info!(printer = %self.name, device = %link.device.display(), "printer connected");
                            self.state.connected(&link.device);
                            self.publish(Some(status));
                            backoff.reset();
                            match self.session(&mut link).await {
                                SessionEnd::Stop => break,
                                SessionEnd::Failed(e) => {
                                    warn!(printer = %self.name, error = %e, "printer disconnected");
                                    self.publish(None);
                                    self.state.disconnected(&e);
                                    None
                                }
                            }
                        }
                    }
                }
            };
            if let Some(e) = failed {
                if self.state.disconnected(&e) {
                    warn!(printer = %self.name, error = %e, "printer unavailable");
                } else {
                    debug!(printer = %self.name, error = %e, "printer still unavailable");
                }
            }
            if sleep_or_stopped(backoff.next_delay(), &mut self.shutdown).await {
                break;
            }
        }
        self.fail_remaining();
    }

    /// Prints jobs in order while the printer answers; asks an idle printer for its status now
    /// and then, and watches an idle port for the hang-up of an unplug.
    async fn session(&mut self, link: &mut Link) -> SessionEnd {
        let mut idle =
            tokio::time::interval_at(Instant::now() + IDLE_PROBE_INTERVAL, IDLE_PROBE_INTERVAL);
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        loop {
            if self.current.is_none() {
                tokio::select! {
                    _ = stopped(&mut self.shutdown) => return SessionEnd::Stop,
                    job = self.jobs.recv() => match job {
                        Some(job) => self.current = Some(job),
                        None => return SessionEnd::Stop,
                    },
                    _ = idle.tick() => match link.exchange(&[]).await {
                        Ok(status) => self.publish(Some(status)),
                        Err(e) => return SessionEnd::Failed(e),
                    },
                    read = link.read_some(&mut chunk) => match read {
                        Ok(n) => debug!(printer = %self.name, n_bytes = n, "unasked bytes from printer dropped"),
                        Err(e) => return SessionEnd::Failed(e),
                    },
                }
            }
            let Some(job) = self.current.as_mut() else {
                continue;
            };
            job.n_attempts += 1;
            let n_attempts = job.n_attempts;
            job.state.send_replace(JobState::Sent { n_attempts });
            let sent = tokio::select! {
                sent = link.exchange(&job.zpl) => sent,
                _ = stopped(&mut self.shutdown) => {
                    job.state.send_replace(JobState::Queued { n_attempts });
                    return SessionEnd::Stop;
                }
            };
            match sent {
                Ok(status) => {
                    info!(printer = %self.name, job = %job.id, n_attempts, "label printed");
                    job.state.send_replace(JobState::Done {
                        status: status.clone(),
                    });
                    self.current = None;
                    self.publish(Some(status));
                    idle.reset();
                }
                Err(e) => {
                    warn!(printer = %self.name, job = %job.id, n_attempts, error = %e,
                          "print not confirmed; job kept at the head of the queue");
                    job.state.send_replace(JobState::Queued { n_attempts });
                    return SessionEnd::Failed(e);
                }
            }
        }
    }

    fn publish(&self, status: Option<HostStatus>) {
        let name = &self.name;
        self.status.send_if_modified(|last| {
            if *last == status {
                return false;
            }
            if let Some(s) = status.as_ref().filter(|s| !s.is_ready()) {
                warn!(printer = %name, paper_out = s.paper_out, paused = s.paused,
                      head_open = s.head_open, ribbon_out = s.ribbon_out,
                      buffer_full = s.buffer_full, "printer needs attention");
            }
            *last = status;
            true
        });
    }

    fn fail_remaining(&mut self) {
        self.jobs.close();
        let reason = "printer driver stopped before the printer confirmed the job";
        let waiting = std::iter::from_fn(|| self.jobs.try_recv().ok());
        let jobs: Vec<Job> = self.current.take().into_iter().chain(waiting).collect();
        for job in jobs {
            warn!(printer = %self.name, job = %job.id, "print job failed: driver stopped");
            job.state.send_replace(JobState::Failed {
                reason: reason.into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_needs_its_type_and_refuses_unknown_keys() {
        let config: PrinterConfig = toml::from_str(
            "name = \"pack-1\"\ntype = \"zpl\"\npath = \"/dev/serial/by-id/usb-zebra\"\n",
        )
        .unwrap();
        assert_eq!(
            config,
            PrinterConfig::new("pack-1", "/dev/serial/by-id/usb-zebra")
        );
        config.validate().unwrap();

        let missing = toml::from_str::<PrinterConfig>("name = \"a\"\npath = \"/dev/x\"\n");
        assert!(missing.unwrap_err().to_string().contains("type"));
        let other =
            toml::from_str::<PrinterConfig>("name = \"a\"\ntype = \"epl\"\npath = \"/x\"\n");
        assert!(other.unwrap_err().to_string().contains("zpl"));
        let unknown = toml::from_str::<PrinterConfig>(
            "name = \"a\"\ntype = \"zpl\"\npath = \"/x\"\ntimeout_ms = 5\n",
        );
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));

        let mut bad = PrinterConfig::new("a", "/dev/x");
        bad.status_timeout_ms = 10;
        assert_eq!(bad.validate().unwrap_err().key, "status_timeout_ms");
    }

    #[test]
    fn media_is_configured_and_refused_when_labels_cannot_fit() {
        let config: PrinterConfig = toml::from_str(
            "name = \"p\"\ntype = \"zpl\"\npath = \"/dev/x\"\n\
             media_width_mm = 101.6\nmedia_length_mm = 152.4\nresolution_dpi = 300\n",
        )
        .unwrap();
        assert_eq!(config.media().length_dots(), 1800);
        config.validate().unwrap();

        let mut bad = config.clone();
        bad.resolution_dpi = 250;
        assert_eq!(bad.validate().unwrap_err().key, "resolution_dpi");
        let mut bad = config.clone();
        bad.media_length_mm = 10.0;
        assert_eq!(bad.validate().unwrap_err().key, "media_length_mm");
        // A 2 × 1 in tag cannot hold a return label with the longest names.
        let mut small = config;
        (small.media_width_mm, small.media_length_mm) = (50.8, 25.4);
        let err = small.validate().unwrap_err();
        assert!(err.message.contains("does not fit"), "{}", err.message);
    }

    #[test]
    fn jobs_must_be_formats_without_control_commands() {
        check_job("^XA^FDx^FS^XZ\n").unwrap();
        check_job("^XA^XZ^XA^XZ").unwrap();
        assert!(matches!(
            check_job("^FDx^FS"),
            Err(PrintError::NotAFormat { .. })
        ));
        assert!(matches!(
            check_job("^XA~JA^XZ"),
            Err(PrintError::NotAFormat { .. })
        ));
        let huge = format!("^XA{}^XZ", "x".repeat(JOB_BYTES_MAX));
        assert!(matches!(check_job(&huge), Err(PrintError::TooLarge { .. })));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_stopped_driver_fails_its_jobs() {
        let (_stop, shutdown) = watch::channel(false);
        let (driver, handle) =
            PrinterDriver::new(PrinterConfig::new("p", "/nonexistent/printer"), shutdown);
        let tickets: Vec<PrintTicket> = (0..JOB_QUEUE_MAX)
            .map(|_| handle.print("^XA^XZ").unwrap())
            .collect();
        assert_eq!(handle.n_jobs_waiting(), JOB_QUEUE_MAX);
        assert!(matches!(
            handle.print("^XA^XZ"),
            Err(PrintError::QueueFull { .. })
        ));
        assert_eq!(tickets[0].id(), JobId(1));
        assert_eq!(tickets[0].state(), JobState::Queued { n_attempts: 0 });
        let mut driver = driver;
        driver.fail_remaining();
        for ticket in tickets {
            assert!(matches!(
                ticket.done().await,
                Err(PrintError::Failed { .. })
            ));
        }
        assert!(matches!(
            handle.print("^XA^XZ"),
            Err(PrintError::Stopped { .. })
        ));
    }
}
