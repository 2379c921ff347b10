//! A closed loop: one site works a return through receiving, grading and putaway with
//! scanners and a printer on pseudo-terminals, through the real serial drivers, and every
//! barcode of a label scanned is what `zbarimg` decodes from the label as printed: the return
//! label the coordinator made, and each label the site's printer wrote to `printed/<n>.zpl`,
//! rendered by zplkit. The test never scans an id it knew beforehand; badge, command cards
//! and bin are the staff's own cards, not printed by the system.

use std::path::Path;
use std::time::Duration;

use modori_agent::devices::printer::PrinterConfig;
use modori_agent::devices::scanner::{LineTerminator, ScannerConfig};
use modori_agent::stations::{StationConfig, StationKindName};
use modori_agent::Agent;
use modori_demo::pty::{SimPrinter, SimScanner};
use modori_shared::barcode::{badge_encode, bin_encode, command_encode, StationCommand};
use modori_shared::domain::{Disposition, Grade};
use modori_tests::labels::LabelTools;
use modori_tests::stations::{agent_count, scan_ok};
use modori_tests::{wait_for, TestFleet};

const TIMEOUT: Duration = Duration::from_secs(30);
const TEE: &str = "4901234567894";

/// Renders `zpl` (at 203 dpi, the printers' default) and returns the one barcode it holds.
fn scan_label(tools: &LabelTools, zpl_path: &Path) -> anyhow::Result<String> {
    let png = tools.render(&[(zpl_path.to_owned(), 203)])?;
    let decoded = tools.decode(&png[0])?;
    anyhow::ensure!(
        decoded.len() == 1,
        "{}: decoded {decoded:?}, want one barcode",
        zpl_path.display()
    );
    Ok(decoded[0].clone())
}

/// Waits for the printer's `n`th label and returns its path.
async fn printed(dir: &Path, n: u64) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(format!("{n}.zpl"));
    let p = path.clone();
    wait_for(&format!("label {n} printed"), TIMEOUT, || {
        let p = p.clone();
        async move { Ok(std::fs::read_to_string(&p).is_ok_and(|z| z.ends_with("^XZ"))) }
    })
    .await?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_label_scanned_is_decoded_from_what_the_printer_printed() -> anyhow::Result<()> {
    let Some(tools) = LabelTools::find()? else {
        return Ok(());
    };
    let mut fleet = TestFleet::start().await?;
    let devices = tempfile::tempdir()?;
    let dir = devices.path();
    let recv = SimScanner::plug_in(dir.join("scan-recv"), LineTerminator::Cr)?;
    let grade = SimScanner::plug_in(dir.join("scan-grade"), LineTerminator::Cr)?;
    let put = SimScanner::plug_in(dir.join("scan-put"), LineTerminator::Cr)?;
    let printer = SimPrinter::plug_in(dir.join("zebra"))?;
    fleet.stop_agent(0).await;
    let mut config = fleet.agent_config(0);
    let paper = config.storage.data_dir.join("printed");
    printer.print_to(&paper)?;
    config.scanners = vec![
        ScannerConfig::new("scan-recv", dir.join("scan-recv")),
        ScannerConfig::new("scan-grade", dir.join("scan-grade")),
        ScannerConfig::new("scan-put", dir.join("scan-put")),
    ];
    config.printers = vec![PrinterConfig::new("zebra", dir.join("zebra"))];
    let station = |id: &str, kind, scanner: &str| StationConfig {
        id: id.into(),
        kind,
        scanner: scanner.into(),
        printer: Some("zebra".into()),
    };
    config.stations = vec![
        station("recv-1", StationKindName::Receiving, "scan-recv"),
        station("grade-1", StationKindName::Grading, "scan-grade"),
        station("put-1", StationKindName::Putaway, "scan-put"),
    ];
    let agent = Agent::start(config.clone()).await?;
    let site = agent.handle();

    let catalog = format!(
        r#"{{"items": [{{"sku": "TEE-WHT-M", "gtin": "{TEE}", "category": "tops", "price_yen": 2900}}]}}"#
    );
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(&catalog))
        .await?;
    anyhow::ensure!(status == 200, "{text}");
    let here = fleet.site(0).location;
    let body = format!(
        r#"{{"origin": {{"latitude": {}, "longitude": {}}},
            "lines": [{{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}}]}}"#,
        here.lat(),
        here.lon()
    );
    let (status, text) = fleet.api("POST", "/api/v1/returns", Some(&body)).await?;
    anyhow::ensure!(status == 201, "{text}");
    let routed: serde_json::Value = serde_json::from_str(&text)?;
    let return_label = dir.join("return.zpl");
    std::fs::write(
        &return_label,
        routed["label"]["zpl"].as_str().unwrap_or_default(),
    )?;
    wait_for("catalogue and return at the site", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.status().await?.last_applied_command_seq >= 3) }
    })
    .await?;
    wait_for("devices connected", TIMEOUT, || {
        let site = site.clone();
        async move { Ok(site.devices().iter().all(|d| d.state.is_connected())) }
    })
    .await?;

    // Receiving: the parcel by the RMA read off its return label, one T-shirt, done.
    let rma = scan_label(&tools, &return_label)?;
    anyhow::ensure!(
        Some(rma.as_str()) == routed["rma"].as_str(),
        "{rma} vs {routed}"
    );
    scan_ok(&site, &recv, 0, &badge_encode("1234")?).await?;
    scan_ok(&site, &recv, 0, &rma).await?;
    scan_ok(&site, &recv, 0, TEE).await?;
    scan_ok(&site, &recv, 0, &command_encode(StationCommand::Done)).await?;

    // Grading: the unit by the LPN read off the label receiving printed.
    let lpn = scan_label(&tools, &printed(&paper, 1).await?)?;
    scan_ok(&site, &grade, 1, &badge_encode("5678")?).await?;
    scan_ok(&site, &grade, 1, &lpn).await?;
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

    // Putaway: the unit by the LPN read off the disposition label. Grading printed two: the
    // unit's label with its grade (2), then where it goes (3).
    let disposition_label = printed(&paper, 3).await?;
    let zpl = std::fs::read_to_string(&disposition_label)?;
    anyhow::ensure!(zpl.contains("STOCK"), "the disposition label: {zpl}");
    let lpn_again = scan_label(&tools, &disposition_label)?;
    scan_ok(&site, &put, 2, &badge_encode("4321")?).await?;
    scan_ok(&site, &put, 2, &lpn_again).await?;
    scan_ok(&site, &put, 2, &bin_encode("A0103")?).await?;

    // The unit read off the labels is the one received, now in its bin.
    let sql = format!("SELECT COUNT(*) FROM units WHERE lpn = '{lpn}' AND bin = 'A0103'");
    assert_eq!(agent_count(&config, &sql)?, 1, "{lpn} put away in A0103");
    assert_eq!(agent_count(&config, "SELECT COUNT(*) FROM units")?, 1);
    agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}
