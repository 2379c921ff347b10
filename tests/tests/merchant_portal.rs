//! A merchant sets its portal over the API, as its back office would: name, colour, logo,
//! policy text, the reasons and ways back offered. What it puts comes back as put, outlives a
//! restart (the config no longer wins), and shows on the portal's next page without a
//! restart; each bad setting is refused naming its field, and another merchant's key is
//! refused. (The message a put template words is checked at the SMTP server, in
//! notifications.rs.)

use modori_coordinator::webhooks::MerchantEntry;
use modori_tests::{config_key, http_raw, http_request_as, small_fleet, TestFleet};
use serde_json::{json, Value};

const PATH: &str = "/api/v1/merchants/brand-a/portal";

/// A fleet of one site with brand-a configured as ブランドA in blue, its key and brand-b's,
/// and one order of Hanako's.
async fn fleet() -> anyhow::Result<(TestFleet, String, String)> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (merchant, merchant_entry) = config_key("merchant:brand-a");
    let (other, other_entry) = config_key("merchant:brand-b");
    fleet.extra_keys = vec![merchant_entry, other_entry];
    fleet.merchants = vec![MerchantEntry {
        id: "brand-a".into(),
        name: Some("ブランドA".into()),
        colour: Some("#1f5fbf".into()),
        ..MerchantEntry::default()
    }];
    fleet.start_coordinator().await?;
    let catalog = json!({"items": [
        {"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900},
    ]});
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(&catalog.to_string()))
        .await?;
    anyhow::ensure!(status == 200, "catalogue: {text}");
    let orders = json!({"orders": [
        {"ref": "ORD-1", "customer_ref": "cust-1", "ordered_at": chrono::Utc::now().to_rfc3339(),
         "lines": [{"sku": "TEE-WHT-M", "qty": 1}],
         "contact": {"email": "hanako@example.jp", "phone": "090-1234-5678"}},
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
    Ok((fleet, merchant, other))
}

fn settings() -> Value {
    json!({
        "name": "ブランドA 公式ストア",
        "colour": "#ffd700",
        "logo_url": "https://cdn.example.jp/brand-a/logo.png",
        "policy_text": "商品到着後30日以内であれば返品を承ります。\nセール品は返品できません。",
        "reasons": ["too_small", "too_large", "defective"],
        "methods": ["konbini_dropoff", "store_dropoff"],
        "templates": {
            "registered": {"ja": {
                "subject": "{merchant}：返品 {rma} を承りました",
                "body": "ご返品（{rma}）のお申し込みありがとうございます。"
            }},
            "dropped_off": {"en": {
                "subject": "{merchant}: your parcel is with us",
                "body": "The store has your parcel of {rma}."
            }}
        }
    })
}

async fn put(fleet: &TestFleet, key: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    let (status, text) = http_request_as(
        fleet.http(),
        Some(key),
        "PUT",
        PATH,
        Some(&body.to_string()),
    )
    .await?;
    Ok((status, serde_json::from_str(&text)?))
}

async fn get(fleet: &TestFleet, key: &str) -> anyhow::Result<Value> {
    let (status, text) = http_request_as(fleet.http(), Some(key), "GET", PATH, None).await?;
    anyhow::ensure!(status == 200, "GET: {status} {text}");
    Ok(serde_json::from_str(&text)?)
}

/// A portal page's HTML, or a stylesheet's text.
async fn page(fleet: &TestFleet, path: &str) -> anyhow::Result<String> {
    let res = http_raw(fleet.http(), "GET", path, &[], None).await?;
    anyhow::ensure!(res.status == 200, "{path}: {} {}", res.status, res.body);
    Ok(res.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_merchant_puts_comes_back_shows_on_the_portal_at_once_and_outlives_a_restart(
) -> anyhow::Result<()> {
    let (mut fleet, key, _) = fleet().await?;
    // Before: the config's settings.
    let before = get(&fleet, &key).await?;
    assert_eq!(before["name"], "ブランドA");
    assert_eq!(before["colour"], "#1f5fbf");
    let form = page(&fleet, "/r/brand-a").await?;
    assert!(form.contains("ブランドA"), "{form}");
    assert!(!form.contains("cdn.example.jp"), "{form}");
    let css = page(&fleet, "/r/brand-a/brand.css").await?;
    assert!(css.contains("#1f5fbf"), "{css}");

    let (status, stored) = put(&fleet, &key, &settings()).await?;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored, settings());
    assert_eq!(get(&fleet, &key).await?, settings());

    // The next page shows them, with no restart: name, logo, policy; and the colour in the
    // merchant's stylesheet with a text colour that reads on it (black on gold).
    let form = page(&fleet, "/r/brand-a").await?;
    assert!(form.contains("ブランドA 公式ストア"), "{form}");
    assert!(
        form.contains("<img class=\"logo\" src=\"https://cdn.example.jp/brand-a/logo.png\""),
        "{form}"
    );
    assert!(
        form.contains(
            "<p>商品到着後30日以内であれば返品を承ります。</p><p>セール品は返品できません。</p>"
        ),
        "{form}"
    );
    assert!(form.contains("href=\"/r/brand-a/brand.css\""), "{form}");
    // The privacy notice its pages link to wears the brand too.
    assert!(
        form.contains("href=\"/r/brand-a/privacy?lang=ja\""),
        "{form}"
    );
    let privacy = page(&fleet, "/r/brand-a/privacy").await?;
    for branded in [
        "ブランドA 公式ストア",
        "<img class=\"logo\" src=\"https://cdn.example.jp/brand-a/logo.png\"",
        "<p>セール品は返品できません。</p>",
        "href=\"/r/brand-a/brand.css\"",
    ] {
        assert!(privacy.contains(branded), "{branded}: {privacy}");
    }
    let css = page(&fleet, "/r/brand-a/brand.css").await?;
    assert!(css.contains("background: #ffd700; color: #000000"), "{css}");
    // The language switch reads on it too: the portal's own link colour is replaced.
    assert!(
        css.contains("body > header .lang { color: inherit; }"),
        "{css}"
    );
    let res = http_raw(fleet.http(), "GET", "/r/brand-a", &[], None).await?;
    let csp = res.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("img-src 'self' https:"), "{csp}");

    // The order's page offers only the reasons and ways back the merchant chose.
    let cookie = res.header("set-cookie").unwrap_or_default();
    let token = cookie
        .strip_prefix("modori_portal_csrf=")
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let body = format!("csrf={token}&lang=ja&order_ref=ORD-1&contact=hanako%40example.jp");
    let cookie = format!("modori_portal_csrf={token}");
    let order = http_raw(
        fleet.http(),
        "POST",
        "/r/brand-a",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &cookie),
        ],
        Some(body.as_bytes()),
    )
    .await?;
    assert_eq!(order.status, 200, "{}", order.body);
    for offered in [
        "\"too_small\"",
        "\"defective\"",
        "\"konbini_dropoff\"",
        "\"store_dropoff\"",
    ] {
        assert!(order.body.contains(offered), "{offered}: {}", order.body);
    }
    // No pickup offered, so no day and slot asked for either.
    for left_out in [
        "\"changed_mind\"",
        "\"carrier_pickup\"",
        "\"home_pickup\"",
        "pickup_date",
    ] {
        assert!(!order.body.contains(left_out), "{left_out}: {}", order.body);
    }
    // Each way back offered shows its fee.
    assert!(order.body.contains("手数料"), "{}", order.body);
    // A way back the merchant does not offer is refused even when posted by hand.
    let register = format!(
        "csrf={token}&lang=ja&order_ref=ORD-1&contact=hanako%40example.jp&line0=1&qty0=1\
         &reason0=too_small&outcome0=refund&postal_code=530-0001&method=carrier_pickup"
    );
    let refused = http_raw(
        fleet.http(),
        "POST",
        "/r/brand-a/returns",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &cookie),
        ],
        Some(register.as_bytes()),
    )
    .await?;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("ブランドA 公式ストア"),
        "{}",
        refused.body
    );

    // A restart seeds the config's settings again, but the API's win.
    fleet.start_coordinator().await?;
    assert_eq!(get(&fleet, &key).await?, settings());
    let form = page(&fleet, "/r/brand-a").await?;
    assert!(form.contains("ブランドA 公式ストア"), "{form}");
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_setting_is_refused_by_its_field_and_nothing_stored_is_lost() -> anyhow::Result<()>
{
    let (fleet, key, other) = fleet().await?;
    let (status, _) = put(&fleet, &key, &settings()).await?;
    assert_eq!(status, 200);
    let with = |field: &str, value: Value| {
        let mut s = settings();
        s[field] = value;
        s
    };
    let bad_template = {
        let mut s = settings();
        s["templates"]["registered"]["ja"]["body"] = json!("ありがとうございます。");
        s
    };
    let unknown_placeholder = {
        let mut s = settings();
        s["templates"]["registered"]["ja"]["subject"] = json!("{name} さま {rma}");
        s
    };
    let bad_dropped_off = {
        let mut s = settings();
        s["templates"]["dropped_off"]["en"]["body"] = json!("The store has {merchant}'s parcel.");
        s
    };
    for (body, field, words) in [
        (with("colour", json!("gold")), "colour", "#rrggbb"),
        (with("colour", json!("#ffd70")), "colour", "#rrggbb"),
        (
            with("logo_url", json!("http://cdn.example.jp/logo.png")),
            "logo_url",
            "https://",
        ),
        (
            with("reasons", json!(["too_small", "bored"])),
            "reasons[1]",
            "unknown reason code",
        ),
        (
            with("methods", json!(["drone"])),
            "methods[0]",
            "unknown method",
        ),
        (bad_template, "templates.registered.ja.body", "{rma}"),
        (bad_dropped_off, "templates.dropped_off.en.body", "{rma}"),
        (
            unknown_placeholder,
            "templates.registered.ja.subject",
            "unknown placeholder {name}",
        ),
        (with("name", json!("")), "name", "1..=100"),
    ] {
        let (status, answer) = put(&fleet, &key, &body).await?;
        assert_eq!(status, 422, "{field}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{field}: {message}");
    }
    // Another merchant's key reads and writes nothing of brand-a's.
    let (status, _) = put(&fleet, &other, &settings()).await?;
    assert_eq!(status, 403);
    let (status, _) = http_request_as(fleet.http(), Some(&other), "GET", PATH, None).await?;
    assert_eq!(status, 403);
    // What was stored before the refusals is still in force.
    assert_eq!(get(&fleet, &key).await?, settings());
    fleet.shutdown().await;
    Ok(())
}
