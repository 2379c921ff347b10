//! One way for the store's functions to run a statement on either backend: [`Sql`], served by
//! a SQLite connection and by a PostgreSQL client ([`PgSql`]).
//!
//! A statement is written once, in the SQL both backends read, with SQLite's numbered
//! placeholders (`?1`, `?2`, …); on PostgreSQL they become `$1`, `$2`, … Where the dialects
//! differ, the function asks [`Sql::dialect`] and picks its text. Values cross as [`Value`]s:
//! whole numbers as 64-bit integers on both (PostgreSQL's columns are `BIGINT`; a sum is cast
//! to `BIGINT` in the statement, since PostgreSQL sums into `NUMERIC`), truth as 0 and 1 like
//! SQLite's, text, bytes and reals as themselves.
//!
//! The apply path keeps its own SQLite statements (prepared once per batch); this is for the
//! rest of the store, where a row costs more in the network than in its conversion.

use std::collections::HashMap;

use postgres::types::{IsNull, ToSql, Type};
use thiserror::Error;

/// The SQL a backend reads, for the statements whose text differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a statement or read from a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Int(_) => "an integer",
            Self::Real(_) => "a real",
            Self::Text(_) => "text",
            Self::Blob(_) => "bytes",
        }
    }
}

#[derive(Debug, Error)]
pub enum SqlError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The server's words, its SQLSTATE, and the statement that failed.
    #[error("PostgreSQL: {message} ({code}) in {statement:?}")]
    Postgres {
        code: String,
        message: String,
        statement: String,
    },
    /// No answer from the server (the connection broke, or a timeout).
    #[error("PostgreSQL: {0}")]
    Connection(String),
    #[error("column {column}: expected {expected}, found {found}")]
    Column {
        column: usize,
        expected: &'static str,
        found: &'static str,
    },
    #[error("parameter {index} is {found}, which PostgreSQL cannot bind as {expected}")]
    Param {
        index: usize,
        expected: String,
        found: &'static str,
    },
    #[error("the statement returned no row")]
    NoRow,
}

impl SqlError {
    /// A row with this key is stored already (SQLite's constraint error, PostgreSQL's class 23).
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                f.code == rusqlite::ErrorCode::ConstraintViolation
            }
            Self::Postgres { code, .. } => code.starts_with("23"),
            _ => false,
        }
    }

    fn postgres(e: postgres::Error, statement: &str) -> Self {
        match e.as_db_error() {
            Some(db) => Self::Postgres {
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
                statement: statement
                    .chars()
                    .take(STATEMENT_IN_ERROR_CHARS_MAX)
                    .collect(),
            },
            None => Self::Connection(e.to_string()),
        }
    }
}

/// How much of a failed statement an error repeats: enough to find it in the code.
const STATEMENT_IN_ERROR_CHARS_MAX: usize = 200;

/// A Rust value a statement can take.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
int_to_value!(i64, i32, u32, i16, u16, u8);

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// A Rust value a column can be read as.
pub trait FromValue: Sized {
    fn from_value(column: usize, v: &Value) -> Result<Self, SqlError>;
}

fn wrong(column: usize, expected: &'static str, v: &Value) -> SqlError {
    SqlError::Column {
        column,
        expected,
        found: v.type_name(),
    }
}

impl FromValue for i64 {
    fn from_value(column: usize, v: &Value) -> Result<Self, SqlError> {
        match v {
            Value::Int(i) => Ok(*i),
            other => Err(wrong(column, "an integer", other)),
        }
    }
}

impl FromValue for bool {
    fn from_value(column: usize, v: &Value) -> Result<Self, SqlError> {
        match v {
            Value::Int(i) => Ok(*i != 0),
            other => Err(wrong(column, "0 or 1", other)),
        }
    }
}

impl FromValue for f64 {
    fn from_value(column: usize, v: &Value) -> Result<Self, SqlError> {
        match v {
            Value::Real(r) => Ok(*r),
            // As SQLite's own conversion does: a whole number read as a real.
            Value::Int(i) => Ok(*i as f64),
            other => Err(wrong(column, "a real", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(column: usize, v: &Value) -> Result<Self, SqlError> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(wrong(column, "text", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(column: usize, v: &Value) -> Result<Self, SqlError> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(wrong(column, "bytes", other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(column: usize, v: &Value) -> Result<Self, SqlError> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(column, v).map(Some),
        }
    }
}

/// One row of an answer, read by column index.
#[derive(Clone, Debug, PartialEq)]
pub struct Row(Vec<Value>);

impl Row {
    pub fn get<T: FromValue>(&self, column: usize) -> Result<T, SqlError> {
        T::from_value(column, self.0.get(column).unwrap_or(&Value::Null))
    }
}

/// A connection the store's functions run statements on.
pub trait Sql {
    fn dialect(&self) -> Dialect;

    /// Runs a statement that returns no rows; how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<u64, SqlError>;

    /// Runs a statement and reads every row it returns.
    fn query(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>, SqlError>;

    /// Runs statements separated by semicolons, without parameters (transaction control).
    fn batch(&mut self, sql: &str) -> Result<(), SqlError>;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Option<Row>, SqlError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row; [`SqlError::NoRow`] when there is none.
    fn query_one(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Row, SqlError> {
        self.query_opt(sql, params)?.ok_or(SqlError::NoRow)
    }
}

impl dyn Sql + '_ {
    /// Every row, each read by `f`.
    pub fn map_rows<T>(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
        f: impl FnMut(&Row) -> Result<T, SqlError>,
    ) -> Result<Vec<T>, SqlError> {
        self.query(sql, params)?.iter().map(f).collect()
    }

    /// The first row read by `f`, if there is one.
    pub fn map_row_opt<T>(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
        f: impl FnOnce(&Row) -> Result<T, SqlError>,
    ) -> Result<Option<T>, SqlError> {
        self.query_opt(sql, params)?.as_ref().map(f).transpose()
    }

    /// Column 0 of the first row, which must exist (a count, a sum cast to BIGINT).
    pub fn one_value<T: FromValue>(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
    ) -> Result<T, SqlError> {
        self.query_one(sql, params)?.get(0)
    }
}

/// The advisory lock every write transaction on PostgreSQL takes first (any number the
/// database's other users do not take; this is "modori" in ASCII).
pub const PG_WRITE_LOCK: i64 = 0x6d6f_646f_7269;

/// Runs `f` in a write transaction: committed when `f` succeeds, rolled back when it fails.
///
/// Writers are serialised on both backends, so a check and the write it allows can never
/// interleave with another writer's: SQLite's `BEGIN IMMEDIATE` takes the database's one
/// write lock at the start; on PostgreSQL the transaction takes [`PG_WRITE_LOCK`] (released at
/// its end), which serialises the writers of every coordinator sharing the database. Reads
/// outside a transaction run at once on both.
pub fn in_transaction<T, E>(
    conn: &mut dyn Sql,
    f: impl FnOnce(&mut dyn Sql) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<SqlError>,
{
    let begin = match conn.dialect() {
        Dialect::Sqlite => "BEGIN IMMEDIATE".to_owned(),
        Dialect::Postgres => format!("BEGIN; SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})"),
    };
    conn.batch(&begin)?;
    match f(conn) {
        Ok(value) => {
            conn.batch("COMMIT")?;
            Ok(value)
        }
        Err(e) => {
            // The error that made `f` fail is the one to report; a failed rollback (the
            // connection broken) ends the transaction anyway.
            let _ = conn.batch("ROLLBACK");
            Err(e)
        }
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null => ValueRef::Null,
            Self::Int(i) => ValueRef::Integer(*i),
            Self::Real(r) => ValueRef::Real(*r),
            Self::Text(s) => ValueRef::Text(s.as_bytes()),
            Self::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn values(params: &[&dyn ToValue]) -> Vec<Value> {
    params.iter().map(|p| p.to_value()).collect()
}

fn sqlite_execute(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[&dyn ToValue],
) -> Result<u64, SqlError> {
    let n = conn
        .prepare_cached(sql)?
        .execute(rusqlite::params_from_iter(values(params)))?;
    Ok(n as u64)
}

fn sqlite_query(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[&dyn ToValue],
) -> Result<Vec<Row>, SqlError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let n_columns = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(values(params)))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(n_columns);
        for i in 0..n_columns {
            row.push(sqlite_value(r.get_ref(i)?));
        }
        out.push(Row(row));
    }
    Ok(out)
}

/// SQLite's statements need only a shared borrow of the connection, however the caller holds it.
macro_rules! sqlite_sql {
    ($($t:ty => |$c:ident| $conn:expr),* $(,)?) => {$(
        impl Sql for $t {
            fn dialect(&self) -> Dialect {
                Dialect::Sqlite
            }

            fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<u64, SqlError> {
                let $c = &*self;
                sqlite_execute($conn, sql, params)
            }

            fn query(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>, SqlError> {
                let $c = &*self;
                sqlite_query($conn, sql, params)
            }

            fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
                let $c = &*self;
                Ok($conn.execute_batch(sql)?)
            }
        }
    )*};
}

/// A SQLite connection (or transaction) a caller holds only by shared reference, as an
/// [`Sql`]: `&mut sqlite(&tx)`.
pub struct SqliteRef<'c>(&'c rusqlite::Connection);

pub fn sqlite(conn: &rusqlite::Connection) -> SqliteRef<'_> {
    SqliteRef(conn)
}

// A rusqlite transaction a caller already opened is an `Sql` too: the modules not yet written
// over `Sql` hand theirs to those that are.
sqlite_sql! {
    rusqlite::Connection => |c| c,
    rusqlite::Transaction<'_> => |c| c,
    SqliteRef<'_> => |c| c.0,
}

/// A PostgreSQL client with the statements it has prepared, by their SQLite text.
pub struct PgSql {
    client: postgres::Client,
    prepared: HashMap<String, postgres::Statement>,
}

/// Statements a PostgreSQL connection keeps prepared before it forgets them all: more than
/// the store's distinct statements, so in practice each is prepared once per connection.
pub const PG_PREPARED_MAX: usize = 1_024;

impl PgSql {
    pub fn new(client: postgres::Client) -> Self {
        Self {
            client,
            prepared: HashMap::new(),
        }
    }

    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, SqlError> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let text = numbered_placeholders(sql);
        let stmt = self
            .client
            .prepare(&text)
            .map_err(|e| SqlError::postgres(e, sql))?;
        if self.prepared.len() >= PG_PREPARED_MAX {
            self.prepared.clear();
        }
        self.prepared.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    fn bind(stmt: &postgres::Statement, params: &[&dyn ToValue]) -> Result<Vec<PgParam>, SqlError> {
        params
            .iter()
            .zip(stmt.params())
            .enumerate()
            .map(|(i, (p, ty))| PgParam::new(i + 1, p.to_value(), ty))
            .collect()
    }
}

impl Sql for PgSql {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<u64, SqlError> {
        let stmt = self.statement(sql)?;
        let bound = Self::bind(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as _).collect();
        self.client
            .execute(&stmt, &refs)
            .map_err(|e| SqlError::postgres(e, sql))
    }

    fn query(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>, SqlError> {
        let stmt = self.statement(sql)?;
        let bound = Self::bind(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as _).collect();
        let rows = self
            .client
            .query(&stmt, &refs)
            .map_err(|e| SqlError::postgres(e, sql))?;
        rows.iter().map(pg_row).collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        self.client
            .batch_execute(sql)
            .map_err(|e| SqlError::postgres(e, sql))
    }
}

/// SQLite's `?N` placeholders as PostgreSQL's `$N`, leaving quoted text and names alone.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

/// A value bound as the type PostgreSQL inferred for its placeholder.
#[derive(Debug)]
enum PgParam {
    Null,
    Int8(i64),
    Int4(i32),
    Int2(i16),
    Bool(bool),
    Float8(f64),
    Text(String),
    Bytea(Vec<u8>),
}

impl PgParam {
    fn new(index: usize, v: Value, ty: &Type) -> Result<Self, SqlError> {
        let refuse = |v: &Value| SqlError::Param {
            index,
            expected: ty.name().to_owned(),
            found: v.type_name(),
        };
        Ok(match (v, ty) {
            (Value::Null, _) => Self::Null,
            (Value::Int(i), &Type::INT8) => Self::Int8(i),
            (Value::Int(i), &Type::INT4) => {
                Self::Int4(i32::try_from(i).map_err(|_| refuse(&Value::Int(i)))?)
            }
            (Value::Int(i), &Type::INT2) => {
                Self::Int2(i16::try_from(i).map_err(|_| refuse(&Value::Int(i)))?)
            }
            (Value::Int(i), &Type::BOOL) => Self::Bool(i != 0),
            (Value::Int(i), &Type::FLOAT8) => Self::Float8(i as f64),
            (Value::Real(r), &Type::FLOAT8) => Self::Float8(r),
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => {
                Self::Text(s)
            }
            (Value::Blob(b), &Type::BYTEA) => Self::Bytea(b),
            (v, _) => return Err(refuse(&v)),
        })
    }
}

impl ToSql for PgParam {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Int8(i) => i.to_sql(ty, out),
            Self::Int4(i) => i.to_sql(ty, out),
            Self::Int2(i) => i.to_sql(ty, out),
            Self::Bool(b) => b.to_sql(ty, out),
            Self::Float8(r) => r.to_sql(ty, out),
            Self::Text(s) => s.to_sql(ty, out),
            Self::Bytea(b) => b.to_sql(ty, out),
        }
    }

    // Each value was made for the type its placeholder has (see `PgParam::new`).
    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn pg_row(row: &postgres::Row) -> Result<Row, SqlError> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let get_err = |e: postgres::Error| SqlError::Connection(e.to_string());
        let value = match *column.type_() {
            Type::INT8 => row
                .try_get::<_, Option<i64>>(i)
                .map_err(get_err)?
                .map(Value::Int),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map_err(get_err)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map_err(get_err)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map_err(get_err)?
                .map(|v| Value::Int(v.into())),
            Type::FLOAT8 => row
                .try_get::<_, Option<f64>>(i)
                .map_err(get_err)?
                .map(Value::Real),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(i)
                .map_err(get_err)?
                .map(|v| Value::Real(v.into())),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => row
                .try_get::<_, Option<String>>(i)
                .map_err(get_err)?
                .map(Value::Text),
            Type::BYTEA => row
                .try_get::<_, Option<Vec<u8>>>(i)
                .map_err(get_err)?
                .map(Value::Blob),
            _ => {
                return Err(SqlError::Column {
                    column: i,
                    expected: "a column of BIGINT, INTEGER, BOOLEAN, DOUBLE PRECISION, TEXT or BYTEA (cast a sum to BIGINT)",
                    found: "another type",
                })
            }
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes_only() {
        assert_eq!(
            numbered_placeholders("SELECT '?1', \"a?\" FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', \"a?\" FROM t WHERE a = $1 AND b = $12"
        );
        assert_eq!(
            numbered_placeholders("SELECT 'it''s ?2' WHERE x = ?2"),
            "SELECT 'it''s ?2' WHERE x = $2"
        );
    }

    #[test]
    fn sqlite_reads_back_what_it_was_given() {
        let mut sqlite = rusqlite::Connection::open_in_memory().unwrap();
        let conn: &mut dyn Sql = &mut sqlite;
        conn.batch("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n INTEGER)")
            .unwrap();
        let n = conn
            .execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
                &[&-7i64, &1.5f64, &"日本", &vec![0u8, 255], &None::<i64>],
            )
            .unwrap();
        assert_eq!(n, 1);
        let row = conn.query_one("SELECT i, r, s, b, n FROM t", &[]).unwrap();
        assert_eq!(row.get::<i64>(0).unwrap(), -7);
        assert_eq!(row.get::<f64>(1).unwrap(), 1.5);
        assert_eq!(row.get::<String>(2).unwrap(), "日本");
        assert_eq!(row.get::<Vec<u8>>(3).unwrap(), vec![0, 255]);
        assert_eq!(row.get::<Option<i64>>(4).unwrap(), None);
        assert!(matches!(
            row.get::<i64>(2),
            Err(SqlError::Column { column: 2, .. })
        ));
    }

    #[test]
    fn a_transaction_that_fails_leaves_nothing() {
        let mut sqlite = rusqlite::Connection::open_in_memory().unwrap();
        let conn: &mut dyn Sql = &mut sqlite;
        conn.batch("CREATE TABLE t (k TEXT PRIMARY KEY)").unwrap();
        let r: Result<(), SqlError> = in_transaction(conn, |tx| {
            tx.execute("INSERT INTO t VALUES (?1)", &[&"a"])?;
            tx.execute("INSERT INTO t VALUES (?1)", &[&"a"])?;
            Ok(())
        });
        let e = r.unwrap_err();
        assert!(e.is_conflict(), "{e}");
        let n: i64 = conn
            .query_one("SELECT COUNT(*) FROM t", &[])
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(n, 0);
    }
}
