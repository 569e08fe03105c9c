//! A restaurant's desk: the scheduled orders (each with the moment its kitchen must start), the
//! orders waiting for its answer (each with the moment it times out) and the orders its kitchen
//! holds, against its capacity. Pure: the restaurant actor feeds it each order's new stage and
//! the time, and asks it what is due.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::ids::OrderId;
use super::order::Stage;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desk {
    /// Scheduled, by when the restaurant must be asked.
    planned: BTreeSet<(DateTime<Utc>, OrderId)>,
    start_of: HashMap<OrderId, DateTime<Utc>>,
    /// Awaiting an answer, by when it times out.
    waiting: BTreeSet<(DateTime<Utc>, OrderId)>,
    deadline_of: HashMap<OrderId, DateTime<Utc>>,
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

    /// The order is now in `stage` at `version`; `at` is when a scheduled order must start, or
    /// when an order waiting for an answer times out. Idempotent, and a snapshot older than the
    /// one tracked is ignored.
    pub fn track(&mut self, order: OrderId, version: u64, stage: Stage, at: DateTime<Utc>) {
        if self.versions.get(&order).is_some_and(|v| *v > version) {
            return;
        }
        self.unwait(order);
        if let Some(at) = self.start_of.remove(&order) {
            self.planned.remove(&(at, order));
        }
        self.kitchen.remove(&order);
        let answer_by = at;
        match stage {
            Stage::Scheduled => {
                self.planned.insert((at, order));
                self.start_of.insert(order, at);
            }
            Stage::AwaitingRestaurant => {
                self.waiting.insert((answer_by, order));
                self.deadline_of.insert(order, answer_by);
            }
            Stage::Preparing | Stage::FindingRider | Stage::RiderAssigned => {
                self.kitchen.insert(order);
            }
            _ => {
                self.versions.remove(&order);
                return;
            }
        }
        self.versions.insert(order, version);
    }

    fn unwait(&mut self, order: OrderId) {
        if let Some(at) = self.deadline_of.remove(&order) {
            self.waiting.remove(&(at, order));
        }
    }

    /// The orders whose answer is due by `now`, oldest first; they stop waiting here (the
    /// caller rejects them for the restaurant).
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<OrderId> {
        let due: Vec<(DateTime<Utc>, OrderId)> = self
            .waiting
            .iter()
            .take_while(|(at, _)| *at <= now)
            .copied()
            .collect();
        for (_, order) in &due {
            self.unwait(*order);
        }
        due.into_iter().map(|(_, o)| o).collect()
    }

    /// The scheduled orders whose start has come by `now`, earliest first; they leave the plan
    /// (the caller asks the restaurant).
    pub fn starts(&mut self, now: DateTime<Utc>) -> Vec<OrderId> {
        let due: Vec<(DateTime<Utc>, OrderId)> = self
            .planned
            .iter()
            .take_while(|(at, _)| *at <= now)
            .copied()
            .collect();
        for (at, order) in &due {
            self.planned.remove(&(*at, *order));
            self.start_of.remove(order);
        }
        due.into_iter().map(|(_, o)| o).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn stage() -> impl Strategy<Value = Stage> {
        prop::sample::select(Stage::ALL.to_vec())
    }

    proptest! {
        /// Whatever the stages and times: an order times out (or a scheduled one starts) once,
        /// never before its time, only while it is waiting (scheduled); the load counts each
        /// order once and scheduled orders not at all; capacity is respected.
        #[test]
        fn orders_time_out_once_and_never_early(
            steps in prop::collection::vec((0usize..6, stage(), 0i64..400, any::<bool>()), 0..80),
            cap in 1usize..6,
        ) {
            let orders: Vec<OrderId> = (0..6).map(|i| OrderId(uuid::Uuid::from_u128(i + 1))).collect();
            let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("valid");
            let timeout = Duration::seconds(300);
            let mut desk = Desk::new(Some(cap));
            let mut now = start;
            let mut waiting_since: HashMap<OrderId, DateTime<Utc>> = HashMap::new();
            let mut planned_since: HashMap<OrderId, DateTime<Utc>> = HashMap::new();
            let mut version = 0;
            for (i, stage, dt, tick) in steps {
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
                } else {
                    let o = orders[i];
                    version += 1;
                    desk.track(o, version, stage, now + timeout);
                    waiting_since.remove(&o);
                    planned_since.remove(&o);
                    match stage {
                        Stage::AwaitingRestaurant => { waiting_since.insert(o, now); }
                        Stage::Scheduled => { planned_since.insert(o, now); }
                        _ => {}
                    }
                }
                prop_assert_eq!(desk.waiting(), waiting_since.len());
                prop_assert_eq!(desk.planned(), planned_since.len());
                prop_assert!(desk.load() <= orders.len());
                prop_assert_eq!(desk.admit().is_ok(), desk.load() < cap);
            }
        }
    }
}
