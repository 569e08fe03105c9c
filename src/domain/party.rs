//! Who takes part in an order. The API asks the engine to apply a change *as* a party, and
//! the order's actor checks the party against the order it holds in the same step that applies
//! the change: one trip to the actor instead of a read and then a write, and no window between
//! the check and the change.

use super::{CustomerId, Order, RestaurantId, RiderId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    Customer(CustomerId),
    Restaurant(RestaurantId),
    Rider(RiderId),
    /// Operations staff: party to every order.
    Ops,
}

impl Order {
    /// Whether `party` takes part in this order: its customer, its restaurant, the rider
    /// carrying it, or ops. Who may see an order and who may act on it start from this.
    pub fn involves(&self, party: Party) -> bool {
        match party {
            Party::Ops => true,
            Party::Customer(id) => self.customer_id == id,
            Party::Restaurant(id) => self.restaurant_id == id,
            Party::Rider(id) => self.rider_id == Some(id),
        }
    }
}
