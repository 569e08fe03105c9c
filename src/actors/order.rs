//! `OrderActor`: one per live order. It serialises every command on its order, commits the new
//! snapshot and its outbox event (through the group-commit writer) before answering, then tells
//! the dispatcher what the new stage means for riders.

use std::time::Duration;

use actix::prelude::*;

use super::dispatcher::{
    Dispatcher, EndDispatch, RiderPickedUp, StartDispatch, UpdateDispatchDelivery,
};
use super::error::EngineError;
use super::restaurant::Track;
use super::services::Shared;
use super::supervision::{ActorKind, Restarts, guarded};
use crate::domain::ledger;
use crate::domain::{Command, Order, Party, Stage};
use crate::events::relay;
use crate::payments::plan::settlement_ops;
use crate::persistence::{Write, WriteUnit};
use crate::wire::OfferRestaurant;

pub struct OrderActor {
    /// The last committed snapshot: replaced only after a write commits.
    order: Order,
    services: Shared,
    dispatcher: Addr<Dispatcher>,
    restarts: Restarts,
    /// Set by a restart: reload the snapshot after this backoff before taking messages.
    reload_after: Option<Duration>,
}

/// Apply a state-machine command; answers with the order after the change is durable.
#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct ApplyCommand {
    pub cmd: Command,
    /// Who asks (checked against the order before anything changes); `None` is the engine.
    pub by: Option<Party>,
}

impl ApplyCommand {
    /// A command of the engine's own (dispatch, timers): no party to check.
    pub fn by_engine(cmd: Command) -> Self {
        Self { cmd, by: None }
    }
}

#[derive(Message)]
#[rtype(result = "Order")]
pub struct GetOrder;

/// Test hook (only with fault injection enabled): corrupts the in-memory order and fails, as
/// a bug would. The supervisor must restart the actor from its last snapshot.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct InjectFault;

impl OrderActor {
    pub fn new(order: Order, services: Shared, dispatcher: Addr<Dispatcher>) -> Self {
        Self {
            order,
            services,
            dispatcher,
            restarts: Restarts::default(),
            reload_after: None,
        }
    }

    /// Runs after the snapshot is committed: what the new stage means for dispatch.
    fn committed(&mut self, prev: Stage) {
        let order = &self.order;
        metrics::counter!("dabba_order_transitions_total", "stage" => order.stage.as_str())
            .increment(1);
        match order.stage {
            Stage::FindingRider if prev == Stage::Preparing => self.start_dispatch(),
            Stage::RiderAssigned if prev == Stage::FindingRider => {
                // Dispatch began with the restaurant's accept, when the food's clock started.
                if let Some(ready_at) = order.ready_at {
                    let prep = chrono::Duration::minutes(i64::from(order.prep_minutes));
                    let took = (order.updated_at - (ready_at - prep)).num_milliseconds();
                    metrics::histogram!("dabba_dispatch_seconds")
                        .record(took.max(0) as f64 / 1000.0);
                }
                metrics::histogram!("dabba_offers_per_order").record(f64::from(order.offers));
                self.dispatcher.do_send(UpdateDispatchDelivery {
                    order_id: order.id,
                    delivery: order.delivery.clone(),
                });
            }
            Stage::FindingRider | Stage::RiderAssigned => {
                self.dispatcher.do_send(UpdateDispatchDelivery {
                    order_id: order.id,
                    delivery: order.delivery.clone(),
                });
            }
            Stage::PickedUp => {
                if let Some(rider) = order.rider_id {
                    self.dispatcher.do_send(RiderPickedUp {
                        rider,
                        order_id: order.id,
                        customer_id: order.customer_id,
                    });
                }
            }
            _ => {}
        }
        if let Some(desk) = self.services.directory.desk(order.restaurant_id) {
            desk.do_send(Track(order.clone()));
        }
        if order.stage.is_terminal() {
            // Nothing to drop from the read cache: it holds finished orders only, and a
            // finished order never changes (the state machine's property tests say so). A
            // `DEL` here cost every order a Redis round trip and two wake-ups of the thread
            // driving that connection (BENCHMARKS.md, issue 9 seventh pass).
            self.dispatcher.do_send(EndDispatch { order_id: order.id });
            self.services.directory.retire_order(order.id);
        }
    }

    fn start_dispatch(&self) {
        let o = &self.order;
        let name = self
            .services
            .directory
            .restaurant(o.restaurant_id)
            .map(|r| r.name)
            .unwrap_or_default();
        self.dispatcher.do_send(StartDispatch {
            order_id: o.id,
            restaurant: OfferRestaurant {
                id: o.restaurant_id,
                name,
                location: o.restaurant_location,
            },
            delivery: o.delivery.clone(),
        });
    }

    /// Picks up dispatch where a recovered or restarted order left it.
    fn resume(&self, ctx: &mut Context<Self>) {
        match self.order.stage {
            Stage::Preparing => ctx.notify(BeginDispatch),
            Stage::FindingRider => self.start_dispatch(),
            _ => {}
        }
    }

    /// Decides, persists, then commits one command. Handlers wrap it in `AtomicResponse` so
    /// the next command on this order starts only after this one has committed.
    fn transition(
        &mut self,
        cmd: Command,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<Order, EngineError>> {
        let now = self.services.clock.now();
        let decided = guarded(|| self.order.apply(cmd, now, &self.services.policy));
        let next = match decided {
            Some(Ok(next)) => next,
            Some(Err(e)) => return Box::pin(fut::ready(Err(e.into()))),
            None => {
                tracing::error!(order_id = %self.order.id, "order rules panicked: restarting the actor");
                ctx.stop();
                return Box::pin(fut::ready(Err(EngineError::Unavailable)));
            }
        };
        let mut writes = vec![
            Write::SaveOrder(next.clone()),
            Write::Event(relay::order_updated(&next, now)),
        ];
        // Money moves in the same commit as the change that moves it.
        let txns = ledger::movements(&self.order, &next, self.services.policy.split, now);
        for op in settlement_ops(&next, &txns, now) {
            writes.push(Write::Event(relay::payment_event(
                relay::PaymentEventKind::Requested,
                &next,
                &op,
                now,
            )));
            writes.push(Write::SavePaymentOp(op));
        }
        writes.extend(txns.into_iter().map(Write::Ledger));
        // Accepted: dispatch begins in the same commit (both stages are announced), so the
        // restaurant's accept costs one round trip to the store, not two.
        let dispatching = (next.stage == Stage::Preparing)
            .then(|| guarded(|| next.apply(Command::BeginDispatch, now, &self.services.policy)))
            .flatten()
            .and_then(Result::ok);
        if let Some(d) = &dispatching {
            writes.push(Write::SaveOrder(d.clone()));
            writes.push(Write::Event(relay::order_updated(d, now)));
        }
        let saved = self.services.writer.submit(WriteUnit::new(writes));
        Box::pin(
            saved
                .into_actor(self)
                .map(move |saved, act, ctx| {
                    if let Err(e) = &saved
                        && e.outcome_unknown()
                    {
                        // The store may hold this change or a newer one: our snapshot is no
                        // longer known to be the last committed one. Reload it.
                        tracing::warn!(order_id = %act.order.id, error = %e, "commit unconfirmed: reloading the order");
                        ctx.stop();
                    }
                    saved?;
                    let mut prev = act.order.stage;
                    if let Some(d) = dispatching {
                        metrics::counter!("dabba_order_transitions_total", "stage" => next.stage.as_str())
                            .increment(1);
                        prev = next.stage;
                        act.order = d;
                    } else {
                        act.order = next;
                    }
                    act.committed(prev);
                    Ok(act.order.clone())
                })
                .then(|res, act, ctx| -> ResponseActFuture<Self, Result<Order, EngineError>> {
                    match res {
                        // Dispatch starts as part of the restaurant's accept, so the reply
                        // goes out only once the order is looking for a rider.
                        Ok(o) if o.stage == Stage::Preparing => {
                            Box::pin(act.transition(Command::BeginDispatch, ctx).map(move |res, act, _| {
                                res.or_else(|error| {
                                    tracing::error!(order_id = %act.order.id, %error, "could not start dispatch");
                                    Ok(o)
                                })
                            }))
                        }
                        other => Box::pin(fut::ready(other)),
                    }
                }),
        )
    }
}

impl Actor for OrderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(backoff) = self.reload_after.take() else {
            self.resume(ctx);
            return;
        };
        // Restarted: nothing is processed until the snapshot is back.
        let store = self.services.store.clone();
        let id = self.order.id;
        ctx.wait(
            async move {
                actix_rt::time::sleep(backoff).await;
                store.order(id).await
            }
            .into_actor(self)
            .map(|loaded, act, ctx| match loaded {
                Ok(Some(order)) => {
                    act.order = order;
                    if act.order.stage.is_terminal() {
                        act.services.directory.retire_order(act.order.id);
                    } else {
                        act.resume(ctx);
                    }
                }
                Ok(None) | Err(_) => {
                    tracing::error!(order_id = %act.order.id, "could not reload the order snapshot; retrying");
                    ctx.stop();
                }
            }),
        );
    }
}

impl Supervised for OrderActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        let backoff = self.restarts.record(
            (&self.services.hub, &self.services.actors),
            ActorKind::Order,
            self.order.id.to_string(),
            self.services.clock.now(),
        );
        self.reload_after = Some(backoff);
    }
}

impl Handler<ApplyCommand> for OrderActor {
    type Result = AtomicResponse<Self, Result<Order, EngineError>>;

    fn handle(&mut self, msg: ApplyCommand, ctx: &mut Self::Context) -> Self::Result {
        if let Some(party) = msg.by
            && !self.order.involves(party)
        {
            return AtomicResponse::new(Box::pin(fut::ready(Err(EngineError::Forbidden))));
        }
        AtomicResponse::new(self.transition(msg.cmd, ctx))
    }
}

impl Handler<GetOrder> for OrderActor {
    type Result = MessageResult<GetOrder>;

    fn handle(&mut self, _: GetOrder, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.order.clone())
    }
}

impl Handler<InjectFault> for OrderActor {
    type Result = Result<(), EngineError>;

    fn handle(&mut self, _: InjectFault, ctx: &mut Self::Context) -> Self::Result {
        if !self.services.faults {
            return Err(EngineError::NotFound("fault injection"));
        }
        tracing::warn!(order_id = %self.order.id, "injected fault: corrupting state and failing");
        self.order.version += 1_000;
        self.order.stage = Stage::Delivered;
        ctx.stop();
        Ok(())
    }
}

/// Self-sent when a recovered order was accepted but dispatch had not started.
#[derive(Message)]
#[rtype(result = "()")]
struct BeginDispatch;

impl Handler<BeginDispatch> for OrderActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: BeginDispatch, ctx: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(Box::pin(self.transition(Command::BeginDispatch, ctx).map(
            |res, act, _| {
                if let Err(error) = res {
                    tracing::error!(order_id = %act.order.id, %error, "could not start dispatch");
                }
            },
        )))
    }
}
