//! The alert-notice worker: people are told when an alert is raised, reminded while it stays
//! raised and nobody acknowledged or muted it, and told when it clears, by mail to
//! `[alerts] email_to` (through `[mail]`'s SMTP server) and by a Slack-compatible webhook
//! (`[alerts] webhook_url`, `{"text": …}`). Which alerts are raised is the dashboard's
//! snapshot; which notices that calls for, and their outbox, is `store::alert_notices`; sent
//! at least once, retried with backoff, across restarts.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use tracing::{info, warn};

use crate::config::CoordinatorConfig;
use crate::notify::mail::Mail;
use crate::notify::ChannelError;
use crate::store::alert_notices::{self as outbox, Attempt, Due, Raised, Recipient};
use crate::{CoordinatorError, Ctx};

/// How often the worker compares the alerts raised with those told.
pub const WORKER_TICK: Duration = Duration::from_secs(1);
/// Notices sent per pass at most.
pub const SEND_BATCH_MAX: usize = 100;
/// Attempts of one notice before it is given up: with the backoff of
/// `webhooks::retry_delay` (2 s doubling to an hour), about a day.
pub const ATTEMPTS_MAX: u32 = 30;
/// Japan time, which ops read.
const JST_OFFSET_S: i32 = 9 * 3600;

/// Where alert notices go, made at start from `[alerts]` and `[mail]`.
pub struct AlertChannels {
    mail: Option<Mail>,
    recipients: Vec<Recipient>,
}

impl AlertChannels {
    /// None when `[alerts]` names nobody to tell.
    pub fn from_config(config: &CoordinatorConfig) -> Result<Option<Self>, ChannelError> {
        let alerts = &config.alerts;
        let mail = match (&config.mail, alerts.email_to.is_empty()) {
            (Some(section), false) => Some(Mail::new(section)?),
            _ => None,
        };
        let mut recipients: Vec<Recipient> = match mail {
            Some(_) => alerts
                .email_to
                .iter()
                .map(|to| Recipient {
                    channel: outbox::EMAIL,
                    to: to.clone(),
                })
                .collect(),
            None => Vec::new(),
        };
        if let Some(url) = &alerts.webhook_url {
            recipients.push(Recipient {
                channel: outbox::WEBHOOK,
                to: url.clone(),
            });
        }
        Ok((!recipients.is_empty()).then_some(Self { mail, recipients }))
    }
}

/// The words of a notice: a subject and a text.
pub fn words(d: &Due, base_url: Option<&str>, now_ms: i64) -> (String, String) {
    let raised = japan_time(d.raised_ms);
    let (subject, mut text) = match d.event.as_str() {
        outbox::REMINDER => (
            format!("[Modori] Still raised: {}", d.message),
            format!(
                "Still raised, since {raised}, and nobody has acknowledged or muted it:\n{}\n",
                d.message
            ),
        ),
        outbox::CLEARED => (
            format!("[Modori] Cleared: {}", d.message),
            format!(
                "Cleared at {}. It was raised at {raised}, last as:\n{}\n",
                japan_time(now_ms),
                d.message
            ),
        ),
        _ => (
            format!("[Modori] Alert: {}", d.message),
            format!("Raised at {raised}:\n{}\n", d.message),
        ),
    };
    if let (Some(base), Some(site)) = (base_url, d.alert.split(':').nth(1)) {
        text.push_str(&format!("\nThe site's page: {base}/sites/{site}\n"));
    }
    if d.event != outbox::CLEARED {
        text.push_str(
            "Acknowledge or mute it on the ops console and nobody is told again while it lasts.\n",
        );
    }
    text.push_str(&format!("(alert {})\n", d.alert));
    (subject, text)
}

fn japan_time(ms: i64) -> String {
    let (Some(t), Some(jst)) = (
        DateTime::from_timestamp_millis(ms),
        FixedOffset::east_opt(JST_OFFSET_S),
    ) else {
        return format!("{ms} ms");
    };
    t.with_timezone(&jst)
        .format("%Y-%m-%d %H:%M JST")
        .to_string()
}

/// Compares the alerts raised now with those told and queues what that calls for.
pub async fn queue_due(ctx: &Ctx, channels: &AlertChannels) -> Result<(), CoordinatorError> {
    let now_ms = ctx.clock.now_ms();
    let snapshot = ctx.dashboard.snapshot(ctx, now_ms).await?;
    let raised: Vec<Raised> = snapshot
        .alerts
        .into_iter()
        .map(|a| Raised {
            key: a.key,
            message: a.message,
        })
        .collect();
    let alerts = &ctx.config.alerts;
    let renotify_ms =
        (alerts.renotify_minutes > 0).then(|| i64::from(alerts.renotify_minutes) * 60_000);
    // Until a site never seen since the start would have raised its offline alert, an alert
    // missing now may only not have been judged yet: nothing is cleared before then.
    let may_clear = now_ms - ctx.live.started_ms >= i64::from(alerts.offline_minutes) * 60_000;
    let recipients = channels.recipients.clone();
    let r = ctx
        .db
        .call(move |c| outbox::reconcile(c, &raised, &recipients, renotify_ms, may_clear, now_ms))
        .await?;
    if r.n_raised + r.n_cleared + r.n_queued > 0 {
        info!(
            n_raised = r.n_raised,
            n_cleared = r.n_cleared,
            n_queued = r.n_queued,
            "alert notices queued"
        );
    }
    Ok(())
}

/// Sends the notices due now; returns how many were sent.
pub async fn send_due(ctx: &Ctx, channels: &AlertChannels) -> Result<usize, CoordinatorError> {
    let now_ms = ctx.clock.now_ms();
    let due = ctx
        .db
        .call(move |c| outbox::due(c, now_ms, SEND_BATCH_MAX))
        .await?;
    let mut n_sent = 0;
    for d in due {
        if *ctx.shutdown.borrow() {
            break;
        }
        let (subject, text) = words(&d, ctx.config.notifications.base_url(), now_ms);
        let outcome = send(channels, &d, &subject, &text).await;
        let now_ms = ctx.clock.now_ms();
        let attempt = match &outcome {
            Ok(()) => Attempt::Sent,
            Err((error, permanent)) => {
                let attempts = d.attempts.saturating_add(1);
                let retry_at_ms = (!permanent && attempts < ATTEMPTS_MAX).then(|| {
                    let delay = crate::webhooks::retry_delay(attempts).as_millis();
                    now_ms.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))
                });
                Attempt::Failed {
                    error: error.clone(),
                    retry_at_ms,
                }
            }
        };
        let id = d.id;
        let status = ctx
            .db
            .call(move |c| outbox::record(c, id, &attempt, now_ms))
            .await?;
        match outcome {
            Ok(()) => {
                n_sent += 1;
                info!(id, alert = %d.alert, event = %d.event, channel = %d.channel, "alert notice sent");
            }
            Err((error, _)) => {
                warn!(id, alert = %d.alert, channel = %d.channel, error = %error, status, "alert notice not sent");
            }
        }
    }
    Ok(n_sent)
}

/// One attempt; the error's text and whether retrying cannot help.
async fn send(
    channels: &AlertChannels,
    d: &Due,
    subject: &str,
    text: &str,
) -> Result<(), (String, bool)> {
    match d.channel.as_str() {
        outbox::EMAIL => {
            let Some(mail) = &channels.mail else {
                return Err(("[mail] is no longer configured".into(), true));
            };
            let message = mail
                .ops_message(&format!("alert-{}", d.id), &d.recipient, subject, text)
                .map_err(|e| (e.to_string(), e.is_permanent()))?;
            mail.send_message(message)
                .await
                .map_err(|e| (e.to_string(), e.is_permanent()))
        }
        _ => {
            let body = serde_json::json!({ "text": format!("{subject}\n{text}") });
            crate::webhooks::post_json(&d.recipient, &[], body.to_string().into_bytes())
                .await
                .map(|_| ())
                .map_err(|e| {
                    let permanent = matches!(e, crate::webhooks::DeliveryError::Url(_));
                    (e.to_string(), permanent)
                })
        }
    }
}

/// Tells people of alerts until shutdown. Does nothing when `[alerts]` names nobody.
pub async fn worker(ctx: Arc<Ctx>, channels: Option<AlertChannels>) {
    let Some(channels) = channels else {
        return;
    };
    let mut shutdown = ctx.shutdown.clone();
    loop {
        if let Err(e) = queue_due(&ctx, &channels).await {
            warn!(error = %e, "comparing alerts with those told failed; the next pass retries");
        }
        if let Err(e) = send_due(&ctx, &channels).await {
            warn!(error = %e, "sending alert notices failed; the next pass retries");
        }
        tokio::select! {
            _ = tokio::time::sleep(WORKER_TICK) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(event: &str) -> Due {
        Due {
            id: 1,
            alert: "quarantine_backlog:osaka".into(),
            event: event.into(),
            channel: outbox::EMAIL.into(),
            recipient: "ops@example.jp".into(),
            message: "osaka has 55 units in quarantine (threshold 50)".into(),
            raised_ms: 0,
            attempts: 0,
        }
    }

    #[test]
    fn notices_say_what_when_in_japan_time_and_where_to_act() {
        let (subject, text) = words(&due(outbox::RAISED), Some("https://ops.example.jp"), 0);
        assert_eq!(
            subject,
            "[Modori] Alert: osaka has 55 units in quarantine (threshold 50)"
        );
        assert!(text.contains("Raised at 1970-01-01 09:00 JST"), "{text}");
        assert!(
            text.contains("https://ops.example.jp/sites/osaka"),
            "{text}"
        );
        assert!(text.contains("Acknowledge or mute"), "{text}");
        let (subject, text) = words(&due(outbox::CLEARED), None, 3_600_000);
        assert!(subject.starts_with("[Modori] Cleared: osaka"), "{subject}");
        assert!(text.contains("Cleared at 1970-01-01 10:00 JST"), "{text}");
        assert!(!text.contains("Acknowledge"), "{text}");
        let (subject, _) = words(&due(outbox::REMINDER), None, 0);
        assert!(subject.starts_with("[Modori] Still raised:"), "{subject}");
    }
}
