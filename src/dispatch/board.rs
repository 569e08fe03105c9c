//! `Board`: the rules of dispatch as a plain struct. One owner of every rider's dispatch state
//! and of the R-tree of available riders is what makes "one rider, one offer" hold without
//! locks: reserving a rider (taking it out of the index) and handing it an offer are one step.
//!
//! Invariant, kept by [`Board::reindex`]: a rider is in `available` iff it is `Available`, has
//! a known position, no offer and no order.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use super::effects::Effects;
pub use super::state::DispatchStats;
pub(super) use super::state::{Assignment, Job, JobState, Offer, Rider};
use crate::domain::{CustomerId, Delivery, LatLng, OrderId, RiderId, RiderStatus};
use crate::events::hub::Audience;
use crate::geo::{PointIndex, distance_m};
use crate::persistence::{AttemptOutcome, AttemptRecord, JobRecord, RiderRecord, Write};
use crate::wire::{OfferRestaurant, ServerMessage};

/// How long after giving up on an order the board asks again if ending it failed.
pub const GIVE_UP_RETRY: Duration = Duration::seconds(5);
/// A moving rider's position is written to the store at most this often: positions are
/// telemetry, kept in memory; a state change writes the rider (and its position) at once.
pub const POSITION_WRITE_EVERY: Duration = Duration::seconds(60);

#[derive(Clone, Copy, Debug)]
pub struct BoardConfig {
    /// Dispatch radius around the restaurant (great-circle metres).
    pub radius_m: f64,
    /// How long a rider has to answer an offer.
    pub offer_timeout: Duration,
    /// How long an order may look for a rider before `no_rider_found`.
    pub deadline: Duration,
    /// Once every rider in range was asked, how long before those who declined are asked
    /// again (a new round; riders who came in range meanwhile are asked at once).
    pub cooldown: Duration,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DispatchError {
    #[error("rider not found")]
    RiderNotFound,
    #[error("the offer expired, was already answered or belongs to another rider")]
    OfferNotActive,
    #[error("{0}")]
    InvalidState(&'static str),
}

pub struct Board {
    pub(super) config: BoardConfig,
    pub(super) riders: HashMap<RiderId, Rider>,
    pub(super) available: PointIndex<RiderId>,
    pub(super) jobs: HashMap<OrderId, Job>,
    /// Which rider carries which order, for releasing riders when an order ends.
    pub(super) carrying: HashMap<OrderId, RiderId>,
    pub(super) next_seq: u64,
    /// Riders whose position moved since their last snapshot.
    pub(super) moved: HashSet<RiderId>,
}

impl Board {
    pub fn new(config: BoardConfig) -> Self {
        Self {
            config,
            riders: HashMap::new(),
            available: PointIndex::new(),
            jobs: HashMap::new(),
            carrying: HashMap::new(),
            next_seq: 0,
            moved: HashSet::new(),
        }
    }

    /// Adds a newly registered rider (offline, no position); a known rider is left alone.
    pub fn add_rider(&mut self, id: RiderId, name: String) {
        self.riders.entry(id).or_insert(Rider {
            name,
            status: RiderStatus::Offline,
            location: None,
            offer: None,
            order: None,
            rev: 1,
            saved_at: None,
        });
    }

    /// A rider going available or offline (`busy` is the board's own to set).
    pub fn set_status(
        &mut self,
        rider: RiderId,
        status: RiderStatus,
        now: DateTime<Utc>,
    ) -> Result<Effects, DispatchError> {
        let r = self
            .riders
            .get_mut(&rider)
            .ok_or(DispatchError::RiderNotFound)?;
        if status == RiderStatus::Busy {
            return Err(DispatchError::InvalidState(
                "riders cannot set themselves busy",
            ));
        }
        if r.order.is_some() {
            return Err(DispatchError::InvalidState(
                "a rider on a delivery stays busy until it is delivered",
            ));
        }
        r.status = status;
        let open_offer = r.offer.map(|o| o.order_id);
        let mut fx = Effects::default();
        if let (RiderStatus::Offline, Some(order_id)) = (status, open_offer) {
            // Going offline with an offer open counts as rejecting it.
            self.conclude(order_id, AttemptOutcome::Withdrawn, &mut fx);
            self.withdraw_offer(rider, order_id, now, &mut fx);
            if let Some(job) = self.jobs.get_mut(&order_id) {
                job.state = JobState::Waiting;
            }
        }
        self.reindex(rider);
        self.save_rider(rider, now, &mut fx);
        self.offer_waiting_where(|_| true, now, &mut fx);
        Ok(fx)
    }

    /// A rider's new position: pushed to ops (and to the customer once the food is picked
    /// up); a free rider may now be in range of waiting orders.
    pub fn update_location(
        &mut self,
        rider: RiderId,
        at: LatLng,
        now: DateTime<Utc>,
    ) -> Result<Effects, DispatchError> {
        let r = self
            .riders
            .get_mut(&rider)
            .ok_or(DispatchError::RiderNotFound)?;
        r.location = Some(at);
        let carrying = r.order;
        let was_indexed = self.available.contains(rider);
        self.moved.insert(rider);
        self.reindex(rider);
        let mut fx = Effects::default();
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
        fx.push(
            to,
            ServerMessage::RiderLocation {
                order_id,
                rider_id: rider,
                location: at,
            },
        );
        if self.available.contains(rider) {
            if was_indexed {
                // Moving while free only brings orders near the new position in range.
                let radius = self.config.radius_m;
                self.offer_waiting_where(
                    |job| distance_m(job.restaurant.location, at) <= radius,
                    now,
                    &mut fx,
                );
            } else {
                self.offer_waiting_where(|_| true, now, &mut fx);
            }
        }
        Ok(fx)
    }

    /// The restaurant accepted: find a rider for this order. A repeat is ignored.
    pub fn start(
        &mut self,
        order_id: OrderId,
        restaurant: OfferRestaurant,
        delivery: Delivery,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut fx = Effects::default();
        if self.jobs.contains_key(&order_id) || self.carrying.contains_key(&order_id) {
            return fx;
        }
        self.open_job(
            order_id,
            (restaurant, delivery),
            HashSet::new(),
            now,
            &mut fx,
        );
        fx
    }

    /// A new job for `order_id`, with `tried` already asked this round; offered at once if a
    /// rider fits, else written to wait.
    pub(super) fn open_job(
        &mut self,
        order_id: OrderId,
        (restaurant, delivery): (OfferRestaurant, Delivery),
        tried: HashSet<RiderId>,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        self.next_seq += 1;
        self.jobs.insert(
            order_id,
            Job {
                seq: self.next_seq,
                restaurant,
                delivery,
                tried,
                offers: 0,
                round_ends: None,
                pending: None,
                deadline: now + self.config.deadline,
                state: JobState::Waiting,
            },
        );
        if !self.try_offer(order_id, now, fx) {
            fx.writes.extend(self.job_write(order_id, now));
        }
    }

    /// The customer moved the delivery point: later offers show the new one.
    pub fn update_delivery(&mut self, order_id: OrderId, delivery: Delivery) {
        if let Some(job) = self.jobs.get_mut(&order_id) {
            job.delivery = delivery;
        }
    }

    /// A rider's answer to its open offer.
    pub fn answer(
        &mut self,
        rider: RiderId,
        order_id: OrderId,
        accept: bool,
        now: DateTime<Utc>,
    ) -> Result<Effects, DispatchError> {
        let r = self
            .riders
            .get_mut(&rider)
            .filter(|r| {
                r.offer
                    .is_some_and(|o| o.order_id == order_id && o.expires_at > now)
            })
            .ok_or(DispatchError::OfferNotActive)?;
        r.offer = None;
        if accept {
            r.status = RiderStatus::Busy;
            r.order = Some(Assignment {
                order_id,
                customer: None,
            });
            self.carrying.insert(order_id, rider);
        }
        let mut fx = Effects::default();
        let outcome = if accept {
            AttemptOutcome::Accepted
        } else {
            AttemptOutcome::Rejected
        };
        self.conclude(order_id, outcome, &mut fx);
        if let Some(job) = self.jobs.get_mut(&order_id) {
            job.state = if accept {
                JobState::Assigning(rider)
            } else {
                JobState::Waiting
            };
        }
        let answer = if accept { "accept" } else { "reject" };
        metrics::counter!("dabba_offer_answers_total", "answer" => answer).increment(1);
        self.reindex(rider);
        self.save_rider(rider, now, &mut fx);
        fx.writes.extend(self.job_write(order_id, now));
        // Rejected: the order moves on to the next nearest; the rider is free for others.
        self.offer_waiting_where(|_| true, now, &mut fx);
        Ok(fx)
    }

    /// The order actor recorded the assignment (`ok`) or refused it (the order ended).
    pub fn assignment_recorded(
        &mut self,
        rider: RiderId,
        order_id: OrderId,
        ok: bool,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut fx = Effects::default();
        if ok {
            if self.jobs.remove(&order_id).is_some() {
                fx.writes.push(Write::DeleteJob(order_id));
            }
            return fx;
        }
        if let Some(job) = self.jobs.get_mut(&order_id)
            && job.state == JobState::Assigning(rider)
        {
            job.state = JobState::Waiting;
        }
        self.release(rider, order_id, now, &mut fx);
        fx
    }

    /// The food left the restaurant: the customer now follows this rider.
    pub fn picked_up(&mut self, rider: RiderId, order_id: OrderId, customer: CustomerId) {
        if let Some(Rider { order: Some(a), .. }) = self.riders.get_mut(&rider)
            && a.order_id == order_id
        {
            a.customer = Some(customer);
        }
    }

    /// The order reached a terminal stage: withdraw its offer, free its rider.
    pub fn end(&mut self, order_id: OrderId, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        if let Some(job) = self.jobs.remove(&order_id) {
            if let Some(mut attempt) = job.pending {
                attempt.outcome = AttemptOutcome::Withdrawn;
                fx.writes.push(Write::SaveAttempt(attempt));
            }
            if let JobState::Offered(rider) = job.state {
                self.withdraw_offer(rider, order_id, now, &mut fx);
            }
            fx.writes.push(Write::DeleteJob(order_id));
        }
        if let Some(rider) = self.carrying.get(&order_id).copied() {
            self.release(rider, order_id, now, &mut fx);
        }
        // A withdrawn offer freed its rider for the orders still waiting.
        self.offer_waiting_where(|_| true, now, &mut fx);
        fx
    }

    /// Writes the positions of riders who moved and were not written for
    /// [`POSITION_WRITE_EVERY`]: a restart then starts riders near where they were.
    pub fn flush_positions(&mut self, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        let due: Vec<RiderId> = self
            .moved
            .iter()
            .filter(|id| {
                self.riders
                    .get(id)
                    .is_none_or(|r| r.saved_at.is_none_or(|at| at + POSITION_WRITE_EVERY <= now))
            })
            .copied()
            .collect();
        for id in due {
            self.save_rider(id, now, &mut fx);
        }
        fx
    }

    // ---- the rules' single places -----------------------------------------------------

    /// The one place that decides whether a rider may be offered orders.
    pub(super) fn reindex(&mut self, id: RiderId) {
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

    /// Bumps the rider's revision and queues its snapshot (position included).
    pub(super) fn save_rider(&mut self, id: RiderId, now: DateTime<Utc>, fx: &mut Effects) {
        let Some(r) = self.riders.get_mut(&id) else {
            return;
        };
        r.rev += 1;
        r.saved_at = Some(now);
        self.moved.remove(&id);
        fx.writes.push(Write::SaveRider(RiderRecord {
            id,
            name: r.name.clone(),
            status: r.status,
            location: r.location,
            offer: r.offer.map(|o| (o.order_id, o.expires_at)),
            order_id: r.order.map(|a| a.order_id),
            rev: r.rev,
            saved_at: now,
        }));
    }

    fn job_write(&self, order_id: OrderId, now: DateTime<Utc>) -> Option<Write> {
        let job = self.jobs.get(&order_id)?;
        Some(Write::SaveJob(JobRecord {
            order_id,
            tried: job.tried.iter().copied().collect(),
            deadline: job.deadline,
            saved_at: now,
        }))
    }

    /// Offers a waiting order to the nearest available rider in range it has not tried;
    /// `true` if it did (the job is then written too).
    pub(super) fn try_offer(
        &mut self,
        order_id: OrderId,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) -> bool {
        let Some(job) = self.jobs.get_mut(&order_id) else {
            return false;
        };
        if job.state != JobState::Waiting {
            return false;
        }
        let Some((rider_id, distance_m)) =
            self.available
                .nearest_within(job.restaurant.location, self.config.radius_m, |id| {
                    job.tried.contains(&id)
                })
        else {
            // Everyone in range had this round: the next starts after the cool-down.
            if !job.tried.is_empty() && job.round_ends.is_none() {
                job.round_ends = Some(now + self.config.cooldown);
            }
            return false;
        };
        let expires_at = now + self.config.offer_timeout;
        job.tried.insert(rider_id);
        job.offers = job.offers.saturating_add(1);
        // A rider came in range after the round ran out: the round goes on, and its cool-down
        // starts again when it runs out again (nobody is asked twice within a cool-down).
        job.round_ends = None;
        let attempt = AttemptRecord {
            order_id,
            n: job.offers,
            rider_id,
            distance_m: distance_m.round(),
            offered_at: now,
            outcome: AttemptOutcome::Pending,
        };
        fx.writes.push(Write::SaveAttempt(attempt.clone()));
        job.pending = Some(attempt);
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
        tracing::debug!(%order_id, %rider_id, distance_m = distance_m.round(), "offer sent");
        metrics::counter!("dabba_offers_total").increment(1);
        fx.writes.extend(self.job_write(order_id, now));
        self.save_rider(rider_id, now, fx);
        fx.push(vec![Audience::Rider(rider_id)], msg);
        true
    }

    /// Offers the waiting orders `pick` selects, oldest first (each may now find a rider).
    pub(super) fn offer_waiting_where(
        &mut self,
        pick: impl Fn(&Job) -> bool,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
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
            if self.available.is_empty() {
                break;
            }
            self.try_offer(order_id, now, fx);
        }
    }

    /// Takes back the open offer of `order_id` (timeout, order ended, rider went offline).
    pub(super) fn withdraw_offer(
        &mut self,
        rider_id: RiderId,
        order_id: OrderId,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let Some(r) = self.riders.get_mut(&rider_id) else {
            return;
        };
        if r.offer.map(|o| o.order_id) != Some(order_id) {
            return;
        }
        r.offer = None;
        self.reindex(rider_id);
        fx.push(
            vec![Audience::Rider(rider_id)],
            ServerMessage::OfferWithdrawn { order_id },
        );
        self.save_rider(rider_id, now, fx);
    }

    /// Frees a rider from `order_id` (delivered, cancelled, or the assignment failed), then
    /// offers it what is waiting.
    fn release(
        &mut self,
        rider_id: RiderId,
        order_id: OrderId,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let Some(r) = self.riders.get_mut(&rider_id) else {
            return;
        };
        if r.order.map(|a| a.order_id) != Some(order_id) {
            return;
        }
        r.order = None;
        if r.status == RiderStatus::Busy {
            r.status = RiderStatus::Available;
        }
        self.carrying.remove(&order_id);
        self.reindex(rider_id);
        self.save_rider(rider_id, now, fx);
        self.offer_waiting_where(|_| true, now, fx);
    }
}
