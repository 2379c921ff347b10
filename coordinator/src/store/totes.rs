//! Consolidation of store drop-offs: returns registered at a store wait there; once enough
//! wait for the same site (or the oldest has waited long enough) they leave together in a tote
//! with one label, and the site receives the tote and its contents in one scan flow.
//!
//! Invariants: a return is in one tote at most; a tote, its returns' assignment, its timeline
//! rows and the `ExpectedTote` command to its site are written in one transaction.

use modori_shared::barcode::tote_encode;
use modori_shared::domain::{RmaId, SiteId, ToteId};
use modori_shared::op::CommandBody;
use rusqlite::{params, Connection, TransactionBehavior};
use serde::{Deserialize, Serialize};

use modori_runtime::sqlite::to_i64;

use super::details::Detail;
use super::{enqueue_command, Queued, StoreError};

/// Returns one tote holds at most (what one command carries).
pub const TOTE_RETURNS_MAX: usize = modori_shared::wire::payload::RETURN_LINES_MAX;

/// `[consolidation]` in the coordinator's config.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsolidationConfig {
    /// Returns waiting at a store for one site that fill a tote.
    pub min_returns: u32,
    /// A tote leaves with what waits once the oldest has waited this long, in hours.
    pub max_age_hours: u32,
    /// Hours of the day (Japan time, 0-23) the carrier collects from stores: at the planning
    /// pass within such an hour, whatever waits leaves, however little.
    pub pickup_hours_jst: Vec<u32>,
}

impl Default for ConsolidationConfig {
    fn default() -> Self {
        Self {
            min_returns: 5,
            max_age_hours: 24,
            pickup_hours_jst: vec![16],
        }
    }
}

/// The hour of the day in Japan at `now_ms`.
pub fn hour_jst(now_ms: i64) -> u32 {
    let hour = (now_ms + 9 * 3_600_000)
        .div_euclid(3_600_000)
        .rem_euclid(24);
    u32::try_from(hour).unwrap_or(0)
}

/// Plans the totes due now; returns the `ExpectedTote` commands queued. `scheduled` is the
/// periodic pass, which also sends whatever waits within a pickup hour (the pass after each
/// registration only fills totes).
pub fn plan(
    conn: &mut Connection,
    config: &ConsolidationConfig,
    now_ms: i64,
    scheduled: bool,
) -> Result<Queued, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let pickup = scheduled && config.pickup_hours_jst.contains(&hour_jst(now_ms));
    let oldest_allowed = if pickup {
        i64::MAX
    } else {
        now_ms - i64::from(config.max_age_hours) * 3_600_000
    };
    let groups: Vec<(String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT origin_store, site FROM returns
             WHERE origin_store IS NOT NULL AND method = 'store_dropoff' AND status = 'expected'
               AND tote IS NULL
             GROUP BY origin_store, site
             HAVING COUNT(*) >= ?1 OR MIN(created_ms) <= ?2",
        )?;
        let rows = stmt.query_map(params![config.min_returns.max(1), oldest_allowed], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut queued = Queued::none();
    for (store, site) in groups {
        let rmas: Vec<String> = {
            let mut stmt = tx.prepare_cached(
                "SELECT rma FROM returns WHERE origin_store = ?1 AND site = ?2
                   AND method = 'store_dropoff' AND status = 'expected' AND tote IS NULL
                 ORDER BY created_ms, rma LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![store, site, to_i64(TOTE_RETURNS_MAX as u64)], |r| {
                    r.get(0)
                })?;
            rows.collect::<Result<_, _>>()?
        };
        let Some(first) = rmas.first() else { continue };
        let tote = ToteId::new(tote_id(&store, first, now_ms))?;
        let site = SiteId::new(site)?;
        tx.execute(
            "INSERT INTO totes (tote, store, site, status, n_returns, created_ms)
             VALUES (?1, ?2, ?3, 'planned', ?4, ?5)",
            params![
                tote.as_str(),
                store,
                site.as_str(),
                to_i64(rmas.len() as u64),
                now_ms
            ],
        )?;
        for rma in &rmas {
            tx.execute(
                "UPDATE returns SET tote = ?2 WHERE rma = ?1",
                params![rma, tote.as_str()],
            )?;
            super::lifecycle::insert_event(
                &tx,
                rma,
                "in_tote",
                Some(site.as_str()),
                None,
                &Detail::left_in_tote(&store, tote.as_str(), rmas.len()),
                now_ms,
                now_ms,
            )?;
        }
        let command = CommandBody::ExpectedTote {
            tote: tote.clone(),
            rmas: rmas
                .iter()
                .map(|r| RmaId::new(r.clone()))
                .collect::<Result<_, _>>()?,
        };
        queued.push(site.clone(), enqueue_command(&tx, &site, &command, now_ms)?);
    }
    tx.commit()?;
    Ok(queued)
}

/// A tote label body from the store, its first return and the time: ten `A-Z 0-9`.
fn tote_id(store: &str, first_rma: &str, now_ms: i64) -> String {
    let hash = format!("{store}/{first_rma}/{now_ms}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let body = crate::ids::base36_body(hash);
    // Ten characters of A-Z 0-9 always encode.
    tote_encode(&body).unwrap_or(body)
}

/// A tote as the store and the API see it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Tote {
    pub tote: String,
    pub site: String,
    /// `planned` (waiting for pickup at the store) or `received` at the site.
    pub status: String,
    pub rmas: Vec<String>,
}

/// What waits at `store`: returns not in a tote yet, and its totes not yet received.
pub fn waiting(
    conn: &mut dyn super::sql::Sql,
    store: &str,
) -> Result<(Vec<String>, Vec<Tote>), StoreError> {
    let loose: Vec<String> = conn.map_rows(
        "SELECT rma FROM returns WHERE origin_store = ?1 AND status = 'expected'
           AND tote IS NULL ORDER BY created_ms, rma",
        &[&store],
        |r| r.get(0),
    )?;
    let mut totes: Vec<Tote> = conn.map_rows(
        "SELECT tote, site, status FROM totes WHERE store = ?1 AND status = 'planned'
         ORDER BY created_ms, tote",
        &[&store],
        |r| {
            Ok(Tote {
                tote: r.get(0)?,
                site: r.get(1)?,
                status: r.get(2)?,
                rmas: Vec::new(),
            })
        },
    )?;
    for t in &mut totes {
        t.rmas = conn.map_rows(
            "SELECT rma FROM returns WHERE tote = ?1 ORDER BY created_ms, rma",
            &[&t.tote],
            |r| r.get(0),
        )?;
    }
    Ok((loose, totes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{init, migrations};

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn
    }

    fn dropoff(conn: &Connection, rma: &str, store: &str, site: &str, created_ms: i64) {
        conn.execute(
            "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms,
                                  status, method, origin_store)
             VALUES (?1, ?2, 'x', '[]', '', 1, ?3, 'expected', 'store_dropoff', ?4)",
            params![rma, site, created_ms, store],
        )
        .unwrap();
    }

    #[test]
    fn a_tote_leaves_when_full_or_when_the_oldest_has_waited_long_enough() {
        let mut conn = open();
        let config = ConsolidationConfig {
            min_returns: 3,
            max_age_hours: 24,
            pickup_hours_jst: vec![],
        };
        let hour = 3_600_000;
        dropoff(&conn, "RMA-1", "st-a", "osaka", 0);
        dropoff(&conn, "RMA-2", "st-a", "osaka", hour);
        dropoff(&conn, "RMA-3", "st-a", "fukuoka", hour);
        assert!(
            plan(&mut conn, &config, 2 * hour, true).unwrap().is_empty(),
            "two for Osaka"
        );
        dropoff(&conn, "RMA-4", "st-a", "osaka", 2 * hour);
        let queued = plan(&mut conn, &config, 3 * hour, false).unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].0.as_str(), "osaka");
        let (loose, totes) = waiting(&mut conn, "st-a").unwrap();
        assert_eq!(loose, ["RMA-3"]);
        assert_eq!(totes.len(), 1);
        assert_eq!(totes[0].rmas, ["RMA-1", "RMA-2", "RMA-4"]);
        assert!(
            modori_shared::barcode::parse(&totes[0].tote).is_ok(),
            "{}",
            totes[0].tote
        );
        // A day later the lone Fukuoka return leaves on its own.
        let queued = plan(&mut conn, &config, 26 * hour, true).unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].0.as_str(), "fukuoka");
        assert!(
            plan(&mut conn, &config, 27 * hour, true)
                .unwrap()
                .is_empty(),
            "each once"
        );
    }

    #[test]
    fn at_a_pickup_hour_the_scheduled_pass_sends_whatever_waits() {
        let mut conn = open();
        let config = ConsolidationConfig {
            min_returns: 5,
            max_age_hours: 24,
            pickup_hours_jst: vec![16],
        };
        // 2026-11-25 16:30 JST is 07:30 UTC.
        let pickup = 1_795_332_600_000;
        assert_eq!(hour_jst(pickup), 16);
        dropoff(&conn, "RMA-1", "st-a", "osaka", pickup - 3_600_000);
        assert!(
            plan(&mut conn, &config, pickup, false).unwrap().is_empty(),
            "not after a registration"
        );
        assert!(
            plan(&mut conn, &config, pickup - 3_600_000, true)
                .unwrap()
                .is_empty(),
            "15:30"
        );
        assert_eq!(plan(&mut conn, &config, pickup, true).unwrap().len(), 1);
    }
}
