//! `Engine`: the entry point the API calls. It finds (or recovers) the actor that owns a piece
//! of state and sends it the command; it never decides a rule itself.

use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::directory::Directory;
use super::dispatcher::{
    AddRider, AnswerOffer, AssignmentRecorded, DispatchStats, Dispatcher, GetRider, GetStats,
    RunTimers, SetRiderStatus, UpdateLocation,
};
use super::error::EngineError;
use super::hub::Hub;
use super::order::{ApplyCommand, GetOrder, OrderActor};
use super::services::{DispatchTimings, Services, Shared};
use crate::domain::order::{NewOrder, new_order};
use crate::domain::{
    Clock, Command, CustomerId, LatLng, Order, OrderId, Policy, RestaurantId, RiderId, RiderStatus,
};
use crate::persistence::{
    CustomerRecord, HistoryCursor, Placement, RatingRecord, RestaurantRecord, RiderRecord, Store,
};
use crate::wire::RiderView;

/// How far back a customer's history reaches.
pub const HISTORY_WINDOW: chrono::Duration = chrono::Duration::days(183);

#[derive(Clone)]
pub struct Engine {
    services: Shared,
    dispatcher: Addr<Dispatcher>,
    /// Order actors live here, off the HTTP workers' threads.
    orders_arbiter: ArbiterHandle,
}

impl Engine {
    /// Loads restaurants and riders, starts the dispatcher and recovers unfinished orders.
    pub async fn start(
        store: Store,
        clock: Clock,
        policy: Policy,
        timings: DispatchTimings,
    ) -> Result<Self, EngineError> {
        let directory = Directory::default();
        for r in store.restaurants().await? {
            directory.upsert_restaurant(r);
        }
        let riders = store.riders().await?;
        let services = Arc::new(Services {
            store,
            clock,
            policy,
            timings,
            hub: Hub::default(),
            directory,
        });
        let arbiter = Arbiter::new();
        let for_dispatcher = services.clone();
        let dispatcher = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            Dispatcher::new(for_dispatcher, riders)
        });
        let engine = Self {
            services,
            dispatcher,
            orders_arbiter: arbiter.handle(),
        };
        // The arbiter keeps running for the life of the process.
        std::mem::forget(arbiter);
        for order in engine.services.store.unfinished_orders().await? {
            engine.spawn_order(order);
        }
        Ok(engine)
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn hub(&self) -> &Hub {
        &self.services.hub
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.services.clock.now()
    }

    fn spawn_order(&self, order: Order) -> Addr<OrderActor> {
        let id = order.id;
        let services = self.services.clone();
        let dispatcher = self.dispatcher.clone();
        let addr = Supervisor::start_in_arbiter(&self.orders_arbiter, move |_| {
            OrderActor::new(order, services, dispatcher)
        });
        self.services.directory.register_order(id, addr)
    }

    // ---- registration -------------------------------------------------------------------

    pub async fn add_restaurant(
        &self,
        name: String,
        location: LatLng,
    ) -> Result<RestaurantRecord, EngineError> {
        let r = RestaurantRecord {
            id: RestaurantId::new(),
            name,
            location,
            open: true,
            rating_sum: 0,
            rating_count: 0,
        };
        self.services.store.insert_restaurant(&r).await?;
        self.services.directory.upsert_restaurant(r.clone());
        Ok(r)
    }

    pub fn restaurant(&self, id: RestaurantId) -> Result<RestaurantRecord, EngineError> {
        self.services
            .directory
            .restaurant(id)
            .ok_or(EngineError::NotFound("restaurant"))
    }

    pub fn restaurants_near(&self, at: LatLng) -> Vec<(RestaurantRecord, f64)> {
        self.services
            .directory
            .restaurants_near(at, self.services.policy.radius_m)
    }

    pub async fn set_restaurant_open(
        &self,
        id: RestaurantId,
        open: bool,
    ) -> Result<RestaurantRecord, EngineError> {
        self.restaurant(id)?;
        self.services.store.set_restaurant_open(id, open).await?;
        self.services
            .directory
            .update_restaurant(id, |r| r.open = open)
            .ok_or(EngineError::NotFound("restaurant"))
    }

    pub async fn add_customer(
        &self,
        name: String,
        phone: String,
        email: String,
    ) -> Result<CustomerRecord, EngineError> {
        let c = CustomerRecord {
            id: CustomerId::new(),
            name,
            phone,
            email,
        };
        self.services.store.insert_customer(&c).await?;
        Ok(c)
    }

    pub async fn add_rider(&self, name: String) -> Result<RiderView, EngineError> {
        let rec = RiderRecord {
            id: RiderId::new(),
            name: name.clone(),
            status: RiderStatus::Offline,
            location: None,
            offer: None,
            order_id: None,
            rev: 1,
        };
        self.services.store.save_rider(&rec).await?;
        self.dispatcher.send(AddRider { id: rec.id, name }).await?;
        self.rider(rec.id).await
    }

    // ---- riders -------------------------------------------------------------------------

    pub async fn rider(&self, id: RiderId) -> Result<RiderView, EngineError> {
        self.dispatcher
            .send(GetRider(id))
            .await?
            .ok_or(EngineError::NotFound("rider"))
    }

    pub async fn set_rider_status(
        &self,
        rider: RiderId,
        status: RiderStatus,
    ) -> Result<RiderView, EngineError> {
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
        self.dispatcher
            .send(AnswerOffer {
                rider,
                order_id,
                accept: true,
            })
            .await??;
        let assigned = self.apply(order_id, Command::AssignRider(rider)).await;
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
    }

    pub async fn dispatch_stats(&self) -> Result<DispatchStats, EngineError> {
        Ok(self.dispatcher.send(GetStats).await?)
    }

    // ---- orders -------------------------------------------------------------------------

    /// Places an order. With an idempotency key, a repeat of the same request returns the
    /// first order (`Ok((order, false))`); the same key with another request is refused.
    pub async fn place_order(
        &self,
        input: NewOrderRequest,
        idempotency: Option<(String, String)>,
    ) -> Result<(Order, bool), EngineError> {
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
        let order = new_order(
            NewOrder {
                customer_id: customer,
                restaurant_id: restaurant.id,
                restaurant_location: restaurant.location,
                items: input.items,
                delivery: input.delivery,
                deliver_at: input.deliver_at,
            },
            self.now(),
            &self.services.policy,
        )?;
        let idem = idempotency.as_ref().map(|(k, h)| (k.as_str(), h.as_str()));
        match self.services.store.insert_order(&order, idem).await? {
            Placement::Inserted => {}
            Placement::Replayed {
                request_hash,
                order_id,
            } => {
                let hash = idem.map(|(_, h)| h).unwrap_or_default();
                return self.replay(hash, &request_hash, order_id).await;
            }
        }
        metrics::counter!("dabba_orders_placed_total").increment(1);
        tracing::info!(order_id = %order.id, restaurant_id = %order.restaurant_id, "order placed");
        self.services.hub.order_updated(&order);
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

    /// The current order, from its live actor or, once finished, from the store.
    pub async fn order(&self, id: OrderId) -> Result<Order, EngineError> {
        if let Some(addr) = self.services.directory.order(id) {
            return Ok(addr.send(GetOrder).await?);
        }
        self.services
            .store
            .order(id)
            .await?
            .ok_or(EngineError::NotFound("order"))
    }

    /// Applies a command to an order through its actor. Finished orders have no actor: the
    /// state machine still decides, and refuses, so callers get the same errors.
    pub async fn apply(&self, id: OrderId, cmd: Command) -> Result<Order, EngineError> {
        if let Some(addr) = self.services.directory.order(id) {
            return addr.send(ApplyCommand(cmd)).await?;
        }
        let order = self
            .services
            .store
            .order(id)
            .await?
            .ok_or(EngineError::NotFound("order"))?;
        if order.stage.is_terminal() {
            order.apply(cmd, self.now(), &self.services.policy)?;
            return Err(EngineError::InvalidState("the order is finished".into()));
        }
        let addr = self.spawn_order(order);
        addr.send(ApplyCommand(cmd)).await?
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
    ) -> Result<RestaurantRecord, EngineError> {
        if order.stage != crate::domain::Stage::Delivered {
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
        if !self.services.store.add_rating(&rating).await? {
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

    // ---- time ---------------------------------------------------------------------------

    /// Moves the engine's clock and fires every timer that fell due, before returning.
    pub async fn advance_clock(&self, by: chrono::Duration) -> Result<DateTime<Utc>, EngineError> {
        self.services.clock.advance(by);
        let overdue = self.dispatcher.send(RunTimers).await?;
        for order_id in overdue {
            if let Err(error) = self.apply(order_id, Command::GiveUpDispatch).await {
                tracing::warn!(%order_id, %error, "could not end undispatched order");
            }
        }
        Ok(self.now())
    }

    pub async fn ready(&self) -> Result<(), EngineError> {
        Ok(self.services.store.ping().await?)
    }
}

/// A validated placement request.
pub struct NewOrderRequest {
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    pub items: Vec<crate::domain::Item>,
    pub delivery: crate::domain::Delivery,
    pub deliver_at: Option<DateTime<Utc>>,
}
