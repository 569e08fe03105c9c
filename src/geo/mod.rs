//! Distances and the spatial index of available riders (and of restaurants).
//!
//! Synchronous and actor-free: the dispatcher owns a [`PointIndex`] and calls it directly.

mod index;

pub use crate::domain::distance::{EARTH_RADIUS_M, distance_m};
pub use index::PointIndex;
