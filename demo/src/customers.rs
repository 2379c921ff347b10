//! The demo's customers: each return starts with an order the merchant's feed stores, then
//! goes back through one of the channels the product offers, in shares like a merchant's:
//! the portal (driven over HTTP as a customer's browser would: the form, the order page, the
//! choice), the store counter (the counter's use case, by the order), a walk-in at a store
//! shipped on by the carrier, and the merchant's own system over the API. Outcomes are
//! refund, store credit or an exchange for another size; methods konbini, carrier pickup,
//! home pickup and store drop-off. The first returns of a run take every combination once,
//! so even a short run shows each; after that, chance by share.
//!
//! Customers have histories as a shop's do: most return once or twice, a few return often
//! (`SERIAL_RETURNERS`), so the abuse flags point at someone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use modori_coordinator::app::counter::{at_counter, CounterReturn};
use modori_coordinator::policy::{Resolution, ResolutionKind};
use modori_coordinator::store::orders::{Contact, Order, OrderLine};
use modori_coordinator::Ctx;
use modori_runtime::clock;
use modori_shared::domain::{MerchantId, ReasonCode, ReturnLine, RmaId, Sku, Store};
use rand::rngs::StdRng;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Products with another size to exchange for: (sku, the other size).
pub const STYLED: [(&str, &str, &str); 3] = [
    ("TEE-WHT-M", "TEE-WHT-L", "TEE-WHT"),
    ("SNK-RUN-27", "SNK-RUN-26", "SNK-RUN"),
    ("KNIT-NAVY-M", "KNIT-NAVY-L", "KNIT-NAVY"),
];
/// Products bought beside them.
const PLAIN: [&str; 4] = ["TEE-BLK-L", "JKT-DENIM-L", "BAG-TOTE-BLK", "DRS-LINEN-S"];
/// Customers' postal codes, across the country (each in the postal table: a test checks).
pub const POSTAL_CODES: [&str; 8] = [
    "100-0005", "105-0011", "530-0001", "812-0011", "060-0001", "980-0021", "900-0001", "618-0001",
];
/// Customers who return far more than others.
pub const SERIAL_RETURNERS: u32 = 3;
/// Of all returns, the serial returners' share.
const SERIAL_SHARE: f64 = 0.12;
/// Of the other customers, those who come back for a second return (none for a third).
const SECOND_RETURN_SHARE: f64 = 0.3;
/// Days back an order was placed, at most (inside the policy's window).
const ORDER_AGE_DAYS_MAX: i64 = 10;
const DAY_MS: i64 = 86_400_000;

/// How a return reaches the merchant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    Portal,
    Counter,
    /// At a store without an order lookup, shipped on by the simulated carrier.
    WalkIn,
    Api,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Portal => "portal",
            Channel::Counter => "store counter",
            Channel::WalkIn => "store walk-in",
            Channel::Api => "merchant API",
        }
    }
}

/// One return's channel, outcome and method (a method of `store::commerce::METHODS`).
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub channel: Channel,
    pub outcome: ResolutionKind,
    pub method: &'static str,
}

/// The combinations every run shows first: each portal method with each outcome, then the
/// counter, the API and the walk-in.
pub fn opening_plans() -> Vec<Plan> {
    let outcomes = [
        ResolutionKind::Refund,
        ResolutionKind::StoreCredit,
        ResolutionKind::Exchange,
    ];
    let mut plans = Vec::new();
    for (i, method) in [
        "konbini_dropoff",
        "carrier_pickup",
        "home_pickup",
        "store_dropoff",
    ]
    .into_iter()
    .enumerate()
    {
        plans.push(Plan {
            channel: Channel::Portal,
            outcome: outcomes[i % outcomes.len()],
            method,
        });
    }
    for outcome in outcomes {
        plans.push(Plan {
            channel: Channel::Portal,
            outcome,
            method: "konbini_dropoff",
        });
        plans.push(Plan {
            channel: Channel::Counter,
            outcome,
            method: "store_dropoff",
        });
        plans.push(Plan {
            channel: Channel::Api,
            outcome,
            method: "carrier_pickup",
        });
    }
    plans.push(Plan {
        channel: Channel::WalkIn,
        outcome: ResolutionKind::Refund,
        method: "store_dropoff",
    });
    plans
}

/// A plan by the shares a fashion merchant sees: half through the portal (konbini first),
/// a fifth at counters, a fifth from its own system, a tenth walking in.
pub fn random_plan(rng: &mut StdRng) -> Plan {
    let pick = |rng: &mut StdRng, shares: &[(f64, usize)]| {
        let mut x = rng.random_range(0.0..1.0);
        for (share, i) in shares {
            if x < *share {
                return *i;
            }
            x -= share;
        }
        shares.last().map_or(0, |(_, i)| *i)
    };
    let channel = [
        Channel::Portal,
        Channel::Counter,
        Channel::Api,
        Channel::WalkIn,
    ][pick(rng, &[(0.5, 0), (0.2, 1), (0.2, 2), (0.1, 3)])];
    let outcome = [
        ResolutionKind::Refund,
        ResolutionKind::StoreCredit,
        ResolutionKind::Exchange,
    ][pick(rng, &[(0.55, 0), (0.25, 1), (0.2, 2)])];
    let methods = [
        "konbini_dropoff",
        "carrier_pickup",
        "home_pickup",
        "store_dropoff",
    ];
    let method = match channel {
        Channel::Portal => methods[pick(rng, &[(0.35, 0), (0.25, 1), (0.15, 2), (0.25, 3)])],
        Channel::Api => methods[pick(rng, &[(0.5, 0), (0.35, 1), (0.15, 2)])],
        Channel::Counter | Channel::WalkIn => "store_dropoff",
    };
    match channel {
        // A walk-in without the order is refunded.
        Channel::WalkIn => Plan {
            channel,
            outcome: ResolutionKind::Refund,
            method,
        },
        _ => Plan {
            channel,
            outcome,
            method,
        },
    }
}

/// Who returns next: a serial returner now and then, else a new customer or one coming back
/// for a second time.
pub struct Customers {
    next_regular: u32,
    returns_of_last: u32,
}

impl Customers {
    pub fn new() -> Self {
        Self {
            next_regular: 0,
            returns_of_last: 0,
        }
    }

    /// The next customer's reference (`C-0001`… serial, `C-1001`… the others).
    pub fn next(&mut self, rng: &mut StdRng) -> String {
        if rng.random_bool(SERIAL_SHARE) {
            return format!("C-{:04}", 1 + rng.random_range(0..SERIAL_RETURNERS));
        }
        let again = self.returns_of_last == 1 && rng.random_bool(SECOND_RETURN_SHARE);
        if !again {
            self.next_regular += 1;
            self.returns_of_last = 0;
        }
        self.returns_of_last += 1;
        format!("C-{}", 1000 + self.next_regular)
    }
}

impl Default for Customers {
    fn default() -> Self {
        Self::new()
    }
}

/// A customer's made-up contact (Japanese, with one in ten writing in English).
pub fn contact(customer: &str) -> Contact {
    let digits: String = customer.chars().filter(char::is_ascii_digit).collect();
    let n: u32 = digits.parse().unwrap_or(0);
    Contact {
        email: format!("customer{digits}@example.jp"),
        phone: format!("090-{:04}-{:04}", n % 10_000, (n * 7) % 10_000),
        line_user_id: None,
        language: if n % 10 == 7 { "en" } else { "ja" }.into(),
    }
}

/// What the customers did this run, by channel, outcome and method.
#[derive(Default)]
pub struct Tally {
    pub by_channel: BTreeMap<&'static str, u64>,
    pub by_outcome: BTreeMap<&'static str, u64>,
    pub by_method: BTreeMap<&'static str, u64>,
    pub n_failed: u64,
}

impl Tally {
    fn count(&mut self, plan: &Plan) {
        *self.by_channel.entry(plan.channel.name()).or_default() += 1;
        let outcome = match plan.outcome {
            ResolutionKind::Refund => "refund",
            ResolutionKind::StoreCredit => "store credit",
            ResolutionKind::Exchange => "exchange",
        };
        *self.by_outcome.entry(outcome).or_default() += 1;
        *self.by_method.entry(plan.method).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.by_channel.values().sum()
    }

    /// One line per dimension, for the demo's closing words.
    pub fn summary(&self) -> String {
        let line = |m: &BTreeMap<&'static str, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "Channels: {}.\nOutcomes: {}.\nMethods: {}.",
            line(&self.by_channel),
            line(&self.by_outcome),
            line(&self.by_method)
        )
    }
}

/// The demo's customers at one coordinator.
pub struct Shoppers {
    pub ctx: Arc<Ctx>,
    pub http: SocketAddr,
    pub merchant: MerchantId,
    pub merchant_key: String,
    pub stores: Vec<Store>,
    pub customers: Customers,
    pub tally: Tally,
    n_orders: u64,
    opening: std::vec::IntoIter<Plan>,
}

/// A return made without the shoppers' help (the walk-in), handed back to the caller.
pub enum Done {
    Registered,
    WalkIn { customer: String },
}

impl Shoppers {
    pub fn new(
        ctx: Arc<Ctx>,
        http: SocketAddr,
        merchant: MerchantId,
        merchant_key: String,
    ) -> Self {
        let stores = ctx.fleet.stores.clone();
        Self {
            ctx,
            http,
            merchant,
            merchant_key,
            stores,
            customers: Customers::new(),
            tally: Tally::default(),
            n_orders: 0,
            opening: opening_plans().into_iter(),
        }
    }

    /// One customer's order and return by the next plan. A walk-in is left to the caller
    /// (it ships with the simulated carrier).
    pub async fn step(&mut self, rng: &mut StdRng) -> anyhow::Result<Done> {
        let plan = self.opening.next().unwrap_or_else(|| random_plan(rng));
        let customer = self.customers.next(rng);
        if plan.channel == Channel::WalkIn {
            self.tally.count(&plan);
            return Ok(Done::WalkIn { customer });
        }
        let (styled, other, _) = STYLED[rng.random_range(0..STYLED.len())];
        let order = self.order(&customer, styled, rng).await?;
        let reason = [
            ReasonCode::TooSmall,
            ReasonCode::TooLarge,
            ReasonCode::ChangedMind,
            ReasonCode::NotAsDescribed,
            ReasonCode::Defective,
        ][rng.random_range(0..5)];
        let resolution = match plan.outcome {
            ResolutionKind::Refund => Resolution::Refund,
            ResolutionKind::StoreCredit => Resolution::StoreCredit,
            ResolutionKind::Exchange => Resolution::Exchange {
                sku: other.to_owned(),
            },
        };
        let postal_code = POSTAL_CODES[rng.random_range(0..POSTAL_CODES.len())];
        let registered = match plan.channel {
            Channel::Portal => {
                self.portal(
                    &order,
                    &contact(&customer),
                    reason,
                    &resolution,
                    postal_code,
                    plan.method,
                )
                .await
            }
            Channel::Counter => self.counter(&order, styled, reason, resolution, rng).await,
            Channel::Api => {
                self.api(
                    &order,
                    styled,
                    reason,
                    &resolution,
                    postal_code,
                    plan.method,
                )
                .await
            }
            Channel::WalkIn => Ok(()),
        };
        match registered {
            Ok(()) => {
                self.tally.count(&plan);
                Ok(Done::Registered)
            }
            Err(e) => {
                self.tally.n_failed += 1;
                Err(e.context(format!("a {} return", plan.channel.name())))
            }
        }
    }

    /// The merchant's feed stores the customer's order: the styled product and another.
    async fn order(
        &mut self,
        customer: &str,
        styled: &str,
        rng: &mut StdRng,
    ) -> anyhow::Result<Order> {
        self.n_orders += 1;
        let now = clock::now_ms();
        let order = Order {
            merchant: self.merchant.to_string(),
            order_ref: format!("WEB-{}-{:05}", now / 1000, self.n_orders),
            customer_ref: Some(customer.to_owned()),
            ordered_ms: now - rng.random_range(1..=ORDER_AGE_DAYS_MAX) * DAY_MS,
            lines: vec![
                OrderLine {
                    sku: styled.to_owned(),
                    qty: 1,
                },
                OrderLine {
                    sku: PLAIN[rng.random_range(0..PLAIN.len())].to_owned(),
                    qty: 1,
                },
            ],
            contact: Some(contact(customer)),
        };
        let (merchant, stored) = (self.merchant.to_string(), order.clone());
        self.ctx
            .db
            .call(move |c| {
                modori_coordinator::store::orders::put_orders(
                    c,
                    &merchant,
                    &[stored],
                    clock::now_ms(),
                )
            })
            .await
            .context("storing a customer's order")?;
        Ok(order)
    }

    /// The customer on the portal: opens the form, their order, and asks for the return.
    async fn portal(
        &self,
        order: &Order,
        contact: &Contact,
        reason: ReasonCode,
        resolution: &Resolution,
        postal_code: &str,
        method: &str,
    ) -> anyhow::Result<()> {
        let path = format!("/r/{}", self.merchant);
        let form = request(self.http, "GET", &path, &[], None).await?;
        let token = form
            .header("set-cookie")
            .and_then(|c| c.strip_prefix("modori_portal_csrf="))
            .and_then(|c| c.split(';').next())
            .context("the portal's form set no token")?
            .to_owned();
        let cookie = format!("modori_portal_csrf={token}");
        let headers = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", cookie.as_str()),
        ];
        let opened = form_body(&[
            ("csrf", &token),
            ("lang", "ja"),
            ("order_ref", &order.order_ref),
            ("contact", &contact.email),
        ]);
        let page = request(self.http, "POST", &path, &headers, Some(&opened)).await?;
        if page.status != 200 {
            bail!("the order page answered {}", page.status);
        }
        let outcome = match resolution {
            Resolution::Refund => "refund".to_owned(),
            Resolution::StoreCredit => "store_credit".to_owned(),
            Resolution::Exchange { sku } => format!("exchange:{sku}"),
        };
        // A pickup is booked for the first day and slot the page offers, as a customer who
        // takes the defaults would; the page shows the fields whatever the method.
        let (pickup_date, pickup_slot) = (
            first_option(&page.body, "pickup_date").unwrap_or_default(),
            first_option(&page.body, "pickup_slot").unwrap_or_default(),
        );
        let chosen = multipart_body(&[
            ("csrf", &token),
            ("lang", "ja"),
            ("order_ref", &order.order_ref),
            ("contact", &contact.email),
            ("line0", "1"),
            ("qty0", "1"),
            ("reason0", reason.as_str()),
            ("note0", ""),
            ("outcome0", &outcome),
            ("postal_code", postal_code),
            ("method", method),
            ("pickup_date", pickup_date),
            ("pickup_slot", pickup_slot),
        ]);
        let content_type = format!("multipart/form-data; boundary={FORM_BOUNDARY}");
        let posted = [
            ("content-type", content_type.as_str()),
            ("cookie", cookie.as_str()),
        ];
        let done = request(
            self.http,
            "POST",
            &format!("{path}/returns"),
            &posted,
            Some(&chosen),
        )
        .await?;
        if done.status != 201 {
            bail!("the portal's confirmation answered {}", done.status);
        }
        Ok(())
    }

    /// The customer at a store's counter, which opens the order and registers the line.
    async fn counter(
        &self,
        order: &Order,
        sku: &str,
        reason: ReasonCode,
        resolution: Resolution,
        rng: &mut StdRng,
    ) -> anyhow::Result<()> {
        let store = self.stores[rng.random_range(0..self.stores.len())].clone();
        let line = ReturnLine::new(Sku::new(sku)?, 1, reason)?;
        let req = CounterReturn {
            store,
            merchant: self.merchant.clone(),
            order_ref: order.order_ref.clone(),
            lines: vec![line],
            resolution,
            dry_run: false,
            condition: counter_check(rng),
        };
        at_counter(&self.ctx, req, "demo-counter")
            .await
            .map_err(|e| anyhow::anyhow!("the counter refused: {e}"))?;
        Ok(())
    }

    /// The merchant's own system registers the return over the API.
    async fn api(
        &self,
        order: &Order,
        sku: &str,
        reason: ReasonCode,
        resolution: &Resolution,
        postal_code: &str,
        method: &str,
    ) -> anyhow::Result<()> {
        let ordered = chrono::DateTime::from_timestamp_millis(order.ordered_ms)
            .context("an order time")?
            .to_rfc3339();
        let mut body = serde_json::json!({
            "merchant": self.merchant.as_str(),
            "origin": {"postal_code": postal_code},
            "lines": [{"sku": sku, "qty": 1, "reason": reason.as_str()}],
            "order_ref": order.order_ref,
            "order_date": ordered,
            "method": method,
        });
        match resolution {
            Resolution::Refund => body["resolution"] = "refund".into(),
            Resolution::StoreCredit => body["resolution"] = "store_credit".into(),
            Resolution::Exchange { sku } => {
                body["resolution"] = "exchange".into();
                body["exchange_sku"] = sku.as_str().into();
            }
        }
        let auth = format!("Bearer {}", self.merchant_key);
        let headers = [
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        let text = body.to_string();
        let res = request(self.http, "POST", "/api/v1/returns", &headers, Some(&text)).await?;
        if res.status != 201 {
            bail!("the API answered {}: {}", res.status, res.body);
        }
        Ok(())
    }
}

/// A new RMA id for a walk-in.
pub fn walk_in_rma() -> Option<RmaId> {
    RmaId::new(modori_coordinator::new_rma_id(clock::now_ms())).ok()
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The boundary of the return form's parts: no field the demo posts contains it.
const FORM_BOUNDARY: &str = "modori-demo-form-boundary";

/// The return form as a browser posts it (`multipart/form-data`, as the page's form says),
/// with no photo.
fn multipart_body(fields: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{FORM_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{FORM_BOUNDARY}--\r\n"));
    body
}

/// The value of the first option of the page's `<select name="{name}">`.
fn first_option<'a>(page: &'a str, name: &str) -> Option<&'a str> {
    let select = &page[page.find(&format!("<select name=\"{name}\""))?..];
    let value = &select[select.find("<option value=\"")? + "<option value=\"".len()..];
    value.split('"').next()
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// An answer as the customer's browser reads it.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Answers read at most, in bytes (the portal's pages are a few kilobytes).
const ANSWER_BYTES_MAX: u64 = 1024 * 1024;

/// One HTTP/1.1 request on its own connection.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> anyhow::Result<Answer> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .context("connecting to the coordinator's HTTP")?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or_default();
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.take(ANSWER_BYTES_MAX).read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("an HTTP status line")?;
    Ok(Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// What a clerk ticks at the counter: most items come back with their tags and unopened, some
/// opened or worn, a few damaged, and one in ten is taken without a check.
fn counter_check(
    rng: &mut StdRng,
) -> Option<modori_coordinator::store::counter_checks::StoreCondition> {
    if rng.random_bool(0.1) {
        return None;
    }
    let roll: f64 = rng.random();
    Some(modori_coordinator::store::counter_checks::StoreCondition {
        tags_on: roll < 0.6,
        opened: roll >= 0.6,
        visibly_used: roll >= 0.85,
        damaged: roll >= 0.95,
        photo_ref: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_pickup_takes_the_first_day_and_slot_the_page_offers() {
        let page = "<select name=\"method\" id=\"method\"><option value=\"home_pickup\">x</option></select>\
                    <select name=\"pickup_date\" id=\"pickup_date\"><option value=\"2026-12-06\">a</option>\
                    <option value=\"2026-12-07\">b</option></select>";
        assert_eq!(first_option(page, "pickup_date"), Some("2026-12-06"));
        assert_eq!(first_option(page, "pickup_slot"), None);
        let body = multipart_body(&[("method", "home_pickup")]);
        assert!(body.starts_with(&format!(
            "--{FORM_BOUNDARY}\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\nhome_pickup\r\n"
        )));
        assert!(body.ends_with(&format!("--{FORM_BOUNDARY}--\r\n")));
    }

    #[test]
    fn every_postal_code_is_in_the_table() {
        modori_coordinator::postal::load();
        for code in POSTAL_CODES {
            assert!(modori_coordinator::postal::lookup(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn most_customers_return_once_or_twice_and_a_few_often() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut customers = Customers::new();
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..1000 {
            *counts.entry(customers.next(&mut rng)).or_default() += 1;
        }
        let often: Vec<_> = counts.iter().filter(|(_, n)| **n > 2).collect();
        assert_eq!(often.len() as u32, SERIAL_RETURNERS, "{often:?}");
        assert!(often
            .iter()
            .all(|(c, n)| c.starts_with("C-000") && **n > 20));
        let regular = counts.len() - often.len();
        assert!(regular > 500, "{regular} customers");
    }

    #[test]
    fn the_opening_plans_take_every_channel_outcome_and_method() {
        let plans = opening_plans();
        for channel in [
            Channel::Portal,
            Channel::Counter,
            Channel::Api,
            Channel::WalkIn,
        ] {
            assert!(plans.iter().any(|p| p.channel == channel), "{channel:?}");
        }
        for method in [
            "konbini_dropoff",
            "carrier_pickup",
            "home_pickup",
            "store_dropoff",
        ] {
            assert!(
                plans
                    .iter()
                    .any(|p| p.channel == Channel::Portal && p.method == method),
                "{method}"
            );
        }
        for outcome in [
            ResolutionKind::Refund,
            ResolutionKind::StoreCredit,
            ResolutionKind::Exchange,
        ] {
            for channel in [Channel::Portal, Channel::Counter, Channel::Api] {
                assert!(
                    plans
                        .iter()
                        .any(|p| p.channel == channel && p.outcome == outcome),
                    "{channel:?} {outcome:?}"
                );
            }
        }
    }
}
