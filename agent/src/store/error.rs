//! The site database's errors, on their own so the floor's work (`work`) and the sync
//! bookkeeping (`store`) both use them without depending on each other for it.

use modori_runtime::sqlite::DbError;
use modori_shared::domain::DomainError;
use modori_shared::sync::ITEM_PAYLOAD_BYTES_MAX;
use modori_shared::wire::WireError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// The database reached its size cap (or the disk is full): nothing was written.
    #[error("the site database is full; nothing was recorded (free space or raise storage.database_bytes_max)")]
    Full,
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("unknown unit {0}: no receipt with that LPN at this site")]
    UnknownUnit(String),
    #[error("op payload of {0} bytes is over the {ITEM_PAYLOAD_BYTES_MAX}-byte limit")]
    PayloadTooLarge(usize),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The request contradicts what the site knows (no such order, a wrong SKU, a test
    /// missing); nothing was written.
    #[error("{0}")]
    Refused(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Self::Full,
            _ => Self::Sqlite(e),
        }
    }
}
