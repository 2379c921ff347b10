//! The `sessions` table: browser sessions of the dashboard and the store counter, kept in the
//! database so a restart logs nobody out. Only the SHA-256 of a session id is stored, with the
//! key it was opened by, its scope and its expiry; a session whose key is no longer live is
//! gone, whatever revoked the key (the API, the command line, the config).

use super::sql::{in_transaction, Sql, SqlError};

use crate::apikeys::{ApiKeyError, Scope};

/// The migration that makes the table (appended to `schema::migrations`).
pub const MIGRATION: &str = r#"
    CREATE TABLE sessions (
        sha256     TEXT PRIMARY KEY,
        key_id     TEXT NOT NULL,
        scope      TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX sessions_expiry ON sessions (expires_ms);
    CREATE INDEX sessions_key ON sessions (key_id);
"#;

/// A logged-in browser as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub key_id: String,
    pub scope: Scope,
    pub expires_ms: i64,
}

/// Stores a session under the hash of its id; expired sessions are pruned first and, past
/// `n_max`, those closest to expiry make room. Returns how many sessions are open.
pub fn open(
    conn: &mut dyn Sql,
    sha256: &str,
    session: &Session,
    now_ms: i64,
    n_max: usize,
) -> Result<usize, ApiKeyError> {
    let n_open = in_transaction(conn, |tx| {
        tx.execute("DELETE FROM sessions WHERE expires_ms <= ?1", &[&now_ms])?;
        let n_open = count_in(tx)?;
        let n_max = i64::try_from(n_max).unwrap_or(i64::MAX).max(1);
        if n_open >= n_max {
            tx.execute(
                "DELETE FROM sessions WHERE sha256 IN
                     (SELECT sha256 FROM sessions ORDER BY expires_ms, sha256 LIMIT ?1)",
                &[&(n_open - n_max + 1)],
            )?;
        }
        tx.execute(
            "INSERT INTO sessions (sha256, key_id, scope, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                &sha256,
                &session.key_id,
                &session.scope.to_string(),
                &now_ms,
                &session.expires_ms,
            ],
        )?;
        count_in(tx)
    })?;
    Ok(usize::try_from(n_open).unwrap_or(0))
}

fn count_in(conn: &mut dyn Sql) -> Result<i64, SqlError> {
    conn.query_one("SELECT COUNT(*) FROM sessions", &[])?.get(0)
}

/// The session stored under `sha256` if it has not expired and its key is live. An expired
/// session, or one whose key was revoked, is deleted on the way.
pub fn live(conn: &mut dyn Sql, sha256: &str, now_ms: i64) -> Result<Option<Session>, ApiKeyError> {
    let Some(row) = conn.query_opt(
        "SELECT s.key_id, s.scope, s.expires_ms,
                EXISTS (SELECT 1 FROM api_keys k WHERE k.id = s.key_id AND k.revoked_ms IS NULL)
         FROM sessions s WHERE s.sha256 = ?1",
        &[&sha256],
    )?
    else {
        return Ok(None);
    };
    let (key_id, scope, expires_ms, key_live): (String, String, i64, bool) =
        (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
    if expires_ms <= now_ms || !key_live {
        close(conn, sha256)?;
        return Ok(None);
    }
    let scope = Scope::parse(&scope).map_err(|_| ApiKeyError::Corrupt {
        id: key_id.clone(),
        scope,
    })?;
    Ok(Some(Session {
        key_id,
        scope,
        expires_ms,
    }))
}

/// Ends the session stored under `sha256` (a logout); ending an unknown one changes nothing.
pub fn close(conn: &mut dyn Sql, sha256: &str) -> Result<(), ApiKeyError> {
    conn.execute("DELETE FROM sessions WHERE sha256 = ?1", &[&sha256])?;
    Ok(())
}

/// Ends every session opened by key `key_id` (the key was revoked).
pub fn close_of_key(conn: &mut dyn Sql, key_id: &str) -> Result<u64, ApiKeyError> {
    Ok(conn.execute("DELETE FROM sessions WHERE key_id = ?1", &[&key_id])?)
}

/// Deletes the sessions that expired by `now_ms`, and those of keys no longer live; returns
/// how many.
pub fn prune(conn: &mut dyn Sql, now_ms: i64) -> Result<u64, ApiKeyError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE expires_ms <= ?1
            OR NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.id = sessions.key_id AND k.revoked_ms IS NULL)",
        &[&now_ms],
    )?)
}

/// How many sessions are stored.
pub fn count(conn: &mut dyn Sql) -> Result<usize, ApiKeyError> {
    Ok(usize::try_from(count_in(conn)?).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apikeys::Source;
    use crate::store::apikeys;

    fn db() -> rusqlite::Connection {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrations().to_latest(&mut conn).unwrap();
        conn
    }

    fn session(key_id: &str, expires_ms: i64) -> Session {
        Session {
            key_id: key_id.into(),
            scope: Scope::Ops,
            expires_ms,
        }
    }

    #[test]
    fn a_session_lives_until_it_expires_or_its_key_is_revoked() {
        let mut conn = db();
        let (_, key) = apikeys::create(&mut conn, &Scope::Ops, None, Source::Api, 0).unwrap();
        let (_, other) = apikeys::create(&mut conn, &Scope::Ops, None, Source::Api, 0).unwrap();
        open(&mut conn, "a", &session(&key.id, 100), 0, 10).unwrap();
        open(&mut conn, "b", &session(&other.id, 100), 0, 10).unwrap();
        assert_eq!(
            live(&mut conn, "a", 99).unwrap(),
            Some(session(&key.id, 100))
        );
        assert_eq!(live(&mut conn, "zz", 1).unwrap(), None);
        assert_eq!(live(&mut conn, "a", 100).unwrap(), None);
        assert_eq!(
            count(&mut conn).unwrap(),
            1,
            "the expired session was deleted"
        );
        apikeys::revoke(&mut conn, &other.id, 1, false).unwrap();
        assert_eq!(live(&mut conn, "b", 1).unwrap(), None);
        assert_eq!(count(&mut conn).unwrap(), 0);
    }

    #[test]
    fn opening_prunes_the_expired_and_keeps_at_most_n_max() {
        let mut conn = db();
        let (_, key) = apikeys::create(&mut conn, &Scope::Ops, None, Source::Api, 0).unwrap();
        open(&mut conn, "old", &session(&key.id, 10), 0, 3).unwrap();
        for (i, h) in ["a", "b", "c"].iter().enumerate() {
            open(&mut conn, h, &session(&key.id, 100 + i as i64), 20, 3).unwrap();
        }
        assert_eq!(count(&mut conn).unwrap(), 3);
        assert_eq!(live(&mut conn, "old", 20).unwrap(), None);
        assert_eq!(
            live(&mut conn, "a", 21).unwrap(),
            Some(session(&key.id, 100))
        );
        assert_eq!(
            open(&mut conn, "d", &session(&key.id, 200), 21, 3).unwrap(),
            3
        );
        assert_eq!(
            live(&mut conn, "a", 21).unwrap(),
            None,
            "closest to expiry made room"
        );
        assert!(live(&mut conn, "d", 21).unwrap().is_some());
        assert_eq!(prune(&mut conn, 102).unwrap(), 2);
        assert_eq!(count(&mut conn).unwrap(), 1);
    }
}
