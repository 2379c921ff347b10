//! Stock reserved for an exchange when it is asked (returned grade-A units at any site
//! included), released if the return is cancelled or expires, shipped early for trusted
//! customers.
//!
//! Invariants: a unit is reserved for one exchange at most; a reservation is made in the
//! transaction registering its return, so an accepted exchange always has its replacement
//! (from a site's stock, or else from the merchant's own warehouse, said so); the order to
//! ship it goes out once, at receipt of the return (at once when advanced).

use modori_runtime::sqlite::to_i64;
use modori_shared::domain::{Coordinates, RmaId, Site, SiteId, Sku};
use modori_shared::geo::distance_km;
use modori_shared::op::CommandBody;
use serde::Serialize;

use super::commands::enqueue;
use super::sql::{in_transaction, Sql};
use super::{Queued, StoreError};

/// A replacement set aside for an exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reservation {
    pub sku: String,
    /// The site shipping it; none when it comes from the merchant's own warehouse.
    pub site: Option<String>,
    /// The returned unit set aside, when one is.
    pub lpn: Option<String>,
    /// `reserved`, `ordered`, `shipped` or `released`.
    pub status: String,
    /// Shipped before the return arrives (a trusted customer).
    pub advance: bool,
    pub why: String,
}

/// Reserves a grade-A unit of `sku` in stock at the site nearest `origin` (units already set
/// aside excluded), or else the merchant's own stock. When `advance`, the order to ship goes
/// to the site at once. Returns the reservation and the command queued, if any.
#[allow(clippy::too_many_arguments)]
pub fn reserve(
    tx: &mut dyn Sql,
    rma: &RmaId,
    sku: &Sku,
    origin: Coordinates,
    sites: &[Site],
    advance: bool,
    now_ms: i64,
) -> Result<(Reservation, Option<(SiteId, u64)>), StoreError> {
    let held: Vec<(String, String)> = tx.map_rows(
        concat!(
            "SELECT u.site, u.lpn FROM units u
             WHERE u.sku = ?1 AND ",
            super::stock::sellable_unit_sql!(),
            "
               AND u.lpn NOT IN (SELECT lpn FROM reservations
                                 WHERE lpn IS NOT NULL AND status IN ('reserved', 'ordered'))
             ORDER BY u.updated_ms, u.lpn"
        ),
        &[&sku.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let nearest = held
        .iter()
        .filter_map(|(site, lpn)| {
            let s = sites.iter().find(|s| s.id.as_str() == site)?;
            Some((distance_km(origin, s.location), s, lpn))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let (site, lpn, why) = match nearest {
        Some((km, s, lpn)) => (
            Some(s.id.clone()),
            Some(lpn.clone()),
            format!(
                "returned grade-A unit {lpn} in stock at {} ({km:.0} km from the customer), of {} available",
                s.id,
                held.len()
            ),
        ),
        None => (
            None,
            None,
            format!("no returned {sku} in stock at any site: from the merchant's own warehouse"),
        ),
    };
    let mut queued = None;
    let mut status = "reserved";
    let mut order_seq = None;
    if let (true, Some(site)) = (advance, &site) {
        let seq = enqueue(
            tx,
            site,
            &CommandBody::ExchangeOrder {
                rma: rma.clone(),
                sku: sku.clone(),
            },
            now_ms,
        )?;
        queued = Some((site.clone(), seq));
        status = "ordered";
        order_seq = Some(seq);
    }
    tx.execute(
        "INSERT INTO reservations (rma, sku, site, lpn, status, advance, order_seq, why, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        &[
            &rma.as_str(),
            &sku.as_str(),
            &site.as_ref().map(SiteId::as_str),
            &lpn,
            &status,
            &advance,
            &order_seq.map(to_i64),
            &why,
            &now_ms,
        ],
    )?;
    Ok((
        Reservation {
            sku: sku.to_string(),
            site: site.map(|s| s.to_string()),
            lpn,
            status: status.to_owned(),
            advance,
            why,
        },
        queued,
    ))
}

/// Orders the replacement of every exchange whose return has been received (its parcel
/// closed) and whose stock sits at a site. Returns the commands queued.
pub fn order_due(conn: &mut dyn Sql, now_ms: i64) -> Result<Queued, StoreError> {
    in_transaction(conn, |tx| {
        let due: Vec<(String, String, String)> = tx.map_rows(
            "SELECT v.rma, v.sku, v.site FROM reservations v JOIN returns r ON r.rma = v.rma
             WHERE v.status = 'reserved' AND v.site IS NOT NULL AND r.status = 'received'",
            &[],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut queued = Queued::none();
        for (rma, sku, site) in due {
            let site = SiteId::new(site)?;
            let command = CommandBody::ExchangeOrder {
                rma: RmaId::new(rma.clone())?,
                sku: Sku::new(sku)?,
            };
            let seq = enqueue(tx, &site, &command, now_ms)?;
            tx.execute(
                "UPDATE reservations SET status = 'ordered', order_seq = ?2, updated_ms = ?3
                 WHERE rma = ?1",
                &[&rma, &to_i64(seq), &now_ms],
            )?;
            queued.push(site, seq);
        }
        Ok(queued)
    })
}

/// The replacement left its site: the reservation is fulfilled (by whichever unit shipped).
pub fn shipped(tx: &mut dyn Sql, rma: &RmaId, lpn: &str, now_ms: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE reservations SET status = 'shipped', lpn = ?2, updated_ms = ?3
         WHERE rma = ?1 AND status IN ('reserved', 'ordered')",
        &[&rma.as_str(), &lpn, &now_ms],
    )?;
    Ok(())
}

/// The return was cancelled or expired: its reservation is released, and a site already told
/// to ship is told to stop. Returns the command queued, if any.
pub fn release(
    tx: &mut dyn Sql,
    rma: &RmaId,
    now_ms: i64,
) -> Result<Option<(SiteId, u64)>, StoreError> {
    let row: Option<(String, Option<String>)> = tx.map_row_opt(
        "SELECT status, site FROM reservations WHERE rma = ?1",
        &[&rma.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let Some((status, site)) = row else {
        return Ok(None);
    };
    if status != "reserved" && status != "ordered" {
        return Ok(None);
    }
    tx.execute(
        "UPDATE reservations SET status = 'released', updated_ms = ?2 WHERE rma = ?1",
        &[&rma.as_str(), &now_ms],
    )?;
    match (status.as_str(), site) {
        ("ordered", Some(site)) => {
            let site = SiteId::new(site)?;
            let seq = enqueue(
                tx,
                &site,
                &CommandBody::ExchangeWithdrawn { rma: rma.clone() },
                now_ms,
            )?;
            Ok(Some((site, seq)))
        }
        _ => Ok(None),
    }
}

pub fn reservation(conn: &mut dyn Sql, rma: &RmaId) -> Result<Option<Reservation>, StoreError> {
    Ok(conn.map_row_opt(
        "SELECT sku, site, lpn, status, advance, why FROM reservations WHERE rma = ?1",
        &[&rma.as_str()],
        |r| {
            Ok(Reservation {
                sku: r.get(0)?,
                site: r.get(1)?,
                lpn: r.get(2)?,
                status: r.get(3)?,
                advance: r.get(4)?,
                why: r.get(5)?,
            })
        },
    )?)
}
