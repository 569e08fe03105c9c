//! Rebuilding the board from the store's snapshots, at start and after a restart.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::board::{Assignment, Board, Job, JobState, Offer, Rider};
use super::effects::Effects;
use crate::domain::{Order, OrderId, RestaurantId, RiderId, RiderStatus, Stage};
use crate::persistence::{JobRecord, RiderRecord, Write};
use crate::wire::OfferRestaurant;

/// What the store holds about dispatch.
pub struct Recovered {
    pub riders: Vec<RiderRecord>,
    pub jobs: Vec<JobRecord>,
    /// Unfinished orders: the source of truth for who carries what and who needs a rider.
    pub orders: Vec<Order>,
}

impl Board {
    /// Replaces all state with the snapshots, reconciling riders and jobs with the orders
    /// (whose snapshots are the truth): a rider keeps an order only if the order says so, an
    /// offer only if its order still looks for a rider. Offers and deadlines keep their
    /// persisted times, so what expired while down fires on the next tick. The effects hold
    /// the writes that bring the stored riders and jobs in line.
    pub fn restore(
        &mut self,
        rec: Recovered,
        restaurant_name: impl Fn(RestaurantId) -> String,
        now: DateTime<Utc>,
    ) -> Effects {
        *self = Board::new(self.config);
        let mut fx = Effects::default();
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
                    saved_at: Some(now),
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
                        .map_or(now + self.config.deadline, |j| j.deadline);
                    self.next_seq += 1;
                    self.jobs.insert(
                        o.id,
                        Job {
                            seq: self.next_seq,
                            restaurant: OfferRestaurant {
                                id: o.restaurant_id,
                                name: restaurant_name(o.restaurant_id),
                                location: o.restaurant_location,
                            },
                            delivery: o.delivery.clone(),
                            offers: saved
                                .as_ref()
                                .map_or(0, |j| u32::try_from(j.tried.len()).unwrap_or(u32::MAX)),
                            tried: saved
                                .map(|j| j.tried.into_iter().collect())
                                .unwrap_or_default(),
                            round_ends: None,
                            pending: None,
                            deadline,
                            state: JobState::Waiting,
                        },
                    );
                }
                _ => {}
            }
        }
        // Jobs of orders that moved on while we were down.
        fx.writes
            .extend(saved_jobs.into_keys().map(Write::DeleteJob));
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
                    || r.order.map(|a| a.order_id) != rec.order_id
                    || r.offer.map(|o| (o.order_id, o.expires_at)) != rec.offer
            };
            if changed {
                self.save_rider(id, now, &mut fx);
            }
        }
        tracing::info!(
            riders = self.riders.len(),
            jobs = self.jobs.len(),
            carrying = self.carrying.len(),
            "dispatch state restored"
        );
        fx
    }
}
