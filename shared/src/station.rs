//! A station's workflow: what each scan means, given what was scanned before.
//!
//! Staff hold a scanner, not a keyboard, so every decision is a scan: a badge signs in, a
//! parcel label opens a parcel, a product barcode receives a unit, a command card grades or
//! disposes of one. This machine turns a scan into at most one [`Effect`] (something to record,
//! and a label to print) plus a good or bad signal and a line for the station display.
//!
//! It does no IO: what it must know (expected returns, the catalogue, a unit's state) comes
//! through [`Lookup`], and it changes its own state for a recorded effect only when the driver
//! says the record is durable ([`Station::confirmed`]). A scan that fails to record changes
//! nothing, so the display never claims what the database does not hold.

use std::collections::BTreeMap;

use crate::barcode::{self, Scan, StationCommand};
use crate::domain::{
    Bin, DefectCode, Departure, Disposition, Grade, Lpn, RmaId, SiteId, Sku, ToteId, UnitState,
};

/// Defects recorded with one grade at most (no more than the wire carries:
/// `wire::payload::DEFECTS_MAX` checks it).
pub const DEFECTS_PER_UNIT_MAX: usize = 16;

/// What a station is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StationKind {
    /// Parcels are opened and their units received and labelled.
    Receiving,
    /// Units are inspected, graded and given a disposition.
    Grading,
    /// Dispositions are executed: units go into bins or leave the site (transfer, vendor,
    /// recycler, disposal, an exchange's replacement).
    Putaway,
}

/// How a received unit relates to its parcel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    /// An expected line of the parcel's return.
    Matched,
    /// An expected SKU, beyond the quantity expected.
    Over,
    /// A SKU the return does not list.
    WrongItem,
    /// A parcel that matches no return: the unit waits in quarantine to be matched.
    Unidentified,
    /// A final-sale product, which is not returnable: set aside in quarantine for the centre.
    FinalSale,
}

impl ReceiptKind {
    /// Whether a unit received this way waits in quarantine until it is matched to a return or
    /// released by a supervisor. An over unit waits too when its parcel was already closed:
    /// `parcel_closed` says so.
    pub fn holds_in_quarantine(self, parcel_closed: bool) -> bool {
        match self {
            Self::Unidentified | Self::FinalSale | Self::WrongItem => true,
            Self::Over => parcel_closed,
            Self::Matched => false,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::Over => "over",
            Self::WrongItem => "wrong_item",
            Self::Unidentified => "unidentified",
            Self::FinalSale => "final_sale",
        }
    }
}

/// An expected return as the site holds it: its lines and how many of each already arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedParcel {
    pub rma: RmaId,
    /// SKU → (expected, already received).
    pub lines: BTreeMap<Sku, (u32, u32)>,
    /// Its parcel was closed before (opened again to receive a straggler).
    pub closed: bool,
}

/// The one definition of a unit "waiting to be matched", as a condition on a `units` table
/// with `quarantine` and `state` columns (the site's and the centre's alike): held in
/// quarantine, neither voided nor gone. The API, `ctl quarantine`, the dashboard's count and
/// its alert all select with it, so they always name the same set.
pub const WAITING_TO_BE_MATCHED_SQL: &str =
    "(quarantine = 1 AND state != 'voided' AND state NOT LIKE 'departed:%')";

/// Why the station and `ctl` refuse to grade, dispose, put away or ship a quarantined unit.
pub fn quarantine_refusal(lpn: &Lpn) -> String {
    format!(
        "{lpn} is in quarantine: it waits to be matched to its return or released by a supervisor"
    )
}

/// Whether grade A is refused to a unit: it needs a passed function test, so a failed test
/// refuses it, and so does no test of a product that needs one (`needs_testing`,
/// electronics). The station and the site's store both check it, by this one rule.
pub fn grade_a_refused(tested: Option<bool>, needs_testing: bool) -> bool {
    match tested {
        Some(passed) => !passed,
        None => needs_testing,
    }
}

/// A unit as the station needs to see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitView {
    pub lpn: Lpn,
    pub sku: Sku,
    pub state: UnitState,
    /// The result of its function test, if it had one.
    pub tested: Option<bool>,
    /// Held in quarantine: nothing is done with it until it is matched or released.
    pub quarantined: bool,
}

/// What the catalogue says of a product that changes how its units are handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProductFlags {
    /// Not returnable: a unit that arrives anyway waits in quarantine for the centre.
    pub final_sale: bool,
    /// Must pass a function test before it can be graded A.
    pub needs_testing: bool,
}

/// The site's knowledge, asked for by the station (backed by the site database).
pub trait Lookup {
    fn expected_return(&self, rma: &RmaId) -> Option<ExpectedParcel>;
    /// The expected return whose RMA or carrier tracking number is exactly `text`, whatever
    /// its format (a merchant's own RMA need not look like ours).
    fn return_for_reference(&self, text: &str) -> Option<RmaId>;
    /// The SKU a GTIN (14 digits) stands for in the catalogue.
    fn sku_for_gtin(&self, gtin14: &str) -> Option<Sku>;
    fn unit(&self, lpn: &Lpn) -> Option<UnitView>;
    /// The disposition the site's rules (sent by the coordinator) propose for a unit of `sku`
    /// graded `grade`.
    fn proposed_disposition(&self, sku: &Sku, grade: Grade) -> Option<Disposition>;
    /// The catalogue's flags for `sku` (all false for a product it does not list).
    fn product_flags(&self, sku: &Sku) -> ProductFlags;
    /// The site a transfer order sends this unit to, if there is one.
    fn transfer_order(&self, lpn: &Lpn) -> Option<SiteId>;
    /// The SKU an exchange asks this site to ship, while it is not shipped yet.
    fn exchange_order(&self, rma: &RmaId) -> Option<Sku>;
    /// The return whose customer this unit goes back to, while it is not shipped yet.
    fn ship_back(&self, lpn: &Lpn) -> Option<RmaId>;
    /// The site a unit on its way here comes from, if one is expected.
    fn expected_transfer(&self, lpn: &Lpn) -> Option<SiteId>;
    /// The returns a tote of store drop-offs holds, while it is expected here.
    fn expected_tote(&self, tote: &ToteId) -> Option<Vec<ExpectedParcel>>;
}

/// Something to record durably (and its label to print), decided by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Receive one unit: assign its LPN and print its label.
    Receive {
        rma: Option<RmaId>,
        sku: Sku,
        receipt: ReceiptKind,
        /// What was scanned to open an unidentified parcel (a tracking number), if anything.
        parcel_ref: Option<String>,
    },
    /// The parcel is finished; lines still missing are short.
    CloseParcel {
        rma: RmaId,
        shortages: Vec<(Sku, u32)>,
    },
    /// A tote is finished: each of its returns closed with what it is short of.
    CloseTote {
        tote: ToteId,
        closings: Vec<(RmaId, Vec<(Sku, u32)>)>,
    },
    /// Grade a unit (again, as a correction, if it was graded), with the defects found;
    /// prints its label with the grade.
    Grade {
        lpn: Lpn,
        grade: Grade,
        defects: Vec<DefectCode>,
    },
    /// Set a graded unit's disposition; prints its disposition label.
    Dispose { lpn: Lpn, disposition: Disposition },
    /// Take back a disposition set in error; the unit is graded again.
    UndoDisposition { lpn: Lpn },
    /// Void a receipt made in error.
    VoidReceipt { lpn: Lpn },
    /// Print a unit's label again (nothing is recorded).
    Reprint { lpn: Lpn },
    /// Record a function test's result.
    Test { lpn: Lpn, passed: bool },
    /// Put a disposed unit into a bin (or move it to another).
    PutAway { lpn: Lpn, bin: Bin },
    /// A disposed unit leaves the site; a transfer prints its transfer label. `tracking` is
    /// the carrier's number when a supervisor records one.
    Depart {
        lpn: Lpn,
        departure: Departure,
        tracking: Option<String>,
    },
    /// A unit transferred from another site arrived.
    ReceiveTransfer { lpn: Lpn, from: SiteId },
    /// A supervisor matches a quarantined unit to its return.
    MatchQuarantined { lpn: Lpn, rma: RmaId },
    /// A supervisor (the operator recording it) lets a quarantined unit go on unmatched, for
    /// `reason`.
    ReleaseQuarantined { lpn: Lpn, reason: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Good,
    Bad,
}

/// The answer to one scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub effect: Option<Effect>,
    pub signal: Signal,
    /// One line for the station display.
    pub message: String,
}

impl Outcome {
    fn good(message: impl Into<String>) -> Self {
        Self {
            effect: None,
            signal: Signal::Good,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self {
            effect: None,
            signal: Signal::Bad,
            message: message.into(),
        }
    }

    fn effect(effect: Effect, message: impl Into<String>) -> Self {
        Self {
            effect: Some(effect),
            signal: Signal::Good,
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Parcel {
    Expected(ExpectedParcel),
    Unidentified {
        reference: Option<String>,
    },
    /// A tote of store drop-offs: its returns received together.
    Tote {
        tote: ToteId,
        parcels: Vec<ExpectedParcel>,
    },
}

/// Shortages of a parcel: lines not (fully) received.
fn shortages_of(p: &ExpectedParcel) -> Vec<(Sku, u32)> {
    p.lines
        .iter()
        .filter(|(_, (qty, got))| got < qty)
        .map(|(sku, (qty, got))| (sku.clone(), qty - got))
        .collect()
}

/// How `unit` leaves when it is shipped without naming where: back to its customer when a
/// ship-back is ordered (that supersedes everything else), to the site a transfer order
/// names, else the way its disposition is executed (`None`: it stays in a bin).
pub fn way_out(lookup: &impl Lookup, unit: &UnitView) -> Option<Departure> {
    if let Some(rma) = lookup.ship_back(&unit.lpn) {
        return Some(Departure::ToCustomer { rma });
    }
    match lookup.transfer_order(&unit.lpn) {
        Some(to) => Some(Departure::Transfer { to }),
        None => unit
            .state
            .disposition()
            .and_then(Departure::for_disposition),
    }
}

/// A card (or an exchange's RMA) that needs a unit next.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Armed {
    Void,
    Reprint,
    /// Ship a unit of `sku` from stock as the replacement of `rma`.
    Exchange {
        rma: RmaId,
        sku: Sku,
    },
}

#[derive(Debug)]
pub struct Station {
    kind: StationKind,
    operator: Option<String>,
    parcel: Option<Parcel>,
    n_received_in_parcel: u32,
    selected: Option<UnitView>,
    /// Defects scanned for the selected unit, recorded with its grade.
    defects: Vec<DefectCode>,
    /// What the rules propose for the selected unit once graded; DONE accepts it.
    proposal: Option<Disposition>,
    armed: Option<Armed>,
    /// The effect handed to the driver and not yet confirmed or failed.
    pending: Option<Effect>,
}

impl Station {
    pub fn new(kind: StationKind) -> Self {
        Self {
            kind,
            operator: None,
            parcel: None,
            n_received_in_parcel: 0,
            selected: None,
            defects: Vec::new(),
            proposal: None,
            armed: None,
            pending: None,
        }
    }

    pub fn kind(&self) -> StationKind {
        self.kind
    }

    /// The badge of the person signed in.
    pub fn operator(&self) -> Option<&str> {
        self.operator.as_deref()
    }

    /// Handles one scanned line.
    pub fn handle_scan(&mut self, line: &str, lookup: &impl Lookup) -> Outcome {
        assert!(
            self.pending.is_none(),
            "scan handled while an effect awaits confirmation"
        );
        let options = match self.kind {
            StationKind::Receiving => barcode::ParseOptions::receiving_parcels(),
            StationKind::Grading | StationKind::Putaway => barcode::ParseOptions::default(),
        };
        if let Some(rma) = self.known_parcel(line, lookup) {
            return self.open_parcel(&rma, lookup);
        }
        let scan = match barcode::parse_with(line, options) {
            Ok(scan) => scan,
            Err(e) => return Outcome::bad(e.to_string()),
        };
        if let Scan::Badge(badge) = &scan {
            self.operator = Some(format!("B-{}", badge.number()));
            return Outcome::good(format!("signed in: B-{}", badge.number()));
        }
        if self.operator.is_none() {
            return Outcome::bad("scan your badge first");
        }
        let outcome = match self.kind {
            StationKind::Receiving => self.receiving(scan, lookup),
            StationKind::Grading => self.grading(scan, lookup),
            StationKind::Putaway => self.putaway(scan, lookup),
        };
        self.pending.clone_from(&outcome.effect);
        outcome
    }

    /// At a receiving station with nothing open, a scan that is exactly the RMA or tracking
    /// number of an expected return opens it, before any format is guessed: merchants issue
    /// RMAs of their own shape, and carriers' numbers outnumber the formats we check.
    fn known_parcel(&self, line: &str, lookup: &impl Lookup) -> Option<RmaId> {
        if self.kind != StationKind::Receiving
            || self.operator.is_none()
            || self.parcel.is_some()
            || self.armed.is_some()
        {
            return None;
        }
        let text = line.trim_end_matches(['\r', '\n']);
        // Only what could be a stored RMA or reference is looked up.
        RmaId::new(text).ok()?;
        lookup.return_for_reference(text)
    }

    /// The driver made the pending effect durable (and printed its label).
    pub fn confirmed(&mut self) {
        let Some(effect) = self.pending.take() else {
            return;
        };
        match effect {
            Effect::Receive { sku, rma, .. } => {
                self.n_received_in_parcel += 1;
                let parcel = match &mut self.parcel {
                    Some(Parcel::Expected(p)) => Some(p),
                    Some(Parcel::Tote { parcels, .. }) => {
                        parcels.iter_mut().find(|p| Some(&p.rma) == rma.as_ref())
                    }
                    _ => None,
                };
                if let Some(line) = parcel.and_then(|p| p.lines.get_mut(&sku)) {
                    line.1 += 1;
                }
            }
            Effect::CloseParcel { .. } | Effect::CloseTote { .. } => {
                self.parcel = None;
                self.n_received_in_parcel = 0;
            }
            Effect::Grade { grade, .. } => {
                if let Some(unit) = &mut self.selected {
                    unit.state = UnitState::Graded(grade);
                }
                self.defects.clear();
            }
            Effect::Dispose { .. } | Effect::VoidReceipt { .. } => {
                self.selected = None;
                self.proposal = None;
            }
            Effect::UndoDisposition { .. }
            | Effect::PutAway { .. }
            | Effect::Depart { .. }
            | Effect::ReceiveTransfer { .. } => {
                self.selected = None;
            }
            Effect::Test { passed, .. } => {
                if let Some(unit) = &mut self.selected {
                    unit.tested = Some(passed);
                }
                if !passed && !self.defects.contains(&DefectCode::NotWorking) {
                    self.defects.push(DefectCode::NotWorking);
                }
            }
            Effect::Reprint { .. }
            | Effect::MatchQuarantined { .. }
            | Effect::ReleaseQuarantined { .. } => {}
        }
    }

    /// The driver could not record the pending effect: nothing changes.
    pub fn failed(&mut self, why: &str) -> Outcome {
        self.pending = None;
        Outcome::bad(format!("not recorded: {why}"))
    }

    fn armed_unit(&mut self, armed: Armed, lpn: &Lpn, lookup: &impl Lookup) -> Outcome {
        let Some(unit) = lookup.unit(lpn) else {
            return Outcome::bad(format!("{lpn} is not a unit of this site"));
        };
        match armed {
            Armed::Reprint => Outcome::effect(
                Effect::Reprint { lpn: lpn.clone() },
                format!("reprinting {lpn}"),
            ),
            Armed::Void if unit.state == UnitState::Voided => {
                Outcome::bad(format!("{lpn} is already voided"))
            }
            Armed::Void => Outcome::effect(
                Effect::VoidReceipt { lpn: lpn.clone() },
                format!("receipt of {lpn} voided"),
            ),
            Armed::Exchange { .. } if unit.quarantined => Outcome::bad(quarantine_refusal(lpn)),
            Armed::Exchange { rma, sku } => {
                if unit.sku != sku {
                    return Outcome::bad(format!(
                        "{lpn} is {}, the exchange {rma} asks for {sku}",
                        unit.sku
                    ));
                }
                let departure = Departure::Exchange { rma: rma.clone() };
                match unit.state.depart(lpn, &departure) {
                    Ok(_) => Outcome::effect(
                        Effect::Depart {
                            lpn: lpn.clone(),
                            departure,
                            tracking: None,
                        },
                        format!("{lpn} ships as the replacement for {rma}"),
                    ),
                    Err(e) => Outcome::bad(e.to_string()),
                }
            }
        }
    }

    fn receiving(&mut self, scan: Scan, lookup: &impl Lookup) -> Outcome {
        if let Some(outcome) = self.armed_scan(&scan, lookup) {
            return outcome;
        }
        match scan {
            Scan::Command(StationCommand::Void) => self.arm(Armed::Void),
            Scan::Command(StationCommand::Reprint) => self.arm(Armed::Reprint),
            Scan::Rma(label) => self.open_parcel(label.rma(), lookup),
            Scan::Tote(label) => self.open_tote(label.tote(), lookup),
            Scan::Tracking(t) => self.open_unidentified(Some(t.as_str().to_owned())),
            Scan::Command(StationCommand::Unidentified) => self.open_unidentified(None),
            Scan::Product(gtin) => self.receive(gtin.gtin14(), lookup),
            Scan::Gs1(message) => match message.gtin() {
                Some(gtin) => self.receive(gtin.gtin14(), lookup),
                None => Outcome::bad("this GS1 label carries no product (01)"),
            },
            Scan::Command(StationCommand::Done) => self.close_parcel(),
            Scan::Command(StationCommand::Cancel) => self.cancel_parcel(),
            Scan::Lpn(label) => match lookup.expected_transfer(label.lpn()) {
                Some(from) if self.parcel.is_none() => Outcome::effect(
                    Effect::ReceiveTransfer {
                        lpn: label.lpn().clone(),
                        from: from.clone(),
                    },
                    format!("{} arrived from {from}", label.lpn()),
                ),
                Some(_) => Outcome::bad("a parcel is open: scan DONE first"),
                None => Outcome::bad(format!(
                    "{} is already received; grade it at a grading station",
                    label.lpn()
                )),
            },
            Scan::Bin(_) => Outcome::bad("bins are scanned at a putaway station"),
            Scan::Command(_) => Outcome::bad("that card is for a grading station"),
            Scan::Badge(_) => unreachable!("badges are handled before the station kind"),
        }
    }

    /// A scan while a card waits for its unit: the unit, CANCEL, or a reminder. `None` when
    /// nothing is armed.
    fn armed_scan(&mut self, scan: &Scan, lookup: &impl Lookup) -> Option<Outcome> {
        let armed = self.armed.clone()?;
        Some(match scan {
            Scan::Lpn(label) => {
                self.armed = None;
                self.armed_unit(armed, label.lpn(), lookup)
            }
            Scan::Command(StationCommand::Cancel) => {
                self.armed = None;
                Outcome::good("cancelled")
            }
            _ => Outcome::bad("scan the unit's LPN label (or CANCEL)"),
        })
    }

    fn arm(&mut self, armed: Armed) -> Outcome {
        let message = match &armed {
            Armed::Void => "VOID: scan the unit's LPN".to_owned(),
            Armed::Reprint => "REPRINT: scan the unit's LPN".to_owned(),
            Armed::Exchange { rma, sku } => {
                format!("exchange {rma}: scan the LPN of a {sku} from stock")
            }
        };
        self.armed = Some(armed);
        Outcome::good(message)
    }

    fn open_parcel(&mut self, rma: &RmaId, lookup: &impl Lookup) -> Outcome {
        if self.parcel.is_some() {
            return Outcome::bad("a parcel is open: scan DONE first");
        }
        match lookup.expected_return(rma) {
            Some(expected) => {
                let lines: Vec<String> = expected
                    .lines
                    .iter()
                    .map(|(sku, (qty, got))| format!("{sku} {got}/{qty}"))
                    .collect();
                let message = if expected.closed {
                    format!(
                        "{rma} (closed before; more units go to quarantine): {}",
                        lines.join(", ")
                    )
                } else {
                    format!("{rma}: {}", lines.join(", "))
                };
                self.parcel = Some(Parcel::Expected(expected));
                self.n_received_in_parcel = 0;
                Outcome::good(message)
            }
            // A return routed elsewhere or never registered: its units wait in quarantine,
            // with the RMA kept as the reference to match them by.
            None => self.open_unidentified(Some(rma.to_string())),
        }
    }

    fn open_tote(&mut self, tote: &ToteId, lookup: &impl Lookup) -> Outcome {
        if self.parcel.is_some() {
            return Outcome::bad("a parcel is open: scan DONE first");
        }
        match lookup.expected_tote(tote) {
            Some(parcels) if !parcels.is_empty() => {
                let units: u32 = parcels
                    .iter()
                    .flat_map(|p| p.lines.values())
                    .map(|(qty, got)| qty.saturating_sub(*got))
                    .sum();
                let message = format!(
                    "{tote}: {} returns, {units} units expected; scan each product, then DONE",
                    parcels.len()
                );
                self.parcel = Some(Parcel::Tote {
                    tote: tote.clone(),
                    parcels,
                });
                self.n_received_in_parcel = 0;
                Outcome::good(message)
            }
            _ => Outcome::bad(format!(
                "{tote} is not expected here: put it aside for a supervisor"
            )),
        }
    }

    fn open_unidentified(&mut self, reference: Option<String>) -> Outcome {
        if self.parcel.is_some() {
            return Outcome::bad("a parcel is open: scan DONE first");
        }
        let message = match &reference {
            Some(r) => format!("unidentified parcel {r}: units go to quarantine"),
            None => "unidentified parcel: units go to quarantine".to_owned(),
        };
        self.parcel = Some(Parcel::Unidentified { reference });
        self.n_received_in_parcel = 0;
        Outcome::good(message)
    }

    fn receive(&mut self, gtin14: &str, lookup: &impl Lookup) -> Outcome {
        let Some(parcel) = &self.parcel else {
            return Outcome::bad("scan the parcel's RMA or tracking label first");
        };
        let Some(sku) = lookup.sku_for_gtin(gtin14) else {
            return Outcome::bad(format!(
                "product {gtin14} is not in the catalogue; put it aside for a supervisor"
            ));
        };
        let final_sale = lookup.product_flags(&sku).final_sale;
        let closed = matches!(parcel, Parcel::Expected(p) if p.closed);
        let (rma, receipt, parcel_ref) = match parcel {
            Parcel::Expected(p) if final_sale => {
                (Some(p.rma.clone()), ReceiptKind::FinalSale, None)
            }
            Parcel::Expected(p) => {
                let receipt = match p.lines.get(&sku) {
                    Some((qty, got)) if got < qty => ReceiptKind::Matched,
                    Some(_) => ReceiptKind::Over,
                    None => ReceiptKind::WrongItem,
                };
                (Some(p.rma.clone()), receipt, None)
            }
            Parcel::Tote { parcels, .. } => {
                // The first return of the tote still missing this SKU takes it; then one that
                // lists it (over); else it is a wrong item of the tote's first return.
                let missing = parcels
                    .iter()
                    .find(|p| p.lines.get(&sku).is_some_and(|(qty, got)| got < qty));
                let listing = parcels.iter().find(|p| p.lines.contains_key(&sku));
                let (parcel, receipt) = match (missing, listing) {
                    _ if final_sale => (parcels.first(), ReceiptKind::FinalSale),
                    (Some(p), _) => (Some(p), ReceiptKind::Matched),
                    (None, Some(p)) => (Some(p), ReceiptKind::Over),
                    (None, None) => (parcels.first(), ReceiptKind::WrongItem),
                };
                (parcel.map(|p| p.rma.clone()), receipt, None)
            }
            Parcel::Unidentified { reference } if final_sale => {
                (None, ReceiptKind::FinalSale, reference.clone())
            }
            Parcel::Unidentified { reference } => {
                (None, ReceiptKind::Unidentified, reference.clone())
            }
        };
        let message = match receipt {
            ReceiptKind::Matched => format!("received {sku}"),
            ReceiptKind::Over if closed => {
                format!("received {sku}: more than expected after the parcel closed; quarantine")
            }
            ReceiptKind::Over => format!("received {sku}: more than expected"),
            ReceiptKind::WrongItem => {
                format!("received {sku}: not on this return; set aside in quarantine")
            }
            ReceiptKind::Unidentified => format!("received {sku} into quarantine"),
            ReceiptKind::FinalSale => {
                format!("received {sku}: FINAL SALE, not returnable; set aside in quarantine")
            }
        };
        Outcome::effect(
            Effect::Receive {
                rma,
                sku,
                receipt,
                parcel_ref,
            },
            message,
        )
    }

    fn close_parcel(&mut self) -> Outcome {
        match &self.parcel {
            None => Outcome::bad("no parcel is open"),
            Some(Parcel::Unidentified { .. }) => {
                let n = self.n_received_in_parcel;
                self.parcel = None;
                self.n_received_in_parcel = 0;
                Outcome::good(format!("parcel closed: {n} units in quarantine"))
            }
            Some(Parcel::Tote { tote, parcels }) => {
                let closings: Vec<(RmaId, Vec<(Sku, u32)>)> = parcels
                    .iter()
                    .map(|p| (p.rma.clone(), shortages_of(p)))
                    .collect();
                let short: usize = closings.iter().filter(|(_, s)| !s.is_empty()).count();
                let message = format!("{tote} closed: {} returns, {short} short", closings.len());
                Outcome::effect(
                    Effect::CloseTote {
                        tote: tote.clone(),
                        closings,
                    },
                    message,
                )
            }
            Some(Parcel::Expected(p)) => {
                let shortages = shortages_of(p);
                let message = if shortages.is_empty() {
                    format!("{} complete", p.rma)
                } else {
                    let short: Vec<String> =
                        shortages.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
                    format!("{} closed short: {}", p.rma, short.join(", "))
                };
                Outcome::effect(
                    Effect::CloseParcel {
                        rma: p.rma.clone(),
                        shortages,
                    },
                    message,
                )
            }
        }
    }

    fn cancel_parcel(&mut self) -> Outcome {
        if self.parcel.is_none() {
            return Outcome::good("nothing to cancel");
        }
        if self.n_received_in_parcel > 0 {
            return Outcome::bad("units of this parcel are received: scan DONE");
        }
        self.parcel = None;
        Outcome::good("parcel put back unopened")
    }

    fn grading(&mut self, scan: Scan, lookup: &impl Lookup) -> Outcome {
        if let Some(outcome) = self.armed_scan(&scan, lookup) {
            return outcome;
        }
        match scan {
            Scan::Lpn(label) => {
                let lpn = label.lpn();
                match lookup.unit(lpn) {
                    None => Outcome::bad(format!("{lpn} is not a unit of this site")),
                    Some(unit) if unit.state == UnitState::Voided => {
                        Outcome::bad(format!("{lpn} was voided"))
                    }
                    Some(unit) if unit.quarantined => Outcome::bad(quarantine_refusal(lpn)),
                    Some(unit) => {
                        let message = format!("{lpn} {} ({})", unit.sku, unit.state.encode());
                        self.selected = Some(unit);
                        self.defects.clear();
                        self.proposal = None;
                        Outcome::good(message)
                    }
                }
            }
            Scan::Command(StationCommand::Reprint) => self.arm(Armed::Reprint),
            Scan::Command(StationCommand::Void) => match &self.selected {
                Some(unit) if matches!(unit.state, UnitState::Disposed(_)) => Outcome::effect(
                    Effect::UndoDisposition {
                        lpn: unit.lpn.clone(),
                    },
                    format!("disposition of {} undone", unit.lpn),
                ),
                Some(_) => Outcome::bad("only a disposition can be undone here"),
                None => Outcome::bad("scan the unit's LPN first"),
            },
            Scan::Command(StationCommand::Defect(defect)) => match &self.selected {
                Some(_) if self.defects.len() >= DEFECTS_PER_UNIT_MAX => {
                    Outcome::bad(format!("at most {DEFECTS_PER_UNIT_MAX} defects per unit"))
                }
                Some(_) => {
                    if !self.defects.contains(&defect) {
                        self.defects.push(defect);
                    }
                    let listed: Vec<&str> = self.defects.iter().map(|d| d.as_str()).collect();
                    Outcome::good(format!(
                        "defects: {}; now scan the grade",
                        listed.join(", ")
                    ))
                }
                None => Outcome::bad("scan the unit's LPN first"),
            },
            Scan::Command(StationCommand::TestPass | StationCommand::TestFail) => {
                let passed = scan == Scan::Command(StationCommand::TestPass);
                match &self.selected {
                    Some(unit)
                        if matches!(unit.state, UnitState::Received | UnitState::Graded(_)) =>
                    {
                        Outcome::effect(
                            Effect::Test {
                                lpn: unit.lpn.clone(),
                                passed,
                            },
                            if passed {
                                format!("{} passed its test; scan the grade", unit.lpn)
                            } else {
                                format!(
                                    "{} failed its test (not working); scan the grade",
                                    unit.lpn
                                )
                            },
                        )
                    }
                    Some(unit) => Outcome::bad(format!(
                        "{} is {}: test before its disposition",
                        unit.lpn,
                        unit.state.name()
                    )),
                    None => Outcome::bad("scan the unit's LPN first"),
                }
            }
            Scan::Command(StationCommand::Grade(Grade::A))
                if self.selected.as_ref().is_some_and(|u| {
                    grade_a_refused(u.tested, lookup.product_flags(&u.sku).needs_testing)
                }) =>
            {
                Outcome::bad("grade A needs a passed function test: scan TEST-PASS or TEST-FAIL")
            }
            Scan::Command(StationCommand::Grade(grade)) => match &self.selected {
                Some(unit) => match unit.state.grade(&unit.lpn, grade) {
                    Ok(_) => {
                        self.proposal = lookup.proposed_disposition(&unit.sku, grade);
                        let proposal = match self.proposal {
                            Some(d) => format!("; proposed {d}: DONE accepts, or scan another"),
                            None => "; scan the disposition".to_owned(),
                        };
                        Outcome::effect(
                            Effect::Grade {
                                lpn: unit.lpn.clone(),
                                grade,
                                defects: self.defects.clone(),
                            },
                            format!("{} graded {grade}{proposal}", unit.lpn),
                        )
                    }
                    Err(e) => Outcome::bad(e.to_string()),
                },
                None => Outcome::bad("scan the unit's LPN first"),
            },
            Scan::Command(StationCommand::Dispose(disposition)) => match &self.selected {
                Some(unit) => match unit.state.dispose(&unit.lpn, disposition) {
                    Ok(_) => Outcome::effect(
                        Effect::Dispose {
                            lpn: unit.lpn.clone(),
                            disposition,
                        },
                        format!("{} → {disposition}", unit.lpn),
                    ),
                    Err(e) => Outcome::bad(e.to_string()),
                },
                None => Outcome::bad("scan the unit's LPN first"),
            },
            Scan::Command(StationCommand::Done) => match (&self.selected, self.proposal) {
                (Some(unit), Some(disposition)) if matches!(unit.state, UnitState::Graded(_)) => {
                    Outcome::effect(
                        Effect::Dispose {
                            lpn: unit.lpn.clone(),
                            disposition,
                        },
                        format!("{} → {disposition} (as proposed)", unit.lpn),
                    )
                }
                _ => {
                    self.selected = None;
                    self.defects.clear();
                    Outcome::good("ready")
                }
            },
            Scan::Command(StationCommand::Cancel) => {
                self.selected = None;
                self.defects.clear();
                self.proposal = None;
                Outcome::good("ready")
            }
            Scan::Command(StationCommand::Unidentified) => {
                Outcome::bad("that card is for a receiving station")
            }
            Scan::Command(StationCommand::Ship) | Scan::Bin(_) => {
                Outcome::bad("dispositions are executed at a putaway station")
            }
            Scan::Badge(_) => unreachable!("badges are handled before the station kind"),
            _ => Outcome::bad("a grading station takes LPN labels and command cards"),
        }
    }

    fn putaway(&mut self, scan: Scan, lookup: &impl Lookup) -> Outcome {
        if let Some(outcome) = self.armed_scan(&scan, lookup) {
            return outcome;
        }
        match scan {
            Scan::Lpn(label) => {
                let lpn = label.lpn();
                let Some(unit) = lookup.unit(lpn) else {
                    return Outcome::bad(format!("{lpn} is not a unit of this site"));
                };
                if unit.quarantined {
                    return Outcome::bad(quarantine_refusal(lpn));
                }
                let Some(disposition) = unit.state.disposition() else {
                    return Outcome::bad(format!(
                        "{lpn} is {}: grade and dispose of it first",
                        unit.state.name()
                    ));
                };
                if matches!(unit.state, UnitState::Departed(_)) {
                    return Outcome::bad(format!("{lpn} already left this site"));
                }
                let next = match way_out(lookup, &unit) {
                    Some(Departure::ToCustomer { rma }) => {
                        format!(
                            "goes back to the customer of {rma}: scan SHIP, or a bin to hold it"
                        )
                    }
                    Some(Departure::Transfer { to }) => {
                        format!("transfer to {to} ordered: scan SHIP")
                    }
                    Some(departure) => {
                        format!("scan SHIP to hand it to the {departure}, or a bin to hold it")
                    }
                    None => "scan a bin".to_owned(),
                };
                let message = format!("{lpn} {} {disposition}: {next}", unit.sku);
                self.selected = Some(unit);
                Outcome::good(message)
            }
            Scan::Bin(label) => match &self.selected {
                Some(unit) => match unit.state.put_away(&unit.lpn) {
                    Ok(_) => Outcome::effect(
                        Effect::PutAway {
                            lpn: unit.lpn.clone(),
                            bin: label.bin().clone(),
                        },
                        format!("{} → bin {}", unit.lpn, label.bin()),
                    ),
                    Err(e) => Outcome::bad(e.to_string()),
                },
                None => Outcome::bad("scan the unit's LPN first"),
            },
            Scan::Command(StationCommand::Ship) => {
                let Some(unit) = &self.selected else {
                    return Outcome::bad("scan the unit's LPN first");
                };
                let Some(departure) = way_out(lookup, unit) else {
                    return Outcome::bad(format!(
                        "{} stays here: scan a bin (no transfer is ordered)",
                        unit.lpn
                    ));
                };
                match unit.state.depart(&unit.lpn, &departure) {
                    Ok(_) => Outcome::effect(
                        Effect::Depart {
                            lpn: unit.lpn.clone(),
                            departure: departure.clone(),
                            tracking: None,
                        },
                        format!("{} leaves: {departure}", unit.lpn),
                    ),
                    Err(e) => Outcome::bad(e.to_string()),
                }
            }
            Scan::Rma(label) => match lookup.exchange_order(label.rma()) {
                Some(sku) => {
                    self.selected = None;
                    self.arm(Armed::Exchange {
                        rma: label.rma().clone(),
                        sku,
                    })
                }
                None => Outcome::bad(format!(
                    "{} has no exchange waiting to ship from this site",
                    label.rma()
                )),
            },
            Scan::Command(StationCommand::Reprint) => self.arm(Armed::Reprint),
            Scan::Command(StationCommand::Done | StationCommand::Cancel) => {
                self.selected = None;
                Outcome::good("ready")
            }
            Scan::Badge(_) => unreachable!("badges are handled before the station kind"),
            _ => Outcome::bad(
                "a putaway station takes LPN labels, bin labels, exchange RMAs and SHIP",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barcode::{badge_encode, command_encode, lpn_encode, rma_encode};
    use crate::domain::SiteId;

    /// EAN-13 of the test's two products and one unknown product.
    const TEE: &str = "4901234567894";
    const CAP: &str = "4912345678904";
    const UNKNOWN: &str = "4006381333931";

    #[derive(Default)]
    struct Site {
        expected: Vec<ExpectedParcel>,
        units: Vec<UnitView>,
        /// SKUs whose products must be tested / are final sale.
        needs_testing: Vec<&'static str>,
        final_sale: Vec<&'static str>,
        transfers: Vec<(Lpn, SiteId)>,
        exchanges: Vec<(RmaId, Sku)>,
        ship_backs: Vec<(Lpn, RmaId)>,
        incoming: Vec<(Lpn, SiteId)>,
        totes: Vec<(ToteId, Vec<ExpectedParcel>)>,
        /// Carrier tracking numbers of expected returns.
        tracking: Vec<(String, RmaId)>,
    }

    impl Lookup for Site {
        fn expected_return(&self, rma: &RmaId) -> Option<ExpectedParcel> {
            self.expected.iter().find(|p| &p.rma == rma).cloned()
        }
        fn return_for_reference(&self, text: &str) -> Option<RmaId> {
            let by_rma = self.expected.iter().find(|p| p.rma.as_str() == text);
            by_rma
                .map(|p| p.rma.clone())
                .or_else(|| find(&self.tracking, &text.to_owned()))
        }
        fn sku_for_gtin(&self, gtin14: &str) -> Option<Sku> {
            let sku = match gtin14.trim_start_matches('0') {
                "4901234567894" => "TEE-WHT-M",
                "4912345678904" => "CAP-WOOL-F",
                _ => return None,
            };
            Sku::new(sku).ok()
        }
        fn unit(&self, lpn: &Lpn) -> Option<UnitView> {
            self.units.iter().find(|u| &u.lpn == lpn).cloned()
        }
        fn proposed_disposition(&self, _sku: &Sku, grade: Grade) -> Option<Disposition> {
            crate::op::DispositionRule::propose(
                &crate::op::DispositionRule::defaults(),
                None,
                grade,
            )
        }
        fn product_flags(&self, sku: &Sku) -> ProductFlags {
            ProductFlags {
                final_sale: self.final_sale.contains(&sku.as_str()),
                needs_testing: self.needs_testing.contains(&sku.as_str()),
            }
        }
        fn transfer_order(&self, lpn: &Lpn) -> Option<SiteId> {
            find(&self.transfers, lpn)
        }
        fn exchange_order(&self, rma: &RmaId) -> Option<Sku> {
            find(&self.exchanges, rma)
        }
        fn ship_back(&self, lpn: &Lpn) -> Option<RmaId> {
            find(&self.ship_backs, lpn)
        }
        fn expected_transfer(&self, lpn: &Lpn) -> Option<SiteId> {
            find(&self.incoming, lpn)
        }
        fn expected_tote(&self, tote: &ToteId) -> Option<Vec<ExpectedParcel>> {
            find(&self.totes, tote)
        }
    }

    fn find<K: PartialEq, V: Clone>(pairs: &[(K, V)], key: &K) -> Option<V> {
        pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn badge() -> String {
        badge_encode("1234").unwrap()
    }

    fn card(command: StationCommand) -> String {
        command_encode(command)
    }

    fn rma() -> String {
        rma_encode("0000000001").unwrap()
    }

    fn site_with_return() -> Site {
        let rma = RmaId::new(rma()).unwrap();
        let mut lines = BTreeMap::new();
        lines.insert(Sku::new("TEE-WHT-M").unwrap(), (2, 0));
        Site {
            expected: vec![ExpectedParcel {
                rma,
                lines,
                closed: false,
            }],
            ..Site::default()
        }
    }

    fn scan_ok(station: &mut Station, line: &str, site: &Site) -> Outcome {
        let outcome = station.handle_scan(line, site);
        assert_eq!(outcome.signal, Signal::Good, "{line}: {}", outcome.message);
        if outcome.effect.is_some() {
            station.confirmed();
        }
        outcome
    }

    #[test]
    fn nothing_happens_before_a_badge() {
        let site = site_with_return();
        let mut station = Station::new(StationKind::Receiving);
        let outcome = station.handle_scan(&rma(), &site);
        assert_eq!(outcome.signal, Signal::Bad);
        assert!(outcome.message.contains("badge"), "{}", outcome.message);
        scan_ok(&mut station, &badge(), &site);
        assert_eq!(station.operator(), Some("B-1234"));
    }

    #[test]
    fn receiving_matches_over_wrong_item_and_short() {
        let site = site_with_return();
        let mut s = Station::new(StationKind::Receiving);
        scan_ok(&mut s, &badge(), &site);
        let opened = scan_ok(&mut s, &rma(), &site);
        assert!(
            opened.message.contains("TEE-WHT-M 0/2"),
            "{}",
            opened.message
        );
        let kinds: Vec<ReceiptKind> = [TEE, CAP, TEE, TEE]
            .iter()
            .map(|code| match scan_ok(&mut s, code, &site).effect {
                Some(Effect::Receive { receipt, .. }) => receipt,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ReceiptKind::Matched,
                ReceiptKind::WrongItem,
                ReceiptKind::Matched,
                ReceiptKind::Over
            ]
        );
        match scan_ok(&mut s, &card(StationCommand::Done), &site).effect {
            Some(Effect::CloseParcel { shortages, .. }) => assert!(shortages.is_empty()),
            other => panic!("{other:?}"),
        }
        // A second parcel closed after one unit is short by one.
        scan_ok(&mut s, &rma(), &site);
        scan_ok(&mut s, TEE, &site);
        match scan_ok(&mut s, &card(StationCommand::Done), &site).effect {
            Some(Effect::CloseParcel { shortages, .. }) => {
                assert_eq!(shortages, vec![(Sku::new("TEE-WHT-M").unwrap(), 1)])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_parcel_goes_to_quarantine_with_its_reference() {
        let site = Site::default();
        let mut s = Station::new(StationKind::Receiving);
        scan_ok(&mut s, &badge(), &site);
        // A Yamato tracking number: 11 digits and their remainder by 7.
        let tracking = "123456789013";
        scan_ok(&mut s, tracking, &site);
        match scan_ok(&mut s, TEE, &site).effect {
            Some(Effect::Receive {
                rma: None,
                receipt: ReceiptKind::Unidentified,
                parcel_ref,
                ..
            }) => assert_eq!(parcel_ref.as_deref(), Some(tracking)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_merchant_rma_or_the_return_s_tracking_number_opens_its_parcel() {
        let merchant = RmaId::new("SHOP-ORDER-123").unwrap();
        let mut lines = BTreeMap::new();
        lines.insert(Sku::new("TEE-WHT-M").unwrap(), (1, 0));
        let tracking = "123456789013";
        let site = Site {
            expected: vec![ExpectedParcel {
                rma: merchant.clone(),
                lines,
                closed: false,
            }],
            tracking: vec![(tracking.to_owned(), merchant.clone())],
            ..Site::default()
        };
        for opener in [merchant.as_str(), tracking] {
            let mut s = Station::new(StationKind::Receiving);
            scan_ok(&mut s, &badge(), &site);
            let opened = scan_ok(&mut s, &format!("{opener}\r\n"), &site);
            assert!(
                opened.message.contains("SHOP-ORDER-123"),
                "{}",
                opened.message
            );
            match scan_ok(&mut s, TEE, &site).effect {
                Some(Effect::Receive {
                    rma,
                    receipt: ReceiptKind::Matched,
                    ..
                }) => assert_eq!(rma, Some(merchant.clone())),
                other => panic!("{opener}: {other:?}"),
            }
        }
        // What matches no expected return is still unidentified, or refused as before.
        let mut s = Station::new(StationKind::Receiving);
        scan_ok(&mut s, &badge(), &site);
        scan_bad(&mut s, "SHOP-ORDER-999", &site, "unrecognised barcode");
        let other = scan_ok(&mut s, "444413758703", &site);
        assert!(other.message.contains("unidentified"), "{}", other.message);
    }

    #[test]
    fn wrong_items_and_late_extras_wait_in_quarantine() {
        assert!(ReceiptKind::WrongItem.holds_in_quarantine(false));
        assert!(ReceiptKind::Over.holds_in_quarantine(true));
        assert!(!ReceiptKind::Over.holds_in_quarantine(false));
        assert!(!ReceiptKind::Matched.holds_in_quarantine(true));
        let mut site = site_with_return();
        site.expected[0].closed = true;
        site.expected[0]
            .lines
            .insert(Sku::new("TEE-WHT-M").unwrap(), (2, 2));
        let mut s = Station::new(StationKind::Receiving);
        scan_ok(&mut s, &badge(), &site);
        let opened = scan_ok(&mut s, &rma(), &site);
        assert!(
            opened.message.contains("closed before"),
            "{}",
            opened.message
        );
        let late = scan_ok(&mut s, TEE, &site);
        assert!(late.message.contains("quarantine"), "{}", late.message);
        let wrong = scan_ok(&mut s, CAP, &site);
        assert!(wrong.message.contains("quarantine"), "{}", wrong.message);
    }

    #[test]
    fn a_quarantined_unit_is_neither_graded_nor_put_away_nor_shipped() {
        let mut held = unit(3, "TEE-WHT-M", UnitState::Received);
        held.quarantined = true;
        let mut disposed = unit(
            4,
            "TEE-WHT-M",
            UnitState::Disposed(Disposition::ReturnToVendor),
        );
        disposed.quarantined = true;
        let site = Site {
            units: vec![held.clone(), disposed.clone()],
            exchanges: vec![(RmaId::new(rma()).unwrap(), Sku::new("TEE-WHT-M").unwrap())],
            ..Site::default()
        };
        let mut grading = Station::new(StationKind::Grading);
        scan_ok(&mut grading, &badge(), &site);
        scan_bad(&mut grading, held.lpn.as_str(), &site, "in quarantine");
        scan_bad(
            &mut grading,
            &card(StationCommand::Grade(Grade::A)),
            &site,
            "LPN first",
        );
        let mut putaway = Station::new(StationKind::Putaway);
        scan_ok(&mut putaway, &badge(), &site);
        scan_bad(&mut putaway, disposed.lpn.as_str(), &site, "in quarantine");
        scan_bad(
            &mut putaway,
            &card(StationCommand::Ship),
            &site,
            "LPN first",
        );
        scan_ok(&mut putaway, &rma(), &site);
        scan_bad(&mut putaway, disposed.lpn.as_str(), &site, "in quarantine");
        // Void and reprint stay possible: they do not move the unit on.
        let mut receiving = Station::new(StationKind::Receiving);
        scan_ok(&mut receiving, &badge(), &site);
        scan_ok(&mut receiving, &card(StationCommand::Void), &site);
        let voided = scan_ok(&mut receiving, held.lpn.as_str(), &site);
        assert!(matches!(voided.effect, Some(Effect::VoidReceipt { .. })));
    }

    #[test]
    fn bad_scans_change_nothing_and_say_why() {
        let site = site_with_return();
        let mut s = Station::new(StationKind::Receiving);
        scan_ok(&mut s, &badge(), &site);
        for (line, needle) in [
            (TEE, "parcel"),
            ("4901234567895", "check"),
            ("hello", ""),
            (&card(StationCommand::Grade(Grade::A)), "grading"),
        ] {
            let outcome = s.handle_scan(line, &site);
            assert_eq!(outcome.signal, Signal::Bad, "{line}");
            assert!(outcome.effect.is_none());
            assert!(
                outcome.message.contains(needle),
                "{line}: {}",
                outcome.message
            );
        }
        scan_ok(&mut s, &rma(), &site);
        let outcome = s.handle_scan(UNKNOWN, &site);
        assert!(outcome.message.contains("catalogue"), "{}", outcome.message);
        let outcome = s.handle_scan(&rma(), &site);
        assert!(outcome.message.contains("DONE"), "{}", outcome.message);
    }

    #[test]
    fn a_failed_record_is_not_counted() {
        let site = site_with_return();
        let mut s = Station::new(StationKind::Receiving);
        scan_ok(&mut s, &badge(), &site);
        scan_ok(&mut s, &rma(), &site);
        assert!(s.handle_scan(TEE, &site).effect.is_some());
        let outcome = s.failed("the site database is full");
        assert_eq!(outcome.signal, Signal::Bad);
        // Nothing was received, so the parcel can still be put back.
        scan_ok(&mut s, &card(StationCommand::Cancel), &site);
    }

    #[test]
    fn grading_with_cards_and_corrections() {
        let site_id = SiteId::new("osaka").unwrap();
        let lpn = lpn_encode(&site_id, 7, 1).unwrap();
        let mut site = Site::default();
        site.units.push(UnitView {
            lpn: lpn.clone(),
            sku: Sku::new("TEE-WHT-M").unwrap(),
            state: UnitState::Received,
            tested: None,
            quarantined: false,
        });
        let mut s = Station::new(StationKind::Grading);
        scan_ok(&mut s, &badge(), &site);
        let early = s.handle_scan(&card(StationCommand::Grade(Grade::B)), &site);
        assert_eq!(early.signal, Signal::Bad);
        scan_ok(&mut s, lpn.as_str(), &site);
        let before = s.handle_scan(&card(StationCommand::Dispose(Disposition::Resale)), &site);
        assert_eq!(before.signal, Signal::Bad, "disposition before grading");
        let graded = scan_ok(&mut s, &card(StationCommand::Grade(Grade::B)), &site);
        assert_eq!(
            graded.effect,
            Some(Effect::Grade {
                lpn: lpn.clone(),
                grade: Grade::B,
                defects: vec![],
            })
        );
        let regraded = scan_ok(&mut s, &card(StationCommand::Grade(Grade::C)), &site);
        assert!(matches!(
            regraded.effect,
            Some(Effect::Grade {
                grade: Grade::C,
                ..
            })
        ));
        let disposed = scan_ok(
            &mut s,
            &card(StationCommand::Dispose(Disposition::Recycle)),
            &site,
        );
        assert!(matches!(disposed.effect, Some(Effect::Dispose { .. })));

        site.units[0].state = UnitState::Disposed(Disposition::Recycle);
        scan_ok(&mut s, lpn.as_str(), &site);
        let undone = scan_ok(&mut s, &card(StationCommand::Void), &site);
        assert_eq!(
            undone.effect,
            Some(Effect::UndoDisposition { lpn: lpn.clone() })
        );
        scan_ok(&mut s, &card(StationCommand::Reprint), &site);
        let reprint = scan_ok(&mut s, lpn.as_str(), &site);
        assert_eq!(reprint.effect, Some(Effect::Reprint { lpn }));
    }

    #[test]
    fn defects_go_with_the_grade_and_done_accepts_the_proposal() {
        let lpn = lpn_encode(&SiteId::new("osaka").unwrap(), 7, 2).unwrap();
        let site = Site {
            units: vec![UnitView {
                lpn: lpn.clone(),
                sku: Sku::new("TEE-WHT-M").unwrap(),
                state: UnitState::Received,
                tested: None,
                quarantined: false,
            }],
            ..Site::default()
        };
        let mut s = Station::new(StationKind::Grading);
        scan_ok(&mut s, &badge(), &site);
        let early = s.handle_scan(&card(StationCommand::Defect(DefectCode::Stain)), &site);
        assert_eq!(early.signal, Signal::Bad, "a defect needs a unit first");
        scan_ok(&mut s, lpn.as_str(), &site);
        scan_ok(
            &mut s,
            &card(StationCommand::Defect(DefectCode::Stain)),
            &site,
        );
        scan_ok(
            &mut s,
            &card(StationCommand::Defect(DefectCode::Tear)),
            &site,
        );
        let graded = scan_ok(&mut s, &card(StationCommand::Grade(Grade::C)), &site);
        assert_eq!(
            graded.effect,
            Some(Effect::Grade {
                lpn: lpn.clone(),
                grade: Grade::C,
                defects: vec![DefectCode::Stain, DefectCode::Tear],
            })
        );
        assert!(
            graded.message.contains("proposed refurbish"),
            "{}",
            graded.message
        );
        let done = scan_ok(&mut s, &card(StationCommand::Done), &site);
        assert_eq!(
            done.effect,
            Some(Effect::Dispose {
                lpn,
                disposition: Disposition::Refurbish
            })
        );
    }

    fn unit(n: u64, sku: &str, state: UnitState) -> UnitView {
        UnitView {
            lpn: lpn_encode(&SiteId::new("osaka").unwrap(), 7, n).unwrap(),
            sku: Sku::new(sku).unwrap(),
            state,
            tested: None,
            quarantined: false,
        }
    }

    fn scan_bad(station: &mut Station, line: &str, site: &Site, needle: &str) {
        let outcome = station.handle_scan(line, site);
        assert_eq!(outcome.signal, Signal::Bad, "{line}: {}", outcome.message);
        assert!(outcome.effect.is_none());
        assert!(
            outcome.message.contains(needle),
            "{line}: {:?} lacks {needle:?}",
            outcome.message
        );
    }

    #[test]
    fn electronics_need_a_passed_test_before_grade_a() {
        let radio = unit(1, "RADIO-1", UnitState::Received);
        let lpn = radio.lpn.clone();
        let site = Site {
            units: vec![radio],
            needs_testing: vec!["RADIO-1"],
            ..Site::default()
        };
        let mut s = Station::new(StationKind::Grading);
        scan_ok(&mut s, &badge(), &site);
        scan_ok(&mut s, lpn.as_str(), &site);
        scan_bad(
            &mut s,
            &card(StationCommand::Grade(Grade::A)),
            &site,
            "TEST-PASS",
        );
        let failed = scan_ok(&mut s, &card(StationCommand::TestFail), &site);
        assert_eq!(
            failed.effect,
            Some(Effect::Test {
                lpn: lpn.clone(),
                passed: false
            })
        );
        scan_bad(
            &mut s,
            &card(StationCommand::Grade(Grade::A)),
            &site,
            "TEST-PASS",
        );
        let graded = scan_ok(&mut s, &card(StationCommand::Grade(Grade::D)), &site);
        assert_eq!(
            graded.effect,
            Some(Effect::Grade {
                lpn: lpn.clone(),
                grade: Grade::D,
                defects: vec![DefectCode::NotWorking],
            }),
            "a failed test is recorded as a defect"
        );
        // A retest that passes allows grade A.
        scan_ok(&mut s, &card(StationCommand::TestPass), &site);
        scan_ok(&mut s, &card(StationCommand::Grade(Grade::A)), &site);
    }

    #[test]
    fn a_final_sale_product_goes_to_quarantine() {
        let mut site = site_with_return();
        site.final_sale.push("CAP-WOOL-F");
        let mut s = Station::new(StationKind::Receiving);
        scan_ok(&mut s, &badge(), &site);
        scan_ok(&mut s, &rma(), &site);
        let outcome = scan_ok(&mut s, CAP, &site);
        assert!(
            outcome.message.contains("FINAL SALE"),
            "{}",
            outcome.message
        );
        assert!(matches!(
            outcome.effect,
            Some(Effect::Receive {
                receipt: ReceiptKind::FinalSale,
                rma: Some(_),
                ..
            })
        ));
    }

    #[test]
    fn putaway_bins_ships_and_transfers_by_disposition() {
        let restock = unit(1, "TEE-WHT-M", UnitState::Disposed(Disposition::Restock));
        let recycle = unit(2, "TEE-WHT-M", UnitState::Disposed(Disposition::Recycle));
        let moving = unit(3, "TEE-WHT-M", UnitState::Placed(Disposition::Restock));
        let graded = unit(4, "TEE-WHT-M", UnitState::Graded(Grade::B));
        let fukuoka = SiteId::new("fukuoka").unwrap();
        let site = Site {
            units: vec![
                restock.clone(),
                recycle.clone(),
                moving.clone(),
                graded.clone(),
            ],
            transfers: vec![(moving.lpn.clone(), fukuoka.clone())],
            ..Site::default()
        };
        let bin = crate::barcode::bin_encode("A0103").unwrap();
        let mut s = Station::new(StationKind::Putaway);
        scan_ok(&mut s, &badge(), &site);
        scan_bad(&mut s, &bin, &site, "LPN first");
        scan_bad(&mut s, graded.lpn.as_str(), &site, "dispose of it first");

        let opened = scan_ok(&mut s, restock.lpn.as_str(), &site);
        assert!(opened.message.contains("scan a bin"), "{}", opened.message);
        scan_bad(&mut s, &card(StationCommand::Ship), &site, "stays here");
        let put = scan_ok(&mut s, &bin, &site);
        assert_eq!(
            put.effect,
            Some(Effect::PutAway {
                lpn: restock.lpn.clone(),
                bin: Bin::new("A0103").unwrap()
            })
        );

        scan_ok(&mut s, recycle.lpn.as_str(), &site);
        let shipped = scan_ok(&mut s, &card(StationCommand::Ship), &site);
        assert_eq!(
            shipped.effect,
            Some(Effect::Depart {
                lpn: recycle.lpn.clone(),
                departure: Departure::Recycler,
                tracking: None
            })
        );

        let opened = scan_ok(&mut s, moving.lpn.as_str(), &site);
        assert!(opened.message.contains("fukuoka"), "{}", opened.message);
        let transferred = scan_ok(&mut s, &card(StationCommand::Ship), &site);
        assert_eq!(
            transferred.effect,
            Some(Effect::Depart {
                lpn: moving.lpn.clone(),
                departure: Departure::Transfer { to: fukuoka },
                tracking: None
            })
        );
        let grading_card = card(StationCommand::Grade(Grade::A));
        scan_bad(&mut s, &grading_card, &site, "putaway station takes");
    }

    #[test]
    fn an_exchange_ships_a_unit_of_the_wanted_sku_from_stock() {
        let tee = unit(1, "TEE-WHT-M", UnitState::Placed(Disposition::Restock));
        let cap = unit(2, "CAP-WOOL-F", UnitState::Placed(Disposition::Restock));
        let worn = unit(3, "TEE-WHT-M", UnitState::Placed(Disposition::Resale));
        let rma_id = RmaId::new(rma()).unwrap();
        let site = Site {
            units: vec![tee.clone(), cap.clone(), worn.clone()],
            exchanges: vec![(rma_id.clone(), Sku::new("TEE-WHT-M").unwrap())],
            ..Site::default()
        };
        let mut s = Station::new(StationKind::Putaway);
        scan_ok(&mut s, &badge(), &site);
        let other = rma_encode("0000000002").unwrap();
        scan_bad(&mut s, &other, &site, "no exchange");
        scan_ok(&mut s, &rma(), &site);
        scan_bad(&mut s, cap.lpn.as_str(), &site, "asks for TEE-WHT-M");
        scan_ok(&mut s, &rma(), &site);
        scan_bad(&mut s, worn.lpn.as_str(), &site, "not allowed");
        scan_ok(&mut s, &rma(), &site);
        let shipped = scan_ok(&mut s, tee.lpn.as_str(), &site);
        assert_eq!(
            shipped.effect,
            Some(Effect::Depart {
                lpn: tee.lpn,
                departure: Departure::Exchange { rma: rma_id },
                tracking: None
            })
        );
    }

    #[test]
    fn a_unit_ordered_back_to_its_customer_ships_back_whatever_its_disposition() {
        let held = unit(1, "TEE-WHT-M", UnitState::Placed(Disposition::Resale));
        let rma_id = RmaId::new(rma()).unwrap();
        let site = Site {
            units: vec![held.clone()],
            ship_backs: vec![(held.lpn.clone(), rma_id.clone())],
            // The ship-back supersedes a transfer ordered before it.
            transfers: vec![(held.lpn.clone(), SiteId::new("osaka").unwrap())],
            ..Site::default()
        };
        let mut s = Station::new(StationKind::Putaway);
        scan_ok(&mut s, &badge(), &site);
        let selected = scan_ok(&mut s, held.lpn.as_str(), &site);
        assert!(
            selected.message.contains("customer of"),
            "{}",
            selected.message
        );
        let shipped = scan_ok(&mut s, &card(StationCommand::Ship), &site);
        assert_eq!(
            shipped.effect,
            Some(Effect::Depart {
                lpn: held.lpn,
                departure: Departure::ToCustomer { rma: rma_id },
                tracking: None
            })
        );
    }

    #[test]
    fn a_transferred_unit_is_received_by_its_lpn() {
        let lpn = lpn_encode(&SiteId::new("fukuoka").unwrap(), 1, 9).unwrap();
        let osaka = SiteId::new("osaka").unwrap();
        let site = Site {
            incoming: vec![(lpn.clone(), osaka.clone())],
            ..Site::default()
        };
        let mut s = Station::new(StationKind::Receiving);
        scan_ok(&mut s, &badge(), &site);
        let arrived = scan_ok(&mut s, lpn.as_str(), &site);
        assert_eq!(
            arrived.effect,
            Some(Effect::ReceiveTransfer { lpn, from: osaka })
        );
        let stranger = lpn_encode(&SiteId::new("fukuoka").unwrap(), 1, 10).unwrap();
        scan_bad(&mut s, stranger.as_str(), &site, "already received");
    }

    #[test]
    fn a_tote_receives_its_returns_in_one_flow() {
        let rma1 = RmaId::new(rma_encode("0000000011").unwrap()).unwrap();
        let rma2 = RmaId::new(rma_encode("0000000012").unwrap()).unwrap();
        let parcel = |rma: &RmaId, sku: &str| {
            let mut lines = BTreeMap::new();
            lines.insert(Sku::new(sku).unwrap(), (1, 0));
            ExpectedParcel {
                rma: rma.clone(),
                lines,
                closed: false,
            }
        };
        let tote = crate::barcode::tote_encode("0000000007").unwrap();
        let tote_id = ToteId::new(tote.clone()).unwrap();
        let site = Site {
            totes: vec![(
                tote_id.clone(),
                vec![parcel(&rma1, "TEE-WHT-M"), parcel(&rma2, "TEE-WHT-M")],
            )],
            ..Site::default()
        };
        let mut s = Station::new(StationKind::Receiving);
        scan_ok(&mut s, &badge(), &site);
        let unknown = crate::barcode::tote_encode("0000000008").unwrap();
        let refused = s.handle_scan(&unknown, &site);
        assert_eq!(refused.signal, Signal::Bad, "{}", refused.message);
        let opened = scan_ok(&mut s, &tote, &site);
        assert!(opened.message.contains("2 returns"), "{}", opened.message);
        // Two T-shirts: one for each return; a cap belongs to none of them.
        let rmas: Vec<(Option<RmaId>, ReceiptKind)> = [TEE, TEE, CAP]
            .iter()
            .map(|code| match scan_ok(&mut s, code, &site).effect {
                Some(Effect::Receive { rma, receipt, .. }) => (rma, receipt),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            rmas,
            vec![
                (Some(rma1.clone()), ReceiptKind::Matched),
                (Some(rma2.clone()), ReceiptKind::Matched),
                (Some(rma1.clone()), ReceiptKind::WrongItem),
            ]
        );
        match scan_ok(&mut s, &card(StationCommand::Done), &site).effect {
            Some(Effect::CloseTote { tote, closings }) => {
                assert_eq!(tote, tote_id);
                assert_eq!(closings, vec![(rma1, vec![]), (rma2, vec![])]);
            }
            other => panic!("{other:?}"),
        }
    }
}
