//! A merchant as the coordinator's config describes it (`[[merchants]]`): its webhook, its
//! name, its portal's look and offer, and the wording towards its customers. Plain data, read by the webhook worker and the
//! customer messages alike.

use serde::{Deserialize, Serialize};

/// A merchant (`[[merchants]]` in the coordinator's config): its webhook endpoint, and how
/// its customers' messages name it and are worded.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MerchantEntry {
    pub id: String,
    /// The name its customers know it by, in their messages (1-100 characters); none: the id.
    #[serde(default)]
    pub name: Option<String>,
    /// The portal's accent colour, `#rrggbb`; none: the portal's own.
    #[serde(default)]
    pub colour: Option<String>,
    /// The logo shown on the portal's pages: an `https://` URL; none: the name alone.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// The return policy in the merchant's words, shown on the portal (plain text, at most
    /// `portal_settings::POLICY_TEXT_CHARS_MAX` characters).
    #[serde(default)]
    pub policy_text: Option<String>,
    /// The reason codes the portal offers, in this order; empty: every reason.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The ways back the portal offers (`store::commerce::METHODS`), in this order; empty:
    /// every one.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Its own wording of customer messages, replacing the built-in one per event and
    /// language (`[[merchants.templates]]`, see `notify::templates`).
    #[serde(default)]
    pub templates: Vec<TemplateEntry>,
    /// Where its customers' status events are posted; none: not posted.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The HMAC key of the signature; required with `webhook_url`.
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

/// A merchant's own wording of one message (`[[merchants.templates]]`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TemplateEntry {
    /// `registered`, `dropped_off`, `arrived`, `inspected`, `refund_issued`, `exchange_shipped`,
    /// `delayed`, or a trade-in's `counter_offer`, `trade_in_accepted`, `trade_in_declined`,
    /// `trade_in_shipped_back` or `trade_in_paid`, or a repair's `repair_registered`,
    /// `repair_quoted`, `repair_accepted`, `repair_declined`, `repair_quote_revised` or
    /// `repair_shipped_back`.
    pub event: String,
    /// `ja` or `en`.
    pub language: String,
    /// One line, at most 200 characters; `{merchant}` and `{rma}` are replaced.
    pub subject: String,
    /// At most 4000 characters, naming the return by `{rma}`; `{merchant}` and `{rma}` are
    /// replaced.
    pub body: String,
}
