//! The words of an anomaly or a timeline event as a stable code and its parameters, stored
//! beside the English so a page can say them in its own language (`detail.<code>` in the i18n
//! files, the parameters as its holes). Rows written before keep their English only.
//!
//! The parameters are serialised only when an anomaly or an event is written, never per op.

use std::collections::BTreeMap;

use modori_shared::domain::{Departure, DomainError, Grade};

/// Japan's offset from UTC (no daylight saving time): a deadline is said in Japan time.
const JST_OFFSET_MS: i64 = 9 * 3_600_000;

/// Every code a detail may carry, with the names of its parameters (sorted): what the i18n
/// files must say, hole for hole.
pub const DETAIL_PARAMS: [(&str, &[&str]); 81] = [
    // Anomalies.
    ("hash_conflict", &["received", "seq", "stored"]),
    ("impersonation", &["named", "site"]),
    ("quarantine_breached", &["op"]),
    ("duplicate_lpn", &[]),
    ("not_routed_here", &["rma", "routed_to", "site", "sku"]),
    ("not_listed", &["rma", "site", "sku"]),
    ("over_after_close", &["rma", "site", "sku"]),
    ("unit_of_closed_return", &["rma", "status"]),
    ("parcel_unknown_return", &["rma"]),
    ("parcel_of_closed_return", &["rma", "status"]),
    ("unit_unknown", &[]),
    ("unit_elsewhere", &["owner"]),
    ("step_not_allowed", &["state", "step"]),
    ("test_not_held", &[]),
    ("transfer_unexpected", &["from", "owner", "to"]),
    ("transfer_unannounced", &["from", "owner"]),
    ("match_not_quarantined", &["rma"]),
    ("release_not_quarantined", &[]),
    ("tote_unknown", &["tote"]),
    (
        "database_rewound",
        &["applied", "epoch", "head_seq", "n_ops", "new_epoch", "site"],
    ),
    ("hello_site_mismatch", &["named", "site"]),
    (
        "coordinator_rewound",
        &["applied_seq", "epoch", "held_seq", "new_epoch", "site"],
    ),
    ("transfer_without_disposition", &[]),
    ("transfer_without_grade", &[]),
    // Timeline events.
    ("unit_received", &["receipt", "sku"]),
    ("graded", &["grade"]),
    ("graded_defects", &["defects", "grade"]),
    ("disposition_undone", &["grade"]),
    ("disposition_set", &["disposition"]),
    ("receipt_voided", &[]),
    ("put_away", &["bin"]),
    ("test_passed", &[]),
    ("test_failed", &[]),
    ("departed", &["departure"]),
    ("departed_tracked", &["departure", "tracking"]),
    ("departed_transfer", &["to"]),
    ("departed_transfer_tracked", &["to", "tracking"]),
    ("departed_exchange", &["rma"]),
    ("departed_exchange_tracked", &["rma", "tracking"]),
    ("departed_to_customer", &["rma"]),
    ("departed_to_customer_tracked", &["rma", "tracking"]),
    ("transfer_received", &["from"]),
    ("matched_at_site", &[]),
    ("released", &["reason", "supervisor"]),
    ("parcel_complete", &[]),
    ("parcel_short", &["n_lines"]),
    // A return's own events.
    ("registered", &["site"]),
    ("matched_by_ops", &[]),
    ("cancelled_by", &["by"]),
    ("expired", &[]),
    ("chosen_exchange_at_counter", &["fee_yen", "sku"]),
    ("chosen_credit_at_counter", &["bonus_yen"]),
    ("chosen_refund_at_counter", &["fee_yen"]),
    ("carrier_update", &["carrier", "tracking", "transit"]),
    (
        "carrier_update_at",
        &["carrier", "location", "tracking", "transit"],
    ),
    (
        "refund_after_grading",
        &["amount_yen", "fee_yen", "n_units"],
    ),
    (
        "credit_after_grading",
        &["amount_yen", "fee_yen", "n_units"],
    ),
    ("refund_paid", &["amount_yen"]),
    ("returnless_kept", &["cost_yen", "method", "recovered_yen"]),
    ("refund_goods_kept", &["amount_yen"]),
    ("handed_in_at_store", &["store"]),
    ("left_in_tote", &["n_returns", "store", "tote"]),
    ("trade_in_as_quoted", &["amount_yen", "grade"]),
    (
        "trade_in_counter",
        &["amount_yen", "deadline", "grade", "quoted_yen"],
    ),
    ("trade_in_credit", &["amount_yen", "bonus_yen"]),
    ("trade_in_credit_at_deadline", &["amount_yen", "bonus_yen"]),
    ("trade_in_transfer", &["amount_yen"]),
    ("trade_in_transfer_at_deadline", &["amount_yen"]),
    (
        "trade_in_overridden",
        &["amount_yen", "key_id", "previous_yen", "reason"],
    ),
    (
        "trade_in_overridden_counter",
        &["amount_yen", "deadline", "key_id", "previous_yen", "reason"],
    ),
    ("trade_in_declined", &[]),
    ("trade_in_declined_at_deadline", &[]),
    ("repair_quoted", &["amount_yen", "deadline", "defects"]),
    ("repair_unpriced", &["defects"]),
    ("repair_accepted", &["amount_yen"]),
    ("repair_accepted_transfer", &["amount_yen", "to"]),
    ("repair_accepted_nowhere", &["amount_yen"]),
    ("repair_accepted_at_deadline", &["amount_yen"]),
    ("repair_declined", &[]),
    ("repair_declined_at_deadline", &[]),
    (
        "repair_overridden",
        &["amount_yen", "deadline", "key_id", "previous_yen", "reason"],
    ),
];

pub const MIGRATION: &str = r#"
ALTER TABLE anomalies ADD COLUMN detail_code TEXT;
ALTER TABLE anomalies ADD COLUMN detail_params TEXT;
ALTER TABLE return_events ADD COLUMN detail_code TEXT;
ALTER TABLE return_events ADD COLUMN detail_params TEXT;
"#;

/// An anomaly's or an event's detail: its English, and, when it has one, its code and the
/// parameters the code's text takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detail {
    pub english: String,
    code: Option<&'static str>,
    params: Vec<(&'static str, String)>,
}

impl Detail {
    fn coded(code: &'static str, params: Vec<(&'static str, String)>, english: String) -> Self {
        debug_assert!(
            all_codes().any(|(c, names)| {
                let mut given: Vec<&str> = params.iter().map(|(n, _)| *n).collect();
                given.sort_unstable();
                c == code && given == names
            }),
            "detail code {code} with parameters {params:?} is not in DETAIL_PARAMS"
        );
        Self {
            english,
            code: Some(code),
            params,
        }
    }

    /// A detail that stays English: its words come from outside (a decoding error).
    pub fn english(english: String) -> Self {
        Self {
            english,
            code: None,
            params: Vec::new(),
        }
    }

    pub fn code(&self) -> Option<&'static str> {
        self.code
    }

    /// The parameters as a JSON object, for the row's `detail_params`; none without a code.
    pub fn params_json(&self) -> Option<String> {
        self.code?;
        let map: BTreeMap<&str, &str> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        serde_json::to_string(&map).ok()
    }

    pub fn hash_conflict(seq: u64, received: String, stored: String) -> Self {
        let english = format!(
            "seq {seq} arrived again with payload hash {received} but {stored} was applied"
        );
        let params = vec![
            ("seq", seq.to_string()),
            ("received", received),
            ("stored", stored),
        ];
        Self::coded("hash_conflict", params, english)
    }

    pub fn impersonation(named: &str, site: &str) -> Self {
        let english =
            format!("op names site {named} but came over the connection of {site}; not applied");
        Self::coded(
            "impersonation",
            vec![("named", named.to_owned()), ("site", site.to_owned())],
            english,
        )
    }

    pub fn quarantine_breached(op: &str) -> Self {
        let english = format!("{op} of a unit still in quarantine");
        Self::coded("quarantine_breached", vec![("op", op.to_owned())], english)
    }

    pub fn duplicate_lpn() -> Self {
        Self::simple("duplicate_lpn", "a unit with this LPN was already received")
    }

    pub fn not_routed_here(sku: &str, site: &str, rma: &str, routed_to: &str) -> Self {
        let english = format!(
            "{sku} received at {site} against {rma}, which is routed to {routed_to}; held in quarantine"
        );
        let mut params = received_at(sku, site, rma);
        params.push(("routed_to", routed_to.to_owned()));
        Self::coded("not_routed_here", params, english)
    }

    pub fn not_listed(sku: &str, site: &str, rma: &str) -> Self {
        let english = format!(
            "{sku} received at {site} against {rma}, which does not list it; held in quarantine"
        );
        Self::coded("not_listed", received_at(sku, site, rma), english)
    }

    pub fn over_after_close(sku: &str, site: &str, rma: &str) -> Self {
        let english = format!("{sku} received at {site} against {rma} beyond its quantity after its parcel closed; held in quarantine");
        Self::coded("over_after_close", received_at(sku, site, rma), english)
    }

    pub fn unit_of_closed_return(rma: &str, status: &str) -> Self {
        let english =
            format!("a unit of {rma} was received at the site, but the return is {status}");
        let params = vec![("rma", rma.to_owned()), ("status", status.to_owned())];
        Self::coded("unit_of_closed_return", params, english)
    }

    pub fn parcel_unknown_return(rma: &str) -> Self {
        let english = format!("parcel of {rma} closed, but no such return is registered");
        Self::coded(
            "parcel_unknown_return",
            vec![("rma", rma.to_owned())],
            english,
        )
    }

    pub fn parcel_of_closed_return(rma: &str, status: &str) -> Self {
        let english = format!("parcel of {rma} closed at the site, but the return is {status}");
        let params = vec![("rma", rma.to_owned()), ("status", status.to_owned())];
        Self::coded("parcel_of_closed_return", params, english)
    }

    pub fn unit_unknown() -> Self {
        Self::simple("unit_unknown", "no receipt of this unit is known")
    }

    pub fn unit_elsewhere(owner: &str) -> Self {
        let english = format!("unit belongs to site {owner}");
        Self::coded("unit_elsewhere", vec![("owner", owner.to_owned())], english)
    }

    /// Why a unit's state machine refused a step; an error it does not know stays English.
    pub fn refused_step(e: &DomainError) -> Self {
        match e {
            DomainError::InvalidTransition { state, event, .. } => {
                // The step's name as an i18n key: "undo of a disposition" → undo_of_a_disposition.
                let params = vec![
                    ("state", (*state).to_owned()),
                    ("step", event.replace(' ', "_")),
                ];
                Self::coded("step_not_allowed", params, e.to_string())
            }
            other => Self::english(other.to_string()),
        }
    }

    pub fn test_not_held() -> Self {
        Self::simple("test_not_held", "test of a unit not held here")
    }

    pub fn transfer_unexpected(from: &str, owner: &str, to: Option<&str>) -> Self {
        let mut params = vec![("from", from.to_owned()), ("owner", owner.to_owned())];
        match to {
            Some(to) => {
                let english = format!(
                    "arrived from {from}, but the unit is at {owner} with transfer to {to}"
                );
                params.push(("to", to.to_owned()));
                Self::coded("transfer_unexpected", params, english)
            }
            None => {
                let english = format!(
                    "arrived from {from}, but the unit is at {owner} with transfer to none"
                );
                Self::coded("transfer_unannounced", params, english)
            }
        }
    }

    pub fn match_not_quarantined(rma: &str) -> Self {
        let english = format!("matched to {rma} at the site, but not in quarantine here");
        Self::coded(
            "match_not_quarantined",
            vec![("rma", rma.to_owned())],
            english,
        )
    }

    pub fn release_not_quarantined() -> Self {
        Self::simple(
            "release_not_quarantined",
            "released from quarantine at the site, but not in quarantine here",
        )
    }

    pub fn tote_unknown(tote: &str) -> Self {
        let english = format!("tote {tote} received, but none was sent to this site");
        Self::coded("tote_unknown", vec![("tote", tote.to_owned())], english)
    }

    /// A site's database went back in time: `n_ops` applied here are lost at the site.
    pub fn database_rewound(
        site: &str,
        n_ops: u64,
        new_epoch: String,
        epoch: String,
        head_seq: u64,
        applied: i64,
    ) -> Self {
        let english = format!(
            "database of site {site} went back in time: {n_ops} ops, new epoch {new_epoch} \
             (epoch {epoch} held {head_seq} ops at the site, {applied} were applied here)"
        );
        let params = vec![
            ("site", site.to_owned()),
            ("n_ops", n_ops.to_string()),
            ("new_epoch", new_epoch),
            ("epoch", epoch),
            ("head_seq", head_seq.to_string()),
            ("applied", applied.to_string()),
        ];
        Self::coded("database_rewound", params, english)
    }

    /// A site's hello named another site than its certificate.
    pub fn hello_site_mismatch(named: &str, site: &str) -> Self {
        let english = format!("hello names site {named:?} but the certificate is {site}");
        let params = vec![("named", named.to_owned()), ("site", site.to_owned())];
        Self::coded("hello_site_mismatch", params, english)
    }

    /// This database went back in time under a site that had applied `applied_seq` commands
    /// of `epoch`, of which it holds `held_seq`: the site's stream is sent again.
    pub fn coordinator_rewound(
        site: &str,
        epoch: String,
        applied_seq: u64,
        held_seq: u64,
        new_epoch: String,
    ) -> Self {
        let english = if held_seq == 0 {
            format!(
                "coordinator database went back in time: site {site} applied commands up to seq \
                 {applied_seq} of epoch {epoch}, which this database never had; its whole command \
                 stream is sent again under epoch {new_epoch}"
            )
        } else {
            format!(
                "coordinator database went back in time: site {site} applied commands up to seq \
                 {applied_seq} of epoch {epoch}, this database holds {held_seq} of them; its whole \
                 command stream is sent again under epoch {new_epoch}"
            )
        };
        let params = vec![
            ("site", site.to_owned()),
            ("epoch", epoch),
            ("applied_seq", applied_seq.to_string()),
            ("held_seq", held_seq.to_string()),
            ("new_epoch", new_epoch),
        ];
        Self::coded("coordinator_rewound", params, english)
    }

    pub fn transfer_without_disposition() -> Self {
        Self::simple(
            "transfer_without_disposition",
            "transferred without a disposition",
        )
    }

    pub fn transfer_without_grade() -> Self {
        Self::simple("transfer_without_grade", "transferred without a grade")
    }

    pub fn unit_received(sku: &str, receipt: &str) -> Self {
        let english = format!("{sku} received ({receipt})");
        let params = vec![("sku", sku.to_owned()), ("receipt", receipt.to_owned())];
        Self::coded("unit_received", params, english)
    }

    /// A grade, with the defects found (their codes, comma-separated) when there are any.
    pub fn graded(grade: Grade, defects: &[&str]) -> Self {
        let grade = grade.as_str().to_owned();
        match defects.is_empty() {
            true => Self::coded(
                "graded",
                vec![("grade", grade.clone())],
                format!("grade {grade}"),
            ),
            false => {
                let english = format!("grade {grade}; defects {}", defects.join(", "));
                let params = vec![("grade", grade), ("defects", defects.join(","))];
                Self::coded("graded_defects", params, english)
            }
        }
    }

    pub fn disposition_undone(grade: Grade) -> Self {
        let english = format!("disposition undone; graded {} again", grade.as_str());
        let params = vec![("grade", grade.as_str().to_owned())];
        Self::coded("disposition_undone", params, english)
    }

    pub fn disposition_set(disposition: &str) -> Self {
        let english = format!("disposition {disposition}");
        let params = vec![("disposition", disposition.to_owned())];
        Self::coded("disposition_set", params, english)
    }

    pub fn receipt_voided() -> Self {
        Self::simple("receipt_voided", "receipt voided at the site")
    }

    pub fn put_away(bin: &str) -> Self {
        Self::coded(
            "put_away",
            vec![("bin", bin.to_owned())],
            format!("bin {bin}"),
        )
    }

    pub fn tested(passed: bool) -> Self {
        match passed {
            true => Self::simple("test_passed", "function test passed"),
            false => Self::simple("test_failed", "function test failed"),
        }
    }

    pub fn departed(departure: &Departure, tracking: Option<&str>) -> Self {
        let english = match tracking {
            Some(t) => format!("{departure}, tracking {t}"),
            None => departure.to_string(),
        };
        let (code, mut params) = match departure {
            Departure::Transfer { to } => ("departed_transfer", vec![("to", to.to_string())]),
            Departure::Exchange { rma } => ("departed_exchange", vec![("rma", rma.to_string())]),
            Departure::ToCustomer { rma } => {
                ("departed_to_customer", vec![("rma", rma.to_string())])
            }
            other => ("departed", vec![("departure", other.name().to_owned())]),
        };
        let code = match tracking {
            Some(t) => {
                params.push(("tracking", t.to_owned()));
                match code {
                    "departed_transfer" => "departed_transfer_tracked",
                    "departed_exchange" => "departed_exchange_tracked",
                    "departed_to_customer" => "departed_to_customer_tracked",
                    _ => "departed_tracked",
                }
            }
            None => code,
        };
        Self::coded(code, params, english)
    }

    pub fn transfer_received(from: &str) -> Self {
        let params = vec![("from", from.to_owned())];
        Self::coded("transfer_received", params, format!("from {from}"))
    }

    pub fn matched_at_site() -> Self {
        Self::simple("matched_at_site", "matched at the site")
    }

    pub fn released(supervisor: &str, reason: &str) -> Self {
        let english = format!("released from quarantine by {supervisor}: {reason}");
        let params = vec![
            ("supervisor", supervisor.to_owned()),
            ("reason", reason.to_owned()),
        ];
        Self::coded("released", params, english)
    }

    pub fn parcel_closed(n_short: usize) -> Self {
        match n_short {
            0 => Self::simple("parcel_complete", "parcel closed; every line arrived"),
            n => Self::coded(
                "parcel_short",
                vec![("n_lines", n.to_string())],
                format!("parcel closed; {n} line(s) short"),
            ),
        }
    }

    /// Registered and sent to `site`; the English keeps why (the page says it from the
    /// routing's candidates).
    pub fn registered(site: &str, routing: &str) -> Self {
        let english = format!("routed to {site}: {routing}");
        Self::coded("registered", vec![("site", site.to_owned())], english)
    }

    pub fn matched_by_ops() -> Self {
        Self::simple(
            "matched_by_ops",
            "an unidentified unit was matched to this return",
        )
    }

    pub fn cancelled_by(by: &str) -> Self {
        let english = format!("cancelled by {by}");
        Self::coded("cancelled_by", vec![("by", by.to_owned())], english)
    }

    pub fn expired() -> Self {
        Self::simple("expired", "nothing of it was received in time")
    }

    /// The customer's choice at a store's counter: an exchange for `sku`.
    pub fn chosen_exchange_at_counter(sku: &str, fee_yen: u64) -> Self {
        let english = format!("exchange for {sku} (fee ¥{fee_yen}), chosen at the store counter");
        let params = vec![("sku", sku.to_owned()), ("fee_yen", fee_yen.to_string())];
        Self::coded("chosen_exchange_at_counter", params, english)
    }

    pub fn chosen_credit_at_counter(bonus_yen: u64) -> Self {
        let english =
            format!("store credit with a bonus of ¥{bonus_yen}, chosen at the store counter");
        let params = vec![("bonus_yen", bonus_yen.to_string())];
        Self::coded("chosen_credit_at_counter", params, english)
    }

    pub fn chosen_refund_at_counter(fee_yen: u64) -> Self {
        let english = format!("refund (fee ¥{fee_yen}), chosen at the store counter");
        let params = vec![("fee_yen", fee_yen.to_string())];
        Self::coded("chosen_refund_at_counter", params, english)
    }

    /// A carrier's tracking event; `transit` is its status code.
    pub fn carrier_update(
        carrier: &str,
        tracking: &str,
        transit: &str,
        location: Option<&str>,
    ) -> Self {
        let mut params = vec![
            ("carrier", carrier.to_owned()),
            ("tracking", tracking.to_owned()),
            ("transit", transit.to_owned()),
        ];
        match location {
            Some(l) => {
                params.push(("location", l.to_owned()));
                let english = format!("{carrier} {tracking}: {transit} at {l}");
                Self::coded("carrier_update_at", params, english)
            }
            None => {
                let english = format!("{carrier} {tracking}: {transit}");
                Self::coded("carrier_update", params, english)
            }
        }
    }

    /// A trade-in graded as described or better: the quote stands.
    pub fn trade_in_as_quoted(amount_yen: u64, grade: &str) -> Self {
        let english = format!("graded {grade}: the quote of {amount_yen} yen stands");
        let params = vec![
            ("amount_yen", amount_yen.to_string()),
            ("grade", grade.to_owned()),
        ];
        Self::coded("trade_in_as_quoted", params, english)
    }

    /// A trade-in graded worse than described: a lower offer, answered by `deadline_ms`.
    pub fn trade_in_counter(
        amount_yen: u64,
        quoted_yen: u64,
        grade: &str,
        deadline_ms: i64,
    ) -> Self {
        let deadline = chrono::DateTime::from_timestamp_millis(deadline_ms + JST_OFFSET_MS)
            .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M JST").to_string());
        let english = format!(
            "graded {grade}: counter-offer of {amount_yen} yen (quoted {quoted_yen} yen), \
             to be answered by {deadline}"
        );
        let params = vec![
            ("amount_yen", amount_yen.to_string()),
            ("quoted_yen", quoted_yen.to_string()),
            ("grade", grade.to_owned()),
            ("deadline", deadline),
        ];
        Self::coded("trade_in_counter", params, english)
    }

    /// A trade-in's offer accepted, paid as store credit with its bonus.
    pub fn trade_in_credit(amount_yen: u64, bonus_yen: u64, at_deadline: bool) -> Self {
        let (code, when) = if at_deadline {
            (
                "trade_in_credit_at_deadline",
                " (unanswered at the deadline)",
            )
        } else {
            ("trade_in_credit", "")
        };
        let english = format!(
            "accepted{when}: store credit of {amount_yen} yen, bonus {bonus_yen} yen included"
        );
        let params = vec![
            ("amount_yen", amount_yen.to_string()),
            ("bonus_yen", bonus_yen.to_string()),
        ];
        Self::coded(code, params, english)
    }

    /// A trade-in's offer accepted, paid by a bank transfer the merchant makes.
    pub fn trade_in_transfer(amount_yen: u64, at_deadline: bool) -> Self {
        let (code, when) = if at_deadline {
            (
                "trade_in_transfer_at_deadline",
                " (unanswered at the deadline)",
            )
        } else {
            ("trade_in_transfer", "")
        };
        let english =
            format!("accepted{when}: a bank transfer of {amount_yen} yen for the merchant to pay");
        Self::coded(code, vec![("amount_yen", amount_yen.to_string())], english)
    }

    /// A trade-in's offer overridden by ops with a reason: accepted at once (no deadline), or a
    /// counter-offer to be answered by `deadline_ms`.
    pub fn trade_in_overridden(
        amount_yen: u64,
        previous_yen: u64,
        reason: &str,
        key_id: &str,
        deadline_ms: Option<i64>,
    ) -> Self {
        let mut params = vec![
            ("amount_yen", amount_yen.to_string()),
            ("previous_yen", previous_yen.to_string()),
            ("reason", reason.to_owned()),
            ("key_id", key_id.to_owned()),
        ];
        match deadline_ms {
            None => {
                let english = format!(
                    "offer overridden by {key_id}: {amount_yen} yen instead of {previous_yen} yen \
                     ({reason})"
                );
                Self::coded("trade_in_overridden", params, english)
            }
            Some(deadline_ms) => {
                let deadline = chrono::DateTime::from_timestamp_millis(deadline_ms + JST_OFFSET_MS)
                    .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M JST").to_string());
                let english = format!(
                    "offer overridden by {key_id}: {amount_yen} yen instead of {previous_yen} yen \
                     ({reason}), to be answered by {deadline}"
                );
                params.push(("deadline", deadline));
                Self::coded("trade_in_overridden_counter", params, english)
            }
        }
    }

    /// A trade-in's counter-offer declined (by the customer, or by default at its deadline).
    pub fn trade_in_declined(at_deadline: bool) -> Self {
        if at_deadline {
            Self::simple(
                "trade_in_declined_at_deadline",
                "unanswered at the deadline: declined, the item is to be sent back to the customer",
            )
        } else {
            Self::simple(
                "trade_in_declined",
                "declined: the item is to be sent back to the customer",
            )
        }
    }

    /// A repair's quote overridden by ops after a dispute, to be answered by `deadline_ms`.
    pub fn repair_overridden(
        amount_yen: u64,
        previous_yen: u64,
        reason: &str,
        key_id: &str,
        deadline_ms: i64,
    ) -> Self {
        let deadline = chrono::DateTime::from_timestamp_millis(deadline_ms + JST_OFFSET_MS)
            .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M JST").to_string());
        let english = format!(
            "repair quote overridden by {key_id}: {amount_yen} yen instead of {previous_yen} yen \
             ({reason}), to be answered by {deadline}"
        );
        let params = vec![
            ("amount_yen", amount_yen.to_string()),
            ("previous_yen", previous_yen.to_string()),
            ("reason", reason.to_owned()),
            ("key_id", key_id.to_owned()),
            ("deadline", deadline),
        ];
        Self::coded("repair_overridden", params, english)
    }

    /// A repair quoted from the defects found, to be answered by `deadline_ms`.
    pub fn repair_quoted(amount_yen: u64, defects: &str, deadline_ms: i64) -> Self {
        let deadline = chrono::DateTime::from_timestamp_millis(deadline_ms + JST_OFFSET_MS)
            .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M JST").to_string());
        let found = if defects.is_empty() { "none" } else { defects };
        let english = format!(
            "repair quoted at {amount_yen} yen for the defects found ({found}), to be answered \
             by {deadline}"
        );
        let params = vec![
            ("amount_yen", amount_yen.to_string()),
            ("defects", found.to_owned()),
            ("deadline", deadline),
        ];
        Self::coded("repair_quoted", params, english)
    }

    /// A repair not quoted: no table prices these defects (comma-separated), for ops to price.
    pub fn repair_unpriced(defects: &str) -> Self {
        let english = format!(
            "repair not quoted: no price for {defects}; ops to set one in the repair rates"
        );
        Self::coded(
            "repair_unpriced",
            vec![("defects", defects.to_owned())],
            english,
        )
    }

    /// A repair's quote accepted: its charge, and where the unit goes (`None`: it stays, its
    /// site refurbishes; `Some(None)`: no site of the fleet refurbishes).
    pub fn repair_accepted(amount_yen: u64, at_deadline: bool, to: Option<Option<&str>>) -> Self {
        let amount = ("amount_yen", amount_yen.to_string());
        match (at_deadline, to) {
            (true, _) => Self::coded(
                "repair_accepted_at_deadline",
                vec![amount],
                format!("unanswered at the deadline, accepted: repair charge of {amount_yen} yen"),
            ),
            (false, None) => Self::coded(
                "repair_accepted",
                vec![amount],
                format!("accepted: repair charge of {amount_yen} yen, repaired at this site"),
            ),
            (false, Some(Some(to))) => Self::coded(
                "repair_accepted_transfer",
                vec![amount, ("to", to.to_owned())],
                format!(
                    "accepted: repair charge of {amount_yen} yen; transferred to {to}, which \
                     refurbishes"
                ),
            ),
            (false, Some(None)) => Self::coded(
                "repair_accepted_nowhere",
                vec![amount],
                format!(
                    "accepted: repair charge of {amount_yen} yen; no site of the fleet \
                     refurbishes, for ops to arrange"
                ),
            ),
        }
    }

    /// A repair's quote declined: the item goes back as it is.
    pub fn repair_declined(at_deadline: bool) -> Self {
        if at_deadline {
            Self::simple(
                "repair_declined_at_deadline",
                "unanswered at the deadline: declined, to be returned to the customer as it is",
            )
        } else {
            Self::simple(
                "repair_declined",
                "declined: to be returned to the customer as it is",
            )
        }
    }

    /// What is owed once every unit is graded, as a refund or as store credit.
    pub fn refund_after_grading(
        store_credit: bool,
        amount_yen: u64,
        n_units: usize,
        fee_yen: i64,
    ) -> Self {
        let (code, what) = if store_credit {
            ("credit_after_grading", "store credit")
        } else {
            ("refund_after_grading", "refund")
        };
        let english = format!(
            "{what} of {amount_yen} yen after grading ({n_units} units, fee {fee_yen} yen)"
        );
        let params = vec![
            ("amount_yen", amount_yen.to_string()),
            ("n_units", n_units.to_string()),
            ("fee_yen", fee_yen.to_string()),
        ];
        Self::coded(code, params, english)
    }

    pub fn refund_paid(amount_yen: i64) -> Self {
        let english = format!("{amount_yen} yen paid by the merchant");
        let params = vec![("amount_yen", amount_yen.to_string())];
        Self::coded("refund_paid", params, english)
    }

    /// Why the customer keeps the goods: bringing them back by `method` costs more than
    /// they would recover.
    pub fn returnless_kept(method: &str, cost_yen: u64, recovered_yen: i64) -> Self {
        let english = format!(
            "bringing it back ({method}) costs {cost_yen} yen and would recover {recovered_yen} yen: keep it"
        );
        let params = vec![
            ("method", method.to_owned()),
            ("cost_yen", cost_yen.to_string()),
            ("recovered_yen", recovered_yen.to_string()),
        ];
        Self::coded("returnless_kept", params, english)
    }

    pub fn refund_goods_kept(amount_yen: u64) -> Self {
        let english = format!("refund of {amount_yen} yen, the goods kept by the customer");
        let params = vec![("amount_yen", amount_yen.to_string())];
        Self::coded("refund_goods_kept", params, english)
    }

    pub fn handed_in_at_store(store: &str) -> Self {
        let english = format!("handed in at store {store}");
        Self::coded(
            "handed_in_at_store",
            vec![("store", store.to_owned())],
            english,
        )
    }

    pub fn left_in_tote(store: &str, tote: &str, n_returns: usize) -> Self {
        let english = format!("leaves {store} in tote {tote} with {n_returns} returns");
        let params = vec![
            ("store", store.to_owned()),
            ("tote", tote.to_owned()),
            ("n_returns", n_returns.to_string()),
        ];
        Self::coded("left_in_tote", params, english)
    }

    fn simple(code: &'static str, english: &str) -> Self {
        Self::coded(code, Vec::new(), english.to_owned())
    }
}

fn received_at(sku: &str, site: &str, rma: &str) -> Vec<(&'static str, String)> {
    vec![
        ("sku", sku.to_owned()),
        ("site", site.to_owned()),
        ("rma", rma.to_owned()),
    ]
}

fn all_codes() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    DETAIL_PARAMS.into_iter()
}

/// A stored row's parameters, read back; a row without a code (written before) has none.
pub fn read_params(json: Option<String>) -> Option<BTreeMap<String, String>> {
    json.and_then(|j| serde_json::from_str(&j).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use modori_shared::domain::{Lpn, RmaId, SiteId, UnitState};

    #[test]
    fn a_detail_keeps_its_english_beside_its_code_and_parameters() {
        let d = Detail::graded(Grade::B, &["stain", "tear"]);
        assert_eq!(d.english, "grade B; defects stain, tear");
        assert_eq!(d.code(), Some("graded_defects"));
        assert_eq!(
            d.params_json().as_deref(),
            Some(r#"{"defects":"stain,tear","grade":"B"}"#)
        );
        let plain = Detail::graded(Grade::A, &[]);
        assert_eq!(
            (plain.code(), plain.english.as_str()),
            (Some("graded"), "grade A")
        );
        // Words from outside stay English, with nothing to say them otherwise.
        let raw = Detail::english("bad frame".into());
        assert_eq!((raw.code(), raw.params_json()), (None, None));
    }

    #[test]
    fn each_departure_has_its_code() {
        let to = SiteId::new("osaka").unwrap();
        let rma = RmaId::new("RMA-1").unwrap();
        let cases = [
            (Departure::Transfer { to }, None, "departed_transfer"),
            (
                Departure::Exchange { rma: rma.clone() },
                Some("T-1"),
                "departed_exchange_tracked",
            ),
            (
                Departure::ToCustomer { rma: rma.clone() },
                Some("T-3"),
                "departed_to_customer_tracked",
            ),
            (Departure::ToCustomer { rma }, None, "departed_to_customer"),
            (Departure::Vendor, None, "departed"),
            (Departure::Disposal, Some("T-2"), "departed_tracked"),
        ];
        for (departure, tracking, code) in cases {
            let d = Detail::departed(&departure, tracking);
            assert_eq!(d.code(), Some(code), "{departure}");
            assert!(d.english.starts_with(&departure.to_string()));
        }
    }

    #[test]
    fn a_refused_step_is_named_by_a_key() {
        let lpn = Lpn::new("L1").unwrap();
        let e = UnitState::Voided.grade(&lpn, Grade::A).unwrap_err();
        let d = Detail::refused_step(&e);
        assert_eq!(d.code(), Some("step_not_allowed"));
        assert_eq!(d.english, e.to_string());
        assert_eq!(
            read_params(d.params_json()),
            Some(BTreeMap::from([
                ("state".to_owned(), "voided".to_owned()),
                ("step".to_owned(), "grade".to_owned()),
            ]))
        );
        assert_eq!(read_params(Some("not json".into())), None);
    }
}
