//! The centre's final disposition. A site disposes of a unit offline by its cached rules; when
//! the op arrives, the value model (`valuation`) decides, and where it differs the site gets a
//! `DispositionOverride` for the unit.
//!
//! Invariant: every disposed unit is decided once per grade. The decision is written with its
//! override command in one transaction, and the pending ones are found by what is stored
//! (`decided IS NULL`), so a crash between an op's apply and its decision loses nothing: the
//! next pass decides it.

use modori_runtime::sqlite::to_i64;
use modori_shared::domain::{Disposition, Grade, Lpn, Site, SiteId, UnitState};
use modori_shared::op::CommandBody;

use super::commands::enqueue;
use super::sql::{in_transaction, Sql};
use super::{Queued, StoreError};
use crate::valuation::{decide, UnitFacts, ValuationConfig};

/// Units decided per transaction; the rest wait for the next pass.
pub const DECISIONS_PER_PASS_MAX: usize = 512;

/// Decides every disposed unit not yet decided (up to [`DECISIONS_PER_PASS_MAX`]); returns the
/// overrides queued, as (site, command seq).
pub fn decide_pending(
    conn: &mut dyn Sql,
    config: &ValuationConfig,
    sites: &[Site],
    now_ms: i64,
) -> Result<Queued, StoreError> {
    in_transaction(conn, |tx| {
        let pending: Vec<(String, String, String, Option<String>, String)> = tx.map_rows(
            "SELECT lpn, site, sku, grade, state FROM units
             WHERE decided IS NULL AND state >= 'disposed:' AND state < 'disposed;' LIMIT ?1",
            &[&to_i64(DECISIONS_PER_PASS_MAX as u64)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let mut queued = Queued::none();
        for (lpn, site, sku, grade, state) in pending {
            let Some(chosen) = UnitState::decode(&state)?.disposition() else {
                continue;
            };
            let price: Option<i64> = tx.map_row_opt(
                "SELECT price_yen FROM catalog WHERE sku = ?1 ORDER BY merchant LIMIT 1",
                &[&sku],
                |r| r.get(0),
            )?;
            let grade = grade.as_deref().map(Grade::parse).transpose()?;
            let site = SiteId::new(site)?;
            let (decided, why) = match (price, grade) {
                (Some(price), Some(grade)) => {
                    let unit = UnitFacts {
                        price_yen: u64::try_from(price).unwrap_or(0),
                        grade,
                        site: &site,
                    };
                    let decision = decide(config, &unit, sites);
                    (decision.disposition, decision.explanation)
                }
                _ => (
                    chosen,
                    "no catalogue price or grade: the site's choice stands".to_owned(),
                ),
            };
            tx.execute(
                "UPDATE units SET decided = ?2, decision_why = ?3 WHERE lpn = ?1",
                &[&lpn, &decided.as_str(), &why],
            )?;
            if decided != chosen {
                let command = CommandBody::DispositionOverride {
                    lpn: Lpn::new(lpn)?,
                    disposition: decided,
                };
                queued.push(site.clone(), enqueue(tx, &site, &command, now_ms)?);
            }
        }
        Ok(queued)
    })
}

/// The centre's decision for a unit and why, once made.
pub fn decision(
    conn: &mut dyn Sql,
    lpn: &Lpn,
) -> Result<Option<(Disposition, String)>, StoreError> {
    let row: Option<(Option<String>, Option<String>)> = conn.map_row_opt(
        "SELECT decided, decision_why FROM units WHERE lpn = ?1",
        &[&lpn.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    match row {
        Some((Some(d), why)) => Ok(Some((Disposition::parse(&d)?, why.unwrap_or_default()))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{init, load_commands, migrations};
    use modori_shared::domain::{Capability, Coordinates};
    use modori_shared::wire::payload;
    use rusqlite::Connection;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO catalog (merchant, sku, category, price_yen, final_sale, needs_testing)
               VALUES ('brand-a', 'COAT', 'outerwear', 30000, 0, 0);
             INSERT INTO units (lpn, site, sku, state, grade, updated_ms) VALUES
               ('LPN-1', 'osaka', 'COAT', 'disposed:recycle', 'D', 0),
               ('LPN-2', 'osaka', 'COAT', 'disposed:restock', 'A', 0),
               ('LPN-3', 'osaka', 'MYSTERY', 'disposed:dispose', 'X', 0),
               ('LPN-4', 'osaka', 'COAT', 'graded:B', 'B', 0);",
        )
        .unwrap();
        conn
    }

    fn osaka() -> Vec<Site> {
        vec![Site {
            id: SiteId::new("osaka").unwrap(),
            name: "Osaka".into(),
            location: Coordinates::new(34.69, 135.52).unwrap(),
            capabilities: vec![Capability::Refurbish, Capability::Resale],
            daily_capacity_units: 1000,
        }]
    }

    #[test]
    fn a_worse_choice_is_overridden_once_and_a_good_one_kept() {
        let mut conn = open();
        let config = ValuationConfig::default();
        let queued = decide_pending(&mut conn, &config, &osaka(), 1).unwrap();
        let osaka_id = SiteId::new("osaka").unwrap();
        assert_eq!(
            queued,
            vec![(osaka_id.clone(), 1)],
            "only the recycled coat"
        );
        let sent = load_commands(&mut conn, &osaka_id, 1, 10).unwrap();
        assert_eq!(
            payload::decode_command(&sent[0].payload).unwrap(),
            CommandBody::DispositionOverride {
                lpn: Lpn::new("LPN-1").unwrap(),
                disposition: Disposition::Refurbish
            }
        );
        let (d, why) = decision(&mut conn, &Lpn::new("LPN-1").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(d, Disposition::Refurbish);
        assert!(why.contains("refurbish recovers"), "{why}");
        let (kept, why) = decision(&mut conn, &Lpn::new("LPN-3").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(kept, Disposition::Dispose);
        assert!(why.contains("no catalogue price"), "{why}");
        assert_eq!(
            decision(&mut conn, &Lpn::new("LPN-4").unwrap()).unwrap(),
            None
        );
        // Decided once: a second pass does nothing.
        assert!(decide_pending(&mut conn, &config, &osaka(), 2)
            .unwrap()
            .is_empty());
    }
}
