//! The alert, webhook, photo, catalogue, portal-settings, counter-check and match-suggestion
//! store modules give the same answers on SQLite and on a real PostgreSQL: each scenario runs
//! on both from a freshly migrated database (`modori_tests::postgres::same_on_both`), and
//! what it observes must be equal and as expected.

use std::collections::BTreeMap;

use modori_coordinator::store::alert_notices::{self, Attempt, Raised, Recipient};
use modori_coordinator::store::sql::Sql;
use modori_coordinator::store::{
    alert_silences, catalog, category_names, counter_checks, match_suggestions, merchant_portal,
    photos, styles, webhooks,
};
use modori_shared::domain::Sku;
use modori_shared::CatalogItem;
use modori_tests::postgres::same_on_both;

fn raised(key: &str, n: u32) -> Raised {
    Raised {
        key: key.into(),
        message: format!("{key} is up"),
        params: format!("{{\"n\":{n}}}"),
    }
}

fn recipients() -> Vec<Recipient> {
    vec![
        Recipient {
            channel: alert_notices::EMAIL,
            to: "ops@example.jp".into(),
        },
        Recipient {
            channel: alert_notices::WEBHOOK,
            to: "https://hooks.example.jp/x".into(),
        },
    ]
}

/// A due notice as seen: alert, event, channel, figures, raised at, attempts.
type DueSeen = (String, String, String, Option<String>, i64, u32);

#[test]
fn alerts_are_silenced_raised_told_retried_and_cleared_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        alert_silences::silence(
            c,
            "lag_ops:tokyo",
            alert_silences::MUTED,
            "k1",
            10,
            Some(500),
        )?;
        alert_silences::silence(
            c,
            "device_down:kobe:p1",
            alert_silences::ACKNOWLEDGED,
            "k2",
            10,
            None,
        )?;
        // Silenced again: the new silence replaces the old one, which stays on record.
        alert_silences::silence(
            c,
            "lag_ops:tokyo",
            alert_silences::MUTED,
            "k3",
            20,
            Some(400),
        )?;
        let in_force: Vec<(String, String, String, Option<i64>)> = alert_silences::in_force(c, 30)?
            .into_iter()
            .map(|s| (s.alert, s.kind, s.by_key_id, s.until_ms))
            .collect();

        let up = [
            raised("site_offline:osaka", 1),
            raised("lag_ops:tokyo", 2),
            raised("device_down:kobe:p1", 3),
        ];
        let first = alert_notices::reconcile(c, &up, &recipients(), Some(1_000), true, 100)?;
        // The mute has ended by 600: the lag is told now, as a raise; osaka is not due again.
        let second = alert_notices::reconcile(c, &up[..2], &recipients(), Some(1_000), true, 600)?;
        // Osaka is reminded after the interval; the others clear (kobe never told, so quiet).
        let third = alert_notices::reconcile(c, &up[..1], &recipients(), Some(1_000), true, 1_200)?;
        // A new raise of the same alert after it cleared is a new raise.
        let fourth = alert_notices::reconcile(c, &up[1..2], &recipients(), None, false, 1_300)?;

        let due = alert_notices::due(c, 1_300, 100)?;
        let due_seen: Vec<DueSeen> = due
            .iter()
            .map(|d| {
                (
                    d.alert.clone(),
                    d.event.clone(),
                    d.channel.clone(),
                    d.params.clone(),
                    d.raised_ms,
                    d.attempts,
                )
            })
            .collect();
        let failed = Attempt::Failed {
            error: "connection refused".into(),
            retry_at_ms: Some(2_000),
        };
        let given_up = Attempt::Failed {
            error: "550 no such user".into(),
            retry_at_ms: None,
        };
        let statuses = (
            alert_notices::record(c, due[0].id, &failed, 1_300)?,
            alert_notices::record(c, due[1].id, &Attempt::Sent, 1_300)?,
            alert_notices::record(c, due[2].id, &given_up, 1_300)?,
        );
        let waiting = alert_notices::due(c, 1_999, 100)?.len();
        let retried: Vec<(i64, u32)> = alert_notices::due(c, 2_000, 100)?
            .iter()
            .map(|d| (d.id, d.attempts))
            .collect();
        let done_ms: Vec<Option<i64>> = c
            .query(
                "SELECT done_ms FROM alert_notices WHERE id IN (?1, ?2, ?3) ORDER BY id",
                &[&due[0].id, &due[1].id, &due[2].id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<_, _>>()?;

        // Kobe's condition cleared: its acknowledgement ends; the lag's mute is not ended so.
        let cleared = ["device_down:kobe:p1".to_owned(), "lag_ops:tokyo".to_owned()];
        let n_ended = alert_silences::end_acknowledged(c, &cleared, 1_400)?;
        let n_ended_none = alert_silences::end_acknowledged(c, &[], 1_400)?;
        let left: Vec<String> = alert_silences::in_force(c, 300)?
            .into_iter()
            .map(|s| s.alert)
            .collect();
        // The lag is acknowledged while its notices wait: they are never sent.
        alert_silences::silence(
            c,
            "lag_ops:tokyo",
            alert_silences::ACKNOWLEDGED,
            "k4",
            1_500,
            None,
        )?;
        let after_ack = alert_notices::due(c, 3_000, 100)?.len();
        let all = alert_notices::all(c)?;
        Ok((
            in_force,
            (first, second, third, fourth),
            due_seen,
            statuses,
            waiting,
            retried,
            done_ms,
            (n_ended, n_ended_none, left, after_ack),
            all,
        ))
    })?;
    let (in_force, passes, due, statuses, waiting, retried, done_ms, ends, all) = seen;
    assert_eq!(
        in_force,
        [
            (
                "device_down:kobe:p1".into(),
                "acknowledged".into(),
                "k2".into(),
                None
            ),
            (
                "lag_ops:tokyo".into(),
                "muted".into(),
                "k3".into(),
                Some(400)
            ),
        ]
    );
    let counts = |r: &alert_notices::Reconciled| (r.n_raised, r.n_cleared, r.n_queued);
    assert_eq!(counts(&passes.0), (3, 0, 2), "only osaka is told");
    assert_eq!(
        counts(&passes.1),
        (0, 1, 2),
        "the lag told, kobe cleared quietly"
    );
    assert_eq!(
        counts(&passes.2),
        (0, 1, 4),
        "osaka reminded, the lag cleared and told"
    );
    assert_eq!(counts(&passes.3), (1, 0, 2), "the lag raised anew");
    let events: Vec<(&str, &str, &str)> = due
        .iter()
        .map(|d| (d.0.as_str(), d.1.as_str(), d.2.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("site_offline:osaka", "raised", "email"),
            ("site_offline:osaka", "raised", "webhook"),
            ("lag_ops:tokyo", "raised", "email"),
            ("lag_ops:tokyo", "raised", "webhook"),
            ("site_offline:osaka", "reminder", "email"),
            ("site_offline:osaka", "reminder", "webhook"),
            ("lag_ops:tokyo", "cleared", "email"),
            ("lag_ops:tokyo", "cleared", "webhook"),
            ("lag_ops:tokyo", "raised", "email"),
            ("lag_ops:tokyo", "raised", "webhook"),
        ]
    );
    assert_eq!(due[0].3.as_deref(), Some("{\"n\":1}"));
    assert_eq!(
        due[6].3.as_deref(),
        Some("{\"n\":2}"),
        "a clearing keeps the raise's figures"
    );
    assert_eq!((due[0].4, due[8].4), (100, 1_300));
    assert!(due.iter().all(|d| d.5 == 0));
    assert_eq!(statuses, ("queued", "sent", "failed"));
    assert_eq!(waiting, 7, "the failed one waits for its retry");
    assert_eq!(retried.len(), 8);
    assert!(retried.contains(&(1, 1)), "{retried:?}");
    assert_eq!(done_ms, [None, Some(1_300), Some(1_300)]);
    // Osaka's three queued notices are still due; the lag's five are silenced.
    assert_eq!(ends, (1, 0, vec!["lag_ops:tokyo".to_owned()], 3));
    assert_eq!(all.len(), 10);
    let statuses: Vec<&str> = all.iter().map(|n| n.3.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "queued", "sent", "failed", "silenced", "queued", "queued", "silenced", "silenced",
            "silenced", "silenced"
        ]
    );
    assert_eq!((all[0].4, all[1].4, all[3].4), (1, 1, 0));
    Ok(())
}

/// A return of `merchant` with its registration event, as the apply path leaves them.
fn a_return(c: &mut dyn Sql, rma: &str, merchant: &str, at: i64) -> anyhow::Result<()> {
    c.execute(
        "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms,
                              status, merchant)
         VALUES (?1, 'osaka', 'api', '[]', 'r', 1, ?2, 'expected', ?3)",
        &[&rma, &at, &merchant],
    )?;
    c.execute(
        "INSERT INTO return_events (rma, kind, site, detail, at_ms, recorded_ms)
         VALUES (?1, 'registered', 'osaka', NULL, ?2, ?3)",
        &[&rma, &at, &(at + 1)],
    )?;
    Ok(())
}

#[test]
fn webhook_cursors_move_on_delivery_and_back_off_on_failure_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        a_return(c, "RMA-A1", "brand-a", 10)?;
        a_return(c, "RMA-B1", "brand-b", 20)?;
        a_return(c, "RMA-A2", "brand-a", 30)?;
        let start = webhooks::cursor(c, "brand-a")?;
        let (first_id, body) = webhooks::next_event(c, "brand-a", start.last_event_id)?
            .ok_or_else(|| anyhow::anyhow!("no first event"))?;
        let body: serde_json::Value = serde_json::from_slice(&body)?;
        webhooks::record_attempt(c, "brand-a", first_id, Err("503".into()), 1_000)?;
        webhooks::record_attempt(c, "brand-a", first_id, Err("503".into()), 2_000)?;
        let backing_off = webhooks::cursor(c, "brand-a")?;
        webhooks::record_attempt(c, "brand-a", first_id, Ok(()), 3_000)?;
        let delivered = webhooks::cursor(c, "brand-a")?;
        let (second_id, second) = webhooks::next_event(c, "brand-a", delivered.last_event_id)?
            .ok_or_else(|| anyhow::anyhow!("no second event"))?;
        let second: serde_json::Value = serde_json::from_slice(&second)?;
        webhooks::record_attempt(c, "brand-a", second_id, Ok(()), 4_000)?;
        let end = webhooks::next_event(c, "brand-a", second_id)?;
        let (n_delivered, last_error): (i64, Option<String>) = {
            let r = c.query_one(
                "SELECT delivered, last_error FROM webhook_cursors WHERE merchant = ?1",
                &[&"brand-a"],
            )?;
            (r.get(0)?, r.get(1)?)
        };
        Ok((
            start,
            body,
            backing_off.attempts,
            backing_off.next_attempt_ms > 2_000,
            backing_off.last_event_id,
            delivered,
            second["rma"].clone(),
            end,
            n_delivered,
            last_error,
        ))
    })?;
    let (start, body, attempts, later, stayed, delivered, second_rma, end, n, last_error) = seen;
    assert_eq!(start, webhooks::Cursor::default());
    assert_eq!(body["rma"], "RMA-A1");
    assert_eq!(body["merchant"], "brand-a");
    assert_eq!(body["kind"], "registered");
    assert_eq!(body["site"], "osaka");
    assert_eq!(body["detail"], serde_json::Value::Null);
    assert_eq!(
        (body["at_ms"].as_i64(), body["recorded_ms"].as_i64()),
        (Some(10), Some(11))
    );
    assert_eq!(body["return_status"], "expected");
    assert_eq!((attempts, later, stayed), (2, true, 0));
    assert_eq!((delivered.attempts, delivered.next_attempt_ms), (0, 0));
    assert!(delivered.last_event_id > 0);
    assert_eq!(second_rma, "RMA-A2", "brand-b's event is not brand-a's");
    assert_eq!(end, None);
    assert_eq!((n, last_error), (2, None));
    Ok(())
}

fn upload<'a>(
    id: &'a str,
    order_ref: &'a str,
    sku: &'a str,
    bytes: &'a [u8],
) -> photos::Upload<'a> {
    photos::Upload {
        upload: id,
        merchant: "brand-a",
        order_ref,
        sku,
        content_type: "image/png",
        bytes,
    }
}

#[test]
fn photos_are_uploaded_attached_shown_and_erased_alike() -> anyhow::Result<()> {
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\x00\xff";
    let seen = same_on_both(|c| {
        photos::put_upload(c, &upload("u-old", "O-1", "TEE", png), 1_000, 0)?;
        photos::put_upload(c, &upload("u1", "O-1", "TEE", png), 90_000, 50_000)?;
        photos::put_upload(c, &upload("u2", "O-1", "CAP", b"\x00"), 90_000, 50_000)?;
        photos::put_upload(c, &upload("u3", "O-2", "TEE", b"\x01"), 90_000, 50_000)?;
        let ids: Vec<String> = ["u-old", "u1", "u2", "nope"].map(String::from).to_vec();
        let pending = photos::pending(c, "brand-a", "O-1", "TEE", &ids)?;
        let words = |sku, note| photos::LineWords {
            merchant: "brand-a",
            order_ref: "O-1",
            sku,
            note,
            uploads: &ids,
        };
        let n_tee = photos::attach(c, "RMA-1", &words("TEE", "縫い目がほつれています"))?;
        let n_cap = photos::attach(c, "RMA-1", &words("CAP", ""))?;
        // A second note for the line replaces the first; the photos stay attached once.
        let n_again = photos::attach(c, "RMA-2", &words("TEE", "色違い"))?;
        let media = photos::of_return(c, "RMA-1")?;
        let shown = photos::photo(c, "RMA-1", media[0].photos[0])?;
        let other = photos::photo(c, "RMA-2", media[0].photos[0])?;
        let media_2 = photos::of_return(c, "RMA-2")?;
        c.execute(
            "INSERT INTO orders (merchant, order_ref, customer_ref, ordered_ms, lines_json, updated_ms)
             VALUES ('brand-a', 'O-2', 'cust-9', 1, '[]', 1)",
            &[],
        )?;
        let n_customer = photos::erase_customer_uploads(c, "cust-9")?;
        let n_other = photos::erase_customer_uploads(c, "cust-0")?;
        let n_erased = photos::erase_return(c, "RMA-1")?;
        let after = photos::of_return(c, "RMA-1")?;
        let n_left: i64 = c.one_value("SELECT COUNT(*) FROM return_photos", &[])?;
        Ok((
            pending,
            (n_tee, n_cap, n_again),
            media
                .into_iter()
                .map(|l| (l.sku, l.note, l.photos.len()))
                .collect::<Vec<_>>(),
            shown,
            other,
            media_2
                .into_iter()
                .map(|l| (l.sku, l.note, l.photos.len()))
                .collect::<Vec<_>>(),
            (n_customer, n_other, n_erased, after.len(), n_left),
        ))
    })?;
    assert_eq!(
        seen.0,
        ["u1"],
        "the stale upload was deleted, the other line's is not this one's"
    );
    assert_eq!(seen.1, (1, 1, 0));
    assert_eq!(
        seen.2,
        [
            ("TEE".into(), Some("縫い目がほつれています".into()), 1),
            ("CAP".into(), None, 1)
        ]
    );
    assert_eq!(seen.3, Some(("image/png".into(), png.to_vec())));
    assert_eq!(seen.4, None, "a photo is shown only under its own return");
    assert_eq!(seen.5, [("TEE".into(), Some("色違い".into()), 0)]);
    // u3 (O-2, the customer's order); RMA-1's two photos and one note.
    assert_eq!(seen.6, (1, 0, 3, 0, 0));
    Ok(())
}

fn item(
    sku: &str,
    category: &str,
    price_yen: u64,
    final_sale: bool,
) -> anyhow::Result<CatalogItem> {
    Ok(CatalogItem {
        sku: Sku::new(sku)?,
        gtin14: (sku == "TEE-M").then(|| "04901234567894".to_owned()),
        category: category.into(),
        price_yen,
        final_sale,
        needs_testing: sku == "CAP",
    })
}

fn named(ja: Option<&str>, en: Option<&str>) -> category_names::Names {
    category_names::Names {
        ja: ja.map(str::to_owned),
        en: en.map(str::to_owned),
    }
}

#[test]
fn catalogues_styles_and_category_names_are_stored_and_read_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        let items = vec![
            item("TEE-M", "tops", 2_990, false)?,
            item("TEE-L", "tops", 2_990, false)?,
            item("TEE-S", "tops", 1_990, true)?,
            item("CAP", "hats", 1_500, false)?,
            item("SOCK", "socks", 500, false)?,
        ];
        let styled = |s: &str| Some(s.to_owned());
        let with_styles = [styled("TEE"), styled("TEE"), styled("TEE"), styled("CAP")];
        catalog::put_items(c, "brand-b", &items[..2], &[styled("TEE-B"), None])?;
        catalog::put_items(c, "brand-a", &items, &[])?;
        // Stored again with styles: the rows are replaced, not added.
        catalog::put_items(c, "brand-a", &items, &with_styles)?;
        let listed = catalog::catalog(c, "brand-a", 10)?;
        let first_two = catalog::catalog(c, "brand-a", 2)?;
        let style_of = (
            styles::style(c, Some("brand-a"), "TEE-M")?,
            styles::style(c, None, "TEE-M")?,
            styles::style(c, Some("brand-b"), "TEE-L")?,
            styles::style(c, None, "SOCK")?,
            styles::style(c, None, "NOPE")?,
        );
        let styled_skus = styles::styles(c, "brand-a")?;
        let variants = (
            styles::sellable_variants(c, "brand-a", "TEE-M")?,
            styles::sellable_variants(c, "brand-a", "SOCK")?,
        );
        let refusals = (
            styles::exchange_refusal(c, Some("brand-a"), &["TEE-M".into()], "TEE-L")?,
            styles::exchange_refusal(c, Some("brand-a"), &["TEE-M".into()], "SOCK")?,
            styles::exchange_refusal(c, Some("brand-a"), &["SOCK".into()], "CAP")?,
        );

        let tee = |n| BTreeMap::from([("tops".to_owned(), n)]);
        category_names::put(c, "brand-b", &tee(named(Some("トップス B"), None)))?;
        category_names::put(c, "brand-a", &tee(named(Some("トップス"), Some("Tops"))))?;
        category_names::put(c, "brand-a", &tee(named(None, Some("Shirts"))))?;
        category_names::put(
            c,
            "brand-b",
            &BTreeMap::from([("hats".to_owned(), named(None, Some("Hats")))]),
        )?;
        let names = (
            category_names::of_merchant(c, "brand-a")?,
            category_names::of_merchant(c, "brand-c")?,
            category_names::fleet_wide(c)?,
        );
        Ok((
            listed,
            first_two.len(),
            style_of,
            styled_skus,
            variants,
            refusals,
            names,
        ))
    })?;
    let (listed, n_first, style_of, styled_skus, variants, refusals, names) = seen;
    let skus: Vec<&str> = listed.iter().map(|i| i.sku.as_str()).collect();
    assert_eq!(skus, ["CAP", "SOCK", "TEE-L", "TEE-M", "TEE-S"]);
    assert_eq!(listed[3], item("TEE-M", "tops", 2_990, false)?);
    assert!(listed[0].needs_testing && listed[4].final_sale);
    assert_eq!(n_first, 2);
    assert_eq!(
        style_of,
        (Some("TEE".into()), Some("TEE".into()), None, None, None)
    );
    assert_eq!(
        styled_skus,
        BTreeMap::from([
            ("CAP".into(), "CAP".into()),
            ("TEE-L".into(), "TEE".into()),
            ("TEE-M".into(), "TEE".into()),
            ("TEE-S".into(), "TEE".into()),
        ])
    );
    assert_eq!(variants, (vec!["TEE-L".to_owned()], Vec::new()));
    assert_eq!(refusals.0, None);
    assert!(refusals.1.is_some_and(|why| why.contains("has no style")));
    assert_eq!(refusals.2, None);
    assert_eq!(names.0["tops"], named(Some("トップス"), Some("Shirts")));
    assert!(names.1.is_empty());
    assert_eq!(names.2["tops"], named(Some("トップス"), Some("Shirts")));
    assert_eq!(names.2["hats"], named(None, Some("Hats")));
    Ok(())
}

#[test]
fn portal_settings_are_seeded_by_the_config_until_the_api_sets_them_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        merchant_portal::seed(c, "brand-a", "{\"a\":1}", 1)?;
        merchant_portal::seed(c, "brand-a", "{\"a\":2}", 2)?;
        let seeded = merchant_portal::get(c, "brand-a")?;
        merchant_portal::put(c, "brand-a", "{\"api\":1}", 3)?;
        merchant_portal::seed(c, "brand-a", "{\"a\":3}", 4)?;
        merchant_portal::put(c, "brand-b", "{\"api\":2}", 5)?;
        let row = c.query_one(
            "SELECT source, updated_ms FROM merchant_portal WHERE merchant = ?1",
            &[&"brand-a"],
        )?;
        Ok((
            seeded,
            merchant_portal::get(c, "brand-a")?,
            merchant_portal::get(c, "brand-b")?,
            merchant_portal::get(c, "brand-c")?,
            (row.get::<String>(0)?, row.get::<i64>(1)?),
        ))
    })?;
    assert_eq!(
        seen,
        (
            Some("{\"a\":2}".into()),
            Some("{\"api\":1}".into()),
            Some("{\"api\":2}".into()),
            None,
            ("api".into(), 3)
        )
    );
    Ok(())
}

#[test]
fn store_checks_count_the_sites_worse_grades_alike() -> anyhow::Result<()> {
    let new = r#"{"tags_on":true,"opened":false,"visibly_used":false,"damaged":false}"#;
    let used = r#"{"tags_on":false,"opened":true,"visibly_used":true,"damaged":false}"#;
    let seen = same_on_both(|c| {
        for (rma, store, condition) in [
            ("R-1", Some("shibuya"), Some(new)),
            ("R-2", Some("shibuya"), Some(used)),
            ("R-3", Some("umeda"), Some(new)),
            ("R-4", Some("umeda"), None),
            ("R-5", None, Some(new)),
        ] {
            c.execute(
                "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq,
                                      created_ms, origin_store, store_condition)
                 VALUES (?1, 'osaka', 'store', '[]', 'r', 1, 1, ?2, ?3)",
                &[&rma, &store, &condition],
            )?;
        }
        for (lpn, rma, grade) in [
            ("L-1", "R-1", Some("A")),
            ("L-2", "R-1", Some("B")),
            ("L-3", "R-2", Some("C")),
            ("L-4", "R-2", None),
            ("L-5", "R-4", Some("X")),
            ("L-6", "R-5", Some("X")),
        ] {
            c.execute(
                "INSERT INTO units (lpn, site, sku, state, updated_ms, rma, grade)
                 VALUES (?1, 'osaka', 'TEE', 'graded', 1, ?2, ?3)",
                &[&lpn, &rma, &grade],
            )?;
        }
        Ok(counter_checks::store_checks(c)?)
    })?;
    let got: Vec<(&str, u64, u64, u64)> = seen
        .iter()
        .map(|s| {
            (
                s.store.as_str(),
                s.returns_checked,
                s.units_graded,
                s.mismatches,
            )
        })
        .collect();
    assert_eq!(got, [("shibuya", 2, 3, 1), ("umeda", 1, 0, 0)]);
    Ok(())
}

/// A suggestion as seen: rma, status, site, order, customer name, by reference.
type Seen = (String, String, String, Option<String>, Option<String>, bool);

#[test]
fn a_quarantined_units_suggestions_rank_references_first_alike() -> anyhow::Result<()> {
    let tee = r#"[{"sku":"TEE","qty":1,"reason":"too_small"}]"#;
    let cap = r#"[{"sku":"CAP","qty":1,"reason":"too_small"}]"#;
    let seen = same_on_both(|c| {
        for (rma, site, lines, status, order, at, name) in [
            ("R-REF", "tokyo", tee, "expected", "ORD-9", 1, Some("山田")),
            ("R-SKU-OLD", "osaka", tee, "expected", "ORD-1", 2, None),
            (
                "R-SKU-NEW",
                "osaka",
                tee,
                "receiving",
                "ORD-2",
                3,
                Some("佐藤"),
            ),
            ("R-OTHER-SKU", "osaka", cap, "expected", "ORD-3", 4, None),
            ("R-CLOSED", "osaka", tee, "cancelled", "ORD-4", 5, None),
            ("R-ELSEWHERE", "tokyo", tee, "expected", "ORD-5", 6, None),
        ] {
            c.execute(
                "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq,
                                      created_ms, status, order_ref, customer_name)
                 VALUES (?1, ?2, 'x', ?3, 'r', 1, ?4, ?5, ?6, ?7)",
                &[&rma, &site, &lines, &at, &status, &order, &name],
            )?;
        }
        c.execute(
            "INSERT INTO units (lpn, site, sku, state, updated_ms, quarantine, receipt, parcel_ref)
             VALUES ('L-1', 'osaka', 'TEE', 'received', 1, 1, 'unidentified', 'ORD-9')",
            &[],
        )?;
        let all: Vec<Seen> = match_suggestions::for_unit(c, "L-1", 10)?
            .into_iter()
            .map(|s| {
                (
                    s.rma,
                    s.status,
                    s.site,
                    s.order_ref,
                    s.customer_name,
                    s.by_reference,
                )
            })
            .collect();
        Ok((
            all,
            match_suggestions::for_unit(c, "L-1", 1)?.len(),
            match_suggestions::for_unit(c, "L-NONE", 10)?.len(),
        ))
    })?;
    let s = |rma: &str, status: &str, site: &str, order: &str, name: Option<&str>, by_ref| {
        (
            rma.to_owned(),
            status.to_owned(),
            site.to_owned(),
            Some(order.to_owned()),
            name.map(str::to_owned),
            by_ref,
        )
    };
    assert_eq!(
        seen.0,
        [
            s("R-REF", "expected", "tokyo", "ORD-9", Some("山田"), true),
            s(
                "R-SKU-NEW",
                "receiving",
                "osaka",
                "ORD-2",
                Some("佐藤"),
                false
            ),
            s("R-SKU-OLD", "expected", "osaka", "ORD-1", None, false),
        ]
    );
    assert_eq!((seen.1, seen.2), (1, 0));
    Ok(())
}
