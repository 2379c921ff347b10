//! Protocol versions: the coordinator serves agents of every version it speaks side by side, and a
//! version it does not speak gets a clear refusal on both sides instead of a hang.

use std::sync::Arc;
use std::time::Duration;

use modori_agent::Agent;
use modori_coordinator::revocation::Revocations;
use modori_runtime::net::{read_frame, write_frame};
use modori_runtime::tls;
use modori_shared::domain::{Epoch, ReasonCode, ReturnLine, RmaId, Sku};
use modori_shared::wire::handshake::{ClientHello, ServerHello};
use modori_shared::wire::{PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
use modori_tests::{coordinator_count, wait_for, TestFleet};

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_of_the_oldest_version_syncs_both_ways() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    fleet.stop_agent(0).await;
    let mut config = fleet.agent_config(0);
    config.sync.protocol_version_max = PROTOCOL_VERSION_MIN;
    let old = Agent::start(config).await?;
    for _ in 0..5 {
        old.handle()
            .receive_unit(None, Sku::new("KNIT-NAVY-M")?, "B")
            .await?;
    }
    let site = fleet.site(0).clone();
    let lines = vec![ReturnLine::new(
        Sku::new("KNIT-NAVY-M")?,
        1,
        ReasonCode::Defective,
    )?];
    fleet
        .coordinator()
        .register_return(RmaId::new("RMA-V1-1")?, "test".into(), site.location, lines)
        .await?;
    let handle = old.handle();
    wait_for("v1 agent synced both ways", TIMEOUT, || {
        let handle = handle.clone();
        async move {
            let s = handle.status().await?;
            Ok(s.protocol_version == Some(PROTOCOL_VERSION_MIN)
                && s.outbox_pending == 0
                && s.last_applied_command_seq == 2)
        }
    })
    .await?;
    let c = fleet.coordinator();
    assert_eq!(
        coordinator_count(
            c,
            "SELECT COUNT(*) FROM ops WHERE site = ?1",
            site.id.as_str()
        )
        .await?,
        5
    );
    let (_, body) = fleet.api("GET", "/api/v1/sites", None).await?;
    let sites: Vec<serde_json::Value> = serde_json::from_str(&body)?;
    assert_eq!(
        sites[0]["protocol_version"], PROTOCOL_VERSION_MIN,
        "{}",
        sites[0]
    );
    assert!(
        sites[0]["lag_ops"].is_null(),
        "a v1 agent does not report its head: {}",
        sites[0]
    );
    assert!(
        sites[0]["lag_ops_unknown"]
            .as_str()
            .is_some_and(|why| why.contains("protocol 1")),
        "the reason it is unknown: {}",
        sites[0]
    );
    assert_eq!(
        sites[1]["protocol_version"], PROTOCOL_VERSION,
        "{}",
        sites[1]
    );
    old.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_refuses_an_unsupported_version_with_a_reason() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    let site = fleet.site(2).id.clone();
    let ca = tls::load_certs("ca", &fleet.pki.ca_cert())?;
    let chain = tls::load_certs("cert", &fleet.pki.site_cert(&site))?;
    let key = tls::load_key("key", &fleet.pki.site_key(&site))?;
    let config = tls::client_config(&ca, chain, key, fleet.agent_config(2).sync.timing())?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(config);
    let conn = endpoint
        .connect(fleet.coordinator().quic_addr(), "localhost")?
        .await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let mut hello = ClientHello::new(site.to_string(), Epoch(9), None, 0, PROTOCOL_VERSION);
    hello.version_min = PROTOCOL_VERSION + 1;
    hello.version_max = PROTOCOL_VERSION + 1;
    write_frame(&mut send, &hello.encode()?).await?;
    let body = tokio::time::timeout(TIMEOUT, read_frame(&mut recv))
        .await??
        .expect("an answer");
    match ServerHello::decode(&body)? {
        ServerHello::Refused { reason } => {
            assert!(reason.contains("no common protocol version"), "{reason}");
            assert!(
                reason.contains(&format!("{0}..={0}", PROTOCOL_VERSION + 1)),
                "{reason}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_refused_by_a_newer_coordinator_says_why() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    // A stand-in for a coordinator that only speaks a future version.
    let server = modori_coordinator::quic::server_config(
        &tls::load_certs("ca", &fleet.pki.ca_cert())?,
        tls::load_certs("cert", &fleet.pki.server_cert())?,
        tls::load_key("key", &fleet.pki.server_key())?,
        fleet.agent_config(0).sync.timing(),
        Arc::new(Revocations::default()),
    )?;
    let endpoint = quinn::Endpoint::server(server, "127.0.0.1:0".parse()?)?;
    let addr = endpoint.local_addr()?;
    let refusal = "no common protocol version: we speak 9..=9, the peer speaks 1..=2";
    let server_task = tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let Ok(conn) = incoming.await else { continue };
            let Ok((mut send, mut recv)) = conn.accept_bi().await else {
                continue;
            };
            let _ = read_frame(&mut recv).await;
            let answer = ServerHello::Refused {
                reason: refusal.into(),
            };
            let _ = write_frame(&mut send, &answer.encode().expect("encodes")).await;
            let _ = send.finish();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
        }
    });
    let dir = tempfile::tempdir()?;
    let mut config = fleet.agent_config(3);
    config.coordinator.address = addr;
    config.storage.data_dir = dir.path().to_owned();
    config.ctl.socket = Some(dir.path().join("ctl.sock"));
    let agent = Agent::start(config).await?;
    let handle = agent.handle();
    wait_for("the refusal reported by the agent", TIMEOUT, || {
        let handle = handle.clone();
        async move {
            let s = handle.status().await?;
            Ok(s.last_error.is_some_and(|e| e.contains("we speak 9..=9")))
        }
    })
    .await?;
    assert!(!handle.status().await?.connected);
    agent.shutdown().await;
    server_task.abort();
    fleet.shutdown().await;
    Ok(())
}
