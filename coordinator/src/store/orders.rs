//! Merchants' orders, as their commerce systems send them (`PUT /api/v1/orders/{merchant}`):
//! what a store counter looks a return up by, by order reference or customer reference, and
//! what the return policy reads the order date and the catalogue from.
//!
//! A customer reference and the customer's contact (email, phone, LINE user id) are personal
//! data: the reference is pseudonymised and the contact erased with the customer's returns
//! (`forget_customer`, the retention sweep). A return registered against an order reaches its
//! customer through the order's contact (`store::notifications::contact_of_return`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::dashboard::{line_rows, LineRows};
use super::sql::{in_transaction, Row, Sql, SqlError};
use super::{to_i64, StoreError};

/// Orders accepted in one request at most.
pub const ORDERS_PER_REQUEST_MAX: usize = 1000;
/// Lines of one order at most.
pub const ORDER_LINES_MAX: usize = modori_shared::wire::payload::RETURN_LINES_MAX;
/// Longest order reference, in bytes.
pub const ORDER_REF_BYTES_MAX: usize = 64;
/// Orders one lookup answers at most.
pub const ORDERS_FOUND_MAX: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub sku: String,
    pub qty: u32,
}

/// How the customer of an order is reached, and in which language.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub email: String,
    pub phone: String,
    /// Set when the customer linked the merchant's LINE account: messages go there.
    pub line_user_id: Option<String>,
    /// `ja` or `en`.
    pub language: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Order {
    pub merchant: String,
    pub order_ref: String,
    pub customer_ref: Option<String>,
    pub ordered_ms: i64,
    pub lines: Vec<OrderLine>,
    pub contact: Option<Contact>,
}

/// What the store counter shows of one line of an order: how many were returned already, the
/// catalogue's (price, final sale, category), and the variants an exchange may give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineFacts {
    pub returned: u64,
    pub item: Option<(u64, bool, String)>,
    pub variants: Vec<String>,
}

/// The orders whose reference or customer reference is `q` (at most `max`), each with the
/// facts of its lines, in the order of `Order::lines`.
pub fn find_with_facts(
    conn: &mut dyn Sql,
    q: &str,
    max: usize,
) -> Result<Vec<(Order, Vec<LineFacts>)>, StoreError> {
    let mut out = Vec::new();
    for o in find(conn, q, max)? {
        let facts = facts_of(conn, &o)?;
        out.push((o, facts));
    }
    Ok(out)
}

/// The facts of each line of `o`, in the order of `Order::lines`.
pub fn facts_of(conn: &mut dyn Sql, o: &Order) -> Result<Vec<LineFacts>, StoreError> {
    let returned = returned_qty(conn, &o.merchant, &o.order_ref)?;
    let mut facts = Vec::with_capacity(o.lines.len());
    for l in &o.lines {
        facts.push(LineFacts {
            returned: returned.get(&l.sku).copied().unwrap_or(0),
            item: super::dashboard::catalog_item(conn, &o.merchant, &l.sku)?,
            variants: super::styles::sellable_variants(conn, &o.merchant, &l.sku)?,
        });
    }
    Ok(facts)
}

/// Stores `orders` of `merchant` (a known reference is replaced), in one transaction.
pub fn put_orders(
    conn: &mut dyn Sql,
    merchant: &str,
    orders: &[Order],
    now_ms: i64,
) -> Result<usize, StoreError> {
    in_transaction(conn, |tx| {
        for o in orders {
            store_order(tx, merchant, o, now_ms)?;
        }
        Ok(orders.len())
    })
}

/// [`store_order`] from a module that still holds a rusqlite transaction.
pub(crate) fn put_order(
    tx: &rusqlite::Transaction<'_>,
    merchant: &str,
    o: &Order,
    now_ms: i64,
) -> Result<(), StoreError> {
    store_order(&mut super::sql::sqlite(tx), merchant, o, now_ms)
}

/// Stores one order of `merchant` inside `tx` (a known reference is replaced).
pub(crate) fn store_order(
    tx: &mut dyn Sql,
    merchant: &str,
    o: &Order,
    now_ms: i64,
) -> Result<(), StoreError> {
    let lines = serde_json::to_string(&o.lines).unwrap_or_else(|_| "[]".into());
    let c = o.contact.as_ref();
    tx.execute(
        "INSERT INTO orders (merchant, order_ref, customer_ref, ordered_ms, lines_json, updated_ms,
                             email, phone, line_user_id, language)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (merchant, order_ref) DO UPDATE SET customer_ref = excluded.customer_ref,
           ordered_ms = excluded.ordered_ms, lines_json = excluded.lines_json,
           updated_ms = excluded.updated_ms, email = excluded.email, phone = excluded.phone,
           line_user_id = excluded.line_user_id, language = excluded.language",
        &[
            &merchant,
            &o.order_ref,
            &o.customer_ref,
            &o.ordered_ms,
            &lines,
            &now_ms,
            &c.map(|c| &c.email),
            &c.map(|c| &c.phone),
            &c.and_then(|c| c.line_user_id.as_ref()),
            &c.map(|c| &c.language),
        ],
    )?;
    Ok(())
}

fn order_row(r: &Row) -> Result<Order, SqlError> {
    let lines: String = r.get(4)?;
    Ok(Order {
        merchant: r.get(0)?,
        order_ref: r.get(1)?,
        customer_ref: r.get(2)?,
        ordered_ms: r.get(3)?,
        // Written by `put_orders` from validated values; an unreadable row shows no lines.
        lines: serde_json::from_str::<Vec<serde_json::Value>>(&lines)
            .unwrap_or_default()
            .iter()
            .map(|l| OrderLine {
                sku: l["sku"].as_str().unwrap_or_default().to_owned(),
                qty: l["qty"]
                    .as_u64()
                    .and_then(|q| u32::try_from(q).ok())
                    .unwrap_or(0),
            })
            .collect(),
        contact: contact(r.get(5)?, r.get(6)?, r.get(7)?, r.get::<Option<String>>(8)?),
    })
}

/// A contact from its four columns (email, phone, line_user_id, language): none without both
/// an email and a phone; Japanese when no language was given.
fn contact(
    email: Option<String>,
    phone: Option<String>,
    line_user_id: Option<String>,
    language: Option<String>,
) -> Option<Contact> {
    match (email, phone) {
        (Some(email), Some(phone)) => Some(Contact {
            email,
            phone,
            line_user_id,
            language: language.unwrap_or_else(|| "ja".into()),
        }),
        _ => None,
    }
}

/// The contact in the four columns from `first` (email, phone, line_user_id, language), for
/// the modules that read orders through rusqlite.
pub(crate) fn contact_columns(
    r: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<Option<Contact>> {
    Ok(contact(
        r.get(first)?,
        r.get(first + 1)?,
        r.get(first + 2)?,
        r.get(first + 3)?,
    ))
}

const COLUMNS: &str =
    "merchant, order_ref, customer_ref, ordered_ms, lines_json, email, phone, line_user_id, language";

/// The contact columns emptied: what erasing a customer leaves of an order.
const NO_CONTACT: &str = "email = NULL, phone = NULL, line_user_id = NULL, language = NULL";

pub fn get(
    conn: &mut dyn Sql,
    merchant: &str,
    order_ref: &str,
) -> Result<Option<Order>, StoreError> {
    Ok(conn.map_row_opt(
        &format!("SELECT {COLUMNS} FROM orders WHERE merchant = ?1 AND order_ref = ?2"),
        &[&merchant, &order_ref],
        order_row,
    )?)
}

/// Orders whose reference or customer reference is `query` in any letter case (staff type
/// `demo-1002` for `DEMO-1002`), newest first; at most `limit`. A pseudonymised customer
/// cannot be found by its old reference. Letter case is folded by `lower()` on both backends
/// (ASCII only, as SQLite's `NOCASE` did).
pub fn find(conn: &mut dyn Sql, query: &str, limit: usize) -> Result<Vec<Order>, StoreError> {
    Ok(conn.map_rows(&find_sql(), &[&query, &to_i64(limit as u64)], order_row)?)
}

/// Read through the indexes on the folded references (`orders_ref_folded`,
/// `orders_customer_folded`), not by reading every order.
fn find_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM orders WHERE lower(order_ref) = lower(CAST(?1 AS TEXT))
         UNION SELECT {COLUMNS} FROM orders
               WHERE lower(customer_ref) = lower(CAST(?1 AS TEXT))
                 AND lower(customer_ref) NOT LIKE 'anon-%'
         ORDER BY ordered_ms DESC LIMIT ?2"
    )
}

/// Units of each SKU of an order already in open or received returns (not cancelled or
/// expired), so a counter does not take the same item back twice.
pub fn returned_qty(
    conn: &mut dyn Sql,
    merchant: &str,
    order_ref: &str,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let LineRows { from, sku, qty, .. } = line_rows(conn.dialect());
    let rows = conn.map_rows(
        &format!(
            "SELECT {sku}, CAST(SUM({qty}) AS BIGINT)
             FROM {from}
             WHERE r.merchant = ?1 AND r.order_ref = ?2
               AND r.status NOT IN ('cancelled', 'expired')
             GROUP BY 1"
        ),
        &[&merchant, &order_ref],
        |r| {
            Ok((
                r.get::<Option<String>>(0)?.unwrap_or_default(),
                super::to_u64(r.get::<Option<i64>>(1)?.unwrap_or(0)),
            ))
        },
    )?;
    Ok(rows.into_iter().collect())
}

/// Replaces a customer's reference in their orders by its pseudonym and erases their contact.
pub fn pseudonymise(
    tx: &mut dyn Sql,
    reference: &str,
    pseudonym: &str,
) -> Result<usize, StoreError> {
    let n = tx.execute(
        &format!("UPDATE orders SET customer_ref = ?2, {NO_CONTACT} WHERE customer_ref = ?1"),
        &[&reference, &pseudonym],
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Pseudonymises the customer reference of every order placed before `cutoff_ms` (the
/// retention period), by `pseudonym`, and erases their contact; returns how many orders had a
/// reference.
pub fn pseudonymise_before(
    tx: &mut dyn Sql,
    cutoff_ms: i64,
    pseudonym: impl Fn(&str) -> String,
) -> Result<usize, StoreError> {
    let rows: Vec<(String, String, String)> = tx.map_rows(
        "SELECT merchant, order_ref, customer_ref FROM orders
         WHERE ordered_ms < ?1 AND customer_ref IS NOT NULL
           AND lower(customer_ref) NOT LIKE 'anon-%'",
        &[&cutoff_ms],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (merchant, order_ref, reference) in &rows {
        tx.execute(
            "UPDATE orders SET customer_ref = ?3 WHERE merchant = ?1 AND order_ref = ?2",
            &[merchant, order_ref, &pseudonym(reference)],
        )?;
    }
    tx.execute(
        &format!("UPDATE orders SET {NO_CONTACT} WHERE ordered_ms < ?1 AND email IS NOT NULL"),
        &[&cutoff_ms],
    )?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{init, migrations};
    use rusqlite::Connection;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn
    }

    fn order(r: &str, customer: &str, ordered_ms: i64) -> Order {
        Order {
            merchant: "brand-a".into(),
            order_ref: r.into(),
            customer_ref: Some(customer.into()),
            ordered_ms,
            lines: vec![OrderLine {
                sku: "TEE".into(),
                qty: 2,
            }],
            contact: None,
        }
    }

    #[test]
    fn a_lookup_in_any_letter_case_reads_the_folded_indexes_not_every_order() {
        let conn = open();
        let sql = format!("EXPLAIN QUERY PLAN {}", find_sql());
        let mut stmt = conn.prepare(&sql).unwrap();
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params!["demo-1002", 5], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("orders_ref_folded"), "{plan}");
        assert!(plan.contains("orders_customer_folded"), "{plan}");
        assert!(!plan.contains("SCAN orders"), "{plan}");
    }

    #[test]
    fn orders_are_found_by_reference_or_customer_and_replaced_by_reference() {
        let mut conn = open();
        put_orders(
            &mut conn,
            "brand-a",
            &[order("O-1", "C-1", 10), order("O-2", "C-1", 20)],
            1,
        )
        .unwrap();
        assert_eq!(find(&mut conn, "O-1", 10).unwrap().len(), 1);
        let by_customer = find(&mut conn, "C-1", 10).unwrap();
        assert_eq!(
            by_customer
                .iter()
                .map(|o| o.order_ref.as_str())
                .collect::<Vec<_>>(),
            ["O-2", "O-1"]
        );
        let mut again = order("O-1", "C-2", 10);
        again.lines[0].qty = 1;
        put_orders(&mut conn, "brand-a", &[again.clone()], 2).unwrap();
        assert_eq!(get(&mut conn, "brand-a", "O-1").unwrap(), Some(again));
        assert!(find(&mut conn, "nobody", 10).unwrap().is_empty());
        assert_eq!(pseudonymise(&mut conn, "C-1", "anon-1").unwrap(), 1);
        assert!(find(&mut conn, "anon-1", 10).unwrap().is_empty());
    }
}
