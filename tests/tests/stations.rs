//! A site's stations end to end, with scanners and a label printer on pseudo-terminals driven
//! through the real serial drivers: the catalogue and an expected return come from the
//! coordinator; staff sign in with a badge, open the parcel with its RMA label, scan products
//! (matched and wrong item), close it; grade and dispose with command cards; an unidentified
//! parcel goes to quarantine and is matched later; an unplugged printer prints its label once
//! it is back; every label is printed once and the audit trail says who did what, where. The
//! station work happens while the coordinator is down and syncs when it is back.

use std::time::Duration;

use modori_agent::config::AgentConfig;
use modori_agent::devices::printer::PrinterConfig;
use modori_agent::devices::scanner::{LineTerminator, ScannerConfig};
use modori_agent::stations::{StationConfig, StationKindName};
use modori_agent::Agent;
use modori_demo::pty::{SimPrinter, SimScanner};
use modori_shared::barcode::{badge_encode, command_encode, StationCommand};
use modori_shared::domain::{DefectCode, Disposition, Grade};
use modori_tests::stations::{agent_count, scan, scan_ok};
use modori_tests::{coordinator_count, wait_for, TestFleet};

const TIMEOUT: Duration = Duration::from_secs(30);
const TEE: &str = "4901234567894";

fn station_config(fleet: &TestFleet, dir: &std::path::Path) -> AgentConfig {
    let mut config = fleet.agent_config(0);
    config.scanners = vec![
        ScannerConfig::new("scan-recv", dir.join("scan-recv")),
        ScannerConfig::new("scan-grade", dir.join("scan-grade")),
    ];
    config.printers = vec![PrinterConfig::new("zebra-1", dir.join("zebra-1"))];
    config.stations = vec![
        StationConfig {
            id: "recv-1".into(),
            kind: StationKindName::Receiving,
            scanner: "scan-recv".into(),
            printer: Some("zebra-1".into()),
        },
        StationConfig {
            id: "grade-1".into(),
            kind: StationKindName::Grading,
            scanner: "scan-grade".into(),
            printer: Some("zebra-1".into()),
        },
    ];
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stations_receive_grade_and_label_through_real_serial_drivers() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    let devices = tempfile::tempdir()?;
    let recv = SimScanner::plug_in(devices.path().join("scan-recv"), LineTerminator::Cr)?;
    let grade = SimScanner::plug_in(devices.path().join("scan-grade"), LineTerminator::Cr)?;
    let mut printer = SimPrinter::plug_in(devices.path().join("zebra-1"))?;
    fleet.stop_agent(0).await;
    let config = station_config(&fleet, devices.path());
    let agent = Agent::start(config.clone()).await?;
    let site = agent.handle();

    // The coordinator sends the catalogue and an expected return of two T-shirts.
    let cap = modori_shared::barcode::ean13_complete("491234567890")?;
    let catalog = format!(
        r#"{{"items": [{{"sku": "TEE-WHT-M", "gtin": "{TEE}", "category": "tops", "price_yen": 2900}},
                      {{"sku": "CAP-WOOL-F", "gtin": "{cap}", "category": "hats", "price_yen": 3900}}]}}"#
    );
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(&catalog))
        .await?;
    assert_eq!(status, 200, "{text}");
    let here = fleet.site(0).location;
    let body = format!(
        r#"{{"origin": {{"latitude": {}, "longitude": {}}},
            "lines": [{{"sku": "TEE-WHT-M", "qty": 2, "reason": "too_small"}}]}}"#,
        here.lat(),
        here.lon()
    );
    let (status, text) = fleet.api("POST", "/api/v1/returns", Some(&body)).await?;
    assert_eq!(status, 201, "{text}");
    let rma = serde_json::from_str::<serde_json::Value>(&text)?["rma"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    wait_for("catalogue and return at the site", TIMEOUT, || {
        let site = site.clone();
        // Disposition rules, catalogue, expected return.
        async move { Ok(site.status().await?.last_applied_command_seq >= 3) }
    })
    .await?;
    wait_for("devices connected", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.devices().iter().all(|d| d.state.is_connected())) }
    })
    .await?;

    // From here on the line to head office is down: the stations work on the site database.
    fleet.coordinator.take().expect("running").shutdown().await;

    // Receiving: badge, parcel, two expected units, one wrong item, done.
    let badge = badge_encode("1234")?;
    let refused = scan(&site, &recv, 0, &rma).await?;
    assert!(
        refused.starts_with("bad") && refused.contains("badge"),
        "{refused}"
    );
    scan_ok(&site, &recv, 0, &badge).await?;
    scan_ok(&site, &recv, 0, &rma).await?;
    scan_ok(&site, &recv, 0, TEE).await?;
    scan_ok(&site, &recv, 0, TEE).await?;
    scan_ok(&site, &recv, 0, &cap).await?;
    let misread = scan(&site, &recv, 0, "4901234567895").await?;
    assert!(
        misread.starts_with("bad") && misread.contains("check"),
        "{misread}"
    );
    scan_ok(&site, &recv, 0, &command_encode(StationCommand::Done)).await?;
    assert_eq!(
        agent_count(
            &config,
            "SELECT COUNT(*) FROM units WHERE receipt = 'matched'"
        )?,
        2
    );
    assert_eq!(
        agent_count(
            &config,
            "SELECT COUNT(*) FROM units WHERE receipt = 'wrong_item'"
        )?,
        1
    );
    assert_eq!(
        agent_count(&config, "SELECT COUNT(*) FROM units")?,
        3,
        "the misread recorded nothing"
    );

    let lpns: Vec<String> = {
        let conn = rusqlite::Connection::open_with_flags(
            config.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut stmt = conn.prepare("SELECT lpn FROM units ORDER BY received_ms, lpn")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    wait_for("three LPN labels printed", TIMEOUT, || async {
        Ok(printer.record().n_labels >= 3)
    })
    .await?;
    let labels = printer.record().labels;
    for lpn in &lpns {
        assert_eq!(
            labels.iter().filter(|l| l.contains(lpn.as_str())).count(),
            1,
            "{lpn} printed once"
        );
    }

    // Grading: the first unit is graded A and restocked by command cards.
    scan_ok(&site, &grade, 1, &badge_encode("5678")?).await?;
    scan_ok(&site, &grade, 1, &lpns[0]).await?;
    let early = scan(
        &site,
        &grade,
        1,
        &command_encode(StationCommand::Dispose(Disposition::Restock)),
    )
    .await?;
    assert!(
        early.starts_with("bad"),
        "disposition before grading: {early}"
    );
    scan_ok(
        &site,
        &grade,
        1,
        &command_encode(StationCommand::Grade(Grade::A)),
    )
    .await?;
    scan_ok(
        &site,
        &grade,
        1,
        &command_encode(StationCommand::Dispose(Disposition::Restock)),
    )
    .await?;
    wait_for("grade and disposition labels", TIMEOUT, || async {
        Ok(printer.record().n_labels >= 5)
    })
    .await?;
    assert!(printer
        .record()
        .labels
        .last()
        .is_some_and(|l| l.contains("STOCK")));

    // The second unit: a stain found, graded B; the site's rules propose resale; DONE accepts.
    scan_ok(&site, &grade, 1, &lpns[1]).await?;
    scan_ok(
        &site,
        &grade,
        1,
        &command_encode(StationCommand::Defect(DefectCode::Stain)),
    )
    .await?;
    let graded = scan(
        &site,
        &grade,
        1,
        &command_encode(StationCommand::Grade(Grade::B)),
    )
    .await?;
    assert!(graded.contains("proposed resale"), "{graded}");
    scan_ok(&site, &grade, 1, &command_encode(StationCommand::Done)).await?;
    let sql = format!(
        "SELECT COUNT(*) FROM units WHERE lpn = '{}' AND state = 'disposed:resale' AND defects = 'stain'",
        lpns[1]
    );
    assert_eq!(agent_count(&config, &sql)?, 1);

    // The printer is unplugged; an unidentified parcel is received anyway; its label waits,
    // and the station and `ctl status` say so.
    printer.unplug().await;
    wait_for("the printer seen unplugged", TIMEOUT, || {
        let site = site.clone();
        async move {
            Ok(site
                .devices()
                .iter()
                .any(|d| d.name == "zebra-1" && !d.state.is_connected()))
        }
    })
    .await?;
    scan_ok(
        &site,
        &recv,
        0,
        &command_encode(StationCommand::Unidentified),
    )
    .await?;
    let waits = scan(&site, &recv, 0, TEE).await?;
    assert!(
        waits.starts_with("good") && waits.contains("label waits") && waits.contains("zebra-1"),
        "{waits}"
    );
    assert_eq!(site.status().await?.stations[0].n_labels_waiting, 1);
    scan_ok(&site, &recv, 0, &command_encode(StationCommand::Done)).await?;
    let quarantined: String = {
        let conn = rusqlite::Connection::open_with_flags(
            config.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        conn.query_row(
            "SELECT lpn FROM units WHERE quarantine = 1 AND receipt = 'unidentified'",
            [],
            |r| r.get(0),
        )?
    };
    printer.replug().await?;
    wait_for("the waiting label printed after replug", TIMEOUT, || {
        let lpn = quarantined.clone();
        let printer = &printer;
        async move { Ok(printer.record().labels.iter().any(|l| l.contains(&lpn))) }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let copies = printer
        .record()
        .labels
        .iter()
        .filter(|l| l.contains(&quarantined))
        .count();
    assert_eq!(copies, 1, "printed exactly once");
    wait_for(
        "the station's waiting label counted printed",
        TIMEOUT,
        || {
            let site = site.clone();
            async move { Ok(site.status().await?.stations[0].n_labels_waiting == 0) }
        },
    )
    .await?;

    // The line comes back: everything reaches the coordinator, which matches the quarantined
    // unit to the return.
    assert!(
        site.status().await?.outbox_pending > 0,
        "work waited offline"
    );
    fleet.start_coordinator().await?;
    wait_for("site synced", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.status().await?.outbox_pending == 0) }
    })
    .await?;
    let c = fleet.coordinator();
    let site_id = fleet.site(0).id.to_string();
    assert_eq!(
        coordinator_count(c, "SELECT COUNT(*) FROM units WHERE site = ?1", &site_id).await?,
        4
    );
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM returns WHERE site = ?1 AND status = 'received'",
            &site_id
        )
        .await?,
        1
    );
    // The wrong item is not counted as the return's: it waits in quarantine, flagged.
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM anomalies WHERE site = ?1 AND kind = 'wrong_item'",
            &site_id
        )
        .await?,
        1
    );
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM units WHERE site = ?1 AND rma IS NOT NULL",
            &site_id
        )
        .await?,
        2
    );
    let (status, text) = fleet.api("GET", "/api/v1/quarantine", None).await?;
    assert_eq!(status, 200);
    assert!(text.contains(&quarantined), "{text}");
    let matched = format!(r#"{{"rma": "{rma}"}}"#);
    let path = format!("/api/v1/quarantine/{quarantined}/match");
    let (status, text) = fleet.api("POST", &path, Some(&matched)).await?;
    assert_eq!(status, 200, "{text}");
    let (status, _) = fleet.api("POST", &path, Some(&matched)).await?;
    assert_eq!(status, 409, "a unit leaves quarantine once");
    wait_for("the site moved the unit out of quarantine", TIMEOUT, || {
        let config = &config;
        async move {
            Ok(agent_count(
                config,
                "SELECT COUNT(*) FROM units WHERE quarantine = 1 AND receipt = 'unidentified'",
            )? == 0)
        }
    })
    .await?;

    // The audit trail: who did what to the first unit, when, at which station.
    let trail = modori_agent::ctl::request(
        &config.ctl_socket(),
        &format!(r#"{{"command":"audit","lpn":"{}"}}"#, lpns[0]),
    )
    .await?;
    let steps: Vec<(String, String, String)> = trail
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                    (s("action"), s("operator"), s("station"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        steps,
        vec![
            ("unit_received".into(), "B-1234".into(), "recv-1".into()),
            ("unit_graded".into(), "B-5678".into(), "grade-1".into()),
            ("disposition_set".into(), "B-5678".into(), "grade-1".into()),
        ]
    );
    agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}
