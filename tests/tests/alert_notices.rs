//! Alerts reach people, in `[alerts] language`: a coordinator on an injected clock whose one site never connects
//! raises its offline alert once the threshold has passed; a real SMTP server (aiosmtpd, as in
//! `notifications.rs`) receives the mail to `[alerts] email_to` and a local HTTP stub the
//! Slack-style webhook's `{"text": …}`, once while the alert stays raised and again after the
//! re-notify interval; a notice queued while the mail server is down is delivered after a
//! restart; a muted alert sends nothing until its mute ends.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modori_coordinator::config::{AlertLanguage, CoordinatorConfig};
use modori_coordinator::notify::mail::{MailSection, Security};
use modori_coordinator::pki::PkiPaths;
use modori_coordinator::store::{alert_notices, alert_silences};
use modori_coordinator::Coordinator;
use modori_demo::local::{coordinator_config, ensure_pki};
use modori_runtime::clock::ManualClock;
use modori_tests::smtp::Sink;
use modori_tests::{small_fleet, wait_for};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);
/// 2040-01-01T00:00:00Z: the injected clock's start, far from the machine's.
const START_MS: i64 = 2_208_988_800_000;
const MINUTE_MS: i64 = 60_000;
const OPS: &str = "ops@example.jp";
const ALERT: &str = "site_offline:sapporo";
/// Long enough for the worker (a pass a second) to have done whatever it would do.
const QUIET: Duration = Duration::from_secs(3);

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A coordinator of one site (sapporo, which never connects) on `clock`, alerting after five
/// minutes offline, mailing `OPS` through the SMTP server at `mail_port` and posting to
/// `webhook` when given, in `language`.
async fn coordinator(
    dir: &Path,
    clock: Arc<ManualClock>,
    mail_port: u16,
    webhook: Option<String>,
    language: AlertLanguage,
) -> anyhow::Result<Coordinator> {
    let fleet = small_fleet(1);
    let pki = PkiPaths::new(dir.join("pki"));
    ensure_pki(&pki, &fleet.sites)?;
    let mut config: CoordinatorConfig =
        coordinator_config(&dir.join("coordinator"), &pki, "127.0.0.1:0".parse()?);
    config.fleet.sites_file = modori_tests::configs_dir().join("sites.toml");
    config.fleet.stores_file = modori_tests::configs_dir().join("stores.toml");
    config.notifications.public_base_url = Some("https://ops.example.jp".into());
    config.mail = Some(MailSection {
        host: "127.0.0.1".into(),
        port: Some(mail_port),
        security: Security::Plain,
        username: None,
        password: None,
        from: "Modori <alerts@example.jp>".into(),
        timeout_seconds: 5,
        ca_cert: None,
    });
    config.alerts.offline_minutes = 5;
    config.alerts.renotify_minutes = 60;
    config.alerts.email_to = vec![OPS.into()];
    config.alerts.webhook_url = webhook;
    config.alerts.language = language;
    Ok(Coordinator::start_with_clock(config, fleet, clock).await?)
}

/// A Slack-style incoming webhook: answers 200 `ok` to a JSON body and keeps it.
async fn webhook_stub() -> anyhow::Result<(String, Arc<Mutex<Vec<Value>>>)> {
    let posted = Arc::new(Mutex::new(Vec::new()));
    let kept = posted.clone();
    let app = axum::Router::new().route(
        "/services/T0/B0/secret",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                match serde_json::from_slice::<Value>(&body) {
                    Ok(v) => {
                        kept.lock().expect("not poisoned").push(v);
                        (axum::http::StatusCode::OK, "ok")
                    }
                    Err(_) => (axum::http::StatusCode::BAD_REQUEST, "invalid_payload"),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/services/T0/B0/secret"), posted))
}

fn posted(p: &Arc<Mutex<Vec<Value>>>) -> Vec<Value> {
    p.lock().expect("not poisoned").clone()
}

async fn notices(c: &Coordinator) -> anyhow::Result<Vec<alert_notices::Recorded>> {
    Ok(c.ctx().db.call(|conn| alert_notices::all(conn)).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_alert_is_mailed_and_posted_once_then_again_after_the_renotify_interval(
) -> anyhow::Result<()> {
    modori_tests::init_tracing();
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let sink = Sink::start(port, &dir.path().join("mail.jsonl"), &[])?;
    let (url, hook) = webhook_stub().await?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let c = coordinator(
        dir.path(),
        clock.clone(),
        port,
        Some(url),
        AlertLanguage::Ja,
    )
    .await?;

    // Four minutes offline: under the threshold, nobody is told.
    clock.set(START_MS + 4 * MINUTE_MS);
    tokio::time::sleep(QUIET).await;
    assert!(sink.messages()?.is_empty(), "{:?}", sink.messages()?);
    assert!(posted(&hook).is_empty());

    clock.set(START_MS + 6 * MINUTE_MS);
    let mails = sink.wait_messages(1, TIMEOUT).await?;
    let mail = &mails[0];
    assert_eq!(mail["rcpt_tos"], serde_json::json!([OPS]), "{mail}");
    // In Japanese, the default: subject and text as the mail server decodes them.
    assert_eq!(
        mail["subject"],
        "[Modori] アラート：sapporo：倉庫が切断、6 分間切断（5 分で通知）"
    );
    let text = mail["text"].as_str().unwrap_or_default();
    assert!(text.contains("2040-01-01 09:06 JST に発生："), "{text}");
    assert!(
        text.contains("sapporo：倉庫が切断、6 分間切断（5 分で通知）"),
        "{text}"
    );
    assert!(
        text.contains("倉庫のページ：https://ops.example.jp/sites/sapporo"),
        "{text}"
    );
    assert!(text.contains("ミュート"), "{text}");
    for english in ["Raised", "offline for", "Acknowledge", "site's page"] {
        assert!(
            !text.contains(english),
            "{english:?} in the Japanese mail:\n{text}"
        );
    }
    let headers = &mail["headers"];
    assert!(headers.get("List-Unsubscribe").is_none(), "{headers}");
    wait_for("the webhook posted", TIMEOUT, || {
        let n = posted(&hook).len();
        async move { Ok(n >= 1) }
    })
    .await?;
    let body = &posted(&hook)[0];
    let fields: Vec<&String> = body
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(fields, ["text"], "{body}");
    let text = body["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("[Modori] アラート：sapporo：倉庫が切断、6 分間切断"),
        "{text}"
    );

    // Still raised, minutes later: not told again.
    clock.set(START_MS + 20 * MINUTE_MS);
    tokio::time::sleep(QUIET).await;
    assert_eq!(sink.messages()?.len(), 1);
    assert_eq!(posted(&hook).len(), 1);

    // An hour after it was told, still raised and nobody acted: told again.
    clock.set(START_MS + 66 * MINUTE_MS);
    let mails = sink.wait_messages(2, TIMEOUT).await?;
    let subject = mails[1]["subject"].as_str().unwrap_or_default();
    assert!(
        subject.starts_with("[Modori] 継続中：sapporo：倉庫が切断"),
        "{subject}"
    );
    wait_for("the webhook posted again", TIMEOUT, || {
        let n = posted(&hook).len();
        async move { Ok(n >= 2) }
    })
    .await?;
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_queued_while_the_mail_server_is_down_is_delivered_after_a_restart(
) -> anyhow::Result<()> {
    modori_tests::init_tracing();
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let c = coordinator(dir.path(), clock.clone(), port, None, AlertLanguage::En).await?;
    clock.set(START_MS + 6 * MINUTE_MS);
    wait_for("a failed attempt while the server is down", TIMEOUT, || {
        let c = &c;
        async move {
            let n = notices(c).await?;
            Ok(n.len() == 1 && n[0].3 == "queued" && n[0].4 >= 1)
        }
    })
    .await?;
    c.shutdown().await;

    let c = coordinator(dir.path(), clock.clone(), port, None, AlertLanguage::En).await?;
    let sink = Sink::start(port, &dir.path().join("mail.jsonl"), &[])?;
    // Past the retry's delay; the site still has not connected.
    clock.set(START_MS + 7 * MINUTE_MS);
    let mails = sink.wait_messages(1, TIMEOUT).await?;
    assert_eq!(
        mails[0]["subject"],
        "[Modori] Alert: sapporo: Warehouse offline, offline for 6 min (alert from 5 min)"
    );
    // The restarted coordinator raises the same alert once the site has been offline for
    // the threshold since it started: the raise is the one already told.
    clock.set(START_MS + 13 * MINUTE_MS);
    tokio::time::sleep(QUIET).await;
    assert_eq!(sink.messages()?.len(), 1, "{:?}", sink.messages()?);
    let n = notices(&c).await?;
    assert_eq!(
        n,
        [(
            ALERT.to_owned(),
            "raised".to_owned(),
            "email".to_owned(),
            "sent".to_owned(),
            n[0].4
        )]
    );
    assert!(n[0].4 >= 2, "{n:?}");
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_alert_sends_nothing_until_its_mute_ends() -> anyhow::Result<()> {
    modori_tests::init_tracing();
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let sink = Sink::start(port, &dir.path().join("mail.jsonl"), &[])?;
    let (url, hook) = webhook_stub().await?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let c = coordinator(
        dir.path(),
        clock.clone(),
        port,
        Some(url),
        AlertLanguage::En,
    )
    .await?;
    let until_ms = START_MS + 30 * MINUTE_MS;
    c.ctx()
        .db
        .call(move |conn| {
            alert_silences::silence(
                conn,
                ALERT,
                alert_silences::MUTED,
                "ops-key",
                START_MS,
                Some(until_ms),
            )
        })
        .await?;

    clock.set(START_MS + 6 * MINUTE_MS);
    wait_for("the muted alert recorded as raised", TIMEOUT, || {
        let c = &c;
        async move {
            Ok(modori_tests::coordinator_count(
                c,
                "SELECT COUNT(*) FROM alert_raises WHERE alert = ?1",
                ALERT,
            )
            .await?
                == 1)
        }
    })
    .await?;
    tokio::time::sleep(QUIET).await;
    assert!(sink.messages()?.is_empty(), "{:?}", sink.messages()?);
    assert!(posted(&hook).is_empty(), "{:?}", posted(&hook));
    assert!(notices(&c).await?.is_empty());

    // The mute ends while the site is still offline: now it is told.
    clock.set(START_MS + 31 * MINUTE_MS);
    let mails = sink.wait_messages(1, TIMEOUT).await?;
    let subject = mails[0]["subject"].as_str().unwrap_or_default();
    assert!(
        subject.starts_with("[Modori] Alert: sapporo: Warehouse offline"),
        "{subject}"
    );
    c.shutdown().await;
    Ok(())
}
