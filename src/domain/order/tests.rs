//! The order state machine, property-tested.

use super::*;
use chrono::Duration;
use proptest::prelude::*;

fn order() -> Order {
    order_for(None, Utc::now())
}

/// An order placed at `now`, wanted at `deliver_at` (scheduled when that is far enough).
fn order_for(deliver_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Order {
    let r = LatLng::parse(12.97, 77.59).unwrap(); // constant, valid
    new_order(
        NewOrder {
            customer_id: CustomerId::new(),
            restaurant_id: RestaurantId::new(),
            restaurant_location: r,
            items: vec![Item {
                item_id: None,
                name: "dosa".into(),
                quantity: 2,
                unit_price_cents: Cents(12_000),
            }],
            delivery: Delivery {
                location: r,
                address: "here".into(),
            },
            deliver_at,
            payment: None,
            prep_minutes: 15,
            recurring_id: None,
        },
        now,
        &Policy::default(),
    )
    .unwrap() // same point as the restaurant: always in radius
}

fn command() -> impl Strategy<Value = Command> {
    let rider = RiderId(uuid::Uuid::from_u128(7));
    prop_oneof![
        Just(Command::AcceptByRestaurant),
        Just(Command::RejectByRestaurant {
            reason: "busy".into()
        }),
        Just(Command::BeginDispatch),
        Just(Command::Release),
        Just(Command::Ask),
        Just(Command::AssignRider(rider, 1, None)),
        Just(Command::AssignRider(
            rider,
            1,
            LatLng::parse(12.98, 77.59).ok()
        )),
        Just(Command::Reestimate {
            rider,
            at: LatLng::parse(12.99, 77.59).expect("valid")
        }),
        Just(Command::Reassign(RiderId(uuid::Uuid::from_u128(8)), None)),
        Just(Command::Unassign),
        Just(Command::Pickup(rider)),
        Just(Command::Deliver(rider)),
        Just(Command::Update {
            delivery: None,
            deliver_at: None
        }),
        Just(Command::Cancel),
        Just(Command::GiveUpDispatch),
    ]
}

/// The edges of the lifecycle; anything else is illegal.
fn legal(from: Stage, to: Stage) -> bool {
    use Stage::*;
    from == to
        || matches!(
            (from, to),
            (Scheduled, AwaitingRestaurant | Cancelled)
                | (
                    AwaitingRestaurant,
                    Preparing | RejectedByRestaurant | Cancelled
                )
                | (Preparing, FindingRider | Cancelled)
                | (FindingRider, RiderAssigned | NoRiderFound | Cancelled)
                | (RiderAssigned, PickedUp | Cancelled | FindingRider)
                | (PickedUp, Delivered | Cancelled)
        )
}

proptest! {
    #[test]
    fn state_machine_never_reaches_an_illegal_stage(
        cmds in proptest::collection::vec((command(), 0i64..3_600), 0..40),
        wanted_in in prop::option::of(0i64..600),
    ) {
        let policy = Policy::default();
        let now = Utc::now();
        let mut o = order_for(wanted_in.map(|m| now + Duration::minutes(m)), now);
        let start = o.placed_at;
        let mut t = start;
        for (cmd, dt) in cmds {
            t += Duration::seconds(dt / 20);
            let before = o.clone();
            match o.apply(cmd, t, &policy) {
                Ok(next) => {
                    prop_assert!(legal(before.stage, next.stage), "{:?} -> {:?}", before.stage, next.stage);
                    prop_assert_eq!(next.version, before.version + 1);
                    prop_assert!(!before.stage.is_terminal(), "terminal order changed");
                    if matches!(next.stage, Stage::RiderAssigned | Stage::PickedUp | Stage::Delivered) {
                        prop_assert!(next.rider_id.is_some());
                    }
                    if next.stage.is_terminal() && next.stage != Stage::Delivered {
                        prop_assert!(next.refund.is_some());
                    }
                    // Every live order has an estimate, food is picked up before it arrives,
                    // and a scheduled order's estimate is the time it was wanted.
                    prop_assert_eq!(next.eta.is_none(), next.stage.is_terminal());
                    if let Some(eta) = next.eta {
                        prop_assert!(eta.pickup_at <= eta.deliver_at);
                        if next.stage == Stage::Scheduled {
                            prop_assert_eq!(Some(eta.deliver_at), next.deliver_at);
                        }
                    }
                    if next.stage == Stage::Scheduled {
                        prop_assert!(next.rider_id.is_none());
                    }
                    o = next;
                }
                Err(_) => prop_assert_eq!(&o, &before),
            }
        }
    }
}

#[test]
fn refund_tiers_at_their_boundaries() {
    let p = Policy::default();
    let o = order();
    let at = |secs| o.placed_at + Duration::seconds(secs);
    let cancel = |secs| o.apply(Command::Cancel, at(secs), &p);
    assert_eq!(cancel(599).unwrap().refund.unwrap().percent, 70);
    assert_eq!(cancel(600).unwrap().refund.unwrap().percent, 40);
    assert_eq!(
        cancel(600).unwrap().refund.unwrap().amount_cents,
        Cents(9_600)
    );
    assert_eq!(cancel(1_799).unwrap().refund.unwrap().percent, 40);
    assert_eq!(cancel(1_800), Err(OrderError::CancellationWindowClosed));
}

fn at(lat: f64) -> LatLng {
    LatLng::parse(lat, 77.59).expect("valid")
}

#[test]
fn an_order_wanted_two_hours_ahead_waits_until_its_kitchen_must_start() {
    let p = Policy::default();
    let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("valid");
    let want = now + Duration::hours(2);
    let o = order_for(Some(want), now);
    assert_eq!(o.stage, Stage::Scheduled);
    assert_eq!(o.status(), Status::Placed);
    // Delivery at the restaurant's door: no ride, 15 minutes of kitchen.
    assert_eq!(o.asked_at, Some(want - Duration::minutes(15)));
    assert_eq!(o.eta.map(|e| e.deliver_at), Some(want));
    // Cancelling before the start costs nothing.
    let cancelled = o.apply(Command::Cancel, now + Duration::minutes(50), &p);
    assert_eq!(
        cancelled.map(|c| c.refund.map(|r| r.percent)),
        Ok(Some(100))
    );
    // Moving the time moves the start, even past the usual 30-minute change window.
    let later = want + Duration::hours(1);
    let moved = o
        .apply(
            Command::Update {
                delivery: None,
                deliver_at: Some(later),
            },
            now + Duration::minutes(40),
            &p,
        )
        .expect("a scheduled order can move");
    assert_eq!(moved.asked_at, Some(later - Duration::minutes(15)));
    // Released: the restaurant is asked now, and the answer timeout runs from here.
    let start = later - Duration::minutes(15);
    let asked = moved.apply(Command::Release, start, &p).expect("releases");
    assert_eq!(
        (asked.stage, asked.asked_at),
        (Stage::AwaitingRestaurant, Some(start))
    );
    // Soon wanted orders are not scheduled.
    assert_eq!(
        order_for(Some(now + Duration::minutes(45)), now).stage,
        Stage::AwaitingRestaurant
    );
}

#[test]
fn the_estimate_follows_the_rider_and_moves_only_by_minutes() {
    let p = Policy::default();
    let mut o = order();
    o.delivery.location = at(12.97 + 0.027); // about 3 km: 9 minutes' ride
    let t = o.placed_at;
    let rider = RiderId(uuid::Uuid::from_u128(7));
    let o = o
        .apply(Command::AcceptByRestaurant, t, &p)
        .expect("accepts");
    let o = o.apply(Command::BeginDispatch, t, &p).expect("dispatches");
    let ready = t + Duration::minutes(15);
    assert_eq!(o.eta.map(|e| e.pickup_at), Some(ready));
    // A rider 30 minutes' ride away makes pickup late.
    let far = at(12.97 - 0.09);
    let o = o
        .apply(Command::AssignRider(rider, 1, Some(far)), t, &p)
        .expect("assigns");
    let pickup = o.eta.expect("estimate").pickup_at;
    assert!(
        pickup > ready + Duration::minutes(14),
        "{pickup} vs {ready}"
    );
    // Moving a few metres does not change it by a minute: refused, nothing to push.
    let nudge = Command::Reestimate {
        rider,
        at: at(12.97 - 0.0899),
    };
    assert_eq!(
        o.apply(nudge, t + Duration::seconds(5), &p),
        Err(OrderError::EtaUnchanged)
    );
    // Arriving at the restaurant: pickup when the food is ready.
    let here = Command::Reestimate {
        rider,
        at: at(12.97),
    };
    let o = o
        .apply(here, t + Duration::minutes(10), &p)
        .expect("moved a lot");
    assert_eq!(o.eta.map(|e| e.pickup_at), Some(ready));
    let o = o
        .apply(Command::Pickup(rider), ready, &p)
        .expect("picks up");
    let eta = o.eta.expect("estimate");
    assert_eq!(eta.pickup_at, ready);
    assert!((eta.deliver_at - (ready + Duration::minutes(9))).abs() < Duration::seconds(10));
    let o = o
        .apply(Command::Deliver(rider), ready, &p)
        .expect("delivers");
    assert_eq!(o.eta, None);
}

/// PostgreSQL logs a row rewritten on its own page as only the bytes between the first and
/// the last that changed; the stored order is JSON in the row's last column, so what never
/// changes must stay at its end for each version to log little.
#[test]
fn each_version_leaves_the_stored_orders_tail_unchanged() {
    let policy = Policy::default();
    let now = Utc::now();
    let rider = RiderId::new();
    let steps = [
        Command::AcceptByRestaurant,
        Command::BeginDispatch,
        Command::AssignRider(rider, 1, None),
        Command::Pickup(rider),
        Command::Deliver(rider),
    ];
    let mut last = order();
    for (n, cmd) in steps.into_iter().enumerate() {
        let next = last
            .apply(cmd, now + Duration::minutes(n as i64 + 1), &policy)
            .unwrap();
        let (a, b) = (
            serde_json::to_string(&last).unwrap(),
            serde_json::to_string(&next).unwrap(),
        );
        let same = a
            .bytes()
            .rev()
            .zip(b.bytes().rev())
            .take_while(|(x, y)| x == y)
            .count();
        let tail = &b[b.len() - same..];
        for field in [
            "\"items\":",
            "\"delivery\":",
            "\"id\":",
            "\"customer_id\":",
            "\"placed_at\":",
        ] {
            assert!(
                tail.contains(field),
                "{field} changed at {:?}: {tail}",
                next.stage
            );
        }
        last = next;
    }
}

#[test]
fn only_an_orders_own_parties_and_ops_take_part_in_it() {
    use crate::domain::Party;
    let mut o = order();
    let rider = RiderId::new();
    assert!(o.involves(Party::Customer(o.customer_id)));
    assert!(o.involves(Party::Restaurant(o.restaurant_id)));
    assert!(o.involves(Party::Ops));
    assert!(!o.involves(Party::Customer(CustomerId::new())));
    assert!(!o.involves(Party::Restaurant(RestaurantId::new())));
    // A rider takes part only once the order is theirs.
    assert!(!o.involves(Party::Rider(rider)));
    o.rider_id = Some(rider);
    assert!(o.involves(Party::Rider(rider)));
    assert!(!o.involves(Party::Rider(RiderId::new())));
}
