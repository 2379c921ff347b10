//! The `api_keys` table: keys made, listed, revoked, looked up per request, and the configured
//! ones kept in step with the config. Only the SHA-256 of a key is stored.

use super::sql::{in_transaction, Row, Sql, SqlError};
use rand::TryRngCore;

use super::StoreError;
use crate::apikeys::{
    check_label, generate, hex, sha256_hex, ApiKeyError, ConfigKey, Scope, Source, KEY_BYTES_MAX,
};

impl From<super::sql::SqlError> for ApiKeyError {
    fn from(e: super::sql::SqlError) -> Self {
        Self::Store(StoreError::from(e))
    }
}

impl From<rusqlite::Error> for ApiKeyError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::from(e))
    }
}

/// A key as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub scope: Scope,
    pub label: Option<String>,
    pub source: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// A random public id for a key made here (`ak-` and 16 hex digits).
fn new_id() -> Result<String, ApiKeyError> {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| ApiKeyError::Entropy(e.to_string()))?;
    Ok(format!("ak-{}", hex(&bytes)))
}

/// The id of a configured key, derived from its hash so it is the same at every start.
fn config_id(sha256: &str) -> String {
    format!("cfg-{}", &sha256[..16])
}

/// Makes and stores a key; returns the secret (to show once) and its record.
pub fn create(
    conn: &mut dyn Sql,
    scope: &Scope,
    label: Option<&str>,
    source: Source,
    now_ms: i64,
) -> Result<(String, KeyRecord), ApiKeyError> {
    let label = check_label(label)?;
    let generated = generate()?;
    let id = new_id()?;
    conn.execute(
        "INSERT INTO api_keys (id, sha256, scope, label, source, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            &id,
            &generated.sha256,
            &scope.to_string(),
            &label,
            &source.as_str(),
            &now_ms,
        ],
    )?;
    tracing::info!(key_id = %id, scope = %scope, source = source.as_str(), "API key created");
    Ok((
        generated.key,
        KeyRecord {
            id,
            scope: scope.clone(),
            label,
            source: source.as_str().to_owned(),
            created_ms: now_ms,
            revoked_ms: None,
        },
    ))
}

type RawRow = (String, String, Option<String>, String, i64, Option<i64>);

fn record(
    (id, scope, label, source, created_ms, revoked_ms): RawRow,
) -> Result<KeyRecord, ApiKeyError> {
    let scope = Scope::parse(&scope).map_err(|_| ApiKeyError::Corrupt {
        id: id.clone(),
        scope,
    })?;
    Ok(KeyRecord {
        id,
        scope,
        label,
        source,
        created_ms,
        revoked_ms,
    })
}

fn raw(r: &Row) -> Result<RawRow, SqlError> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

const COLUMNS: &str = "id, scope, label, source, created_ms, revoked_ms";

/// Keys, newest first, revoked ones included; at most `limit`.
pub fn list(conn: &mut dyn Sql, limit: usize) -> Result<Vec<KeyRecord>, ApiKeyError> {
    let rows = conn.query(
        &format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_ms DESC, id LIMIT ?1"),
        &[&i64::try_from(limit).unwrap_or(i64::MAX)],
    )?;
    rows.iter().map(|r| record(raw(r)?)).collect()
}

/// Revokes a key; revoking a revoked key changes nothing. Returns its record.
///
/// With `keep_last_ops` (the API), the last live ops key is refused ([`ApiKeyError::LastOpsKey`]):
/// over the API nobody could make a key again. The command line, run on the coordinator's
/// machine, may revoke it.
pub fn revoke(
    conn: &mut dyn Sql,
    id: &str,
    now_ms: i64,
    keep_last_ops: bool,
) -> Result<KeyRecord, ApiKeyError> {
    let (row, n_sessions) = in_transaction(conn, |tx| {
        if keep_last_ops {
            // Checked in the same write transaction as the update, which no other writer
            // interleaves with: two concurrent revocations of the last two ops keys cannot
            // both pass.
            let (is_live_ops, n_live_ops): (bool, i64) = tx
                .map_row_opt(
                    "SELECT EXISTS (SELECT 1 FROM api_keys
                                    WHERE id = ?1 AND scope = 'ops' AND revoked_ms IS NULL),
                            (SELECT COUNT(*) FROM api_keys WHERE scope = 'ops' AND revoked_ms IS NULL)",
                    &[&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .ok_or(SqlError::NoRow)?;
            if is_live_ops && n_live_ops <= 1 {
                return Err(ApiKeyError::LastOpsKey(id.to_owned()));
            }
        }
        tx.execute(
            "UPDATE api_keys SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
            &[&id, &now_ms],
        )?;
        let n_sessions = super::sessions::close_of_key(tx, id)?;
        let row = tx.query_opt(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
            &[&id],
        )?;
        Ok::<_, ApiKeyError>((row.map(|r| raw(&r)).transpose()?, n_sessions))
    })?;
    let row = row.ok_or_else(|| ApiKeyError::UnknownKey(id.chars().take(80).collect()))?;
    tracing::info!(key_id = %id, n_sessions, "API key revoked");
    record(row)
}

/// The live key `presented` is, if any: (id, scope). Unknown, revoked and malformed keys are
/// all `None`, so a caller learns nothing about which.
pub fn authenticate(
    conn: &mut dyn Sql,
    presented: &str,
) -> Result<Option<(String, Scope)>, ApiKeyError> {
    // Any presented value is hashed and looked up (a key an operator made by hand need not
    // carry the prefix); only an overlong one is refused unhashed.
    if presented.len() > KEY_BYTES_MAX {
        return Ok(None);
    }
    let row: Option<(String, String)> = conn
        .query_opt(
            "SELECT id, scope FROM api_keys WHERE sha256 = ?1 AND revoked_ms IS NULL",
            &[&sha256_hex(presented)],
        )?
        .map(|r| Ok::<_, SqlError>((r.get(0)?, r.get(1)?)))
        .transpose()?;
    row.map(|(id, scope)| {
        Scope::parse(&scope)
            .map(|s| (id.clone(), s))
            .map_err(|_| ApiKeyError::Corrupt { id, scope })
    })
    .transpose()
}

/// Makes the stored configured keys match the config: new ones added, scope and label
/// updated, ones no longer listed revoked. A configured key revoked through the API or the
/// CLI stays revoked (remove it from the config and make a new one). Returns how many are live.
pub fn sync_config_keys(
    conn: &mut dyn Sql,
    keys: &[ConfigKey],
    now_ms: i64,
) -> Result<usize, ApiKeyError> {
    let listed: std::collections::HashSet<&str> = keys.iter().map(|k| k.sha256.as_str()).collect();
    let (stale, live) = in_transaction(conn, |tx| {
        for k in keys {
            tx.execute(
                "INSERT INTO api_keys (id, sha256, scope, label, source, created_ms) VALUES (?1, ?2, ?3, ?4, 'config', ?5)
                 ON CONFLICT (sha256) DO UPDATE SET scope = excluded.scope, label = excluded.label
                 WHERE api_keys.source = 'config'",
                &[&config_id(&k.sha256), &k.sha256, &k.scope.to_string(), &k.label, &now_ms],
            )?;
        }
        let stale: Vec<String> = tx
            .query(
                "SELECT sha256 FROM api_keys WHERE source = 'config' AND revoked_ms IS NULL",
                &[],
            )?
            .iter()
            .map(|r| r.get::<String>(0))
            .filter(|h| h.as_ref().map_or(true, |h| !listed.contains(h.as_str())))
            .collect::<Result<_, _>>()?;
        for h in &stale {
            tx.execute(
                "UPDATE api_keys SET revoked_ms = ?2 WHERE sha256 = ?1",
                &[h, &now_ms],
            )?;
        }
        let live: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM api_keys WHERE source = 'config' AND revoked_ms IS NULL",
                &[],
            )?
            .get(0)?;
        Ok::<_, SqlError>((stale, live))
    })?;
    if !stale.is_empty() {
        tracing::info!(
            n_revoked = stale.len(),
            "configured API keys no longer in the config revoked"
        );
    }
    Ok(usize::try_from(live).unwrap_or(0))
}

/// Revokes every live key made by `source` (the demo replaces its keys at each run).
pub fn revoke_all_from(
    conn: &mut dyn Sql,
    source: Source,
    now_ms: i64,
) -> Result<u64, ApiKeyError> {
    Ok(conn.execute(
        "UPDATE api_keys SET revoked_ms = ?2 WHERE source = ?1 AND revoked_ms IS NULL",
        &[&source.as_str(), &now_ms],
    )?)
}
