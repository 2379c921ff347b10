//! The webhook worker: each merchant's timeline events posted in order from a persistent
//! cursor, at least once, woken by new events.

use std::sync::Arc;
use std::time::Duration;

use crate::app::leases::{LeaseHold, WORKER_LEASE_TERM};
use crate::store::{self, StoreError};
use crate::webhooks::{deliver, MerchantEntry};
use crate::Ctx;

/// Events posted per merchant per pass at most, before the others get their turn.
pub const EVENTS_PER_PASS_MAX: usize = 100;

/// Posts what is due for `entry`'s merchant, in order, stopping at the first failure (the
/// next pass retries it after its backoff). Returns how many were delivered.
pub async fn deliver_due(ctx: &Ctx, entry: &MerchantEntry) -> Result<usize, StoreError> {
    let (Some(url), Some(secret)) = (&entry.webhook_url, &entry.webhook_secret) else {
        return Ok(0);
    };
    let mut n = 0;
    for _ in 0..EVENTS_PER_PASS_MAX {
        let merchant = entry.id.clone();
        let now_ms = ctx.clock.now_ms();
        let due = ctx
            .db
            .call(move |c| {
                let cur = store::webhooks::cursor(c, &merchant)?;
                if cur.attempts > 0 && now_ms < cur.next_attempt_ms {
                    return Ok(None);
                }
                store::webhooks::next_event(c, &merchant, cur.last_event_id)
            })
            .await?;
        let Some((event_id, body)) = due else {
            break;
        };
        let outcome = deliver(url, secret, body, now_ms / 1000).await;
        ctx.metrics.webhook_delivery(outcome.is_ok());
        let failed = outcome.as_ref().err().map(ToString::to_string);
        if let Some(e) = &failed {
            tracing::warn!(merchant = %entry.id, event_id, error = %e, "webhook delivery failed; will retry");
        }
        let merchant = entry.id.clone();
        let result = match failed {
            None => Ok(()),
            Some(e) => Err(e),
        };
        let delivered = result.is_ok();
        ctx.db
            .call(move |c| store::webhooks::record_attempt(c, &merchant, event_id, result, now_ms))
            .await?;
        if !delivered {
            break;
        }
        n += 1;
    }
    Ok(n)
}

/// How often the worker looks for due deliveries when nothing wakes it.
pub const WORKER_TICK: Duration = Duration::from_secs(1);

/// Delivers every merchant's events until shutdown; woken early by new events.
pub async fn worker(ctx: Arc<Ctx>) {
    let mut shutdown = ctx.shutdown.clone();
    let merchants: Vec<MerchantEntry> = ctx
        .config
        .merchants
        .iter()
        .filter(|m| m.webhook_url.is_some())
        .cloned()
        .collect();
    if merchants.is_empty() {
        return;
    }
    let mut lease = LeaseHold::new("webhooks", WORKER_LEASE_TERM);
    loop {
        if lease.hold(&ctx).await {
            for m in &merchants {
                if let Err(e) = deliver_due(&ctx, m).await {
                    tracing::warn!(merchant = %m.id, error = %e, "webhook pass failed");
                }
            }
        }
        tokio::select! {
            _ = ctx.wake_webhooks.notified() => {}
            _ = tokio::time::sleep(WORKER_TICK) => {}
            _ = shutdown.changed() => return lease.release(&ctx).await,
        }
    }
}
