//! Units waiting in quarantine to be matched, and an ops match of one to its return.

use modori_shared::domain::{Lpn, RmaId, SiteId};
use modori_shared::op::CommandBody;
use modori_shared::station::WAITING_TO_BE_MATCHED_SQL;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use thiserror::Error;

use modori_runtime::sqlite::{to_i64, DbError};

use super::sql;
use super::{enqueue_command, lifecycle, Queued, StoreError};

/// A unit waiting to be matched to a return (unidentified, final sale, or refused by the
/// return it was received against).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct QuarantinedUnit {
    pub lpn: String,
    pub site: String,
    pub sku: String,
    pub parcel_ref: Option<String>,
    pub state: String,
    pub updated_ms: i64,
    /// The return it was received against when that return may not count it.
    pub claimed_rma: Option<String>,
}

/// The units waiting to be matched, by the one definition the dashboard counts with
/// ([`WAITING_TO_BE_MATCHED_SQL`]).
pub fn quarantine(
    conn: &mut dyn sql::Sql,
    limit: usize,
) -> Result<Vec<QuarantinedUnit>, StoreError> {
    Ok(conn.map_rows(
        &format!(
            "SELECT lpn, site, sku, parcel_ref, state, updated_ms, claimed_rma FROM units
             WHERE {WAITING_TO_BE_MATCHED_SQL} ORDER BY updated_ms, lpn LIMIT ?1"
        ),
        &[&to_i64(limit as u64)],
        |r| {
            Ok(QuarantinedUnit {
                lpn: r.get(0)?,
                site: r.get(1)?,
                sku: r.get(2)?,
                parcel_ref: r.get(3)?,
                state: r.get(4)?,
                updated_ms: r.get(5)?,
                claimed_rma: r.get(6)?,
            })
        },
    )?)
}

/// Why a unit could not be matched to a return.
#[derive(Debug, Error)]
pub enum MatchError {
    #[error("no unit {0} is known")]
    UnknownUnit(String),
    #[error("unit {0} is not in quarantine")]
    NotQuarantined(String),
    #[error("no return {0} is registered")]
    UnknownReturn(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for MatchError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Matches a quarantined unit to a return: recorded here and sent to the unit's site, in one
/// transaction. Returns the unit's site and the command to wake it with.
pub fn match_unidentified(
    conn: &mut Connection,
    lpn: &Lpn,
    rma: &RmaId,
    now_ms: i64,
) -> Result<(SiteId, Queued), MatchError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let unit: Option<(String, i64)> = tx
        .query_row(
            "SELECT site, quarantine FROM units WHERE lpn = ?1",
            [lpn.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (site, quarantined) = unit.ok_or_else(|| MatchError::UnknownUnit(lpn.to_string()))?;
    if quarantined == 0 {
        return Err(MatchError::NotQuarantined(lpn.to_string()));
    }
    let known: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM returns WHERE rma = ?1",
            [rma.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    if known.is_none() {
        return Err(MatchError::UnknownReturn(rma.to_string()));
    }
    tx.execute(
        "UPDATE units SET rma = ?2, quarantine = 0, updated_ms = ?3 WHERE lpn = ?1",
        params![lpn.as_str(), rma.as_str(), now_ms],
    )?;
    let site = SiteId::new(site).map_err(StoreError::from)?;
    lifecycle::unit_matched(&tx, rma, lpn, &site, now_ms)?;
    let command = CommandBody::MatchUnidentified {
        lpn: lpn.clone(),
        rma: rma.clone(),
    };
    let seq = enqueue_command(&tx, &site, &command, now_ms)?;
    tx.commit()?;
    Ok((site.clone(), Queued::one(site, seq)))
}

impl From<DbError> for MatchError {
    fn from(e: DbError) -> Self {
        Self::Store(e.into())
    }
}
