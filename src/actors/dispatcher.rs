//! `Dispatcher`: the single owner of every rider's dispatch state and of the R-tree of
//! available riders. Owning both in one actor is what makes "one rider, one offer" hold
//! without locks: reserving a rider (taking it out of the index) and handing it an offer are
//! one step of one mailbox, so two orders can never race for the same rider.
//!
//! Invariant, kept by [`Dispatcher::reindex`]: a rider is in `available` iff it is
//! `Available`, has a known position, no offer and no order.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::error::EngineError;
use super::order::ApplyCommand;
use super::services::Shared;
use super::supervision::Restarts;
use crate::domain::{
    Command, CustomerId, Delivery, LatLng, Order, OrderId, RiderId, RiderStatus, Stage,
};
use crate::events::hub::Audience;
use crate::geo::{PointIndex, distance_m};
use crate::persistence::{JobRecord, RiderRecord, Write, WriteUnit};
use crate::wire::{OfferRestaurant, OfferView, RiderView, ServerMessage};

#[derive(Clone, Debug)]
struct Offer {
    order_id: OrderId,
    expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
struct Assignment {
    order_id: OrderId,
    /// Set at pickup: from then on the customer sees this rider's position.
    customer: Option<CustomerId>,
}

#[derive(Clone, Debug)]
struct Rider {
    name: String,
    status: RiderStatus,
    location: Option<LatLng>,
    offer: Option<Offer>,
    order: Option<Assignment>,
    rev: i64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum JobState {
    /// Nobody in range that has not been tried: wait for riders to come online or closer.
    Waiting,
    Offered(RiderId),
    /// The rider accepted; the order actor is recording the assignment.
    Assigning(RiderId),
    /// Past the deadline: the order is being ended `no_rider_found` (retried if that fails).
    GivingUp {
        since: DateTime<Utc>,
    },
}

/// An order looking for a rider.
#[derive(Clone, Debug)]
struct Job {
    seq: u64,
    restaurant: OfferRestaurant,
    delivery: Delivery,
    tried: HashSet<RiderId>,
    deadline: DateTime<Utc>,
    state: JobState,
}

/// Positions are flushed a slice at a time: every rider's within `POSITION_SLICES` rounds.
const POSITION_SLICES: u64 = 10;
const POSITION_ROUND: Duration = Duration::from_millis(200);

pub struct Dispatcher {
    services: Shared,
    riders: HashMap<RiderId, Rider>,
    available: PointIndex<RiderId>,
    jobs: HashMap<OrderId, Job>,
    /// Which rider carries which order, for releasing riders when an order ends.
    carrying: HashMap<OrderId, RiderId>,
    next_seq: u64,
    /// Riders whose position moved since their last snapshot.
    moved: HashSet<RiderId>,
    /// Which slice of `moved` the next flush writes.
    position_round: u64,
    restarts: Restarts,
    /// Set by a restart: reload everything from the store after this backoff.
    reload_after: Option<Duration>,
    /// Reconciliation writes decided while restoring, enqueued once the actor runs.
    pending_fixes: Vec<Write>,
}

/// What the store holds about dispatch, loaded at start and after a restart.
pub struct Recovered {
    pub riders: Vec<RiderRecord>,
    pub jobs: Vec<JobRecord>,
    /// Unfinished orders: the source of truth for who carries what and who needs a rider.
    pub orders: Vec<Order>,
}

impl Recovered {
    pub async fn load(store: &crate::persistence::Store) -> Result<Self, EngineError> {
        Ok(Self {
            riders: store.riders().await?,
            jobs: store.jobs().await?,
            orders: store.unfinished_orders().await?,
        })
    }
}

impl Dispatcher {
    pub fn new(services: Shared, recovered: Recovered) -> Self {
        let mut d = Self {
            services,
            riders: HashMap::new(),
            available: PointIndex::new(),
            jobs: HashMap::new(),
            carrying: HashMap::new(),
            next_seq: 0,
            moved: HashSet::new(),
            position_round: 0,
            restarts: Restarts::default(),
            reload_after: None,
            pending_fixes: Vec::new(),
        };
        d.pending_fixes = d.restore(recovered);
        d
    }

    /// Rebuilds all dispatch state from the store's snapshots, reconciling riders and jobs
    /// with the orders (whose snapshots are the truth): a rider keeps an order only if the
    /// order says so, an offer only if its order still looks for a rider. Offers and
    /// deadlines keep their persisted times, so what expired while down fires on the next tick.
    fn restore(&mut self, rec: Recovered) -> Vec<Write> {
        let now = self.now();
        self.riders.clear();
        self.available = PointIndex::new();
        self.jobs.clear();
        self.carrying.clear();
        self.moved.clear();
        let mut fixes = Vec::new();
        let mut records: HashMap<RiderId, RiderRecord> = HashMap::new();
        for r in rec.riders {
            self.riders.insert(
                r.id,
                Rider {
                    name: r.name.clone(),
                    status: r.status,
                    location: r.location,
                    offer: None,
                    order: None,
                    rev: r.rev,
                },
            );
            records.insert(r.id, r);
        }
        let mut saved_jobs: HashMap<OrderId, JobRecord> =
            rec.jobs.into_iter().map(|j| (j.order_id, j)).collect();
        for o in &rec.orders {
            match (o.stage, o.rider_id) {
                (Stage::RiderAssigned | Stage::PickedUp, Some(rider_id)) => {
                    if let Some(r) = self.riders.get_mut(&rider_id) {
                        r.status = RiderStatus::Busy;
                        r.order = Some(Assignment {
                            order_id: o.id,
                            customer: (o.stage == Stage::PickedUp).then_some(o.customer_id),
                        });
                        self.carrying.insert(o.id, rider_id);
                    }
                }
                (Stage::FindingRider, _) => {
                    let saved = saved_jobs.remove(&o.id);
                    let deadline = saved
                        .as_ref()
                        .map(|j| j.deadline)
                        .unwrap_or_else(|| now + self.deadline());
                    let name = self
                        .services
                        .directory
                        .restaurant(o.restaurant_id)
                        .map(|r| r.name)
                        .unwrap_or_default();
                    self.next_seq += 1;
                    self.jobs.insert(
                        o.id,
                        Job {
                            seq: self.next_seq,
                            restaurant: OfferRestaurant {
                                id: o.restaurant_id,
                                name,
                                location: o.restaurant_location,
                            },
                            delivery: o.delivery.clone(),
                            tried: saved
                                .map(|j| j.tried.into_iter().collect())
                                .unwrap_or_default(),
                            deadline,
                            state: JobState::Waiting,
                        },
                    );
                }
                _ => {}
            }
        }
        // Jobs of orders that moved on while we were down.
        fixes.extend(saved_jobs.into_keys().map(Write::DeleteJob));
        for (id, rec) in &records {
            let Some(r) = self.riders.get_mut(id) else {
                continue;
            };
            if r.status == RiderStatus::Busy && r.order.is_none() {
                r.status = RiderStatus::Available; // its assignment never committed
            }
            if let Some((order_id, expires_at)) = rec.offer
                && r.order.is_none()
                && r.status == RiderStatus::Available
                && let Some(job) = self.jobs.get_mut(&order_id)
                && job.state == JobState::Waiting
            {
                r.offer = Some(Offer {
                    order_id,
                    expires_at,
                });
                job.state = JobState::Offered(*id);
                job.tried.insert(*id);
            }
        }
        let ids: Vec<RiderId> = self.riders.keys().copied().collect();
        for id in ids {
            self.reindex(id);
            let changed = {
                let (r, rec) = (&self.riders[&id], &records[&id]);
                r.status != rec.status
                    || r.order.as_ref().map(|a| a.order_id) != rec.order_id
                    || r.offer.as_ref().map(|o| (o.order_id, o.expires_at)) != rec.offer
            };
            if changed && let Some(w) = self.rider_write(id) {
                fixes.push(w);
            }
        }
        tracing::info!(
            riders = self.riders.len(),
            jobs = self.jobs.len(),
            carrying = self.carrying.len(),
            "dispatch state restored"
        );
        fixes
    }

    fn deadline(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.services.timings.deadline).unwrap_or_default()
    }

    fn now(&self) -> DateTime<Utc> {
        self.services.clock.now()
    }

    /// The one place that decides whether a rider may be offered orders.
    fn reindex(&mut self, id: RiderId) {
        let Some(r) = self.riders.get(&id) else {
            self.available.remove(id);
            return;
        };
        match (r.status, r.location, &r.offer, &r.order) {
            (RiderStatus::Available, Some(at), None, None) => self.available.upsert(id, at),
            _ => {
                self.available.remove(id);
            }
        }
    }

    /// Bumps the rider's revision and returns its snapshot write.
    fn rider_write(&mut self, id: RiderId) -> Option<Write> {
        let r = self.riders.get_mut(&id)?;
        r.rev += 1;
        Some(Write::SaveRider(RiderRecord {
            id,
            name: r.name.clone(),
            status: r.status,
            location: r.location,
            offer: r.offer.as_ref().map(|o| (o.order_id, o.expires_at)),
            order_id: r.order.as_ref().map(|a| a.order_id),
            rev: r.rev,
        }))
    }

    fn job_write(&self, order_id: OrderId) -> Option<Write> {
        let job = self.jobs.get(&order_id)?;
        Some(Write::SaveJob(JobRecord {
            order_id,
            tried: job.tried.iter().copied().collect(),
            deadline: job.deadline,
        }))
    }

    /// Enqueues the writes now (so they commit in the order the state changed) without
    /// waiting for them.
    ///
    /// The wait for the commit runs as a plain task, not on the actor's context: actix polls
    /// every future spawned on a context each time it wakes, so thousands of commits in
    /// flight made every dispatcher message cost thousands of polls.
    fn persist(&self, writes: Vec<Write>, _ctx: &mut Context<Self>) {
        if writes.is_empty() {
            return;
        }
        actix_rt::spawn(
            self.services
                .writer
                .submit_detached(WriteUnit::new(writes), "dispatch state"),
        );
    }

    /// Enqueues the writes now; the future resolves once they are durable.
    fn persist_now(
        &self,
        writes: Vec<Write>,
    ) -> impl Future<Output = Result<(), EngineError>> + use<> {
        let saved = self.services.writer.submit(WriteUnit::new(writes));
        async move {
            saved.await?;
            Ok(())
        }
    }

    fn view(&self, id: RiderId) -> Option<RiderView> {
        let r = self.riders.get(&id)?;
        Some(RiderView {
            id,
            name: r.name.clone(),
            status: r.status,
            location: r.location,
            offer: r.offer.as_ref().map(|o| OfferView {
                order_id: o.order_id,
                expires_at: o.expires_at,
            }),
            order_id: r.order.as_ref().map(|a| a.order_id),
        })
    }

    /// Offers a waiting order to the nearest available rider in range it has not tried.
    fn try_offer(&mut self, order_id: OrderId, ctx: &mut Context<Self>) {
        let radius = self.services.policy.radius_m;
        let Some(job) = self.jobs.get_mut(&order_id) else {
            return;
        };
        if job.state != JobState::Waiting {
            return;
        }
        let Some((rider_id, distance_m)) =
            self.available
                .nearest_within(job.restaurant.location, radius, |id| {
                    job.tried.contains(&id)
                })
        else {
            return;
        };
        let expires_at = self.services.clock.now()
            + chrono::Duration::from_std(self.services.timings.offer_timeout).unwrap_or_default();
        job.tried.insert(rider_id);
        job.state = JobState::Offered(rider_id);
        let msg = ServerMessage::Offer {
            order_id,
            restaurant: job.restaurant.clone(),
            delivery: job.delivery.clone(),
            expires_at,
        };
        if let Some(r) = self.riders.get_mut(&rider_id) {
            r.offer = Some(Offer {
                order_id,
                expires_at,
            });
        }
        self.reindex(rider_id);
        tracing::info!(%order_id, %rider_id, distance_m = distance_m.round(), "offer sent");
        metrics::counter!("dabba_offers_total").increment(1);
        let writes = self
            .job_write(order_id)
            .into_iter()
            .chain(self.rider_write(rider_id))
            .collect();
        self.persist(writes, ctx);
        self.services.hub.send(&[Audience::Rider(rider_id)], &msg);
    }

    /// Offers every waiting order, oldest first (each may now find a rider).
    fn offer_waiting(&mut self, ctx: &mut Context<Self>) {
        self.offer_waiting_where(|_| true, ctx);
    }

    /// Offers the waiting orders whose restaurant is within reach of `at`, oldest first: a
    /// free rider moving can only have brought those in range, so the others need no search.
    fn offer_waiting_near(&mut self, at: LatLng, ctx: &mut Context<Self>) {
        let radius = self.services.policy.radius_m;
        self.offer_waiting_where(|job| distance_m(job.restaurant.location, at) <= radius, ctx);
    }

    fn offer_waiting_where(&mut self, pick: impl Fn(&Job) -> bool, ctx: &mut Context<Self>) {
        if self.available.is_empty() {
            return;
        }
        let mut waiting: Vec<(u64, OrderId)> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.state == JobState::Waiting && pick(j))
            .map(|(id, j)| (j.seq, *id))
            .collect();
        waiting.sort_unstable();
        for (_, order_id) in waiting {
            self.try_offer(order_id, ctx);
        }
    }

    /// Takes back the open offer of `order_id` (timeout, order ended, rider went offline).
    fn withdraw_offer(&mut self, rider_id: RiderId, order_id: OrderId, ctx: &mut Context<Self>) {
        let Some(r) = self.riders.get_mut(&rider_id) else {
            return;
        };
        if r.offer.as_ref().map(|o| o.order_id) != Some(order_id) {
            return;
        }
        r.offer = None;
        self.reindex(rider_id);
        self.services.hub.send(
            &[Audience::Rider(rider_id)],
            &ServerMessage::OfferWithdrawn { order_id },
        );
        let write = self.rider_write(rider_id).into_iter().collect();
        self.persist(write, ctx);
    }

    /// Frees a rider from `order_id` (delivered, cancelled, or the assignment failed).
    fn release(&mut self, rider_id: RiderId, order_id: OrderId, ctx: &mut Context<Self>) {
        let Some(r) = self.riders.get_mut(&rider_id) else {
            return;
        };
        if r.order.as_ref().map(|a| a.order_id) != Some(order_id) {
            return;
        }
        r.order = None;
        if r.status == RiderStatus::Busy {
            r.status = RiderStatus::Available;
        }
        self.carrying.remove(&order_id);
        self.reindex(rider_id);
        let write = self.rider_write(rider_id).into_iter().collect();
        self.persist(write, ctx);
        self.offer_waiting(ctx);
    }

    /// Expires offers and gives up on orders past their deadline; returns the latter so the
    /// caller can end them (`no_rider_found`).
    fn tick(&mut self, ctx: &mut Context<Self>) -> Vec<OrderId> {
        let now = self.now();
        let expired: Vec<(OrderId, RiderId)> = self
            .jobs
            .iter()
            .filter_map(|(order_id, j)| match j.state {
                JobState::Offered(rider) => {
                    let due = self
                        .riders
                        .get(&rider)
                        .and_then(|r| r.offer.as_ref())
                        .is_none_or(|o| o.expires_at <= now);
                    due.then_some((*order_id, rider))
                }
                _ => None,
            })
            .collect();
        for (order_id, rider_id) in expired {
            tracing::info!(%order_id, %rider_id, "offer timed out");
            metrics::counter!("dabba_offer_timeouts_total").increment(1);
            self.withdraw_offer(rider_id, order_id, ctx);
            if let Some(job) = self.jobs.get_mut(&order_id) {
                job.state = JobState::Waiting;
            }
        }
        let retry = chrono::Duration::seconds(5);
        let overdue: Vec<OrderId> = self
            .jobs
            .iter()
            .filter(|(_, j)| match j.state {
                JobState::Waiting | JobState::Offered(_) => j.deadline <= now,
                JobState::GivingUp { since } => since + retry <= now,
                JobState::Assigning(_) => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for order_id in &overdue {
            let Some(job) = self.jobs.get_mut(order_id) else {
                continue;
            };
            let offered = match job.state {
                JobState::Offered(rider_id) => Some(rider_id),
                _ => None,
            };
            job.state = JobState::GivingUp { since: now };
            if let Some(rider_id) = offered {
                self.withdraw_offer(rider_id, *order_id, ctx);
            }
            tracing::info!(%order_id, "no rider found before the deadline");
        }
        self.offer_waiting(ctx);
        overdue
    }

    fn give_up(&self, orders: Vec<OrderId>) {
        for order_id in orders {
            if let Some(addr) = self.services.directory.order(order_id) {
                actix_rt::spawn(async move {
                    if let Err(error) = addr.send(ApplyCommand(Command::GiveUpDispatch)).await {
                        tracing::error!(%order_id, %error, "could not end undispatched order");
                    }
                });
            }
        }
    }

    /// Writes the positions of one slice of the moved riders. Positions are telemetry, so
    /// each rider's is written at most once per [`POSITION_SLICES`] rounds; flushing a slice
    /// per round (not everyone at once) keeps any one commit small, so orders queued behind
    /// it do not wait for thousands of position rows.
    fn flush_moved(&mut self, ctx: &mut Context<Self>) {
        self.position_round = (self.position_round + 1) % POSITION_SLICES;
        let round = self.position_round;
        let due: Vec<RiderId> = self
            .moved
            .iter()
            .filter(|id| (id.0.as_u128() % POSITION_SLICES as u128) as u64 == round)
            .copied()
            .collect();
        let writes = due
            .into_iter()
            .filter_map(|id| {
                self.moved.remove(&id);
                self.rider_write(id)
            })
            .collect();
        self.persist(writes, ctx);
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(65_536);
        let fixes = std::mem::take(&mut self.pending_fixes);
        self.persist(fixes, ctx);
        if let Some(backoff) = self.reload_after.take() {
            // Restarted: rebuild from the snapshots before taking any message.
            let store = self.services.store.clone();
            let flushed = self.services.writer.flushed();
            ctx.wait(
                async move {
                    actix_rt::time::sleep(backoff).await;
                    // Writes enqueued before the failure are part of the snapshot.
                    flushed.await?;
                    Recovered::load(&store).await
                }
                .into_actor(self)
                .map(|loaded, act, ctx| match loaded {
                    Ok(rec) => {
                        let fixes = act.restore(rec);
                        act.persist(fixes, ctx);
                    }
                    Err(error) => {
                        tracing::error!(%error, "could not reload dispatch state; retrying");
                        ctx.stop();
                    }
                }),
            );
        }
        ctx.run_interval(self.services.timings.tick, |act, ctx| {
            let overdue = act.tick(ctx);
            act.give_up(overdue);
        });
        // Positions are telemetry: written in batches rather than on every update.
        ctx.run_interval(POSITION_ROUND, |act, ctx| act.flush_moved(ctx));
    }
}

impl Supervised for Dispatcher {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.reload_after = Some(self.restarts.record(
            &self.services.hub,
            "dispatcher",
            "dispatcher".into(),
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
        tracing::warn!("injected fault: dropping dispatch state and failing");
        self.riders.clear();
        self.jobs.clear();
        self.available = PointIndex::new();
        ctx.stop();
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
    fn handle(&mut self, msg: AddRider, _ctx: &mut Self::Context) {
        self.riders.entry(msg.id).or_insert(Rider {
            name: msg.name,
            status: RiderStatus::Offline,
            location: None,
            offer: None,
            order: None,
            rev: 1,
        });
    }
}

#[derive(Message)]
#[rtype(result = "Option<RiderView>")]
pub struct GetRider(pub RiderId);

impl Handler<GetRider> for Dispatcher {
    type Result = Option<RiderView>;
    fn handle(&mut self, GetRider(id): GetRider, _ctx: &mut Self::Context) -> Self::Result {
        self.view(id)
    }
}

/// A rider going available or offline (`busy` is the engine's to set).
#[derive(Message)]
#[rtype(result = "Result<RiderView, EngineError>")]
pub struct SetRiderStatus {
    pub rider: RiderId,
    pub status: RiderStatus,
}

impl Handler<SetRiderStatus> for Dispatcher {
    type Result = ResponseFuture<Result<RiderView, EngineError>>;

    fn handle(&mut self, msg: SetRiderStatus, ctx: &mut Self::Context) -> Self::Result {
        let Some(r) = self.riders.get_mut(&msg.rider) else {
            return Box::pin(async { Err(EngineError::NotFound("rider")) });
        };
        if msg.status == RiderStatus::Busy {
            return Box::pin(async {
                Err(EngineError::InvalidState(
                    "riders cannot set themselves busy".into(),
                ))
            });
        }
        if r.order.is_some() {
            return Box::pin(async {
                Err(EngineError::InvalidState(
                    "a rider on a delivery stays busy until it is delivered".into(),
                ))
            });
        }
        r.status = msg.status;
        let open_offer = r.offer.as_ref().map(|o| o.order_id);
        if let (RiderStatus::Offline, Some(order_id)) = (msg.status, open_offer) {
            // Going offline with an offer open counts as rejecting it.
            self.withdraw_offer(msg.rider, order_id, ctx);
            if let Some(job) = self.jobs.get_mut(&order_id) {
                job.state = JobState::Waiting;
            }
        }
        self.reindex(msg.rider);
        self.offer_waiting(ctx);
        let writes = self.rider_write(msg.rider).into_iter().collect();
        let saved = self.persist_now(writes);
        let view = self.view(msg.rider);
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
        let r = self
            .riders
            .get_mut(&msg.rider)
            .ok_or(EngineError::NotFound("rider"))?;
        let was_indexed = self.available.contains(msg.rider);
        r.location = Some(msg.at);
        metrics::counter!("dabba_location_updates_total").increment(1);
        let carrying = r.order.clone();
        self.moved.insert(msg.rider);
        self.reindex(msg.rider);
        let mut to = vec![Audience::Ops];
        let mut order_id = None;
        if let Some(Assignment {
            order_id: o,
            customer: Some(c),
        }) = carrying
        {
            to.push(Audience::Customer(c));
            order_id = Some(o);
        }
        self.services.hub.send(
            &to,
            &ServerMessage::RiderLocation {
                order_id,
                rider_id: msg.rider,
                location: msg.at,
            },
        );
        // A rider newly able to take orders, or moving while free, may be in range of a
        // waiting order now.
        if self.available.contains(msg.rider) {
            if was_indexed {
                self.offer_waiting_near(msg.at, ctx);
            } else {
                self.offer_waiting(ctx);
            }
        }
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
        if self.jobs.contains_key(&msg.order_id) || self.carrying.contains_key(&msg.order_id) {
            return;
        }
        let deadline = self.now() + self.deadline();
        self.next_seq += 1;
        self.jobs.insert(
            msg.order_id,
            Job {
                seq: self.next_seq,
                restaurant: msg.restaurant,
                delivery: msg.delivery,
                tried: HashSet::new(),
                deadline,
                state: JobState::Waiting,
            },
        );
        let job = self.job_write(msg.order_id).into_iter().collect();
        self.persist(job, ctx);
        self.try_offer(msg.order_id, ctx);
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
    fn handle(&mut self, msg: UpdateDispatchDelivery, _ctx: &mut Self::Context) {
        if let Some(job) = self.jobs.get_mut(&msg.order_id) {
            job.delivery = msg.delivery;
        }
    }
}

/// A rider's answer to an offer.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct AnswerOffer {
    pub rider: RiderId,
    pub order_id: OrderId,
    pub accept: bool,
}

impl Handler<AnswerOffer> for Dispatcher {
    type Result = ResponseFuture<Result<(), EngineError>>;

    fn handle(&mut self, msg: AnswerOffer, ctx: &mut Self::Context) -> Self::Result {
        let now = self.now();
        let active = self
            .riders
            .get(&msg.rider)
            .and_then(|r| r.offer.as_ref())
            .is_some_and(|o| o.order_id == msg.order_id && o.expires_at > now);
        if !active {
            return Box::pin(async { Err(EngineError::OfferNotActive) });
        }
        if let Some(r) = self.riders.get_mut(&msg.rider) {
            r.offer = None;
            if msg.accept {
                r.status = RiderStatus::Busy;
                r.order = Some(Assignment {
                    order_id: msg.order_id,
                    customer: None,
                });
            }
        }
        if let Some(job) = self.jobs.get_mut(&msg.order_id) {
            job.state = if msg.accept {
                JobState::Assigning(msg.rider)
            } else {
                JobState::Waiting
            };
        }
        if msg.accept {
            self.carrying.insert(msg.order_id, msg.rider);
            metrics::counter!("dabba_offer_answers_total", "answer" => "accept").increment(1);
        } else {
            metrics::counter!("dabba_offer_answers_total", "answer" => "reject").increment(1);
        }
        self.reindex(msg.rider);
        // Rejected: the order moves on to the next nearest; the rider is free for others.
        self.offer_waiting(ctx);
        let mut writes: Vec<Write> = self.rider_write(msg.rider).into_iter().collect();
        writes.extend(self.job_write(msg.order_id));
        Box::pin(self.persist_now(writes))
    }
}

/// The order actor recorded the assignment (`ok`) or refused it (order ended meanwhile).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AssignmentRecorded {
    pub rider: RiderId,
    pub order_id: OrderId,
    pub ok: bool,
}

impl Handler<AssignmentRecorded> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: AssignmentRecorded, ctx: &mut Self::Context) {
        if msg.ok {
            self.jobs.remove(&msg.order_id);
            self.persist(vec![Write::DeleteJob(msg.order_id)], ctx);
            return;
        }
        if let Some(job) = self.jobs.get_mut(&msg.order_id)
            && job.state == JobState::Assigning(msg.rider)
        {
            job.state = JobState::Waiting;
        }
        self.release(msg.rider, msg.order_id, ctx);
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
    fn handle(&mut self, msg: RiderPickedUp, _ctx: &mut Self::Context) {
        if let Some(Rider { order: Some(a), .. }) = self.riders.get_mut(&msg.rider)
            && a.order_id == msg.order_id
        {
            a.customer = Some(msg.customer_id);
        }
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
        if let Some(job) = self.jobs.remove(&msg.order_id) {
            if let JobState::Offered(rider) = job.state {
                self.withdraw_offer(rider, msg.order_id, ctx);
            }
            self.persist(vec![Write::DeleteJob(msg.order_id)], ctx);
        }
        if let Some(rider) = self.carrying.get(&msg.order_id).copied() {
            self.release(rider, msg.order_id, ctx);
        }
        self.offer_waiting(ctx);
    }
}

/// Runs timers now (used after the test clock moves); answers with orders given up on.
#[derive(Message)]
#[rtype(result = "Vec<OrderId>")]
pub struct RunTimers;

impl Handler<RunTimers> for Dispatcher {
    type Result = MessageResult<RunTimers>;
    fn handle(&mut self, _: RunTimers, ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.tick(ctx))
    }
}

/// Counts for `/metrics` and the ops view.
#[derive(Message)]
#[rtype(result = "DispatchStats")]
pub struct GetStats;

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct DispatchStats {
    pub riders: usize,
    pub available: usize,
    pub waiting_orders: usize,
    pub dispatching_orders: usize,
}

impl Handler<GetStats> for Dispatcher {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(DispatchStats {
            riders: self.riders.len(),
            available: self.available.len(),
            waiting_orders: self
                .jobs
                .values()
                .filter(|j| j.state == JobState::Waiting)
                .count(),
            dispatching_orders: self.jobs.len(),
        })
    }
}
