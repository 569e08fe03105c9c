//! What ops see and do beyond the parties' own actions: the supervision view (actors by kind),
//! and actions on assignments — reassign an order, take a rider off — each written to the
//! audit log in the same commit as its effect on the order.

use super::Engine;
use crate::actors::dispatcher::{HandOver, ListRiders, SetRiderStatus, TakeBack};
use crate::actors::error::EngineError;
use crate::actors::order::GetOrder;
use crate::actors::supervision::{ActorKind, Failure};
use crate::domain::{Command, Order, OrderId, Rider, RiderId, RiderStatus, Stage};
use crate::persistence::audit::AuditEntry;
use crate::persistence::{Write, WriteUnit};
use crate::wire::OfferRestaurant;

/// One kind of actor, as the supervision view shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ActorKindView {
    pub kind: &'static str,
    /// Actors of the kind alive now.
    pub count: usize,
    /// The most requests waiting for actors of the kind at once since the start.
    pub mailbox_max: i64,
    /// Requests waiting for them now.
    pub mailbox_now: i64,
    pub restarts: u64,
    pub last_failure: Option<Failure>,
}

impl Engine {
    pub fn actor_kinds(&self) -> Vec<ActorKindView> {
        ActorKind::ALL
            .into_iter()
            .map(|kind| {
                let f = self.services.actors.figures(kind);
                let count = match kind {
                    ActorKind::Order => self.services.directory.live_orders(),
                    ActorKind::Restaurant => self.services.directory.desk_count(),
                    ActorKind::Dispatcher => 1,
                };
                metrics::gauge!("dabba_actors", "kind" => kind.as_str()).set(count as f64);
                metrics::gauge!("dabba_actor_mailbox", "kind" => kind.as_str())
                    .set(f.in_flight as f64);
                ActorKindView {
                    kind: kind.as_str(),
                    count,
                    mailbox_max: f.most_in_flight,
                    mailbox_now: f.in_flight,
                    restarts: f.restarts,
                    last_failure: f.last_failure,
                }
            })
            .collect()
    }

    /// Every rider and up to `limit` live orders, for the console's map and table.
    pub async fn live_view(&self, limit: usize) -> Result<(Vec<Rider>, Vec<Order>), EngineError> {
        let riders = self.dispatcher.send(ListRiders).await?;
        let asks = self
            .services
            .directory
            .order_actors(limit)
            .into_iter()
            .map(|addr| addr.send(GetOrder));
        let orders = futures_util::future::join_all(asks)
            .await
            .into_iter()
            // An actor that stopped meanwhile (its order finished) is simply left out.
            .filter_map(Result::ok)
            .collect();
        Ok((riders, orders))
    }

    /// The latest ops actions, newest first.
    pub async fn audit(&self, limit: i64) -> Result<Vec<AuditEntry>, EngineError> {
        Ok(self.services.store.audit(limit).await?)
    }

    /// Writes an ops action to the audit log.
    pub async fn record_action(
        &self,
        actor: &str,
        action: &str,
        target: String,
        detail: Option<String>,
    ) {
        let entry = AuditEntry {
            id: uuid::Uuid::new_v4(),
            at: self.now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            detail,
        };
        // The action took effect: an audit write that fails is logged loudly, not undone.
        if let Err(error) = self
            .services
            .writer
            .submit(WriteUnit::one(Write::Audit(entry.clone())))
            .await
        {
            tracing::error!(%error, action, target = %entry.target, "ops action not audited");
        }
    }

    /// Moves an assigned order (before pickup) to `to` at once, or, with no rider named, takes
    /// it back from its rider and dispatches it again without them.
    pub async fn reassign(
        &self,
        order_id: OrderId,
        to: Option<RiderId>,
        actor: &str,
    ) -> Result<Order, EngineError> {
        let order = self.order(order_id).await?;
        if order.stage != Stage::RiderAssigned {
            return Err(EngineError::InvalidState(format!(
                "only an order with a rider, before pickup, can be reassigned (it is {})",
                order.stage.as_str()
            )));
        }
        let moved = match to {
            Some(to) => self.hand_over(order_id, to).await?,
            None => self.take_back(&order).await?,
        };
        self.record_action(
            actor,
            "reassign",
            format!("order:{order_id}"),
            Some(match to {
                Some(to) => format!("rider:{to}"),
                None => "dispatch".into(),
            }),
        )
        .await;
        Ok(moved)
    }

    async fn hand_over(&self, order_id: OrderId, to: RiderId) -> Result<Order, EngineError> {
        let (from, at) = self.dispatcher.send(HandOver { order_id, to }).await??;
        match self.apply(order_id, Command::Reassign(to, at)).await {
            Ok(order) => Ok(order),
            Err(e) => {
                // The order moved on meanwhile (picked up, cancelled): give it back.
                if let Err(error) = self.dispatcher.send(HandOver { order_id, to: from }).await {
                    tracing::error!(%order_id, %error, "could not undo a hand-over");
                }
                Err(e)
            }
        }
    }

    async fn take_back(&self, order: &Order) -> Result<Order, EngineError> {
        // The order first: from here nothing can pick it up, and the board's job follows.
        let unassigned = self.apply(order.id, Command::Unassign).await?;
        let restaurant = OfferRestaurant {
            id: order.restaurant_id,
            name: self
                .services
                .directory
                .restaurant(order.restaurant_id)
                .map(|r| r.name)
                .unwrap_or_default(),
            location: order.restaurant_location,
        };
        let job = TakeBack {
            order_id: order.id,
            restaurant,
            delivery: order.delivery.clone(),
        };
        self.dispatcher.send(job).await??;
        Ok(unassigned)
    }

    /// Takes a rider off: an order it carries (before pickup) goes back to dispatch, an open
    /// offer is withdrawn, and it is offline until it comes back itself.
    pub async fn force_offline(&self, rider: RiderId, actor: &str) -> Result<Rider, EngineError> {
        let current = self.rider(rider).await?;
        if let Some(order_id) = current.order_id {
            let order = self.order(order_id).await?;
            if order.stage == Stage::RiderAssigned {
                self.take_back(&order).await?;
            } else {
                return Err(EngineError::InvalidState(
                    "the rider has the food: it must be delivered (or cancelled) first".into(),
                ));
            }
        }
        let offline = self
            .dispatcher
            .send(SetRiderStatus {
                rider,
                status: RiderStatus::Offline,
            })
            .await??;
        self.record_action(
            actor,
            "rider_offline",
            format!("rider:{rider}"),
            current.order_id.map(|o| format!("order:{o}")),
        )
        .await;
        Ok(offline)
    }
}
