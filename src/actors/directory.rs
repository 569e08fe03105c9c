//! The directory of live order actors and the in-memory restaurant catalogue.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use actix::Addr;

use super::order::OrderActor;
use super::restaurant::RestaurantActor;
use crate::domain::Restaurant;
use crate::domain::{LatLng, OrderId, RestaurantId};
use crate::geo::PointIndex;

#[derive(Default)]
struct Restaurants {
    by_id: HashMap<RestaurantId, Restaurant>,
    index: PointIndex<RestaurantId>,
}

/// Owned by the engine; order actors register here while their order is live.
#[derive(Default)]
pub struct Directory {
    orders: Mutex<HashMap<OrderId, Addr<OrderActor>>>,
    restaurants: RwLock<Restaurants>,
    /// Restaurant actors, one per restaurant that has had live orders.
    desks: Mutex<HashMap<RestaurantId, Addr<RestaurantActor>>>,
}

impl Directory {
    pub fn order(&self, id: OrderId) -> Option<Addr<OrderActor>> {
        self.orders_lock().get(&id).cloned()
    }

    /// Registers `addr` unless another actor for the order got there first; returns the winner.
    pub fn register_order(&self, id: OrderId, addr: Addr<OrderActor>) -> Addr<OrderActor> {
        self.orders_lock().entry(id).or_insert(addr).clone()
    }

    /// Forgets a finished order; its actor stops once the last address is dropped.
    pub fn retire_order(&self, id: OrderId) {
        self.orders_lock().remove(&id);
    }

    /// Up to `limit` live order actors.
    pub fn order_actors(&self, limit: usize) -> Vec<Addr<OrderActor>> {
        self.orders_lock().values().take(limit).cloned().collect()
    }

    pub fn live_orders(&self) -> usize {
        self.orders_lock().len()
    }

    pub fn desk(&self, id: RestaurantId) -> Option<Addr<RestaurantActor>> {
        self.desks_lock().get(&id).cloned()
    }

    /// Registers `addr` unless the restaurant has an actor already; returns the winner.
    pub fn register_desk(
        &self,
        id: RestaurantId,
        addr: Addr<RestaurantActor>,
    ) -> Addr<RestaurantActor> {
        self.desks_lock().entry(id).or_insert(addr).clone()
    }

    pub fn desk_count(&self) -> usize {
        self.desks_lock().len()
    }

    pub fn desks(&self) -> Vec<Addr<RestaurantActor>> {
        self.desks_lock().values().cloned().collect()
    }

    fn desks_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<RestaurantId, Addr<RestaurantActor>>> {
        // The map holds no invariant a panicking holder could break halfway.
        self.desks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn restaurant(&self, id: RestaurantId) -> Option<Restaurant> {
        self.restaurants_read().by_id.get(&id).cloned()
    }

    pub fn upsert_restaurant(&self, r: Restaurant) {
        let mut all = self.restaurants.write().unwrap_or_else(|p| p.into_inner());
        all.index.upsert(r.id, r.location);
        all.by_id.insert(r.id, r);
    }

    pub fn update_restaurant(
        &self,
        id: RestaurantId,
        f: impl FnOnce(&mut Restaurant),
    ) -> Option<Restaurant> {
        let mut all = self.restaurants.write().unwrap_or_else(|p| p.into_inner());
        let r = all.by_id.get_mut(&id)?;
        f(r);
        Some(r.clone())
    }

    /// Restaurants within `radius_m` of `at`, nearest first, with their distance.
    pub fn restaurants_near(&self, at: LatLng, radius_m: f64) -> Vec<(Restaurant, f64)> {
        let all = self.restaurants_read();
        all.index
            .all_within(at, radius_m)
            .into_iter()
            .filter_map(|(id, d)| all.by_id.get(&id).map(|r| (r.clone(), d)))
            .collect()
    }

    fn orders_lock(&self) -> std::sync::MutexGuard<'_, HashMap<OrderId, Addr<OrderActor>>> {
        // The map holds no invariant a panicking holder could break halfway.
        self.orders.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn restaurants_read(&self) -> std::sync::RwLockReadGuard<'_, Restaurants> {
        self.restaurants.read().unwrap_or_else(|p| p.into_inner())
    }
}
