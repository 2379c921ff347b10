//! Simulated scanners and printers on pseudo-terminals, for tests and the demo. The driver
//! opens the pty's slave (`/dev/pts/N`) through the very code that opens a real port; the
//! simulator plays the device on the master side, and a symlink plays `/dev/serial/by-id/...`.
//! Unplug is: remove the link, close the pty (the driver's port hangs up). Replug is: a new pty
//! and the link pointed at it, as a real adapter comes back under a new node.
//!
//! Pseudo-terminal traps, and what this module does about them:
//! - A new pty is a cooked terminal: ICRNL turns a scanner's CR into LF, ECHO sends the device's
//!   own bytes back to it, OPOST adds CRs. The slave is put in raw mode (`cfmakeraw`) when the
//!   pty is made, before any driver opens it (tokio-serial sets raw mode too, but only then).
//! - tokio-serial opens ports with TIOCEXCL and clears it when it closes them. A driver that
//!   dies without closing (kill -9) leaves the flag on the pty for as long as the master is
//!   open, and then nobody but root can open that slave again (EBUSY; tests running as root do
//!   not see it). So a replug is always a new pty, as a real replug is a new device node.
//! - With no slave file open, reading the master fails with EIO and it polls as hung up. The
//!   simulator keeps its own slave fd for the life of the pty, so the master just reads empty.
//! - openpty's fds are inherited by child processes, which would keep the master open so an
//!   unplug no longer hangs up the driver's port. Both ends are made close-on-exec.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::pty::{openpty, OpenptyResult};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use modori_agent::devices::scanner::LineTerminator;
use modori_shared::label::zpl::{host_status_answer, HostStatus, HOST_STATUS_QUERY};

/// One read of what a driver sent to a simulated printer.
const SIM_READ_CHUNK_BYTES: usize = 4096;
/// A label still open after this many bytes is dropped: no real job is that large.
const SIM_LABEL_BYTES_MAX: usize = 256 * 1024;
/// Labels a simulated printer remembers (the oldest go first); the demo runs for hours.
pub const SIM_LABELS_MAX: usize = 1000;

#[derive(Debug, Error)]
pub enum SimError {
    #[error("pseudo-terminal: {0}")]
    Pty(#[from] nix::Error),
    #[error("pseudo-terminal: {0}")]
    Io(#[from] io::Error),
    #[error("stable path {link}: {source}")]
    Link {
        link: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the simulated device is unplugged")]
    Unplugged,
}

/// The master side of a raw pty, and the slave fd that keeps it from reading EIO.
struct Pty {
    master: AsyncFd<File>,
    _slave: OwnedFd,
    device: PathBuf,
}

impl Pty {
    fn open() -> Result<Self, SimError> {
        let OpenptyResult { master, slave } = openpty(None, None)?;
        let mut termios = tcgetattr(&slave)?;
        cfmakeraw(&mut termios);
        tcsetattr(&slave, SetArg::TCSANOW, &termios)?;
        for fd in [&master, &slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        }
        fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        let device = nix::unistd::ttyname(&slave)?;
        let master = File::from(master);
        // SAFETY: the `File` owns its fd, and `AsyncFd` owns the `File` until it is dropped:
        // the fd stays open and the same for the registration's whole life.
        let master = unsafe { AsyncFd::register(master) }.map_err(io::Error::from)?;
        Ok(Self {
            master,
            _slave: slave,
            device,
        })
    }

    async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut ready = self.master.writable().await?;
            if let Ok(written) = ready.try_io(|fd| fd.get_ref().write(bytes)) {
                bytes = &bytes[written?..];
            }
        }
        Ok(())
    }

    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.master.readable().await?;
            if let Ok(read) = ready.try_io(|fd| fd.get_ref().read(buf)) {
                return read;
            }
        }
    }
}

/// Points `link` at `device`, replacing an old link at once (rename is atomic), so a driver
/// never resolves a half-made link.
fn point_link(link: &Path, device: &Path) -> Result<(), SimError> {
    let mut fresh = link.as_os_str().to_owned();
    fresh.push(".new");
    let fresh = PathBuf::from(fresh);
    let _ = std::fs::remove_file(&fresh);
    std::os::unix::fs::symlink(device, &fresh)
        .and_then(|()| std::fs::rename(&fresh, link))
        .map_err(|source| SimError::Link {
            link: link.to_owned(),
            source,
        })
}

/// A barcode scanner: what it scans is written on the master side, with its terminator.
pub struct SimScanner {
    link: PathBuf,
    terminator: LineTerminator,
    pty: Option<Pty>,
}

impl SimScanner {
    /// A plugged-in scanner reachable at `link` (a path in a folder the caller owns).
    pub fn plug_in(link: impl Into<PathBuf>, terminator: LineTerminator) -> Result<Self, SimError> {
        let mut scanner = Self {
            link: link.into(),
            terminator,
            pty: None,
        };
        scanner.replug()?;
        Ok(scanner)
    }

    /// The stable path to configure the driver with.
    pub fn path(&self) -> &Path {
        &self.link
    }

    /// The pty slave the link points at now.
    pub fn device(&self) -> Option<&Path> {
        self.pty.as_ref().map(|pty| pty.device.as_path())
    }

    /// Scans `line`: writes it and the terminator.
    pub async fn scan(&self, line: &str) -> Result<(), SimError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(self.terminator.as_bytes());
        self.send_raw(&bytes).await
    }

    /// Writes bytes as they are, e.g. a line longer than the driver accepts.
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<(), SimError> {
        let pty = self.pty.as_ref().ok_or(SimError::Unplugged)?;
        Ok(pty.write_all(bytes).await?)
    }

    /// The link goes first, as udev removes `/dev/serial/by-id` links, then the pty closes.
    pub fn unplug(&mut self) {
        let _ = std::fs::remove_file(&self.link);
        self.pty = None;
    }

    /// Plugs in again on a new pty (unplugging first if need be).
    pub fn replug(&mut self) -> Result<(), SimError> {
        self.unplug();
        let pty = Pty::open()?;
        point_link(&self.link, &pty.device)?;
        self.pty = Some(pty);
        Ok(())
    }
}

impl Drop for SimScanner {
    fn drop(&mut self) {
        self.unplug();
    }
}

/// How a simulated printer treats what it receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SimPrinterMode {
    /// Records labels and answers `~HS` at once.
    #[default]
    Answering,
    /// Records labels but keeps its `~HS` answers until set back to `Answering`.
    Holding,
    /// Off behind a live adapter: bytes vanish, nothing is printed or answered.
    Silent,
}

/// What a simulated printer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimPrinterRecord {
    /// Every complete `^XA … ^XZ` received while on, oldest first (at most [`SIM_LABELS_MAX`]).
    pub labels: Vec<String>,
    pub n_labels: u64,
    pub n_status_answers: u64,
    pub n_bytes_swallowed: u64,
}

#[derive(Clone, Debug, Default)]
struct SimControl {
    mode: SimPrinterMode,
    status: HostStatus,
    /// Where each label is also written, as `<n>.zpl` (n from 1), to render and scan later.
    printed_dir: Option<PathBuf>,
}

/// A ZPL printer: a task on the master side records labels and answers `~HS`.
pub struct SimPrinter {
    link: PathBuf,
    control: Arc<watch::Sender<SimControl>>,
    record: Arc<watch::Sender<SimPrinterRecord>>,
    plugged: Option<(PathBuf, JoinHandle<()>)>,
}

impl SimPrinter {
    /// A plugged-in printer reachable at `link` (a path in a folder the caller owns).
    pub fn plug_in(link: impl Into<PathBuf>) -> Result<Self, SimError> {
        let mut printer = Self {
            link: link.into(),
            control: Arc::new(watch::channel(SimControl::default()).0),
            record: Arc::new(watch::channel(SimPrinterRecord::default()).0),
            plugged: None,
        };
        printer.plug()?;
        Ok(printer)
    }

    pub fn path(&self) -> &Path {
        &self.link
    }

    pub fn device(&self) -> Option<&Path> {
        self.plugged.as_ref().map(|(device, _)| device.as_path())
    }

    pub fn set_mode(&self, mode: SimPrinterMode) {
        self.control.send_modify(|c| c.mode = mode);
    }

    /// From now on, writes every label it prints to `dir` as `<n>.zpl`, `n` counting the
    /// labels this printer printed from 1: the "paper" a test renders and scans.
    pub fn print_to(&self, dir: impl Into<PathBuf>) -> Result<(), SimError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        self.control.send_modify(|c| c.printed_dir = Some(dir));
        Ok(())
    }

    /// The flags the next answers carry (paper out, head open, …).
    pub fn set_status(&self, status: HostStatus) {
        self.control.send_modify(|c| c.status = status);
    }

    pub fn record(&self) -> SimPrinterRecord {
        self.record.borrow().clone()
    }

    /// Changes whenever a label is recorded or a status answered.
    pub fn watch(&self) -> watch::Receiver<SimPrinterRecord> {
        self.record.subscribe()
    }

    /// Removes the link and closes the pty: the driver's port hangs up.
    pub async fn unplug(&mut self) {
        let _ = std::fs::remove_file(&self.link);
        if let Some((_, task)) = self.plugged.take() {
            task.abort();
            // The pty closes when the aborted task's future is dropped.
            let _ = task.await;
        }
    }

    /// A power cycle on a new pty: answering again, whatever the mode was.
    pub async fn replug(&mut self) -> Result<(), SimError> {
        self.unplug().await;
        self.set_mode(SimPrinterMode::Answering);
        self.plug()
    }

    fn plug(&mut self) -> Result<(), SimError> {
        let pty = Pty::open()?;
        point_link(&self.link, &pty.device)?;
        let device = pty.device.clone();
        let task = tokio::spawn(serve(pty, self.control.subscribe(), self.record.clone()));
        self.plugged = Some((device, task));
        Ok(())
    }
}

impl Drop for SimPrinter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.link);
        if let Some((_, task)) = self.plugged.take() {
            task.abort();
        }
    }
}

async fn serve(
    pty: Pty,
    mut control: watch::Receiver<SimControl>,
    record: Arc<watch::Sender<SimPrinterRecord>>,
) {
    let mut input = ZplInput::default();
    let mut received = Vec::new();
    let mut n_held = 0u64;
    let mut chunk = vec![0u8; SIM_READ_CHUNK_BYTES];
    loop {
        tokio::select! {
            changed = control.changed() => if changed.is_err() { return },
            read = pty.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) if control.borrow().mode == SimPrinterMode::Silent => {
                    record.send_modify(|r| r.n_bytes_swallowed += n as u64);
                }
                Ok(n) => input.push(&chunk[..n], &mut received),
            },
        }
        for got in received.drain(..) {
            match got {
                Received::Label(label) => {
                    let printed_dir = control.borrow().printed_dir.clone();
                    let mut n = 0;
                    record.send_modify(|r| {
                        if r.labels.len() == SIM_LABELS_MAX {
                            r.labels.remove(0);
                        }
                        r.labels.push(label.clone());
                        r.n_labels += 1;
                        n = r.n_labels;
                    });
                    if let Some(dir) = printed_dir {
                        let path = dir.join(format!("{n}.zpl"));
                        if let Err(e) = tokio::fs::write(&path, &label).await {
                            tracing::warn!(path = %path.display(), error = %e, "simulated printer cannot write its label");
                        }
                    }
                }
                Received::StatusQuery => n_held += 1,
            }
        }
        let SimControl { mode, status, .. } = control.borrow().clone();
        match mode {
            SimPrinterMode::Silent => n_held = 0,
            SimPrinterMode::Holding => {}
            SimPrinterMode::Answering => {
                for _ in 0..std::mem::take(&mut n_held) {
                    if pty.write_all(&host_status_answer(&status)).await.is_err() {
                        return;
                    }
                    record.send_modify(|r| r.n_status_answers += 1);
                }
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Received {
    Label(String),
    StatusQuery,
}

/// Splits what a printer receives into labels and `~HS` queries, in order. Like a Zebra it
/// takes `~HS` wherever it comes, even inside a label.
#[derive(Debug, Default)]
struct ZplInput {
    /// Bytes not yet sorted: at most the start of a `~HS` split across reads.
    pending: Vec<u8>,
    /// Format bytes, from the last `^XA` seen on.
    formats: Vec<u8>,
}

impl ZplInput {
    fn push(&mut self, bytes: &[u8], out: &mut Vec<Received>) {
        self.pending.extend_from_slice(bytes);
        while let Some(at) = find(&self.pending, HOST_STATUS_QUERY) {
            self.formats.extend(self.pending.drain(..at));
            self.pending.drain(..HOST_STATUS_QUERY.len());
            self.take_labels(out);
            out.push(Received::StatusQuery);
        }
        let held = (1..HOST_STATUS_QUERY.len())
            .rev()
            .find(|&n| self.pending.ends_with(&HOST_STATUS_QUERY[..n]))
            .unwrap_or(0);
        let sorted = self.pending.len() - held;
        self.formats.extend(self.pending.drain(..sorted));
        self.take_labels(out);
    }

    fn take_labels(&mut self, out: &mut Vec<Received>) {
        loop {
            let Some(start) = find(&self.formats, b"^XA") else {
                // Keep what could be the start of a split "^XA".
                let keep = self.formats.len().min(2);
                self.formats.drain(..self.formats.len() - keep);
                return;
            };
            self.formats.drain(..start);
            let Some(end) = find(&self.formats, b"^XZ") else {
                if self.formats.len() > SIM_LABEL_BYTES_MAX {
                    self.formats.clear();
                }
                return;
            };
            let label: Vec<u8> = self.formats.drain(..end + 3).collect();
            out.push(Received::Label(
                String::from_utf8_lossy(&label).into_owned(),
            ));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use nix::sys::termios::{InputFlags, LocalFlags, OutputFlags};

    use super::*;

    #[tokio::test]
    async fn a_new_pty_is_raw_so_nothing_is_echoed_or_translated() {
        let pty = Pty::open().unwrap();
        let termios = tcgetattr(&pty._slave).unwrap();
        assert!(!termios.local_flags.contains(LocalFlags::ECHO));
        assert!(!termios.local_flags.contains(LocalFlags::ICANON));
        assert!(!termios.input_flags.contains(InputFlags::ICRNL));
        assert!(!termios.output_flags.contains(OutputFlags::OPOST));
        assert!(pty.device.starts_with("/dev/pts"));
    }

    fn sort(chunks: &[&[u8]]) -> Vec<Received> {
        let mut input = ZplInput::default();
        let mut out = Vec::new();
        for chunk in chunks {
            input.push(chunk, &mut out);
        }
        out
    }

    #[test]
    fn labels_and_queries_come_out_in_order_across_split_reads() {
        let label = |s: &str| Received::Label(s.to_owned());
        assert_eq!(
            sort(&[b"~H", b"S^X", b"A^FDa^FS^X", b"Z~", b"HS"]),
            vec![
                Received::StatusQuery,
                label("^XA^FDa^FS^XZ"),
                Received::StatusQuery
            ]
        );
        assert_eq!(
            sort(&[b"junk^XA1^XZ^XA2^XZ~HS"]),
            vec![label("^XA1^XZ"), label("^XA2^XZ"), Received::StatusQuery]
        );
        assert_eq!(
            sort(&[b"^XA1~HS^XZ"]),
            vec![Received::StatusQuery, label("^XA1^XZ")],
            "~HS is taken even inside a label"
        );
    }
}
