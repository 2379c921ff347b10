//! The report: every figure beside its target and the machine it came from, as `report.json`
//! and `report.md`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::machine::Machine;

/// How a figure is judged against its target.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Cmp {
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Target {
    pub cmp: Cmp,
    pub value: f64,
}

impl Target {
    pub fn at_least(value: f64) -> Self {
        Self {
            cmp: Cmp::AtLeast,
            value,
        }
    }

    pub fn below(value: f64) -> Self {
        Self {
            cmp: Cmp::Below,
            value,
        }
    }

    pub fn met_by(&self, v: f64) -> bool {
        match self.cmp {
            Cmp::AtLeast => v >= self.value,
            Cmp::Below => v < self.value,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// Stable name, for scripts (see [`FIGURE_KEYS`]).
    pub key: &'static str,
    pub label: String,
    /// `None` when it could not be measured here (the note says why).
    pub value: Option<f64>,
    pub unit: &'static str,
    pub target: Option<Target>,
    /// Whether the value meets the target; `None` without a target or a value.
    pub met: Option<bool>,
    pub note: Option<String>,
}

impl Figure {
    pub fn new(
        key: &'static str,
        label: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            key,
            label: label.into(),
            value: Some(value),
            unit,
            target: None,
            met: None,
            note: None,
        }
    }

    pub fn missing(key: &'static str, label: impl Into<String>, unit: &'static str) -> Self {
        Self {
            value: None,
            ..Self::new(key, label, 0.0, unit)
        }
    }

    pub fn target(mut self, target: Target) -> Self {
        self.met = self.value.map(|v| target.met_by(v));
        self.target = Some(target);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// Every figure a report carries, in report order.
pub const FIGURE_KEYS: &[&str] = &[
    "ops_per_second_applied",
    "http_json_baseline_ops_per_second",
    "apply_ceiling_ops_per_second",
    "applied_over_ceiling",
    "wire_quic_cpu_us_per_op",
    "wire_http_json_cpu_us_per_op",
    "wire_http_json_over_quic_cpu",
    "quic_over_http_json",
    "ack_latency_p50_ms",
    "ack_latency_p99_ms",
    "scan_to_coordinator_p50_ms",
    "scan_to_coordinator_p99_ms",
    "receipt_confirmed_p99_ms",
    "online_receipts_per_second",
    "catch_up_seconds",
    "catch_up_drain_seconds",
    "catch_up_ops_per_second",
    "routing_decision_p99_us",
    "routing_decision_p99_us_load_fleet",
    "agent_idle_rss_mib",
    "agent_load_rss_mib",
    "catch_up_agent_rss_mib",
    "agent_binary_mib",
    "agent_stripped_binary_mib",
    "sim_connections_held",
    "coordinator_idle_rss_mib",
    "coordinator_load_rss_mib",
    "coordinator_cpu_percent_idle",
    "coordinator_cpu_percent_online",
    "coordinator_cpu_percent_throughput",
    "throughput_cpu_seconds_quic",
    "throughput_cpu_seconds_http_json",
    "harness_rss_mib",
];

/// Every op recorded at a site applied exactly once at the coordinator (and at the baseline's
/// store, for the ops it was given).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExactlyOnce {
    pub sites_checked: usize,
    /// Ops the harness recorded (and each site's outbox holds).
    pub ops_recorded: u64,
    /// Rows in the coordinator's `ops` table for those sites.
    pub ops_applied: u64,
    /// Units received, at the coordinator (one per receipt).
    pub units: u64,
    pub anomalies: u64,
    /// The first sites whose counts disagree, with what disagrees.
    pub wrong: Vec<String>,
    pub baseline_ops_given: u64,
    pub baseline_ops_applied: u64,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub parameters: serde_json::Value,
    pub binaries: serde_json::Value,
    pub figures: Vec<Figure>,
    pub exactly_once: ExactlyOnce,
    /// How each figure is measured.
    pub method: Vec<String>,
    pub elapsed_seconds: f64,
}

impl Report {
    pub fn figure(&self, key: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.key == key)
    }

    /// Writes `report.json` and `report.md` into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("report.json"), json + "\n")?;
        std::fs::write(dir.join("report.md"), self.markdown())
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = writeln!(out, "# Modori fleet load report\n");
        let _ = writeln!(
            out,
            "Machine: {} ({} cores, {:.1} GiB, Linux {}); harness built `{}`; run took {:.0} s.\n",
            m.cpu_model, m.cores, m.memory_gib, m.kernel, m.build_profile, self.elapsed_seconds
        );
        let _ = writeln!(out, "Parameters: `{}`\n", self.parameters);
        let _ = writeln!(out, "Binaries: `{}`\n", self.binaries);
        let _ = writeln!(out, "| figure | value | target | met |");
        let _ = writeln!(out, "| --- | ---: | --- | --- |");
        for f in &self.figures {
            let value = match f.value {
                Some(v) => format!("{} {}", number(v), f.unit),
                None => "n/a".into(),
            };
            let target = f.target.map_or(String::new(), |t| {
                let cmp = match t.cmp {
                    Cmp::AtLeast => "≥",
                    Cmp::Below => "<",
                };
                format!("{cmp} {} {}", number(t.value), f.unit)
            });
            let met = match f.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let note = f.note.as_ref().map_or(String::new(), |n| format!(" ({n})"));
            let _ = writeln!(out, "| {}{note} | {value} | {target} | {met} |", f.label);
        }
        let e = &self.exactly_once;
        let _ = writeln!(
            out,
            "\nExactly once: **{}** — {} sites, {} ops recorded, {} applied, {} units, {} anomalies; \
             baseline store: {} of {} ops applied.{}\n",
            if e.ok { "yes" } else { "NO" },
            e.sites_checked,
            e.ops_recorded,
            e.ops_applied,
            e.units,
            e.anomalies,
            e.baseline_ops_applied,
            e.baseline_ops_given,
            if e.wrong.is_empty() {
                String::new()
            } else {
                format!(" Wrong: {}", e.wrong.join("; "))
            }
        );
        let _ = writeln!(out, "## Method\n");
        for line in &self.method {
            let _ = writeln!(out, "- {line}");
        }
        out
    }
}

/// A figure for people: thousands separated, two decimals below 100, none above.
pub fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        let n = v.round() as i64;
        let digits = n.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if n < 0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_targets() {
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(123.0), "123");
        assert_eq!(number(12.5), "12.50");
        assert_eq!(number(20.0), "20");
        assert!(Target::at_least(100.0).met_by(100.0));
        assert!(!Target::below(30.0).met_by(30.0));
        let f = Figure::new("k", "label", 25.0, "MiB").target(Target::below(30.0));
        assert_eq!(f.met, Some(true));
        assert_eq!(
            Figure::missing("k", "l", "x")
                .target(Target::below(1.0))
                .met,
            None
        );
    }
}
