//! Leases on background work. Coordinators sharing one database each run the same periodic
//! workers (sweeps, webhook deliveries, customer messages, alert notices); a worker does its
//! round only while its coordinator holds the worker's lease, so at most one does it at a time.
//! A holder renews its lease before it runs out; one that died stops renewing, and another takes
//! the lease once its term has passed.
//!
//! The lease is for work that must not run twice at once; the work's own durable marks (outbox
//! cursors, unique keys) are what make each effect happen once, lease or not. Terms are read on
//! each holder's clock: a term must be longer than the coordinators' clocks can differ.

use super::sql::{in_transaction, Sql};
use super::StoreError;

/// The migration that makes the table (appended to `schema::migrations`).
pub const MIGRATION: &str = r#"
    CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        taken_ms   INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    ) STRICT;
"#;

/// The same on PostgreSQL.
pub const MIGRATION_PG: &str = r#"
    CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        taken_ms   BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
"#;

/// What asking for a lease found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lease {
    /// The caller holds it until `expires_ms`; `taken_ms` is when its hold began (now, when it
    /// was free, expired, or another's).
    Held { taken_ms: i64, expires_ms: i64 },
    /// Another holds it, until `expires_ms` unless renewed.
    HeldBy { holder: String, expires_ms: i64 },
}

/// Takes or renews lease `name` for `holder` until `now_ms + term_ms`, unless another holds it
/// past `now_ms`. One write transaction: two coordinators asking at once are serialised, and
/// the second sees the first's hold.
pub fn acquire(
    conn: &mut dyn Sql,
    name: &str,
    holder: &str,
    now_ms: i64,
    term_ms: i64,
) -> Result<Lease, StoreError> {
    let expires_ms = now_ms.saturating_add(term_ms);
    in_transaction(conn, |tx| {
        let current = tx.map_row_opt(
            "SELECT holder, taken_ms, expires_ms FROM leases WHERE name = ?1",
            &[&name],
            |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?, r.get::<i64>(2)?)),
        )?;
        let taken_ms = match current {
            Some((other, _, until)) if other != holder && until > now_ms => {
                return Ok(Lease::HeldBy {
                    holder: other,
                    expires_ms: until,
                })
            }
            Some((same, taken, _)) if same == holder => taken,
            _ => now_ms,
        };
        tx.execute(
            "INSERT INTO leases (name, holder, taken_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                 taken_ms = excluded.taken_ms, expires_ms = excluded.expires_ms",
            &[&name, &holder, &taken_ms, &expires_ms],
        )?;
        Ok(Lease::Held {
            taken_ms,
            expires_ms,
        })
    })
}

/// Gives up `holder`'s lease on `name` (at a clean stop, so another need not wait out the
/// term). Whether it held it.
pub fn release(conn: &mut dyn Sql, name: &str, holder: &str) -> Result<bool, StoreError> {
    let n = in_transaction(conn, |tx| {
        tx.execute(
            "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
            &[&name, &holder],
        )
    })?;
    Ok(n > 0)
}

/// Ends every lease (a start on a database no other coordinator uses). How many there were.
pub fn clear_all(conn: &mut rusqlite::Connection) -> Result<u64, StoreError> {
    let conn: &mut dyn Sql = conn;
    Ok(in_transaction(conn, |tx| {
        tx.execute("DELETE FROM leases", &[])
    })?)
}

/// A lease as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub taken_ms: i64,
    pub expires_ms: i64,
}

/// Every lease, by name: who runs what (the holders are the coordinators seen lately).
pub fn all(conn: &mut dyn Sql) -> Result<Vec<LeaseRow>, StoreError> {
    Ok(conn.map_rows(
        "SELECT name, holder, taken_ms, expires_ms FROM leases ORDER BY name",
        &[],
        |r| {
            Ok(LeaseRow {
                name: r.get(0)?,
                holder: r.get(1)?,
                taken_ms: r.get(2)?,
                expires_ms: r.get(3)?,
            })
        },
    )?)
}
