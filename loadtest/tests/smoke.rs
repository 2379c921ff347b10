//! The load harness end to end in `--quick` mode (a coordinator, two agent processes, twenty
//! simulated sites, every phase): the report carries every figure, and the coordinator applied
//! exactly the ops the sites recorded. The figures' values are not judged here: performance is
//! measured by the harness, never asserted in a test.

use std::process::Command;

use modori_loadtest::report::FIGURE_KEYS;

#[test]
fn a_quick_run_reports_every_figure_and_applies_each_op_once() {
    let out = tempfile::tempdir().expect("tempdir");
    let run = Command::new(env!("CARGO_BIN_EXE_modori-load"))
        .args(["--quick", "--self-hosted", "--out"])
        .arg(out.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("modori-load runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{log}");

    let json = std::fs::read_to_string(out.path().join("report.json")).expect("report.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("report.json parses");
    let figures = report["figures"].as_array().expect("figures");
    let strip_installed = Command::new("strip").arg("--version").output().is_ok();
    for key in FIGURE_KEYS {
        let figure = figures
            .iter()
            .find(|f| f["key"] == *key)
            .unwrap_or_else(|| panic!("no figure {key} in {json}"));
        let measurable = *key != "agent_stripped_binary_mib" || strip_installed;
        if measurable {
            assert!(figure["value"].is_number(), "{key} has no value: {figure}");
        }
        assert!(
            figure["label"].is_string() && figure["unit"].is_string(),
            "{figure}"
        );
    }
    assert_eq!(figures.len(), FIGURE_KEYS.len(), "{json}");
    for key in ["cpu_model", "cores"] {
        assert!(!report["machine"][key].is_null(), "machine.{key}: {json}");
    }

    let once = &report["exactly_once"];
    assert_eq!(once["ok"], true, "{once}");
    let recorded = once["ops_recorded"].as_u64().expect("ops_recorded");
    // Two agents: 2,000 backlog ops each and the 20,000-op catch-up, besides the online receipts.
    assert!(recorded > 2 * 2_000 + 20_000, "{once}");
    assert_eq!(once["ops_applied"].as_u64(), Some(recorded), "{once}");
    assert_eq!(once["units"].as_u64(), Some(recorded), "{once}");
    assert_eq!(once["anomalies"], 0, "{once}");
    assert_eq!(once["sites_checked"], 2 + 20, "{once}");
    assert!(
        once["baseline_ops_given"].as_u64() > Some(2 * 2_000),
        "{once}"
    );
    assert_eq!(
        once["baseline_ops_applied"], once["baseline_ops_given"],
        "{once}"
    );

    let md = std::fs::read_to_string(out.path().join("report.md")).expect("report.md");
    assert!(md.contains("Exactly once: **yes**"), "{md}");
    for f in figures {
        let label = f["label"].as_str().expect("label");
        assert!(md.contains(label), "report.md lacks {label:?}");
    }
}

#[test]
fn a_wire_only_run_prints_both_sides_per_op_and_their_ratio() {
    let out = tempfile::tempdir().expect("tempdir");
    let run = Command::new(env!("CARGO_BIN_EXE_modori-load"))
        .args(["--quick", "--self-hosted", "--wire-only", "--out"])
        .arg(out.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("modori-load runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("wire alone"))
        .unwrap_or_else(|| panic!("no wire line in {stdout}"));
    // Three figures: µs per op over QUIC, over HTTP, and their ratio; each a positive number.
    let numbers: Vec<f64> = line
        .split([' ', ','])
        .filter_map(|w| w.parse::<f64>().ok())
        .collect();
    assert_eq!(numbers.len(), 4, "agents and three figures in {line:?}");
    assert!(numbers[1..].iter().all(|n| *n > 0.0), "{line:?}");
    assert!(
        !out.path().join("report.json").exists(),
        "a wire-only run writes no report"
    );
}
