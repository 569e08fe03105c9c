//! Riders' answers to offers: a reject or an accept recorded on the board, and an accept
//! carried through to the order's actor.

use actix::prelude::*;

use super::Dispatcher;
use crate::actors::error::EngineError;
use crate::actors::order::ApplyCommand;
use crate::dispatch::DispatchError;
use crate::domain::{Command, LatLng, Order, OrderId, RiderId};

/// A rider's answer to an offer; answers, once the change is durable, how many riders were
/// offered the order so far and where the rider is.
#[derive(Message)]
#[rtype(result = "Result<(u32, Option<LatLng>), EngineError>")]
pub struct AnswerOffer {
    pub rider: RiderId,
    pub order_id: OrderId,
    pub accept: bool,
}

impl Handler<AnswerOffer> for Dispatcher {
    /// How many riders were offered the order, and where this one is.
    type Result = ResponseFuture<Result<(u32, Option<LatLng>), EngineError>>;

    fn handle(&mut self, msg: AnswerOffer, ctx: &mut Self::Context) -> Self::Result {
        let result = self
            .run(ctx, |b, now| {
                let fx = b.answer(msg.rider, msg.order_id, msg.accept, now)?;
                let at = b.whereabouts(msg.rider).and_then(|(at, _)| at);
                Ok::<_, DispatchError>((fx, (b.offered(msg.order_id), at)))
            })
            .ok_or(EngineError::Unavailable);
        match result {
            Ok(Ok((fx, offers))) => {
                let done = self.apply(fx);
                Box::pin(async move { done.await.map(|()| offers) })
            }
            Ok(Err(e)) => Box::pin(async move { Err(e.into()) }),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

/// A rider takes an offer: the answer is recorded, the order's actor assigns the rider, and
/// the board learns how that went, all from here, so the rider's request crosses to the
/// engine's thread once (not three times). Answers the assigned order.
#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct AcceptOffer {
    pub rider: RiderId,
    pub order_id: OrderId,
}

impl Handler<AcceptOffer> for Dispatcher {
    type Result = ResponseFuture<Result<Order, EngineError>>;

    fn handle(&mut self, msg: AcceptOffer, ctx: &mut Self::Context) -> Self::Result {
        let AcceptOffer { rider, order_id } = msg;
        let answered = self.handle(
            AnswerOffer {
                rider,
                order_id,
                accept: true,
            },
            ctx,
        );
        // A dispatching order always has a live actor: none means it ended meanwhile.
        let order = self.services.directory.order(order_id);
        let board = ctx.address();
        Box::pin(async move {
            let (offers, from) = answered.await?;
            let assigned = match order {
                Some(addr) => {
                    let cmd = Command::AssignRider(rider, offers, from);
                    addr.send(ApplyCommand::by_engine(cmd))
                        .await
                        .unwrap_or_else(|e| Err(e.into()))
                }
                None => Err(EngineError::OfferNotActive),
            };
            board.do_send(AssignmentRecorded {
                rider,
                order_id,
                ok: assigned.is_ok(),
            });
            assigned.map_err(|e| match e {
                // The order ended (cancelled, timed out) while the answer was in flight.
                EngineError::Order(_) => EngineError::OfferNotActive,
                other => other,
            })
        })
    }
}

/// The order actor recorded the assignment (`ok`) or refused it (order ended meanwhile).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AssignmentRecorded {
    pub rider: RiderId,
    pub order_id: OrderId,
    pub ok: bool,
}

impl Handler<AssignmentRecorded> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: AssignmentRecorded, ctx: &mut Self::Context) {
        if let Some(fx) = self.run(ctx, |b, now| {
            b.assignment_recorded(msg.rider, msg.order_id, msg.ok, now)
        }) {
            self.apply_detached(fx);
        }
    }
}
