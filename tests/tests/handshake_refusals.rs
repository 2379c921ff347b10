//! Connections the coordinator refuses inside the TLS handshake are no longer silent: a client
//! with a certificate from another CA and a client with none are each logged (peer address and
//! reason) and counted in `/metrics` by reason, with a real coordinator process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use modori_coordinator::pki::PkiPaths;
use modori_demo::local::ensure_pki;
use modori_runtime::tls::{self, LinkTiming};
use modori_tests::procs::{Binaries, ProcFleet};
use modori_tests::{http_get, real_fleet, wait_for};

const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};
const TIMEOUT: Duration = Duration::from_secs(30);
const TIMING: LinkTiming = LinkTiming {
    keepalive_interval: Some(Duration::from_secs(1)),
    idle_timeout: Duration::from_secs(5),
};

/// Tries one connection; the coordinator must refuse it.
async fn connect(config: quinn::ClientConfig, server: SocketAddr) -> anyhow::Result<SocketAddr> {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(config);
    let local = endpoint.local_addr()?;
    let result = tokio::time::timeout(TIMEOUT, async {
        let conn = endpoint.connect(server, "localhost")?.await?;
        // TLS 1.3 clients finish before the server has checked their certificate: the refusal
        // arrives as the connection's close.
        let (mut send, _recv) = conn.open_bi().await?;
        send.write_all(b"hello").await?;
        Ok::<_, anyhow::Error>(conn.closed().await)
    })
    .await?;
    match result {
        Ok(reason) => tracing::info!(%reason, "refused as expected"),
        Err(e) => tracing::info!(error = %e, "refused as expected"),
    }
    endpoint.close(0u32.into(), b"");
    Ok(local)
}

/// The log without terminal colour codes (`ESC [ … m`), so fields read as `key=value`.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn refused_count(metrics: &str, reason: &str) -> Option<u64> {
    let prefix = format!("modori_handshakes_refused_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_ca_and_missing_certificates_are_logged_and_counted() -> anyhow::Result<()> {
    tls::install_crypto_provider();
    let mut f = ProcFleet::with_sites(BINS, real_fleet().sites[..1].to_vec(), Vec::new())?;
    f.start_coordinator(None).await?;
    let (_, before) = http_get(f.http, "/metrics").await?;
    assert_eq!(refused_count(&before, "unknown_ca"), Some(0), "{before}");
    assert_eq!(
        refused_count(&before, "no_certificate"),
        Some(0),
        "{before}"
    );

    // The fleet's site name, but signed by a CA the coordinator does not trust.
    let site = f.sites[0].id.clone();
    let rogue = PkiPaths::new(f.dir.path().join("rogue-pki"));
    ensure_pki(&rogue, &f.sites)?;
    let fleet_ca = tls::load_certs("CA", &f.pki().ca_cert())?;
    let foreign = tls::client_config(
        &fleet_ca,
        tls::load_certs("rogue cert", &rogue.site_cert(&site))?,
        tls::load_key("rogue key", &rogue.site_key(&site))?,
        TIMING,
    )?;
    let foreign_peer = connect(foreign, f.quic_addr()).await?;

    let mut bare = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(tls::root_store(&fleet_ca)?)
        .with_no_client_auth();
    bare.alpn_protocols = vec![tls::ALPN.to_vec()];
    let bare = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(bare)?,
    ));
    let bare_peer = connect(bare, f.quic_addr()).await?;

    let http = f.http;
    let counted = wait_for("both refusals counted", TIMEOUT, || async move {
        let (_, text) = http_get(http, "/metrics").await?;
        Ok(refused_count(&text, "unknown_ca") == Some(1)
            && refused_count(&text, "no_certificate") == Some(1))
    })
    .await;
    if let Err(e) = counted {
        let (_, text) = http_get(http, "/metrics").await?;
        let refusals: Vec<_> = text.lines().filter(|l| l.contains("refused")).collect();
        panic!("{e}: {refusals:#?}\n{}", f.logs());
    }

    let log = strip_ansi(&std::fs::read_to_string(f.dir.path().join("proc-1.log"))?);
    for (peer, reason) in [(foreign_peer, "unknown_ca"), (bare_peer, "no_certificate")] {
        let line = log
            .lines()
            .find(|l| {
                l.contains("refused a connection") && l.contains(&format!("reason=\"{reason}\""))
            })
            .unwrap_or_else(|| panic!("no log line for {reason}:\n{log}"));
        assert!(line.contains(&format!("peer={peer}")), "{line}");
    }
    Ok(())
}
