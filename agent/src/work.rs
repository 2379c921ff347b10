//! The site's work: every station action as one transaction, together with its outbox op and
//! its audit row.
//!
//! Invariant: a state change, the op that reports it and the audit line that says who did it
//! are written together or not at all, and the lifecycle is checked before anything is written.
//! Corrections (void, re-grade, undo) are new ops, never edits of old ones.

use std::collections::BTreeMap;

use modori_shared::barcode;
use modori_shared::domain::{
    Bin, Departure, Disposition, Epoch, Grade, Lpn, RmaId, SiteId, Sku, ToteId, UnitState,
};
use modori_shared::op::{DispositionRule, OpBody, OpRecord};
use modori_shared::station::{
    grade_a_refused, quarantine_refusal, Effect, ExpectedParcel, Lookup, ProductFlags, ReceiptKind,
    UnitView, WAITING_TO_BE_MATCHED_SQL,
};
use modori_shared::sync::ITEM_PAYLOAD_BYTES_MAX;
use modori_shared::wire::payload;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;

use crate::store::error::StoreError;
use modori_runtime::sqlite::{to_i64, to_u64};

/// Who did it, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Badge of the person (`B-1234`), or `system`.
    pub operator: String,
    /// The station (`recv-1`), or `ctl` for a supervisor's command.
    pub station: String,
}

impl Actor {
    pub fn new(operator: impl Into<String>, station: impl Into<String>) -> Self {
        Self {
            operator: operator.into(),
            station: station.into(),
        }
    }
}

/// Appends an op to the outbox, and its audit row, inside the caller's transaction.
pub(crate) fn record_op(
    tx: &Transaction<'_>,
    site: &SiteId,
    who: &Actor,
    body: OpBody,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let kind = body.kind();
    let (lpn, rma, detail) = audit_fields(&body);
    let bytes = payload::encode_op(&OpRecord {
        site: site.clone(),
        at_ms: now_ms,
        operator: who.operator.clone(),
        station: who.station.clone(),
        body,
    })?;
    if bytes.len() > ITEM_PAYLOAD_BYTES_MAX {
        return Err(StoreError::PayloadTooLarge(bytes.len()));
    }
    let seq: i64 = tx.query_row(
        "UPDATE sync_state SET op_head_seq = op_head_seq + 1 WHERE id = 1 RETURNING op_head_seq",
        [],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO outbox (seq, kind, payload, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![seq, kind, bytes, now_ms],
    )?;
    tx.execute(
        "INSERT INTO audit (lpn, rma, action, detail, operator, station, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![lpn, rma, kind, detail, who.operator, who.station, now_ms],
    )?;
    Ok(to_u64(seq))
}

fn audit_fields(body: &OpBody) -> (Option<String>, Option<String>, String) {
    match body {
        OpBody::UnitReceived {
            lpn,
            rma,
            sku,
            receipt,
            parcel_ref,
        } => (
            Some(lpn.to_string()),
            rma.as_ref().map(ToString::to_string),
            format!(
                "{sku} {}{}",
                receipt.as_str(),
                parcel_ref
                    .as_ref()
                    .map(|r| format!(" ref {r}"))
                    .unwrap_or_default()
            ),
        ),
        OpBody::UnitGraded {
            lpn,
            grade,
            defects,
        } => {
            let listed: Vec<&str> = defects.iter().map(|d| d.as_str()).collect();
            let detail = if listed.is_empty() {
                format!("grade {grade}")
            } else {
                format!("grade {grade}, defects {}", listed.join(", "))
            };
            (Some(lpn.to_string()), None, detail)
        }
        OpBody::DispositionSet { lpn, disposition } => {
            (Some(lpn.to_string()), None, disposition.to_string())
        }
        OpBody::InventoryAdjusted { sku, delta } => (None, None, format!("{sku} {delta:+}")),
        OpBody::ReceiptVoided { lpn } => (Some(lpn.to_string()), None, String::new()),
        OpBody::ParcelClosed { rma, shortages } => (
            None,
            Some(rma.to_string()),
            shortages
                .iter()
                .map(|(s, n)| format!("short {s} ×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        OpBody::DispositionUndone { lpn, grade } => (
            Some(lpn.to_string()),
            None,
            format!("back to grade {grade}"),
        ),
        OpBody::UnitPutAway { lpn, bin } => (Some(lpn.to_string()), None, format!("bin {bin}")),
        OpBody::UnitDeparted {
            lpn,
            departure,
            tracking,
        } => (
            Some(lpn.to_string()),
            match departure {
                Departure::Exchange { rma } | Departure::ToCustomer { rma } => Some(rma.to_string()),
                _ => None,
            },
            match tracking {
                Some(t) => format!("{departure}, tracking {t}"),
                None => departure.to_string(),
            },
        ),
        OpBody::UnitTested { lpn, passed } => (
            Some(lpn.to_string()),
            None,
            if *passed { "passed" } else { "failed" }.to_owned(),
        ),
        OpBody::TransferReceived { lpn, from } => {
            (Some(lpn.to_string()), None, format!("from {from}"))
        }
        OpBody::ToteReceived { tote } => (None, None, format!("tote {tote} received")),
        OpBody::DatabaseRewound {
            epoch,
            head_seq,
            new_epoch,
        } => (
            None,
            None,
            format!("database went back in time: epoch {epoch} held {head_seq} ops here, but the coordinator had more; new epoch {new_epoch}"),
        ),
        OpBody::UnitMatched { lpn, rma } => (
            Some(lpn.to_string()),
            Some(rma.to_string()),
            "left quarantine".to_owned(),
        ),
        OpBody::UnitReleased {
            lpn,
            supervisor,
            reason,
        } => (
            Some(lpn.to_string()),
            None,
            format!("released from quarantine by {supervisor}: {reason}"),
        ),
    }
}

/// The label of the `n`th unit received in a database of `epoch`. The epoch's low 16 bits (its
/// generation) are part of it, so a site restored from a backup, whose counter starts again
/// from the backup's value, never prints a plate that already exists; its check character
/// makes a misread plate an error at the scanner, never another unit.
pub fn lpn_for(site: &SiteId, epoch: Epoch, n: u64) -> Result<Lpn, StoreError> {
    let generation = (epoch.0 & 0xffff) as u16;
    barcode::lpn_encode(site, generation, n)
        .map_err(|e| StoreError::Corrupt(format!("LPN for site {site}: {e}")))
}

/// What recording an effect produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The unit concerned (a new LPN for a receipt).
    pub lpn: Option<Lpn>,
    /// The last op written (0 for a reprint, which writes none).
    pub seq: u64,
    /// Label data for the printer, if the effect prints one.
    pub label: Option<LabelData>,
}

/// What a label shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelData {
    Unit {
        lpn: Lpn,
        sku: Sku,
        grade: Option<Grade>,
    },
    Disposition {
        lpn: Lpn,
        disposition: Disposition,
        /// The area of the site it goes to (`STOCK`, `REPAIR`, …), in large type.
        zone: String,
    },
    /// Stuck on a unit packed for another site.
    Transfer { lpn: Lpn, sku: Sku, to: SiteId },
    /// Stuck on the replacement shipped for an exchange.
    Exchange { lpn: Lpn, sku: Sku, rma: RmaId },
    /// Stuck on a unit sent back to the customer of its return.
    ShipBack { lpn: Lpn, sku: Sku, rma: RmaId },
}

/// Records one station effect in one transaction.
pub fn record(
    conn: &mut Connection,
    site: &SiteId,
    who: &Actor,
    effect: &Effect,
    now_ms: i64,
) -> Result<Recorded, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some(lpn) = gated_unit(effect) {
        if find_unit(&tx, lpn)?.is_some_and(|u| u.view.quarantined) {
            return Err(StoreError::Refused(quarantine_refusal(lpn)));
        }
    }
    let recorded = match effect {
        Effect::Receive {
            rma,
            sku,
            receipt,
            parcel_ref,
        } => receive(
            &tx,
            site,
            who,
            rma.as_ref(),
            sku,
            *receipt,
            parcel_ref.clone(),
            now_ms,
        )?,
        Effect::CloseTote { tote, closings } => {
            let mut seq = 0;
            for (rma, shortages) in closings {
                tx.execute(
                    "UPDATE expected_returns SET received_ms = COALESCE(received_ms, ?2) WHERE rma = ?1",
                    params![rma.as_str(), now_ms],
                )?;
                let body = OpBody::ParcelClosed {
                    rma: rma.clone(),
                    shortages: shortages.clone(),
                };
                seq = record_op(&tx, site, who, body, now_ms)?;
            }
            tx.execute(
                "UPDATE expected_totes SET received_ms = ?2 WHERE tote = ?1",
                params![tote.as_str(), now_ms],
            )?;
            let body = OpBody::ToteReceived { tote: tote.clone() };
            seq = seq.max(record_op(&tx, site, who, body, now_ms)?);
            Recorded {
                lpn: None,
                seq,
                label: None,
            }
        }
        Effect::CloseParcel { rma, shortages } => {
            tx.execute(
                "UPDATE expected_returns SET received_ms = COALESCE(received_ms, ?2) WHERE rma = ?1",
                params![rma.as_str(), now_ms],
            )?;
            let body = OpBody::ParcelClosed {
                rma: rma.clone(),
                shortages: shortages.clone(),
            };
            Recorded {
                lpn: None,
                seq: record_op(&tx, site, who, body, now_ms)?,
                label: None,
            }
        }
        Effect::Grade {
            lpn,
            grade,
            defects,
        } => {
            let unit = unit_row(&tx, lpn)?;
            if *grade == Grade::A
                && grade_a_refused(
                    unit.view.tested,
                    product_flags(&tx, &unit.view.sku)?.needs_testing,
                )
            {
                return Err(StoreError::Refused(format!(
                    "{lpn} ({}) needs a passed function test before grade A",
                    unit.view.sku
                )));
            }
            set_state(&tx, lpn, unit.view.state.grade(lpn, *grade)?, Some(*grade))?;
            let listed: Vec<&str> = defects.iter().map(|d| d.as_str()).collect();
            tx.execute(
                "UPDATE units SET defects = ?2 WHERE lpn = ?1",
                params![lpn.as_str(), listed.join(",")],
            )?;
            let body = OpBody::UnitGraded {
                lpn: lpn.clone(),
                grade: *grade,
                defects: defects.clone(),
            };
            Recorded {
                lpn: Some(lpn.clone()),
                seq: record_op(&tx, site, who, body, now_ms)?,
                label: Some(LabelData::Unit {
                    lpn: lpn.clone(),
                    sku: unit.view.sku,
                    grade: Some(*grade),
                }),
            }
        }
        Effect::Dispose { lpn, disposition } => dispose(&tx, site, who, lpn, *disposition, now_ms)?,
        Effect::UndoDisposition { lpn } => undo_disposition(&tx, site, who, lpn, now_ms)?,
        Effect::VoidReceipt { lpn } => {
            let unit = unit_row(&tx, lpn)?;
            set_state(&tx, lpn, unit.view.state.void(lpn)?, unit.grade)?;
            tx.execute("UPDATE units SET bin = NULL WHERE lpn = ?1", [lpn.as_str()])?;
            let body = OpBody::ReceiptVoided { lpn: lpn.clone() };
            let mut seq = record_op(&tx, site, who, body, now_ms)?;
            if unit.view.state == UnitState::Placed(Disposition::Restock) {
                seq = adjust_inventory(&tx, site, who, &unit.view.sku, -1, now_ms)?;
            }
            Recorded {
                lpn: Some(lpn.clone()),
                seq,
                label: None,
            }
        }
        Effect::Test { lpn, passed } => {
            let unit = unit_row(&tx, lpn)?;
            // Testing belongs to inspection: after receipt, before the disposition.
            unit.view.state.grade(lpn, Grade::X)?;
            tx.execute(
                "UPDATE units SET tested = ?2 WHERE lpn = ?1",
                params![lpn.as_str(), passed],
            )?;
            let body = OpBody::UnitTested {
                lpn: lpn.clone(),
                passed: *passed,
            };
            Recorded {
                lpn: Some(lpn.clone()),
                seq: record_op(&tx, site, who, body, now_ms)?,
                label: None,
            }
        }
        Effect::PutAway { lpn, bin } => put_away(&tx, site, who, lpn, bin, now_ms)?,
        Effect::Depart {
            lpn,
            departure,
            tracking,
        } => depart(&tx, site, who, lpn, departure, tracking.clone(), now_ms)?,
        Effect::ReceiveTransfer { lpn, from } => {
            receive_transfer(&tx, site, who, lpn, from, now_ms)?
        }
        Effect::MatchQuarantined { lpn, rma } => {
            let n = tx.execute(
                "UPDATE units SET rma = ?2, quarantine = 0
                 WHERE lpn = ?1 AND quarantine = 1 AND state != 'voided'",
                params![lpn.as_str(), rma.as_str()],
            )?;
            if n == 0 {
                unit_row(&tx, lpn)?;
                return Err(StoreError::Refused(format!("{lpn} is not in quarantine")));
            }
            let body = OpBody::UnitMatched {
                lpn: lpn.clone(),
                rma: rma.clone(),
            };
            Recorded {
                lpn: Some(lpn.clone()),
                seq: record_op(&tx, site, who, body, now_ms)?,
                label: None,
            }
        }
        Effect::ReleaseQuarantined { lpn, reason } => release(&tx, site, who, lpn, reason, now_ms)?,
        Effect::Reprint { lpn } => {
            let unit = unit_row(&tx, lpn)?;
            Recorded {
                lpn: Some(lpn.clone()),
                seq: 0,
                label: Some(LabelData::Unit {
                    lpn: lpn.clone(),
                    sku: unit.view.sku,
                    grade: unit.grade,
                }),
            }
        }
    };
    tx.commit()?;
    Ok(recorded)
}

/// The unit an effect would move on through grading, disposition, putaway or departure: what
/// the quarantine gate holds back. Voiding, testing and reprinting are not held.
fn gated_unit(effect: &Effect) -> Option<&Lpn> {
    match effect {
        Effect::Grade { lpn, .. }
        | Effect::Dispose { lpn, .. }
        | Effect::PutAway { lpn, .. }
        | Effect::Depart { lpn, .. } => Some(lpn),
        _ => None,
    }
}

/// A supervisor lets a quarantined unit go on without a match; the badge (`who`) and the
/// reason travel with the op and stay in the audit trail.
fn release(
    tx: &Transaction<'_>,
    site: &SiteId,
    who: &Actor,
    lpn: &Lpn,
    reason: &str,
    now_ms: i64,
) -> Result<Recorded, StoreError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > payload::RELEASE_REASON_BYTES_MAX {
        return Err(StoreError::Refused(format!(
            "a release needs a reason of 1..={} bytes",
            payload::RELEASE_REASON_BYTES_MAX
        )));
    }
    let n = tx.execute(
        "UPDATE units SET quarantine = 0 WHERE lpn = ?1 AND quarantine = 1 AND state != 'voided'",
        [lpn.as_str()],
    )?;
    if n == 0 {
        unit_row(tx, lpn)?;
        return Err(StoreError::Refused(format!("{lpn} is not in quarantine")));
    }
    let body = OpBody::UnitReleased {
        lpn: lpn.clone(),
        supervisor: who.operator.clone(),
        reason: reason.to_owned(),
    };
    Ok(Recorded {
        lpn: Some(lpn.clone()),
        seq: record_op(tx, site, who, body, now_ms)?,
        label: None,
    })
}

#[allow(clippy::too_many_arguments)]
fn receive(
    tx: &Transaction<'_>,
    site: &SiteId,
    who: &Actor,
    rma: Option<&RmaId>,
    sku: &Sku,
    receipt: ReceiptKind,
    parcel_ref: Option<String>,
    now_ms: i64,
) -> Result<Recorded, StoreError> {
    let n: i64 = tx.query_row(
        "UPDATE lpn_counter SET next = next + 1 WHERE id = 1 RETURNING next - 1",
        [],
        |r| r.get(0),
    )?;
    let epoch: i64 = tx.query_row("SELECT op_epoch FROM sync_state WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    let lpn = lpn_for(site, Epoch(to_u64(epoch)), to_u64(n))?;
    let parcel_closed = match rma {
        Some(rma) => tx
            .query_row(
                "SELECT received_ms IS NOT NULL FROM expected_returns WHERE rma = ?1",
                [rma.as_str()],
                |r| r.get::<_, bool>(0),
            )
            .optional()?
            .unwrap_or(false),
        None => false,
    };
    tx.execute(
        "INSERT INTO units (lpn, sku, rma, state, operator, received_ms, receipt, parcel_ref, quarantine)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            lpn.as_str(),
            sku.as_str(),
            rma.map(RmaId::as_str),
            UnitState::Received.encode(),
            who.operator,
            now_ms,
            receipt.as_str(),
            parcel_ref,
            receipt.holds_in_quarantine(parcel_closed)
        ],
    )?;
    let body = OpBody::UnitReceived {
        lpn: lpn.clone(),
        rma: rma.cloned(),
        sku: sku.clone(),
        receipt,
        parcel_ref,
    };
    Ok(Recorded {
        lpn: Some(lpn.clone()),
        seq: record_op(tx, site, who, body, now_ms)?,
        label: Some(LabelData::Unit {
            lpn,
            sku: sku.clone(),
            grade: None,
        }),
    })
}

/// The area of the site a disposition sends a unit to, printed on its label.
pub fn zone_for(disposition: Disposition) -> &'static str {
    match disposition {
        Disposition::Restock => "STOCK",
        Disposition::Resale => "RESALE",
        Disposition::Refurbish => "REPAIR",
        Disposition::Recycle => "RECYCLE",
        Disposition::Dispose => "WASTE",
        Disposition::ReturnToVendor => "RTV",
    }
}

fn dispose(
    tx: &Transaction<'_>,
    site: &SiteId,
    who: &Actor,
    lpn: &Lpn,
    disposition: Disposition,
    now_ms: i64,
) -> Result<Recorded, StoreError> {
    let unit = unit_row(tx, lpn)?;
    set_state(
        tx,
        lpn,
        unit.view.state.dispose(lpn, disposition)?,
        unit.grade,
    )?;
    let body = OpBody::DispositionSet {
        lpn: lpn.clone(),
        disposition,
    };
    Ok(Recorded {
        lpn: Some(lpn.clone()),
        seq: record_op(tx, site, who, body, now_ms)?,
        label: Some(LabelData::Disposition {
            lpn: lpn.clone(),
            disposition,
            zone: zone_for(disposition).to_owned(),
        }),
    })
}

/// The centre's final disposition replaces the site's: a correction as ops (undo, then the new
/// disposition) by `coordinator`, while the unit still waits for execution. A unit already in
/// a bin or gone keeps its course; the audit trail says the override came too late.
pub fn apply_override(
    tx: &Transaction<'_>,
    site: &SiteId,
    lpn: &Lpn,
    disposition: Disposition,
    now_ms: i64,
) -> Result<(), StoreError> {
    let who = Actor::new(COORDINATOR, COORDINATOR);
    let unit = find_unit(tx, lpn)?;
    match unit {
        Some(unit) if matches!(unit.view.state, UnitState::Disposed(d) if d != disposition) => {
            undo_disposition(tx, site, &who, lpn, now_ms)?;
            dispose(tx, site, &who, lpn, disposition, now_ms)?;
        }
        Some(unit) if unit.view.state == UnitState::Disposed(disposition) => {}
        other => {
            let detail = match other {
                Some(unit) => format!(
                    "override to {disposition} not applied: unit is {}",
                    unit.view.state.encode()
                ),
                None => format!("override to {disposition} not applied: no such unit here"),
            };
            tx.execute(
                "INSERT INTO audit (lpn, action, detail, operator, station, at_ms)
                 VALUES (?1, 'disposition_override', ?2, ?3, ?3, ?4)",
                params![lpn.as_str(), detail, COORDINATOR, now_ms],
            )?;
        }
    }
    Ok(())
}

/// The operator and station of what the coordinator decides.
const COORDINATOR: &str = "coordinator";

/// Into a bin. Sellable stock counts a restocked unit from the moment it is on the shelf, so
/// the inventory delta goes with the first put-away, not with the disposition.
fn put_away(
    tx: &Transaction<'_>,
    site: &SiteId,
    who: &Actor,
    lpn: &Lpn,
    bin: &Bin,
    now_ms: i64,
) -> Result<Recorded, StoreError> {
    let unit = unit_row(tx, lpn)?;
    let placed = unit.view.state.put_away(lpn)?;
    set_state(tx, lpn, placed, unit.grade)?;
    tx.execute(
        "UPDATE units SET bin = ?2 WHERE lpn = ?1",
        params![lpn.as_str(), bin.as_str()],
    )?;
    let body = OpBody::UnitPutAway {
        lpn: lpn.clone(),
        bin: bin.clone(),
    };
    let mut seq = record_op(tx, site, who, body, now_ms)?;
    if unit.view.state == UnitState::Disposed(Disposition::Restock) {
        seq = adjust_inventory(tx, site, who, &unit.view.sku, 1, now_ms)?;
    }
    Ok(Recorded {
        lpn: Some(lpn.clone()),
        seq,
        label: None,
    })
}

/// Out of the site. An exchange ships only the SKU its order asks for, once; a transfer
/// fulfils its order; sellable stock leaving its shelf is a negative inventory delta.
#[allow(clippy::too_many_arguments)]
fn depart(
    tx: &Transaction<'_>,
    site: &SiteId,
    who: &Actor,
    lpn: &Lpn,
    departure: &Departure,
    tracking: Option<String>,
    now_ms: i64,
) -> Result<Recorded, StoreError> {
    let unit = unit_row(tx, lpn)?;
    let departed = unit.view.state.depart(lpn, departure)?;
    let ordered_back = ship_back(tx, lpn)?;
    match (&ordered_back, departure) {
        (Some(ordered), Departure::ToCustomer { rma }) if ordered != rma => {
            return Err(StoreError::Refused(format!(
                "{lpn} goes back to the customer of {ordered}, not of {rma}"
            )));
        }
        (None, Departure::ToCustomer { rma }) => {
            return Err(StoreError::Refused(format!(
                "{lpn} is not ordered back to the customer of {rma} from here"
            )));
        }
        (Some(ordered), other) if !matches!(other, Departure::ToCustomer { .. }) => {
            return Err(StoreError::Refused(format!(
                "{lpn} goes back to the customer of {ordered}: ship it back, not as {}",
                other.name()
            )));
        }
        _ => {}
    }
    let label = match departure {
        Departure::Transfer { to } => {
            if to == site {
                return Err(StoreError::Refused(format!(
                    "{lpn} is already at {site}: transfer it to another site"
                )));
            }
            tx.execute("DELETE FROM transfer_orders WHERE lpn = ?1", [lpn.as_str()])?;
            Some(LabelData::Transfer {
                lpn: lpn.clone(),
                sku: unit.view.sku.clone(),
                to: to.clone(),
            })
        }
        Departure::Exchange { rma } => {
            let wanted = exchange_order(tx, rma)?.ok_or_else(|| {
                StoreError::Refused(format!("{rma} has no exchange waiting to ship from here"))
            })?;
            if wanted != unit.view.sku {
                return Err(StoreError::Refused(format!(
                    "{lpn} is {}, the exchange {rma} asks for {wanted}",
                    unit.view.sku
                )));
            }
            tx.execute(
                "UPDATE exchange_orders SET shipped_lpn = ?2 WHERE rma = ?1",
                params![rma.as_str(), lpn.as_str()],
            )?;
            Some(LabelData::Exchange {
                lpn: lpn.clone(),
                sku: unit.view.sku.clone(),
                rma: rma.clone(),
            })
        }
        Departure::ToCustomer { rma } => {
            tx.execute(
                "UPDATE ship_backs SET shipped_ms = ?2 WHERE lpn = ?1",
                params![lpn.as_str(), now_ms],
            )?;
            Some(LabelData::ShipBack {
                lpn: lpn.clone(),
                sku: unit.view.sku.clone(),
                rma: rma.clone(),
            })
        }
        Departure::Vendor | Departure::Recycler | Departure::Disposal => None,
    };
    if tracking
        .as_ref()
        .is_some_and(|t| t.len() > payload::PARCEL_REF_LEN_MAX)
    {
        return Err(StoreError::Refused(format!(
            "tracking number must be at most {} bytes",
            payload::PARCEL_REF_LEN_MAX
        )));
    }
    set_state(tx, lpn, departed, unit.grade)?;
    tx.execute(
        "UPDATE units SET bin = NULL, departure = ?2 WHERE lpn = ?1",
        params![lpn.as_str(), departure.to_string()],
    )?;
    let body = OpBody::UnitDeparted {
        lpn: lpn.clone(),
        departure: departure.clone(),
        tracking,
    };
    let mut seq = record_op(tx, site, who, body, now_ms)?;
    if unit.view.state == UnitState::Placed(Disposition::Restock) {
        seq = adjust_inventory(tx, site, who, &unit.view.sku, -1, now_ms)?;
    }
    Ok(Recorded {
        lpn: Some(lpn.clone()),
        seq,
        label,
    })
}

/// A unit transferred from another site arrives, disposed as it left.
fn receive_transfer(
    tx: &Transaction<'_>,
    site: &SiteId,
    who: &Actor,
    lpn: &Lpn,
    from: &SiteId,
    now_ms: i64,
) -> Result<Recorded, StoreError> {
    let expected: Option<(String, String, String, String)> = tx
        .query_row(
            "SELECT sku, grade, disposition, from_site FROM expected_transfers WHERE lpn = ?1",
            [lpn.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((sku, grade, disposition, expected_from)) = expected else {
        return Err(StoreError::Refused(format!(
            "{lpn} is not expected here from another site"
        )));
    };
    if expected_from != from.as_str() {
        return Err(StoreError::Refused(format!(
            "{lpn} is expected from {expected_from}, not {from}"
        )));
    }
    let sku = Sku::new(sku)?;
    let grade = Grade::parse(&grade)?;
    let state = UnitState::Departed(Disposition::parse(&disposition)?).arrive(lpn)?;
    tx.execute(
        "INSERT INTO units (lpn, sku, state, grade, operator, received_ms, receipt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'transfer')",
        params![
            lpn.as_str(),
            sku.as_str(),
            state.encode(),
            grade.as_str(),
            who.operator,
            now_ms
        ],
    )?;
    tx.execute(
        "DELETE FROM expected_transfers WHERE lpn = ?1",
        [lpn.as_str()],
    )?;
    let body = OpBody::TransferReceived {
        lpn: lpn.clone(),
        from: from.clone(),
    };
    Ok(Recorded {
        lpn: Some(lpn.clone()),
        seq: record_op(tx, site, who, body, now_ms)?,
        label: None,
    })
}

fn undo_disposition(
    tx: &Transaction<'_>,
    site: &SiteId,
    who: &Actor,
    lpn: &Lpn,
    now_ms: i64,
) -> Result<Recorded, StoreError> {
    let unit = unit_row(tx, lpn)?;
    let grade = unit
        .grade
        .ok_or_else(|| StoreError::Corrupt(format!("{lpn} is disposed but has no grade")))?;
    set_state(
        tx,
        lpn,
        unit.view.state.undo_disposition(lpn, grade)?,
        Some(grade),
    )?;
    let body = OpBody::DispositionUndone {
        lpn: lpn.clone(),
        grade,
    };
    Ok(Recorded {
        lpn: Some(lpn.clone()),
        seq: record_op(tx, site, who, body, now_ms)?,
        label: None,
    })
}

fn adjust_inventory(
    tx: &Transaction<'_>,
    site: &SiteId,
    who: &Actor,
    sku: &Sku,
    delta: i64,
    now_ms: i64,
) -> Result<u64, StoreError> {
    tx.execute(
        "INSERT INTO inventory (sku, qty) VALUES (?1, ?2) ON CONFLICT (sku) DO UPDATE SET qty = qty + ?2",
        params![sku.as_str(), delta],
    )?;
    record_op(
        tx,
        site,
        who,
        OpBody::InventoryAdjusted {
            sku: sku.clone(),
            delta,
        },
        now_ms,
    )
}

struct UnitRow {
    view: UnitView,
    grade: Option<Grade>,
}

fn unit_row(conn: &Connection, lpn: &Lpn) -> Result<UnitRow, StoreError> {
    find_unit(conn, lpn)?.ok_or_else(|| StoreError::UnknownUnit(lpn.to_string()))
}

/// sku, state, grade, tested, quarantine.
type UnitColumns = (String, String, Option<String>, Option<bool>, bool);

fn find_unit(conn: &Connection, lpn: &Lpn) -> Result<Option<UnitRow>, StoreError> {
    let row: Option<UnitColumns> = conn
        .query_row(
            "SELECT sku, state, grade, tested, quarantine FROM units WHERE lpn = ?1",
            [lpn.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((sku, state, grade, tested, quarantined)) = row else {
        return Ok(None);
    };
    Ok(Some(UnitRow {
        view: UnitView {
            lpn: lpn.clone(),
            sku: Sku::new(sku)?,
            state: UnitState::decode(&state)?,
            tested,
            quarantined,
        },
        grade: grade.as_deref().map(Grade::parse).transpose()?,
    }))
}

fn set_state(
    tx: &Transaction<'_>,
    lpn: &Lpn,
    state: UnitState,
    grade: Option<Grade>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE units SET state = ?2, grade = ?3 WHERE lpn = ?1",
        params![lpn.as_str(), state.encode(), grade.map(|g| g.as_str())],
    )?;
    Ok(())
}

/// How a unit of `sku` arriving for `rma` counts: matched, over or wrong item (or unidentified
/// when the return is not expected here). For receipts made outside a station's parcel.
pub fn receipt_kind(
    conn: &Connection,
    rma: Option<&RmaId>,
    sku: &Sku,
) -> Result<ReceiptKind, StoreError> {
    let Some(parcel) = rma.map(|r| expected_parcel(conn, r)).transpose()?.flatten() else {
        return Ok(ReceiptKind::Unidentified);
    };
    Ok(match parcel.lines.get(sku) {
        Some((qty, got)) if got < qty => ReceiptKind::Matched,
        Some(_) => ReceiptKind::Over,
        None => ReceiptKind::WrongItem,
    })
}

/// An expected return with what already arrived of each line.
pub fn expected_parcel(
    conn: &Connection,
    rma: &RmaId,
) -> Result<Option<ExpectedParcel>, StoreError> {
    let row: Option<(String, bool)> = conn
        .query_row(
            "SELECT lines_json, received_ms IS NOT NULL FROM expected_returns WHERE rma = ?1",
            [rma.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((lines_json, closed)) = row else {
        return Ok(None);
    };
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&lines_json)
        .map_err(|e| StoreError::Corrupt(format!("expected return {rma}: {e}")))?;
    let mut lines = BTreeMap::new();
    for line in parsed {
        let sku = Sku::new(line["sku"].as_str().unwrap_or_default())?;
        let qty = u32::try_from(line["qty"].as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
        lines.entry(sku).or_insert((0, 0)).0 += qty;
    }
    let mut stmt = conn.prepare_cached(
        "SELECT sku, COUNT(*) FROM units WHERE rma = ?1 AND receipt = 'matched' AND state != 'voided' GROUP BY sku",
    )?;
    let got = stmt.query_map([rma.as_str()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in got {
        let (sku, n) = row?;
        if let Some(line) = lines.get_mut(&Sku::new(sku)?) {
            line.1 = u32::try_from(n).unwrap_or(u32::MAX);
        }
    }
    Ok(Some(ExpectedParcel {
        rma: rma.clone(),
        lines,
        closed,
    }))
}

/// The station's view of the site database. Errors reading it count as "not found": the
/// station then refuses the scan, which is the safe answer.
pub struct SiteLookup<'a>(pub &'a Connection);

impl Lookup for SiteLookup<'_> {
    fn expected_return(&self, rma: &RmaId) -> Option<ExpectedParcel> {
        expected_parcel(self.0, rma).ok().flatten()
    }

    fn return_for_reference(&self, text: &str) -> Option<RmaId> {
        return_for_reference(self.0, text).ok().flatten()
    }

    fn sku_for_gtin(&self, gtin14: &str) -> Option<Sku> {
        self.0
            .query_row("SELECT sku FROM catalog WHERE gtin14 = ?1", [gtin14], |r| {
                r.get::<_, String>(0)
            })
            .ok()
            .and_then(|s| Sku::new(s).ok())
    }

    fn unit(&self, lpn: &Lpn) -> Option<UnitView> {
        find_unit(self.0, lpn).ok().flatten().map(|u| u.view)
    }

    fn proposed_disposition(&self, sku: &Sku, grade: Grade) -> Option<Disposition> {
        proposed_disposition(self.0, sku, grade).ok().flatten()
    }

    fn product_flags(&self, sku: &Sku) -> ProductFlags {
        // Unreadable flags count as set: a needless test or quarantine is the safe mistake.
        product_flags(self.0, sku).unwrap_or(ProductFlags {
            final_sale: true,
            needs_testing: true,
        })
    }

    fn transfer_order(&self, lpn: &Lpn) -> Option<SiteId> {
        transfer_order(self.0, lpn).ok().flatten()
    }

    fn exchange_order(&self, rma: &RmaId) -> Option<Sku> {
        exchange_order(self.0, rma).ok().flatten()
    }

    fn ship_back(&self, lpn: &Lpn) -> Option<RmaId> {
        ship_back(self.0, lpn).ok().flatten()
    }

    fn expected_tote(&self, tote: &ToteId) -> Option<Vec<ExpectedParcel>> {
        expected_tote(self.0, tote).ok().flatten()
    }

    fn expected_transfer(&self, lpn: &Lpn) -> Option<SiteId> {
        self.0
            .query_row(
                "SELECT from_site FROM expected_transfers WHERE lpn = ?1",
                [lpn.as_str()],
                |r| r.get::<_, String>(0),
            )
            .ok()
            .and_then(|s| SiteId::new(s).ok())
    }
}

/// The expected return whose RMA or carrier tracking number is `text`.
pub fn return_for_reference(conn: &Connection, text: &str) -> Result<Option<RmaId>, StoreError> {
    let rma: Option<String> = conn
        .prepare_cached(
            "SELECT rma FROM expected_returns WHERE rma = ?1
             UNION ALL SELECT rma FROM expected_returns WHERE tracking = ?1 LIMIT 1",
        )?
        .query_row([text], |r| r.get(0))
        .optional()?;
    Ok(rma.map(RmaId::new).transpose()?)
}

/// The returns of a tote expected here and not received yet, with what already arrived.
pub fn expected_tote(
    conn: &Connection,
    tote: &ToteId,
) -> Result<Option<Vec<ExpectedParcel>>, StoreError> {
    let rmas_json: Option<String> = conn
        .query_row(
            "SELECT rmas_json FROM expected_totes WHERE tote = ?1 AND received_ms IS NULL",
            [tote.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(rmas_json) = rmas_json else {
        return Ok(None);
    };
    let rmas: Vec<String> = serde_json::from_str(&rmas_json)
        .map_err(|e| StoreError::Corrupt(format!("tote {tote}: {e}")))?;
    let mut parcels = Vec::new();
    for rma in rmas {
        if let Some(p) = expected_parcel(conn, &RmaId::new(rma)?)? {
            parcels.push(p);
        }
    }
    Ok(Some(parcels))
}

/// The catalogue's flags for `sku`; a SKU it does not list has none.
pub fn product_flags(conn: &Connection, sku: &Sku) -> Result<ProductFlags, StoreError> {
    let row: Option<(bool, bool)> = conn
        .query_row(
            "SELECT final_sale, needs_testing FROM catalog WHERE sku = ?1",
            [sku.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row
        .map(|(final_sale, needs_testing)| ProductFlags {
            final_sale,
            needs_testing,
        })
        .unwrap_or_default())
}

fn transfer_order(conn: &Connection, lpn: &Lpn) -> Result<Option<SiteId>, StoreError> {
    let to: Option<String> = conn
        .query_row(
            "SELECT to_site FROM transfer_orders WHERE lpn = ?1",
            [lpn.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(to.map(SiteId::new).transpose()?)
}

/// The coordinator orders `lpn` back to the customer of `rma`. The order supersedes the
/// unit's disposition and any transfer ordered before: the unit may still be disposed of and
/// held in a bin, but it leaves only by its ship-back (see `depart`). Ordered once per unit;
/// the same order again changes nothing.
pub fn order_ship_back(
    tx: &Transaction<'_>,
    lpn: &Lpn,
    rma: &RmaId,
    now_ms: i64,
) -> Result<(), StoreError> {
    let n = tx.execute(
        "INSERT INTO ship_backs (lpn, rma, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (lpn) DO NOTHING",
        params![lpn.as_str(), rma.as_str(), now_ms],
    )?;
    let detail = match find_unit(tx, lpn)? {
        _ if n == 0 => "ship-back ordered again: the first order stands".to_owned(),
        Some(unit) if matches!(unit.view.state, UnitState::Departed(_)) => {
            "ship-back ordered, but the unit already left this site".to_owned()
        }
        Some(unit) => {
            tx.execute("DELETE FROM transfer_orders WHERE lpn = ?1", [lpn.as_str()])?;
            format!("ship-back ordered: unit is {}", unit.view.state.encode())
        }
        None => "ship-back ordered, but no such unit here".to_owned(),
    };
    tx.execute(
        "INSERT INTO audit (lpn, rma, action, detail, operator, station, at_ms)
         VALUES (?1, ?2, 'ship_back_ordered', ?3, ?4, ?4, ?5)",
        params![lpn.as_str(), rma.as_str(), detail, COORDINATOR, now_ms],
    )?;
    Ok(())
}

/// The return whose customer `lpn` goes back to, while it has not left.
fn ship_back(conn: &Connection, lpn: &Lpn) -> Result<Option<RmaId>, StoreError> {
    let rma: Option<String> = conn
        .query_row(
            "SELECT rma FROM ship_backs WHERE lpn = ?1 AND shipped_ms IS NULL",
            [lpn.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(rma.map(RmaId::new).transpose()?)
}

/// The SKU an exchange asks this site to ship, while it is not shipped.
fn exchange_order(conn: &Connection, rma: &RmaId) -> Result<Option<Sku>, StoreError> {
    let sku: Option<String> = conn
        .query_row(
            "SELECT sku FROM exchange_orders WHERE rma = ?1 AND shipped_lpn IS NULL",
            [rma.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(sku.map(Sku::new).transpose()?)
}

/// What the site's disposition rules propose for a unit of `sku` graded `grade`.
pub fn proposed_disposition(
    conn: &Connection,
    sku: &Sku,
    grade: Grade,
) -> Result<Option<Disposition>, StoreError> {
    let category: Option<String> = conn
        .query_row(
            "SELECT category FROM catalog WHERE sku = ?1",
            [sku.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    let mut stmt = conn
        .prepare_cached("SELECT category, grade, disposition FROM disposition_rules ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut rules = Vec::new();
    for row in rows {
        let (category, g, d) = row?;
        rules.push(DispositionRule {
            category,
            grade: Grade::parse(&g)?,
            disposition: Disposition::parse(&d)?,
        });
    }
    Ok(DispositionRule::propose(&rules, category.as_deref(), grade))
}

/// One line of a unit's audit trail.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AuditRow {
    pub action: String,
    pub detail: String,
    pub operator: String,
    pub station: String,
    pub at_ms: i64,
}

/// Who did what to this unit, when, at which station (oldest first).
pub fn audit(conn: &Connection, lpn: &Lpn) -> Result<Vec<AuditRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT action, COALESCE(detail, ''), operator, station, at_ms FROM audit WHERE lpn = ?1 ORDER BY id")?;
    let rows = stmt.query_map([lpn.as_str()], |r| {
        Ok(AuditRow {
            action: r.get(0)?,
            detail: r.get(1)?,
            operator: r.get(2)?,
            station: r.get(3)?,
            at_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A unit waiting in quarantine for a match.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct QuarantinedUnit {
    pub lpn: String,
    pub sku: String,
    pub reference: Option<String>,
    pub state: String,
    pub received_ms: i64,
}

/// The units waiting to be matched ([`WAITING_TO_BE_MATCHED_SQL`], the centre's definition).
pub fn quarantine(conn: &mut Connection) -> Result<Vec<QuarantinedUnit>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT lpn, sku, parcel_ref, state, received_ms FROM units
         WHERE {WAITING_TO_BE_MATCHED_SQL} ORDER BY received_ms, lpn"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(QuarantinedUnit {
            lpn: r.get(0)?,
            sku: r.get(1)?,
            reference: r.get(2)?,
            state: r.get(3)?,
            received_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Units of one SKU in one bin, held for one disposition (`restock` is sellable stock).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StockRow {
    pub sku: String,
    pub bin: String,
    pub disposition: String,
    pub qty: i64,
}

/// What is in the bins, by SKU and bin (all, or one SKU, or one bin).
pub fn inventory(
    conn: &mut Connection,
    sku: Option<&Sku>,
    bin: Option<&Bin>,
) -> Result<Vec<StockRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT sku, bin, substr(state, length('placed:') + 1), COUNT(*) FROM units
         WHERE state LIKE 'placed:%' AND (?1 IS NULL OR sku = ?1) AND (?2 IS NULL OR bin = ?2)
         GROUP BY sku, bin, state ORDER BY sku, bin, state",
    )?;
    let rows = stmt.query_map([sku.map(Sku::as_str), bin.map(Bin::as_str)], |r| {
        Ok(StockRow {
            sku: r.get(0)?,
            bin: r.get(1)?,
            disposition: r.get(2)?,
            qty: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An expected return routed here and not yet received, as a list of SKUs to receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedReturn {
    pub rma: RmaId,
    pub skus: Vec<Sku>,
}

pub fn pending_expected_returns(
    conn: &Connection,
    max: usize,
) -> Result<Vec<ExpectedReturn>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT rma FROM expected_returns WHERE received_ms IS NULL ORDER BY rowid LIMIT ?1",
    )?;
    let rmas: Vec<String> = stmt
        .query_map([to_i64(max as u64)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for rma in rmas {
        let rma = RmaId::new(rma)?;
        let Some(parcel) = expected_parcel(conn, &rma)? else {
            continue;
        };
        let skus = parcel
            .lines
            .into_iter()
            .flat_map(|(sku, (qty, got))| {
                std::iter::repeat_n(sku, qty.saturating_sub(got) as usize)
            })
            // A return stored before the API bounded its units must not size this list.
            .take(modori_shared::domain::RETURN_UNITS_MAX as usize)
            .collect();
        out.push(ExpectedReturn { rma, skus });
    }
    Ok(out)
}

/// Units whose state starts with `state_prefix` (`received`, `graded`), oldest first, that are
/// free to be worked on (not held in quarantine).
pub fn units_in_state(
    conn: &Connection,
    state_prefix: &str,
    max: usize,
) -> Result<Vec<(Lpn, UnitState)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT lpn, state FROM units WHERE state LIKE ?1 || '%' AND quarantine = 0
         ORDER BY received_ms, lpn LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![state_prefix, to_i64(max as u64)], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (lpn, state) = row?;
        out.push((Lpn::new(lpn)?, UnitState::decode(&state)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{open, receive};
    use crate::store::{load_ops, OutboxStream};

    fn who() -> Actor {
        Actor::new("B-7", "grade-1")
    }

    /// A unit received for a return expected here: not held in quarantine.
    fn identified(conn: &mut Connection, site: &SiteId, sku: &str) -> Lpn {
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM expected_returns", [], |r| r.get(0))
            .unwrap();
        let rma = RmaId::new(format!("SHOP-ORDER-{n}")).unwrap();
        conn.execute(
            "INSERT INTO expected_returns (rma, lines_json, created_ms) VALUES (?1, ?2, 0)",
            params![rma.as_str(), format!(r#"[{{"sku": "{sku}", "qty": 1}}]"#)],
        )
        .unwrap();
        receive(conn, site, Some(&rma), sku).lpn.unwrap()
    }

    #[test]
    fn a_quarantined_unit_moves_on_only_when_matched_or_released_with_a_reason() {
        let (mut conn, site) = open();
        let held = receive(&mut conn, &site, None, "SHOE-42").lpn.unwrap();
        let grade = |lpn: &Lpn| Effect::Grade {
            lpn: lpn.clone(),
            grade: Grade::B,
            defects: vec![],
        };
        let err = record(&mut conn, &site, &who(), &grade(&held), 11).unwrap_err();
        assert!(err.to_string().contains("in quarantine"), "{err}");
        let head = crate::store::snapshot(&conn).unwrap().op_head_seq;
        let unexplained = Effect::ReleaseQuarantined {
            lpn: held.clone(),
            reason: "  ".into(),
        };
        let err = record(&mut conn, &site, &who(), &unexplained, 12).unwrap_err();
        assert!(err.to_string().contains("reason"), "{err}");
        assert_eq!(crate::store::snapshot(&conn).unwrap().op_head_seq, head);
        assert_eq!(quarantine(&mut conn).unwrap().len(), 1);

        let boss = Actor::new("B-0042", "ctl");
        let release = Effect::ReleaseQuarantined {
            lpn: held.clone(),
            reason: "no order found after 30 days".into(),
        };
        record(&mut conn, &site, &boss, &release, 13).unwrap();
        assert!(quarantine(&mut conn).unwrap().is_empty());
        assert_eq!(
            ops_since(&conn, head),
            vec![OpBody::UnitReleased {
                lpn: held.clone(),
                supervisor: "B-0042".into(),
                reason: "no order found after 30 days".into(),
            }]
        );
        let trail = audit(&conn, &held).unwrap();
        let last = trail.last().unwrap();
        assert_eq!(
            (last.action.as_str(), last.operator.as_str()),
            ("unit_released", "B-0042")
        );
        assert!(last.detail.contains("30 days"), "{}", last.detail);
        record(&mut conn, &site, &who(), &grade(&held), 14).unwrap();
        let again = record(&mut conn, &site, &boss, &release, 15).unwrap_err();
        assert!(again.to_string().contains("not in quarantine"), "{again}");

        // A SKU the return does not list waits too; the units of the return go on.
        let lpn = identified(&mut conn, &site, "TEE");
        let rma = RmaId::new("SHOP-ORDER-1").unwrap();
        let wrong = receive(&mut conn, &site, Some(&rma), "CAP").lpn.unwrap();
        assert_eq!(
            quarantine(&mut conn)
                .unwrap()
                .iter()
                .map(|u| u.lpn.as_str())
                .collect::<Vec<_>>(),
            vec![wrong.as_str()]
        );
        record(&mut conn, &site, &who(), &grade(&lpn), 16).unwrap();
    }

    #[test]
    fn a_receipt_its_op_and_its_audit_row_are_written_together() {
        let (mut conn, site) = open();
        let r = receive(&mut conn, &site, None, "SHOE-42");
        assert_eq!(r.seq, 1);
        let lpn = r.lpn.unwrap();
        match barcode::parse(lpn.as_str()).unwrap() {
            barcode::Scan::Lpn(label) => assert!(label.is_from_site(&site)),
            other => panic!("an LPN reads back as {other:?}"),
        }
        let ops = load_ops(&conn, OutboxStream::Current, 1, 10).unwrap();
        let op = payload::decode_op(&ops[0].payload).unwrap();
        assert_eq!(
            (op.operator.as_str(), op.station.as_str()),
            ("B-1", "recv-1")
        );
        assert!(matches!(
            op.body,
            OpBody::UnitReceived {
                receipt: ReceiptKind::Unidentified,
                ..
            }
        ));
        let trail = audit(&conn, &lpn).unwrap();
        assert_eq!(trail.len(), 1);
        assert_eq!(
            (trail[0].action.as_str(), trail[0].station.as_str()),
            ("unit_received", "recv-1")
        );
    }

    #[test]
    fn lifecycle_is_checked_before_anything_is_written_and_corrections_are_ops() {
        let (mut conn, site) = open();
        let lpn = identified(&mut conn, &site, "SHOE-42");
        let dispose = Effect::Dispose {
            lpn: lpn.clone(),
            disposition: Disposition::Restock,
        };
        let err = record(&mut conn, &site, &who(), &dispose, 11).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
        assert_eq!(crate::store::snapshot(&conn).unwrap().op_head_seq, 1);

        let grade = Effect::Grade {
            lpn: lpn.clone(),
            grade: Grade::A,
            defects: vec![modori_shared::domain::DefectCode::Scratch],
        };
        record(&mut conn, &site, &who(), &grade, 12).unwrap();
        let recorded = record(&mut conn, &site, &who(), &dispose, 13).unwrap();
        assert_eq!(
            recorded.seq, 3,
            "stock counts it only once it is on a shelf"
        );
        assert!(matches!(
            recorded.label,
            Some(LabelData::Disposition { .. })
        ));
        let undo = Effect::UndoDisposition { lpn: lpn.clone() };
        let undone = record(&mut conn, &site, &who(), &undo, 14).unwrap();
        assert_eq!(undone.seq, 4);
        assert_eq!(
            SiteLookup(&conn).unit(&lpn).unwrap().state,
            UnitState::Graded(Grade::A)
        );
        record(
            &mut conn,
            &site,
            &who(),
            &Effect::VoidReceipt { lpn: lpn.clone() },
            15,
        )
        .unwrap();
        let actions: Vec<String> = audit(&conn, &lpn)
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(
            actions,
            [
                "unit_received",
                "unit_graded",
                "disposition_set",
                "disposition_undone",
                "receipt_voided"
            ]
        );
    }

    #[test]
    fn reprint_writes_nothing_and_unknown_units_are_named() {
        let (mut conn, site) = open();
        let lpn = receive(&mut conn, &site, None, "SHOE-42").lpn.unwrap();
        let r = record(&mut conn, &site, &who(), &Effect::Reprint { lpn }, 20).unwrap();
        assert_eq!(r.seq, 0);
        assert_eq!(crate::store::snapshot(&conn).unwrap().op_head_seq, 1);
        let ghost = Lpn::new("LPN-NOPE-0000-0000001X").unwrap();
        let err = record(
            &mut conn,
            &site,
            &who(),
            &Effect::Reprint { lpn: ghost },
            21,
        )
        .unwrap_err();
        assert!(err.to_string().contains("LPN-NOPE"), "{err}");
    }

    fn ops_since(conn: &Connection, after: u64) -> Vec<OpBody> {
        load_ops(conn, OutboxStream::Current, after + 1, 100)
            .unwrap()
            .iter()
            .map(|o| payload::decode_op(&o.payload).unwrap().body)
            .collect()
    }

    /// Receives, grades and disposes of a unit of `sku`.
    fn disposed(conn: &mut Connection, site: &SiteId, sku: &str, disposition: Disposition) -> Lpn {
        let lpn = identified(conn, site, sku);
        for effect in [
            Effect::Grade {
                lpn: lpn.clone(),
                grade: Grade::B,
                defects: vec![],
            },
            Effect::Dispose {
                lpn: lpn.clone(),
                disposition,
            },
        ] {
            record(conn, site, &who(), &effect, 30).unwrap();
        }
        lpn
    }

    #[test]
    fn putaway_and_departures_carry_their_inventory_deltas() {
        let (mut conn, site) = open();
        let lpn = disposed(&mut conn, &site, "SHOE-42", Disposition::Restock);
        let head = crate::store::snapshot(&conn).unwrap().op_head_seq;
        let a0103 = Bin::new("A0103").unwrap();
        let put = Effect::PutAway {
            lpn: lpn.clone(),
            bin: a0103.clone(),
        };
        record(&mut conn, &site, &who(), &put, 31).unwrap();
        let sku = Sku::new("SHOE-42").unwrap();
        assert_eq!(
            ops_since(&conn, head),
            vec![
                OpBody::UnitPutAway {
                    lpn: lpn.clone(),
                    bin: a0103.clone()
                },
                OpBody::InventoryAdjusted {
                    sku: sku.clone(),
                    delta: 1
                },
            ]
        );
        // A move to another bin changes where, not how many.
        let head = crate::store::snapshot(&conn).unwrap().op_head_seq;
        let b0201 = Bin::new("B0201").unwrap();
        let moved = Effect::PutAway {
            lpn: lpn.clone(),
            bin: b0201.clone(),
        };
        record(&mut conn, &site, &who(), &moved, 32).unwrap();
        assert_eq!(ops_since(&conn, head).len(), 1);
        let stock = inventory(&mut conn, None, None).unwrap();
        assert_eq!(
            stock,
            vec![StockRow {
                sku: "SHOE-42".into(),
                bin: "B0201".into(),
                disposition: "restock".into(),
                qty: 1
            }]
        );
        assert!(inventory(&mut conn, None, Some(&a0103)).unwrap().is_empty());

        // Restock units stay: only a transfer takes them away, and not to this very site.
        let recycler = Effect::Depart {
            lpn: lpn.clone(),
            departure: Departure::Recycler,
            tracking: None,
        };
        assert!(record(&mut conn, &site, &who(), &recycler, 33).is_err());
        let to_self = Effect::Depart {
            lpn: lpn.clone(),
            departure: Departure::Transfer { to: site.clone() },
            tracking: None,
        };
        assert!(record(&mut conn, &site, &who(), &to_self, 33).is_err());
        let head = crate::store::snapshot(&conn).unwrap().op_head_seq;
        let fukuoka = SiteId::new("fukuoka").unwrap();
        let transfer = Effect::Depart {
            lpn: lpn.clone(),
            departure: Departure::Transfer {
                to: fukuoka.clone(),
            },
            tracking: Some("123456789013".into()),
        };
        let shipped = record(&mut conn, &site, &who(), &transfer, 34).unwrap();
        assert!(matches!(shipped.label, Some(LabelData::Transfer { .. })));
        assert_eq!(
            ops_since(&conn, head),
            vec![
                OpBody::UnitDeparted {
                    lpn: lpn.clone(),
                    departure: Departure::Transfer { to: fukuoka },
                    tracking: Some("123456789013".into()),
                },
                OpBody::InventoryAdjusted { sku, delta: -1 },
            ]
        );
        assert!(inventory(&mut conn, None, None).unwrap().is_empty());
        let again = record(&mut conn, &site, &who(), &put, 35).unwrap_err();
        assert!(again.to_string().contains("departed"), "{again}");
    }

    #[test]
    fn an_exchange_ships_only_what_its_order_asks_once() {
        let (mut conn, site) = open();
        let tee = disposed(&mut conn, &site, "TEE", Disposition::Restock);
        let cap = disposed(&mut conn, &site, "CAP", Disposition::Restock);
        let rma = RmaId::new("RMA-7").unwrap();
        let ship = |lpn: &Lpn| Effect::Depart {
            lpn: lpn.clone(),
            departure: Departure::Exchange { rma: rma.clone() },
            tracking: None,
        };
        let err = record(&mut conn, &site, &who(), &ship(&tee), 40).unwrap_err();
        assert!(err.to_string().contains("no exchange"), "{err}");
        conn.execute(
            "INSERT INTO exchange_orders (rma, sku, created_ms) VALUES ('RMA-7', 'TEE', 0)",
            [],
        )
        .unwrap();
        let err = record(&mut conn, &site, &who(), &ship(&cap), 41).unwrap_err();
        assert!(err.to_string().contains("asks for TEE"), "{err}");
        let shipped = record(&mut conn, &site, &who(), &ship(&tee), 42).unwrap();
        assert!(matches!(shipped.label, Some(LabelData::Exchange { .. })));
        assert_eq!(SiteLookup(&conn).exchange_order(&rma), None, "shipped once");
    }

    #[test]
    fn a_unit_ordered_back_to_its_customer_leaves_only_that_way_once() {
        let (mut conn, site) = open();
        let lpn = disposed(&mut conn, &site, "TEE", Disposition::Recycle);
        let rma = RmaId::new("RMA-9").unwrap();
        let other = RmaId::new("RMA-8").unwrap();
        let ship = |departure: Departure| Effect::Depart {
            lpn: lpn.clone(),
            departure,
            tracking: Some("123456789013".into()),
        };
        let back = |rma: &RmaId| Departure::ToCustomer { rma: rma.clone() };
        let err = record(&mut conn, &site, &who(), &ship(back(&rma)), 40).unwrap_err();
        assert!(err.to_string().contains("not ordered back"), "{err}");
        let order = |conn: &mut Connection, rma: &RmaId, at_ms| {
            let tx = conn.transaction().unwrap();
            order_ship_back(&tx, &lpn, rma, at_ms).unwrap();
            tx.commit().unwrap();
        };
        order(&mut conn, &rma, 41);
        // A second order (a replayed or repeated command) does not replace the first.
        order(&mut conn, &other, 42);
        assert_eq!(SiteLookup(&conn).ship_back(&lpn), Some(rma.clone()));
        // Superseded: its disposition's way out (and any other) is refused from now on.
        let err = record(&mut conn, &site, &who(), &ship(Departure::Recycler), 43).unwrap_err();
        assert!(err.to_string().contains("ship it back"), "{err}");
        let err = record(&mut conn, &site, &who(), &ship(back(&other)), 44).unwrap_err();
        assert!(err.to_string().contains("not of RMA-8"), "{err}");
        let before = ops_since(&conn, 0).len();
        let shipped = record(&mut conn, &site, &who(), &ship(back(&rma)), 45).unwrap();
        assert_eq!(
            shipped.label,
            Some(LabelData::ShipBack {
                lpn: lpn.clone(),
                sku: Sku::new("TEE").unwrap(),
                rma: rma.clone()
            })
        );
        assert_eq!(
            ops_since(&conn, 0)[before..],
            [OpBody::UnitDeparted {
                lpn: lpn.clone(),
                departure: back(&rma),
                tracking: Some("123456789013".into()),
            }]
        );
        assert_eq!(SiteLookup(&conn).ship_back(&lpn), None, "shipped once");
        let err = record(&mut conn, &site, &who(), &ship(back(&rma)), 46).unwrap_err();
        assert!(err.to_string().contains("departed"), "{err}");
    }

    #[test]
    fn grade_a_of_a_product_needing_a_test_waits_for_a_pass() {
        let (mut conn, site) = open();
        conn.execute(
            "INSERT INTO catalog (sku, gtin14, category, price_yen, final_sale, needs_testing)
             VALUES ('RADIO', NULL, 'electronics', 9800, 0, 1)",
            [],
        )
        .unwrap();
        let lpn = identified(&mut conn, &site, "RADIO");
        let grade_a = Effect::Grade {
            lpn: lpn.clone(),
            grade: Grade::A,
            defects: vec![],
        };
        let err = record(&mut conn, &site, &who(), &grade_a, 50).unwrap_err();
        assert!(err.to_string().contains("function test"), "{err}");
        let test = |passed| Effect::Test {
            lpn: lpn.clone(),
            passed,
        };
        record(&mut conn, &site, &who(), &test(false), 51).unwrap();
        assert!(record(&mut conn, &site, &who(), &grade_a, 52).is_err());
        record(&mut conn, &site, &who(), &test(true), 53).unwrap();
        record(&mut conn, &site, &who(), &grade_a, 54).unwrap();
        let actions: Vec<String> = audit(&conn, &lpn)
            .unwrap()
            .into_iter()
            .map(|a| format!("{} {}", a.action, a.detail))
            .collect();
        assert_eq!(
            actions,
            [
                "unit_received RADIO matched",
                "unit_tested failed",
                "unit_tested passed",
                "unit_graded grade A"
            ]
        );
    }

    #[test]
    fn a_transfer_is_received_only_when_expected() {
        let (mut conn, site) = open();
        let lpn = Lpn::new("LPN-FUKUOKA-0001-00000017").unwrap();
        let fukuoka = SiteId::new("fukuoka").unwrap();
        let arrive = Effect::ReceiveTransfer {
            lpn: lpn.clone(),
            from: fukuoka.clone(),
        };
        let err = record(&mut conn, &site, &who(), &arrive, 60).unwrap_err();
        assert!(err.to_string().contains("not expected"), "{err}");
        conn.execute(
            "INSERT INTO expected_transfers (lpn, sku, grade, disposition, from_site, created_ms)
             VALUES (?1, 'TEE', 'A', 'restock', 'fukuoka', 0)",
            [lpn.as_str()],
        )
        .unwrap();
        let wrong = Effect::ReceiveTransfer {
            lpn: lpn.clone(),
            from: SiteId::new("sendai").unwrap(),
        };
        assert!(record(&mut conn, &site, &who(), &wrong, 61).is_err());
        record(&mut conn, &site, &who(), &arrive, 62).unwrap();
        let unit = SiteLookup(&conn).unit(&lpn).unwrap();
        assert_eq!(unit.state, UnitState::Disposed(Disposition::Restock));
        assert_eq!(SiteLookup(&conn).expected_transfer(&lpn), None);
        assert!(
            record(&mut conn, &site, &who(), &arrive, 63).is_err(),
            "once"
        );
    }
}
