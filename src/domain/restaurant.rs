//! A restaurant as the rules see it: where it is, whether it takes orders, its ratings.

use std::sync::Arc;

use super::{LatLng, Menu, RestaurantId};

#[derive(Clone, Debug, PartialEq)]
pub struct Restaurant {
    pub id: RestaurantId,
    pub name: String,
    pub location: LatLng,
    pub open: bool,
    pub rating_sum: i64,
    pub rating_count: i64,
    /// Minutes the kitchen takes to prepare an order.
    pub prep_minutes: u32,
    /// Shared: a restaurant is cloned on every lookup, its menu is not.
    pub menu: Arc<Menu>,
}
