//! Trade-ins: each merchant's price table (by SKU or category, and grade) and the quotes
//! given from it, kept so the price a customer was told is the one honoured later.

use modori_shared::domain::Grade;
use modori_shared::tradein::{Condition, PriceKey, PriceRow};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use modori_runtime::sqlite::to_i64;

use super::StoreError;

pub const MIGRATION: &str = r#"
CREATE TABLE trade_in_prices (
    merchant  TEXT NOT NULL,
    key_kind  TEXT NOT NULL CHECK (key_kind IN ('sku', 'category')),
    key       TEXT NOT NULL,
    grade     TEXT NOT NULL,
    price_yen INTEGER NOT NULL,
    -- The table's order as the merchant gave it, so it reads back the same.
    position  INTEGER NOT NULL,
    PRIMARY KEY (merchant, key_kind, key, grade)
) STRICT, WITHOUT ROWID;
CREATE TABLE trade_in_quotes (
    quote_id   TEXT PRIMARY KEY,
    merchant   TEXT NOT NULL,
    sku        TEXT NOT NULL,
    condition  TEXT NOT NULL,
    grade      TEXT NOT NULL,
    quote_yen  INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) STRICT;
"#;

/// Replaces `merchant`'s price table with `rows` (checked by the caller), in one transaction.
pub fn put_prices(
    conn: &mut Connection,
    merchant: &str,
    rows: &[PriceRow],
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM trade_in_prices WHERE merchant = ?1",
        [merchant],
    )?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO trade_in_prices (merchant, key_kind, key, grade, price_yen, position)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (i, r) in rows.iter().enumerate() {
            let (kind, key) = match &r.key {
                PriceKey::Sku(s) => ("sku", s.as_str()),
                PriceKey::Category(c) => ("category", c.as_str()),
            };
            insert.execute(params![
                merchant,
                kind,
                key,
                r.grade.as_str(),
                to_i64(r.price_yen),
                to_i64(i as u64)
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// `merchant`'s price table, in the order it was put.
pub fn prices(conn: &Connection, merchant: &str) -> Result<Vec<PriceRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT key_kind, key, grade, price_yen FROM trade_in_prices
         WHERE merchant = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([merchant], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, key, grade, price) = row?;
        let key = if kind == "sku" {
            PriceKey::Sku(key)
        } else {
            PriceKey::Category(key)
        };
        out.push(PriceRow {
            key,
            grade: Grade::parse(&grade)?,
            price_yen: u64::try_from(price).unwrap_or(0),
        });
    }
    Ok(out)
}

/// A quote as given to a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    pub quote_id: String,
    pub merchant: String,
    pub sku: String,
    pub condition: Condition,
    pub grade: Grade,
    pub quote_yen: u64,
    pub created_ms: i64,
    pub expires_ms: i64,
}

pub fn insert_quote(conn: &Connection, q: &Quote) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO trade_in_quotes
             (quote_id, merchant, sku, condition, grade, quote_yen, created_ms, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            q.quote_id,
            q.merchant,
            q.sku,
            q.condition.as_str(),
            q.grade.as_str(),
            to_i64(q.quote_yen),
            q.created_ms,
            q.expires_ms
        ],
    )?;
    Ok(())
}

/// The quote `quote_id` of `merchant`, expired or not (the caller compares the time).
pub fn quote(
    conn: &Connection,
    merchant: &str,
    quote_id: &str,
) -> Result<Option<Quote>, StoreError> {
    Ok(quote_by_id(conn, quote_id)?.filter(|q| q.merchant == merchant))
}

/// The quote `quote_id` of whichever merchant gave it (for ops, who see every merchant's).
pub fn quote_by_id(conn: &Connection, quote_id: &str) -> Result<Option<Quote>, StoreError> {
    let row = conn
        .query_row(
            "SELECT sku, condition, grade, quote_yen, created_ms, expires_ms, merchant
             FROM trade_in_quotes WHERE quote_id = ?1",
            params![quote_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((sku, condition, grade, quote_yen, created_ms, expires_ms, merchant)) = row else {
        return Ok(None);
    };
    Ok(Some(Quote {
        quote_id: quote_id.to_owned(),
        merchant,
        sku,
        condition: Condition::parse(&condition)?,
        grade: Grade::parse(&grade)?,
        quote_yen: u64::try_from(quote_yen).unwrap_or(0),
        created_ms,
        expires_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::schema::migrations()
            .to_latest(&mut conn)
            .unwrap();
        conn
    }

    #[test]
    fn a_table_is_replaced_whole_and_reads_back_in_its_order() {
        let mut conn = open();
        let first = vec![
            PriceRow {
                key: PriceKey::Sku("PHN-PRO-256".into()),
                grade: Grade::A,
                price_yen: 61_000,
            },
            PriceRow {
                key: PriceKey::Category("phone".into()),
                grade: Grade::B,
                price_yen: 22_000,
            },
        ];
        put_prices(&mut conn, "brand-a", &first).unwrap();
        put_prices(&mut conn, "brand-b", &first[..1]).unwrap();
        assert_eq!(prices(&conn, "brand-a").unwrap(), first);
        let second = vec![first[1].clone()];
        put_prices(&mut conn, "brand-a", &second).unwrap();
        assert_eq!(prices(&conn, "brand-a").unwrap(), second);
        assert_eq!(prices(&conn, "brand-b").unwrap(), first[..1]);
    }

    #[test]
    fn a_quote_is_found_only_by_its_merchant() {
        let conn = open();
        let q = Quote {
            quote_id: "TQ-1".into(),
            merchant: "brand-a".into(),
            sku: "PHN-MINI".into(),
            condition: Condition::Good,
            grade: Grade::B,
            quote_yen: 22_000,
            created_ms: 5,
            expires_ms: 10,
        };
        insert_quote(&conn, &q).unwrap();
        assert_eq!(quote(&conn, "brand-a", "TQ-1").unwrap(), Some(q));
        assert_eq!(quote(&conn, "brand-b", "TQ-1").unwrap(), None);
        assert_eq!(quote(&conn, "brand-a", "TQ-2").unwrap(), None);
    }
}
