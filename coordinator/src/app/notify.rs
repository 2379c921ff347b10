//! The customer-message worker: queues the messages the stored timeline and registration times
//! call for (exactly once, by the outbox's marks: `store::notifications`), then sends what is
//! due through the customer's channel (LINE when linked, else email), each with a fresh status
//! token, at least once, retried with backoff. Woken by new timeline events.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::app::leases::{LeaseHold, WORKER_LEASE_TERM};
use crate::config::CoordinatorConfig;
use crate::notify::line::Line;
use crate::notify::mail::Mail;
use crate::notify::templates::render;
use crate::notify::{self, Channel, ChannelError, Language, Outgoing};
use crate::store::notifications::{self as outbox, Attempt, Due, OPTED_OUT, UNREACHABLE};
use crate::store::orders::Contact;
use crate::{CoordinatorError, Ctx};

/// How often the worker looks for due messages when nothing wakes it (retries fall due and
/// delays run out by the clock alone).
pub const WORKER_TICK: Duration = Duration::from_secs(1);
/// Batches of `notifications.batch_max` read per pass at most, so one pass after a long
/// outage does not hold the worker for ever; the next pass goes on.
pub const QUEUE_BATCHES_PER_PASS_MAX: usize = 20;

/// The configured ways of reaching customers.
pub struct Channels {
    mail: Option<Mail>,
    line: Option<Line>,
}

impl Channels {
    /// The channels `[mail]` and `[line]` configure; none when neither is. Made at start, so
    /// a channel that cannot work (an unreadable `mail.ca_cert`) stops the start.
    pub fn from_config(config: &CoordinatorConfig) -> Result<Option<Self>, ChannelError> {
        let mail = config.mail.as_ref().map(Mail::new).transpose()?;
        let line = config.line.as_ref().map(Line::new);
        Ok((mail.is_some() || line.is_some()).then_some(Self { mail, line }))
    }

    /// LINE for a customer who linked it, else email; and the address on that channel.
    fn for_contact(&self, contact: &Contact) -> Option<(&dyn Channel, String)> {
        if let (Some(line), Some(user)) = (&self.line, &contact.line_user_id) {
            return Some((line as &dyn Channel, user.clone()));
        }
        self.mail
            .as_ref()
            .map(|m| (m as &dyn Channel, contact.email.clone()))
    }
}

/// Queues what the timeline and the clock call for; returns how many messages.
pub async fn queue_due(ctx: &Ctx) -> Result<usize, CoordinatorError> {
    let batch_max = ctx.config.notifications.batch_max;
    let delay_ms = ctx.config.notifications.delay_notice_after_ms();
    let mut n = 0;
    for _ in 0..QUEUE_BATCHES_PER_PASS_MAX {
        let now_ms = ctx.clock.now_ms();
        let (read, queued) = ctx
            .db
            .call(move |c| outbox::queue_from_timeline(c, batch_max, now_ms))
            .await?;
        n += queued;
        if read < batch_max {
            break;
        }
    }
    for _ in 0..QUEUE_BATCHES_PER_PASS_MAX {
        let now_ms = ctx.clock.now_ms();
        let (read, queued) = ctx
            .db
            .call(move |c| outbox::queue_delayed(c, delay_ms, batch_max, now_ms))
            .await?;
        n += queued;
        if read < batch_max {
            break;
        }
    }
    Ok(n)
}

/// Sends the messages due now (at most `notifications.batch_max`); returns how many were sent.
pub async fn send_due(ctx: &Ctx, channels: &Channels) -> Result<usize, CoordinatorError> {
    let now_ms = ctx.clock.now_ms();
    let limit = ctx.config.notifications.batch_max;
    let due = ctx.db.call(move |c| outbox::due(c, now_ms, limit)).await?;
    let mut n_sent = 0;
    for d in due {
        if *ctx.shutdown.borrow() {
            break;
        }
        let id = d.id;
        let rma = d.rma.clone();
        let attempt = attempt(ctx, channels, d).await?;
        if matches!(attempt, Attempt::Sent { .. }) {
            n_sent += 1;
        }
        let config = ctx.config.notifications.clone();
        let now_ms = ctx.clock.now_ms();
        let recorded = attempt.clone();
        let status = ctx
            .db
            .call(move |c| outbox::record(c, id, &recorded, &config, now_ms))
            .await?;
        match attempt {
            Attempt::Sent { channel } => {
                ctx.metrics.customer_message("sent");
                info!(id, rma = %rma, channel, "customer message sent");
            }
            Attempt::Failed { error, .. } => {
                ctx.metrics.customer_message("failed");
                warn!(id, rma = %rma, error = %error, status, "customer message not sent");
            }
            Attempt::Dropped { status } => {
                ctx.metrics.customer_message(status);
                info!(id, rma = %rma, status, "customer message dropped");
            }
        }
    }
    Ok(n_sent)
}

/// Tries to send one message. Errors are the database's; the channel's are the attempt's.
async fn attempt(ctx: &Ctx, channels: &Channels, d: Due) -> Result<Attempt, CoordinatorError> {
    let (Some(kind), Some(merchant_id), Some(contact)) = (d.kind, d.merchant, d.contact) else {
        return Ok(Attempt::Dropped {
            status: UNREACHABLE,
        });
    };
    let (m, email) = (merchant_id.clone(), contact.email.clone());
    if ctx
        .db
        .call(move |c| outbox::is_opted_out(c, &m, &email))
        .await?
    {
        return Ok(Attempt::Dropped { status: OPTED_OUT });
    }
    let Some((channel, to)) = channels.for_contact(&contact) else {
        return Ok(Attempt::Dropped {
            status: UNREACHABLE,
        });
    };
    let Some(base) = ctx.config.notifications.base_url() else {
        return Ok(Attempt::Dropped {
            status: UNREACHABLE,
        });
    };
    let (token, hash) = match notify::mint_token() {
        Ok(t) => t,
        Err(e) => {
            return Ok(Attempt::Failed {
                error: e.to_string(),
                permanent: false,
            })
        }
    };
    let (rma, now_ms) = (d.rma.clone(), ctx.clock.now_ms());
    ctx.db
        .call(move |c| outbox::put_token(c, &rma, &hash, now_ms))
        .await?;
    let merchant = super::merchant_settings::entry(ctx, &merchant_id).await?;
    let status_url = format!("{base}/r/{merchant_id}/s/{token}");
    let unsubscribe_url = format!("{base}/r/{merchant_id}/u/{token}");
    let language = Language::parse(&contact.language).unwrap_or_default();
    let words = render(
        &merchant,
        kind,
        language,
        &d.rma,
        &status_url,
        &unsubscribe_url,
    );
    let message = Outgoing {
        id: d.id,
        to,
        subject: words.subject,
        text: words.text,
        unsubscribe_url,
    };
    Ok(match channel.send(&message).await {
        Ok(()) => Attempt::Sent {
            channel: channel.name(),
        },
        Err(e) => Attempt::Failed {
            permanent: e.is_permanent(),
            error: e.to_string(),
        },
    })
}

/// Queues and sends customer messages until shutdown; woken early by new timeline events.
/// Does nothing without channels (neither `[mail]` nor `[line]` configured).
pub async fn worker(ctx: Arc<Ctx>, channels: Option<Channels>) {
    let Some(channels) = channels else {
        return;
    };
    let mut shutdown = ctx.shutdown.clone();
    let mut lease = LeaseHold::new("customer_messages", WORKER_LEASE_TERM);
    loop {
        if lease.hold(&ctx).await {
            if let Err(e) = queue_due(&ctx).await {
                warn!(error = %e, "queueing customer messages failed; the next pass retries");
            }
            if let Err(e) = send_due(&ctx, &channels).await {
                warn!(error = %e, "sending customer messages failed; the next pass retries");
            }
        }
        tokio::select! {
            _ = ctx.wake_notifications.notified() => {}
            _ = tokio::time::sleep(WORKER_TICK) => {}
            _ = shutdown.changed() => return lease.release(&ctx).await,
        }
    }
}
