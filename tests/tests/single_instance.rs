//! One process per data dir, with real processes: a second agent or coordinator on the same
//! files refuses at once, naming the lock file and the holder's pid, and the first keeps its
//! `ctl` socket and its link; an offline restore refuses while the service runs; a holder killed
//! with `kill -9` leaves nothing that blocks the next start.

use std::process::Command;
use std::time::{Duration, Instant};

use modori_tests::procs::{Binaries, ProcFleet};
use modori_tests::{real_fleet, wait_for};

const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};
/// Generous: CI runs these beside other tests on two cores.
const TIMEOUT: Duration = Duration::from_secs(60);
/// "At once": a refused second instance exits well before any network timeout.
const REFUSAL_MAX: Duration = Duration::from_secs(10);

fn one_site_fleet() -> anyhow::Result<ProcFleet> {
    let site = real_fleet().sites[0].clone();
    ProcFleet::with_sites(BINS, vec![site], Vec::new())
}

async fn connected(f: &ProcFleet) -> anyhow::Result<()> {
    wait_for("site 0 connected", TIMEOUT, || async move {
        Ok(f.status(0).await?["connected"] == true)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_data_dir_refuses_and_the_first_keeps_working(
) -> anyhow::Result<()> {
    let mut f = one_site_fleet()?;
    f.start_coordinator(None).await?;
    f.start_agent(0, None)?;
    connected(&f).await?;
    let pid = f.agent_pid(0).expect("agent runs");
    let lock = f.agent_db_path(0).with_file_name("agent.lock");

    let started = Instant::now();
    let (ok, out) = f.agent_cli(0, &["run"])?;
    assert!(!ok, "a second agent ran: {out}");
    assert!(
        started.elapsed() < REFUSAL_MAX,
        "refused only after {:?}",
        started.elapsed()
    );
    assert!(
        out.contains(&lock.display().to_string()),
        "lock file not named: {out}"
    );
    assert!(
        out.contains(&format!("pid {pid}")),
        "holder pid {pid} not named: {out}"
    );

    // Restoring under the running agent would replace its database: refused the same way.
    let backup = f.dir.path().join("site0.backup");
    let backup = backup.to_str().expect("utf-8 path");
    let (ok, out) = f.agent_cli(0, &["backup", backup])?;
    assert!(ok, "a backup runs beside the agent: {out}");
    let (ok, out) = f.agent_cli(0, &["restore", backup])?;
    assert!(!ok, "restore ran under a live agent: {out}");
    assert!(out.contains(&format!("pid {pid}")), "{out}");

    // The first one still answers on its socket and still syncs.
    let (ok, out) = f.agent_cli(0, &["ctl", "status"])?;
    assert!(
        ok,
        "ctl after the refused second agent: {out}\n{}",
        f.logs()
    );
    f.receive(0, "TEE-WHT-M").await?;
    wait_for("the receipt synced", TIMEOUT, || async {
        Ok(f.status(0).await?["outbox_pending"] == 0)
    })
    .await?;
    assert_eq!(f.agent_pid(0), Some(pid));

    // kill -9 leaves the lock file behind, but not the lock.
    f.kill_agent(0)?;
    assert!(lock.exists());
    f.start_agent(0, None)?;
    connected(&f).await?;
    let held = std::fs::read_to_string(&lock)?;
    assert_eq!(held.trim(), f.agent_pid(0).expect("runs").to_string());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_coordinator_on_the_same_data_dir_refuses() -> anyhow::Result<()> {
    let mut f = one_site_fleet()?;
    f.start_coordinator(None).await?;
    let pid = f.coordinator_pid().expect("coordinator runs");
    let config = f.dir.path().join("coordinator.toml");
    let lock = f.coordinator_db_path().with_file_name("coordinator.lock");
    let coordinator = |args: &[&str]| -> anyhow::Result<(bool, String)> {
        let out = Command::new(BINS.coordinator)
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_remove("FAILPOINTS")
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    };

    let started = Instant::now();
    let (ok, out) = coordinator(&["run"])?;
    assert!(!ok, "a second coordinator ran: {out}");
    assert!(
        started.elapsed() < REFUSAL_MAX,
        "refused only after {:?}",
        started.elapsed()
    );
    assert!(
        out.contains(&lock.display().to_string()),
        "lock file not named: {out}"
    );
    assert!(
        out.contains(&format!("pid {pid}")),
        "holder pid {pid} not named: {out}"
    );

    let backup = f.dir.path().join("coordinator.backup");
    let backup = backup.to_str().expect("utf-8 path");
    let (ok, out) = coordinator(&["backup", backup])?;
    assert!(ok, "a backup runs beside the coordinator: {out}");
    let (ok, out) = coordinator(&["restore", backup])?;
    assert!(!ok, "restore ran under a live coordinator: {out}");
    assert!(out.contains(&format!("pid {pid}")), "{out}");

    // The first still serves, and its agents still connect.
    f.start_agent(0, None)?;
    connected(&f).await?;
    assert_eq!(f.coordinator_pid(), Some(pid));
    Ok(())
}
