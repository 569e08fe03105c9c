//! What the board holds per rider and per order looking for a rider.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::domain::{CustomerId, Delivery, LatLng, OrderId, RiderId, RiderStatus};
use crate::wire::OfferRestaurant;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Offer {
    pub order_id: OrderId,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Assignment {
    pub order_id: OrderId,
    /// Set at pickup: from then on the customer sees this rider's position.
    pub customer: Option<CustomerId>,
}

#[derive(Clone, Debug)]
pub(super) struct Rider {
    pub name: String,
    pub status: RiderStatus,
    pub location: Option<LatLng>,
    pub offer: Option<Offer>,
    pub order: Option<Assignment>,
    pub rev: i64,
    /// When this rider's snapshot was last written (the position write schedule).
    pub saved_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum JobState {
    /// Nobody in range that has not been tried: wait for riders to come online or closer.
    Waiting,
    Offered(RiderId),
    /// The rider accepted; the order actor is recording the assignment.
    Assigning(RiderId),
    /// Past the deadline: the order is being ended `no_rider_found` (retried if that fails).
    GivingUp {
        since: DateTime<Utc>,
    },
}

/// An order looking for a rider.
#[derive(Clone, Debug)]
pub(super) struct Job {
    /// Arrival order: waiting jobs are offered oldest first.
    pub seq: u64,
    pub restaurant: OfferRestaurant,
    pub delivery: Delivery,
    /// Riders asked in this round.
    pub tried: HashSet<RiderId>,
    /// Offers made in every round.
    pub offers: u32,
    /// When the current round's cool-down ends (set once every rider in range was asked).
    pub round_ends: Option<DateTime<Utc>>,
    /// The offer out now, as recorded for the dispatch explanation.
    pub pending: Option<crate::persistence::AttemptRecord>,
    pub deadline: DateTime<Utc>,
    pub state: JobState,
}

/// Counts for `/metrics` and the ops view.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct DispatchStats {
    pub riders: usize,
    pub available: usize,
    pub waiting_orders: usize,
    pub dispatching_orders: usize,
}
