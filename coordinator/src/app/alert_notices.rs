//! The alert-notice worker: people are told when an alert is raised, reminded while it stays
//! raised and nobody acknowledged or muted it, and told when it clears, by mail to
//! `[alerts] email_to` (through `[mail]`'s SMTP server) and by a Slack-compatible webhook
//! (`[alerts] webhook_url`, `{"text": …}`). Which alerts are raised is the dashboard's
//! snapshot; which notices that calls for, and their outbox, is `store::alert_notices`; sent
//! at least once, retried with backoff, across restarts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use tracing::{info, warn};

use crate::app::leases::{LeaseHold, WORKER_LEASE_TERM};
use crate::config::{AlertLanguage, CoordinatorConfig};
use crate::notify::mail::Mail;
use crate::notify::ChannelError;
use crate::store::alert_notices::{self as outbox, Attempt, Due, Raised, Recipient};
use crate::texts::{self as i18n, Lang, Texts};
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

/// The language `[alerts] language` names, as the pages' texts know it.
pub fn lang_of(language: AlertLanguage) -> Lang {
    match language {
        AlertLanguage::Ja => Lang::Ja,
        AlertLanguage::En => Lang::En,
    }
}

/// The words of a notice in `lang`, from the pages' texts (`alert_notice.*`): a subject and a
/// text.
pub fn words(d: &Due, base_url: Option<&str>, now_ms: i64, lang: Lang) -> (String, String) {
    let texts = i18n::texts(lang);
    let alert = alert_words(d, texts);
    let (raised, cleared) = (japan_time(d.raised_ms), japan_time(now_ms));
    let event = match d.event.as_str() {
        outbox::REMINDER => "reminder",
        outbox::CLEARED => "cleared",
        _ => "raised",
    };
    let vars = [
        ("alert", alert.as_str()),
        ("raised", raised.as_str()),
        ("cleared", cleared.as_str()),
    ];
    let subject = said(texts, &format!("alert_notice.subject_{event}"), &vars);
    let mut text = said(texts, &format!("alert_notice.body_{event}"), &vars);
    if let (Some(base), Some(site)) = (base_url, d.alert.split(':').nth(1)) {
        let url = format!("{base}/sites/{site}");
        text.push_str(&said(texts, "alert_notice.site_page", &[("url", &url)]));
    }
    if d.event != outbox::CLEARED {
        text.push_str(&said(texts, "alert_notice.act", &[]));
    }
    text.push_str(&said(texts, "alert_notice.alert_key", &[("key", &d.alert)]));
    (subject, text)
}

/// The alert itself in the texts' language: its site, its kind and its figures
/// (`alert_text.<kind>`); a notice queued without its figures keeps the English it was
/// queued with.
fn alert_words(d: &Due, texts: &Texts) -> String {
    let mut parts = d.alert.split(':');
    let (kind, site) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let figures: Option<BTreeMap<String, serde_json::Value>> = d
        .params
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok());
    let (Some(figures), Some(text), Some(kind_words)) = (
        figures,
        texts.get(&format!("alert_text.{kind}")),
        texts.get(&format!("alert.{kind}")),
    ) else {
        return d.message.clone();
    };
    let mut filled = text.clone();
    for (name, value) in &figures {
        let value = match value {
            serde_json::Value::String(s) if name == "device_kind" => texts
                .get(&format!("device.{s}"))
                .cloned()
                .unwrap_or_else(|| s.clone()),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        filled = filled.replace(&format!("{{{name}}}"), &value);
    }
    if filled.contains('{') {
        // Figures missing for a hole: the English says it whole.
        return d.message.clone();
    }
    said(
        texts,
        "alert_notice.alert",
        &[("site", site), ("kind", kind_words), ("text", &filled)],
    )
}

/// The text `key` with its `{name}` holes filled from `vars`.
fn said(texts: &Texts, key: &str, vars: &[(&str, &str)]) -> String {
    let mut text = texts.get(key).cloned().unwrap_or_else(|| key.to_owned());
    for (name, value) in vars {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
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
            params: serde_json::to_string(&a.params).unwrap_or_else(|_| "{}".into()),
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
        let lang = lang_of(ctx.config.alerts.language);
        let (subject, text) = words(&d, ctx.config.notifications.base_url(), now_ms, lang);
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
    let mut lease = LeaseHold::new("alert_notices", WORKER_LEASE_TERM);
    loop {
        if lease.hold(&ctx).await {
            if let Err(e) = queue_due(&ctx, &channels).await {
                warn!(error = %e, "comparing alerts with those told failed; the next pass retries");
            }
            if let Err(e) = send_due(&ctx, &channels).await {
                warn!(error = %e, "sending alert notices failed; the next pass retries");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(WORKER_TICK) => {}
            _ = shutdown.changed() => return lease.release(&ctx).await,
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
            params: Some(r#"{"threshold": 50, "units": 55}"#.into()),
            raised_ms: 0,
            attempts: 0,
        }
    }

    #[test]
    fn notices_say_what_when_in_japan_time_and_where_to_act() {
        let raised = due(outbox::RAISED);
        let (subject, text) = words(&raised, Some("https://ops.example.jp"), 0, Lang::En);
        assert_eq!(
            subject,
            "[Modori] Alert: osaka: Too many units in quarantine, units in quarantine: 55 (alert above 50)"
        );
        assert!(text.contains("Raised at 1970-01-01 09:00 JST"), "{text}");
        assert!(
            text.contains("https://ops.example.jp/sites/osaka"),
            "{text}"
        );
        assert!(text.contains("Acknowledge or mute"), "{text}");
        let (subject, text) = words(&due(outbox::CLEARED), None, 3_600_000, Lang::En);
        assert!(subject.starts_with("[Modori] Cleared: osaka"), "{subject}");
        assert!(text.contains("Cleared at 1970-01-01 10:00 JST"), "{text}");
        assert!(!text.contains("Acknowledge"), "{text}");
        let (subject, _) = words(&due(outbox::REMINDER), None, 0, Lang::En);
        assert!(subject.starts_with("[Modori] Still raised:"), "{subject}");
    }

    #[test]
    fn notices_are_written_in_japanese_from_the_alerts_figures() {
        let raised = due(outbox::RAISED);
        let (subject, text) = words(&raised, Some("https://ops.example.jp"), 0, Lang::Ja);
        assert_eq!(
            subject,
            "[Modori] アラート：osaka：保留品が多すぎます、保留中の商品 55 点（50 点を超えると通知）"
        );
        assert!(text.contains("1970-01-01 09:00 JST に発生"), "{text}");
        assert!(
            text.contains("倉庫のページ：https://ops.example.jp/sites/osaka"),
            "{text}"
        );
        assert!(text.contains("ミュート"), "{text}");
        assert!(
            !text.contains("Raised") && !text.contains("Acknowledge"),
            "{text}"
        );
        let (subject, _) = words(&due(outbox::CLEARED), None, 0, Lang::Ja);
        assert!(subject.starts_with("[Modori] 解消："), "{subject}");
        // A device's kind in words too.
        let mut down = due(outbox::RAISED);
        down.alert = "device_down:kobe:p1".into();
        down.params = Some(r#"{"device": "p1", "device_kind": "printer", "minutes": 3}"#.into());
        let (subject, _) = words(&down, None, 0, Lang::Ja);
        assert!(subject.contains("ラベルプリンター p1"), "{subject}");
        // Queued before its figures were kept: its English, whole.
        let mut old = due(outbox::RAISED);
        old.params = None;
        let (subject, _) = words(&old, None, 0, Lang::Ja);
        assert!(
            subject.ends_with("osaka has 55 units in quarantine (threshold 50)"),
            "{subject}"
        );
    }
}
