//! Time in the kitchen and on the road: when a scheduled order must start, and the ETA an
//! order shows. Pure; one place for both, so the plan and the estimate never disagree.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::distance::distance_m;
use super::location::LatLng;

/// An order wanted further ahead than this waits, `scheduled`, until it must start.
pub const SCHEDULE_AHEAD: Duration = Duration::minutes(45);
/// An estimate that moves by less than this is not worth a push.
pub const ETA_STEP: Duration = Duration::minutes(1);
/// The assumed rider speed when none is configured (city traffic, door to door).
pub const DEFAULT_SPEED_KMH: f64 = 20.0;

/// When the food is expected to leave the restaurant and to reach the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Eta {
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub pickup_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub deliver_at: DateTime<Utc>,
}

impl Eta {
    /// Whether `other` differs from this estimate by a minute or more at either end.
    pub fn moved(&self, other: &Eta) -> bool {
        (self.pickup_at - other.pickup_at).abs() >= ETA_STEP
            || (self.deliver_at - other.deliver_at).abs() >= ETA_STEP
    }
}

/// How fast riders are assumed to travel (great-circle metres per second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speed {
    m_per_s: f64,
}

impl Speed {
    /// `None` unless the speed is a positive, finite number of km/h.
    pub fn from_kmh(kmh: f64) -> Option<Self> {
        (kmh.is_finite() && kmh > 0.0).then_some(Self {
            m_per_s: kmh * 1000.0 / 3600.0,
        })
    }

    /// The time to ride from `a` to `b`, to the second.
    pub fn ride(&self, a: LatLng, b: LatLng) -> Duration {
        Duration::seconds((distance_m(a, b) / self.m_per_s).round() as i64)
    }
}

impl Default for Speed {
    fn default() -> Self {
        Self {
            m_per_s: DEFAULT_SPEED_KMH * 1000.0 / 3600.0,
        }
    }
}

/// Whether an order wanted at `deliver_at` waits as `scheduled` when placed at `now`.
pub fn wants_scheduling(deliver_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    deliver_at.is_some_and(|at| at > now + SCHEDULE_AHEAD)
}

/// When the restaurant must be asked for the food to arrive at `deliver_at`: the kitchen's
/// time and the ride before it.
pub fn start_at(deliver_at: DateTime<Utc>, prep: Duration, ride: Duration) -> DateTime<Utc> {
    deliver_at - prep - ride
}

/// Where the food is in its journey, for an estimate.
#[derive(Clone, Copy, Debug)]
pub enum Leg {
    /// Waiting for its start: it arrives when wanted.
    Scheduled { deliver_at: DateTime<Utc> },
    /// In (or about to enter) the kitchen, ready at `ready_at`; the rider, when known, at
    /// `rider_at`, and `None` keeps the pickup time estimated before (`previous`).
    Kitchen {
        ready_at: DateTime<Utc>,
        rider_at: Option<LatLng>,
        previous: Option<DateTime<Utc>>,
    },
    /// On the way: picked up at `picked_up_at`, the rider now at `rider_at`.
    Road {
        picked_up_at: DateTime<Utc>,
        rider_at: LatLng,
    },
}

/// The estimate for food going from `restaurant` to `customer`, at `now`.
pub fn estimate(
    leg: Leg,
    restaurant: LatLng,
    customer: LatLng,
    speed: Speed,
    now: DateTime<Utc>,
) -> Eta {
    let ride = speed.ride(restaurant, customer);
    match leg {
        Leg::Scheduled { deliver_at } => Eta {
            pickup_at: deliver_at - ride,
            deliver_at,
        },
        Leg::Kitchen {
            ready_at,
            rider_at,
            previous,
        } => {
            let rider_there = rider_at
                .map(|at| now + speed.ride(at, restaurant))
                .or(previous)
                .unwrap_or(now);
            let pickup_at = ready_at.max(rider_there).max(now);
            Eta {
                pickup_at,
                deliver_at: pickup_at + ride,
            }
        }
        Leg::Road {
            picked_up_at,
            rider_at,
        } => Eta {
            pickup_at: picked_up_at,
            deliver_at: now + speed.ride(rider_at, customer),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("valid")
    }

    fn at(lat: f64, lng: f64) -> LatLng {
        LatLng::parse(lat, lng).expect("valid")
    }

    #[test]
    fn three_km_at_twenty_kmh_is_nine_minutes() {
        let a = at(12.9716, 77.5946);
        // 0.027 degrees of latitude is about 3 km.
        let b = at(12.9716 + 0.02698, 77.5946);
        let ride = Speed::default().ride(a, b);
        assert!(
            (ride - Duration::minutes(9)).abs() < Duration::seconds(5),
            "{ride}"
        );
    }

    #[test]
    fn only_orders_wanted_beyond_45_minutes_are_scheduled() {
        let now = t0();
        assert!(!wants_scheduling(None, now));
        assert!(!wants_scheduling(Some(now + SCHEDULE_AHEAD), now));
        assert!(wants_scheduling(
            Some(now + SCHEDULE_AHEAD + Duration::seconds(1)),
            now
        ));
    }

    #[test]
    fn a_minute_is_the_step_worth_a_push() {
        let e = Eta {
            pickup_at: t0(),
            deliver_at: t0(),
        };
        let mut f = e;
        f.deliver_at += Duration::seconds(59);
        assert!(!e.moved(&f));
        f.deliver_at += Duration::seconds(1);
        assert!(e.moved(&f));
    }

    proptest! {
        /// A scheduled plan delivers at the wanted time: start + prep + ride = deliver_at,
        /// and its estimate says so.
        #[test]
        fn the_plan_arrives_when_wanted(prep in 0i64..120, dlat in 0.0f64..0.04, ahead in 46i64..10_000) {
            let (r, c) = (at(12.97, 77.59), at(12.97 + dlat, 77.59));
            let speed = Speed::default();
            let want = t0() + Duration::minutes(ahead);
            let start = start_at(want, Duration::minutes(prep), speed.ride(r, c));
            prop_assert_eq!(start + Duration::minutes(prep) + speed.ride(r, c), want);
            let eta = estimate(Leg::Scheduled { deliver_at: want }, r, c, speed, t0());
            prop_assert_eq!(eta.deliver_at, want);
            prop_assert!(eta.pickup_at <= eta.deliver_at);
        }

        /// Food is never picked up before it is ready or before now, and never arrives before
        /// it was picked up.
        #[test]
        fn estimates_keep_their_order(ready in -60i64..60, dlat in 0.0f64..0.04, rider in prop::option::of(0.0f64..0.04)) {
            let (r, c) = (at(12.97, 77.59), at(12.97 + dlat, 77.59));
            let now = t0();
            let ready_at = now + Duration::minutes(ready);
            let leg = Leg::Kitchen { ready_at, rider_at: rider.map(|d| at(12.97 - d, 77.59)), previous: None };
            let eta = estimate(leg, r, c, Speed::default(), now);
            prop_assert!(eta.pickup_at >= ready_at && eta.pickup_at >= now);
            prop_assert!(eta.deliver_at >= eta.pickup_at);
        }
    }
}
