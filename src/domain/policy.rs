//! Business rules with numbers in them: radius, refund tiers, the update window.

use chrono::{DateTime, Duration, Utc};

use super::distance::distance_m;
use super::location::LatLng;
use super::order::{Cents, Refund, Stage};

/// Tunable rules; the radius is configurable, the refund tiers are the product's promise.
#[derive(Clone, Debug)]
pub struct Policy {
    pub radius_m: f64,
    /// How a delivered order's money is split.
    pub split: super::ledger::Split,
    /// How long a restaurant has to answer an order before it is rejected for it.
    pub answer_timeout: Duration,
    /// Most orders a restaurant holds at once, waiting or in the kitchen (`None`: no limit).
    pub restaurant_capacity: Option<usize>,
    /// Beyond capacity, new orders queue for room (`true`) or are refused `restaurant_busy`.
    pub queue_when_busy: bool,
    /// How fast riders are assumed to ride, for schedules and estimates.
    pub speed: super::timing::Speed,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            radius_m: 5_000.0,
            split: super::ledger::Split::default(),
            answer_timeout: Duration::minutes(5),
            restaurant_capacity: None,
            queue_when_busy: false,
            speed: super::timing::Speed::default(),
        }
    }
}

impl Policy {
    /// Great-circle distance, inclusive of the edge.
    pub fn within_radius(&self, a: LatLng, b: LatLng) -> bool {
        distance_m(a, b) <= self.radius_m
    }
}

/// Cancellation and update windows, measured from `placed_at`.
pub const EARLY_CANCEL_WINDOW: Duration = Duration::minutes(10);
pub const CHANGE_WINDOW: Duration = Duration::minutes(30);
/// The refund tiers: cancelled inside the early window, inside the change window.
pub const EARLY_CANCEL_REFUND_PERCENT: u8 = 70;
pub const LATE_CANCEL_REFUND_PERCENT: u8 = 40;
/// What the customer gets back when the platform or the restaurant ends the order.
pub const FULL_REFUND_PERCENT: u8 = 100;

/// Under 10 min 70 %, under 30 min 40 %, from 30 min on no cancellation. A scheduled order
/// that the kitchen has not started is cancelled for free.
pub fn cancellation_refund_percent(
    stage: Stage,
    placed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<u8> {
    if stage == Stage::Scheduled {
        return Some(FULL_REFUND_PERCENT);
    }
    let elapsed = now - placed_at;
    if elapsed < EARLY_CANCEL_WINDOW {
        Some(EARLY_CANCEL_REFUND_PERCENT)
    } else if elapsed < CHANGE_WINDOW {
        Some(LATE_CANCEL_REFUND_PERCENT)
    } else {
        None
    }
}

/// What cancelling now would refund, and until when that holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancellationQuote {
    pub percent: u8,
    pub amount_cents: Cents,
    /// When this tier ends (`None`: cancellation is closed).
    pub until: Option<DateTime<Utc>>,
}

/// The quote for an order in `stage` placed at `placed_at` (asked of its restaurant at
/// `asked_at`); `None` once it is finished.
pub fn cancellation_quote(
    stage: Stage,
    placed_at: DateTime<Utc>,
    asked_at: Option<DateTime<Utc>>,
    total: Cents,
    now: DateTime<Utc>,
) -> Option<CancellationQuote> {
    if stage.is_terminal() {
        return None;
    }
    if stage == Stage::Scheduled {
        return Some(CancellationQuote {
            percent: FULL_REFUND_PERCENT,
            amount_cents: total,
            until: asked_at,
        });
    }
    let elapsed = now - placed_at;
    let until = if elapsed < EARLY_CANCEL_WINDOW {
        Some(placed_at + EARLY_CANCEL_WINDOW)
    } else if elapsed < CHANGE_WINDOW {
        Some(placed_at + CHANGE_WINDOW)
    } else {
        None
    };
    let percent = cancellation_refund_percent(stage, placed_at, now).unwrap_or(0);
    Some(CancellationQuote {
        percent,
        amount_cents: refund(total, percent).amount_cents,
        until,
    })
}

/// Changes are allowed before pickup and until 30 min after placement; a scheduled order
/// that the kitchen has not started can change until it starts.
pub fn update_allowed(stage: Stage, placed_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    if stage == Stage::Scheduled {
        return true;
    }
    let before_pickup = matches!(
        stage,
        Stage::AwaitingRestaurant | Stage::Preparing | Stage::FindingRider | Stage::RiderAssigned
    );
    before_pickup && now - placed_at < CHANGE_WINDOW
}

/// Rounds down so the platform never refunds more than the percentage promised.
pub fn refund(total: Cents, percent: u8) -> Refund {
    Refund {
        percent,
        amount_cents: total.percent(percent),
    }
}

pub fn full_refund(total: Cents) -> Refund {
    refund(total, FULL_REFUND_PERCENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A quote is exactly what a cancellation at the same moment refunds, and its tier
        /// holds until `until`.
        #[test]
        fn a_quote_is_what_cancelling_refunds(total in 0i64..10_000_000, secs in 0i64..4_000) {
            let placed = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("valid");
            let now = placed + Duration::seconds(secs);
            let q = cancellation_quote(Stage::Preparing, placed, None, Cents(total), now).expect("open");
            match cancellation_refund_percent(Stage::Preparing, placed, now) {
                Some(p) => {
                    prop_assert_eq!(q.percent, p);
                    prop_assert_eq!(q.amount_cents, refund(Cents(total), p).amount_cents);
                    let until = q.until.expect("a tier ends");
                    prop_assert!(until > now);
                    let just_before = until - Duration::milliseconds(1);
                    prop_assert_eq!(cancellation_refund_percent(Stage::Preparing, placed, just_before), Some(p));
                    prop_assert_ne!(cancellation_refund_percent(Stage::Preparing, placed, until), Some(p));
                }
                None => prop_assert_eq!((q.percent, q.until), (0, None)),
            }
        }
    }

    #[test]
    fn finished_orders_have_no_quote() {
        let t = Utc::now();
        assert_eq!(
            cancellation_quote(Stage::Delivered, t, None, Cents(1), t),
            None
        );
    }
}
