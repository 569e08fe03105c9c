//! What ops do to assignments: hand an order to another rider at once, or take it back from
//! its rider to be dispatched again (a rider who fell sick, a rider forced offline). Only
//! before pickup: once the food is with a rider, it stays with that rider.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::board::{Board, DispatchError};
use super::effects::Effects;
use super::state::{Assignment, JobState};
use crate::domain::{Delivery, LatLng, OrderId, RiderId, RiderStatus};
use crate::events::hub::Audience;
use crate::persistence::AttemptOutcome;
use crate::wire::{OfferRestaurant, ServerMessage};

impl Board {
    /// The rider carrying `order_id`, if the food is still at the restaurant.
    fn carrier_before_pickup(&self, order_id: OrderId) -> Result<RiderId, DispatchError> {
        let from = *self
            .carrying
            .get(&order_id)
            .ok_or(DispatchError::InvalidState("the order has no rider"))?;
        if self.jobs.contains_key(&order_id) {
            return Err(DispatchError::InvalidState(
                "the rider's acceptance is still being recorded",
            ));
        }
        let picked_up = self
            .riders
            .get(&from)
            .and_then(|r| r.order)
            .is_some_and(|a| a.customer.is_some());
        if picked_up {
            return Err(DispatchError::InvalidState(
                "the rider has the food: it stays with them",
            ));
        }
        Ok(from)
    }

    /// Frees `rider` from `order_id` and tells the rider it is no longer theirs.
    fn unload(&mut self, rider: RiderId, order_id: OrderId, now: DateTime<Utc>, fx: &mut Effects) {
        if let Some(r) = self.riders.get_mut(&rider) {
            r.order = None;
            if r.status == RiderStatus::Busy {
                r.status = RiderStatus::Available;
            }
        }
        self.carrying.remove(&order_id);
        self.reindex(rider);
        self.save_rider(rider, now, fx);
        fx.push(
            vec![Audience::Rider(rider)],
            ServerMessage::OfferWithdrawn { order_id },
        );
    }

    /// Moves `order_id` from its rider to `to`, who must be free (an open offer of `to` is
    /// withdrawn). Returns the rider it came from and where `to` is.
    pub fn hand_over(
        &mut self,
        order_id: OrderId,
        to: RiderId,
        now: DateTime<Utc>,
    ) -> Result<(Effects, RiderId, Option<LatLng>), DispatchError> {
        let from = self.carrier_before_pickup(order_id)?;
        if from == to {
            return Err(DispatchError::InvalidState(
                "the order is already that rider's",
            ));
        }
        let target = self.riders.get(&to).ok_or(DispatchError::RiderNotFound)?;
        if target.status != RiderStatus::Available || target.order.is_some() {
            return Err(DispatchError::InvalidState("that rider is not available"));
        }
        let open_offer = target.offer.map(|o| o.order_id);
        let mut fx = Effects::default();
        if let Some(offered) = open_offer {
            self.conclude(offered, AttemptOutcome::Withdrawn, &mut fx);
            self.withdraw_offer(to, offered, now, &mut fx);
            if let Some(job) = self.jobs.get_mut(&offered) {
                job.state = JobState::Waiting;
            }
        }
        self.unload(from, order_id, now, &mut fx);
        let at = self.riders.get_mut(&to).map(|r| {
            r.status = RiderStatus::Busy;
            r.order = Some(Assignment {
                order_id,
                customer: None,
            });
            r.location
        });
        self.carrying.insert(order_id, to);
        self.reindex(to);
        self.save_rider(to, now, &mut fx);
        // The freed rider (and a withdrawn offer's order) may match what is waiting.
        self.offer_waiting_where(|_| true, now, &mut fx);
        Ok((fx, from, at.flatten()))
    }

    /// Takes `order_id` back from its rider and dispatches it again at once, without asking
    /// that rider in this round. Returns the rider it came from.
    pub fn take_back(
        &mut self,
        order_id: OrderId,
        (restaurant, delivery): (OfferRestaurant, Delivery),
        now: DateTime<Utc>,
    ) -> Result<(Effects, RiderId), DispatchError> {
        let from = self.carrier_before_pickup(order_id)?;
        let mut fx = Effects::default();
        self.unload(from, order_id, now, &mut fx);
        self.open_job(
            order_id,
            (restaurant, delivery),
            HashSet::from([from]),
            now,
            &mut fx,
        );
        self.offer_waiting_where(|_| true, now, &mut fx);
        Ok((fx, from))
    }
}
