//! Personal data (Japan's APPI): customer data travels with a return to its site, and is
//! erased everywhere — the coordinator's rows, its queued commands and the site's copy — on a
//! customer's request or once the retention period is over.

use std::time::Duration;

use modori_runtime::clock;
use modori_shared::wire::payload::decode_command;
use modori_shared::CommandBody;
use modori_tests::{wait_for, TestFleet};

const TIMEOUT: Duration = Duration::from_secs(30);

async fn register(fleet: &TestFleet, customer: &str, name: &str) -> anyhow::Result<String> {
    let here = fleet.site(0).location;
    let body = format!(
        r#"{{"origin": {{"latitude": {}, "longitude": {}}},
            "lines": [{{"sku": "TEE-WHT-M", "qty": 1, "reason": "too_small"}}],
            "customer": {{"ref": "{customer}", "name": "{name}", "address": "東京都渋谷区 1-2-3"}}}}"#,
        here.lat(),
        here.lon()
    );
    let (status, text) = fleet.api("POST", "/api/v1/returns", Some(&body)).await?;
    anyhow::ensure!(status == 201, "{text}");
    Ok(serde_json::from_str::<serde_json::Value>(&text)?["rma"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// The customer name the site holds for `rma`.
async fn site_name(fleet: &TestFleet, rma: &str) -> anyhow::Result<Option<String>> {
    let rma = rma.to_owned();
    Ok(fleet
        .agent(0)
        .db()
        .call(move |c| {
            use rusqlite::OptionalExtension;
            c.query_row(
                "SELECT customer_name FROM expected_returns WHERE rma = ?1",
                [rma],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(modori_agent::store::StoreError::from)
        })
        .await?)
}

/// (customer_ref, name, address, the name in the queued command) at the coordinator.
async fn centre(
    fleet: &TestFleet,
    rma: &str,
) -> anyhow::Result<(String, Option<String>, Option<String>, Option<String>)> {
    let rma = rma.to_owned();
    Ok(fleet
        .coordinator()
        .ctx()
        .db
        .call(move |c| {
            let (customer, name, address, site, seq): (String, Option<String>, Option<String>, String, i64) = c.query_row(
                "SELECT customer_ref, customer_name, customer_address, site, command_seq FROM returns WHERE rma = ?1",
                [&rma],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            let payload: Vec<u8> =
                c.query_row("SELECT payload FROM commands WHERE site = ?1 AND seq = ?2", rusqlite::params![site, seq], |r| r.get(0))?;
            let queued = match decode_command(&payload) {
                Ok(CommandBody::ExpectedReturn { customer_name, .. }) => customer_name,
                _ => None,
            };
            Ok::<_, modori_coordinator::store::StoreError>((customer, name, address, queued))
        })
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_is_forgotten_everywhere_on_request() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    let rma = register(&fleet, "C-1001", "山田 太郎").await?;
    let other = register(&fleet, "C-2002", "佐藤 花子").await?;
    wait_for("the name at the site", TIMEOUT, || async {
        Ok(site_name(&fleet, &rma).await?.is_some())
    })
    .await?;
    assert_eq!(site_name(&fleet, &rma).await?.as_deref(), Some("山田 太郎"));

    let (status, text) = fleet
        .api("DELETE", "/api/v1/customers/C-1001", None)
        .await?;
    assert_eq!(status, 200, "{text}");
    let (customer, name, address, queued) = centre(&fleet, &rma).await?;
    assert!(customer.starts_with("anon-"), "{customer}");
    assert_eq!((name, address, queued), (None, None, None));
    wait_for("the site erased the name", TIMEOUT, || async {
        Ok(site_name(&fleet, &rma).await?.is_none())
    })
    .await?;

    // Another customer's data is untouched; an unknown customer is a clear 404.
    assert_eq!(
        site_name(&fleet, &other).await?.as_deref(),
        Some("佐藤 花子")
    );
    assert_eq!(centre(&fleet, &other).await?.0, "C-2002");
    let (status, _) = fleet
        .api("DELETE", "/api/v1/customers/C-1001", None)
        .await?;
    assert_eq!(status, 404, "already forgotten");
    fleet.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_pseudonymised_after_the_retention_period() -> anyhow::Result<()> {
    let fleet = TestFleet::start().await?;
    let rma = register(&fleet, "C-3003", "鈴木 一郎").await?;
    wait_for("the name at the site", TIMEOUT, || async {
        Ok(site_name(&fleet, &rma).await?.is_some())
    })
    .await?;
    let ctx = fleet.coordinator().ctx().clone();
    // Not yet: the retention period (90 days) has not passed.
    assert_eq!(
        modori_coordinator::privacy_sweep(&ctx, clock::now_ms()).await?,
        0
    );
    // 91 days later.
    let later = clock::now_ms() + 91 * 86_400_000;
    assert_eq!(modori_coordinator::privacy_sweep(&ctx, later).await?, 1);
    let (customer, name, _, queued) = centre(&fleet, &rma).await?;
    assert!(customer.starts_with("anon-") && name.is_none() && queued.is_none());
    wait_for("the site erased the name", TIMEOUT, || async {
        Ok(site_name(&fleet, &rma).await?.is_none())
    })
    .await?;

    // The site erases on its own too, after its retention period, even offline.
    let rma2 = register(&fleet, "C-4004", "高橋 次郎").await?;
    wait_for("the second name at the site", TIMEOUT, || async {
        Ok(site_name(&fleet, &rma2).await?.is_some())
    })
    .await?;
    let cutoff = clock::now_ms() + 1;
    let erased = fleet
        .agent(0)
        .db()
        .call(move |c| modori_agent::store::erase_personal_data_before(c, cutoff))
        .await?;
    assert_eq!(erased, 1);
    assert_eq!(site_name(&fleet, &rma2).await?, None);
    fleet.shutdown().await;
    Ok(())
}
