//! Riders' answers to offers: a reject or an accept recorded on the board, and an accept
//! carried through to the order's actor.

use std::future::Future;
use std::pin::Pin;

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

/// Commits of a recorded answer, and what the answer tells: how many riders were offered the
/// order so far and where the rider is.
type Answered = (
    Pin<Box<dyn Future<Output = Result<(), EngineError>>>>,
    (u32, Option<LatLng>),
);

impl Dispatcher {
    /// Records a rider's answer on the board; its writes are enqueued now (so they commit in
    /// the order the board changed) and the returned future resolves once they committed.
    fn answer(
        &mut self,
        ctx: &mut Context<Self>,
        rider: RiderId,
        order_id: OrderId,
        accept: bool,
    ) -> Result<Answered, EngineError> {
        let decided = self
            .run(ctx, |b, now| {
                let fx = b.answer(rider, order_id, accept, now)?;
                let at = b.whereabouts(rider).and_then(|(at, _)| at);
                Ok::<_, DispatchError>((fx, (b.offered(order_id), at)))
            })
            .ok_or(EngineError::Unavailable)?;
        let (fx, told) = decided?;
        Ok((Box::pin(self.apply(fx)), told))
    }
}

impl Handler<AnswerOffer> for Dispatcher {
    /// How many riders were offered the order, and where this one is.
    type Result = ResponseFuture<Result<(u32, Option<LatLng>), EngineError>>;

    fn handle(&mut self, msg: AnswerOffer, ctx: &mut Self::Context) -> Self::Result {
        match self.answer(ctx, msg.rider, msg.order_id, msg.accept) {
            Ok((saved, told)) => Box::pin(async move { saved.await.map(|()| told) }),
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

    /// The answer's writes and the assignment's are enqueued one after the other without
    /// waiting in between (the writer commits in the order it was given, mostly in one
    /// batch), so the rider waits for one commit, not two. An outage fails both; the order
    /// refusing the rider (it ended meanwhile) leaves the answer recorded, as before.
    fn handle(&mut self, msg: AcceptOffer, ctx: &mut Self::Context) -> Self::Result {
        let AcceptOffer { rider, order_id } = msg;
        let (saved, (offers, from)) = match self.answer(ctx, rider, order_id, true) {
            Ok(answered) => answered,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        // A dispatching order always has a live actor: none means it ended meanwhile. The
        // command is in the actor's mailbox once `send` returns.
        let assigning = self.services.directory.order(order_id).map(|addr| {
            addr.send(ApplyCommand::by_engine(Command::AssignRider(
                rider, offers, from,
            )))
        });
        let board = ctx.address();
        Box::pin(async move {
            let assigned = match assigning {
                Some(request) => request.await.unwrap_or_else(|e| Err(e.into())),
                None => Err(EngineError::OfferNotActive),
            };
            let recorded = saved.await;
            board.do_send(AssignmentRecorded {
                rider,
                order_id,
                ok: assigned.is_ok(),
            });
            match (recorded, assigned) {
                // The assignment is durable: the rider has the order. Only the board's record
                // of the answer is missing (the rider's row is written whole at its next change).
                (Err(error), Ok(order)) => {
                    tracing::error!(%order_id, %rider, %error, "an accepted offer's answer was not committed");
                    Ok(order)
                }
                (_, Ok(order)) => Ok(order),
                (Err(error), Err(_)) => Err(error),
                // The order ended (cancelled, timed out) while the answer was in flight.
                (Ok(()), Err(EngineError::Order(_))) => Err(EngineError::OfferNotActive),
                (Ok(()), Err(other)) => Err(other),
            }
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
