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

/// The demo's keys file: exactly `{"ops", "merchant": {"id", "key"}, "store": {"id", "key"}}`,
/// mode 0600, its path printed.
fn demo_keys(dir: &std::path::Path, output: &str) -> serde_json::Value {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("demo-keys.json");
    assert!(output.contains(&path.display().to_string()), "{output}");
    let mode = std::fs::metadata(&path)
        .expect("demo-keys.json")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
    let is_key = |v: &serde_json::Value| v.as_str().is_some_and(|k| k.starts_with("modori_"));
    let shape = keys.as_object().map(|o| {
        let mut k: Vec<String> = o.keys().cloned().collect();
        k.sort();
        k
    });
    assert_eq!(
        shape,
        Some(vec!["merchant".into(), "ops".into(), "store".into()]),
        "{keys}"
    );
    assert!(is_key(&keys["ops"]), "{keys}");
    for scope in ["merchant", "store"] {
        let fields = keys[scope].as_object().map(|o| o.len());
        assert_eq!(fields, Some(2), "{keys}");
        assert!(
            keys[scope]["id"].is_string() && is_key(&keys[scope]["key"]),
            "{keys}"
        );
    }
    assert_eq!(keys["merchant"]["id"], "demo-brand");
    keys
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
    // The simulated printers keep what they printed, for a person or a test to render.
    let printed = std::fs::read_dir(dir.join("sites"))
        .expect("sites folder")
        .filter_map(Result::ok)
        .filter_map(|site| std::fs::read_to_string(site.path().join("printed").join("1.zpl")).ok())
        .collect::<Vec<_>>();
    assert!(
        !printed.is_empty()
            && printed
                .iter()
                .all(|z| z.starts_with("^XA") && z.ends_with("^XZ")),
        "labels in sites/<site>/printed/: {printed:?}"
    );
    let first_keys = demo_keys(&dir, &first);
    let (ok, second) = demo(&dir, &[]);
    assert!(ok, "{second}");
    assert!(second.contains("Reusing data dir"), "{second}");
    assert_ne!(
        first_keys,
        demo_keys(&dir, &second),
        "each run makes new keys"
    );
    let (ok, third) = demo(&dir, &["--reset"]);
    assert!(ok, "{third}");
    assert!(third.contains("Reset data dir"), "{third}");
}
