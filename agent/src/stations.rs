//! Stations at work: each station's scanner feeds its workflow (`shared::station`), whose
//! effects are recorded durably and whose labels go to the station's printer.
//!
//! Order per scan: decide (with the site database as lookup), record (one transaction with its
//! op), then confirm to the workflow and print. A scan is confirmed (good signal, label queued)
//! only after its record is durable; a failure to record is a bad signal and changes nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use modori_shared::domain::SiteId;
use modori_shared::station::{Outcome, Signal, Station, StationKind};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::devices::printer::PrinterHandle;
use crate::devices::scanner::ScanReceived;
use crate::store::StoreError;
use crate::work::{Actor, LabelData, SiteLookup};
use crate::AgentHandle;
use modori_shared::label::zpl;

/// Scans read and not yet handled, per station. The scanner driver waits when it is full.
pub const SCAN_QUEUE_DEPTH: usize = 32;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    /// Station id, recorded with every op done there (`recv-1`).
    pub id: String,
    /// `receiving`, `grading` or `putaway`.
    pub kind: StationKindName,
    /// Name of the scanner (in `[[scanners]]`) this station reads.
    pub scanner: String,
    /// Name of the printer (in `[[printers]]`) for its labels; none: no labels.
    #[serde(default)]
    pub printer: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StationKindName {
    Receiving,
    Grading,
    Putaway,
}

impl From<StationKindName> for StationKind {
    fn from(k: StationKindName) -> Self {
        match k {
            StationKindName::Receiving => StationKind::Receiving,
            StationKindName::Grading => StationKind::Grading,
            StationKindName::Putaway => StationKind::Putaway,
        }
    }
}

/// Checks the stations against the devices: ids unique, scanners and printers named exist,
/// a scanner serves one station. Returns the key path and problem of the first mistake.
pub fn validate(
    stations: &[StationConfig],
    scanners: &[String],
    printers: &[String],
) -> Result<(), (String, String)> {
    let mut ids = HashSet::new();
    let mut used = HashSet::new();
    for (i, s) in stations.iter().enumerate() {
        if s.id.is_empty() || s.id.len() > modori_shared::wire::payload::OPERATOR_LEN_MAX {
            return Err((format!("stations[{i}].id"), "must be 1..=64 bytes".into()));
        }
        if !ids.insert(s.id.as_str()) {
            return Err((
                format!("stations[{i}].id"),
                format!("duplicate station id {}", s.id),
            ));
        }
        if !scanners.contains(&s.scanner) {
            return Err((
                format!("stations[{i}].scanner"),
                format!("no scanner named {:?}", s.scanner),
            ));
        }
        if !used.insert(s.scanner.as_str()) {
            return Err((
                format!("stations[{i}].scanner"),
                format!("scanner {:?} already serves another station", s.scanner),
            ));
        }
        if let Some(p) = &s.printer {
            if !printers.contains(p) {
                return Err((
                    format!("stations[{i}].printer"),
                    format!("no printer named {p:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// What `ctl status` shows of a station.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StationStatus {
    pub id: String,
    pub kind: String,
    pub operator: Option<String>,
    pub n_scans: u64,
    pub n_bad_scans: u64,
    pub last_signal: Option<String>,
    pub last_message: Option<String>,
    /// Labels of this station queued while their printer could not print them, not printed
    /// yet.
    pub n_labels_waiting: u64,
}

pub struct StationRuntime {
    pub id: String,
    pub station: Arc<Mutex<Station>>,
    pub agent: AgentHandle,
    pub printer: Option<PrinterHandle>,
    pub scans: mpsc::Receiver<ScanReceived>,
    pub status: Arc<Mutex<StationStatus>>,
    pub shutdown: watch::Receiver<bool>,
}

impl StationRuntime {
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                scan = self.scans.recv() => match scan {
                    Some(scan) => {
                        let outcome = match scan.unreadable {
                            Some(why) => bad(why.to_string()),
                            None => self.handle(scan.line).await,
                        };
                        self.show(outcome);
                    }
                    None => break,
                },
                _ = self.shutdown.changed() => break,
            }
        }
    }

    async fn handle(&self, line: String) -> Outcome {
        let station = self.station.clone();
        let decided = self
            .agent
            .db()
            .call(move |c| {
                let mut station = station
                    .lock()
                    .map_err(|_| StoreError::Corrupt("station state poisoned".into()))?;
                let outcome = station.handle_scan(&line, &SiteLookup(c));
                Ok::<_, StoreError>((outcome, station.operator().map(str::to_owned)))
            })
            .await;
        let (outcome, operator) = match decided {
            Ok(d) => d,
            Err(e) => return bad(e.to_string()),
        };
        let Some(effect) = outcome.effect.clone() else {
            return outcome;
        };
        let who = Actor::new(
            operator.unwrap_or_else(|| "unknown".into()),
            self.id.clone(),
        );
        match self.agent.record(effect, who).await {
            Ok(recorded) => {
                if let Ok(mut station) = self.station.lock() {
                    station.confirmed();
                }
                match recorded.label.map(|l| self.print(l)) {
                    Some(Err(why)) => Outcome {
                        message: format!(
                            "{}; label not printed ({why}): scan REPRINT",
                            outcome.message
                        ),
                        ..outcome
                    },
                    Some(Ok(Some(waits))) => Outcome {
                        message: format!("{}; {waits}", outcome.message),
                        ..outcome
                    },
                    _ => outcome,
                }
            }
            Err(e) => match self.station.lock() {
                Ok(mut station) => station.failed(&e.to_string()),
                Err(_) => bad(e.to_string()),
            },
        }
    }

    /// Queues a label; the printer driver prints it once the printer answers. Returns what
    /// the operator must know when it cannot print now (the label waits in the queue), and
    /// counts it in the station's status until it is printed.
    fn print(&self, label: LabelData) -> Result<Option<String>, String> {
        let Some(printer) = &self.printer else {
            return Ok(None);
        };
        let zpl =
            render_label(&label, self.agent.site(), printer.media()).map_err(|e| e.to_string())?;
        let ahead = printer.n_jobs_waiting();
        let ticket = printer.print(zpl).map_err(|e| e.to_string())?;
        let connected = printer.state().borrow().is_connected();
        if connected && ahead == 0 {
            return Ok(None);
        }
        let status = self.status.clone();
        let change = |status: &Mutex<StationStatus>, up: bool| {
            if let Ok(mut s) = status.lock() {
                s.n_labels_waiting = if up {
                    s.n_labels_waiting + 1
                } else {
                    s.n_labels_waiting.saturating_sub(1)
                };
            }
        };
        change(&status, true);
        tokio::spawn(async move {
            // Done, or failed at shutdown: either way it no longer waits.
            let _ = ticket.done().await;
            change(&status, false);
        });
        Ok(Some(if connected {
            format!("label waits behind {ahead} on printer {}", printer.name())
        } else {
            format!(
                "label waits: printer {} is not connected; it prints when the printer is back",
                printer.name()
            )
        }))
    }

    fn show(&self, outcome: Outcome) {
        let signal = match outcome.signal {
            Signal::Good => "good",
            Signal::Bad => "bad",
        };
        match outcome.signal {
            Signal::Good => {
                info!(station = %self.id, signal, message = %outcome.message, "scan handled")
            }
            Signal::Bad => {
                warn!(station = %self.id, signal, message = %outcome.message, "scan refused")
            }
        }
        let operator = self
            .station
            .lock()
            .ok()
            .and_then(|s| s.operator().map(str::to_owned));
        if let Ok(mut status) = self.status.lock() {
            status.n_scans += 1;
            if outcome.signal == Signal::Bad {
                status.n_bad_scans += 1;
            }
            status.operator = operator;
            status.last_signal = Some(signal.to_owned());
            status.last_message = Some(outcome.message);
        }
    }
}

/// The ZPL of a label this site prints, laid out for the printer's media.
pub fn render_label(
    label: &LabelData,
    site: &SiteId,
    media: zpl::LabelMedia,
) -> Result<String, zpl::ZplError> {
    match label {
        LabelData::Unit { lpn, sku, grade } => zpl::lpn_label(media, lpn, sku, *grade, site),
        LabelData::Disposition {
            lpn,
            disposition,
            zone,
        } => zpl::disposition_label(media, lpn, *disposition, zone, site),
        LabelData::Transfer { lpn, sku, to } => zpl::unit_transfer_label(media, lpn, sku, site, to),
        LabelData::Exchange { lpn, sku, rma } => zpl::exchange_label(media, lpn, sku, rma, site),
        LabelData::ShipBack { lpn, sku, rma } => zpl::ship_back_label(media, lpn, sku, rma, site),
    }
}

fn bad(message: impl Into<String>) -> Outcome {
    Outcome {
        effect: None,
        signal: Signal::Bad,
        message: message.into(),
    }
}

/// The printers by name, for the stations and `ctl reprint`.
pub type Printers = Arc<HashMap<String, PrinterHandle>>;
