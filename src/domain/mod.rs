//! Pure rules, no I/O: ids, coordinates, the order state machine, refund policy, the clock.

pub mod clock;
pub mod desk;
pub mod distance;
pub mod ids;
pub mod ledger;
pub mod location;
pub mod menu;
pub mod money;
pub mod order;
pub mod party;
pub mod payment;
pub mod policy;
pub mod recurring;
pub mod restaurant;
pub mod rfc3339;
pub mod rider;
pub mod timing;

pub use clock::Clock;
pub use ids::{CustomerId, ItemId, OrderId, RecurringId, RestaurantId, RiderId};
pub use location::LatLng;
pub use menu::{Menu, MenuError, MenuItem, OrderLine};
pub use money::Cents;
pub use order::{Command, Delivery, Item, Order, OrderError, Stage, Status};
pub use party::Party;
pub use payment::{OrderPayment, PaymentMethod};
pub use policy::Policy;
pub use restaurant::Restaurant;
pub use rider::{Rider, RiderStatus};
