//! Disposition by recovered value: for a graded unit, what each way of disposing of it is
//! expected to bring back, net of handling and of moving it to a site that can do it, and the
//! best of them. The sites propose offline from cached rules; this decision is the final one.

use modori_shared::domain::{Capability, Disposition, Grade, Site, SiteId};
use modori_shared::geo::distance_km;
use serde::{Deserialize, Serialize};

/// Prices and costs of the value model, in yen or as shares of the list price. The defaults
/// are a plausible apparel-and-electronics operation; `[valuation]` in the coordinator's
/// config replaces them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ValuationConfig {
    /// Share of the list price a restocked unit sells for, by grade A..X.
    pub restock_share: [f64; 5],
    /// Share of the list price on the resale channel, by grade A..X.
    pub resale_share: [f64; 5],
    /// Share of the list price a refurbished unit resells for.
    pub refurbished_share: f64,
    /// Labour and parts of one refurbishment.
    pub refurbish_cost_yen: i64,
    /// Material value a recycler pays per unit.
    pub recycle_yen: i64,
    /// What disposal of one unit costs.
    pub dispose_cost_yen: i64,
    /// Share of the list price a vendor credits for a unit returned to it.
    pub vendor_credit_share: f64,
    /// Putting a unit back on the shelf.
    pub restock_handling_yen: i64,
    /// Photographing and listing a unit for resale.
    pub resale_handling_yen: i64,
    /// A transfer between sites: a fixed part and a part per kilometre.
    pub transfer_base_yen: i64,
    pub transfer_yen_per_km: f64,
}

impl Default for ValuationConfig {
    fn default() -> Self {
        Self {
            restock_share: [0.95, 0.0, 0.0, 0.0, 0.0],
            resale_share: [0.7, 0.55, 0.35, 0.15, 0.0],
            refurbished_share: 0.6,
            refurbish_cost_yen: 1500,
            recycle_yen: 50,
            dispose_cost_yen: 100,
            vendor_credit_share: 0.3,
            restock_handling_yen: 200,
            resale_handling_yen: 400,
            transfer_base_yen: 300,
            transfer_yen_per_km: 0.5,
        }
    }
}

/// What the model knows of one graded unit.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitFacts<'a> {
    pub price_yen: u64,
    pub grade: Grade,
    /// The site holding it.
    pub site: &'a SiteId,
}

/// One way of disposing of the unit and what it brings back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValuedOption {
    pub disposition: &'static str,
    /// Expected recovery net of costs, in yen (negative: it costs money).
    pub value_yen: i64,
    /// Where it would be done, when that is another site.
    pub at_site: Option<String>,
    pub why: String,
}

/// The decision: the best option and every option considered, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueDecision {
    pub disposition: Disposition,
    pub options: Vec<ValuedOption>,
    pub explanation: String,
}

/// The capability a disposition needs of the site doing it, if any.
fn needs(disposition: Disposition) -> Option<Capability> {
    match disposition {
        Disposition::Restock | Disposition::Dispose => None,
        Disposition::Resale => Some(Capability::Resale),
        Disposition::Refurbish => Some(Capability::Refurbish),
        Disposition::Recycle => Some(Capability::Recycle),
        Disposition::ReturnToVendor => Some(Capability::ReturnToVendor),
    }
}

/// What `n_units` units, of list prices summing to `price_yen`, recover by `disposition` at
/// grade index `g`, before the handling of a restock or a resale and before any transfer: the
/// value model. The centre's decision weighs it per unit (less handling and transfer), the
/// dashboard's recovered value sums it per disposition and grade.
pub fn recovered_yen(
    config: &ValuationConfig,
    disposition: Disposition,
    g: usize,
    price_yen: f64,
    n_units: i64,
) -> i64 {
    let share = |s: f64| (price_yen * s).round() as i64;
    match disposition {
        Disposition::Restock => share(config.restock_share[g]),
        Disposition::Resale => share(config.resale_share[g]),
        Disposition::Refurbish => {
            share(config.refurbished_share) - n_units.saturating_mul(config.refurbish_cost_yen)
        }
        Disposition::Recycle => n_units.saturating_mul(config.recycle_yen),
        Disposition::Dispose => -n_units.saturating_mul(config.dispose_cost_yen),
        Disposition::ReturnToVendor => share(config.vendor_credit_share),
    }
}

/// Chooses the disposition that recovers the most for `unit` among `sites`.
pub fn decide(config: &ValuationConfig, unit: &UnitFacts<'_>, sites: &[Site]) -> ValueDecision {
    let price = i64::try_from(unit.price_yen).unwrap_or(i64::MAX) as f64;
    let g = unit.grade.index();
    let value = |d: Disposition| recovered_yen(config, d, g, price, 1);
    let here = sites.iter().find(|s| &s.id == unit.site);
    let gross: [(Disposition, i64, String); 6] = [
        (
            Disposition::Restock,
            value(Disposition::Restock) - config.restock_handling_yen,
            format!(
                "sells at {:.0}% as grade {}",
                config.restock_share[g] * 100.0,
                unit.grade
            ),
        ),
        (
            Disposition::Resale,
            value(Disposition::Resale) - config.resale_handling_yen,
            format!(
                "resale at {:.0}% for grade {}",
                config.resale_share[g] * 100.0,
                unit.grade
            ),
        ),
        (
            Disposition::Refurbish,
            value(Disposition::Refurbish),
            format!(
                "refurbished resale at {:.0}% less {} yen of work",
                config.refurbished_share * 100.0,
                config.refurbish_cost_yen
            ),
        ),
        (
            Disposition::Recycle,
            value(Disposition::Recycle),
            "material value".to_owned(),
        ),
        (
            Disposition::Dispose,
            value(Disposition::Dispose),
            "disposal fee".to_owned(),
        ),
        (
            Disposition::ReturnToVendor,
            value(Disposition::ReturnToVendor),
            format!("vendor credit {:.0}%", config.vendor_credit_share * 100.0),
        ),
    ];
    let mut options: Vec<(Disposition, ValuedOption)> = gross
        .into_iter()
        .filter(|(d, _, _)| {
            // A unit not fit to sell as new is not restocked, whatever the shares say.
            *d != Disposition::Restock || config.restock_share[g] > 0.0
        })
        .filter_map(|(d, value, why)| {
            let (at_site, transfer) = match needs(d) {
                Some(cap) if here.is_some_and(|s| !s.capabilities.contains(&cap)) => {
                    let from = here?.location;
                    let nearest = sites
                        .iter()
                        .filter(|s| s.capabilities.contains(&cap))
                        .map(|s| (distance_km(from, s.location), s))
                        .min_by(|a, b| a.0.total_cmp(&b.0))?;
                    let cost = config.transfer_base_yen
                        + (nearest.0 * config.transfer_yen_per_km).round() as i64;
                    (Some((nearest.1.id.to_string(), nearest.0, cost)), cost)
                }
                _ => (None, 0),
            };
            let why = match &at_site {
                Some((site, km, cost)) => {
                    format!("{why}; at {site}, {km:.0} km away ({cost} yen to move)")
                }
                None => why,
            };
            Some((
                d,
                ValuedOption {
                    disposition: d.as_str(),
                    value_yen: value - transfer,
                    at_site: at_site.map(|(s, _, _)| s),
                    why,
                },
            ))
        })
        .collect();
    // Highest value first; on a tie, the order above (keeping stock local is preferred).
    options.sort_by_key(|o| std::cmp::Reverse(o.1.value_yen));
    let (disposition, best) = options.first().map(|(d, o)| (*d, o.clone())).unwrap_or((
        Disposition::Dispose,
        ValuedOption {
            disposition: "dispose",
            value_yen: -config.dispose_cost_yen,
            at_site: None,
            why: "no other option".into(),
        },
    ));
    let runner_up = options
        .get(1)
        .map(|(_, o)| format!("; next {} {} yen", o.disposition, o.value_yen))
        .unwrap_or_default();
    ValueDecision {
        disposition,
        explanation: format!(
            "{} recovers {} yen ({}){runner_up}",
            best.disposition, best.value_yen, best.why
        ),
        options: options.into_iter().map(|(_, o)| o).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modori_shared::domain::Coordinates;

    fn site(id: &str, lat: f64, lon: f64, capabilities: Vec<Capability>) -> Site {
        Site {
            id: SiteId::new(id).unwrap(),
            name: id.into(),
            location: Coordinates::new(lat, lon).unwrap(),
            capabilities,
            daily_capacity_units: 1000,
        }
    }

    fn sites() -> Vec<Site> {
        vec![
            site(
                "osaka",
                34.69,
                135.52,
                vec![
                    Capability::Refurbish,
                    Capability::Resale,
                    Capability::Recycle,
                ],
            ),
            site("hiroshima", 34.40, 132.46, vec![]),
            site(
                "sapporo",
                43.06,
                141.35,
                vec![Capability::Recycle, Capability::ReturnToVendor],
            ),
        ]
    }

    fn decide_for(price_yen: u64, grade: Grade, at: &str) -> ValueDecision {
        let at = SiteId::new(at).unwrap();
        let unit = UnitFacts {
            price_yen,
            grade,
            site: &at,
        };
        decide(&ValuationConfig::default(), &unit, &sites())
    }

    #[test]
    fn like_new_goes_back_to_stock() {
        let d = decide_for(5000, Grade::A, "osaka");
        assert_eq!(d.disposition, Disposition::Restock, "{}", d.explanation);
        assert_eq!(d.options[0].value_yen, 4750 - 200);
    }

    #[test]
    fn worn_goes_to_resale_and_damaged_valuables_to_refurbishment() {
        let worn = decide_for(5000, Grade::B, "osaka");
        assert_eq!(
            worn.disposition,
            Disposition::Resale,
            "{}",
            worn.explanation
        );
        // A damaged 30,000-yen unit is worth repairing: 18,000 - 1,500 beats resale at 15%.
        let damaged = decide_for(30_000, Grade::D, "osaka");
        assert_eq!(
            damaged.disposition,
            Disposition::Refurbish,
            "{}",
            damaged.explanation
        );
        // A ruined 1,000-yen T-shirt is not. At Sapporo the vendor's 30% credit (300 yen) is
        // the best; at Osaka the vendor is 1,000 km away, so the recycler's 50 yen wins.
        let at_sapporo = decide_for(1000, Grade::X, "sapporo");
        assert_eq!(
            at_sapporo.disposition,
            Disposition::ReturnToVendor,
            "{}",
            at_sapporo.explanation
        );
        let at_osaka = decide_for(1000, Grade::X, "osaka");
        assert_eq!(
            at_osaka.disposition,
            Disposition::Recycle,
            "{}",
            at_osaka.explanation
        );
    }

    #[test]
    fn moving_to_a_capable_site_costs_and_is_explained() {
        // Hiroshima cannot refurbish: Osaka can, about 280 km away.
        let d = decide_for(30_000, Grade::D, "hiroshima");
        let refurbish = d
            .options
            .iter()
            .find(|o| o.disposition == "refurbish")
            .unwrap();
        assert_eq!(refurbish.at_site.as_deref(), Some("osaka"));
        let moved = 300 + (280.0_f64 * 0.5).round() as i64;
        assert!(
            (18_000 - 1500 - refurbish.value_yen - moved).abs() < 20,
            "{refurbish:?}"
        );
        assert!(d.explanation.contains("osaka"), "{}", d.explanation);
        // With no capable site at all, the option is not offered.
        let alone = vec![site("hiroshima", 34.40, 132.46, vec![])];
        let here = SiteId::new("hiroshima").unwrap();
        let unit = UnitFacts {
            price_yen: 30_000,
            grade: Grade::D,
            site: &here,
        };
        let d = decide(&ValuationConfig::default(), &unit, &alone);
        assert!(d.options.iter().all(|o| o.at_site.is_none()));
        assert_eq!(d.disposition, Disposition::Dispose, "{}", d.explanation);
    }
}
