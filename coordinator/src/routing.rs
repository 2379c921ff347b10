//! Which site a return goes to, and why.
//!
//! Every site able to take the return is a candidate; its score is its great-circle distance
//! from the origin plus a load penalty that grows with the share of today's capacity already
//! routed to it, so a nearly full site yields to a slightly farther one and a site without room
//! for the return's units takes nothing more (it spills to the next best). Capacity and load are
//! counted in units, as `daily_capacity_units` says: a 1,000-unit return fills a site as much
//! as a thousand single-unit ones. Products that must be tested (electronics) go
//! only to sites that can test them. Every candidate, with its score or the reason it was left
//! out, is kept with the decision for the API and the dashboard.

use modori_shared::domain::{Capability, Coordinates, Site, SiteId};
use modori_shared::geo::distance_km;
use serde::Serialize;

/// What a full site's load adds to its distance, in kilometres. At 300 km a site at 90 % of its
/// capacity loses to an idle one up to 270 km farther: within Kanto or Kansai it spills, while
/// a return is never sent across the country because its nearest site is busy.
pub const FULL_LOAD_PENALTY_KM: f64 = 300.0;

/// What the return needs of a site.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// A product that must be tested (electronics) is in it.
    pub testing: bool,
    /// Units it carries: a site takes it only with room for all of them today.
    pub n_units: u32,
}

/// One site as the decision saw it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Candidate {
    pub site: String,
    pub distance_km: f64,
    /// Units routed to it today.
    pub routed_today: u32,
    /// Units it can receive a day.
    pub daily_capacity: u32,
    /// Distance plus load penalty; `None` when the site was left out.
    pub score: Option<f64>,
    /// Why the site could not take the return.
    pub excluded: Option<String>,
    /// The same as a code, for pages to say in their language: `no_testing` (it cannot test
    /// electronics) or `full` (`routed_today` of `daily_capacity` units routed already).
    pub excluded_code: Option<String>,
}

/// [`Candidate::excluded_code`]: the site cannot test the electronics in the return.
pub const EXCLUDED_NO_TESTING: &str = "no_testing";
/// [`Candidate::excluded_code`]: the site has no room today for the return's units.
pub const EXCLUDED_FULL: &str = "full";

/// A routing decision and why it was made, so ops can read the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Route<'a> {
    pub site: &'a Site,
    pub distance_km: f64,
    /// Every site, best first; left-out sites last.
    pub candidates: Vec<Candidate>,
    pub explanation: String,
}

/// The best site for a return from `origin` with `needs`, given how many units were routed to
/// each site today (`routed_today`, in units). `None` when no site can take it (every candidate says why).
pub fn route<'a>(
    sites: &'a [Site],
    origin: Coordinates,
    needs: Needs,
    routed_today: impl Fn(&SiteId) -> u32,
) -> (Option<Route<'a>>, Vec<Candidate>) {
    let mut candidates: Vec<(Candidate, &Site)> = sites
        .iter()
        .map(|s| {
            let load = routed_today(&s.id);
            let distance = distance_km(origin, s.location);
            let (excluded, excluded_code) =
                if needs.testing && !s.capabilities.contains(&Capability::Testing) {
                    (
                        Some("cannot test electronics".to_owned()),
                        Some(EXCLUDED_NO_TESTING.to_owned()),
                    )
                } else if load.saturating_add(needs.n_units.max(1)) > s.daily_capacity_units {
                    (
                        Some(format!(
                            "full today ({load}/{} units; this return has {})",
                            s.daily_capacity_units,
                            needs.n_units.max(1)
                        )),
                        Some(EXCLUDED_FULL.to_owned()),
                    )
                } else {
                    (None, None)
                };
            let utilisation = f64::from(load) / f64::from(s.daily_capacity_units.max(1));
            let score = excluded
                .is_none()
                .then_some(distance + FULL_LOAD_PENALTY_KM * utilisation);
            let candidate = Candidate {
                site: s.id.to_string(),
                distance_km: distance,
                routed_today: load,
                daily_capacity: s.daily_capacity_units,
                score,
                excluded,
                excluded_code,
            };
            (candidate, s)
        })
        .collect();
    // Best score first; ties to the larger capacity; left-out sites last, nearest first.
    candidates.sort_by(|(a, sa), (b, sb)| match (a.score, b.score) {
        (Some(x), Some(y)) => x
            .total_cmp(&y)
            .then(sb.daily_capacity_units.cmp(&sa.daily_capacity_units)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.distance_km.total_cmp(&b.distance_km),
    });
    let chosen = candidates
        .first()
        .filter(|(c, _)| c.score.is_some())
        .map(|(c, s)| (c.clone(), *s));
    let list: Vec<Candidate> = candidates.into_iter().map(|(c, _)| c).collect();
    let Some((best, site)) = chosen else {
        return (None, list);
    };
    let explanation = explain(&best, &list);
    (
        Some(Route {
            site,
            distance_km: best.distance_km,
            candidates: list.clone(),
            explanation,
        }),
        list,
    )
}

fn explain(best: &Candidate, all: &[Candidate]) -> String {
    let mut text = format!(
        "{} at {:.0} km, {}/{} units routed today (score {:.0})",
        best.site,
        best.distance_km,
        best.routed_today,
        best.daily_capacity,
        best.score.unwrap_or_default()
    );
    if let Some(next) = all.get(1).filter(|c| c.score.is_some()) {
        text.push_str(&format!(
            "; next best {} at {:.0} km (score {:.0})",
            next.site,
            next.distance_km,
            next.score.unwrap_or_default()
        ));
    }
    // A nearer site left out is part of the why.
    for c in all
        .iter()
        .filter(|c| c.excluded.is_some() && c.distance_km < best.distance_km)
    {
        text.push_str(&format!(
            "; {} at {:.0} km {}",
            c.site,
            c.distance_km,
            c.excluded.as_deref().unwrap_or_default()
        ));
    }
    text
}

/// The nearest site to `origin`, ignoring load and needs. Ties go to the larger capacity.
pub fn nearest_site(sites: &[Site], origin: Coordinates) -> Option<Route<'_>> {
    route(sites, origin, Needs::default(), |_| 0).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Fleet;

    fn fleet() -> Fleet {
        let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        Fleet::load(&configs.join("sites.toml"), &configs.join("stores.toml")).unwrap()
    }

    fn store(fleet: &Fleet, id: &str) -> Coordinates {
        fleet
            .stores
            .iter()
            .find(|s| s.id.as_str() == id)
            .unwrap_or_else(|| panic!("store {id}"))
            .location
    }

    fn routed(site: &str, n: u32) -> impl Fn(&SiteId) -> u32 + '_ {
        move |s: &SiteId| if s.as_str() == site { n } else { 0 }
    }

    #[test]
    fn a_fukuoka_store_routes_to_fukuoka_and_spills_when_it_is_full() {
        let fleet = fleet();
        let tenjin = store(&fleet, "st-fukuoka-tenjin");
        let (route, _) = route(&fleet.sites, tenjin, Needs::default(), |_| 0);
        let route = route.unwrap();
        assert_eq!(route.site.id.as_str(), "fukuoka", "{}", route.explanation);
        assert!(
            route.explanation.contains("next best"),
            "{}",
            route.explanation
        );

        let (spilled, candidates) = route_full(&fleet, tenjin);
        let spilled = spilled.expect("another site");
        assert_eq!(spilled, "hiroshima");
        let fukuoka = candidates
            .iter()
            .find(|c| c.site.as_str() == "fukuoka")
            .unwrap();
        assert_eq!(fukuoka.score, None);
        assert!(fukuoka.excluded.as_deref().unwrap().contains("full"));
        assert_eq!(fukuoka.excluded_code.as_deref(), Some(EXCLUDED_FULL));
    }

    fn route_full(fleet: &Fleet, origin: Coordinates) -> (Option<String>, Vec<Candidate>) {
        let (r, candidates) = route(
            &fleet.sites,
            origin,
            Needs::default(),
            routed("fukuoka", 4000),
        );
        (r.map(|r| r.site.id.to_string()), candidates)
    }

    #[test]
    fn electronics_skip_sites_that_cannot_test() {
        let fleet = fleet();
        let hakata = Coordinates::new(33.59, 130.42).unwrap();
        let (route, _) = route(
            &fleet.sites,
            hakata,
            Needs {
                testing: true,
                ..Needs::default()
            },
            |_| 0,
        );
        let route = route.unwrap();
        assert!(
            route.site.capabilities.contains(&Capability::Testing),
            "{}",
            route.explanation
        );
        assert_eq!(route.site.id.as_str(), "osaka", "{}", route.explanation);
        assert!(
            route.explanation.contains("fukuoka") && route.explanation.contains("cannot test"),
            "{}",
            route.explanation
        );
    }

    #[test]
    fn a_busy_site_yields_to_a_near_idle_one_but_not_to_a_far_one() {
        let fleet = fleet();
        // Shibuya: Yokohama, Saitama and Chiba are all within 40 km.
        let shibuya = store(&fleet, "st-shibuya");
        let (idle, _) = route(&fleet.sites, shibuya, Needs::default(), |_| 0);
        let first = idle.unwrap().site.id.clone();
        let (busy, _) = route(&fleet.sites, shibuya, Needs::default(), |s: &SiteId| {
            if *s == first {
                4500
            } else {
                0
            }
        });
        let busy = busy.unwrap();
        assert_ne!(busy.site.id, first, "{}", busy.explanation);
        assert!(busy.distance_km < 100.0, "{}", busy.explanation);
        // Sapporo, nearly full, still takes a Sapporo return: the next site is 500 km away.
        let sapporo = Coordinates::new(43.06, 141.35).unwrap();
        let (near, _) = route(
            &fleet.sites,
            sapporo,
            Needs::default(),
            routed("sapporo", 2400),
        );
        assert_eq!(near.unwrap().site.id.as_str(), "sapporo");
    }

    #[test]
    fn capacity_counts_units_not_returns() {
        let fleet = fleet();
        let sapporo = Coordinates::new(43.06, 141.35).unwrap();
        let needs = |n_units| Needs {
            n_units,
            ..Needs::default()
        };
        // Sapporo takes 2,500 units a day: with 2,400 routed, 100 more fit and 101 spill.
        let (fits, _) = route(&fleet.sites, sapporo, needs(100), routed("sapporo", 2400));
        assert_eq!(fits.unwrap().site.id.as_str(), "sapporo");
        let (spills, candidates) =
            route(&fleet.sites, sapporo, needs(101), routed("sapporo", 2400));
        assert_ne!(spills.unwrap().site.id.as_str(), "sapporo");
        let excluded = candidates
            .iter()
            .find(|c| c.site == "sapporo")
            .and_then(|c| c.excluded.clone())
            .unwrap();
        assert!(excluded.contains("101"), "{excluded}");
        // A return larger than any site's whole day goes nowhere.
        let (none, _) = route(&fleet.sites, sapporo, needs(u32::MAX), |_| 0);
        assert!(none.is_none());
    }

    #[test]
    fn nothing_when_every_site_is_left_out() {
        let fleet = fleet();
        let here = Coordinates::new(35.0, 135.0).unwrap();
        let (none, candidates) = route(&fleet.sites, here, Needs::default(), |_| u32::MAX);
        assert!(none.is_none());
        assert_eq!(candidates.len(), fleet.sites.len());
        assert!(candidates
            .iter()
            .all(|c| c.excluded.is_some() && c.excluded_code.is_some()));
        assert!(nearest_site(&[], here).is_none());
    }
}
