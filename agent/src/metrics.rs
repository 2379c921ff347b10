//! Prometheus metrics of the agent, served on a local port (`metrics.listen`) for the site's
//! monitoring to scrape: sync position, catch-up progress, link state, devices, queues.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use modori_shared::exposition::Format;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::AgentHandle;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabel {
    pub device: String,
    pub kind: String,
}

pub struct AgentMetrics {
    registry: Registry,
    pub ops_acked: Counter,
    pub connects: Counter,
    pub commands_applied: Counter,
    /// Databases found to have gone back in time (a hello showed the coordinator ahead).
    pub rollbacks: Counter,
    outbox_head_seq: Gauge,
    outbox_pending: Gauge,
    connected: Gauge,
    ack_rate: Gauge<f64, std::sync::atomic::AtomicU64>,
    catch_up_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    device_connected: Family<DeviceLabel, Gauge>,
    printer_jobs_waiting: Family<DeviceLabel, Gauge>,
    db_queue_depth: Gauge,
    commands_applied_seq: Gauge,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("modori_agent");
        let me = Self {
            ops_acked: Counter::default(),
            connects: Counter::default(),
            commands_applied: Counter::default(),
            rollbacks: Counter::default(),
            outbox_head_seq: Gauge::default(),
            outbox_pending: Gauge::default(),
            connected: Gauge::default(),
            ack_rate: Gauge::default(),
            catch_up_seconds: Gauge::default(),
            device_connected: Family::default(),
            printer_jobs_waiting: Family::default(),
            db_queue_depth: Gauge::default(),
            commands_applied_seq: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "ops_acked",
            "Ops acknowledged by the coordinator",
            me.ops_acked.clone(),
        );
        registry.register(
            "connects",
            "Successful connections to the coordinator",
            me.connects.clone(),
        );
        registry.register(
            "commands_applied",
            "Commands from the coordinator applied",
            me.commands_applied.clone(),
        );
        registry.register(
            "database_rollbacks",
            "Times the site database was found behind what the coordinator had applied",
            me.rollbacks.clone(),
        );
        registry.register(
            "outbox_head_seq",
            "Highest op seq recorded in this epoch",
            me.outbox_head_seq.clone(),
        );
        registry.register(
            "outbox_pending",
            "Ops recorded and not yet acknowledged",
            me.outbox_pending.clone(),
        );
        registry.register(
            "connected",
            "1 while the link to the coordinator is up",
            me.connected.clone(),
        );
        registry.register(
            "ack_rate_ops_per_second",
            "Ops acknowledged per second, last window",
            me.ack_rate.clone(),
        );
        registry.register(
            "catch_up_estimated_seconds",
            "Time to drain the outbox at the current rate (0 when idle)",
            me.catch_up_seconds.clone(),
        );
        registry.register(
            "device_connected",
            "1 while a scanner or printer is connected, 0 while it is away",
            me.device_connected.clone(),
        );
        registry.register(
            "printer_jobs_waiting",
            "Label jobs queued at a printer",
            me.printer_jobs_waiting.clone(),
        );
        registry.register(
            "db_queue_depth",
            "Jobs waiting for the database thread",
            me.db_queue_depth.clone(),
        );
        registry.register(
            "commands_applied_seq",
            "Highest command seq from the coordinator applied here",
            me.commands_applied_seq.clone(),
        );
        Self { registry, ..me }
    }
}

/// Every metric, in the form `Accept` asks for (OpenMetrics, else the classic text format).
async fn render(State(agent): State<AgentHandle>, headers: HeaderMap) -> impl IntoResponse {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let m = agent.metrics();
    if let Ok(s) = agent.status().await {
        m.outbox_head_seq
            .set(i64::try_from(s.outbox_head_seq).unwrap_or(i64::MAX));
        m.outbox_pending
            .set(i64::try_from(s.outbox_pending).unwrap_or(i64::MAX));
        m.connected.set(i64::from(s.connected));
        m.ack_rate.set(s.ack_rate_ops_per_second);
        m.catch_up_seconds
            .set(s.estimated_catch_up_seconds.unwrap_or(0.0));
        m.commands_applied_seq
            .set(i64::try_from(s.last_applied_command_seq).unwrap_or(i64::MAX));
        for d in &s.devices {
            let label = DeviceLabel {
                device: d.name.clone(),
                kind: d.kind.to_owned(),
            };
            m.device_connected
                .get_or_create(&label)
                .set(i64::from(d.state.is_connected()));
            if let Some(n) = d.n_jobs_waiting {
                m.printer_jobs_waiting
                    .get_or_create(&label)
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }
    m.db_queue_depth
        .set(i64::try_from(agent.db().queue_depth()).unwrap_or(i64::MAX));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        format.render(out),
    )
}

/// Serves `/metrics` on `listener` until shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    agent: AgentHandle,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = Router::new()
        .route("/metrics", get(render))
        .with_state(agent);
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "metrics server failed");
    }
}
