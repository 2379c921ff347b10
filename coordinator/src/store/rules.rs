//! The disposition rules by which grading stations propose a disposition while offline: sent
//! to each site where missing or changed.

use super::commands::enqueue;
use super::sql::{in_transaction, Sql};
use super::{hex, Queued, StoreError};
use modori_shared::domain::SiteId;
use modori_shared::op::CommandBody;
use modori_shared::wire::payload::{self, payload_hash};

/// Sends `rules` to every site that does not have exactly these rules yet, in one
/// transaction; returns each site it queued them for, with the command's seq.
pub fn sync_disposition_rules(
    conn: &mut dyn Sql,
    rules: &[modori_shared::DispositionRule],
    sites: &[SiteId],
    now_ms: i64,
) -> Result<Queued, StoreError> {
    let command = CommandBody::DispositionRules {
        rules: rules.to_vec(),
    };
    let fingerprint = hex(&payload_hash(&payload::encode_command(&command)?)[..16]);
    in_transaction(conn, |tx| {
        let mut queued = Queued::none();
        for site in sites {
            let key = format!("disposition_rules:{site}");
            let sent: Option<String> =
                tx.map_row_opt("SELECT value FROM meta WHERE key = ?1", &[&key], |r| {
                    r.get(0)
                })?;
            if sent.as_deref() == Some(fingerprint.as_str()) {
                continue;
            }
            let seq = enqueue(tx, site, &command, now_ms)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &fingerprint],
            )?;
            queued.push(site.clone(), seq);
        }
        Ok(queued)
    })
}
