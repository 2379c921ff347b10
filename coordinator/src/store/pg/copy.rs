//! Moving a stopped coordinator's SQLite database into a fresh PostgreSQL one
//! (`migrate-store`): every table copied in one transaction, in dependency order, then each
//! table's rows counted and summed on both sides before that transaction commits, so a copy
//! that differs anywhere leaves the target as it was.

use std::collections::BTreeMap;
use std::path::Path;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{migrate, PgError, PgTarget};
use crate::store::schema::MIGRATIONS;

#[derive(Debug, Error)]
pub enum TransferError {
    #[error("{path}: {source}")]
    Source {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the source database has {applied} of this build's {build} migrations: start and stop the coordinator of this build on it first, so it is current")]
    SourceNotCurrent { applied: usize, build: usize },
    #[error("the target {target} is not a fresh database (it holds {what}): create an empty one (CREATE DATABASE) and give its URL")]
    TargetNotFresh { target: String, what: String },
    #[error("table {table}: column {column} has type {declared}, which has no PostgreSQL counterpart here")]
    UnknownType {
        table: String,
        column: String,
        declared: String,
    },
    #[error("table {table}: column {column} holds a value its type does not allow ({found}); nothing was copied")]
    BadValue {
        table: String,
        column: String,
        found: &'static str,
    },
    #[error("table {table} differs after the copy: SQLite {sqlite_rows} rows, PostgreSQL {postgres_rows}; the copy was rolled back (the target keeps only the schema: drop it and create it again before another try)")]
    Differs {
        table: String,
        sqlite_rows: u64,
        postgres_rows: u64,
    },
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// One table as copied and compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableReport {
    pub table: String,
    pub rows: u64,
    /// Hex of the sum of the rows' SHA-256 digests: the same on both sides, whatever order
    /// each returns its rows in.
    pub checksum: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Integer,
    Real,
    Text,
    Blob,
}

impl Class {
    fn pg_type(self) -> Type {
        match self {
            Self::Integer => Type::INT8,
            Self::Real => Type::FLOAT8,
            Self::Text => Type::TEXT,
            Self::Blob => Type::BYTEA,
        }
    }
}

struct Table {
    name: String,
    columns: Vec<(String, Class)>,
}

impl Table {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One row's values, owned, of the classes its columns declare.
#[derive(Debug)]
enum Cell {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Cell {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Int(v) => v,
            Self::Real(v) => v,
            Self::Text(v) => v,
            Self::Blob(v) => v,
        }
    }

    /// A tag, then the value's bytes with their length, so no two rows hash alike by accident.
    fn hash_into(&self, h: &mut Sha256) {
        let (tag, bytes): (u8, Option<Vec<u8>>) = match self {
            Self::Int(v) => (1, v.map(|v| v.to_be_bytes().to_vec())),
            Self::Real(v) => (2, v.map(|v| v.to_bits().to_be_bytes().to_vec())),
            Self::Text(v) => (3, v.as_ref().map(|v| v.as_bytes().to_vec())),
            Self::Blob(v) => (4, v.clone()),
        };
        match bytes {
            None => h.update([0]),
            Some(b) => {
                h.update([tag]);
                h.update((b.len() as u64).to_be_bytes());
                h.update(&b);
            }
        }
    }
}

/// Count and order-free sum of row digests.
#[derive(Default)]
struct Tally {
    rows: u64,
    sum: u128,
}

impl Tally {
    fn add(&mut self, row: &[Cell]) {
        let mut h = Sha256::new();
        for cell in row {
            cell.hash_into(&mut h);
        }
        let digest = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(first));
        self.rows += 1;
    }

    fn checksum(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

/// Copies every table of the SQLite database at `source` (which must be current and must not
/// change meanwhile: the caller holds the data dir's lock) into the fresh PostgreSQL
/// database of `target`, migrated first; one transaction, committed only when every table's
/// count and checksum match. Returns each table's figures.
pub fn sqlite_to_postgres(
    source: &Path,
    target: &PgTarget,
    client: &mut postgres::Client,
) -> Result<Vec<TableReport>, TransferError> {
    let at = |e| TransferError::Source {
        path: source.display().to_string(),
        source: e,
    };
    let conn = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(at)?;
    let applied: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(at)?;
    if usize::try_from(applied).ok() != Some(MIGRATIONS.len()) {
        return Err(TransferError::SourceNotCurrent {
            applied: usize::try_from(applied).unwrap_or(0),
            build: MIGRATIONS.len(),
        });
    }
    let tables = tables_in_dependency_order(&conn).map_err(at)??;
    refuse_unless_fresh(client, target)?;
    migrate::to_latest(client, target)?;

    let q = |e| TransferError::Pg(target.query_error(e));
    let mut tx = client.transaction().map_err(q)?;
    // The migrations seed some rows (the notification marks); the copy brings the source's.
    for t in tables.iter().rev() {
        tx.execute(&format!("DELETE FROM \"{}\"", t.name), &[])
            .map_err(q)?;
    }
    let mut reports = Vec::new();
    for t in &tables {
        let types: Vec<Type> = t.columns.iter().map(|(_, c)| c.pg_type()).collect();
        let mut sqlite_tally = Tally::default();
        {
            let sink = tx
                .copy_in(&format!(
                    "COPY \"{}\" ({}) FROM STDIN BINARY",
                    t.name,
                    t.column_list()
                ))
                .map_err(q)?;
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            let mut stmt = conn
                .prepare(&format!("SELECT {} FROM \"{}\"", t.column_list(), t.name))
                .map_err(at)?;
            let mut rows = stmt.query([]).map_err(at)?;
            while let Some(r) = rows.next().map_err(at)? {
                let mut row = Vec::with_capacity(t.columns.len());
                for (i, (column, class)) in t.columns.iter().enumerate() {
                    let cell = sqlite_cell(r.get_ref(i).map_err(at)?, *class).map_err(|found| {
                        TransferError::BadValue {
                            table: t.name.clone(),
                            column: column.clone(),
                            found,
                        }
                    })?;
                    row.push(cell);
                }
                sqlite_tally.add(&row);
                let values: Vec<&(dyn ToSql + Sync)> = row.iter().map(Cell::as_sql).collect();
                writer.write(&values).map_err(q)?;
            }
            writer.finish().map_err(q)?;
        }
        reset_identities(&mut tx, &t.name).map_err(q)?;
        let pg_tally = postgres_tally(&mut tx, t).map_err(q)?;
        if pg_tally.rows != sqlite_tally.rows || pg_tally.sum != sqlite_tally.sum {
            return Err(TransferError::Differs {
                table: t.name.clone(),
                sqlite_rows: sqlite_tally.rows,
                postgres_rows: pg_tally.rows,
            });
        }
        reports.push(TableReport {
            table: t.name.clone(),
            rows: sqlite_tally.rows,
            checksum: sqlite_tally.checksum(),
        });
    }
    tx.commit().map_err(q)?;
    Ok(reports)
}

/// A value as SQLite holds it, in its column's class (STRICT tables hold nothing else; text
/// that is not UTF-8 would not survive the copy unchanged, so it is refused, not mended).
fn sqlite_cell(v: ValueRef<'_>, class: Class) -> Result<Cell, &'static str> {
    Ok(match (class, v) {
        (Class::Integer, ValueRef::Null) => Cell::Int(None),
        (Class::Integer, ValueRef::Integer(i)) => Cell::Int(Some(i)),
        (Class::Real, ValueRef::Null) => Cell::Real(None),
        (Class::Real, ValueRef::Real(f)) => Cell::Real(Some(f)),
        (Class::Text, ValueRef::Null) => Cell::Text(None),
        (Class::Text, ValueRef::Text(t)) => Cell::Text(Some(
            std::str::from_utf8(t)
                .map_err(|_| "text that is not UTF-8")?
                .to_owned(),
        )),
        (Class::Blob, ValueRef::Null) => Cell::Blob(None),
        (Class::Blob, ValueRef::Blob(b)) => Cell::Blob(Some(b.to_vec())),
        (_, ValueRef::Integer(_)) => return Err("an integer"),
        (_, ValueRef::Real(_)) => return Err("a real"),
        (_, ValueRef::Text(_)) => return Err("text"),
        (_, ValueRef::Blob(_)) => return Err("a blob"),
    })
}

fn postgres_tally(tx: &mut postgres::Transaction<'_>, t: &Table) -> Result<Tally, postgres::Error> {
    let mut tally = Tally::default();
    let sql = format!("SELECT {} FROM \"{}\"", t.column_list(), t.name);
    let params: [&(dyn ToSql + Sync); 0] = [];
    let mut rows = tx.query_raw(&sql, params)?;
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(t.columns.len());
        for (i, (_, class)) in t.columns.iter().enumerate() {
            row.push(match class {
                Class::Integer => Cell::Int(r.try_get(i)?),
                Class::Real => Cell::Real(r.try_get(i)?),
                Class::Text => Cell::Text(r.try_get(i)?),
                Class::Blob => Cell::Blob(r.try_get(i)?),
            });
        }
        tally.add(&row);
    }
    Ok(tally)
}

/// An identity column given its values by the copy does not advance its sequence: the next
/// row the store inserts must not reuse an id.
fn reset_identities(
    tx: &mut postgres::Transaction<'_>,
    table: &str,
) -> Result<(), postgres::Error> {
    let identities: Vec<String> = tx
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND is_identity = 'YES'",
            &[&table],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for column in identities {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), \
                 COALESCE(MAX(\"{column}\"), 0) + 1, false) FROM \"{table}\""
            ),
            &[&table, &column],
        )?;
    }
    Ok(())
}

fn refuse_unless_fresh(
    client: &mut postgres::Client,
    target: &PgTarget,
) -> Result<(), TransferError> {
    let n_tables: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
            &[],
        )
        .map_err(|e| target.query_error(e))?
        .get(0);
    if n_tables > 0 {
        return Err(TransferError::TargetNotFresh {
            target: target.describe(),
            what: format!("{n_tables} tables"),
        });
    }
    Ok(())
}

/// The source's tables, each after those its foreign keys name.
fn tables_in_dependency_order(
    conn: &Connection,
) -> rusqlite::Result<Result<Vec<Table>, TransferError>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for name in &names {
        let refs: Vec<String> = conn
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")?
            .query_map([name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        parents.insert(name.clone(), refs);
        let mut columns = Vec::new();
        let mut stmt = conn.prepare("SELECT name, type FROM pragma_table_info(?1)")?;
        let mut rows = stmt.query([name])?;
        while let Some(r) = rows.next()? {
            let (column, declared): (String, String) = (r.get(0)?, r.get(1)?);
            let class = match declared.to_ascii_uppercase().as_str() {
                "INTEGER" => Class::Integer,
                "REAL" => Class::Real,
                "TEXT" => Class::Text,
                "BLOB" => Class::Blob,
                _ => {
                    return Ok(Err(TransferError::UnknownType {
                        table: name.clone(),
                        column,
                        declared,
                    }))
                }
            };
            columns.push((column, class));
        }
        tables.insert(
            name.clone(),
            Table {
                name: name.clone(),
                columns,
            },
        );
    }
    let mut ordered = Vec::new();
    let mut placed = std::collections::BTreeSet::new();
    // Each pass places the tables whose parents are placed; the schema's keys have no cycle,
    // so every pass places one at least.
    while placed.len() < names.len() {
        let before = placed.len();
        for name in &names {
            if !placed.contains(name)
                && parents[name]
                    .iter()
                    .all(|p| placed.contains(p) || p == name)
            {
                placed.insert(name.clone());
                if let Some(t) = tables.remove(name) {
                    ordered.push(t);
                }
            }
        }
        assert!(
            placed.len() > before,
            "the schema's foreign keys form a cycle"
        );
    }
    Ok(Ok(ordered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_another_type_or_not_utf8_are_refused() {
        assert!(matches!(
            sqlite_cell(ValueRef::Integer(7), Class::Integer),
            Ok(Cell::Int(Some(7)))
        ));
        assert!(matches!(
            sqlite_cell(ValueRef::Null, Class::Text),
            Ok(Cell::Text(None))
        ));
        assert_eq!(
            sqlite_cell(ValueRef::Text(b"7"), Class::Integer).err(),
            Some("text")
        );
        assert_eq!(
            sqlite_cell(ValueRef::Text(&[0xff, 0xfe]), Class::Text).err(),
            Some("text that is not UTF-8")
        );
    }

    #[test]
    fn the_checksum_ignores_row_order_and_sees_every_value() {
        let row = |a: i64, b: &str| vec![Cell::Int(Some(a)), Cell::Text(Some(b.to_owned()))];
        let (mut one, mut other) = (Tally::default(), Tally::default());
        one.add(&row(1, "a"));
        one.add(&row(2, "b"));
        other.add(&row(2, "b"));
        other.add(&row(1, "a"));
        assert_eq!(one.checksum(), other.checksum());
        let mut changed = Tally::default();
        changed.add(&row(1, "a"));
        changed.add(&row(2, "c"));
        assert_ne!(one.checksum(), changed.checksum());
        // NULL is not the empty text.
        let (mut null, mut empty) = (Tally::default(), Tally::default());
        null.add(&[Cell::Text(None)]);
        empty.add(&[Cell::Text(Some(String::new()))]);
        assert_ne!(null.checksum(), empty.checksum());
    }
}
