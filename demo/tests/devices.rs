//! The scanner and printer drivers against simulated devices on pseudo-terminals: the driver
//! code is the one real ports use; unplug and replug close a pty and point the stable link at
//! a new one. Every wait is a poll with a deadline, never a sleep.

use std::time::Duration;

use modori_agent::devices::printer::{
    JobState, PrintTicket, PrinterConfig, PrinterDriver, PrinterHandle,
};
use modori_agent::devices::scanner::{
    LineTerminator, ScanReceived, ScannerConfig, ScannerDriver, Unreadable,
};
use modori_agent::devices::DeviceState;
use modori_demo::pty::{SimPrinter, SimPrinterMode, SimPrinterRecord, SimScanner};
use modori_shared::domain::{Grade, Lpn, SiteId, Sku};
use modori_shared::label::zpl::{lpn_label, transfer_label, HostStatus, LabelMedia};
use tempfile::TempDir;
use tokio::sync::{mpsc, watch};

/// Far above what any wait here takes (milliseconds); only a broken driver reaches it.
const DEADLINE: Duration = Duration::from_secs(10);
const SCAN_CHANNEL_CAPACITY: usize = 16;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {DEADLINE:?}"))
}

async fn wait_state(
    state: &mut watch::Receiver<DeviceState>,
    what: &str,
    until: impl FnMut(&DeviceState) -> bool,
) -> DeviceState {
    within(what, state.wait_for(until))
        .await
        .expect("driver alive")
        .clone()
}

async fn connected(state: &mut watch::Receiver<DeviceState>) -> DeviceState {
    wait_state(state, "connected", DeviceState::is_connected).await
}

async fn disconnected(state: &mut watch::Receiver<DeviceState>) -> DeviceState {
    wait_state(state, "disconnected", |s| !s.is_connected()).await
}

fn n_failures(state: &DeviceState) -> u32 {
    match state {
        DeviceState::Disconnected { n_failures, .. } => *n_failures,
        DeviceState::Connected { .. } => 0,
    }
}

fn last_error(state: &DeviceState) -> String {
    match state {
        DeviceState::Disconnected { last_error, .. } => last_error.clone().unwrap_or_default(),
        DeviceState::Connected { .. } => String::new(),
    }
}

struct Scanning {
    sim: SimScanner,
    scans: mpsc::Receiver<ScanReceived>,
    state: watch::Receiver<DeviceState>,
    _stop: watch::Sender<bool>,
    _dir: TempDir,
}

impl Scanning {
    fn start(terminator: LineTerminator, line_bytes_max: usize) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let sim = SimScanner::plug_in(dir.path().join("scanner"), terminator).unwrap();
        let mut config = ScannerConfig::new("recv-1", sim.path());
        config.line_terminator = terminator;
        config.line_bytes_max = line_bytes_max;
        config.validate().unwrap();
        let (events, scans) = mpsc::channel(SCAN_CHANNEL_CAPACITY);
        let (stop, shutdown) = watch::channel(false);
        let (driver, state) = ScannerDriver::new(config, events, shutdown);
        tokio::spawn(driver.run());
        Self {
            sim,
            scans,
            state,
            _stop: stop,
            _dir: dir,
        }
    }

    async fn next_scan(&mut self) -> ScanReceived {
        let scan = within("a scan", self.scans.recv())
            .await
            .expect("driver alive");
        assert_eq!(&*scan.scanner, "recv-1");
        scan
    }

    async fn next_line(&mut self) -> String {
        let scan = self.next_scan().await;
        assert_eq!(scan.unreadable, None, "{scan:?}");
        scan.line
    }
}

struct Printing {
    sim: SimPrinter,
    record: watch::Receiver<SimPrinterRecord>,
    handle: PrinterHandle,
    state: watch::Receiver<DeviceState>,
    _stop: watch::Sender<bool>,
    _dir: TempDir,
}

impl Printing {
    fn start(status_timeout_ms: u64) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let sim = SimPrinter::plug_in(dir.path().join("printer")).unwrap();
        let mut config = PrinterConfig::new("pack-1", sim.path());
        // A pty ignores the rate; a fast one keeps the wire-time share of each timeout small.
        config.baud_rate = 115_200;
        config.status_timeout_ms = status_timeout_ms;
        config.validate().unwrap();
        let (stop, shutdown) = watch::channel(false);
        let (driver, handle) = PrinterDriver::new(config, shutdown);
        tokio::spawn(driver.run());
        Self {
            record: sim.watch(),
            sim,
            state: handle.state(),
            handle,
            _stop: stop,
            _dir: dir,
        }
    }

    async fn wait_record(&mut self, what: &str, until: impl FnMut(&SimPrinterRecord) -> bool) {
        within(what, self.record.wait_for(until))
            .await
            .expect("simulator alive");
    }
}

fn label(n: u32) -> String {
    lpn_label(
        LabelMedia::default(),
        &Lpn::new(format!("LPN-OSA-{n:06}")).unwrap(),
        &Sku::new("SKU-TEE-M").unwrap(),
        Some(Grade::A),
        &SiteId::new("osaka").unwrap(),
    )
    .unwrap()
}

async fn wait_job(ticket: &PrintTicket, what: &str, until: impl FnMut(&JobState) -> bool) {
    let mut state = ticket.watch();
    within(what, state.wait_for(until))
        .await
        .expect("driver alive");
}

/// Named `devices` so that `cargo test -p modori-agent devices` runs these with the unit tests.
mod devices {
    use super::*;

    #[tokio::test]
    async fn scans_arrive_in_order_with_each_terminator() {
        for terminator in [LineTerminator::Cr, LineTerminator::Lf, LineTerminator::Crlf] {
            let mut s = Scanning::start(terminator, 64);
            connected(&mut s.state).await;
            for line in ["LPN-OSA-000001", "4901234567894", "RMA-0000123"] {
                s.sim.scan(line).await.unwrap();
            }
            // Two scans in one burst, as a fast scanner delivers them.
            let t = std::str::from_utf8(terminator.as_bytes()).unwrap();
            s.sim
                .send_raw(format!("A-1{t}B-2{t}").as_bytes())
                .await
                .unwrap();
            for want in [
                "LPN-OSA-000001",
                "4901234567894",
                "RMA-0000123",
                "A-1",
                "B-2",
            ] {
                assert_eq!(s.next_line().await, want, "{terminator:?}");
            }
        }
    }

    #[tokio::test]
    async fn an_over_long_line_is_refused_and_the_next_scan_arrives() {
        let mut s = Scanning::start(LineTerminator::Cr, 16);
        connected(&mut s.state).await;
        s.sim.scan(&"9".repeat(40)).await.unwrap();
        s.sim.send_raw(b"\xff\xfeRMA\r").await.unwrap();
        s.sim.scan("LPN-OK").await.unwrap();
        // Neither is taken as a scan, and neither is dropped unseen: the station answers both.
        let long = s.next_scan().await;
        assert_eq!(
            long.unreadable,
            Some(Unreadable::TooLong {
                n_bytes: 40,
                line_bytes_max: 16
            }),
            "{long:?}"
        );
        assert!(long.line.is_empty());
        let garbled = s.next_scan().await;
        assert_eq!(garbled.unreadable, Some(Unreadable::NotUtf8 { n_bytes: 5 }));
        assert!(garbled.unreadable.unwrap().to_string().contains("not text"));
        s.sim.scan(&"X".repeat(16)).await.unwrap();
        assert_eq!(s.next_line().await, "LPN-OK");
        assert_eq!(
            s.next_line().await,
            "X".repeat(16),
            "exactly the limit passes"
        );
    }

    #[tokio::test]
    async fn a_scanner_unplugged_and_replugged_comes_back_by_itself() {
        let mut s = Scanning::start(LineTerminator::Cr, 64);
        let before = connected(&mut s.state).await;
        s.sim.scan("BEFORE").await.unwrap();
        assert_eq!(s.next_line().await, "BEFORE");

        s.sim.unplug();
        let away = disconnected(&mut s.state).await;
        // Either sign of an unplug may come first: the port's hang-up or the vanished link.
        let error = last_error(&away);
        assert!(
            error.contains("hung up") || error.contains("cannot resolve"),
            "{away:?}"
        );
        assert!(
            s.sim.scan("LOST").await.is_err(),
            "an unplugged scanner cannot scan"
        );

        s.sim.replug().unwrap();
        let back = connected(&mut s.state).await;
        let DeviceState::Connected { device, .. } = &back else {
            unreachable!()
        };
        assert_eq!(Some(device.as_path()), s.sim.device(), "the new pty");
        s.sim.scan("AFTER").await.unwrap();
        assert_eq!(s.next_line().await, "AFTER");
        assert_ne!(before, back);
    }

    #[tokio::test]
    async fn a_job_is_done_only_after_the_host_status_answers() {
        // A long timeout: the simulator holds its answer on purpose while we look.
        let mut p = Printing::start(5000);
        connected(&mut p.state).await;
        p.sim.set_mode(SimPrinterMode::Holding);
        let zpl = label(1);
        let ticket = p.handle.print(zpl.clone()).unwrap();

        p.wait_record("label received", |r| r.n_labels == 1).await;
        assert_eq!(
            ticket.state(),
            JobState::Sent { n_attempts: 1 },
            "received but unanswered is not done"
        );

        let paused = HostStatus {
            paused: true,
            n_formats_in_buffer: Some(0),
            n_labels_remaining: Some(0),
            ..HostStatus::default()
        };
        p.sim.set_status(paused.clone());
        p.sim.set_mode(SimPrinterMode::Answering);
        let status = within("job done", ticket.done()).await.unwrap();
        assert_eq!(status, paused, "the answer's flags reach the caller");
        assert_eq!(*p.handle.host_status().borrow(), Some(paused));
        assert_eq!(p.sim.record().labels, vec![zpl]);
    }

    #[tokio::test]
    async fn a_job_for_an_unplugged_printer_waits_and_prints_once_after_replug() {
        let mut p = Printing::start(1000);
        connected(&mut p.state).await;
        p.sim.unplug().await;
        let away = disconnected(&mut p.state).await;
        assert!(last_error(&away).contains("hung up"), "{away:?}");

        let first = label(1);
        let ticket = p.handle.print(first.clone()).unwrap();
        // The driver tried to reopen the vanished path with the job waiting.
        wait_state(&mut p.state, "a failed reopen", |s| {
            last_error(s).contains("cannot resolve")
        })
        .await;
        assert_eq!(ticket.state(), JobState::Queued { n_attempts: 0 });
        assert_eq!(p.handle.n_jobs_waiting(), 1);

        p.sim.replug().await.unwrap();
        within("job done after replug", ticket.done())
            .await
            .unwrap();
        assert_eq!(p.sim.record().labels, vec![first.clone()]);

        // The next job lands right after it: nothing was sent twice in between.
        let second = transfer_label(
            LabelMedia::default(),
            &SiteId::new("osaka").unwrap(),
            &SiteId::new("sendai").unwrap(),
            3,
        )
        .unwrap();
        within("second job", p.handle.print(second.clone()).unwrap().done())
            .await
            .unwrap();
        assert_eq!(p.sim.record().labels, vec![first, second]);
    }

    #[tokio::test]
    async fn a_silent_printer_keeps_the_job_queued_until_it_answers_again() {
        let mut p = Printing::start(300);
        connected(&mut p.state).await;
        // Off behind a live adapter: the write "succeeds", nothing answers.
        p.sim.set_mode(SimPrinterMode::Silent);
        let zpl = label(7);
        let ticket = p.handle.print(zpl.clone()).unwrap();

        wait_job(
            &ticket,
            "attempt not confirmed",
            |s| matches!(s, JobState::Queued { n_attempts } if *n_attempts >= 1),
        )
        .await;
        let away = disconnected(&mut p.state).await;
        assert!(last_error(&away).contains("no host status"), "{away:?}");
        // The driver retried: it reopened the same pty and its probe timed out. The job did not
        // go out again, as a job only goes to a printer that has just answered.
        wait_state(&mut p.state, "a failed retry", |s| n_failures(s) >= 2).await;
        assert_eq!(ticket.state(), JobState::Queued { n_attempts: 1 });
        let record = p.sim.record();
        assert!(record.n_bytes_swallowed > 0 && record.labels.is_empty());

        // A power cycle brings it back on a new pty.
        p.sim.replug().await.unwrap();
        within("job done after power cycle", ticket.done())
            .await
            .unwrap();
        assert_eq!(p.sim.record().labels, vec![zpl]);
        assert!(p.state.borrow().is_connected());
    }

    #[tokio::test]
    async fn drivers_stop_on_shutdown_and_fail_the_jobs_left() {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let (stop, shutdown) = watch::channel(false);
        let (printer, handle) = PrinterDriver::new(
            PrinterConfig::new("p", dir.path().join("none")),
            shutdown.clone(),
        );
        let (events, _scans) = mpsc::channel(SCAN_CHANNEL_CAPACITY);
        let (scanner, _) = ScannerDriver::new(
            ScannerConfig::new("s", dir.path().join("none")),
            events,
            shutdown,
        );
        let tasks = [tokio::spawn(printer.run()), tokio::spawn(scanner.run())];
        let ticket = handle.print(label(1)).unwrap();
        stop.send(true).unwrap();
        for task in tasks {
            within("driver stopped", task).await.unwrap();
        }
        assert!(matches!(ticket.state(), JobState::Failed { .. }));
        assert!(handle.print(label(2)).is_err());
    }
}
