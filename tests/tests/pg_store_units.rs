//! The store modules of returns and listings that run through `store::sql::Sql` give the
//! same answers on SQLite and on a real PostgreSQL (`modori_tests::postgres`): each
//! scenario runs every ported statement on a freshly migrated database of both backends, and
//! what it observes must be equal and as expected.

use modori_coordinator::listings::ResaleConfig;
use modori_coordinator::store::listings::{self, SaleError};
use modori_coordinator::store::return_list::{self, ReturnFilter, Sort, SortKey};
use modori_coordinator::store::sql::{in_transaction, Sql};
use modori_shared::domain::Lpn;
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
