//! What travels through the sync: ops (facts a site reports, upstream) and commands (decisions the
//! coordinator sends, downstream). Both are domain values here; `wire` owns their encoding.

use crate::domain::{
    Bin, DefectCode, Departure, Disposition, Epoch, Grade, Lpn, ReturnLine, RmaId, SiteId, Sku,
    ToteId,
};
use crate::station::ReceiptKind;

/// One fact recorded at a site. Ops are facts: the coordinator never refuses one, it records an
/// anomaly when one is wrong. Corrections are new ops.
#[derive(Clone, Debug, PartialEq)]
pub struct OpRecord {
    /// The site the op says it comes from. The coordinator trusts the certificate, not this
    /// field: a mismatch is an impersonation anomaly.
    pub site: SiteId,
    /// Wall-clock time at the site when the op was recorded, in Unix milliseconds.
    pub at_ms: i64,
    /// Badge of the staff member who did it, or `system`.
    pub operator: String,
    /// The station it was done at (`ctl` for a supervisor's command), for the audit trail.
    pub station: String,
    pub body: OpBody,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OpBody {
    /// A unit was received and labelled. `rma` is `None` for an unidentified return.
    UnitReceived {
        lpn: Lpn,
        rma: Option<RmaId>,
        sku: Sku,
        receipt: ReceiptKind,
        /// What was scanned to open an unidentified parcel (e.g. a tracking number).
        parcel_ref: Option<String>,
    },
    UnitGraded {
        lpn: Lpn,
        grade: Grade,
        defects: Vec<DefectCode>,
    },
    DispositionSet {
        lpn: Lpn,
        disposition: Disposition,
    },
    /// Sellable stock changed by `delta` units. Deltas commute, so concurrent sites never
    /// overwrite each other's counts.
    InventoryAdjusted {
        sku: Sku,
        delta: i64,
    },
    /// A receipt recorded in error is voided (a correction, never an edit).
    ReceiptVoided {
        lpn: Lpn,
    },
    /// A parcel of an expected return is finished; these lines did not arrive.
    ParcelClosed {
        rma: RmaId,
        shortages: Vec<(Sku, u32)>,
    },
    /// A disposition set in error is taken back; the unit is graded `grade` again.
    DispositionUndone {
        lpn: Lpn,
        grade: Grade,
    },
    /// A disposed unit went into a bin (or moved to another one).
    UnitPutAway {
        lpn: Lpn,
        bin: Bin,
    },
    /// A disposed unit left the site. `tracking` is the carrier's number, when it has one.
    UnitDeparted {
        lpn: Lpn,
        departure: Departure,
        tracking: Option<String>,
    },
    /// A unit that must be tested (electronics) was, with this result.
    UnitTested {
        lpn: Lpn,
        passed: bool,
    },
    /// A unit transferred from `from` arrived here.
    TransferReceived {
        lpn: Lpn,
        from: SiteId,
    },
    /// A supervisor matched a quarantined unit to its return, from what was found with it.
    UnitMatched {
        lpn: Lpn,
        rma: RmaId,
    },
    /// A tote of store drop-offs was received and its parcels closed.
    ToteReceived {
        tote: ToteId,
    },
    /// The site database went back in time: the coordinator had applied more ops of `epoch`
    /// than the database held (`head_seq`). Ops the lost part confirmed and never sent are
    /// gone with it; the site already works under `new_epoch`, so nothing it does now is
    /// mistaken for them. The coordinator counts what was lost and raises the anomaly.
    DatabaseRewound {
        epoch: Epoch,
        head_seq: u64,
        new_epoch: Epoch,
    },
    /// A supervisor let a quarantined unit go on without a match (it is handled as a unit of
    /// no return). `supervisor` is the badge that decided, `reason` why, both for the audit.
    UnitReleased {
        lpn: Lpn,
        supervisor: String,
        reason: String,
    },
}

impl OpBody {
    pub fn op_kind(&self) -> OpKind {
        match self {
            OpBody::UnitReceived { .. } => OpKind::UnitReceived,
            OpBody::UnitGraded { .. } => OpKind::UnitGraded,
            OpBody::DispositionSet { .. } => OpKind::DispositionSet,
            OpBody::InventoryAdjusted { .. } => OpKind::InventoryAdjusted,
            OpBody::ReceiptVoided { .. } => OpKind::ReceiptVoided,
            OpBody::ParcelClosed { .. } => OpKind::ParcelClosed,
            OpBody::DispositionUndone { .. } => OpKind::DispositionUndone,
            OpBody::UnitPutAway { .. } => OpKind::UnitPutAway,
            OpBody::UnitDeparted { .. } => OpKind::UnitDeparted,
            OpBody::UnitTested { .. } => OpKind::UnitTested,
            OpBody::TransferReceived { .. } => OpKind::TransferReceived,
            OpBody::UnitMatched { .. } => OpKind::UnitMatched,
            OpBody::ToteReceived { .. } => OpKind::ToteReceived,
            OpBody::DatabaseRewound { .. } => OpKind::DatabaseRewound,
            OpBody::UnitReleased { .. } => OpKind::UnitReleased,
        }
    }

    /// The op's kind as stored and shown (`unit_received`, …).
    pub fn kind(&self) -> &'static str {
        self.op_kind().as_str()
    }
}

/// The kinds of op, one per `OpBody` variant: what the coordinator decides on after a batch
/// without matching names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    UnitReceived,
    UnitGraded,
    DispositionSet,
    InventoryAdjusted,
    ReceiptVoided,
    ParcelClosed,
    DispositionUndone,
    UnitPutAway,
    UnitDeparted,
    UnitTested,
    TransferReceived,
    UnitMatched,
    ToteReceived,
    DatabaseRewound,
    UnitReleased,
}

impl OpKind {
    pub const ALL: [OpKind; 15] = [
        OpKind::UnitReceived,
        OpKind::UnitGraded,
        OpKind::DispositionSet,
        OpKind::InventoryAdjusted,
        OpKind::ReceiptVoided,
        OpKind::ParcelClosed,
        OpKind::DispositionUndone,
        OpKind::UnitPutAway,
        OpKind::UnitDeparted,
        OpKind::UnitTested,
        OpKind::TransferReceived,
        OpKind::UnitMatched,
        OpKind::ToteReceived,
        OpKind::DatabaseRewound,
        OpKind::UnitReleased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnitReceived => "unit_received",
            Self::UnitGraded => "unit_graded",
            Self::DispositionSet => "disposition_set",
            Self::InventoryAdjusted => "inventory_adjusted",
            Self::ReceiptVoided => "receipt_voided",
            Self::ParcelClosed => "parcel_closed",
            Self::DispositionUndone => "disposition_undone",
            Self::UnitPutAway => "unit_put_away",
            Self::UnitDeparted => "unit_departed",
            Self::UnitTested => "unit_tested",
            Self::TransferReceived => "transfer_received",
            Self::UnitMatched => "unit_matched",
            Self::ToteReceived => "tote_received",
            Self::DatabaseRewound => "database_rewound",
            Self::UnitReleased => "unit_released",
        }
    }
}

impl std::str::FromStr for OpKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown op kind {s:?}"))
    }
}

/// A decision the coordinator sends to one site.
#[derive(Clone, Debug, PartialEq)]
pub enum CommandBody {
    /// A return was routed to this site: expect a parcel with these lines.
    ExpectedReturn {
        rma: RmaId,
        lines: Vec<ReturnLine>,
        /// The customer's name, so staff can match a parcel without its slip. Personal data:
        /// erased at the site after the retention period or on request.
        customer_name: Option<String>,
    },
    /// The centre overrides the disposition of a unit that has not been disposed yet.
    DispositionOverride { lpn: Lpn, disposition: Disposition },
    /// The catalogue the site needs offline to resolve scans: replaces these SKUs' entries.
    CatalogUpdate { items: Vec<CatalogItem> },
    /// A unit received as unidentified belongs to this return: it leaves quarantine.
    MatchUnidentified { lpn: Lpn, rma: RmaId },
    /// The rules a grading station proposes dispositions by, offline. Replaces the site's rules.
    DispositionRules { rules: Vec<DispositionRule> },
    /// A customer asked to be forgotten: erase the personal data of these returns.
    ForgetCustomer { rmas: Vec<RmaId> },
    /// The return was cancelled or expired before anything of it arrived: stop expecting it.
    /// A parcel that still comes is then received as unidentified (quarantine), its RMA kept
    /// as the parcel reference.
    WithdrawExpectedReturn { rma: RmaId },
    /// Pack this unit for `to` when it is next handled (restock rebalancing, repair elsewhere).
    TransferOrder { lpn: Lpn, to: SiteId },
    /// A unit is on its way here from `from`: receive it by its LPN, disposed as it left.
    ExpectedTransfer {
        lpn: Lpn,
        sku: Sku,
        grade: Grade,
        disposition: Disposition,
        from: SiteId,
    },
    /// The return asks for an exchange: ship one unit of `sku` from stock here.
    ExchangeOrder { rma: RmaId, sku: Sku },
    /// The exchange's return was cancelled or expired: do not ship its replacement.
    ExchangeWithdrawn { rma: RmaId },
    /// A tote of these store drop-offs is on its way here: receive them with one scan.
    ExpectedTote { tote: ToteId, rmas: Vec<RmaId> },
    /// The carrier's tracking number of an expected return: scanning its slip at receiving
    /// opens the return's parcel.
    ReturnTracking { rma: RmaId, tracking: String },
    /// Send this unit back, as it is, to the customer of return `rma` (a declined trade-in,
    /// later a repair): it leaves the site no other way.
    ShipBack { lpn: Lpn, rma: RmaId },
}

/// For units of `category` (any category when `None`) graded `grade`, propose `disposition`.
/// A rule naming the unit's category wins over one that does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispositionRule {
    pub category: Option<String>,
    pub grade: Grade,
    pub disposition: Disposition,
}

impl DispositionRule {
    /// The usual rules: like new back to stock, worn to resale, damaged to repair or recycling.
    pub fn defaults() -> Vec<Self> {
        [
            (Grade::A, Disposition::Restock),
            (Grade::B, Disposition::Resale),
            (Grade::C, Disposition::Refurbish),
            (Grade::D, Disposition::Recycle),
            (Grade::X, Disposition::Dispose),
        ]
        .into_iter()
        .map(|(grade, disposition)| Self {
            category: None,
            grade,
            disposition,
        })
        .collect()
    }

    /// The disposition `rules` propose for a unit of `category` graded `grade`.
    pub fn propose(rules: &[Self], category: Option<&str>, grade: Grade) -> Option<Disposition> {
        let specific = rules.iter().find(|r| {
            r.grade == grade && r.category.is_some() && r.category.as_deref() == category
        });
        specific
            .or_else(|| {
                rules
                    .iter()
                    .find(|r| r.grade == grade && r.category.is_none())
            })
            .map(|r| r.disposition)
    }
}

/// A product as the stations need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogItem {
    pub sku: Sku,
    /// GTIN-14 (a JAN/EAN-13 padded with zeros), if the product carries one.
    pub gtin14: Option<String>,
    pub category: String,
    pub price_yen: u64,
    /// Sold as final sale: not returnable.
    pub final_sale: bool,
    /// Must be tested (electronics) before it can be graded A.
    pub needs_testing: bool,
}

impl CommandBody {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ExpectedReturn { .. } => "expected_return",
            Self::DispositionOverride { .. } => "disposition_override",
            Self::CatalogUpdate { .. } => "catalog_update",
            Self::MatchUnidentified { .. } => "match_unidentified",
            Self::DispositionRules { .. } => "disposition_rules",
            Self::ForgetCustomer { .. } => "forget_customer",
            Self::WithdrawExpectedReturn { .. } => "withdraw_expected_return",
            Self::TransferOrder { .. } => "transfer_order",
            Self::ExpectedTransfer { .. } => "expected_transfer",
            Self::ExchangeOrder { .. } => "exchange_order",
            Self::ExchangeWithdrawn { .. } => "exchange_withdrawn",
            Self::ExpectedTote { .. } => "expected_tote",
            Self::ReturnTracking { .. } => "return_tracking",
            Self::ShipBack { .. } => "ship_back",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_rule_wins_over_the_default() {
        let mut rules = DispositionRule::defaults();
        rules.push(DispositionRule {
            category: Some("electronics".into()),
            grade: Grade::B,
            disposition: Disposition::Refurbish,
        });
        assert_eq!(
            DispositionRule::propose(&rules, Some("tops"), Grade::B),
            Some(Disposition::Resale)
        );
        assert_eq!(
            DispositionRule::propose(&rules, Some("electronics"), Grade::B),
            Some(Disposition::Refurbish)
        );
        assert_eq!(
            DispositionRule::propose(&rules, None, Grade::A),
            Some(Disposition::Restock)
        );
        assert_eq!(DispositionRule::propose(&[], None, Grade::A), None);
    }

    #[test]
    fn every_op_kind_reads_back_from_its_name() {
        for kind in OpKind::ALL {
            assert_eq!(kind.as_str().parse::<OpKind>(), Ok(kind));
        }
        assert!("unit_vanished".parse::<OpKind>().is_err());
    }
}
