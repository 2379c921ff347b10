//! systemd integration: the units pass `systemd-analyze verify`; the agent says READY=1 as soon
//! as its database is open (with no coordinator anywhere), pings the watchdog while its database
//! thread answers, and stops pinging when that thread is wedged.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use modori_tests::configs_dir;

const AGENT: &str = env!("CARGO_BIN_EXE_modori-agent-under-test");

#[test]
fn units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    for unit in ["modori-agent.service", "modori-coordinator.service"] {
        // Point ExecStart at a binary that exists here; everything else is verified as shipped.
        let text = std::fs::read_to_string(root.join(unit)).expect("unit file");
        let text = text
            .replace("/usr/local/bin/modori-agent", AGENT)
            .replace("/usr/local/bin/modori-coordinator", AGENT);
        std::fs::write(dir.path().join(unit), text).expect("write");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.path().join(unit))
            .output()
            .expect("systemd-analyze runs (scripts/test.sh installs it)");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.trim().is_empty(),
            "{unit}: {text}"
        );
        let shipped = std::fs::read_to_string(root.join(unit)).expect("unit file");
        for needle in [
            "Type=notify",
            "WatchdogSec=",
            "Restart=on-failure",
            "ProtectSystem=strict",
            "NoNewPrivileges=true",
        ] {
            assert!(shipped.contains(needle), "{unit} lacks {needle}");
        }
    }
}

/// Runs the agent under a fake `NOTIFY_SOCKET` (no coordinator is running) and collects what
/// it tells systemd for `listen`.
fn notifications(watchdog_usec: u64, failpoints: Option<&str>, listen: Duration) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let pki = modori_coordinator::pki::PkiPaths::new(dir.path().join("pki"));
    modori_demo::local::ensure_pki(&pki, &modori_tests::real_fleet().sites).expect("pki");
    let site = modori_shared::domain::SiteId::new("osaka").expect("site id");
    let config = std::fs::read_to_string(configs_dir().join("sites/osaka.toml"))
        .expect("config")
        .replace(
            "/etc/modori/pki/ca.pem",
            &pki.ca_cert().display().to_string(),
        )
        .replace(
            "/etc/modori/pki/site.pem",
            &pki.site_cert(&site).display().to_string(),
        )
        .replace(
            "/etc/modori/pki/site.key",
            &pki.site_key(&site).display().to_string(),
        )
        .replace(
            "/var/lib/modori-agent",
            &dir.path().join("data").display().to_string(),
        )
        .replace(
            "/run/modori-agent/ctl.sock",
            &dir.path().join("ctl.sock").display().to_string(),
        )
        .replace("listen = \"127.0.0.1:9464\"", "listen = \"127.0.0.1:0\"");
    let config_path = dir.path().join("agent.toml");
    std::fs::write(&config_path, config).expect("write");
    let mut cmd = Command::new(AGENT);
    cmd.arg("--config")
        .arg(&config_path)
        .arg("run")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", watchdog_usec.to_string())
        .env_remove("WATCHDOG_PID")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match failpoints {
        Some(fp) => cmd.env("FAILPOINTS", fp),
        None => cmd.env_remove("FAILPOINTS"),
    };
    let mut child = cmd.spawn().expect("agent starts");
    let mut seen = Vec::new();
    let deadline = Instant::now() + listen;
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            seen.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

#[test]
fn ready_once_the_database_is_open_and_watchdog_pings_while_it_answers() {
    let seen = notifications(400_000, None, Duration::from_secs(3));
    assert_eq!(
        seen.iter().filter(|l| *l == "READY=1").count(),
        1,
        "{seen:?}"
    );
    let pings = seen.iter().filter(|l| *l == "WATCHDOG=1").count();
    assert!(pings >= 3, "expected pings every 200 ms, saw {seen:?}");
}

#[test]
fn a_wedged_database_thread_stops_the_watchdog() {
    // The probe's job sleeps inside the database thread: the thread is stuck.
    let seen = notifications(
        400_000,
        Some("agent-db-probe=sleep(60000)"),
        Duration::from_secs(3),
    );
    assert!(seen.iter().any(|l| l == "READY=1"), "{seen:?}");
    assert!(!seen.iter().any(|l| l == "WATCHDOG=1"), "{seen:?}");
}
