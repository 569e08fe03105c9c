//! `Engine`: the entry point the API calls. It finds (or recovers) the actor that owns a piece
//! of state and sends it the command; it never decides a rule itself.

use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::directory::Directory;
use super::dispatcher::{
    AddRider, AnswerOffer, AssignmentRecorded, Dispatcher, GetRider, GetStats,
    InjectDispatcherFault, RunTimers, SetRiderStatus, UpdateLocation, load_recovered,
};
use super::error::EngineError;
use super::order::{ApplyCommand, GetOrder, InjectFault, OrderActor};
use super::services::{DispatchTimings, Services, Shared};
use crate::dispatch::DispatchStats;
use crate::domain::order::{NewOrder, new_order};
use crate::domain::{
    Clock, Command, CustomerId, LatLng, Order, OrderId, Policy, RestaurantId, RiderId, RiderStatus,
};
use crate::events::hub::Hub;
use crate::events::relay::{self, Relay};
use crate::persistence::writer::{Writer, WriterConfig};
use crate::persistence::{
    CustomerRecord, HistoryCursor, Placement, PurgeReport, RatingRecord, RestaurantRecord,
    RiderRecord, Store, Write, WriteUnit,
};
use crate::wire::RiderView;

/// How far back a customer's history reaches.
pub const HISTORY_WINDOW: chrono::Duration = chrono::Duration::days(183);

/// Engine settings beyond the dispatch rules.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub writer: WriterConfig,
    /// Allows `InjectFault` messages (tests only).
    pub faults: bool,
    /// Orders older than this are purged.
    pub retention: chrono::Duration,
    /// How often the retention job runs.
    pub retention_every: std::time::Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            writer: WriterConfig::default(),
            faults: false,
            retention: chrono::Duration::days(365),
            retention_every: std::time::Duration::from_secs(3_600),
        }
    }
}

/// Idempotency keys are honoured for at least 24 h; they are kept two days.
const IDEMPOTENCY_KEEP: chrono::Duration = chrono::Duration::days(2);
/// Consumed outbox events are kept a week for replays and audits.
const OUTBOX_KEEP: chrono::Duration = chrono::Duration::days(7);

#[derive(Clone)]
pub struct Engine {
    services: Shared,
    dispatcher: Addr<Dispatcher>,
    /// Order actors live here, off the HTTP workers' threads.
    orders_arbiter: ArbiterHandle,
    /// Every arbiter the engine started (orders and dispatcher, writer), for [`Engine::stop`].
    arbiters: Arc<Vec<ArbiterHandle>>,
    retention: chrono::Duration,
}

impl Engine {
    /// Recovers everything unfinished from the store and starts the actors: replays outbox
    /// events that were committed but not handed on, starts the group-commit writer, rebuilds
    /// dispatch (riders, offers, deadlines) and restarts an actor per unfinished order.
    pub async fn start(
        store: Store,
        clock: Clock,
        policy: Policy,
        timings: DispatchTimings,
        options: EngineOptions,
    ) -> Result<Self, EngineError> {
        let directory = Directory::default();
        for r in store.restaurants().await? {
            directory.upsert_restaurant(r);
        }
        let hub = Hub::default();
        let relay = Relay::new(hub.clone(), store.cursor(relay::FANOUT).await?);
        let replayed = relay.replay(&store).await?;
        if replayed > 0 {
            tracing::info!(replayed, "outbox events handed on after restart");
        }
        let (writer, writer_task) =
            Writer::new(store.clone(), options.writer.clone(), relay.clone());
        let writer_arbiter = Arbiter::new();
        writer_arbiter.spawn(writer_task);
        let recovered = load_recovered(&store).await?;
        let unfinished = recovered.orders.clone();
        let services = Arc::new(Services {
            store,
            writer,
            faults: options.faults,
            clock,
            policy,
            timings,
            hub,
            directory,
        });
        let arbiter = Arbiter::new();
        let for_dispatcher = services.clone();
        let dispatcher = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            Dispatcher::new(for_dispatcher, recovered)
        });
        let engine = Self {
            services,
            dispatcher,
            orders_arbiter: arbiter.handle(),
            arbiters: Arc::new(vec![arbiter.handle(), writer_arbiter.handle()]),
            retention: options.retention,
        };
        tracing::info!(orders = unfinished.len(), "recovering unfinished orders");
        for order in unfinished {
            engine.spawn_order(order);
        }
        engine.spawn_housekeeping(relay, options.retention_every);
        // Both arbiters run for the life of the process.
        std::mem::forget(arbiter);
        std::mem::forget(writer_arbiter);
        Ok(engine)
    }

    /// Stops the engine's threads (and with them its actors, writer and connections).
    pub fn stop(&self) {
        for arbiter in self.arbiters.iter() {
            arbiter.stop();
        }
    }

    /// Periodic jobs: outbox cursor checkpoints and retention.
    fn spawn_housekeeping(&self, relay: Arc<Relay>, retention_every: std::time::Duration) {
        let writer = self.services.writer.clone();
        self.orders_arbiter.spawn(async move {
            let mut every = actix_rt::time::interval(std::time::Duration::from_secs(1));
            loop {
                every.tick().await;
                if let Some(unit) = relay.checkpoint() {
                    writer.submit_detached(unit, "outbox cursor").await;
                }
            }
        });
        let engine = self.clone();
        self.orders_arbiter.spawn(async move {
            let mut every = actix_rt::time::interval(retention_every);
            loop {
                every.tick().await;
                match engine.purge().await {
                    Ok(report) => tracing::info!(?report, "retention job done"),
                    Err(error) => tracing::warn!(%error, "retention job failed; will retry"),
                }
            }
        });
    }

    /// Removes data past retention (see [`Store::purge`]).
    pub async fn purge(&self) -> Result<PurgeReport, EngineError> {
        let now = self.now();
        Ok(self
            .services
            .store
            .purge(
                now - self.retention,
                now - IDEMPOTENCY_KEEP,
                now - OUTBOX_KEEP,
            )
            .await?)
    }

    /// Makes an actor fail as a bug would (fault injection must be enabled).
    pub async fn inject_fault(&self, target: FaultTarget) -> Result<(), EngineError> {
        if !self.services.faults {
            return Err(EngineError::NotFound("fault injection"));
        }
        match target {
            FaultTarget::Order(id) => {
                let addr = self
                    .services
                    .directory
                    .order(id)
                    .ok_or(EngineError::NotFound("live order"))?;
                addr.send(InjectFault).await?
            }
            FaultTarget::Dispatcher => self.dispatcher.send(InjectDispatcherFault).await?,
        }
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
        self.services
            .writer
            .submit(WriteUnit::one(Write::SaveRider(rec.clone())))
            .await?;
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
        let hash = idempotency
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_default();
        let unit = WriteUnit::new(vec![
            Write::PlaceOrder {
                order: order.clone(),
                idempotency,
            },
            Write::Event(relay::order_updated(&order, order.placed_at)),
        ]);
        if let Some(Placement::Replayed {
            request_hash,
            order_id,
        }) = self.services.writer.submit(unit).await?
        {
            return self.replay(&hash, &request_hash, order_id).await;
        }
        metrics::counter!("dabba_orders_placed_total").increment(1);
        tracing::info!(order_id = %order.id, restaurant_id = %order.restaurant_id, "order placed");
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

    /// Ready when the store answers and the writer is taking writes.
    pub async fn ready(&self) -> Result<(), EngineError> {
        if !self.services.writer.health().is_up() {
            return Err(crate::persistence::StoreError::Down.into());
        }
        Ok(self.services.store.ping().await?)
    }
}

/// Which actor a fault is injected into.
#[derive(Clone, Copy, Debug)]
pub enum FaultTarget {
    Order(OrderId),
    Dispatcher,
}

/// A validated placement request.
pub struct NewOrderRequest {
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    pub items: Vec<crate::domain::Item>,
    pub delivery: crate::domain::Delivery,
    pub deliver_at: Option<DateTime<Utc>>,
}
