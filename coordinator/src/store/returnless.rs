//! Returnless refunds: a return the customer keeps, because bringing it back would cost more
//! than it recovers.

use modori_shared::domain::SiteId;
use rusqlite::{params, Connection, TransactionBehavior};

use super::details::Detail;
use super::StoreError;

/// Registers a return the customer keeps: refunded at once, no site expects it. Its terms,
/// the registration and the refund are written together, with their timeline rows.
pub fn register_returnless(
    conn: &mut Connection,
    r: &super::NewReturn,
    site: &SiteId,
    why: &Detail,
    refund_yen: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let lines_json = serde_json::to_string(
        &r.lines
            .iter()
            .map(|l| serde_json::json!({"sku": l.sku.as_str(), "qty": l.qty, "reason": l.reason.as_str()}))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    let customer = r.customer.as_ref();
    tx.execute(
        "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms,
                              customer_ref, customer_name, customer_address, merchant, origin_store,
                              status, returnless, refund_yen)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, ?10, ?11, 'returnless', ?12, ?13)",
        params![
            r.rma.as_str(),
            site.as_str(),
            r.origin_label,
            lines_json,
            format!("not sent anywhere: {}", why.english),
            now_ms,
            customer.map(|c| c.reference.as_str()),
            customer.and_then(|c| c.name.as_deref()),
            customer.and_then(|c| c.address.as_deref()),
            r.merchant.as_ref().map(|m| m.as_str()),
            r.origin_store.as_ref().map(|s| s.as_str()),
            why.english,
            modori_runtime::sqlite::to_i64(refund_yen)
        ],
    )?;
    if let Some(terms) = &r.terms {
        super::commerce::store_terms(&tx, &r.rma, terms)?;
    }
    for (kind, detail) in [
        ("returnless", why),
        ("refund_computed", &Detail::refund_goods_kept(refund_yen)),
    ] {
        super::lifecycle::insert_event(
            &tx,
            r.rma.as_str(),
            kind,
            None,
            None,
            detail,
            now_ms,
            now_ms,
        )?;
    }
    tx.commit()?;
    Ok(())
}
