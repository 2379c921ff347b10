//! The returns list ops search and export: one filter (search words, status, site, store,
//! merchant, a range of registration times), one sort, a page or an export of what matches.
//!
//! Every search term is answerable from an index: the RMA by prefix (its primary key), the
//! order reference, customer reference and tracking number exactly (their own indexes), the
//! customer's name by prefix (`returns_customer_name`); the filters by `returns_site_created`,
//! `returns_merchant_created`, `returns_origin_store` and `returns_status_created`.

use serde::Serialize;

use modori_runtime::sqlite::to_i64;

use super::sql::{Sql, ToValue, Value};
use super::StoreError;

/// The migration that adds the list's indexes (appended to `schema::migrations`).
pub const MIGRATION: &str = r#"
    CREATE INDEX returns_site_created ON returns (site, created_ms);
    CREATE INDEX returns_merchant_created ON returns (merchant, created_ms);
    CREATE INDEX returns_customer_name ON returns (customer_name);
"#;

/// What a list is narrowed to; `None` is "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReturnFilter {
    /// An RMA or name prefix, or an order reference, customer reference or tracking number.
    pub search: Option<String>,
    pub status: Option<String>,
    pub site: Option<String>,
    /// The store it was registered at.
    pub store: Option<String>,
    pub merchant: Option<String>,
    /// Registered at or after (Unix ms).
    pub from_ms: Option<i64>,
    /// Registered before (Unix ms).
    pub until_ms: Option<i64>,
}

/// The column a list is ordered by; ties are broken by RMA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    Created,
    Rma,
    Status,
    Site,
    Merchant,
    Store,
}

impl SortKey {
    /// Every key with its name in queries, in the order the API document lists them.
    pub const ALL: [(&'static str, SortKey); 6] = [
        ("created", SortKey::Created),
        ("rma", SortKey::Rma),
        ("status", SortKey::Status),
        ("site", SortKey::Site),
        ("merchant", SortKey::Merchant),
        ("store", SortKey::Store),
    ];

    fn column(self) -> &'static str {
        match self {
            SortKey::Created => "created_ms",
            SortKey::Rma => "rma",
            SortKey::Status => "status",
            SortKey::Site => "site",
            SortKey::Merchant => "merchant",
            SortKey::Store => "origin_store",
        }
    }
}

/// A sort: a key and a direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

/// One return as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ListedReturn {
    pub rma: String,
    /// expected, receiving, received, cancelled or expired.
    pub status: String,
    pub site: String,
    pub merchant: Option<String>,
    /// The store it was registered at, if any.
    pub store: Option<String>,
    pub order_ref: Option<String>,
    pub customer_ref: Option<String>,
    pub customer_name: Option<String>,
    pub tracking: Option<String>,
    /// refund, store_credit or exchange.
    pub resolution: Option<String>,
    /// What its lines are worth, in yen, when the catalogue priced them.
    pub value_yen: Option<i64>,
    pub created_ms: i64,
}

/// A page of a list and how many returns match in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnPage {
    pub rows: Vec<ListedReturn>,
    pub n_total: u64,
}

/// The first character past every string a prefix starts: `x >= p AND x < p || MAX` is a
/// prefix match an index can answer (LIKE cannot, being case-insensitive).
const PREFIX_END: char = char::MAX;

/// A parameter of a list's statement: the filter's values are text and times.
#[derive(Clone, Debug)]
struct Param(Value);

impl ToValue for Param {
    fn to_value(&self) -> Value {
        self.0.clone()
    }
}

fn refs(values: &[Param]) -> Vec<&dyn ToValue> {
    values.iter().map(|v| v as &dyn ToValue).collect()
}

/// The `WHERE` clause of `filter` and its parameters.
fn clause(filter: &ReturnFilter) -> (String, Vec<Param>) {
    let mut terms: Vec<String> = Vec::new();
    let mut values: Vec<Param> = Vec::new();
    let bind = |values: &mut Vec<Param>, v: String| {
        values.push(Param(Value::Text(v)));
        format!("?{}", values.len())
    };
    if let Some(q) = filter.search.as_deref() {
        let q_at = bind(&mut values, q.to_owned());
        let end_at = bind(&mut values, format!("{q}{PREFIX_END}"));
        terms.push(format!(
            "((rma >= {q_at} AND rma < {end_at}) OR order_ref = {q_at} OR customer_ref = {q_at} \
             OR tracking = {q_at} OR (customer_name >= {q_at} AND customer_name < {end_at}))"
        ));
    }
    for (column, value) in [
        ("status", &filter.status),
        ("site", &filter.site),
        ("origin_store", &filter.store),
        ("merchant", &filter.merchant),
    ] {
        if let Some(v) = value {
            let at = bind(&mut values, v.clone());
            terms.push(format!("{column} = {at}"));
        }
    }
    if let Some(ms) = filter.from_ms {
        values.push(Param(Value::Int(ms)));
        terms.push(format!("created_ms >= ?{}", values.len()));
    }
    if let Some(ms) = filter.until_ms {
        values.push(Param(Value::Int(ms)));
        terms.push(format!("created_ms < ?{}", values.len()));
    }
    let clause = match terms.is_empty() {
        true => String::new(),
        false => format!("WHERE {}", terms.join(" AND ")),
    };
    (clause, values)
}

/// The returns `filter` matches in `sort` order, `limit` of them from `offset`, and how many
/// match in all.
pub fn list(
    conn: &mut dyn Sql,
    filter: &ReturnFilter,
    sort: Sort,
    offset: u64,
    limit: usize,
) -> Result<ReturnPage, StoreError> {
    let (clause, mut values) = clause(filter);
    let n_total: i64 = conn.one_value(
        &format!("SELECT COUNT(*) FROM returns {clause}"),
        &refs(&values),
    )?;
    let direction = if sort.descending { "DESC" } else { "ASC" };
    values.push(Param(Value::Int(to_i64(limit as u64))));
    values.push(Param(Value::Int(to_i64(offset))));
    let n = values.len();
    let rows = conn.map_rows(
        &format!(
            "SELECT rma, status, site, merchant, origin_store, order_ref, customer_ref,
                    customer_name, tracking, resolution, value_yen, created_ms
             FROM returns {clause}
             ORDER BY {column} {direction} NULLS LAST, rma {direction}
             LIMIT ?{limit_at} OFFSET ?{n}",
            column = sort.key.column(),
            limit_at = n - 1,
        ),
        &refs(&values),
        |r| {
            Ok(ListedReturn {
                rma: r.get(0)?,
                status: r.get(1)?,
                site: r.get(2)?,
                merchant: r.get(3)?,
                store: r.get(4)?,
                order_ref: r.get(5)?,
                customer_ref: r.get(6)?,
                customer_name: r.get(7)?,
                tracking: r.get(8)?,
                resolution: r.get(9)?,
                value_yen: r.get(10)?,
                created_ms: r.get(11)?,
            })
        },
    )?;
    Ok(ReturnPage {
        rows,
        n_total: u64::try_from(n_total).unwrap_or(0),
    })
}

/// Quotes a CSV field when it holds a separator, a quote or a line break (RFC 4180), and
/// defuses a leading `=`, `+`, `-` or `@` that a spreadsheet would run as a formula.
fn csv_field(text: &str) -> String {
    let text = match text.starts_with(['=', '+', '-', '@']) {
        true => format!("'{text}"),
        false => text.to_owned(),
    };
    match text.contains([',', '"', '\n', '\r']) {
        true => format!("\"{}\"", text.replace('"', "\"\"")),
        false => text,
    }
}

/// The header of [`csv`]'s output.
pub const CSV_HEADER: &str = "rma,status,site,merchant,store,order_ref,customer_ref,\
                              customer_name,tracking,resolution,value_yen,created";

/// Rows as CSV with [`CSV_HEADER`]; `time` writes a registration time.
pub fn csv(rows: &[ListedReturn], time: impl Fn(i64) -> String) -> String {
    let mut out = format!("{CSV_HEADER}\r\n");
    for r in rows {
        let opt = |v: &Option<String>| csv_field(v.as_deref().unwrap_or_default());
        let fields = [
            csv_field(&r.rma),
            csv_field(&r.status),
            csv_field(&r.site),
            opt(&r.merchant),
            opt(&r.store),
            opt(&r.order_ref),
            opt(&r.customer_ref),
            opt(&r.customer_name),
            opt(&r.tracking),
            opt(&r.resolution),
            r.value_yen.map(|v| v.to_string()).unwrap_or_default(),
            csv_field(&time(r.created_ms)),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;
    use rusqlite::Connection;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let rows = [
            (
                "R-1",
                "expected",
                "osaka",
                Some("acme"),
                None,
                Some("ORD-1"),
                Some("c1"),
                Some("山田 太郎"),
                Some("TRK-1"),
                1_000,
            ),
            (
                "R-2",
                "received",
                "tokyo",
                Some("acme"),
                Some("st-a"),
                Some("ORD-2"),
                Some("c2"),
                Some("佐藤 花子"),
                None,
                2_000,
            ),
            (
                "R-3",
                "expected",
                "tokyo",
                Some("beta"),
                Some("st-a"),
                None,
                None,
                None,
                Some("TRK-3"),
                3_000,
            ),
            (
                "R-10",
                "cancelled",
                "osaka",
                Some("beta"),
                None,
                Some("ORD-1"),
                Some("c1"),
                Some("山田 太郎"),
                None,
                4_000,
            ),
        ];
        for (rma, status, site, merchant, store, order, cref, name, tracking, at) in rows {
            conn.execute(
                "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq,
                   created_ms, status, merchant, origin_store, order_ref, customer_ref,
                   customer_name, tracking)
                 VALUES (?1, ?2, 'x', '[]', 'r', 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                rusqlite::params![
                    rma, site, at, status, merchant, store, order, cref, name, tracking
                ],
            )
            .unwrap();
        }
        conn
    }

    fn rmas(conn: &mut Connection, filter: ReturnFilter, sort: Sort) -> Vec<String> {
        let page = list(conn, &filter, sort, 0, 10).unwrap();
        page.rows.into_iter().map(|r| r.rma).collect()
    }

    fn search(q: &str) -> ReturnFilter {
        ReturnFilter {
            search: Some(q.into()),
            ..ReturnFilter::default()
        }
    }

    #[test]
    fn search_finds_by_rma_prefix_order_customer_name_and_tracking() {
        let c = &mut db();
        let by_created = Sort::default();
        assert_eq!(rmas(c, search("R-1"), by_created), ["R-1", "R-10"]);
        assert_eq!(rmas(c, search("ORD-1"), by_created), ["R-1", "R-10"]);
        assert_eq!(rmas(c, search("c2"), by_created), ["R-2"]);
        assert_eq!(rmas(c, search("山田"), by_created), ["R-1", "R-10"]);
        assert_eq!(rmas(c, search("TRK-3"), by_created), ["R-3"]);
        assert!(rmas(c, search("TRK"), by_created).is_empty());
    }

    #[test]
    fn filters_combine_and_sorting_pages_and_counts_follow_them() {
        let c = &mut db();
        let filter = ReturnFilter {
            site: Some("tokyo".into()),
            status: Some("expected".into()),
            ..ReturnFilter::default()
        };
        assert_eq!(rmas(c, filter, Sort::default()), ["R-3"]);
        let range = ReturnFilter {
            from_ms: Some(2_000),
            until_ms: Some(4_000),
            ..ReturnFilter::default()
        };
        assert_eq!(rmas(c, range, Sort::default()), ["R-2", "R-3"]);
        let newest_first = Sort {
            key: SortKey::Created,
            descending: true,
        };
        let page = list(c, &ReturnFilter::default(), newest_first, 1, 2).unwrap();
        let got: Vec<_> = page.rows.iter().map(|r| r.rma.as_str()).collect();
        assert_eq!((got, page.n_total), (vec!["R-3", "R-2"], 4));
        let by_store = Sort {
            key: SortKey::Store,
            descending: false,
        };
        assert_eq!(
            rmas(c, ReturnFilter::default(), by_store),
            ["R-2", "R-3", "R-1", "R-10"]
        );
    }

    #[test]
    fn the_search_uses_indexes_not_a_scan() {
        let mut c = db();
        let (clause, values) = clause(&ReturnFilter {
            search: Some("R-1".into()),
            ..ReturnFilter::default()
        });
        let conn: &mut dyn Sql = &mut c;
        let plan: Vec<String> = conn
            .map_rows(
                &format!("EXPLAIN QUERY PLAN SELECT rma FROM returns {clause}"),
                &refs(&values),
                |r| r.get(3),
            )
            .unwrap();
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN returns")),
            "{plan:?}"
        );
    }

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let mut c = db();
        let mut page = list(&mut c, &search("R-2"), Sort::default(), 0, 10).unwrap();
        page.rows[0].customer_name = Some("=HYPERLINK(\"x\"), Inc".into());
        let text = csv(&page.rows, |ms| ms.to_string());
        let line = text.lines().nth(1).unwrap();
        assert_eq!(
            line,
            "R-2,received,tokyo,acme,st-a,ORD-2,c2,\"'=HYPERLINK(\"\"x\"\"), Inc\",,,,2000"
        );
        assert!(text.starts_with(CSV_HEADER));
    }
}
