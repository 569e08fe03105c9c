//! WGS84 points, parsed once at the edge so the rest of the engine never sees NaN or 91°.

use serde::{Deserialize, Serialize};

/// A valid WGS84 coordinate: finite, |lat| ≤ 90, |lng| ≤ 180.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "RawLatLng")]
pub struct LatLng {
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub lng: f64,
}

#[derive(Deserialize)]
struct RawLatLng {
    lat: f64,
    lng: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LatLngError {
    #[error("lat must be a finite number between -90 and 90")]
    Latitude,
    #[error("lng must be a finite number between -180 and 180")]
    Longitude,
}

impl LatLng {
    pub fn parse(lat: f64, lng: f64) -> Result<Self, LatLngError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(LatLngError::Latitude);
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(LatLngError::Longitude);
        }
        Ok(Self { lat, lng })
    }
}

impl TryFrom<RawLatLng> for LatLng {
    type Error = LatLngError;
    fn try_from(raw: RawLatLng) -> Result<Self, Self::Error> {
        Self::parse(raw.lat, raw.lng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_and_nan_coordinates_are_refused() {
        assert!(LatLng::parse(12.9, 77.6).is_ok());
        assert_eq!(LatLng::parse(90.1, 0.0), Err(LatLngError::Latitude));
        assert_eq!(LatLng::parse(f64::NAN, 0.0), Err(LatLngError::Latitude));
        assert_eq!(LatLng::parse(0.0, -180.5), Err(LatLngError::Longitude));
        assert_eq!(
            LatLng::parse(0.0, f64::INFINITY),
            Err(LatLngError::Longitude)
        );
    }
}
