//! Simulated site connections: in-process agents (`modori_agent::Agent`: the real sync client,
//! site store and TLS), each with its own certificate, database and QUIC endpoint, so the
//! coordinator holds one real mutual-TLS connection per simulated site and learns its identity
//! from the certificate as it does for a real one.

use std::time::Duration;

use modori_agent::{Agent, AgentError};
use modori_demo::local::agent_config;
use modori_shared::domain::{Coordinates, DomainError, Site, SiteId};
use modori_tests::procs::ProcFleet;

/// Most simulated sites one run holds. The coordinator's `quic.connections_max` (2048 by
/// default) leaves room for them and the real sites.
pub const SIM_CONNECTIONS_MAX: usize = 1000;
/// Simulated site ids are this prefix and a number (`sim-0001`).
pub const SIM_ID_PREFIX: &str = "sim-";
/// Daily capacity of a simulated site (routing reads it; nothing else does).
const SIM_DAILY_CAPACITY_UNITS: u32 = 100;
/// Simulated sites sit around the real ones, this far apart in latitude, in degrees.
const SIM_SPREAD_DEGREES: f64 = 0.01;

/// `n` simulated sites placed around `near` (so routing over the whole load fleet stays
/// realistic), with ids that give distinct LPN site codes.
pub fn sites(n: usize, near: &[Site]) -> Result<Vec<Site>, DomainError> {
    assert!(
        !near.is_empty(),
        "simulated sites need a real site to sit near"
    );
    (0..n)
        .map(|i| {
            let anchor = &near[i % near.len()];
            let ring = (i / near.len() + 1) as f64;
            let lat = (anchor.location.lat() + ring * SIM_SPREAD_DEGREES).min(90.0);
            Ok(Site {
                id: SiteId::new(format!("{SIM_ID_PREFIX}{:04}", i + 1))?,
                name: format!("Simulated site {} near {}", i + 1, anchor.id),
                location: Coordinates::new(lat, anchor.location.lon())?,
                capabilities: Vec::new(),
                daily_capacity_units: SIM_DAILY_CAPACITY_UNITS,
            })
        })
        .collect()
}

/// Starts an in-process agent for each of the fleet's extra sites, one after another (each
/// opens and checks its database first, which is blocking work).
pub async fn start(fleet: &ProcFleet) -> Result<Vec<Agent>, AgentError> {
    let mut agents = Vec::with_capacity(fleet.extra_sites.len());
    for site in &fleet.extra_sites {
        let config = agent_config(&fleet.sites_dir(), fleet.pki(), site, fleet.quic_addr());
        agents.push(Agent::start(config).await?);
    }
    Ok(agents)
}

/// Stops them all at once: each says goodbye and waits for its link to close.
pub async fn shutdown(agents: Vec<Agent>, timeout: Duration) {
    let mut stopping = tokio::task::JoinSet::new();
    for agent in agents {
        stopping.spawn(agent.shutdown());
    }
    let _ = tokio::time::timeout(timeout, async {
        while stopping.join_next().await.is_some() {}
    })
    .await;
}
