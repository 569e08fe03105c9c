//! Great-circle distance: the one definition of "within 5 km". A rule, so it lives in the
//! domain; the rider index (`geo`) converts its radii with the same Earth radius.

use geo::{Distance, Haversine, Point};

use super::LatLng;

/// The mean Earth radius `geo`'s haversine uses; the index converts radii with the same value.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Haversine distance in metres.
pub fn distance_m(a: LatLng, b: LatLng) -> f64 {
    Haversine.distance(Point::new(a.lng, a.lat), Point::new(b.lng, b.lat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_degree_of_latitude_is_about_111_km() {
        let a = LatLng::parse(0.0, 0.0).unwrap();
        let b = LatLng::parse(1.0, 0.0).unwrap();
        assert!((distance_m(a, b) - 111_195.0).abs() < 10.0);
    }
}
