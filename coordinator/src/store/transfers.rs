//! Orders the centre gives a site about units it holds: pack a unit for another site, ship an
//! exchange's replacement. Each is stored and queued to the site in one transaction, so the
//! site executes it offline at its stations.

use modori_shared::domain::{Lpn, RmaId, SiteId, Sku};
use modori_shared::op::CommandBody;
use thiserror::Error;

use super::commands::enqueue;
use super::sql::{in_transaction, Sql, SqlError};
use super::StoreError;

#[derive(Debug, Error)]
pub enum OrderError {
    #[error("no unit {0} is known")]
    UnknownUnit(String),
    #[error("no return {0} is registered")]
    UnknownReturn(String),
    #[error("unit {lpn} is already at {site}")]
    SameSite { lpn: String, site: String },
    #[error("no site {0} in the fleet")]
    UnknownSite(String),
    #[error("unit {lpn} has left its site ({state}); it cannot be transferred")]
    Departed { lpn: String, state: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] modori_runtime::sqlite::DbError),
}

impl From<SqlError> for OrderError {
    fn from(e: SqlError) -> Self {
        Self::Store(e.into())
    }
}

/// Orders the site holding `lpn` to pack it for `to` (one of `fleet`). Returns the site told
/// and the command's seq.
pub fn order_transfer(
    conn: &mut dyn Sql,
    lpn: &Lpn,
    to: &SiteId,
    fleet: &[SiteId],
    now_ms: i64,
) -> Result<(SiteId, u64), OrderError> {
    if !fleet.contains(to) {
        return Err(OrderError::UnknownSite(to.to_string()));
    }
    in_transaction(conn, |tx| {
        let row: Option<(String, String)> = tx.map_row_opt(
            "SELECT site, state FROM units WHERE lpn = ?1",
            &[&lpn.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let Some((holder, state)) = row else {
            return Err(OrderError::UnknownUnit(lpn.to_string()));
        };
        if state.starts_with("departed") || state == "voided" {
            return Err(OrderError::Departed {
                lpn: lpn.to_string(),
                state,
            });
        }
        if holder == to.as_str() {
            return Err(OrderError::SameSite {
                lpn: lpn.to_string(),
                site: holder,
            });
        }
        let holder = SiteId::new(holder).map_err(StoreError::from)?;
        let command = CommandBody::TransferOrder {
            lpn: lpn.clone(),
            to: to.clone(),
        };
        let seq = enqueue(tx, &holder, &command, now_ms)?;
        Ok((holder, seq))
    })
}

/// Records that return `rma` is to be exchanged for a unit of `sku`, and orders the return's
/// site to ship one from its stock. Returns the site told and the command's seq.
pub fn order_exchange(
    conn: &mut dyn Sql,
    rma: &RmaId,
    sku: &Sku,
    now_ms: i64,
) -> Result<(SiteId, u64), OrderError> {
    in_transaction(conn, |tx| {
        let site: Option<String> = tx.map_row_opt(
            "SELECT site FROM returns WHERE rma = ?1",
            &[&rma.as_str()],
            |r| r.get(0),
        )?;
        let Some(site) = site else {
            return Err(OrderError::UnknownReturn(rma.to_string()));
        };
        let site = SiteId::new(site).map_err(StoreError::from)?;
        tx.execute(
            "UPDATE returns SET exchange_sku = ?2 WHERE rma = ?1",
            &[&rma.as_str(), &sku.as_str()],
        )?;
        let command = CommandBody::ExchangeOrder {
            rma: rma.clone(),
            sku: sku.clone(),
        };
        let seq = enqueue(tx, &site, &command, now_ms)?;
        Ok((site, seq))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{init, load_commands, migrations};
    use modori_shared::wire::payload;
    use rusqlite::Connection;

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        init(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO units (lpn, site, sku, state, updated_ms) VALUES
               ('LPN-1', 'osaka', 'TEE', 'placed:restock', 0),
               ('LPN-2', 'osaka', 'TEE', 'departed:restock', 0)",
            [],
        )
        .unwrap();
        conn
    }

    fn site(id: &str) -> SiteId {
        SiteId::new(id).unwrap()
    }

    #[test]
    fn a_transfer_order_goes_to_the_site_holding_the_unit() {
        let mut conn = open();
        let fleet = [site("osaka"), site("fukuoka")];
        let lpn = Lpn::new("LPN-1").unwrap();
        let (told, seq) = order_transfer(&mut conn, &lpn, &site("fukuoka"), &fleet, 1).unwrap();
        assert_eq!((told, seq), (site("osaka"), 1));
        let sent = load_commands(&mut conn, &site("osaka"), 1, 10).unwrap();
        assert_eq!(
            payload::decode_command(&sent[0].payload).unwrap(),
            CommandBody::TransferOrder {
                lpn: lpn.clone(),
                to: site("fukuoka")
            }
        );
        for (lpn, to, needle) in [
            ("LPN-1", "osaka", "already at osaka"),
            ("LPN-1", "naha", "no site naha"),
            ("LPN-2", "fukuoka", "has left"),
            ("LPN-9", "fukuoka", "no unit LPN-9"),
        ] {
            let err = order_transfer(&mut conn, &Lpn::new(lpn).unwrap(), &site(to), &fleet, 2)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{lpn} → {to}: {err}");
        }
    }

    #[test]
    fn an_exchange_needs_a_registered_return() {
        let mut conn = open();
        let rma = RmaId::new("RMA-1").unwrap();
        let tee = Sku::new("TEE").unwrap();
        let err = order_exchange(&mut conn, &rma, &tee, 1).unwrap_err();
        assert!(err.to_string().contains("no return RMA-1"), "{err}");
        conn.execute(
            "INSERT INTO returns (rma, site, origin, lines_json, routing, command_seq, created_ms)
             VALUES ('RMA-1', 'osaka', '530-0001', '[]', '', 0, 0)",
            [],
        )
        .unwrap();
        assert_eq!(
            order_exchange(&mut conn, &rma, &tee, 2).unwrap(),
            (site("osaka"), 1)
        );
    }
}
