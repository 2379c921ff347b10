//! `modori-agent doctor` as a site technician runs it: a pass/fail table, and a non-zero exit
//! when something is wrong.

use std::time::Duration;

use modori_tests::procs::{Binaries, ProcFleet};
use modori_tests::wait_for;

const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};

fn line<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} row in:\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_site_and_fails_when_the_coordinator_is_away() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_coordinator(None).await?;

    // Agent stopped: the doctor says hello itself and measures the clock.
    let (ok, table) = f.agent_cli(0, &["doctor"])?;
    assert!(ok, "{table}");
    for name in ["config", "certificate", "devices", "coordinator", "clock"] {
        assert!(line(&table, name).starts_with("PASS"), "{name}:\n{table}");
    }
    // Free space is the machine's, not the test's: only a failure would be wrong here.
    assert!(!line(&table, "disk").starts_with("FAIL"), "{table}");
    assert!(
        line(&table, "database").starts_with("WARN"),
        "no database before the first start:\n{table}"
    );

    // A replica listed that does not answer: a warning naming it, the command still passes
    // (the site reaches a coordinator).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let path = f.agent_config_file(0);
    let original = std::fs::read_to_string(&path)?;
    let with_replica = original.replacen(
        "server_name =",
        &format!("replicas = [\"{}\"]\nserver_name =", silent.local_addr()?),
        1,
    );
    anyhow::ensure!(with_replica != original, "no server_name in {original}");
    std::fs::write(&path, &with_replica)?;
    let (ok, table) = f.agent_cli(0, &["doctor"])?;
    assert!(ok, "{table}");
    let reach = line(&table, "coordinator");
    assert!(
        reach.starts_with("WARN")
            && reach.contains("answers with mutual TLS")
            && reach.contains(&silent.local_addr()?.to_string()),
        "{table}"
    );
    std::fs::write(&path, &original)?;

    // Agent running: the doctor asks it, rather than opening a second link.
    f.start_agent(0, None)?;
    wait_for("agent connected", Duration::from_secs(30), || async {
        Ok(f.status(0).await?["clock_skew_ms"].is_i64())
    })
    .await?;
    let (ok, table) = f.agent_cli(0, &["doctor"])?;
    assert!(ok, "{table}");
    assert!(
        line(&table, "coordinator").contains("running agent"),
        "{table}"
    );
    assert!(line(&table, "database").starts_with("PASS"), "{table}");

    // No coordinator: the check fails and so does the command.
    f.kill_agent(0)?;
    f.kill_coordinator()?;
    let (ok, table) = f.agent_cli(0, &["doctor"])?;
    assert!(!ok, "{table}");
    assert!(line(&table, "coordinator").starts_with("FAIL"), "{table}");
    Ok(())
}
