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
