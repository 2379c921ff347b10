//! Applying one site's batch of ops: exactly once, in order, in one transaction with the
//! stream's high-water mark; each op's effect on the central view, the anomalies it raises.

use super::details::Detail;
use super::tallies::Tally;
use super::*;

/// The result of applying one upstream batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Highest seq now durably applied: the value to acknowledge.
    pub applied_seq: u64,
    pub n_applied: usize,
    pub n_duplicates: usize,
    pub n_anomalies: usize,
    pub gap_at: Option<u64>,
    /// Commands the batch queued for sites (a transfer announced to its destination), to
    /// wake their connections once the batch has committed.
    pub commands_queued: Queued,
    /// The kinds of op applied, so what follows a batch runs only the passes they can need.
    pub kinds: std::collections::BTreeSet<OpKind>,
    /// When the newest op applied by this batch happened, by the site's clock: how far
    /// behind the centre is while a site catches up.
    pub last_op_at_ms: Option<i64>,
}

pub fn op_applied_seq(conn: &Connection, site: &SiteId, epoch: Epoch) -> Result<u64, StoreError> {
    let applied: Option<i64> = conn
        .prepare_cached("SELECT applied_seq FROM op_streams WHERE site = ?1 AND epoch = ?2")?
        .query_row(params![site.as_str(), to_i64(epoch.0)], |r| r.get(0))
        .optional()?;
    Ok(applied.map_or(0, to_u64))
}

fn stored_op_hash(
    tx: &Transaction<'_>,
    site: &SiteId,
    epoch: Epoch,
    seq: u64,
) -> Option<PayloadHash> {
    tx.prepare_cached("SELECT hash FROM ops WHERE site = ?1 AND epoch = ?2 AND seq = ?3")
        .and_then(|mut stmt| {
            stmt.query_row(params![site.as_str(), to_i64(epoch.0), to_i64(seq)], |r| {
                r.get::<_, Vec<u8>>(0)
            })
        })
        .ok()
        .and_then(|h| h.try_into().ok())
}

#[allow(clippy::too_many_arguments)]
fn anomaly(
    tx: &Transaction<'_>,
    site: &SiteId,
    epoch: Option<Epoch>,
    seq: Option<u64>,
    kind: AnomalyKind,
    lpn: Option<&Lpn>,
    detail: &Detail,
    now_ms: i64,
) -> Result<(), StoreError> {
    tracing::warn!(site = %site, seq, kind = kind.as_str(), lpn = lpn.map(Lpn::as_str), detail = %detail.english, "anomaly recorded");
    tx.prepare_cached(
        "INSERT INTO anomalies (site, epoch, seq, kind, lpn, detail, at_ms, detail_code, detail_params)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
            site.as_str(),
            epoch.map(|e| to_i64(e.0)),
            seq.map(to_i64),
            kind.as_str(),
            lpn.map(Lpn::as_str),
            detail.english,
            now_ms,
            detail.code(),
            detail.params_json(),
        ],
    )?;
    Ok(())
}

/// Records an anomaly outside a batch (e.g. a hello that names another site).
pub fn record_anomaly(
    conn: &mut Connection,
    site: &SiteId,
    kind: AnomalyKind,
    detail: &Detail,
    now_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    anomaly(&tx, site, None, None, kind, None, detail, now_ms)?;
    tx.commit()?;
    Ok(())
}

/// One site's batch waiting to be applied.
#[derive(Clone, Debug)]
pub struct SiteBatch {
    pub site: SiteId,
    pub epoch: Epoch,
    pub ops: Vec<Sequenced>,
    /// When it arrived, by this coordinator's clock: the ops' `applied_ms`.
    pub applied_ms: i64,
}

/// Applies one upstream batch from `site` (the certificate's site) exactly once, in order, in
/// a transaction of its own.
pub fn apply_op_batch(
    conn: &mut Connection,
    site: &SiteId,
    epoch: Epoch,
    batch: &[Sequenced],
    now_ms: i64,
) -> Result<BatchOutcome, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let outcome = apply_in(&tx, site, epoch, batch, now_ms)?;
    tx.commit()?;
    Ok(outcome)
}

/// Applies several sites' batches in one transaction (group commit: one commit and one fsync
/// for all of them), each exactly once and in order; the outcomes in the batches' order. Two
/// batches of one stream apply one after the other, the second seeing the first's mark.
pub fn apply_op_batches(
    conn: &mut Connection,
    batches: &[SiteBatch],
) -> Result<Vec<BatchOutcome>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let outcomes = batches
        .iter()
        .map(|b| apply_in(&tx, &b.site, b.epoch, &b.ops, b.applied_ms))
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    Ok(outcomes)
}

/// Applies a group of batches in one transaction ([`apply_op_batches`]); if that fails, each
/// alone, so one batch that cannot apply fails only itself. The outcomes in the batches' order.
pub fn apply_op_group(
    conn: &mut Connection,
    batches: &[SiteBatch],
) -> Vec<Result<BatchOutcome, StoreError>> {
    match apply_op_batches(conn, batches) {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if batches.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(error = %e, n_batches = batches.len(), "group transaction failed; applying its batches one by one");
            batches
                .iter()
                .map(|b| apply_op_batch(conn, &b.site, b.epoch, &b.ops, b.applied_ms))
                .collect()
        }
    }
}

/// Applies one batch inside `tx`. The statements of this path run once or twice per op,
/// thousands of times a second while a site catches up: they are prepared once per connection
/// (`prepare_cached`), not parsed again for every op; the connection's cache holds
/// [`STATEMENT_CACHE_CAPACITY`] of them.
fn apply_in(
    tx: &Transaction<'_>,
    site: &SiteId,
    epoch: Epoch,
    batch: &[Sequenced],
    now_ms: i64,
) -> Result<BatchOutcome, StoreError> {
    let applied = op_applied_seq(tx, site, epoch)?;
    let receiver = Receiver::new(epoch, applied);
    let plan: Plan = receiver.plan(batch, |seq| stored_op_hash(tx, site, epoch, seq));
    let mut n_anomalies = 0;
    let mut commands_queued = Queued::none();
    let mut kinds = std::collections::BTreeSet::new();
    let mut last_op_at_ms = None;
    let mut counts = BatchCounts::default();
    // Prepared once per batch: a cached statement is found by hashing its text, per op.
    let mut insert_op = tx.prepare_cached(
        "INSERT INTO ops (site, epoch, seq, kind, hash, payload, applied_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for c in &plan.conflicts {
        n_anomalies += 1;
        let detail = Detail::hash_conflict(c.seq, hex(&c.received[..8]), hex(&c.stored[..8]));
        anomaly(
            tx,
            site,
            Some(epoch),
            Some(c.seq),
            AnomalyKind::HashMismatch,
            None,
            &detail,
            now_ms,
        )?;
    }
    for &i in &plan.apply {
        let item = &batch[i];
        let kind = match payload::decode_op(&item.payload) {
            Ok(op) => {
                let kind = op.body.kind();
                kinds.insert(op.body.op_kind());
                last_op_at_ms = Some(op.at_ms);
                n_anomalies += apply_op(
                    tx,
                    site,
                    (epoch, item.seq),
                    op,
                    now_ms,
                    &mut commands_queued,
                    &mut counts,
                )?;
                kind
            }
            Err(e) => {
                n_anomalies += 1;
                anomaly(
                    tx,
                    site,
                    Some(epoch),
                    Some(item.seq),
                    AnomalyKind::Undecodable,
                    None,
                    &Detail::english(e.to_string()),
                    now_ms,
                )?;
                AnomalyKind::Undecodable.as_str()
            }
        };
        insert_op.execute(params![
            site.as_str(),
            to_i64(epoch.0),
            to_i64(item.seq),
            kind,
            payload_hash(&item.payload).as_slice(),
            item.payload,
            now_ms
        ])?;
        counts.tally.op(now_ms, kind);
        // Fault tests: die with part of the batch applied and nothing committed.
        fail::fail_point!("coordinator-apply-op", |_| std::process::abort());
    }
    drop(insert_op);
    counts.tally.write(tx)?;
    tx.prepare_cached(
        "INSERT INTO op_streams (site, epoch, applied_seq, first_seen_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (site, epoch) DO UPDATE SET applied_seq = excluded.applied_seq",
    )?
    .execute(params![
        site.as_str(),
        to_i64(epoch.0),
        to_i64(plan.new_applied),
        now_ms
    ])?;
    let mut receiver = receiver;
    Ok(BatchOutcome {
        applied_seq: receiver.commit(&plan),
        n_applied: plan.apply.len(),
        n_duplicates: plan.n_duplicates,
        n_anomalies,
        gap_at: plan.gap_at,
        commands_queued,
        last_op_at_ms,
        kinds,
    })
}

/// What a batch counts rather than writes per op (see `tallies`), its billing, and the
/// statement its receipts share.
#[derive(Default)]
struct BatchCounts<'t> {
    tally: Tally,
    biller: billing::Biller,
    /// The unit's insert, prepared at the batch's first receipt and kept for the rest (a
    /// cached statement is found by hashing its text).
    insert_unit: Option<rusqlite::CachedStatement<'t>>,
}

const INSERT_UNIT_SQL: &str = "INSERT INTO units (lpn, site, sku, rma, state, updated_ms, receipt, parcel_ref, quarantine, claimed_rma)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
     ON CONFLICT (lpn) DO NOTHING";

/// Applies one op's effect to the central view, with its row in the timeline of the unit's
/// return; returns how many anomalies it raised.
fn apply_op<'t>(
    tx: &'t Transaction<'_>,
    site: &SiteId,
    (epoch, seq): (Epoch, u64),
    op: OpRecord,
    now_ms: i64,
    commands_queued: &mut Queued,
    counts: &mut BatchCounts<'t>,
) -> Result<usize, StoreError> {
    let note = |kind: AnomalyKind, lpn: Option<&Lpn>, detail: &Detail| {
        anomaly(tx, site, Some(epoch), Some(seq), kind, lpn, detail, now_ms).map(|()| 1)
    };
    if &op.site != site {
        let detail = Detail::impersonation(op.site.as_str(), site.as_str());
        return note(AnomalyKind::Impersonation, None, &detail);
    }
    let event = lifecycle::OpEvent {
        site,
        at_ms: op.at_ms,
        now_ms,
    };
    let at_ms = op.at_ms;
    let mut bill = |activity: billing::Activity, lpn: &Lpn| {
        counts
            .biller
            .record(tx, &mut counts.tally, activity, lpn, site, at_ms)
    };
    // Ops are facts: a site that moved a quarantined unit on (an agent from before the gate)
    // is applied as reported, and ops see it.
    let n_breaches = match gated_unit(&op.body) {
        Some(lpn) if is_quarantined(tx, lpn)? => note(
            AnomalyKind::QuarantineBreached,
            Some(lpn),
            &Detail::quarantine_breached(op.body.kind()),
        )?,
        _ => 0,
    };
    let applied = match op.body {
        OpBody::UnitReceived {
            lpn,
            rma,
            sku,
            receipt,
            parcel_ref,
        } => {
            // A parcel the site could not place keeps the RMA it bore as its reference: one
            // routed to another site is that return's claim all the same.
            let named = match (&rma, &parcel_ref) {
                (Some(rma), _) => Some(rma.clone()),
                (None, Some(r)) => routed_elsewhere(tx, site, r)?,
                (None, None) => None,
            };
            let claim = match &named {
                Some(rma) => claim_of(tx, site, rma, &sku, receipt)?,
                None => Claim::None,
            };
            let (attached, claimed) = match &claim {
                Claim::Counts => (rma.as_ref(), None),
                Claim::Refused { .. } => (None, named.as_ref()),
                Claim::None => (None, None),
            };
            // A refused claim keeps the RMA as the reference to match by, as an unidentified
            // parcel's does; `misrouted` keeps it from being matched back automatically.
            let parcel_ref = parcel_ref.or_else(|| claimed.map(ToString::to_string));
            let stored_receipt = match &claim {
                Claim::Refused {
                    kind: AnomalyKind::ReturnNotRoutedHere,
                    ..
                } => "misrouted",
                _ => receipt.as_str(),
            };
            let quarantined = match &claim {
                Claim::Refused { .. } => true,
                Claim::Counts | Claim::None => receipt.holds_in_quarantine(false),
            };
            let insert_unit = match &mut counts.insert_unit {
                Some(stmt) => stmt,
                empty => empty.insert(tx.prepare_cached(INSERT_UNIT_SQL)?),
            };
            let inserted = insert_unit.execute(params![
                lpn.as_str(),
                site.as_str(),
                sku.as_str(),
                attached.map(RmaId::as_str),
                UnitState::Received.encode(),
                now_ms,
                stored_receipt,
                parcel_ref,
                quarantined,
                claimed.map(RmaId::as_str),
            ])?;
            if inserted == 0 {
                return note(
                    AnomalyKind::DuplicateLpn,
                    Some(&lpn),
                    &Detail::duplicate_lpn(),
                );
            }
            counts
                .biller
                .receipt(tx, &mut counts.tally, attached, &sku, at_ms)?;
            match (claim, attached) {
                (Claim::Refused { kind, detail }, _) => note(kind, Some(&lpn), &detail),
                (_, Some(rma)) => match event.unit_received(tx, rma, &lpn, &sku, receipt)? {
                    Some(detail) => note(AnomalyKind::ClosedReturnReceived, Some(&lpn), &detail),
                    None => Ok(0),
                },
                _ => Ok(0),
            }
        }
        OpBody::UnitGraded {
            lpn,
            grade,
            defects,
        } => match transition(tx, site, &lpn, now_ms, |s| s.grade(&lpn, grade))? {
            Ok(()) => {
                let listed: Vec<&str> = defects.iter().map(|d| d.as_str()).collect();
                let detail = Detail::graded(grade, &listed);
                // A new grade is a new decision.
                tx.execute(
                    "UPDATE units SET grade = ?2, defects = ?3, decided = NULL WHERE lpn = ?1",
                    params![lpn.as_str(), grade.as_str(), listed.join(",")],
                )?;
                event.unit_event(tx, &lpn, "unit_graded", &detail)?;
                bill(billing::Activity::Grading, &lpn)?;
                Ok(0)
            }
            Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
        },
        OpBody::DispositionUndone { lpn, grade } => {
            match transition(tx, site, &lpn, now_ms, |s| s.undo_disposition(&lpn, grade))? {
                Ok(()) => {
                    let detail = Detail::disposition_undone(grade);
                    event.unit_event(tx, &lpn, "disposition_undone", &detail)?;
                    Ok(0)
                }
                Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
            }
        }
        OpBody::ParcelClosed { rma, shortages } => {
            let shortages_json = serde_json::to_string(
                &shortages
                    .iter()
                    .map(|(s, n)| serde_json::json!({"sku": s.as_str(), "qty": n}))
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default();
            match event.parcel_closed(tx, &rma, &shortages, &shortages_json)? {
                lifecycle::ParcelClosed::Recorded => Ok(0),
                lifecycle::ParcelClosed::UnknownReturn => note(
                    AnomalyKind::UnknownReturn,
                    None,
                    &Detail::parcel_unknown_return(rma.as_str()),
                ),
                lifecycle::ParcelClosed::ReturnClosed(status) => note(
                    AnomalyKind::ClosedReturnReceived,
                    None,
                    &Detail::parcel_of_closed_return(rma.as_str(), &status),
                ),
            }
        }
        OpBody::DispositionSet { lpn, disposition } => {
            match transition(tx, site, &lpn, now_ms, |s| s.dispose(&lpn, disposition))? {
                Ok(()) => {
                    let detail = Detail::disposition_set(disposition.as_str());
                    event.unit_event(tx, &lpn, "disposition_set", &detail)?;
                    bill(billing::Activity::Relabel, &lpn)?;
                    if disposition == Disposition::Refurbish {
                        bill(billing::Activity::Refurbishment, &lpn)?;
                    }
                    Ok(0)
                }
                Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
            }
        }
        OpBody::ReceiptVoided { lpn } => {
            match transition(tx, site, &lpn, now_ms, |s| s.void(&lpn))? {
                Ok(()) => {
                    event.unit_event(tx, &lpn, "receipt_voided", &Detail::receipt_voided())?;
                    if billing::in_storage(tx, &lpn)? {
                        bill(billing::Activity::StorageEnd, &lpn)?;
                    }
                    Ok(0)
                }
                Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
            }
        }
        OpBody::UnitPutAway { lpn, bin } => {
            match transition(tx, site, &lpn, now_ms, |s| s.put_away(&lpn))? {
                Ok(()) => {
                    tx.execute(
                        "UPDATE units SET bin = ?2 WHERE lpn = ?1",
                        params![lpn.as_str(), bin.as_str()],
                    )?;
                    event.unit_event(tx, &lpn, "unit_put_away", &Detail::put_away(bin.as_str()))?;
                    if !billing::in_storage(tx, &lpn)? {
                        bill(billing::Activity::StorageStart, &lpn)?;
                    }
                    Ok(0)
                }
                Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
            }
        }
        OpBody::UnitTested { lpn, passed } => {
            let n = tx.execute(
                "UPDATE units SET tested = ?3, updated_ms = ?4 WHERE lpn = ?1 AND site = ?2",
                params![lpn.as_str(), site.as_str(), passed, now_ms],
            )?;
            if n == 0 {
                return note(
                    AnomalyKind::InvalidTransition,
                    Some(&lpn),
                    &Detail::test_not_held(),
                );
            }
            event.unit_event(tx, &lpn, "unit_tested", &Detail::tested(passed))?;
            Ok(0)
        }
        OpBody::UnitDeparted {
            lpn,
            departure,
            tracking,
        } => match transition(tx, site, &lpn, now_ms, |s| s.depart(&lpn, &departure))? {
            Ok(()) => {
                let detail = Detail::departed(&departure, tracking.as_deref());
                event.unit_event(tx, &lpn, "unit_departed", &detail)?;
                if billing::in_storage(tx, &lpn)? {
                    bill(billing::Activity::StorageEnd, &lpn)?;
                }
                match &departure {
                    Departure::Transfer { .. } => bill(billing::Activity::Transfer, &lpn)?,
                    Departure::Recycler | Departure::Disposal => {
                        bill(billing::Activity::Disposal, &lpn)?
                    }
                    Departure::ToCustomer { .. } => bill(billing::Activity::ShipBack, &lpn)?,
                    Departure::Vendor | Departure::Exchange { .. } => {}
                }
                if let Departure::Exchange { rma } = &departure {
                    event.return_event(tx, rma, "exchange_shipped", &lpn, &detail)?;
                }
                if let Departure::ToCustomer { rma } = &departure {
                    let mut sql = sql::sqlite(tx);
                    ship_backs::shipped(&mut sql, &lpn, rma, tracking.as_deref(), now_ms)?;
                    event.return_event(tx, rma, "shipped_back", &lpn, &detail)?;
                }
                match departed(tx, site, &lpn, &departure, now_ms, commands_queued)? {
                    Ok(()) => Ok(0),
                    Err(detail) => note(AnomalyKind::IncompleteUnit, Some(&lpn), &detail),
                }
            }
            Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
        },
        OpBody::TransferReceived { lpn, from } => {
            let expected: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT site, transfer_to FROM units WHERE lpn = ?1",
                    [lpn.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let detail = match expected {
                Some((owner, Some(to))) if owner == from.as_str() && to == site.as_str() => None,
                Some((owner, to)) => Some(Detail::transfer_unexpected(
                    from.as_str(),
                    &owner,
                    to.as_deref(),
                )),
                None => Some(Detail::unit_unknown()),
            };
            if let Some(detail) = detail {
                return note(AnomalyKind::InvalidTransition, Some(&lpn), &detail);
            }
            // The unit changes hands: the arriving site owns it from here on.
            tx.execute(
                "UPDATE units SET site = ?2, transfer_to = NULL WHERE lpn = ?1",
                params![lpn.as_str(), site.as_str()],
            )?;
            match transition(tx, site, &lpn, now_ms, |s| s.arrive(&lpn))? {
                Ok(()) => {
                    let detail = Detail::transfer_received(from.as_str());
                    event.unit_event(tx, &lpn, "transfer_received", &detail)?;
                    Ok(0)
                }
                Err(detail) => note(AnomalyKind::InvalidTransition, Some(&lpn), &detail),
            }
        }
        OpBody::UnitMatched { lpn, rma } => {
            let n = tx.execute(
                "UPDATE units SET rma = ?3, quarantine = 0, updated_ms = ?4
                 WHERE lpn = ?1 AND site = ?2 AND quarantine = 1",
                params![lpn.as_str(), site.as_str(), rma.as_str(), now_ms],
            )?;
            if n == 0 {
                return note(
                    AnomalyKind::InvalidTransition,
                    Some(&lpn),
                    &Detail::match_not_quarantined(rma.as_str()),
                );
            }
            event.unit_event(tx, &lpn, "unit_matched", &Detail::matched_at_site())?;
            Ok(0)
        }
        OpBody::ToteReceived { tote } => {
            let n = tx.execute(
                "UPDATE totes SET status = 'received', received_ms = ?3 WHERE tote = ?1 AND site = ?2",
                params![tote.as_str(), site.as_str(), now_ms],
            )?;
            if n == 0 {
                return note(
                    AnomalyKind::UnknownTote,
                    None,
                    &Detail::tote_unknown(tote.as_str()),
                );
            }
            Ok(0)
        }
        OpBody::DatabaseRewound {
            epoch: rewound,
            head_seq,
            new_epoch,
        } => {
            // What this coordinator applied of that epoch beyond the site's head existed only
            // in the database the site lost; what the site confirmed after it and had not sent
            // is gone with it.
            let applied: i64 = tx
                .prepare_cached(
                    "SELECT applied_seq FROM op_streams WHERE site = ?1 AND epoch = ?2",
                )?
                .query_row(params![site.as_str(), to_i64(rewound.0)], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let n_ops = to_u64(applied).saturating_sub(head_seq);
            note(
                AnomalyKind::DatabaseRewound,
                None,
                &Detail::database_rewound(
                    site.as_str(),
                    n_ops,
                    new_epoch.to_string(),
                    rewound.to_string(),
                    head_seq,
                    applied,
                ),
            )
        }
        OpBody::InventoryAdjusted { sku, delta } => {
            tx.prepare_cached(
                "INSERT INTO inventory (site, sku, qty) VALUES (?1, ?2, ?3)
                 ON CONFLICT (site, sku) DO UPDATE SET qty = qty + excluded.qty",
            )?
            .execute(params![site.as_str(), sku.as_str(), delta])?;
            Ok(0)
        }
        OpBody::UnitReleased {
            lpn,
            supervisor,
            reason,
        } => {
            let n = tx.execute(
                "UPDATE units SET quarantine = 0, updated_ms = ?3
                 WHERE lpn = ?1 AND site = ?2 AND quarantine = 1",
                params![lpn.as_str(), site.as_str(), now_ms],
            )?;
            if n == 0 {
                return note(
                    AnomalyKind::InvalidTransition,
                    Some(&lpn),
                    &Detail::release_not_quarantined(),
                );
            }
            let detail = Detail::released(&supervisor, &reason);
            event.unit_event(tx, &lpn, "unit_released", &detail)?;
            let claimed: Option<String> = tx
                .query_row(
                    "SELECT claimed_rma FROM units WHERE lpn = ?1 AND rma IS NULL",
                    [lpn.as_str()],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            if let Some(claimed) = claimed {
                let claimed = RmaId::new(claimed)?;
                event.return_event(tx, &claimed, "unit_released", &lpn, &detail)?;
            }
            Ok(0)
        }
    };
    applied.map(|n| n + n_breaches)
}

/// The unit an op moves on through grading, disposition, putaway or departure: what the
/// quarantine gate holds back at the sites.
fn gated_unit(body: &OpBody) -> Option<&Lpn> {
    match body {
        OpBody::UnitGraded { lpn, .. }
        | OpBody::DispositionSet { lpn, .. }
        | OpBody::UnitPutAway { lpn, .. }
        | OpBody::UnitDeparted { lpn, .. } => Some(lpn),
        _ => None,
    }
}

fn is_quarantined(tx: &Transaction<'_>, lpn: &Lpn) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("SELECT quarantine FROM units WHERE lpn = ?1")?
        .query_row([lpn.as_str()], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// Whether a unit a site received against a return may count as that return's unit.
enum Claim {
    /// It names no return.
    None,
    Counts,
    /// It waits in quarantine unattached; `kind` and `detail` are the anomaly raised.
    Refused {
        kind: AnomalyKind,
        detail: Detail,
    },
}

/// The return a parcel reference names when that return is routed to another site.
fn routed_elsewhere(
    tx: &Transaction<'_>,
    site: &SiteId,
    reference: &str,
) -> Result<Option<RmaId>, StoreError> {
    let Ok(rma) = RmaId::new(reference) else {
        return Ok(None);
    };
    let routed_to: Option<String> = tx
        .prepare_cached("SELECT site FROM returns WHERE rma = ?1")?
        .query_row([rma.as_str()], |r| r.get(0))
        .optional()?;
    Ok(routed_to.filter(|s| s != site.as_str()).map(|_| rma))
}

/// Decides [`Claim`] for a unit of `sku` received at `site` against `rma`: the return must be
/// routed to this site and list the SKU, and an over unit must come before the parcel closed.
fn claim_of(
    tx: &Transaction<'_>,
    site: &SiteId,
    rma: &RmaId,
    sku: &Sku,
    receipt: ReceiptKind,
) -> Result<Claim, StoreError> {
    let row: Option<(String, String, String)> = tx
        .prepare_cached("SELECT site, status, lines_json FROM returns WHERE rma = ?1")?
        .query_row([rma.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((routed_to, status, lines_json)) = row else {
        // An RMA this coordinator never registered: nothing to attach it to, as before.
        return Ok(Claim::None);
    };
    let refused = |kind, detail: Detail| Ok(Claim::Refused { kind, detail });
    if routed_to != site.as_str() || receipt == ReceiptKind::Unidentified {
        return refused(
            AnomalyKind::ReturnNotRoutedHere,
            Detail::not_routed_here(sku.as_str(), site.as_str(), rma.as_str(), &routed_to),
        );
    }
    let listed = serde_json::from_str::<Vec<serde_json::Value>>(&lines_json)
        .unwrap_or_default()
        .iter()
        .any(|l| l["sku"].as_str() == Some(sku.as_str()));
    if !listed || receipt == ReceiptKind::WrongItem {
        return refused(
            AnomalyKind::WrongItem,
            Detail::not_listed(sku.as_str(), site.as_str(), rma.as_str()),
        );
    }
    if receipt == ReceiptKind::Over && status == lifecycle::RECEIVED {
        return refused(
            AnomalyKind::OverAfterClose,
            Detail::over_after_close(sku.as_str(), site.as_str(), rma.as_str()),
        );
    }
    Ok(Claim::Counts)
}

/// What a departure sets in motion: a transfer is announced to the site it goes to (so that
/// site can receive it offline), an exchange's replacement is recorded against its return.
/// The inner `Err(detail)` is an anomaly: the unit's record lacks what the transfer needs.
fn departed(
    tx: &Transaction<'_>,
    site: &SiteId,
    lpn: &Lpn,
    departure: &Departure,
    now_ms: i64,
    commands_queued: &mut Queued,
) -> Result<Result<(), Detail>, StoreError> {
    tx.execute("UPDATE units SET bin = NULL WHERE lpn = ?1", [lpn.as_str()])?;
    listings::delist_unit(&mut sql::sqlite(tx), lpn, now_ms)?;
    match departure {
        Departure::Transfer { to } => {
            let (sku, grade, state): (String, Option<String>, String) = tx.query_row(
                "SELECT sku, grade, state FROM units WHERE lpn = ?1",
                [lpn.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let Some(disposition) = UnitState::decode(&state)?.disposition() else {
                return Ok(Err(Detail::transfer_without_disposition()));
            };
            let Some(grade) = grade.as_deref().map(Grade::parse).transpose()? else {
                return Ok(Err(Detail::transfer_without_grade()));
            };
            tx.execute(
                "UPDATE units SET transfer_to = ?2 WHERE lpn = ?1",
                params![lpn.as_str(), to.as_str()],
            )?;
            let command = CommandBody::ExpectedTransfer {
                lpn: lpn.clone(),
                sku: Sku::new(sku)?,
                grade,
                disposition,
                from: site.clone(),
            };
            let seq = enqueue_command(tx, to, &command, now_ms)?;
            commands_queued.push(to.clone(), seq);
        }
        Departure::Exchange { rma } => {
            tx.execute(
                "UPDATE returns SET exchange_lpn = ?2 WHERE rma = ?1",
                params![rma.as_str(), lpn.as_str()],
            )?;
            reservations::shipped(&mut sql::sqlite(tx), rma, lpn.as_str(), now_ms)?;
        }
        Departure::Vendor
        | Departure::Recycler
        | Departure::Disposal
        | Departure::ToCustomer { .. } => {}
    }
    Ok(Ok(()))
}

/// Moves a unit to a new state. The inner `Err(detail)` says why the move is not allowed (the
/// caller records it as an anomaly); the outer error is a database failure.
fn transition(
    tx: &Transaction<'_>,
    site: &SiteId,
    lpn: &Lpn,
    now_ms: i64,
    next: impl FnOnce(UnitState) -> Result<UnitState, DomainError>,
) -> Result<Result<(), Detail>, StoreError> {
    let row: Option<(String, String)> = tx
        .prepare_cached("SELECT state, site FROM units WHERE lpn = ?1")?
        .query_row([lpn.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((state, owner)) = row else {
        return Ok(Err(Detail::unit_unknown()));
    };
    if owner != site.as_str() {
        return Ok(Err(Detail::unit_elsewhere(&owner)));
    }
    let new_state = match next(UnitState::decode(&state)?) {
        Ok(s) => s,
        Err(e) => return Ok(Err(Detail::refused_step(&e))),
    };
    tx.prepare_cached("UPDATE units SET state = ?2, updated_ms = ?3 WHERE lpn = ?1")?
        .execute(params![lpn.as_str(), new_state.encode(), now_ms])?;
    Ok(Ok(()))
}
