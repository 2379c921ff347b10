//! Repairs (修理): a customer sends an item in to be fixed. They name the fault; the site
//! inspects the item (a grade and its defect codes), and the repair is quoted from the
//! merchant's parts-and-labour table by defect code, priced for the item's SKU, else its
//! category, else for any product. A defect the table does not price leaves the repair
//! unquoted for ops to price: a quote is never made up of silent zeros.
//!
//! Plain functions over plain data: no IO, no clock.

use std::collections::BTreeSet;
use std::fmt;

use crate::domain::{Capability, DefectCode, DomainError, Site, SiteId, ID_LEN_MAX};
use crate::tradein::{valid_category, PriceKey};

/// Highest price of parts, or of labour, one defect may be quoted, in yen: above any repair a
/// returns centre does.
pub const RATE_YEN_MAX: u64 = 1_000_000;
/// Most rows in one merchant's parts-and-labour table (defect codes times SKUs or
/// categories).
pub const RATE_ROWS_MAX: usize = 10_000;
/// Most products (SKUs or categories) a merchant lists as repaired.
pub const PRODUCTS_MAX: usize = 10_000;
/// Longest description of the fault a customer may give, in characters: a few sentences.
pub const FAULT_TEXT_CHARS_MAX: usize = 1_000;

/// The fault the customer names when asking for a repair, from a fixed list (with their own
/// words beside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    NoPower,
    Screen,
    Battery,
    ButtonsOrPorts,
    WaterDamage,
    Noise,
    Other,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Self::NoPower,
        Self::Screen,
        Self::Battery,
        Self::ButtonsOrPorts,
        Self::WaterDamage,
        Self::Noise,
        Self::Other,
    ];
    pub const ALL_NAMES: &'static [&'static str] = &[
        "no_power",
        "screen",
        "battery",
        "buttons_or_ports",
        "water_damage",
        "noise",
        "other",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoPower => "no_power",
            Self::Screen => "screen",
            Self::Battery => "battery",
            Self::ButtonsOrPorts => "buttons_or_ports",
            Self::WaterDamage => "water_damage",
            Self::Noise => "noise",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| DomainError::UnknownName {
                kind: "fault",
                value: s.chars().take(ID_LEN_MAX).collect(),
                allowed: Self::ALL_NAMES,
            })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a list of repaired products is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProductsError {
    #[error("a merchant lists at most {PRODUCTS_MAX} repaired products")]
    TooMany,
    #[error("a category code is 1 to 64 of a-z 0-9 _ -")]
    BadCategory,
}

/// Checks a merchant's list of repaired products; the error names the entry (by index).
pub fn check_products(keys: &[PriceKey]) -> Result<(), (Option<usize>, ProductsError)> {
    if keys.len() > PRODUCTS_MAX {
        return Err((None, ProductsError::TooMany));
    }
    for (i, key) in keys.iter().enumerate() {
        if let PriceKey::Category(c) = key {
            if !valid_category(c) {
                return Err((Some(i), ProductsError::BadCategory));
            }
        }
    }
    Ok(())
}

/// Whether `sku` (of `category`) is among the products a merchant repairs.
pub fn repairs(products: &[PriceKey], sku: &str, category: &str) -> bool {
    products.iter().any(|k| match k {
        PriceKey::Sku(s) => s == sku,
        PriceKey::Category(c) => c == category,
    })
}

/// What a row of the parts-and-labour table prices: the repair of `defect` on one SKU, on
/// every SKU of a category without a row of its own, or (`key` none) on any product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateRow {
    pub defect: DefectCode,
    pub key: Option<PriceKey>,
    pub parts_yen: u64,
    pub labour_yen: u64,
}

/// Why a parts-and-labour table is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RateError {
    #[error("a table holds at most {RATE_ROWS_MAX} rows")]
    TooManyRows,
    #[error("{0} yen is over the limit of {RATE_YEN_MAX} yen")]
    TooHigh(u64),
    #[error("a category code is 1 to 64 of a-z 0-9 _ -")]
    BadCategory,
}

/// Checks a whole table; the error names the row (by index) it is about.
pub fn check_rates(rows: &[RateRow]) -> Result<(), (Option<usize>, RateError)> {
    if rows.len() > RATE_ROWS_MAX {
        return Err((None, RateError::TooManyRows));
    }
    for (i, row) in rows.iter().enumerate() {
        for yen in [row.parts_yen, row.labour_yen] {
            if yen > RATE_YEN_MAX {
                return Err((Some(i), RateError::TooHigh(yen)));
            }
        }
        if let Some(PriceKey::Category(c)) = &row.key {
            if !valid_category(c) {
                return Err((Some(i), RateError::BadCategory));
            }
        }
    }
    Ok(())
}

/// The table with one row per defect and key: a later row replaces an earlier one, as when a
/// spreadsheet is pasted over.
pub fn deduplicated(rows: Vec<RateRow>) -> Vec<RateRow> {
    let mut seen = BTreeSet::new();
    let mut kept: Vec<RateRow> = rows
        .into_iter()
        .rev()
        .filter(|r| seen.insert((r.defect, r.key.clone())))
        .collect();
    kept.reverse();
    kept
}

/// The row of `tables` pricing `defect` on `sku` (of `category`): in the first table that
/// prices it at all, the SKU's own row, else its category's, else the row for any product.
/// The tables are searched in order, so a merchant's own table comes before the configured
/// one.
pub fn rate<'a>(
    tables: &[&'a [RateRow]],
    sku: &str,
    category: &str,
    defect: DefectCode,
) -> Option<&'a RateRow> {
    let (sku, category) = (
        Some(PriceKey::Sku(sku.to_owned())),
        Some(PriceKey::Category(category.to_owned())),
    );
    tables.iter().find_map(|rows| {
        [&sku, &category, &None]
            .into_iter()
            .find_map(|key| rows.iter().find(|r| r.defect == defect && &r.key == key))
    })
}

/// One line of a quote: a defect found and what mending it costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteLine {
    pub defect: DefectCode,
    pub parts_yen: u64,
    pub labour_yen: u64,
}

/// A repair priced from the defects found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// One line per defect, in the order of `DefectCode::ALL`; none when inspection found no
    /// defect (nothing to mend, nothing to pay).
    pub lines: Vec<QuoteLine>,
    pub total_yen: u64,
}

/// Prices the repair of `defects` on `sku` (of `category`) from `tables` (see [`rate`]). A
/// defect named twice is mended once. Every defect without a price refuses the quote, named
/// in the error, so ops can price it.
pub fn quote(
    tables: &[&[RateRow]],
    sku: &str,
    category: &str,
    defects: &[DefectCode],
) -> Result<Quote, Vec<DefectCode>> {
    let found: BTreeSet<DefectCode> = defects.iter().copied().collect();
    let mut lines = Vec::with_capacity(found.len());
    let mut unpriced = Vec::new();
    for defect in DefectCode::ALL.into_iter().filter(|d| found.contains(d)) {
        match rate(tables, sku, category, defect) {
            Some(r) => lines.push(QuoteLine {
                defect,
                parts_yen: r.parts_yen,
                labour_yen: r.labour_yen,
            }),
            None => unpriced.push(defect),
        }
    }
    if !unpriced.is_empty() {
        return Err(unpriced);
    }
    let total_yen = lines
        .iter()
        .map(|l| l.parts_yen.saturating_add(l.labour_yen))
        .fold(0u64, u64::saturating_add);
    Ok(Quote { lines, total_yen })
}

/// Where an accepted repair is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workshop {
    /// The site holding the unit refurbishes: no move.
    Here,
    /// The nearest site that refurbishes: the unit is transferred there.
    Transfer(SiteId),
    /// No site of the fleet refurbishes.
    Nowhere,
}

/// Where the unit held at `holder` is repaired: there when it has the `refurbish` capability,
/// else the site nearest it that has (the first of the fleet's order on a tie).
pub fn workshop(sites: &[Site], holder: &SiteId) -> Workshop {
    let refurbishes = |s: &Site| s.capabilities.contains(&Capability::Refurbish);
    let Some(at) = sites.iter().find(|s| &s.id == holder) else {
        return Workshop::Nowhere;
    };
    if refurbishes(at) {
        return Workshop::Here;
    }
    sites
        .iter()
        .filter(|s| refurbishes(s))
        .map(|s| (crate::geo::distance_km(at.location, s.location), s))
        .fold(None, |best: Option<(f64, &Site)>, (d, s)| match best {
            Some((bd, _)) if bd <= d => best,
            _ => Some((d, s)),
        })
        .map_or(Workshop::Nowhere, |(_, s)| Workshop::Transfer(s.id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(defect: DefectCode, key: Option<PriceKey>, parts_yen: u64, labour_yen: u64) -> RateRow {
        RateRow {
            defect,
            key,
            parts_yen,
            labour_yen,
        }
    }

    fn table() -> Vec<RateRow> {
        vec![
            row(DefectCode::NotWorking, None, 3_000, 4_000),
            row(
                DefectCode::NotWorking,
                Some(PriceKey::Category("phone".into())),
                8_000,
                5_000,
            ),
            row(
                DefectCode::NotWorking,
                Some(PriceKey::Sku("PHN-PRO".into())),
                15_000,
                5_000,
            ),
            row(DefectCode::Scratch, None, 0, 2_000),
        ]
    }

    #[test]
    fn a_skus_row_wins_over_its_categorys_and_that_over_any_products() {
        let t = table();
        let at = |sku, category| rate(&[&t], sku, category, DefectCode::NotWorking);
        assert_eq!(at("PHN-PRO", "phone").map(|r| r.parts_yen), Some(15_000));
        assert_eq!(at("PHN-MINI", "phone").map(|r| r.parts_yen), Some(8_000));
        assert_eq!(at("TAB-10", "tablet").map(|r| r.parts_yen), Some(3_000));
        assert_eq!(rate(&[&t], "TAB-10", "tablet", DefectCode::Dent), None);
    }

    #[test]
    fn the_merchants_table_comes_before_the_configured_one() {
        let own = vec![row(DefectCode::Dent, None, 100, 200)];
        let configured = table();
        let tables: [&[RateRow]; 2] = [&own, &configured];
        let q = quote(
            &tables,
            "PHN-MINI",
            "phone",
            &[DefectCode::Dent, DefectCode::NotWorking],
        );
        assert_eq!(
            q,
            Ok(Quote {
                lines: vec![
                    QuoteLine {
                        defect: DefectCode::Dent,
                        parts_yen: 100,
                        labour_yen: 200
                    },
                    QuoteLine {
                        defect: DefectCode::NotWorking,
                        parts_yen: 8_000,
                        labour_yen: 5_000
                    },
                ],
                total_yen: 13_300
            })
        );
    }

    #[test]
    fn a_defect_without_a_price_refuses_the_quote_naming_it() {
        let t = table();
        let q = quote(
            &[&t],
            "PHN-MINI",
            "phone",
            &[DefectCode::Odor, DefectCode::Scratch, DefectCode::Tear],
        );
        assert_eq!(q, Err(vec![DefectCode::Tear, DefectCode::Odor]));
        // Nothing found: nothing to mend.
        assert_eq!(
            quote(&[&t], "PHN-MINI", "phone", &[]),
            Ok(Quote {
                lines: vec![],
                total_yen: 0
            })
        );
    }

    #[test]
    fn a_table_is_refused_by_the_row_at_fault() {
        assert_eq!(check_rates(&table()), Ok(()));
        let t = vec![row(DefectCode::Dent, None, 1, RATE_YEN_MAX + 1)];
        assert_eq!(
            check_rates(&t),
            Err((Some(0), RateError::TooHigh(RATE_YEN_MAX + 1)))
        );
        let t = vec![row(
            DefectCode::Dent,
            Some(PriceKey::Category("Phone".into())),
            1,
            1,
        )];
        assert_eq!(check_rates(&t), Err((Some(0), RateError::BadCategory)));
        let many = vec![row(DefectCode::Dent, None, 1, 1); RATE_ROWS_MAX + 1];
        assert_eq!(check_rates(&many), Err((None, RateError::TooManyRows)));
        let t = vec![
            row(DefectCode::Dent, None, 1, 1),
            row(DefectCode::Dent, Some(PriceKey::Sku("X".into())), 2, 2),
            row(DefectCode::Dent, None, 3, 3),
        ];
        assert_eq!(deduplicated(t.clone()), [t[1].clone(), t[2].clone()]);
    }

    #[test]
    fn products_and_faults_are_named_from_their_lists() {
        let products = [
            PriceKey::Sku("PHN-PRO".into()),
            PriceKey::Category("tablet".into()),
        ];
        assert!(repairs(&products, "PHN-PRO", "phone"));
        assert!(repairs(&products, "TAB-10", "tablet"));
        assert!(!repairs(&products, "PHN-MINI", "phone"));
        assert_eq!(check_products(&products), Ok(()));
        let bad = [PriceKey::Category("a b".into())];
        assert_eq!(
            check_products(&bad),
            Err((Some(0), ProductsError::BadCategory))
        );
        for (f, name) in Fault::ALL.into_iter().zip(Fault::ALL_NAMES) {
            assert_eq!(f.as_str(), *name);
            assert_eq!(Fault::parse(name), Ok(f));
        }
        assert!(Fault::parse("broken").is_err());
    }

    fn site(id: &str, lat: f64, lon: f64, refurbish: bool) -> Site {
        Site {
            id: SiteId::new(id).unwrap(),
            name: id.into(),
            location: crate::domain::Coordinates::new(lat, lon).unwrap(),
            capabilities: if refurbish {
                vec![Capability::Refurbish]
            } else {
                vec![]
            },
            daily_capacity_units: 100,
        }
    }

    #[test]
    fn a_repair_is_done_where_the_unit_is_or_at_the_nearest_site_that_refurbishes() {
        let sapporo = site("sapporo", 43.06, 141.35, false);
        let sendai = site("sendai", 38.27, 140.87, true);
        let fukuoka = site("fukuoka", 33.59, 130.40, true);
        let sites = vec![fukuoka.clone(), sendai.clone(), sapporo.clone()];
        assert_eq!(workshop(&sites, &sendai.id), Workshop::Here);
        assert_eq!(
            workshop(&sites, &sapporo.id),
            Workshop::Transfer(sendai.id.clone())
        );
        assert_eq!(
            workshop(std::slice::from_ref(&sapporo), &sapporo.id),
            Workshop::Nowhere
        );
        let unknown = SiteId::new("nagoya").unwrap();
        assert_eq!(workshop(&sites, &unknown), Workshop::Nowhere);
    }

    fn defect() -> impl Strategy<Value = DefectCode> {
        (0..DefectCode::ALL.len()).prop_map(|i| DefectCode::ALL[i])
    }

    fn any_row() -> impl Strategy<Value = RateRow> {
        let key = prop_oneof![
            Just(None),
            Just(Some(PriceKey::Sku("PHN-PRO".into()))),
            Just(Some(PriceKey::Sku("PHN-MINI".into()))),
            Just(Some(PriceKey::Category("phone".into()))),
        ];
        (defect(), key, 0..=RATE_YEN_MAX, 0..=RATE_YEN_MAX).prop_map(
            |(defect, key, parts_yen, labour_yen)| RateRow {
                defect,
                key,
                parts_yen,
                labour_yen,
            },
        )
    }

    proptest! {
        /// A quote, when made, has one line per distinct defect found, each the rate the table
        /// gives it, and its total is their sum; when refused, it names exactly the defects
        /// without a rate.
        #[test]
        fn a_quote_is_the_sum_of_each_defects_rate_or_names_the_unpriced(
            rows in prop::collection::vec(any_row(), 0..24),
            defects in prop::collection::vec(defect(), 0..12),
        ) {
            let distinct: BTreeSet<DefectCode> = defects.iter().copied().collect();
            let unpriced: Vec<DefectCode> = distinct
                .iter()
                .copied()
                .filter(|d| rate(&[&rows], "PHN-MINI", "phone", *d).is_none())
                .collect();
            match quote(&[&rows], "PHN-MINI", "phone", &defects) {
                Ok(q) => {
                    prop_assert!(unpriced.is_empty());
                    prop_assert_eq!(q.lines.len(), distinct.len());
                    let mut sum = 0;
                    for l in &q.lines {
                        let r = rate(&[&rows], "PHN-MINI", "phone", l.defect);
                        prop_assert_eq!(r.map(|r| (r.parts_yen, r.labour_yen)),
                                        Some((l.parts_yen, l.labour_yen)));
                        sum += l.parts_yen + l.labour_yen;
                    }
                    prop_assert_eq!(q.total_yen, sum);
                }
                Err(missing) => {
                    prop_assert!(!missing.is_empty());
                    prop_assert_eq!(missing, unpriced);
                }
            }
        }
    }
}
