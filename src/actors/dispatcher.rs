//! `Dispatcher`: the actor around the dispatch [`Board`]. It serialises every command on the
//! board through one mailbox, applies the effects the board returns (commits, pushes,
//! give-ups) and restarts from the store if a rule panics. It decides nothing itself.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::error::EngineError;
use super::order::ApplyCommand;
use super::services::Shared;
use super::supervision::{ActorKind, Restarts, guarded};
use crate::dispatch::{Board, BoardConfig, DispatchError, DispatchStats, Effects, Recovered};
use crate::domain::Rider;
use crate::domain::{Command, CustomerId, Delivery, LatLng, OrderId, RiderId, RiderStatus};
use crate::persistence::{Store, WriteUnit};
use crate::wire::OfferRestaurant;

mod offers;
pub use offers::{AcceptOffer, AnswerOffer};

/// How often moved riders' positions are considered for a (rare) snapshot.
const POSITION_ROUND: Duration = Duration::from_secs(1);
/// Messages queued for the dispatcher before senders wait.
const MAILBOX_CAPACITY: usize = 65_536;

pub struct Dispatcher {
    services: Shared,
    board: Board,
    restarts: Restarts,
    /// Set by a restart: reload everything from the store after this backoff.
    reload_after: Option<Duration>,
    /// Reconciliation effects decided while restoring, applied once the actor runs.
    pending: Effects,
    /// Latest position of each rider moved since the last publication (when a feed is on).
    unpublished: HashMap<RiderId, LatLng>,
}

/// Loads what the store holds about dispatch.
pub async fn load_recovered(store: &Store) -> Result<Recovered, EngineError> {
    Ok(Recovered {
        riders: store.riders().await?,
        jobs: store.jobs().await?,
        orders: store.unfinished_orders().await?,
    })
}

impl From<DispatchError> for EngineError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::RiderNotFound => EngineError::NotFound("rider"),
            DispatchError::OfferNotActive => EngineError::OfferNotActive,
            DispatchError::InvalidState(why) => EngineError::InvalidState(why.into()),
        }
    }
}

impl Dispatcher {
    pub fn new(services: Shared, recovered: Recovered) -> Self {
        let board = Board::new(board_config(&services));
        let mut d = Self {
            services,
            board,
            restarts: Restarts::default(),
            reload_after: None,
            pending: Effects::default(),
            unpublished: HashMap::new(),
        };
        d.pending = d.restore(recovered);
        d
    }

    fn restore(&mut self, recovered: Recovered) -> Effects {
        let now = self.now();
        let directory = &self.services.directory;
        self.board.restore(
            recovered,
            |id| directory.restaurant(id).map(|r| r.name).unwrap_or_default(),
            now,
        )
    }

    fn now(&self) -> DateTime<Utc> {
        self.services.clock.now()
    }

    /// Runs a board command; a panic in the rules stops this actor (the supervisor restarts
    /// it from the store) instead of taking its thread down.
    fn run<T>(
        &mut self,
        ctx: &mut Context<Self>,
        command: impl FnOnce(&mut Board, DateTime<Utc>) -> T,
    ) -> Option<T> {
        let now = self.now();
        let board = &mut self.board;
        let result = guarded(|| command(board, now));
        if result.is_none() {
            tracing::error!("dispatch rule panicked; restarting the dispatcher from the store");
            ctx.stop();
        }
        result
    }

    /// Pushes now, enqueues the writes now (so they commit in the order the state changed)
    /// and hands give-ups to their order actors; returns the commit's completion.
    ///
    /// Waiting for a commit is never done on the actor's context: actix polls every future
    /// spawned on a context each time it wakes, so thousands of commits in flight made every
    /// dispatcher message cost thousands of polls.
    fn apply(&self, fx: Effects) -> impl Future<Output = Result<(), EngineError>> + use<> {
        for push in &fx.pushes {
            self.services.hub.send(&push.to, &push.msg);
        }
        self.give_up(fx.give_ups);
        let saved =
            (!fx.writes.is_empty()).then(|| self.services.writer.submit(WriteUnit::new(fx.writes)));
        async move {
            if let Some(saved) = saved {
                saved.await?;
            }
            Ok(())
        }
    }

    /// Applies effects nobody waits for; a failed commit is logged.
    fn apply_detached(&self, fx: Effects) {
        let done = self.apply(fx);
        actix_rt::spawn(async move {
            if let Err(error) = done.await {
                tracing::warn!(%error, "dispatch state not committed");
            }
        });
    }

    fn give_up(&self, orders: Vec<OrderId>) {
        for order_id in orders {
            if let Some(addr) = self.services.directory.order(order_id) {
                actix_rt::spawn(async move {
                    if let Err(error) = addr
                        .send(ApplyCommand::by_engine(Command::GiveUpDispatch))
                        .await
                    {
                        tracing::error!(%order_id, %error, "could not end undispatched order");
                    }
                });
            }
        }
    }
}

fn board_config(services: &Shared) -> BoardConfig {
    let t = &services.timings;
    BoardConfig {
        radius_m: services.policy.radius_m,
        offer_timeout: chrono::Duration::from_std(t.offer_timeout).unwrap_or_default(),
        deadline: chrono::Duration::from_std(t.deadline).unwrap_or_default(),
        cooldown: chrono::Duration::from_std(t.redispatch_cooldown).unwrap_or_default(),
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        let pending = std::mem::take(&mut self.pending);
        self.apply_detached(pending);
        if let Some(backoff) = self.reload_after.take() {
            // Restarted: rebuild from the snapshots before taking any message.
            let store = self.services.store.clone();
            let flushed = self.services.writer.flushed();
            ctx.wait(
                async move {
                    actix_rt::time::sleep(backoff).await;
                    // Writes enqueued before the failure are part of the snapshot.
                    flushed.await?;
                    load_recovered(&store).await
                }
                .into_actor(self)
                .map(|loaded, act, ctx| match loaded {
                    Ok(rec) => {
                        let fx = act.restore(rec);
                        act.apply_detached(fx);
                    }
                    Err(error) => {
                        tracing::error!(%error, "could not reload dispatch state; retrying");
                        ctx.stop();
                    }
                }),
            );
        }
        ctx.run_interval(self.services.timings.tick, |act, ctx| {
            if let Some(fx) = act.run(ctx, |b, now| b.tick(now)) {
                act.apply_detached(fx);
            }
        });
        ctx.run_interval(POSITION_ROUND, |act, ctx| {
            if let Some(fx) = act.run(ctx, |b, now| b.flush_positions(now)) {
                act.apply_detached(fx);
            }
            if !act.unpublished.is_empty() {
                let moved = std::mem::take(&mut act.unpublished);
                let feed = act.services.positions.clone();
                actix_rt::spawn(async move { feed.publish(moved).await });
            }
        });
    }
}

impl Supervised for Dispatcher {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.reload_after = Some(self.restarts.record(
            (&self.services.hub, &self.services.actors),
            ActorKind::Dispatcher,
            "dispatcher".into(),
            self.services.clock.now(),
        ));
    }
}

/// Test hook (only with fault injection enabled): loses all in-memory state and fails.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct InjectDispatcherFault;

impl Handler<InjectDispatcherFault> for Dispatcher {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, _: InjectDispatcherFault, ctx: &mut Self::Context) -> Self::Result {
        if !self.services.faults {
            return Err(EngineError::NotFound("fault injection"));
        }
        tracing::warn!("injected fault: a dispatch rule panics");
        self.run(ctx, |_, _| -> () { panic!("injected dispatcher fault") });
        Ok(())
    }
}

/// Adds a newly registered rider (offline, no position).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddRider {
    pub id: RiderId,
    pub name: String,
}

impl Handler<AddRider> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: AddRider, ctx: &mut Self::Context) {
        self.run(ctx, |b, _| b.add_rider(msg.id, msg.name));
    }
}

#[derive(Message)]
#[rtype(result = "Option<Rider>")]
pub struct GetRider(pub RiderId);

impl Handler<GetRider> for Dispatcher {
    type Result = Option<Rider>;
    fn handle(&mut self, GetRider(id): GetRider, _ctx: &mut Self::Context) -> Self::Result {
        self.board.rider(id)
    }
}

/// A rider going available or offline; answers once the change is durable.
#[derive(Message)]
#[rtype(result = "Result<Rider, EngineError>")]
pub struct SetRiderStatus {
    pub rider: RiderId,
    pub status: RiderStatus,
}

impl Handler<SetRiderStatus> for Dispatcher {
    type Result = ResponseFuture<Result<Rider, EngineError>>;

    fn handle(&mut self, msg: SetRiderStatus, ctx: &mut Self::Context) -> Self::Result {
        let Some(result) = self.run(ctx, |b, now| b.set_status(msg.rider, msg.status, now)) else {
            return Box::pin(async { Err(EngineError::Unavailable) });
        };
        let fx = match result {
            Ok(fx) => fx,
            Err(e) => return Box::pin(async move { Err(e.into()) }),
        };
        let saved = self.apply(fx);
        let view = self.board.rider(msg.rider);
        Box::pin(async move {
            saved.await?;
            view.ok_or(EngineError::NotFound("rider"))
        })
    }
}

#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct UpdateLocation {
    pub rider: RiderId,
    pub at: LatLng,
}

impl Handler<UpdateLocation> for Dispatcher {
    type Result = Result<(), EngineError>;

    fn handle(&mut self, msg: UpdateLocation, ctx: &mut Self::Context) -> Self::Result {
        let (fx, carried) = self
            .run(ctx, |b, now| {
                let fx = b.update_location(msg.rider, msg.at, now)?;
                Ok::<_, DispatchError>((fx, b.whereabouts(msg.rider).and_then(|(_, o)| o)))
            })
            .ok_or(EngineError::Unavailable)??;
        metrics::counter!("dabba_location_updates_total").increment(1);
        // The order the rider carries refreshes its estimate (committed only when it moves
        // by a minute or more).
        if let Some(addr) = carried.and_then(|o| self.services.directory.order(o)) {
            addr.do_send(ApplyCommand::by_engine(Command::Reestimate {
                rider: msg.rider,
                at: msg.at,
            }));
        }
        if self.services.positions.is_enabled() {
            self.unpublished.insert(msg.rider, msg.at);
        }
        self.apply_detached(fx);
        Ok(())
    }
}

/// The restaurant accepted: find a rider for this order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartDispatch {
    pub order_id: OrderId,
    pub restaurant: OfferRestaurant,
    pub delivery: Delivery,
}

impl Handler<StartDispatch> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: StartDispatch, ctx: &mut Self::Context) {
        if let Some(fx) = self.run(ctx, |b, now| {
            b.start(msg.order_id, msg.restaurant, msg.delivery, now)
        }) {
            self.apply_detached(fx);
        }
    }
}

/// The customer moved the delivery point: later offers show the new one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpdateDispatchDelivery {
    pub order_id: OrderId,
    pub delivery: Delivery,
}

impl Handler<UpdateDispatchDelivery> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: UpdateDispatchDelivery, ctx: &mut Self::Context) {
        self.run(ctx, |b, _| b.update_delivery(msg.order_id, msg.delivery));
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct RiderPickedUp {
    pub rider: RiderId,
    pub order_id: OrderId,
    pub customer_id: CustomerId,
}

impl Handler<RiderPickedUp> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: RiderPickedUp, ctx: &mut Self::Context) {
        self.run(ctx, |b, _| {
            b.picked_up(msg.rider, msg.order_id, msg.customer_id)
        });
    }
}

/// The order reached a terminal stage: withdraw its offer, free its rider.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndDispatch {
    pub order_id: OrderId,
}

impl Handler<EndDispatch> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: EndDispatch, ctx: &mut Self::Context) {
        if let Some(fx) = self.run(ctx, |b, now| b.end(msg.order_id, now)) {
            self.apply_detached(fx);
        }
    }
}

/// Runs timers now (used after the test clock moves); answers with orders given up on,
/// which the caller ends itself.
#[derive(Message)]
#[rtype(result = "Vec<OrderId>")]
pub struct RunTimers;

impl Handler<RunTimers> for Dispatcher {
    type Result = MessageResult<RunTimers>;
    fn handle(&mut self, _: RunTimers, ctx: &mut Self::Context) -> Self::Result {
        let Some(mut fx) = self.run(ctx, |b, now| b.tick(now)) else {
            return MessageResult(Vec::new());
        };
        let overdue = std::mem::take(&mut fx.give_ups);
        self.apply_detached(fx);
        MessageResult(overdue)
    }
}

/// The rider's open offer, as pushed.
#[derive(Message)]
#[rtype(result = "Option<crate::wire::ServerMessage>")]
pub struct GetOpenOffer(pub RiderId);

impl Handler<GetOpenOffer> for Dispatcher {
    type Result = MessageResult<GetOpenOffer>;
    fn handle(&mut self, msg: GetOpenOffer, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.board.open_offer(msg.0, self.now()))
    }
}

/// Counts for `/metrics` and the ops view.
#[derive(Message)]
#[rtype(result = "DispatchStats")]
pub struct GetStats;

impl Handler<GetStats> for Dispatcher {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.board.stats())
    }
}

/// Ops hand an assigned order to another rider at once; answers with the rider it came from
/// and where the new one is, once the change is durable.
#[derive(Message)]
#[rtype(result = "Result<(RiderId, Option<LatLng>), EngineError>")]
pub struct HandOver {
    pub order_id: OrderId,
    pub to: RiderId,
}

impl Handler<HandOver> for Dispatcher {
    type Result = ResponseFuture<Result<(RiderId, Option<LatLng>), EngineError>>;

    fn handle(&mut self, msg: HandOver, ctx: &mut Self::Context) -> Self::Result {
        match self.run(ctx, |b, now| b.hand_over(msg.order_id, msg.to, now)) {
            Some(Ok((fx, from, at))) => {
                let done = self.apply(fx);
                Box::pin(async move { done.await.map(|()| (from, at)) })
            }
            Some(Err(e)) => Box::pin(async move { Err(e.into()) }),
            None => Box::pin(async { Err(EngineError::Unavailable) }),
        }
    }
}

/// Ops take an assigned order back from its rider: it is dispatched again at once, without
/// that rider in this round. Answers with the rider it came from.
#[derive(Message)]
#[rtype(result = "Result<RiderId, EngineError>")]
pub struct TakeBack {
    pub order_id: OrderId,
    pub restaurant: OfferRestaurant,
    pub delivery: Delivery,
}

impl Handler<TakeBack> for Dispatcher {
    type Result = ResponseFuture<Result<RiderId, EngineError>>;

    fn handle(&mut self, msg: TakeBack, ctx: &mut Self::Context) -> Self::Result {
        let job = (msg.restaurant, msg.delivery);
        match self.run(ctx, |b, now| b.take_back(msg.order_id, job, now)) {
            Some(Ok((fx, from))) => {
                let done = self.apply(fx);
                Box::pin(async move { done.await.map(|()| from) })
            }
            Some(Err(e)) => Box::pin(async move { Err(e.into()) }),
            None => Box::pin(async { Err(EngineError::Unavailable) }),
        }
    }
}

/// Every rider as dispatch knows it (the ops console's map).
#[derive(Message)]
#[rtype(result = "Vec<Rider>")]
pub struct ListRiders;

impl Handler<ListRiders> for Dispatcher {
    type Result = MessageResult<ListRiders>;

    fn handle(&mut self, _: ListRiders, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.board.all_riders())
    }
}
