//! Prometheus metrics of the coordinator, served at `/metrics`: ops applied and lag per site,
//! the sites' devices, queue depths, the pipeline's steps, alerts, HTTP latencies, webhook
//! deliveries and customer messages.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use modori_shared::domain::SiteId;
use modori_shared::exposition::Format;

use crate::refusals::Refusal;

/// Upper bounds of the HTTP latency buckets, in seconds: from a cached page (1 ms) to a
/// server-sent event stream's first answer or a slow database (5 s).
pub const HTTP_LATENCY_BUCKETS_SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabel {
    pub site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabel {
    pub step: String,
}

/// The methods HTTP defines (RFC 9110 and PATCH); any other a client sends is counted as
/// `other`, so that made-up methods cannot grow the open `/metrics` without bound.
pub const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabel {
    /// One of [`HTTP_METHODS`] or `other`.
    pub method: String,
    /// The route's pattern (`/api/v1/returns/{rma}`), never the raw path, so ids do not
    /// multiply the series; `unmatched` for the fallback.
    pub route: String,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabel {
    /// One of [`Refusal::ALL`]'s names: a closed set, whatever strangers send.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabel {
    /// A background worker's lease (`app::leases`): a fixed name per worker.
    pub lease: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `delivered` or `failed`.
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    ops_applied: Family<SiteLabel, Counter>,
    ops_duplicate: Family<SiteLabel, Counter>,
    /// Transactions that applied site batches: ops applied over these is what group commit
    /// saves (see `app::group_commit`).
    pub apply_commits: Counter,
    pub sites_online: Gauge,
    site_lag_ops: Family<SiteLabel, Gauge>,
    site_lag_seconds: Family<SiteLabel, Gauge>,
    site_devices_down: Family<SiteLabel, Gauge>,
    site_commands_pending: Family<SiteLabel, Gauge>,
    pipeline_units: Family<StepLabel, Gauge>,
    pub alerts: Gauge,
    pub db_queue_depth: Gauge,
    pub sse_streams: Gauge,
    http_request_duration: Family<HttpLabel, Histogram>,
    webhook_deliveries: Family<OutcomeLabel, Counter>,
    customer_messages: Family<OutcomeLabel, Counter>,
    handshakes_refused: Family<RefusalLabel, Counter>,
    lease_held: Family<LeaseLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("modori");
        let me = Self {
            registry: Registry::default(),
            ops_applied: Family::default(),
            ops_duplicate: Family::default(),
            apply_commits: Counter::default(),
            sites_online: Gauge::default(),
            site_lag_ops: Family::default(),
            site_lag_seconds: Family::default(),
            site_devices_down: Family::default(),
            site_commands_pending: Family::default(),
            pipeline_units: Family::default(),
            alerts: Gauge::default(),
            db_queue_depth: Gauge::default(),
            sse_streams: Gauge::default(),
            http_request_duration: Family::new_with_constructor(|| {
                Histogram::new(HTTP_LATENCY_BUCKETS_SECONDS)
            }),
            webhook_deliveries: Family::default(),
            customer_messages: Family::default(),
            handshakes_refused: Family::default(),
            lease_held: Family::default(),
        };
        registry.register(
            "ops_applied",
            "Ops applied, per site",
            me.ops_applied.clone(),
        );
        registry.register(
            "ops_duplicate",
            "Duplicate ops received and skipped, per site",
            me.ops_duplicate.clone(),
        );
        registry.register(
            "apply_commits",
            "Group transactions that applied site batches, each holding one or more batches (a failed group applied again batch by batch counts once)",
            me.apply_commits.clone(),
        );
        registry.register(
            "sites_online",
            "Sites with a live connection",
            me.sites_online.clone(),
        );
        registry.register(
            "site_lag_ops",
            "Ops recorded at a site and not yet applied here",
            me.site_lag_ops.clone(),
        );
        registry.register(
            "site_lag_seconds",
            "Age of the newest op applied from a site that is behind (0 when caught up)",
            me.site_lag_seconds.clone(),
        );
        registry.register(
            "site_devices_down",
            "Scanners and printers a site reports disconnected",
            me.site_devices_down.clone(),
        );
        registry.register(
            "site_commands_pending",
            "Commands queued for a site and not acknowledged by it",
            me.site_commands_pending.clone(),
        );
        registry.register(
            "pipeline_units",
            "Returns (expected, receiving) and units (other steps) at each step, fleet-wide",
            me.pipeline_units.clone(),
        );
        registry.register(
            "alerts",
            "Alerts active now (see [alerts] in the config)",
            me.alerts.clone(),
        );
        registry.register(
            "db_queue_depth",
            "Jobs waiting for the database thread",
            me.db_queue_depth.clone(),
        );
        registry.register(
            "dashboard_streams",
            "Dashboard and store pages connected for live updates",
            me.sse_streams.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests by method, route and status class, until the answer's head",
            me.http_request_duration.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome",
            me.webhook_deliveries.clone(),
        );
        registry.register(
            "customer_messages",
            "Attempts to send a message to a customer by outcome: sent, failed (retried or given \
             up), opted_out, unreachable",
            me.customer_messages.clone(),
        );
        registry.register(
            "handshakes_refused",
            "Connections refused before they became a site's link, by reason",
            me.handshakes_refused.clone(),
        );
        registry.register(
            "lease_held",
            "1 while this coordinator holds a background worker's lease (it does that work), 0 while another does",
            me.lease_held.clone(),
        );
        // Every reason from the start, so a rate over the first refusal is not lost.
        for reason in Refusal::ALL {
            me.handshake_refused_counter(reason);
        }
        Self { registry, ..me }
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn set_lease_held(&self, lease: &str, held: bool) {
        self.lease_held
            .get_or_create(&LeaseLabel {
                lease: lease.to_owned(),
            })
            .set(i64::from(held));
    }

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

    /// `None` when the lag is unknown: the series is dropped rather than left at a stale value.
    pub fn site_lag(&self, site: &SiteId, lag_ops: Option<u64>) {
        match lag_ops {
            Some(lag) => {
                self.site_lag_ops
                    .get_or_create(&Self::label(site))
                    .set(gauge_value(lag));
            }
            None => {
                self.site_lag_ops.remove(&Self::label(site));
            }
        }
    }

    pub fn site_lag_seconds(&self, site: &SiteId, seconds: u64) {
        self.site_lag_seconds
            .get_or_create(&Self::label(site))
            .set(gauge_value(seconds));
    }

    pub fn site_devices_down(&self, site: &SiteId, n: u64) {
        self.site_devices_down
            .get_or_create(&Self::label(site))
            .set(gauge_value(n));
    }

    pub fn site_commands_pending(&self, site: &SiteId, n: u64) {
        self.site_commands_pending
            .get_or_create(&Self::label(site))
            .set(gauge_value(n));
    }

    pub fn pipeline_units(&self, step: &str, n: u64) {
        self.pipeline_units
            .get_or_create(&StepLabel {
                step: step.to_owned(),
            })
            .set(gauge_value(n));
    }

    /// One HTTP request answered after `seconds`; `route` is the matched route's pattern.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = HTTP_METHODS
            .iter()
            .find(|m| **m == method)
            .copied()
            .unwrap_or("other");
        let status = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_request_duration
            .get_or_create(&HttpLabel {
                method: method.to_owned(),
                route: route.to_owned(),
                status: status.to_owned(),
            })
            .observe(seconds);
    }

    /// One webhook delivery attempt and whether it was delivered.
    pub fn webhook_delivery(&self, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.webhook_deliveries
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// One attempt to send a customer message; `outcome` is one of the four the help names.
    pub fn customer_message(&self, outcome: &'static str) {
        self.customer_messages
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn handshake_refused(&self, reason: Refusal) {
        self.handshake_refused_counter(reason).inc();
    }

    fn handshake_refused_counter(&self, reason: Refusal) -> Counter {
        self.handshakes_refused
            .get_or_create(&RefusalLabel {
                reason: reason.as_str().to_owned(),
            })
            .clone()
    }

    /// Every metric, in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        format.render(out)
    }
}
