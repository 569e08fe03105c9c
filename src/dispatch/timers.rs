//! The board's clock: offers that time out, rounds whose cool-down ended, and orders past
//! their deadline.

use chrono::{DateTime, Utc};

use super::board::{Board, GIVE_UP_RETRY, JobState};
use super::effects::Effects;
use crate::domain::{OrderId, RiderId};
use crate::persistence::{AttemptOutcome, Write};

impl Board {
    /// Expires offers and gives up on orders past their deadline (`fx.give_ups`).
    pub fn tick(&mut self, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        // A round whose cool-down ended: the riders who declined may be asked again.
        for job in self.jobs.values_mut() {
            if job.state == JobState::Waiting && job.round_ends.is_some_and(|at| at <= now) {
                job.tried.clear();
                job.round_ends = None;
            }
        }
        let expired: Vec<(OrderId, RiderId)> = self
            .jobs
            .iter()
            .filter_map(|(order_id, j)| match j.state {
                JobState::Offered(rider) => {
                    let due = self
                        .riders
                        .get(&rider)
                        .and_then(|r| r.offer)
                        .is_none_or(|o| o.expires_at <= now);
                    due.then_some((*order_id, rider))
                }
                _ => None,
            })
            .collect();
        for (order_id, rider_id) in expired {
            tracing::info!(%order_id, %rider_id, "offer timed out");
            metrics::counter!("dabba_offer_timeouts_total").increment(1);
            self.conclude(order_id, AttemptOutcome::TimedOut, &mut fx);
            self.withdraw_offer(rider_id, order_id, now, &mut fx);
            if let Some(job) = self.jobs.get_mut(&order_id) {
                job.state = JobState::Waiting;
            }
        }
        let mut overdue: Vec<(u64, OrderId)> = self
            .jobs
            .iter()
            .filter(|(_, j)| match j.state {
                JobState::Waiting | JobState::Offered(_) => j.deadline <= now,
                JobState::GivingUp { since } => since + GIVE_UP_RETRY <= now,
                JobState::Assigning(_) => false,
            })
            .map(|(id, j)| (j.seq, *id))
            .collect();
        overdue.sort_unstable();
        for &(_, order_id) in &overdue {
            let Some(job) = self.jobs.get_mut(&order_id) else {
                continue;
            };
            let offered = match job.state {
                JobState::Offered(rider_id) => Some(rider_id),
                _ => None,
            };
            job.state = JobState::GivingUp { since: now };
            if let Some(rider_id) = offered {
                self.conclude(order_id, AttemptOutcome::Withdrawn, &mut fx);
                self.withdraw_offer(rider_id, order_id, now, &mut fx);
            }
            tracing::info!(%order_id, "no rider found before the deadline");
            fx.give_ups.push(order_id);
        }
        self.offer_waiting_where(|_| true, now, &mut fx);
        fx
    }

    /// Records how the open offer of `order_id` ended, if one is open.
    pub(super) fn conclude(
        &mut self,
        order_id: OrderId,
        outcome: AttemptOutcome,
        fx: &mut Effects,
    ) {
        if let Some(job) = self.jobs.get_mut(&order_id)
            && let Some(mut attempt) = job.pending.take()
        {
            attempt.outcome = outcome;
            fx.writes.push(Write::SaveAttempt(attempt));
        }
    }
}
