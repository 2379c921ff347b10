//! The main command: the demo runs the coordinator and nine sites, moves returns through them,
//! stops by itself, and a second run reuses its data dir and says so.

use std::process::Command;

const COORDINATOR: &str = env!("CARGO_BIN_EXE_modori-coordinator-under-test");

fn demo(dir: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(COORDINATOR)
        .args([
            "demo",
            "--http",
            "127.0.0.1:0",
            "--duration-seconds",
            "4",
            "--returns-per-second",
            "10",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the demo runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_demo_runs_twice_and_says_what_it_did_with_its_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let (ok, first) = demo(&dir, &[]);
    assert!(ok, "{first}");
    assert!(first.contains("Creating data dir"), "{first}");
    assert!(first.contains("9 sites running"), "{first}");
    assert!(first.contains("/api/v1/sites"), "{first}");
    assert!(first.contains("Registered"), "{first}");
    for site in ["sapporo", "osaka", "fukuoka"] {
        assert!(
            dir.join("sites").join(site).join("agent.db").exists(),
            "{site}"
        );
    }
    let (ok, second) = demo(&dir, &[]);
    assert!(ok, "{second}");
    assert!(second.contains("Reusing data dir"), "{second}");
    let (ok, third) = demo(&dir, &["--reset"]);
    assert!(ok, "{third}");
    assert!(third.contains("Reset data dir"), "{third}");
}
