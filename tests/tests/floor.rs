//! The site floor as clerks and supervisors meet it, through the real serial drivers on
//! pseudo-terminals and the running agent's `ctl` socket: a merchant's own RMA and a return's
//! carrier slip open their parcels; unreadable and refused scans get the bad signal and a
//! message; a wrong item and a return routed elsewhere wait in quarantine, are never counted as
//! the return's units at the centre and raise anomalies; the quarantine gate holds at the
//! stations and at `ctl` until a supervisor releases a unit with a reason, which the site's
//! audit and the return's timeline keep.

use std::collections::BTreeSet;
use std::time::Duration;

use modori_agent::config::AgentConfig;
use modori_agent::devices::scanner::{LineTerminator, ScannerConfig};
use modori_agent::stations::{StationConfig, StationKindName};
use modori_agent::Agent;
use modori_demo::pty::SimScanner;
use modori_shared::barcode::{badge_encode, command_encode, StationCommand};
use modori_shared::domain::Grade;
use modori_tests::stations::{scan, scan_ok, SCAN_TIMEOUT};
use modori_tests::{coordinator_count, wait_for, TestFleet};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);
const TEE: &str = "4901234567894";

fn station_config(fleet: &TestFleet, dir: &std::path::Path) -> AgentConfig {
    let mut config = fleet.agent_config(0);
    config.scanners = vec![
        ScannerConfig::new("scan-recv", dir.join("scan-recv")),
        ScannerConfig::new("scan-grade", dir.join("scan-grade")),
    ];
    config.stations = vec![
        StationConfig {
            id: "recv-1".into(),
            kind: StationKindName::Receiving,
            scanner: "scan-recv".into(),
            printer: None,
        },
        StationConfig {
            id: "grade-1".into(),
            kind: StationKindName::Grading,
            scanner: "scan-grade".into(),
            printer: None,
        },
    ];
    config
}

async fn register(
    fleet: &TestFleet,
    rma: &str,
    at: modori_shared::domain::Coordinates,
) -> anyhow::Result<Value> {
    let body = format!(
        r#"{{"rma": "{rma}", "origin": {{"latitude": {}, "longitude": {}}},
            "lines": [{{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}}]}}"#,
        at.lat(),
        at.lon()
    );
    let (status, text) = fleet.api("POST", "/api/v1/returns", Some(&body)).await?;
    anyhow::ensure!(status == 201, "{rma}: {text}");
    Ok(serde_json::from_str(&text)?)
}

async fn ctl(config: &AgentConfig, request: Value) -> anyhow::Result<Value> {
    Ok(modori_agent::ctl::request(&config.ctl_socket(), &request.to_string()).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_rmas_open_parcels_and_quarantine_holds_until_released() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    let devices = tempfile::tempdir()?;
    let recv = SimScanner::plug_in(devices.path().join("scan-recv"), LineTerminator::Cr)?;
    let grade = SimScanner::plug_in(devices.path().join("scan-grade"), LineTerminator::Cr)?;
    fleet.stop_agent(0).await;
    let config = station_config(&fleet, devices.path());
    let agent = Agent::start(config.clone()).await?;
    let site = agent.handle();

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
    let first = register(&fleet, "SHOP-ORDER-123", here).await?;
    let second = register(&fleet, "SHOP-ORDER-124", here).await?;
    let elsewhere = register(&fleet, "YOKO-ORDER-1", fleet.site(1).location).await?;
    assert_eq!(first["site"], fleet.site(0).id.as_str(), "{first}");
    assert_eq!(second["site"], fleet.site(0).id.as_str(), "{second}");
    assert_eq!(elsewhere["site"], fleet.site(1).id.as_str(), "{elsewhere}");
    let tracking = second["label"]["tracking"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!tracking.is_empty(), "{second}");
    wait_for(
        "catalogue, returns and tracking at the site",
        TIMEOUT,
        || {
            let site = site.clone();
            // Disposition rules, catalogue, then each return and its tracking number.
            async move { Ok(site.status().await?.last_applied_command_seq >= 6) }
        },
    )
    .await?;
    wait_for("scanners connected", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.devices().iter().all(|d| d.state.is_connected())) }
    })
    .await?;

    // The merchant's RMA opens its parcel; the T-shirt is its unit, the cap is not.
    scan_ok(&site, &recv, 0, &badge_encode("1234")?).await?;
    let opened = scan(&site, &recv, 0, "SHOP-ORDER-123").await?;
    assert!(
        opened.starts_with("good") && opened.contains("SHOP-ORDER-123: TEE-WHT-M 0/1"),
        "{opened}"
    );
    scan_ok(&site, &recv, 0, TEE).await?;
    let wrong = scan(&site, &recv, 0, &cap).await?;
    assert!(
        wrong.starts_with("good") && wrong.contains("quarantine"),
        "{wrong}"
    );
    scan_ok(&site, &recv, 0, &command_encode(StationCommand::Done)).await?;
    // The carrier slip of the second return opens it.
    let by_slip = scan(&site, &recv, 0, &tracking).await?;
    assert!(
        by_slip.starts_with("good") && by_slip.contains("SHOP-ORDER-124"),
        "{by_slip}"
    );
    scan_ok(&site, &recv, 0, TEE).await?;
    scan_ok(&site, &recv, 0, &command_encode(StationCommand::Done)).await?;

    // Every refused scan gets the bad signal and says why: too long for the scanner, not
    // text, too long for any barcode, a wrong check character.
    let n_bad = site.status().await?.stations[0].n_bad_scans;
    let too_long = scan(&site, &recv, 0, &"9".repeat(300)).await?;
    assert!(
        too_long.starts_with("bad") && too_long.contains("longer than the 256"),
        "{too_long}"
    );
    let before = site.status().await?.stations[0].n_scans;
    recv.send_raw(b"\xff\xfe\xfd\r").await?;
    wait_for("the garbled line answered", SCAN_TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.status().await?.stations[0].n_scans > before) }
    })
    .await?;
    let garbled = site.status().await?.stations[0].clone();
    assert_eq!(garbled.last_signal.as_deref(), Some("bad"));
    assert!(
        garbled
            .last_message
            .as_deref()
            .is_some_and(|m| m.contains("not text")),
        "{garbled:?}"
    );
    let long_barcode = scan(&site, &recv, 0, &"A".repeat(200)).await?;
    assert!(long_barcode.starts_with("bad"), "{long_barcode}");
    let misread = scan(&site, &recv, 0, "4901234567895").await?;
    assert!(
        misread.starts_with("bad") && misread.contains("check"),
        "{misread}"
    );
    assert_eq!(site.status().await?.stations[0].n_bad_scans, n_bad + 4);

    // A return routed to another site, received here by hand: unidentified, not attached.
    let misrouted = ctl(
        &config,
        serde_json::json!({"command": "receive", "sku": "TEE-WHT-M", "rma": "YOKO-ORDER-1",
                           "operator": "B-1234"}),
    )
    .await?;
    assert_eq!(misrouted["receipt"], "unidentified", "{misrouted}");
    let misrouted_lpn = misrouted["lpn"].as_str().unwrap_or_default().to_owned();

    let waiting = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u["lpn"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let at_site = waiting(&ctl(&config, serde_json::json!({"command": "quarantine"})).await?);
    assert_eq!(at_site.len(), 2, "{at_site:?}");
    assert!(at_site.contains(&misrouted_lpn));
    let cap_lpn = at_site
        .iter()
        .find(|l| **l != misrouted_lpn)
        .cloned()
        .unwrap_or_default();

    // The gate: neither the grading station nor ctl moves a quarantined unit on.
    scan_ok(&site, &grade, 1, &badge_encode("5678")?).await?;
    let held = scan(&site, &grade, 1, &cap_lpn).await?;
    assert!(
        held.starts_with("bad") && held.contains("in quarantine"),
        "{held}"
    );
    for request in [
        serde_json::json!({"command": "grade", "lpn": cap_lpn, "grade": "B", "operator": "B-5678"}),
        serde_json::json!({"command": "dispose", "lpn": cap_lpn, "disposition": "return_to_vendor",
                           "operator": "B-5678"}),
        serde_json::json!({"command": "putaway", "lpn": cap_lpn, "bin": "A0103", "operator": "B-5678"}),
        serde_json::json!({"command": "ship", "lpn": cap_lpn, "to": "sendai", "operator": "B-5678"}),
    ] {
        let refused = ctl(&config, request.clone()).await?;
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|e| e.contains("in quarantine")),
            "{request}: {refused}"
        );
    }

    // At the centre: the cap and the misrouted unit belong to no return, each with an anomaly
    // naming site, unit and return; the centre's quarantine is the site's.
    wait_for("site synced", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.status().await?.outbox_pending == 0) }
    })
    .await?;
    let c = fleet.coordinator();
    let site_id = fleet.site(0).id.to_string();
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM units WHERE rma = 'SHOP-ORDER-123' AND site = ?1",
            &site_id
        )
        .await?,
        1
    );
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM units WHERE rma = 'YOKO-ORDER-1' OR site != ?1",
            &site_id
        )
        .await?,
        0
    );
    let (status, text) = fleet.api("GET", "/api/v1/anomalies", None).await?;
    assert_eq!(status, 200, "{text}");
    let anomalies: Value = serde_json::from_str(&text)?;
    let named = |kind: &str, lpn: &str, rma: &str| {
        anomalies.as_array().is_some_and(|a| {
            a.iter().any(|x| {
                x["kind"] == kind
                    && x["site"] == site_id.as_str()
                    && x["lpn"] == lpn
                    && x["detail"].as_str().is_some_and(|d| d.contains(rma))
            })
        })
    };
    assert!(named("wrong_item", &cap_lpn, "SHOP-ORDER-123"), "{text}");
    assert!(
        named("return_not_routed_here", &misrouted_lpn, "YOKO-ORDER-1"),
        "{text}"
    );
    let (status, text) = fleet.api("GET", "/api/v1/quarantine", None).await?;
    assert_eq!(status, 200, "{text}");
    assert_eq!(waiting(&serde_json::from_str(&text)?), at_site);

    // A supervisor releases the cap with a reason; it goes on, and both sides keep who and why.
    let unexplained = ctl(
        &config,
        serde_json::json!({"command": "release", "lpn": cap_lpn, "reason": "",
                           "operator": "B-0042"}),
    )
    .await?;
    assert!(unexplained["error"]
        .as_str()
        .is_some_and(|e| e.contains("reason")));
    let released = ctl(
        &config,
        serde_json::json!({"command": "release", "lpn": cap_lpn,
                           "reason": "customer's own cap, to be sent back", "operator": "B-0042"}),
    )
    .await?;
    assert!(released.get("error").is_none(), "{released}");
    let taken = scan(&site, &grade, 1, &cap_lpn).await?;
    assert!(taken.starts_with("good"), "{taken}");
    scan_ok(
        &site,
        &grade,
        1,
        &command_encode(StationCommand::Grade(Grade::B)),
    )
    .await?;
    let trail = ctl(
        &config,
        serde_json::json!({"command": "audit", "lpn": cap_lpn}),
    )
    .await?;
    let actions: Vec<(String, String)> = trail
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r["action"].as_str().unwrap_or_default().to_owned(),
                        r["operator"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        actions,
        vec![
            ("unit_received".to_owned(), "B-1234".to_owned()),
            ("unit_released".to_owned(), "B-0042".to_owned()),
            ("unit_graded".to_owned(), "B-5678".to_owned()),
        ]
    );
    wait_for("release synced", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.status().await?.outbox_pending == 0) }
    })
    .await?;
    let (status, text) = fleet
        .api("GET", "/api/v1/returns/SHOP-ORDER-123", None)
        .await?;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("unit_released") && text.contains("B-0042"),
        "{text}"
    );
    let (_, text) = fleet.api("GET", "/api/v1/quarantine", None).await?;
    let centre: BTreeSet<String> = waiting(&serde_json::from_str(&text)?);
    assert_eq!(centre, BTreeSet::from([misrouted_lpn.clone()]));
    assert_eq!(
        waiting(&ctl(&config, serde_json::json!({"command": "quarantine"})).await?),
        centre
    );

    agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}

/// The demo's crew leaves a quarantined unit alone while it may still be matched, and has its
/// supervisor release it, with a reason, once it waited long enough; only then is it graded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_crew_grades_a_held_unit_only_after_its_supervisor_released_it(
) -> anyhow::Result<()> {
    use modori_demo::station_sim::{Crew, SimDevices, SUPERVISOR};
    use modori_tests::stations::agent_count;
    use rand::SeedableRng;

    let mut fleet = TestFleet::start().await?;
    fleet.stop_agent(0).await;
    let dir = tempfile::tempdir()?;
    let devices = SimDevices::plug_in(dir.path())?;
    let mut config = fleet.agent_config(0);
    devices.configure(&mut config);
    let agent = Agent::start(config.clone()).await?;
    let site = agent.handle();
    wait_for("devices connected", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.devices().iter().all(|d| d.state.is_connected())) }
    })
    .await?;
    let held = site
        .receive_unit(None, modori_shared::domain::Sku::new("TEE-WHT-M")?, "B-1")
        .await?;
    let mut crew = Crew::new(site.clone(), devices, Default::default(), "1000")?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let waited = crew.step(&mut rng).await?;
    assert_eq!((waited.n_released, waited.n_graded), (0, 0));
    let sql = format!(
        "SELECT COUNT(*) FROM units WHERE lpn = '{}' AND state = 'received' AND quarantine = 1",
        held.lpn
    );
    assert_eq!(agent_count(&config, &sql)?, 1);

    crew.quarantine_release_after = Duration::ZERO;
    let released = crew.step(&mut rng).await?;
    assert_eq!((released.n_released, released.n_graded), (1, 1));
    let trail = ctl(
        &config,
        serde_json::json!({"command": "audit", "lpn": held.lpn.as_str()}),
    )
    .await?;
    let release = &trail[1];
    assert_eq!(release["action"], "unit_released", "{trail}");
    assert_eq!(release["operator"], SUPERVISOR, "{trail}");
    assert!(release["detail"]
        .as_str()
        .is_some_and(|d| d.contains("not matched within")));
    assert_eq!(trail[2]["action"], "unit_graded", "{trail}");

    drop(crew);
    agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}
