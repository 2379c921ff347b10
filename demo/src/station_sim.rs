//! A simulated station crew for the demo: three scanners and a label printer on pseudo-terminals,
//! driven through the same serial drivers and workflow as real ones. The crew scans what a
//! person would: a badge, each expected parcel's RMA label, its products, DONE; then at the
//! grading station each received unit's LPN, a grade card and a disposition card; then at the
//! putaway station each disposed unit's LPN and a bin label, or SHIP for what leaves the site.
//! A unit in quarantine is left alone until the centre matches it; one still unmatched after
//! [`QUARANTINE_RELEASE_AFTER`] is released by the crew's supervisor, with the reason.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use modori_shared::barcode::{badge_encode, bin_encode, command_encode, StationCommand};
use modori_shared::domain::{Departure, Disposition, Grade, Lpn, Sku, UnitState};
use modori_shared::station::Effect;
use rand::Rng;
use thiserror::Error;

use crate::pty::{SimError, SimPrinter, SimScanner};
use modori_agent::config::AgentConfig;
use modori_agent::devices::printer::PrinterConfig;
use modori_agent::devices::scanner::{LineTerminator, ScannerConfig};
use modori_agent::stations::{StationConfig, StationKindName};
use modori_agent::work::Actor;
use modori_agent::{work, AgentError, AgentHandle};

/// Units the crew handles per step at most, per stage.
pub const UNITS_PER_STEP_MAX: usize = 20;
/// How long the crew waits for its station to handle one scan.
pub const SCAN_HANDLED_TIMEOUT: Duration = Duration::from_secs(10);
const RECEIVING: usize = 0;
const GRADING: usize = 1;
const PUTAWAY: usize = 2;
/// Bins of each zone the crew spreads units over.
const BINS_PER_ZONE: u32 = 4;
/// How long a quarantined unit waits for the centre's match before the crew's supervisor
/// releases it (the demo runs for minutes; a real site waits days).
pub const QUARANTINE_RELEASE_AFTER: Duration = Duration::from_secs(120);
/// The badge of the crew's supervisor, who releases units from quarantine.
pub const SUPERVISOR: &str = "B-9000";

#[derive(Debug, Error)]
pub enum CrewError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Store(#[from] modori_agent::store::StoreError),
    #[error("simulated device: {0}")]
    Device(#[from] SimError),
    #[error("station did not handle a scan within {SCAN_HANDLED_TIMEOUT:?}")]
    Timeout,
    #[error("badge: {0}")]
    Badge(#[from] modori_shared::barcode::BarcodeError),
}

/// The simulated devices of one site, plugged in under `dir`.
pub struct SimDevices {
    pub receiving: SimScanner,
    pub grading: SimScanner,
    pub putaway: SimScanner,
    pub printer: SimPrinter,
}

impl SimDevices {
    pub fn plug_in(dir: &Path) -> Result<Self, SimError> {
        std::fs::create_dir_all(dir)?;
        for name in ["scan-recv", "scan-grade", "scan-put", "zebra"] {
            // Links left by a previous run point at ptys that no longer exist.
            let _ = std::fs::remove_file(dir.join(name));
        }
        Ok(Self {
            receiving: SimScanner::plug_in(dir.join("scan-recv"), LineTerminator::Cr)?,
            grading: SimScanner::plug_in(dir.join("scan-grade"), LineTerminator::Cr)?,
            putaway: SimScanner::plug_in(dir.join("scan-put"), LineTerminator::Cr)?,
            printer: SimPrinter::plug_in(dir.join("zebra"))?,
        })
    }

    /// Adds these devices and a receiving, a grading and a putaway station to `config`.
    pub fn configure(&self, config: &mut AgentConfig) {
        config.scanners = vec![
            ScannerConfig::new("scan-recv", self.receiving.path()),
            ScannerConfig::new("scan-grade", self.grading.path()),
            ScannerConfig::new("scan-put", self.putaway.path()),
        ];
        config.printers = vec![PrinterConfig::new("zebra", self.printer.path())];
        config.stations = vec![
            StationConfig {
                id: "recv-1".into(),
                kind: StationKindName::Receiving,
                scanner: "scan-recv".into(),
                printer: Some("zebra".into()),
            },
            StationConfig {
                id: "grade-1".into(),
                kind: StationKindName::Grading,
                scanner: "scan-grade".into(),
                printer: Some("zebra".into()),
            },
            StationConfig {
                id: "put-1".into(),
                kind: StationKindName::Putaway,
                scanner: "scan-put".into(),
                printer: Some("zebra".into()),
            },
        ];
    }
}

/// What one step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    pub n_received: usize,
    pub n_graded: usize,
    /// Dispositions executed: units put away or shipped.
    pub n_executed: usize,
    /// Units released from quarantine by the supervisor.
    pub n_released: usize,
}

pub struct Crew {
    pub agent: AgentHandle,
    pub devices: SimDevices,
    /// GTIN to scan for each SKU (the catalogue the coordinator sent).
    pub gtins: HashMap<Sku, String>,
    pub badge: String,
    /// How long a quarantined unit waits for a match before the supervisor releases it
    /// ([`QUARANTINE_RELEASE_AFTER`]).
    pub quarantine_release_after: Duration,
}

impl Crew {
    pub fn new(
        agent: AgentHandle,
        devices: SimDevices,
        gtins: HashMap<Sku, String>,
        badge_number: &str,
    ) -> Result<Self, CrewError> {
        Ok(Self {
            agent,
            devices,
            gtins,
            badge: badge_encode(badge_number)?,
            quarantine_release_after: QUARANTINE_RELEASE_AFTER,
        })
    }

    /// Scans `line` at station `index` and waits until the station has handled it.
    async fn scan(&self, index: usize, line: &str) -> Result<(), CrewError> {
        let n_scans =
            |s: modori_agent::AgentStatus| s.stations.get(index).map_or(0, |st| st.n_scans);
        let before = n_scans(self.agent.status().await?);
        let scanner = match index {
            RECEIVING => &self.devices.receiving,
            GRADING => &self.devices.grading,
            _ => &self.devices.putaway,
        };
        scanner.scan(line).await?;
        let deadline = tokio::time::Instant::now() + SCAN_HANDLED_TIMEOUT;
        while n_scans(self.agent.status().await?) <= before {
            if tokio::time::Instant::now() >= deadline {
                return Err(CrewError::Timeout);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// One round of work: receive the parcels waiting, grade and dispose what was received.
    pub async fn step(&self, rng: &mut impl Rng) -> Result<StepReport, CrewError> {
        let mut report = StepReport::default();
        let parcels = self
            .agent
            .db()
            .call(|c| work::pending_expected_returns(c, UNITS_PER_STEP_MAX))
            .await?;
        if !parcels.is_empty() {
            self.scan(RECEIVING, &self.badge).await?;
        }
        for parcel in parcels {
            self.scan(RECEIVING, parcel.rma.as_str()).await?;
            for sku in parcel.skus {
                // A product the catalogue does not know is put aside, as staff would.
                if let Some(gtin) = self.gtins.get(&sku) {
                    self.scan(RECEIVING, gtin).await?;
                    report.n_received += 1;
                }
            }
            self.scan(RECEIVING, &command_encode(StationCommand::Done))
                .await?;
        }
        self.release_stale(&mut report).await?;
        let received = self
            .agent
            .db()
            .call(|c| work::units_in_state(c, "received", UNITS_PER_STEP_MAX))
            .await?;
        if !received.is_empty() {
            self.scan(GRADING, &self.badge).await?;
        }
        for (lpn, _) in received {
            let grade = [
                Grade::A,
                Grade::A,
                Grade::B,
                Grade::B,
                Grade::C,
                Grade::D,
                Grade::X,
            ][rng.random_range(0..7)];
            self.scan(GRADING, lpn.as_str()).await?;
            self.scan(GRADING, &command_encode(StationCommand::Grade(grade)))
                .await?;
            let disposition = match UnitState::Graded(grade) {
                UnitState::Graded(Grade::A) => Disposition::Restock,
                UnitState::Graded(Grade::B) => Disposition::Resale,
                UnitState::Graded(Grade::C) => Disposition::Refurbish,
                UnitState::Graded(Grade::D) => Disposition::Recycle,
                _ => Disposition::Dispose,
            };
            self.scan(
                GRADING,
                &command_encode(StationCommand::Dispose(disposition)),
            )
            .await?;
            report.n_graded += 1;
        }
        report.n_executed = self.execute(rng).await?;
        Ok(report)
    }

    /// Releases the quarantined units the centre did not match in time, as a supervisor would.
    async fn release_stale(&self, report: &mut StepReport) -> Result<(), CrewError> {
        let waiting = self.agent.db().call(work::quarantine).await?;
        let now_ms = modori_runtime::clock::now_ms();
        let after_ms = i64::try_from(self.quarantine_release_after.as_millis()).unwrap_or(i64::MAX);
        for unit in waiting
            .into_iter()
            .filter(|u| now_ms.saturating_sub(u.received_ms) >= after_ms)
            .take(UNITS_PER_STEP_MAX)
        {
            let effect = Effect::ReleaseQuarantined {
                lpn: Lpn::new(unit.lpn).map_err(modori_agent::store::StoreError::from)?,
                reason: format!(
                    "not matched within {} s; handled as a unit of no return",
                    self.quarantine_release_after.as_secs()
                ),
            };
            self.agent
                .record(effect, Actor::new(SUPERVISOR, modori_agent::CTL_STATION))
                .await?;
            report.n_released += 1;
        }
        Ok(())
    }

    /// Puts disposed units away into a bin of their zone, or ships what leaves the site.
    async fn execute(&self, rng: &mut impl Rng) -> Result<usize, CrewError> {
        let disposed = self
            .agent
            .db()
            .call(|c| work::units_in_state(c, "disposed", UNITS_PER_STEP_MAX))
            .await?;
        if !disposed.is_empty() {
            self.scan(PUTAWAY, &self.badge).await?;
        }
        let mut n = 0;
        for (lpn, state) in disposed {
            let Some(disposition) = state.disposition() else {
                continue;
            };
            self.scan(PUTAWAY, lpn.as_str()).await?;
            let next = match Departure::for_disposition(disposition) {
                Some(_) => command_encode(StationCommand::Ship),
                None => {
                    let zone = work::zone_for(disposition).chars().next().unwrap_or('Z');
                    bin_encode(&format!("{zone}{:02}", rng.random_range(1..=BINS_PER_ZONE)))?
                }
            };
            self.scan(PUTAWAY, &next).await?;
            n += 1;
        }
        Ok(n)
    }
}
