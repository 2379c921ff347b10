//! API keys of the HTTP API: their scopes and how they are made. The `api_keys` table is
//! behind the storage boundary (`store::apikeys`); its functions are re-exported here.
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
use sha2::{Digest, Sha256};
use thiserror::Error;

use modori_runtime::sqlite::DbError;

pub use crate::store::apikeys::{
    authenticate, create, list, revoke, revoke_all_from, sync_config_keys, KeyRecord,
};

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
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
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

pub(crate) fn hex(bytes: &[u8]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

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
            authenticate(&mut conn, &a).unwrap(),
            Some((rec.id.clone(), Scope::Ops))
        );
        revoke(&mut conn, &rec.id, 3, false).unwrap();
        assert_eq!(authenticate(&mut conn, &a).unwrap(), None);
        assert!(authenticate(&mut conn, &b).unwrap().is_some());
        assert_eq!(authenticate(&mut conn, "modori_nope").unwrap(), None);
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
        let scope = authenticate(&mut conn, &b.key).unwrap().map(|(_, s)| s);
        assert_eq!(scope, Some(Scope::parse("merchant:n").unwrap()));
        // Dropped from the config: revoked.
        assert_eq!(
            sync_config_keys(&mut conn, &[entry(&a, "ops")], 4).unwrap(),
            1
        );
        assert_eq!(authenticate(&mut conn, &b.key).unwrap(), None);
        // Revoked by hand: a restart with the same config does not bring it back.
        let (id, _) = authenticate(&mut conn, &a.key).unwrap().unwrap();
        revoke(&mut conn, &id, 5, false).unwrap();
        sync_config_keys(&mut conn, &[entry(&a, "ops")], 6).unwrap();
        assert_eq!(authenticate(&mut conn, &a.key).unwrap(), None);
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
