//! The browser side over plain HTTP: login sets an HttpOnly session cookie and no page holds
//! the key; pages and their endpoints need a session of the right scope; revoking the key or
//! logging out ends the session; a session outlives a restart (even a `kill -9`) until it
//! expires; the live stream sends snapshots; sites report their devices
//! and the metrics show them, with HTTP latencies; orders are stored and found.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use modori_agent::Agent;
use modori_coordinator::http::session::SESSION_TTL_MS;
use modori_runtime::clock::ManualClock;
use modori_tests::procs::{Binaries, ProcFleet};
use modori_tests::{http_raw, small_fleet, wait_for, HttpResponse, TestFleet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(30);

fn error_code(res: &HttpResponse) -> String {
    let v: serde_json::Value = serde_json::from_str(&res.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", res.status, res.body));
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// Logs in with `key`: the answer (a redirect) and the session cookie, if one was set.
async fn login(
    addr: SocketAddr,
    key: &str,
    next: &str,
) -> anyhow::Result<(HttpResponse, Option<String>)> {
    let body = format!("key={key}&next={}", next.replace('/', "%2F"));
    let res = http_raw(
        addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    )
    .await?;
    let cookie = res
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .filter(|c| c.len() > "modori_session=".len())
        .map(str::to_owned);
    Ok((res, cookie))
}

async fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> anyhow::Result<HttpResponse> {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
    http_raw(addr, "GET", path, &headers, None).await
}

/// Opens the event stream and returns the first `event: snapshot` data line (or the status
/// line and headers of a refusal).
async fn first_event(addr: SocketAddr, cookie: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "GET /ui/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut text = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await??;
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(i) = text.find("event: snapshot") {
            if let Some(end) = text[i..].find("\n\n") {
                let event = &text[i..i + end];
                let data = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect::<Vec<_>>()
                    .join("");
                return Ok((200, data));
            }
        }
        if text.starts_with("HTTP/1.1 4") && text.contains("\r\n\r\n") {
            break;
        }
    }
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, text))
}

async fn make_key(fleet: &TestFleet, scope: &str) -> anyhow::Result<(String, String)> {
    let body = serde_json::json!({"scope": scope}).to_string();
    let (status, text) = fleet.api("POST", "/api/v1/keys", Some(&body)).await?;
    anyhow::ensure!(status == 201, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok((
        v["id"].as_str().unwrap_or_default().to_owned(),
        v["key"].as_str().unwrap_or_default().to_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_need_a_live_key_of_the_right_scope_and_pages_hold_no_key() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let addr = fleet.http();

    // Without a session: pages go to the login form, endpoints answer a JSON 401.
    let res = get(addr, "/", None).await?;
    assert_eq!(
        (res.status, res.header("location")),
        (303, Some("/login?next=/"))
    );
    let res = get(addr, "/store", None).await?;
    assert_eq!(res.header("location"), Some("/login?next=/store"));
    for path in [
        "/ui/state",
        "/ui/events",
        "/ui/store/state",
        "/ui/returns/RMA-1",
    ] {
        let res = get(addr, path, None).await?;
        assert_eq!(
            (res.status, error_code(&res).as_str()),
            (401, "unauthorized"),
            "{path}"
        );
    }
    // A bearer key is not a session.
    let bearer = format!("Bearer {}", fleet.ops_key);
    let res = http_raw(
        addr,
        "GET",
        "/ui/state",
        &[("Authorization", &bearer)],
        None,
    )
    .await?;
    assert_eq!(res.status, 401);
    let login_page = get(addr, "/login", None).await?;
    assert_eq!(login_page.status, 200);
    assert!(
        login_page.body.contains("name=\"key\""),
        "{}",
        login_page.body
    );

    // Wrong keys go back to the form, with the reason; a merchant key has no page.
    let (res, cookie) = login(addr, "modori_nope", "/").await?;
    assert_eq!(
        (res.status, res.header("location"), cookie),
        (303, Some("/login?error=key"), None)
    );
    let (_, merchant_key) = make_key(&fleet, "merchant:brand-a").await?;
    let (res, cookie) = login(addr, &merchant_key, "/").await?;
    assert_eq!(
        (res.header("location"), cookie),
        (Some("/login?error=scope"), None)
    );

    // The ops key: a session cookie that scripts cannot read, and a page without the key.
    let (res, cookie) = login(addr, &fleet.ops_key, "https://evil.example/").await?;
    assert_eq!((res.status, res.header("location")), (303, Some("/")));
    let set_cookie = res.header("set-cookie").unwrap_or_default().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains(&fleet.ops_key), "{set_cookie}");
    let ops = cookie.expect("a session cookie");
    let page = get(addr, "/", Some(&ops)).await?;
    assert_eq!(page.status, 200, "{}", page.body);
    // Without a language chosen or asked for by the browser, the page is in Japanese.
    assert!(
        page.body.contains("<html lang=\"ja\">") && page.body.contains("拠点の地図"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&fleet.ops_key));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    for asset in [
        "style.css",
        "common.js",
        "dashboard.js",
        "japan.js",
        "store.js",
    ] {
        let res = get(addr, &format!("/ui/assets/{asset}"), None).await?;
        assert_eq!(res.status, 200, "{asset}");
        assert!(!res.body.contains("modori_"), "{asset} names a key");
    }
    // The pages' icon, for any browser, with or without a session.
    let icon = get(addr, "/favicon.ico", None).await?;
    assert_eq!(icon.status, 200);
    assert_eq!(icon.header("content-type"), Some("image/svg+xml"));
    assert!(
        icon.body.starts_with("<svg") && icon.body.contains("</svg>"),
        "{}",
        icon.body
    );
    let state = get(addr, "/ui/state", Some(&ops)).await?;
    assert_eq!(state.status, 200, "{}", state.body);
    let snapshot: serde_json::Value = serde_json::from_str(&state.body)?;
    assert_eq!(snapshot["sites"].as_array().map(Vec::len), Some(1));
    assert_eq!(snapshot["thresholds"]["offline_minutes"], 5);
    assert_eq!(snapshot["time_zone"], "Asia/Tokyo");
    // The stream sends the same snapshot, live.
    let (status, data) = first_event(addr, &ops).await?;
    assert_eq!(status, 200, "{data}");
    let streamed: serde_json::Value = serde_json::from_str(&data)?;
    assert_eq!(streamed["sites"][0]["id"], fleet.site(0).id.as_str());
    // An ops session has no counter; a store session no dashboard.
    assert_eq!(
        get(addr, "/store", Some(&ops)).await?.header("location"),
        Some("/")
    );
    let res = get(addr, "/ui/store/state", Some(&ops)).await?;
    assert_eq!((res.status, error_code(&res).as_str()), (403, "forbidden"));
    let (store_key_id, store_key) = make_key(&fleet, "store:st-ginza").await?;
    let (res, cookie) = login(addr, &store_key, "/store").await?;
    assert_eq!(res.header("location"), Some("/store"));
    let store = cookie.expect("a store session");
    assert_eq!(
        get(addr, "/", Some(&store)).await?.header("location"),
        Some("/store")
    );
    assert_eq!(get(addr, "/store", Some(&store)).await?.status, 200);
    let res = get(addr, "/ui/state", Some(&store)).await?;
    assert_eq!(res.status, 403);
    let res = get(addr, "/ui/store/state", Some(&store)).await?;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("st-ginza"), "{}", res.body);
    assert!(
        res.body.contains(r#""time_zone":"Asia/Tokyo""#),
        "{}",
        res.body
    );

    // Revoking the key ends its sessions at once; logging out ends one.
    let (status, text) = fleet
        .api("DELETE", &format!("/api/v1/keys/{store_key_id}"), None)
        .await?;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        get(addr, "/ui/store/state", Some(&store)).await?.status,
        401
    );
    let res = http_raw(addr, "POST", "/logout", &[("Cookie", &ops)], None).await?;
    assert_eq!(res.status, 303);
    assert!(res
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(get(addr, "/ui/state", Some(&ops)).await?.status, 401);
    let (status, _) = first_event(addr, &ops).await?;
    assert_eq!(status, 401);
    fleet.shutdown().await;
    Ok(())
}

const BINS: Binaries = Binaries {
    agent: env!("CARGO_BIN_EXE_modori-agent-under-test"),
    coordinator: env!("CARGO_BIN_EXE_modori-coordinator-under-test"),
};

/// The sessions stored in a coordinator database, as (sha256, key id, scope, expires_ms).
fn stored_sessions(db: &Path) -> anyhow::Result<Vec<(String, String, String, i64)>> {
    let conn = rusqlite::Connection::open(db)?;
    let mut stmt =
        conn.prepare("SELECT sha256, key_id, scope, expires_ms FROM sessions ORDER BY sha256")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_the_coordinator_killed_and_restarted() -> anyhow::Result<()> {
    let mut fleet = ProcFleet::new(BINS)?;
    fleet.start_coordinator(None).await?;
    let addr = fleet.http;
    let (_, cookie) = login(addr, &fleet.ops_key, "/").await?;
    let cookie = cookie.expect("a session cookie");
    assert_eq!(get(addr, "/ui/state", Some(&cookie)).await?.status, 200);

    // Only the id's hash is stored, with its key and scope.
    fleet.kill_coordinator()?;
    let id = cookie.trim_start_matches("modori_session=");
    let stored = stored_sessions(&fleet.coordinator_db_path())?;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].0, modori_coordinator::apikeys::sha256_hex(id));
    assert_eq!(stored[0].2, "ops");
    let db = fleet.coordinator_db_path();
    for file in [db.clone(), db.with_extension("db-wal")] {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
            "the session id itself is in {}",
            file.display()
        );
    }

    fleet.start_coordinator(None).await?;
    let res = get(addr, "/ui/state", Some(&cookie)).await?;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(get(addr, "/", Some(&cookie)).await?.status, 200);
    fleet.terminate_coordinator(TIMEOUT).await?;
    Ok(())
}

/// 2040-01-01T00:00:00Z, far from the machine's clock.
const START_MS: i64 = 2_208_988_800_000;

async fn start_at(
    fleet: &TestFleet,
    clock: &Arc<ManualClock>,
) -> anyhow::Result<modori_coordinator::Coordinator> {
    Ok(modori_coordinator::Coordinator::start_with_clock(
        fleet.coordinator_config(),
        fleet.fleet.clone(),
        clock.clone(),
    )
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expires_across_a_restart_and_its_row_is_deleted() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    fleet.stop_agent(0).await;
    if let Some(c) = fleet.coordinator.take() {
        c.shutdown().await;
    }
    let clock = Arc::new(ManualClock::new(START_MS));
    let coordinator = start_at(&fleet, &clock).await?;
    let addr = coordinator.http_addr();
    let (_, early) = login(addr, &fleet.ops_key, "/").await?;
    let early = early.expect("a session cookie");
    clock.set(START_MS + SESSION_TTL_MS / 2);
    let (_, late) = login(addr, &fleet.ops_key, "/").await?;
    let late = late.expect("a session cookie");
    coordinator.shutdown().await;

    // Restarted when the first session has expired and the second has not.
    clock.set(START_MS + SESSION_TTL_MS);
    let coordinator = start_at(&fleet, &clock).await?;
    let addr = coordinator.http_addr();
    let res = get(addr, "/ui/state", Some(&late)).await?;
    assert_eq!(res.status, 200, "{}", res.body);
    let res = get(addr, "/ui/state", Some(&early)).await?;
    assert_eq!(
        (res.status, error_code(&res).as_str()),
        (401, "unauthorized")
    );
    let res = get(addr, "/", Some(&early)).await?;
    assert_eq!(res.header("location"), Some("/login?next=/"));
    let db = fleet.coordinator_config().db_path();
    let late_id = late.trim_start_matches("modori_session=");
    let stored = stored_sessions(&db)?;
    assert_eq!(
        stored.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
        vec![modori_coordinator::apikeys::sha256_hex(late_id)],
        "the expired session's row is deleted"
    );
    assert_eq!(stored[0].3, START_MS + SESSION_TTL_MS / 2 + SESSION_TTL_MS);
    coordinator.shutdown().await;
    Ok(())
}

/// How long the idle stream is measured.
const IDLE_WINDOW: Duration = Duration::from_secs(12);

/// One server-sent event of a raw HTTP/1.1 stream: (event, data); keep-alive comments and the
/// chunk sizes of the transfer encoding are skipped.
fn sse_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            event.map(|e| (e, data))
        })
        .collect()
}

/// The page's way of applying a `delta` event (`applyDelta` in `web/dashboard.js`).
fn apply_delta(doc: &mut serde_json::Value, changes: &serde_json::Value) -> anyhow::Result<()> {
    for change in changes.as_array().context("changes")? {
        let path = change[0].as_array().context("a path")?;
        let Some((last, steps)) = path.split_last() else {
            *doc = change[1].clone();
            continue;
        };
        let mut at = &mut *doc;
        for step in steps {
            at = match step.as_u64() {
                Some(i) => &mut at[i as usize],
                None => &mut at[step.as_str().context("a key")?],
            };
        }
        match (change.get(1), last.as_u64()) {
            (Some(v), Some(i)) => at[i as usize] = v.clone(),
            (Some(v), None) => at[last.as_str().context("a key")?] = v.clone(),
            (None, _) => {
                at.as_object_mut()
                    .context("an object")?
                    .remove(last.as_str().context("a key")?);
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_fleets_live_stream_stays_within_its_budget_and_correct() -> anyhow::Result<()> {
    // Nine sites with their agents, returns waiting at stores, an anomaly: the demo's shape,
    // then nothing happening.
    let fleet = TestFleet::start().await?;
    let addr = fleet.http();
    for store in [
        "st-ginza",
        "st-sendai-ichibancho",
        "st-osaka-umeda",
        "st-hiroshima-hondori",
        "st-sapporo-odori",
    ] {
        let body = format!(
            r#"{{"origin": {{"store_id": "{store}"}},
                "lines": [{{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}}]}}"#
        );
        let (status, text) = fleet.api("POST", "/api/v1/returns", Some(&body)).await?;
        anyhow::ensure!(status == 201, "{store}: {text}");
    }
    let (_, cookie) = login(addr, &fleet.ops_key, "/").await?;
    let cookie = cookie.expect("a session cookie");
    wait_for("nine sites online", TIMEOUT, || {
        let cookie = cookie.clone();
        async move {
            let res = get(addr, "/ui/state", Some(&cookie)).await?;
            let v: serde_json::Value = serde_json::from_str(&res.body)?;
            Ok(v["n_online"] == 9)
        }
    })
    .await?;

    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "GET /ui/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut text = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Up to the end of the first event, the whole state.
    let first_end = loop {
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf)).await??;
        anyhow::ensure!(n > 0, "the stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(i) = text.find("event: snapshot") {
            if let Some(end) = text[i..].find("\n\n") {
                break i + end + 2;
            }
        }
    };
    let started = tokio::time::Instant::now();
    let mut n_bytes = text.len() - first_end;
    while started.elapsed() < IDLE_WINDOW {
        let left = IDLE_WINDOW.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(n) => {
                let n = n?;
                anyhow::ensure!(n > 0, "the stream ended");
                n_bytes += n;
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            Err(_) => break,
        }
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let bytes_per_s = n_bytes as f64 / elapsed_s;
    let events = sse_events(&text);
    let (kind, first) = events.first().context("a first event")?;
    assert_eq!(kind, "snapshot");
    eprintln!(
        "idle stream: {n_bytes} bytes in {elapsed_s:.1} s ({bytes_per_s:.0} B/s), first state {} bytes, {} events",
        first.len(),
        events.len()
    );
    assert!(
        bytes_per_s <= modori_coordinator::http::ui::SSE_IDLE_BYTES_PER_S_MAX as f64,
        "{bytes_per_s:.0} B/s over {elapsed_s:.1} s"
    );
    // Still live: an event every push, each one a delta on an idle fleet.
    assert!(
        events.len() >= 8,
        "{} events in {elapsed_s:.1} s",
        events.len()
    );
    assert!(
        events[1..].iter().all(|(kind, _)| kind == "delta"),
        "{events:?}"
    );

    // The deltas applied to the first state give what the coordinator holds.
    let mut state: serde_json::Value = serde_json::from_str(first)?;
    for (_, data) in &events[1..] {
        apply_delta(&mut state, &serde_json::from_str(data)?)?;
    }
    let res = get(addr, "/ui/state", Some(&cookie)).await?;
    let mut now: serde_json::Value = serde_json::from_str(&res.body)?;
    // Times move on between the last event and this request; everything else is idle.
    for v in [&mut state, &mut now] {
        v["now_ms"] = serde_json::Value::Null;
        for site in v["sites"].as_array_mut().context("sites")? {
            site["last_seen_ms"] = serde_json::Value::Null;
            site["lag_seconds"] = serde_json::Value::Null;
        }
    }
    assert_eq!(state, now);
    assert_eq!(state["pipeline"]["expected"], 5, "{}", state["pipeline"]);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_report_devices_and_the_metrics_show_them_with_latencies() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let dir = tempfile::tempdir()?;
    let mut devices = modori_demo::station_sim::SimDevices::plug_in(dir.path())?;
    fleet.stop_agent(0).await;
    let mut config = fleet.agent_config(0);
    devices.configure(&mut config);
    config.metrics.listen = Some("127.0.0.1:0".parse()?);
    let agent = Agent::start(config).await?;
    let site = fleet.site(0).id.to_string();
    let ctx = fleet.coordinator().ctx().clone();
    let devices_of = |ctx: std::sync::Arc<modori_coordinator::Ctx>| async move {
        let snapshot = ctx
            .dashboard
            .snapshot(&ctx, modori_runtime::clock::now_ms())
            .await?;
        Ok::<_, anyhow::Error>(snapshot.sites[0].devices.clone().unwrap_or_default())
    };
    wait_for("the site's four devices, connected", TIMEOUT, || {
        let ctx = ctx.clone();
        async move {
            let d = devices_of(ctx).await?;
            Ok(d.len() == 4 && d.iter().all(|d| d.connected))
        }
    })
    .await?;
    devices.printer.unplug().await;
    wait_for("the printer reported down", TIMEOUT, || {
        let ctx = ctx.clone();
        async move {
            let d = devices_of(ctx).await?;
            Ok(d.iter().any(|d| d.name == "zebra" && !d.connected))
        }
    })
    .await?;
    // With no grace period, a device down is an alert naming the site.
    let snapshot = ctx
        .dashboard
        .snapshot(&ctx, modori_runtime::clock::now_ms())
        .await?;
    let config = modori_coordinator::config::AlertsSection {
        device_down_minutes: 0,
        ..Default::default()
    };
    let alerts =
        modori_coordinator::dashboard::alerts(&config, snapshot.now_ms, 0, &snapshot.sites);
    assert!(
        alerts
            .iter()
            .any(|a| a.kind == "device_down" && a.site == site && a.message.contains("zebra")),
        "{alerts:?}"
    );

    // A request before, to be timed.
    modori_tests::http_get(fleet.http(), "/healthz").await?;
    let (_, text) = modori_tests::http_get(fleet.http(), "/metrics").await?;
    for needle in [
        format!("modori_site_devices_down{{site=\"{site}\"}} 1"),
        "modori_http_request_duration_seconds_bucket".to_owned(),
        "route=\"/healthz\"".to_owned(),
        "modori_pipeline_units{step=\"expected\"}".to_owned(),
        "modori_db_queue_depth".to_owned(),
        format!("modori_site_commands_pending{{site=\"{site}\"}}"),
        "modori_alerts".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle} missing from:\n{text}");
    }
    let metrics = agent.metrics_addr().expect("metrics enabled");
    let (_, text) = modori_tests::http_get(metrics, "/metrics").await?;
    for needle in [
        "modori_agent_device_connected{device=\"zebra\",kind=\"printer\"} 0",
        "modori_agent_device_connected{device=\"scan-recv\",kind=\"scanner\"} 1",
        "modori_agent_printer_jobs_waiting{device=\"zebra\",kind=\"printer\"}",
        "modori_agent_db_queue_depth",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    devices.printer.replug().await?;
    wait_for("the printer reported back", TIMEOUT, || {
        let ctx = ctx.clone();
        async move { Ok(devices_of(ctx).await?.iter().all(|d| d.connected)) }
    })
    .await?;
    agent.shutdown().await;
    drop(devices);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_stored_by_merchant_and_checked_field_by_field() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let body = r#"{"orders": [{"ref": "ORD-1", "customer_ref": "C-1", "ordered_at": "2026-01-02T03:04:05+09:00",
                               "lines": [{"sku": "TEE-WHT-M", "qty": 2}]}]}"#;
    let (status, text) = fleet
        .api("PUT", "/api/v1/orders/brand-a", Some(body))
        .await?;
    assert_eq!(status, 200, "{text}");
    let (status, text) = fleet
        .api("GET", "/api/v1/orders/brand-a/ORD-1", None)
        .await?;
    assert_eq!(status, 200, "{text}");
    let order: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(order["customer_ref"], "C-1");
    assert_eq!(order["ordered_at"], "2026-01-01T18:04:05.000Z");
    assert_eq!(order["lines"][0]["qty"], 2);
    let (status, _) = fleet
        .api("GET", "/api/v1/orders/brand-b/ORD-1", None)
        .await?;
    assert_eq!(status, 404);
    for (body, field) in [
        (r#"{"orders": []}"#, "orders"),
        (
            r#"{"orders": [{"ref": "A B", "ordered_at": "2026-01-02T03:04:05Z", "lines": [{"sku": "A", "qty": 1}]}]}"#,
            "orders[0].ref",
        ),
        (
            r#"{"orders": [{"ref": "A", "ordered_at": "yesterday", "lines": [{"sku": "A", "qty": 1}]}]}"#,
            "orders[0].ordered_at",
        ),
        (
            r#"{"orders": [{"ref": "A", "ordered_at": "2026-01-02T03:04:05Z", "lines": [{"sku": "A", "qty": 0}]}]}"#,
            "orders[0].lines[0].qty",
        ),
        (
            r#"{"orders": [{"ref": "A", "customer_ref": "anon-1", "ordered_at": "2026-01-02T03:04:05Z", "lines": [{"sku": "A", "qty": 1}]}]}"#,
            "orders[0].customer_ref",
        ),
    ] {
        let (status, text) = fleet
            .api("PUT", "/api/v1/orders/brand-a", Some(body))
            .await?;
        assert_eq!(status, 422, "{body}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(v["error"]["field"], field, "{body}: {text}");
    }
    // Another merchant's key reaches only its own orders.
    let (_, other) = make_key(&fleet, "merchant:brand-b").await?;
    let res = modori_tests::http_request_as(
        fleet.http(),
        Some(&other),
        "GET",
        "/api/v1/orders/brand-a/ORD-1",
        None,
    )
    .await?;
    assert_eq!(res.0, 403, "{}", res.1);
    fleet.shutdown().await;
    Ok(())
}

/// POSTs JSON with a session cookie.
async fn post_json(
    addr: SocketAddr,
    path: &str,
    cookie: &str,
    body: &serde_json::Value,
) -> anyhow::Result<HttpResponse> {
    let text = body.to_string();
    http_raw(
        addr,
        "POST",
        path,
        &[("Cookie", cookie), ("Content-Type", "application/json")],
        Some(text.as_bytes()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_takes_back_only_what_the_order_and_the_policy_allow() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let addr = fleet.http();
    let catalog = r#"{"items": [
        {"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900},
        {"sku": "SNK-RUN-27", "category": "shoes", "price_yen": 12000, "final_sale": true}]}"#;
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(catalog))
        .await?;
    assert_eq!(status, 200, "{text}");
    let recent = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let old = (chrono::Utc::now() - chrono::Duration::days(60)).to_rfc3339();
    let orders = serde_json::json!({"orders": [
        {"ref": "ORD-1", "customer_ref": "C-7", "ordered_at": recent,
         "lines": [{"sku": "TEE-WHT-M", "qty": 1}, {"sku": "SNK-RUN-27", "qty": 1}]},
        {"ref": "ORD-OLD", "ordered_at": old, "lines": [{"sku": "TEE-WHT-M", "qty": 1}]}]});
    let (status, text) = fleet
        .api("PUT", "/api/v1/orders/brand-a", Some(&orders.to_string()))
        .await?;
    assert_eq!(status, 200, "{text}");
    let (_, store_key) = make_key(&fleet, "store:st-ginza").await?;
    let (_, cookie) = login(addr, &store_key, "/store").await?;
    let store = cookie.expect("a store session");

    let found = get(addr, "/ui/store/orders?q=C-7", Some(&store)).await?;
    assert_eq!(found.status, 200, "{}", found.body);
    let found: serde_json::Value = serde_json::from_str(&found.body)?;
    assert_eq!(found[0]["lines"][0]["returnable"], 1, "{found}");
    assert_eq!(found[0]["lines"][1]["final_sale"], true, "{found}");

    let ask = |order: &str, sku: &str, qty: u32, dry_run: bool| {
        serde_json::json!({"merchant": "brand-a", "order_ref": order, "resolution": "refund",
                           "dry_run": dry_run,
                           "lines": [{"sku": sku, "qty": qty, "reason": "changed_mind"}]})
    };
    let cases = [
        (ask("ORD-1", "SNK-RUN-27", 1, false), 422, "lines[0]"),
        (ask("ORD-1", "TEE-WHT-M", 2, false), 422, "lines[0].qty"),
        (ask("ORD-1", "CAP-WOOL-F", 1, false), 422, "lines[0].sku"),
        (ask("ORD-OLD", "TEE-WHT-M", 1, false), 422, "order_ref"),
        (ask("ORD-NONE", "TEE-WHT-M", 1, false), 404, ""),
    ];
    for (body, status, field) in cases {
        let res = post_json(addr, "/ui/store/returns", &store, &body).await?;
        assert_eq!(res.status, status, "{body}: {}", res.body);
        if !field.is_empty() {
            let v: serde_json::Value = serde_json::from_str(&res.body)?;
            assert_eq!(v["error"]["field"], field, "{body}: {}", res.body);
        }
    }
    // A quote registers nothing; the return itself is routed and listed as waiting.
    let quote = post_json(
        addr,
        "/ui/store/returns",
        &store,
        &ask("ORD-1", "TEE-WHT-M", 1, true),
    )
    .await?;
    assert_eq!(quote.status, 200, "{}", quote.body);
    let quote: serde_json::Value = serde_json::from_str(&quote.body)?;
    assert_eq!(
        (quote["rma"].is_null(), quote["policy"]["fee_yen"].as_u64()),
        (true, Some(500))
    );
    let done = post_json(
        addr,
        "/ui/store/returns",
        &store,
        &ask("ORD-1", "TEE-WHT-M", 1, false),
    )
    .await?;
    assert_eq!(done.status, 201, "{}", done.body);
    let done: serde_json::Value = serde_json::from_str(&done.body)?;
    assert_eq!(done["site"], fleet.site(0).id.as_str());
    let state = get(addr, "/ui/store/state", Some(&store)).await?;
    assert!(
        state.body.contains(done["rma"].as_str().unwrap_or("?")),
        "{}",
        state.body
    );
    // Nothing of that line is left to return.
    let again = post_json(
        addr,
        "/ui/store/returns",
        &store,
        &ask("ORD-1", "TEE-WHT-M", 1, false),
    )
    .await?;
    assert_eq!(again.status, 422, "{}", again.body);
    // Another store's counter cannot print this return's label.
    let (_, other_key) = make_key(&fleet, "store:st-shibuya").await?;
    let (_, other) = login(addr, &other_key, "/store").await?;
    let other = other.expect("a session");
    let rma = done["rma"].as_str().unwrap_or_default();
    let res = get(addr, &format!("/ui/store/labels/{rma}/zpl"), Some(&other)).await?;
    assert_eq!(res.status, 403, "{}", res.body);
    // Nor its customer's receipt, which would mint a token to the customer's status page.
    let res = get(addr, &format!("/ui/store/receipts/{rma}"), Some(&other)).await?;
    assert_eq!(res.status, 403, "{}", res.body);
    let res = get(addr, &format!("/ui/store/labels/{rma}/zpl"), Some(&store)).await?;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body.starts_with("^XA") && res.body.contains(rma),
        "{}",
        res.body
    );
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_finds_orders_in_any_case_and_exchanges_only_catalogue_products(
) -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let addr = fleet.http();
    let catalog = r#"{"items": [
        {"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900},
        {"sku": "TEE-WHT-L", "category": "tops", "price_yen": 2900},
        {"sku": "SNK-RUN-27", "category": "shoes", "price_yen": 12000, "final_sale": true}]}"#;
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(catalog))
        .await?;
    assert_eq!(status, 200, "{text}");
    // The catalogue GET answers is taken back by PUT as it is.
    let (status, got) = fleet.api("GET", "/api/v1/catalog/brand-a", None).await?;
    assert_eq!(status, 200, "{got}");
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(&got))
        .await?;
    assert_eq!(status, 200, "{got}: {text}");
    let (_, again) = fleet.api("GET", "/api/v1/catalog/brand-a", None).await?;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&again)?,
        serde_json::from_str::<serde_json::Value>(&got)?
    );
    let other = got.replacen("brand-a", "brand-b", 1);
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(&other))
        .await?;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains(r#""field":"merchant""#), "{text}");

    let recent = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let orders = serde_json::json!({"orders": [
        {"ref": "DEMO-1002", "customer_ref": "C-Seven", "ordered_at": recent,
         "lines": [{"sku": "TEE-WHT-M", "qty": 2}]}]});
    let (status, text) = fleet
        .api("PUT", "/api/v1/orders/brand-a", Some(&orders.to_string()))
        .await?;
    assert_eq!(status, 200, "{text}");
    let (_, store_key) = make_key(&fleet, "store:st-ginza").await?;
    let (_, cookie) = login(addr, &store_key, "/store").await?;
    let store = cookie.expect("a store session");
    for typed in ["demo-1002", "DEMO-1002", "c-seven"] {
        let found = get(addr, &format!("/ui/store/orders?q={typed}"), Some(&store)).await?;
        assert_eq!(found.status, 200, "{}", found.body);
        let found: serde_json::Value = serde_json::from_str(&found.body)?;
        assert_eq!(found[0]["order_ref"], "DEMO-1002", "{typed}: {found}");
    }

    let ask = |qty: u32, exchange: &str| {
        serde_json::json!({"merchant": "brand-a", "order_ref": "DEMO-1002",
                           "resolution": "exchange", "exchange_sku": exchange,
                           "lines": [{"sku": "TEE-WHT-M", "qty": qty, "reason": "too_small"}]})
    };
    for (body, field) in [
        (ask(0, "TEE-WHT-L"), "lines[0].qty"),
        (ask(1, "NOPE-SKU"), "exchange_sku"),
        (ask(1, "SNK-RUN-27"), "exchange_sku"),
    ] {
        let res = post_json(addr, "/ui/store/returns", &store, &body).await?;
        assert_eq!(res.status, 422, "{body}: {}", res.body);
        let v: serde_json::Value = serde_json::from_str(&res.body)?;
        assert_eq!(v["error"]["field"], field, "{body}: {}", res.body);
    }
    let res = post_json(addr, "/ui/store/returns", &store, &ask(1, "TEE-WHT-L")).await?;
    assert_eq!(res.status, 201, "{}", res.body);

    // The store's API route refuses an exchange for a product the catalogue does not have:
    // the SKU names nothing the merchant sells (404, named).
    let body = serde_json::json!({"merchant": "brand-a", "resolution": "exchange",
                                  "exchange_sku": "NOPE-SKU",
                                  "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]});
    let (status, text) = fleet
        .api(
            "POST",
            "/api/v1/stores/st-ginza/returns",
            Some(&body.to_string()),
        )
        .await?;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains(r#""field":"exchange_sku""#), "{text}");
    fleet.shutdown().await;
    Ok(())
}
