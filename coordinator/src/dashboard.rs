//! The ops dashboard's view of the fleet: one snapshot joining what is live (links, lag,
//! devices, from `live`) with what is stored (counts per step, throughput, insight, anomalies,
//! from `store::dashboard`), and the alerts raised on it by the `[alerts]` thresholds.
//!
//! Stored figures are read at most every [`COUNTS_REFRESH`] (insight every
//! [`INSIGHT_REFRESH`]) however many pages watch, so the dashboard costs the database a few
//! indexed counts per refresh, never per viewer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modori_shared::domain::Disposition;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::config::AlertsSection;
use crate::store::dashboard::{self as queries, AnomalyView, Counts, ReasonCount, SiteBacklog};
use crate::store::{alert_silences, StoreError};
use crate::Ctx;

/// Counts, throughput and anomalies are read again after this long.
pub const COUNTS_REFRESH: Duration = Duration::from_secs(2);
/// Grade mix, reasons, recovered value and abuse flags are read again after this long.
pub const INSIGHT_REFRESH: Duration = Duration::from_secs(15);
/// Width of one throughput bucket.
pub const THROUGHPUT_BUCKET_MS: i64 = 60_000;
/// Throughput buckets shown (the last half hour).
pub const THROUGHPUT_BUCKETS: usize = 30;
/// Op kinds charted as throughput, with `registered` (returns registered).
pub const THROUGHPUT_KINDS: [&str; 5] = [
    "registered",
    "unit_received",
    "unit_graded",
    "disposition_set",
    "unit_departed",
];
/// Anomalies listed on the dashboard.
pub const ANOMALIES_SHOWN_MAX: usize = 50;
/// Rows of each "top reasons" table.
pub const TOP_REASONS_MAX: usize = 10;
/// Returns registered within this window feed the reason tables.
pub const INSIGHT_WINDOW_MS: i64 = 30 * 86_400_000;
/// Customers whose abuse score is computed per refresh at most.
pub const ABUSE_CANDIDATES_MAX: usize = 200;
/// Customers flagged on the dashboard at most.
pub const ABUSE_FLAGS_MAX: usize = 20;
/// Returns in the recent window from which a customer's score is worth computing.
pub const ABUSE_MIN_RETURNS: u32 = 3;

/// One device of a site as the dashboard shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceView {
    pub name: String,
    pub kind: String,
    pub connected: bool,
    pub since_ms: i64,
    pub n_jobs_waiting: u32,
}

/// One site: its link, lag, devices and backlog.
#[derive(Clone, Debug, Serialize)]
pub struct SiteView {
    pub id: String,
    pub name: String,
    /// Its name on the Japanese pages, when the fleet file gives one.
    pub name_ja: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
    pub online: bool,
    pub protocol_version: Option<u16>,
    pub last_seen_ms: Option<i64>,
    /// Ops recorded at the site and not applied here; `None` when unknown (never 0 for an
    /// offline site: see `SiteLive::lag_ops`).
    pub lag_ops: Option<u64>,
    /// How old the newest applied op is while the site is behind (0 when caught up).
    pub lag_seconds: Option<u64>,
    pub applied_seq: u64,
    /// `None`: the site has not reported its devices since this coordinator started.
    pub devices: Option<Vec<DeviceView>>,
    pub backlog: SiteBacklog,
    /// `ok`, `warning` (an alert) or `offline`.
    pub state: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct StoreView {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub latitude: f64,
    pub longitude: f64,
    /// Returns registered here and not arrived at their site yet.
    pub waiting: u64,
    /// Totes packed here, waiting for pickup.
    pub totes: u64,
    /// Returns whose condition the counter checked, units the sites graded since, and those
    /// the site found worse than the counter said.
    pub returns_checked: u64,
    pub units_graded: u64,
    pub condition_mismatches: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    /// What it is about, the same while its condition lasts: `kind:site`, or
    /// `device_down:site:device` (acknowledgements and mutes name it).
    pub key: String,
    /// `site_offline`, `lag_ops`, `lag_seconds`, `quarantine_backlog`, `device_down`.
    pub kind: &'static str,
    pub site: String,
    /// In English, for mails, webhooks and readers of the raw state.
    pub message: String,
    /// The figures of `message` by name ([`ALERT_PARAMS`]), for a page to say in its language.
    pub params: BTreeMap<&'static str, serde_json::Value>,
    /// Acknowledged or muted by ops: it is shown, but does not shout.
    pub silence: Option<alert_silences::Silence>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Throughput {
    pub bucket_ms: i64,
    /// Start of the first bucket (Unix ms).
    pub start_ms: i64,
    /// Per kind, one count per bucket, oldest first.
    pub series: BTreeMap<String, Vec<u64>>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Recovered {
    /// The value model's estimate of what the disposed units bring back (restock, refurbish,
    /// recycling, vendor credit, less disposal), plus resale actually sold.
    pub total_yen: i64,
    /// Per disposition, the same estimate; `resale` is what sold.
    pub by_disposition: BTreeMap<String, i64>,
    pub resale_sold_yen: u64,
    pub n_resale_sold: u64,
    /// Asked on live listings now (a unit counted once, at its best price).
    pub resale_listed_yen: u64,
    pub n_resale_listed: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct AbuseFlag {
    pub customer: String,
    pub score: u32,
    pub returns_90d: u32,
    pub factors: Vec<crate::policy::Factor>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Insight {
    pub grades: BTreeMap<String, u64>,
    pub reasons_by_sku: Vec<ReasonCount>,
    pub reasons_by_category: Vec<ReasonCount>,
    pub recovered: Recovered,
    pub abuse: Vec<AbuseFlag>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub now_ms: i64,
    pub sites: Vec<SiteView>,
    pub n_online: usize,
    pub stores: Vec<StoreView>,
    pub pipeline: queries::Pipeline,
    pub throughput: Throughput,
    pub insight: Insight,
    pub n_anomalies: u64,
    pub anomalies: Vec<AnomalyView>,
    pub alerts: Vec<Alert>,
    pub thresholds: AlertsSection,
    /// What the strict terms are and from which abuse score, for the page to say in words.
    pub strict: StrictTerms,
    /// The zone the page shows times in (`http.time_zone`).
    pub time_zone: String,
}

/// The strict terms against the standard ones (`[policy]`).
#[derive(Clone, Debug, Serialize)]
pub struct StrictTerms {
    pub from_score: u32,
    pub return_window_days: u32,
    pub standard_return_window_days: u32,
    pub refund_fee_yen: u64,
    pub standard_refund_fee_yen: u64,
}

/// What is read from the database, with when it was read.
#[derive(Default)]
struct Cache {
    counts: Option<(Instant, Arc<Stored>)>,
    insight: Option<(Instant, Arc<Insight>)>,
}

struct Stored {
    counts: Counts,
    throughput: Throughput,
    anomalies: Vec<AnomalyView>,
    silences: Vec<alert_silences::Silence>,
}

/// The dashboard's cache of stored figures, shared by every viewer.
#[derive(Default)]
pub struct Dashboard {
    cache: Mutex<Cache>,
}

fn throughput_of(rows: Vec<(i64, String, u64)>, start_ms: i64) -> Throughput {
    let mut series: BTreeMap<String, Vec<u64>> = THROUGHPUT_KINDS
        .iter()
        .map(|k| ((*k).to_owned(), vec![0; THROUGHPUT_BUCKETS]))
        .collect();
    for (bucket, kind, n) in rows {
        let i = (bucket - start_ms) / THROUGHPUT_BUCKET_MS;
        if let (Some(s), Ok(i)) = (series.get_mut(&kind), usize::try_from(i)) {
            if let Some(slot) = s.get_mut(i) {
                *slot += n;
            }
        }
    }
    Throughput {
        bucket_ms: THROUGHPUT_BUCKET_MS,
        start_ms,
        series,
    }
}

fn grade_index(grade: &str) -> Option<usize> {
    modori_shared::domain::Grade::parse(grade)
        .ok()
        .map(modori_shared::domain::Grade::index)
}

/// The value model's estimate per disposition (resale comes from sold listings instead).
fn recovered(
    valuation: &crate::valuation::ValuationConfig,
    disposed: &[queries::DisposedValue],
    resale: (u64, u64, u64, u64),
) -> Recovered {
    let mut by: BTreeMap<String, i64> = BTreeMap::new();
    for d in disposed {
        let price = d.list_price_yen as f64;
        let n = i64::try_from(d.n_units).unwrap_or(i64::MAX);
        // Resale is counted from sold listings below; a restock needs its grade.
        let value = match (Disposition::parse(&d.disposition), grade_index(&d.grade)) {
            (Ok(Disposition::Resale) | Err(_), _) | (Ok(Disposition::Restock), None) => 0,
            (Ok(disposition), g) => {
                crate::valuation::recovered_yen(valuation, disposition, g.unwrap_or(0), price, n)
            }
        };
        *by.entry(d.disposition.clone()).or_default() += value;
    }
    let (n_sold, sold, n_listed, listed) = resale;
    by.insert("resale".into(), i64::try_from(sold).unwrap_or(i64::MAX));
    Recovered {
        total_yen: by.values().sum(),
        by_disposition: by,
        resale_sold_yen: sold,
        n_resale_sold: n_sold,
        resale_listed_yen: listed,
        n_resale_listed: n_listed,
    }
}

async fn read_counts(ctx: &Ctx, now_ms: i64) -> Result<Stored, StoreError> {
    let start_ms =
        (now_ms / THROUGHPUT_BUCKET_MS - THROUGHPUT_BUCKETS as i64 + 1) * THROUGHPUT_BUCKET_MS;
    let (counts, rows, anomalies, silences) = ctx
        .db
        .call(move |c| {
            Ok::<_, StoreError>((
                queries::counts(c)?,
                queries::throughput(c, start_ms, THROUGHPUT_BUCKET_MS)?,
                queries::anomalies(c, ANOMALIES_SHOWN_MAX)?,
                alert_silences::in_force(c, now_ms)?,
            ))
        })
        .await?;
    Ok(Stored {
        counts,
        throughput: throughput_of(rows, start_ms),
        anomalies,
        silences,
    })
}

async fn read_insight(ctx: &Ctx, now_ms: i64) -> Result<Insight, StoreError> {
    let abuse_min = ctx.config.alerts.abuse_score_min;
    let valuation = ctx.config.valuation.clone();
    ctx.db
        .call(move |c| {
            let since = now_ms - INSIGHT_WINDOW_MS;
            let mut abuse = Vec::new();
            let recent = now_ms - crate::store::commerce::HISTORY_RECENT_MS;
            for customer in
                queries::abuse_candidates(c, recent, ABUSE_MIN_RETURNS, ABUSE_CANDIDATES_MAX)?
            {
                let history = crate::store::commerce::history(c, &customer, now_ms)?;
                let score = crate::policy::abuse_score(&history);
                if score.score >= abuse_min {
                    abuse.push(AbuseFlag {
                        customer,
                        score: score.score,
                        returns_90d: history.returns_90d,
                        factors: score.factors,
                    });
                }
            }
            abuse.sort_by(|a, b| b.score.cmp(&a.score).then(a.customer.cmp(&b.customer)));
            abuse.truncate(ABUSE_FLAGS_MAX);
            Ok(Insight {
                grades: queries::grade_mix(c)?,
                reasons_by_sku: queries::top_reasons(c, since, false, TOP_REASONS_MAX)?,
                reasons_by_category: queries::top_reasons(c, since, true, TOP_REASONS_MAX)?,
                recovered: recovered(
                    &valuation,
                    &queries::disposed_values(c)?,
                    queries::resale_totals(c)?,
                ),
                abuse,
            })
        })
        .await
}

impl Dashboard {
    /// Drops the stored figures, so the next snapshot reads them (after ops silenced an alert).
    pub async fn invalidate(&self) {
        self.cache.lock().await.counts = None;
    }

    /// Ends the acknowledgements of alerts no longer raised: their condition cleared, so the
    /// next time it comes they shout again.
    async fn end_cleared_acknowledgements(
        &self,
        ctx: &Ctx,
        stored: &Stored,
        raised: &[Alert],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let cleared: Vec<String> = stored
            .silences
            .iter()
            .filter(|s| s.kind == alert_silences::ACKNOWLEDGED)
            .filter(|s| !raised.iter().any(|a| a.key == s.alert))
            .map(|s| s.alert.clone())
            .collect();
        if cleared.is_empty() {
            return Ok(());
        }
        tracing::info!(alerts = ?cleared, "alerts cleared: their acknowledgements end");
        ctx.db
            .call(move |c| alert_silences::end_acknowledged(c, &cleared, now_ms))
            .await?;
        self.invalidate().await;
        Ok(())
    }

    /// Stored figures, read again when older than their refresh period. One reader at a time.
    async fn stored(
        &self,
        ctx: &Ctx,
        now_ms: i64,
    ) -> Result<(Arc<Stored>, Arc<Insight>), StoreError> {
        let mut cache = self.cache.lock().await;
        let counts = match &cache.counts {
            Some((at, s)) if at.elapsed() < COUNTS_REFRESH => s.clone(),
            _ => {
                let s = Arc::new(read_counts(ctx, now_ms).await?);
                cache.counts = Some((Instant::now(), s.clone()));
                s
            }
        };
        let insight = match &cache.insight {
            Some((at, s)) if at.elapsed() < INSIGHT_REFRESH => s.clone(),
            _ => {
                let s = Arc::new(read_insight(ctx, now_ms).await?);
                cache.insight = Some((Instant::now(), s.clone()));
                s
            }
        };
        Ok((counts, insight))
    }

    /// The fleet now. Also sets the gauges the metrics show of it.
    pub async fn snapshot(&self, ctx: &Ctx, now_ms: i64) -> Result<Snapshot, StoreError> {
        let (stored, insight) = self.stored(ctx, now_ms).await?;
        let mut sites: Vec<SiteView> = ctx
            .fleet
            .sites
            .iter()
            .map(|site| {
                let live = ctx.live.get(&site.id);
                let lag_ops = live.lag_ops(live.applied_seq).ok();
                let lag_seconds = match (lag_ops, live.last_op_at_ms) {
                    (Some(0), _) => Some(0),
                    (Some(_), Some(at)) => Some(u64::try_from((now_ms - at) / 1000).unwrap_or(0)),
                    _ => None,
                };
                SiteView {
                    id: site.id.to_string(),
                    name: site.name.clone(),
                    name_ja: ctx.fleet.names_ja.get(site.id.as_str()).cloned(),
                    latitude: site.location.lat(),
                    longitude: site.location.lon(),
                    online: live.connection.is_some(),
                    protocol_version: live.protocol_version,
                    last_seen_ms: live.last_seen_ms,
                    lag_ops,
                    lag_seconds,
                    applied_seq: live.applied_seq,
                    devices: live.devices.map(|ds| {
                        ds.into_iter()
                            .map(|d| DeviceView {
                                name: d.name,
                                kind: d.kind,
                                connected: d.connected,
                                since_ms: d.since_unix_ms,
                                n_jobs_waiting: d.n_jobs_waiting,
                            })
                            .collect()
                    }),
                    backlog: stored
                        .counts
                        .sites
                        .get(site.id.as_str())
                        .cloned()
                        .unwrap_or_default(),
                    state: "ok",
                }
            })
            .collect();
        let mut alerts = alerts(&ctx.config.alerts, now_ms, ctx.live.started_ms, &sites);
        self.end_cleared_acknowledgements(ctx, &stored, &alerts, now_ms)
            .await?;
        for a in &mut alerts {
            a.silence = stored.silences.iter().find(|s| s.alert == a.key).cloned();
        }
        for s in &mut sites {
            s.state = if !s.online {
                "offline"
            } else if alerts.iter().any(|a| a.site == s.id && a.silence.is_none()) {
                "warning"
            } else {
                "ok"
            };
        }
        let stores = ctx
            .fleet
            .stores
            .iter()
            .map(|s| StoreView {
                id: s.id.to_string(),
                name: s.name.clone(),
                kind: match s.kind {
                    modori_shared::domain::StoreKind::Retail => "retail",
                    modori_shared::domain::StoreKind::Konbini => "konbini",
                },
                latitude: s.location.lat(),
                longitude: s.location.lon(),
                waiting: stored
                    .counts
                    .stores_waiting
                    .get(s.id.as_str())
                    .copied()
                    .unwrap_or(0),
                totes: stored
                    .counts
                    .stores_totes
                    .get(s.id.as_str())
                    .copied()
                    .unwrap_or(0),
                returns_checked: stored
                    .counts
                    .store_checks
                    .get(s.id.as_str())
                    .map_or(0, |c| c.returns_checked),
                units_graded: stored
                    .counts
                    .store_checks
                    .get(s.id.as_str())
                    .map_or(0, |c| c.units_graded),
                condition_mismatches: stored
                    .counts
                    .store_checks
                    .get(s.id.as_str())
                    .map_or(0, |c| c.mismatches),
            })
            .collect();
        let snapshot = Snapshot {
            now_ms,
            n_online: sites.iter().filter(|s| s.online).count(),
            sites,
            stores,
            pipeline: stored.counts.pipeline.clone(),
            throughput: stored.throughput.clone(),
            insight: (*insight).clone(),
            n_anomalies: stored.counts.n_anomalies,
            anomalies: stored.anomalies.clone(),
            alerts,
            // Who is told of alerts is not the page's business; a Slack webhook's URL is its
            // secret.
            thresholds: AlertsSection {
                email_to: Vec::new(),
                webhook_url: None,
                ..ctx.config.alerts.clone()
            },
            strict: StrictTerms {
                from_score: ctx.config.policy.strict_from_score,
                return_window_days: ctx.config.policy.strict.return_window_days,
                standard_return_window_days: ctx.config.policy.terms.return_window_days,
                refund_fee_yen: ctx.config.policy.strict.refund_fee_yen,
                standard_refund_fee_yen: ctx.config.policy.terms.refund_fee_yen,
            },
            time_zone: ctx.config.http.time_zone.clone(),
        };
        record_metrics(ctx, &snapshot);
        Ok(snapshot)
    }
}

fn record_metrics(ctx: &Ctx, s: &Snapshot) {
    let m = &ctx.metrics;
    m.alerts
        .set(i64::try_from(s.alerts.len()).unwrap_or(i64::MAX));
    for (site, view) in ctx.fleet.sites.iter().zip(&s.sites) {
        if let Some(devices) = &view.devices {
            m.site_devices_down(
                &site.id,
                devices.iter().filter(|d| !d.connected).count() as u64,
            );
        }
        if let Some(lag) = view.lag_seconds {
            m.site_lag_seconds(&site.id, lag);
        }
    }
    let p = &s.pipeline;
    for (step, n) in [
        ("expected", p.expected),
        ("receiving", p.receiving),
        ("in_transit", p.in_transit),
        ("received", p.received),
        ("quarantine", p.quarantine),
        ("graded", p.graded),
    ] {
        m.pipeline_units(step, n);
    }
    for (d, n) in &p.disposed {
        m.pipeline_units(&format!("disposed_{d}"), *n);
    }
}

/// Every alert kind with the names of its parameters (`Alert::params`), sorted; the pages'
/// texts (`alert_text.*` in the i18n files) have exactly these holes.
pub const ALERT_PARAMS: [(&str, &[&str]); 5] = [
    ("site_offline", &["minutes", "threshold"]),
    ("lag_ops", &["ops", "threshold"]),
    ("lag_seconds", &["seconds", "threshold"]),
    ("quarantine_backlog", &["threshold", "units"]),
    ("device_down", &["device", "device_kind", "minutes"]),
];

/// The alerts the thresholds raise on the sites as they are at `now_ms`. A site never seen
/// since the coordinator started (`started_ms`) counts as offline since then.
pub fn alerts(
    config: &AlertsSection,
    now_ms: i64,
    started_ms: i64,
    sites: &[SiteView],
) -> Vec<Alert> {
    let mut out = Vec::new();
    let minutes = |ms: i64| ms.max(0) / 60_000;
    for s in sites {
        let mut raise = |kind: &'static str,
                         subject: Option<&str>,
                         message: String,
                         params: Vec<(&'static str, serde_json::Value)>| {
            out.push(Alert {
                key: match subject {
                    Some(subject) => format!("{kind}:{}:{subject}", s.id),
                    None => format!("{kind}:{}", s.id),
                },
                kind,
                site: s.id.clone(),
                message,
                params: params.into_iter().collect(),
                silence: None,
            })
        };
        if !s.online {
            let since = s.last_seen_ms.unwrap_or(started_ms);
            let offline_ms = now_ms - since;
            if offline_ms >= i64::from(config.offline_minutes) * 60_000 {
                raise(
                    "site_offline",
                    None,
                    format!(
                        "{} offline for {} min (threshold {} min)",
                        s.id,
                        minutes(offline_ms),
                        config.offline_minutes
                    ),
                    vec![
                        ("minutes", minutes(offline_ms).into()),
                        ("threshold", config.offline_minutes.into()),
                    ],
                );
            }
        }
        if let Some(lag) = s.lag_ops.filter(|l| *l >= config.lag_ops) {
            raise(
                "lag_ops",
                None,
                format!(
                    "{} is {lag} ops behind (threshold {})",
                    s.id, config.lag_ops
                ),
                vec![("ops", lag.into()), ("threshold", config.lag_ops.into())],
            );
        }
        if let Some(lag) = s.lag_seconds.filter(|l| *l >= config.lag_seconds) {
            raise(
                "lag_seconds",
                None,
                format!(
                    "{} is {lag} s behind (threshold {} s)",
                    s.id, config.lag_seconds
                ),
                vec![
                    ("seconds", lag.into()),
                    ("threshold", config.lag_seconds.into()),
                ],
            );
        }
        if s.backlog.quarantine > config.quarantine_max {
            raise(
                "quarantine_backlog",
                None,
                format!(
                    "{} has {} units in quarantine (threshold {})",
                    s.id, s.backlog.quarantine, config.quarantine_max
                ),
                vec![
                    ("units", s.backlog.quarantine.into()),
                    ("threshold", config.quarantine_max.into()),
                ],
            );
        }
        for d in s.devices.iter().flatten().filter(|d| !d.connected) {
            let down_ms = now_ms - d.since_ms;
            if down_ms >= i64::from(config.device_down_minutes) * 60_000 {
                raise(
                    "device_down",
                    Some(&d.name),
                    format!(
                        "{} {} {} disconnected for {} min",
                        s.id,
                        d.kind,
                        d.name,
                        minutes(down_ms)
                    ),
                    vec![
                        ("device", d.name.clone().into()),
                        ("device_kind", d.kind.clone().into()),
                        ("minutes", minutes(down_ms).into()),
                    ],
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: &str, online: bool) -> SiteView {
        SiteView {
            id: id.into(),
            name: id.into(),
            name_ja: None,
            latitude: 35.0,
            longitude: 139.0,
            online,
            protocol_version: Some(2),
            last_seen_ms: Some(0),
            lag_ops: Some(0),
            lag_seconds: Some(0),
            applied_seq: 0,
            devices: None,
            backlog: SiteBacklog::default(),
            state: "ok",
        }
    }

    #[test]
    fn thresholds_raise_alerts_naming_the_site() {
        let config = AlertsSection::default();
        let now = 10 * 60_000;
        let mut offline = site("sendai", false);
        offline.last_seen_ms = Some(now - 6 * 60_000);
        let mut briefly_offline = site("sapporo", false);
        briefly_offline.last_seen_ms = Some(now - 60_000);
        let mut lagging = site("osaka", true);
        lagging.lag_ops = Some(5000);
        lagging.lag_seconds = Some(900);
        let mut quarantine = site("chiba", true);
        quarantine.backlog.quarantine = 51;
        let mut device = site("fukuoka", true);
        device.devices = Some(vec![
            DeviceView {
                name: "printer-1".into(),
                kind: "printer".into(),
                connected: false,
                since_ms: now - 3 * 60_000,
                n_jobs_waiting: 2,
            },
            DeviceView {
                name: "scanner-1".into(),
                kind: "scanner".into(),
                connected: false,
                since_ms: now - 30_000,
                n_jobs_waiting: 0,
            },
        ]);
        let sites = [
            offline,
            briefly_offline,
            lagging,
            quarantine,
            device,
            site("nagoya", true),
        ];
        let raised: Vec<(&str, &str)> = alerts(&config, now, 0, &sites)
            .iter()
            .map(|a| {
                (
                    a.kind,
                    sites
                        .iter()
                        .find(|s| s.id == a.site)
                        .map_or("", |s| s.id.as_str()),
                )
            })
            .collect();
        // Each alert carries its kind's parameters, no more, no fewer.
        for a in alerts(&config, now, 0, &sites) {
            let (_, names) = ALERT_PARAMS
                .iter()
                .find(|(k, _)| *k == a.kind)
                .unwrap_or_else(|| panic!("{} not in ALERT_PARAMS", a.kind));
            assert_eq!(
                a.params.keys().copied().collect::<Vec<_>>(),
                *names,
                "{}",
                a.kind
            );
        }
        assert_eq!(
            raised,
            [
                ("site_offline", "sendai"),
                ("lag_ops", "osaka"),
                ("lag_seconds", "osaka"),
                ("quarantine_backlog", "chiba"),
                ("device_down", "fukuoka"),
            ]
        );
        // A site never seen counts from the coordinator's start.
        let mut never = site("hiroshima", false);
        never.last_seen_ms = None;
        assert_eq!(
            alerts(&config, now, now - 60_000, &[never.clone()]).len(),
            0
        );
        assert_eq!(alerts(&config, now, 0, &[never]).len(), 1);
    }

    #[test]
    fn throughput_rows_fall_into_their_buckets() {
        let start = 1_000 * THROUGHPUT_BUCKET_MS;
        let rows = vec![
            (start, "unit_received".to_owned(), 3),
            (start + 2 * THROUGHPUT_BUCKET_MS, "registered".to_owned(), 5),
            (start - THROUGHPUT_BUCKET_MS, "registered".to_owned(), 7),
            (start, "inventory_adjusted".to_owned(), 1),
        ];
        let t = throughput_of(rows, start);
        assert_eq!(t.series["unit_received"][0], 3);
        assert_eq!(t.series["registered"][2], 5);
        assert_eq!(t.series["registered"].iter().sum::<u64>(), 5);
        assert!(!t.series.contains_key("inventory_adjusted"));
    }

    #[test]
    fn recovered_value_follows_the_value_model() {
        let v = crate::valuation::ValuationConfig::default();
        let disposed = [
            queries::DisposedValue {
                disposition: "restock".into(),
                grade: "A".into(),
                n_units: 2,
                list_price_yen: 10_000,
            },
            queries::DisposedValue {
                disposition: "dispose".into(),
                grade: "X".into(),
                n_units: 3,
                list_price_yen: 0,
            },
        ];
        let r = recovered(&v, &disposed, (1, 4000, 2, 9000));
        assert_eq!(r.by_disposition["restock"], 9500);
        assert_eq!(r.by_disposition["dispose"], -300);
        assert_eq!(r.by_disposition["resale"], 4000);
        assert_eq!(r.total_yen, 9500 - 300 + 4000);
    }
}
