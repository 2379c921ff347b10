//! Group commit: the sites' batches that arrive while the database thread is busy are applied
//! together, in one transaction, so several sites catching up at once pay for one commit (and
//! one fsync) instead of one each. Nothing is acknowledged before its group has committed.
//!
//! How a batch finds its transaction: it joins the queue, and the batch that finds the queue
//! empty starts a driver. The driver submits one job to the database thread; that job takes
//! what is queued *when it runs* (so everything that arrived while it waited joins it), up to
//! [`GROUP_OPS_MAX`] ops, applies and commits them, and answers each batch. While anything is
//! left, the driver submits another job. Pushing and taking happen under one lock, so a batch
//! either joins a queue some driver will still take from, or starts a driver itself.
//!
//! If a group's transaction fails, each of its batches is applied again alone
//! (`store::apply_op_group`), so a batch that cannot apply fails only its own connection.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use modori_runtime::sqlite::{Db, DbError};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;

use crate::store::{self, BatchOutcome, SiteBatch, StoreError};

/// Ops applied in one transaction at most: bounds how long one commit holds the database
/// thread (and the memory of its dirty pages); past it the rest waits for the next one.
pub const GROUP_OPS_MAX: usize = 8192;

type Answer = oneshot::Sender<Result<BatchOutcome, StoreError>>;
type Queue = Arc<Mutex<VecDeque<(SiteBatch, Answer)>>>;

/// The batches waiting for a transaction.
#[derive(Default)]
pub struct GroupCommit {
    queue: Queue,
    /// Counts the group transactions committed.
    commits: Counter,
}

impl GroupCommit {
    pub fn new(commits: Counter) -> Self {
        Self {
            queue: Queue::default(),
            commits,
        }
    }

    /// Applies `batch` in the next group transaction and returns its outcome once that
    /// transaction has committed.
    pub async fn apply(&self, db: &Db, batch: SiteBatch) -> Result<BatchOutcome, StoreError> {
        let (answer, outcome) = oneshot::channel();
        let lead = {
            let mut queue = lock(&self.queue);
            queue.push_back((batch, answer));
            queue.len() == 1
        };
        if lead {
            tokio::spawn(drive(
                db.clone(),
                Arc::clone(&self.queue),
                self.commits.clone(),
            ));
        }
        // A dropped answer means the database thread is gone.
        outcome.await.map_err(|_| StoreError::Db(DbError::Closed))?
    }
}

fn lock(queue: &Queue) -> MutexGuard<'_, VecDeque<(SiteBatch, Answer)>> {
    // A panic while holding the lock leaves a queue that is still whole: keep using it.
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn drive(db: Db, queue: Queue, commits: Counter) {
    loop {
        let q = Arc::clone(&queue);
        let commits = commits.clone();
        let applied = db
            .call(move |conn| {
                let (batches, answers) = take_group(&q);
                if !batches.is_empty() {
                    tracing::debug!(n_batches = batches.len(), "group of batches applied");
                    let outcomes = store::apply_op_group(conn, &batches);
                    commits.inc();
                    for (answer, outcome) in answers.into_iter().zip(outcomes) {
                        let _ = answer.send(outcome);
                    }
                }
                Ok::<_, StoreError>(!lock(&q).is_empty())
            })
            .await;
        match applied {
            Ok(true) => continue,
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "database thread gone; waiting batches fail");
                // Dropping their answers tells every waiting batch.
                lock(&queue).clear();
                return;
            }
        }
    }
}

/// The batches at the front of the queue, up to [`GROUP_OPS_MAX`] ops (at least one batch).
fn take_group(queue: &Queue) -> (Vec<SiteBatch>, Vec<Answer>) {
    let mut queue = lock(queue);
    let mut n_ops = 0;
    let mut taken = Vec::new();
    while let Some((batch, _)) = queue.front() {
        if !taken.is_empty() && n_ops + batch.ops.len() > GROUP_OPS_MAX {
            break;
        }
        n_ops += batch.ops.len();
        taken.extend(queue.pop_front());
    }
    taken.into_iter().unzip()
}

#[cfg(test)]
mod tests {
    use modori_shared::domain::{Epoch, Lpn, SiteId, Sku};
    use modori_shared::op::{OpBody, OpRecord};
    use modori_shared::station::ReceiptKind;
    use modori_shared::wire::messages::Sequenced;
    use modori_shared::wire::payload::encode_op;

    use super::*;

    fn receipts(site: &SiteId, seqs: std::ops::Range<u64>) -> Vec<Sequenced> {
        seqs.map(|seq| Sequenced {
            seq,
            payload: encode_op(&OpRecord {
                site: site.clone(),
                at_ms: 0,
                operator: "B-1".into(),
                station: "recv-1".into(),
                body: OpBody::UnitReceived {
                    lpn: Lpn::new(format!("LPN-{}-{seq}", site.as_str().to_uppercase())).unwrap(),
                    rma: None,
                    sku: Sku::new("TEE-M").unwrap(),
                    receipt: ReceiptKind::Matched,
                    parcel_ref: None,
                },
            })
            .unwrap(),
        })
        .collect()
    }

    /// Sites send their streams at once, each batch after the last was answered (as a
    /// connection does), some of them twice (a lost ack): every op applies once, every answer
    /// says what its batch did, and no batch is left waiting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_batches_each_apply_once_in_their_stream_order() {
        const SITES: u64 = 6;
        const BATCHES: u64 = 20;
        const OPS: u64 = 50;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db"), &store::migrations()).unwrap();
        db.call(|c| store::init(c).map(|_| ())).await.unwrap();
        let commits = Counter::default();
        let groups = Arc::new(GroupCommit::new(commits.clone()));
        let mut sites = Vec::new();
        for s in 0..SITES {
            let (db, groups) = (db.clone(), Arc::clone(&groups));
            sites.push(tokio::spawn(async move {
                let site = SiteId::new(format!("site-{s}")).unwrap();
                for b in 0..BATCHES {
                    let first = 1 + b * OPS;
                    let sends = if b % 7 == s % 7 { 2 } else { 1 };
                    for send in 0..sends {
                        let batch = SiteBatch {
                            site: site.clone(),
                            epoch: Epoch(1),
                            ops: receipts(&site, first..first + OPS),
                            applied_ms: 0,
                        };
                        let outcome = groups.apply(&db, batch).await.unwrap();
                        assert_eq!(outcome.applied_seq, first + OPS - 1);
                        let expected = if send == 0 {
                            (OPS as usize, 0)
                        } else {
                            (0, OPS as usize)
                        };
                        assert_eq!((outcome.n_applied, outcome.n_duplicates), expected);
                        assert_eq!(outcome.n_anomalies, 0);
                    }
                }
            }));
        }
        for site in sites {
            tokio::time::timeout(std::time::Duration::from_secs(60), site)
                .await
                .expect("no batch is left waiting")
                .unwrap();
        }
        let (n_ops, n_units): (i64, i64) = db
            .call(|c| {
                c.query_row(
                    "SELECT (SELECT COUNT(*) FROM ops), (SELECT COUNT(*) FROM units)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(StoreError::from)
            })
            .await
            .unwrap();
        let all = (SITES * BATCHES * OPS) as i64;
        assert_eq!((n_ops, n_units), (all, all));
        // Sites sending at once share transactions.
        let sent = SITES * BATCHES
            + (0..SITES)
                .map(|s| (0..BATCHES).filter(|b| b % 7 == s % 7).count() as u64)
                .sum::<u64>();
        assert!(
            (1..sent).contains(&commits.get()),
            "{} commits for {sent} batches",
            commits.get()
        );
    }

    #[test]
    fn a_group_stops_at_its_op_limit_but_takes_at_least_one_batch() {
        let queue: Queue = Arc::default();
        let site = SiteId::new("osaka").unwrap();
        let big = GROUP_OPS_MAX as u64 - 10;
        for (first, n) in [(1, big), (big + 1, 20), (big + 21, 5)] {
            let (answer, _) = oneshot::channel();
            lock(&queue).push_back((
                SiteBatch {
                    site: site.clone(),
                    epoch: Epoch(1),
                    ops: receipts(&site, first..first + n),
                    applied_ms: 0,
                },
                answer,
            ));
        }
        let (first, _) = take_group(&queue);
        assert_eq!(first.len(), 1, "the next batch would pass the limit");
        let (rest, _) = take_group(&queue);
        assert_eq!(rest.iter().map(|b| b.ops.len()).sum::<usize>(), 25);
        assert!(lock(&queue).is_empty());
    }
}
