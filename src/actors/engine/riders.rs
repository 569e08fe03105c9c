//! What riders do: go available or offline, move, answer offers. The dispatcher decides.

use super::Engine;
use crate::actors::dispatcher::{
    AnswerOffer, AssignmentRecorded, GetOpenOffer, GetRider, GetStats, SetRiderStatus,
    UpdateLocation,
};
use crate::actors::error::EngineError;
use crate::dispatch::DispatchStats;
use crate::domain::{Command, LatLng, Order, OrderId, Rider, RiderId, RiderStatus};

impl Engine {
    pub async fn rider(&self, id: RiderId) -> Result<Rider, EngineError> {
        self.dispatcher
            .send(GetRider(id))
            .await?
            .ok_or(EngineError::NotFound("rider"))
    }

    pub async fn set_rider_status(
        &self,
        rider: RiderId,
        status: RiderStatus,
    ) -> Result<Rider, EngineError> {
        self.dispatcher
            .send(SetRiderStatus { rider, status })
            .await?
    }

    pub async fn update_location(&self, rider: RiderId, at: LatLng) -> Result<(), EngineError> {
        self.dispatcher.send(UpdateLocation { rider, at }).await?
    }

    pub async fn accept_offer(
        &self,
        rider: RiderId,
        order_id: OrderId,
    ) -> Result<Order, EngineError> {
        let (offers, from) = self
            .dispatcher
            .send(AnswerOffer {
                rider,
                order_id,
                accept: true,
            })
            .await??;
        let assigned = self
            .apply(order_id, Command::AssignRider(rider, offers, from))
            .await;
        self.dispatcher.do_send(AssignmentRecorded {
            rider,
            order_id,
            ok: assigned.is_ok(),
        });
        assigned.map_err(|e| match e {
            // The order ended (cancelled, timed out) while the answer was in flight.
            EngineError::Order(_) => EngineError::OfferNotActive,
            other => other,
        })
    }

    pub async fn reject_offer(&self, rider: RiderId, order_id: OrderId) -> Result<(), EngineError> {
        self.dispatcher
            .send(AnswerOffer {
                rider,
                order_id,
                accept: false,
            })
            .await?
            .map(|_| ())
    }

    /// The rider's open offer as its push (JSON), if it has one.
    pub async fn open_offer(&self, rider: RiderId) -> Result<Option<String>, EngineError> {
        let offer = self.dispatcher.send(GetOpenOffer(rider)).await?;
        Ok(offer.map(|m| m.to_json()))
    }

    pub async fn dispatch_stats(&self) -> Result<DispatchStats, EngineError> {
        Ok(self.dispatcher.send(GetStats).await?)
    }
}
