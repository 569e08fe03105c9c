//! What the outside world sees of a rider.

use serde::{Deserialize, Serialize};

/// `busy` is never set by the rider: it means "delivering" and ends with the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiderStatus {
    Offline,
    Available,
    Busy,
}

impl RiderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RiderStatus::Offline => "offline",
            RiderStatus::Available => "available",
            RiderStatus::Busy => "busy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "offline" => Some(RiderStatus::Offline),
            "available" => Some(RiderStatus::Available),
            "busy" => Some(RiderStatus::Busy),
            _ => None,
        }
    }
}
