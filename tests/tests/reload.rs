//! Revocation and configured API keys reloaded without a restart: the operator edits the
//! coordinator's config and sends SIGHUP; the revoked site is cut off and refused at the
//! handshake, the others carry on; a broken edit is refused and the running list is kept; a
//! key added to `[[api_keys]]` is accepted, one taken out refused.

use std::time::Duration;

use modori_tests::procs::{Binaries, ProcFleet};
use modori_tests::wait_for;

const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};
const TIMEOUT: Duration = Duration::from_secs(60);

async fn connected(f: &ProcFleet, i: usize) -> anyhow::Result<bool> {
    Ok(f.status(i).await?["connected"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_revocation_list() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_coordinator(None).await?;
    f.start_agent(0, None)?;
    f.start_agent(1, None)?;
    for i in 0..2 {
        wait_for("agents online", TIMEOUT, || connected(&f, i)).await?;
    }
    let revoked = f.sites[0].id.to_string();
    f.edit_coordinator_config(|c| c.tls.revoked_sites = vec![revoked])?;
    f.sighup_coordinator()?;
    wait_for("site 0 cut off", TIMEOUT, || async {
        Ok(!connected(&f, 0).await?)
    })
    .await?;
    f.receive(0, "TEE-BLK-L").await?;
    f.receive(1, "TEE-BLK-L").await?;
    wait_for("site 1 synced", TIMEOUT, || async {
        Ok(f.coordinator_count("SELECT COUNT(*) FROM ops WHERE site = ?1", 1)? == 1)
    })
    .await?;
    let status = f.status(0).await?;
    assert_eq!(status["connected"], false, "{status}");
    assert_eq!(status["outbox_pending"], 1, "{status}");
    assert!(status["last_error"].is_string(), "{status}");

    // A broken edit is reported and ignored: site 0 stays revoked.
    let path = f.dir.path().join("coordinator.toml");
    let good = std::fs::read_to_string(&path)?;
    std::fs::write(&path, good.replace("[tls]", "[tls]\nrevoked_sitez = []"))?;
    f.sighup_coordinator()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(f.status(0).await?["connected"], false);

    std::fs::write(&path, good)?;
    f.edit_coordinator_config(|c| c.tls.revoked_sites.clear())?;
    f.sighup_coordinator()?;
    wait_for("site 0 back and synced", TIMEOUT, || async {
        Ok(connected(&f, 0).await? && f.status(0).await?["outbox_pending"] == 0)
    })
    .await?;
    assert_eq!(
        f.coordinator_count("SELECT COUNT(*) FROM ops WHERE site = ?1", 0)?,
        1
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_configured_api_keys() -> anyhow::Result<()> {
    let mut f = ProcFleet::new(BINS)?;
    f.start_coordinator(None).await?;
    let sites = |key: String| {
        let http = f.http;
        async move {
            let (status, _) =
                modori_tests::http_request_as(http, Some(&key), "GET", "/api/v1/sites", None)
                    .await?;
            anyhow::Ok(status)
        }
    };
    let (new_key, entry) = modori_tests::config_key("ops");
    assert_eq!(sites(new_key.clone()).await?, 401);
    f.edit_coordinator_config(|c| c.api_keys.push(entry))?;
    f.sighup_coordinator()?;
    wait_for("the added key accepted", TIMEOUT, || async {
        Ok(sites(new_key.clone()).await? == 200)
    })
    .await?;
    // Taken out of the config: refused again; the other configured key still works.
    f.edit_coordinator_config(|c| {
        c.api_keys.pop();
    })?;
    f.sighup_coordinator()?;
    wait_for("the removed key refused", TIMEOUT, || async {
        Ok(sites(new_key.clone()).await? == 401)
    })
    .await?;
    assert_eq!(sites(f.ops_key.clone()).await?, 200);
    Ok(())
}
