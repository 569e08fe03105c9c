//! A rider as the rules see it: status, position, and the one offer or order it may hold.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LatLng, OrderId, RiderId};

/// A rider's state at one moment (the dispatch board's answer about a rider).
#[derive(Clone, Debug, PartialEq)]
pub struct Rider {
    pub id: RiderId,
    pub name: String,
    pub status: RiderStatus,
    pub location: Option<LatLng>,
    /// The open offer: which order, until when.
    pub offer: Option<(OrderId, DateTime<Utc>)>,
    /// The order being delivered.
    pub order_id: Option<OrderId>,
}

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
