//! A restaurant's desk: the scheduled orders (each with the moment its kitchen must start), the
//! orders waiting for its answer (each with the moment it times out), the orders queued for
//! room in its kitchen (placed while it was full, when overflow queues) and the orders its
//! kitchen holds, against its capacity. Pure: the restaurant actor feeds it each order's new
//! stage and the time, and asks it what is due.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use super::ids::OrderId;
use super::order::Stage;

/// Orders keyed by a time, earliest first; each order at most once.
#[derive(Clone, Debug, Default, PartialEq)]
struct Timeline {
    by_time: BTreeSet<(DateTime<Utc>, OrderId)>,
    time_of: HashMap<OrderId, DateTime<Utc>>,
}

impl Timeline {
    fn insert(&mut self, order: OrderId, at: DateTime<Utc>) {
        self.remove(order);
        self.by_time.insert((at, order));
        self.time_of.insert(order, at);
    }

    fn remove(&mut self, order: OrderId) {
        if let Some(at) = self.time_of.remove(&order) {
            self.by_time.remove(&(at, order));
        }
    }

    /// Takes the orders whose time is `now` or earlier, earliest first.
    fn take_due(&mut self, now: DateTime<Utc>) -> Vec<OrderId> {
        let mut due = Vec::new();
        while let Some(&(at, order)) = self.by_time.first()
            && at <= now
        {
            self.remove(order);
            due.push(order);
        }
        due
    }

    fn pop_first(&mut self) -> Option<OrderId> {
        let &(_, order) = self.by_time.first()?;
        self.remove(order);
        Some(order)
    }

    fn len(&self) -> usize {
        self.by_time.len()
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desk {
    /// Scheduled, by when the restaurant must be asked.
    planned: Timeline,
    /// Awaiting an answer, by when it times out.
    waiting: Timeline,
    /// Placed while the kitchen was full, by placement: asked in turn as room frees.
    queued: Timeline,
    /// The version of each order tracked here: an older snapshot arriving late is ignored.
    versions: HashMap<OrderId, u64>,
    /// Accepted and not yet picked up: what the kitchen holds.
    kitchen: HashSet<OrderId>,
    /// Most orders waiting or in the kitchen at once (`None`: no limit).
    capacity: Option<usize>,
}

/// The restaurant holds as many orders as it can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the restaurant is at capacity ({0} orders); try again shortly")]
pub struct Busy(pub usize);

/// Where an order stands at the desk, with the time that orders it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Scheduled: asked at this time.
    StartsAt(DateTime<Utc>),
    /// Asked: rejected for the restaurant if not answered by this time.
    AnswerBy(DateTime<Utc>),
    /// Waiting for room in the kitchen since this time (its placement).
    QueuedSince(DateTime<Utc>),
    /// Anything else (the stage says whether the kitchen holds it).
    Elsewhere,
}

impl Desk {
    pub fn new(capacity: Option<usize>) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    /// Whether a new order fits.
    pub fn admit(&self) -> Result<(), Busy> {
        match self.capacity {
            Some(cap) if self.load() >= cap => Err(Busy(cap)),
            _ => Ok(()),
        }
    }

    /// Orders waiting for an answer or in the kitchen.
    pub fn load(&self) -> usize {
        self.waiting.len() + self.kitchen.len()
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Scheduled orders not yet started.
    pub fn planned(&self) -> usize {
        self.planned.len()
    }

    /// Orders waiting for room in the kitchen.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// The order is now in `stage` at `version`, in `slot`. Idempotent, and a snapshot older
    /// than the one tracked is ignored.
    pub fn track(&mut self, order: OrderId, version: u64, stage: Stage, slot: Slot) {
        if self.versions.get(&order).is_some_and(|v| *v > version) {
            return;
        }
        self.planned.remove(order);
        self.waiting.remove(order);
        self.queued.remove(order);
        self.kitchen.remove(&order);
        match (stage, slot) {
            (Stage::Scheduled, Slot::StartsAt(at)) => self.planned.insert(order, at),
            (Stage::AwaitingRestaurant, Slot::AnswerBy(at)) => self.waiting.insert(order, at),
            (Stage::AwaitingRestaurant, Slot::QueuedSince(at)) => self.queued.insert(order, at),
            (Stage::Preparing | Stage::FindingRider | Stage::RiderAssigned, _) => {
                self.kitchen.insert(order);
            }
            _ => {
                self.versions.remove(&order);
                return;
            }
        }
        self.versions.insert(order, version);
    }

    /// The orders whose answer is due by `now`, oldest first; they stop waiting here (the
    /// caller rejects them for the restaurant).
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<OrderId> {
        self.waiting.take_due(now)
    }

    /// The scheduled orders whose start has come by `now`, earliest first; they leave the plan
    /// (the caller asks the restaurant).
    pub fn starts(&mut self, now: DateTime<Utc>) -> Vec<OrderId> {
        self.planned.take_due(now)
    }

    /// Queued orders that now fit, first placed first; each waits for an answer from `now`
    /// for `timeout` (the caller tells the restaurant it is asked).
    pub fn promote(&mut self, now: DateTime<Utc>, timeout: Duration) -> Vec<OrderId> {
        let mut asked = Vec::new();
        while self.admit().is_ok()
            && let Some(order) = self.queued.pop_first()
        {
            self.waiting.insert(order, now + timeout);
            asked.push(order);
        }
        asked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stage() -> impl Strategy<Value = Stage> {
        prop::sample::select(Stage::ALL.to_vec())
    }

    proptest! {
        /// Whatever the stages and times, against a model: an order times out (or a scheduled
        /// one starts) once, never before its time, only while it waits; queued orders are
        /// asked first placed first, only when they fit, and then wait a full timeout; the load
        /// counts asked and kitchen orders once each; capacity is respected.
        #[test]
        fn orders_are_due_once_never_early_and_queued_in_turn(
            steps in prop::collection::vec((0usize..6, stage(), 0i64..400, any::<bool>(), any::<bool>()), 0..80),
            cap in 1usize..6,
        ) {
            let orders: Vec<OrderId> = (0..6).map(|i| OrderId(uuid::Uuid::from_u128(i + 1))).collect();
            let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("valid");
            let timeout = Duration::seconds(300);
            let mut desk = Desk::new(Some(cap));
            let mut now = start;
            let mut waiting_since: HashMap<OrderId, DateTime<Utc>> = HashMap::new();
            let mut planned_since: HashMap<OrderId, DateTime<Utc>> = HashMap::new();
            let mut queued_since: HashMap<OrderId, DateTime<Utc>> = HashMap::new();
            let mut version = 0;
            for (i, stage, dt, tick, queue) in steps {
                now += Duration::seconds(dt);
                if tick {
                    for o in desk.due(now) {
                        let since = waiting_since.remove(&o);
                        prop_assert!(since.is_some(), "timed out while not waiting");
                        prop_assert!(since.expect("checked") + timeout <= now, "timed out early");
                    }
                    for (o, since) in &waiting_since {
                        prop_assert!(*since + timeout > now, "{o} overdue but not reported");
                    }
                    for o in desk.starts(now) {
                        let since = planned_since.remove(&o);
                        prop_assert!(since.is_some(), "started while not scheduled");
                        prop_assert!(since.expect("checked") + timeout <= now, "started early");
                    }
                    for (o, since) in &planned_since {
                        prop_assert!(*since + timeout > now, "{o} due to start but not reported");
                    }
                    let mut last = None;
                    for o in desk.promote(now, timeout) {
                        let since = queued_since.remove(&o);
                        prop_assert!(since.is_some(), "asked while not queued");
                        prop_assert!(last <= since, "asked out of turn");
                        last = since;
                        waiting_since.insert(o, now);
                    }
                    prop_assert!(desk.queued() == 0 || desk.load() >= cap, "room left with orders queued");
                } else {
                    let o = orders[i];
                    version += 1;
                    waiting_since.remove(&o);
                    planned_since.remove(&o);
                    queued_since.remove(&o);
                    let slot = match stage {
                        Stage::AwaitingRestaurant if queue => {
                            queued_since.insert(o, now);
                            Slot::QueuedSince(now)
                        }
                        Stage::AwaitingRestaurant => {
                            waiting_since.insert(o, now);
                            Slot::AnswerBy(now + timeout)
                        }
                        Stage::Scheduled => {
                            planned_since.insert(o, now);
                            Slot::StartsAt(now + timeout)
                        }
                        _ => Slot::Elsewhere,
                    };
                    desk.track(o, version, stage, slot);
                }
                prop_assert_eq!(desk.waiting(), waiting_since.len());
                prop_assert_eq!(desk.planned(), planned_since.len());
                prop_assert_eq!(desk.queued(), queued_since.len());
                prop_assert!(desk.load() <= orders.len());
                prop_assert_eq!(desk.admit().is_ok(), desk.load() < cap);
            }
        }
    }
}
