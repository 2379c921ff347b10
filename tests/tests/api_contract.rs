//! The API document is the contract: schemathesis (an outside fuzzer that reads only the
//! document) sends every operation schema-valid and schema-violating requests with an ops, a
//! merchant and a store key, and checks every answer against the document (`--checks all`):
//! a schema-valid request is accepted (or 401/403/404/409), a violating one refused, statuses,
//! content types, headers and bodies as documented, never a 5xx.
//!
//! Needs schemathesis in the venv of outside tools (`MODORI_VENV`, made by scripts/test.sh);
//! a missing fuzzer fails the test. Key revocation is left out of the run so the run keeps its
//! keys (api_auth.rs tests it).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use modori_tests::{config_key, small_fleet, TestFleet};

/// Cases per operation and phase; with the fixed seed, the same run every time.
const MAX_EXAMPLES: &str = "10";
const SEED: &str = "1";
/// The one operation run without `positive_data_acceptance`: a GTIN's check digit is a rule no
/// JSON Schema can state, so a schema-valid GTIN with a wrong check digit is refused (422) by
/// design. Every other check still runs on it, in a run of its own.
const CHECK_DIGIT_OPERATION: &str = "PUT /api/v1/catalog/{merchant}";
/// A run that takes longer has hung (one run takes about 10 s on two cores).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn schemathesis() -> PathBuf {
    let st = modori_tests::venv_dir().join("bin/st");
    assert!(
        st.exists(),
        "{} missing: run scripts/test.sh, or make target/venv and pip install schemathesis",
        st.display()
    );
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_with_any_scope() -> anyhow::Result<()> {
    let st = schemathesis();
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (merchant, merchant_entry) = config_key("merchant:brand-a");
    let (store, store_entry) = config_key("store:st-ginza");
    fleet.extra_keys = vec![merchant_entry, store_entry];
    fleet.start_coordinator().await?;
    let doc = format!("http://{}/api/v1/openapi.json", fleet.http());
    let reports = tempfile::tempdir()?;
    let mut failed = Vec::new();
    for (scope, key) in [
        ("ops", fleet.ops_key.clone()),
        ("merchant", merchant),
        ("store", store),
    ] {
        for (part, selection) in [
            ("all", vec!["--exclude-name", CHECK_DIGIT_OPERATION]),
            (
                "check digits",
                vec![
                    "--include-name",
                    CHECK_DIGIT_OPERATION,
                    "--exclude-checks",
                    "positive_data_acceptance",
                ],
            ),
        ] {
            let started = Instant::now();
            // coreutils' timeout ends a hung run; the fuzzer runs off the runtime's threads,
            // which serve the coordinator it talks to.
            let mut run = std::process::Command::new("timeout");
            run.arg(RUN_TIMEOUT.as_secs().to_string())
                .arg(&st)
                .args(["run", &doc, "--checks", "all", "--workers", "1"])
                .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
                .args(["--exclude-path", "/api/v1/keys/{id}"])
                .args(&selection)
                .args(["--header", &format!("Authorization: Bearer {key}")])
                .arg("--report-dir")
                .arg(reports.path().join(scope).join(part.replace(' ', "-")))
                .arg("--no-color")
                // Its own cache stays out of the source tree.
                .current_dir(reports.path());
            let out = tokio::task::spawn_blocking(move || run.output()).await??;
            let text = String::from_utf8_lossy(&out.stdout);
            let summary = text
                .lines()
                .filter(|l| l.contains(" generated") || l.contains(" in ") && l.starts_with("=="))
                .collect::<Vec<_>>()
                .join(" ");
            println!("{scope} key, {part}: {summary} ({:.1?})", started.elapsed());
            if !out.status.success() || !text.contains(" passed") {
                failed.push(format!(
                    "--- {scope} key, {part}:\n{text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    fleet.shutdown().await;
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    Ok(())
}
