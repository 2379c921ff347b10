//! API keys of the HTTP API: their scopes, how they are made, and the `api_keys` table.
//!
//! A key is `modori_` and 32 bytes from the operating system's CSPRNG in hex; it is shown once,
//! when it is made. The database keeps only its SHA-256, so a copy of the database (a backup)
//! cannot call the API. Keys are looked up per request, so a key revoked by the API or by
//! `modori-coordinator keys revoke` (another process, the same database) fails its next request.
//!
//! Comparing a presented key's hash by an index lookup leaks no secret through timing: the
//! hash of a 256-bit random value tells nothing about the key.

use std::fmt;

use modori_shared::domain::{DomainError, MerchantId, Store, StoreId};
use rand::TryRngCore;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use thiserror::Error;

use modori_runtime::sqlite::DbError;

/// Every key made here starts with this, so a leaked one is easy to recognise (secret
/// scanners).
pub const KEY_PREFIX: &str = "modori_";
/// Random bytes in a key.
pub const KEY_SECRET_BYTES: usize = 32;
/// Longest key accepted in a request header, in bytes: a longer value is not one of ours
/// and is refused before it is hashed.
pub const KEY_BYTES_MAX: usize = 128;
/// Longest label of a key, in characters (as the API document can state it).
pub const KEY_LABEL_CHARS_MAX: usize = 64;
/// Keys listed by one request at most.
pub const KEYS_LIST_MAX: usize = 1000;

#[derive(Debug, Error)]
pub enum ApiKeyError {
    #[error("scope {0:?}: expected `ops`, `merchant:<id>` or `store:<id>`")]
    BadScope(String),
    #[error("scope {scope:?}: {source}")]
    BadScopeId {
        scope: String,
        #[source]
        source: DomainError,
    },
    #[error("store {0} is not in the fleet's stores file")]
    UnknownStore(StoreId),
    #[error("sha256 must be 64 lowercase hex digits")]
    BadSha256,
    #[error("label is longer than {KEY_LABEL_CHARS_MAX} characters or has control characters")]
    BadLabel,
    #[error("the operating system's random source failed: {0}")]
    Entropy(String),
    #[error("no API key {0}")]
    UnknownKey(String),
    #[error("stored API key {id} has scope {scope:?}, which no longer parses")]
    Corrupt { id: String, scope: String },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "API key {0} is the last live ops key: revoking it would leave nobody able to manage \
         keys over the API; create another ops key first (or use `modori-coordinator keys` on \
         the coordinator's machine)"
    )]
    LastOpsKey(String),
}

/// What a key may reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Central ops: everything.
    Ops,
    /// One merchant's returns and catalogue.
    Merchant(MerchantId),
    /// The returns registered at one store.
    Store(StoreId),
}

impl Scope {
    pub fn parse(s: &str) -> Result<Self, ApiKeyError> {
        let bad_id = |source| ApiKeyError::BadScopeId {
            scope: s.chars().take(80).collect(),
            source,
        };
        match s.split_once(':') {
            None if s == "ops" => Ok(Self::Ops),
            Some(("merchant", id)) => Ok(Self::Merchant(MerchantId::new(id).map_err(bad_id)?)),
            Some(("store", id)) => Ok(Self::Store(StoreId::new(id).map_err(bad_id)?)),
            _ => Err(ApiKeyError::BadScope(s.chars().take(80).collect())),
        }
    }

    /// A store key only for a store of the fleet.
    pub fn check_store_exists(&self, stores: &[Store]) -> Result<(), ApiKeyError> {
        match self {
            Self::Store(id) if !stores.iter().any(|s| &s.id == id) => {
                Err(ApiKeyError::UnknownStore(id.clone()))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ops => f.write_str("ops"),
            Self::Merchant(m) => write!(f, "merchant:{m}"),
            Self::Store(s) => write!(f, "store:{s}"),
        }
    }
}

/// Where a key was made; shown in listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Api,
    Cli,
    Config,
    Demo,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Cli => "cli",
            Self::Config => "config",
            Self::Demo => "demo",
        }
    }
}

/// A key from `[[api_keys]]` in the config, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigKey {
    pub scope: Scope,
    pub sha256: String,
    pub label: Option<String>,
}

/// A key just made: the secret is here once and never stored.
#[derive(Clone, Debug)]
pub struct Generated {
    pub key: String,
    pub sha256: String,
}

/// Makes a key from the operating system's CSPRNG.
pub fn generate() -> Result<Generated, ApiKeyError> {
    let mut secret = [0u8; KEY_SECRET_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut secret)
        .map_err(|e| ApiKeyError::Entropy(e.to_string()))?;
    let key = format!("{KEY_PREFIX}{}", hex(&secret));
    Ok(Generated {
        sha256: sha256_hex(&key),
        key,
    })
}

/// SHA-256 of a key as stored: 64 lowercase hex digits.
pub fn sha256_hex(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A configured hash, checked (uppercase hex is accepted and stored lowercase).
pub fn parse_sha256(s: &str) -> Result<String, ApiKeyError> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(ApiKeyError::BadSha256)
    }
}

/// A label, checked: short and printable.
pub fn check_label(label: Option<&str>) -> Result<Option<String>, ApiKeyError> {
    match label {
        Some(l) if l.chars().count() > KEY_LABEL_CHARS_MAX || l.chars().any(char::is_control) => {
            Err(ApiKeyError::BadLabel)
        }
        other => Ok(other.map(str::to_owned)),
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
    conn: &mut Connection,
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
        params![id, generated.sha256, scope.to_string(), label, source.as_str(), now_ms],
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

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
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
pub fn list(conn: &Connection, limit: usize) -> Result<Vec<KeyRecord>, ApiKeyError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys ORDER BY created_ms DESC, id LIMIT ?1"
    ))?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], raw)?;
    rows.map(|r| record(r?)).collect()
}

/// Revokes a key; revoking a revoked key changes nothing. Returns its record.
///
/// With `keep_last_ops` (the API), the last live ops key is refused ([`ApiKeyError::LastOpsKey`]):
/// over the API nobody could make a key again. The command line, run on the coordinator's
/// machine, may revoke it.
pub fn revoke(
    conn: &mut Connection,
    id: &str,
    now_ms: i64,
    keep_last_ops: bool,
) -> Result<KeyRecord, ApiKeyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if keep_last_ops {
        // Checked in the same transaction as the update: two concurrent revocations of the
        // last two ops keys cannot both pass.
        let (is_live_ops, n_live_ops): (bool, i64) = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM api_keys
                            WHERE id = ?1 AND scope = 'ops' AND revoked_ms IS NULL),
                    (SELECT COUNT(*) FROM api_keys WHERE scope = 'ops' AND revoked_ms IS NULL)",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if is_live_ops && n_live_ops <= 1 {
            return Err(ApiKeyError::LastOpsKey(id.to_owned()));
        }
    }
    tx.execute(
        "UPDATE api_keys SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
        params![id, now_ms],
    )?;
    let row = tx
        .query_row(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
            [id],
            raw,
        )
        .optional()?;
    tx.commit()?;
    let row = row.ok_or_else(|| ApiKeyError::UnknownKey(id.chars().take(80).collect()))?;
    tracing::info!(key_id = %id, "API key revoked");
    record(row)
}

/// The live key `presented` is, if any: (id, scope). Unknown, revoked and malformed keys are
/// all `None`, so a caller learns nothing about which.
pub fn authenticate(
    conn: &Connection,
    presented: &str,
) -> Result<Option<(String, Scope)>, ApiKeyError> {
    // Any presented value is hashed and looked up (a key an operator made by hand need not
    // carry the prefix); only an overlong one is refused unhashed.
    if presented.len() > KEY_BYTES_MAX {
        return Ok(None);
    }
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT id, scope FROM api_keys WHERE sha256 = ?1 AND revoked_ms IS NULL")?
        .query_row([sha256_hex(presented)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(id, scope)| {
        Scope::parse(&scope)
            .map(|s| (id.clone(), s))
            .map_err(|_| ApiKeyError::Corrupt { id, scope })
    })
    .transpose()
}

/// Whether key `id` exists and is not revoked (a browser session checks its key with this).
pub fn is_live(conn: &Connection, id: &str) -> Result<bool, ApiKeyError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM api_keys WHERE id = ?1 AND revoked_ms IS NULL")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Makes the stored configured keys match the config: new ones added, scope and label
/// updated, ones no longer listed revoked. A configured key revoked through the API or the
/// CLI stays revoked (remove it from the config and make a new one). Returns how many are live.
pub fn sync_config_keys(
    conn: &mut Connection,
    keys: &[ConfigKey],
    now_ms: i64,
) -> Result<usize, ApiKeyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for k in keys {
        tx.execute(
            "INSERT INTO api_keys (id, sha256, scope, label, source, created_ms) VALUES (?1, ?2, ?3, ?4, 'config', ?5)
             ON CONFLICT (sha256) DO UPDATE SET scope = excluded.scope, label = excluded.label
             WHERE api_keys.source = 'config'",
            params![config_id(&k.sha256), k.sha256, k.scope.to_string(), k.label, now_ms],
        )?;
    }
    let listed: std::collections::HashSet<&str> = keys.iter().map(|k| k.sha256.as_str()).collect();
    let stale: Vec<String> = tx
        .prepare("SELECT sha256 FROM api_keys WHERE source = 'config' AND revoked_ms IS NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?
        .into_iter()
        .filter(|h| !listed.contains(h.as_str()))
        .collect();
    for h in &stale {
        tx.execute(
            "UPDATE api_keys SET revoked_ms = ?2 WHERE sha256 = ?1",
            params![h, now_ms],
        )?;
    }
    let live: i64 = tx.query_row(
        "SELECT COUNT(*) FROM api_keys WHERE source = 'config' AND revoked_ms IS NULL",
        [],
        |r| r.get(0),
    )?;
    tx.commit()?;
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
    conn: &mut Connection,
    source: Source,
    now_ms: i64,
) -> Result<usize, ApiKeyError> {
    Ok(conn.execute(
        "UPDATE api_keys SET revoked_ms = ?2 WHERE source = ?1 AND revoked_ms IS NULL",
        params![source.as_str(), now_ms],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrations().to_latest(&mut conn).unwrap();
        conn
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for s in ["ops", "merchant:brand-a", "store:st-ginza"] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
        }
        for bad in [
            "",
            "OPS",
            "merchant:",
            "merchant:Brand",
            "store",
            "site:osaka",
            "ops:x",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_random_prefixed_and_stored_only_as_hashes() {
        let mut conn = open();
        let (a, rec) = create(&mut conn, &Scope::Ops, Some("ci"), Source::Cli, 1).unwrap();
        let (b, _) = create(&mut conn, &Scope::Ops, None, Source::Cli, 2).unwrap();
        assert_ne!(a, b);
        assert!(
            a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64,
            "{a}"
        );
        let stored: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM api_keys WHERE sha256 = ?1 OR sha256 = ?2",
                [&a, &b],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 0, "the secret itself is never stored");
        assert_eq!(
            authenticate(&conn, &a).unwrap(),
            Some((rec.id.clone(), Scope::Ops))
        );
        revoke(&mut conn, &rec.id, 3, false).unwrap();
        assert_eq!(authenticate(&conn, &a).unwrap(), None);
        assert!(authenticate(&conn, &b).unwrap().is_some());
        assert_eq!(authenticate(&conn, "modori_nope").unwrap(), None);
        assert!(matches!(
            revoke(&mut conn, "ak-none", 4, false),
            Err(ApiKeyError::UnknownKey(_))
        ));
    }

    #[test]
    fn configured_keys_follow_the_config_but_stay_revoked() {
        let mut conn = open();
        let (a, b) = (generate().unwrap(), generate().unwrap());
        let entry = |g: &Generated, scope: &str| ConfigKey {
            scope: Scope::parse(scope).unwrap(),
            sha256: g.sha256.clone(),
            label: None,
        };
        let both = [entry(&a, "ops"), entry(&b, "merchant:m")];
        assert_eq!(sync_config_keys(&mut conn, &both, 1).unwrap(), 2);
        assert_eq!(sync_config_keys(&mut conn, &both, 2).unwrap(), 2);
        // A new scope for the same key is taken from the config.
        sync_config_keys(&mut conn, &[entry(&a, "ops"), entry(&b, "merchant:n")], 3).unwrap();
        let scope = authenticate(&conn, &b.key).unwrap().map(|(_, s)| s);
        assert_eq!(scope, Some(Scope::parse("merchant:n").unwrap()));
        // Dropped from the config: revoked.
        assert_eq!(
            sync_config_keys(&mut conn, &[entry(&a, "ops")], 4).unwrap(),
            1
        );
        assert_eq!(authenticate(&conn, &b.key).unwrap(), None);
        // Revoked by hand: a restart with the same config does not bring it back.
        let (id, _) = authenticate(&conn, &a.key).unwrap().unwrap();
        revoke(&mut conn, &id, 5, false).unwrap();
        sync_config_keys(&mut conn, &[entry(&a, "ops")], 6).unwrap();
        assert_eq!(authenticate(&conn, &a.key).unwrap(), None);
    }

    #[test]
    fn configured_hashes_and_labels_are_checked() {
        assert!(parse_sha256(&"A".repeat(64)).is_ok());
        assert!(parse_sha256(&"g".repeat(64)).is_err());
        assert!(parse_sha256("abc").is_err());
        assert!(check_label(Some("ok label")).is_ok());
        assert!(check_label(Some("a\nb")).is_err());
        assert!(check_label(Some(&"x".repeat(65))).is_err());
    }
}
