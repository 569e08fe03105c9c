//! What the board shows without changing anything: a rider, every rider, an open offer,
//! counts.

use chrono::{DateTime, Utc};

use super::board::Board;
use super::state::{DispatchStats, JobState};
use crate::domain::{self, LatLng, OrderId, RiderId};
use crate::wire::ServerMessage;

impl Board {
    /// Where the rider is and the order it carries, if any.
    pub fn whereabouts(&self, id: RiderId) -> Option<(Option<LatLng>, Option<OrderId>)> {
        let r = self.riders.get(&id)?;
        Some((r.location, r.order.map(|a| a.order_id)))
    }

    /// Every rider, for the ops view.
    pub fn all_riders(&self) -> Vec<domain::Rider> {
        self.riders
            .keys()
            .filter_map(|id| self.rider(*id))
            .collect()
    }

    pub fn rider(&self, id: RiderId) -> Option<domain::Rider> {
        let r = self.riders.get(&id)?;
        Some(domain::Rider {
            id,
            name: r.name.clone(),
            status: r.status,
            location: r.location,
            offer: r.offer.map(|o| (o.order_id, o.expires_at)),
            order_id: r.order.map(|a| a.order_id),
        })
    }

    pub fn stats(&self) -> DispatchStats {
        DispatchStats {
            riders: self.riders.len(),
            available: self.available.len(),
            waiting_orders: self
                .jobs
                .values()
                .filter(|j| j.state == JobState::Waiting)
                .count(),
            dispatching_orders: self.jobs.len(),
        }
    }

    /// The offer a rider has open now, as it was pushed (for a socket that reconnects: offers
    /// are not in the event log).
    pub fn open_offer(&self, rider: RiderId, now: DateTime<Utc>) -> Option<ServerMessage> {
        let offer = self
            .riders
            .get(&rider)?
            .offer
            .filter(|o| o.expires_at > now)?;
        let job = self.jobs.get(&offer.order_id)?;
        Some(ServerMessage::Offer {
            order_id: offer.order_id,
            restaurant: job.restaurant.clone(),
            delivery: job.delivery.clone(),
            expires_at: offer.expires_at,
        })
    }

    /// Offers of the order so far, every round.
    pub fn offered(&self, order_id: OrderId) -> u32 {
        self.jobs.get(&order_id).map_or(0, |j| j.offers)
    }
}
