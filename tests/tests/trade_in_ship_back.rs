//! A declined trade-in's item leaves its site through the real station and printer drivers:
//! a putaway station on a pseudo-terminal scanner tells staff the unit goes back to its
//! customer and holds it in a bin, `ctl ship` sends it with the carrier's number, and the
//! label the printer received (RETURN TO CUSTOMER) is rendered by zplkit and its barcode read
//! by zbarimg as the trade-in's RMA. The centre then shows the tracking number on the return.

use std::time::Duration;

use modori_agent::devices::printer::PrinterConfig;
use modori_agent::devices::scanner::{LineTerminator, ScannerConfig};
use modori_agent::stations::{StationConfig, StationKindName};
use modori_agent::work::Actor;
use modori_agent::Agent;
use modori_demo::pty::{SimPrinter, SimScanner};
use modori_shared::barcode::{badge_encode, bin_encode, command_encode, StationCommand};
use modori_shared::domain::{Disposition, Grade, RmaId, Sku};
use modori_shared::station::Effect;
use modori_tests::labels::LabelTools;
use modori_tests::stations::{agent_count, agent_query, scan, scan_ok};
use modori_tests::{http_request_as, small_fleet, wait_for, TestFleet};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);
const QUOTES: &str = "/api/v1/merchants/brand-a/trade-in/quotes";

async fn call(
    fleet: &TestFleet,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let text = body.map(|b| b.to_string());
    let (status, answer) = http_request_as(
        fleet.http(),
        Some(&fleet.ops_key),
        method,
        path,
        text.as_deref(),
    )
    .await?;
    Ok((status, serde_json::from_str(&answer).unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_trade_in_is_shipped_back_from_the_putaway_station_with_its_label(
) -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    fleet.merchants = vec![modori_coordinator::webhooks::MerchantEntry {
        id: "brand-a".into(),
        ..Default::default()
    }];
    fleet.start_coordinator().await?;
    let devices = tempfile::tempdir()?;
    let put = SimScanner::plug_in(devices.path().join("scan-put"), LineTerminator::Cr)?;
    let printer = SimPrinter::plug_in(devices.path().join("zebra-1"))?;
    let paper = devices.path().join("printed");
    printer.print_to(&paper)?;
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

    // A phone quoted as good (22,000 yen), sent, received and graded C: a counter-offer.
    let catalog = json!({"items": [{"sku": "PHN-MINI", "category": "phone", "price_yen": 60000}]});
    let (status, answer) = call(&fleet, "PUT", "/api/v1/catalog/brand-a", Some(catalog)).await?;
    assert_eq!(status, 200, "{answer}");
    let table = json!({"prices": [
        {"category": "phone", "grade": "B", "price_yen": 22000},
        {"category": "phone", "grade": "C", "price_yen": 12000}]});
    let prices = "/api/v1/merchants/brand-a/trade-in/prices";
    let (status, answer) = call(&fleet, "PUT", prices, Some(table)).await?;
    assert_eq!(status, 200, "{answer}");
    let quote = json!({"sku": "PHN-MINI", "condition": "good"});
    let (status, q) = call(&fleet, "POST", QUOTES, Some(quote)).await?;
    assert_eq!(status, 201, "{q}");
    let quote_path = format!("{QUOTES}/{}", q["quote_id"].as_str().unwrap_or_default());
    let send = json!({"postal_code": "060-0001", "method": "konbini_dropoff",
                      "payout": "bank_transfer"});
    let (status, sent) = call(&fleet, "POST", &format!("{quote_path}/send"), Some(send)).await?;
    assert_eq!(status, 201, "{sent}");
    let rma = RmaId::new(sent["rma"].as_str().unwrap_or_default())?;
    let expected = format!(
        "SELECT COUNT(*) FROM expected_returns WHERE rma = '{}'",
        rma.as_str()
    );
    wait_for("the trade-in expected at its site", TIMEOUT, || {
        let (config, sql) = (&config, &expected);
        async move { Ok(agent_count(config, sql)? == 1) }
    })
    .await?;
    let receipt = site
        .receive_unit(Some(rma.clone()), Sku::new("PHN-MINI")?, "B-0001")
        .await?;
    let lpn = receipt.lpn;
    site.grade_unit(lpn.clone(), Grade::C, "B-0001").await?;
    let who = || Actor::new("B-0001", "recv-1");
    let close = Effect::CloseParcel {
        rma: rma.clone(),
        shortages: vec![],
    };
    site.record(close, who()).await?;
    // Disposed of by its grade's rule, as a grading station would, before the answer.
    site.dispose_unit(lpn.clone(), Disposition::Refurbish, "B-0001")
        .await?;
    wait_for("the counter-offer", TIMEOUT, || {
        let path = quote_path.clone();
        let fleet = &fleet;
        async move {
            let (_, q) = call(fleet, "GET", &path, None).await?;
            Ok(q["trade_in"]["counter_offer"] == json!(true))
        }
    })
    .await?;

    // Declined for the customer: the site is told to send it back, once.
    let decline = Some(json!({"answer": "decline"}));
    let answer_path = format!("{quote_path}/answer");
    let (status, answer) = call(&fleet, "POST", &answer_path, decline.clone()).await?;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(&fleet, "POST", &answer_path, decline).await?;
    assert_eq!(status, 200, "the same answer again: {answer}");
    wait_for("the ship-back at the site", TIMEOUT, || {
        let config = &config;
        async move {
            Ok(agent_count(
                config,
                "SELECT COUNT(*) FROM applied_commands WHERE kind = 'ship_back'",
            )? >= 1)
        }
    })
    .await?;
    assert_eq!(
        agent_count(
            &config,
            "SELECT COUNT(*) FROM applied_commands WHERE kind = 'ship_back'"
        )?,
        1,
        "ordered once"
    );

    // The putaway station says where it goes and holds it in a bin until it is packed.
    scan_ok(&site, &put, 0, &badge_encode("4321")?).await?;
    let said = scan(&site, &put, 0, lpn.as_str()).await?;
    assert!(
        said.starts_with("good") && said.contains("customer of") && said.contains(rma.as_str()),
        "{said}"
    );
    scan_ok(&site, &put, 0, &bin_encode("A0103")?).await?;
    scan_ok(&site, &put, 0, &command_encode(StationCommand::Done)).await?;

    // Packed and handed to the carrier with its number: its label prints.
    let tracking = "123456789013";
    let shipped = modori_agent::ctl::request(
        &config.ctl_socket(),
        &format!(
            r#"{{"command":"ship","lpn":"{lpn}","tracking":"{tracking}","operator":"B-0009"}}"#
        ),
    )
    .await?;
    assert!(shipped["error"].is_null(), "{shipped}");
    wait_for("the ship-back label", TIMEOUT, || async {
        Ok(printer
            .record()
            .labels
            .iter()
            .any(|l| l.contains("RETURN TO CUSTOMER") && l.contains(rma.as_str())))
    })
    .await?;
    // Whatever its disposition became (the centre may have overridden it), it left this way.
    let left: String = agent_query(
        &config,
        &format!("SELECT state || ' ' || departure FROM units WHERE lpn = '{lpn}'"),
    )?;
    assert!(
        left.starts_with("departed:")
            && left.ends_with(&format!("return to the customer of {rma}")),
        "{left}"
    );
    if let Some(tools) = LabelTools::find()? {
        let n = printer.record().n_labels;
        let zpl = paper.join(format!("{n}.zpl"));
        let png = tools.render(&[(zpl, 203)])?;
        assert_eq!(
            tools.decode(&png[0])?,
            [rma.to_string()],
            "the label as printed"
        );
    }

    // The centre: the tracking number on the return's timeline.
    let path = format!("/api/v1/returns/{rma}");
    wait_for("the ship-back at the centre", TIMEOUT, || {
        let path = path.clone();
        let fleet = &fleet;
        async move {
            let (_, ret) = call(fleet, "GET", &path, None).await?;
            Ok(ret["events"].as_array().into_iter().flatten().any(|e| {
                e["kind"] == "shipped_back"
                    && e["detail"].as_str().is_some_and(|d| d.contains(tracking))
            }))
        }
    })
    .await?;
    agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}
