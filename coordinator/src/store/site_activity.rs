//! A site's own activity for its page: what its timeline events counted per kind lately (its
//! throughput), and its newest anomalies.

use modori_runtime::sqlite::{to_i64, to_u64};

use super::dashboard::{anomaly_view, AnomalyView, ANOMALY_COLUMNS};
use super::sql::Sql;
use super::StoreError;

/// The migration that adds the indexes the page reads by (appended to `schema::migrations`).
pub const MIGRATION: &str = r#"
    CREATE INDEX return_events_site ON return_events (site, recorded_ms);
    CREATE INDEX anomalies_site ON anomalies (site, id);
"#;

/// The site's timeline events recorded since `since_ms`, counted per kind and per bucket of
/// `bucket_ms`: (bucket start, kind, count), oldest first.
pub fn throughput(
    conn: &mut dyn Sql,
    site: &str,
    since_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<(i64, String, u64)>, StoreError> {
    let bucket_ms = bucket_ms.max(1);
    Ok(conn.map_rows(
        "SELECT recorded_ms / ?3, kind, COUNT(*) FROM return_events
         WHERE site = ?1 AND recorded_ms >= ?2 GROUP BY 1, 2 ORDER BY 1, 2",
        &[&site, &since_ms, &bucket_ms],
        |r| {
            Ok((
                r.get::<i64>(0)? * bucket_ms,
                r.get::<String>(1)?,
                to_u64(r.get(2)?),
            ))
        },
    )?)
}

/// The site's newest anomalies, newest first.
pub fn anomalies(
    conn: &mut dyn Sql,
    site: &str,
    limit: usize,
) -> Result<Vec<AnomalyView>, StoreError> {
    Ok(conn.map_rows(
        &format!(
            "SELECT {ANOMALY_COLUMNS} FROM anomalies a LEFT JOIN units u ON u.lpn = a.lpn
             WHERE a.site = ?1 ORDER BY a.id DESC LIMIT ?2"
        ),
        &[&site, &to_i64(limit as u64)],
        anomaly_view,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;
    use rusqlite::{params, Connection};

    #[test]
    fn a_sites_events_and_anomalies_are_its_own() {
        let mut c = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut c).unwrap();
        for (site, kind, at) in [
            ("osaka", "unit_received", 60_000),
            ("osaka", "unit_received", 61_000),
            ("osaka", "unit_graded", 130_000),
            ("tokyo", "unit_received", 60_000),
            ("osaka", "unit_received", 1_000),
        ] {
            c.execute(
                "INSERT INTO return_events (rma, kind, site, at_ms, recorded_ms)
                 VALUES ('R', ?1, ?2, ?3, ?3)",
                params![kind, site, at],
            )
            .unwrap();
        }
        for (site, detail) in [("osaka", "a"), ("tokyo", "b"), ("osaka", "c")] {
            c.execute(
                "INSERT INTO anomalies (site, kind, detail, at_ms) VALUES (?1, 'k', ?2, 1)",
                params![site, detail],
            )
            .unwrap();
        }
        assert_eq!(
            throughput(&mut c, "osaka", 60_000, 60_000).unwrap(),
            [
                (60_000, "unit_received".to_owned(), 2),
                (120_000, "unit_graded".to_owned(), 1)
            ]
        );
        let details: Vec<String> = anomalies(&mut c, "osaka", 10)
            .unwrap()
            .into_iter()
            .map(|a| a.detail)
            .collect();
        assert_eq!(details, ["c", "a"]);
    }
}
