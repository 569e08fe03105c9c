//! What riders do: go available or offline, move, answer offers. The dispatcher decides.

use super::Engine;
use crate::actors::dispatcher::{
    AcceptOffer, AnswerOffer, GetOpenOffer, GetRider, GetStats, SetRiderStatus, UpdateLocation,
};
use crate::actors::error::EngineError;
use crate::actors::supervision::{ActorKind, InFlight};

/// A dispatcher address whose request is counted while it is awaited.
struct Counted<'a> {
    addr: &'a actix::Addr<crate::actors::dispatcher::Dispatcher>,
    _in: InFlight<'a>,
}

impl Counted<'_> {
    async fn send<M>(self, msg: M) -> Result<M::Result, actix::MailboxError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        crate::actors::dispatcher::Dispatcher: actix::Handler<M>,
    {
        self.addr.send(msg).await
    }
}
use crate::dispatch::DispatchStats;
use crate::domain::{LatLng, Order, OrderId, Rider, RiderId, RiderStatus};
use crate::persistence::StoreError;

impl Engine {
    /// The dispatcher, with the request counted in its mailbox until answered.
    fn to_dispatcher(&self) -> Counted<'_> {
        Counted {
            addr: &self.dispatcher,
            _in: self.services.actors.enter(ActorKind::Dispatcher),
        }
    }

    pub async fn rider(&self, id: RiderId) -> Result<Rider, EngineError> {
        self.to_dispatcher()
            .send(GetRider(id))
            .await?
            .ok_or(EngineError::NotFound("rider"))
    }

    pub async fn set_rider_status(
        &self,
        rider: RiderId,
        status: RiderStatus,
    ) -> Result<Rider, EngineError> {
        self.to_dispatcher()
            .send(SetRiderStatus { rider, status })
            .await?
    }

    pub async fn update_location(&self, rider: RiderId, at: LatLng) -> Result<(), EngineError> {
        self.to_dispatcher()
            .send(UpdateLocation { rider, at })
            .await?
    }

    /// A position for the dispatcher, not waited for (the rider's socket answers nothing).
    /// Refused as overloaded when the dispatcher's mailbox is full.
    pub fn pass_location(&self, rider: RiderId, at: LatLng) -> Result<(), EngineError> {
        self.dispatcher
            .try_send(UpdateLocation { rider, at })
            .map_err(|e| match e {
                actix::prelude::SendError::Full(_) => StoreError::Overloaded.into(),
                actix::prelude::SendError::Closed(_) => EngineError::Unavailable,
            })
    }

    pub async fn accept_offer(
        &self,
        rider: RiderId,
        order_id: OrderId,
    ) -> Result<Order, EngineError> {
        self.to_dispatcher()
            .send(AcceptOffer { rider, order_id })
            .await?
    }

    pub async fn reject_offer(&self, rider: RiderId, order_id: OrderId) -> Result<(), EngineError> {
        self.to_dispatcher()
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
        let offer = self.to_dispatcher().send(GetOpenOffer(rider)).await?;
        Ok(offer.map(|m| m.to_json()))
    }

    pub async fn dispatch_stats(&self) -> Result<DispatchStats, EngineError> {
        Ok(self.to_dispatcher().send(GetStats).await?)
    }
}
