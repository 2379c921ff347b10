//! The main command: the demo runs the coordinator and nine sites, moves returns through them,
//! stops by itself, and a second run reuses its data dir and says so.

use std::process::Command;

const DEMO: &str = env!("CARGO_BIN_EXE_modori-demo-under-test");

fn demo(dir: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(DEMO)
        .args([
            "--http",
            "127.0.0.1:0",
            "--duration-seconds",
            "4",
            "--returns-per-second",
            "10",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the demo runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The demo's keys file: exactly `{"ops", "merchant": {"id", "key"}, "store": {"id", "key"}}`,
/// mode 0600, its path printed.
fn demo_keys(dir: &std::path::Path, output: &str) -> serde_json::Value {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("demo-keys.json");
    assert!(output.contains(&path.display().to_string()), "{output}");
    let mode = std::fs::metadata(&path)
        .expect("demo-keys.json")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
    let is_key = |v: &serde_json::Value| v.as_str().is_some_and(|k| k.starts_with("modori_"));
    let shape = keys.as_object().map(|o| {
        let mut k: Vec<String> = o.keys().cloned().collect();
        k.sort();
        k
    });
    assert_eq!(
        shape,
        Some(vec!["merchant".into(), "ops".into(), "store".into()]),
        "{keys}"
    );
    assert!(is_key(&keys["ops"]), "{keys}");
    for scope in ["merchant", "store"] {
        let fields = keys[scope].as_object().map(|o| o.len());
        assert_eq!(fields, Some(2), "{keys}");
        assert!(
            keys[scope]["id"].is_string() && is_key(&keys[scope]["key"]),
            "{keys}"
        );
    }
    assert_eq!(keys["merchant"]["id"], "demo-brand");
    keys
}

#[test]
fn the_demo_runs_twice_and_says_what_it_did_with_its_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let (ok, first) = demo(&dir, &[]);
    assert!(ok, "{first}");
    assert!(first.contains("Creating data dir"), "{first}");
    assert!(first.contains("9 sites running"), "{first}");
    assert!(first.contains("/api/v1/sites"), "{first}");
    assert!(first.contains("Registered"), "{first}");
    for site in ["sapporo", "osaka", "fukuoka"] {
        assert!(
            dir.join("sites").join(site).join("agent.db").exists(),
            "{site}"
        );
    }
    // The simulated printers keep what they printed, for a person or a test to render.
    let printed = std::fs::read_dir(dir.join("sites"))
        .expect("sites folder")
        .filter_map(Result::ok)
        .filter_map(|site| std::fs::read_to_string(site.path().join("printed").join("1.zpl")).ok())
        .collect::<Vec<_>>();
    assert!(
        !printed.is_empty()
            && printed
                .iter()
                .all(|z| z.starts_with("^XA") && z.ends_with("^XZ")),
        "labels in sites/<site>/printed/: {printed:?}"
    );
    let first_keys = demo_keys(&dir, &first);
    let (ok, second) = demo(&dir, &[]);
    assert!(ok, "{second}");
    assert!(second.contains("Reusing data dir"), "{second}");
    assert_ne!(
        first_keys,
        demo_keys(&dir, &second),
        "each run makes new keys"
    );
    let (ok, third) = demo(&dir, &["--reset"]);
    assert!(ok, "{third}");
    assert!(third.contains("Reset data dir"), "{third}");
}

/// The demo's HTTP address, from the line it prints (`Dashboard: http://127.0.0.1:PORT/ …`).
fn dashboard_addr(line: &str) -> Option<std::net::SocketAddr> {
    line.trim()
        .strip_prefix("Dashboard:")?
        .trim()
        .strip_prefix("http://")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// The largest return the API allows, registered while the demo runs, is received by the
/// site's simulated crew, and the demo runs again on the same data: no number from the request
/// sizes an allocation (a `qty` of 2^31 - 1 once aborted every run on "memory allocation of
/// 51539607528 bytes failed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_return_leaves_the_demo_running_run_after_run() -> anyhow::Result<()> {
    use modori_shared::domain::{LINE_QTY_MAX, RETURN_LINES_MAX};
    use std::io::BufRead;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("demo");
    let mut child = Command::new(DEMO)
        .args([
            "--http",
            "127.0.0.1:0",
            "--duration-seconds",
            "8",
            "--returns-per-second",
            "2",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = line_tx.send(line);
        }
    });
    let mut printed = String::new();
    let addr = loop {
        let line = line_rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("the demo prints its dashboard ({e}): {printed}"));
        printed.push_str(&line);
        printed.push('\n');
        if let Some(addr) = dashboard_addr(&line) {
            break addr;
        }
    };
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("demo-keys.json"))?)?;
    let ops = keys["ops"].as_str().expect("ops key");
    // From Osaka, whose site takes 7,000 units a day; SKUs of the demo's catalogue, which the
    // crews scan unit by unit.
    let skus = ["TEE-WHT-M", "TEE-BLK-L", "JKT-DENIM-L", "SNK-RUN-27"];
    let lines: Vec<serde_json::Value> = (0..RETURN_LINES_MAX)
        .map(|i| {
            serde_json::json!({"sku": skus[i % skus.len()], "qty": LINE_QTY_MAX,
                               "reason": "defective"})
        })
        .collect();
    let body = serde_json::json!({
        "rma": "RMA-LARGEST",
        "origin": {"latitude": 34.69, "longitude": 135.50},
        "lines": lines,
    });
    let (status, text) = modori_tests::http_request_as(
        addr,
        Some(ops),
        "POST",
        "/api/v1/returns",
        Some(&body.to_string()),
    )
    .await?;
    assert_eq!(status, 201, "{text}");
    // The order the demo suggests opens on the portal with the contact it prints.
    let form = modori_tests::http_raw(addr, "GET", "/r/demo-brand", &[], None).await?;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form
        .header("set-cookie")
        .and_then(|c| c.strip_prefix("modori_portal_csrf="))
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let body = format!("csrf={csrf}&order_ref=DEMO-1001&contact=customer1001%40example.jp");
    let cookie = format!("modori_portal_csrf={csrf}");
    let order = modori_tests::http_raw(
        addr,
        "POST",
        "/r/demo-brand",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        Some(body.as_bytes()),
    )
    .await?;
    assert_eq!(order.status, 200, "{}", order.body);
    assert!(order.body.contains("DEMO-1001"), "{}", order.body);
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    let _ = reader.join();
    printed.extend(line_rx.try_iter().map(|l| l + "\n"));
    assert!(status.success(), "{status}: {printed}");
    assert!(printed.contains("Registered"), "{printed}");
    assert!(
        printed.contains("/r/demo-brand  (try order DEMO-1001 with customer1001@example.jp)"),
        "{printed}"
    );
    let (ok, second) = demo(&dir, &[]);
    assert!(ok, "{second}");
    assert!(second.contains("Reusing data dir"), "{second}");
    assert!(second.contains("Registered"), "{second}");
    Ok(())
}

/// The demo's customers go back through every channel, with every outcome and method, within
/// a short run; what they did is in the coordinator's database as the demo says, only the
/// serial returners return more than twice or can be flagged for abuse, and the customers'
/// mails are kept as `.eml` files by the demo's own SMTP server.
#[test]
fn the_demos_customers_use_every_channel_outcome_and_method_and_their_mails_are_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let out = Command::new(DEMO)
        .args([
            "--http",
            "127.0.0.1:0",
            "--duration-seconds",
            "8",
            "--returns-per-second",
            "5",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the demo runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let mail_dir = dir.join("mail");
    assert!(
        text.contains(&format!("Customers' mail: {}", mail_dir.display())),
        "{text}"
    );
    let said = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_default()
            .to_owned()
    };
    for (line, names) in [
        (
            said("Channels:"),
            &["portal", "store counter", "merchant API", "store walk-in"][..],
        ),
        (
            said("Outcomes:"),
            &["refund", "store credit", "exchange"][..],
        ),
        (
            said("Methods:"),
            &[
                "konbini_dropoff",
                "carrier_pickup",
                "home_pickup",
                "store_dropoff",
            ][..],
        ),
    ] {
        for name in names {
            assert!(line.contains(&format!("{name} ")), "{name}: {text}");
        }
    }
    // What the database holds agrees: portal methods, outcomes, counter returns.
    let db = rusqlite::Connection::open(dir.join("coordinator").join("coordinator.db"))
        .expect("the coordinator's database");
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).expect(sql) };
    for method in [
        "konbini_dropoff",
        "carrier_pickup",
        "home_pickup",
        "store_dropoff",
    ] {
        let sql = format!("SELECT COUNT(*) FROM returns WHERE method = '{method}'");
        assert!(count(&sql) > 0, "{method}");
    }
    for resolution in ["refund", "store_credit", "exchange"] {
        let sql = format!("SELECT COUNT(*) FROM returns WHERE resolution = '{resolution}'");
        assert!(count(&sql) > 0, "{resolution}");
    }
    assert!(count("SELECT COUNT(*) FROM returns WHERE origin_store IS NOT NULL") > 0);
    assert!(count("SELECT COUNT(*) FROM returns WHERE exchange_sku IS NOT NULL") > 0);
    // Histories as a shop's: every customer but the serial returners has returned once or
    // twice, and only serial returners can be flagged for abuse.
    let mut stmt = db
        .prepare(
            "SELECT customer_ref, COUNT(*) FROM returns WHERE customer_ref IS NOT NULL GROUP BY 1",
        )
        .expect("customers");
    let customers: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("customers")
        .map(|r| r.expect("a customer"))
        .collect();
    let serial = |c: &str| c.starts_with("C-000");
    assert!(customers.iter().any(|(c, _)| !serial(c)), "{customers:?}");
    let flag_min = modori_coordinator::config::AlertsSection::default().abuse_score_min;
    let now_ms = modori_runtime::clock::now_ms();
    for (customer, n) in &customers {
        let history =
            modori_coordinator::store::commerce::history(&db, customer, now_ms).expect("a history");
        let score = modori_coordinator::policy::abuse_score(&history).score;
        if !serial(customer) {
            assert!(*n <= 2, "{customer} returned {n} times");
            assert!(
                score < flag_min,
                "{customer} flagged with {score}: {history:?}"
            );
        }
    }
    // The mails: one file each, a message with its headers, to a customer.
    let mails: Vec<String> = std::fs::read_dir(&mail_dir)
        .expect("the mail folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    assert!(!mails.is_empty(), "no mail in {}", mail_dir.display());
    for m in &mails {
        assert!(
            m.contains("\r\nSubject: ") && m.contains("@example.jp") && m.contains("\r\n\r\n"),
            "{m}"
        );
    }
}
