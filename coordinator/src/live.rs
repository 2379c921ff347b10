//! What the coordinator knows about each site right now (in memory): its connection, when it
//! was last heard from, and how far behind it is. Durable figures live in the database.

use std::collections::HashMap;
use std::sync::Mutex;

use modori_shared::domain::{Epoch, SiteId};
use modori_shared::wire::messages::DeviceHealth;
use tokio::sync::watch;

use crate::store::Queued;

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

impl SiteLive {
    /// Ops recorded at the site and not applied here, given what is applied, or why that is
    /// not known. Zero is claimed only for a site online now whose reported head is applied:
    /// an offline site may have recorded any number of ops since it was last heard from.
    pub fn lag_ops(&self, applied_seq: u64) -> Result<u64, &'static str> {
        let Some(head) = self.outbox_head_seq else {
            return Err(if self.protocol_version == Some(1) {
                "protocol 1 sites do not report their outbox head"
            } else {
                "the site has not reported its outbox head since this coordinator started"
            });
        };
        let lag = head.saturating_sub(applied_seq);
        if self.connection.is_none() && lag == 0 {
            return Err("offline: ops recorded since it was last heard from are not known here");
        }
        // Offline with a lag: at least that many, from its last report.
        Ok(lag)
    }
}

pub struct Live {
    /// When this coordinator started (Unix ms): a site never seen since is offline since then.
    pub started_ms: i64,
    sites: Mutex<HashMap<SiteId, SiteLive>>,
    /// Wakes a site's connection task when a command is queued for it.
    command_heads: HashMap<SiteId, watch::Sender<u64>>,
}

impl Live {
    /// The fleet's sites, none seen yet, in a coordinator started at `started_ms`.
    pub fn new(sites: impl IntoIterator<Item = SiteId>, started_ms: i64) -> Self {
        let ids: Vec<SiteId> = sites.into_iter().collect();
        Self {
            started_ms,
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

    /// Wakes each site's connection up to the commands a committed transaction queued.
    pub fn wake(&self, queued: Queued) {
        for (site, seq) in queued.into_pairs() {
            if let Some(tx) = self.command_heads.get(&site) {
                tx.send_modify(|head| *head = (*head).max(seq));
            }
        }
    }
}

#[cfg(test)]
mod lag_tests {
    use super::*;

    #[test]
    fn an_offline_site_lags_by_its_last_report_or_is_unknown_never_zero() {
        let offline = SiteLive {
            outbox_head_seq: Some(148),
            ..SiteLive::default()
        };
        assert_eq!(offline.lag_ops(100), Ok(48));
        assert!(
            offline.lag_ops(148).is_err(),
            "caught up when last heard from"
        );
        let v1 = SiteLive {
            protocol_version: Some(1),
            ..SiteLive::default()
        };
        assert_eq!(
            v1.lag_ops(5),
            Err("protocol 1 sites do not report their outbox head")
        );
        assert!(SiteLive::default().lag_ops(0).is_err());
    }
}
