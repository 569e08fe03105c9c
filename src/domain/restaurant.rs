//! A restaurant as the rules see it: where it is, whether it takes orders, its ratings.

use super::{LatLng, RestaurantId};

#[derive(Clone, Debug, PartialEq)]
pub struct Restaurant {
    pub id: RestaurantId,
    pub name: String,
    pub location: LatLng,
    pub open: bool,
    pub rating_sum: i64,
    pub rating_count: i64,
}
