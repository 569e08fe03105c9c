//! The order and its state machine: a pure function of (order, command, now).
//!
//! Actors hold orders and call [`Order::apply`]; nothing here does I/O, so the rules are
//! property-tested directly (see `tests` below).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{CustomerId, ItemId, OrderId, RestaurantId, RiderId};
use super::location::LatLng;
use super::payment::OrderPayment;
use super::policy::{self, Policy};

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
    pub const ALL: [Stage; 9] = [
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
            Stage::AwaitingRestaurant => Status::Placed,
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
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    pub restaurant_location: LatLng,
    pub rider_id: Option<RiderId>,
    pub items: Vec<Item>,
    pub total_cents: Cents,
    pub delivery: Delivery,
    pub deliver_at: Option<DateTime<Utc>>,
    pub stage: Stage,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
    pub refund: Option<Refund>,
    pub reject_reason: Option<String>,
    /// Riders offered the order up to and including the one who accepted (0 until then).
    #[serde(default)]
    pub offers: u32,
    /// How it is paid (absent on orders placed before payments were recorded).
    #[serde(default)]
    pub payment: Option<OrderPayment>,
}

/// What can be asked of an order. Who may ask is checked before a command is built.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    AcceptByRestaurant,
    RejectByRestaurant {
        reason: String,
    },
    BeginDispatch,
    /// A rider accepted; the second field counts the riders offered the order so far.
    AssignRider(RiderId, u32),
    Pickup(RiderId),
    Deliver(RiderId),
    Update {
        delivery: Option<Delivery>,
        deliver_at: Option<DateTime<Utc>>,
    },
    Cancel,
    GiveUpDispatch,
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
        match cmd {
            Command::AcceptByRestaurant => {
                if self.stage != AwaitingRestaurant {
                    return invalid;
                }
                next.stage = Preparing;
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
            Command::AssignRider(rider, offers) => {
                if self.stage != FindingRider {
                    return invalid;
                }
                next.stage = RiderAssigned;
                next.rider_id = Some(rider);
                next.offers = offers;
            }
            Command::Pickup(rider) => {
                if self.stage != RiderAssigned {
                    return invalid;
                }
                if self.rider_id != Some(rider) {
                    return Err(OrderError::NotAssignedRider);
                }
                next.stage = PickedUp;
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
            }
            Command::Cancel => {
                if self.stage.is_terminal() {
                    return invalid;
                }
                let percent = policy::cancellation_refund_percent(self.placed_at, now)
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
        }
        next.version = self.version + 1;
        next.updated_at = now.max(self.updated_at);
        Ok(next)
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
}

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
    Ok(Order {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn order() -> Order {
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
                deliver_at: None,
                payment: None,
            },
            Utc::now(),
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
            Just(Command::AssignRider(rider, 1)),
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
                (
                    AwaitingRestaurant,
                    Preparing | RejectedByRestaurant | Cancelled
                ) | (Preparing, FindingRider | Cancelled)
                    | (FindingRider, RiderAssigned | NoRiderFound | Cancelled)
                    | (RiderAssigned, PickedUp | Cancelled)
                    | (PickedUp, Delivered | Cancelled)
            )
    }

    proptest! {
        #[test]
        fn state_machine_never_reaches_an_illegal_stage(
            cmds in proptest::collection::vec((command(), 0i64..3_600), 0..40)
        ) {
            let policy = Policy::default();
            let mut o = order();
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
}
