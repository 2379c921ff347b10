//! The demo: the coordinator and nine real agents on loopback, with simulated
//! returns flowing through them. Certificates, databases and configs live in the data dir.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::customers::{self, Done, Shoppers, Tally};
use crate::local::{agent_config, coordinator_config, ensure_pki};
use crate::smtp_sink::SmtpSink;
use crate::station_sim::{Crew, SimDevices};
use anyhow::Context;
use modori_agent::Agent;
use modori_coordinator::fleet::Fleet;
use modori_coordinator::pki::PkiPaths;
use modori_coordinator::Coordinator;
use modori_runtime::clock;
use modori_shared::domain::{MerchantId, ReasonCode, ReturnLine, Sku};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tracing::{info, warn};

const SITES_TOML: &str = include_str!("../../configs/sites.toml");
const STORES_TOML: &str = include_str!("../../configs/stores.toml");
/// The demo's little catalogue.
const SKUS: [&str; 11] = [
    "TEE-WHT-M",
    "TEE-BLK-L",
    "JKT-DENIM-L",
    "SNK-RUN-27",
    "BAG-TOTE-BLK",
    "DRS-LINEN-S",
    "CAP-WOOL-F",
    "KNIT-NAVY-M",
    "TEE-WHT-L",
    "SNK-RUN-26",
    "KNIT-NAVY-L",
];
/// The demo catalogue's categories (each SKU's first part, lowercased) by their names in
/// Japanese and English, for the ops pages.
const CATEGORY_NAMES: [(&str, &str, &str); 7] = [
    ("tee", "Tシャツ", "T-shirts"),
    ("jkt", "ジャケット", "Jackets"),
    ("snk", "スニーカー", "Sneakers"),
    ("bag", "バッグ", "Bags"),
    ("drs", "ワンピース", "Dresses"),
    ("cap", "帽子", "Caps"),
    ("knit", "ニット", "Knitwear"),
];
/// Where the customers' mails are kept, under the data dir (one `.eml` file each).
pub const MAIL_DIR: &str = "mail";
/// The merchant of the demo's returns and catalogue.
const DEMO_MERCHANT: &str = "demo-brand";
/// The demo's API keys, in the data dir.
const DEMO_KEYS_FILE: &str = "demo-keys.json";
/// How often each simulated station crew works through its queues.
const STATION_STEP_INTERVAL: Duration = Duration::from_millis(400);
/// Orders of the demo merchant that store counters can look up (`DEMO-1001`…), and the
/// customers (`C-1001`…) they and the simulated returns belong to.
const DEMO_ORDERS: u32 = 40;
const DEMO_CUSTOMERS: u32 = 25;

pub struct DemoOptions {
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    pub reset: bool,
    pub duration: Option<Duration>,
    pub returns_per_second: f64,
}

pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    prepare_data_dir(&opts)?;
    let data = std::fs::canonicalize(&opts.data_dir).context("resolving the data dir")?;
    let fleet = Fleet::parse(
        Path::new("configs/sites.toml"),
        SITES_TOML,
        Path::new("configs/stores.toml"),
        STORES_TOML,
    )
    .context("embedded fleet files")?;
    let pki = PkiPaths::new(data.join("pki"));
    ensure_pki(&pki, &fleet.sites).context("preparing the demo certificates")?;

    // The customers' mails go to a sink of the demo's own, kept as files.
    let (stop_tx, stop) = watch::channel(false);
    // Stopped after the coordinator, whose last messages it still takes.
    let (sink_stop_tx, sink_stop) = watch::channel(false);
    let sink = SmtpSink::start(&data.join(MAIL_DIR), sink_stop)
        .await
        .context("starting the demo's mail sink")?;
    // The address the messages' links name must be known before the start: a port left to
    // the system is chosen here.
    let http_addr = match opts.http.port() {
        0 => std::net::TcpListener::bind(opts.http)
            .and_then(|l| l.local_addr())
            .context("finding a free HTTP port")?,
        _ => opts.http,
    };
    let mut config = coordinator_config(&data.join("coordinator"), &pki, http_addr);
    config
        .merchants
        .push(modori_coordinator::webhooks::MerchantEntry {
        id: DEMO_MERCHANT.into(),
        name: Some("デモブランド".into()),
        colour: Some("#1f4e79".into()),
        policy_text: Some(
            "商品到着後30日以内の未使用品は返品・交換を承ります。\nサイズ交換の送料は無料です。"
                .into(),
        ),
        webhook_url: None,
        webhook_secret: None,
        ..Default::default()
    });
    config.notifications.public_base_url = Some(format!("http://{http_addr}"));
    config.mail = Some(modori_coordinator::notify::mail::MailSection {
        host: "127.0.0.1".into(),
        port: Some(sink.addr.port()),
        security: modori_coordinator::notify::mail::Security::Plain,
        username: None,
        password: None,
        from: "デモブランド 返品受付 <returns@demo-brand.example.jp>".into(),
        timeout_seconds: 10,
        ca_cert: None,
    });
    let coordinator = Coordinator::start(config, fleet.clone())
        .await
        .context("starting the coordinator")?;
    let gtins = demo_catalog(&coordinator).await?;
    demo_orders(&coordinator).await?;
    let (keys_file, merchant_key) = demo_keys(&coordinator, &data).await?;
    let mut agents = Vec::new();
    let mut crews = Vec::new();
    for (i, site) in fleet.sites.iter().enumerate() {
        let mut config = agent_config(&data.join("sites"), &pki, site, coordinator.quic_addr());
        let devices = SimDevices::plug_in(&config.storage.data_dir.join("devices"))
            .with_context(|| format!("plugging in the simulated devices of {}", site.id))?;
        devices
            .printer
            .print_to(config.storage.data_dir.join("printed"))
            .with_context(|| format!("the printed-labels folder of {}", site.id))?;
        devices.configure(&mut config);
        let agent = Agent::start(config)
            .await
            .with_context(|| format!("starting the agent of {}", site.id))?;
        crews.push(Crew::new(
            agent.handle(),
            devices,
            gtins.clone(),
            &format!("{:04}", 1000 + i),
        )?);
        agents.push(agent);
    }
    let http = coordinator.http_addr();
    println!();
    println!(
        "Modori demo: coordinator + {} sites running on loopback.",
        agents.len()
    );
    println!("  Dashboard:     http://{http}/  (log in with the ops key)");
    println!(
        "  Store counter: http://{http}/store  (log in with the store key; try order DEMO-1001)"
    );
    let try_contact = demo_contact(0);
    println!(
        "  Returns portal: http://{http}/r/{DEMO_MERCHANT}  (try order DEMO-1001 with {})",
        try_contact.email
    );
    println!(
        "  Customers' mail: {}  (one .eml file per message)",
        sink.dir.display()
    );
    println!("  Sites (JSON):  http://{http}/api/v1/sites");
    println!("  Anomalies:     http://{http}/api/v1/anomalies");
    println!("  OpenAPI:       http://{http}/api/v1/openapi.json");
    println!("  Metrics:       http://{http}/metrics");
    println!(
        "  API keys:      {} (ops, merchant {DEMO_MERCHANT}, one store; send Authorization: Bearer <key>)",
        keys_file.display()
    );
    println!("  Data dir:      {}", data.display());
    println!("Press Ctrl-C to stop.");
    println!();

    let mut workers = Vec::new();
    for crew in crews {
        let mut stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::from_os_rng();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(STATION_STEP_INTERVAL) => {}
                    _ = stop.changed() => break,
                }
                if let Err(e) = crew.step(&mut rng).await {
                    warn!(site = %crew.agent.site(), error = %e, "station step failed");
                }
            }
            // Handed back so its devices stay plugged in until the agents have stopped.
            crew
        }));
    }
    let carrier = tokio::spawn(drive_carrier(
        coordinator_handle(&coordinator),
        stop.clone(),
    ));
    let shoppers = Shoppers::new(
        coordinator.ctx().clone(),
        http,
        MerchantId::new(DEMO_MERCHANT)?,
        merchant_key,
    );
    let returns = tokio::spawn(drive_returns(
        coordinator_handle(&coordinator),
        shoppers,
        fleet,
        opts.returns_per_second,
        stop.clone(),
    ));

    match opts.duration {
        Some(d) => tokio::time::sleep(d).await,
        None => {
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
        }
    }
    println!("Stopping: draining the agents' outboxes, then closing the links.");
    let _ = stop_tx.send(true);
    let (n_returns, tally) = match returns.await {
        Ok((n, tally)) => (n, tally.summary()),
        Err(_) => (0, String::new()),
    };
    let _ = carrier.await;
    let mut idle_crews = Vec::new();
    for w in workers {
        if let Ok(crew) = w.await {
            idle_crews.push(crew);
        }
    }
    for agent in agents {
        agent.shutdown().await;
    }
    drop(idle_crews);
    let sites = disposition_summary(&coordinator).await;
    coordinator.shutdown().await;
    let _ = sink_stop_tx.send(true);
    sink.stopped().await;
    println!("Registered {n_returns} returns this run. {sites}");
    println!("{tally}");
    Ok(())
}

fn prepare_data_dir(opts: &DemoOptions) -> anyhow::Result<()> {
    let dir = &opts.data_dir;
    if dir.exists() && opts.reset {
        std::fs::remove_dir_all(dir).with_context(|| format!("resetting {}", dir.display()))?;
        println!("Reset data dir {}: starting from scratch.", dir.display());
    } else if dir.join("pki").join("ca.pem").exists() {
        println!(
            "Reusing data dir {}: the sites keep their databases and certificates (pass --reset to start over).",
            dir.display()
        );
    } else {
        println!("Creating data dir {}.", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// The bits of the coordinator the return driver needs, cloneable into a task.
#[derive(Clone)]
struct CoordinatorHandle(std::sync::Arc<modori_coordinator::Ctx>);

fn coordinator_handle(c: &Coordinator) -> CoordinatorHandle {
    CoordinatorHandle(c.ctx().clone())
}

/// The customers return at about `per_second` through every channel (`customers`); a
/// walk-in at a store is registered here and shipped on by the simulated carrier. Returns how
/// many were registered, and what the customers did.
async fn drive_returns(
    c: CoordinatorHandle,
    mut shoppers: Shoppers,
    fleet: Fleet,
    per_second: f64,
    mut stop: watch::Receiver<bool>,
) -> (u64, Tally) {
    let mut rng = StdRng::from_os_rng();
    let interval = Duration::from_secs_f64(1.0 / per_second.max(0.01));
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return (n, shoppers.tally),
        }
        match shoppers.step(&mut rng).await {
            Ok(Done::Registered) => n += 1,
            Ok(Done::WalkIn { customer }) => {
                if walk_in(&c, &fleet, &customer, n, &mut rng).await {
                    n += 1;
                }
            }
            Err(e) => warn!(error = %format!("{e:#}"), "a customer's return failed"),
        }
    }
}

/// A customer walks into a store without their order: refunded, and shipped on with the
/// simulated carrier, whose slip the site scans.
async fn walk_in(
    c: &CoordinatorHandle,
    fleet: &Fleet,
    customer: &str,
    n: u64,
    rng: &mut StdRng,
) -> bool {
    let store = &fleet.stores[rng.random_range(0..fleet.stores.len())];
    // One item, as every demo customer returns: a regular customer's two returns can then
    // never add up to an abuse flag, and only the serial returners' do.
    let lines: Vec<ReturnLine> = Sku::new(SKUS[rng.random_range(0..SKUS.len())])
        .ok()
        .and_then(|sku| {
            let reason = ReasonCode::ALL[rng.random_range(0..ReasonCode::ALL.len())];
            ReturnLine::new(sku, 1, reason).ok()
        })
        .into_iter()
        .collect();
    let Some(rma) = customers::walk_in_rma() else {
        return false;
    };
    let terms = modori_coordinator::store::commerce::Terms {
        method: "store_dropoff".into(),
        resolution: modori_coordinator::policy::ResolutionKind::Refund,
        carrier: Some("sim".into()),
        tracking: Some(modori_coordinator::carrier::simulated_tracking(n)),
        ..Default::default()
    };
    let registration = modori_coordinator::store::NewReturn {
        rma,
        merchant: MerchantId::new(DEMO_MERCHANT).ok(),
        origin: store.location,
        origin_label: format!("store:{}", store.id),
        origin_store: Some(store.id.clone()),
        lines,
        customer: Some(modori_coordinator::store::Customer {
            reference: customer.to_owned(),
            name: None,
            address: None,
        }),
        terms: Some(terms),
        order_ref: None,
        resolution: None,
    };
    match modori_coordinator::register(&c.0, registration).await {
        Ok(routed) => {
            info!(rma = %routed.rma, store = %store.id, site = %routed.site, why = %routed.explanation, "return routed");
            true
        }
        Err(e) => {
            warn!(error = %e, "could not register a walk-in return");
            false
        }
    }
}

/// How long the simulated carrier takes from a store to a site in the demo.
const DEMO_TRANSIT: Duration = Duration::from_secs(60);
/// How often the simulated carrier posts its progress in the demo.
const DEMO_CARRIER_TICK: Duration = Duration::from_secs(2);

/// The simulated carrier: moves the demo's parcels along until stopped.
async fn drive_carrier(c: CoordinatorHandle, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(DEMO_CARRIER_TICK) => {}
            _ = stop.changed() => return,
        }
        let transit_ms = i64::try_from(DEMO_TRANSIT.as_millis()).unwrap_or(i64::MAX);
        let moved =
            c.0.db
                .call(move |conn| {
                    modori_coordinator::store::commerce::simulate_carrier(
                        conn,
                        clock::now_ms(),
                        transit_ms,
                    )
                })
                .await;
        match moved {
            Ok(n) if n > 0 => c.0.webhooks_wake(),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "simulated carrier failed"),
        }
    }
}

/// Puts the demo catalogue (SKUs with their JAN codes) at the coordinator, which sends it to
/// every site; returns the codes the crews scan.
async fn demo_catalog(c: &Coordinator) -> anyhow::Result<HashMap<Sku, String>> {
    use modori_coordinator::store::category_names::Names;
    let mut gtins = HashMap::new();
    let mut items = Vec::new();
    let mut styles = Vec::new();
    for (i, sku) in SKUS.iter().enumerate() {
        let jan = modori_shared::barcode::ean13_complete(&format!("49000000{:04}", 100 + i))?;
        let sku = Sku::new(*sku)?;
        items.push(modori_shared::CatalogItem {
            sku: sku.clone(),
            gtin14: Some(format!("0{jan}")),
            category: sku
                .as_str()
                .split('-')
                .next()
                .unwrap_or("misc")
                .to_lowercase(),
            price_yen: 1900 + 500 * i as u64,
            final_sale: false,
            needs_testing: false,
        });
        styles.push(
            customers::STYLED
                .iter()
                .find(|(a, b, _)| *a == sku.as_str() || *b == sku.as_str())
                .map(|(_, _, style)| (*style).to_owned()),
        );
        gtins.insert(sku, jan);
    }
    let ctx = c.ctx().clone();
    let sites: Vec<_> = ctx.fleet.sites.iter().map(|s| s.id.clone()).collect();
    let names: std::collections::BTreeMap<String, Names> = CATEGORY_NAMES
        .iter()
        .map(|(code, ja, en)| {
            let names = Names {
                ja: Some((*ja).to_owned()),
                en: Some((*en).to_owned()),
            };
            ((*code).to_owned(), names)
        })
        .collect();
    let queued = ctx
        .db
        .call(move |conn| {
            let queued = modori_coordinator::store::put_styled_catalog(
                conn,
                DEMO_MERCHANT,
                &items,
                &styles,
                &sites,
                clock::now_ms(),
            )?;
            modori_coordinator::store::category_names::put(conn, DEMO_MERCHANT, &names)?;
            Ok::<_, modori_coordinator::store::StoreError>(queued)
        })
        .await
        .context("storing the demo catalogue")?;
    ctx.wake(queued);
    Ok(gtins)
}

/// Stores the demo merchant's orders (`DEMO-1001`…, placed over the last three weeks), with
/// their customers' contact, for the store counter and the portal to look up.
async fn demo_orders(c: &Coordinator) -> anyhow::Result<()> {
    use modori_coordinator::store::orders::{Order, OrderLine};
    let now = clock::now_ms();
    let orders: Vec<Order> = (0..DEMO_ORDERS)
        .map(|i| {
            let n = i as usize;
            Order {
                merchant: DEMO_MERCHANT.to_owned(),
                order_ref: format!("DEMO-{}", 1001 + i),
                customer_ref: Some(format!("C-{}", 1001 + i % DEMO_CUSTOMERS)),
                ordered_ms: now - i64::from(i % 21) * 86_400_000,
                lines: vec![
                    OrderLine {
                        sku: SKUS[n % SKUS.len()].to_owned(),
                        qty: 1 + i % 2,
                    },
                    OrderLine {
                        sku: SKUS[(n + 3) % SKUS.len()].to_owned(),
                        qty: 1,
                    },
                ],
                contact: Some(demo_contact(i)),
            }
        })
        .collect();
    c.ctx()
        .db
        .call(move |conn| {
            modori_coordinator::store::orders::put_orders(conn, DEMO_MERCHANT, &orders, now)
        })
        .await
        .context("storing the demo orders")?;
    Ok(())
}

/// The contact on demo order `DEMO-{1001 + i}`: its customer's made-up address and phone,
/// which open it on the portal.
fn demo_contact(i: u32) -> modori_coordinator::store::orders::Contact {
    let customer = 1001 + i % DEMO_CUSTOMERS;
    modori_coordinator::store::orders::Contact {
        email: format!("customer{customer}@example.jp"),
        phone: format!("090-{customer:04}-{:04}", 1001 + i),
        line_user_id: None,
        language: "ja".into(),
    }
}

/// Makes the demo's API keys (ops, the demo merchant, the first store) after revoking the
/// previous run's, and writes them to `<data>/demo-keys.json` (mode 0600). Returns its path.
async fn demo_keys(c: &Coordinator, data: &Path) -> anyhow::Result<(PathBuf, String)> {
    use modori_coordinator::apikeys::{self, Scope, Source};
    let store = c
        .ctx()
        .fleet
        .stores
        .first()
        .context("the demo fleet has no store")?
        .id
        .clone();
    let merchant = MerchantId::new(DEMO_MERCHANT)?;
    let scopes = [
        Scope::Ops,
        Scope::Merchant(merchant.clone()),
        Scope::Store(store.clone()),
    ];
    let keys = c
        .ctx()
        .db
        .call(move |conn| {
            apikeys::revoke_all_from(conn, Source::Demo, clock::now_ms())?;
            scopes
                .iter()
                .map(|s| {
                    apikeys::create(conn, s, Some("demo"), Source::Demo, clock::now_ms())
                        .map(|(key, _)| key)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .context("making the demo's API keys")?;
    let [ops, merchant_key, store_key] =
        <[String; 3]>::try_from(keys).map_err(|_| anyhow::anyhow!("expected three demo keys"))?;
    let json = serde_json::json!({
        "ops": ops,
        "merchant": {"id": merchant.as_str(), "key": &merchant_key},
        "store": {"id": store.as_str(), "key": store_key},
    });
    let path = data.join(DEMO_KEYS_FILE);
    write_private(&path, &serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((path, merchant_key))
}

/// Writes a file only its owner can read, even when it existed with a wider mode.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

async fn disposition_summary(c: &Coordinator) -> String {
    let ctx = c.ctx().clone();
    let counts = ctx
        .db
        .call(|conn| modori_coordinator::store::disposition_counts(conn))
        .await;
    match counts {
        Ok(counts) => {
            let parts: Vec<String> = counts.iter().map(|(d, n)| format!("{d}: {n}")).collect();
            format!(
                "Units by disposition across the fleet: {}.",
                parts.join(", ")
            )
        }
        Err(e) => format!("(summary unavailable: {e})"),
    }
}
