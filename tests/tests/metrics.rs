//! Metrics an operator watches: the agent's sync position and catch-up on its local port, the
//! coordinator's applied ops and lag per site; both endpoints in the form a scraper asks for,
//! judged by promtool and Prometheus' parsers, and bounded whatever clients send.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use modori_agent::Agent;
use modori_shared::domain::Sku;
use modori_tests::{http_get, http_raw, wait_for, TestFleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_and_coordinator_export_sync_metrics() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start().await?;
    fleet.stop_agent(0).await;
    let mut config = fleet.agent_config(0);
    config.metrics.listen = Some("127.0.0.1:0".parse()?);
    let agent = Agent::start(config).await?;
    let addr = agent.metrics_addr().expect("metrics enabled");
    for _ in 0..3 {
        agent
            .handle()
            .receive_unit(None, Sku::new("CAP-WOOL-F")?, "B")
            .await?;
    }
    wait_for(
        "agent metrics show the acks",
        Duration::from_secs(20),
        || async move {
            let (_, text) = http_get(addr, "/metrics").await?;
            Ok(text.contains("modori_agent_ops_acked_total 3"))
        },
    )
    .await?;
    let (status, text) = http_get(addr, "/metrics").await?;
    assert_eq!(status, 200);
    for needle in [
        "modori_agent_outbox_pending 0",
        "modori_agent_outbox_head_seq 3",
        "modori_agent_connected 1",
        "modori_agent_connects_total 1",
        "modori_agent_catch_up_estimated_seconds",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }

    let site = fleet.site(0).id.to_string();
    let _ = fleet.api("GET", "/api/v1/sites", None).await?;
    let (status, text) = http_get(fleet.http(), "/metrics").await?;
    assert_eq!(status, 200);
    let applied = format!("modori_ops_applied_total{{site=\"{site}\"}} 3");
    assert!(text.contains(&applied), "{applied} missing from:\n{text}");
    assert!(
        text.contains(&format!("modori_site_lag_ops{{site=\"{site}\"}} 0")),
        "{text}"
    );
    assert!(text.contains("modori_sites_online 9"), "{text}");
    agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}

/// Prometheus' own Python parsers (PyPI `prometheus-client`) read the classic text (argv 1) and
/// the OpenMetrics text (argv 2) and must find the same families with the same types.
const PARSE_BOTH: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families as classic
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
a = {(f.name, f.type) for f in classic(open(sys.argv[1]).read())}
b = {(f.name, f.type) for f in openmetrics(open(sys.argv[2]).read())}
if a != b or not a:
    sys.exit(f"classic only: {sorted(a - b)}; openmetrics only: {sorted(b - a)}")
print(len(a), "families")
"#;

/// Scrapes `addr` in both forms and has promtool and Prometheus' parsers judge them; returns
/// the classic text.
async fn judge_metrics(addr: SocketAddr, dir: &Path) -> anyhow::Result<String> {
    let classic = http_raw(addr, "GET", "/metrics", &[], None).await?;
    assert_eq!(classic.status, 200);
    assert_eq!(
        classic.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let prometheus_accept =
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
         version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let open = http_raw(
        addr,
        "GET",
        "/metrics",
        &[("Accept", prometheus_accept)],
        None,
    )
    .await?;
    assert_eq!(
        open.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(open.body.ends_with("# EOF\n"), "{}", open.body);
    assert!(!classic.body.contains("# EOF"), "{}", classic.body);

    let classic_path = dir.join("classic.txt");
    let open_path = dir.join("openmetrics.txt");
    std::fs::write(&classic_path, &classic.body)?;
    std::fs::write(&open_path, &open.body)?;
    let lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&classic_path)?)
        .output()
        .context("promtool runs (Debian package prometheus; scripts/test.sh installs it)")?;
    assert!(
        lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr),
        classic.body
    );
    let parsed = Command::new(modori_tests::venv_python("prometheus-client"))
        .arg("-c")
        .arg(PARSE_BOTH)
        .arg(&classic_path)
        .arg(&open_path)
        .output()?;
    assert!(
        parsed.status.success(),
        "Prometheus' parsers: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    Ok(classic.body)
}

/// 200 requests with made-up methods to a route, 200 with them to paths that match no route,
/// and 200 GETs of made-up returns.
async fn made_up_requests(addr: SocketAddr, prefix: &str) -> anyhow::Result<()> {
    for i in 0..200 {
        let method = format!("{prefix}{i}");
        http_raw(addr, &method, "/healthz", &[], None).await?;
        http_raw(addr, &method, &format!("/no/such/{prefix}/{i}"), &[], None).await?;
        http_raw(
            addr,
            "GET",
            &format!("/api/v1/returns/{prefix}-{i}"),
            &[],
            None,
        )
        .await?;
    }
    Ok(())
}

/// Each sample's name and labels, without its value.
fn series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stay_bounded_and_both_text_forms_pass_prometheus_tools() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut fleet = TestFleet::start().await?;
    let addr = fleet.http();
    // Every route class a client can reach once, so the families exist before the baseline.
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/nowhere"),
        ("BREW", "/healthz"),
    ] {
        http_raw(addr, method, path, &[], None).await?;
    }
    let before = judge_metrics(addr, dir.path()).await?;
    made_up_requests(addr, "MADEUP").await?;
    let after = judge_metrics(addr, dir.path()).await?;
    assert!(
        !after.contains("MADEUP") && !after.contains("/no/such"),
        "{after}"
    );
    assert!(after.contains("method=\"other\""), "{after}");
    assert!(after.contains("route=\"unmatched\""), "{after}");
    // 600 requests may add the series of the routes first reached here, not one per request.
    let grown = after.len().saturating_sub(before.len());
    println!(
        "coordinator /metrics: {} bytes before, {} after 600 made-up requests",
        before.len(),
        after.len()
    );
    assert!(
        grown < 8 * 1024,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    // Another 600 with other names add no series at all.
    made_up_requests(addr, "INVENTED").await?;
    let again = judge_metrics(addr, dir.path()).await?;
    assert_eq!(
        series(&again),
        series(&after),
        "new series after a second round:\n{again}"
    );

    fleet.stop_agent(0).await;
    let mut config = fleet.agent_config(0);
    config.metrics.listen = Some("127.0.0.1:0".parse()?);
    let agent = Agent::start(config).await?;
    let agent_addr = agent.metrics_addr().expect("metrics enabled");
    agent
        .handle()
        .receive_unit(None, Sku::new("CAP-WOOL-F")?, "B")
        .await?;
    let text = judge_metrics(agent_addr, dir.path()).await?;
    assert!(
        text.contains("# TYPE modori_agent_ops_acked_total counter"),
        "{text}"
    );
    agent.shutdown().await;
    fleet.shutdown().await;
    Ok(())
}
