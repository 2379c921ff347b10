//! Command epochs: the coordinator numbers every command stream in a new epoch at each start.
//!
//! Why at each start: a database put back by hand, a VM snapshot restored with the runs file
//! beside it, or a WAL that lost its tail all look like a clean database from the inside, and
//! all of them can have forgotten commands that sites already applied. Numbering on from such a
//! database would give those seqs to other commands, and the sites would take them for
//! duplicates. A start is the only moment such a loss can happen (a running process does not
//! lose its own commits), so an epoch per start means no `(epoch, seq)` is ever issued twice.
//!
//! What it costs: a site's position in an earlier epoch must be carried over, or every restart
//! would resend every command. The database records, per command, the epoch it was issued in
//! (by ordinal): a site that reports `(E, s)` is vouched for when this database knows E and
//! holds the site's commands up to `s` issued no later than E. Its history then contains the
//! same commands 1..=s the site applied, and the site continues the new epoch after `s`.
//! Anything else (an epoch this database never had, or a seq beyond what it holds of it) means
//! the site applied commands this database lost: it gets its whole stream again in the new
//! epoch (commands are state-setting, so applying them again converges), and ops hears of it.

use super::details::Detail;
use super::sql::{in_transaction, Sql, SqlError};
use super::StoreError;
use modori_runtime::sqlite::{to_i64, to_u64};
use modori_shared::domain::{Epoch, SiteId};

/// The schema: the epochs of this database in the order they started, and the epoch each
/// command was issued in. The epoch held before epochs were recorded becomes ordinal 1, and
/// every existing command is taken as issued in it.
pub const MIGRATION: &str = r#"
    CREATE TABLE command_epochs (
        ordinal    INTEGER PRIMARY KEY,
        epoch      INTEGER NOT NULL UNIQUE,
        started_ms INTEGER NOT NULL
    ) STRICT;
    INSERT INTO command_epochs (ordinal, epoch, started_ms)
        SELECT 1, CAST(value AS INTEGER), 0 FROM meta WHERE key = 'command_epoch';
    ALTER TABLE commands ADD COLUMN epoch_ordinal INTEGER NOT NULL DEFAULT 1;
"#;

/// Starts a new command epoch (at every start, and by `restore`); returns it.
pub fn start(conn: &mut dyn Sql, now_ms: i64) -> Result<Epoch, StoreError> {
    let epoch = in_transaction(conn, |tx| {
        // A database made before epochs were recorded, or whose first epoch `init` just made.
        let old: Option<String> = tx.map_row_opt(
            "SELECT value FROM meta WHERE key = 'command_epoch'",
            &[],
            |r| r.get(0),
        )?;
        if let Some(old) = old.and_then(|v| v.parse::<i64>().ok()) {
            tx.execute(
                "INSERT INTO command_epochs (epoch, started_ms) VALUES (?1, ?2)
                 ON CONFLICT (epoch) DO NOTHING",
                &[&old, &now_ms],
            )?;
        }
        let epoch = loop {
            // Positive as a signed 64-bit integer; never an epoch this database has had.
            let e = (rand::random::<u64>() >> 1).max(1);
            let known: bool = tx.one_value(
                "SELECT EXISTS (SELECT 1 FROM command_epochs WHERE epoch = ?1)",
                &[&to_i64(e)],
            )?;
            if !known {
                break e;
            }
        };
        tx.execute(
            "INSERT INTO command_epochs (epoch, started_ms) VALUES (?1, ?2)",
            &[&to_i64(epoch), &now_ms],
        )?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('command_epoch', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&epoch.to_string()],
        )?;
        // What sites acknowledged was in other epochs: each tells again at its next hello.
        tx.execute("UPDATE command_streams SET acked_seq = 0", &[])?;
        Ok::<_, SqlError>(epoch)
    })?;
    Ok(Epoch(epoch))
}

/// Where a site's command stream continues in the current epoch, from what its hello reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// The site reported a position in the current epoch.
    Current { after_seq: u64 },
    /// The site's position in an earlier epoch holds in this one too.
    CarriedOver { from_epoch: Epoch, after_seq: u64 },
    /// The site has applied nothing this database can vouch for: its whole stream again.
    /// `lost` is set when the site applied commands this database does not hold.
    FromScratch { lost: Option<Lost> },
}

/// What a site applied that this database does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lost {
    pub epoch: Epoch,
    pub applied_seq: u64,
    /// How many of the site's commands this database holds from that epoch or before (0 when
    /// it never had the epoch).
    pub held_seq: u64,
}

impl Lost {
    pub fn describe(&self, site: &SiteId, current: Epoch) -> Detail {
        Detail::coordinator_rewound(
            site.as_str(),
            self.epoch.to_string(),
            self.applied_seq,
            self.held_seq,
            current.to_string(),
        )
    }
}

/// Decides where `site`'s commands continue, given the position its hello reported.
pub fn resume_point(
    conn: &mut dyn Sql,
    site: &SiteId,
    current: Epoch,
    reported: Option<(Epoch, u64)>,
) -> Result<Resume, StoreError> {
    let Some((epoch, applied)) = reported else {
        return Ok(Resume::FromScratch { lost: None });
    };
    if epoch == current {
        return Ok(Resume::Current { after_seq: applied });
    }
    let ordinal: Option<i64> = conn.map_row_opt(
        "SELECT ordinal FROM command_epochs WHERE epoch = ?1",
        &[&to_i64(epoch.0)],
        |r| r.get(0),
    )?;
    let Some(ordinal) = ordinal else {
        let lost = (applied > 0).then_some(Lost {
            epoch,
            applied_seq: applied,
            held_seq: 0,
        });
        return Ok(Resume::FromScratch { lost });
    };
    let held: i64 = conn.one_value(
        "SELECT COALESCE(MAX(seq), 0) FROM commands WHERE site = ?1 AND epoch_ordinal <= ?2",
        &[&site.as_str(), &ordinal],
    )?;
    let held = to_u64(held);
    if applied <= held {
        return Ok(Resume::CarriedOver {
            from_epoch: epoch,
            after_seq: applied,
        });
    }
    Ok(Resume::FromScratch {
        lost: Some(Lost {
            epoch,
            applied_seq: applied,
            held_seq: held,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{self, enqueue_command};
    use modori_shared::domain::RmaId;
    use modori_shared::op::CommandBody;
    use rusqlite::Connection;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        store::migrations().to_latest(&mut conn).unwrap();
        store::init(&mut conn).unwrap();
        conn
    }

    fn issue(conn: &mut Connection, site: &SiteId, rma: &str) -> u64 {
        let tx = conn.transaction().unwrap();
        let command = CommandBody::ForgetCustomer {
            rmas: vec![RmaId::new(rma).unwrap()],
        };
        let seq = enqueue_command(&tx, site, &command, 0).unwrap();
        tx.commit().unwrap();
        seq
    }

    #[test]
    fn a_position_in_an_earlier_epoch_is_carried_over_up_to_what_is_held() {
        let mut conn = db();
        let site = SiteId::new("sendai").unwrap();
        let first = start(&mut conn, 1).unwrap();
        for n in 0..3 {
            issue(&mut conn, &site, &format!("RMA-{n}"));
        }
        let second = start(&mut conn, 2).unwrap();
        assert_ne!(first, second);
        issue(&mut conn, &site, "RMA-3");
        let mut at = |reported| resume_point(&mut conn, &site, second, reported).unwrap();
        assert_eq!(
            at(Some((first, 3))),
            Resume::CarriedOver {
                from_epoch: first,
                after_seq: 3
            }
        );
        assert_eq!(at(Some((second, 4))), Resume::Current { after_seq: 4 });
        assert_eq!(at(None), Resume::FromScratch { lost: None });
        // Seq 4 was issued in the second epoch: a site claiming it from the first applied a
        // command this database never issued there.
        assert_eq!(
            at(Some((first, 4))),
            Resume::FromScratch {
                lost: Some(Lost {
                    epoch: first,
                    applied_seq: 4,
                    held_seq: 3
                })
            }
        );
        let unknown = Epoch(first.0 ^ second.0 ^ 1);
        assert!(matches!(
            at(Some((unknown, 2))),
            Resume::FromScratch {
                lost: Some(Lost { held_seq: 0, .. })
            }
        ));
    }

    #[test]
    fn a_database_copied_back_does_not_vouch_for_what_it_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let site = SiteId::new("sendai").unwrap();
        let mut conn = Connection::open(&path).unwrap();
        store::migrations().to_latest(&mut conn).unwrap();
        store::init(&mut conn).unwrap();
        let e1 = start(&mut conn, 1).unwrap();
        issue(&mut conn, &site, "RMA-1");
        issue(&mut conn, &site, "RMA-2");
        drop(conn);
        let snapshot = dir.path().join("snapshot.db");
        std::fs::copy(&path, &snapshot).unwrap();
        // The run goes on: two more commands the site applies, then the snapshot is put back.
        let mut conn = Connection::open(&path).unwrap();
        issue(&mut conn, &site, "RMA-3");
        issue(&mut conn, &site, "RMA-4");
        drop(conn);
        std::fs::copy(&snapshot, &path).unwrap();
        let mut conn = Connection::open(&path).unwrap();
        let e2 = start(&mut conn, 2).unwrap();
        // The next run issues other commands under the same seqs.
        assert_eq!(issue(&mut conn, &site, "RMA-OTHER"), 3);
        assert_eq!(
            resume_point(&mut conn, &site, e2, Some((e1, 4))).unwrap(),
            Resume::FromScratch {
                lost: Some(Lost {
                    epoch: e1,
                    applied_seq: 4,
                    held_seq: 2
                })
            }
        );
        assert_eq!(
            resume_point(&mut conn, &site, e2, Some((e1, 2))).unwrap(),
            Resume::CarriedOver {
                from_epoch: e1,
                after_seq: 2
            }
        );
    }

    #[test]
    fn a_database_from_before_epochs_were_recorded_keeps_its_epoch_as_the_first() {
        let mut conn = Connection::open_in_memory().unwrap();
        let migrations = store::migrations();
        let n = migrations_before_epochs();
        migrations.to_version(&mut conn, n).unwrap();
        let old = store::init(&mut conn).unwrap();
        let site = SiteId::new("sendai").unwrap();
        conn.execute(
            "INSERT INTO command_streams (site, head_seq, acked_seq) VALUES ('sendai', 2, 2)",
            [],
        )
        .unwrap();
        for seq in 1..=2 {
            conn.execute(
                "INSERT INTO commands (site, seq, kind, payload, created_ms) VALUES ('sendai', ?1, 'x', x'00', 0)",
                [seq],
            )
            .unwrap();
        }
        migrations.to_latest(&mut conn).unwrap();
        let new = start(&mut conn, 5).unwrap();
        assert_eq!(
            resume_point(&mut conn, &site, new, Some((old, 2))).unwrap(),
            Resume::CarriedOver {
                from_epoch: old,
                after_seq: 2
            }
        );
    }

    /// The schema version just before this module's migration.
    fn migrations_before_epochs() -> usize {
        let mut conn = Connection::open_in_memory().unwrap();
        store::migrations().to_latest(&mut conn).unwrap();
        let latest: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        latest - 1
    }
}
