//! The coordinator keeps time by the clock it is given: what it stamps at start and over the API
//! carries the injected clock's time, not the machine's.

use std::sync::Arc;

use modori_coordinator::pki::PkiPaths;
use modori_coordinator::Coordinator;
use modori_demo::local::{coordinator_config, ensure_pki};
use modori_runtime::clock::ManualClock;
use modori_tests::{config_key, configs_dir, http_request_as, real_fleet};

/// 2040-01-01T00:00:00Z: far from any clock a test machine has.
const START_MS: i64 = 2_208_988_800_000;
const DAY_MS: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_stamped_by_the_injected_clock() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let fleet = real_fleet();
    let pki = PkiPaths::new(dir.path().join("pki"));
    ensure_pki(&pki, &fleet.sites)?;
    let mut config = coordinator_config(
        &dir.path().join("coordinator"),
        &pki,
        "127.0.0.1:0".parse()?,
    );
    config.fleet.sites_file = configs_dir().join("sites.toml");
    config.fleet.stores_file = configs_dir().join("stores.toml");
    let (ops_key, entry) = config_key("ops");
    config.api_keys.push(entry);
    let clock = Arc::new(ManualClock::new(START_MS));
    let coordinator = Coordinator::start_with_clock(config, fleet, clock.clone()).await?;
    let addr = coordinator.http_addr();

    clock.set(START_MS + DAY_MS);
    let (status, body) = http_request_as(
        addr,
        Some(&ops_key),
        "POST",
        "/api/v1/keys",
        Some(r#"{"scope": "ops"}"#),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(created["created_at"], "2040-01-02T00:00:00.000Z", "{body}");

    let (status, body) = http_request_as(addr, Some(&ops_key), "GET", "/api/v1/keys", None).await?;
    assert_eq!(status, 200, "{body}");
    let keys: serde_json::Value = serde_json::from_str(&body)?;
    let configured = keys
        .as_array()
        .and_then(|k| k.iter().find(|k| k["source"] == "config"))
        .unwrap_or_else(|| panic!("no configured key in {body}"));
    assert_eq!(
        configured["created_at"], "2040-01-01T00:00:00.000Z",
        "{body}"
    );
    coordinator.shutdown().await;
    Ok(())
}
