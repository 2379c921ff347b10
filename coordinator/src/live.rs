//! What the coordinator knows about each site right now (in memory): its connection, when it
//! was last heard from, and how far behind it is. Durable figures live in the database.

use std::collections::HashMap;
use std::sync::Mutex;

use modori_shared::domain::{Epoch, SiteId};
use modori_shared::wire::messages::DeviceHealth;
use tokio::sync::watch;

#[derive(Debug, Default, Clone)]
pub struct SiteLive {
    /// The current connection's id and handle. `None` while the site is offline.
    pub connection: Option<(u64, quinn::Connection)>,
    pub protocol_version: Option<u16>,
    pub epoch: Option<Epoch>,
    pub last_seen_ms: Option<i64>,
    /// Highest seq the site has recorded, as it last told us (protocol ≥ 2).
    pub outbox_head_seq: Option<u64>,
    pub applied_seq: u64,
    /// When the newest op applied here happened, by the site's clock.
    pub last_op_at_ms: Option<i64>,
    /// The site's scanners and printers as it last reported them (protocol ≥ 2); `None`
    /// before its first report since this coordinator started.
    pub devices: Option<Vec<DeviceHealth>>,
}

pub struct Live {
    /// When this coordinator started (Unix ms): a site never seen since is offline since then.
    pub started_ms: i64,
    sites: Mutex<HashMap<SiteId, SiteLive>>,
    /// Wakes a site's connection task when a command is queued for it.
    command_heads: HashMap<SiteId, watch::Sender<u64>>,
}

impl Live {
    pub fn new(sites: impl IntoIterator<Item = SiteId>) -> Self {
        let ids: Vec<SiteId> = sites.into_iter().collect();
        Self {
            started_ms: modori_agent::sync_client::chrono_ms(),
            sites: Mutex::new(
                ids.iter()
                    .map(|id| (id.clone(), SiteLive::default()))
                    .collect(),
            ),
            command_heads: ids
                .into_iter()
                .map(|id| (id, watch::channel(0).0))
                .collect(),
        }
    }

    pub fn get(&self, site: &SiteId) -> SiteLive {
        self.sites
            .lock()
            .ok()
            .and_then(|s| s.get(site).cloned())
            .unwrap_or_default()
    }

    pub fn update(&self, site: &SiteId, f: impl FnOnce(&mut SiteLive)) {
        if let Ok(mut sites) = self.sites.lock() {
            f(sites.entry(site.clone()).or_default());
        }
    }

    /// Registers a new connection for `site`; returns the one it replaces, to be closed.
    pub fn connect(
        &self,
        site: &SiteId,
        id: u64,
        conn: quinn::Connection,
    ) -> Option<quinn::Connection> {
        let mut old = None;
        self.update(site, |s| {
            old = s.connection.replace((id, conn)).map(|(_, c)| c)
        });
        old
    }

    /// Forgets the connection if it is still the current one.
    pub fn disconnect(&self, site: &SiteId, id: u64) {
        self.update(site, |s| {
            if s.connection
                .as_ref()
                .is_some_and(|(current, _)| *current == id)
            {
                s.connection = None;
                s.protocol_version = None;
            }
        });
    }

    pub fn n_online(&self) -> usize {
        self.sites
            .lock()
            .map(|s| s.values().filter(|l| l.connection.is_some()).count())
            .unwrap_or(0)
    }

    pub fn command_head(&self, site: &SiteId) -> Option<watch::Receiver<u64>> {
        self.command_heads.get(site).map(|tx| tx.subscribe())
    }

    pub fn command_queued(&self, site: &SiteId, seq: u64) {
        if let Some(tx) = self.command_heads.get(site) {
            tx.send_modify(|head| *head = (*head).max(seq));
        }
    }
}
