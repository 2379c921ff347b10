//! Restock rebalancing: move sellable (grade A, restocked) units to the sites where their SKU
//! sells, when what the move gains beats what it costs.
//!
//! A unit beyond its site's demand for the horizon does not sell there in time; at a site short
//! of that SKU it sells at full price. The gain of a move is the price times the share a unit
//! left unsold loses (markdowns, storage); the cost is the transfer. Moves are chosen greedily,
//! best net gain first, each surplus unit and each missing unit used once.

use std::collections::BTreeMap;

use modori_shared::domain::{Lpn, Site, SiteId, Sku};
use modori_shared::geo::distance_km;
use serde::{Deserialize, Serialize};

/// `[rebalance]` in the coordinator's config.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RebalanceConfig {
    /// Share of its price a unit loses when it does not sell within the horizon.
    pub unsold_loss_share: f64,
    /// A transfer: a fixed part and a part per kilometre, in yen.
    pub transfer_base_yen: i64,
    pub transfer_yen_per_km: f64,
    /// Moves planned per run at most.
    pub moves_per_run_max: usize,
}

impl Default for RebalanceConfig {
    fn default() -> Self {
        Self {
            unsold_loss_share: 0.4,
            transfer_base_yen: 300,
            transfer_yen_per_km: 0.5,
            moves_per_run_max: 1000,
        }
    }
}

/// Sellable units of one SKU at one site.
#[derive(Clone, Debug, PartialEq)]
pub struct Stock {
    pub site: SiteId,
    pub sku: Sku,
    pub price_yen: u64,
    pub lpns: Vec<Lpn>,
}

/// A move worth making.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Move {
    pub lpn: String,
    pub sku: String,
    pub from: String,
    pub to: String,
    pub gain_yen: i64,
    pub cost_yen: i64,
    pub why: String,
}

/// Plans the moves: `demand` is units of a SKU each site sells within the horizon.
pub fn plan(
    config: &RebalanceConfig,
    sites: &[Site],
    stock: &[Stock],
    demand: &BTreeMap<(SiteId, Sku), u32>,
) -> Vec<Move> {
    let location = |id: &SiteId| sites.iter().find(|s| &s.id == id).map(|s| s.location);
    let held = |site: &SiteId, sku: &Sku| -> usize {
        stock
            .iter()
            .filter(|s| &s.site == site && &s.sku == sku)
            .map(|s| s.lpns.len())
            .sum()
    };
    // Units a site is short of, per SKU.
    let mut short: BTreeMap<(SiteId, Sku), usize> = demand
        .iter()
        .filter_map(|((site, sku), &want)| {
            let missing = (want as usize).saturating_sub(held(site, sku));
            (missing > 0).then(|| ((site.clone(), sku.clone()), missing))
        })
        .collect();
    let mut candidates: Vec<(i64, Move)> = Vec::new();
    for s in stock {
        let want_here = demand
            .get(&(s.site.clone(), s.sku.clone()))
            .copied()
            .unwrap_or(0) as usize;
        // The units beyond what sells here, last received first to leave.
        let surplus = s.lpns.len().saturating_sub(want_here);
        if surplus == 0 {
            continue;
        }
        let Some(from) = location(&s.site) else {
            continue;
        };
        let gain = (s.price_yen as f64 * config.unsold_loss_share).round() as i64;
        for ((to_site, sku), _) in short
            .iter()
            .filter(|((t, k), _)| k == &s.sku && t != &s.site)
        {
            let Some(to) = location(to_site) else {
                continue;
            };
            let km = distance_km(from, to);
            let cost = config.transfer_base_yen + (km * config.transfer_yen_per_km).round() as i64;
            if gain <= cost {
                continue;
            }
            for lpn in s.lpns.iter().rev().take(surplus) {
                candidates.push((
                    gain - cost,
                    Move {
                        lpn: lpn.to_string(),
                        sku: sku.to_string(),
                        from: s.site.to_string(),
                        to: to_site.to_string(),
                        gain_yen: gain,
                        cost_yen: cost,
                        why: format!(
                            "{} has {} beyond its demand of {want_here}; {to_site} is short; \
                             {gain} yen saved from markdown vs {cost} yen to move {km:.0} km",
                            s.site, surplus,
                        ),
                    },
                ));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.lpn.cmp(&b.1.lpn)));
    let mut moved = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (_, m) in candidates {
        if out.len() >= config.moves_per_run_max || moved.contains(&m.lpn) {
            continue;
        }
        let key = (SiteId::new(m.to.clone()).ok(), Sku::new(m.sku.clone()).ok());
        let (Some(to), Some(sku)) = key else { continue };
        let Some(missing) = short.get_mut(&(to, sku)) else {
            continue;
        };
        if *missing == 0 {
            continue;
        }
        *missing -= 1;
        moved.insert(m.lpn.clone());
        out.push(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use modori_shared::domain::Coordinates;

    fn site(id: &str, lat: f64, lon: f64) -> Site {
        Site {
            id: SiteId::new(id).unwrap(),
            name: id.into(),
            location: Coordinates::new(lat, lon).unwrap(),
            capabilities: vec![],
            daily_capacity_units: 1000,
        }
    }

    fn id(s: &str) -> SiteId {
        SiteId::new(s).unwrap()
    }

    fn stock(site: &str, sku: &str, price: u64, n: usize) -> Stock {
        Stock {
            site: id(site),
            sku: Sku::new(sku).unwrap(),
            price_yen: price,
            lpns: (0..n)
                .map(|i| Lpn::new(format!("LPN-{}-{sku}-{i}", site.to_uppercase())).unwrap())
                .collect(),
        }
    }

    fn sites() -> Vec<Site> {
        vec![
            site("osaka", 34.69, 135.52),
            site("fukuoka", 33.59, 130.40),
            site("sapporo", 43.06, 141.35),
        ]
    }

    #[test]
    fn surplus_moves_to_where_it_sells_when_it_pays() {
        let mut demand = BTreeMap::new();
        demand.insert((id("osaka"), Sku::new("COAT").unwrap()), 1);
        demand.insert((id("fukuoka"), Sku::new("COAT").unwrap()), 2);
        let moves = plan(
            &RebalanceConfig::default(),
            &sites(),
            &[stock("osaka", "COAT", 20_000, 4)],
            &demand,
        );
        // Osaka keeps one for its own demand; Fukuoka is short of two.
        assert_eq!(moves.len(), 2, "{moves:?}");
        assert!(moves.iter().all(|m| m.from == "osaka" && m.to == "fukuoka"));
        assert_eq!(moves[0].gain_yen, 8000);
        assert!(
            moves[0].cost_yen > 300 && moves[0].cost_yen < 600,
            "{moves:?}"
        );
        assert!(moves[0].why.contains("short"), "{}", moves[0].why);
    }

    #[test]
    fn a_cheap_unit_is_not_worth_the_trip_and_balanced_stock_stays() {
        let mut demand = BTreeMap::new();
        demand.insert((id("sapporo"), Sku::new("SOCKS").unwrap()), 5);
        let cheap = plan(
            &RebalanceConfig::default(),
            &sites(),
            &[stock("fukuoka", "SOCKS", 800, 10)],
            &demand,
        );
        assert!(cheap.is_empty(), "{cheap:?}");
        demand.insert((id("osaka"), Sku::new("COAT").unwrap()), 3);
        let balanced = plan(
            &RebalanceConfig::default(),
            &sites(),
            &[stock("osaka", "COAT", 20_000, 3)],
            &demand,
        );
        assert!(balanced.is_empty(), "{balanced:?}");
    }

    #[test]
    fn the_nearer_shortage_is_filled_first_and_no_unit_moves_twice() {
        let mut demand = BTreeMap::new();
        demand.insert((id("fukuoka"), Sku::new("COAT").unwrap()), 1);
        demand.insert((id("sapporo"), Sku::new("COAT").unwrap()), 1);
        let moves = plan(
            &RebalanceConfig::default(),
            &sites(),
            &[stock("osaka", "COAT", 20_000, 1)],
            &demand,
        );
        assert_eq!(moves.len(), 1, "{moves:?}");
        assert_eq!(moves[0].to, "fukuoka", "cheaper to reach than Sapporo");
    }
}
