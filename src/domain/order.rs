//! The order and its state machine: a pure function of (order, command, now).
//!
//! Actors hold orders and call [`Order::apply`]; nothing here does I/O, so the rules are
//! property-tested directly (see `tests` below).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{CustomerId, ItemId, OrderId, RecurringId, RestaurantId, RiderId};
use super::location::LatLng;
use super::payment::OrderPayment;
use super::policy::{self, Policy};
use super::timing::{self, Eta, Leg};

pub use super::money::Cents;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Item {
    /// The menu item this line was priced from (absent on orders placed before menus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<ItemId>,
    pub name: String,
    pub quantity: u32,
    #[schema(value_type = i64)]
    pub unit_price_cents: Cents,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub location: LatLng,
    pub address: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refund {
    pub percent: u8,
    #[schema(value_type = i64)]
    pub amount_cents: Cents,
}

/// The coarse state every client understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Placed,
    Processing,
    Completed,
    Cancelled,
    Rejected,
}

/// The fine state; [`Stage::status`] maps it to the coarse one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Wanted more than 45 min ahead: waits until the kitchen must start.
    Scheduled,
    AwaitingRestaurant,
    Preparing,
    FindingRider,
    RiderAssigned,
    PickedUp,
    Delivered,
    Cancelled,
    RejectedByRestaurant,
    NoRiderFound,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::Scheduled,
        Stage::AwaitingRestaurant,
        Stage::Preparing,
        Stage::FindingRider,
        Stage::RiderAssigned,
        Stage::PickedUp,
        Stage::Delivered,
        Stage::Cancelled,
        Stage::RejectedByRestaurant,
        Stage::NoRiderFound,
    ];

    pub fn status(self) -> Status {
        match self {
            Stage::Scheduled | Stage::AwaitingRestaurant => Status::Placed,
            Stage::Preparing | Stage::FindingRider | Stage::RiderAssigned | Stage::PickedUp => {
                Status::Processing
            }
            Stage::Delivered => Status::Completed,
            Stage::Cancelled | Stage::NoRiderFound => Status::Cancelled,
            Stage::RejectedByRestaurant => Status::Rejected,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self.status(),
            Status::Completed | Status::Cancelled | Status::Rejected
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Scheduled => "scheduled",
            Stage::AwaitingRestaurant => "awaiting_restaurant",
            Stage::Preparing => "preparing",
            Stage::FindingRider => "finding_rider",
            Stage::RiderAssigned => "rider_assigned",
            Stage::PickedUp => "picked_up",
            Stage::Delivered => "delivered",
            Stage::Cancelled => "cancelled",
            Stage::RejectedByRestaurant => "rejected_by_restaurant",
            Stage::NoRiderFound => "no_rider_found",
        }
    }
}

/// An order as the engine keeps it. `restaurant_location` is carried so that radius checks and
/// dispatch never need another lookup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    // Fields are in this order for PostgreSQL: an order's row is rewritten at each version,
    // on the same page, and the write-ahead log then records only the bytes between the
    // first and the last that changed. What changes comes first in the stored JSON (the last
    // column), what never changes (items, the delivery address) last.
    pub stage: Stage,
    pub version: u64,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub updated_at: DateTime<Utc>,
    pub rider_id: Option<RiderId>,
    /// Riders offered the order up to and including the one who accepted (0 until then).
    #[serde(default)]
    pub offers: u32,
    /// How it is paid (absent on orders placed before payments were recorded).
    #[serde(default)]
    pub payment: Option<OrderPayment>,
    pub refund: Option<Refund>,
    pub reject_reason: Option<String>,
    /// When the restaurant is (or was) asked: the planned start of a scheduled order, else
    /// its placement; `None` while it is queued for room in a full kitchen. The answer timeout
    /// runs from here.
    #[serde(default)]
    #[serde(serialize_with = "crate::domain::rfc3339::utc_opt")]
    pub asked_at: Option<DateTime<Utc>>,
    /// When the kitchen expects the food ready (set when the restaurant accepts).
    #[serde(default)]
    #[serde(serialize_with = "crate::domain::rfc3339::utc_opt")]
    pub ready_at: Option<DateTime<Utc>>,
    /// Pickup and delivery estimates; `None` once the order is finished.
    #[serde(default)]
    pub eta: Option<Eta>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc_opt")]
    pub deliver_at: Option<DateTime<Utc>>,
    pub delivery: Delivery,
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    pub restaurant_location: LatLng,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub placed_at: DateTime<Utc>,
    /// The kitchen's time for this order, as the restaurant said when it was placed.
    #[serde(default = "default_prep_minutes")]
    pub prep_minutes: u32,
    /// The recurring order this is an occurrence of.
    #[serde(default)]
    pub recurring_id: Option<RecurringId>,
    pub total_cents: Cents,
    pub items: Vec<Item>,
}

fn default_prep_minutes() -> u32 {
    15
}

/// What can be asked of an order. Who may ask is checked before a command is built.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    AcceptByRestaurant,
    RejectByRestaurant {
        reason: String,
    },
    BeginDispatch,
    /// A scheduled order's start has come: ask the restaurant.
    Release,
    /// A queued order reached the front of its restaurant's queue: ask the restaurant now.
    Ask,
    /// A rider accepted; the second field counts the riders offered the order so far, the
    /// third is where the rider was (for the pickup estimate).
    AssignRider(RiderId, u32, Option<LatLng>),
    /// Ops moved the order to another rider (where that rider is, for the estimate).
    Reassign(RiderId, Option<LatLng>),
    /// Ops took the order from its rider: it looks for a rider again.
    Unassign,
    Pickup(RiderId),
    Deliver(RiderId),
    Update {
        delivery: Option<Delivery>,
        deliver_at: Option<DateTime<Utc>>,
    },
    Cancel,
    GiveUpDispatch,
    /// The carrying rider moved: refresh the estimate (refused unless it moves a minute).
    Reestimate {
        rider: RiderId,
        at: LatLng,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("the order is {0:?} and cannot do that")]
    InvalidState(Stage),
    #[error("orders can be changed only in the first 30 minutes and before pickup")]
    UpdateWindowClosed,
    #[error("orders can be cancelled only in the first 30 minutes")]
    CancellationWindowClosed,
    #[error("the delivery point is farther than the delivery radius from the restaurant")]
    OutOfRadius,
    #[error("only the assigned rider can do that")]
    NotAssignedRider,
    #[error("the estimate moved by less than a minute")]
    EtaUnchanged,
}

impl Order {
    /// Only a delivered order can be rated (once: the store keeps the first rating).
    pub fn may_be_rated(&self) -> bool {
        self.stage == Stage::Delivered
    }

    pub fn status(&self) -> Status {
        self.stage.status()
    }

    /// Applies `cmd` at `now`; on success returns the next version of the order.
    pub fn apply(
        &self,
        cmd: Command,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Order, OrderError> {
        use Stage::*;
        let mut next = self.clone();
        let invalid = Err(OrderError::InvalidState(self.stage));
        // Where the rider is, when the command says: it moves the estimate.
        let mut rider_at = None;
        let reestimated = matches!(cmd, Command::Reestimate { .. });
        match cmd {
            Command::Release => {
                if self.stage != Scheduled {
                    return invalid;
                }
                next.stage = AwaitingRestaurant;
                next.asked_at = Some(now);
            }
            Command::Ask => {
                if self.stage != AwaitingRestaurant || self.asked_at.is_some() {
                    return invalid;
                }
                next.asked_at = Some(now);
            }
            Command::AcceptByRestaurant => {
                if self.stage != AwaitingRestaurant {
                    return invalid;
                }
                next.stage = Preparing;
                next.ready_at = Some(now + self.prep());
            }
            Command::RejectByRestaurant { reason } => {
                if self.stage != AwaitingRestaurant {
                    return invalid;
                }
                next.stage = RejectedByRestaurant;
                next.refund = Some(policy::full_refund(self.total_cents));
                next.reject_reason = Some(reason);
            }
            Command::BeginDispatch => {
                if self.stage != Preparing {
                    return invalid;
                }
                next.stage = FindingRider;
            }
            Command::AssignRider(rider, offers, at) => {
                if self.stage != FindingRider {
                    return invalid;
                }
                next.stage = RiderAssigned;
                next.rider_id = Some(rider);
                next.offers = offers;
                rider_at = at;
            }
            Command::Reassign(rider, at) => {
                if self.stage != RiderAssigned {
                    return invalid;
                }
                next.rider_id = Some(rider);
                rider_at = at;
            }
            Command::Unassign => {
                if self.stage != RiderAssigned {
                    return invalid;
                }
                next.stage = FindingRider;
                next.rider_id = None;
            }
            Command::Pickup(rider) => {
                if self.stage != RiderAssigned {
                    return invalid;
                }
                if self.rider_id != Some(rider) {
                    return Err(OrderError::NotAssignedRider);
                }
                next.stage = PickedUp;
                // The road leg starts now, from the restaurant.
                next.eta = None;
                rider_at = Some(self.restaurant_location);
            }
            Command::Deliver(rider) => {
                if self.stage != PickedUp {
                    return invalid;
                }
                if self.rider_id != Some(rider) {
                    return Err(OrderError::NotAssignedRider);
                }
                next.stage = Delivered;
            }
            Command::Update {
                delivery,
                deliver_at,
            } => {
                if !policy::update_allowed(self.stage, self.placed_at, now) {
                    return Err(OrderError::UpdateWindowClosed);
                }
                if let Some(delivery) = delivery {
                    if !policy.within_radius(self.restaurant_location, delivery.location) {
                        return Err(OrderError::OutOfRadius);
                    }
                    next.delivery = delivery;
                }
                if deliver_at.is_some() {
                    next.deliver_at = deliver_at;
                }
                if self.stage == Scheduled {
                    // The plan moves with the time and the place (the ticker releases an
                    // order whose new start has already come).
                    next.asked_at = next.planned_start(policy);
                }
            }
            Command::Cancel => {
                if self.stage.is_terminal() {
                    return invalid;
                }
                let percent = policy::cancellation_refund_percent(self.stage, self.placed_at, now)
                    .ok_or(OrderError::CancellationWindowClosed)?;
                next.stage = Cancelled;
                next.refund = Some(policy::refund(self.total_cents, percent));
            }
            Command::GiveUpDispatch => {
                if self.stage != FindingRider {
                    return invalid;
                }
                next.stage = NoRiderFound;
                next.refund = Some(policy::full_refund(self.total_cents));
            }
            Command::Reestimate { rider, at } => {
                if !matches!(self.stage, RiderAssigned | PickedUp) {
                    return invalid;
                }
                if self.rider_id != Some(rider) {
                    return Err(OrderError::NotAssignedRider);
                }
                next.eta = next.estimate(Some(at), policy, now);
                let moved = match (self.eta, next.eta) {
                    (Some(a), Some(b)) => a.moved(&b),
                    (a, b) => a != b,
                };
                if !moved {
                    return Err(OrderError::EtaUnchanged);
                }
            }
        }
        if !reestimated {
            next.eta = next.estimate(rider_at, policy, now);
        }
        next.version = self.version + 1;
        next.updated_at = now.max(self.updated_at);
        Ok(next)
    }

    fn prep(&self) -> Duration {
        Duration::minutes(i64::from(self.prep_minutes))
    }

    /// When a scheduled order must be started to arrive at its `deliver_at`.
    pub fn planned_start(&self, policy: &Policy) -> Option<DateTime<Utc>> {
        let ride = policy
            .speed
            .ride(self.restaurant_location, self.delivery.location);
        self.deliver_at
            .map(|at| timing::start_at(at, self.prep(), ride))
    }

    /// The estimate for this order in its stage; `rider_at` is the rider's position when the
    /// command knows it (otherwise the last estimate's pickup time stands).
    fn estimate(
        &self,
        rider_at: Option<LatLng>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Option<Eta> {
        let previous_pickup = self.eta.map(|e| e.pickup_at);
        let leg = match self.stage {
            Stage::Scheduled => Leg::Scheduled {
                deliver_at: self.deliver_at?,
            },
            Stage::AwaitingRestaurant => Leg::Kitchen {
                ready_at: now + self.prep(),
                rider_at: None,
                previous: None,
            },
            Stage::Preparing | Stage::FindingRider | Stage::RiderAssigned => Leg::Kitchen {
                ready_at: self.ready_at.unwrap_or(now),
                rider_at,
                previous: previous_pickup.filter(|_| self.stage == Stage::RiderAssigned),
            },
            Stage::PickedUp => Leg::Road {
                picked_up_at: previous_pickup.unwrap_or(now),
                rider_at: rider_at.unwrap_or(self.restaurant_location),
            },
            _ => return None,
        };
        Some(timing::estimate(
            leg,
            self.restaurant_location,
            self.delivery.location,
            policy.speed,
            now,
        ))
    }
}

/// Placement input after validation; [`new_order`] computes the total on the server.
pub struct NewOrder {
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    pub restaurant_location: LatLng,
    pub items: Vec<Item>,
    pub delivery: Delivery,
    pub deliver_at: Option<DateTime<Utc>>,
    pub payment: Option<OrderPayment>,
    /// The restaurant's kitchen time when the order is placed.
    pub prep_minutes: u32,
    pub recurring_id: Option<RecurringId>,
}

/// A new order: priced, checked against the radius, and `scheduled` when it is wanted far
/// enough ahead that the kitchen must not start yet.
pub fn new_order(
    input: NewOrder,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Order, OrderError> {
    if !policy.within_radius(input.restaurant_location, input.delivery.location) {
        return Err(OrderError::OutOfRadius);
    }
    let total_cents = input
        .items
        .iter()
        .map(|i| i.unit_price_cents.times(i.quantity))
        .sum();
    let mut order = Order {
        id: OrderId::new(),
        customer_id: input.customer_id,
        restaurant_id: input.restaurant_id,
        restaurant_location: input.restaurant_location,
        rider_id: None,
        items: input.items,
        total_cents,
        delivery: input.delivery,
        deliver_at: input.deliver_at,
        stage: Stage::AwaitingRestaurant,
        placed_at: now,
        updated_at: now,
        version: 1,
        refund: None,
        reject_reason: None,
        offers: 0,
        payment: input.payment,
        prep_minutes: input.prep_minutes,
        asked_at: Some(now),
        ready_at: None,
        eta: None,
        recurring_id: input.recurring_id,
    };
    if timing::wants_scheduling(order.deliver_at, now)
        && let Some(start) = order.planned_start(policy).filter(|s| *s > now)
    {
        order.stage = Stage::Scheduled;
        order.asked_at = Some(start);
    }
    order.eta = order.estimate(None, policy, now);
    Ok(order)
}

#[cfg(test)]
mod tests;
