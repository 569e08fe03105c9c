//! JSON shapes shared by REST responses and WebSocket pushes (the contract in `API.md`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::Restaurant;
use crate::domain::order::Refund;
use crate::domain::{
    Cents, CustomerId, Delivery, Item, LatLng, Order, OrderId, RestaurantId, RiderId, RiderStatus,
    Stage, Status,
};

/// The order object of the contract.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    pub rider_id: Option<RiderId>,
    pub items: Vec<Item>,
    #[schema(value_type = i64)]
    pub total_cents: Cents,
    pub delivery: Delivery,
    #[serde(serialize_with = "crate::domain::rfc3339::utc_opt")]
    pub deliver_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub stage: Stage,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub placed_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub updated_at: DateTime<Utc>,
    pub version: u64,
    pub refund: Option<Refund>,
    /// Why the restaurant refused the order, when it did.
    pub reject_reason: Option<String>,
    /// Riders offered the order up to and including the one who accepted (0 until then).
    #[serde(default)]
    pub offers: u32,
    /// When the food should leave the restaurant and reach the customer; `null` once the
    /// order is finished.
    #[serde(default)]
    pub eta: Option<crate::domain::timing::Eta>,
    /// The recurring order this order is an occurrence of.
    #[serde(default)]
    pub recurring_id: Option<crate::domain::RecurringId>,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id,
            customer_id: o.customer_id,
            restaurant_id: o.restaurant_id,
            rider_id: o.rider_id,
            items: o.items.clone(),
            total_cents: o.total_cents,
            delivery: o.delivery.clone(),
            deliver_at: o.deliver_at,
            status: o.status(),
            stage: o.stage,
            placed_at: o.placed_at,
            updated_at: o.updated_at,
            version: o.version,
            refund: o.refund,
            reject_reason: o.reject_reason.clone(),
            offers: o.offers,
            eta: o.eta,
            recurring_id: o.recurring_id,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RatingSummary {
    /// Mean of all stars, `null` before the first rating.
    pub average: Option<f64>,
    pub count: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RestaurantView {
    pub id: RestaurantId,
    pub name: String,
    pub location: LatLng,
    pub open: bool,
    pub rating: RatingSummary,
    /// Minutes the kitchen takes to prepare an order.
    pub prep_minutes: u32,
    /// Distance from the query point, in nearby searches only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
}

impl From<&Restaurant> for RestaurantView {
    fn from(r: &Restaurant) -> Self {
        Self {
            id: r.id,
            name: r.name.clone(),
            location: r.location,
            open: r.open,
            rating: RatingSummary {
                average: (r.rating_count > 0).then(|| r.rating_sum as f64 / r.rating_count as f64),
                count: r.rating_count,
            },
            prep_minutes: r.prep_minutes,
            distance_m: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OfferView {
    pub order_id: OrderId,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RiderView {
    pub id: RiderId,
    pub name: String,
    pub status: RiderStatus,
    pub location: Option<LatLng>,
    pub offer: Option<OfferView>,
    pub order_id: Option<OrderId>,
}

impl From<crate::domain::Rider> for RiderView {
    fn from(r: crate::domain::Rider) -> Self {
        Self {
            id: r.id,
            name: r.name,
            status: r.status,
            location: r.location,
            offer: r.offer.map(|(order_id, expires_at)| OfferView {
                order_id,
                expires_at,
            }),
            order_id: r.order_id,
        }
    }
}

/// The restaurant as a rider sees it in an offer.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OfferRestaurant {
    pub id: RestaurantId,
    pub name: String,
    pub location: LatLng,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// Every message the server pushes on `/v1/ws`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type")]
pub enum ServerMessage {
    #[serde(rename = "order.updated")]
    OrderUpdated { order: Box<OrderView> },
    #[serde(rename = "rider.location")]
    RiderLocation {
        #[serde(skip_serializing_if = "Option::is_none")]
        order_id: Option<OrderId>,
        rider_id: RiderId,
        location: LatLng,
    },
    #[serde(rename = "offer")]
    Offer {
        order_id: OrderId,
        restaurant: OfferRestaurant,
        delivery: Delivery,
        #[serde(serialize_with = "crate::domain::rfc3339::utc")]
        expires_at: DateTime<Utc>,
    },
    #[serde(rename = "offer.withdrawn")]
    OfferWithdrawn { order_id: OrderId },
    #[serde(rename = "supervision")]
    Supervision {
        actor: String,
        id: String,
        event: String,
    },
    #[serde(rename = "error")]
    Error { error: ErrorBody },
}

impl ServerMessage {
    pub fn order_updated(order: &Order) -> Self {
        ServerMessage::OrderUpdated {
            order: Box::new(order.into()),
        }
    }

    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            error: ErrorBody {
                code: code.into(),
                message: message.into(),
            },
        }
    }

    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(self).expect("server message serialises")
    }
}
