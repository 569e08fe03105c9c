//! `Engine`: the entry point the API calls. It finds (or recovers) the actor that owns a piece
//! of state and sends it the command; it never decides a rule itself.

use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};

mod desks;
mod log;
mod ops;
mod orders;
mod payments;
mod payouts;
mod recurring;
mod registration;
mod riders;
mod time;

pub use log::{ConsumerFigures, EventStats, ReplayError, Resume};
pub use ops::ActorKindView;
pub use payments::Mismatch;
pub use payouts::RiderEarnings;
pub use recurring::NewRecurring;

use super::directory::Directory;
use super::dispatcher::{Dispatcher, InjectDispatcherFault, load_recovered};
use super::error::EngineError;
use super::order::{InjectFault, OrderActor};
use super::restaurant::Track;
use super::services::{DispatchTimings, Services, Shared};
use crate::domain::{Clock, CustomerId, Order, OrderId, Policy, RestaurantId};
use crate::events::backbone::{Backbone, BackboneOptions};
use crate::events::fanout::FANOUT;
use crate::events::hub::Hub;
use crate::events::positions::PositionFeed;
use crate::events::relay::Relay;
use crate::persistence::read_cache::ReadCache;
use crate::persistence::writer::{Writer, WriterConfig};
use crate::persistence::{PurgeReport, SavedResponse, Store, UnitOutcome, Write, WriteUnit};

/// The reject reason of an order its restaurant did not answer in time.
pub const RESTAURANT_TIMEOUT: &str = "restaurant_timeout";

/// How far back a customer's history reaches.
pub const HISTORY_WINDOW: chrono::Duration = chrono::Duration::days(183);

/// How often the ledger is reconciled with the gateways' records (also on demand, at
/// `GET /v1/ops/reconciliation`).
const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(3_600);

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
    /// Redis, for publishing rider positions to other readers.
    pub redis_url: Option<String>,
    /// The event streams and their consumers (Redis comes from `redis_url`).
    pub backbone: BackboneOptions,
    /// The payment gateways; `None` starts the fake ones in process (the embedded default).
    pub gateways: Option<Arc<crate::payments::Gateways>>,
    /// Length of a payout period.
    pub payout_period: chrono::Duration,
    /// Placement latency the admission limit steers towards.
    pub admission_target: std::time::Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            writer: WriterConfig::default(),
            faults: false,
            retention: chrono::Duration::days(365),
            retention_every: std::time::Duration::from_secs(3_600),
            redis_url: None,
            backbone: BackboneOptions::default(),
            gateways: None,
            payout_period: chrono::Duration::days(1),
            admission_target: super::admission::TARGET_LATENCY,
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
    payout_period: chrono::Duration,
    /// Sends gateway operations (the backbone's `payments` consumer, and the sweep).
    settlement: Arc<crate::payments::settle::Settlement>,
    /// Placements in flight, limited by their measured latency.
    admission: Arc<super::admission::Admission>,
    /// The stream publisher and the event consumers.
    backbone: Arc<Backbone>,
    /// Held by every change and run of recurring orders: one date is dealt with once.
    recurring_lock: Arc<tokio::sync::Mutex<()>>,
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
        // The fan-out consumer re-sends what was committed after its saved cursor; the
        // hub's head starts there.
        hub.start_at(store.cursor(FANOUT).await?);
        let relay = Relay::new();
        let (writer, writer_task) =
            Writer::new(store.clone(), options.writer.clone(), relay.clone());
        // One thread for the writer, the dispatcher and the order actors: a command and its
        // commit hand over without a thread switch (each hop cost two context switches, and
        // switching was a sixth of the server's CPU under load).
        let arbiter = Arbiter::new();
        arbiter.spawn(writer_task);
        let recovered = load_recovered(&store).await?;
        let positions = match &options.redis_url {
            Some(url) => PositionFeed::redis(url).await,
            None => PositionFeed::default(),
        };
        let unfinished = recovered.orders.clone();
        let subjects = super::subjects::Subjects::default();
        for rider in &recovered.riders {
            subjects.remember(rider.id.0);
        }
        let gateways = match options.gateways.clone() {
            Some(g) => g,
            None => Arc::new(
                crate::payments::in_process(
                    std::time::Duration::from_secs(2),
                    crate::payments::PoolConfig::default(),
                )
                .map_err(|e| EngineError::InvalidState(format!("fake gateways: {e}")))?,
            ),
        };
        let cache = match &options.redis_url {
            Some(url) => ReadCache::redis(url.clone(), &options.backbone.prefix),
            None => ReadCache::off(),
        };
        let services = Arc::new(Services {
            cache,
            gateways: gateways.clone(),
            store,
            writer,
            faults: options.faults,
            clock,
            policy,
            timings,
            hub,
            directory,
            subjects,
            positions,
            actors: Default::default(),
        });
        let settlement = Arc::new(crate::payments::settle::Settlement::new(
            gateways,
            services.store.clone(),
            services.writer.clone(),
            services.clock.clone(),
            options.backbone.policy.max_attempts,
        ));
        // The backbone reads and decodes events off the commit thread.
        let backbone_arbiter = Arbiter::new();
        let backbone = Backbone::start(
            BackboneOptions {
                redis_url: options.redis_url.clone(),
                clock: services.clock.clone(),
                ..options.backbone.clone()
            },
            services.store.clone(),
            services.writer.clone(),
            services.hub.clone(),
            relay.feed(),
            settlement.clone(),
            crate::events::backbone::Threads {
                backbone: backbone_arbiter.handle(),
                commit: arbiter.handle(),
            },
        );
        let for_dispatcher = services.clone();
        let dispatcher = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            Dispatcher::new(for_dispatcher, recovered)
        });
        let engine = Self {
            services,
            dispatcher,
            orders_arbiter: arbiter.handle(),
            arbiters: Arc::new(vec![arbiter.handle(), backbone_arbiter.handle()]),
            retention: options.retention,
            payout_period: options.payout_period,
            settlement,
            admission: Arc::new(super::admission::Admission::new(options.admission_target)),
            backbone: Arc::new(backbone),
            recurring_lock: Arc::default(),
        };
        tracing::info!(orders = unfinished.len(), "recovering unfinished orders");
        for order in unfinished {
            engine
                .desk(order.restaurant_id)
                .do_send(Track(order.clone()));
            engine.spawn_order(order);
        }
        engine.spawn_housekeeping(options.retention_every);
        // No mismatch is known until a reconciliation finds one.
        metrics::gauge!("dabba_reconciliation_mismatches").set(0.0);
        // The arbiters run for the life of the process.
        std::mem::forget(arbiter);
        std::mem::forget(backbone_arbiter);
        Ok(engine)
    }

    /// Stops the engine's threads (and with them its actors, writer and connections).
    pub fn stop(&self) {
        for arbiter in self.arbiters.iter() {
            arbiter.stop();
        }
    }

    /// Periodic jobs: desks and recurring orders every second, resolving payments whose outcome
    /// was unknown, reconciliation every hour, retention.
    fn spawn_housekeeping(&self, retention_every: std::time::Duration) {
        let engine = self.clone();
        self.orders_arbiter.spawn(async move {
            let mut every = actix_rt::time::interval(std::time::Duration::from_secs(1));
            loop {
                every.tick().await;
                engine.run_recurring().await;
                engine.run_desks().await;
            }
        });
        let engine = self.clone();
        self.orders_arbiter.spawn(async move {
            let mut every = actix_rt::time::interval(std::time::Duration::from_secs(2));
            loop {
                every.tick().await;
                if let Err(error) = engine.resolve_unknown_payments().await {
                    tracing::warn!(%error, "resolving unknown payments failed; will retry");
                }
                if let Err(error) = engine.settlement.sweep().await {
                    tracing::warn!(%error, "settlement sweep failed; will retry");
                }
            }
        });
        let engine = self.clone();
        self.orders_arbiter.spawn(async move {
            // First after a full period: a restart does not hammer the gateways' records.
            let mut every = actix_rt::time::interval_at(
                actix_rt::time::Instant::now() + RECONCILE_EVERY,
                RECONCILE_EVERY,
            );
            loop {
                every.tick().await;
                match engine.reconcile().await {
                    Ok((checked, mismatches)) if mismatches.is_empty() => {
                        tracing::info!(
                            checked,
                            "reconciliation: the ledger and the gateways agree"
                        );
                    }
                    Ok((checked, mismatches)) => tracing::warn!(
                        checked,
                        mismatches = mismatches.len(),
                        "reconciliation found mismatches: see /v1/ops/reconciliation"
                    ),
                    Err(error) => tracing::warn!(%error, "reconciliation failed; will retry"),
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
            FaultTarget::ConsumerPoison { order, poisoned } => {
                let probe = self
                    .backbone
                    .probe
                    .as_ref()
                    .ok_or(EngineError::NotFound("probe consumer"))?;
                probe.set_poisoned(order, poisoned);
                Ok(())
            }
        }
    }

    /// Which database holds the state (`sqlite` or `postgres`).
    pub fn store_kind(&self) -> &'static str {
        self.services.store.kind()
    }

    pub fn live_orders(&self) -> usize {
        self.services.directory.live_orders()
    }

    /// The first response saved for an idempotent request, if any.
    pub async fn saved_response(
        &self,
        subject: &str,
        key: &str,
    ) -> Result<Option<SavedResponse>, EngineError> {
        Ok(self.services.store.saved_response(subject, key).await?)
    }

    /// Saves the first response for `(subject, key)`; `false` if one was already saved.
    pub async fn save_response(
        &self,
        subject: String,
        key: String,
        response: SavedResponse,
    ) -> Result<bool, EngineError> {
        let at = self.now();
        let saved = self
            .services
            .writer
            .submit(WriteUnit::one(Write::SaveResponse {
                subject,
                key,
                response,
                at,
            }))
            .await?;
        Ok(saved == UnitOutcome::Applied)
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
    /// The probe consumer fails (or stops failing) every event of this order.
    ConsumerPoison {
        order: OrderId,
        poisoned: bool,
    },
}

/// A validated placement request.
pub struct NewOrderRequest {
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    /// What the customer asked for; the restaurant's menu prices it.
    pub lines: Vec<crate::domain::OrderLine>,
    pub delivery: crate::domain::Delivery,
    pub deliver_at: Option<DateTime<Utc>>,
    pub payment: crate::domain::PaymentMethod,
    /// The gateway token of an online payment.
    pub payment_token: Option<String>,
    /// Set when a recurring order places one of its occurrences.
    pub recurring_id: Option<crate::domain::RecurringId>,
}
