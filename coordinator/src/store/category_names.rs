//! What a merchant calls its catalogue's categories, in Japanese and English, for the pages
//! to show instead of the code. Kept here only: the catalogue sent to the sites carries codes.

use std::collections::BTreeMap;

use super::sql::{in_transaction, Sql};
use super::StoreError;

pub const MIGRATION: &str = r#"
CREATE TABLE category_names (
    merchant TEXT NOT NULL,
    category TEXT NOT NULL,
    name_ja  TEXT,
    name_en  TEXT,
    PRIMARY KEY (merchant, category)
) STRICT, WITHOUT ROWID;
"#;

/// A category's names; either may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub ja: Option<String>,
    pub en: Option<String>,
}

/// Sets the names `names` gives (by category) for `merchant`, in one transaction; a name not
/// given keeps the one stored.
pub fn put(
    conn: &mut dyn Sql,
    merchant: &str,
    names: &BTreeMap<String, Names>,
) -> Result<(), StoreError> {
    in_transaction(conn, |tx| {
        for (category, n) in names {
            tx.execute(
                "INSERT INTO category_names (merchant, category, name_ja, name_en)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (merchant, category) DO UPDATE SET
                   name_ja = COALESCE(excluded.name_ja, category_names.name_ja),
                   name_en = COALESCE(excluded.name_en, category_names.name_en)",
                &[&merchant, category, &n.ja, &n.en],
            )?;
        }
        Ok(())
    })
}

fn names(r: &super::sql::Row) -> Result<(String, Names), super::sql::SqlError> {
    Ok((
        r.get(0)?,
        Names {
            ja: r.get(1)?,
            en: r.get(2)?,
        },
    ))
}

/// A merchant's category names, by category.
pub fn of_merchant(
    conn: &mut dyn Sql,
    merchant: &str,
) -> Result<BTreeMap<String, Names>, StoreError> {
    Ok(conn
        .map_rows(
            "SELECT category, name_ja, name_en FROM category_names WHERE merchant = ?1",
            &[&merchant],
            names,
        )?
        .into_iter()
        .collect())
}

/// A name for each category across the merchants (the fleet-wide insight groups by code):
/// the first merchant's, by merchant id, that names it.
pub fn fleet_wide(conn: &mut dyn Sql) -> Result<BTreeMap<String, Names>, StoreError> {
    let rows = conn.map_rows(
        "SELECT category, name_ja, name_en FROM category_names ORDER BY merchant DESC",
        &[],
        names,
    )?;
    let mut out: BTreeMap<String, Names> = BTreeMap::new();
    // Later rows (earlier merchants) win, each name on its own.
    for (category, n) in rows {
        let e = out.entry(category).or_default();
        e.ja = n.ja.or(e.ja.take());
        e.en = n.en.or(e.en.take());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;

    #[test]
    fn names_are_kept_per_merchant_and_a_missing_one_keeps_the_stored() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut c).unwrap();
        let named = |ja: Option<&str>, en: Option<&str>| Names {
            ja: ja.map(str::to_owned),
            en: en.map(str::to_owned),
        };
        let tee = |n: Names| BTreeMap::from([("tee".to_owned(), n)]);
        put(&mut c, "brand-b", &tee(named(Some("Tシャツ B"), None))).unwrap();
        put(
            &mut c,
            "brand-a",
            &tee(named(Some("Tシャツ"), Some("T-shirt"))),
        )
        .unwrap();
        put(&mut c, "brand-a", &tee(named(None, Some("Tee")))).unwrap();
        assert_eq!(
            of_merchant(&mut c, "brand-a").unwrap()["tee"],
            named(Some("Tシャツ"), Some("Tee"))
        );
        assert_eq!(
            fleet_wide(&mut c).unwrap()["tee"],
            named(Some("Tシャツ"), Some("Tee"))
        );
        assert!(of_merchant(&mut c, "brand-c").unwrap().is_empty());
    }
}
