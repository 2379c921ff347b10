//! HTTP fuzzing of every route: malformed and mutated JSON bodies, wrong types, huge numbers,
//! odd path parameters, methods and headers. Whatever comes in, the answer is never a 5xx,
//! every error is the JSON error shape, and the server keeps answering.
//!
//! A modest case count (CI has two cores); `PROPTEST_CASES` does not apply, the count is set
//! here. A failure prints the smallest request that fails.

use std::net::SocketAddr;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

use modori_tests::{http_raw, small_fleet, TestFleet};

/// Requests thrown at the server.
const N_CASES: u32 = 256;
const HOLE: &str = "__FUZZ_HOLE__";

/// (method, path with `{}` for its parameter, an example body).
fn routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        (
            "POST",
            "/api/v1/returns",
            Some(json!({
                "rma": "RMA-FUZZ-1",
                "merchant": "brand-a",
                "origin": {"store_id": "st-ginza"},
                "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}],
                "customer": {"ref": "C-1", "name": "山田", "address": "東京"},
            })),
        ),
        (
            "POST",
            "/api/v1/returns",
            Some(json!({
                "origin": {"latitude": 35.0, "longitude": 139.0},
                "lines": [{"sku": "A", "qty": 2, "reason": "other"}],
            })),
        ),
        ("GET", "/api/v1/returns/{}", None),
        ("POST", "/api/v1/returns/{}/cancel", None),
        (
            "PUT",
            "/api/v1/catalog/{}",
            Some(
                json!({"items": [{"sku": "A", "gtin": "4901234567894", "category": "tops",
                                   "price_yen": 100, "final_sale": false, "needs_testing": true}]}),
            ),
        ),
        ("GET", "/api/v1/catalog/{}", None),
        (
            "PUT",
            "/api/v1/orders/{}",
            Some(json!({"orders": [{"ref": "ORD-1", "customer_ref": "C-1",
                                    "ordered_at": "2026-01-02T03:04:05Z",
                                    "lines": [{"sku": "A", "qty": 2}]}]})),
        ),
        ("GET", "/api/v1/orders/brand-a/{}", None),
        (
            "POST",
            "/api/v1/quarantine/{}/match",
            Some(json!({"rma": "RMA-1"})),
        ),
        ("DELETE", "/api/v1/customers/{}", None),
        (
            "POST",
            "/api/v1/keys",
            Some(json!({"scope": "merchant:brand-a", "label": "fuzz"})),
        ),
        ("GET", "/api/v1/keys", None),
        ("DELETE", "/api/v1/keys/{}", None),
        (
            "POST",
            "/api/v1/returns",
            Some(json!({
                "merchant": "brand-a",
                "origin": {"postal_code": "530-0001"},
                "order_ref": "ORD-1", "order_date": "2026-11-20", "method": "konbini_dropoff",
                "resolution": "exchange", "exchange_sku": "TEE-WHT-L",
                "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small", "note": "x"}],
            })),
        ),
        (
            "POST",
            "/api/v1/stores/{}/returns",
            Some(json!({"merchant": "brand-a", "resolution": "store_credit",
                        "condition": {"tags_on": true, "opened": true, "visibly_used": false,
                                      "damaged": false, "photo_ref": "IMG-1"},
                        "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_large"}]})),
        ),
        ("POST", "/api/v1/returns/{}/refund", None),
        (
            "POST",
            "/api/v1/carrier-events",
            Some(json!({"carrier": "sim", "events": [
                {"tracking": "123456789013", "status": "in_transit", "at_ms": 1, "location": "x"}]})),
        ),
        ("GET", "/api/v1/analytics/reasons", None),
        ("GET", "/api/v1/analytics/stores", None),
        ("GET", "/api/v1/stores/{}/waiting", None),
        ("GET", "/api/v1/analytics/customers/{}", None),
        (
            "PUT",
            "/api/v1/demand/{}",
            Some(json!([{"sku": "TEE-WHT-M", "units": 3}])),
        ),
        ("POST", "/api/v1/rebalance", None),
        (
            "POST",
            "/api/v1/units/{}/transfer",
            Some(json!({"to": "osaka"})),
        ),
        ("GET", "/api/v1/listings", None),
        ("GET", "/api/v1/billing/{}?month=2026-11", None),
        ("GET", "/api/v1/billing/{}/csv?month=2026-11", None),
        ("POST", "/api/v1/listings/{}/sold", None),
        ("GET", "/api/v1/sites", None),
        ("GET", "/api/v1/anomalies", None),
        ("GET", "/api/v1/quarantine", None),
        ("GET", "/api/v1/openapi.json", None),
        ("GET", "/healthz", None),
        ("GET", "/metrics", None),
    ]
}

/// Raw JSON text for a value: wrong types, huge and odd numbers, odd strings, deep nesting.
fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("1e400".to_owned()),
        Just("-1e400".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-9223372036854775809".to_owned()),
        Just("0".to_owned()),
        Just("-0.0".to_owned()),
        Just("1.5".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("\"\"".to_owned()),
        Just(format!("\"{}\"", "A".repeat(5000))),
        Just("\"\\ud800\"".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just(format!("{}1{}", "[".repeat(300), "]".repeat(300))),
        Just("NaN".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (-1e300f64..1e300).prop_map(|f| f.to_string()),
        "[a-zA-Z0-9 _.:-]{0,40}".prop_map(|s| format!("\"{s}\"")),
        "\\PC{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
    ]
}

/// How the example body is spoiled.
#[derive(Clone, Debug)]
enum Mutation {
    Valid,
    /// The `n`th leaf (modulo the count) replaced by raw text.
    Replace(usize, String),
    /// The `n`th leaf's key removed.
    Remove(usize),
    UnknownKey(String),
    /// The text cut at this fraction of its length.
    Truncate(f64),
    Bytes(Vec<u8>),
    Empty,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::Valid),
        6 => (any::<usize>(), json_text()).prop_map(|(n, t)| Mutation::Replace(n, t)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => "[a-z]{1,10}".prop_map(Mutation::UnknownKey),
        2 => (0.0f64..1.0).prop_map(Mutation::Truncate),
        2 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Mutation::Bytes),
        1 => Just(Mutation::Empty),
    ]
}

/// JSON pointers of the leaves of `v`.
fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| leaves(x, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| leaves(x, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

fn apply(example: &Value, m: &Mutation) -> Vec<u8> {
    let mut v = example.clone();
    let mut points = Vec::new();
    leaves(&v, String::new(), &mut points);
    let text = match m {
        Mutation::Valid => v.to_string(),
        Mutation::Replace(n, raw) => {
            if let Some(leaf) = v.pointer_mut(&points[n % points.len()]) {
                *leaf = Value::String(HOLE.into());
            }
            v.to_string().replacen(&format!("\"{HOLE}\""), raw, 1)
        }
        Mutation::Remove(n) => {
            let point = &points[n % points.len()];
            let (parent, key) = point.rsplit_once('/').unwrap_or(("", point));
            if let Some(Value::Object(o)) = v.pointer_mut(parent) {
                o.remove(key);
            }
            v.to_string()
        }
        Mutation::UnknownKey(k) => {
            if let Value::Object(o) = &mut v {
                o.insert(k.clone(), json!(1));
            }
            v.to_string()
        }
        Mutation::Truncate(f) => {
            let t = v.to_string();
            let mut cut = (t.len() as f64 * f) as usize;
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            t[..cut].to_owned()
        }
        Mutation::Bytes(b) => return b.clone(),
        Mutation::Empty => String::new(),
    };
    text.into_bytes()
}

/// A path parameter: valid-looking, odd, long, or percent-encoded arbitrary bytes.
fn param() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("RMA-1".to_owned()),
        Just("brand-a".to_owned()),
        Just("ak-0000000000000000".to_owned()),
        Just("..".to_owned()),
        Just("%00".to_owned()),
        Just("%FF%FE".to_owned()),
        Just("A".repeat(3000)),
        "[A-Za-z0-9._~-]{1,70}",
        proptest::collection::vec(any::<u8>(), 1..40)
            .prop_map(|b| { b.iter().map(|x| format!("%{x:02X}")).collect::<String>() }),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    method: String,
    path: String,
    auth: Option<String>,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
}

fn case(ops_key: String) -> impl Strategy<Value = Case> {
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
    let routes = routes();
    (
        0..routes.len(),
        proptest::option::weighted(0.2, proptest::sample::select(methods.to_vec())),
        param(),
        prop_oneof![
            10 => Just(Some(format!("Bearer {ops_key}"))),
            1 => Just(None),
            1 => Just(Some(format!("Bearer {ops_key}x"))),
            1 => Just(Some(format!("bearer  {ops_key}"))),
            1 => "[ -~]{0,60}".prop_map(Some),
        ],
        prop_oneof![
            10 => Just(Some("application/json".to_owned())),
            1 => Just(Some("application/json; charset=utf-8".to_owned())),
            1 => Just(None),
            1 => Just(Some("text/plain".to_owned())),
            1 => "[ -~]{0,40}".prop_map(Some),
        ],
        mutation(),
    )
        .prop_map(move |(r, method, p, auth, content_type, m)| {
            let (route_method, template, example) = &routes[r];
            let body = match (example, &m) {
                (Some(e), _) => Some(apply(e, &m)),
                (None, Mutation::Bytes(b)) => Some(b.clone()),
                (None, _) => None,
            };
            Case {
                method: method.unwrap_or(route_method).to_owned(),
                path: template.replace("{}", &p),
                auth,
                content_type,
                body,
            }
        })
}

async fn send(addr: SocketAddr, c: &Case) -> anyhow::Result<modori_tests::HttpResponse> {
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &c.auth {
        headers.push(("Authorization", a));
    }
    if let Some(t) = &c.content_type {
        headers.push(("Content-Type", t));
    }
    http_raw(addr, &c.method, &c.path, &headers, c.body.as_deref()).await
}

#[test]
fn no_request_makes_the_api_fail_or_stop() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let fleet = rt
        .block_on(TestFleet::start_with(small_fleet(1)))
        .expect("fleet starts");
    let addr = fleet.http();
    let mut runner = TestRunner::new(Config {
        cases: N_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let result = runner.run(&case(fleet.ops_key.clone()), |c| {
        let res = rt
            .block_on(send(addr, &c))
            .map_err(|e| TestCaseError::fail(format!("no answer: {e:#}")))?;
        if let Ok(mut s) = statuses.lock() {
            *s.entry(res.status).or_default() += 1;
        }
        prop_assert!(res.status < 500, "{c:?} -> {res:?}");
        if res.status >= 400 && c.method != "HEAD" {
            let v: Value = serde_json::from_str(&res.body)
                .map_err(|e| TestCaseError::fail(format!("{c:?} -> not JSON ({e}): {res:?}")))?;
            prop_assert_eq!(
                &v["error"]["status"],
                &json!(res.status),
                "{:?} -> {:?}",
                c,
                res
            );
            prop_assert!(v["error"]["code"].is_string(), "{:?} -> {:?}", c, res);
        }
        Ok(())
    });
    // Still answering, the configured key still valid.
    let (health, sites) = rt.block_on(async {
        (
            modori_tests::http_get(addr, "/healthz").await,
            fleet.api("GET", "/api/v1/sites", None).await,
        )
    });
    rt.block_on(fleet.shutdown());
    if let Err(e) = result {
        panic!("{e}");
    }
    // The requests got past the key check and the parsers to the handlers, too.
    let statuses = statuses.into_inner().unwrap_or_default();
    println!("answers by status: {statuses:?}");
    for status in [200, 400, 401, 404, 405, 415, 422] {
        assert!(statuses.contains_key(&status), "no {status}: {statuses:?}");
    }
    assert_eq!(health.expect("healthz answers").0, 200);
    assert_eq!(sites.expect("the API answers").0, 200);
}
