//! The analytics consumer: folds order events into the figures of `GET /v1/ops/stats` (orders
//! per status and per minute, cancellations, refunds, offers per order, time to assign).
//!
//! It keeps its figures in memory and rebuilds them at start from the retained log (it reads
//! the outbox from its beginning), so a restart loses nothing the log still holds. A
//! redelivered event is recognised by the order's version and skipped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, DurationRound, Utc};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::consumer::{Consumer, Handling};
use super::family::Family;
use crate::domain::{OrderId, Stage, Status};
use crate::persistence::CommittedEvent;

/// Minutes of per-minute counts kept.
const MINUTES_KEPT: usize = 24 * 60;
/// Finished orders remembered to recognise a late duplicate of their last event.
const FINISHED_REMEMBERED: usize = 100_000;

#[derive(Clone, Copy)]
struct Track {
    status: Status,
    version: u64,
    placed_at: DateTime<Utc>,
    assigned: bool,
}

struct Figures {
    live: HashMap<OrderId, Track>,
    finished: HashMap<Status, u64>,
    recently_finished: (VecDeque<OrderId>, HashSet<OrderId>),
    placed_per_minute: BTreeMap<DateTime<Utc>, u64>,
    ended_by_stage: HashMap<Stage, u64>,
    refunds: u64,
    refunded_cents: i64,
    offers: u64,
    offered_orders: u64,
    time_to_assign_ms: Histogram<u64>,
    events: u64,
}

impl Default for Figures {
    fn default() -> Self {
        Self {
            live: HashMap::new(),
            finished: HashMap::new(),
            recently_finished: Default::default(),
            placed_per_minute: BTreeMap::new(),
            ended_by_stage: HashMap::new(),
            refunds: 0,
            refunded_cents: 0,
            offers: 0,
            offered_orders: 0,
            // Up to a day, 3 significant figures.
            time_to_assign_ms: Histogram::new_with_bounds(1, 86_400_000, 3)
                .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!())),
            events: 0,
        }
    }
}

#[derive(Default)]
pub struct Analytics {
    figures: Mutex<Figures>,
}

/// What the figures need of a pushed order (the rest of the object is skipped unread).
#[derive(Deserialize)]
struct Pushed {
    order: OrderFacts,
}

#[derive(Deserialize)]
struct OrderFacts {
    id: OrderId,
    rider_id: Option<uuid::Uuid>,
    status: Status,
    stage: Stage,
    placed_at: DateTime<Utc>,
    version: u64,
    refund: Option<crate::domain::order::Refund>,
    #[serde(default)]
    offers: u32,
}

impl Analytics {
    fn fold(&self, event: &CommittedEvent) -> Result<(), String> {
        if event.event.kind != "order.updated" {
            return Ok(());
        }
        let pushed: Pushed = serde_json::from_str(&event.event.payload)
            .map_err(|e| format!("order event unreadable: {e}"))?;
        let o = pushed.order;
        let mut f = self.figures.lock().unwrap_or_else(|p| p.into_inner());
        let known = f.live.get(&o.id).copied();
        if known.is_some_and(|t| t.version >= o.version) || f.recently_finished.1.contains(&o.id) {
            return Ok(()); // a duplicate
        }
        f.events += 1;
        if known.is_none() {
            let minute = o
                .placed_at
                .duration_trunc(chrono::Duration::minutes(1))
                .unwrap_or(o.placed_at);
            *f.placed_per_minute.entry(minute).or_default() += 1;
            while f.placed_per_minute.len() > MINUTES_KEPT {
                f.placed_per_minute.pop_first();
            }
        }
        let mut track = known.unwrap_or(Track {
            status: o.status,
            version: 0,
            placed_at: o.placed_at,
            assigned: false,
        });
        if !track.assigned && o.rider_id.is_some() {
            track.assigned = true;
            let ms = (event.event.at - track.placed_at).num_milliseconds().max(1) as u64;
            let _ = f.time_to_assign_ms.record(ms.min(86_400_000));
            if o.offers > 0 {
                let offers = o.offers;
                f.offers += u64::from(offers);
                f.offered_orders += 1;
            }
        }
        track.status = o.status;
        track.version = o.version;
        if matches!(
            o.status,
            Status::Completed | Status::Cancelled | Status::Rejected
        ) {
            f.live.remove(&o.id);
            *f.finished.entry(o.status).or_default() += 1;
            *f.ended_by_stage.entry(o.stage).or_default() += 1;
            if let Some(refund) = &o.refund {
                f.refunds += 1;
                f.refunded_cents += refund.amount_cents.0;
            }
            let (order, set) = &mut f.recently_finished;
            order.push_back(o.id);
            set.insert(o.id);
            if order.len() > FINISHED_REMEMBERED
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        } else {
            f.live.insert(o.id, track);
        }
        Ok(())
    }

    /// The figures now; `minutes` is how many recent minutes of placements to list.
    pub fn snapshot(&self, minutes: usize) -> OrderStats {
        let f = self.figures.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_status: BTreeMap<&'static str, u64> =
            ["placed", "processing", "completed", "cancelled", "rejected"]
                .into_iter()
                .map(|s| (s, 0))
                .collect();
        let mut bump = |status: Status, n: u64| {
            *by_status.entry(status_name(status)).or_default() += n;
        };
        for (status, n) in &f.finished {
            bump(*status, *n);
        }
        for t in f.live.values() {
            bump(t.status, 1);
        }
        let total = by_status.values().sum();
        let ended = |stage| f.ended_by_stage.get(&stage).copied().unwrap_or(0);
        let h = &f.time_to_assign_ms;
        let quantile = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
        OrderStats {
            orders: OrderCounts {
                total,
                by_status,
                per_minute: f
                    .placed_per_minute
                    .iter()
                    .rev()
                    .take(minutes)
                    .rev()
                    .map(|(minute, placed)| MinuteCount {
                        minute: *minute,
                        placed: *placed,
                    })
                    .collect(),
            },
            cancellations: ended(Stage::Cancelled),
            cancellations_by_reason: Cancellations {
                by_customer: ended(Stage::Cancelled),
                no_rider_found: ended(Stage::NoRiderFound),
                rejected_by_restaurant: ended(Stage::RejectedByRestaurant),
            },
            refunds: Refunds {
                count: f.refunds,
                amount_cents: f.refunded_cents,
            },
            offers_per_order: (f.offered_orders > 0)
                .then(|| f.offers as f64 / f.offered_orders as f64),
            time_to_assign_ms: Quantiles {
                p50: quantile(0.5),
                p99: quantile(0.99),
                count: h.len(),
            },
            events_folded: f.events,
        }
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Placed => "placed",
        Status::Processing => "processing",
        Status::Completed => "completed",
        Status::Cancelled => "cancelled",
        Status::Rejected => "rejected",
    }
}

impl Consumer for Analytics {
    fn name(&self) -> &'static str {
        "analytics"
    }

    fn families(&self) -> &'static [Family] {
        &[Family::Orders]
    }

    fn handle<'a>(&'a self, event: &'a CommittedEvent) -> Handling<'a> {
        Box::pin(async move { self.fold(event) })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderStats {
    pub orders: OrderCounts,
    /// Orders cancelled by their customer.
    pub cancellations: u64,
    pub cancellations_by_reason: Cancellations,
    pub refunds: Refunds,
    /// Riders offered an order before one accepted, on average (null before any assignment).
    pub offers_per_order: Option<f64>,
    /// From placement to a rider's acceptance.
    pub time_to_assign_ms: Quantiles,
    /// Order events folded into these figures.
    pub events_folded: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderCounts {
    pub total: u64,
    /// Orders by their current status.
    pub by_status: BTreeMap<&'static str, u64>,
    /// Placements per minute, oldest first (the last hour with placements).
    pub per_minute: Vec<MinuteCount>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MinuteCount {
    pub minute: DateTime<Utc>,
    pub placed: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Cancellations {
    pub by_customer: u64,
    pub no_rider_found: u64,
    pub rejected_by_restaurant: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Refunds {
    pub count: u64,
    pub amount_cents: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Quantiles {
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CustomerId, RestaurantId};
    use crate::persistence::{OutboxEvent, Recipients};
    use proptest::prelude::*;

    /// The stages an order passes through, by how it ends.
    fn path(ending: u8) -> Vec<(&'static str, &'static str)> {
        let mut p = vec![("awaiting_restaurant", "placed")];
        match ending % 4 {
            0 => p.push(("cancelled", "cancelled")),
            1 => p.push(("rejected_by_restaurant", "rejected")),
            2 => p.extend([
                ("preparing", "processing"),
                ("finding_rider", "processing"),
                ("rider_assigned", "processing"),
                ("picked_up", "processing"),
                ("delivered", "completed"),
            ]),
            _ => p.extend([("preparing", "processing"), ("finding_rider", "processing")]),
        }
        p
    }

    fn event(
        seq: i64,
        order: uuid::Uuid,
        version: usize,
        stage: &str,
        status: &str,
    ) -> CommittedEvent {
        let assigned = matches!(stage, "rider_assigned" | "picked_up" | "delivered");
        let refunded = matches!(stage, "cancelled" | "rejected_by_restaurant");
        let at = "2026-11-26T10:00:00Z";
        let payload = serde_json::json!({"type": "order.updated", "order": {
            "id": order, "customer_id": uuid::Uuid::nil(), "restaurant_id": uuid::Uuid::nil(),
            "rider_id": assigned.then(uuid::Uuid::nil), "items": [], "total_cents": 1000,
            "delivery": {"location": {"lat": 12.9, "lng": 77.6}, "address": "x"},
            "deliver_at": null, "status": status, "stage": stage, "placed_at": at,
            "updated_at": at, "version": version,
            "refund": refunded.then(|| serde_json::json!({"percent": 100, "amount_cents": 1000})),
            "reject_reason": null, "offers": if assigned { 2 } else { 0 }
        }});
        CommittedEvent {
            seq,
            event: OutboxEvent {
                event_id: uuid::Uuid::new_v4(),
                kind: "order.updated",
                order_id: OrderId(order),
                version: version as u64,
                to: Recipients {
                    customer: CustomerId(uuid::Uuid::nil()),
                    restaurant: RestaurantId(uuid::Uuid::nil()),
                    rider: None,
                },
                payload: payload.to_string().into(),
                at: DateTime::parse_from_rfc3339(at)
                    .unwrap()
                    .with_timezone(&Utc),
            },
        }
    }

    proptest! {
        /// Whatever order the orders interleave in and whatever is delivered twice (a consumer
        /// that died before acking), the figures count each order once, by its last status.
        #[test]
        fn figures_count_each_order_once_despite_redeliveries(
            endings in prop::collection::vec(any::<u8>(), 1..30),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..200),
            redeliver in prop::collection::vec(any::<bool>(), 0..200),
        ) {
            let orders: Vec<(uuid::Uuid, Vec<(&str, &str)>)> =
                endings.iter().map(|e| (uuid::Uuid::new_v4(), path(*e))).collect();
            // Interleave the orders' events in log order: each pick advances one order.
            let mut next = vec![0usize; orders.len()];
            let mut log = Vec::new();
            let mut seq = 0;
            let mut advance = |i: usize, log: &mut Vec<CommittedEvent>| {
                let (id, stages) = &orders[i];
                if let Some((stage, status)) = stages.get(next[i]) {
                    seq += 1;
                    log.push(event(seq, *id, next[i] + 1, stage, status));
                    next[i] += 1;
                }
            };
            for pick in &picks {
                advance(pick.index(orders.len()), &mut log);
            }
            let lengths: Vec<usize> = orders.iter().map(|(_, stages)| stages.len()).collect();
            for (i, len) in lengths.into_iter().enumerate() {
                for _ in 0..len {
                    advance(i, &mut log);
                }
            }
            let analytics = Analytics::default();
            for (i, e) in log.iter().enumerate() {
                analytics.fold(e).unwrap();
                // Redeliver an earlier event now and then.
                if redeliver.get(i).copied().unwrap_or(false) {
                    analytics.fold(&log[i / 2]).unwrap();
                }
            }
            let stats = analytics.snapshot(60);
            let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
            for (_, stages) in &orders {
                *expected.entry(stages.last().unwrap().1).or_default() += 1;
            }
            for (status, n) in &stats.orders.by_status {
                prop_assert_eq!(*n, expected.get(status).copied().unwrap_or(0), "{}", status);
            }
            prop_assert_eq!(stats.orders.total, orders.len() as u64);
            let refunded = orders.iter().filter(|(_, s)| matches!(s.last().unwrap().1, "cancelled" | "rejected")).count();
            prop_assert_eq!(stats.refunds.count, refunded as u64);
            let assigned = orders.iter().filter(|(_, s)| s.len() == 6).count() as u64;
            prop_assert_eq!(stats.time_to_assign_ms.count, assigned);
            if assigned > 0 {
                prop_assert_eq!(stats.offers_per_order, Some(2.0));
            }
            let per_minute: u64 = stats.orders.per_minute.iter().map(|m| m.placed).sum();
            prop_assert_eq!(per_minute, orders.len() as u64);
        }
    }
}
