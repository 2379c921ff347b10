//! Catalogue styles: the group of variants (sizes, colours) of one product. Kept here only,
//! not sent to the sites: an exchange is decided at registration, never at a station.

use std::collections::BTreeMap;

use super::sql::Sql;
use super::StoreError;

/// The style of a SKU, when the catalogue gives it one (first merchant by id when none is named).
pub fn style(
    conn: &mut dyn Sql,
    merchant: Option<&str>,
    sku: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .map_row_opt(
            "SELECT style FROM catalog WHERE sku = ?2 AND (CAST(?1 AS TEXT) IS NULL OR merchant = ?1)
             ORDER BY merchant LIMIT 1",
            &[&merchant, &sku],
            |r| r.get::<Option<String>>(0),
        )?
        .flatten())
}

/// Every styled SKU of a merchant's catalogue, with its style.
pub fn styles(conn: &mut dyn Sql, merchant: &str) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(conn
        .map_rows(
            "SELECT sku, style FROM catalog WHERE merchant = ?1 AND style IS NOT NULL",
            &[&merchant],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .into_iter()
        .collect())
}

/// What the customer may take in exchange for `sku`: the other variants of its style that
/// are sold (not final sale), by SKU. Empty when `sku` has no style.
pub fn sellable_variants(
    conn: &mut dyn Sql,
    merchant: &str,
    sku: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(conn.map_rows(
        "SELECT v.sku FROM catalog r JOIN catalog v
           ON v.merchant = r.merchant AND v.style = r.style
         WHERE r.merchant = ?1 AND r.sku = ?2 AND v.sku <> r.sku AND v.final_sale = 0
         ORDER BY v.sku",
        &[&merchant, &sku],
        |r| r.get(0),
    )?)
}

/// Why `wanted` may not be given in exchange for the `returned` SKUs, if it may not: every
/// returned SKU with a style allows only SKUs of that style. SKUs without one allow any.
pub fn exchange_refusal(
    conn: &mut dyn Sql,
    merchant: Option<&str>,
    returned: &[String],
    wanted: &str,
) -> Result<Option<String>, StoreError> {
    let wanted_style = style(conn, merchant, wanted)?;
    for sku in returned {
        let Some(allowed) = style(conn, merchant, sku)? else {
            continue;
        };
        if wanted_style.as_deref() != Some(allowed.as_str()) {
            let has = match &wanted_style {
                Some(s) => format!("is of style {s}"),
                None => "has no style".to_owned(),
            };
            return Ok(Some(format!(
                "{wanted} {has}: {sku} is exchanged only for a variant of its style {allowed}"
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{init, migrations, put_styled_catalog};
    use modori_shared::domain::Sku;
    use modori_shared::CatalogItem;

    fn catalog(items: &[(&str, Option<&str>, bool)]) -> rusqlite::Connection {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        let (items, styles): (Vec<_>, Vec<_>) = items
            .iter()
            .map(|(sku, style, final_sale)| {
                (
                    CatalogItem {
                        sku: Sku::new(*sku).unwrap(),
                        gtin14: None,
                        category: "tops".into(),
                        price_yen: 1000,
                        final_sale: *final_sale,
                        needs_testing: false,
                    },
                    style.map(str::to_owned),
                )
            })
            .unzip();
        // No site to tell in this test: nothing queued to wake.
        let _ = put_styled_catalog(&mut conn, "brand-a", &items, &styles, &[], 0).unwrap();
        conn
    }

    #[test]
    fn every_styled_line_allows_only_its_style() {
        let mut conn = catalog(&[
            ("TEE-M", Some("TEE"), false),
            ("TEE-L", Some("TEE"), false),
            ("CAP", Some("CAP"), false),
            ("SOCK", None, false),
        ]);
        let m = Some("brand-a");
        let mut ask = |returned: &[&str], wanted: &str| {
            let returned: Vec<String> = returned.iter().map(|s| (*s).to_owned()).collect();
            exchange_refusal(&mut conn, m, &returned, wanted).unwrap()
        };
        assert_eq!(ask(&["TEE-M"], "TEE-L"), None);
        assert_eq!(ask(&["SOCK"], "CAP"), None);
        assert!(ask(&["TEE-M"], "SOCK").unwrap().contains("has no style"));
        // Lines of two styles: no one SKU is of both.
        let why = ask(&["TEE-M", "CAP"], "TEE-L").unwrap();
        assert!(why.contains("CAP"), "{why}");
    }

    #[test]
    fn the_sellable_variants_leave_out_final_sale_and_the_sku_itself() {
        let mut conn = catalog(&[
            ("TEE-M", Some("TEE"), false),
            ("TEE-L", Some("TEE"), false),
            ("TEE-S", Some("TEE"), true),
            ("SOCK", None, false),
        ]);
        assert_eq!(
            sellable_variants(&mut conn, "brand-a", "TEE-M").unwrap(),
            vec!["TEE-L"]
        );
        assert!(sellable_variants(&mut conn, "brand-a", "SOCK")
            .unwrap()
            .is_empty());
        assert!(sellable_variants(&mut conn, "brand-b", "TEE-M")
            .unwrap()
            .is_empty());
    }
}
