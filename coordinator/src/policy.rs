//! The return policy: may this return be accepted, on what terms, and why.
//!
//! Plain functions over what the request says, what the catalogue says of each SKU and what
//! the customer's history says. Serial returners (a high abuse score) get the strict terms; a
//! customer who returns rarely and honestly is trusted. Every rejection and every term carries
//! its reason, for the merchant's customer service and the dashboard.

use serde::{Deserialize, Serialize};

use modori_shared::domain::{Grade, ReasonCode};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Terms of returning, as configured (`[policy]`, or `[policy.strict]` for serial returners).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Terms {
    /// Days after the order date within which a return is accepted.
    pub return_window_days: u32,
    /// Fee deducted from a refund, in yen.
    pub refund_fee_yen: u64,
    /// Fee for an exchange, in yen (free by default: exchanges keep the sale).
    pub exchange_fee_yen: u64,
    /// Bonus on the value taken as store credit instead of money, in percent.
    pub store_credit_bonus_percent: u32,
}

impl Default for Terms {
    fn default() -> Self {
        Self {
            return_window_days: 30,
            refund_fee_yen: 500,
            exchange_fee_yen: 0,
            store_credit_bonus_percent: 10,
        }
    }
}

/// The whole policy (`[policy]` in the coordinator's config).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    #[serde(flatten)]
    pub terms: Terms,
    /// Terms for customers whose abuse score reaches `strict_from_score`.
    pub strict: Terms,
    /// Abuse score (0-100) from which the strict terms apply.
    pub strict_from_score: u32,
    /// Most abuse score of a trusted customer (who also needs `trusted_after_returns`).
    pub trusted_max_score: u32,
    /// Returns kept without trouble before a customer is trusted.
    pub trusted_after_returns: u32,
    /// Share of a line's price refunded after grading, by grade A..X.
    pub grade_refund_share: [f64; 5],
    /// Trusted customers get their exchange's replacement shipped before the return arrives.
    pub advance_exchange_for_trusted: bool,
    /// Where a return may be refunded without the goods coming back, when bringing them back
    /// costs more than they would recover (`merchant` and `category` optional: all).
    pub returnless: Vec<ReturnlessRule>,
    /// What bringing a return back costs, by method, in yen (carriage and receiving).
    pub return_cost_yen: ReturnCosts,
    /// What the customer pays for each way of sending a return back, in yen, deducted with
    /// the return's fee (`[policy.method_fee_yen]`; free unless set).
    pub method_fee_yen: MethodFees,
    /// What follows a trade-in's inspection (`[policy.trade_in]`).
    pub trade_in: TradeInTerms,
    /// What follows a repair's inspection (`[policy.repair]`).
    pub repair: RepairTerms,
}

/// Most days a customer may be given to answer a trade-in's counter-offer: a parcel held
/// longer than two months waiting for an answer is stock nobody may sell or send back.
pub const COUNTER_OFFER_DAYS_MAX: u32 = 60;

/// What follows a trade-in's inspection when the grade is worse than described.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TradeInTerms {
    /// Days the customer has to accept or decline a counter-offer, from when it is made
    /// (1..=`COUNTER_OFFER_DAYS_MAX`; default 7).
    pub counter_offer_days: u32,
    /// What an unanswered counter-offer becomes at its deadline: `accept` (paid as offered)
    /// or `decline` (default: the item goes back to the customer, who never agreed to less).
    pub default_after_deadline: AfterDeadline,
}

impl Default for TradeInTerms {
    fn default() -> Self {
        Self {
            counter_offer_days: 7,
            default_after_deadline: AfterDeadline::Decline,
        }
    }
}

/// Most days a customer may be given to answer a repair's quote (as for a counter-offer: the
/// unit waits at the site meanwhile).
pub const REPAIR_ANSWER_DAYS_MAX: u32 = 60;

/// What follows a repair's inspection.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RepairTerms {
    /// Days the customer has to accept or decline a repair's quote, from when it is made
    /// (1..=`REPAIR_ANSWER_DAYS_MAX`; default 14).
    pub answer_days: u32,
    /// What an unanswered quote becomes at its deadline: `accept` (repaired and charged as
    /// quoted) or `decline` (default: returned as it is, since nobody agreed to the charge).
    pub default_after_deadline: AfterDeadline,
    /// Parts and labour by defect code for every merchant, used where a merchant's own table
    /// (`PUT /api/v1/merchants/{merchant}/repair/rates`) does not price a defect (default
    /// none: every defect priced by the merchant, or by ops when it is not).
    pub rates: Vec<RepairRate>,
}

impl Default for RepairTerms {
    fn default() -> Self {
        Self {
            answer_days: 14,
            default_after_deadline: AfterDeadline::Decline,
            rates: Vec::new(),
        }
    }
}

impl RepairTerms {
    /// The configured rates as the pricing reads them; a row that does not parse (refused
    /// when the config is loaded) is left out.
    pub fn rows(&self) -> Vec<modori_shared::repair::RateRow> {
        self.rates.iter().filter_map(|r| r.row().ok()).collect()
    }
}

/// One configured row of parts and labour: a defect code, on a `sku`, a `category`, or
/// (neither) any product.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RepairRate {
    pub defect: String,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    pub parts_yen: u64,
    pub labour_yen: u64,
}

impl RepairRate {
    /// The row, or which of its fields is wrong and why.
    pub fn row(&self) -> Result<modori_shared::repair::RateRow, (&'static str, String)> {
        use modori_shared::tradein::PriceKey;
        let defect = modori_shared::domain::DefectCode::parse(&self.defect)
            .map_err(|e| ("defect", e.to_string()))?;
        let key = match (&self.sku, &self.category) {
            (None, None) => None,
            (Some(s), None) => Some(PriceKey::Sku(
                modori_shared::domain::Sku::new(s.clone())
                    .map_err(|e| ("sku", e.to_string()))?
                    .to_string(),
            )),
            (None, Some(c)) => Some(PriceKey::Category(c.clone())),
            (Some(_), Some(_)) => return Err(("sku", "name a sku or a category, not both".into())),
        };
        let row = modori_shared::repair::RateRow {
            defect,
            key,
            parts_yen: self.parts_yen,
            labour_yen: self.labour_yen,
        };
        modori_shared::repair::check_rates(std::slice::from_ref(&row))
            .map_err(|(_, e)| ("parts_yen", e.to_string()))?;
        Ok(row)
    }
}

/// What an unanswered counter-offer becomes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AfterDeadline {
    Accept,
    Decline,
}

/// A fee per way of sending a return back, in yen.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MethodFees {
    pub carrier_pickup: u64,
    pub home_pickup: u64,
    pub konbini_dropoff: u64,
    pub store_dropoff: u64,
}

impl MethodFees {
    pub fn of(&self, method: &str) -> u64 {
        match method {
            "home_pickup" => self.home_pickup,
            "konbini_dropoff" => self.konbini_dropoff,
            "store_dropoff" => self.store_dropoff,
            _ => self.carrier_pickup,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReturnlessRule {
    #[serde(default)]
    pub merchant: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ReturnCosts {
    pub carrier_pickup: u64,
    pub home_pickup: u64,
    pub konbini_dropoff: u64,
    pub store_dropoff: u64,
}

impl Default for ReturnCosts {
    fn default() -> Self {
        Self {
            carrier_pickup: 900,
            home_pickup: 1000,
            konbini_dropoff: 700,
            store_dropoff: 400,
        }
    }
}

impl ReturnCosts {
    pub fn of(&self, method: &str) -> u64 {
        match method {
            "home_pickup" => self.home_pickup,
            "konbini_dropoff" => self.konbini_dropoff,
            "store_dropoff" => self.store_dropoff,
            _ => self.carrier_pickup,
        }
    }
}

/// The grade a unit is expected to come back in, from why it is returned: a fault shows,
/// a change of mind does not.
pub fn expected_grade(reason: ReasonCode) -> Grade {
    match reason {
        ReasonCode::Defective | ReasonCode::DamagedInTransit => Grade::D,
        ReasonCode::NotAsDescribed | ReasonCode::Other => Grade::B,
        ReasonCode::TooSmall
        | ReasonCode::TooLarge
        | ReasonCode::WrongItemSent
        | ReasonCode::ChangedMind
        | ReasonCode::ArrivedLate => Grade::A,
    }
}

/// Whether `rules` allow a returnless refund for `merchant`'s product of `category`.
pub fn returnless_allowed(rules: &[ReturnlessRule], merchant: &str, category: &str) -> bool {
    rules.iter().any(|r| {
        r.merchant.as_deref().is_none_or(|m| m == merchant)
            && r.category.as_deref().is_none_or(|c| c == category)
    })
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            terms: Terms::default(),
            strict: Terms {
                return_window_days: 14,
                refund_fee_yen: 1000,
                exchange_fee_yen: 500,
                store_credit_bonus_percent: 0,
            },
            strict_from_score: 60,
            trusted_max_score: 10,
            trusted_after_returns: 3,
            grade_refund_share: [1.0, 1.0, 0.8, 0.5, 0.0],
            advance_exchange_for_trusted: true,
            returnless: Vec::new(),
            return_cost_yen: ReturnCosts::default(),
            method_fee_yen: MethodFees::default(),
            trade_in: TradeInTerms::default(),
            repair: RepairTerms::default(),
        }
    }
}

/// What the customer wants instead of the item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Refund,
    /// The same product in another variant (`sku`).
    Exchange {
        sku: String,
    },
    StoreCredit,
}

impl Resolution {
    pub fn kind(&self) -> ResolutionKind {
        match self {
            Self::Refund => ResolutionKind::Refund,
            Self::Exchange { .. } => ResolutionKind::Exchange,
            Self::StoreCredit => ResolutionKind::StoreCredit,
        }
    }
}

/// A resolution without its exchange's SKU, as a return stores it and the API names it
/// (`refund`, `store_credit`, `exchange`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResolutionKind {
    #[default]
    Refund,
    StoreCredit,
    Exchange,
}

impl ResolutionKind {
    pub const ALL: [ResolutionKind; 3] = [Self::Refund, Self::StoreCredit, Self::Exchange];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refund => "refund",
            Self::StoreCredit => "store_credit",
            Self::Exchange => "exchange",
        }
    }
}

impl std::str::FromStr for ResolutionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown resolution {s:?}"))
    }
}

/// One line as the policy sees it: the request's line and the catalogue's facts.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyLine {
    pub sku: String,
    pub qty: u32,
    pub reason: ReasonCode,
    /// `None`: the SKU is not in the merchant's catalogue.
    pub price_yen: Option<u64>,
    pub final_sale: bool,
}

/// What the coordinator knows of a customer's past returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Returns registered in the last 90 days.
    pub returns_90d: u32,
    /// Returns registered ever (as far as retention allows).
    pub returns_total: u32,
    /// Units received used or damaged (graded C or worse) on a no-fault reason: worn and sent
    /// back (wardrobing).
    pub used_on_no_fault: u32,
    /// Returns whose parcel arrived short or with a wrong item.
    pub receipt_mismatches: u32,
}

/// One factor of the abuse score: its name, the count behind it and the points it adds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Factor {
    /// A stable name for pages to put in their own words (`abuse_factor.*` in the i18n files).
    pub key: &'static str,
    pub name: &'static str,
    pub count: u32,
    pub points: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AbuseScore {
    /// 0 (no concern) to 100.
    pub score: u32,
    pub factors: Vec<Factor>,
}

/// Points per occurrence and their cap, per factor: frequent returns alone never make a
/// customer strict; returning worn items or empty parcels does.
const FACTORS: [(&str, &str, u32, u32); 3] = [
    (
        "returns_90d",
        "returns in the last 90 days beyond two",
        8,
        40,
    ),
    (
        "used_on_no_fault",
        "items returned worn on a no-fault reason",
        15,
        45,
    ),
    (
        "receipt_mismatches",
        "parcels short or with a wrong item",
        10,
        30,
    ),
];

/// The keys of every factor, in the order a score lists them.
pub fn factor_keys() -> impl Iterator<Item = &'static str> {
    FACTORS.iter().map(|(key, ..)| *key)
}

/// Returns in 90 days that cost nothing in the score.
const FREE_RETURNS_90D: u32 = 2;

pub fn abuse_score(history: &History) -> AbuseScore {
    let counts = [
        history.returns_90d.saturating_sub(FREE_RETURNS_90D),
        history.used_on_no_fault,
        history.receipt_mismatches,
    ];
    let factors: Vec<Factor> = FACTORS
        .iter()
        .zip(counts)
        .map(|((key, name, per, cap), count)| Factor {
            key,
            name,
            count,
            points: count.saturating_mul(*per).min(*cap),
        })
        .collect();
    AbuseScore {
        score: factors.iter().map(|f| f.points).sum::<u32>().min(100),
        factors,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// No returns before.
    New,
    Regular,
    /// Returns rarely and honestly: may get an exchange shipped before the return arrives.
    Trusted,
    /// A serial returner: the strict terms apply.
    Strict,
}

pub fn tier(config: &PolicyConfig, history: &History, abuse: &AbuseScore) -> Tier {
    if abuse.score >= config.strict_from_score {
        Tier::Strict
    } else if history.returns_total == 0 {
        Tier::New
    } else if history.returns_total >= config.trusted_after_returns
        && abuse.score <= config.trusted_max_score
    {
        Tier::Trusted
    } else {
        Tier::Regular
    }
}

/// A line refused, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Index into the request's lines.
    pub line: usize,
    pub reason: String,
}

/// The policy's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyDecision {
    pub accepted: bool,
    pub tier: Tier,
    pub abuse: AbuseScore,
    pub refused_lines: Vec<Refusal>,
    /// Reasons for refusing the whole return (the window), empty when accepted.
    pub reasons: Vec<String>,
    pub fee_yen: u64,
    /// Value of the accepted lines at list price.
    pub value_yen: u64,
    pub store_credit_bonus_yen: u64,
    /// The terms applied, named (`standard` or `strict`).
    pub terms: &'static str,
    pub window_ends_ms: i64,
}

/// Decides a return requested at `now_ms` for an order of `order_date_ms`.
pub fn decide(
    config: &PolicyConfig,
    lines: &[PolicyLine],
    resolution: &Resolution,
    order_date_ms: i64,
    now_ms: i64,
    history: &History,
) -> PolicyDecision {
    let abuse = abuse_score(history);
    let tier = tier(config, history, &abuse);
    let (terms, terms_name) = if tier == Tier::Strict {
        (&config.strict, "strict")
    } else {
        (&config.terms, "standard")
    };
    let window_ends_ms = order_date_ms + i64::from(terms.return_window_days) * DAY_MS;
    let mut reasons = Vec::new();
    if now_ms > window_ends_ms {
        reasons.push(format!(
            "the {}-day return window ({terms_name} terms) ended {} days ago",
            terms.return_window_days,
            (now_ms - window_ends_ms) / DAY_MS + 1
        ));
    }
    if order_date_ms > now_ms {
        reasons.push("the order date is in the future".to_owned());
    }
    let mut refused_lines = Vec::new();
    let mut value_yen: u64 = 0;
    for (i, line) in lines.iter().enumerate() {
        match line.price_yen {
            None => refused_lines.push(Refusal {
                line: i,
                reason: format!("{} is not in the merchant's catalogue", line.sku),
            }),
            Some(_) if line.final_sale => refused_lines.push(Refusal {
                line: i,
                reason: format!("{} was sold as final sale", line.sku),
            }),
            Some(price) => {
                value_yen = value_yen.saturating_add(price.saturating_mul(u64::from(line.qty)));
            }
        }
    }
    if refused_lines.len() == lines.len() && reasons.is_empty() {
        reasons.push("no line of the return can be accepted".to_owned());
    }
    let accepted = reasons.is_empty();
    let (fee_yen, store_credit_bonus_yen) = match resolution {
        Resolution::Refund => (terms.refund_fee_yen, 0),
        Resolution::Exchange { .. } => (terms.exchange_fee_yen, 0),
        Resolution::StoreCredit => (
            0,
            value_yen.saturating_mul(u64::from(terms.store_credit_bonus_percent)) / 100,
        ),
    };
    PolicyDecision {
        accepted,
        tier,
        abuse,
        refused_lines,
        reasons,
        fee_yen: if accepted { fee_yen } else { 0 },
        value_yen: if accepted { value_yen } else { 0 },
        store_credit_bonus_yen: if accepted { store_credit_bonus_yen } else { 0 },
        terms: terms_name,
        window_ends_ms,
    }
}

/// The refund (or credit) once the units are graded: each unit's price by its grade's share,
/// less the fee, plus the credit bonus on what is refunded.
pub fn refund_after_grading(
    config: &PolicyConfig,
    graded: &[(u64, Grade)],
    fee_yen: u64,
    store_credit_bonus_percent: Option<u32>,
) -> u64 {
    let gross: f64 = graded
        .iter()
        .map(|(price, grade)| {
            let share = config.grade_refund_share[grade.index()];
            *price as f64 * share
        })
        .sum();
    let gross = gross.round() as u64;
    let bonus = store_credit_bonus_percent
        .map(|p| gross.saturating_mul(u64::from(p)) / 100)
        .unwrap_or(0);
    gross.saturating_sub(fee_yen).saturating_add(bonus)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000_000;

    fn line(sku: &str, price: Option<u64>, final_sale: bool) -> PolicyLine {
        PolicyLine {
            sku: sku.into(),
            qty: 1,
            reason: ReasonCode::TooSmall,
            price_yen: price,
            final_sale,
        }
    }

    fn days_ago(days: i64) -> i64 {
        NOW - days * DAY_MS
    }

    #[test]
    fn within_the_window_a_refund_pays_the_fee_and_an_exchange_is_free() {
        let config = PolicyConfig::default();
        let lines = [line("TEE", Some(2900), false)];
        let refund = decide(
            &config,
            &lines,
            &Resolution::Refund,
            days_ago(10),
            NOW,
            &History::default(),
        );
        assert!(refund.accepted, "{refund:?}");
        assert_eq!((refund.fee_yen, refund.value_yen), (500, 2900));
        assert_eq!(refund.tier, Tier::New);
        let exchange = decide(
            &config,
            &lines,
            &Resolution::Exchange {
                sku: "TEE-L".into(),
            },
            days_ago(10),
            NOW,
            &History::default(),
        );
        assert_eq!(exchange.fee_yen, 0);
        let credit = decide(
            &config,
            &lines,
            &Resolution::StoreCredit,
            days_ago(10),
            NOW,
            &History::default(),
        );
        assert_eq!((credit.fee_yen, credit.store_credit_bonus_yen), (0, 290));
    }

    #[test]
    fn late_returns_and_final_sale_lines_are_refused_with_reasons() {
        let config = PolicyConfig::default();
        let late = decide(
            &config,
            &[line("TEE", Some(2900), false)],
            &Resolution::Refund,
            days_ago(45),
            NOW,
            &History::default(),
        );
        assert!(!late.accepted);
        assert!(
            late.reasons[0].contains("30-day return window"),
            "{:?}",
            late.reasons
        );
        let mixed = decide(
            &config,
            &[
                line("TEE", Some(2900), false),
                line("SALE", Some(990), true),
                line("GHOST", None, false),
            ],
            &Resolution::Refund,
            days_ago(3),
            NOW,
            &History::default(),
        );
        assert!(mixed.accepted);
        assert_eq!(mixed.value_yen, 2900);
        let refused: Vec<(usize, &str)> = mixed
            .refused_lines
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            refused,
            [
                (1, "SALE was sold as final sale"),
                (2, "GHOST is not in the merchant's catalogue")
            ]
        );
        let nothing = decide(
            &config,
            &[line("SALE", Some(990), true)],
            &Resolution::Refund,
            days_ago(3),
            NOW,
            &History::default(),
        );
        assert!(!nothing.accepted);
    }

    #[test]
    fn serial_returners_get_strict_terms_and_honest_ones_are_trusted() {
        let config = PolicyConfig::default();
        let wardrober = History {
            returns_90d: 6,
            returns_total: 9,
            used_on_no_fault: 3,
            receipt_mismatches: 1,
        };
        let abuse = abuse_score(&wardrober);
        // 4 returns beyond two × 8 = 32; 3 worn × 15 = 45; 1 mismatch × 10 = 10.
        assert_eq!(abuse.score, 87);
        assert_eq!(
            abuse.factors.iter().map(|f| f.points).collect::<Vec<_>>(),
            [32, 45, 10]
        );
        let strict = decide(
            &config,
            &[line("TEE", Some(2900), false)],
            &Resolution::Refund,
            days_ago(20),
            NOW,
            &wardrober,
        );
        assert_eq!((strict.tier, strict.terms), (Tier::Strict, "strict"));
        assert!(
            !strict.accepted,
            "20 days is beyond the strict 14-day window"
        );
        let in_time = decide(
            &config,
            &[line("TEE", Some(2900), false)],
            &Resolution::StoreCredit,
            days_ago(5),
            NOW,
            &wardrober,
        );
        assert!(in_time.accepted);
        assert_eq!(
            in_time.store_credit_bonus_yen, 0,
            "no bonus on strict terms"
        );

        let loyal = History {
            returns_90d: 1,
            returns_total: 4,
            ..History::default()
        };
        assert_eq!(tier(&config, &loyal, &abuse_score(&loyal)), Tier::Trusted);
        // Frequent but honest returns alone stay below the strict threshold.
        let frequent = History {
            returns_90d: 30,
            returns_total: 30,
            ..History::default()
        };
        assert_eq!(
            tier(&config, &frequent, &abuse_score(&frequent)),
            Tier::Regular
        );
    }

    #[test]
    fn the_refund_follows_the_grades() {
        let config = PolicyConfig::default();
        assert_eq!(
            refund_after_grading(&config, &[(2900, Grade::A)], 500, None),
            2400
        );
        assert_eq!(
            refund_after_grading(&config, &[(2900, Grade::D)], 500, None),
            950
        );
        assert_eq!(
            refund_after_grading(&config, &[(2900, Grade::X)], 500, None),
            0
        );
        assert_eq!(
            refund_after_grading(&config, &[(2000, Grade::A), (1000, Grade::C)], 0, Some(10)),
            3080
        );
    }
}
