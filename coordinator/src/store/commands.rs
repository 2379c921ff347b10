//! The command streams: a command appended in the caller's transaction, each site's head and
//! acknowledged mark, the commands a connection sends.

use modori_runtime::sqlite::{to_i64, to_u64};
use modori_shared::domain::SiteId;
use modori_shared::op::CommandBody;
use modori_shared::sync::ITEM_PAYLOAD_BYTES_MAX;
use modori_shared::wire::messages::Sequenced;
use modori_shared::wire::payload;
use rusqlite::Transaction;

use super::sql::{self, Sql, SqlError};
use super::StoreError;

/// Appends a command to a site's stream inside the caller's transaction; returns its seq.
pub fn enqueue(
    tx: &mut dyn Sql,
    site: &SiteId,
    command: &CommandBody,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let bytes = payload::encode_command(command)?;
    if bytes.len() > ITEM_PAYLOAD_BYTES_MAX {
        return Err(StoreError::PayloadTooLarge(bytes.len()));
    }
    let seq: i64 = tx.one_value(
        "INSERT INTO command_streams (site, head_seq, acked_seq) VALUES (?1, 1, 0)
         ON CONFLICT (site) DO UPDATE SET head_seq = command_streams.head_seq + 1
         RETURNING head_seq",
        &[&site.as_str()],
    )?;
    tx.execute(
        // Issued in the running epoch, the last started (store/command_epochs.rs).
        "INSERT INTO commands (site, seq, kind, payload, created_ms, epoch_ordinal)
         VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(ordinal), 1) FROM command_epochs))",
        &[&site.as_str(), &seq, &command.kind(), &bytes, &now_ms],
    )?;
    Ok(to_u64(seq))
}

/// [`enqueue`] from a module that still holds a rusqlite transaction.
pub fn enqueue_command(
    tx: &Transaction<'_>,
    site: &SiteId,
    command: &CommandBody,
    now_ms: i64,
) -> Result<u64, StoreError> {
    enqueue(&mut sql::sqlite(tx), site, command, now_ms)
}

/// The head of every site's command stream, to wake the connections of sites that a
/// transaction may have queued commands for.
pub fn command_heads(conn: &mut dyn Sql) -> Result<Vec<(SiteId, u64)>, StoreError> {
    let rows = conn.map_rows("SELECT site, head_seq FROM command_streams", &[], |r| {
        Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
    })?;
    rows.into_iter()
        .map(|(site, head)| Ok((SiteId::new(site)?, to_u64(head))))
        .collect()
}

/// (head, acked) of a site's command stream.
pub fn command_stream(conn: &mut dyn Sql, site: &SiteId) -> Result<(u64, u64), StoreError> {
    let row: Option<(i64, i64)> = conn.map_row_opt(
        "SELECT head_seq, acked_seq FROM command_streams WHERE site = ?1",
        &[&site.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(row.map_or((0, 0), |(h, a)| (to_u64(h), to_u64(a))))
}

pub fn load_commands(
    conn: &mut dyn Sql,
    site: &SiteId,
    first_seq: u64,
    max: usize,
) -> Result<Vec<Sequenced>, StoreError> {
    Ok(conn.map_rows(
        "SELECT seq, payload FROM commands WHERE site = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
        &[&site.as_str(), &to_i64(first_seq), &to_i64(max as u64)],
        |r| {
            Ok::<_, SqlError>(Sequenced {
                seq: to_u64(r.get(0)?),
                payload: r.get(1)?,
            })
        },
    )?)
}

pub fn set_command_acked(conn: &mut dyn Sql, site: &SiteId, seq: u64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE command_streams SET acked_seq = ?2 WHERE site = ?1",
        &[&site.as_str(), &to_i64(seq)],
    )?;
    Ok(())
}
