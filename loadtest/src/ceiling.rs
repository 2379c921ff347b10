//! The apply path's ceiling on this disk: the throughput phase's own ops inserted into a fresh
//! SQLite file beside the coordinator's, in batches as the coordinator receives them, one
//! durable transaction per batch holding the op rows and the stream's high-water mark, and
//! nothing else (no decoding, no units, no timeline, no billing). What exactly-once needs costs
//! at least this much; the report gives Modori's applied rate as a fraction of it, measured in
//! the same run on the same disk.

use std::path::Path;
use std::time::{Duration, Instant};

use modori_shared::wire::payload::payload_hash;
use rusqlite::{params, Connection};

/// Ops per transaction: the batch an agent sends at most by default (`sync.batch_ops_max`).
pub const CEILING_BATCH_OPS: usize = modori_shared::sync::BATCH_OPS_MAX_DEFAULT;
/// How long a ceiling write waits for a lock (nothing else opens its file).
const CEILING_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One site's ops, as its outbox holds them: (seq, payload).
pub struct SiteOps {
    pub site: String,
    pub epoch: i64,
    pub ops: Vec<(i64, Vec<u8>)>,
}

#[derive(Clone, Copy, Debug)]
pub struct Ceiling {
    pub n_ops: u64,
    pub seconds: f64,
}

impl Ceiling {
    pub fn ops_per_second(&self) -> f64 {
        self.n_ops as f64 / self.seconds
    }
}

/// The durability the coordinator's database runs with.
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;";

/// Inserts every site's ops into a new database at `path`, the sites' batches interleaved as
/// nine agents' would arrive; returns how many and how long.
pub fn measure(path: &Path, sites: &[SiteOps]) -> anyhow::Result<Ceiling> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(CEILING_BUSY_TIMEOUT)?;
    conn.execute_batch(PRAGMAS)?;
    // The coordinator's own schema (its `ops` and `op_streams` tables, with every index).
    modori_coordinator::store::migrations()
        .to_latest(&mut conn)
        .map_err(|e| anyhow::anyhow!("migrating the ceiling's file: {e}"))?;
    let batches: Vec<Vec<_>> = sites
        .iter()
        .map(|s| s.ops.chunks(CEILING_BATCH_OPS).collect())
        .collect();
    let rounds = batches.iter().map(Vec::len).max().unwrap_or(0);
    let started = Instant::now();
    let mut n_ops = 0u64;
    for round in 0..rounds {
        for (site, chunks) in sites.iter().zip(&batches) {
            let Some(batch) = chunks.get(round) else {
                continue;
            };
            n_ops += apply(&mut conn, site, batch)?;
        }
    }
    Ok(Ceiling {
        n_ops,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn apply(conn: &mut Connection, site: &SiteOps, batch: &[(i64, Vec<u8>)]) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO ops (site, epoch, seq, kind, hash, payload, applied_ms)
             VALUES (?1, ?2, ?3, 'receipt', ?4, ?5, ?6)",
        )?;
        for (seq, payload) in batch {
            let hash = payload_hash(payload);
            insert.execute(params![
                site.site,
                site.epoch,
                seq,
                hash.as_slice(),
                payload,
                0i64
            ])?;
        }
    }
    let last = batch.last().map_or(0, |(seq, _)| *seq);
    tx.execute(
        "INSERT INTO op_streams (site, epoch, applied_seq, first_seen_ms) VALUES (?1, ?2, ?3, 0)
         ON CONFLICT (site, epoch) DO UPDATE SET applied_seq = excluded.applied_seq",
        params![site.site, site.epoch, last],
    )?;
    tx.commit()?;
    Ok(batch.len() as u64)
}

/// The ops of the current epoch with seq in `(after, up_to]` from an agent database's outbox.
pub fn outbox_ops(db: &Path, site: &str, after: u64, up_to: u64) -> rusqlite::Result<SiteOps> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let epoch: i64 = conn.query_row("SELECT op_epoch FROM sync_state WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    let mut stmt =
        conn.prepare("SELECT seq, payload FROM outbox WHERE seq > ?1 AND seq <= ?2 ORDER BY seq")?;
    let ops = stmt
        .query_map(params![after as i64, up_to as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(SiteOps {
        site: site.to_owned(),
        epoch,
        ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_lands_once_with_its_mark() {
        let dir = tempfile::tempdir().unwrap();
        let sites: Vec<_> = (0..3)
            .map(|s| SiteOps {
                site: format!("site-{s}"),
                epoch: 7,
                ops: (1..=1_100).map(|seq| (seq, vec![s as u8; 90])).collect(),
            })
            .collect();
        let ceiling = measure(&dir.path().join("c.db"), &sites).unwrap();
        assert_eq!(ceiling.n_ops, 3_300);
        let conn = Connection::open(dir.path().join("c.db")).unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM ops", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3_300);
        let marks: Vec<i64> = conn
            .prepare("SELECT applied_seq FROM op_streams ORDER BY site")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(marks, vec![1_100; 3]);
    }
}
