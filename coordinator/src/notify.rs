//! Messages to customers about their returns: which events of a return the customer is told
//! of, the config of the outbox and its channels, the status-page tokens messages link to, and
//! the [`Channel`] every way of reaching a customer implements (email over SMTP in `mail`,
//! LINE pushes in `line`). What is sent is worded in `templates`; when, in `app::notify`.
//!
//! Architecture invariant: nothing here touches the database; the outbox lives behind
//! `store::notifications`.

pub mod line;
pub mod mail;
pub mod templates;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// A customer-facing event of a return: what a message is about. At most one message per
/// return and kind is ever queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Registered,
    /// The parcel was handed in at a store's counter against its QR code.
    DroppedOff,
    /// The first unit of the return arrived at its site.
    Arrived,
    /// The first unit of the return was graded.
    Inspected,
    /// The merchant confirmed the refund paid.
    RefundIssued,
    ExchangeShipped,
    /// Not resolved (refunded or exchanged) `notifications.delay_notice_after_hours` after it
    /// was registered, and not cancelled or expired.
    Delayed,
    /// A trade-in graded worse than described: a lower offer to accept or decline.
    CounterOffer,
    /// A trade-in's offer accepted (as quoted, by the customer, or at its deadline).
    TradeInAccepted,
    /// A trade-in's counter-offer declined: the item is to go back.
    TradeInDeclined,
    /// The merchant confirmed a trade-in's payout made.
    TradeInPaid,
    /// A trade-in sent against its quote: registered as the return it travels under.
    TradeInRegistered,
    /// Ops revised a trade-in's counter-offer after a dispute: a new amount and deadline.
    OfferRevised,
    /// A repair requested: registered as the return it travels under.
    RepairRegistered,
    /// A repair inspected and quoted: to accept or decline.
    RepairQuoted,
    /// A repair's quote accepted (by the customer, or at its deadline).
    RepairAccepted,
    /// A repair's quote declined: the item is to go back as it is.
    RepairDeclined,
    /// A declined trade-in's item left its site on its way back to the customer.
    TradeInShippedBack,
    /// A repair's item left its site on its way back to the customer (declined: as it is).
    RepairShippedBack,
    /// Ops revised a repair's quote after a dispute: a new amount and deadline.
    RepairQuoteRevised,
}

impl Kind {
    pub const ALL: [Kind; 20] = [
        Kind::Registered,
        Kind::DroppedOff,
        Kind::Arrived,
        Kind::Inspected,
        Kind::RefundIssued,
        Kind::ExchangeShipped,
        Kind::Delayed,
        Kind::CounterOffer,
        Kind::TradeInAccepted,
        Kind::TradeInDeclined,
        Kind::TradeInPaid,
        Kind::OfferRevised,
        Kind::TradeInRegistered,
        Kind::RepairRegistered,
        Kind::RepairQuoted,
        Kind::RepairAccepted,
        Kind::RepairDeclined,
        Kind::TradeInShippedBack,
        Kind::RepairShippedBack,
        Kind::RepairQuoteRevised,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Registered => "registered",
            Kind::DroppedOff => "dropped_off",
            Kind::Arrived => "arrived",
            Kind::Inspected => "inspected",
            Kind::RefundIssued => "refund_issued",
            Kind::ExchangeShipped => "exchange_shipped",
            Kind::Delayed => "delayed",
            Kind::CounterOffer => "counter_offer",
            Kind::TradeInAccepted => "trade_in_accepted",
            Kind::TradeInDeclined => "trade_in_declined",
            Kind::TradeInPaid => "trade_in_paid",
            Kind::OfferRevised => "offer_revised",
            Kind::TradeInRegistered => "trade_in_registered",
            Kind::RepairRegistered => "repair_registered",
            Kind::RepairQuoted => "repair_quoted",
            Kind::RepairAccepted => "repair_accepted",
            Kind::RepairDeclined => "repair_declined",
            Kind::TradeInShippedBack => "trade_in_shipped_back",
            Kind::RepairShippedBack => "repair_shipped_back",
            Kind::RepairQuoteRevised => "repair_quote_revised",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The message a row of a return's timeline (`return_events.kind`) calls for, if any.
    pub fn from_timeline(event_kind: &str) -> Option<Kind> {
        match event_kind {
            "registered" => Some(Kind::Registered),
            "dropped_off" => Some(Kind::DroppedOff),
            "unit_received" | "unit_matched" => Some(Kind::Arrived),
            "unit_graded" => Some(Kind::Inspected),
            "refunded" => Some(Kind::RefundIssued),
            "exchange_shipped" => Some(Kind::ExchangeShipped),
            _ => None,
        }
    }

    /// The message a row of a trade-in's timeline calls for: its grading is followed by the
    /// offer's own message, and what a return calls its refund is the trade-in's payout.
    pub fn from_trade_in_timeline(event_kind: &str) -> Option<Kind> {
        match event_kind {
            "unit_graded" => None,
            "registered" => Some(Kind::TradeInRegistered),
            "trade_in_counter_offer" => Some(Kind::CounterOffer),
            "trade_in_accepted" => Some(Kind::TradeInAccepted),
            "trade_in_declined" => Some(Kind::TradeInDeclined),
            "trade_in_offer_overridden" => Some(Kind::OfferRevised),
            "shipped_back" => Some(Kind::TradeInShippedBack),
            "refunded" => Some(Kind::TradeInPaid),
            other => Self::from_timeline(other),
        }
    }

    /// The message a row of a repair's timeline calls for: its grading is followed by the
    /// quote's own message, and nothing of it is refunded.
    pub fn from_repair_timeline(event_kind: &str) -> Option<Kind> {
        match event_kind {
            "unit_graded" | "refunded" => None,
            "registered" => Some(Kind::RepairRegistered),
            "repair_quoted" => Some(Kind::RepairQuoted),
            "repair_accepted" => Some(Kind::RepairAccepted),
            "repair_declined" => Some(Kind::RepairDeclined),
            "shipped_back" => Some(Kind::RepairShippedBack),
            "repair_quote_overridden" => Some(Kind::RepairQuoteRevised),
            other => Self::from_timeline(other),
        }
    }
}

/// The language a customer is written to in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Ja,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Ja => "ja",
            Language::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "ja" => Some(Language::Ja),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

/// Random bytes of a status token: 256 bits, beyond guessing (the portal asks for ≥ 128).
pub const STATUS_TOKEN_BYTES: usize = 32;

/// A fresh status token (hex) and the SHA-256 (hex) it is stored as. Only the hash is kept:
/// a copy of the database does not open anyone's status page.
pub fn mint_token() -> Result<(String, String), EntropyError> {
    let mut bytes = [0u8; STATUS_TOKEN_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| EntropyError(e.to_string()))?;
    let token = hex(&bytes);
    let hash = token_hash(&token);
    Ok((token, hash))
}

#[derive(Debug, Error)]
#[error("the operating system gave no random bytes: {0}")]
pub struct EntropyError(String);

/// What a token is stored and looked up as.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `s` has the shape of a token [`mint_token`] makes (checked before any lookup).
pub fn is_token_shaped(s: &str) -> bool {
    s.len() == 2 * STATUS_TOKEN_BYTES && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An opt-out is kept by the SHA-256 of the lowercased address, not the address.
pub fn email_hash(email: &str) -> String {
    hex(&Sha256::digest(
        email.trim().to_ascii_lowercase().as_bytes(),
    ))
}

/// Defaults of `[notifications]`.
pub const DELAY_NOTICE_AFTER_HOURS_DEFAULT: u32 = 7 * 24;
pub const BATCH_MAX_DEFAULT: usize = 100;
pub const ATTEMPTS_MAX_DEFAULT: u32 = 20;
pub const RETRY_FIRST_SECONDS_DEFAULT: u64 = 30;
pub const RETRY_CAP_SECONDS_DEFAULT: u64 = 3600;
/// Largest `notifications.batch_max` accepted.
pub const BATCH_MAX_MAX: usize = 10_000;
/// Largest `notifications.attempts_max` accepted.
pub const ATTEMPTS_MAX_MAX: u32 = 1000;
/// Longest `notifications.delay_notice_after_hours` accepted (a year).
pub const DELAY_NOTICE_AFTER_HOURS_MAX: u32 = 365 * 24;

/// The outbox of customer messages (`[notifications]`). Messages are sent when `[mail]` or
/// `[line]` is configured.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsSection {
    /// Where customers reach this coordinator's public pages, e.g.
    /// `https://returns.example.jp` (no trailing slash): messages link to
    /// `<base>/r/<merchant>/s/<token>` (the return's status) and `<base>/r/<merchant>/u/<token>`
    /// (unsubscribe). Required with `[mail]` or `[line]`.
    pub public_base_url: Option<String>,
    /// A return neither refunded nor exchanged this many hours after it was registered (and
    /// not cancelled or expired) gets one delay notice. Default 168 (a week).
    pub delay_notice_after_hours: u32,
    /// Timeline events read, and messages sent, per pass at most. Default 100.
    pub batch_max: usize,
    /// Sending attempts of one message before it is given up (status `failed`, logged).
    /// Default 20: with the default backoff, about a day.
    pub attempts_max: u32,
    /// The delay before the first retry, in seconds; it doubles each attempt. Default 30.
    pub retry_first_seconds: u64,
    /// The longest delay between retries, in seconds. Default 3600.
    pub retry_cap_seconds: u64,
}

impl Default for NotificationsSection {
    fn default() -> Self {
        Self {
            public_base_url: None,
            delay_notice_after_hours: DELAY_NOTICE_AFTER_HOURS_DEFAULT,
            batch_max: BATCH_MAX_DEFAULT,
            attempts_max: ATTEMPTS_MAX_DEFAULT,
            retry_first_seconds: RETRY_FIRST_SECONDS_DEFAULT,
            retry_cap_seconds: RETRY_CAP_SECONDS_DEFAULT,
        }
    }
}

impl NotificationsSection {
    /// The delay before attempt `attempt` + 1, after `attempt` failures (1 = the first retry).
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let factor = 2u64.saturating_pow(attempt.saturating_sub(1).min(32));
        Duration::from_secs(
            self.retry_first_seconds
                .saturating_mul(factor)
                .min(self.retry_cap_seconds),
        )
    }

    pub fn delay_notice_after_ms(&self) -> i64 {
        i64::from(self.delay_notice_after_hours) * 3_600_000
    }

    /// The public base URL without a trailing slash.
    pub fn base_url(&self) -> Option<&str> {
        self.public_base_url
            .as_deref()
            .map(|u| u.trim_end_matches('/'))
    }

    /// The first key out of range, and why. `channels` is whether `[mail]` or `[line]` is set.
    pub fn check(&self, channels: bool) -> Result<(), (&'static str, String)> {
        match self.public_base_url.as_deref() {
            None if channels => {
                return Err((
                    "notifications.public_base_url",
                    "required with [mail] or [line]: messages link to the return's status".into(),
                ))
            }
            Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
                return Err((
                    "notifications.public_base_url",
                    "must start with https:// (or http:// for a local test)".into(),
                ))
            }
            Some(u) if u.contains(['?', '#', ' ']) => {
                return Err((
                    "notifications.public_base_url",
                    "must be a base URL without query, fragment or spaces".into(),
                ))
            }
            _ => {}
        }
        if self.delay_notice_after_hours == 0
            || self.delay_notice_after_hours > DELAY_NOTICE_AFTER_HOURS_MAX
        {
            return Err((
                "notifications.delay_notice_after_hours",
                format!("must be 1..={DELAY_NOTICE_AFTER_HOURS_MAX}"),
            ));
        }
        if self.batch_max == 0 || self.batch_max > BATCH_MAX_MAX {
            return Err((
                "notifications.batch_max",
                format!("must be 1..={BATCH_MAX_MAX}"),
            ));
        }
        if self.attempts_max == 0 || self.attempts_max > ATTEMPTS_MAX_MAX {
            return Err((
                "notifications.attempts_max",
                format!("must be 1..={ATTEMPTS_MAX_MAX}"),
            ));
        }
        if self.retry_first_seconds == 0 || self.retry_cap_seconds < self.retry_first_seconds {
            return Err((
                "notifications.retry_first_seconds",
                "must be at least 1 and at most retry_cap_seconds".into(),
            ));
        }
        Ok(())
    }
}

/// One message ready to go out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The outbox row: a resend of the same message carries the same id, so a receiver can
    /// recognise the duplicate an at-least-once outbox may make.
    pub id: i64,
    /// An email address or a LINE user id, by channel.
    pub to: String,
    pub subject: String,
    pub text: String,
    pub unsubscribe_url: String,
}

#[derive(Debug, Error)]
pub enum ChannelError {
    /// The recipient or sender cannot be written into a message: retrying will not help.
    #[error("address {0:?} refused: {1}")]
    Address(String, String),
    #[error("message: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("LINE: {0}")]
    Line(#[from] crate::webhooks::DeliveryError),
}

impl ChannelError {
    /// Whether sending the same message again cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ChannelError::Address(..) | ChannelError::Build(_))
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ChannelError>> + Send + 'a>>;

/// A way of reaching a customer. A delivery is done when `send` returns `Ok`: the receiving
/// server took the message.
pub trait Channel: Send + Sync {
    /// Recorded with each message sent (`email`, `line`).
    fn name(&self) -> &'static str;
    fn send<'a>(&'a self, message: &'a Outgoing) -> SendFuture<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_events_map_to_the_customers_words() {
        assert_eq!(Kind::from_timeline("registered"), Some(Kind::Registered));
        assert_eq!(Kind::from_timeline("unit_received"), Some(Kind::Arrived));
        assert_eq!(Kind::from_timeline("unit_matched"), Some(Kind::Arrived));
        assert_eq!(Kind::from_timeline("unit_graded"), Some(Kind::Inspected));
        assert_eq!(Kind::from_timeline("refunded"), Some(Kind::RefundIssued));
        assert_eq!(
            Kind::from_timeline("exchange_shipped"),
            Some(Kind::ExchangeShipped)
        );
        for internal in ["disposition_set", "refund_computed", "parcel_closed"] {
            assert_eq!(Kind::from_timeline(internal), None, "{internal}");
        }
        // A trade-in: told of the offer rather than the grading, of its payout rather than a
        // refund; the rest as a return.
        let trade_in = Kind::from_trade_in_timeline;
        assert_eq!(trade_in("unit_graded"), None);
        assert_eq!(trade_in("registered"), Some(Kind::TradeInRegistered));
        assert_eq!(trade_in("refunded"), Some(Kind::TradeInPaid));
        assert_eq!(trade_in("trade_in_counter_offer"), Some(Kind::CounterOffer));
        assert_eq!(trade_in("trade_in_accepted"), Some(Kind::TradeInAccepted));
        assert_eq!(trade_in("trade_in_declined"), Some(Kind::TradeInDeclined));
        assert_eq!(trade_in("shipped_back"), Some(Kind::TradeInShippedBack));
        assert_eq!(trade_in("unit_received"), Some(Kind::Arrived));
        assert_eq!(trade_in("trade_in_offer"), None);
        assert_eq!(Kind::from_timeline("trade_in_counter_offer"), None);
        let repair = Kind::from_repair_timeline;
        assert_eq!(repair("registered"), Some(Kind::RepairRegistered));
        assert_eq!(repair("repair_quoted"), Some(Kind::RepairQuoted));
        assert_eq!(repair("repair_accepted"), Some(Kind::RepairAccepted));
        assert_eq!(repair("repair_declined"), Some(Kind::RepairDeclined));
        assert_eq!(repair("shipped_back"), Some(Kind::RepairShippedBack));
        assert_eq!(
            repair("repair_quote_overridden"),
            Some(Kind::RepairQuoteRevised)
        );
        assert_eq!(repair("unit_received"), Some(Kind::Arrived));
        assert_eq!(repair("unit_graded"), None);
        assert_eq!(repair("repair_unpriced"), None);
        assert_eq!(Kind::from_timeline("repair_quoted"), None);
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn tokens_are_random_hashed_and_shaped() {
        let (a, hash_a) = mint_token().unwrap();
        let (b, _) = mint_token().unwrap();
        assert_ne!(a, b);
        assert!(is_token_shaped(&a), "{a}");
        assert_eq!(a.len() * 4, 256);
        assert_eq!(token_hash(&a), hash_a);
        assert_ne!(hash_a, a);
        assert!(!is_token_shaped("../etc"));
        assert!(!is_token_shaped(&a.to_uppercase()));
        assert_eq!(email_hash(" A@Example.jp"), email_hash("a@example.jp"));
    }

    #[test]
    fn retries_back_off_to_the_cap_and_the_section_is_checked() {
        let s = NotificationsSection::default();
        assert_eq!(s.retry_delay(1), Duration::from_secs(30));
        assert_eq!(s.retry_delay(3), Duration::from_secs(120));
        assert_eq!(s.retry_delay(99), Duration::from_secs(3600));
        assert!(s.check(false).is_ok());
        assert_eq!(
            s.check(true).unwrap_err().0,
            "notifications.public_base_url"
        );
        let with_url = NotificationsSection {
            public_base_url: Some("https://returns.example.jp/".into()),
            ..s.clone()
        };
        assert!(with_url.check(true).is_ok());
        assert_eq!(with_url.base_url(), Some("https://returns.example.jp"));
        let bad = NotificationsSection {
            attempts_max: 0,
            ..with_url
        };
        assert_eq!(bad.check(true).unwrap_err().0, "notifications.attempts_max");
    }
}
