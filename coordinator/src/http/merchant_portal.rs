//! A merchant's portal and message settings over the API: its name, colour and logo, the
//! policy text shown, the reasons and ways back offered, and its own message wording. Ops
//! keys, or the merchant's own. Stored at once and read by the next page and message.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use modori_shared::domain::MerchantId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::app::merchant_settings;
use crate::merchants::TemplateEntry;
use crate::notify::Kind;
use crate::portal_settings::PortalSettings;
use crate::Ctx;

/// A merchant's portal settings. Every field may be left out: that setting is then the
/// portal's own (the merchant's id as its name, the portal's colours, every reason and way
/// back, the built-in messages).
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalBody {
    /// The name customers know the merchant by: 1 to 100 characters on one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    name: Option<String>,
    /// The portal's header colour, `#rrggbb`; its text is black or white, whichever reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    colour: Option<String>,
    /// The logo shown in the header: an `https://` URL with a host, printable ASCII, at most
    /// 2,048 characters (`portal_settings::LOGO_URL_BYTES_MAX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 2048,
        pattern = "^https://[A-Za-z0-9.:\\[\\]-]+([/?#][!-~]*)?$"
    )]
    logo_url: Option<String>,
    /// The return policy in the merchant's words, shown on the portal: 1 to 4,000
    /// characters, lines apart by newlines (`portal_settings::POLICY_TEXT_CHARS_MAX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]+$"
    )]
    policy_text: Option<String>,
    /// The reasons offered, in this order (a reason listed twice counts once); empty or
    /// left out: every one.
    #[serde(default)]
    #[schema(value_type = Vec<ReasonName>)]
    reasons: Vec<String>,
    /// The ways back offered, in this order (one listed twice counts once); empty or left
    /// out: every one.
    #[serde(default)]
    #[schema(value_type = Vec<MethodName>)]
    methods: Vec<String>,
    /// The merchant's own wording per event and language; an event or language left out
    /// keeps the built-in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    templates: Option<TemplatesBody>,
}

/// A reason code (the documented list of `ReasonCode`).
#[derive(ToSchema)]
#[schema(as = ReasonName)]
#[allow(dead_code)] // The document's shape only; `portal_settings::check` reads the codes.
#[allow(clippy::enum_variant_names)]
enum ReasonName {
    #[schema(rename = "too_small")]
    TooSmall,
    #[schema(rename = "too_large")]
    TooLarge,
    #[schema(rename = "not_as_described")]
    NotAsDescribed,
    #[schema(rename = "damaged_in_transit")]
    DamagedInTransit,
    #[schema(rename = "defective")]
    Defective,
    #[schema(rename = "wrong_item_sent")]
    WrongItemSent,
    #[schema(rename = "changed_mind")]
    ChangedMind,
    #[schema(rename = "arrived_late")]
    ArrivedLate,
    #[schema(rename = "other")]
    Other,
}

/// A way back (`store::commerce::METHODS`).
#[derive(ToSchema)]
#[allow(dead_code)] // The document's shape only; `portal_settings::check` reads the names.
enum MethodName {
    #[schema(rename = "carrier_pickup")]
    CarrierPickup,
    #[schema(rename = "home_pickup")]
    HomePickup,
    #[schema(rename = "konbini_dropoff")]
    KonbiniDropoff,
    #[schema(rename = "store_dropoff")]
    StoreDropoff,
}

/// The merchant's wording, by event.
#[derive(Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplatesBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registered: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropped_off: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    arrived: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inspected: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refund_issued: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exchange_shipped: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delayed: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counter_offer: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trade_in_accepted: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trade_in_declined: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trade_in_paid: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offer_revised: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trade_in_registered: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repair_registered: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repair_quoted: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repair_accepted: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repair_declined: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trade_in_shipped_back: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repair_shipped_back: Option<LanguagesBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repair_quote_revised: Option<LanguagesBody>,
}

/// One event's wording, by language.
#[derive(Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguagesBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ja: Option<WordsBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    en: Option<WordsBody>,
}

/// One message's words. `{merchant}` and `{rma}` are replaced, and no other `{…}` may
/// appear; the links to the status page and to unsubscribe are always added below.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WordsBody {
    /// One line of 1 to 200 characters (`templates::SUBJECT_CHARS_MAX`).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^([^{\\x00-\\x1f\\x7f-\\x9f]|\\{merchant\\}|\\{rma\\})+$"
    )]
    subject: String,
    /// 1 to 4,000 characters (`templates::BODY_CHARS_MAX`), lines apart by newlines,
    /// naming the return by `{rma}`.
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = "^([^{\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]|\\{merchant\\}|\\{rma\\})*\\{rma\\}([^{\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]|\\{merchant\\}|\\{rma\\})*$"
    )]
    body: String,
}

impl TemplatesBody {
    fn slot(&mut self, kind: Kind) -> &mut Option<LanguagesBody> {
        match kind {
            Kind::Registered => &mut self.registered,
            Kind::DroppedOff => &mut self.dropped_off,
            Kind::Arrived => &mut self.arrived,
            Kind::Inspected => &mut self.inspected,
            Kind::RefundIssued => &mut self.refund_issued,
            Kind::ExchangeShipped => &mut self.exchange_shipped,
            Kind::Delayed => &mut self.delayed,
            Kind::CounterOffer => &mut self.counter_offer,
            Kind::TradeInAccepted => &mut self.trade_in_accepted,
            Kind::TradeInDeclined => &mut self.trade_in_declined,
            Kind::TradeInPaid => &mut self.trade_in_paid,
            Kind::OfferRevised => &mut self.offer_revised,
            Kind::TradeInRegistered => &mut self.trade_in_registered,
            Kind::RepairRegistered => &mut self.repair_registered,
            Kind::RepairQuoted => &mut self.repair_quoted,
            Kind::RepairAccepted => &mut self.repair_accepted,
            Kind::RepairDeclined => &mut self.repair_declined,
            Kind::TradeInShippedBack => &mut self.trade_in_shipped_back,
            Kind::RepairShippedBack => &mut self.repair_shipped_back,
            Kind::RepairQuoteRevised => &mut self.repair_quote_revised,
        }
    }

    fn from_entries(entries: Vec<TemplateEntry>) -> Option<Self> {
        if entries.is_empty() {
            return None;
        }
        let mut out = Self::default();
        for t in entries {
            let Some(kind) = Kind::parse(&t.event) else {
                continue;
            };
            let langs = out.slot(kind).get_or_insert_with(LanguagesBody::default);
            let words = Some(WordsBody {
                subject: t.subject,
                body: t.body,
            });
            match t.language.as_str() {
                "ja" => langs.ja = words,
                "en" => langs.en = words,
                _ => {}
            }
        }
        Some(out)
    }

    fn into_entries(mut self) -> Vec<TemplateEntry> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let Some(langs) = self.slot(kind).take() else {
                continue;
            };
            for (language, words) in [("ja", langs.ja), ("en", langs.en)] {
                if let Some(w) = words {
                    out.push(TemplateEntry {
                        event: kind.as_str().to_owned(),
                        language: language.to_owned(),
                        subject: w.subject,
                        body: w.body,
                    });
                }
            }
        }
        out
    }
}

/// Keeps the first of each, in order: a code listed twice is offered once.
fn deduplicated(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for s in list {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

impl From<PortalSettings> for PortalBody {
    fn from(s: PortalSettings) -> Self {
        Self {
            name: s.name,
            colour: s.colour,
            logo_url: s.logo_url,
            policy_text: s.policy_text,
            reasons: s.reasons,
            methods: s.methods,
            templates: TemplatesBody::from_entries(s.templates),
        }
    }
}

impl From<PortalBody> for PortalSettings {
    fn from(b: PortalBody) -> Self {
        Self {
            name: b.name,
            colour: b.colour,
            logo_url: b.logo_url,
            policy_text: b.policy_text,
            reasons: deduplicated(b.reasons),
            methods: deduplicated(b.methods),
            templates: b
                .templates
                .map(TemplatesBody::into_entries)
                .unwrap_or_default(),
        }
    }
}

/// A checked field as the body names it: `templates[i].body` is `templates.arrived.ja.body`.
fn body_field(templates: &[TemplateEntry], field: &str) -> String {
    let Some((index, rest)) = field
        .strip_prefix("templates[")
        .and_then(|f| f.split_once("]."))
    else {
        return field.to_owned();
    };
    match index.parse::<usize>().ok().and_then(|i| templates.get(i)) {
        Some(t) => format!("templates.{}.{}.{rest}", t.event, t.language),
        None => field.to_owned(),
    }
}

pub(super) fn known_merchant(
    ctx: &Ctx,
    caller: &Caller,
    merchant: String,
) -> Result<MerchantId, ApiError> {
    let merchant = MerchantId::new(merchant).map_err(|e| ApiError::invalid_path("merchant", e))?;
    caller.require_merchant(&merchant)?;
    if !ctx.knows_merchant(merchant.as_str()) {
        return Err(ApiError::not_found(format!(
            "no merchant {merchant} (merchants are configured in [[merchants]])"
        )));
    }
    Ok(merchant)
}

/// The merchant's portal settings in force: the config's, or what was last put here.
#[utoipa::path(get, path = "/api/v1/merchants/{merchant}/portal", tag = "merchants",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    responses(
        (status = 200, body = PortalBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody)))]
pub async fn get_portal(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
) -> Result<Json<PortalBody>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let settings = merchant_settings::get(&ctx, merchant.as_str()).await?;
    Ok(Json(settings.into()))
}

/// Replaces the merchant's portal settings as a whole; the portal's pages and the customer
/// messages use them from the next one on, and they outlive a restart (the config's no
/// longer apply to this merchant).
#[utoipa::path(put, path = "/api/v1/merchants/{merchant}/portal", tag = "merchants",
    security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = PortalBody,
    responses(
        (status = 200, description = "Stored; the settings now in force", body = PortalBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "A setting is not valid; `field` names it", body = ErrorBody)))]
pub async fn put_portal(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    ApiJson(body): ApiJson<PortalBody>,
) -> Result<Json<PortalBody>, ApiError> {
    let merchant = known_merchant(&ctx, &caller, merchant)?;
    let settings: PortalSettings = body.into();
    if let Err((field, message)) = crate::portal_settings::check(&settings) {
        return Err(ApiError::invalid_field(
            body_field(&settings.templates, &field),
            message,
        ));
    }
    merchant_settings::put(&ctx, merchant.as_str(), settings).await?;
    tracing::info!(merchant = %merchant, key_id = %caller.key_id, "portal settings put");
    let settings = merchant_settings::get(&ctx, merchant.as_str()).await?;
    Ok(Json(settings.into()))
}
