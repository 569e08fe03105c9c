//! Property tests of the dispatch board: random sequences of rider and order commands, with
//! the board's invariants checked after every step.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::board::{Board, BoardConfig, JobState};
use super::effects::Effects;
use crate::domain::{CustomerId, Delivery, LatLng, OrderId, RestaurantId, RiderId, RiderStatus};
use crate::geo::distance_m;
use crate::wire::{OfferRestaurant, ServerMessage};

const RIDERS: usize = 6;
const ORDERS: usize = 8;
const RADIUS_M: f64 = 5_000.0;
const COOLDOWN_SECS: i64 = 120;

/// Points around Bengaluru, ~1–3 km apart, and one 40 km out of everyone's reach.
const POINTS: [(f64, f64); 5] = [
    (12.9716, 77.5946),
    (12.9816, 77.6046),
    (12.9616, 77.5846),
    (12.9916, 77.5746),
    (13.3216, 77.5946),
];

#[derive(Clone, Debug)]
enum Cmd {
    Status(usize, bool),
    Move(usize, usize),
    Start(usize, usize),
    /// The rider answers its open offer (or, if it has none, a stale one for `order`).
    Answer(usize, usize, bool),
    /// The order actor reports on the assignment of this order.
    Recorded(usize, bool),
    PickedUp(usize),
    /// Ops hand the order to this rider.
    HandOver(usize, usize),
    /// Ops take the order back from its rider.
    TakeBack(usize),
    End(usize),
    Advance(i64),
    Flush,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        2 => (0..RIDERS, any::<bool>()).prop_map(|(r, on)| Cmd::Status(r, on)),
        3 => (0..RIDERS, 0..POINTS.len()).prop_map(|(r, p)| Cmd::Move(r, p)),
        3 => (0..ORDERS, 0..POINTS.len()).prop_map(|(o, p)| Cmd::Start(o, p)),
        4 => (0..RIDERS, 0..ORDERS, any::<bool>()).prop_map(|(r, o, a)| Cmd::Answer(r, o, a)),
        2 => (0..ORDERS, prop::bool::weighted(0.8)).prop_map(|(o, ok)| Cmd::Recorded(o, ok)),
        1 => (0..ORDERS).prop_map(Cmd::PickedUp),
        1 => (0..ORDERS, 0..RIDERS).prop_map(|(o, r)| Cmd::HandOver(o, r)),
        1 => (0..ORDERS).prop_map(Cmd::TakeBack),
        1 => (0..ORDERS).prop_map(Cmd::End),
        2 => (1i64..400).prop_map(Cmd::Advance),
        1 => Just(Cmd::Flush),
    ]
}

struct World {
    board: Board,
    now: DateTime<Utc>,
    riders: Vec<RiderId>,
    orders: Vec<OrderId>,
    /// When each (order, rider) pair was last offered.
    offered: std::collections::HashMap<(OrderId, RiderId), DateTime<Utc>>,
    /// Orders that reached `finding_rider` once: an order never goes back there.
    started: HashSet<OrderId>,
}

fn point(i: usize) -> LatLng {
    LatLng::parse(POINTS[i].0, POINTS[i].1).expect("valid point")
}

impl World {
    fn new() -> Self {
        let mut board = Board::new(BoardConfig {
            radius_m: RADIUS_M,
            offer_timeout: Duration::seconds(30),
            deadline: Duration::seconds(600),
            cooldown: Duration::seconds(COOLDOWN_SECS),
        });
        let riders: Vec<RiderId> = (0..RIDERS).map(|_| RiderId::new()).collect();
        for (i, r) in riders.iter().enumerate() {
            board.add_rider(*r, format!("rider {i}"));
        }
        Self {
            board,
            now: Utc
                .with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
                .single()
                .expect("time"),
            riders,
            orders: (0..ORDERS).map(|_| OrderId::new()).collect(),
            offered: std::collections::HashMap::new(),
            started: HashSet::new(),
        }
    }

    fn step(&mut self, cmd: &Cmd) -> Result<(), TestCaseError> {
        let now = self.now;
        let fx = match *cmd {
            Cmd::Status(r, on) => {
                let status = if on {
                    RiderStatus::Available
                } else {
                    RiderStatus::Offline
                };
                self.board.set_status(self.riders[r], status, now).ok()
            }
            Cmd::Move(r, p) => self
                .board
                .update_location(self.riders[r], point(p), now)
                .ok(),
            Cmd::Start(o, p) => {
                let id = self.orders[o];
                if !self.started.insert(id) {
                    None
                } else {
                    let restaurant = OfferRestaurant {
                        id: RestaurantId::new(),
                        name: "r".into(),
                        location: point(p),
                    };
                    let delivery = Delivery {
                        location: point(0),
                        address: "a".into(),
                    };
                    Some(self.board.start(id, restaurant, delivery, now))
                }
            }
            Cmd::Answer(r, o, accept) => {
                let rider = self.riders[r];
                let order = self
                    .board
                    .riders
                    .get(&rider)
                    .and_then(|x| x.offer)
                    .map_or(self.orders[o], |x| x.order_id);
                self.board.answer(rider, order, accept, now).ok()
            }
            Cmd::Recorded(o, ok) => {
                let id = self.orders[o];
                match self.board.jobs.get(&id).map(|j| j.state) {
                    Some(JobState::Assigning(rider)) => {
                        Some(self.board.assignment_recorded(rider, id, ok, now))
                    }
                    _ => None,
                }
            }
            Cmd::PickedUp(o) => {
                let id = self.orders[o];
                if let Some(&rider) = self.board.carrying.get(&id) {
                    self.board.picked_up(rider, id, CustomerId::new());
                }
                None
            }
            Cmd::HandOver(o, r) => {
                let (id, to) = (self.orders[o], self.riders[r]);
                let from = self.board.carrying.get(&id).copied();
                match self.board.hand_over(id, to, now) {
                    Ok((fx, was, _)) => {
                        prop_assert_eq!(Some(was), from);
                        prop_assert_eq!(self.board.carrying.get(&id), Some(&to));
                        Some(fx)
                    }
                    Err(_) => None,
                }
            }
            Cmd::TakeBack(o) => {
                let id = self.orders[o];
                let restaurant = OfferRestaurant {
                    id: RestaurantId::new(),
                    name: "r".into(),
                    location: point(0),
                };
                let delivery = Delivery {
                    location: point(0),
                    address: "a".into(),
                };
                match self.board.take_back(id, (restaurant, delivery), now) {
                    Ok((fx, was)) => {
                        prop_assert!(self.board.carrying.get(&id).is_none_or(|r| *r != was));
                        prop_assert!(self.board.jobs.contains_key(&id), "dispatched again");
                        // Ops start a new round, without the rider it was taken from: that
                        // rider counts as asked now, everyone else may be asked at once.
                        self.offered.retain(|(o, _), _| *o != id);
                        self.offered.insert((id, was), now);
                        Some(fx)
                    }
                    Err(_) => None,
                }
            }
            Cmd::End(o) => Some(self.board.end(self.orders[o], now)),
            Cmd::Advance(secs) => {
                self.now += Duration::seconds(secs);
                let fx = self.board.tick(self.now);
                self.check_deadlines(&fx)?;
                Some(fx)
            }
            Cmd::Flush => Some(self.board.flush_positions(now)),
        };
        if let Some(fx) = fx {
            self.check_offers(&fx)?;
        }
        self.check_invariants()
    }

    /// Offers go to a rider in range; the same rider is asked the same order again only in a
    /// later round, at least a cool-down after it was last asked.
    fn check_offers(&mut self, fx: &Effects) -> Result<(), TestCaseError> {
        for push in &fx.pushes {
            if let ServerMessage::Offer {
                order_id,
                restaurant,
                ..
            } = &push.msg
            {
                let rider = match push.to.as_slice() {
                    [crate::events::hub::Audience::Rider(r)] => *r,
                    other => return Err(TestCaseError::fail(format!("offer to {other:?}"))),
                };
                if let Some(last) = self.offered.insert((*order_id, rider), self.now) {
                    prop_assert!(
                        self.now >= last + Duration::seconds(COOLDOWN_SECS),
                        "order offered twice to one rider within a round"
                    );
                }
                let at = self.board.riders[&rider]
                    .location
                    .expect("offered rider has a position");
                prop_assert!(distance_m(restaurant.location, at) <= RADIUS_M);
            }
        }
        Ok(())
    }

    /// After a tick nothing is still looking for a rider past its deadline, and only
    /// overdue orders are given up.
    fn check_deadlines(&self, fx: &Effects) -> Result<(), TestCaseError> {
        for (id, job) in &self.board.jobs {
            if job.deadline <= self.now {
                prop_assert!(
                    matches!(
                        job.state,
                        JobState::GivingUp { .. } | JobState::Assigning(_)
                    ),
                    "order {id} still dispatching past its deadline: {:?}",
                    job.state
                );
            }
        }
        for id in &fx.give_ups {
            prop_assert!(self.board.jobs[id].deadline <= self.now);
        }
        Ok(())
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let b = &self.board;
        let mut carried = HashSet::new();
        for (id, r) in &b.riders {
            prop_assert!(
                !(r.offer.is_some() && r.order.is_some()),
                "rider holds an offer and an order"
            );
            let indexable = r.status == RiderStatus::Available
                && r.location.is_some()
                && r.offer.is_none()
                && r.order.is_none();
            prop_assert_eq!(b.available.contains(*id), indexable);
            if let Some(offer) = r.offer {
                let job = b.jobs.get(&offer.order_id);
                prop_assert_eq!(job.map(|j| j.state), Some(JobState::Offered(*id)));
            }
            if let Some(a) = r.order {
                prop_assert!(carried.insert(a.order_id), "two riders carry one order");
                prop_assert_eq!(b.carrying.get(&a.order_id), Some(id));
                prop_assert_eq!(r.status, RiderStatus::Busy);
            }
        }
        prop_assert_eq!(carried.len(), b.carrying.len());
        let mut offered_riders = HashSet::new();
        for (order_id, job) in &b.jobs {
            if let JobState::Offered(rider) = job.state {
                prop_assert!(offered_riders.insert(rider), "one rider holds two offers");
                let offer = b.riders[&rider].offer.map(|o| o.order_id);
                prop_assert_eq!(offer, Some(*order_id));
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn board_keeps_its_invariants(cmds in prop::collection::vec(cmd(), 1..120)) {
        let mut world = World::new();
        for c in &cmds {
            world.step(c)?;
        }
        // However it went, once every deadline has passed each order is assigned, given up
        // or was never started.
        world.step(&Cmd::Advance(601))?;
        for job in world.board.jobs.values() {
            let settled = matches!(job.state, JobState::GivingUp { .. } | JobState::Assigning(_));
            prop_assert!(settled, "a job is still dispatching after every deadline");
        }
    }
}

#[test]
fn the_nearest_free_rider_gets_the_offer_and_a_reject_moves_it_on() {
    let mut w = World::new();
    let (near, far) = (w.riders[0], w.riders[1]);
    for (r, p) in [(near, 0), (far, 1)] {
        w.board.update_location(r, point(p), w.now).expect("rider");
        w.board
            .set_status(r, RiderStatus::Available, w.now)
            .expect("rider");
    }
    let order = w.orders[0];
    w.step(&Cmd::Start(0, 0)).expect("start");
    assert_eq!(w.board.jobs[&order].state, JobState::Offered(near));
    let fx = w.board.answer(near, order, false, w.now).expect("reject");
    assert!(
        fx.pushes
            .iter()
            .any(|p| matches!(p.msg, ServerMessage::Offer { .. }))
    );
    assert_eq!(w.board.jobs[&order].state, JobState::Offered(far));
    // The first rider is free again but never offered the same order twice.
    assert!(w.board.available.contains(near));
}

#[test]
fn positions_are_written_once_a_minute_not_on_every_move() {
    let mut w = World::new();
    let r = w.riders[0];
    w.board
        .set_status(r, RiderStatus::Available, w.now)
        .expect("rider");
    w.board.update_location(r, point(0), w.now).expect("rider");
    assert!(w.board.flush_positions(w.now).writes.is_empty());
    w.now += Duration::seconds(59);
    w.board.update_location(r, point(1), w.now).expect("rider");
    assert!(w.board.flush_positions(w.now).writes.is_empty());
    w.now += Duration::seconds(1);
    assert_eq!(w.board.flush_positions(w.now).writes.len(), 1);
    assert!(
        w.board.flush_positions(w.now).writes.is_empty(),
        "nothing moved since"
    );
}

#[test]
fn an_offer_expires_after_its_timeout_and_the_order_gives_up_at_its_deadline() {
    let mut w = World::new();
    let r = w.riders[0];
    w.board.update_location(r, point(0), w.now).expect("rider");
    w.board
        .set_status(r, RiderStatus::Available, w.now)
        .expect("rider");
    w.step(&Cmd::Start(0, 0)).expect("start");
    let order = w.orders[0];
    w.now += Duration::seconds(30);
    let fx = w.board.tick(w.now);
    assert!(
        fx.pushes
            .iter()
            .any(|p| matches!(p.msg, ServerMessage::OfferWithdrawn { .. }))
    );
    assert_eq!(
        w.board.jobs[&order].state,
        JobState::Waiting,
        "tried riders are not re-offered"
    );
    w.now += Duration::seconds(570);
    assert_eq!(w.board.tick(w.now).give_ups, vec![order]);
}
