//! `modori-agent check-config` with environment overrides, as an operator runs it.

use std::path::Path;
use std::process::Command;

fn osaka() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/sites/osaka.toml")
}

fn check(envs: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modori-agent"))
        .args([
            "--config",
            osaka().to_str().expect("utf-8 path"),
            "check-config",
        ])
        .envs(envs.iter().copied())
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn valid_config_passes() {
    let (ok, text) = check(&[]);
    assert!(ok, "{text}");
    assert!(text.contains("valid"), "{text}");
}

#[test]
fn environment_override_is_applied_and_validated() {
    let (ok, text) = check(&[("MODORI_AGENT_SYNC__BATCH_OPS_MAX", "256")]);
    assert!(ok, "{text}");
    // An override that breaks validation is refused like a bad file value.
    let (ok, text) = check(&[("MODORI_AGENT_SYNC__BATCH_OPS_MAX", "0")]);
    assert!(!ok, "{text}");
    assert!(text.contains("sync.batch_ops_max"), "{text}");
}

#[test]
fn stray_environment_variable_is_named() {
    let (ok, text) = check(&[("MODORI_AGENT_SYNC__BATCH_OPS_MAXX", "1")]);
    assert!(!ok, "{text}");
    assert!(text.contains("MODORI_AGENT_SYNC__BATCH_OPS_MAXX"), "{text}");
    assert!(text.contains("batch_ops_maxx"), "{text}");
}

#[test]
fn the_config_path_variable_is_not_an_override() {
    let out = Command::new(env!("CARGO_BIN_EXE_modori-agent"))
        .arg("check-config")
        .env("MODORI_AGENT_CONFIG", osaka())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_check_config_flag_validates_without_starting() {
    let out = Command::new(env!("CARGO_BIN_EXE_modori-agent"))
        .args(["--check-config", "--config"])
        .arg(osaka())
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("valid"), "{text}");
}
