//! The restaurants' desks, run every second (and whenever the test clock moves): scheduled
//! orders whose kitchen must start are put to their restaurant, queued orders are put to it as
//! room frees, and orders a restaurant left unanswered are rejected for it.

use actix::prelude::*;

use super::{Engine, RESTAURANT_TIMEOUT};
use crate::actors::error::EngineError;
use crate::actors::restaurant::{RestaurantActor, TakeDue, Track};
use crate::actors::supervision::ActorKind;
use crate::domain::{Command, OrderId, RestaurantId};

/// What one run of the desks did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeskRun {
    pub started: usize,
    pub expired: usize,
    /// Queued orders put to their restaurant as room freed.
    pub asked: usize,
}

impl Engine {
    /// The restaurant's actor, started on first use.
    pub(super) fn desk(&self, id: RestaurantId) -> Addr<RestaurantActor> {
        if let Some(addr) = self.services.directory.desk(id) {
            return addr;
        }
        let services = self.services.clone();
        let addr = Supervisor::start_in_arbiter(&self.orders_arbiter, move |_| {
            RestaurantActor::new(id, services)
        });
        self.services.directory.register_desk(id, addr)
    }

    /// Starts the scheduled orders that are due, then rejects, for their restaurants, the
    /// orders not answered in time.
    pub async fn run_desks(&self) -> DeskRun {
        let mut run = DeskRun::default();
        for desk in self.services.directory.desks() {
            let in_mailbox = self.services.actors.enter(ActorKind::Restaurant);
            let due = desk.send(TakeDue).await;
            drop(in_mailbox);
            let Ok(due) = due else {
                continue;
            };
            for order_id in due.starts {
                if self.desk_command(order_id, Command::Release).await {
                    run.started += 1;
                    metrics::counter!("dabba_scheduled_orders_started_total").increment(1);
                }
            }
            for order_id in due.asks {
                if self.desk_command(order_id, Command::Ask).await {
                    run.asked += 1;
                }
            }
            for order_id in due.overdue {
                let cmd = Command::RejectByRestaurant {
                    reason: RESTAURANT_TIMEOUT.into(),
                };
                if self.desk_command(order_id, cmd).await {
                    run.expired += 1;
                    metrics::counter!("dabba_restaurant_timeouts_total").increment(1);
                }
            }
        }
        run
    }

    /// Applies a command the desk found due; whether it changed the order. A failure that was
    /// not the order's own answer puts the order back on its desk, to be tried again.
    async fn desk_command(&self, order_id: OrderId, cmd: Command) -> bool {
        match self.apply(order_id, cmd).await {
            Ok(_) => true,
            // Answered, cancelled or moved in the meantime: nothing to do.
            Err(EngineError::Order(_) | EngineError::InvalidState(_)) => false,
            Err(error) => {
                tracing::warn!(%order_id, %error, "a due order could not be moved; retrying");
                if let Ok(order) = self.order(order_id).await {
                    self.desk(order.restaurant_id).do_send(Track(order));
                }
                false
            }
        }
    }
}
