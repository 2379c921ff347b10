//! Which site a return goes to.

use modori_shared::domain::{Coordinates, Site};
use modori_shared::geo::distance_km;

/// A routing decision and why it was made, so ops can read the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Route<'a> {
    pub site: &'a Site,
    pub distance_km: f64,
    pub explanation: String,
}

/// The nearest site to `origin` (great-circle). Ties go to the larger daily capacity.
pub fn nearest_site(sites: &[Site], origin: Coordinates) -> Option<Route<'_>> {
    let mut ranked: Vec<(f64, &Site)> = sites
        .iter()
        .map(|s| (distance_km(origin, s.location), s))
        .collect();
    ranked.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(b.1.daily_capacity_units.cmp(&a.1.daily_capacity_units))
    });
    let (distance_km, site) = *ranked.first()?;
    let runner_up = ranked
        .get(1)
        .map(|(d, s)| format!("; next nearest {} at {d:.0} km", s.id))
        .unwrap_or_default();
    Some(Route {
        site,
        distance_km,
        explanation: format!("nearest site {} at {distance_km:.0} km{runner_up}", site.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use modori_shared::domain::SiteId;

    fn site(id: &str, lat: f64, lon: f64) -> Site {
        Site {
            id: SiteId::new(id).unwrap(),
            name: id.into(),
            location: Coordinates::new(lat, lon).unwrap(),
            capabilities: vec![],
            daily_capacity_units: 100,
        }
    }

    #[test]
    fn picks_the_nearest_and_explains() {
        let sites = vec![
            site("sapporo", 43.06, 141.35),
            site("fukuoka", 33.59, 130.40),
        ];
        let hakata_store = Coordinates::new(33.59, 130.42).unwrap();
        let route = nearest_site(&sites, hakata_store).unwrap();
        assert_eq!(route.site.id.as_str(), "fukuoka");
        assert!(
            route.explanation.contains("next nearest sapporo"),
            "{}",
            route.explanation
        );
        assert!(nearest_site(&[], hakata_store).is_none());
    }
}
