//! Properties of the workspace itself: one crypto provider, and configs that load.

use std::path::Path;
use std::process::Command;

use modori_agent::config::AgentConfig;
use modori_coordinator::config::CoordinatorConfig;
use modori_tests::{configs_dir, real_fleet};

#[test]
fn aws_lc_is_never_built() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--workspace",
            "--offline",
            "-e",
            "all",
            "-i",
            "aws-lc-sys",
        ])
        .current_dir(&root)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // cargo tree -i fails with "did not match any packages" when the crate is absent.
    assert!(
        stdout.trim().is_empty(),
        "aws-lc-sys is in the tree:\n{stdout}"
    );
    assert!(
        stderr.contains("did not match any packages"),
        "unexpected cargo output: {stderr}"
    );
}

#[test]
fn every_config_in_configs_loads_and_agrees_with_the_fleet() {
    let dir = configs_dir();
    let fleet = real_fleet();
    assert_eq!(fleet.sites.len(), 9);
    assert!(fleet.stores.len() >= 30, "{} stores", fleet.stores.len());
    CoordinatorConfig::load(&dir.join("coordinator.toml")).expect("coordinator.toml");
    let mut n = 0;
    for entry in std::fs::read_dir(dir.join("sites")).expect("configs/sites") {
        let path = entry.expect("dir entry").path();
        let config = AgentConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let site = config.site_def().expect("valid site");
        let known = fleet
            .site(&site.id)
            .unwrap_or_else(|| panic!("{} not in sites.toml", site.id));
        assert_eq!(&site, known, "{} disagrees with sites.toml", path.display());
        assert_eq!(
            path.file_stem().and_then(|s| s.to_str()),
            Some(site.id.as_str())
        );
        n += 1;
    }
    assert_eq!(n, 9);
}

/// Each shipped site config shows the technician a real floor (receiving, grading and putaway
/// stations with their scanners and printers at stable paths), commented out so the demo and
/// these tests run without the devices; uncommented, it loads and validates.
#[test]
fn every_site_config_carries_a_floor_that_loads_when_uncommented() {
    let is_setting = |l: &str| {
        l.starts_with("# [[")
            || ["name", "path", "type", "id", "kind", "scanner", "printer"]
                .iter()
                .any(|k| l.starts_with(&format!("# {k} = ")))
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(configs_dir().join("sites")).expect("configs/sites") {
        let path = entry.expect("dir entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let shipped = AgentConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            shipped.stations.is_empty(),
            "{}: shipped commented",
            path.display()
        );
        let uncommented: String = text
            .lines()
            .map(|l| if is_setting(l) { &l[2..] } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        let floor = dir.path().join(path.file_name().expect("file name"));
        std::fs::write(&floor, uncommented).expect("write");
        let config = AgentConfig::load(&floor).unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<String> = config
            .stations
            .iter()
            .map(|s| format!("{:?}", s.kind))
            .collect();
        assert_eq!(
            kinds,
            ["Receiving", "Grading", "Putaway"],
            "{}",
            path.display()
        );
        assert!(config.stations.iter().all(|s| s.printer.is_some()));
        let paths = config
            .scanners
            .iter()
            .map(|d| &d.path)
            .chain(config.printers.iter().map(|p| &p.path));
        for device in paths {
            assert!(
                device.starts_with("/dev/serial/by-id/"),
                "{}: {}",
                path.display(),
                device.display()
            );
        }
    }
}

#[test]
fn misspelt_key_fails_naming_the_file_and_the_key() {
    let text =
        std::fs::read_to_string(configs_dir().join("sites").join("osaka.toml")).expect("read");
    let bad = text.replace("batch_ops_max", "batch_op_max");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("osaka.toml");
    std::fs::write(&path, bad).expect("write");
    let err = AgentConfig::load(&path)
        .expect_err("misspelt key refused")
        .to_string();
    assert!(err.contains("batch_op_max"), "{err}");
    assert!(err.contains("sync"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");

    let coord = std::fs::read_to_string(configs_dir().join("coordinator.toml")).expect("read");
    let path = dir.path().join("coordinator.toml");
    std::fs::write(
        &path,
        coord.replace("[http]\n", "[http]\nlisten_port = 1\n"),
    )
    .expect("write");
    let err = CoordinatorConfig::load(&path)
        .expect_err("unknown key refused")
        .to_string();
    assert!(err.contains("listen_port") && err.contains("http"), "{err}");
}

#[test]
fn invalid_value_is_named() {
    let text =
        std::fs::read_to_string(configs_dir().join("sites").join("sendai.toml")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sendai.toml");
    std::fs::write(
        &path,
        text.replace(
            "keepalive_interval_seconds = 10",
            "keepalive_interval_seconds = 60",
        ),
    )
    .expect("write");
    let err = AgentConfig::load(&path)
        .expect_err("keep-alive above idle timeout")
        .to_string();
    assert!(err.contains("sync.keepalive_interval_seconds"), "{err}");
    std::fs::write(&path, text.replace("id = \"sendai\"", "id = \"Sendai\"")).expect("write");
    let err = AgentConfig::load(&path)
        .expect_err("bad site id")
        .to_string();
    assert!(err.contains("site") && err.contains("'S'"), "{err}");

    // Replicas: tried after `address`, of its family, none twice, a handful at most.
    let with_replicas = |list: &str| {
        text.replace(
            "server_name = \"localhost\"",
            &format!("replicas = {list}\nserver_name = \"localhost\""),
        )
    };
    std::fs::write(
        &path,
        with_replicas(r#"["127.0.0.1:4434", "127.0.0.1:4435"]"#),
    )
    .expect("write");
    let loaded = AgentConfig::load(&path).expect("replicas load");
    assert_eq!(
        loaded
            .coordinator
            .addresses()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["127.0.0.1:4433", "127.0.0.1:4434", "127.0.0.1:4435"]
    );
    for (list, key, words) in [
        (
            r#"["[::1]:4434"]"#,
            "coordinator.replicas[0]",
            "same family",
        ),
        (
            r#"["127.0.0.1:4434", "127.0.0.1:4433"]"#,
            "coordinator.replicas[1]",
            "listed twice",
        ),
        (
            r#"["not an address"]"#,
            "replicas",
            "invalid socket address",
        ),
    ] {
        std::fs::write(&path, with_replicas(list)).expect("write");
        let err = AgentConfig::load(&path).expect_err(list).to_string();
        assert!(err.contains(key) && err.contains(words), "{list}: {err}");
    }
    let many: Vec<String> = (0..17)
        .map(|i| format!("\"127.0.0.1:{}\"", 5000 + i))
        .collect();
    std::fs::write(&path, with_replicas(&format!("[{}]", many.join(", ")))).expect("write");
    let err = AgentConfig::load(&path)
        .expect_err("17 replicas")
        .to_string();
    assert!(
        err.contains("coordinator.replicas") && err.contains("at most 16"),
        "{err}"
    );

    let coord = std::fs::read_to_string(configs_dir().join("coordinator.toml")).expect("read");
    let path = dir.path().join("coordinator.toml");
    std::fs::write(
        &path,
        coord.replace("disposition = \"recycle\"", "disposition = \"burn\""),
    )
    .expect("write");
    let err = CoordinatorConfig::load(&path)
        .expect_err("unknown disposition")
        .to_string();
    assert!(
        err.contains("disposition_rules[4].disposition") && err.contains("burn"),
        "{err}"
    );
}

/// The sites ping; the coordinator pings only when its config asks it to, and a ping interval
/// that would let the link time out between pings is refused by name.
#[test]
fn the_coordinator_pings_only_when_configured() {
    let coord = std::fs::read_to_string(configs_dir().join("coordinator.toml")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coordinator.toml");
    let shipped = CoordinatorConfig::load(&configs_dir().join("coordinator.toml")).expect("load");
    assert_eq!(shipped.sync.timing().keepalive_interval, None);
    let agent = AgentConfig::load(&configs_dir().join("sites").join("sendai.toml")).expect("load");
    assert_eq!(
        agent.sync.timing().keepalive_interval,
        Some(std::time::Duration::from_secs(10))
    );

    let with = |seconds: u64| {
        coord.replace(
            "idle_timeout_seconds = 30",
            &format!("keepalive_interval_seconds = {seconds}\nidle_timeout_seconds = 30"),
        )
    };
    std::fs::write(&path, with(10)).expect("write");
    let set = CoordinatorConfig::load(&path).expect("load");
    assert_eq!(
        set.sync.timing().keepalive_interval,
        Some(std::time::Duration::from_secs(10))
    );
    for bad in [0, 30, 60] {
        std::fs::write(&path, with(bad)).expect("write");
        let err = CoordinatorConfig::load(&path)
            .expect_err("keep-alive not below the idle timeout")
            .to_string();
        assert!(
            err.contains("sync.keepalive_interval_seconds"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn the_coordinator_checks_its_config_without_starting() {
    let bin = env!("CARGO_BIN_EXE_modori-coordinator-under-test");
    let good = configs_dir().join("coordinator.toml");
    let out = Command::new(bin)
        .args(["run", "--check-config", "--config"])
        .arg(&good)
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("9 sites"), "{text}");

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("coordinator.toml");
    let text = std::fs::read_to_string(&good)
        .expect("read")
        .replace("[quic]", "[quic]\nlisten_addr = 1");
    std::fs::write(&bad, text).expect("write");
    let out = Command::new(bin)
        .args(["run", "--check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("listen_addr") && text.contains("quic"),
        "{text}"
    );
}

#[test]
fn api_keys_and_returns_in_the_config_are_checked_naming_the_key() {
    let coord = std::fs::read_to_string(configs_dir().join("coordinator.toml")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coordinator.toml");
    let hash = "ab".repeat(32);
    let load = |extra: &str| {
        std::fs::write(&path, format!("{coord}\n{extra}")).expect("write");
        CoordinatorConfig::load(&path)
    };
    let good = format!("[[api_keys]]\nscope = \"merchant:brand-a\"\nsha256 = \"{hash}\"\n");
    let config = load(&good).expect("a configured key");
    assert_eq!(config.api_keys.len(), 1);
    for (extra, needles) in [
        (
            format!("[[api_keys]]\nscope = \"ops\"\nsha256 = \"{hash}\"\nsecret = \"x\"\n"),
            vec!["api_keys[0]", "secret"],
        ),
        (
            "[[api_keys]]\nscope = \"ops\"\nsha256 = \"abc\"\n".to_owned(),
            vec!["api_keys[0].sha256"],
        ),
        (
            format!(
                "{good}[[api_keys]]\nscope = \"root\"\nsha256 = \"{}\"\n",
                "cd".repeat(32)
            ),
            vec!["api_keys[1].scope", "root"],
        ),
        (format!("{good}{good}"), vec!["api_keys[1].sha256", "twice"]),
    ] {
        let err = load(&extra).expect_err(&extra).to_string();
        for needle in needles {
            assert!(err.contains(needle), "{extra}: {err}");
        }
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
    for (value, needles) in [
        ("expire_after_days = 0", vec!["returns.expire_after_days"]),
        ("expire_after_day = 3", vec!["returns", "expire_after_day"]),
    ] {
        std::fs::write(&path, coord.replace("expire_after_days = 30", value)).expect("write");
        let err = CoordinatorConfig::load(&path).expect_err(value).to_string();
        for needle in needles {
            assert!(err.contains(needle), "{value}: {err}");
        }
    }
    // A store key for a store the fleet does not have: refused by check-config.
    let unknown_store =
        format!("{coord}\n[[api_keys]]\nscope = \"store:st-nowhere\"\nsha256 = \"{hash}\"\n")
            .replace(
                "sites_file = \"sites.toml\"",
                &format!("sites_file = {:?}", configs_dir().join("sites.toml")),
            )
            .replace(
                "stores_file = \"stores.toml\"",
                &format!("stores_file = {:?}", configs_dir().join("stores.toml")),
            );
    std::fs::write(&path, unknown_store).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_modori-coordinator-under-test"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("api_keys[0].scope") && text.contains("st-nowhere"),
        "{text}"
    );
}

#[test]
fn alert_thresholds_are_checked_naming_the_key() {
    let coord = std::fs::read_to_string(configs_dir().join("coordinator.toml")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coordinator.toml");
    std::fs::write(&path, &coord).expect("write");
    let config = CoordinatorConfig::load(&path).expect("the example loads");
    assert_eq!(config.alerts, Default::default());
    for (from, to, needles) in [
        (
            "offline_minutes = 5",
            "offline_minutes = 0",
            vec!["alerts.offline_minutes"],
        ),
        (
            "abuse_score_min = 60",
            "abuse_score_min = 101",
            vec!["alerts.abuse_score_min"],
        ),
        ("lag_ops = 1000", "lag_ops = 0", vec!["alerts.lag_ops"]),
        (
            "lag_ops = 1000",
            "lag_ops_max = 3",
            vec!["alerts", "lag_ops_max"],
        ),
    ] {
        std::fs::write(&path, coord.replace(from, to)).expect("write");
        let err = CoordinatorConfig::load(&path).expect_err(to).to_string();
        for needle in needles {
            assert!(err.contains(needle), "{to}: {err}");
        }
    }
}
