//! Trade-ins (買取): a customer sells an item back. The price is not known until the item is
//! graded, so the customer first gets a quote from their own description of its condition,
//! priced from the merchant's table by SKU (or, failing that, by category) and grade; after
//! grading, the offer is the quote when the grade is as described or better, and the table's
//! price for the grade found when it is worse (a counter-offer the customer accepts or
//! declines).
//!
//! Plain functions over plain data: no IO, no clock.

use std::collections::BTreeSet;
use std::fmt;

use crate::domain::{DomainError, Grade, ID_LEN_MAX};

/// Highest price a table may set for one unit, in yen: above any item a returns centre buys.
pub const PRICE_YEN_MAX: u64 = 10_000_000;
/// Most rows in one merchant's price table (a SKU or a category, times five grades).
pub const PRICE_ROWS_MAX: usize = 10_000;
/// Longest category name a row may name, in bytes (as the catalogue's).
pub const CATEGORY_BYTES_MAX: usize = 64;

/// What the customer says of the item's condition when asking for a quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    LikeNew,
    Good,
    Fair,
    Poor,
    NotWorking,
}

impl Condition {
    pub const ALL_NAMES: &'static [&'static str] =
        &["like_new", "good", "fair", "poor", "not_working"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LikeNew => "like_new",
            Self::Good => "good",
            Self::Fair => "fair",
            Self::Poor => "poor",
            Self::NotWorking => "not_working",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "like_new" => Ok(Self::LikeNew),
            "good" => Ok(Self::Good),
            "fair" => Ok(Self::Fair),
            "poor" => Ok(Self::Poor),
            "not_working" => Ok(Self::NotWorking),
            _ => Err(DomainError::UnknownName {
                kind: "condition",
                value: s.chars().take(ID_LEN_MAX).collect(),
                allowed: Self::ALL_NAMES,
            }),
        }
    }

    /// The grade a site would give an item in this condition: what the quote is priced at.
    pub fn expected_grade(self) -> Grade {
        match self {
            Self::LikeNew => Grade::A,
            Self::Good => Grade::B,
            Self::Fair => Grade::C,
            Self::Poor => Grade::D,
            Self::NotWorking => Grade::X,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a row of a price table prices: one SKU, or every SKU of a category without a row of
/// its own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PriceKey {
    Sku(String),
    Category(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceRow {
    pub key: PriceKey,
    pub grade: Grade,
    pub price_yen: u64,
}

/// Why a price table is refused, by the row it is about.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PriceError {
    #[error("a table holds at most {PRICE_ROWS_MAX} rows")]
    TooManyRows,
    #[error("price {0} yen is over the limit of {PRICE_YEN_MAX} yen")]
    TooHigh(u64),
    #[error("a category code is 1 to {CATEGORY_BYTES_MAX} of a-z 0-9 _ -")]
    BadCategory,
}

/// Checks a whole table; the error names the row (by index) it is about.
pub fn check_table(rows: &[PriceRow]) -> Result<(), (Option<usize>, PriceError)> {
    if rows.len() > PRICE_ROWS_MAX {
        return Err((None, PriceError::TooManyRows));
    }
    for (i, row) in rows.iter().enumerate() {
        if row.price_yen > PRICE_YEN_MAX {
            return Err((Some(i), PriceError::TooHigh(row.price_yen)));
        }
        if let PriceKey::Category(c) = &row.key {
            if !valid_category(c) {
                return Err((Some(i), PriceError::BadCategory));
            }
        }
    }
    Ok(())
}

/// Whether `c` is shaped as a catalogue's category code (1 to [`CATEGORY_BYTES_MAX`] of
/// a-z 0-9 _ -).
pub fn valid_category(c: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b);
    !c.is_empty() && c.len() <= CATEGORY_BYTES_MAX && c.bytes().all(allowed)
}

/// The table with one row per SKU or category and grade: a later row for the same ones
/// replaces an earlier one, as when a spreadsheet is pasted over.
pub fn deduplicated(rows: Vec<PriceRow>) -> Vec<PriceRow> {
    let mut seen = BTreeSet::new();
    let mut kept: Vec<PriceRow> = rows
        .into_iter()
        .rev()
        .filter(|r| seen.insert((r.key.clone(), r.grade.index())))
        .collect();
    kept.reverse();
    kept
}

/// The table's price of `sku` (of `category`) at `grade`: the SKU's own row, else its
/// category's; `None` when neither has one (the merchant does not buy it at that grade).
pub fn price(rows: &[PriceRow], sku: &str, category: &str, grade: Grade) -> Option<u64> {
    let at = |key: &PriceKey| {
        rows.iter()
            .find(|r| r.grade == grade && &r.key == key)
            .map(|r| r.price_yen)
    };
    at(&PriceKey::Sku(sku.to_owned())).or_else(|| at(&PriceKey::Category(category.to_owned())))
}

/// Whether the merchant takes `sku` as a trade-in at all: some grade has a price.
pub fn takes(rows: &[PriceRow], sku: &str, category: &str) -> bool {
    rows.iter().any(|r| match &r.key {
        PriceKey::Sku(s) => s == sku,
        PriceKey::Category(c) => c == category,
    })
}

/// What the centre offers once the item is graded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// As described or better: the quote stands and is accepted without asking.
    AsQuoted { amount_yen: u64 },
    /// Worse than described: the grade's price (0 when the table has none for it), which the
    /// customer accepts or declines.
    Counter { amount_yen: u64, quoted_yen: u64 },
}

/// The offer for an item quoted `quoted_yen` whose grade is priced `graded_price_yen`: never
/// more than the quote (a better grade than described does not raise it).
pub fn offer_after_grading(quoted_yen: u64, graded_price_yen: Option<u64>) -> Offer {
    match graded_price_yen {
        Some(p) if p >= quoted_yen => Offer::AsQuoted {
            amount_yen: quoted_yen,
        },
        other => Offer::Counter {
            amount_yen: other.unwrap_or(0),
            quoted_yen,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: PriceKey, grade: Grade, price_yen: u64) -> PriceRow {
        PriceRow {
            key,
            grade,
            price_yen,
        }
    }

    fn table() -> Vec<PriceRow> {
        vec![
            row(PriceKey::Category("phone".into()), Grade::A, 30_000),
            row(PriceKey::Category("phone".into()), Grade::B, 22_000),
            row(PriceKey::Category("phone".into()), Grade::C, 12_000),
            row(PriceKey::Sku("PHN-PRO-256".into()), Grade::A, 61_000),
        ]
    }

    #[test]
    fn a_skus_own_row_wins_over_its_categorys() {
        let t = table();
        assert_eq!(price(&t, "PHN-PRO-256", "phone", Grade::A), Some(61_000));
        // No row of its own at B: the category's.
        assert_eq!(price(&t, "PHN-PRO-256", "phone", Grade::B), Some(22_000));
        assert_eq!(price(&t, "PHN-MINI", "phone", Grade::C), Some(12_000));
        assert_eq!(price(&t, "PHN-MINI", "phone", Grade::D), None);
        assert_eq!(price(&t, "TEE-WHT-M", "tee", Grade::A), None);
        assert!(takes(&t, "PHN-MINI", "phone"));
        assert!(takes(&t, "PHN-PRO-256", "other"));
        assert!(!takes(&t, "TEE-WHT-M", "tee"));
    }

    #[test]
    fn the_quote_stands_unless_the_grade_is_worse() {
        assert_eq!(
            offer_after_grading(22_000, Some(30_000)),
            Offer::AsQuoted { amount_yen: 22_000 }
        );
        assert_eq!(
            offer_after_grading(22_000, Some(22_000)),
            Offer::AsQuoted { amount_yen: 22_000 }
        );
        assert_eq!(
            offer_after_grading(22_000, Some(12_000)),
            Offer::Counter {
                amount_yen: 12_000,
                quoted_yen: 22_000
            }
        );
        assert_eq!(
            offer_after_grading(22_000, None),
            Offer::Counter {
                amount_yen: 0,
                quoted_yen: 22_000
            }
        );
    }

    #[test]
    fn a_table_is_refused_by_the_row_at_fault() {
        assert_eq!(check_table(&table()), Ok(()));
        let t = vec![row(PriceKey::Sku("X".into()), Grade::A, PRICE_YEN_MAX + 1)];
        assert_eq!(
            check_table(&t),
            Err((Some(0), PriceError::TooHigh(PRICE_YEN_MAX + 1)))
        );
        for bad in ["", "Phone", "phone case"] {
            let t = vec![row(PriceKey::Category(bad.into()), Grade::A, 1)];
            assert_eq!(
                check_table(&t),
                Err((Some(0), PriceError::BadCategory)),
                "{bad}"
            );
        }
        // A later row for the same key and grade replaces the earlier; the same key at
        // another grade, or a SKU named like a category, is another row.
        let t = vec![
            row(PriceKey::Sku("phone".into()), Grade::A, 1),
            row(PriceKey::Category("phone".into()), Grade::A, 1),
            row(PriceKey::Category("phone".into()), Grade::B, 1),
            row(PriceKey::Category("phone".into()), Grade::A, 7),
        ];
        assert_eq!(
            deduplicated(t.clone()),
            [t[0].clone(), t[2].clone(), t[3].clone()]
        );
        let many = vec![row(PriceKey::Sku("X".into()), Grade::A, 1); PRICE_ROWS_MAX + 1];
        assert_eq!(check_table(&many), Err((None, PriceError::TooManyRows)));
    }

    #[test]
    fn a_condition_is_priced_at_the_grade_it_would_get() {
        for name in Condition::ALL_NAMES {
            let c = Condition::parse(name).expect("listed");
            assert_eq!(c.as_str(), *name);
        }
        assert_eq!(Condition::Good.expected_grade(), Grade::B);
        assert_eq!(Condition::NotWorking.expected_grade(), Grade::X);
        assert!(Condition::parse("mint").is_err());
    }
}
