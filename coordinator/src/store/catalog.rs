//! Merchants' catalogues: stored here with their styles and queued to every site.

use modori_shared::domain::SiteId;
use modori_shared::op::CommandBody;
use modori_shared::wire::payload;

use modori_runtime::sqlite::{to_i64, to_u64};

use super::commands::enqueue;
use super::sql::{in_transaction, Sql};
use super::{Queued, StoreError};

/// Stores a merchant's catalogue and queues it to every site (in commands of at most
/// `CATALOG_ITEMS_PER_COMMAND_MAX` items), in one transaction. Returns each site's last seq.
pub fn put_catalog(
    conn: &mut dyn Sql,
    merchant: &str,
    items: &[modori_shared::CatalogItem],
    sites: &[SiteId],
    now_ms: i64,
) -> Result<Queued, StoreError> {
    put_styled_catalog(conn, merchant, items, &[], sites, now_ms)
}

/// `put_catalog`, with each item's style (`styles[i]` for `items[i]`; an item past the end
/// of `styles` has none). Styles stay here: the command sent to the sites does not carry them.
pub fn put_styled_catalog(
    conn: &mut dyn Sql,
    merchant: &str,
    items: &[modori_shared::CatalogItem],
    styles: &[Option<String>],
    sites: &[SiteId],
    now_ms: i64,
) -> Result<Queued, StoreError> {
    in_transaction(conn, |tx| {
        put_items(tx, merchant, items, styles)?;
        let mut last = Queued::none();
        for site in sites {
            let mut seq = 0;
            for chunk in items.chunks(payload::CATALOG_ITEMS_PER_COMMAND_MAX) {
                let command = CommandBody::CatalogUpdate {
                    items: chunk.to_vec(),
                };
                seq = enqueue(tx, site, &command, now_ms)?;
            }
            last.push(site.clone(), seq);
        }
        Ok(last)
    })
}

/// Stores (or replaces) `merchant`'s `items`, each with its style (`styles[i]` for
/// `items[i]`), in the caller's transaction; queues nothing to the sites.
pub fn put_items(
    tx: &mut dyn Sql,
    merchant: &str,
    items: &[modori_shared::CatalogItem],
    styles: &[Option<String>],
) -> Result<(), StoreError> {
    for (n, i) in items.iter().enumerate() {
        let style = styles.get(n).and_then(Option::as_deref);
        tx.execute(
            "INSERT INTO catalog (merchant, sku, gtin14, category, price_yen, final_sale, needs_testing, style)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (merchant, sku) DO UPDATE SET gtin14 = excluded.gtin14, category = excluded.category,
               price_yen = excluded.price_yen, final_sale = excluded.final_sale, needs_testing = excluded.needs_testing,
               style = excluded.style",
            &[
                &merchant,
                &i.sku.as_str(),
                &i.gtin14,
                &i.category,
                &to_i64(i.price_yen),
                &i.final_sale,
                &i.needs_testing,
                &style,
            ],
        )?;
    }
    Ok(())
}

/// What a product is to the policy and routing: price, final sale, needs testing, category.
/// Without a merchant, the first merchant's (by name) product of that SKU.
pub fn product(
    conn: &mut dyn Sql,
    merchant: Option<&str>,
    sku: &str,
) -> Result<Option<(u64, bool, bool, String)>, StoreError> {
    let row: Option<(i64, bool, bool, String)> = conn.map_row_opt(
        "SELECT price_yen, final_sale, needs_testing, category FROM catalog
         WHERE sku = ?2 AND (CAST(?1 AS TEXT) IS NULL OR merchant = ?1) ORDER BY merchant LIMIT 1",
        &[&merchant, &sku],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(row.map(|(p, f, n, c)| (u64::try_from(p).unwrap_or(0), f, n, c)))
}

/// Whether `merchant` has a catalogue: then every SKU it takes back must be in it.
pub fn has_catalog(conn: &mut dyn Sql, merchant: &str) -> Result<bool, StoreError> {
    let n: i64 = conn.one_value(
        "SELECT COUNT(*) FROM catalog WHERE merchant = ?1",
        &[&merchant],
    )?;
    Ok(n > 0)
}

/// A merchant's catalogue, by SKU; at most `limit` items.
pub fn catalog(
    conn: &mut dyn Sql,
    merchant: &str,
    limit: usize,
) -> Result<Vec<modori_shared::CatalogItem>, StoreError> {
    let rows = conn.map_rows(
        "SELECT sku, gtin14, category, price_yen, final_sale, needs_testing FROM catalog
         WHERE merchant = ?1 ORDER BY sku LIMIT ?2",
        &[&merchant, &to_i64(limit as u64)],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<i64>(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for (sku, gtin14, category, price, final_sale, needs_testing) in rows {
        out.push(modori_shared::CatalogItem {
            sku: modori_shared::domain::Sku::new(sku)?,
            gtin14,
            category,
            price_yen: to_u64(price),
            final_sale,
            needs_testing,
        });
    }
    Ok(out)
}
