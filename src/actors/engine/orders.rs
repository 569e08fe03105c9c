//! Orders: placement (idempotent), reads, commands through the order's actor, history and
//! ratings.

use super::{Engine, HISTORY_WINDOW, NewOrderRequest};
use crate::actors::error::EngineError;
use crate::actors::order::{ApplyCommand, GetOrder};
use crate::actors::restaurant::{Admit, Track};
use crate::actors::supervision::ActorKind;
use crate::domain::ledger;
use crate::domain::order::{NewOrder, new_order};
use crate::domain::{Command, CustomerId, Order, OrderId, Party, Restaurant, Stage};
use crate::events::relay;
use crate::persistence::{HistoryCursor, RatingRecord, StoreError, UnitOutcome, Write, WriteUnit};

impl Engine {
    /// Places an order. With an idempotency key, a repeat of the same request returns the
    /// first order (`Ok((order, false))`); the same key with another request is refused.
    pub async fn place_order(
        &self,
        input: NewOrderRequest,
        idempotency: Option<(String, String)>,
    ) -> Result<(Order, bool), EngineError> {
        // New work is refused first when placements run slow (see `admission`).
        let Some(_permit) = self.admission.try_enter() else {
            return Err(StoreError::Overloaded.into());
        };
        let customer = input.customer_id;
        if let Some((key, hash)) = &idempotency
            && let Some((first_hash, order_id)) = self
                .services
                .store
                .idempotent_placement(customer, key)
                .await?
        {
            return self.replay(hash, &first_hash, order_id).await;
        }
        let restaurant = self.restaurant(input.restaurant_id)?;
        if !restaurant.open {
            return Err(EngineError::RestaurantClosed);
        }
        let desk = self.desk(restaurant.id);
        let mut order = new_order(
            NewOrder {
                customer_id: customer,
                restaurant_id: restaurant.id,
                restaurant_location: restaurant.location,
                items: restaurant.menu.price(&input.lines)?,
                delivery: input.delivery,
                deliver_at: input.deliver_at,
                payment: None,
                prep_minutes: restaurant.prep_minutes,
                recurring_id: input.recurring_id,
            },
            self.now(),
            &self.services.policy,
        )?;
        // A scheduled order takes no room until its kitchen must start. Beyond capacity an
        // order is refused, or placed and queued: its restaurant is asked when room frees.
        let in_mailbox = self.services.actors.enter(ActorKind::Restaurant);
        if self.services.policy.restaurant_capacity.is_some()
            && order.stage != Stage::Scheduled
            && let Err(busy) = desk.send(Admit).await?
        {
            if !self.services.policy.queue_when_busy {
                return Err(busy.into());
            }
            order.asked_at = None;
        }
        drop(in_mailbox);
        let hash = idempotency
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_default();
        let authorized = self
            .authorize(&mut order, input.payment, input.payment_token)
            .await?;
        let mut writes = vec![
            Write::PlaceOrder {
                order: order.clone(),
                idempotency,
            },
            Write::Event(relay::order_updated(&order, order.placed_at)),
        ];
        writes.extend(authorized.iter().cloned().map(Write::SavePaymentOp));
        writes.extend(ledger::authorization(&order).map(Write::Ledger));
        let unit = WriteUnit::new(writes);
        if let UnitOutcome::Replayed {
            request_hash,
            order_id,
        } = self.services.writer.submit_new(unit).await?
        {
            // A concurrent repeat won: release what this one authorised.
            if let Some(op) = authorized {
                self.void_authorization(op);
            }
            return self.replay(&hash, &request_hash, order_id).await;
        }
        metrics::counter!("dabba_orders_placed_total").increment(1);
        tracing::info!(order_id = %order.id, restaurant_id = %order.restaurant_id, "order placed");
        desk.do_send(Track(order.clone()));
        self.spawn_order(order.clone());
        Ok((order, true))
    }

    async fn replay(
        &self,
        hash: &str,
        first_hash: &str,
        order_id: OrderId,
    ) -> Result<(Order, bool), EngineError> {
        if hash != first_hash {
            return Err(EngineError::IdempotencyKeyReused);
        }
        Ok((self.order(order_id).await?, false))
    }

    /// The current order, from its live actor or, once finished, from the read cache or the
    /// store.
    pub async fn order(&self, id: OrderId) -> Result<Order, EngineError> {
        if let Some(addr) = self.services.directory.order(id) {
            let _in_mailbox = self.services.actors.enter(ActorKind::Order);
            return Ok(addr.send(GetOrder).await?);
        }
        if let Some(order) = self.services.cache.get(id).await {
            return Ok(order);
        }
        let order = self
            .services
            .store
            .order(id)
            .await?
            .ok_or(EngineError::NotFound("order"))?;
        self.services.cache.put(&order).await;
        Ok(order)
    }

    /// Applies a command of the engine's own to an order through its actor.
    pub async fn apply(&self, id: OrderId, cmd: Command) -> Result<Order, EngineError> {
        self.apply_checked(id, ApplyCommand::by_engine(cmd)).await
    }

    /// Applies a command asked for by `party`: refused as `Forbidden` unless the party takes
    /// part in the order, checked by the order's actor in the same step as the change.
    pub async fn act(&self, party: Party, id: OrderId, cmd: Command) -> Result<Order, EngineError> {
        let msg = ApplyCommand {
            cmd,
            by: Some(party),
        };
        self.apply_checked(id, msg).await
    }

    /// Finished orders have no actor: the state machine still decides, and refuses, so callers
    /// get the same errors.
    async fn apply_checked(&self, id: OrderId, msg: ApplyCommand) -> Result<Order, EngineError> {
        let _in_mailbox = self.services.actors.enter(ActorKind::Order);
        if let Some(addr) = self.services.directory.order(id) {
            return addr.send(msg).await?;
        }
        let order = self
            .services
            .store
            .order(id)
            .await?
            .ok_or(EngineError::NotFound("order"))?;
        if msg.by.is_some_and(|party| !order.involves(party)) {
            return Err(EngineError::Forbidden);
        }
        if order.stage.is_terminal() {
            order.apply(msg.cmd, self.now(), &self.services.policy)?;
            return Err(EngineError::InvalidState("the order is finished".into()));
        }
        let addr = self.spawn_order(order);
        addr.send(msg).await?
    }

    /// Every offer of the order to a rider and how it ended, oldest first.
    pub async fn dispatch_attempts(
        &self,
        id: OrderId,
    ) -> Result<Vec<crate::persistence::AttemptRecord>, EngineError> {
        Ok(self.services.store.dispatch_attempts(id).await?)
    }

    pub async fn history(
        &self,
        customer: CustomerId,
        cursor: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<Vec<Order>, EngineError> {
        let since = self.now() - HISTORY_WINDOW;
        Ok(self
            .services
            .store
            .customer_orders(customer, since, cursor, limit)
            .await?)
    }

    pub async fn rate(
        &self,
        order: &Order,
        stars: u8,
        comment: Option<String>,
    ) -> Result<Restaurant, EngineError> {
        if !order.may_be_rated() {
            return Err(EngineError::InvalidState(
                "only delivered orders can be rated".into(),
            ));
        }
        let rating = RatingRecord {
            order_id: order.id,
            restaurant_id: order.restaurant_id,
            customer_id: order.customer_id,
            stars,
            comment,
            at: self.now(),
        };
        let rated = self
            .services
            .writer
            .submit(WriteUnit::one(Write::AddRating(rating)))
            .await?;
        if rated == UnitOutcome::AlreadyClaimed {
            return Err(EngineError::AlreadyRated);
        }
        self.services
            .directory
            .update_restaurant(order.restaurant_id, |r| {
                r.rating_sum += i64::from(stars);
                r.rating_count += 1;
            })
            .ok_or(EngineError::NotFound("restaurant"))
    }
}
