//! The store modules of units, listings, stock and returns that run through `store::sql::Sql`
//! give the same answers on SQLite and on a real PostgreSQL (`modori_tests::postgres`): each
//! scenario runs every ported statement on a freshly migrated database of both backends, and
//! what it observes must be equal and as expected.

use modori_coordinator::listings::ResaleConfig;
use modori_coordinator::store::listings::{self, SaleError};
use modori_coordinator::store::return_list::{self, ReturnFilter, Sort, SortKey};
use modori_coordinator::store::sql::{in_transaction, Sql};
use modori_coordinator::store::{decisions, pickups, quarantine, reservations, runs, stock};
use modori_shared::domain::{Disposition, Epoch, Lpn, RmaId};
use modori_tests::postgres::same_on_both;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

type ReturnRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    i64,
);

/// Returns registered as a site would have them: (rma, status, site, merchant, store, order
/// reference, customer name, registered at).
fn add_returns(c: &mut dyn Sql, rows: &[ReturnRow<'_>]) -> anyhow::Result<()> {
    for (rma, status, site, merchant, store, order, name, at) in rows {
        c.execute(
            "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq,
               created_ms, status, merchant, origin_store, order_ref, customer_name, value_yen)
             VALUES (?1, ?2, 'x', '[]', 'r', 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                rma,
                site,
                at,
                status,
                merchant,
                store,
                order,
                name,
                &(*at / 10),
            ],
        )?;
    }
    Ok(())
}

/// A unit at `site` in `state`, graded `grade`, last moved at `updated_ms`.
fn add_unit(
    c: &mut dyn Sql,
    (lpn, site, sku, state, grade, updated_ms): (&str, &str, &str, &str, Option<&str>, i64),
) -> anyhow::Result<()> {
    c.execute(
        "INSERT INTO units (lpn, site, sku, state, grade, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[&lpn, &site, &sku, &state, &grade, &updated_ms],
    )?;
    Ok(())
}

fn add_price(c: &mut dyn Sql, merchant: &str, sku: &str, price_yen: i64) -> anyhow::Result<()> {
    c.execute(
        "INSERT INTO catalog (merchant, sku, category, price_yen, final_sale, needs_testing)
         VALUES (?1, ?2, 'outerwear', ?3, 0, 0)",
        &[&merchant, &sku, &price_yen],
    )?;
    Ok(())
}

fn rmas(page: &return_list::ReturnPage) -> Vec<String> {
    page.rows.iter().map(|r| r.rma.clone()).collect()
}

#[test]
fn the_returns_list_searches_filters_sorts_and_pages_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        add_returns(
            c,
            &[
                (
                    "R-1",
                    "expected",
                    "osaka",
                    Some("acme"),
                    None,
                    Some("ORD-1"),
                    Some("山田 太郎"),
                    1_000,
                ),
                (
                    "R-2",
                    "received",
                    "tokyo",
                    Some("acme"),
                    Some("st-a"),
                    Some("ORD-2"),
                    Some("佐藤 花子"),
                    2_000,
                ),
                (
                    "R-3",
                    "expected",
                    "tokyo",
                    Some("beta"),
                    Some("st-a"),
                    None,
                    None,
                    3_000,
                ),
                (
                    "R-10",
                    "cancelled",
                    "osaka",
                    None,
                    None,
                    Some("ORD-1"),
                    Some("山田 太郎"),
                    4_000,
                ),
                (
                    "r-1",
                    "expected",
                    "osaka",
                    Some("acme"),
                    None,
                    None,
                    None,
                    5_000,
                ),
            ],
        )?;
        let search = |q: &str| ReturnFilter {
            search: Some(q.into()),
            ..ReturnFilter::default()
        };
        let by_created = Sort::default();
        let mut found = Vec::new();
        for q in ["R-1", "ORD-1", "山田", "佐藤 花子", "R-", "TRK"] {
            found.push(rmas(&return_list::list(c, &search(q), by_created, 0, 10)?));
        }
        let narrowed = ReturnFilter {
            site: Some("tokyo".into()),
            status: Some("expected".into()),
            merchant: Some("beta".into()),
            store: Some("st-a".into()),
            from_ms: Some(2_500),
            until_ms: Some(3_500),
            ..ReturnFilter::default()
        };
        let narrowed = return_list::list(c, &narrowed, by_created, 0, 10)?;
        let newest_first = Sort {
            key: SortKey::Created,
            descending: true,
        };
        let page = return_list::list(c, &ReturnFilter::default(), newest_first, 1, 2)?;
        let by_store = Sort {
            key: SortKey::Store,
            descending: false,
        };
        let stores = return_list::list(c, &ReturnFilter::default(), by_store, 0, 10)?;
        let by_merchant_desc = Sort {
            key: SortKey::Merchant,
            descending: true,
        };
        let merchants = return_list::list(c, &ReturnFilter::default(), by_merchant_desc, 0, 10)?;
        Ok((
            found,
            narrowed.rows,
            (rmas(&page), page.n_total),
            rmas(&stores),
            rmas(&merchants),
        ))
    })?;
    let (found, narrowed, page, stores, merchants) = seen;
    assert_eq!(
        found,
        vec![
            vec!["R-1", "R-10"],
            vec!["R-1", "R-10"],
            vec!["R-1", "R-10"],
            vec!["R-2"],
            vec!["R-1", "R-2", "R-3", "R-10"],
            vec![],
        ],
        "prefixes and exact references, case kept (r-1 is not R-1)"
    );
    assert_eq!(narrowed.len(), 1);
    let r3 = &narrowed[0];
    assert_eq!(
        (
            r3.rma.as_str(),
            r3.store.as_deref(),
            r3.value_yen,
            r3.created_ms
        ),
        ("R-3", Some("st-a"), Some(300), 3_000)
    );
    assert_eq!(page, (vec!["R-10".to_owned(), "R-3".to_owned()], 5));
    assert_eq!(
        stores,
        ["R-2", "R-3", "R-1", "R-10", "r-1"],
        "no store last"
    );
    assert_eq!(
        merchants,
        ["R-3", "r-1", "R-2", "R-1", "R-10"],
        "no merchant last"
    );
    Ok(())
}

#[test]
fn units_are_listed_marked_down_sold_once_and_delisted_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        let config = ResaleConfig::default();
        add_price(c, "brand-a", "COAT", 20_000)?;
        add_unit(c, ("LPN-1", "osaka", "COAT", "placed:resale", Some("B"), 0))?;
        add_unit(c, ("LPN-2", "osaka", "COAT", "placed:resale", Some("X"), 0))?;
        add_unit(c, ("LPN-3", "osaka", "COAT", "placed:resale", Some("C"), 0))?;
        add_unit(
            c,
            ("LPN-4", "osaka", "NOPRICE", "placed:resale", Some("A"), 0),
        )?;
        let n_listed = listings::list_pending(c, &config, 0)?;
        let n_again = listings::list_pending(c, &config, 0)?;
        let lpn1 = Lpn::new("LPN-1")?;
        let n_once = in_transaction(c, |tx| listings::list_unit(tx, &config, &lpn1, 0))?;
        let n_early = listings::mark_down(c, &config, 13 * DAY_MS)?;
        let n_marked = listings::mark_down(c, &config, 15 * DAY_MS)?;
        let live: Vec<(i64, String, String, i64)> = listings::listings(c, Some("listed"), 10)?
            .into_iter()
            .map(|l| (l.id, l.lpn, l.channel, l.price_yen))
            .collect();
        let outlet_lpn1 = live
            .iter()
            .find(|l| l.1 == "LPN-1" && l.2 == "outlet")
            .map(|l| l.0)
            .ok_or_else(|| anyhow::anyhow!("LPN-1 is not listed on the outlet: {live:?}"))?;
        let sold = listings::sell(c, outlet_lpn1, 16 * DAY_MS)?;
        let again = match listings::sell(c, outlet_lpn1, 17 * DAY_MS) {
            Err(SaleError::NotListed { status, .. }) => status,
            other => anyhow::bail!("a sold listing sold again: {other:?}"),
        };
        let unknown = matches!(
            listings::sell(c, 999, 17 * DAY_MS),
            Err(SaleError::Unknown(999))
        );
        let n_delisted = listings::delist_unit(c, &Lpn::new("LPN-3")?, 18 * DAY_MS)?;
        let everything: Vec<(String, String, String)> = listings::listings(c, None, 10)?
            .into_iter()
            .map(|l| (l.lpn, l.channel, l.status))
            .collect();
        let limited = listings::listings(c, None, 1)?.len();
        Ok((
            (n_listed, n_again, n_once, n_early, n_marked),
            live.into_iter()
                .map(|l| (l.1, l.2, l.3))
                .collect::<Vec<_>>(),
            sold,
            again,
            unknown,
            n_delisted,
            everything,
            limited,
        ))
    })?;
    let (counts, live, sold, again, unknown, n_delisted, everything, limited) = seen;
    let listed = live.len();
    assert!(
        listed >= 3,
        "LPN-1 on both channels and LPN-3 somewhere: {live:?}"
    );
    assert_eq!(
        counts,
        (listed, 0, 0, 0, listed),
        "listed once, marked down after 14 days"
    );
    assert!(
        live.iter().all(|l| l.0 != "LPN-2" && l.0 != "LPN-4"),
        "grade X, no price: {live:?}"
    );
    let outlet_price = live
        .iter()
        .find(|l| l.0 == "LPN-1" && l.1 == "outlet")
        .map(|l| l.2);
    assert_eq!(
        outlet_price,
        Some(10_800),
        "B at 0.6 of 20,000, less 10% at 14 days"
    );
    assert_eq!(sold, ("LPN-1".to_owned(), 10_800));
    assert_eq!(again, "sold");
    assert!(unknown, "listing 999 was not unknown");
    let lpn3_listed = live.iter().filter(|l| l.0 == "LPN-3").count();
    assert_eq!(n_delisted, lpn3_listed);
    assert!(
        everything.iter().all(|(_, _, status)| status != "listed"),
        "{everything:?}"
    );
    assert_eq!(
        everything.iter().filter(|(_, _, s)| s == "sold").count(),
        1,
        "sold once: {everything:?}"
    );
    assert_eq!(limited, 1);
    Ok(())
}

#[test]
fn quarantine_stock_decisions_and_reservations_read_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        add_price(c, "brand-b", "COAT", 40_000)?;
        add_price(c, "brand-a", "COAT", 30_000)?;
        for unit in [
            ("Q-2", "osaka", "TEE", "received", None, 20),
            ("Q-1", "osaka", "TEE", "graded:B", Some("B"), 10),
            ("Q-3", "tokyo", "TEE", "departed:restock", None, 5),
            ("Q-4", "tokyo", "TEE", "voided", None, 5),
            ("Q-5", "tokyo", "TEE", "received", None, 30),
            ("S-1", "osaka", "COAT", "placed:restock", Some("A"), 3),
            ("S-2", "osaka", "COAT", "placed:restock", Some("A"), 1),
            ("S-3", "tokyo", "COAT", "placed:restock", Some("A"), 1),
            ("S-4", "tokyo", "HAT", "placed:restock", Some("A"), 2),
            ("S-5", "tokyo", "COAT", "placed:restock", Some("B"), 0),
            ("D-1", "osaka", "COAT", "disposed:recycle", Some("D"), 0),
        ] {
            add_unit(c, unit)?;
        }
        c.execute(
            "UPDATE units SET quarantine = 1 WHERE lpn IN ('Q-1', 'Q-2', 'Q-3', 'Q-4')",
            &[],
        )?;
        c.execute(
            "UPDATE units SET claimed_rma = 'RMA-9' WHERE lpn = 'Q-2'",
            &[],
        )?;
        let waiting: Vec<(String, String, i64, Option<String>)> = quarantine::quarantine(c, 10)?
            .into_iter()
            .map(|u| (u.lpn, u.state, u.updated_ms, u.claimed_rma))
            .collect();
        let first_only = quarantine::quarantine(c, 1)?.len();

        c.execute(
            "INSERT INTO demand (site, sku, units) VALUES ('tokyo', 'COAT', 4), ('osaka', 'HAT', 2)",
            &[],
        )?;
        let (stock, demand) = stock::stock_and_demand(c)?;
        let stock: Vec<(String, String, u64, Vec<String>)> = stock
            .into_iter()
            .map(|s| {
                let lpns = s.lpns.iter().map(|l| l.to_string()).collect();
                (s.site.to_string(), s.sku.to_string(), s.price_yen, lpns)
            })
            .collect();
        let demand: Vec<(String, String, u32)> = demand
            .into_iter()
            .map(|((site, sku), n)| (site.to_string(), sku.to_string(), n))
            .collect();

        c.execute(
            "UPDATE units SET decided = 'refurbish', decision_why = 'worth more refurbished'
             WHERE lpn = 'D-1'",
            &[],
        )?;
        let decided = decisions::decision(c, &Lpn::new("D-1")?)?;
        let undecided = decisions::decision(c, &Lpn::new("S-1")?)?;
        let unknown = decisions::decision(c, &Lpn::new("NOPE")?)?;

        c.execute(
            "INSERT INTO reservations (rma, sku, site, lpn, status, advance, order_seq, why,
               created_ms, updated_ms)
             VALUES ('RMA-1', 'COAT', 'osaka', 'S-2', 'ordered', 1, 4, 'nearest', 1, 1),
                    ('RMA-2', 'COAT', NULL, NULL, 'released', 0, NULL, 'warehouse', 1, 1)",
            &[],
        )?;
        let rma1 = RmaId::new("RMA-1")?;
        let before = reservations::reservation(c, &rma1)?;
        reservations::shipped(c, &rma1, "S-1", 5)?;
        let after = reservations::reservation(c, &rma1)?;
        let rma2 = RmaId::new("RMA-2")?;
        reservations::shipped(c, &rma2, "S-3", 5)?;
        let released = reservations::reservation(c, &rma2)?;
        let none = reservations::reservation(c, &RmaId::new("RMA-3")?)?;
        Ok((
            (waiting, first_only),
            (stock, demand),
            (decided, undecided, unknown),
            (before, after, released, none),
        ))
    })?;
    let ((waiting, first_only), (stock, demand), decisions, reservations) = seen;
    assert_eq!(
        waiting,
        vec![
            ("Q-1".into(), "graded:B".into(), 10, None),
            ("Q-2".into(), "received".into(), 20, Some("RMA-9".into())),
        ],
        "departed and voided units wait for nothing; oldest first"
    );
    assert_eq!(first_only, 1);
    assert_eq!(
        stock,
        vec![
            (
                "osaka".into(),
                "COAT".into(),
                30_000,
                vec!["S-2".into(), "S-1".into()]
            ),
            ("tokyo".into(), "COAT".into(), 30_000, vec!["S-3".into()]),
            ("tokyo".into(), "HAT".into(), 0, vec!["S-4".into()]),
        ],
        "grade A on restock shelves, priced by the first merchant, oldest first"
    );
    assert_eq!(
        demand,
        vec![
            ("osaka".into(), "HAT".into(), 2),
            ("tokyo".into(), "COAT".into(), 4)
        ]
    );
    assert_eq!(
        decisions,
        (
            Some((Disposition::Refurbish, "worth more refurbished".to_owned())),
            None,
            None
        )
    );
    let (before, after, released, none) = reservations;
    let before = before.ok_or_else(|| anyhow::anyhow!("RMA-1 has no reservation"))?;
    assert_eq!(
        (
            before.status.as_str(),
            before.lpn.as_deref(),
            before.advance,
            before.site.as_deref()
        ),
        ("ordered", Some("S-2"), true, Some("osaka"))
    );
    let after = after.ok_or_else(|| anyhow::anyhow!("RMA-1 lost its reservation"))?;
    assert_eq!(
        (
            after.status.as_str(),
            after.lpn.as_deref(),
            after.why.as_str()
        ),
        ("shipped", Some("S-1"), "nearest"),
        "fulfilled by whichever unit shipped"
    );
    let released = released.ok_or_else(|| anyhow::anyhow!("RMA-2 has no reservation"))?;
    assert_eq!(
        (released.status.as_str(), released.lpn, released.advance),
        ("released", None, false),
        "a released reservation is not shipped"
    );
    assert_eq!(none, None);
    Ok(())
}

#[test]
fn runs_and_pickups_are_recorded_and_replaced_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        let mut runs_seen = vec![runs::run(c)?];
        runs::set_run(c, Epoch(7))?;
        runs_seen.push(runs::run(c)?);
        runs::set_run(c, Epoch(8))?;
        runs_seen.push(runs::run(c)?);
        runs::clear_run(c)?;
        runs_seen.push(runs::run(c)?);

        let mut pickups_seen = vec![pickups::get(c, "RMA-1")?];
        pickups::put(c, "RMA-1", "2026-12-07", "am")?;
        pickups::put(c, "RMA-2", "2026-12-09", "14-16")?;
        pickups_seen.push(pickups::get(c, "RMA-1")?);
        pickups::put(c, "RMA-1", "2026-12-08", "18-20")?;
        pickups_seen.push(pickups::get(c, "RMA-1")?);
        pickups_seen.push(pickups::get(c, "RMA-2")?);
        Ok::<_, anyhow::Error>((runs_seen, pickups_seen))
    })?;
    assert_eq!(seen.0, vec![None, Some(Epoch(7)), Some(Epoch(8)), None]);
    let slot = |d: &str, s: &str| Some((d.to_owned(), s.to_owned()));
    assert_eq!(
        seen.1,
        vec![
            None,
            slot("2026-12-07", "am"),
            slot("2026-12-08", "18-20"),
            slot("2026-12-09", "14-16"),
        ],
        "booked again: moved, the other pickup kept"
    );
    Ok(())
}
