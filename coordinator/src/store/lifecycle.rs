//! The life of a return (RMA) at the centre: its status and its timeline.
//!
//! Status: `expected` → `receiving` (a unit of it received at its site) → `received` (its
//! parcel closed); or `expected` → `cancelled` (by the API) / `expired` (nothing received
//! `returns.expire_after_days` after it was registered). A cancelled or expired return is
//! withdrawn at its site by a `WithdrawExpectedReturn` command queued in the same transaction.
//!
//! Timeline: one `return_events` row per event, written in the transaction of the change it
//! records: the registration, a cancel or expiry, and each site op applied to a unit of the
//! return. Ops are facts: a unit received for a cancelled return is recorded like any other
//! (and raises an anomaly for ops); the return keeps its status.

use modori_shared::domain::{Lpn, RmaId, SiteId, Sku};
use modori_shared::op::CommandBody;
use modori_shared::station::ReceiptKind;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::details::{self, Detail};
use super::{enqueue_command, to_i64, Queued, StoreError};

/// Returns expired in one transaction at most; a sweep runs transactions until none is left.
pub const EXPIRE_BATCH_MAX: usize = 500;
/// Events of one return shown at most (oldest first). A return holds at most
/// `RETURN_LINES_MAX` lines, so this bounds what one answer costs, not what is kept.
pub const RETURN_EVENTS_MAX: usize = 2000;

pub const EXPECTED: &str = "expected";
pub const RECEIVING: &str = "receiving";
pub const RECEIVED: &str = "received";
pub const CANCELLED: &str = "cancelled";
pub const EXPIRED: &str = "expired";

/// Whether a return in `status` is closed (nothing more is expected of it).
fn is_closed(status: &str) -> bool {
    status == CANCELLED || status == EXPIRED
}

/// Every kind of row a return's timeline holds: what the pages must have words for.
pub const TIMELINE_KINDS: [&str; 37] = [
    "registered",
    "resolution_chosen",
    "unit_matched",
    "unit_received",
    "unit_graded",
    "unit_tested",
    "unit_put_away",
    "unit_released",
    "unit_departed",
    "disposition_set",
    "disposition_undone",
    "receipt_voided",
    "transfer_received",
    "exchange_shipped",
    "parcel_closed",
    "refund_computed",
    "refunded",
    "cancelled",
    "expired",
    "returnless",
    "dropped_off",
    "in_tote",
    "carrier_picked_up",
    "carrier_in_transit",
    "carrier_delivered_to_site",
    "carrier_exception",
    "trade_in_offer",
    "trade_in_counter_offer",
    "trade_in_accepted",
    "trade_in_declined",
    "trade_in_offer_overridden",
    "repair_quoted",
    "repair_unpriced",
    "repair_accepted",
    "repair_declined",
    "repair_quote_overridden",
    "shipped_back",
];

/// One timeline row, its detail coded where the detail has a code.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_event(
    tx: &Transaction<'_>,
    rma: &str,
    kind: &str,
    site: Option<&str>,
    lpn: Option<&str>,
    detail: &Detail,
    at_ms: i64,
    recorded_ms: i64,
) -> Result<(), StoreError> {
    debug_assert!(
        TIMELINE_KINDS.contains(&kind),
        "timeline kind {kind} is not in TIMELINE_KINDS"
    );
    // Once per op of a unit with a return: prepared once per connection.
    tx.prepare_cached(
        "INSERT INTO return_events
             (rma, kind, site, lpn, detail, at_ms, recorded_ms, detail_code, detail_params)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        rma,
        kind,
        site,
        lpn,
        detail.english,
        at_ms,
        recorded_ms,
        detail.code(),
        detail.params_json(),
    ])?;
    Ok(())
}

fn status_of(tx: &Transaction<'_>, rma: &str) -> Result<Option<String>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT status FROM returns WHERE rma = ?1")?
        .query_row([rma], |r| r.get(0))
        .optional()?)
}

/// The `registered` event of a return stored in `tx`.
pub(crate) fn registered(
    tx: &Transaction<'_>,
    rma: &RmaId,
    site: &SiteId,
    routing: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let detail = Detail::registered(site.as_str(), routing);
    insert_event(
        tx,
        rma.as_str(),
        "registered",
        Some(site.as_str()),
        None,
        &detail,
        now_ms,
        now_ms,
    )
}

/// The customer's choice (refund, exchange, store credit) recorded with the registration.
pub(crate) fn resolution_chosen(
    tx: &Transaction<'_>,
    rma: &RmaId,
    detail: &Detail,
    now_ms: i64,
) -> Result<(), StoreError> {
    insert_event(
        tx,
        rma.as_str(),
        "resolution_chosen",
        None,
        None,
        detail,
        now_ms,
        now_ms,
    )
}

/// A quarantined unit matched to `rma` by ops.
pub(crate) fn unit_matched(
    tx: &Transaction<'_>,
    rma: &RmaId,
    lpn: &Lpn,
    site: &SiteId,
    now_ms: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE returns SET status = ?2 WHERE rma = ?1 AND status = ?3",
        params![rma.as_str(), RECEIVING, EXPECTED],
    )?;
    insert_event(
        tx,
        rma.as_str(),
        "unit_matched",
        Some(site.as_str()),
        Some(lpn.as_str()),
        &Detail::matched_by_ops(),
        now_ms,
        now_ms,
    )
}

/// An op of `site` being applied: its time at the site and here.
pub(crate) struct OpEvent<'a> {
    pub site: &'a SiteId,
    /// When it happened, by the site's clock.
    pub at_ms: i64,
    /// When it is applied here.
    pub now_ms: i64,
}

/// What closing a parcel did to its return.
pub(crate) enum ParcelClosed {
    Recorded,
    UnknownReturn,
    /// The return was cancelled or expired (the status given); it keeps that status.
    ReturnClosed(String),
}

impl OpEvent<'_> {
    fn insert(
        &self,
        tx: &Transaction<'_>,
        rma: &str,
        kind: &str,
        lpn: Option<&str>,
        detail: &Detail,
    ) -> Result<(), StoreError> {
        insert_event(
            tx,
            rma,
            kind,
            Some(self.site.as_str()),
            lpn,
            detail,
            self.at_ms,
            self.now_ms,
        )
    }

    /// A unit of `rma` received. Returns the detail of an anomaly when the return is closed.
    pub fn unit_received(
        &self,
        tx: &Transaction<'_>,
        rma: &RmaId,
        lpn: &Lpn,
        sku: &Sku,
        receipt: ReceiptKind,
    ) -> Result<Option<Detail>, StoreError> {
        let Some(status) = status_of(tx, rma.as_str())? else {
            // An RMA label this coordinator never registered: nothing to attach it to.
            return Ok(None);
        };
        let detail = Detail::unit_received(sku.as_str(), receipt.as_str());
        self.insert(
            tx,
            rma.as_str(),
            "unit_received",
            Some(lpn.as_str()),
            &detail,
        )?;
        if status == EXPECTED {
            tx.execute(
                "UPDATE returns SET status = ?2 WHERE rma = ?1",
                params![rma.as_str(), RECEIVING],
            )?;
        }
        Ok(is_closed(&status).then(|| Detail::unit_of_closed_return(rma.as_str(), &status)))
    }

    /// An op on a unit (graded, disposition set, …): a row in its return's timeline, when the
    /// unit belongs to one.
    pub fn unit_event(
        &self,
        tx: &Transaction<'_>,
        lpn: &Lpn,
        kind: &str,
        detail: &Detail,
    ) -> Result<(), StoreError> {
        let rma: Option<String> = tx
            .prepare_cached("SELECT rma FROM units WHERE lpn = ?1")?
            .query_row([lpn.as_str()], |r| r.get(0))
            .optional()?
            .flatten();
        match rma {
            Some(rma) => self.insert(tx, &rma, kind, Some(lpn.as_str()), detail),
            None => Ok(()),
        }
    }

    /// An event of the return `rma` itself (its exchange's replacement shipped), when the return
    /// is registered here.
    pub fn return_event(
        &self,
        tx: &Transaction<'_>,
        rma: &RmaId,
        kind: &str,
        lpn: &Lpn,
        detail: &Detail,
    ) -> Result<(), StoreError> {
        if status_of(tx, rma.as_str())?.is_none() {
            return Ok(());
        }
        self.insert(tx, rma.as_str(), kind, Some(lpn.as_str()), detail)
    }

    /// The parcel of `rma` closed at the site, `shortages` missing.
    pub fn parcel_closed(
        &self,
        tx: &Transaction<'_>,
        rma: &RmaId,
        shortages: &[(Sku, u32)],
        shortages_json: &str,
    ) -> Result<ParcelClosed, StoreError> {
        let Some(status) = status_of(tx, rma.as_str())? else {
            return Ok(ParcelClosed::UnknownReturn);
        };
        let detail = Detail::parcel_closed(shortages.len());
        self.insert(tx, rma.as_str(), "parcel_closed", None, &detail)?;
        if is_closed(&status) {
            return Ok(ParcelClosed::ReturnClosed(status));
        }
        tx.execute(
            "UPDATE returns SET status = ?2, shortages_json = ?3 WHERE rma = ?1",
            params![rma.as_str(), RECEIVED, shortages_json],
        )?;
        Ok(ParcelClosed::Recorded)
    }
}

/// Who may see a return: its merchant and the store it was registered at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub merchant: Option<String>,
    pub origin_store: Option<String>,
}

pub fn owner(conn: &Connection, rma: &RmaId) -> Result<Option<Owner>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT merchant, origin_store FROM returns WHERE rma = ?1",
            [rma.as_str()],
            |r| {
                Ok(Owner {
                    merchant: r.get(0)?,
                    origin_store: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// One line of a return as registered, or one short line of a closed parcel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub sku: String,
    pub qty: u64,
    /// Absent for a shortage.
    pub reason: Option<String>,
}

/// One row of a return's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: String,
    pub site: Option<String>,
    pub lpn: Option<String>,
    pub detail: Option<String>,
    /// The detail's code and parameters (`details`), for a page to say it in its language;
    /// none for an event written before codes, or whose words come from elsewhere.
    pub detail_code: Option<String>,
    pub detail_params: Option<std::collections::BTreeMap<String, String>>,
    /// When it happened (for a site's op, by the site's clock).
    pub at_ms: i64,
    /// When the coordinator recorded it.
    pub recorded_ms: i64,
}

/// A return with its timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Return {
    pub rma: String,
    pub owner: Owner,
    pub status: String,
    pub site: String,
    pub origin: String,
    pub routing: String,
    pub lines: Vec<Line>,
    pub shortages: Vec<Line>,
    pub created_ms: i64,
    pub events: Vec<Event>,
}

fn lines(json: Option<&str>) -> Vec<Line> {
    // Written by this module from validated values; an unreadable row shows no lines rather
    // than failing the whole answer.
    let parsed: Vec<serde_json::Value> = json
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    parsed
        .iter()
        .map(|l| Line {
            sku: l["sku"].as_str().unwrap_or_default().to_owned(),
            qty: l["qty"].as_u64().unwrap_or(0),
            reason: l["reason"].as_str().map(str::to_owned),
        })
        .collect()
}

/// A return and its timeline (oldest first, at most [`RETURN_EVENTS_MAX`] events).
pub fn get(conn: &Connection, rma: &RmaId) -> Result<Option<Return>, StoreError> {
    let row = conn
        .query_row(
            "SELECT status, site, origin, routing, lines_json, shortages_json, created_ms,
                    merchant, origin_store
             FROM returns WHERE rma = ?1",
            [rma.as_str()],
            |r| {
                Ok(Return {
                    rma: rma.to_string(),
                    status: r.get(0)?,
                    site: r.get(1)?,
                    origin: r.get(2)?,
                    routing: r.get(3)?,
                    lines: lines(r.get::<_, Option<String>>(4)?.as_deref()),
                    shortages: lines(r.get::<_, Option<String>>(5)?.as_deref()),
                    created_ms: r.get(6)?,
                    owner: Owner {
                        merchant: r.get(7)?,
                        origin_store: r.get(8)?,
                    },
                    events: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut ret) = row else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT kind, site, lpn, detail, at_ms, recorded_ms, detail_code, detail_params
         FROM return_events
         WHERE rma = ?1 ORDER BY id LIMIT ?2",
    )?;
    ret.events = stmt
        .query_map(
            params![rma.as_str(), to_i64(RETURN_EVENTS_MAX as u64)],
            |r| {
                Ok(Event {
                    kind: r.get(0)?,
                    site: r.get(1)?,
                    lpn: r.get(2)?,
                    detail: r.get(3)?,
                    at_ms: r.get(4)?,
                    recorded_ms: r.get(5)?,
                    detail_code: r.get(6)?,
                    detail_params: details::read_params(r.get(7)?),
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    Ok(Some(ret))
}

/// What a cancel did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// Cancelled now; the site was told with this command.
    Cancelled {
        site: SiteId,
        command_seq: u64,
        /// The withdrawal, to wake the site with.
        queued: Queued,
    },
    /// It was cancelled before: nothing changed (a retried request).
    AlreadyCancelled,
    NotFound,
    /// Something of it has arrived, or it expired: the status given.
    NotOpen(String),
}

/// Cancels a return nothing of which has been received: status, timeline and the withdrawal
/// at its site, in one transaction. `by` names who asked (an API key id).
pub fn cancel(
    conn: &mut Connection,
    rma: &RmaId,
    by: &str,
    now_ms: i64,
) -> Result<Cancel, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row: Option<(String, String, i64)> = tx
        .query_row(
            "SELECT status, site, (SELECT COUNT(*) FROM units WHERE rma = ?1) FROM returns WHERE rma = ?1",
            [rma.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let outcome = match row {
        None => Cancel::NotFound,
        Some((status, _, _)) if status == CANCELLED => Cancel::AlreadyCancelled,
        Some((status, _, n_units)) if status != EXPECTED || n_units > 0 => {
            Cancel::NotOpen(if status == EXPECTED {
                RECEIVING.to_owned()
            } else {
                status
            })
        }
        Some((_, site, _)) => {
            let site = SiteId::new(site)?;
            let command_seq = close(
                &tx,
                rma,
                &site,
                CANCELLED,
                &Detail::cancelled_by(by),
                now_ms,
            )?;
            Cancel::Cancelled {
                queued: Queued::one(site.clone(), command_seq),
                site,
                command_seq,
            }
        }
    };
    tx.commit()?;
    Ok(outcome)
}

/// Moves an open return to `status` with its event, and withdraws it at its site.
fn close(
    tx: &Transaction<'_>,
    rma: &RmaId,
    site: &SiteId,
    status: &str,
    detail: &Detail,
    now_ms: i64,
) -> Result<u64, StoreError> {
    tx.execute(
        "UPDATE returns SET status = ?2 WHERE rma = ?1",
        params![rma.as_str(), status],
    )?;
    insert_event(tx, rma.as_str(), status, None, None, detail, now_ms, now_ms)?;
    // Stock set aside for its exchange goes back (a site told to ship is told to stop).
    super::reservations::release(&mut super::sql::sqlite(tx), rma, now_ms)?;
    enqueue_command(
        tx,
        site,
        &CommandBody::WithdrawExpectedReturn { rma: rma.clone() },
        now_ms,
    )
}

/// Returns that expired in one pass, and their withdrawals to wake their sites with.
#[must_use = "returns were withdrawn at their sites: wake them once committed"]
#[derive(Debug, Default)]
pub struct Expired {
    /// Each return with its site and the withdrawal's seq.
    pub returns: Vec<(RmaId, SiteId, u64)>,
    pub queued: Queued,
}

impl Expired {
    pub fn iter(&self) -> std::slice::Iter<'_, (RmaId, SiteId, u64)> {
        self.returns.iter()
    }

    pub fn len(&self) -> usize {
        self.returns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.returns.is_empty()
    }
}

/// Expires returns registered before `cutoff_ms` nothing of which has been received, at most
/// [`EXPIRE_BATCH_MAX`] in one transaction; returns them with the site told and the command's
/// seq. Call again while it returns a full batch.
pub fn expire_before(
    conn: &mut Connection,
    cutoff_ms: i64,
    now_ms: i64,
) -> Result<Expired, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let due: Vec<(String, String)> = tx
        .prepare_cached(
            "SELECT rma, site FROM returns r
             WHERE status = ?1 AND created_ms < ?2
               AND NOT EXISTS (SELECT 1 FROM units u WHERE u.rma = r.rma)
             ORDER BY created_ms, rma LIMIT ?3",
        )?
        .query_map(
            params![EXPECTED, cutoff_ms, to_i64(EXPIRE_BATCH_MAX as u64)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut out = Expired::default();
    for (rma, site) in due {
        let (rma, site) = (RmaId::new(rma)?, SiteId::new(site)?);
        let seq = close(&tx, &rma, &site, EXPIRED, &Detail::expired(), now_ms)?;
        out.queued.push(site.clone(), seq);
        out.returns.push((rma, site, seq));
    }
    tx.commit()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{self, init, migrations, Customer, NewReturn};
    use modori_shared::domain::{Coordinates, Disposition, Grade, ReasonCode, ReturnLine};
    use modori_shared::op::OpBody;
    use modori_shared::wire::payload;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn
    }

    fn site() -> SiteId {
        SiteId::new("osaka").unwrap()
    }

    fn register(conn: &mut Connection, rma: &str, now_ms: i64) -> RmaId {
        let rma = RmaId::new(rma).unwrap();
        let r = NewReturn {
            rma: rma.clone(),
            merchant: Some(modori_shared::domain::MerchantId::new("brand-a").unwrap()),
            origin: Coordinates::new(34.7, 135.5).unwrap(),
            origin_label: "point:34.7,135.5".into(),
            origin_store: None,
            lines: vec![ReturnLine::new(Sku::new("A").unwrap(), 1, ReasonCode::Other).unwrap()],
            customer: None::<Customer>,
            terms: None,
            order_ref: None,
            resolution: None,
        };
        // No site is connected in these tests: nothing to wake.
        let _ = store::register_return(conn, &r, &site(), "nearest", "[]", &[], now_ms).unwrap();
        rma
    }

    fn ops(conn: &mut Connection, first_seq: u64, bodies: Vec<OpBody>) -> usize {
        crate::store::test_ops::apply_bodies(conn, &site(), first_seq, bodies).n_anomalies
    }

    fn received(rma: &RmaId, lpn: &str) -> OpBody {
        OpBody::UnitReceived {
            lpn: Lpn::new(lpn).unwrap(),
            rma: Some(rma.clone()),
            sku: Sku::new("A").unwrap(),
            receipt: ReceiptKind::Matched,
            parcel_ref: None,
        }
    }

    fn kinds(conn: &Connection, rma: &RmaId) -> Vec<String> {
        get(conn, rma)
            .unwrap()
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    #[test]
    fn the_timeline_follows_the_site_ops_of_its_units() {
        let mut conn = open();
        let rma = register(&mut conn, "RMA-1", 1_000);
        assert_eq!(get(&conn, &rma).unwrap().unwrap().status, EXPECTED);
        let lpn = Lpn::new("L1").unwrap();
        let n_anomalies = ops(
            &mut conn,
            1,
            vec![
                received(&rma, "L1"),
                OpBody::UnitGraded {
                    lpn: lpn.clone(),
                    grade: Grade::B,
                    defects: vec![],
                },
                OpBody::DispositionSet {
                    lpn,
                    disposition: Disposition::Resale,
                },
                OpBody::ParcelClosed {
                    rma: rma.clone(),
                    shortages: vec![],
                },
            ],
        );
        assert_eq!(n_anomalies, 0);
        let ret = get(&conn, &rma).unwrap().unwrap();
        assert_eq!(ret.status, RECEIVED);
        assert_eq!(
            kinds(&conn, &rma),
            [
                "registered",
                "unit_received",
                "unit_graded",
                "disposition_set",
                "parcel_closed"
            ]
        );
        let graded = &ret.events[2];
        assert_eq!(graded.lpn.as_deref(), Some("L1"));
        assert_eq!(graded.detail.as_deref(), Some("grade B"));
        // The site's clock for when it happened, ours for when we heard.
        assert_eq!((graded.at_ms, graded.recorded_ms), (5_000, 9_000));
        assert_eq!(ret.lines[0].sku, "A");
        assert!(get(&conn, &RmaId::new("RMA-NONE").unwrap())
            .unwrap()
            .is_none());
    }

    #[test]
    fn only_an_open_return_is_cancelled_and_the_site_is_told() {
        let mut conn = open();
        let rma = register(&mut conn, "RMA-1", 1_000);
        let Cancel::Cancelled {
            site: s,
            command_seq,
            ..
        } = cancel(&mut conn, &rma, "k", 2_000).unwrap()
        else {
            panic!("not cancelled");
        };
        assert_eq!(s, site());
        let (_, payload): (String, Vec<u8>) = conn
            .query_row(
                "SELECT kind, payload FROM commands WHERE site = 'osaka' AND seq = ?1",
                [to_i64(command_seq)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            payload::decode_command(&payload).unwrap(),
            CommandBody::WithdrawExpectedReturn { rma: rma.clone() }
        );
        assert_eq!(
            cancel(&mut conn, &rma, "k", 3_000).unwrap(),
            Cancel::AlreadyCancelled
        );
        assert_eq!(kinds(&conn, &rma), ["registered", "cancelled"]);
        // A parcel that arrives anyway is a fact: recorded, flagged, the return stays cancelled.
        assert_eq!(ops(&mut conn, 1, vec![received(&rma, "L1")]), 1);
        assert_eq!(get(&conn, &rma).unwrap().unwrap().status, CANCELLED);
        assert_eq!(
            store::anomalies(&conn, 1).unwrap()[0].kind,
            "closed_return_received"
        );

        let busy = register(&mut conn, "RMA-2", 1_000);
        ops(&mut conn, 2, vec![received(&busy, "L2")]);
        assert_eq!(
            cancel(&mut conn, &busy, "k", 4_000).unwrap(),
            Cancel::NotOpen(RECEIVING.into())
        );
        assert_eq!(
            cancel(&mut conn, &RmaId::new("RMA-NONE").unwrap(), "k", 4_000).unwrap(),
            Cancel::NotFound
        );
    }

    #[test]
    fn returns_nothing_of_which_arrived_in_time_expire() {
        let mut conn = open();
        let old = register(&mut conn, "RMA-OLD", 1_000);
        let busy = register(&mut conn, "RMA-BUSY", 1_000);
        let new = register(&mut conn, "RMA-NEW", 50_000);
        ops(&mut conn, 1, vec![received(&busy, "L1")]);
        let expired = expire_before(&mut conn, 10_000, 60_000).unwrap();
        let rmas: Vec<&RmaId> = expired.iter().map(|(r, _, _)| r).collect();
        assert_eq!(rmas, [&old]);
        assert_eq!(get(&conn, &old).unwrap().unwrap().status, EXPIRED);
        assert_eq!(get(&conn, &busy).unwrap().unwrap().status, RECEIVING);
        assert_eq!(get(&conn, &new).unwrap().unwrap().status, EXPECTED);
        assert_eq!(kinds(&conn, &old), ["registered", "expired"]);
        assert!(expire_before(&mut conn, 10_000, 61_000).unwrap().is_empty());
        assert_eq!(
            cancel(&mut conn, &old, "k", 62_000).unwrap(),
            Cancel::NotOpen(EXPIRED.into())
        );
    }
}
