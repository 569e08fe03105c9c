//! `OrderActor`: one per live order. It serialises every command on its order, writes the new
//! snapshot before answering, then tells the hub and the dispatcher.

use actix::prelude::*;

use super::dispatcher::{
    Dispatcher, EndDispatch, RiderPickedUp, StartDispatch, UpdateDispatchDelivery,
};
use super::error::EngineError;
use super::services::Shared;
use crate::domain::{Command, Order, Stage};
use crate::wire::OfferRestaurant;

pub struct OrderActor {
    order: Order,
    services: Shared,
    dispatcher: Addr<Dispatcher>,
}

/// Apply a state-machine command; answers with the order after the change is durable.
#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct ApplyCommand(pub Command);

#[derive(Message)]
#[rtype(result = "Order")]
pub struct GetOrder;

impl OrderActor {
    pub fn new(order: Order, services: Shared, dispatcher: Addr<Dispatcher>) -> Self {
        Self {
            order,
            services,
            dispatcher,
        }
    }

    /// Runs after the snapshot is committed: publish, then side effects of the new stage.
    fn committed(&mut self, prev: Stage) {
        let order = &self.order;
        self.services.hub.order_updated(order);
        metrics::counter!("dabba_order_transitions_total", "stage" => order.stage.as_str())
            .increment(1);
        match order.stage {
            Stage::FindingRider if prev == Stage::Preparing => self.start_dispatch(),
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
        if order.stage.is_terminal() {
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
}

impl Actor for OrderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A recovered order that was between "accepted" and "dispatching" picks up where it was.
        match self.order.stage {
            Stage::Preparing => ctx.notify(BeginDispatch),
            Stage::FindingRider => self.start_dispatch(),
            _ => {}
        }
    }
}

impl Supervised for OrderActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        // The in-memory order is only ever replaced after its snapshot commits, so it *is*
        // the last snapshot: restarting from it loses nothing acknowledged.
        metrics::counter!("dabba_actor_restarts_total", "kind" => "order").increment(1);
        tracing::warn!(order_id = %self.order.id, "order actor restarting");
    }
}

impl OrderActor {
    /// Decides, persists, then commits one command. Handlers wrap it in `AtomicResponse` so
    /// the next command on this order starts only after this one has committed.
    fn transition(&mut self, cmd: Command) -> ResponseActFuture<Self, Result<Order, EngineError>> {
        let now = self.services.clock.now();
        let next = match self.order.apply(cmd, now, &self.services.policy) {
            Ok(next) => next,
            Err(e) => return Box::pin(fut::ready(Err(e.into()))),
        };
        let store = self.services.store.clone();
        let snapshot = next.clone();
        Box::pin(
            async move { store.save_order(&snapshot).await }
                .into_actor(self)
                .map(move |saved, act, _ctx| {
                    saved?;
                    let prev = act.order.stage;
                    act.order = next;
                    act.committed(prev);
                    Ok(act.order.clone())
                })
                .then(|res, act, _ctx| -> ResponseActFuture<Self, Result<Order, EngineError>> {
                    match res {
                        // Dispatch starts as part of the restaurant's accept, so the reply
                        // goes out only once the order is looking for a rider.
                        Ok(o) if o.stage == Stage::Preparing => {
                            Box::pin(act.transition(Command::BeginDispatch).map(move |res, act, _| {
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

impl Handler<ApplyCommand> for OrderActor {
    type Result = AtomicResponse<Self, Result<Order, EngineError>>;

    fn handle(
        &mut self,
        ApplyCommand(cmd): ApplyCommand,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        AtomicResponse::new(self.transition(cmd))
    }
}

impl Handler<GetOrder> for OrderActor {
    type Result = MessageResult<GetOrder>;

    fn handle(&mut self, _: GetOrder, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.order.clone())
    }
}

/// Self-sent after the restaurant accepts: move on to looking for a rider.
#[derive(Message)]
#[rtype(result = "()")]
struct BeginDispatch;

impl Handler<BeginDispatch> for OrderActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: BeginDispatch, _ctx: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(Box::pin(self.transition(Command::BeginDispatch).map(
            |res, act, _| {
                if let Err(error) = res {
                    tracing::error!(order_id = %act.order.id, %error, "could not start dispatch");
                }
            },
        )))
    }
}
