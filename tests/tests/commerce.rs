//! The commerce side of returns through the real API: the return policy (window, final sale,
//! unknown SKUs, fees and store-credit bonus), routing from a postal code by distance and
//! capability (electronics to a site that tests), the label, BORIS at a store with store keys,
//! carrier tracking events, analytics; the refund after grading confirmed by the merchant;
//! webhooks signed, retried and delivered in order across a coordinator restart; unidentified
//! parcels matched by their tracking number; restock rebalancing ordering transfers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use modori_agent::work::Actor;
use modori_coordinator::webhooks::{self, MerchantEntry};
use modori_shared::domain::{Bin, Disposition, Grade, RmaId, Sku};
use modori_shared::station::{Effect, ReceiptKind};
use modori_tests::stations::agent_count;
use modori_tests::{config_key, http_request_as, wait_for, TestFleet};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const FUKUOKA: usize = 8;
const OSAKA: usize = 6;

fn days_ago(days: i64) -> String {
    let ms = chrono::Utc::now().timestamp_millis() - days * DAY_MS;
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

const CATALOG: &str = r#"{"items": [
    {"sku": "TEE-WHT-M", "gtin": "4901234567894", "category": "tops", "price_yen": 2900},
    {"sku": "SOCKS-CHEAP", "category": "socks", "price_yen": 300},
    {"sku": "TEE-WHT-L", "category": "tops", "price_yen": 2900},
    {"sku": "SOCKS-SALE", "category": "socks", "price_yen": 500, "final_sale": true},
    {"sku": "RADIO-FM", "category": "electronics", "price_yen": 9800, "needs_testing": true}
]}"#;

struct Keys {
    merchant: String,
    tenjin: String,
}

/// A fleet with brand-a's catalogue, a brand-a key and a key of the Tenjin store.
async fn fleet_with_keys(merchants: Vec<MerchantEntry>) -> anyhow::Result<(TestFleet, Keys)> {
    fleet_with(merchants, None).await
}

async fn fleet_with(
    merchants: Vec<MerchantEntry>,
    tweak: Option<fn(&mut modori_coordinator::config::CoordinatorConfig)>,
) -> anyhow::Result<(TestFleet, Keys)> {
    let mut fleet = TestFleet::start().await?;
    let (merchant, merchant_entry) = config_key("merchant:brand-a");
    let (tenjin, tenjin_entry) = config_key("store:st-fukuoka-tenjin");
    fleet.extra_keys = vec![merchant_entry, tenjin_entry];
    fleet.merchants = merchants;
    fleet.config_tweak = tweak;
    fleet.start_coordinator().await?;
    let (status, text) = fleet
        .api("PUT", "/api/v1/catalog/brand-a", Some(CATALOG))
        .await?;
    anyhow::ensure!(status == 200, "catalogue: {text}");
    Ok((fleet, Keys { merchant, tenjin }))
}

async fn post_as(
    fleet: &TestFleet,
    key: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let (status, text) = http_request_as(
        fleet.http(),
        Some(key),
        "POST",
        path,
        Some(&body.to_string()),
    )
    .await?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

async fn get_json(fleet: &TestFleet, key: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let (status, text) = http_request_as(fleet.http(), Some(key), "GET", path, None).await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

fn event_kinds(ret: &Value) -> Vec<String> {
    ret["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The events of a return whose detail has no code: a page could only show their English.
fn uncoded_events(ret: &Value) -> Vec<String> {
    ret["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["detail"].is_string() && !e["detail_code"].is_string())
                .map(|e| format!("{}: {}", e["kind"], e["detail"]))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_are_decided_routed_labelled_and_tracked() -> anyhow::Result<()> {
    let (fleet, keys) = fleet_with_keys(Vec::new()).await?;

    // From a Fukuoka postal code, for store credit: the final-sale socks are refused, the
    // T-shirt accepted with a 10% bonus; routed to Fukuoka; a label with a scannable slip.
    let body = json!({
        "origin": {"postal_code": "812-0011"},
        "order_ref": "ORD-1001", "order_date": days_ago(5),
        "resolution": "store_credit",
        "customer": {"ref": "cust-1"},
        "lines": [
            {"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small", "note": "runs small"},
            {"sku": "SOCKS-SALE", "qty": 1, "reason": "changed_mind"}
        ]
    });
    let (status, routed) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &body).await?;
    assert_eq!(status, 201, "{routed}");
    assert_eq!(routed["site"], "fukuoka", "{routed}");
    assert_eq!(routed["refused_lines"][0]["line"], 1, "{routed}");
    assert_eq!(
        (
            routed["fee_yen"].as_u64(),
            routed["store_credit_bonus_yen"].as_u64()
        ),
        (Some(0), Some(290)),
        "{routed}"
    );
    assert_eq!(routed["tier"], "new");
    assert!(routed["candidates"]
        .as_array()
        .is_some_and(|c| c.len() == 9));
    let tracking = routed["label"]["tracking"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        modori_shared::barcode::parse(&tracking).is_ok(),
        "{tracking}"
    );
    let zpl = routed["label"]["zpl"].as_str().unwrap_or_default();
    assert!(zpl.contains(routed["rma"].as_str().unwrap_or("?")), "{zpl}");
    let rma = routed["rma"].as_str().unwrap_or_default().to_owned();

    // Electronics from Fukuoka go to a site that tests them.
    let radio = json!({"origin": {"postal_code": "812-0011"}, "order_date": days_ago(1),
                       "lines": [{"sku": "RADIO-FM", "qty": 1, "reason": "defective"}]});
    let (status, routed_radio) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &radio).await?;
    assert_eq!(status, 201, "{routed_radio}");
    assert_eq!(routed_radio["site"], "osaka", "{routed_radio}");
    assert!(
        routed_radio["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("cannot test")),
        "{routed_radio}"
    );
    assert_eq!(routed_radio["fee_yen"], 500, "a refund pays the fee");

    // Refusals name their reason and field.
    let late = json!({"origin": {"postal_code": "812-0011"}, "order_date": days_ago(60),
                      "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]});
    let (status, refused) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &late).await?;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        (
            refused["error"]["code"].as_str(),
            refused["error"]["field"].as_str()
        ),
        (Some("rejected"), Some("order_date")),
        "{refused}"
    );
    let unknown = json!({"origin": {"postal_code": "812-0011"},
                         "lines": [{"sku": "GHOST-1", "qty": 1, "reason": "other"}]});
    let (status, refused) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &unknown).await?;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (404, Some("lines[0].sku")),
        "{refused}"
    );
    let bad_postal = json!({"origin": {"postal_code": "81-2"},
                            "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "other"}]});
    let (status, refused) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &bad_postal).await?;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (422, Some("origin.postal_code")),
        "{refused}"
    );

    // A merchant the coordinator does not handle is refused, named.
    let stranger = json!({"merchant": "brand-zzz", "origin": {"postal_code": "812-0011"},
                          "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "other"}]});
    let (status, refused) = post_as(&fleet, &fleet.ops_key, "/api/v1/returns", &stranger).await?;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (404, Some("merchant")),
        "{refused}"
    );
    let (status, _) = get_json(&fleet, &fleet.ops_key, "/api/v1/catalog/brand-zzz").await?;
    assert_eq!(status, 404);

    // An exchange: no returned L is in stock anywhere, so the replacement is reserved from
    // the merchant's own warehouse, and said so.
    let exchange = json!({"origin": {"postal_code": "812-0011"}, "order_date": days_ago(2),
                          "resolution": "exchange", "exchange_sku": "TEE-WHT-L",
                          "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]});
    let (status, routed_exchange) =
        post_as(&fleet, &keys.merchant, "/api/v1/returns", &exchange).await?;
    assert_eq!(
        (status, routed_exchange["fee_yen"].as_u64()),
        (201, Some(0)),
        "{routed_exchange}"
    );
    assert!(
        routed_exchange["reservation"]["site"].is_null(),
        "{routed_exchange}"
    );
    assert!(
        routed_exchange["reservation"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("merchant's own warehouse")),
        "{routed_exchange}"
    );

    // BORIS: the Tenjin store registers an in-store return with its own key, not another's.
    let in_store = json!({"merchant": "brand-a", "order_date": days_ago(3),
                          "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_large"}]});
    let (status, boris) = post_as(
        &fleet,
        &keys.tenjin,
        "/api/v1/stores/st-fukuoka-tenjin/returns",
        &in_store,
    )
    .await?;
    assert_eq!(
        (status, boris["site"].as_str()),
        (201, Some("fukuoka")),
        "{boris}"
    );
    assert_eq!(boris["label"]["from"], "store:st-fukuoka-tenjin", "{boris}");
    let (status, _) = post_as(
        &fleet,
        &keys.tenjin,
        "/api/v1/stores/st-shibuya/returns",
        &in_store,
    )
    .await?;
    assert_eq!(status, 403);
    let (status, _) = post_as(
        &fleet,
        &fleet.ops_key,
        "/api/v1/stores/st-nowhere/returns",
        &in_store,
    )
    .await?;
    assert_eq!(status, 404);
    let boris_rma = boris["rma"].as_str().unwrap_or_default();
    let (status, seen) = get_json(
        &fleet,
        &keys.tenjin,
        &format!("/api/v1/returns/{boris_rma}"),
    )
    .await?;
    assert_eq!(status, 200, "the store follows its return: {seen}");

    // The carrier says the first parcel is on its way; an unknown number is reported back.
    let events = json!({"carrier": "sim", "events": [
        {"tracking": tracking, "status": "in_transit", "at_ms": 1_790_000_000_000_i64, "location": "Hakata"},
        {"tracking": "999999999996", "status": "picked_up", "at_ms": 1_790_000_000_000_i64}
    ]});
    let (status, answer) =
        post_as(&fleet, &fleet.ops_key, "/api/v1/carrier-events", &events).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["n_applied"], 1);
    assert_eq!(answer["unknown_tracking"][0], "999999999996");
    let (status, answer) =
        post_as(&fleet, &keys.merchant, "/api/v1/carrier-events", &events).await?;
    assert_eq!(status, 403, "carriers post with an ops key: {answer}");
    let bad =
        json!({"carrier": "sim", "events": [{"tracking": "1", "status": "lost", "at_ms": 1}]});
    let (status, answer) = post_as(&fleet, &fleet.ops_key, "/api/v1/carrier-events", &bad).await?;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some("events[0].status")),
        "{answer}"
    );
    let (_, ret) = get_json(&fleet, &keys.merchant, &format!("/api/v1/returns/{rma}")).await?;
    assert!(
        event_kinds(&ret).contains(&"carrier_in_transit".to_owned()),
        "{ret}"
    );
    let ctx = fleet.coordinator().ctx().clone();
    let snapshot = ctx
        .dashboard
        .snapshot(&ctx, chrono::Utc::now().timestamp_millis())
        .await?;
    assert_eq!(
        snapshot.pipeline.in_transit, 1,
        "the parcel on its way is in transit"
    );
    // The decisions are kept with the return: every routing candidate and the terms.
    assert_eq!(
        ret["routing_candidates"].as_array().map(Vec::len),
        Some(9),
        "{ret}"
    );
    assert_eq!(ret["terms"]["tracking"], tracking.as_str(), "{ret}");
    assert_eq!(ret["terms"]["transit_status"], "in_transit", "{ret}");
    assert_eq!(ret["terms"]["policy"]["tier"], "new", "{ret}");

    // Analytics: reasons by SKU for the merchant; the customer's history for ops.
    let (status, reasons) = get_json(&fleet, &keys.merchant, "/api/v1/analytics/reasons").await?;
    assert_eq!(status, 200, "{reasons}");
    let top = reasons.as_array().cloned().unwrap_or_default();
    assert!(
        top.iter().any(|r| r["sku"] == "TEE-WHT-M"
            && r["reason"] == "too_small"
            && r["category"] == "tops"),
        "{reasons}"
    );
    let (status, customer) =
        get_json(&fleet, &fleet.ops_key, "/api/v1/analytics/customers/cust-1").await?;
    assert_eq!(
        (status, customer["returns_total"].as_u64()),
        (200, Some(1)),
        "{customer}"
    );
    assert_eq!(customer["tier"], "regular", "{customer}");
    let (status, _) =
        get_json(&fleet, &keys.merchant, "/api/v1/analytics/customers/cust-1").await?;
    assert_eq!(status, 403);
    let (status, _) =
        get_json(&fleet, &fleet.ops_key, "/api/v1/analytics/customers/nobody").await?;
    assert_eq!(status, 404);
    fleet.shutdown().await;
    Ok(())
}

/// What the merchant's endpoint received: event id, kind, and whether the signature held.
type Received = Arc<Mutex<Vec<(i64, String, bool)>>>;

/// A merchant endpoint that refuses its first `failures` posts with a 500.
async fn webhook_receiver(
    secret: &'static str,
    failures: usize,
) -> anyhow::Result<(String, Received)> {
    use axum::http::{HeaderMap, StatusCode};
    let received: Received = Arc::default();
    let refused = Arc::new(Mutex::new(0usize));
    let log = received.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            let refused = refused.clone();
            async move {
                {
                    let mut n = refused.lock().expect("not poisoned");
                    if *n < failures {
                        *n += 1;
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                }
                let signature = headers
                    .get(webhooks::SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok());
                let now_s = chrono::Utc::now().timestamp();
                let valid = webhooks::verify(secret, signature, &body, now_s).is_ok();
                let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                log.lock().expect("not poisoned").push((
                    event["event_id"].as_i64().unwrap_or(-1),
                    event["kind"].as_str().unwrap_or_default().to_owned(),
                    valid,
                ));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, received))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_follow_grading_and_webhooks_are_delivered_once_in_order_across_a_restart(
) -> anyhow::Result<()> {
    const SECRET: &str = "brand-a-webhook-secret";
    let (url, received) = webhook_receiver(SECRET, 2).await?;
    let merchants = vec![MerchantEntry {
        id: "brand-a".into(),
        webhook_url: Some(url),
        webhook_secret: Some(SECRET.into()),
        ..Default::default()
    }];
    let (mut fleet, keys) = fleet_with_keys(merchants).await?;
    let body = json!({"origin": {"postal_code": "530-0001"}, "order_date": days_ago(3),
                      "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]});
    let (status, routed) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &body).await?;
    assert_eq!(
        (status, routed["site"].as_str()),
        (201, Some("osaka")),
        "{routed}"
    );
    let rma = RmaId::new(routed["rma"].as_str().unwrap_or_default())?;

    // The coordinator restarts while the endpoint still refuses: nothing is lost.
    fleet.start_coordinator().await?;

    // Osaka receives the T-shirt, grades it B and closes the parcel.
    let osaka = fleet.agent(OSAKA);
    let osaka_config = fleet.agent_config(OSAKA);
    wait_for("the expected return at Osaka", TIMEOUT, || {
        let c = &osaka_config;
        async move { Ok(agent_count(c, "SELECT COUNT(*) FROM expected_returns")? >= 1) }
    })
    .await?;
    let receipt = osaka
        .receive_unit(Some(rma.clone()), Sku::new("TEE-WHT-M")?, "B-0001")
        .await?;
    assert_eq!(receipt.receipt, ReceiptKind::Matched);
    osaka
        .grade_unit(receipt.lpn.clone(), Grade::B, "B-0001")
        .await?;
    osaka
        .record(
            Effect::CloseParcel {
                rma: rma.clone(),
                shortages: vec![],
            },
            Actor::new("B-0001", "recv-1"),
        )
        .await?;
    let path = format!("/api/v1/returns/{rma}");
    wait_for("the refund computed", TIMEOUT, || {
        let (fleet, key, path) = (&fleet, &keys.merchant, &path);
        async move {
            let (_, ret) = get_json(fleet, key, path).await?;
            Ok(event_kinds(&ret).contains(&"refund_computed".to_owned()))
        }
    })
    .await?;
    // Grade B keeps the whole price; the refund fee is taken: 2900 - 500.
    let refund_path = format!("/api/v1/returns/{rma}/refund");
    let (status, confirmed) = post_as(&fleet, &keys.merchant, &refund_path, &json!({})).await?;
    assert_eq!(
        (status, confirmed["amount_yen"].as_i64()),
        (200, Some(2400)),
        "{confirmed}"
    );

    // Every event of the return reaches the endpoint once, in order, signed.
    let (_, ret) = get_json(&fleet, &keys.merchant, &path).await?;
    let expected = event_kinds(&ret);
    wait_for("every event delivered", TIMEOUT, || {
        let received = received.clone();
        let n = expected.len();
        async move { Ok(received.lock().expect("not poisoned").len() >= n) }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = received.lock().expect("not poisoned").clone();
    let kinds: Vec<String> = got.iter().map(|(_, k, _)| k.clone()).collect();
    assert_eq!(kinds, expected, "in order, each once");
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "{got:?}");
    assert!(got.iter().all(|(_, _, valid)| *valid), "{got:?}");
    assert!(kinds.contains(&"refunded".to_owned()), "{kinds:?}");
    // Every step, the carrier's and the refund's among them, is said by a code the pages
    // put in their own language.
    assert_eq!(uncoded_events(&ret), Vec::<String>::new(), "{ret}");
    let amounts: Vec<&Value> = ret["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["detail_code"] == "refund_paid")
        .map(|e| &e["detail_params"]["amount_yen"])
        .collect();
    assert_eq!(amounts, [&json!("2400")], "{ret}");
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parcel_known_only_by_its_tracking_number_is_matched_and_surplus_stock_rebalanced(
) -> anyhow::Result<()> {
    let (fleet, keys) = fleet_with_keys(Vec::new()).await?;
    let body = json!({"origin": {"postal_code": "530-0001"}, "order_ref": "ORD-77",
                      "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]});
    let (status, routed) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &body).await?;
    assert_eq!(
        (status, routed["site"].as_str()),
        (201, Some("osaka")),
        "{routed}"
    );
    let tracking = routed["label"]["tracking"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rma = routed["rma"].as_str().unwrap_or_default().to_owned();

    // The slip is all that is left on the parcel: received as unidentified with it.
    let osaka = fleet.agent(OSAKA);
    let unknown = osaka
        .receive_unit_with_reference(None, Sku::new("TEE-WHT-M")?, "B-0001", Some(tracking))
        .await?;
    assert_eq!(unknown.receipt, ReceiptKind::Unidentified);
    let config = fleet.agent_config(OSAKA);
    let sql = format!(
        "SELECT COUNT(*) FROM units WHERE lpn = '{}' AND quarantine = 0 AND rma = '{rma}'",
        unknown.lpn
    );
    wait_for("the centre matched the parcel", TIMEOUT, || {
        let (config, sql) = (&config, &sql);
        async move { Ok(agent_count(config, sql)? == 1) }
    })
    .await?;

    // Three sellable T-shirts on Osaka's shelves, none selling there; Fukuoka sells two.
    for _ in 0..3 {
        let r = modori_tests::receive_released(&osaka, "TEE-WHT-M", "B-0001").await?;
        osaka.grade_unit(r.lpn.clone(), Grade::A, "B-0001").await?;
        osaka
            .dispose_unit(r.lpn.clone(), Disposition::Restock, "B-0001")
            .await?;
        osaka
            .record(
                Effect::PutAway {
                    lpn: r.lpn.clone(),
                    bin: Bin::new("A01")?,
                },
                Actor::new("B-0001", "put-1"),
            )
            .await?;
    }
    let demand = r#"[{"sku": "TEE-WHT-M", "units": 2}]"#;
    let (status, text) = fleet
        .api("PUT", "/api/v1/demand/fukuoka", Some(demand))
        .await?;
    assert_eq!(status, 200, "{text}");
    let (status, text) = fleet
        .api("PUT", "/api/v1/demand/nowhere", Some(demand))
        .await?;
    assert_eq!(status, 404, "{text}");
    wait_for("the shelved units at the centre", TIMEOUT, || {
        let fleet = &fleet;
        async move {
            let sql = "SELECT COUNT(*) FROM units WHERE site = ?1 AND state = 'placed:restock'";
            Ok(modori_tests::coordinator_count(fleet.coordinator(), sql, "osaka").await? == 3)
        }
    })
    .await?;
    let (status, text) = fleet.api("POST", "/api/v1/rebalance", None).await?;
    assert_eq!(status, 200, "{text}");
    let moves: Value = serde_json::from_str(&text)?;
    assert_eq!(moves.as_array().map(Vec::len), Some(2), "{moves}");
    assert!(
        moves[0]["why"]
            .as_str()
            .is_some_and(|w| w.contains("short")),
        "{moves}"
    );
    wait_for("the transfer orders at Osaka", TIMEOUT, || {
        let config = &config;
        async move {
            Ok(agent_count(
                config,
                "SELECT COUNT(*) FROM transfer_orders WHERE to_site = 'fukuoka'",
            )? == 2)
        }
    })
    .await?;
    fleet.shutdown().await;
    Ok(())
}

/// The month now, in Japan, as `YYYY-MM`.
fn this_month() -> String {
    let now = chrono::Utc::now() + chrono::Duration::hours(9);
    now.format("%Y-%m").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_statement_reconciles_with_what_happened_to_the_units() -> anyhow::Result<()> {
    let (fleet, keys) = fleet_with_keys(Vec::new()).await?;
    let body = json!({"origin": {"postal_code": "530-0001"},
                      "lines": [{"sku": "TEE-WHT-M", "qty": 2, "reason": "too_small"}]});
    let (status, routed) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &body).await?;
    assert_eq!(
        (status, routed["site"].as_str()),
        (201, Some("osaka")),
        "{routed}"
    );
    let rma = RmaId::new(routed["rma"].as_str().unwrap_or_default())?;
    let osaka = fleet.agent(OSAKA);
    let config = fleet.agent_config(OSAKA);
    wait_for("the expected return at Osaka", TIMEOUT, || {
        let c = &config;
        async move { Ok(agent_count(c, "SELECT COUNT(*) FROM expected_returns")? >= 1) }
    })
    .await?;
    let who = || Actor::new("B-0001", "put-1");
    let first = osaka
        .receive_unit(Some(rma.clone()), Sku::new("TEE-WHT-M")?, "B-0001")
        .await?;
    let second = osaka
        .receive_unit(Some(rma.clone()), Sku::new("TEE-WHT-M")?, "B-0001")
        .await?;
    osaka
        .grade_unit(first.lpn.clone(), Grade::A, "B-0001")
        .await?;
    osaka
        .grade_unit(second.lpn.clone(), Grade::X, "B-0001")
        .await?;
    osaka
        .dispose_unit(first.lpn.clone(), Disposition::Restock, "B-0001")
        .await?;
    osaka
        .dispose_unit(second.lpn.clone(), Disposition::Recycle, "B-0001")
        .await?;
    osaka
        .record(
            Effect::PutAway {
                lpn: first.lpn.clone(),
                bin: Bin::new("A01")?,
            },
            who(),
        )
        .await?;
    // The centre decides the ruined one (an override may change its disposition); once its
    // decision has reached the site, it leaves the way its disposition says.
    wait_for("the centre's decision on the ruined unit", TIMEOUT, || {
        let fleet = &fleet;
        let lpn = second.lpn.to_string();
        async move {
            let sql = "SELECT COUNT(*) FROM units WHERE lpn = ?1 AND decided IS NOT NULL";
            Ok(modori_tests::coordinator_count(fleet.coordinator(), sql, &lpn).await? == 1)
        }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let state: String = modori_tests::stations::agent_query(
        &config,
        &format!("SELECT state FROM units WHERE lpn = '{}'", second.lpn),
    )?;
    let disposition = modori_shared::domain::UnitState::decode(&state)?
        .disposition()
        .ok_or_else(|| anyhow::anyhow!("{state}"))?;
    let departure = modori_shared::domain::Departure::for_disposition(disposition).unwrap_or(
        modori_shared::domain::Departure::Transfer {
            to: fleet.site(FUKUOKA).id.clone(),
        },
    );
    osaka
        .record(
            Effect::Depart {
                lpn: second.lpn.clone(),
                departure,
                tracking: None,
            },
            who(),
        )
        .await?;
    osaka
        .record(
            Effect::Depart {
                lpn: first.lpn.clone(),
                departure: modori_shared::domain::Departure::Transfer {
                    to: fleet.site(FUKUOKA).id.clone(),
                },
                tracking: None,
            },
            who(),
        )
        .await?;
    wait_for("Osaka synced", TIMEOUT, || {
        let osaka = osaka.clone();
        async move { Ok(osaka.status().await?.outbox_pending == 0) }
    })
    .await?;

    let month = this_month();
    let (status, statement) = get_json(
        &fleet,
        &keys.merchant,
        &format!("/api/v1/billing/brand-a?month={month}"),
    )
    .await?;
    assert_eq!(status, 200, "{statement}");
    let quantity = |activity: &str| -> u64 {
        statement["lines"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["activity"] == activity))
            .and_then(|l| l["quantity"].as_u64())
            .unwrap_or(u64::MAX)
    };
    // Against the lifecycle as the centre recorded it.
    let c = fleet.coordinator();
    let ops = |kind: &'static str| async move {
        let sql = match kind {
            "unit_received" => {
                "SELECT COUNT(*) FROM ops WHERE site = ?1 AND kind = 'unit_received'"
            }
            "unit_graded" => "SELECT COUNT(*) FROM ops WHERE site = ?1 AND kind = 'unit_graded'",
            _ => "SELECT COUNT(*) FROM ops WHERE site = ?1 AND kind = 'disposition_set'",
        };
        modori_tests::coordinator_count(c, sql, "osaka").await
    };
    assert_eq!(quantity("receipt"), ops("unit_received").await?);
    assert_eq!(quantity("receipt"), 2);
    assert_eq!(quantity("grading"), ops("unit_graded").await?);
    assert_eq!(quantity("relabel"), ops("disposition_set").await?);
    let transfers = modori_tests::coordinator_count(
        c,
        "SELECT COUNT(*) FROM units WHERE rma = ?1 AND transfer_to IS NOT NULL",
        rma.as_str(),
    )
    .await?;
    assert_eq!(quantity("transfer"), transfers);
    let disposals = modori_tests::coordinator_count(
        c,
        "SELECT COUNT(*) FROM units WHERE rma = ?1 AND state IN ('departed:recycle', 'departed:dispose')",
        rma.as_str(),
    )
    .await?;
    assert_eq!(quantity("disposal"), disposals);
    assert_eq!(
        quantity("storage_days"),
        1,
        "shelved today, gone today: one day begun"
    );
    let lines = statement["lines"].as_array().cloned().unwrap_or_default();
    let sum: u64 = lines
        .iter()
        .map(|l| l["quantity"].as_u64().unwrap_or(0) * l["rate_yen"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(statement["total_yen"].as_u64(), Some(sum), "{statement}");

    let (status, text) = http_request_as(
        fleet.http(),
        Some(&keys.merchant),
        "GET",
        &format!("/api/v1/billing/brand-a/csv?month={month}"),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.starts_with("merchant,month,activity,quantity,rate_yen,amount_yen\n"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("brand-a,{month},total,,,{sum}\n")),
        "{text}"
    );
    let (status, _) = get_json(
        &fleet,
        &keys.merchant,
        &format!("/api/v1/billing/brand-b?month={month}"),
    )
    .await?;
    assert_eq!(status, 403, "another merchant's statement");
    let (status, bad) = get_json(
        &fleet,
        &keys.merchant,
        "/api/v1/billing/brand-a?month=2026-13",
    )
    .await?;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (422, Some("month")),
        "{bad}"
    );
    fleet.shutdown().await;
    Ok(())
}

/// Receives, grades A, restocks and shelves `n` units of `sku` at agent `i`; waits until the
/// centre sees them on the shelf.
async fn shelve(fleet: &TestFleet, i: usize, sku: &str, n: usize) -> anyhow::Result<()> {
    let agent = fleet.agent(i);
    for _ in 0..n {
        let r = modori_tests::receive_released(&agent, sku, "B-0001").await?;
        agent.grade_unit(r.lpn.clone(), Grade::A, "B-0001").await?;
        agent
            .dispose_unit(r.lpn.clone(), Disposition::Restock, "B-0001")
            .await?;
        agent
            .record(
                Effect::PutAway {
                    lpn: r.lpn.clone(),
                    bin: Bin::new("A01")?,
                },
                Actor::new("B-0001", "put-1"),
            )
            .await?;
    }
    let site = fleet.site(i).id.to_string();
    let sql =
        "SELECT COUNT(*) FROM units WHERE site = ?1 AND state = 'placed:restock' AND grade = 'A'";
    wait_for("the shelved units at the centre", TIMEOUT, || {
        let site = site.clone();
        async move {
            Ok(modori_tests::coordinator_count(fleet.coordinator(), sql, &site).await? >= n as u64)
        }
    })
    .await
}

fn exchange_orders(fleet: &TestFleet, i: usize) -> anyhow::Result<i64> {
    agent_count(
        &fleet.agent_config(i),
        "SELECT COUNT(*) FROM exchange_orders WHERE shipped_lpn IS NULL",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_reserves_returned_stock_at_request_time_and_trusted_customers_get_it_first(
) -> anyhow::Result<()> {
    let (fleet, keys) = fleet_with_keys(Vec::new()).await?;
    shelve(&fleet, FUKUOKA, "TEE-WHT-L", 2).await?;

    // A new customer in Sapporo wants the L: one is set aside in Fukuoka at once, and
    // ordered only when the return has arrived.
    let exchange = |customer: &str| {
        json!({"origin": {"postal_code": "060-0001"}, "order_date": days_ago(2),
               "customer": {"ref": customer},
               "resolution": "exchange", "exchange_sku": "TEE-WHT-L",
               "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}]})
    };
    let (status, first) = post_as(
        &fleet,
        &keys.merchant,
        "/api/v1/returns",
        &exchange("cust-new"),
    )
    .await?;
    assert_eq!(
        (status, first["site"].as_str()),
        (201, Some("sapporo")),
        "{first}"
    );
    assert_eq!(first["reservation"]["site"], "fukuoka", "{first}");
    assert_eq!(first["reservation"]["status"], "reserved", "{first}");
    assert_eq!(
        exchange_orders(&fleet, FUKUOKA)?,
        0,
        "not before the return arrives"
    );

    // A trusted customer (three honest returns before) gets the other one shipped at once.
    for _ in 0..3 {
        let plain = json!({"origin": {"postal_code": "060-0001"}, "customer": {"ref": "cust-loyal"},
                           "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_large"}]});
        let (status, r) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &plain).await?;
        assert_eq!(status, 201, "{r}");
    }
    let (status, trusted) = post_as(
        &fleet,
        &keys.merchant,
        "/api/v1/returns",
        &exchange("cust-loyal"),
    )
    .await?;
    assert_eq!(
        (status, trusted["tier"].as_str()),
        (201, Some("trusted")),
        "{trusted}"
    );
    assert_eq!(trusted["reservation"]["status"], "ordered", "{trusted}");
    assert_eq!(trusted["reservation"]["advance"], true, "{trusted}");
    assert_ne!(
        trusted["reservation"]["lpn"], first["reservation"]["lpn"],
        "a unit is set aside once"
    );
    wait_for("the advance order at Fukuoka", TIMEOUT, || async {
        Ok(exchange_orders(&fleet, FUKUOKA)? == 1)
    })
    .await?;

    // No more returned stock: the merchant's own warehouse, said so; never a manual queue.
    let (status, third) = post_as(
        &fleet,
        &keys.merchant,
        "/api/v1/returns",
        &exchange("cust-3"),
    )
    .await?;
    assert_eq!(status, 201, "{third}");
    assert!(third["reservation"]["site"].is_null(), "{third}");
    assert!(
        third["reservation"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("merchant")),
        "{third}"
    );

    // The trusted customer cancels: the reservation is released and Fukuoka stops.
    let trusted_rma = trusted["rma"].as_str().unwrap_or_default().to_owned();
    let (status, _) = post_as(
        &fleet,
        &keys.merchant,
        &format!("/api/v1/returns/{trusted_rma}/cancel"),
        &json!({}),
    )
    .await?;
    assert_eq!(status, 200);
    wait_for("the order withdrawn at Fukuoka", TIMEOUT, || async {
        Ok(exchange_orders(&fleet, FUKUOKA)? == 0)
    })
    .await?;
    let (_, ret) = get_json(
        &fleet,
        &keys.merchant,
        &format!("/api/v1/returns/{trusted_rma}"),
    )
    .await?;
    assert_eq!(ret["reservation"]["status"], "released", "{ret}");

    // The first customer's parcel arrives in Sapporo: now Fukuoka ships the replacement.
    let rma = RmaId::new(first["rma"].as_str().unwrap_or_default())?;
    let sapporo = fleet.agent(0);
    let config = fleet.agent_config(0);
    let sql = format!("SELECT COUNT(*) FROM expected_returns WHERE rma = '{rma}'");
    wait_for("the return expected in Sapporo", TIMEOUT, || {
        let (config, sql) = (&config, &sql);
        async move { Ok(agent_count(config, sql)? == 1) }
    })
    .await?;
    sapporo
        .receive_unit(Some(rma.clone()), Sku::new("TEE-WHT-M")?, "B-0001")
        .await?;
    sapporo
        .record(
            Effect::CloseParcel {
                rma: rma.clone(),
                shortages: vec![],
            },
            Actor::new("B-0001", "recv-1"),
        )
        .await?;
    wait_for("the order at Fukuoka after receipt", TIMEOUT, || async {
        Ok(exchange_orders(&fleet, FUKUOKA)? == 1)
    })
    .await?;
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheap_goods_are_refunded_without_coming_back_and_store_checks_meet_the_grading(
) -> anyhow::Result<()> {
    fn socks_returnless(config: &mut modori_coordinator::config::CoordinatorConfig) {
        config.policy.returnless = vec![modori_coordinator::policy::ReturnlessRule {
            merchant: Some("brand-a".into()),
            category: Some("socks".into()),
        }];
    }
    let (fleet, keys) = fleet_with(Vec::new(), Some(socks_returnless)).await?;
    let socks = json!({"origin": {"postal_code": "530-0001"}, "order_date": days_ago(2),
                       "lines": [{"sku": "SOCKS-CHEAP", "qty": 1, "reason": "changed_mind"}]});
    let (status, kept) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &socks).await?;
    assert_eq!(status, 201, "{kept}");
    assert!(
        kept["returnless"]
            .as_str()
            .is_some_and(|w| w.contains("keep it")),
        "{kept}"
    );
    assert!(kept["label"].is_null(), "nothing to ship: {kept}");
    let rma = kept["rma"].as_str().unwrap_or_default();
    let (_, ret) = get_json(&fleet, &keys.merchant, &format!("/api/v1/returns/{rma}")).await?;
    assert_eq!(ret["status"], "returnless", "{ret}");
    assert!(
        event_kinds(&ret).contains(&"refund_computed".to_owned()),
        "{ret}"
    );
    assert_eq!(uncoded_events(&ret), Vec::<String>::new(), "{ret}");
    assert_eq!(ret["terms"]["refund_yen"], 300, "{ret}");
    // A T-shirt is worth bringing back, and the rule is for socks anyway.
    let tee = json!({"origin": {"postal_code": "530-0001"},
                     "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "changed_mind"}]});
    let (status, back) = post_as(&fleet, &keys.merchant, "/api/v1/returns", &tee).await?;
    assert_eq!(status, 201, "{back}");
    assert!(
        back["returnless"].is_null() && back["label"].is_object(),
        "{back}"
    );
    let config = fleet.agent_config(OSAKA);
    wait_for("only the T-shirt expected in Osaka", TIMEOUT, || {
        let config = &config;
        async move { Ok(agent_count(config, "SELECT COUNT(*) FROM expected_returns")? == 1) }
    })
    .await?;

    // The Tenjin counter says "tags on, unopened"; the site finds it worn: a mismatch for
    // the store.
    let in_store = json!({"merchant": "brand-a",
                          "condition": {"tags_on": true, "opened": false, "visibly_used": false,
                                        "damaged": false, "photo_ref": "IMG-0042"},
                          "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_large"}]});
    let (status, boris) = post_as(
        &fleet,
        &keys.tenjin,
        "/api/v1/stores/st-fukuoka-tenjin/returns",
        &in_store,
    )
    .await?;
    assert_eq!(status, 201, "{boris}");
    let rma = RmaId::new(boris["rma"].as_str().unwrap_or_default())?;
    let fukuoka = fleet.agent(FUKUOKA);
    let fconfig = fleet.agent_config(FUKUOKA);
    let sql = format!("SELECT COUNT(*) FROM expected_returns WHERE rma = '{rma}'");
    wait_for("the store's return expected in Fukuoka", TIMEOUT, || {
        let (c, sql) = (&fconfig, &sql);
        async move { Ok(agent_count(c, sql)? == 1) }
    })
    .await?;
    let unit = fukuoka
        .receive_unit(Some(rma.clone()), Sku::new("TEE-WHT-M")?, "B-0001")
        .await?;
    fukuoka
        .grade_unit(unit.lpn.clone(), Grade::C, "B-0001")
        .await?;
    wait_for("the mismatch counted for the store", TIMEOUT, || async {
        let (_, checks) = get_json(&fleet, &fleet.ops_key, "/api/v1/analytics/stores").await?;
        Ok(checks.as_array().is_some_and(|rows| {
            rows.iter().any(|r| {
                r["store"] == "st-fukuoka-tenjin" && r["mismatches"] == 1 && r["units_graded"] == 1
            })
        }))
    })
    .await?;
    // The dashboard flags the store.
    let ctx = fleet.coordinator().ctx().clone();
    let snapshot = ctx
        .dashboard
        .snapshot(&ctx, chrono::Utc::now().timestamp_millis())
        .await?;
    let tenjin = snapshot
        .stores
        .iter()
        .find(|s| s.id == "st-fukuoka-tenjin")
        .ok_or_else(|| anyhow::anyhow!("no Tenjin store on the dashboard"))?;
    assert_eq!(
        (tenjin.returns_checked, tenjin.condition_mismatches),
        (1, 1)
    );
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_drop_offs_leave_in_a_tote_received_in_one_scan_flow() -> anyhow::Result<()> {
    use modori_shared::barcode::badge_encode;
    use modori_shared::station::{Signal, Station, StationKind};
    fn totes_of_two(config: &mut modori_coordinator::config::CoordinatorConfig) {
        config.consolidation.min_returns = 2;
    }
    let (fleet, keys) = fleet_with(Vec::new(), Some(totes_of_two)).await?;
    let in_store = json!({"merchant": "brand-a",
                          "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_large"}]});
    let path = "/api/v1/stores/st-fukuoka-tenjin/returns";
    let mut rmas = Vec::new();
    for _ in 0..2 {
        let (status, r) = post_as(&fleet, &keys.tenjin, path, &in_store).await?;
        assert_eq!((status, r["site"].as_str()), (201, Some("fukuoka")), "{r}");
        rmas.push(r["rma"].as_str().unwrap_or_default().to_owned());
    }
    let (status, waiting) = get_json(
        &fleet,
        &keys.tenjin,
        "/api/v1/stores/st-fukuoka-tenjin/waiting",
    )
    .await?;
    assert_eq!(status, 200, "{waiting}");
    assert_eq!(waiting["waiting"], json!([]), "{waiting}");
    let tote = waiting["totes"][0]["tote"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(waiting["totes"][0]["rmas"], json!(rmas), "{waiting}");
    assert!(
        waiting["totes"][0]["zpl"]
            .as_str()
            .is_some_and(|z| z.contains(&tote)),
        "{waiting}"
    );
    let (status, _) = get_json(&fleet, &keys.tenjin, "/api/v1/stores/st-shibuya/waiting").await?;
    assert_eq!(status, 403);
    let ctx = fleet.coordinator().ctx().clone();
    let snapshot = ctx
        .dashboard
        .snapshot(&ctx, chrono::Utc::now().timestamp_millis())
        .await?;
    assert!(
        snapshot
            .stores
            .iter()
            .any(|s| s.id == "st-fukuoka-tenjin" && s.totes == 1 && s.waiting == 2),
        "the dashboard shows the tote waiting at the store"
    );

    // Fukuoka receives the tote: one scan opens both returns, each T-shirt lands in one.
    let fukuoka = fleet.agent(FUKUOKA);
    let config = fleet.agent_config(FUKUOKA);
    wait_for("the tote expected in Fukuoka", TIMEOUT, || {
        let config = &config;
        async move {
            Ok(
                agent_count(config, "SELECT COUNT(*) FROM expected_totes")? == 1
                    && agent_count(config, "SELECT COUNT(*) FROM expected_returns")? == 2,
            )
        }
    })
    .await?;
    let conn = rusqlite::Connection::open_with_flags(
        config.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut station = Station::new(StationKind::Receiving);
    let who = Actor::new("B-0777", "recv-1");
    for line in [
        badge_encode("0777")?,
        tote.clone(),
        "4901234567894".to_owned(),
        "4901234567894".to_owned(),
        modori_shared::barcode::command_encode(modori_shared::barcode::StationCommand::Done),
    ] {
        let outcome = station.handle_scan(&line, &modori_agent::work::SiteLookup(&conn));
        assert_eq!(outcome.signal, Signal::Good, "{line}: {}", outcome.message);
        if let Some(effect) = outcome.effect {
            fukuoka.record(effect, who.clone()).await?;
            station.confirmed();
        }
    }
    wait_for(
        "both returns and the tote received at the centre",
        TIMEOUT,
        || {
            let fleet = &fleet;
            let tote = tote.clone();
            async move {
                let c = fleet.coordinator();
                let received = modori_tests::coordinator_count(
                    c,
                    "SELECT COUNT(*) FROM returns WHERE tote = ?1 AND status = 'received'",
                    &tote,
                )
                .await?;
                let tote_done = modori_tests::coordinator_count(
                    c,
                    "SELECT COUNT(*) FROM totes WHERE tote = ?1 AND status = 'received'",
                    &tote,
                )
                .await?;
                Ok(received == 2 && tote_done == 1)
            }
        },
    )
    .await?;
    let (_, waiting) = get_json(
        &fleet,
        &keys.tenjin,
        "/api/v1/stores/st-fukuoka-tenjin/waiting",
    )
    .await?;
    assert_eq!(
        waiting["totes"],
        json!([]),
        "nothing waits any more: {waiting}"
    );
    let (_, ret) = get_json(
        &fleet,
        &keys.tenjin,
        &format!("/api/v1/returns/{}", rmas[0]),
    )
    .await?;
    assert!(event_kinds(&ret).contains(&"in_tote".to_owned()), "{ret}");
    assert_eq!(uncoded_events(&ret), Vec::<String>::new(), "{ret}");
    fleet.shutdown().await;
    Ok(())
}
