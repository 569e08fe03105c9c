//! Typed identifiers: a rider id can never be passed where an order id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// An order, from placement to its terminal stage.
    OrderId
);
id_type!(
    /// A delivery partner.
    RiderId
);
id_type!(
    /// A restaurant (vendor).
    RestaurantId
);
id_type!(
    /// A customer placing orders.
    CustomerId
);
id_type!(
    /// A dish on a restaurant's menu (unique within the restaurant).
    ItemId
);
id_type!(
    /// A recurring order: a schedule that places an order on each of its days.
    RecurringId
);
