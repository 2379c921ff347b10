//! The customer portal over real HTTP, as a customer's browser meets it: the lookup form and
//! its headers, an order opened by its email address or by its phone number with each line's
//! policy decision in plain words, the same answer for an unknown order and a wrong contact, a
//! form without its page's CSRF token refused, and a brute-force series locked out, still
//! locked out after a restart; a refund line and an exchange line registered as two returns,
//! each with a status page its token opens (and a token guessed at random does not), and a
//! QR code the store counter opens the return by.

use std::time::Duration;

use modori_coordinator::config::CoordinatorConfig;
use modori_coordinator::notify::mail::{MailSection, Security};
use modori_coordinator::webhooks::MerchantEntry;
use modori_tests::{
    config_key, http_get_bytes, http_raw, http_request_as, multipart_form, small_fleet,
    HttpResponse, TestFleet, TINY_PNG,
};
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

/// A fleet of one site, brand-a (named ブランドA) with a catalogue and three orders of
/// Hanako's: ORD-1 of three days ago (a tee and a final-sale cap), ORD-2 (a tee and trousers,
/// each of a style with another size) and ORD-OLD, past the return window; and the key of a
/// store, st-ginza, and an ops key. A carrier's pickup costs ¥300, a home pickup ¥500.
async fn fleet() -> anyhow::Result<(TestFleet, String, String)> {
    fleet_with(with_fees).await
}

fn with_fees(c: &mut CoordinatorConfig) {
    c.policy.method_fee_yen.carrier_pickup = 300;
    c.policy.method_fee_yen.home_pickup = 500;
}

/// With mail to a port nothing listens on: customers' messages wait in the outbox.
fn with_fees_and_mail_waiting(c: &mut CoordinatorConfig) {
    with_fees(c);
    c.mail = Some(MailSection {
        host: "127.0.0.1".into(),
        port: Some(9),
        security: Security::Plain,
        username: None,
        password: None,
        from: "ブランドA <returns@brand-a.example.jp>".into(),
        timeout_seconds: 1,
        ca_cert: None,
    });
}

async fn fleet_with(
    tweak: fn(&mut CoordinatorConfig),
) -> anyhow::Result<(TestFleet, String, String)> {
    let mut fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (merchant, merchant_entry) = config_key("merchant:brand-a");
    let (store, store_entry) = config_key("store:st-ginza");
    let (ops, ops_entry) = config_key("ops");
    fleet.extra_keys = vec![merchant_entry, store_entry, ops_entry];
    fleet.config_tweak = Some(tweak);
    fleet.merchants = vec![MerchantEntry {
        id: "brand-a".into(),
        name: Some("ブランドA".into()),
        ..MerchantEntry::default()
    }];
    fleet.start_coordinator().await?;
    let catalog = json!({"items": [
        {"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900, "style": "TEE-1"},
        {"sku": "TEE-WHT-L", "category": "tops", "price_yen": 2900, "style": "TEE-1"},
        {"sku": "PANTS-NVY-M", "category": "bottoms", "price_yen": 6900, "style": "PANTS-1"},
        {"sku": "PANTS-NVY-L", "category": "bottoms", "price_yen": 6900, "style": "PANTS-1"},
        {"sku": "CAP-SALE", "category": "hats", "price_yen": 1200, "final_sale": true},
    ]});
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(&catalog.to_string()))
        .await?;
    anyhow::ensure!(status == 200, "catalogue: {text}");
    let recent = chrono::Utc::now() - chrono::Duration::milliseconds(3 * DAY_MS);
    let old = chrono::Utc::now() - chrono::Duration::milliseconds(200 * DAY_MS);
    let orders = json!({"orders": [
        {"ref": "ORD-1", "customer_ref": "cust-1", "ordered_at": recent.to_rfc3339(),
         "lines": [{"sku": "TEE-WHT-M", "qty": 1}, {"sku": "CAP-SALE", "qty": 1}],
         "contact": {"email": "hanako@example.jp", "phone": "090-1234-5678"}},
        {"ref": "ORD-2", "customer_ref": "cust-1", "ordered_at": recent.to_rfc3339(),
         "lines": [{"sku": "TEE-WHT-M", "qty": 1}, {"sku": "PANTS-NVY-M", "qty": 1}],
         "contact": {"email": "hanako@example.jp", "phone": "090-1234-5678"}},
        {"ref": "ORD-OLD", "customer_ref": "cust-1", "ordered_at": old.to_rfc3339(),
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
    Ok((fleet, store, ops))
}

/// The lookup form's page, and its CSRF token (from its cookie, checked against the form).
async fn form(fleet: &TestFleet, query: &str) -> anyhow::Result<(HttpResponse, String)> {
    let page = http_raw(
        fleet.http(),
        "GET",
        &format!("/r/brand-a{query}"),
        &[],
        None,
    )
    .await?;
    anyhow::ensure!(page.status == 200, "form: {} {}", page.status, page.body);
    let cookie = page.header("set-cookie").unwrap_or_default();
    let token = cookie
        .strip_prefix("modori_portal_csrf=")
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        token.len() == 32 && page.body.contains(&format!("value=\"{token}\"")),
        "the form carries the cookie's token: {cookie}"
    );
    Ok((page, token))
}

fn encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

async fn lookup(
    fleet: &TestFleet,
    token: &str,
    cookie: &str,
    order_ref: &str,
    contact: &str,
) -> anyhow::Result<HttpResponse> {
    let fields = [
        ("csrf", token),
        ("lang", "ja"),
        ("order_ref", order_ref),
        ("contact", contact),
    ];
    post(fleet, "/r/brand-a", cookie, &fields).await
}

async fn post(
    fleet: &TestFleet,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encoded(v)))
        .collect::<Vec<_>>()
        .join("&");
    let cookie = format!("modori_portal_csrf={cookie}");
    http_raw(
        fleet.http(),
        "POST",
        path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        Some(body.as_bytes()),
    )
    .await
}

/// The label PDF of size `size` behind the status page `link`: its page is `page_size` as
/// `pdfinfo` reads it, and rendered by `pdftoppm` its barcode decodes to `rma` with `zbarimg`.
async fn label_reads_back(
    fleet: &TestFleet,
    link: &str,
    size: &str,
    page_size: &str,
    rma: &str,
) -> anyhow::Result<()> {
    let (status, head, pdf) =
        http_get_bytes(fleet.http(), &format!("{link}/label.pdf?size={size}"), &[]).await?;
    assert_eq!(status, 200, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/pdf"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let dir = tempfile::tempdir()?;
    let file = dir.path().join(format!("label-{size}.pdf"));
    std::fs::write(&file, &pdf)?;
    let info = std::process::Command::new("pdfinfo")
        .arg(&file)
        .output()
        .map_err(|e| {
            anyhow::anyhow!("pdfinfo (poppler-utils, scripts/test.sh installs it): {e}")
        })?;
    let info = String::from_utf8_lossy(&info.stdout);
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(field("Page size:"), page_size, "{info}");
    assert_eq!(field("Pages:"), "1", "{info}");
    let png = dir.path().join("label");
    let rendered = std::process::Command::new("pdftoppm")
        .args(["-r", "300", "-png", "-singlefile"])
        .arg(&file)
        .arg(&png)
        .status()?;
    assert!(rendered.success(), "pdftoppm");
    let codes = modori_tests::labels::decode(&png.with_extension("png"))?;
    assert_eq!(codes, [rma.to_owned()], "{size}");
    Ok(())
}

/// A session cookie of the key `key` (`name=value`).
async fn login(fleet: &TestFleet, key: &str, next: &str) -> anyhow::Result<String> {
    let body = format!("key={key}&next={}", encoded(next));
    let res = http_raw(
        fleet.http(),
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    )
    .await?;
    Ok(res
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_owned())
}

async fn post_multipart(
    fleet: &TestFleet,
    cookie: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> anyhow::Result<HttpResponse> {
    let (content_type, body) = multipart_form(fields, files);
    let cookie = format!("modori_portal_csrf={cookie}");
    http_raw(
        fleet.http(),
        "POST",
        "/r/brand-a/returns",
        &[("Content-Type", &content_type), ("Cookie", &cookie)],
        Some(&body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_describes_an_item_in_words_and_photos_a_bad_photo_loses_nothing_else_and_ops_see_them(
) -> anyhow::Result<()> {
    let (fleet, _, ops_key) = fleet_with(with_fees_and_mail_waiting).await?;
    let (_, token) = form(&fleet, "").await?;
    let page = lookup(&fleet, &token, &token, "ORD-2", "hanako@example.jp").await?;
    assert!(
        page.body.contains("enctype=\"multipart/form-data\"")
            && page.body.contains("name=\"photo0\" type=\"file\"")
            && page.body.contains("name=\"note0\""),
        "{}",
        page.body
    );
    let note = "袖の縫い目がほつれていました";
    let fields = [
        ("csrf", token.as_str()),
        ("lang", "ja"),
        ("order_ref", "ORD-2"),
        ("contact", "hanako@example.jp"),
        ("line0", "1"),
        ("qty0", "1"),
        ("reason0", "defective"),
        ("note0", note),
        ("outcome0", "refund"),
        ("postal_code", "530-0001"),
        ("method", "konbini_dropoff"),
    ];
    let html = b"<html><script>alert(1)</script></html>";
    let files: [(&str, &str, &[u8]); 2] = [
        ("photo0", "tear.png", TINY_PNG),
        ("photo0", "evil.html", html),
    ];
    // A page that is not an image: refused in plain words, the rest of the form kept, the
    // good photo kept.
    let refused = post_multipart(&fleet, &token, &fields, &files).await?;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("「evil.html」は写真として読み取れませんでした"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(note) && refused.body.contains("写真1枚をお預かりしています"));
    assert!(refused.body.contains("value=\"defective\" selected"));
    assert!(refused.body.contains("value=\"530-0001\""));
    assert!(refused.body.contains("value=\"konbini_dropoff\" selected"));
    let kept: Vec<&str> = refused
        .body
        .split("name=\"kept0\" value=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert_eq!(kept.len(), 1, "{}", refused.body);

    // Too large, and a fourth photo: refused too.
    let big = [
        TINY_PNG,
        &vec![0u8; modori_coordinator::http::portal::PHOTO_BYTES_MAX],
    ]
    .concat();
    let mut again: Vec<(&str, &str)> = fields.to_vec();
    again.push(("kept0", kept[0]));
    let files: [(&str, &str, &[u8]); 4] = [
        ("photo0", "huge.png", &big),
        ("photo0", "two.png", TINY_PNG),
        ("photo0", "three.png", TINY_PNG),
        ("photo0", "four.png", TINY_PNG),
    ];
    let refused = post_multipart(&fleet, &token, &again, &files).await?;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("「huge.png」は大きすぎます"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("写真は1点につき3枚までです。「four.png」"),
        "{}",
        refused.body
    );
    let kept: Vec<String> = refused
        .body
        .split("name=\"kept0\" value=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect();
    assert_eq!(kept.len(), 3, "{}", refused.body);

    // A note past its length is refused the same way.
    let long = "あ".repeat(modori_coordinator::http::portal::NOTE_CHARS_MAX + 1);
    let mut too_long: Vec<(&str, &str)> = fields.to_vec();
    too_long[7] = ("note0", &long);
    let res = post_multipart(&fleet, &token, &too_long, &[]).await?;
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(res.body.contains("500文字以内"), "{}", res.body);

    let mut done_fields: Vec<(&str, &str)> = fields.to_vec();
    for k in &kept {
        done_fields.push(("kept0", k));
    }
    let done = post_multipart(&fleet, &token, &done_fields, &[]).await?;
    assert_eq!(done.status, 201, "{}", done.body);
    let rma = done
        .body
        .split("<dd class=\"rma\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or_default()
        .to_owned();

    // Ops read the note and see the photos, served as the images they are.
    let session = login(&fleet, &ops_key, "/returns").await?;
    let words = http_raw(
        fleet.http(),
        "GET",
        &format!("/ui/returns/{rma}/customer"),
        &[("Cookie", &session)],
        None,
    )
    .await?;
    assert_eq!(words.status, 200, "{}", words.body);
    let v: serde_json::Value = serde_json::from_str(&words.body)?;
    assert_eq!(v["lines"][0]["sku"], "TEE-WHT-M", "{v}");
    assert_eq!(v["lines"][0]["note"], note, "{v}");
    let photos = v["lines"][0]["photos"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(photos.len(), 3, "{v}");
    let url = photos[0].as_str().unwrap_or_default();
    let (status, head, bytes) = http_get_bytes(fleet.http(), url, &[("Cookie", &session)]).await?;
    assert_eq!(status, 200, "{head}");
    assert_eq!(bytes, TINY_PNG);
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: image/png"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(
        head.contains(&format!(
            "content-disposition: inline; filename=\"{}-",
            rma.to_ascii_lowercase()
        )),
        "{head}"
    );
    let (status, _, bytes) = http_get_bytes(fleet.http(), url, &[]).await?;
    assert_ne!(status, 200);
    assert_ne!(bytes, TINY_PNG);

    // A photo of a request never finished (ORD-1's note is too long), kept for the form.
    let pending_fields = [
        ("csrf", token.as_str()),
        ("lang", "ja"),
        ("order_ref", "ORD-1"),
        ("contact", "hanako@example.jp"),
        ("line0", "1"),
        ("qty0", "1"),
        ("reason0", "defective"),
        ("note0", long.as_str()),
        ("outcome0", "refund"),
        ("postal_code", "530-0001"),
        ("method", "konbini_dropoff"),
    ];
    let files: [(&str, &str, &[u8]); 1] = [("photo0", "a.png", TINY_PNG)];
    let res = post_multipart(&fleet, &token, &pending_fields, &files).await?;
    assert!(
        res.body.contains("写真1枚をお預かりしています"),
        "{}",
        res.body
    );

    // The customer asks to be forgotten (APPI): their photos, notes, status links and queued
    // messages go with their personal data.
    let c = fleet.coordinator();
    let count = |sql| modori_tests::coordinator_count(c, sql, &rma);
    assert_eq!(
        count("SELECT COUNT(*) FROM return_photos WHERE rma = ?1").await?,
        3
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM return_photos WHERE rma IS NULL AND ?1 <> ''").await?,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM return_notes WHERE rma = ?1").await?,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM status_tokens WHERE rma = ?1").await?,
        1
    );
    let queued = "SELECT COUNT(*) FROM notifications WHERE rma = ?1 AND status <> 'sent'";
    modori_tests::wait_for("a message queued", Duration::from_secs(10), || async {
        Ok(count(queued).await? > 0)
    })
    .await?;
    let (status, text) = fleet
        .api("DELETE", "/api/v1/customers/cust-1", None)
        .await?;
    assert_eq!(status, 200, "{text}");
    for sql in [
        "SELECT COUNT(*) FROM return_photos WHERE rma = ?1 OR (rma IS NULL AND ?1 <> '')",
        "SELECT COUNT(*) FROM return_notes WHERE rma = ?1",
        "SELECT COUNT(*) FROM status_tokens WHERE rma = ?1",
        "SELECT COUNT(*) FROM notifications WHERE rma = ?1",
    ] {
        assert_eq!(count(sql).await?, 0, "{sql}");
    }
    let (status, _, _) = http_get_bytes(fleet.http(), url, &[("Cookie", &session)]).await?;
    assert_eq!(status, 404);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_portal_page_links_the_privacy_notice_in_both_languages() -> anyhow::Result<()> {
    let (fleet, _, _) = fleet().await?;
    let (page, token) = form(&fleet, "").await?;
    assert!(
        page.body
            .contains("href=\"/r/brand-a/privacy?lang=ja\">個人情報の取り扱いについて</a>"),
        "{}",
        page.body
    );
    let found = lookup(&fleet, &token, &token, "ORD-1", "hanako@example.jp").await?;
    assert!(
        found.body.contains("href=\"/r/brand-a/privacy?lang=ja\""),
        "{}",
        found.body
    );
    let guessed = format!("/r/brand-a/s/{}?lang=en", "0f".repeat(32));
    let missing = http_raw(fleet.http(), "GET", &guessed, &[], None).await?;
    assert!(
        missing.body.contains("href=\"/r/privacy?lang=en\""),
        "{}",
        missing.body
    );
    let ja = http_raw(fleet.http(), "GET", "/r/privacy", &[], None).await?;
    assert_eq!(ja.status, 200, "{}", ja.body);
    for words in [
        "お預かりする情報",
        "利用の目的",
        "保存の期間",
        "お問い合わせ",
        "90日後",
        "写真",
    ] {
        assert!(ja.body.contains(words), "{words}: {}", ja.body);
    }
    // A merchant's pages link to the notice under its brand, its words the same.
    let branded = http_raw(fleet.http(), "GET", "/r/brand-a/privacy", &[], None).await?;
    assert_eq!(branded.status, 200, "{}", branded.body);
    assert!(
        branded
            .body
            .contains("<span class=\"shop\">ブランドA</span>"),
        "{}",
        branded.body
    );
    assert!(
        branded.body.contains("お預かりする情報"),
        "{}",
        branded.body
    );
    let en = http_raw(fleet.http(), "GET", "/r/privacy?lang=en", &[], None).await?;
    for words in [
        "What we collect",
        "Why",
        "For how long",
        "Whom to ask",
        "90 days",
    ] {
        assert!(en.body.contains(words), "{words}: {}", en.body);
    }
    assert!(en
        .header("content-security-policy")
        .is_some_and(|c| c.contains("frame-ancestors 'none'")));
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_pickup_is_booked_for_a_day_and_slot_and_its_fee_deducted() -> anyhow::Result<()>
{
    let (fleet, _, _) = fleet().await?;
    let (_, token) = form(&fleet, "").await?;
    let page = lookup(&fleet, &token, &token, "ORD-1", "hanako@example.jp").await?;
    assert!(
        page.body.contains("配送業者の集荷（手数料 ¥300）")
            && page.body.contains("コンビニから発送（手数料無料）"),
        "{}",
        page.body
    );
    let dates: Vec<&str> = page
        .body
        .split("name=\"pickup_date\"")
        .nth(1)
        .unwrap_or_default()
        .split("</select>")
        .next()
        .unwrap_or_default()
        .split("<option value=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert_eq!(
        dates.len(),
        modori_coordinator::app::portal::PICKUP_WINDOW_DAYS as usize,
        "{}",
        page.body
    );
    let tomorrow = (chrono::Utc::now() + chrono::Duration::hours(9 + 24))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(dates[0], tomorrow);
    for slot in ["午前中", "14〜16時", "16〜18時", "18〜20時", "19〜21時"] {
        assert!(page.body.contains(slot), "{slot}");
    }
    let mut chosen = vec![
        ("csrf", token.as_str()),
        ("lang", "ja"),
        ("order_ref", "ORD-1"),
        ("contact", "hanako@example.jp"),
        ("line0", "1"),
        ("qty0", "1"),
        ("reason0", "too_large"),
        ("outcome0", "refund"),
        ("postal_code", "530-0001"),
        ("method", "carrier_pickup"),
        ("pickup_date", "2001-01-01"),
        ("pickup_slot", "18-20"),
    ];
    // A day that cannot be booked: asked again, the rest as chosen.
    let refused = post(&fleet, "/r/brand-a/returns", &token, &chosen).await?;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("集荷の日と時間帯をお選びください"));
    assert!(refused.body.contains("value=\"too_large\" selected"));
    assert!(refused.body.contains("value=\"18-20\" selected"));
    chosen[10] = ("pickup_date", dates[1]);
    let done = post(&fleet, "/r/brand-a/returns", &token, &chosen).await?;
    assert_eq!(done.status, 201, "{}", done.body);
    assert!(done.body.contains("18〜20時"), "{}", done.body);
    // ¥2,900 less the refund's fee (¥500) and the pickup's (¥300).
    assert!(
        done.body.contains("<dd class=\"method-fee\">¥300</dd>")
            && done.body.contains("<dd class=\"fee\">¥500</dd>")
            && done.body.contains("<dd class=\"net\">¥2100</dd>"),
        "{}",
        done.body
    );
    let rma = done
        .body
        .split("<dd class=\"rma\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or_default();
    let (status, text) = fleet
        .api("GET", &format!("/api/v1/returns/{rma}"), None)
        .await?;
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(v["terms"]["fee_yen"], 800, "{v}");
    let link = done
        .body
        .split("class=\"status\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default();
    let status = http_raw(fleet.http(), "GET", link, &[], None).await?;
    assert!(
        status.body.contains("集荷日時") && status.body.contains("18〜20時"),
        "{}",
        status.body
    );
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_opens_their_order_by_email_or_phone_and_reads_each_lines_decision(
) -> anyhow::Result<()> {
    let (fleet, _, _) = fleet().await?;
    let (page, token) = form(&fleet, "").await?;
    assert!(page.body.contains("<html lang=\"ja\""), "{}", page.body);
    assert!(page.body.contains("ブランドA") && page.body.contains("注文番号"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("frame-ancestors 'none'")));
    let cookie = page.header("set-cookie").unwrap_or_default();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let (english, _) = form(&fleet, "?lang=en").await?;
    assert!(english.body.contains("<html lang=\"en\"") && english.body.contains("Order number"));

    let found = lookup(&fleet, &token, &token, "ord-1", "Hanako@Example.jp").await?;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains("TEE-WHT-M") && found.body.contains("まで返品・交換できます"));
    assert!(
        found.body.contains("CAP-SALE") && found.body.contains("セール品"),
        "{}",
        found.body
    );
    assert_eq!(found.header("cache-control"), Some("no-store"));
    let by_phone = lookup(&fleet, &token, &token, "ORD-1", "+81 90 1234 5678").await?;
    assert_eq!(by_phone.status, 200, "{}", by_phone.body);
    let old = lookup(&fleet, &token, &token, "ORD-OLD", "09012345678").await?;
    assert!(old.body.contains("返品期限"), "{}", old.body);

    // A wrong contact and an unknown order: one answer, word for word.
    let wrong = lookup(&fleet, &token, &token, "ORD-1", "taro@example.jp").await?;
    let unknown = lookup(&fleet, &token, &token, "ORD-404", "hanako@example.jp").await?;
    assert_eq!(wrong.status, 404);
    assert!(
        wrong.body.contains("ご注文が見つかりません"),
        "{}",
        wrong.body
    );
    assert_eq!((unknown.status, &unknown.body), (wrong.status, &wrong.body));
    assert!(!wrong.body.contains("TEE-WHT-M"));

    // A form posted from elsewhere has no page's cookie to match its token.
    let forged = lookup(
        &fleet,
        &token,
        "0123456789abcdef0123456789abcdef",
        "ORD-1",
        "hanako@example.jp",
    )
    .await?;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.body.contains("有効期限"), "{}", forged.body);
    assert!(!forged.body.contains("TEE-WHT-M"));
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brute_force_series_is_locked_out_and_a_restart_does_not_forgive_it() -> anyhow::Result<()>
{
    let (mut fleet, _, _) = fleet().await?;
    let (_, token) = form(&fleet, "").await?;
    let max = modori_coordinator::app::portal::LOOKUP_FAILURES_MAX;
    for i in 0..max - 1 {
        let guess = format!("guess{i}@example.jp");
        let res = lookup(&fleet, &token, &token, "ORD-1", &guess).await?;
        assert_eq!(res.status, 404, "try {i}: {}", res.body);
    }
    let last = lookup(&fleet, &token, &token, "ORD-1", "last@example.jp").await?;
    assert_eq!(last.status, 429, "{}", last.body);
    assert!(last.body.contains("試行回数が上限"), "{}", last.body);
    // Locked out: the right contact now opens nothing either, from this address or for this
    // order.
    let right = lookup(&fleet, &token, &token, "ORD-1", "hanako@example.jp").await?;
    assert_eq!(right.status, 429, "{}", right.body);
    assert!(!right.body.contains("TEE-WHT-M"));

    fleet.start_coordinator().await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, token) = form(&fleet, "").await?;
    let after = lookup(&fleet, &token, &token, "ORD-1", "hanako@example.jp").await?;
    assert_eq!(after.status, 429, "{}", after.body);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_returns_one_line_for_a_refund_and_exchanges_another_through_the_apis_use_case(
) -> anyhow::Result<()> {
    let (fleet, store_key, _) = fleet().await?;
    let (_, token) = form(&fleet, "").await?;
    let page = lookup(&fleet, &token, &token, "ORD-2", "hanako@example.jp").await?;
    assert_eq!(page.status, 200, "{}", page.body);
    // Each line offers refund, credit and the other sizes of its style, and the methods.
    assert!(
        page.body.contains("value=\"exchange:PANTS-NVY-L\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"exchange:TEE-WHT-L\""));
    assert!(!page.body.contains("value=\"exchange:PANTS-NVY-M\""));
    assert!(page.body.contains("value=\"konbini_dropoff\"") && page.body.contains("コンビニ"));
    assert!(page.body.contains("サイズが小さい"));

    let chosen = [
        ("csrf", token.as_str()),
        ("lang", "ja"),
        ("order_ref", "ORD-2"),
        ("contact", "hanako@example.jp"),
        ("line0", "1"),
        ("qty0", "1"),
        ("reason0", "changed_mind"),
        ("outcome0", "refund"),
        ("line1", "1"),
        ("qty1", "1"),
        ("reason1", "too_small"),
        ("outcome1", "exchange:PANTS-NVY-L"),
        ("postal_code", "530-0001"),
        ("method", "konbini_dropoff"),
    ];
    let done = post(&fleet, "/r/brand-a/returns", &token, &chosen).await?;
    assert_eq!(done.status, 201, "{}", done.body);
    assert!(
        done.body.contains("お申し込みを受け付けました"),
        "{}",
        done.body
    );
    assert!(done.body.contains("PANTS-NVY-L に交換") && done.body.contains("返金"));
    assert!(done.body.contains("手数料") && done.body.contains("コンビニから発送"));
    // The nearest konbini to 530-0001 (Osaka), with their distance.
    assert!(
        done.body.contains("お近くの持ち込み先") && done.body.contains(" km</span>"),
        "{}",
        done.body
    );
    // Konbini take parcels day and night.
    assert!(
        done.body
            .contains("<span class=\"hours\">24時間営業</span>"),
        "{}",
        done.body
    );
    // Two returns, one per outcome, registered as the API registers them.
    let rmas: Vec<&str> = done
        .body
        .split("<dd class=\"rma\">")
        .skip(1)
        .filter_map(|s| s.split('<').next())
        .collect();
    assert_eq!(rmas.len(), 2, "{}", done.body);
    let mut resolutions = Vec::new();
    for rma in &rmas {
        let (status, text) = fleet
            .api("GET", &format!("/api/v1/returns/{rma}"), None)
            .await?;
        assert_eq!(status, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(v["terms"]["method"], "konbini_dropoff", "{v}");
        assert_eq!(v["terms"]["order_ref"], "ORD-2", "{v}");
        resolutions.push(v["terms"]["resolution"].clone());
    }
    assert!(resolutions.contains(&json!("refund")), "{resolutions:?}");
    assert!(resolutions.contains(&json!("exchange")), "{resolutions:?}");

    // Each return's status page: its timeline in the customer's words and Japan time.
    let links: Vec<&str> = done
        .body
        .split("class=\"status\" href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert_eq!(links.len(), 2, "{}", done.body);
    let status_token = links[0].rsplit('/').next().unwrap_or_default();
    assert!(
        status_token.len() >= 32,
        "a token of at least 128 bits: {status_token}"
    );
    let status = http_raw(fleet.http(), "GET", links[0], &[], None).await?;
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(
        status.body.contains("お申し込みを受け付けました"),
        "{}",
        status.body
    );
    assert!(
        status.body.contains("年") && !status.body.contains("registered"),
        "{}",
        status.body
    );
    assert!(rmas.iter().any(|r| status.body.contains(r)));
    let english = http_raw(
        fleet.http(),
        "GET",
        &format!("{}?lang=en", links[0]),
        &[],
        None,
    )
    .await?;
    assert!(english.body.contains("We received your request") && english.body.contains("JST"));
    // The label as PDF, on A4 and on 4×6 in, judged by poppler and zbar.
    assert!(
        done.body.contains("/label.pdf?size=a4\"") && done.body.contains("/label.pdf?size=4x6\"")
    );
    assert!(
        status.body.contains("/label.pdf?size=4x6\""),
        "{}",
        status.body
    );
    let rma_of_link = rmas
        .iter()
        .find(|r| status.body.contains(**r))
        .copied()
        .unwrap_or_default();
    for (size, page_size) in [
        ("a4", "595.276 x 841.89 pts (A4)"),
        ("4x6", "288 x 432 pts"),
    ] {
        label_reads_back(&fleet, links[0], size, page_size, rma_of_link).await?;
    }
    let res = http_raw(
        fleet.http(),
        "GET",
        &format!("{}/label.pdf?size=letter", links[0]),
        &[],
        None,
    )
    .await?;
    assert_eq!(res.status, 422, "{}", res.body);
    let guessed = format!("/r/brand-a/s/{}/label.pdf", "0f".repeat(32));
    let res = http_raw(fleet.http(), "GET", &guessed, &[], None).await?;
    assert_eq!(res.status, 404, "{}", res.body);
    // A drop-off's QR code, which the store counter opens the return by.
    assert!(done.body.contains("/qr.svg\""), "{}", done.body);
    let qr = http_raw(
        fleet.http(),
        "GET",
        &format!("{}/qr.svg", links[0]),
        &[],
        None,
    )
    .await?;
    assert_eq!(qr.status, 200, "{}", qr.body);
    assert_eq!(qr.header("content-type"), Some("image/svg+xml"));
    assert_eq!(qr.header("x-content-type-options"), Some("nosniff"));
    assert!(qr.body.contains("<svg"), "{}", qr.body);
    let scan_path = format!("/ui/store/scan/{status_token}");
    let body = format!("key={store_key}&next=%2Fstore");
    let login = http_raw(
        fleet.http(),
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    )
    .await?;
    let session = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let opened = http_raw(
        fleet.http(),
        "GET",
        &scan_path,
        &[("Cookie", &session)],
        None,
    )
    .await?;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert!(
        opened.body.contains(rmas[0]) && opened.body.contains("<svg"),
        "{}",
        opened.body
    );
    // The counter reads it in its own language: Japanese unless asked otherwise.
    assert!(
        opened.body.contains("<html lang=\"ja\"")
            && opened.body.contains("送り先")
            && opened.body.contains("倉庫へ輸送中")
            && opened.body.contains("この店舗で荷物を受け取りました"),
        "{}",
        opened.body
    );
    let english = http_raw(
        fleet.http(),
        "GET",
        &scan_path,
        &[("Cookie", &session), ("Accept-Language", "en-GB,en;q=0.8")],
        None,
    )
    .await?;
    assert!(
        english.body.contains("<html lang=\"en\"")
            && english.body.contains("Parcel handed in here")
            && english.body.contains("On its way to the warehouse")
            && !english.body.contains("送り先"),
        "{}",
        english.body
    );
    let anonymous = http_raw(fleet.http(), "GET", &scan_path, &[], None).await?;
    assert_ne!(anonymous.status, 200, "{}", anonymous.body);
    assert!(!anonymous.body.contains(rmas[0]));
    let random = format!("/ui/store/scan/{}", "ab".repeat(32));
    let res = http_raw(fleet.http(), "GET", &random, &[("Cookie", &session)], None).await?;
    assert_eq!(res.status, 404, "{}", res.body);

    // A token guessed at random, or of another merchant, opens nothing.
    let guessed = format!("/r/brand-a/s/{}", "0f".repeat(32));
    let res = http_raw(fleet.http(), "GET", &guessed, &[], None).await?;
    assert_eq!(res.status, 404, "{}", res.body);
    assert!(res.body.contains("ページが見つかりません"));
    let elsewhere = links[0].replace("/r/brand-a/", "/r/brand-b/");
    let res = http_raw(fleet.http(), "GET", &elsewhere, &[], None).await?;
    assert_eq!(res.status, 404, "{}", res.body);

    // Registered lines are not offered again.
    let again = lookup(&fleet, &token, &token, "ORD-2", "hanako@example.jp").await?;
    assert!(
        again.body.contains("すでに返品のお申し込みがあります"),
        "{}",
        again.body
    );
    // The same form with a wrong contact registers nothing.
    let mut forged = chosen;
    forged[3] = ("contact", "taro@example.jp");
    let refused = post(&fleet, "/r/brand-a/returns", &token, &forged).await?;
    assert_eq!(refused.status, 404, "{}", refused.body);
    fleet.shutdown().await;
    Ok(())
}
