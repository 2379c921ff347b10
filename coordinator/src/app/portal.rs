//! The customer portal's order lookup: a customer opens their order with its reference and the
//! email address or phone number on it. An unknown order and a wrong contact get the same
//! answer, the contact is compared in constant time, and failed tries are counted per client
//! address and per order (stored, so a restart forgives nothing) until a lockout.
//!
//! What the customer then asks is registered through `register::submit`, the use case the
//! API calls: one return per outcome chosen (a refund's lines in one, an exchange's in
//! another), since a return carries one resolution.

use std::net::IpAddr;
use std::sync::Arc;

use modori_shared::domain::{Coordinates, MerchantId, ReturnLine, RmaId, Store, StoreKind};

use chrono::{DateTime, Days, FixedOffset, NaiveDate};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::register::{self, Registered, Registration};
use super::AppError;
use crate::policy::Resolution;
use crate::store::orders::{Contact, LineFacts, Order};
use crate::store::portal::{self, Limits};
use crate::{store, CoordinatorError, Ctx};

/// Drop-off points shown for a drop-off method, nearest first.
pub const NEAREST_DROPOFFS_MAX: usize = 3;

/// How long a photo uploaded with a form that is shown again (another field was wrong) waits
/// for its return, in milliseconds (a day); then it is deleted.
pub const UPLOAD_KEPT_MS: i64 = 24 * 3_600_000;

/// The carriers' usual pickup slots in Japan, by code: the morning (午前中), then two-hour
/// slots of the afternoon and evening.
pub const PICKUP_SLOTS: [&str; 5] = ["am", "14-16", "16-18", "18-20", "19-21"];
/// Days a pickup may be booked ahead, from tomorrow (Japan) on: a week.
pub const PICKUP_WINDOW_DAYS: u32 = 7;
/// The methods the carrier collects the parcel by, which need a pickup booked.
pub const PICKUP_METHODS: [&str; 2] = ["carrier_pickup", "home_pickup"];
/// Japan's offset from UTC, in seconds (no daylight saving time).
const JST_OFFSET_S: i32 = 9 * 3600;

/// A pickup booked: the day in Japan and one of [`PICKUP_SLOTS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pickup {
    pub date: NaiveDate,
    pub slot: &'static str,
}

/// The days a pickup may be booked on at `now_ms`: tomorrow in Japan and the
/// [`PICKUP_WINDOW_DAYS`] - 1 days after it.
pub fn pickup_dates(now_ms: i64) -> Vec<NaiveDate> {
    let today = DateTime::from_timestamp_millis(now_ms)
        .zip(FixedOffset::east_opt(JST_OFFSET_S))
        .map(|(utc, jst)| utc.with_timezone(&jst).date_naive());
    let Some(today) = today else {
        return Vec::new();
    };
    (1..=u64::from(PICKUP_WINDOW_DAYS))
        .filter_map(|d| today.checked_add_days(Days::new(d)))
        .collect()
}

/// The pickup a form asked for (`YYYY-MM-DD` and a slot code), if it is one that may be
/// booked at `now_ms`.
pub fn pickup_of(date: &str, slot: &str, now_ms: i64) -> Option<Pickup> {
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let slot = PICKUP_SLOTS.iter().find(|s| **s == slot)?;
    pickup_dates(now_ms)
        .contains(&date)
        .then_some(Pickup { date, slot })
}

/// Who registered a portal return, in the log and the return's record.
pub const PORTAL_ACTOR: &str = "customer-portal";

/// Failed lookups one client address or one order may make in [`LOOKUP_WINDOW_MS`] before it
/// is locked out: enough for a customer's typos, far too few to guess a contact.
pub const LOOKUP_FAILURES_MAX: u32 = 5;
/// The window failed lookups are counted in, in milliseconds (15 minutes).
pub const LOOKUP_WINDOW_MS: i64 = 15 * 60_000;
/// How long a locked-out address or order is refused, in milliseconds (30 minutes).
pub const LOOKUP_LOCKOUT_MS: i64 = 30 * 60_000;

const LIMITS: Limits = Limits {
    failures_max: LOOKUP_FAILURES_MAX,
    window_ms: LOOKUP_WINDOW_MS,
    lockout_ms: LOOKUP_LOCKOUT_MS,
};

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The order, with the facts of its lines.
    Found(Box<Order>, Vec<LineFacts>),
    /// No order with that reference and contact (which of the two is not said).
    NotFound,
    /// Too many failed tries from this address or for this order: refused until then.
    LockedOut { until_ms: i64 },
}

/// Opens `merchant`'s order `order_ref` for the client at `client` if `contact` is its email
/// address or phone number.
pub async fn lookup(
    ctx: &Ctx,
    merchant: &str,
    order_ref: &str,
    contact: &str,
    client: IpAddr,
) -> Result<Lookup, CoordinatorError> {
    let keys = vec![
        address_key(client),
        format!("order:{merchant}/{}", order_ref.to_lowercase()),
    ];
    let (merchant, order_ref) = (merchant.to_owned(), order_ref.to_owned());
    let typed = contact_digest(contact);
    let now_ms = ctx.clock.now_ms();
    let found = ctx
        .db
        .call(move |c| {
            if let Some(until_ms) = portal::locked_until(c, &keys, now_ms)? {
                return Ok(Lookup::LockedOut { until_ms });
            }
            let order = portal::order(c, &merchant, &order_ref)?;
            // An unknown order is compared too, against nothing anyone can type, so its answer
            // takes as long as a wrong contact's.
            let matches = match order.as_ref().and_then(|(o, _)| o.contact.as_ref()) {
                Some(stored) => contact_matches(stored, &typed),
                None => {
                    let _ = digests_equal(&[0xff; 32], &typed);
                    false
                }
            };
            if let (true, Some((o, facts))) = (matches, order) {
                return Ok(Lookup::Found(Box::new(o), facts));
            }
            Ok(match portal::record_failure(c, &keys, now_ms, LIMITS)? {
                Some(until_ms) => Lookup::LockedOut { until_ms },
                None => Lookup::NotFound,
            })
        })
        .await
        .map_err(|e: crate::store::StoreError| CoordinatorError::from(e))?;
    match &found {
        Lookup::Found(o, _) => {
            info!(merchant = %o.merchant, order = %o.order_ref, "portal: order opened")
        }
        Lookup::NotFound => info!(client = %client, "portal: lookup failed"),
        Lookup::LockedOut { until_ms } => {
            warn!(client = %client, until_ms, "portal: lookup refused, locked out")
        }
    }
    Ok(found)
}

/// What became of one outcome's lines (the SKUs asked for).
pub struct PortalOutcome {
    pub resolution: Resolution,
    pub skus: Vec<String>,
    pub registered: Result<Registered, AppError>,
    /// The token of the registered return's status page (`/r/{merchant}/s/{token}`).
    pub status_token: Option<String>,
}

/// What a customer asked on the portal of an order they opened.
pub struct PortalReturn {
    pub merchant: MerchantId,
    pub order: Order,
    /// Each line with the outcome chosen for it.
    pub lines: Vec<(ReturnLine, Resolution)>,
    /// The customer's postal code, routed from.
    pub postal_code: String,
    /// One of `store::commerce::METHODS`.
    pub method: String,
    /// What the customer wrote and showed of each line chosen, by SKU.
    pub words: Vec<ItemWords>,
    /// The pickup booked, for a method the carrier collects by.
    pub pickup: Option<Pickup>,
}

/// A customer's note on one item and the photos they uploaded of it.
pub struct ItemWords {
    pub sku: String,
    pub note: String,
    /// Upload ids from [`keep_photo`].
    pub uploads: Vec<String>,
}

/// What the portal registered: each outcome, and where the customer may drop the parcels
/// off (for a drop-off method), nearest first, with the distance in km.
pub struct PortalRegistered {
    pub outcomes: Vec<PortalOutcome>,
    pub dropoffs: Vec<(Store, f64)>,
}

/// A pickup's date as stored (`YYYY-MM-DD`).
pub fn pickup_date_key(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// The fleet's drop-off points of `kind` nearest `origin`, at most `n`, nearest first.
pub fn nearest_dropoffs(
    stores: &[Store],
    origin: Coordinates,
    kind: StoreKind,
    n: usize,
) -> Vec<(Store, f64)> {
    let mut near: Vec<(Store, f64)> = stores
        .iter()
        .filter(|s| s.kind == kind)
        .map(|s| {
            (
                s.clone(),
                modori_shared::geo::distance_km(origin, s.location),
            )
        })
        .collect();
    near.sort_by(|a, b| a.1.total_cmp(&b.1));
    near.truncate(n);
    near
}

/// Registers what a customer asked, one return per outcome, through the API's use case; each
/// outcome's answer in the order the outcomes were first chosen.
pub async fn register_returns(
    ctx: &Arc<Ctx>,
    req: PortalReturn,
) -> Result<PortalRegistered, AppError> {
    let (origin, prefecture) = crate::postal::origin(&req.postal_code)
        .map_err(|e| AppError::invalid_field("postal_code", e.to_string()))?;
    if !store::commerce::METHODS.contains(&req.method.as_str()) {
        return Err(AppError::invalid_field("method", "not a method offered"));
    }
    let pickup = if PICKUP_METHODS.contains(&req.method.as_str()) {
        Some(req.pickup.clone().ok_or_else(|| {
            AppError::invalid_field("pickup_date", "a pickup needs its date and time slot")
        })?)
    } else {
        None
    };
    let mut groups: Vec<(Resolution, Vec<ReturnLine>)> = Vec::new();
    for (line, outcome) in req.lines {
        match groups.iter_mut().find(|(r, _)| *r == outcome) {
            Some((_, lines)) => lines.push(line),
            None => groups.push((outcome, vec![line])),
        }
    }
    let customer = req
        .order
        .customer_ref
        .clone()
        .map(|reference| store::Customer {
            reference,
            name: None,
            address: None,
        });
    let mut out = Vec::with_capacity(groups.len());
    for (resolution, lines) in groups {
        let skus: Vec<String> = lines.iter().map(|l| l.sku.to_string()).collect();
        let rma = RmaId::new(crate::ids::new_rma_id(ctx.clock.now_ms()))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let registration = Registration {
            rma,
            merchant: Some(req.merchant.clone()),
            origin,
            origin_label: format!("{} {prefecture}", req.postal_code),
            origin_store: None,
            lines,
            customer: customer.clone(),
            order_ref: Some(req.order.order_ref.clone()),
            order_date_ms: Some(req.order.ordered_ms),
            method: req.method.clone(),
            resolution: resolution.clone(),
            store_condition: None,
        };
        let done = register::submit(ctx, registration, PORTAL_ACTOR).await;
        let status_token = match &done {
            Ok(registered) => {
                let rma = registered.routed.rma.as_str();
                attach_words(
                    ctx,
                    &req.merchant,
                    &req.order.order_ref,
                    rma,
                    &skus,
                    &req.words,
                )
                .await?;
                if let Some(p) = &pickup {
                    let (on, date, slot) = (rma.to_owned(), pickup_date_key(p.date), p.slot);
                    ctx.db
                        .call(move |c| store::pickups::put(c, &on, &date, slot))
                        .await?;
                }
                Some(status_token(ctx, rma).await?)
            }
            Err(e) => {
                info!(merchant = %req.merchant, error = %e, "portal: a return refused");
                None
            }
        };
        out.push(PortalOutcome {
            resolution,
            skus,
            registered: done,
            status_token,
        });
    }
    let kind = match req.method.as_str() {
        "konbini_dropoff" => Some(StoreKind::Konbini),
        "store_dropoff" => Some(StoreKind::Retail),
        _ => None,
    };
    let dropoffs = kind.map_or_else(Vec::new, |k| {
        nearest_dropoffs(&ctx.fleet.stores, origin, k, NEAREST_DROPOFFS_MAX)
    });
    Ok(PortalRegistered {
        outcomes: out,
        dropoffs,
    })
}

/// Stores a checked photo of line `sku` of an order before its return exists; returns the
/// upload id the form carries until the return is registered.
pub async fn keep_photo(
    ctx: &Ctx,
    merchant: &str,
    order_ref: &str,
    sku: &str,
    content_type: &'static str,
    bytes: Vec<u8>,
) -> Result<String, AppError> {
    let (upload, _) = crate::notify::mint_token().map_err(|e| AppError::Internal(e.to_string()))?;
    let (merchant, order_ref, sku) = (merchant.to_owned(), order_ref.to_owned(), sku.to_owned());
    let now_ms = ctx.clock.now_ms();
    let id = upload.clone();
    ctx.db
        .call(move |c| {
            let up = store::photos::Upload {
                upload: &id,
                merchant: &merchant,
                order_ref: &order_ref,
                sku: &sku,
                content_type,
                bytes: &bytes,
            };
            store::photos::put_upload(c, &up, now_ms, now_ms - UPLOAD_KEPT_MS)
        })
        .await?;
    Ok(upload)
}

/// Which of the upload ids a form carried for line `sku` are still waiting for its return.
pub async fn kept_photos(
    ctx: &Ctx,
    merchant: &str,
    order_ref: &str,
    sku: &str,
    uploads: Vec<String>,
) -> Result<Vec<String>, AppError> {
    let (merchant, order_ref, sku) = (merchant.to_owned(), order_ref.to_owned(), sku.to_owned());
    Ok(ctx
        .db
        .call(move |c| store::photos::pending(c, &merchant, &order_ref, &sku, &uploads))
        .await?)
}

/// Attaches the notes and photos of the lines `skus` to their return `rma`.
async fn attach_words(
    ctx: &Ctx,
    merchant: &MerchantId,
    order_ref: &str,
    rma: &str,
    skus: &[String],
    words: &[ItemWords],
) -> Result<(), AppError> {
    for w in words.iter().filter(|w| skus.contains(&w.sku)) {
        let (merchant, order_ref, on) =
            (merchant.to_string(), order_ref.to_owned(), rma.to_owned());
        let (sku, note, uploads) = (w.sku.clone(), w.note.clone(), w.uploads.clone());
        let n = ctx
            .db
            .call(move |c| {
                let words = store::photos::LineWords {
                    merchant: &merchant,
                    order_ref: &order_ref,
                    sku: &sku,
                    note: &note,
                    uploads: &uploads,
                };
                store::photos::attach(c, &on, &words)
            })
            .await?;
        info!(rma, sku = %w.sku, n_photos = n, "portal: the customer's note and photos kept");
    }
    Ok(())
}

/// A fresh token of `rma`'s status page, stored by its hash like the ones messages carry.
pub(crate) async fn status_token(ctx: &Ctx, rma: &str) -> Result<String, AppError> {
    let (token, hash) =
        crate::notify::mint_token().map_err(|e| AppError::Internal(e.to_string()))?;
    let (rma, now_ms) = (rma.to_owned(), ctx.clock.now_ms());
    ctx.db
        .call(move |c| store::notifications::put_token(c, &rma, &hash, now_ms))
        .await?;
    Ok(token)
}

/// The key failures from `client` are counted under: an IPv6 client by its /64, which one
/// subscriber holds whole.
fn address_key(client: IpAddr) -> String {
    match client {
        IpAddr::V4(a) => format!("addr:{a}"),
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// What a contact is compared as: an email address in lower case, a phone number by its
/// digits in the domestic form (`+81 90-1234-5678` is `09012345678`).
fn normalise(contact: &str) -> String {
    let contact = contact.trim();
    if contact.contains('@') {
        return contact.to_lowercase();
    }
    let digits: String = contact.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("81") {
        Some(rest) if contact.starts_with('+') => format!("0{rest}"),
        _ => digits,
    }
}

fn contact_digest(contact: &str) -> [u8; 32] {
    Sha256::digest(normalise(contact).as_bytes()).into()
}

/// Whether `typed` is the digest of the order's email or phone; both are compared, always.
fn contact_matches(stored: &Contact, typed: &[u8; 32]) -> bool {
    let email = digests_equal(&contact_digest(&stored.email), typed);
    let phone =
        !stored.phone.trim().is_empty() && digests_equal(&contact_digest(&stored.phone), typed);
    email | phone
}

/// Equality whose time does not depend on where the two differ.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> Contact {
        Contact {
            email: "Hanako@Example.jp".into(),
            phone: "090-1234-5678".into(),
            line_user_id: None,
            language: "ja".into(),
        }
    }

    #[test]
    fn the_email_matches_in_any_case_and_the_phone_in_any_form() {
        let c = contact();
        for typed in [
            "hanako@example.jp",
            " HANAKO@example.JP ",
            "09012345678",
            "+81 90 1234 5678",
        ] {
            assert!(contact_matches(&c, &contact_digest(typed)), "{typed}");
        }
        for typed in ["taro@example.jp", "09012345679", "", "@"] {
            assert!(!contact_matches(&c, &contact_digest(typed)), "{typed}");
        }
    }

    #[test]
    fn the_nearest_dropoffs_are_of_the_kind_asked_nearest_first() {
        let store = |id: &str, kind, lat| Store {
            id: modori_shared::domain::StoreId::new(id.to_owned()).unwrap(),
            name: id.to_owned(),
            kind,
            location: Coordinates::new(lat, 135.5).unwrap(),
        };
        let stores = [
            store("far-konbini", StoreKind::Konbini, 36.0),
            store("shop", StoreKind::Retail, 34.7),
            store("near-konbini", StoreKind::Konbini, 34.8),
            store("mid-konbini", StoreKind::Konbini, 35.2),
        ];
        let origin = Coordinates::new(34.7, 135.5).unwrap();
        let near = nearest_dropoffs(&stores, origin, StoreKind::Konbini, 2);
        let names: Vec<&str> = near.iter().map(|(s, _)| s.name.as_str()).collect();
        assert_eq!(names, ["near-konbini", "mid-konbini"]);
        assert!((near[0].1 - 11.1).abs() < 0.5, "{}", near[0].1);
    }

    #[test]
    fn a_pickup_is_booked_from_tomorrow_in_japan_within_the_window_in_a_carriers_slot() {
        // 2026-12-05 16:00 UTC is already 6 December in Japan.
        let now_ms = 1_796_486_400_000;
        let dates = pickup_dates(now_ms);
        assert_eq!(dates.len(), PICKUP_WINDOW_DAYS as usize);
        assert_eq!(pickup_date_key(dates[0]), "2026-12-07");
        assert!(pickup_of("2026-12-07", "am", now_ms).is_some());
        assert!(pickup_of("2026-12-13", "19-21", now_ms).is_some());
        assert!(pickup_of("2026-12-06", "am", now_ms).is_none(), "today");
        assert!(
            pickup_of("2026-12-14", "am", now_ms).is_none(),
            "past the window"
        );
        assert!(
            pickup_of("2026-12-07", "12-14", now_ms).is_none(),
            "no such slot"
        );
        assert!(pickup_of("7 Dec", "am", now_ms).is_none());
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_eq!(address_key("192.0.2.7".parse().unwrap()), "addr:192.0.2.7");
    }
}
