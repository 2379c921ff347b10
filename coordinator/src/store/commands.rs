//! The command streams: a command appended in the caller's transaction, each site's head and
//! acknowledged mark, the commands a connection sends.

use super::*;

/// Appends a command to a site's stream inside the caller's transaction; returns its seq.
pub fn enqueue_command(
    tx: &Transaction<'_>,
    site: &SiteId,
    command: &CommandBody,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let bytes = payload::encode_command(command)?;
    if bytes.len() > ITEM_PAYLOAD_BYTES_MAX {
        return Err(StoreError::PayloadTooLarge(bytes.len()));
    }
    let seq: i64 = tx.query_row(
        "INSERT INTO command_streams (site, head_seq, acked_seq) VALUES (?1, 1, 0)
         ON CONFLICT (site) DO UPDATE SET head_seq = head_seq + 1
         RETURNING head_seq",
        [site.as_str()],
        |r| r.get(0),
    )?;
    tx.execute(
        // Issued in the running epoch, the last started (store/command_epochs.rs).
        "INSERT INTO commands (site, seq, kind, payload, created_ms, epoch_ordinal)
         VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(ordinal), 1) FROM command_epochs))",
        params![site.as_str(), seq, command.kind(), bytes, now_ms],
    )?;
    Ok(to_u64(seq))
}

/// The head of every site's command stream, to wake the connections of sites that a
/// transaction may have queued commands for.
pub fn command_heads(conn: &Connection) -> Result<Vec<(SiteId, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT site, head_seq FROM command_streams")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (site, head) = row?;
        out.push((SiteId::new(site)?, to_u64(head)));
    }
    Ok(out)
}

/// (head, acked) of a site's command stream.
pub fn command_stream(conn: &Connection, site: &SiteId) -> Result<(u64, u64), StoreError> {
    let row: Option<(i64, i64)> = conn
        .query_row(
            "SELECT head_seq, acked_seq FROM command_streams WHERE site = ?1",
            [site.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.map_or((0, 0), |(h, a)| (to_u64(h), to_u64(a))))
}

pub fn load_commands(
    conn: &Connection,
    site: &SiteId,
    first_seq: u64,
    max: usize,
) -> Result<Vec<Sequenced>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, payload FROM commands WHERE site = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![site.as_str(), to_i64(first_seq), to_i64(max as u64)],
        |r| {
            Ok(Sequenced {
                seq: to_u64(r.get(0)?),
                payload: r.get(1)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn set_command_acked(conn: &Connection, site: &SiteId, seq: u64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE command_streams SET acked_seq = ?2 WHERE site = ?1",
        params![site.as_str(), to_i64(seq)],
    )?;
    Ok(())
}
