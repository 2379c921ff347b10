//! What travels through the sync: ops (facts a site reports, upstream) and commands (decisions the
//! coordinator sends, downstream). Both are domain values here; `wire` owns their encoding.

use crate::domain::{Disposition, Grade, Lpn, ReturnLine, RmaId, SiteId, Sku};
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
}

impl OpBody {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnitReceived { .. } => "unit_received",
            Self::UnitGraded { .. } => "unit_graded",
            Self::DispositionSet { .. } => "disposition_set",
            Self::InventoryAdjusted { .. } => "inventory_adjusted",
            Self::ReceiptVoided { .. } => "receipt_voided",
            Self::ParcelClosed { .. } => "parcel_closed",
            Self::DispositionUndone { .. } => "disposition_undone",
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
    /// The catalogue the site needs offline to resolve scans: replaces these SKUs' entries.
    CatalogUpdate { items: Vec<CatalogItem> },
    /// A unit received as unidentified belongs to this return: it leaves quarantine.
    MatchUnidentified { lpn: Lpn, rma: RmaId },
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
        }
    }
}
