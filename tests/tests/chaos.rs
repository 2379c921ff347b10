//! Process-level chaos, driven by a seed: real agent and coordinator binaries on loopback,
//! `kill -9` of either, partitions through the UDP proxy, SIGSTOP/SIGCONT, an agent database
//! put back from an older copy (a `modori-agent backup` copied over the file of a killed agent)
//! and `modori-agent restore`, and the same for the coordinator: `modori-coordinator restore`
//! of an older backup, and an older copy put back over a killed coordinator together with its
//! runs file, as a VM snapshot would. Afterwards the fleet converges, and every receipt
//! `ctl receive` confirmed is at the coordinator exactly once, each under its own plate.
//!
//! One side's disk going back is survived: the other still holds what it lost. Both going back
//! past the same receipt loses it, and no protocol can help, so putting one side back drops the
//! other side's copies taken before that moment.
//!
//! The seed is printed; `MODORI_CHAOS_SEED=<n>` replays the same sequence of faults.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use modori_shared::domain::Epoch;
use modori_tests::procs::{Binaries, ProcFleet};
use modori_tests::proxy::UdpProxy;
use modori_tests::{small_fleet, wait_for};

const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};
const N_SITES: usize = 2;
/// Rounds of receipts and one fault each; the whole test stays within its time budget on two
/// shared cores.
const ROUNDS: usize = 30;
const RECEIPTS_PER_ROUND_MAX: u64 = 4;
/// How long the test may take from the first fault to the last check.
const BUDGET: Duration = Duration::from_secs(180);
const TIMEOUT: Duration = Duration::from_secs(60);

/// splitmix64: a small, seedable generator, so a seed replays the same faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("MODORI_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?
        .success();
    anyhow::ensure!(ok, "kill {sig} {pid} failed");
    Ok(())
}

/// Removes the WAL and index of a stopped database and copies `from` over it.
fn copy_over(from: &Path, db: &Path) -> anyhow::Result<()> {
    for suffix in ["-wal", "-shm"] {
        let companion = modori_runtime::sqlite::companion(db, suffix);
        if companion.exists() {
            std::fs::remove_file(companion)?;
        }
    }
    std::fs::copy(from, db)?;
    Ok(())
}

struct Chaos {
    fleet: ProcFleet,
    proxies: Vec<UdpProxy>,
    rng: Rng,
    /// Every plate `ctl receive` confirmed, per site.
    confirmed: Vec<Vec<String>>,
    /// Per site, the backups taken so far.
    backups: Vec<Vec<PathBuf>>,
    /// The coordinator's backups so far, each with a copy of its runs file of that moment.
    coordinator_backups: Vec<(PathBuf, PathBuf)>,
    n_backups: usize,
    log: Vec<String>,
}

impl Chaos {
    async fn receipts(&mut self) -> anyhow::Result<()> {
        for i in 0..N_SITES {
            let n = self.rng.below(RECEIPTS_PER_ROUND_MAX + 1);
            for _ in 0..n {
                // A stopped agent confirms nothing; only what it confirmed counts.
                if self.fleet.agent_pid(i).is_none() {
                    break;
                }
                let lpn = self.fleet.receive(i, "TEE-WHT-M").await?;
                self.confirmed[i].push(lpn);
            }
        }
        Ok(())
    }

    /// Heals site `i`'s link and waits until everything it confirmed has been acknowledged:
    /// before its database goes back in time, so the part it loses holds nothing unsent.
    async fn synced(&self, i: usize) -> anyhow::Result<()> {
        self.proxies[i].heal();
        let fleet = &self.fleet;
        wait_for("site synced", TIMEOUT, || async move {
            let s = fleet.status(i).await?;
            Ok(s["connected"] == true && s["outbox_pending"] == 0 && s["retired_pending"] == 0)
        })
        .await
    }

    async fn backup(&mut self, i: usize) -> anyhow::Result<()> {
        self.n_backups += 1;
        let file = self
            .fleet
            .dir
            .path()
            .join(format!("site{i}-{}.backup.db", self.n_backups));
        let (ok, out) = self
            .fleet
            .agent_cli(i, &["backup", file.to_str().unwrap_or_default()])?;
        anyhow::ensure!(ok, "backup failed: {out}");
        self.backups[i].push(file);
        Ok(())
    }

    fn coordinator_backup(&mut self) -> anyhow::Result<()> {
        self.n_backups += 1;
        let dir = self.fleet.dir.path().to_owned();
        let file = dir.join(format!("coordinator-{}.backup.db", self.n_backups));
        let runs = dir.join(format!("coordinator-{}.backup.runs", self.n_backups));
        std::fs::copy(
            modori_coordinator::runs_path(&self.fleet.coordinator_db_path()),
            &runs,
        )?;
        let (ok, out) = self
            .fleet
            .coordinator_cli(&["backup", file.to_str().unwrap_or_default()])?;
        anyhow::ensure!(ok, "coordinator backup failed: {out}");
        // A copy of the file as it was, as a snapshot holds it (the backup command marks its
        // copy as one, which a put-back by hand would not carry).
        if let Some(run) = modori_runtime::generations::read(&runs)?.last() {
            let conn = rusqlite::Connection::open(&file)?;
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('run', ?1)",
                [run.0.to_string()],
            )?;
        }
        self.coordinator_backups.push((file, runs));
        Ok(())
    }

    async fn fault(&mut self, round: usize) -> anyhow::Result<()> {
        let i = self.rng.below(N_SITES as u64) as usize;
        let kind = self.rng.below(10);
        let done = match kind {
            0 => {
                self.fleet.kill_agent(i)?;
                self.fleet.start_agent(i, None)?;
                "kill -9 of the agent"
            }
            1 => {
                self.fleet.kill_coordinator()?;
                self.fleet.start_coordinator(None).await?;
                "kill -9 of the coordinator"
            }
            2 => {
                self.proxies[i].partition();
                self.receipts().await?;
                tokio::time::sleep(Duration::from_millis(300 + self.rng.below(1500))).await;
                self.proxies[i].heal();
                "partition"
            }
            3 => {
                let pid = self.fleet.agent_pid(i).expect("agents run between faults");
                signal(pid, "-STOP")?;
                tokio::time::sleep(Duration::from_millis(200 + self.rng.below(1500))).await;
                signal(pid, "-CONT")?;
                "SIGSTOP, SIGCONT of the agent"
            }
            4 => {
                self.backup(i).await?;
                "backup"
            }
            5 if !self.backups[i].is_empty() => {
                // An older copy put back by hand over a killed agent's files.
                let pick = self.rng.below(self.backups[i].len() as u64) as usize;
                let file = self.backups[i][pick].clone();
                self.synced(i).await?;
                self.fleet.kill_agent(i)?;
                copy_over(&file, &self.fleet.agent_db_path(i))?;
                self.fleet.start_agent(i, None)?;
                self.coordinator_backups.clear();
                "an older backup copied over the killed agent's database"
            }
            6 if !self.backups[i].is_empty() => {
                let pick = self.rng.below(self.backups[i].len() as u64) as usize;
                let file = self.backups[i][pick].clone();
                self.synced(i).await?;
                self.fleet.terminate_agent(i, TIMEOUT).await?;
                let (ok, out) = self
                    .fleet
                    .agent_cli(i, &["restore", file.to_str().unwrap_or_default()])?;
                anyhow::ensure!(ok, "restore failed: {out}");
                self.fleet.start_agent(i, None)?;
                self.coordinator_backups.clear();
                "restore of an older backup"
            }
            7 => {
                self.coordinator_backup()?;
                "backup of the coordinator"
            }
            8 if !self.coordinator_backups.is_empty() => {
                let pick = self.rng.below(self.coordinator_backups.len() as u64) as usize;
                let (file, _) = self.coordinator_backups[pick].clone();
                self.fleet.terminate_coordinator(TIMEOUT).await?;
                let (ok, out) = self
                    .fleet
                    .coordinator_cli(&["restore", file.to_str().unwrap_or_default()])?;
                anyhow::ensure!(ok, "coordinator restore failed: {out}");
                self.fleet.start_coordinator(None).await?;
                self.backups.iter_mut().for_each(Vec::clear);
                "restore of an older coordinator backup"
            }
            9 if !self.coordinator_backups.is_empty() => {
                // Database and runs file together: nothing on the disk tells it went back.
                let pick = self.rng.below(self.coordinator_backups.len() as u64) as usize;
                let (file, runs) = self.coordinator_backups[pick].clone();
                self.fleet.kill_coordinator()?;
                let db = self.fleet.coordinator_db_path();
                copy_over(&file, &db)?;
                std::fs::copy(&runs, modori_coordinator::runs_path(&db))?;
                self.fleet.start_coordinator(None).await?;
                self.backups.iter_mut().for_each(Vec::clear);
                "an older copy put back over the killed coordinator with its runs file"
            }
            _ => {
                self.backup(i).await?;
                "backup"
            }
        };
        self.log.push(format!("round {round}: {done} at site {i}"));
        Ok(())
    }

    /// Every confirmed plate at the coordinator once, none twice, and nothing else of ours.
    fn check(&self) -> anyhow::Result<()> {
        let conn = rusqlite::Connection::open_with_flags(
            self.fleet.coordinator_db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut all = BTreeSet::new();
        for (i, lpns) in self.confirmed.iter().enumerate() {
            let site = self.fleet.sites[i].id.as_str();
            for lpn in lpns {
                anyhow::ensure!(all.insert(lpn.clone()), "plate {lpn} confirmed twice");
                let n: i64 = conn.query_row(
                    "SELECT COUNT(*) FROM units WHERE lpn = ?1 AND site = ?2",
                    [lpn.as_str(), site],
                    |r| r.get(0),
                )?;
                anyhow::ensure!(
                    n == 1,
                    "plate {lpn} of {site} is at the coordinator {n} times"
                );
            }
            let n_units: i64 =
                conn.query_row("SELECT COUNT(*) FROM units WHERE site = ?1", [site], |r| {
                    r.get(0)
                })?;
            anyhow::ensure!(
                n_units as usize == lpns.len(),
                "{site}: {n_units} units at the coordinator, {} confirmed",
                lpns.len()
            );
            let n_dup: i64 = conn.query_row(
                "SELECT COUNT(*) FROM anomalies WHERE site = ?1
                 AND kind NOT IN ('database_rewound', 'coordinator_rewound')",
                [site],
                |r| r.get(0),
            )?;
            anyhow::ensure!(n_dup == 0, "{site}: {n_dup} anomalies other than rollbacks");
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_receipt_arrives_once_through_kills_partitions_and_rollbacks(
) -> anyhow::Result<()> {
    let seed = seed();
    println!("chaos seed {seed} (replay with MODORI_CHAOS_SEED={seed})");
    let mut fleet = ProcFleet::with_sites(BINS, small_fleet(N_SITES).sites, Vec::new())?;
    let mut proxies = Vec::new();
    for i in 0..N_SITES {
        let proxy = UdpProxy::start(fleet.quic_addr()).await?;
        let path = fleet.agent_config_file(i);
        let text = std::fs::read_to_string(&path)?;
        let pointed = text.replace(
            &format!("\"{}\"", fleet.quic_addr()),
            &format!("\"{}\"", proxy.addr()),
        );
        anyhow::ensure!(pointed != text, "the agent config names the coordinator");
        std::fs::write(&path, pointed)?;
        proxies.push(proxy);
    }
    fleet.start_coordinator(None).await?;
    for i in 0..N_SITES {
        fleet.start_agent(i, None)?;
    }
    let mut chaos = Chaos {
        fleet,
        proxies,
        rng: Rng(seed),
        confirmed: vec![Vec::new(); N_SITES],
        backups: vec![Vec::new(); N_SITES],
        coordinator_backups: Vec::new(),
        n_backups: 0,
        log: Vec::new(),
    };
    let started = Instant::now();
    let result = run(&mut chaos, started).await;
    if result.is_err() {
        eprintln!("chaos seed {seed}; faults:\n{}", chaos.log.join("\n"));
        eprintln!("{}", chaos.fleet.logs());
    }
    result?;
    println!("faults:\n{}", chaos.log.join("\n"));
    // Not a timing assertion: the budget keeps a stuck fleet from hanging CI.
    println!(
        "chaos seed {seed}: {} rounds, {} receipts, {:?}",
        ROUNDS,
        chaos.confirmed.iter().map(Vec::len).sum::<usize>(),
        started.elapsed()
    );
    Ok(())
}

async fn run(chaos: &mut Chaos, started: Instant) -> anyhow::Result<()> {
    for round in 0..ROUNDS {
        anyhow::ensure!(
            started.elapsed() < BUDGET,
            "over the time budget at round {round}"
        );
        chaos.receipts().await?;
        chaos.fault(round).await?;
    }
    chaos.receipts().await?;
    for i in 0..N_SITES {
        chaos.synced(i).await?;
    }
    chaos.check()?;
    // Each agent's epochs file names the epoch its database runs under last.
    for i in 0..N_SITES {
        let epochs = modori_runtime::generations::read(&modori_runtime::generations::path_for(
            &chaos.fleet.agent_db_path(i),
        ))?;
        let status = chaos.fleet.status(i).await?;
        let last: Option<Epoch> = epochs.last().copied();
        anyhow::ensure!(
            last.map(|e| e.to_string()) == status["epoch"].as_str().map(str::to_owned),
            "site {i}: epochs file ends {last:?}, database runs {}",
            status["epoch"]
        );
    }
    Ok(())
}
