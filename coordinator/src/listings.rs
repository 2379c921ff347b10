//! Resale listings: a unit put away for resale is listed on every configured channel at a
//! price by its grade, marked down as it ages by a configured schedule, and delisted when it
//! sells on one channel or leaves its site.
//!
//! Here the channels, the markdown schedule and the asking price, pure; the listings
//! themselves are stored by `store/listings.rs`.

use modori_shared::domain::Grade;
use serde::{Deserialize, Serialize};

/// A secondary channel and what it pays by grade.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub name: String,
    /// Share of the list price asked for grades A..X (0: not listed there).
    pub price_share: [f64; 5],
}

/// A markdown step: from `after_days` on the listing, `percent_off` the grade price.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Markdown {
    pub after_days: u32,
    pub percent_off: u32,
}

/// `[resale]` in the coordinator's config.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResaleConfig {
    pub channels: Vec<Channel>,
    /// Steps in any order; the deepest one reached applies.
    pub markdown: Vec<Markdown>,
}

impl Default for ResaleConfig {
    fn default() -> Self {
        Self {
            channels: vec![
                Channel {
                    name: "outlet".into(),
                    price_share: [0.8, 0.6, 0.4, 0.2, 0.0],
                },
                Channel {
                    name: "marketplace".into(),
                    price_share: [0.75, 0.55, 0.35, 0.15, 0.0],
                },
            ],
            markdown: vec![
                Markdown {
                    after_days: 14,
                    percent_off: 10,
                },
                Markdown {
                    after_days: 30,
                    percent_off: 25,
                },
                Markdown {
                    after_days: 60,
                    percent_off: 50,
                },
            ],
        }
    }
}

/// The asking price on `channel` for a unit of list price `price_yen` graded `grade`, listed
/// `age_days` ago; `None` when the channel does not take the grade.
pub fn asking_price(
    config: &ResaleConfig,
    channel: &Channel,
    price_yen: u64,
    grade: Grade,
    age_days: u32,
) -> Option<u64> {
    let share = channel.price_share[grade.index()];
    if share <= 0.0 {
        return None;
    }
    let off = config
        .markdown
        .iter()
        .filter(|m| age_days >= m.after_days)
        .map(|m| m.percent_off.min(100))
        .max()
        .unwrap_or(0);
    let base = price_yen as f64 * share;
    Some((base * f64::from(100 - off) / 100.0).round() as u64)
}
