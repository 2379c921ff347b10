//! Each merchant's portal and message settings (`portal_settings::PortalSettings` as JSON),
//! with where they came from: the config seeds a merchant's row at every start until the
//! merchant API sets it; from then on the API's row wins over the config.

use super::sql::Sql;
use super::StoreError;

/// The migration that makes the table (appended to `schema::migrations`).
pub const MIGRATION: &str = r#"
    CREATE TABLE merchant_portal (
        merchant   TEXT PRIMARY KEY,
        settings   TEXT NOT NULL,
        source     TEXT NOT NULL CHECK (source IN ('config', 'api')),
        updated_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
"#;

/// Stores the config's settings of `merchant`, unless the API has set them.
pub fn seed(
    conn: &mut dyn Sql,
    merchant: &str,
    settings_json: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO merchant_portal (merchant, settings, source, updated_ms)
         VALUES (?1, ?2, 'config', ?3)
         ON CONFLICT (merchant) DO UPDATE SET settings = excluded.settings,
             updated_ms = excluded.updated_ms
         WHERE merchant_portal.source = 'config' AND merchant_portal.settings <> excluded.settings",
        &[&merchant, &settings_json, &now_ms],
    )?;
    Ok(())
}

/// Stores the settings the API was given for `merchant`, which win over the config's.
pub fn put(
    conn: &mut dyn Sql,
    merchant: &str,
    settings_json: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO merchant_portal (merchant, settings, source, updated_ms)
         VALUES (?1, ?2, 'api', ?3)
         ON CONFLICT (merchant) DO UPDATE SET settings = excluded.settings,
             source = 'api', updated_ms = excluded.updated_ms",
        &[&merchant, &settings_json, &now_ms],
    )?;
    Ok(())
}

/// The stored settings of `merchant`, as JSON.
pub fn get(conn: &mut dyn Sql, merchant: &str) -> Result<Option<String>, StoreError> {
    Ok(conn.map_row_opt(
        "SELECT settings FROM merchant_portal WHERE merchant = ?1",
        &[&merchant],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> rusqlite::Connection {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(MIGRATION).unwrap();
        c
    }

    #[test]
    fn the_config_seeds_until_the_api_sets() {
        let mut c = db();
        seed(&mut c, "brand-a", "{\"a\":1}", 1).unwrap();
        seed(&mut c, "brand-a", "{\"a\":2}", 2).unwrap();
        assert_eq!(
            get(&mut c, "brand-a").unwrap().as_deref(),
            Some("{\"a\":2}")
        );
        put(&mut c, "brand-a", "{\"api\":1}", 3).unwrap();
        seed(&mut c, "brand-a", "{\"a\":3}", 4).unwrap();
        assert_eq!(
            get(&mut c, "brand-a").unwrap().as_deref(),
            Some("{\"api\":1}")
        );
        assert_eq!(get(&mut c, "brand-b").unwrap(), None);
    }
}
