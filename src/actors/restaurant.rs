//! `RestaurantActor`: one per restaurant with live orders. It keeps the restaurant's desk —
//! the orders waiting for its answer, each with its timeout, and the orders its kitchen holds
//! against its capacity — from the snapshots order actors commit. The engine asks it what
//! timed out (every second, and whenever the test clock moves) and rejects those orders for
//! the restaurant. Supervised: a restart rebuilds the desk from the store's snapshots.

use std::time::Duration;

use actix::prelude::*;

use super::services::Shared;
use super::supervision::{ActorKind, Restarts, guarded};
use crate::domain::desk::{Busy, Desk, Slot};
use crate::domain::{Order, OrderId, RestaurantId, Stage};

pub struct RestaurantActor {
    id: RestaurantId,
    desk: Desk,
    services: Shared,
    restarts: Restarts,
    /// Set by a restart: rebuild the desk after this backoff before taking messages.
    reload_after: Option<Duration>,
}

/// An order of this restaurant committed a new snapshot.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Track(pub Order);

/// Whether a new order fits the restaurant's capacity.
#[derive(Message)]
#[rtype(result = "Result<(), Busy>")]
pub struct Admit;

/// What is due now: scheduled orders whose start has come, orders whose answer is overdue,
/// queued orders that now fit (all leave the lists they were in).
#[derive(Message)]
#[rtype(result = "Due")]
pub struct TakeDue;

#[derive(Debug, Default)]
pub struct Due {
    pub starts: Vec<OrderId>,
    pub overdue: Vec<OrderId>,
    pub asks: Vec<OrderId>,
}

impl RestaurantActor {
    pub fn new(id: RestaurantId, services: Shared) -> Self {
        let desk = Desk::new(services.policy.restaurant_capacity);
        Self {
            id,
            desk,
            services,
            restarts: Restarts::default(),
            reload_after: None,
        }
    }

    fn track(&mut self, order: &Order) {
        // A scheduled order is due when it must start, an asked one when its answer is late;
        // one not asked yet waits its turn for room in the kitchen.
        let slot = match (order.stage, order.asked_at) {
            (Stage::Scheduled, at) => Slot::StartsAt(at.unwrap_or(order.placed_at)),
            (Stage::AwaitingRestaurant, Some(at)) => {
                Slot::AnswerBy(at + self.services.policy.answer_timeout)
            }
            (Stage::AwaitingRestaurant, None) => Slot::QueuedSince(order.placed_at),
            _ => Slot::Elsewhere,
        };
        self.desk.track(order.id, order.version, order.stage, slot);
    }
}

impl Actor for RestaurantActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(backoff) = self.reload_after.take() else {
            return;
        };
        // Restarted: nothing is processed until the desk is rebuilt from the snapshots.
        let (store, id) = (self.services.store.clone(), self.id);
        ctx.wait(
            async move {
                actix_rt::time::sleep(backoff).await;
                store.restaurant_orders(id, None, chrono::DateTime::UNIX_EPOCH).await
            }
            .into_actor(self)
            .map(|loaded, act, ctx| match loaded {
                Ok(orders) => {
                    act.desk = Desk::new(act.services.policy.restaurant_capacity);
                    for order in &orders {
                        act.track(order);
                    }
                }
                Err(error) => {
                    tracing::error!(restaurant_id = %act.id, %error, "could not rebuild the desk; retrying");
                    ctx.stop();
                }
            }),
        );
    }
}

impl Supervised for RestaurantActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        let backoff = self.restarts.record(
            (&self.services.hub, &self.services.actors),
            ActorKind::Restaurant,
            self.id.to_string(),
            self.services.clock.now(),
        );
        self.reload_after = Some(backoff);
    }
}

impl Handler<Track> for RestaurantActor {
    type Result = ();

    fn handle(&mut self, Track(order): Track, ctx: &mut Self::Context) {
        if guarded(|| self.track(&order)).is_none() {
            tracing::error!(restaurant_id = %self.id, "desk rules panicked: restarting the actor");
            ctx.stop();
        }
    }
}

impl Handler<Admit> for RestaurantActor {
    type Result = Result<(), Busy>;

    fn handle(&mut self, _: Admit, _ctx: &mut Self::Context) -> Self::Result {
        self.desk.admit()
    }
}

impl Handler<TakeDue> for RestaurantActor {
    type Result = MessageResult<TakeDue>;

    fn handle(&mut self, _: TakeDue, _ctx: &mut Self::Context) -> Self::Result {
        let now = self.services.clock.now();
        let starts = self.desk.starts(now);
        // Timed-out orders leave room first, so the queue moves on in the same run.
        let overdue = self.desk.due(now);
        let asks = self.desk.promote(now, self.services.policy.answer_timeout);
        MessageResult(Due {
            starts,
            overdue,
            asks,
        })
    }
}
