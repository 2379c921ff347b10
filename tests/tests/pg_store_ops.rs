//! The store modules the ops console, a site's page and a store's counter read, the merchants'
//! orders, totes, drop-offs, decisions and reservations, run through `store::sql::Sql`: the
//! same answers on SQLite and on a real PostgreSQL (`modori_tests::postgres`). Each scenario
//! runs every ported statement on a freshly migrated database of both backends; what it
//! observes must be equal and as expected.

use std::collections::BTreeMap;

use modori_coordinator::store::dashboard::{self, DisposedValue};
use modori_coordinator::store::orders::{self, Contact, Order, OrderLine};
use modori_coordinator::store::sql::{in_transaction, Sql};
use modori_coordinator::store::{decisions, dropoffs, reservations, site_activity, totes};
use modori_coordinator::valuation::ValuationConfig;
use modori_shared::domain::{Capability, Coordinates, Disposition, Lpn, RmaId, Site, SiteId, Sku};
use modori_tests::postgres::same_on_both;

/// A return as a site would have it registered; what a scenario leaves out is empty.
#[derive(Default)]
struct Ret<'a> {
    rma: &'a str,
    site: &'a str,
    status: &'a str,
    lines_json: &'a str,
    created_ms: i64,
    merchant: Option<&'a str>,
    store: Option<&'a str>,
    customer: Option<&'a str>,
    order_ref: Option<&'a str>,
    transit: Option<&'a str>,
}

fn add_return(c: &mut dyn Sql, r: Ret<'_>) -> anyhow::Result<()> {
    c.execute(
        "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms,
           status, merchant, origin_store, customer_ref, order_ref, transit_status)
         VALUES (?1, ?2, 'x', ?3, 'r', 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        &[
            &r.rma,
            &r.site,
            &r.lines_json,
            &r.created_ms,
            &r.status,
            &r.merchant,
            &r.store,
            &r.customer,
            &r.order_ref,
            &r.transit,
        ],
    )?;
    Ok(())
}

/// A unit: (lpn, site, sku, return, state, grade, quarantined, transfer to).
type UnitRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    i64,
    Option<&'a str>,
);

fn add_units(c: &mut dyn Sql, units: &[UnitRow<'_>]) -> anyhow::Result<()> {
    for (lpn, site, sku, rma, state, grade, quarantine, transfer_to) in units {
        c.execute(
            "INSERT INTO units (lpn, site, sku, rma, state, grade, quarantine, transfer_to,
               updated_ms, tested, defects)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, 1, '')",
            &[lpn, site, sku, rma, state, grade, quarantine, transfer_to],
        )?;
    }
    Ok(())
}

fn add_catalog(c: &mut dyn Sql) -> anyhow::Result<()> {
    for (sku, category, price, final_sale) in [
        ("TEE", "tops", 3000i64, 0i64),
        ("COAT", "outerwear", 20000, 1),
    ] {
        c.execute(
            "INSERT INTO catalog (merchant, sku, category, price_yen, final_sale, needs_testing)
             VALUES ('brand-a', ?1, ?2, ?3, ?4, 0)",
            &[&sku, &category, &price, &final_sale],
        )?;
    }
    Ok(())
}

const TEE_2: &str = r#"[{"sku":"TEE","qty":2,"reason":"changed_mind"}]"#;
const TEE_1: &str = r#"[{"sku":"TEE","qty":1,"reason":"changed_mind"}]"#;
const COAT_1: &str = r#"[{"sku":"COAT","qty":1,"reason":"defective"}]"#;

/// Returns, units, a tote, anomalies, ops counted per minute and listings the dashboard reads.
fn fleet(c: &mut dyn Sql) -> anyhow::Result<()> {
    add_catalog(c)?;
    let brand = Some("brand-a");
    let umeda = Some("st-umeda");
    for r in [
        Ret {
            rma: "R-1",
            site: "osaka",
            status: "expected",
            lines_json: TEE_2,
            created_ms: 1_000,
            merchant: brand,
            store: umeda,
            customer: Some("C-1"),
            ..Ret::default()
        },
        Ret {
            rma: "R-2",
            site: "osaka",
            status: "receiving",
            lines_json: COAT_1,
            created_ms: 2_000,
            merchant: brand,
            store: umeda,
            customer: Some("C-1"),
            ..Ret::default()
        },
        // A pseudonymised customer is never a candidate, in any letter case.
        Ret {
            rma: "R-3",
            site: "tokyo",
            status: "expected",
            lines_json: TEE_1,
            created_ms: 3_000,
            merchant: brand,
            store: umeda,
            customer: Some("ANON-9"),
            transit: Some("in_transit"),
            ..Ret::default()
        },
        Ret {
            rma: "R-4",
            site: "osaka",
            status: "received",
            lines_json: COAT_1,
            created_ms: 70_000,
            merchant: brand,
            customer: Some("C-2"),
            ..Ret::default()
        },
    ] {
        add_return(c, r)?;
    }
    add_units(
        c,
        &[
            (
                "L1",
                "osaka",
                "COAT",
                Some("R-2"),
                "disposed:refurbish",
                Some("C"),
                0,
                None,
            ),
            ("L2", "osaka", "TEE", None, "received", None, 1, None),
            (
                "L3",
                "tokyo",
                "TEE",
                None,
                "graded:A",
                Some("A"),
                0,
                Some("osaka"),
            ),
            (
                "L4",
                "osaka",
                "TEE",
                Some("R-1"),
                "departed:resell",
                Some("A"),
                0,
                None,
            ),
            (
                "L5",
                "osaka",
                "TEE",
                None,
                "placed:restock",
                Some("B"),
                0,
                None,
            ),
            (
                "L6",
                "tokyo",
                "TEE",
                Some("R-3"),
                "voided",
                Some("D"),
                0,
                None,
            ),
        ],
    )?;
    c.execute(
        "INSERT INTO totes (tote, store, site, status, n_returns, created_ms)
         VALUES ('T1', 'st-umeda', 'osaka', 'planned', 1, 5)",
        &[],
    )?;
    c.execute(
        "INSERT INTO anomalies (site, kind, lpn, detail, at_ms, detail_code, detail_params)
         VALUES ('osaka', 'hash_mismatch', 'L1', 'first', 5, 'c1', '{\"a\":\"b\"}')",
        &[],
    )?;
    c.execute(
        "INSERT INTO anomalies (site, kind, detail, at_ms) VALUES ('tokyo', 'gap', 'second', 6)",
        &[],
    )?;
    for (minute_ms, kind, n) in [
        (60_000i64, "unit_received", 3i64),
        (120_000, "unit_received", 2),
        (120_000, "unit_graded", 1),
        (0, "unit_graded", 4),
    ] {
        c.execute(
            "INSERT INTO ops_per_minute (minute_ms, kind, n) VALUES (?1, ?2, ?3)",
            &[&minute_ms, &kind, &n],
        )?;
    }
    for (lpn, channel, price, status) in [
        ("L4", "mercari", 2_500i64, "sold"),
        ("L5", "mercari", 2_000, "listed"),
        ("L5", "rakuma", 2_200, "listed"),
    ] {
        c.execute(
            "INSERT INTO listings (lpn, channel, site, sku, grade, list_price_yen, price_yen,
               status, created_ms, updated_ms)
             VALUES (?1, ?2, 'osaka', 'TEE', 'A', 3000, ?3, ?4, 1, 1)",
            &[&lpn, &channel, &price, &status],
        )?;
    }
    for (kind, site, at) in [
        ("unit_received", "osaka", 60_000i64),
        ("unit_received", "osaka", 61_000),
        ("unit_graded", "osaka", 130_000),
        ("unit_received", "tokyo", 60_000),
    ] {
        c.execute(
            "INSERT INTO return_events (rma, kind, site, at_ms, recorded_ms)
             VALUES ('R-1', ?1, ?2, ?3, ?3)",
            &[&kind, &site, &at],
        )?;
    }
    Ok(())
}

/// An anomaly's coded parameters.
type Params = Option<BTreeMap<String, String>>;

#[test]
fn the_dashboard_counts_and_lists_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        fleet(c)?;
        let counts = dashboard::counts(c)?;
        let throughput = dashboard::throughput(c, 60_000, 60_000)?;
        let by_sku: Vec<(String, String, u64)> = dashboard::top_reasons(c, 0, false, 10)?
            .into_iter()
            .map(|r| (r.key, r.reason, r.qty))
            .collect();
        let by_category: Vec<(String, String, u64)> = dashboard::top_reasons(c, 0, true, 1)?
            .into_iter()
            .map(|r| (r.key, r.reason, r.qty))
            .collect();
        let grades = dashboard::grade_mix(c)?;
        let mut values = dashboard::disposed_values(c)?;
        values.sort_by(|a, b| a.disposition.cmp(&b.disposition));
        let resale = dashboard::resale_totals(c)?;
        let mut candidates = dashboard::abuse_candidates(c, 0, 2, 10)?;
        candidates.sort();
        let worn_only = dashboard::abuse_candidates(c, 1_500, 2, 10)?;
        let anomalies: Vec<(String, Option<String>, Params)> = dashboard::anomalies(c, 10)?
            .into_iter()
            .map(|a| (a.detail, a.rma, a.detail_params))
            .collect();
        let units: Vec<(String, String, Option<bool>, Option<String>)> =
            dashboard::units_of_return(c, "R-2", 10)?
                .into_iter()
                .map(|u| (u.lpn, u.state, u.tested, u.defects))
                .collect();
        let rmas = |rs: Vec<dashboard::StoreReturn>| -> Vec<String> {
            rs.into_iter().map(|r| r.rma).collect()
        };
        let waiting = rmas(dashboard::store_waiting(c, "st-umeda", 10)?);
        let recent = rmas(dashboard::store_recent(c, "st-umeda", 1_500, 10)?);
        let recent_one = rmas(dashboard::store_recent(c, "st-umeda", 1_500, 1)?);
        let coat = dashboard::catalog_item(c, "brand-a", "COAT")?;
        let nothing = dashboard::catalog_item(c, "brand-b", "COAT")?;
        Ok((
            counts,
            throughput,
            by_sku,
            by_category,
            grades,
            values,
            resale,
            (candidates, worn_only),
            anomalies,
            units,
            (waiting, recent, recent_one),
            (coat, nothing),
        ))
    })?;
    let (counts, throughput, by_sku, by_category, grades, values, resale, abuse, anomalies) = (
        seen.0, seen.1, seen.2, seen.3, seen.4, seen.5, seen.6, seen.7, seen.8,
    );
    let p = &counts.pipeline;
    assert_eq!((p.expected, p.receiving, p.quarantine), (2, 1, 1), "{p:?}");
    assert_eq!((p.graded, p.in_transit), (1, 2), "{p:?}");
    assert_eq!(
        p.disposed,
        BTreeMap::from([("refurbish".into(), 1), ("restock".into(), 1)])
    );
    assert_eq!(p.departed, BTreeMap::from([("resell".into(), 1)]));
    let osaka = &counts.sites["osaka"];
    assert_eq!(
        (
            osaka.expected,
            osaka.receiving,
            osaka.quarantine,
            osaka.disposed,
            osaka.placed,
            osaka.inbound
        ),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!(
        (counts.sites["tokyo"].graded, counts.sites["tokyo"].inbound),
        (1, 1)
    );
    assert_eq!(
        counts.stores_waiting,
        BTreeMap::from([("st-umeda".into(), 2)])
    );
    assert_eq!(
        counts.stores_totes,
        BTreeMap::from([("st-umeda".into(), 1)])
    );
    assert_eq!(counts.n_anomalies, 2);
    assert_eq!(
        throughput,
        vec![
            (60_000, "registered".into(), 1),
            (60_000, "unit_received".into(), 3),
            (120_000, "unit_graded".into(), 1),
            (120_000, "unit_received".into(), 2),
        ]
    );
    assert_eq!(
        by_sku,
        vec![
            ("TEE".into(), "changed_mind".into(), 3),
            ("COAT".into(), "defective".into(), 2),
        ]
    );
    assert_eq!(by_category, vec![("tops".into(), "changed_mind".into(), 3)]);
    assert_eq!(
        grades,
        BTreeMap::from([("A".into(), 2), ("B".into(), 1), ("C".into(), 1)])
    );
    let value = |disposition: &str, grade: &str, list_price_yen| DisposedValue {
        disposition: disposition.into(),
        grade: grade.into(),
        n_units: 1,
        list_price_yen,
    };
    assert_eq!(
        values,
        vec![
            value("refurbish", "C", 20_000),
            value("resell", "A", 3_000),
            value("restock", "B", 0),
        ]
    );
    assert_eq!(resale, (1, 2_500, 1, 2_200));
    assert_eq!(abuse, (vec!["C-1".to_owned()], vec!["C-1".to_owned()]));
    assert_eq!(
        anomalies,
        vec![
            ("second".into(), None, None),
            (
                "first".into(),
                Some("R-2".into()),
                Some(BTreeMap::from([("a".into(), "b".into())]))
            ),
        ]
    );
    assert_eq!(
        seen.9,
        vec![("L1".into(), "disposed:refurbish".into(), Some(true), None)]
    );
    let (waiting, recent, recent_one) = seen.10;
    assert_eq!(waiting, ["R-3", "R-1"]);
    assert_eq!(recent, ["R-3", "R-2", "R-1"]);
    assert_eq!(recent_one, ["R-3"]);
    assert_eq!(seen.11, (Some((20_000, true, "outerwear".into())), None));
    Ok(())
}

#[test]
fn a_sites_page_reads_its_own_events_and_anomalies_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        fleet(c)?;
        let throughput = site_activity::throughput(c, "osaka", 60_000, 60_000)?;
        let anomalies: Vec<(String, String, Option<String>)> =
            site_activity::anomalies(c, "osaka", 10)?
                .into_iter()
                .map(|a| (a.site, a.detail, a.detail_code))
                .collect();
        let none = site_activity::anomalies(c, "nagoya", 10)?.len();
        Ok((throughput, anomalies, none))
    })?;
    assert_eq!(
        seen.0,
        vec![
            (60_000, "unit_received".to_owned(), 2),
            (120_000, "unit_graded".to_owned(), 1),
        ]
    );
    assert_eq!(
        seen.1,
        vec![("osaka".into(), "first".into(), Some("c1".into()))]
    );
    assert_eq!(seen.2, 0);
    Ok(())
}

/// What the catalogue says of a SKU: (price, final sale, category).
type CatalogItem = Option<(u64, bool, String)>;

fn order(order_ref: &str, customer: &str, ordered_ms: i64, contact: Option<Contact>) -> Order {
    Order {
        merchant: "brand-a".into(),
        order_ref: order_ref.into(),
        customer_ref: Some(customer.into()),
        ordered_ms,
        lines: vec![OrderLine {
            sku: "TEE".into(),
            qty: 2,
        }],
        contact,
    }
}

#[test]
fn orders_are_stored_found_in_any_case_counted_and_pseudonymised_alike() -> anyhow::Result<()> {
    let contact = Contact {
        email: "k@example.jp".into(),
        phone: "090-0000-0000".into(),
        line_user_id: None,
        language: "en".into(),
    };
    let seen = same_on_both(|c| {
        add_catalog(c)?;
        let n = orders::put_orders(
            c,
            "brand-a",
            &[
                order("O-1", "C-1", 10, Some(contact.clone())),
                order("O-2", "C-1", 20, None),
            ],
            1,
        )?;
        let first = orders::get(c, "brand-a", "O-1")?;
        let by_ref = orders::find(c, "o-1", 10)?.len();
        let by_customer: Vec<String> = orders::find(c, "c-1", 10)?
            .into_iter()
            .map(|o| o.order_ref)
            .collect();
        // A known reference is replaced whole, its contact too.
        let mut again = order("O-1", "C-1", 10, None);
        again.lines[0].qty = 1;
        orders::put_orders(c, "brand-a", std::slice::from_ref(&again), 2)?;
        let replaced = orders::get(c, "brand-a", "O-1")? == Some(again);
        for r in [
            Ret {
                rma: "R-1",
                status: "expected",
                lines_json: TEE_1,
                order_ref: Some("O-1"),
                ..Ret::default()
            },
            Ret {
                rma: "R-2",
                status: "cancelled",
                lines_json: TEE_2,
                order_ref: Some("O-1"),
                ..Ret::default()
            },
        ] {
            add_return(
                c,
                Ret {
                    site: "osaka",
                    merchant: Some("brand-a"),
                    ..r
                },
            )?;
        }
        let returned = orders::returned_qty(c, "brand-a", "O-1")?;
        let facts: Vec<(String, u64, CatalogItem, usize)> = orders::find_with_facts(c, "O-1", 10)?
            .into_iter()
            .flat_map(|(o, facts)| {
                facts
                    .into_iter()
                    .map(move |f| (o.order_ref.clone(), f.returned, f.item, f.variants.len()))
            })
            .collect();
        let n_pseudonymised = orders::pseudonymise(c, "C-1", "anon-1")?;
        let gone = (
            orders::find(c, "C-1", 10)?.len(),
            orders::find(c, "anon-1", 10)?.len(),
        );
        orders::put_orders(
            c,
            "brand-a",
            &[
                order("O-3", "C-3", 30, Some(contact.clone())),
                order("O-4", "C-4", 100, Some(contact.clone())),
            ],
            3,
        )?;
        let n_before = orders::pseudonymise_before(c, 50, |r| format!("anon-{r}"))?;
        let old = orders::get(c, "brand-a", "O-3")?.map(|o| (o.customer_ref, o.contact));
        let kept = orders::get(c, "brand-a", "O-4")?.map(|o| (o.customer_ref, o.contact));
        Ok((
            n,
            first,
            by_ref,
            by_customer,
            replaced,
            returned,
            facts,
            n_pseudonymised,
            gone,
            n_before,
            old,
            kept,
        ))
    })?;
    assert_eq!(seen.0, 2);
    assert_eq!(
        seen.1.and_then(|o| o.contact),
        Some(contact.clone()),
        "the contact as given"
    );
    assert_eq!(seen.2, 1, "found by its reference in any case");
    assert_eq!(seen.3, ["O-2", "O-1"], "by customer, newest first");
    assert!(seen.4, "the order was not replaced");
    assert_eq!(seen.5, BTreeMap::from([("TEE".into(), 1)]));
    assert_eq!(
        seen.6,
        vec![("O-1".into(), 1, Some((3_000, false, "tops".into())), 0)]
    );
    assert_eq!(seen.7, 2);
    assert_eq!(seen.8, (0, 0), "a pseudonym is found by nobody");
    assert_eq!(seen.9, 1, "only O-3 had a reference left before the cutoff");
    assert_eq!(seen.10, Some((Some("anon-C-3".into()), None)));
    assert_eq!(seen.11, Some((Some("C-4".into()), Some(contact))));
    Ok(())
}

#[test]
fn a_stores_loose_returns_and_planned_totes_are_listed_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        for (rma, created_ms, tote) in [
            ("R-1", 10i64, Some("T-1")),
            ("R-2", 5, Some("T-1")),
            ("R-3", 30, None),
            ("R-4", 20, None),
            ("R-5", 40, Some("T-2")),
        ] {
            add_return(
                c,
                Ret {
                    rma,
                    site: "osaka",
                    status: "expected",
                    lines_json: "[]",
                    created_ms,
                    store: Some("st-a"),
                    ..Ret::default()
                },
            )?;
            c.execute(
                "UPDATE returns SET tote = ?2 WHERE rma = ?1",
                &[&rma, &tote],
            )?;
        }
        for (tote, status) in [("T-1", "planned"), ("T-2", "received")] {
            c.execute(
                "INSERT INTO totes (tote, store, site, status, n_returns, created_ms)
                 VALUES (?1, 'st-a', 'osaka', ?2, 2, 50)",
                &[&tote, &status],
            )?;
        }
        let (loose, planned) = totes::waiting(c, "st-a")?;
        let planned: Vec<(String, String, Vec<String>)> = planned
            .into_iter()
            .map(|t| (t.tote, t.status, t.rmas))
            .collect();
        let elsewhere = totes::waiting(c, "st-b")?;
        Ok((loose, planned, elsewhere.0.len() + elsewhere.1.len()))
    })?;
    assert_eq!(seen.0, ["R-4", "R-3"], "loose ones, oldest first");
    assert_eq!(
        seen.1,
        vec![(
            "T-1".to_owned(),
            "planned".to_owned(),
            vec!["R-2".to_owned(), "R-1".to_owned()]
        )],
        "a received tote no longer waits"
    );
    assert_eq!(seen.2, 0);
    Ok(())
}

#[test]
fn a_parcel_handed_in_is_seen_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        let before = dropoffs::dropped_off(c, "R-1")?;
        for (rma, kind) in [("R-1", dropoffs::DROPPED_OFF), ("R-2", "registered")] {
            c.execute(
                "INSERT INTO return_events (rma, kind, at_ms, recorded_ms) VALUES (?1, ?2, 1, 1)",
                &[&rma, &kind],
            )?;
        }
        Ok((
            before,
            dropoffs::dropped_off(c, "R-1")?,
            dropoffs::dropped_off(c, "R-2")?,
        ))
    })?;
    assert_eq!(seen, (false, true, false));
    Ok(())
}

fn osaka() -> anyhow::Result<Vec<Site>> {
    Ok(vec![Site {
        id: SiteId::new("osaka")?,
        name: "Osaka".into(),
        location: Coordinates::new(34.69, 135.52)?,
        capabilities: vec![Capability::Refurbish, Capability::Resale],
        daily_capacity_units: 1000,
    }])
}

/// The commands queued, as (site, seq, kind).
fn commands(c: &mut dyn Sql) -> anyhow::Result<Vec<(String, i64, String)>> {
    Ok(c.map_rows(
        "SELECT site, seq, kind FROM commands ORDER BY site, seq",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?)
}

#[test]
fn disposed_units_are_decided_once_and_a_worse_choice_overridden_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        c.execute(
            "INSERT INTO catalog (merchant, sku, category, price_yen, final_sale, needs_testing)
             VALUES ('brand-a', 'COAT', 'outerwear', 30000, 0, 0)",
            &[],
        )?;
        add_units(
            c,
            &[
                (
                    "LPN-1",
                    "osaka",
                    "COAT",
                    None,
                    "disposed:recycle",
                    Some("D"),
                    0,
                    None,
                ),
                (
                    "LPN-2",
                    "osaka",
                    "COAT",
                    None,
                    "disposed:restock",
                    Some("A"),
                    0,
                    None,
                ),
                (
                    "LPN-3",
                    "osaka",
                    "MYSTERY",
                    None,
                    "disposed:dispose",
                    Some("X"),
                    0,
                    None,
                ),
                (
                    "LPN-4",
                    "osaka",
                    "COAT",
                    None,
                    "graded:B",
                    Some("B"),
                    0,
                    None,
                ),
            ],
        )?;
        let config = ValuationConfig::default();
        let first: Vec<(String, u64)> = decisions::decide_pending(c, &config, &osaka()?, 1)?
            .iter()
            .map(|(site, seq)| (site.to_string(), *seq))
            .collect();
        let again = decisions::decide_pending(c, &config, &osaka()?, 2)?.len();
        let mut decided = Vec::new();
        for lpn in ["LPN-1", "LPN-2", "LPN-3", "LPN-4"] {
            decided.push(decisions::decision(c, &Lpn::new(lpn)?)?.map(|(d, _)| d));
        }
        Ok((first, again, decided, commands(c)?))
    })?;
    assert_eq!(seen.0, [("osaka".to_owned(), 1)], "only the recycled coat");
    assert_eq!(seen.1, 0, "decided once");
    assert_eq!(
        seen.2,
        [
            Some(Disposition::Refurbish),
            Some(Disposition::Restock),
            Some(Disposition::Dispose),
            None
        ]
    );
    assert_eq!(
        seen.3,
        [("osaka".to_owned(), 1, "disposition_override".to_owned())]
    );
    Ok(())
}

#[test]
fn exchange_stock_is_reserved_ordered_and_released_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        add_units(
            c,
            &[
                (
                    "S-1",
                    "osaka",
                    "TEE",
                    None,
                    "placed:restock",
                    Some("A"),
                    0,
                    None,
                ),
                (
                    "S-2",
                    "osaka",
                    "TEE",
                    None,
                    "placed:restock",
                    Some("B"),
                    0,
                    None,
                ),
                (
                    "S-3",
                    "osaka",
                    "TEE",
                    None,
                    "placed:restock",
                    Some("A"),
                    0,
                    None,
                ),
            ],
        )?;
        for (rma, status) in [
            ("R-1", "expected"),
            ("R-2", "expected"),
            ("R-3", "expected"),
        ] {
            add_return(
                c,
                Ret {
                    rma,
                    site: "osaka",
                    status,
                    lines_json: "[]",
                    ..Ret::default()
                },
            )?;
        }
        let origin = Coordinates::new(34.7, 135.5)?;
        let sites = osaka()?;
        let tee = Sku::new("TEE")?;
        let (r1, r2, r3) = (RmaId::new("R-1")?, RmaId::new("R-2")?, RmaId::new("R-3")?);
        // Reserved in the caller's transaction, as registering a return does.
        let (first, advanced, none_left) = in_transaction(c, |tx| {
            let first = reservations::reserve(tx, &r1, &tee, origin, &sites, false, 10)?;
            let advanced = reservations::reserve(tx, &r2, &tee, origin, &sites, true, 10)?;
            let none_left = reservations::reserve(tx, &r3, &tee, origin, &sites, false, 10)?;
            Ok::<_, anyhow::Error>((first, advanced, none_left))
        })?;
        let from = |r: &(reservations::Reservation, Option<(SiteId, u64)>)| {
            (
                r.0.site.clone(),
                r.0.lpn.clone(),
                r.0.status.clone(),
                r.1.as_ref().map(|(s, seq)| (s.to_string(), *seq)),
            )
        };
        let reserved = [from(&first), from(&advanced), from(&none_left)];
        let nothing_due = reservations::order_due(c, 20)?.len();
        c.execute(
            "UPDATE returns SET status = 'received' WHERE rma = 'R-1'",
            &[],
        )?;
        let ordered: Vec<(String, u64)> = reservations::order_due(c, 30)?
            .iter()
            .map(|(s, seq)| (s.to_string(), *seq))
            .collect();
        let status = |c: &mut dyn Sql, rma: &RmaId| -> anyhow::Result<Option<String>> {
            Ok(reservations::reservation(c, rma)?.map(|r| r.status))
        };
        let after_order = status(c, &r1)?;
        // Released: the ordered one withdrawn at its site, the other only marked.
        let withdrawn = reservations::release(c, &r1, 40)?.map(|(s, seq)| (s.to_string(), seq));
        let quiet = reservations::release(c, &r3, 40)?;
        let twice = reservations::release(c, &r1, 50)?;
        Ok((
            reserved,
            nothing_due,
            ordered,
            after_order,
            withdrawn,
            quiet,
            twice,
            (status(c, &r1)?, status(c, &r2)?, status(c, &r3)?),
            commands(c)?,
        ))
    })?;
    let osaka = Some("osaka".to_owned());
    assert_eq!(
        seen.0,
        [
            (osaka.clone(), Some("S-1".to_owned()), "reserved".to_owned(), None),
            (
                osaka.clone(),
                Some("S-3".to_owned()),
                "ordered".to_owned(),
                Some(("osaka".to_owned(), 1))
            ),
            (None, None, "reserved".to_owned(), None),
        ],
        "each grade-A unit set aside once, the advance ordered at once, the last from the merchant's warehouse"
    );
    assert_eq!(seen.1, 0, "nothing received yet");
    assert_eq!(seen.2, [("osaka".to_owned(), 2)]);
    assert_eq!(seen.3.as_deref(), Some("ordered"));
    assert_eq!(seen.4, Some(("osaka".to_owned(), 3)));
    assert_eq!((seen.5.clone(), seen.6.clone()), (None, None));
    assert_eq!(
        seen.7,
        (
            Some("released".to_owned()),
            Some("ordered".to_owned()),
            Some("released".to_owned())
        )
    );
    assert_eq!(
        seen.8,
        [
            ("osaka".to_owned(), 1, "exchange_order".to_owned()),
            ("osaka".to_owned(), 2, "exchange_order".to_owned()),
            ("osaka".to_owned(), 3, "exchange_withdrawn".to_owned()),
        ]
    );
    Ok(())
}
