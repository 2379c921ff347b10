//! API keys: every `/api/v1` route needs one (401 without, or with an unknown or revoked one),
//! scopes limit what a key reaches (403), and keys are made and revoked through the API and
//! the command line while the coordinator runs.

use std::process::Command;

use modori_tests::{http_raw, http_request, http_request_as, small_fleet, TestFleet};

const COORDINATOR: &str = env!("CARGO_BIN_EXE_modori-coordinator-under-test");

fn code(text: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// Makes a key through the API with the ops key: (id, key).
async fn make_key(fleet: &TestFleet, scope: &str) -> anyhow::Result<(String, String)> {
    let body = serde_json::json!({"scope": scope, "label": "test"}).to_string();
    let (status, text) = fleet.api("POST", "/api/v1/keys", Some(&body)).await?;
    anyhow::ensure!(status == 201, "{scope}: {text}");
    let v: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(v["scope"], scope, "{v}");
    assert!(v["revoked_at"].is_null(), "{v}");
    let key = v["key"].as_str().unwrap_or_default().to_owned();
    assert!(key.starts_with("modori_") && key.len() == 7 + 64, "{key}");
    Ok((v["id"].as_str().unwrap_or_default().to_owned(), key))
}

/// Registers a return with `key`: (status, the RMA or the answer).
async fn register(
    fleet: &TestFleet,
    key: &str,
    merchant: Option<&str>,
    origin: serde_json::Value,
) -> anyhow::Result<(u16, String)> {
    let mut body = serde_json::json!({
        "origin": origin,
        "lines": [{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}],
    });
    if let Some(m) = merchant {
        body["merchant"] = m.into();
    }
    let (status, text) = http_request_as(
        fleet.http(),
        Some(key),
        "POST",
        "/api/v1/returns",
        Some(&body.to_string()),
    )
    .await?;
    let rma = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["rma"].as_str().map(str::to_owned));
    Ok((status, rma.unwrap_or(text)))
}

async fn get(fleet: &TestFleet, key: &str, path: &str) -> anyhow::Result<(u16, String)> {
    http_request_as(fleet.http(), Some(key), "GET", path, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_needed_and_their_scope_limits_what_they_reach() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let ginza = serde_json::json!({"store_id": "st-ginza"});
    let point = serde_json::json!({"latitude": 35.0, "longitude": 139.0});

    // No key, a key of another form, an unknown key: 401, JSON, with the challenge.
    let bearer_unknown = format!("Bearer modori_{}", "0".repeat(64));
    for auth in [
        None,
        Some("Basic b3BzOm9wcw=="),
        Some("Bearer"),
        Some(bearer_unknown.as_str()),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        for path in [
            "/api/v1/sites",
            "/api/v1/returns/RMA-1",
            "/api/v1/keys",
            "/api/v1/nothing",
        ] {
            let res = http_raw(fleet.http(), "GET", path, &headers, None).await?;
            assert_eq!(res.status, 401, "{auth:?} {path}: {res:?}");
            assert_eq!(code(&res.body), "unauthorized");
            assert_eq!(res.header("www-authenticate"), Some("Bearer"), "{res:?}");
        }
    }
    let (status, text) = http_request(fleet.http(), "POST", "/api/v1/returns", Some("{}")).await?;
    assert_eq!(
        (status, code(&text)),
        (401, "unauthorized".into()),
        "no body is read before the key"
    );

    let (_, brand_a) = make_key(&fleet, "merchant:brand-a").await?;
    let (_, brand_b) = make_key(&fleet, "merchant:brand-b").await?;
    let (_, ginza_key) = make_key(&fleet, "store:st-ginza").await?;

    // Registering: ops or the merchant named in the body.
    let (status, rma_a) = register(&fleet, &brand_a, Some("brand-a"), ginza.clone()).await?;
    assert_eq!(status, 201, "{rma_a}");
    let (status, rma_a2) = register(&fleet, &brand_a, None, point.clone()).await?;
    assert_eq!(
        status, 201,
        "the key's merchant when the body names none: {rma_a2}"
    );
    let (status, text) = register(&fleet, &brand_a, Some("brand-b"), ginza.clone()).await?;
    assert_eq!((status, code(&text)), (403, "forbidden".into()), "{text}");
    let (status, text) = register(&fleet, &ginza_key, None, ginza.clone()).await?;
    assert_eq!((status, code(&text)), (403, "forbidden".into()), "{text}");
    let (status, rma_b) = register(&fleet, &fleet.ops_key, Some("brand-b"), point.clone()).await?;
    assert_eq!(status, 201, "{rma_b}");

    // Reading a return: ops, its merchant, or the store it was registered at.
    let path = |rma: &str| format!("/api/v1/returns/{rma}");
    let (status, text) = get(&fleet, &brand_a, &path(&rma_a2)).await?;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text)?["merchant"],
        "brand-a"
    );
    for (key, rma, expected) in [
        (&fleet.ops_key, &rma_a, 200),
        (&fleet.ops_key, &rma_b, 200),
        (&brand_a, &rma_a, 200),
        (&brand_a, &rma_b, 403),
        (&brand_b, &rma_b, 200),
        (&brand_b, &rma_a, 403),
        (&ginza_key, &rma_a, 200),
        (&ginza_key, &rma_b, 403),
        (&ginza_key, &rma_a2, 403),
    ] {
        let (status, text) = get(&fleet, key, &path(rma)).await?;
        assert_eq!(status, expected, "{rma}: {text}");
        if status == 403 {
            assert_eq!(code(&text), "forbidden");
        }
    }
    let (status, text) = http_request_as(
        fleet.http(),
        Some(&brand_b),
        "POST",
        &format!("/api/v1/returns/{rma_a}/cancel"),
        None,
    )
    .await?;
    assert_eq!((status, code(&text)), (403, "forbidden".into()), "{text}");

    // Ops-only routes.
    for key in [&brand_a, &ginza_key] {
        for (method, path) in [
            ("GET", "/api/v1/sites"),
            ("GET", "/api/v1/anomalies"),
            ("GET", "/api/v1/quarantine"),
            ("GET", "/api/v1/keys"),
            ("DELETE", "/api/v1/keys/ak-0000000000000000"),
            ("DELETE", "/api/v1/customers/C-1"),
        ] {
            let (status, text) =
                http_request_as(fleet.http(), Some(key), method, path, None).await?;
            assert_eq!(
                (status, code(&text)),
                (403, "forbidden".into()),
                "{method} {path}: {text}"
            );
        }
        let (status, _) = http_request_as(
            fleet.http(),
            Some(key),
            "POST",
            "/api/v1/keys",
            Some(r#"{"scope": "ops"}"#),
        )
        .await?;
        assert_eq!(status, 403, "a merchant or store key cannot make keys");
    }

    // Catalogue: ops or that merchant.
    let catalog = r#"{"items": [{"sku": "TEE-WHT-M", "category": "tops", "price_yen": 2900}]}"#;
    for (key, merchant, expected) in [
        (&brand_a, "brand-a", 200),
        (&brand_a, "brand-b", 403),
        (&ginza_key, "brand-a", 403),
        (&fleet.ops_key, "brand-b", 200),
    ] {
        let path = format!("/api/v1/catalog/{merchant}");
        let (status, text) =
            http_request_as(fleet.http(), Some(key), "PUT", &path, Some(catalog)).await?;
        assert_eq!(status, expected, "PUT {path}: {text}");
        let (status, text) = get(&fleet, key, &path).await?;
        assert_eq!(status, expected, "GET {path}: {text}");
        if status == 200 {
            assert!(text.contains("TEE-WHT-M"), "{text}");
        }
    }

    // Keys for what does not exist (404) or cannot be (422) are refused, naming the field.
    for (scope, want) in [
        ("store:st-nowhere", 404),
        ("admin", 422),
        ("merchant:Brand", 422),
    ] {
        let body = serde_json::json!({"scope": scope}).to_string();
        let (status, text) = fleet.api("POST", "/api/v1/keys", Some(&body)).await?;
        assert_eq!(status, want, "{scope}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(v["error"]["field"], "scope", "{text}");
    }
    fleet.shutdown().await;
    Ok(())
}

fn cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(COORDINATOR)
        .args(args)
        .env_remove("MODORI_COORD_CONFIG")
        .output()
        .expect("the coordinator binary runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn line_value<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_and_revoked_without_a_restart() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;

    // Through the API: made, used, listed without its secret, revoked, refused.
    let (id, key) = make_key(&fleet, "merchant:brand-a").await?;
    assert_eq!(get(&fleet, &key, "/api/v1/catalog/brand-a").await?.0, 200);
    let (status, list) = fleet.api("GET", "/api/v1/keys", None).await?;
    assert_eq!(status, 200, "{list}");
    assert!(list.contains(&id), "{list}");
    assert!(
        !list.contains("modori_"),
        "a listing shows no secret: {list}"
    );
    assert!(
        list.contains(r#""source":"config""#),
        "the configured ops key: {list}"
    );
    let (status, text) = fleet
        .api("DELETE", &format!("/api/v1/keys/{id}"), None)
        .await?;
    assert_eq!(status, 200, "{text}");
    assert!(serde_json::from_str::<serde_json::Value>(&text)?["revoked_at"].is_string());
    let (status, text) = get(&fleet, &key, "/api/v1/catalog/brand-a").await?;
    assert_eq!(
        (status, code(&text)),
        (401, "unauthorized".into()),
        "{text}"
    );
    assert_eq!(
        fleet
            .api("DELETE", &format!("/api/v1/keys/{id}"), None)
            .await?
            .0,
        200
    );
    let (status, text) = fleet.api("DELETE", "/api/v1/keys/ak-unknown", None).await?;
    assert_eq!((status, code(&text)), (404, "not_found".into()), "{text}");

    // Through the command line, against the database the running coordinator uses.
    let config = fleet.write_coordinator_config()?;
    let config = config.to_str().expect("utf-8 path");
    let (ok, out) = cli(&[
        "keys",
        "create",
        "--config",
        config,
        "--scope",
        "store:st-ginza",
        "--label",
        "counter 2",
    ]);
    assert!(ok, "{out}");
    let (cli_id, cli_key) = (
        line_value(&out, "id:").to_owned(),
        line_value(&out, "key:").to_owned(),
    );
    // The key passes (404: no such return, but not a 401).
    let (status, text) = get(&fleet, &cli_key, "/api/v1/returns/RMA-NONE").await?;
    assert_eq!((status, code(&text)), (404, "not_found".into()), "{text}");
    let (ok, out) = cli(&["keys", "list", "--config", config]);
    assert!(ok, "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with(&cli_id))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("store:st-ginza") && row.contains("live") && row.contains("counter 2"),
        "{row}"
    );
    assert!(!out.contains("modori_"), "{out}");
    let (ok, out) = cli(&["keys", "revoke", &cli_id, "--config", config]);
    assert!(ok, "{out}");
    let (status, _) = get(&fleet, &cli_key, "/api/v1/returns/RMA-NONE").await?;
    assert_eq!(status, 401, "revoked by another process, refused at once");
    let (ok, out) = cli(&["keys", "list", "--config", config]);
    assert!(
        ok && out
            .lines()
            .any(|l| l.starts_with(&cli_id) && l.contains("revoked")),
        "{out}"
    );

    // Mistakes are named.
    let (ok, out) = cli(&[
        "keys",
        "create",
        "--config",
        config,
        "--scope",
        "store:st-nowhere",
    ]);
    assert!(!ok && out.contains("st-nowhere"), "{out}");
    let (ok, out) = cli(&["keys", "revoke", "ak-unknown", "--config", config]);
    assert!(!ok && out.contains("ak-unknown"), "{out}");
    // A key and its hash for the config file.
    let (ok, out) = cli(&["keys", "generate"]);
    assert!(ok, "{out}");
    assert_eq!(
        modori_coordinator::apikeys::sha256_hex(line_value(&out, "key:")),
        line_value(&out, "sha256:")
    );
    // The coordinator never stopped; the configured ops key still works.
    assert_eq!(fleet.api("GET", "/api/v1/sites", None).await?.0, 200);
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_live_ops_key_cannot_be_revoked_over_the_api() -> anyhow::Result<()> {
    let fleet = TestFleet::start_with(small_fleet(1)).await?;
    let (status, list) = fleet.api("GET", "/api/v1/keys", None).await?;
    assert_eq!(status, 200, "{list}");
    let list: serde_json::Value = serde_json::from_str(&list)?;
    let configured = list
        .as_array()
        .and_then(|keys| {
            keys.iter()
                .find(|k| k["scope"] == "ops" && k["revoked_at"].is_null())
        })
        .and_then(|k| k["id"].as_str())
        .unwrap_or_else(|| panic!("a live ops key: {list}"))
        .to_owned();

    // Alone, the configured ops key cannot revoke itself.
    let (status, text) = fleet
        .api("DELETE", &format!("/api/v1/keys/{configured}"), None)
        .await?;
    assert_eq!((status, code(&text)), (409, "conflict".into()), "{text}");
    assert!(text.contains("last live ops key"), "{text}");
    assert_eq!(fleet.api("GET", "/api/v1/sites", None).await?.0, 200);

    // With a second ops key, either may go; then the one left is the last.
    let (second, second_key) = make_key(&fleet, "ops").await?;
    let (status, text) = http_request_as(
        fleet.http(),
        Some(&second_key),
        "DELETE",
        &format!("/api/v1/keys/{configured}"),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let (status, text) = http_request_as(
        fleet.http(),
        Some(&second_key),
        "DELETE",
        &format!("/api/v1/keys/{second}"),
        None,
    )
    .await?;
    assert_eq!((status, code(&text)), (409, "conflict".into()), "{text}");
    assert_eq!(get(&fleet, &second_key, "/api/v1/keys").await?.0, 200);
    // Other scopes' keys are revoked as before, and a revoked ops key again changes nothing.
    let (merchant, _) = {
        let body = serde_json::json!({"scope": "merchant:brand-a"}).to_string();
        let (status, text) = http_request_as(
            fleet.http(),
            Some(&second_key),
            "POST",
            "/api/v1/keys",
            Some(&body),
        )
        .await?;
        assert_eq!(status, 201, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text)?;
        (v["id"].as_str().unwrap_or_default().to_owned(), v)
    };
    for id in [&merchant, &configured] {
        let (status, text) = http_request_as(
            fleet.http(),
            Some(&second_key),
            "DELETE",
            &format!("/api/v1/keys/{id}"),
            None,
        )
        .await?;
        assert_eq!(status, 200, "{id}: {text}");
    }
    fleet.shutdown().await;
    Ok(())
}
