//! A backlog, as a site builds one while its link or the coordinator is down: receipts
//! appended to a stopped agent's database through the agent's own `work::record`, each in its
//! own transaction with its outbox op and audit row, exactly as a station records them.

use std::path::Path;
use std::time::Duration;

use modori_agent::store::{self, StoreError};
use modori_agent::work::{self, Actor};
use modori_runtime::clock;
use modori_shared::domain::{SiteId, Sku};
use modori_shared::station::Effect;
use thiserror::Error;

/// The SKU every load receipt is for.
pub const LOAD_SKU: &str = "LOAD-TEE-M";
/// The badge load receipts are recorded under.
pub const LOAD_OPERATOR: &str = "B-LOAD";
/// The station name of filled receipts in the audit trail.
pub const FILL_STATION: &str = "load-fill";
/// How long a fill waits for a lock held by another connection (there should be none: the
/// agent is stopped).
const FILL_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum FillError {
    #[error("opening {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Domain(#[from] modori_shared::domain::DomainError),
}

/// Appends `n` receipts to the database at `db_path` (its agent stopped); returns the outbox
/// head after them.
///
/// Each receipt is its own transaction, as at a station, but without an fsync per commit
/// (`synchronous=OFF` on this connection only): the fill stands for hours of offline work and is
/// not what is measured. The durable per-receipt cost is measured by the online phase and the
/// `outbox` bench. The WAL is checkpointed at the end, so the agent starts on one settled file.
pub fn receipts(db_path: &Path, site: &SiteId, n: u64) -> Result<u64, FillError> {
    let mut conn = rusqlite::Connection::open(db_path).map_err(|source| FillError::Open {
        path: db_path.to_owned(),
        source,
    })?;
    conn.busy_timeout(FILL_BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let sku = Sku::new(LOAD_SKU)?;
    let receipt = work::receipt_kind(&conn, None, &sku)?;
    let effect = Effect::Receive {
        rma: None,
        sku,
        receipt,
        parcel_ref: None,
    };
    let who = Actor::new(LOAD_OPERATOR, FILL_STATION);
    for _ in 0..n {
        work::record(&mut conn, site, &who, &effect, clock::now_ms())?;
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(store::snapshot(&conn)?.op_head_seq)
}
