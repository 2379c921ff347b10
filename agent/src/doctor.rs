//! `modori-agent doctor`: what a site technician runs when something is wrong. Each check
//! passes, warns or fails with a reason; any failure makes the command exit non-zero.
//!
//! Ports the running agent holds cannot be opened a second time (serial ports open
//! exclusively), so when the agent runs, device states come from the agent itself.

use std::fmt;

use modori_runtime::checks::check;
pub use modori_runtime::checks::{any_failed, render, Check, Verdict};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use modori_shared::wire::handshake::{ClientHello, ServerHello};
use modori_shared::wire::messages::Message;
use rusqlite::{Connection, OpenFlags};

use crate::config::AgentConfig;
use crate::store;
use crate::sync_client::clock_skew_ms;
use modori_runtime::clock;
use modori_runtime::net::{read_frame, write_frame};
use modori_runtime::tls;

/// A certificate expiring sooner than this fails: renew it now.
pub const CERT_DAYS_LEFT_FAIL: i64 = 7;
/// A certificate expiring sooner than this warns.
pub const CERT_DAYS_LEFT_WARN: i64 = 30;
/// A clock off from the coordinator's by more than this fails (op timestamps would lie).
pub const CLOCK_SKEW_FAIL_MS: i64 = 5_000;
/// Less free space than this in the data dir fails: the site would soon refuse work.
pub const DISK_FREE_BYTES_FAIL: u64 = 256 * 1024 * 1024;
/// Less free space than this warns.
pub const DISK_FREE_BYTES_WARN: u64 = 2 * 1024 * 1024 * 1024;
/// How long the coordinator has to answer.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs every check for the site of `config`.
pub async fn run(config: &AgentConfig) -> Vec<Check> {
    let mut checks = vec![check(
        "config",
        Verdict::Pass,
        format!("site {}", config.site.id),
    )];
    checks.push(database(&config.db_path()));
    checks.push(certificate(config));
    checks.push(stations(config));
    let running = crate::ctl::request(&config.ctl_socket(), r#"{"command":"status"}"#)
        .await
        .ok();
    checks.extend(devices(config, running.as_ref()));
    let (reach, skew) = coordinator(config, running.as_ref()).await;
    checks.push(reach);
    checks.push(skew);
    checks.push(disk(&config.storage.data_dir));
    checks
}

fn database(path: &Path) -> Check {
    if !path.exists() {
        return check(
            "database",
            Verdict::Warn,
            format!(
                "{} does not exist yet (created at first start)",
                path.display()
            ),
        );
    }
    let opened =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).and_then(|c| {
            let ok: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
            Ok((c, ok))
        });
    match opened {
        Ok((_, ok)) if ok != "ok" => check(
            "database",
            Verdict::Fail,
            format!("integrity: {ok}; restore from a backup"),
        ),
        Ok((c, _)) => match store::snapshot(&c) {
            Ok(s) => check(
                "database",
                Verdict::Pass,
                format!(
                    "epoch {}, {} ops recorded, {} not yet acknowledged",
                    s.op_epoch,
                    s.op_head_seq,
                    s.op_head_seq - s.op_acked_seq.min(s.op_head_seq)
                ),
            ),
            Err(e) => check("database", Verdict::Fail, e.to_string()),
        },
        Err(e) => check(
            "database",
            Verdict::Fail,
            format!("{}: {e}", path.display()),
        ),
    }
}

/// Days from now until `not_after` (Unix seconds); negative once expired.
pub fn days_left(not_after_unix: i64, now_unix: i64) -> i64 {
    (not_after_unix - now_unix).div_euclid(86_400)
}

pub fn expiry_verdict(days_left: i64) -> Verdict {
    if days_left < CERT_DAYS_LEFT_FAIL {
        Verdict::Fail
    } else if days_left < CERT_DAYS_LEFT_WARN {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

fn certificate(config: &AgentConfig) -> Check {
    let certs = match tls::load_certs("site certificate", &config.tls.cert) {
        Ok(c) => c,
        Err(e) => return check("certificate", Verdict::Fail, e.to_string()),
    };
    if let Err(e) = tls::load_key("site key", &config.tls.key) {
        return check("certificate", Verdict::Fail, e.to_string());
    }
    if let Err(e) = tls::load_certs("CA certificate", &config.tls.ca_cert) {
        return check("certificate", Verdict::Fail, e.to_string());
    }
    let parsed = x509_parser::parse_x509_certificate(certs[0].as_ref());
    let Ok((_, cert)) = parsed else {
        return check(
            "certificate",
            Verdict::Fail,
            "the site certificate cannot be parsed",
        );
    };
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or("");
    if cn != config.site.id {
        return check(
            "certificate",
            Verdict::Fail,
            format!("issued to {cn:?}, but this site is {:?}: the coordinator would take it for another site", config.site.id),
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let validity = cert.validity();
    if validity.not_before.timestamp() > now {
        return check(
            "certificate",
            Verdict::Fail,
            "not valid yet (is this clock right?)",
        );
    }
    let left = days_left(validity.not_after.timestamp(), now);
    let verdict = expiry_verdict(left);
    let detail = if left < 0 {
        "expired: issue a new one with `modori-coordinator pki issue-site`".to_owned()
    } else {
        format!("{cn}, expires in {left} days")
    };
    check("certificate", verdict, detail)
}

/// A site without stations can only receive by `ctl`: worth a warning, since the shipped
/// configs list them commented out until the devices are plugged in.
fn stations(config: &AgentConfig) -> Check {
    if config.stations.is_empty() {
        return check(
            "stations",
            Verdict::Warn,
            "none configured: receiving works only by `ctl receive` (see [[stations]] in the config)",
        );
    }
    let kinds: Vec<String> = config
        .stations
        .iter()
        .map(|s| format!("{} ({:?})", s.id, s.kind).to_lowercase())
        .collect();
    check("stations", Verdict::Pass, kinds.join(", "))
}

fn devices(config: &AgentConfig, running: Option<&serde_json::Value>) -> Vec<Check> {
    if config.scanners.is_empty() && config.printers.is_empty() {
        return vec![check("devices", Verdict::Pass, "none configured")];
    }
    if let Some(status) = running {
        // The agent holds the ports: ask it.
        let devices = status["devices"].as_array().cloned().unwrap_or_default();
        return devices
            .iter()
            .map(|d| {
                let name = d["name"].as_str().unwrap_or("?");
                let state = &d["state"];
                if state["state"] == "connected" {
                    check(
                        "device",
                        Verdict::Pass,
                        format!("{name}: connected (as the running agent sees it)"),
                    )
                } else {
                    let why = state["last_error"].as_str().unwrap_or("disconnected");
                    check("device", Verdict::Fail, format!("{name}: {why}"))
                }
            })
            .collect();
    }
    let ports = config
        .scanners
        .iter()
        .map(|s| (&s.name, &s.path, s.baud_rate))
        .chain(
            config
                .printers
                .iter()
                .map(|p| (&p.name, &p.path, p.baud_rate)),
        );
    ports
        .map(
            |(name, path, baud)| match tokio_serial::new(path.to_string_lossy(), baud).open() {
                Ok(_) => check(
                    "device",
                    Verdict::Pass,
                    format!("{name}: {} opens", path.display()),
                ),
                Err(e) => check(
                    "device",
                    Verdict::Fail,
                    format!("{name}: {}: {e}", path.display()),
                ),
            },
        )
        .collect()
}

/// Reaches the coordinator over QUIC with the site's certificate. When the agent runs, its
/// own link and clock measurement are used instead of a second connection, which would
/// replace the agent's.
async fn coordinator(config: &AgentConfig, running: Option<&serde_json::Value>) -> (Check, Check) {
    let skew_check = |skew: Option<i64>| match skew {
        Some(ms) if ms.abs() > CLOCK_SKEW_FAIL_MS => check(
            "clock",
            Verdict::Fail,
            format!("{ms} ms off the coordinator's clock: fix NTP"),
        ),
        Some(ms) => check(
            "clock",
            Verdict::Pass,
            format!("{ms} ms off the coordinator's clock"),
        ),
        None => check(
            "clock",
            Verdict::Warn,
            "not measured (coordinator unreachable or on protocol 1)",
        ),
    };
    if let Some(status) = running {
        let connected = status["connected"].as_bool().unwrap_or(false);
        let at = status["coordinator"]
            .as_str()
            .map_or_else(|| config.coordinator.address.to_string(), str::to_owned);
        let reach = if connected {
            check(
                "coordinator",
                Verdict::Pass,
                format!("{at} connected (the running agent's link)"),
            )
        } else {
            let why = status["last_error"].as_str().unwrap_or("not connected yet");
            check("coordinator", Verdict::Fail, format!("{at}: {why}"))
        };
        return (reach, skew_check(status["clock_skew_ms"].as_i64()));
    }
    // Every replica in turn: the site must reach at least one, and the operator learns of
    // each that does not answer.
    let mut answered = Vec::new();
    let mut failed = Vec::new();
    let mut skew = None;
    for addr in config.coordinator.addresses() {
        match tokio::time::timeout(REACH_TIMEOUT, hello(config, addr)).await {
            Ok(Ok(s)) => {
                skew = skew.or(s);
                answered.push(addr.to_string());
            }
            Ok(Err(e)) => failed.push(format!("{addr}: {e}")),
            Err(_) => failed.push(format!("{addr}: no answer within {REACH_TIMEOUT:?}")),
        }
    }
    let reach = match (answered.is_empty(), failed.is_empty()) {
        (false, true) => check(
            "coordinator",
            Verdict::Pass,
            format!("{} answers with mutual TLS", answered.join(", ")),
        ),
        (false, false) => check(
            "coordinator",
            Verdict::Warn,
            format!(
                "{} answers with mutual TLS; {}",
                answered.join(", "),
                failed.join("; ")
            ),
        ),
        (true, _) => check("coordinator", Verdict::Fail, failed.join("; ")),
    };
    (reach, skew_check(skew))
}

/// A real hello from this site (the agent is stopped, so it replaces nothing); returns the
/// measured clock skew when the coordinator sends its clock.
async fn hello(config: &AgentConfig, addr: std::net::SocketAddr) -> Result<Option<i64>, String> {
    tls::install_crypto_provider();
    let e = |e: &dyn fmt::Display| e.to_string();
    let ca = tls::load_certs("CA certificate", &config.tls.ca_cert).map_err(|x| e(&x))?;
    let chain = tls::load_certs("site certificate", &config.tls.cert).map_err(|x| e(&x))?;
    let key = tls::load_key("site key", &config.tls.key).map_err(|x| e(&x))?;
    let client = tls::client_config(&ca, chain, key, config.sync.timing()).map_err(|x| e(&x))?;
    let bind = if addr.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let mut endpoint =
        quinn::Endpoint::client(bind.parse().map_err(|x| e(&x))?).map_err(|x| e(&x))?;
    endpoint.set_default_client_config(client);
    let conn = endpoint
        .connect(addr, &config.coordinator.server_name)
        .map_err(|x| e(&x))?
        .await
        .map_err(|x| e(&x))?;
    let snapshot = Connection::open_with_flags(config.db_path(), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()
        .and_then(|c| store::snapshot(&c).ok());
    let (epoch, cmd_epoch, cmd_seq) = snapshot
        .map_or((modori_shared::domain::Epoch(0), None, 0), |s| {
            (s.op_epoch, s.command_epoch, s.command_applied_seq)
        });
    let (mut send, mut recv) = conn.open_bi().await.map_err(|x| e(&x))?;
    let hello = ClientHello::new(
        config.site.id.clone(),
        epoch,
        cmd_epoch,
        cmd_seq,
        config.sync.protocol_version_max,
    );
    write_frame(&mut send, &hello.encode().map_err(|x| e(&x))?)
        .await
        .map_err(|x| e(&x))?;
    let body = read_frame(&mut recv)
        .await
        .map_err(|x| e(&x))?
        .ok_or("the coordinator closed the stream")?;
    let version = match ServerHello::decode(&body).map_err(|x| e(&x))? {
        ServerHello::Accepted { version, .. } => version,
        ServerHello::Refused { reason } => return Err(format!("refused: {reason}")),
    };
    let mut skew = None;
    if version >= 2 {
        if let Ok(Ok(Some(body))) =
            tokio::time::timeout(Duration::from_secs(2), read_frame(&mut recv)).await
        {
            if let Ok(Message::Clock { unix_ms }) = Message::decode(version, &body) {
                skew = Some(clock_skew_ms(unix_ms, clock::now_ms(), conn.rtt()));
            }
        }
    }
    conn.close(0u32.into(), b"doctor done");
    endpoint.wait_idle().await;
    Ok(skew)
}

fn disk(dir: &Path) -> Check {
    // Before the first start the data dir may not exist: the disk it will be on is that of
    // its nearest existing ancestor.
    let probe = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    match nix::sys::statvfs::statvfs(probe) {
        Ok(s) => {
            let free = s.blocks_available().saturating_mul(s.fragment_size());
            let verdict = if free < DISK_FREE_BYTES_FAIL {
                Verdict::Fail
            } else if free < DISK_FREE_BYTES_WARN {
                Verdict::Warn
            } else {
                Verdict::Pass
            };
            check(
                "disk",
                verdict,
                format!("{} MiB free in {}", free / (1024 * 1024), probe.display()),
            )
        }
        Err(e) => check("disk", Verdict::Fail, format!("{}: {e}", probe.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_without_stations_is_warned_about() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/sites");
        let mut config = AgentConfig::load(&dir.join("osaka.toml")).unwrap();
        config.stations.clear();
        let none = stations(&config);
        assert_eq!(none.verdict, Verdict::Warn);
        assert!(none.detail.contains("none configured"), "{}", none.detail);
        config.stations.push(crate::stations::StationConfig {
            id: "recv-1".into(),
            kind: crate::stations::StationKindName::Receiving,
            scanner: "scan-recv".into(),
            printer: None,
        });
        let one = stations(&config);
        assert_eq!(one.verdict, Verdict::Pass);
        assert_eq!(one.detail, "recv-1 (receiving)");
    }

    #[test]
    fn expiry_is_judged_in_whole_days() {
        let day = 86_400;
        assert_eq!(days_left(100 * day, 0), 100);
        assert_eq!(
            days_left(-1, 0),
            -1,
            "an expired certificate has negative days"
        );
        assert_eq!(expiry_verdict(100), Verdict::Pass);
        assert_eq!(expiry_verdict(CERT_DAYS_LEFT_WARN - 1), Verdict::Warn);
        assert_eq!(expiry_verdict(CERT_DAYS_LEFT_FAIL - 1), Verdict::Fail);
        assert_eq!(expiry_verdict(-3), Verdict::Fail);
    }
}
