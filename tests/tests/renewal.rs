//! A site certificate near its expiry is renewed over the existing authenticated link: the
//! site makes a new key, the coordinator signs it for that site, the site uses it from its
//! next connection — no visit to the site.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use modori_coordinator::pki;
use modori_coordinator::revocation::{fingerprint_hex, Revoked};
use modori_runtime::clock;
use modori_runtime::tls;
use modori_shared::domain::Sku;
use modori_tests::{wait_for, TestFleet};

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_expiry_is_renewed_over_the_link() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    let site = fleet.site(0).id.clone();
    fleet.stop_agent(0).await;
    // Ten days left: inside the default 30-day renewal window.
    pki::issue_site_valid_for(&fleet.pki, &site, 10)?;
    let cert_path = fleet.pki.site_cert(&site);
    let old = tls::load_certs("old", &cert_path)?;
    let old_fingerprint = fingerprint_hex(old[0].as_ref());
    fleet.restart_agent(0).await?;

    let now = || clock::now_ms().div_euclid(1000);
    wait_for("the renewed certificate in place", TIMEOUT, || {
        let path = cert_path.clone();
        async move { Ok(tls::cert_days_left(&path, now())? > 300) }
    })
    .await?;
    for path in [&cert_path, &fleet.pki.site_key(&site)] {
        assert_eq!(
            std::fs::metadata(path)?.permissions().mode() & 0o777,
            0o600,
            "{}",
            path.display()
        );
    }

    // Revoke the old certificate: the live link (still on it) is cut, and the site comes back
    // with the new one.
    fleet.coordinator().revoke(Revoked {
        fingerprints: [hex_bytes(&old_fingerprint)].into(),
        ..Revoked::default()
    });
    let agent = fleet.agent(0);
    let connects = agent.status().await?.n_connects;
    wait_for("reconnected with the new certificate", TIMEOUT, || {
        let agent = agent.clone();
        async move {
            let s = agent.status().await?;
            Ok(s.connected && s.n_connects > connects)
        }
    })
    .await?;
    agent
        .receive_unit(None, Sku::new("TEE-WHT-M")?, "B")
        .await?;
    wait_for("synced over the new certificate", TIMEOUT, || {
        let agent = agent.clone();
        async move { Ok(agent.status().await?.outbox_pending == 0) }
    })
    .await?;
    fleet.shutdown().await;
    Ok(())
}

fn hex_bytes(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}
