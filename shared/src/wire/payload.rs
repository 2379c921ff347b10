//! Op and command payloads: the bytes stored in the outbox and sent inside a batch.
//!
//! A payload starts with its own format byte, because it is encoded when the op is recorded and
//! may be sent days later by an upgraded agent. Decoding validates every id through the domain
//! constructors.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{decode_body, encode_body, WireError};
use crate::domain::{
    Bin, DefectCode, Departure, Disposition, DomainError, Epoch, Grade, Lpn, ReasonCode,
    ReturnLine, RmaId, SiteId, Sku, ToteId,
};
use crate::op::{CatalogItem, CommandBody, DispositionRule, OpBody, OpRecord};
use crate::station::ReceiptKind;

/// Format byte of payloads written by this build.
const PAYLOAD_FORMAT: u8 = 1;

/// Longest operator badge accepted, in bytes.
pub const OPERATOR_LEN_MAX: usize = 64;
/// Most lines one expected return (or parcel closing) may carry.
pub const RETURN_LINES_MAX: usize = 256;
/// Most catalogue items in one command; a larger catalogue travels as several commands, each
/// well under the per-item payload limit.
pub const CATALOG_ITEMS_PER_COMMAND_MAX: usize = 400;
/// Longest customer name carried to a site, in bytes.
pub const CUSTOMER_NAME_BYTES_MAX: usize = 200;
/// Most defects recorded with one grade.
pub const DEFECTS_MAX: usize = 16;
// What the domain accepts always travels: its limits are no higher than the wire's.
const _: () = assert!(crate::station::DEFECTS_PER_UNIT_MAX <= DEFECTS_MAX);
const _: () = assert!(crate::domain::RETURN_LINES_MAX <= RETURN_LINES_MAX);
/// Most disposition rules a site holds.
pub const RULES_MAX: usize = 1024;
/// Longest parcel reference (a scanned tracking number or reference), in bytes.
pub const PARCEL_REF_LEN_MAX: usize = 64;
/// Longest reason a supervisor gives for releasing a unit from quarantine: a sentence.
pub const RELEASE_REASON_BYTES_MAX: usize = 200;

/// Content hash of a payload, compared when a duplicate seq arrives.
pub type PayloadHash = [u8; 32];

pub fn payload_hash(payload: &[u8]) -> PayloadHash {
    Sha256::digest(payload).into()
}

// Wire forms. Variants are only ever appended.
#[derive(Serialize, Deserialize)]
struct OpV1 {
    site: String,
    at_ms: i64,
    operator: String,
    station: String,
    body: OpBodyV1,
}

#[derive(Serialize, Deserialize)]
enum OpBodyV1 {
    UnitReceived {
        lpn: String,
        rma: Option<String>,
        sku: String,
        receipt: ReceiptV1,
        parcel_ref: Option<String>,
    },
    UnitGraded {
        lpn: String,
        grade: GradeV1,
        defects: Vec<DefectV1>,
    },
    DispositionSet {
        lpn: String,
        disposition: DispositionV1,
    },
    InventoryAdjusted {
        sku: String,
        delta: i64,
    },
    ReceiptVoided {
        lpn: String,
    },
    ParcelClosed {
        rma: String,
        shortages: Vec<(String, u32)>,
    },
    DispositionUndone {
        lpn: String,
        grade: GradeV1,
    },
    UnitPutAway {
        lpn: String,
        bin: String,
    },
    UnitDeparted {
        lpn: String,
        departure: DepartureV1,
        tracking: Option<String>,
    },
    UnitTested {
        lpn: String,
        passed: bool,
    },
    TransferReceived {
        lpn: String,
        from: String,
    },
    UnitMatched {
        lpn: String,
        rma: String,
    },
    ToteReceived {
        tote: String,
    },
    DatabaseRewound {
        epoch: u64,
        head_seq: u64,
        new_epoch: u64,
    },
    UnitReleased {
        lpn: String,
        supervisor: String,
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
enum DepartureV1 {
    Transfer { to: String },
    Vendor,
    Recycler,
    Disposal,
    Exchange { rma: String },
    // Appended: only sent by an agent that was ordered a ship-back, which only a coordinator
    // that reads it orders.
    ToCustomer { rma: String },
}

#[derive(Clone, Copy, Serialize, Deserialize)]
enum DefectV1 {
    Stain,
    Tear,
    Scratch,
    Dent,
    MissingPart,
    MissingTags,
    NotWorking,
    Odor,
    PackagingDamaged,
}

#[derive(Serialize, Deserialize)]
struct RuleV1 {
    category: Option<String>,
    grade: GradeV1,
    disposition: DispositionV1,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
enum ReceiptV1 {
    Matched,
    Over,
    WrongItem,
    Unidentified,
    FinalSale,
}

#[derive(Serialize, Deserialize)]
struct CatalogItemV1 {
    sku: String,
    gtin14: Option<String>,
    category: String,
    price_yen: u64,
    final_sale: bool,
    needs_testing: bool,
}

#[derive(Serialize, Deserialize)]
enum CommandV1 {
    ExpectedReturn {
        rma: String,
        lines: Vec<LineV1>,
        customer_name: Option<String>,
    },
    DispositionOverride {
        lpn: String,
        disposition: DispositionV1,
    },
    CatalogUpdate {
        items: Vec<CatalogItemV1>,
    },
    MatchUnidentified {
        lpn: String,
        rma: String,
    },
    DispositionRules {
        rules: Vec<RuleV1>,
    },
    ForgetCustomer {
        rmas: Vec<String>,
    },
    // Appended: agents built before it record it as undecodable and move past it.
    WithdrawExpectedReturn {
        rma: String,
    },
    TransferOrder {
        lpn: String,
        to: String,
    },
    ExpectedTransfer {
        lpn: String,
        sku: String,
        grade: GradeV1,
        disposition: DispositionV1,
        from: String,
    },
    ExchangeOrder {
        rma: String,
        sku: String,
    },
    ExchangeWithdrawn {
        rma: String,
    },
    ExpectedTote {
        tote: String,
        rmas: Vec<String>,
    },
    ReturnTracking {
        rma: String,
        tracking: String,
    },
    // Appended: an agent built before it records it as undecodable (logged, the stream goes
    // on) and the unit stays at the site until the agent is upgraded and ordered again.
    ShipBack {
        lpn: String,
        rma: String,
    },
}

#[derive(Serialize, Deserialize)]
struct LineV1 {
    sku: String,
    qty: u32,
    reason: ReasonV1,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
enum GradeV1 {
    A,
    B,
    C,
    D,
    X,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
enum DispositionV1 {
    Restock,
    Resale,
    Refurbish,
    Recycle,
    Dispose,
    ReturnToVendor,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
enum ReasonV1 {
    TooSmall,
    TooLarge,
    NotAsDescribed,
    DamagedInTransit,
    Defective,
    WrongItemSent,
    ChangedMind,
    ArrivedLate,
    Other,
}

macro_rules! mirror_enum {
    ($domain:ident, $wire:ident, [$($v:ident),*]) => {
        impl From<$domain> for $wire {
            fn from(x: $domain) -> Self {
                match x { $($domain::$v => $wire::$v),* }
            }
        }
        impl From<$wire> for $domain {
            fn from(x: $wire) -> Self {
                match x { $($wire::$v => $domain::$v),* }
            }
        }
    };
}

mirror_enum!(Grade, GradeV1, [A, B, C, D, X]);
mirror_enum!(
    DefectCode,
    DefectV1,
    [
        Stain,
        Tear,
        Scratch,
        Dent,
        MissingPart,
        MissingTags,
        NotWorking,
        Odor,
        PackagingDamaged
    ]
);
mirror_enum!(
    ReceiptKind,
    ReceiptV1,
    [Matched, Over, WrongItem, Unidentified, FinalSale]
);
mirror_enum!(
    Disposition,
    DispositionV1,
    [Restock, Resale, Refurbish, Recycle, Dispose, ReturnToVendor]
);
mirror_enum!(
    ReasonCode,
    ReasonV1,
    [
        TooSmall,
        TooLarge,
        NotAsDescribed,
        DamagedInTransit,
        Defective,
        WrongItemSent,
        ChangedMind,
        ArrivedLate,
        Other
    ]
);

fn invalid(what: &'static str) -> impl Fn(DomainError) -> WireError {
    move |source| WireError::Invalid { what, source }
}

fn with_format(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(PAYLOAD_FORMAT);
    out.extend_from_slice(&body);
    out
}

fn strip_format<'a>(what: &'static str, payload: &'a [u8]) -> Result<&'a [u8], WireError> {
    match payload.split_first() {
        Some((&PAYLOAD_FORMAT, rest)) => Ok(rest),
        Some((&other, _)) => Err(WireError::UnsupportedVersion {
            what,
            version: u16::from(other),
        }),
        None => Err(WireError::Malformed {
            what,
            reason: "empty payload".into(),
        }),
    }
}

pub fn encode_op(op: &OpRecord) -> Result<Vec<u8>, WireError> {
    let body = match &op.body {
        OpBody::UnitReceived {
            lpn,
            rma,
            sku,
            receipt,
            parcel_ref,
        } => OpBodyV1::UnitReceived {
            lpn: lpn.to_string(),
            rma: rma.as_ref().map(ToString::to_string),
            sku: sku.to_string(),
            receipt: (*receipt).into(),
            parcel_ref: parcel_ref.clone(),
        },
        OpBody::UnitGraded {
            lpn,
            grade,
            defects,
        } => OpBodyV1::UnitGraded {
            lpn: lpn.to_string(),
            grade: (*grade).into(),
            defects: defects.iter().map(|d| (*d).into()).collect(),
        },
        OpBody::DispositionSet { lpn, disposition } => OpBodyV1::DispositionSet {
            lpn: lpn.to_string(),
            disposition: (*disposition).into(),
        },
        OpBody::InventoryAdjusted { sku, delta } => OpBodyV1::InventoryAdjusted {
            sku: sku.to_string(),
            delta: *delta,
        },
        OpBody::ReceiptVoided { lpn } => OpBodyV1::ReceiptVoided {
            lpn: lpn.to_string(),
        },
        OpBody::ParcelClosed { rma, shortages } => OpBodyV1::ParcelClosed {
            rma: rma.to_string(),
            shortages: shortages.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        },
        OpBody::DispositionUndone { lpn, grade } => OpBodyV1::DispositionUndone {
            lpn: lpn.to_string(),
            grade: (*grade).into(),
        },
        OpBody::UnitPutAway { lpn, bin } => OpBodyV1::UnitPutAway {
            lpn: lpn.to_string(),
            bin: bin.to_string(),
        },
        OpBody::UnitDeparted {
            lpn,
            departure,
            tracking,
        } => OpBodyV1::UnitDeparted {
            lpn: lpn.to_string(),
            departure: match departure {
                Departure::Transfer { to } => DepartureV1::Transfer { to: to.to_string() },
                Departure::Vendor => DepartureV1::Vendor,
                Departure::Recycler => DepartureV1::Recycler,
                Departure::Disposal => DepartureV1::Disposal,
                Departure::Exchange { rma } => DepartureV1::Exchange {
                    rma: rma.to_string(),
                },
                Departure::ToCustomer { rma } => DepartureV1::ToCustomer {
                    rma: rma.to_string(),
                },
            },
            tracking: tracking.clone(),
        },
        OpBody::UnitTested { lpn, passed } => OpBodyV1::UnitTested {
            lpn: lpn.to_string(),
            passed: *passed,
        },
        OpBody::TransferReceived { lpn, from } => OpBodyV1::TransferReceived {
            lpn: lpn.to_string(),
            from: from.to_string(),
        },
        OpBody::UnitMatched { lpn, rma } => OpBodyV1::UnitMatched {
            lpn: lpn.to_string(),
            rma: rma.to_string(),
        },
        OpBody::ToteReceived { tote } => OpBodyV1::ToteReceived {
            tote: tote.to_string(),
        },
        OpBody::DatabaseRewound {
            epoch,
            head_seq,
            new_epoch,
        } => OpBodyV1::DatabaseRewound {
            epoch: epoch.0,
            head_seq: *head_seq,
            new_epoch: new_epoch.0,
        },
        OpBody::UnitReleased {
            lpn,
            supervisor,
            reason,
        } => OpBodyV1::UnitReleased {
            lpn: lpn.to_string(),
            supervisor: supervisor.clone(),
            reason: reason.clone(),
        },
    };
    let wire = OpV1 {
        site: op.site.to_string(),
        at_ms: op.at_ms,
        operator: op.operator.clone(),
        station: op.station.clone(),
        body,
    };
    Ok(with_format(encode_body("op", &wire)?))
}

pub fn decode_op(payload: &[u8]) -> Result<OpRecord, WireError> {
    let wire: OpV1 = decode_body("op", strip_format("op", payload)?)?;
    if wire.operator.len() > OPERATOR_LEN_MAX || wire.station.len() > OPERATOR_LEN_MAX {
        return Err(WireError::Malformed {
            what: "op",
            reason: format!("operator or station longer than {OPERATOR_LEN_MAX} bytes"),
        });
    }
    let e = invalid("op");
    let body = match wire.body {
        OpBodyV1::UnitReceived {
            lpn,
            rma,
            sku,
            receipt,
            parcel_ref,
        } => {
            if parcel_ref
                .as_ref()
                .is_some_and(|r| r.len() > PARCEL_REF_LEN_MAX)
            {
                return Err(WireError::Malformed {
                    what: "op",
                    reason: format!("parcel reference longer than {PARCEL_REF_LEN_MAX} bytes"),
                });
            }
            OpBody::UnitReceived {
                lpn: Lpn::new(lpn).map_err(&e)?,
                rma: rma.map(RmaId::new).transpose().map_err(&e)?,
                sku: Sku::new(sku).map_err(&e)?,
                receipt: receipt.into(),
                parcel_ref,
            }
        }
        OpBodyV1::UnitGraded {
            lpn,
            grade,
            defects,
        } => {
            if defects.len() > DEFECTS_MAX {
                return Err(WireError::Malformed {
                    what: "op",
                    reason: format!("more than {DEFECTS_MAX} defects"),
                });
            }
            OpBody::UnitGraded {
                lpn: Lpn::new(lpn).map_err(&e)?,
                grade: grade.into(),
                defects: defects.into_iter().map(Into::into).collect(),
            }
        }
        OpBodyV1::DispositionSet { lpn, disposition } => OpBody::DispositionSet {
            lpn: Lpn::new(lpn).map_err(&e)?,
            disposition: disposition.into(),
        },
        OpBodyV1::InventoryAdjusted { sku, delta } => OpBody::InventoryAdjusted {
            sku: Sku::new(sku).map_err(&e)?,
            delta,
        },
        OpBodyV1::ReceiptVoided { lpn } => OpBody::ReceiptVoided {
            lpn: Lpn::new(lpn).map_err(&e)?,
        },
        OpBodyV1::ParcelClosed { rma, shortages } => {
            if shortages.len() > RETURN_LINES_MAX {
                return Err(WireError::Malformed {
                    what: "op",
                    reason: format!("more than {RETURN_LINES_MAX} shortage lines"),
                });
            }
            OpBody::ParcelClosed {
                rma: RmaId::new(rma).map_err(&e)?,
                shortages: shortages
                    .into_iter()
                    .map(|(s, n)| Sku::new(s).map(|s| (s, n)))
                    .collect::<Result<_, _>>()
                    .map_err(&e)?,
            }
        }
        OpBodyV1::DispositionUndone { lpn, grade } => OpBody::DispositionUndone {
            lpn: Lpn::new(lpn).map_err(&e)?,
            grade: grade.into(),
        },
        OpBodyV1::UnitPutAway { lpn, bin } => OpBody::UnitPutAway {
            lpn: Lpn::new(lpn).map_err(&e)?,
            bin: Bin::new(bin).map_err(&e)?,
        },
        OpBodyV1::UnitDeparted {
            lpn,
            departure,
            tracking,
        } => {
            if tracking
                .as_ref()
                .is_some_and(|t| t.len() > PARCEL_REF_LEN_MAX)
            {
                return Err(WireError::Malformed {
                    what: "op",
                    reason: format!("tracking number longer than {PARCEL_REF_LEN_MAX} bytes"),
                });
            }
            OpBody::UnitDeparted {
                lpn: Lpn::new(lpn).map_err(&e)?,
                departure: match departure {
                    DepartureV1::Transfer { to } => Departure::Transfer {
                        to: SiteId::new(to).map_err(&e)?,
                    },
                    DepartureV1::Vendor => Departure::Vendor,
                    DepartureV1::Recycler => Departure::Recycler,
                    DepartureV1::Disposal => Departure::Disposal,
                    DepartureV1::Exchange { rma } => Departure::Exchange {
                        rma: RmaId::new(rma).map_err(&e)?,
                    },
                    DepartureV1::ToCustomer { rma } => Departure::ToCustomer {
                        rma: RmaId::new(rma).map_err(&e)?,
                    },
                },
                tracking,
            }
        }
        OpBodyV1::UnitTested { lpn, passed } => OpBody::UnitTested {
            lpn: Lpn::new(lpn).map_err(&e)?,
            passed,
        },
        OpBodyV1::TransferReceived { lpn, from } => OpBody::TransferReceived {
            lpn: Lpn::new(lpn).map_err(&e)?,
            from: SiteId::new(from).map_err(&e)?,
        },
        OpBodyV1::UnitMatched { lpn, rma } => OpBody::UnitMatched {
            lpn: Lpn::new(lpn).map_err(&e)?,
            rma: RmaId::new(rma).map_err(&e)?,
        },
        OpBodyV1::ToteReceived { tote } => OpBody::ToteReceived {
            tote: ToteId::new(tote).map_err(&e)?,
        },
        OpBodyV1::DatabaseRewound {
            epoch,
            head_seq,
            new_epoch,
        } => OpBody::DatabaseRewound {
            epoch: Epoch(epoch),
            head_seq,
            new_epoch: Epoch(new_epoch),
        },
        OpBodyV1::UnitReleased {
            lpn,
            supervisor,
            reason,
        } => {
            if supervisor.len() > OPERATOR_LEN_MAX || reason.is_empty() {
                return Err(WireError::Malformed {
                    what: "op",
                    reason: format!(
                        "release needs a supervisor of at most {OPERATOR_LEN_MAX} bytes and a reason"
                    ),
                });
            }
            if reason.len() > RELEASE_REASON_BYTES_MAX {
                return Err(WireError::Malformed {
                    what: "op",
                    reason: format!("release reason longer than {RELEASE_REASON_BYTES_MAX} bytes"),
                });
            }
            OpBody::UnitReleased {
                lpn: Lpn::new(lpn).map_err(&e)?,
                supervisor,
                reason,
            }
        }
    };
    Ok(OpRecord {
        site: SiteId::new(wire.site).map_err(&e)?,
        at_ms: wire.at_ms,
        operator: wire.operator,
        station: wire.station,
        body,
    })
}

pub fn encode_command(command: &CommandBody) -> Result<Vec<u8>, WireError> {
    let wire = match command {
        CommandBody::ExpectedReturn {
            rma,
            lines,
            customer_name,
        } => CommandV1::ExpectedReturn {
            customer_name: customer_name.clone(),
            rma: rma.to_string(),
            lines: lines
                .iter()
                .map(|l| LineV1 {
                    sku: l.sku.to_string(),
                    qty: l.qty,
                    reason: l.reason.into(),
                })
                .collect(),
        },
        CommandBody::DispositionOverride { lpn, disposition } => CommandV1::DispositionOverride {
            lpn: lpn.to_string(),
            disposition: (*disposition).into(),
        },
        CommandBody::CatalogUpdate { items } => CommandV1::CatalogUpdate {
            items: items
                .iter()
                .map(|i| CatalogItemV1 {
                    sku: i.sku.to_string(),
                    gtin14: i.gtin14.clone(),
                    category: i.category.clone(),
                    price_yen: i.price_yen,
                    final_sale: i.final_sale,
                    needs_testing: i.needs_testing,
                })
                .collect(),
        },
        CommandBody::MatchUnidentified { lpn, rma } => CommandV1::MatchUnidentified {
            lpn: lpn.to_string(),
            rma: rma.to_string(),
        },
        CommandBody::ForgetCustomer { rmas } => CommandV1::ForgetCustomer {
            rmas: rmas.iter().map(ToString::to_string).collect(),
        },
        CommandBody::WithdrawExpectedReturn { rma } => CommandV1::WithdrawExpectedReturn {
            rma: rma.to_string(),
        },
        CommandBody::TransferOrder { lpn, to } => CommandV1::TransferOrder {
            lpn: lpn.to_string(),
            to: to.to_string(),
        },
        CommandBody::ExpectedTransfer {
            lpn,
            sku,
            grade,
            disposition,
            from,
        } => CommandV1::ExpectedTransfer {
            lpn: lpn.to_string(),
            sku: sku.to_string(),
            grade: (*grade).into(),
            disposition: (*disposition).into(),
            from: from.to_string(),
        },
        CommandBody::ExchangeOrder { rma, sku } => CommandV1::ExchangeOrder {
            rma: rma.to_string(),
            sku: sku.to_string(),
        },
        CommandBody::ExchangeWithdrawn { rma } => CommandV1::ExchangeWithdrawn {
            rma: rma.to_string(),
        },
        CommandBody::ExpectedTote { tote, rmas } => CommandV1::ExpectedTote {
            tote: tote.to_string(),
            rmas: rmas.iter().map(ToString::to_string).collect(),
        },
        CommandBody::ReturnTracking { rma, tracking } => CommandV1::ReturnTracking {
            rma: rma.to_string(),
            tracking: tracking.clone(),
        },
        CommandBody::ShipBack { lpn, rma } => CommandV1::ShipBack {
            lpn: lpn.to_string(),
            rma: rma.to_string(),
        },
        CommandBody::DispositionRules { rules } => CommandV1::DispositionRules {
            rules: rules
                .iter()
                .map(|r| RuleV1 {
                    category: r.category.clone(),
                    grade: r.grade.into(),
                    disposition: r.disposition.into(),
                })
                .collect(),
        },
    };
    Ok(with_format(encode_body("command", &wire)?))
}

pub fn decode_command(payload: &[u8]) -> Result<CommandBody, WireError> {
    let wire: CommandV1 = decode_body("command", strip_format("command", payload)?)?;
    let e = invalid("command");
    Ok(match wire {
        CommandV1::ExpectedReturn {
            rma,
            lines,
            customer_name,
        } => {
            if customer_name
                .as_ref()
                .is_some_and(|n| n.len() > CUSTOMER_NAME_BYTES_MAX)
            {
                return Err(WireError::Malformed {
                    what: "command",
                    reason: format!("customer name longer than {CUSTOMER_NAME_BYTES_MAX} bytes"),
                });
            }
            if lines.len() > RETURN_LINES_MAX {
                return Err(WireError::Malformed {
                    what: "command",
                    reason: format!("more than {RETURN_LINES_MAX} return lines"),
                });
            }
            CommandBody::ExpectedReturn {
                customer_name,
                rma: RmaId::new(rma).map_err(&e)?,
                lines: lines
                    .into_iter()
                    .map(|l| ReturnLine::new(Sku::new(l.sku)?, l.qty, l.reason.into()))
                    .collect::<Result<_, _>>()
                    .map_err(&e)?,
            }
        }
        CommandV1::DispositionOverride { lpn, disposition } => CommandBody::DispositionOverride {
            lpn: Lpn::new(lpn).map_err(&e)?,
            disposition: disposition.into(),
        },
        CommandV1::CatalogUpdate { items } => {
            if items.len() > CATALOG_ITEMS_PER_COMMAND_MAX {
                return Err(WireError::Malformed {
                    what: "command",
                    reason: format!("more than {CATALOG_ITEMS_PER_COMMAND_MAX} catalogue items"),
                });
            }
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                if let Some(g) = &i.gtin14 {
                    if g.len() != 14 || !g.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(WireError::Malformed {
                            what: "command",
                            reason: format!("catalogue GTIN {g:?} is not 14 digits"),
                        });
                    }
                }
                if i.category.len() > OPERATOR_LEN_MAX {
                    return Err(WireError::Malformed {
                        what: "command",
                        reason: format!("catalogue category longer than {OPERATOR_LEN_MAX} bytes"),
                    });
                }
                out.push(CatalogItem {
                    sku: Sku::new(i.sku).map_err(&e)?,
                    gtin14: i.gtin14,
                    category: i.category,
                    price_yen: i.price_yen,
                    final_sale: i.final_sale,
                    needs_testing: i.needs_testing,
                });
            }
            CommandBody::CatalogUpdate { items: out }
        }
        CommandV1::MatchUnidentified { lpn, rma } => CommandBody::MatchUnidentified {
            lpn: Lpn::new(lpn).map_err(&e)?,
            rma: RmaId::new(rma).map_err(&e)?,
        },
        CommandV1::ForgetCustomer { rmas } => {
            if rmas.len() > RETURN_LINES_MAX {
                return Err(WireError::Malformed {
                    what: "command",
                    reason: format!("more than {RETURN_LINES_MAX} returns to forget"),
                });
            }
            CommandBody::ForgetCustomer {
                rmas: rmas
                    .into_iter()
                    .map(RmaId::new)
                    .collect::<Result<_, _>>()
                    .map_err(&e)?,
            }
        }
        CommandV1::WithdrawExpectedReturn { rma } => CommandBody::WithdrawExpectedReturn {
            rma: RmaId::new(rma).map_err(&e)?,
        },
        CommandV1::DispositionRules { rules } => {
            if rules.len() > RULES_MAX {
                return Err(WireError::Malformed {
                    what: "command",
                    reason: format!("more than {RULES_MAX} disposition rules"),
                });
            }
            CommandBody::DispositionRules {
                rules: rules
                    .into_iter()
                    .map(|r| DispositionRule {
                        category: r.category,
                        grade: r.grade.into(),
                        disposition: r.disposition.into(),
                    })
                    .collect(),
            }
        }
        CommandV1::TransferOrder { lpn, to } => CommandBody::TransferOrder {
            lpn: Lpn::new(lpn).map_err(&e)?,
            to: SiteId::new(to).map_err(&e)?,
        },
        CommandV1::ExpectedTransfer {
            lpn,
            sku,
            grade,
            disposition,
            from,
        } => CommandBody::ExpectedTransfer {
            lpn: Lpn::new(lpn).map_err(&e)?,
            sku: Sku::new(sku).map_err(&e)?,
            grade: grade.into(),
            disposition: disposition.into(),
            from: SiteId::new(from).map_err(&e)?,
        },
        CommandV1::ExchangeOrder { rma, sku } => CommandBody::ExchangeOrder {
            rma: RmaId::new(rma).map_err(&e)?,
            sku: Sku::new(sku).map_err(&e)?,
        },
        CommandV1::ExchangeWithdrawn { rma } => CommandBody::ExchangeWithdrawn {
            rma: RmaId::new(rma).map_err(&e)?,
        },
        CommandV1::ExpectedTote { tote, rmas } => {
            if rmas.len() > RETURN_LINES_MAX {
                return Err(WireError::Malformed {
                    what: "command",
                    reason: format!("more than {RETURN_LINES_MAX} returns in a tote"),
                });
            }
            CommandBody::ExpectedTote {
                tote: ToteId::new(tote).map_err(&e)?,
                rmas: rmas
                    .into_iter()
                    .map(RmaId::new)
                    .collect::<Result<_, _>>()
                    .map_err(&e)?,
            }
        }
        CommandV1::ReturnTracking { rma, tracking } => {
            if tracking.is_empty() || tracking.len() > PARCEL_REF_LEN_MAX {
                return Err(WireError::Malformed {
                    what: "command",
                    reason: format!("tracking number must be 1..={PARCEL_REF_LEN_MAX} bytes"),
                });
            }
            CommandBody::ReturnTracking {
                rma: RmaId::new(rma).map_err(&e)?,
                tracking,
            }
        }
        CommandV1::ShipBack { lpn, rma } => CommandBody::ShipBack {
            lpn: Lpn::new(lpn).map_err(&e)?,
            rma: RmaId::new(rma).map_err(&e)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> OpRecord {
        OpRecord {
            site: SiteId::new("sendai").unwrap(),
            at_ms: 1_700_000_000_000,
            operator: "B-0042".into(),
            station: "recv-1".into(),
            body: OpBody::UnitReceived {
                lpn: Lpn::new("LPN-SENDAI-1").unwrap(),
                rma: Some(RmaId::new("RMA-9").unwrap()),
                sku: Sku::new("TSHIRT-M").unwrap(),
                receipt: ReceiptKind::Matched,
                parcel_ref: None,
            },
        }
    }

    #[test]
    fn op_round_trips_and_hash_is_stable() {
        let bytes = encode_op(&op()).unwrap();
        assert_eq!(decode_op(&bytes).unwrap(), op());
        assert_eq!(
            payload_hash(&bytes),
            payload_hash(&encode_op(&op()).unwrap())
        );
    }

    #[test]
    fn decoding_validates_ids() {
        let mut bad = op();
        bad.operator = "x".into();
        let mut bytes = encode_op(&bad).unwrap();
        // Corrupt the site id ("sendai") into an uppercase letter.
        let pos = bytes.iter().position(|b| *b == b's').unwrap();
        bytes[pos] = b'S';
        let err = decode_op(&bytes).unwrap_err();
        assert!(err.to_string().contains("site id"), "{err}");
    }

    #[test]
    fn unknown_payload_format_is_named() {
        let mut bytes = encode_op(&op()).unwrap();
        bytes[0] = 9;
        let err = decode_op(&bytes).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
        assert!(decode_op(&[]).is_err());
    }

    #[test]
    fn command_round_trips() {
        let cmd = CommandBody::ExpectedReturn {
            customer_name: Some("山田 太郎".into()),
            rma: RmaId::new("RMA-1").unwrap(),
            lines: vec![ReturnLine::new(Sku::new("A").unwrap(), 2, ReasonCode::TooSmall).unwrap()],
        };
        let bytes = encode_command(&cmd).unwrap();
        assert_eq!(decode_command(&bytes).unwrap(), cmd);
        let bad = CommandBody::ExpectedReturn {
            customer_name: None,
            rma: RmaId::new("RMA-1").unwrap(),
            lines: vec![ReturnLine {
                sku: Sku::new("A").unwrap(),
                qty: 0,
                reason: ReasonCode::Other,
            }],
        };
        let err = decode_command(&encode_command(&bad).unwrap()).unwrap_err();
        assert!(err.to_string().contains("quantity"), "{err}");
    }

    #[test]
    fn execution_ops_and_their_commands_round_trip() {
        let lpn = Lpn::new("LPN-SENDAI-1").unwrap();
        let rma = RmaId::new("RMA-9").unwrap();
        let fukuoka = SiteId::new("fukuoka").unwrap();
        let departures = [
            Departure::Transfer {
                to: fukuoka.clone(),
            },
            Departure::Vendor,
            Departure::Recycler,
            Departure::Disposal,
            Departure::Exchange { rma: rma.clone() },
            Departure::ToCustomer { rma: rma.clone() },
        ];
        let mut bodies = vec![
            OpBody::UnitPutAway {
                lpn: lpn.clone(),
                bin: Bin::new("A0103").unwrap(),
            },
            OpBody::UnitTested {
                lpn: lpn.clone(),
                passed: false,
            },
            OpBody::TransferReceived {
                lpn: lpn.clone(),
                from: fukuoka.clone(),
            },
            OpBody::UnitMatched {
                lpn: lpn.clone(),
                rma: rma.clone(),
            },
            OpBody::ToteReceived {
                tote: ToteId::new("TOTE-0000000001-X").unwrap(),
            },
            OpBody::DatabaseRewound {
                epoch: Epoch(0x1234_00a3),
                head_seq: 11,
                new_epoch: Epoch(0x5678_0b12),
            },
            OpBody::UnitReleased {
                lpn: lpn.clone(),
                supervisor: "B-0042".into(),
                reason: "no order found after 30 days".into(),
            },
        ];
        bodies.extend(
            departures
                .into_iter()
                .map(|departure| OpBody::UnitDeparted {
                    lpn: lpn.clone(),
                    departure,
                    tracking: Some("123456789013".into()),
                }),
        );
        for body in bodies {
            let record = OpRecord { body, ..op() };
            assert_eq!(decode_op(&encode_op(&record).unwrap()).unwrap(), record);
        }
        let too_long = OpRecord {
            body: OpBody::UnitDeparted {
                lpn: lpn.clone(),
                departure: Departure::Vendor,
                tracking: Some("9".repeat(PARCEL_REF_LEN_MAX + 1)),
            },
            ..op()
        };
        let err = decode_op(&encode_op(&too_long).unwrap()).unwrap_err();
        assert!(err.to_string().contains("tracking"), "{err}");
        for reason in [String::new(), "x".repeat(RELEASE_REASON_BYTES_MAX + 1)] {
            let unexplained = OpRecord {
                body: OpBody::UnitReleased {
                    lpn: lpn.clone(),
                    supervisor: "B-0042".into(),
                    reason,
                },
                ..op()
            };
            let err = decode_op(&encode_op(&unexplained).unwrap()).unwrap_err();
            assert!(err.to_string().contains("reason"), "{err}");
        }

        for cmd in [
            CommandBody::TransferOrder {
                lpn: lpn.clone(),
                to: fukuoka.clone(),
            },
            CommandBody::ExpectedTransfer {
                lpn: lpn.clone(),
                sku: Sku::new("TEE").unwrap(),
                grade: Grade::A,
                disposition: Disposition::Restock,
                from: fukuoka,
            },
            CommandBody::ExchangeOrder {
                rma: rma.clone(),
                sku: Sku::new("TEE").unwrap(),
            },
            CommandBody::ExchangeWithdrawn { rma: rma.clone() },
            CommandBody::ExpectedTote {
                tote: ToteId::new("TOTE-0000000001-X").unwrap(),
                rmas: vec![rma.clone()],
            },
            CommandBody::ReturnTracking {
                rma: rma.clone(),
                tracking: "444413758703".into(),
            },
            CommandBody::ShipBack {
                lpn: lpn.clone(),
                rma: rma.clone(),
            },
        ] {
            assert_eq!(decode_command(&encode_command(&cmd).unwrap()).unwrap(), cmd);
        }
    }

    #[test]
    fn a_ship_back_is_appended_after_the_thirteen_older_commands() {
        let cmd = CommandBody::ShipBack {
            lpn: Lpn::new("LPN-1").unwrap(),
            rma: RmaId::new("RMA-7").unwrap(),
        };
        let bytes = encode_command(&cmd).unwrap();
        // Format byte, then bincode's variant index: 13. An agent built before it knows
        // indices 0..=12 only, so it records the command as undecodable and goes on.
        assert_eq!(&bytes[..2], &[PAYLOAD_FORMAT, 13]);
        let mut unknown = bytes.clone();
        unknown[1] = 14;
        assert!(decode_command(&unknown).is_err());
    }

    #[test]
    fn withdraw_round_trips_with_its_appended_variant_index() {
        let cmd = CommandBody::WithdrawExpectedReturn {
            rma: RmaId::new("RMA-7").unwrap(),
        };
        let bytes = encode_command(&cmd).unwrap();
        assert_eq!(decode_command(&bytes).unwrap(), cmd);
        // Format byte, then bincode's variant index: 6, after the six older commands. An
        // older agent decodes the index as unknown and records the command as undecodable.
        assert_eq!(&bytes[..2], &[PAYLOAD_FORMAT, 6]);
        let mut bad = bytes.clone();
        let pos = bad.iter().position(|b| *b == b'R').unwrap();
        bad[pos] = b'r';
        let err = decode_command(&bad).unwrap_err();
        assert!(err.to_string().contains("rma"), "{err}");
    }
}

#[cfg(test)]
mod rewound_tests {
    use super::*;

    #[test]
    fn a_rewound_database_is_reported_with_its_appended_variant_index() {
        let record = OpRecord {
            site: SiteId::new("sendai").unwrap(),
            at_ms: 1,
            operator: "system".into(),
            station: "sync".into(),
            body: OpBody::DatabaseRewound {
                epoch: Epoch(7),
                head_seq: 1,
                new_epoch: Epoch(9),
            },
        };
        let bytes = encode_op(&record).unwrap();
        assert_eq!(decode_op(&bytes).unwrap(), record);
        // Appended after the thirteen older ops: a coordinator built before it records the
        // op as undecodable (an anomaly) and its stream advances.
        // Format byte, site (1 + 6), at_ms (1), operator (1 + 6), station (1 + 4), variant.
        assert_eq!(bytes[21], 13);
    }
}
