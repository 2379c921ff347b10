//! What travels through the sync: ops (facts a site reports, upstream) and commands (decisions the
//! coordinator sends, downstream). Both are domain values here; `wire` owns their encoding.

use crate::domain::{Disposition, Grade, Lpn, ReturnLine, RmaId, SiteId, Sku};

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
    pub body: OpBody,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OpBody {
    /// A unit was received and labelled. `rma` is `None` for an unidentified return.
    UnitReceived {
        lpn: Lpn,
        rma: Option<RmaId>,
        sku: Sku,
    },
    UnitGraded {
        lpn: Lpn,
        grade: Grade,
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
}

impl OpBody {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnitReceived { .. } => "unit_received",
            Self::UnitGraded { .. } => "unit_graded",
            Self::DispositionSet { .. } => "disposition_set",
            Self::InventoryAdjusted { .. } => "inventory_adjusted",
            Self::ReceiptVoided { .. } => "receipt_voided",
        }
    }
}

/// A decision the coordinator sends to one site.
#[derive(Clone, Debug, PartialEq)]
pub enum CommandBody {
    /// A return was routed to this site: expect a parcel with these lines.
    ExpectedReturn { rma: RmaId, lines: Vec<ReturnLine> },
    /// The centre overrides the disposition of a unit that has not been disposed yet.
    DispositionOverride { lpn: Lpn, disposition: Disposition },
}

impl CommandBody {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ExpectedReturn { .. } => "expected_return",
            Self::DispositionOverride { .. } => "disposition_override",
        }
    }
}
