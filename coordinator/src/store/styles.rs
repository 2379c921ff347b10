//! Catalogue styles: the group of variants (sizes, colours) of one product. Kept here only,
//! not sent to the sites: an exchange is decided at registration, never at a station.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// The style of a SKU, when the catalogue gives it one (first merchant by id when none is named).
pub fn style(
    conn: &Connection,
    merchant: Option<&str>,
    sku: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT style FROM catalog WHERE sku = ?2 AND (?1 IS NULL OR merchant = ?1)
             ORDER BY merchant LIMIT 1",
            params![merchant, sku],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
}

/// Every styled SKU of a merchant's catalogue, with its style.
pub fn styles(conn: &Connection, merchant: &str) -> Result<BTreeMap<String, String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT sku, style FROM catalog WHERE merchant = ?1 AND style IS NOT NULL",
    )?;
    let rows = stmt.query_map([merchant], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What the customer may take in exchange for `sku`: the other variants of its style that
/// are sold (not final sale), by SKU. Empty when `sku` has no style.
pub fn sellable_variants(
    conn: &Connection,
    merchant: &str,
    sku: &str,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT v.sku FROM catalog r JOIN catalog v
           ON v.merchant = r.merchant AND v.style = r.style
         WHERE r.merchant = ?1 AND r.sku = ?2 AND v.sku != r.sku AND NOT v.final_sale
         ORDER BY v.sku",
    )?;
    let rows = stmt.query_map(params![merchant, sku], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Why `wanted` may not be given in exchange for the `returned` SKUs, if it may not: every
/// returned SKU with a style allows only SKUs of that style. SKUs without one allow any.
pub fn exchange_refusal(
    conn: &Connection,
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

    fn catalog(items: &[(&str, Option<&str>, bool)]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
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
        let conn = catalog(&[
            ("TEE-M", Some("TEE"), false),
            ("TEE-L", Some("TEE"), false),
            ("CAP", Some("CAP"), false),
            ("SOCK", None, false),
        ]);
        let m = Some("brand-a");
        let ask = |returned: &[&str], wanted: &str| {
            let returned: Vec<String> = returned.iter().map(|s| (*s).to_owned()).collect();
            exchange_refusal(&conn, m, &returned, wanted).unwrap()
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
        let conn = catalog(&[
            ("TEE-M", Some("TEE"), false),
            ("TEE-L", Some("TEE"), false),
            ("TEE-S", Some("TEE"), true),
            ("SOCK", None, false),
        ]);
        assert_eq!(
            sellable_variants(&conn, "brand-a", "TEE-M").unwrap(),
            vec!["TEE-L"]
        );
        assert!(sellable_variants(&conn, "brand-a", "SOCK")
            .unwrap()
            .is_empty());
        assert!(sellable_variants(&conn, "brand-b", "TEE-M")
            .unwrap()
            .is_empty());
    }
}
