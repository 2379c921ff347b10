//! The condition a store saw at its counter (BORIS), compared with the site's grading: a
//! mismatch counts against the store's checks.

use modori_shared::domain::Grade;
use serde::{Deserialize, Serialize};

use super::sql::Sql;
use super::StoreError;

/// What a store's staff see at the counter, by command card: enough to compare with the
/// site's grading later.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreCondition {
    pub tags_on: bool,
    pub opened: bool,
    pub visibly_used: bool,
    pub damaged: bool,
    /// Where the counter's photo is kept (the store system's reference), if one was taken.
    #[serde(default)]
    pub photo_ref: Option<String>,
}

/// Longest photo reference accepted, in bytes.
pub const PHOTO_REF_BYTES_MAX: usize = 200;

impl StoreCondition {
    /// The best grade the store's check allows: what the site's grade should not fall below.
    pub fn implied_grade(&self) -> Grade {
        if self.damaged {
            Grade::D
        } else if self.visibly_used {
            Grade::C
        } else if self.opened || !self.tags_on {
            Grade::B
        } else {
            Grade::A
        }
    }
}

/// Whether the site's grade is worse than what the store's check implied.
pub fn mismatch(condition: &StoreCondition, site_grade: Grade) -> bool {
    site_grade.index() > condition.implied_grade().index()
}

/// Per store: returns checked at the counter, units graded since, and those the site found
/// worse than the store said.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct StoreCheck {
    pub store: String,
    pub returns_checked: u64,
    pub units_graded: u64,
    pub mismatches: u64,
}

pub fn store_checks(conn: &mut dyn Sql) -> Result<Vec<StoreCheck>, StoreError> {
    let rows = conn.map_rows(
        "SELECT r.origin_store, r.rma, r.store_condition, u.grade
         FROM returns r LEFT JOIN units u ON u.rma = r.rma AND u.grade IS NOT NULL
         WHERE r.origin_store IS NOT NULL AND r.store_condition IS NOT NULL
         ORDER BY r.origin_store, r.rma",
        &[],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<Option<String>>(3)?,
            ))
        },
    )?;
    let mut out: Vec<StoreCheck> = Vec::new();
    let mut last_rma = String::new();
    for (store, rma, condition, grade) in rows {
        if out.last().is_none_or(|s| s.store != store) {
            out.push(StoreCheck {
                store: store.clone(),
                returns_checked: 0,
                units_graded: 0,
                mismatches: 0,
            });
            last_rma.clear();
        }
        let Some(entry) = out.last_mut() else {
            continue;
        };
        if rma != last_rma {
            entry.returns_checked += 1;
            last_rma = rma;
        }
        let Some(grade) = grade else { continue };
        let (Ok(condition), Ok(grade)) = (
            serde_json::from_str::<StoreCondition>(&condition),
            Grade::parse(&grade),
        ) else {
            continue;
        };
        entry.units_graded += 1;
        if mismatch(&condition, grade) {
            entry.mismatches += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_check_sets_the_grade_the_site_should_not_fall_below() {
        let new = StoreCondition {
            tags_on: true,
            ..StoreCondition::default()
        };
        assert_eq!(new.implied_grade(), Grade::A);
        assert!(!mismatch(&new, Grade::A));
        assert!(mismatch(&new, Grade::B));
        let used = StoreCondition {
            visibly_used: true,
            opened: true,
            ..StoreCondition::default()
        };
        assert_eq!(used.implied_grade(), Grade::C);
        assert!(!mismatch(&used, Grade::C));
        assert!(mismatch(&used, Grade::X));
        let damaged = StoreCondition {
            damaged: true,
            ..StoreCondition::default()
        };
        assert!(!mismatch(&damaged, Grade::D));
    }
}
