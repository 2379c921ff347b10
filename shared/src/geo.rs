//! Distances on the globe, for routing a return to the nearest site.

use crate::domain::Coordinates;

const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance in kilometres (haversine). Road distance in Japan is longer, but the
/// ranking of sites by it is what routing needs, and it needs no map data.
pub fn distance_km(a: Coordinates, b: Coordinates) -> f64 {
    let (lat1, lat2) = (a.lat().to_radians(), b.lat().to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon() - a.lon()).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokyo_to_osaka_is_about_400_km() {
        let tokyo = Coordinates::new(35.6812, 139.7671).unwrap();
        let osaka = Coordinates::new(34.7025, 135.4959).unwrap();
        let d = distance_km(tokyo, osaka);
        assert!((395.0..410.0).contains(&d), "{d}");
        assert_eq!(distance_km(tokyo, tokyo), 0.0);
    }
}
