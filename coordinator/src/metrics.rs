//! Prometheus metrics of the coordinator, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use modori_shared::domain::SiteId;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabel {
    pub site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabel {
    pub merchant: String,
    /// `delivered` or `failed`.
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    ops_applied: Family<SiteLabel, Counter>,
    ops_duplicate: Family<SiteLabel, Counter>,
    pub sites_online: Gauge,
    site_lag_ops: Family<SiteLabel, Gauge>,
    webhook_deliveries: Family<DeliveryLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("modori");
        let ops_applied = Family::<SiteLabel, Counter>::default();
        let ops_duplicate = Family::<SiteLabel, Counter>::default();
        let sites_online = Gauge::default();
        let site_lag_ops = Family::<SiteLabel, Gauge>::default();
        registry.register("ops_applied", "Ops applied, per site", ops_applied.clone());
        registry.register(
            "ops_duplicate",
            "Duplicate ops received and skipped, per site",
            ops_duplicate.clone(),
        );
        registry.register(
            "sites_online",
            "Sites with a live connection",
            sites_online.clone(),
        );
        registry.register(
            "site_lag_ops",
            "Ops recorded at a site and not yet applied here",
            site_lag_ops.clone(),
        );
        let webhook_deliveries = Family::<DeliveryLabel, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook posts to merchants, per merchant and outcome",
            webhook_deliveries.clone(),
        );
        Self {
            webhook_deliveries,
            registry,
            ops_applied,
            ops_duplicate,
            sites_online,
            site_lag_ops,
        }
    }
}

impl Metrics {
    fn label(site: &SiteId) -> SiteLabel {
        SiteLabel {
            site: site.to_string(),
        }
    }

    pub fn ops_applied(&self, site: &SiteId, n_applied: u64, n_duplicates: u64) {
        self.ops_applied
            .get_or_create(&Self::label(site))
            .inc_by(n_applied);
        self.ops_duplicate
            .get_or_create(&Self::label(site))
            .inc_by(n_duplicates);
    }

    pub fn site_lag(&self, site: &SiteId, lag_ops: u64) {
        self.site_lag_ops
            .get_or_create(&Self::label(site))
            .set(i64::try_from(lag_ops).unwrap_or(i64::MAX));
    }

    pub fn webhook_delivery(&self, merchant: &str, delivered: bool) {
        self.webhook_deliveries
            .get_or_create(&DeliveryLabel {
                merchant: merchant.to_owned(),
                outcome: if delivered { "delivered" } else { "failed" }.to_owned(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
