//! Registering restaurants, customers and riders, and the restaurants' open flag. Every
//! registration is committed through the writer before it is visible.

use super::Engine;
use crate::actors::dispatcher::AddRider;
use crate::actors::error::EngineError;
use std::sync::Arc;

use crate::domain::{
    CustomerId, LatLng, Menu, Restaurant, RestaurantId, Rider, RiderId, RiderStatus,
};
use crate::persistence::{CustomerRecord, RiderRecord, SubjectTable, Write, WriteUnit};
use crate::tokens::Role;

/// A new restaurant's preparation time until it sets its own.
pub const DEFAULT_PREP_MINUTES: u32 = 15;

impl Engine {
    pub async fn add_restaurant(
        &self,
        name: String,
        location: LatLng,
    ) -> Result<Restaurant, EngineError> {
        let restaurant = Restaurant {
            id: RestaurantId::new(),
            name,
            location,
            open: true,
            rating_sum: 0,
            rating_count: 0,
            prep_minutes: DEFAULT_PREP_MINUTES,
            menu: Default::default(),
        };
        let at = self.now();
        self.commit(Write::AddRestaurant {
            restaurant: restaurant.clone(),
            at,
        })
        .await?;
        self.services
            .directory
            .upsert_restaurant(restaurant.clone());
        Ok(restaurant)
    }

    pub fn restaurant(&self, id: RestaurantId) -> Result<Restaurant, EngineError> {
        self.services
            .directory
            .restaurant(id)
            .ok_or(EngineError::NotFound("restaurant"))
    }

    /// Restaurants within the delivery radius of `at`, nearest first, with their distance.
    pub fn restaurants_near(&self, at: LatLng) -> Vec<(Restaurant, f64)> {
        self.services
            .directory
            .restaurants_near(at, self.services.policy.radius_m)
    }

    /// Replaces a restaurant's menu; orders placed from now on are priced from it.
    pub async fn set_menu(&self, id: RestaurantId, menu: Menu) -> Result<Arc<Menu>, EngineError> {
        self.restaurant(id)?;
        let menu = Arc::new(menu);
        let at = self.now();
        self.commit(Write::SaveMenu {
            restaurant: id,
            menu: menu.clone(),
            at,
        })
        .await?;
        self.services
            .directory
            .update_restaurant(id, |r| r.menu = menu.clone())
            .ok_or(EngineError::NotFound("restaurant"))?;
        Ok(menu)
    }

    /// Opens or closes a restaurant and, when given, sets its preparation time.
    pub async fn set_restaurant_status(
        &self,
        id: RestaurantId,
        open: bool,
        prep_minutes: Option<u32>,
    ) -> Result<Restaurant, EngineError> {
        let prep_minutes = prep_minutes.unwrap_or(self.restaurant(id)?.prep_minutes);
        self.commit(Write::SetRestaurantStatus {
            id,
            open,
            prep_minutes,
        })
        .await?;
        self.services
            .directory
            .update_restaurant(id, |r| {
                r.open = open;
                r.prep_minutes = prep_minutes;
            })
            .ok_or(EngineError::NotFound("restaurant"))
    }

    /// A restaurant's orders in `stage` (its unfinished ones when `None`), oldest first;
    /// finished stages reach back a day.
    pub async fn restaurant_orders(
        &self,
        id: RestaurantId,
        stage: Option<crate::domain::Stage>,
    ) -> Result<Vec<crate::domain::Order>, EngineError> {
        self.restaurant(id)?;
        let since = self.now() - chrono::Duration::days(1);
        Ok(self
            .services
            .store
            .restaurant_orders(id, stage, since)
            .await?)
    }

    pub async fn add_customer(
        &self,
        name: String,
        phone: String,
        email: String,
    ) -> Result<CustomerRecord, EngineError> {
        let customer = CustomerRecord {
            id: CustomerId::new(),
            name,
            phone,
            email,
        };
        let at = self.now();
        self.commit(Write::AddCustomer {
            customer: customer.clone(),
            at,
        })
        .await?;
        self.services.subjects.remember(customer.id.0);
        Ok(customer)
    }

    /// Whether a token's subject is registered: restaurants are all in memory; customers and
    /// riders are remembered once seen (registered here, or found in the store). Ops tokens
    /// name a person, not a record.
    pub async fn is_registered(&self, role: Role, sub: uuid::Uuid) -> Result<bool, EngineError> {
        let table = match role {
            Role::Ops => return Ok(true),
            Role::Restaurant => {
                return Ok(self
                    .services
                    .directory
                    .restaurant(RestaurantId(sub))
                    .is_some());
            }
            Role::Customer => SubjectTable::Customers,
            Role::Rider => SubjectTable::Riders,
        };
        if self.services.subjects.knows(sub) {
            return Ok(true);
        }
        let found = self.services.store.subject_exists(table, sub).await?;
        if found {
            self.services.subjects.remember(sub);
        }
        Ok(found)
    }

    pub async fn add_rider(&self, name: String) -> Result<Rider, EngineError> {
        let rider = RiderRecord {
            id: RiderId::new(),
            name: name.clone(),
            status: RiderStatus::Offline,
            location: None,
            offer: None,
            order_id: None,
            rev: 1,
            saved_at: self.now(),
        };
        let id = rider.id;
        self.commit(Write::SaveRider(rider)).await?;
        self.services.subjects.remember(id.0);
        self.dispatcher.send(AddRider { id, name }).await?;
        self.rider(id).await
    }

    /// Commits one write on its own and waits until it is durable.
    pub(super) async fn commit(&self, write: Write) -> Result<(), EngineError> {
        self.services.writer.submit(WriteUnit::one(write)).await?;
        Ok(())
    }
}
