//! Customers are told where their returns stand, as a customer's mailbox sees it: a real SMTP
//! server (Python's aiosmtpd, `tests/smtp_sink.py`, in the venv of outside tools) takes the
//! coordinator's mail, and Python's email package decodes what arrived: the Japanese subject
//! and text, the links, one message per event, none after unsubscribing, the message retried
//! until a server that was down comes up (across a restart), one delay notice when a return
//! is still open past the configured time (on an injected clock), STARTTLS to a relay with a
//! private CA and the configured login. LINE pushes go to a stub
//! that checks the request as LINE documents it. A template a merchant puts over the API words
//! the next mail. Forgetting a customer deletes their tokens
//! and the messages still queued for them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modori_agent::work::Actor;
use modori_coordinator::config::CoordinatorConfig;
use modori_coordinator::notify::line::LineSection;
use modori_coordinator::notify::mail::{MailSection, Security};
use modori_coordinator::notify::token_hash;
use modori_coordinator::pki::PkiPaths;
use modori_coordinator::store::notifications as outbox;
use modori_coordinator::webhooks::MerchantEntry;
use modori_coordinator::Coordinator;
use modori_demo::local::{coordinator_config, ensure_pki};
use modori_runtime::clock::ManualClock;
use modori_shared::domain::{Grade, RmaId, Sku};
use modori_shared::station::Effect;
use modori_tests::smtp::{text_of, Sink};
use modori_tests::stations::agent_count;
use modori_tests::{
    config_key, coordinator_count, http_raw, http_request_as, small_fleet, wait_for, TestFleet,
};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);
const BASE_URL: &str = "https://returns.example.jp";
const LINE_TOKEN: &str = "line-channel-access-token-for-the-tests-0123456789";
const LINE_USER: &str = "U0123456789abcdef0123456789abcdef";

// Each test its own port: tests of this file run at once, and a config tweak is a plain fn.
static MAIL_PORT_UNSUBSCRIBE: AtomicU16 = AtomicU16::new(0);
static MAIL_PORT_RETRY: AtomicU16 = AtomicU16::new(0);
static MAIL_PORT_TEMPLATE: AtomicU16 = AtomicU16::new(0);
static LINE_PORT: AtomicU16 = AtomicU16::new(0);

fn notifications(config: &mut CoordinatorConfig) {
    config.notifications.public_base_url = Some(BASE_URL.into());
    config.notifications.retry_first_seconds = 1;
    config.notifications.retry_cap_seconds = 2;
}

fn with_mail_unsubscribe(config: &mut CoordinatorConfig) {
    with_mail(config, MAIL_PORT_UNSUBSCRIBE.load(Ordering::SeqCst));
}

fn with_mail_retry(config: &mut CoordinatorConfig) {
    with_mail(config, MAIL_PORT_RETRY.load(Ordering::SeqCst));
}

fn with_mail_template(config: &mut CoordinatorConfig) {
    with_mail(config, MAIL_PORT_TEMPLATE.load(Ordering::SeqCst));
}

fn with_mail(config: &mut CoordinatorConfig, port: u16) {
    notifications(config);
    config.mail = Some(plain_mail(port));
}

fn with_line(config: &mut CoordinatorConfig) {
    notifications(config);
    config.line = Some(LineSection {
        channel_access_token: LINE_TOKEN.into(),
        api_base_url: format!("http://127.0.0.1:{}", LINE_PORT.load(Ordering::SeqCst)),
    });
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_messages(sink: &Sink, n: usize) -> anyhow::Result<Vec<Value>> {
    sink.wait_messages(n, TIMEOUT).await
}

/// A fleet of one site whose coordinator has `tweak`, brand-a (named ブランドA) with its
/// catalogue and orders: ORD-JA (a Japanese customer), ORD-EN (an English one), ORD-LINE
/// (linked LINE), ORD-GONE (a customer about to be forgotten).
async fn fleet(tweak: fn(&mut CoordinatorConfig)) -> anyhow::Result<(TestFleet, String)> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (merchant, merchant_entry) = config_key("merchant:brand-a");
    fleet.extra_keys = vec![merchant_entry];
    fleet.merchants = vec![MerchantEntry {
        id: "brand-a".into(),
        name: Some("ブランドA".into()),
        ..MerchantEntry::default()
    }];
    fleet.config_tweak = Some(tweak);
    fleet.start_coordinator().await?;
    let catalog = json!({"items": [{"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900}]});
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(&catalog.to_string()))
        .await?;
    anyhow::ensure!(status == 200, "catalogue: {text}");
    let ordered_at = chrono::Utc::now().to_rfc3339();
    let order = |r: &str, customer: &str, contact: Value| {
        json!({"ref": r, "customer_ref": customer, "ordered_at": ordered_at,
               "lines": [{"sku": "TEE-WHT-M", "qty": 1}], "contact": contact})
    };
    let orders = json!({"orders": [
        order("ORD-JA", "cust-ja", json!({"email": "hanako@example.jp", "phone": "090-1234-5678"})),
        order("ORD-EN", "cust-en", json!({"email": "jane@example.com", "phone": "+819012345678",
                                          "language": "en"})),
        order("ORD-LINE", "cust-line", json!({"email": "taro@example.jp", "phone": "080-1111-2222",
                                              "line_user_id": LINE_USER})),
        order("ORD-GONE", "cust-gone", json!({"email": "gone@example.jp", "phone": "080-3333-4444"})),
    ]});
    let (status, text) = http_request_as(
        fleet.http(),
        Some(&merchant),
        "PUT",
        "/api/v1/orders/brand-a",
        Some(&orders.to_string()),
    )
    .await?;
    anyhow::ensure!(status == 200, "orders: {text}");
    Ok((fleet, merchant))
}

async fn register(fleet: &TestFleet, key: &str, order_ref: &str) -> anyhow::Result<RmaId> {
    let body = json!({"origin": {"postal_code": "530-0001"}, "order_ref": order_ref,
                      "order_date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
                      "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]});
    let (status, text) = http_request_as(
        fleet.http(),
        Some(key),
        "POST",
        "/api/v1/returns",
        Some(&body.to_string()),
    )
    .await?;
    anyhow::ensure!(status == 201, "return: {status} {text}");
    let v: Value = serde_json::from_str(&text)?;
    Ok(RmaId::new(v["rma"].as_str().unwrap_or_default())?)
}

async fn messages_of(fleet: &TestFleet, rma: &RmaId) -> anyhow::Result<Vec<outbox::Recorded>> {
    let rma = rma.to_string();
    Ok(fleet
        .coordinator()
        .ctx()
        .db
        .call(move |c| outbox::of_return(c, &rma))
        .await?)
}

/// The token of the first link under `/r/brand-a/{kind}/` in `text`.
fn link_token(text: &str, kind: &str) -> Option<String> {
    let prefix = format!("{BASE_URL}/r/brand-a/{kind}/");
    let start = text.find(&prefix)? + prefix.len();
    Some(
        text[start..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect(),
    )
}

/// A merchant's name and wording put over the API word the next mail, without a restart; the
/// links are still added below its words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_put_over_the_api_words_the_next_mail() -> anyhow::Result<()> {
    let port = free_port()?;
    MAIL_PORT_TEMPLATE.store(port, Ordering::SeqCst);
    let dir = tempfile::tempdir()?;
    let sink = Sink::start(port, &dir.path().join("mail.jsonl"), &[])?;
    let (fleet, key) = fleet(with_mail_template).await?;
    let settings = json!({
        "name": "ブランドA 公式ストア",
        "templates": {"registered": {"ja": {
            "subject": "{merchant}：返品 {rma} を承りました",
            "body": "ご返品（{rma}）のお申し込み、誠にありがとうございます。"
        }}}
    });
    let (status, text) = http_request_as(
        fleet.http(),
        Some(&key),
        "PUT",
        "/api/v1/merchants/brand-a/portal",
        Some(&settings.to_string()),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let rma = register(&fleet, &key, "ORD-JA").await?;
    let got = wait_messages(&sink, 1).await?;
    assert_eq!(
        got[0]["subject"],
        format!("ブランドA 公式ストア：返品 {rma} を承りました")
    );
    let text = text_of(&got[0]);
    assert!(
        text.starts_with(&format!(
            "ご返品（{rma}）のお申し込み、誠にありがとうございます。"
        )),
        "{text}"
    );
    assert!(link_token(&text, "s").is_some(), "{text}");
    assert!(link_token(&text, "u").is_some(), "{text}");
    // An English customer has no English template of the merchant's: the built-in words,
    // with the merchant's new name.
    register(&fleet, &key, "ORD-EN").await?;
    let got = wait_messages(&sink, 2).await?;
    assert_eq!(
        got[1]["subject"],
        "ブランドA 公式ストア: we have your return request"
    );
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_get_one_mail_per_event_in_their_language_and_none_after_unsubscribing(
) -> anyhow::Result<()> {
    let port = free_port()?;
    MAIL_PORT_UNSUBSCRIBE.store(port, Ordering::SeqCst);
    let dir = tempfile::tempdir()?;
    let sink = Sink::start(port, &dir.path().join("mail.jsonl"), &[])?;
    let (fleet, key) = fleet(with_mail_unsubscribe).await?;

    // Registered: one mail, in Japanese, properly encoded, with its two links.
    let rma = register(&fleet, &key, "ORD-JA").await?;
    let got = sink.wait_messages(1, TIMEOUT).await?;
    let m = &got[0];
    assert_eq!(m["rcpt_tos"], json!(["hanako@example.jp"]));
    assert_eq!(
        m["subject"],
        "【ブランドA】返品のお申し込みを受け付けました"
    );
    let raw = m["raw"].as_str().unwrap_or_default();
    assert!(raw.is_ascii(), "8-bit octets on the wire:\n{raw}");
    assert!(raw.contains("Subject: =?utf-8?b?"), "{raw}");
    assert!(raw.contains("Content-Transfer-Encoding: base64"), "{raw}");
    let text = text_of(m);
    assert!(
        text.contains(&format!(
            "返品（受付番号 {rma}）のお申し込みを受け付けました"
        )),
        "{text}"
    );
    assert!(text.contains("ブランドA"), "{text}");
    let token = link_token(&text, "s").expect("a status link");
    assert_eq!(token.len(), 64, "256 bits in hex: {text}");
    assert_eq!(link_token(&text, "u").as_deref(), Some(token.as_str()));
    assert_eq!(
        m["headers"]["List-Unsubscribe"],
        format!("<{BASE_URL}/r/brand-a/u/{token}>")
    );
    assert_eq!(
        m["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    // The token is stored as its hash alone.
    let c = fleet.coordinator();
    let by_hash = "SELECT COUNT(*) FROM status_tokens WHERE sha256 = ?1";
    assert_eq!(coordinator_count(c, by_hash, &token_hash(&token)).await?, 1);
    assert_eq!(coordinator_count(c, by_hash, &token).await?, 0);

    // An English customer is written to in English.
    let rma_en = register(&fleet, &key, "ORD-EN").await?;
    let got = sink.wait_messages(2, TIMEOUT).await?;
    assert_eq!(got[1]["rcpt_tos"], json!(["jane@example.com"]));
    assert_eq!(got[1]["subject"], "ブランドA: we have your return request");
    assert!(text_of(&got[1]).contains(&format!("Your return {rma_en} is registered")));

    // Two units arrive and are graded: one mail for the arrival, one for the inspection.
    let agent = fleet.agent(0);
    let agent_config = fleet.agent_config(0);
    wait_for("the expected return at the site", TIMEOUT, || {
        let c = &agent_config;
        async move { Ok(agent_count(c, "SELECT COUNT(*) FROM expected_returns")? >= 2) }
    })
    .await?;
    let sku = Sku::new("TEE-WHT-M")?;
    let first = agent
        .receive_unit(Some(rma.clone()), sku.clone(), "B-0001")
        .await?;
    let second = agent.receive_unit(Some(rma.clone()), sku, "B-0001").await?;
    agent
        .grade_unit(first.lpn.clone(), Grade::B, "B-0001")
        .await?;
    agent
        .grade_unit(second.lpn.clone(), Grade::A, "B-0001")
        .await?;
    let got = sink.wait_messages(4, TIMEOUT).await?;
    let subjects: Vec<&str> = got[2..]
        .iter()
        .filter_map(|m| m["subject"].as_str())
        .collect();
    assert_eq!(
        subjects,
        [
            "【ブランドA】返品商品が倉庫に到着しました",
            "【ブランドA】返品商品の検品が完了しました"
        ]
    );
    // Each message carries a token of its own.
    let later = link_token(&text_of(&got[2]), "s").expect("a status link");
    assert_ne!(later, token);

    // The customer follows the unsubscribe link: a page that asks, then the POST.
    let path = format!("/r/brand-a/u/{token}");
    let page = http_raw(fleet.http(), "GET", &path, &[], None).await?;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<form method=\"post\">"),
        "{}",
        page.body
    );
    let guessed = format!("/r/brand-a/u/{}", "0".repeat(64));
    assert_eq!(
        http_raw(fleet.http(), "POST", &guessed, &[], None)
            .await?
            .status,
        404
    );
    let done = http_raw(fleet.http(), "POST", &path, &[], None).await?;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("配信を停止しました"), "{}", done.body);

    // The parcel closes and the refund is paid: that message is not sent.
    agent
        .record(
            Effect::CloseParcel {
                rma: rma.clone(),
                shortages: vec![],
            },
            Actor::new("B-0001", "recv-1"),
        )
        .await?;
    let refund_path = format!("/api/v1/returns/{rma}/refund");
    wait_for("the refund confirmed", TIMEOUT, || {
        let (fleet, key, path) = (&fleet, &key, &refund_path);
        async move {
            let (status, _) =
                http_request_as(fleet.http(), Some(key), "POST", path, Some("{}")).await?;
            Ok(status == 200)
        }
    })
    .await?;
    wait_for("the refund message dropped", TIMEOUT, || {
        let (fleet, rma) = (&fleet, &rma);
        async move {
            Ok(messages_of(fleet, rma)
                .await?
                .iter()
                .any(|(kind, status, ..)| kind == "refund_issued" && status == "opted_out"))
        }
    })
    .await?;
    let recorded = messages_of(&fleet, &rma).await?;
    let kinds: Vec<(&str, &str)> = recorded
        .iter()
        .map(|(k, s, ..)| (k.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("registered", "sent"),
            ("arrived", "sent"),
            ("inspected", "sent"),
            ("refund_issued", "opted_out")
        ]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages()?.len(), 4, "one mail per event, none after");
    // The return knows its customer's contact and what they were told.
    let (status, text) = http_request_as(
        fleet.http(),
        Some(&key),
        "GET",
        &format!("/api/v1/returns/{rma}"),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let view: Value = serde_json::from_str(&text)?;
    assert_eq!(view["customer_contact"]["email"], "hanako@example.jp");
    assert_eq!(view["customer_contact"]["language"], "ja");
    let told: Vec<(&str, &str)> = view["customer_messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| Some((m["kind"].as_str()?, m["status"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(told, kinds, "{text}");

    // The opt-out over the API undoes it (and is the merchant's to set).
    let (status, text) = http_request_as(
        fleet.http(),
        Some(&key),
        "PUT",
        "/api/v1/notifications/brand-a/opt-out",
        Some(r#"{"email": "Hanako@example.jp", "opted_out": false}"#),
    )
    .await?;
    assert_eq!(
        (status, text.contains("\"opted_out\":false")),
        (200, true),
        "{text}"
    );
    let (status, _) = http_request_as(
        fleet.http(),
        Some(&key),
        "PUT",
        "/api/v1/notifications/brand-a/opt-out",
        Some(r#"{"email": "not-an-address", "opted_out": true}"#),
    )
    .await?;
    assert_eq!(status, 422);

    let (_, metrics) = modori_tests::http_get(fleet.http(), "/metrics").await?;
    for line in [
        "modori_customer_messages_total{outcome=\"sent\"} 4",
        "modori_customer_messages_total{outcome=\"opted_out\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_waits_for_a_server_that_is_down_across_a_restart_and_a_forgotten_customers_does_not(
) -> anyhow::Result<()> {
    let port = free_port()?;
    MAIL_PORT_RETRY.store(port, Ordering::SeqCst);
    let (mut fleet, key) = fleet(with_mail_retry).await?;
    let kept = register(&fleet, &key, "ORD-JA").await?;
    let gone = register(&fleet, &key, "ORD-GONE").await?;
    wait_for("failed attempts while the server is down", TIMEOUT, || {
        let (fleet, kept, gone) = (&fleet, &kept, &gone);
        async move {
            let a = messages_of(fleet, kept).await?;
            let b = messages_of(fleet, gone).await?;
            Ok(a.len() == 1 && b.len() == 1 && a[0].2 >= 1 && b[0].2 >= 1)
        }
    })
    .await?;
    let kept_messages = messages_of(&fleet, &kept).await?;
    assert_eq!(kept_messages[0].1, "queued", "{kept_messages:?}");
    let c = fleet.coordinator();
    let tokens = "SELECT COUNT(*) FROM status_tokens WHERE rma = ?1";
    assert!(coordinator_count(c, tokens, gone.as_str()).await? >= 1);

    // The coordinator restarts while the server is still down: nothing is lost.
    fleet.start_coordinator().await?;
    // One customer asks to be forgotten: their tokens and queued message go with them.
    let (status, text) = fleet
        .api("DELETE", "/api/v1/customers/cust-gone", None)
        .await?;
    assert_eq!(status, 200, "{text}");
    let c = fleet.coordinator();
    assert_eq!(coordinator_count(c, tokens, gone.as_str()).await?, 0);
    assert!(messages_of(&fleet, &gone).await?.is_empty());
    let (status, order) = fleet
        .api("GET", "/api/v1/orders/brand-a/ORD-GONE", None)
        .await?;
    assert_eq!(status, 200);
    assert!(!order.contains("gone@example.jp"), "{order}");

    // The server comes up: the waiting mail arrives, once; the forgotten customer's never.
    let dir = tempfile::tempdir()?;
    let sink = Sink::start(port, &dir.path().join("mail.jsonl"), &[])?;
    let got = sink.wait_messages(1, TIMEOUT).await?;
    assert_eq!(got[0]["rcpt_tos"], json!(["hanako@example.jp"]));
    wait_for("the message marked sent", TIMEOUT, || {
        let (fleet, kept) = (&fleet, &kept);
        async move { Ok(messages_of(fleet, kept).await?[0].1 == "sent") }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages()?.len(), 1, "{:?}", sink.messages()?);
    fleet.shutdown().await;
    Ok(())
}

/// A stub of LINE's push endpoint: answers 200 to a request as LINE documents it, 400 to any
/// other, and keeps each body it accepted.
async fn line_stub() -> anyhow::Result<(SocketAddr, Arc<Mutex<Vec<Value>>>)> {
    use axum::http::{HeaderMap, StatusCode};
    let pushed = Arc::new(Mutex::new(Vec::new()));
    let kept = pushed.clone();
    let app = axum::Router::new().route(
        "/v2/bot/message/push",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let documented = header("authorization") == Some(&format!("Bearer {LINE_TOKEN}"))
                    && header("content-type") == Some("application/json")
                    && header("x-line-retry-key").is_some_and(|k| k.len() == 36)
                    && v["to"].as_str().is_some()
                    && v["messages"].as_array().is_some_and(|m| m.len() == 1)
                    && v["messages"][0]["type"] == "text"
                    && v["messages"][0]["text"].as_str().is_some();
                if !documented {
                    return (StatusCode::BAD_REQUEST, "{}");
                }
                kept.lock().expect("not poisoned").push(v);
                (StatusCode::OK, "{}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, pushed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_linked_line_is_pushed_there() -> anyhow::Result<()> {
    let (addr, pushed) = line_stub().await?;
    LINE_PORT.store(addr.port(), Ordering::SeqCst);
    let (fleet, key) = fleet(with_line).await?;
    let rma = register(&fleet, &key, "ORD-LINE").await?;
    wait_for("a push at LINE", TIMEOUT, || {
        let n = pushed.lock().expect("not poisoned").len();
        async move { Ok(n >= 1) }
    })
    .await?;
    let push = pushed.lock().expect("not poisoned")[0].clone();
    assert_eq!(push["to"], LINE_USER);
    let text = push["messages"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("【ブランドA】返品のお申し込みを受け付けました"),
        "{text}"
    );
    assert!(text.contains(&rma.to_string()), "{text}");
    assert_eq!(link_token(text, "s").map(|t| t.len()), Some(64), "{text}");
    let recorded = messages_of(&fleet, &rma).await?;
    assert_eq!(
        recorded,
        [(
            "registered".to_owned(),
            "sent".to_owned(),
            1,
            Some("line".to_owned())
        )]
    );
    // A customer without LINE, while only LINE is configured, is not reachable.
    let other = register(&fleet, &key, "ORD-JA").await?;
    wait_for("the unreachable message dropped", TIMEOUT, || {
        let (fleet, other) = (&fleet, &other);
        async move {
            Ok(messages_of(fleet, other)
                .await?
                .iter()
                .any(|(_, status, ..)| status == "unreachable"))
        }
    })
    .await?;
    assert_eq!(pushed.lock().expect("not poisoned").len(), 1);
    fleet.shutdown().await;
    Ok(())
}

/// 2040-01-01T00:00:00Z: the injected clock's start, far from the machine's.
const START_MS: i64 = 2_208_988_800_000;
const HOUR_MS: i64 = 3_600_000;

/// A coordinator of its own (one site, no agent) on `clock`, with `mail` and brand-a, its
/// catalogue and the order ORD-1 of slow@example.jp; with the brand-a key and the fleet's PKI.
async fn lone_coordinator(
    dir: &Path,
    clock: Arc<dyn modori_runtime::clock::Clock>,
    mail: impl FnOnce(&PkiPaths) -> MailSection,
    tweak: impl FnOnce(&mut CoordinatorConfig),
) -> anyhow::Result<(Coordinator, String)> {
    let fleet = small_fleet(1);
    let pki = PkiPaths::new(dir.join("pki"));
    ensure_pki(&pki, &fleet.sites)?;
    let mut config = coordinator_config(&dir.join("coordinator"), &pki, "127.0.0.1:0".parse()?);
    config.fleet.sites_file = modori_tests::configs_dir().join("sites.toml");
    config.fleet.stores_file = modori_tests::configs_dir().join("stores.toml");
    let (key, entry) = config_key("merchant:brand-a");
    config.api_keys.push(entry);
    config.merchants.push(MerchantEntry {
        id: "brand-a".into(),
        name: Some("ブランドA".into()),
        ..MerchantEntry::default()
    });
    notifications(&mut config);
    config.mail = Some(mail(&pki));
    tweak(&mut config);
    let c = Coordinator::start_with_clock(config, fleet, clock).await?;
    for (path, body) in [
        (
            "/api/v1/catalog/brand-a",
            json!({"items": [{"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900}]}),
        ),
        (
            "/api/v1/orders/brand-a",
            json!({"orders": [{"ref": "ORD-1", "ordered_at": "2040-01-01T00:00:00Z",
                               "lines": [{"sku": "TEE-WHT-M", "qty": 1}],
                               "contact": {"email": "slow@example.jp", "phone": "090-0000-0000"}}]}),
        ),
    ] {
        let (status, text) = http_request_as(
            c.http_addr(),
            Some(&key),
            "PUT",
            path,
            Some(&body.to_string()),
        )
        .await?;
        anyhow::ensure!(status == 200, "{path}: {text}");
    }
    let body = json!({"origin": {"postal_code": "530-0001"}, "order_ref": "ORD-1",
                      "order_date": "2040-01-01",
                      "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]});
    let (status, text) = http_request_as(
        c.http_addr(),
        Some(&key),
        "POST",
        "/api/v1/returns",
        Some(&body.to_string()),
    )
    .await?;
    anyhow::ensure!(status == 201, "return: {text}");
    Ok((c, key))
}

fn plain_mail(port: u16) -> MailSection {
    MailSection {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: Security::Plain,
        username: None,
        password: None,
        from: "ブランドA 返品受付 <returns@brand-a.example.jp>".into(),
        timeout_seconds: 5,
        ca_cert: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_still_open_past_the_configured_delay_gets_one_notice() -> anyhow::Result<()> {
    let port = free_port()?;
    let dir = tempfile::tempdir()?;
    let sink = Sink::start(port, &dir.path().join("mail.jsonl"), &[])?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let (c, _) = lone_coordinator(
        dir.path(),
        clock.clone(),
        |_| plain_mail(port),
        |config| config.notifications.delay_notice_after_hours = 24,
    )
    .await?;
    sink.wait_messages(1, TIMEOUT).await?;

    // A minute short of a day: nothing yet. Past it: one notice, and only one.
    clock.set(START_MS + 24 * HOUR_MS - 60_000);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.messages()?.len(), 1);
    clock.set(START_MS + 25 * HOUR_MS);
    let got = sink.wait_messages(2, TIMEOUT).await?;
    assert_eq!(
        got[1]["subject"],
        "【ブランドA】返品の処理に時間がかかっております"
    );
    assert!(text_of(&got[1]).contains("通常より時間がかかっております"));
    clock.set(START_MS + 50 * HOUR_MS);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.messages()?.len(), 2);
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_starttls_with_the_configured_login() -> anyhow::Result<()> {
    const USER: &str = "returns@brand-a.example.jp";
    const PASSWORD: &str = "smtp-password-of-the-tests";
    let port = free_port()?;
    let dir = tempfile::tempdir()?;
    // The relay presents the test PKI's server certificate (127.0.0.1), signed by its CA: the
    // coordinator trusts that CA through mail.ca_cert, and logs in only once on TLS.
    let pki = PkiPaths::new(dir.path().join("pki"));
    ensure_pki(&pki, &small_fleet(1).sites)?;
    let (cert, key) = (pki.server_cert(), pki.server_key());
    let sink = Sink::start(
        port,
        &dir.path().join("mail.jsonl"),
        &[
            "--starttls".as_ref(),
            cert.as_os_str(),
            key.as_os_str(),
            "--login".as_ref(),
            USER.as_ref(),
            PASSWORD.as_ref(),
        ],
    )?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let (c, _) = lone_coordinator(
        dir.path(),
        clock,
        |pki| MailSection {
            security: Security::Starttls,
            username: Some(USER.into()),
            password: Some(PASSWORD.into()),
            ca_cert: Some(pki.ca_cert()),
            ..plain_mail(port)
        },
        |_| {},
    )
    .await?;
    let got = sink.wait_messages(1, TIMEOUT).await?;
    assert_eq!(got[0]["tls"], true, "{}", got[0]);
    assert_eq!(got[0]["login"], USER, "{}", got[0]);
    assert_eq!(
        got[0]["subject"],
        "【ブランドA】返品のお申し込みを受け付けました"
    );
    c.shutdown().await;
    Ok(())
}
