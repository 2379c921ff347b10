//! The store's functions that run through `store::sql::Sql` give the same answers on SQLite
//! and on a real PostgreSQL (`modori_tests::postgres`): each scenario runs on both, from a
//! freshly migrated database, and what it observes must be equal and as expected.

use std::sync::Arc;

use modori_coordinator::apikeys::{sha256_hex, ConfigKey, Scope, Source};
use modori_coordinator::store::sql::{in_transaction, Dialect, PgSql, SqlError};
use modori_coordinator::store::{apikeys, sessions};
use modori_tests::postgres::{same_on_both, target, Cluster};

#[test]
fn values_of_every_kind_cross_both_backends_unchanged() -> anyhow::Result<()> {
    let row = same_on_both(|c| {
        c.batch(match c.dialect() {
            Dialect::Sqlite => "CREATE TABLE kinds (i INTEGER, r REAL, s TEXT, b BLOB, n INTEGER)",
            Dialect::Postgres => {
                "CREATE TABLE kinds (i BIGINT, r DOUBLE PRECISION, s TEXT, b BYTEA, n BIGINT)"
            }
        })?;
        c.execute(
            "INSERT INTO kinds VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                &i64::MIN,
                &-0.25f64,
                &"戻り '?1'",
                &vec![0u8, 1, 255],
                &None::<i64>,
            ],
        )?;
        let row = c.query_one(
            "SELECT i, r, s, b, n, COUNT(*) OVER (), s = ?1 FROM kinds",
            &[&"戻り '?1'"],
        )?;
        Ok((
            row.get::<i64>(0)?,
            row.get::<f64>(1)?,
            row.get::<String>(2)?,
            row.get::<Vec<u8>>(3)?,
            row.get::<Option<i64>>(4)?,
            row.get::<i64>(5)?,
            row.get::<bool>(6)?,
        ))
    })?;
    assert_eq!(
        row,
        (
            i64::MIN,
            -0.25,
            "戻り '?1'".into(),
            vec![0, 1, 255],
            None,
            1,
            true
        )
    );
    Ok(())
}

#[test]
fn a_failed_transaction_leaves_nothing_and_names_the_conflict() -> anyhow::Result<()> {
    let n = same_on_both(|c| {
        c.batch("CREATE TABLE once (k TEXT PRIMARY KEY)")?;
        let r: Result<(), SqlError> = in_transaction(c, |tx| {
            tx.execute("INSERT INTO once VALUES (?1)", &[&"a"])?;
            tx.execute("INSERT INTO once VALUES (?1)", &[&"a"])?;
            Ok(())
        });
        let e = r.expect_err("the second insert conflicts");
        anyhow::ensure!(e.is_conflict(), "not seen as a conflict: {e}");
        Ok(c.query_one("SELECT COUNT(*) FROM once", &[])?
            .get::<i64>(0)?)
    })?;
    assert_eq!(n, 0);
    Ok(())
}

#[test]
fn api_keys_are_made_found_listed_synced_and_revoked_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        let (secret, made) = apikeys::create(c, &Scope::Ops, Some("night shift"), Source::Api, 5)?;
        let found = apikeys::authenticate(c, &secret)?.map(|(id, s)| (id == made.id, s));
        let unknown = apikeys::authenticate(c, "modori_nope")?;
        // The only live ops key may not be revoked over the API; from the command line it may.
        let refused = apikeys::revoke(c, &made.id, 6, true).is_err();
        let configured = vec![
            ConfigKey {
                scope: Scope::Ops,
                sha256: sha256_hex("cfg-one"),
                label: None,
            },
            ConfigKey {
                scope: Scope::Ops,
                sha256: sha256_hex("cfg-two"),
                label: Some("two".into()),
            },
        ];
        let n_live = apikeys::sync_config_keys(c, &configured, 7)?;
        let n_live_after = apikeys::sync_config_keys(c, &configured[..1], 8)?;
        let two_gone = apikeys::authenticate(c, "cfg-two")?.is_none();
        let revoked = apikeys::revoke(c, &made.id, 9, true)?;
        let listed: Vec<(String, Option<i64>)> = apikeys::list(c, 10)?
            .into_iter()
            .map(|k| (k.source, k.revoked_ms))
            .collect();
        Ok((
            found,
            unknown,
            refused,
            n_live,
            n_live_after,
            two_gone,
            revoked.revoked_ms,
            listed,
        ))
    })?;
    assert_eq!(seen.0, Some((true, Scope::Ops)));
    assert_eq!(seen.1, None);
    assert!(seen.2, "the last live ops key was revoked over the API");
    assert_eq!((seen.3, seen.4), (2, 1));
    assert!(seen.5, "a key taken out of the config still authenticates");
    assert_eq!(seen.6, Some(9));
    assert_eq!(seen.7.len(), 3);
    Ok(())
}

#[test]
fn sessions_live_until_expiry_or_their_key_is_revoked_alike() -> anyhow::Result<()> {
    let seen = same_on_both(|c| {
        let (_, key) = apikeys::create(c, &Scope::Ops, None, Source::Api, 0)?;
        let (_, other) = apikeys::create(c, &Scope::Ops, None, Source::Api, 0)?;
        let session = |key_id: &str, expires_ms| sessions::Session {
            key_id: key_id.into(),
            scope: Scope::Ops,
            expires_ms,
        };
        let mut n_open = Vec::new();
        n_open.push(sessions::open(c, "old", &session(&key.id, 10), 0, 3)?);
        for (i, h) in ["a", "b", "c"].iter().enumerate() {
            n_open.push(sessions::open(
                c,
                h,
                &session(&key.id, 100 + i as i64),
                20,
                3,
            )?);
        }
        n_open.push(sessions::open(c, "d", &session(&other.id, 200), 21, 3)?);
        let a_made_room = sessions::live(c, "a", 21)?.is_none();
        let b = sessions::live(c, "b", 21)?.map(|s| (s.scope, s.expires_ms));
        apikeys::revoke(c, &other.id, 22, false)?;
        let d_after_revoke = sessions::live(c, "d", 22)?.is_some();
        let pruned = sessions::prune(c, 102)?;
        Ok((
            n_open,
            a_made_room,
            b,
            d_after_revoke,
            pruned,
            sessions::count(c)?,
        ))
    })?;
    assert_eq!(
        seen.0,
        vec![1, 1, 2, 3, 3],
        "the expired one pruned, then at most 3"
    );
    assert!(seen.1, "the session closest to expiry made room");
    assert_eq!(seen.2, Some((Scope::Ops, 101)));
    assert!(!seen.3, "a revoked key's session lives on");
    assert_eq!((seen.4, seen.5), (2, 0));
    Ok(())
}

#[test]
fn write_transactions_of_two_postgresql_connections_never_interleave() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::shared()? else {
        return Ok(());
    };
    let target = target(&cluster.url(&cluster.create_database()?))?;
    let connect = || -> anyhow::Result<PgSql> { Ok(PgSql::new(target.connect(None)?)) };
    let (mut a, mut b) = (connect()?, connect()?);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let note = |events: &Arc<std::sync::Mutex<Vec<&'static str>>>, e| {
        events.lock().expect("no test thread panicked").push(e);
    };
    let (inside_tx, inside_rx) = std::sync::mpsc::channel();
    let b_events = events.clone();
    let b_thread = std::thread::spawn(move || -> anyhow::Result<()> {
        inside_rx.recv()?;
        in_transaction(&mut b, |_| {
            note(&b_events, "b inside");
            Ok::<_, SqlError>(())
        })?;
        Ok(())
    });
    in_transaction(&mut a, |_| {
        note(&events, "a inside");
        inside_tx.send(()).expect("b waits");
        // Long enough for b to reach its BEGIN; b must still wait for a's end.
        std::thread::sleep(std::time::Duration::from_millis(300));
        note(&events, "a ends");
        Ok::<_, SqlError>(())
    })?;
    b_thread.join().expect("b does not panic")?;
    assert_eq!(
        *events.lock().expect("no test thread panicked"),
        ["a inside", "a ends", "b inside"]
    );
    Ok(())
}

#[test]
fn command_epochs_start_anew_and_carry_a_site_over_alike() -> anyhow::Result<()> {
    use modori_coordinator::store::command_epochs::{self, Lost, Resume};
    use modori_shared::domain::{Epoch, SiteId};
    let site = SiteId::new("sendai")?;
    let seen = same_on_both(|c| {
        let first = command_epochs::start(c, 1)?;
        c.execute(
            "INSERT INTO command_streams (site, head_seq, acked_seq) VALUES (?1, 3, 3)",
            &[&site.as_str()],
        )?;
        for seq in 1..=3i64 {
            c.execute(
                "INSERT INTO commands (site, seq, kind, payload, created_ms, epoch_ordinal)
                 VALUES (?1, ?2, 'forget_customer', ?3, 0, 1)",
                &[&site.as_str(), &seq, &vec![seq as u8]],
            )?;
        }
        let second = command_epochs::start(c, 2)?;
        let acked: i64 = c.one_value("SELECT acked_seq FROM command_streams", &[])?;
        let at = |c: &mut dyn modori_coordinator::store::sql::Sql, reported| {
            command_epochs::resume_point(c, &site, second, reported)
        };
        let resumes = vec![
            at(c, Some((first, 3)))?,
            at(c, Some((first, 4)))?,
            at(c, Some((Epoch(7), 2)))?,
            at(c, Some((second, 5)))?,
            at(c, None)?,
        ];
        let n_epochs: i64 = c.one_value("SELECT COUNT(*) FROM command_epochs", &[])?;
        // The epochs are random: compare what does not depend on them.
        Ok((first != second, acked, n_epochs, resumes.len(), {
            resumes
                .into_iter()
                .map(|r| match r {
                    Resume::CarriedOver {
                        from_epoch,
                        after_seq,
                    } => {
                        format!("carried {} {after_seq}", from_epoch == first)
                    }
                    Resume::FromScratch {
                        lost:
                            Some(Lost {
                                applied_seq,
                                held_seq,
                                ..
                            }),
                    } => format!("scratch lost {applied_seq} held {held_seq}"),
                    Resume::FromScratch { lost: None } => "scratch".into(),
                    Resume::Current { after_seq } => format!("current {after_seq}"),
                })
                .collect::<Vec<_>>()
        }))
    })?;
    assert_eq!(
        seen,
        (
            true,
            0,
            2,
            5,
            vec![
                "carried true 3".to_owned(),
                "scratch lost 4 held 3".into(),
                "scratch lost 2 held 0".into(),
                "current 5".into(),
                "scratch".into(),
            ]
        )
    );
    Ok(())
}

#[test]
fn commands_are_queued_sent_and_acknowledged_alike() -> anyhow::Result<()> {
    use modori_coordinator::store::transfers::{self, OrderError};
    use modori_coordinator::store::{
        command_heads, command_stream, load_commands, set_command_acked, sync_disposition_rules,
    };
    use modori_shared::domain::{Lpn, RmaId, SiteId, Sku};
    use modori_shared::DispositionRule;
    let (osaka, sendai) = (SiteId::new("osaka")?, SiteId::new("sendai")?);
    let sites = [osaka.clone(), sendai.clone()];
    let seen = same_on_both(|c| {
        // The rules go to each site once; unchanged rules are not sent again.
        let rules = DispositionRule::defaults();
        let first = sync_disposition_rules(c, &rules, &sites, 1)?;
        let again = sync_disposition_rules(c, &rules, &sites, 2)?;
        // A transfer is ordered from the unit's holder; refusals change nothing.
        c.execute(
            "INSERT INTO units (lpn, site, sku, state, updated_ms) VALUES (?1, 'osaka', 'TEE-1', 'received', 0)",
            &[&"LPN-OSA-1"],
        )?;
        c.execute(
            "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms)
             VALUES ('RMA-1', 'sendai', '100-0001', '[]', 'nearest', 0, 0)",
            &[],
        )?;
        let lpn = Lpn::new("LPN-OSA-1")?;
        let unknown = matches!(
            transfers::order_transfer(c, &Lpn::new("LPN-NONE")?, &sendai, &sites, 3),
            Err(OrderError::UnknownUnit(_))
        );
        let same = matches!(
            transfers::order_transfer(c, &lpn, &osaka, &sites, 3),
            Err(OrderError::SameSite { .. })
        );
        let ordered = transfers::order_transfer(c, &lpn, &sendai, &sites, 3)?;
        let exchange = transfers::order_exchange(c, &RmaId::new("RMA-1")?, &Sku::new("TEE-2")?, 4)?;
        let exchange_sku: String =
            c.one_value("SELECT exchange_sku FROM returns WHERE rma = 'RMA-1'", &[])?;
        let mut heads = command_heads(c)?;
        heads.sort();
        let sent: Vec<u64> = load_commands(c, &osaka, 1, 10)?
            .into_iter()
            .map(|s| s.seq)
            .collect();
        set_command_acked(c, &osaka, 2)?;
        // A catalogue is stored and queued to every site in one transaction.
        let item = modori_shared::CatalogItem {
            sku: Sku::new("TEE-3")?,
            gtin14: None,
            category: "tee".into(),
            price_yen: 2900,
            final_sale: false,
            needs_testing: false,
        };
        let catalog_queued = modori_coordinator::store::put_styled_catalog(
            c,
            "brand-a",
            std::slice::from_ref(&item),
            &[Some("TEE".into())],
            &sites,
            5,
        )?;
        let stored = modori_coordinator::store::catalog(c, "brand-a", 10)?;
        use modori_coordinator::store::catalog::{has_catalog, product};
        let looked_up = (
            product(c, Some("brand-a"), "TEE-3")?,
            product(c, None, "TEE-3")?.is_some(),
            product(c, Some("brand-b"), "TEE-3")?,
            has_catalog(c, "brand-a")?,
            has_catalog(c, "brand-b")?,
        );
        Ok((
            first.len(),
            again.len(),
            unknown,
            same,
            ordered,
            exchange,
            exchange_sku,
            heads,
            sent,
            command_stream(c, &osaka)?,
            command_stream(c, &SiteId::new("kobe")?)?,
            (catalog_queued.to_vec(), stored == vec![item], looked_up),
        ))
    })?;
    assert_eq!((seen.0, seen.1), (2, 0));
    assert!(seen.2 && seen.3, "a refused transfer was ordered");
    assert_eq!(seen.4, (osaka.clone(), 2));
    assert_eq!(seen.5, (sendai.clone(), 2));
    assert_eq!(seen.6, "TEE-2");
    assert_eq!(seen.7, vec![(osaka.clone(), 2), (sendai.clone(), 2)]);
    assert_eq!(seen.8, vec![1, 2]);
    assert_eq!(
        (seen.9, seen.10),
        ((3, 2), (0, 0)),
        "read after the catalogue was queued"
    );
    assert_eq!(seen.11 .0, vec![(osaka, 3), (sendai, 3)]);
    assert!(seen.11 .1, "the catalogue stored is not the one put");
    assert_eq!(
        seen.11 .2,
        (
            Some((2900, false, false, "tee".to_owned())),
            true,
            None,
            true,
            false
        )
    );
    Ok(())
}
