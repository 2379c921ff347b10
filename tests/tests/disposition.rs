//! Disposition execution end to end, with a putaway station on a pseudo-terminal scanner and a
//! label printer whose ZPL is captured: the centre orders an exchange; the line to head office
//! goes down; graded units are put away into bins, handed to the recycler, shipped as the
//! exchange's replacement (its label printed) and packed for another site (its transfer label
//! printed); inventory by SKU and bin follows. When the line is back, the coordinator sees each
//! unit where it went, with sellable stock netted by the deltas, and announces the transfer to
//! the destination site, which receives the unit by its LPN and becomes its holder.

use std::time::Duration;

use modori_agent::devices::printer::PrinterConfig;
use modori_agent::devices::scanner::{LineTerminator, ScannerConfig};
use modori_agent::stations::{StationConfig, StationKindName};
use modori_agent::work::Actor;
use modori_agent::Agent;
use modori_demo::pty::{SimPrinter, SimScanner};
use modori_shared::barcode::{badge_encode, bin_encode, command_encode, StationCommand};
use modori_shared::domain::{Disposition, Grade, ReasonCode, ReturnLine, RmaId, Sku};
use modori_shared::station::Effect;
use modori_tests::stations::{agent_count, agent_query, scan, scan_ok};
use modori_tests::{coordinator_count, wait_for, TestFleet};

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispositions_are_executed_offline_and_a_transfer_changes_hands() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    let devices = tempfile::tempdir()?;
    let putaway = SimScanner::plug_in(devices.path().join("scan-put"), LineTerminator::Cr)?;
    let printer = SimPrinter::plug_in(devices.path().join("zebra-1"))?;
    fleet.stop_agent(0).await;
    let mut config = fleet.agent_config(0);
    config.scanners = vec![ScannerConfig::new(
        "scan-put",
        devices.path().join("scan-put"),
    )];
    config.printers = vec![PrinterConfig::new(
        "zebra-1",
        devices.path().join("zebra-1"),
    )];
    config.stations = vec![StationConfig {
        id: "put-1".into(),
        kind: StationKindName::Putaway,
        scanner: "scan-put".into(),
        printer: Some("zebra-1".into()),
    }];
    let agent = Agent::start(config.clone()).await?;
    let site = agent.handle();
    let here = fleet.site(0).clone();
    let there = fleet.site(1).clone();

    // A customer returns a T-shirt and wants another: the return is routed here and the centre
    // orders the replacement shipped from this site's stock.
    let rma = RmaId::new(modori_coordinator::new_rma_id(
        modori_runtime::clock::now_ms(),
    ))?;
    let tee = Sku::new("TEE-WHT-M")?;
    let routed = fleet
        .coordinator()
        .register_return(
            rma.clone(),
            "here".into(),
            here.location,
            vec![ReturnLine::new(tee.clone(), 1, ReasonCode::TooSmall)?],
        )
        .await?;
    assert_eq!(routed.site, here.id);
    modori_coordinator::app::stock::exchange(fleet.coordinator().ctx(), rma.clone(), tee.clone())
        .await?;
    wait_for("the exchange order at the site", TIMEOUT, || {
        let config = &config;
        async move { Ok(agent_count(config, "SELECT COUNT(*) FROM exchange_orders")? == 1) }
    })
    .await?;

    // The line goes down; everything from here on is offline.
    fleet.coordinator.take().expect("running").shutdown().await;

    // Three graded units: two T-shirts to restock, a damaged cap to recycle.
    let mut lpns = Vec::new();
    for (sku, disposition) in [
        ("TEE-WHT-M", Disposition::Restock),
        ("TEE-WHT-M", Disposition::Restock),
        ("CAP-WOOL-F", Disposition::Recycle),
    ] {
        let receipt = modori_tests::receive_released(&site, sku, "B-0001").await?;
        let grade = if disposition == Disposition::Restock {
            Grade::A
        } else {
            Grade::D
        };
        site.grade_unit(receipt.lpn.clone(), grade, "B-0001")
            .await?;
        site.dispose_unit(receipt.lpn.clone(), disposition, "B-0001")
            .await?;
        lpns.push(receipt.lpn.to_string());
    }
    wait_for("the scanner connected", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.devices().iter().all(|d| d.state.is_connected())) }
    })
    .await?;

    // Putaway station: both T-shirts into bin A0103, the second moved on to B0201.
    let a0103 = bin_encode("A0103")?;
    let b0201 = bin_encode("B0201")?;
    let ship = command_encode(StationCommand::Ship);
    scan_ok(&site, &putaway, 0, &badge_encode("4321")?).await?;
    let refused = scan(&site, &putaway, 0, "BIN-A0103-0").await?;
    assert!(refused.starts_with("bad"), "a misread bin label: {refused}");
    for lpn in &lpns[..2] {
        scan_ok(&site, &putaway, 0, lpn).await?;
        scan_ok(&site, &putaway, 0, &a0103).await?;
    }
    scan_ok(&site, &putaway, 0, &lpns[1]).await?;
    let stays = scan(&site, &putaway, 0, &ship).await?;
    assert!(
        stays.starts_with("bad") && stays.contains("bin"),
        "restock without a transfer order stays: {stays}"
    );
    scan_ok(&site, &putaway, 0, &b0201).await?;
    // The cap goes to the recycler.
    scan_ok(&site, &putaway, 0, &lpns[2]).await?;
    scan_ok(&site, &putaway, 0, &ship).await?;
    let stock = modori_agent::ctl::request(
        &config.ctl_socket(),
        r#"{"command":"inventory","sku":"TEE-WHT-M"}"#,
    )
    .await?;
    let by_bin: Vec<(String, i64)> = stock
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r["bin"].as_str().unwrap_or_default().to_owned(),
                        r["qty"].as_i64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(by_bin, vec![("A0103".into(), 1), ("B0201".into(), 1)]);

    // The exchange: scan its RMA, then a T-shirt from stock; the replacement label prints.
    scan_ok(&site, &putaway, 0, rma.as_str()).await?;
    scan_ok(&site, &putaway, 0, &lpns[0]).await?;
    wait_for("the exchange label", TIMEOUT, || async {
        Ok(printer
            .record()
            .labels
            .iter()
            .any(|l| l.contains("EXCHANGE")))
    })
    .await?;
    let again = scan(&site, &putaway, 0, rma.as_str()).await?;
    assert!(again.starts_with("bad"), "an exchange ships once: {again}");

    // The other T-shirt is packed for the next site by a supervisor; its transfer label prints.
    let shipped = modori_agent::ctl::request(
        &config.ctl_socket(),
        &format!(
            r#"{{"command":"ship","lpn":"{}","to":"{}","tracking":"123456789013","operator":"B-0009"}}"#,
            lpns[1], there.id
        ),
    )
    .await?;
    assert!(shipped["error"].is_null(), "{shipped}");
    wait_for("the transfer label", TIMEOUT, || async {
        Ok(printer
            .record()
            .labels
            .iter()
            .any(|l| l.contains(&format!("TO {}", there.id)) && l.contains(&lpns[1])))
    })
    .await?;
    let empty =
        modori_agent::ctl::request(&config.ctl_socket(), r#"{"command":"inventory"}"#).await?;
    assert_eq!(empty, serde_json::json!([]), "every bin emptied");
    let states: String = agent_query(
        &config,
        "SELECT group_concat(state, ' ') FROM (SELECT state FROM units ORDER BY received_ms, lpn)",
    )?;
    assert_eq!(states, "departed:restock departed:restock departed:recycle");

    // The line is back.
    fleet.start_coordinator().await?;
    wait_for("site synced", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.status().await?.outbox_pending == 0) }
    })
    .await?;
    let c = fleet.coordinator();
    let here_id = here.id.to_string();
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM anomalies WHERE site = ?1",
            &here_id
        )
        .await?,
        0
    );
    // Put away twice (+1 each), shipped twice (−1 each): no sellable T-shirt is left here.
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM ops WHERE site = ?1 AND kind = 'inventory_adjusted'",
            &here_id
        )
        .await?,
        4
    );
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM inventory WHERE site = ?1 AND qty != 0",
            &here_id
        )
        .await?,
        0
    );
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM returns WHERE site = ?1 AND exchange_lpn IS NOT NULL",
            &here_id
        )
        .await?,
        1
    );

    // The next site hears of the transfer and receives the unit by its LPN.
    let next = fleet.agent(1);
    let transfer_lpn = modori_shared::domain::Lpn::new(lpns[1].clone())?;
    wait_for("the transfer announced to the next site", TIMEOUT, || {
        let config = fleet.agent_config(1);
        async move { Ok(agent_count(&config, "SELECT COUNT(*) FROM expected_transfers")? == 1) }
    })
    .await?;
    next.record(
        Effect::ReceiveTransfer {
            lpn: transfer_lpn.clone(),
            from: here.id.clone(),
        },
        Actor::new("B-0100", "recv-1"),
    )
    .await?;
    wait_for("the arrival applied", TIMEOUT, || {
        let there = there.id.to_string();
        let fleet = &fleet;
        async move {
            let sql = "SELECT COUNT(*) FROM units WHERE site = ?1 AND state = 'disposed:restock'";
            Ok(coordinator_count(fleet.coordinator(), sql, &there).await? == 1)
        }
    })
    .await?;
    assert_eq!(
        coordinator_count(
            fleet.coordinator(),
            "SELECT COUNT(*) FROM anomalies WHERE site != ?1",
            ""
        )
        .await?,
        0
    );
    agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}

/// A site recycles a damaged coat by its rules; the centre's value model says a 30,000-yen coat
/// is worth refurbishing (at a site that can), and the site's record follows: an undo and the
/// new disposition, by `coordinator`, synced back, decided once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_centre_overrides_a_disposition_that_recovers_less() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    let site = fleet.agent(0);
    let site_id = fleet.site(0).id.clone();
    let coat = modori_shared::CatalogItem {
        sku: Sku::new("COAT-WOOL-L")?,
        gtin14: None,
        category: "outerwear".into(),
        price_yen: 30_000,
        final_sale: false,
        needs_testing: false,
    };
    let jacket = modori_shared::CatalogItem {
        sku: Sku::new("JACKET-M")?,
        price_yen: 10_000,
        ..coat.clone()
    };
    let sites: Vec<_> = fleet.fleet.sites.iter().map(|s| s.id.clone()).collect();
    let queued = fleet
        .coordinator()
        .ctx()
        .db
        .call(move |c| {
            modori_coordinator::store::put_catalog(c, "brand-a", &[coat, jacket], &sites, 1)
        })
        .await?;
    fleet.coordinator().ctx().wake(queued);
    let receipt = modori_tests::receive_released(&site, "COAT-WOOL-L", "B-0001").await?;
    site.grade_unit(receipt.lpn.clone(), Grade::D, "B-0001")
        .await?;
    site.dispose_unit(receipt.lpn.clone(), Disposition::Recycle, "B-0001")
        .await?;
    let config = fleet.agent_config(0);
    let lpn = receipt.lpn.to_string();
    wait_for("the override applied at the site", TIMEOUT, || {
        let config = &config;
        let sql = format!("SELECT state FROM units WHERE lpn = '{lpn}'");
        async move { Ok(agent_query::<String>(config, &sql)? == "disposed:refurbish") }
    })
    .await?;
    let trail: Vec<(String, String)> = {
        let conn = rusqlite::Connection::open_with_flags(
            config.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut stmt =
            conn.prepare("SELECT action, operator FROM audit WHERE lpn = ?1 ORDER BY id")?;
        let rows = stmt.query_map([&lpn], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let trail: Vec<(&str, &str)> = trail
        .iter()
        .map(|(a, o)| (a.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        trail,
        [
            ("unit_received", "B-0001"),
            ("unit_released", "B-0001"),
            ("unit_graded", "B-0001"),
            ("disposition_set", "B-0001"),
            ("disposition_undone", "coordinator"),
            ("disposition_set", "coordinator"),
        ]
    );
    let c = fleet.coordinator();
    wait_for("the correction synced", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.status().await?.outbox_pending == 0) }
    })
    .await?;
    let sql = "SELECT COUNT(*) FROM units WHERE site = ?1 AND state = 'disposed:refurbish' AND decided = 'refurbish'";
    assert_eq!(coordinator_count(c, sql, site_id.as_str()).await?, 1);
    let overrides =
        "SELECT COUNT(*) FROM commands WHERE site = ?1 AND kind = 'disposition_override'";
    assert_eq!(
        coordinator_count(c, overrides, site_id.as_str()).await?,
        1,
        "decided once"
    );
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM anomalies WHERE site = ?1",
            site_id.as_str()
        )
        .await?,
        0
    );

    // A worn jacket at a site with a resale studio: the centre agrees with resale, and once it
    // is on the shelf it is listed on every channel at its grade's price.
    let studio = fleet.agent(2);
    let receipt = modori_tests::receive_released(&studio, "JACKET-M", "B-0002").await?;
    let jacket = receipt.lpn.clone();
    studio
        .grade_unit(jacket.clone(), Grade::B, "B-0002")
        .await?;
    studio
        .dispose_unit(jacket.clone(), Disposition::Resale, "B-0002")
        .await?;
    studio
        .record(
            Effect::PutAway {
                lpn: jacket.clone(),
                bin: modori_shared::domain::Bin::new("R01")?,
            },
            Actor::new("B-0002", "put-1"),
        )
        .await?;
    let studio_id = fleet.site(2).id.to_string();
    wait_for("the jacket listed", TIMEOUT, || {
        let studio_id = studio_id.clone();
        let fleet = &fleet;
        async move {
            let sql = "SELECT COUNT(*) FROM listings WHERE site = ?1 AND status = 'listed'";
            Ok(coordinator_count(fleet.coordinator(), sql, &studio_id).await? == 2)
        }
    })
    .await?;
    let listed = fleet
        .coordinator()
        .ctx()
        .db
        .call(|c| modori_coordinator::store::listings::listings(c, Some("listed"), 10))
        .await?;
    let mut prices: Vec<(String, i64)> = listed
        .iter()
        .map(|l| (l.channel.clone(), l.price_yen))
        .collect();
    prices.sort();
    assert_eq!(
        prices,
        [
            ("marketplace".to_owned(), 5500),
            ("outlet".to_owned(), 6000)
        ]
    );
    let sql = "SELECT COUNT(*) FROM commands WHERE site = ?1 AND kind = 'disposition_override'";
    assert_eq!(
        coordinator_count(fleet.coordinator(), sql, &studio_id).await?,
        0,
        "resale was the best choice"
    );
    fleet.shutdown().await;
    Ok(())
}
