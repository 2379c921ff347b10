//! Repairs as a merchant's system and a customer use them: the products a merchant repairs
//! and its parts-and-labour table put and read back, every refusal naming its field; a repair
//! requested over the API and on the portal (in Chromium, judged by axe-core) becomes a
//! return of kind repair, expected at its site; the site grades it with defect codes as a
//! station would, and the centre quotes it once from the table, or leaves it for ops to price
//! when a defect has no price; one declined is shipped back as it is.

use modori_agent::work::Actor;
use modori_shared::domain::{DefectCode, Grade, RmaId, Sku};
use modori_shared::station::{Effect, ReceiptKind};
use modori_tests::{config_key, http_request_as, small_fleet, TestFleet};
use serde_json::{json, Value};

async fn call(
    fleet: &TestFleet,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let text = body.map(|b| b.to_string());
    let (status, answer) =
        http_request_as(fleet.http(), Some(key), method, path, text.as_deref()).await?;
    Ok((status, serde_json::from_str(&answer).unwrap_or(Value::Null)))
}

const PRODUCTS: &str = "/api/v1/merchants/brand-a/repair/products";
const RATES: &str = "/api/v1/merchants/brand-a/repair/rates";
const REPAIRS: &str = "/api/v1/merchants/brand-a/repairs";
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const DAY_MS: i64 = 86_400_000;

/// Brand-a's catalogue: two phones and a T-shirt.
async fn catalogue(fleet: &TestFleet, key: &str) -> anyhow::Result<()> {
    let catalog = json!({"items": [
        {"sku": "PHN-PRO", "category": "phone", "price_yen": 120000,
         "category_name_ja": "スマートフォン", "category_name_en": "Phones"},
        {"sku": "PHN-MINI", "category": "phone", "price_yen": 60000,
         "category_name_ja": "スマートフォン", "category_name_en": "Phones"},
        {"sku": "TEE-WHT-M", "category": "tee", "price_yen": 1900}]});
    let (status, answer) =
        call(fleet, key, "PUT", "/api/v1/catalog/brand-a", Some(catalog)).await?;
    anyhow::ensure!(status == 200, "{answer}");
    Ok(())
}

fn asked(sku: &str, fault: &str) -> Value {
    json!({"sku": sku, "fault": fault, "fault_text": "落としてから画面が映らない",
           "postal_code": "060-0001", "method": "konbini_dropoff"})
}

/// The site receives the repair's parcel, grades its unit with `defects` (the op a grading
/// station sends) and closes the parcel, as for any return.
async fn received_and_graded(
    fleet: &TestFleet,
    rma: &str,
    sku: &str,
    defects: Vec<DefectCode>,
) -> anyhow::Result<()> {
    let rma = RmaId::new(rma)?;
    let agent = fleet.agent(0);
    let config = fleet.agent_config(0);
    let sql = format!(
        "SELECT COUNT(*) FROM expected_returns WHERE rma = '{}'",
        rma.as_str()
    );
    modori_tests::wait_for("the repair expected at its site", TIMEOUT, || {
        let (config, sql) = (&config, &sql);
        async move { Ok(modori_tests::stations::agent_count(config, sql)? == 1) }
    })
    .await?;
    let receipt = agent
        .receive_unit(Some(rma.clone()), Sku::new(sku)?, "B-0001")
        .await?;
    assert_eq!(receipt.receipt, ReceiptKind::Matched);
    let who = || Actor::new("B-0001", "grade-1");
    agent
        .record(
            Effect::Grade {
                lpn: receipt.lpn.clone(),
                grade: Grade::C,
                defects,
            },
            who(),
        )
        .await?;
    agent
        .record(
            Effect::CloseParcel {
                rma,
                shortages: vec![],
            },
            who(),
        )
        .await?;
    Ok(())
}

/// The repair as the merchant reads it, once `ready` holds of it.
async fn repair_once(
    fleet: &TestFleet,
    key: &str,
    rma: &str,
    what: &str,
    ready: fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let path = format!("{REPAIRS}/{rma}");
    modori_tests::wait_for(what, TIMEOUT, || {
        let path = path.clone();
        async move {
            let (_, r) = call(fleet, key, "GET", &path, None).await?;
            Ok(ready(&r))
        }
    })
    .await?;
    let (_, r) = call(fleet, key, "GET", &path, None).await?;
    Ok(r)
}

async fn repair_kinds(fleet: &TestFleet, key: &str, rma: &str) -> anyhow::Result<Vec<String>> {
    let (_, ret) = call(fleet, key, "GET", &format!("/api/v1/returns/{rma}"), None).await?;
    Ok(ret["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .filter(|k| k.starts_with("repair"))
        .collect())
}

/// Products and rates put and refused over the API; a repair requested for a product the
/// merchant repairs, refused for one it does not; received and graded at its site with defect
/// codes, it is quoted from the merchant's table once (a restart quotes nothing again); a
/// defect without a price leaves the repair unquoted until ops price it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_is_requested_graded_and_quoted_once_from_the_table() -> anyhow::Result<()> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (merchant, merchant_entry) = config_key("merchant:brand-a");
    let (other, other_entry) = config_key("merchant:brand-b");
    fleet.extra_keys = vec![merchant_entry, other_entry];
    fleet.start_coordinator().await?;
    catalogue(&fleet, &merchant).await?;

    // Nothing repaired yet: a request is refused for its SKU.
    let (status, answer) = call(&fleet, &merchant, "GET", PRODUCTS, None).await?;
    assert_eq!((status, answer), (200, json!({"products": []})));
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        REPAIRS,
        Some(asked("PHN-MINI", "screen")),
    )
    .await?;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (404, &json!("sku")),
        "{answer}"
    );

    // Each wrong list or table is refused naming its field, nothing stored.
    for (body, field) in [
        (json!({"products": [{}]}), "products[0]"),
        (
            json!({"products": [{"sku": "PHN-PRO", "category": "phone"}]}),
            "products[0]",
        ),
        (
            json!({"products": [{"category": "Phone Cases"}]}),
            "products[0].category",
        ),
    ] {
        let (status, answer) = call(&fleet, &merchant, "PUT", PRODUCTS, Some(body)).await?;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (422, &json!(field)),
            "{answer}"
        );
    }
    for (body, field) in [
        (
            json!({"rates": [{"defect": "cracked", "parts_yen": 1, "labour_yen": 1}]}),
            "rates[0].defect",
        ),
        (
            json!({"rates": [{"defect": "dent", "parts_yen": 1, "labour_yen": 1_000_001}]}),
            "rates[0]",
        ),
    ] {
        let (status, answer) = call(&fleet, &merchant, "PUT", RATES, Some(body)).await?;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (422, &json!(field)),
            "{answer}"
        );
    }
    let (_, answer) = call(&fleet, &merchant, "GET", RATES, None).await?;
    assert_eq!(answer, json!({"rates": []}));

    let products = json!({"products": [{"category": "phone"}]});
    let (status, answer) = call(&fleet, &merchant, "PUT", PRODUCTS, Some(products.clone())).await?;
    assert_eq!((status, answer), (200, products));
    let rates = json!({"rates": [
        {"defect": "not_working", "category": "phone", "parts_yen": 8000, "labour_yen": 5000},
        {"defect": "not_working", "sku": "PHN-PRO", "parts_yen": 15000, "labour_yen": 5000},
        {"defect": "scratch", "parts_yen": 0, "labour_yen": 2000}]});
    let (status, answer) = call(&fleet, &merchant, "PUT", RATES, Some(rates.clone())).await?;
    assert_eq!((status, answer), (200, rates));
    // Not a phone, or a fault off the list, or an address of nowhere: refused.
    for (body, code, field) in [
        (asked("TEE-WHT-M", "screen"), 404, "sku"),
        (asked("PHN-MINI", "cracked"), 422, "fault"),
        (
            json!({"sku": "PHN-MINI", "fault": "screen", "postal_code": "000-0000",
                   "method": "konbini_dropoff"}),
            404,
            "postal_code",
        ),
        (
            json!({"sku": "PHN-MINI", "fault": "screen", "postal_code": "060-0001",
                   "method": "drone"}),
            422,
            "method",
        ),
        (
            json!({"sku": "PHN-MINI", "fault": "screen", "postal_code": "060-0001",
                   "method": "konbini_dropoff", "fault_text": "x".repeat(1001)}),
            422,
            "fault_text",
        ),
    ] {
        let (status, answer) = call(&fleet, &merchant, "POST", REPAIRS, Some(body)).await?;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (code, &json!(field)),
            "{answer}"
        );
    }

    let (status, requested) = call(
        &fleet,
        &merchant,
        "POST",
        REPAIRS,
        Some(asked("PHN-MINI", "screen")),
    )
    .await?;
    assert_eq!(status, 201, "{requested}");
    let rma = requested["rma"].as_str().unwrap_or_default().to_owned();
    // A return like any other: its label and timeline under its RMA.
    let (status, ret) = call(
        &fleet,
        &merchant,
        "GET",
        &format!("/api/v1/returns/{rma}"),
        None,
    )
    .await?;
    assert_eq!((status, &ret["site"]), (200, &requested["site"]), "{ret}");
    let (status, r) = call(&fleet, &merchant, "GET", &format!("{REPAIRS}/{rma}"), None).await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (&r["sku"], &r["fault"], &r["fault_text"]),
        (
            &json!("PHN-MINI"),
            &json!("screen"),
            &json!("落としてから画面が映らない")
        )
    );
    assert!(r["quote"].is_null() && r["defects"].is_null(), "{r}");
    // Never across merchants.
    let (status, _) = call(
        &fleet,
        &other,
        "GET",
        &format!("/api/v1/merchants/brand-b/repairs/{rma}"),
        None,
    )
    .await?;
    assert_eq!(status, 404);

    received_and_graded(
        &fleet,
        &rma,
        "PHN-MINI",
        vec![DefectCode::NotWorking, DefectCode::Scratch],
    )
    .await?;
    let r = repair_once(&fleet, &merchant, &rma, "the repair quoted", |r| {
        !r["quote"].is_null()
    })
    .await?;
    assert_eq!(r["quote"]["total_yen"], json!(15000), "{r}");
    assert_eq!(
        r["quote"]["lines"],
        json!([
            {"defect": "scratch", "parts_yen": 0, "labour_yen": 2000},
            {"defect": "not_working", "parts_yen": 8000, "labour_yen": 5000}]),
        "{r}"
    );
    assert!(r["quote"]["answer_by"].is_string(), "{r}");
    assert_eq!(r["defects"], json!(["scratch", "not_working"]));

    // A defect with no price: not quoted, named for ops, until a rate prices it.
    let (_, second) = call(
        &fleet,
        &merchant,
        "POST",
        REPAIRS,
        Some(asked("PHN-PRO", "noise")),
    )
    .await?;
    let second = second["rma"].as_str().unwrap_or_default().to_owned();
    received_and_graded(&fleet, &second, "PHN-PRO", vec![DefectCode::Odor]).await?;
    let r = repair_once(
        &fleet,
        &merchant,
        &second,
        "the repair left unpriced",
        |r| r["unpriced"] == json!(["odor"]),
    )
    .await?;
    assert!(r["quote"].is_null(), "never a silent zero: {r}");
    let with_odor = json!({"rates": [
        {"defect": "not_working", "category": "phone", "parts_yen": 8000, "labour_yen": 5000},
        {"defect": "odor", "sku": "PHN-PRO", "parts_yen": 0, "labour_yen": 3000}]});
    let (status, _) = call(&fleet, &fleet.ops_key, "PUT", RATES, Some(with_odor)).await?;
    assert_eq!(status, 200);
    // The next grading batch or sweep quotes it: another repair's grading is one.
    let (_, third) = call(
        &fleet,
        &merchant,
        "POST",
        REPAIRS,
        Some(asked("PHN-MINI", "no_power")),
    )
    .await?;
    let third = third["rma"].as_str().unwrap_or_default().to_owned();
    received_and_graded(&fleet, &third, "PHN-MINI", vec![DefectCode::NotWorking]).await?;
    let r = repair_once(
        &fleet,
        &merchant,
        &second,
        "the repair priced by ops",
        |r| !r["quote"].is_null(),
    )
    .await?;
    assert_eq!(r["quote"]["total_yen"], json!(3000), "{r}");
    assert_eq!(r["unpriced"], json!([]), "{r}");

    let r = repair_once(&fleet, &merchant, &third, "the third repair quoted", |r| {
        !r["quote"].is_null()
    })
    .await?;
    assert_eq!(r["quote"]["total_yen"], json!(13000), "{r}");

    // The merchant accepts the first for its customer: charged as quoted; no site of this
    // fleet refurbishes, so nothing is moved (ops arrange it).
    let answer_path = format!("{REPAIRS}/{rma}/answer");
    let (status, answer) = call(
        &fleet,
        &merchant,
        "POST",
        &answer_path,
        Some(json!({"answer": "maybe"})),
    )
    .await?;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (422, &json!("answer")),
        "{answer}"
    );
    let (status, answer) = call(
        &fleet,
        &other,
        "POST",
        &format!("/api/v1/merchants/brand-b/repairs/{rma}/answer"),
        Some(json!({"answer": "accept"})),
    )
    .await?;
    assert_eq!(status, 404, "never across merchants: {answer}");
    let (status, r) = call(
        &fleet,
        &merchant,
        "POST",
        &answer_path,
        Some(json!({"answer": "accept"})),
    )
    .await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (
            &r["decision"],
            &r["decided_by"],
            &r["charge_yen"],
            &r["transfer_to"]
        ),
        (
            &json!("accepted"),
            &json!("merchant"),
            &json!(15000),
            &Value::Null
        ),
        "{r}"
    );

    // Unanswered past their deadline: the default (decline), once each.
    let ctx = fleet.coordinator().ctx().clone();
    let settle = modori_coordinator::app::repair_answer::settle_overdue;
    assert_eq!(settle(&ctx, ctx.clock.now_ms()).await?, 0, "not due yet");
    let past_deadline_ms = ctx.clock.now_ms() + 15 * DAY_MS;
    assert_eq!(settle(&ctx, past_deadline_ms).await?, 2);
    assert_eq!(settle(&ctx, past_deadline_ms + DAY_MS).await?, 0, "once");
    let (_, r) = call(
        &fleet,
        &merchant,
        "GET",
        &format!("{REPAIRS}/{second}"),
        None,
    )
    .await?;
    assert_eq!(
        (&r["decision"], &r["decided_by"], &r["charge_yen"]),
        (&json!("declined"), &json!("deadline"), &Value::Null),
        "{r}"
    );

    // A restart makes no second quote nor answer.
    fleet.start_coordinator().await?;
    let (_, r) = call(
        &fleet,
        &merchant,
        "GET",
        &format!("{REPAIRS}/{third}"),
        None,
    )
    .await?;
    assert_eq!(r["quote"]["total_yen"], json!(13000), "{r}");
    assert_eq!(
        repair_kinds(&fleet, &merchant, &rma).await?,
        ["repair_quoted", "repair_accepted"]
    );
    assert_eq!(
        repair_kinds(&fleet, &merchant, &second).await?,
        ["repair_unpriced", "repair_quoted", "repair_declined"]
    );
    fleet.shutdown().await;
    Ok(())
}

/// A customer asks for a repair on the portal in Chromium: only the products the merchant
/// repairs are offered, a wrong postal code is asked again with what was typed kept, and the
/// request gives the return's number and status link; the status page is headed as a repair
/// and names the fault. axe-core judges every page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_asks_for_a_repair_on_the_portal() -> anyhow::Result<()> {
    let Some(browser) = modori_tests::browser::Browser::start().await? else {
        return Ok(());
    };
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let key = fleet.ops_key.clone();
    let base = format!("http://{}", fleet.http());
    browser
        .c()
        .goto(&format!("{base}/r/brand-a/repair"))
        .await?;
    browser
        .until(
            "no repair offered",
            "return !!document.getElementById('no-repair')",
        )
        .await?;
    catalogue(&fleet, &key).await?;
    let products = json!({"products": [{"sku": "PHN-MINI"}]});
    let (status, answer) = call(&fleet, &key, "PUT", PRODUCTS, Some(products)).await?;
    anyhow::ensure!(status == 200, "{answer}");

    browser
        .c()
        .goto(&format!("{base}/r/brand-a/repair"))
        .await?;
    browser
        .until("the repair form", "return !!document.getElementById('sku')")
        .await?;
    let options = browser
        .js("return [...document.querySelectorAll('#sku option')].map(o => o.textContent)")
        .await?;
    assert_eq!(options, json!(["PHN-MINI（スマートフォン）"]));
    browser.screenshot("repair-form-ja").await?;
    browser.assert_accessible("repair-form-ja").await?;
    browser.click("input[name=fault][value=battery]").await?;
    browser.fill("#fault-text", "一日もたない").await?;
    browser.fill("#postal-code", "123").await?;
    browser.fill("#email", "taro@example.jp").await?;
    browser.click("#ask-repair").await?;
    browser
        .until(
            "the postal code asked again",
            "return !!document.querySelector('.problem')",
        )
        .await?;
    let kept = browser
        .js("return [document.getElementById('email').value, document.getElementById('fault-text').value, document.querySelector('input[name=fault]:checked').value]")
        .await?;
    assert_eq!(kept, json!(["taro@example.jp", "一日もたない", "battery"]));
    browser.assert_accessible("repair-form-again-ja").await?;
    browser
        .js("document.getElementById('postal-code').value = ''; return true")
        .await?;
    browser.fill("#postal-code", "060-0001").await?;
    browser.click("#ask-repair").await?;
    browser
        .until(
            "the repair booked",
            "return !!document.getElementById('rma')",
        )
        .await?;
    browser.screenshot("repair-requested-ja").await?;
    browser.assert_accessible("repair-requested-ja").await?;
    let booked = browser
        .js("return [document.getElementById('rma').textContent, document.getElementById('status-link').href]")
        .await?;
    let rma = booked[0].as_str().unwrap_or_default().to_owned();
    let status_url = booked[1].as_str().unwrap_or_default().to_owned();
    let (status, r) = call(&fleet, &key, "GET", &format!("{REPAIRS}/{rma}"), None).await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (&r["fault"], &r["fault_text"]),
        (&json!("battery"), &json!("一日もたない"))
    );

    browser.c().goto(&status_url).await?;
    browser
        .until(
            "the repair on the status page",
            "return !!document.getElementById('repair-state')",
        )
        .await?;
    let shown = browser
        .js("return [document.querySelector('h1').textContent, document.getElementById('repair-fault').textContent]")
        .await?;
    assert_eq!(
        shown,
        json!(["修理の状況", "バッテリーの減りが早い・充電できない"]),
        "a repair, not a return"
    );
    browser.screenshot("repair-status-ja").await?;
    browser.assert_accessible("repair-status-ja").await?;
    fleet.shutdown().await;
    Ok(())
}

type Hooks = std::sync::Arc<std::sync::Mutex<Vec<(String, String, bool)>>>;

/// A webhook receiver that checks each delivery's signature and keeps (rma, kind, valid).
async fn webhook_receiver(secret: &'static str) -> anyhow::Result<(String, Hooks)> {
    use modori_coordinator::webhooks;
    let received: Hooks = Hooks::default();
    let log = received.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let log = log.clone();
                async move {
                    let signature = headers
                        .get(webhooks::SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok());
                    let now_s = chrono::Utc::now().timestamp();
                    let valid = webhooks::verify(secret, signature, &body, now_s).is_ok();
                    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                    if let Ok(mut log) = log.lock() {
                        log.push((
                            event["rma"].as_str().unwrap_or_default().to_owned(),
                            event["kind"].as_str().unwrap_or_default().to_owned(),
                            valid,
                        ));
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, received))
}

static MAIL_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// Customers' mail to the test SMTP server (its port set by the test before the start).
fn with_mail(config: &mut modori_coordinator::config::CoordinatorConfig) {
    use modori_coordinator::notify::mail::{MailSection, Security};
    config.notifications.public_base_url = Some("https://returns.example.jp".into());
    config.mail = Some(MailSection {
        host: "127.0.0.1".into(),
        port: Some(MAIL_PORT.load(std::sync::atomic::Ordering::SeqCst)),
        security: Security::Plain,
        username: None,
        password: None,
        from: "ブランドA 修理受付 <repair@brand-a.example.jp>".into(),
        timeout_seconds: 5,
        ca_cert: None,
    });
}

async fn mailed(sink: &modori_tests::smtp::Sink, subject: &str) -> anyhow::Result<Value> {
    modori_tests::wait_for(subject, TIMEOUT, || {
        let got = sink.messages();
        async move { Ok(got?.iter().any(|m| m["subject"] == subject)) }
    })
    .await?;
    let mails = sink.messages()?;
    assert_eq!(
        mails.iter().filter(|m| m["subject"] == subject).count(),
        1,
        "one mail of {subject}"
    );
    mails
        .into_iter()
        .find(|m| m["subject"] == subject)
        .ok_or_else(|| anyhow::anyhow!("no mail {subject}"))
}

/// Through a real fleet: one repair asked for on the portal is graded at Sapporo (which does
/// not refurbish), its quote mailed (a real SMTP server) and shown on the status page, where
/// the customer accepts it in Chromium: charged as quoted, and the unit ordered to Saitama,
/// the nearest site that refurbishes, once. Another, asked for over the API with an English
/// address, is declined over the API: to be returned as it is, mailed in English. Each step
/// reaches the merchant's webhook, signed; ops see the repair on the return's page. axe-core
/// judges every page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_accepted_on_the_status_page_moves_to_a_site_that_refurbishes_and_one_declined_goes_back(
) -> anyhow::Result<()> {
    const SECRET: &str = "brand-a-repair-secret";
    let Some(browser) = modori_tests::browser::Browser::start().await? else {
        return Ok(());
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    MAIL_PORT.store(port, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir()?;
    let sink = modori_tests::smtp::Sink::start(port, &dir.path().join("mail.jsonl"), &[])?;
    let (hook_url, hooks) = webhook_receiver(SECRET).await?;
    // Sapporo (no refurbish), Sendai, Saitama (refurbish).
    let mut fleet = TestFleet::start_with(small_fleet(3)).await?;
    fleet.merchants = vec![modori_coordinator::webhooks::MerchantEntry {
        id: "brand-a".into(),
        name: Some("ブランドA".into()),
        webhook_url: Some(hook_url),
        webhook_secret: Some(SECRET.into()),
        ..Default::default()
    }];
    fleet.config_tweak = Some(with_mail);
    let (merchant_key, merchant_entry) = config_key("merchant:brand-a");
    fleet.extra_keys = vec![merchant_entry];
    fleet.start_coordinator().await?;
    let key = fleet.ops_key.clone();
    catalogue(&fleet, &key).await?;
    let (status, _) = call(
        &fleet,
        &key,
        "PUT",
        PRODUCTS,
        Some(json!({"products": [{"category": "phone"}]})),
    )
    .await?;
    anyhow::ensure!(status == 200);
    let rates = json!({"rates": [
        {"defect": "not_working", "category": "phone", "parts_yen": 8000, "labour_yen": 5000}]});
    let (status, _) = call(&fleet, &key, "PUT", RATES, Some(rates)).await?;
    anyhow::ensure!(status == 200);
    let base = format!("http://{}", fleet.http());

    browser
        .c()
        .goto(&format!("{base}/r/brand-a/repair"))
        .await?;
    browser
        .until("the repair form", "return !!document.getElementById('sku')")
        .await?;
    browser.fill("#postal-code", "060-0001").await?;
    browser.fill("#email", "hanako@example.jp").await?;
    browser.click("#ask-repair").await?;
    browser
        .until(
            "the repair booked",
            "return !!document.getElementById('rma')",
        )
        .await?;
    let booked = browser
        .js("return [document.getElementById('rma').textContent, document.getElementById('status-link').href]")
        .await?;
    let rma = booked[0].as_str().unwrap_or_default().to_owned();
    let status_url = booked[1].as_str().unwrap_or_default().to_owned();
    let registered = mailed(&sink, "【ブランドA】修理のお申し込みを受け付けました").await?;
    assert!(modori_tests::smtp::text_of(&registered).contains(&rma));

    received_and_graded(&fleet, &rma, "PHN-MINI", vec![DefectCode::NotWorking]).await?;
    let quoted = mailed(&sink, "【ブランドA】修理のお見積もりをお知らせします").await?;
    assert_eq!(quoted["rcpt_tos"], json!(["hanako@example.jp"]));
    let text = modori_tests::smtp::text_of(&quoted);
    assert!(text.contains(&rma), "{text}");
    assert!(
        text.contains("https://returns.example.jp/r/brand-a/s/"),
        "{text}"
    );

    browser.c().goto(&status_url).await?;
    browser
        .until(
            "the quote's form",
            "return !!document.getElementById('accept-repair')",
        )
        .await?;
    let shown = browser
        .js("return [document.getElementById('repair-quote').textContent, [...document.querySelectorAll('.repair-lines tbody td')].map(t => t.textContent)]")
        .await?;
    assert_eq!(shown, json!(["¥13,000", ["¥8,000", "¥5,000"]]));
    browser.screenshot("repair-quoted-ja").await?;
    browser.assert_accessible("repair-quoted-ja").await?;
    browser.click("#accept-repair").await?;
    browser
        .until(
            "the acceptance recorded",
            "return !document.getElementById('accept-repair') && !!document.getElementById('repair-charge')",
        )
        .await?;
    browser.assert_accessible("repair-accepted-ja").await?;
    mailed(&sink, "【ブランドA】修理を承りました").await?;
    let (_, r) = call(&fleet, &key, "GET", &format!("{REPAIRS}/{rma}"), None).await?;
    assert_eq!(
        (
            &r["decision"],
            &r["decided_by"],
            &r["charge_yen"],
            &r["transfer_to"]
        ),
        (
            &json!("accepted"),
            &json!("customer"),
            &json!(13000),
            &json!("saitama")
        ),
        "{r}"
    );
    // Sapporo is told to send the unit to Saitama, once.
    let config = fleet.agent_config(0);
    modori_tests::wait_for("the transfer order at Sapporo", TIMEOUT, || {
        let config = &config;
        async move {
            Ok(modori_tests::stations::agent_count(
                config,
                "SELECT COUNT(*) FROM transfer_orders WHERE to_site = 'saitama'",
            )? == 1)
        }
    })
    .await?;
    // Answered: nothing left for ops to override.
    let override_path = format!("/api/v1/returns/{rma}/repair/override");
    let revised = json!({"quote_yen": 9000, "reason": "screen part covered by the warranty"});
    let (status, answer) = call(&fleet, &key, "POST", &override_path, Some(revised)).await?;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (409, &json!("quote_yen")),
        "{answer}"
    );
    // Answered: nothing more to answer.
    let (status, answer) = call(
        &fleet,
        &key,
        "POST",
        &format!("{REPAIRS}/{rma}/answer"),
        Some(json!({"answer": "decline"})),
    )
    .await?;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (409, &json!("answer")),
        "{answer}"
    );

    // Declined over the API, told in English.
    let mut english = asked("PHN-MINI", "no_power");
    english["email"] = json!("taro@example.jp");
    english["language"] = json!("en");
    let (status, declined) = call(&fleet, &key, "POST", REPAIRS, Some(english)).await?;
    assert_eq!(status, 201, "{declined}");
    let declined = declined["rma"].as_str().unwrap_or_default().to_owned();
    let (status, answer) = call(
        &fleet,
        &key,
        "POST",
        &format!("{REPAIRS}/{declined}/answer"),
        Some(json!({"answer": "decline"})),
    )
    .await?;
    assert_eq!(status, 409, "not quoted yet: {answer}");
    received_and_graded(&fleet, &declined, "PHN-MINI", vec![DefectCode::NotWorking]).await?;
    let quote_mail = mailed(&sink, "ブランドA: your repair quote").await?;
    assert_eq!(quote_mail["rcpt_tos"], json!(["taro@example.jp"]));
    quote_overridden_by_ops(&fleet, &sink, &key, &merchant_key, &declined).await?;
    // The mail's link to the status page, followed on this coordinator.
    let text = modori_tests::smtp::text_of(&quote_mail);
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("https://returns.example.jp/r/brand-a/s/"))
        .ok_or_else(|| anyhow::anyhow!("no status link in {text}"))?;
    let path = link
        .trim_start_matches("https://returns.example.jp")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    browser.c().goto(&format!("{base}{path}?lang=en")).await?;
    browser
        .until(
            "the quote's form in English",
            "return !!document.getElementById('decline-repair')",
        )
        .await?;
    let heading = browser
        .js("return document.querySelector('h1').textContent")
        .await?;
    assert_eq!(heading, json!("Where your repair stands"));
    browser.assert_accessible("repair-quoted-en").await?;
    // A form from elsewhere (no cookie of the page) never counts.
    let forged = modori_tests::http_raw(
        fleet.http(),
        "POST",
        &format!("{path}/repair"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&b"csrf=00&answer=accept&lang=en"[..]),
    )
    .await?;
    assert_eq!(forged.status, 403, "{}", forged.body);
    browser.click("#decline-repair").await?;
    browser
        .until(
            "the decline recorded",
            "return !document.getElementById('decline-repair') && document.getElementById('repair-state').textContent.includes('as it is')",
        )
        .await?;
    browser.screenshot("repair-declined-en").await?;
    browser.assert_accessible("repair-declined-en").await?;
    let (_, r) = call(&fleet, &key, "GET", &format!("{REPAIRS}/{declined}"), None).await?;
    assert_eq!(
        (&r["decision"], &r["decided_by"], &r["charge_yen"]),
        (&json!("declined"), &json!("customer"), &Value::Null),
        "{r}"
    );
    let answer_path = format!("{REPAIRS}/{declined}/answer");
    let (status, again) = call(
        &fleet,
        &key,
        "POST",
        &answer_path,
        Some(json!({"answer": "decline"})),
    )
    .await?;
    assert_eq!(
        (status, &again),
        (200, &r),
        "the same answer changes nothing"
    );
    let (status, late) = call(
        &fleet,
        &key,
        "POST",
        &answer_path,
        Some(json!({"answer": "accept"})),
    )
    .await?;
    assert_eq!(status, 409, "declined stands: {late}");
    let mail = mailed(&sink, "ブランドA: your repair was declined").await?;
    assert_eq!(mail["rcpt_tos"], json!(["taro@example.jp"]));
    shipped_back_as_it_is(
        &fleet,
        &browser,
        &sink,
        &key,
        &declined,
        &format!("{base}{path}?lang=en"),
    )
    .await?;

    // Every step at the merchant's webhook, signed, once each.
    for (rma, wanted) in [
        (&rma, &["repair_quoted", "repair_accepted"][..]),
        (
            &declined,
            &[
                "repair_quoted",
                "repair_quote_overridden",
                "repair_declined",
            ][..],
        ),
    ] {
        modori_tests::wait_for("the repair's webhooks", TIMEOUT, || {
            let hooks = hooks.clone();
            let rma = rma.clone();
            async move {
                let got = hooks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                Ok(got
                    .iter()
                    .filter(|(r, k, _)| *r == rma && k.starts_with("repair"))
                    .count()
                    == wanted.len())
            }
        })
        .await?;
        let got: Vec<(String, bool)> = hooks
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .iter()
            .filter(|(r, k, _)| r == rma && k.starts_with("repair"))
            .map(|(_, k, valid)| (k.clone(), *valid))
            .collect();
        let signed: Vec<(String, bool)> = wanted.iter().map(|k| ((*k).to_owned(), true)).collect();
        assert_eq!(got, signed, "{rma}");
        assert_eq!(repair_kinds(&fleet, &key, rma).await?, wanted);
    }

    let shipped_hooks = || -> anyhow::Result<Vec<bool>> {
        Ok(hooks
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .iter()
            .filter(|(r, k, _)| *r == declined && k == "shipped_back")
            .map(|(_, _, valid)| *valid)
            .collect())
    };
    modori_tests::wait_for("the ship-back's webhook", TIMEOUT, || {
        let got = shipped_hooks();
        async move { Ok(!got?.is_empty()) }
    })
    .await?;
    assert_eq!(
        shipped_hooks()?,
        [true],
        "the ship-back at the webhook, once"
    );

    // The merchant's bill: both repairs inspected, one accepted, one sent back; once each.
    let month = (chrono::Utc::now() + chrono::Duration::hours(9))
        .format("%Y-%m")
        .to_string();
    let (status, statement) = call(
        &fleet,
        &key,
        "GET",
        &format!("/api/v1/billing/brand-a?month={month}"),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{statement}");
    let quantity = |activity: &str| {
        statement["lines"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["activity"] == activity))
            .map(|l| l["quantity"].clone())
    };
    assert_eq!(
        (
            quantity("repair_inspection"),
            quantity("repair"),
            quantity("ship_back")
        ),
        (Some(json!(2)), Some(json!(1)), Some(json!(1))),
        "{statement}"
    );

    // Ops see on the return's page that it is a repair, accepted and moved.
    browser.login(&base, "/returns", &key, "/returns").await?;
    browser.c().goto(&format!("{base}/returns/{rma}")).await?;
    browser
        .until(
            "the repair on the ops page",
            "const d = document.getElementById('repair'); return !d.hidden && d.textContent.includes('¥13,000') && d.textContent.includes('saitama')",
        )
        .await?;
    browser.screenshot("ops-return-repair").await?;
    browser.assert_accessible("ops-return-repair").await?;
    fleet.shutdown().await;
    Ok(())
}

/// A declined repair's item goes back as it is: its site (Sapporo) is ordered to send it back
/// once, ships it with the carrier's number as its putaway station's SHIP would, and the
/// centre's timeline, the status page (Chromium with axe) and a mail at the SMTP server say
/// it is on its way, in repair words; the merchant's webhook hears of it.
async fn shipped_back_as_it_is(
    fleet: &TestFleet,
    browser: &modori_tests::browser::Browser,
    sink: &modori_tests::smtp::Sink,
    key: &str,
    rma: &str,
    status_url: &str,
) -> anyhow::Result<()> {
    use modori_shared::domain::{Departure, Disposition, Lpn};
    let config = fleet.agent_config(0);
    let sql = format!("SELECT lpn FROM ship_backs WHERE rma = '{rma}'");
    modori_tests::wait_for("the ship-back ordered at the site", TIMEOUT, || {
        let (config, sql) = (&config, &sql);
        async move { Ok(modori_tests::stations::agent_query::<String>(config, sql).is_ok()) }
    })
    .await?;
    let count = format!("SELECT COUNT(*) FROM ship_backs WHERE rma = '{rma}'");
    assert_eq!(modori_tests::stations::agent_count(&config, &count)?, 1);
    let lpn = Lpn::new(modori_tests::stations::agent_query::<String>(
        &config, &sql,
    )?)?;
    let who = || Actor::new("B-0001", "put-1");
    let agent = fleet.agent(0);
    agent
        .record(
            Effect::Dispose {
                lpn: lpn.clone(),
                disposition: Disposition::Refurbish,
            },
            who(),
        )
        .await?;
    let tracking = "223456789014";
    agent
        .record(
            Effect::Depart {
                lpn,
                departure: Departure::ToCustomer {
                    rma: RmaId::new(rma)?,
                },
                tracking: Some(tracking.to_owned()),
            },
            who(),
        )
        .await?;
    let path = format!("/api/v1/returns/{rma}");
    modori_tests::wait_for("the ship-back on the timeline", TIMEOUT, || {
        let path = path.clone();
        async move {
            let (_, ret) = call(fleet, key, "GET", &path, None).await?;
            Ok(ret["events"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["kind"] == "shipped_back"))
        }
    })
    .await?;

    browser.c().goto(status_url).await?;
    browser
        .until(
            "the tracking number on the status page",
            &format!(
                "const t = document.getElementById('ship-back-tracking-0'); \
                 return !!t && t.textContent === '{tracking}' \
                   && document.getElementById('repair-state').textContent.includes('on its way back to you as it is')"
            ),
        )
        .await?;
    browser.screenshot("repair-shipped-back-en").await?;
    browser.assert_accessible("repair-shipped-back-en").await?;
    let mail = mailed(
        sink,
        "ブランドA: the item you sent for repair is on its way back",
    )
    .await?;
    assert_eq!(mail["rcpt_tos"], json!(["taro@example.jp"]));
    let text = modori_tests::smtp::text_of(&mail);
    assert!(text.contains(rma) && text.contains("tracking"), "{text}");
    Ok(())
}

/// Ops override a disputed quote with a reason, once: the merchant's key and bad input are
/// refused, each naming what is wrong; the revised quote stands with a fresh deadline, on
/// the timeline with the reason, and the customer is mailed of it (in English here).
async fn quote_overridden_by_ops(
    fleet: &TestFleet,
    sink: &modori_tests::smtp::Sink,
    ops: &str,
    merchant: &str,
    rma: &str,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/returns/{rma}/repair/override");
    let revised = json!({"quote_yen": 9000, "reason": "screen part covered by the warranty"});
    let (status, _) = call(fleet, merchant, "POST", &path, Some(revised.clone())).await?;
    assert_eq!(status, 403, "ops only");
    for (bad, field) in [
        (json!({"quote_yen": -1, "reason": "x"}), "quote_yen"),
        (json!({"quote_yen": 10_000_001, "reason": "x"}), "quote_yen"),
        (json!({"quote_yen": 9000, "reason": "   "}), "reason"),
        (
            json!({"quote_yen": 9000, "reason": "x".repeat(501)}),
            "reason",
        ),
    ] {
        let (status, answer) = call(fleet, ops, "POST", &path, Some(bad.clone())).await?;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (422, &json!(field)),
            "{bad}: {answer}"
        );
    }
    let (status, none) = call(
        fleet,
        ops,
        "POST",
        "/api/v1/returns/RMA-NONE/repair/override",
        Some(revised.clone()),
    )
    .await?;
    assert_eq!(status, 404, "{none}");
    let (_, before) = call(fleet, ops, "GET", &format!("{REPAIRS}/{rma}"), None).await?;
    let (status, r) = call(fleet, ops, "POST", &path, Some(revised.clone())).await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["quote"]["total_yen"], json!(9000), "{r}");
    assert_ne!(
        r["quote"]["answer_by"], before["quote"]["answer_by"],
        "a fresh deadline: {r}"
    );
    let (status, again) = call(fleet, ops, "POST", &path, Some(revised)).await?;
    assert_eq!(
        (status, &again),
        (200, &r),
        "the same override changes nothing"
    );
    let other = json!({"quote_yen": 8000, "reason": "another reason"});
    let (status, answer) = call(fleet, ops, "POST", &path, Some(other)).await?;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (409, &json!("quote_yen")),
        "overridden once: {answer}"
    );
    let (_, ret) = call(fleet, ops, "GET", &format!("/api/v1/returns/{rma}"), None).await?;
    let rows: Vec<&Value> = ret["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "repair_quote_overridden")
        .collect();
    assert_eq!(rows.len(), 1, "{ret}");
    assert!(
        rows[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("covered by the warranty") && d.contains("9000")),
        "{ret}"
    );
    let mail = mailed(sink, "ブランドA: we revised your repair quote").await?;
    assert_eq!(mail["rcpt_tos"], json!(["taro@example.jp"]));
    assert!(modori_tests::smtp::text_of(&mail).contains(rma));
    Ok(())
}
