//! Row shapes that are not domain objects in their own right.

use chrono::{DateTime, Utc};

use crate::domain::{CustomerId, LatLng, OrderId, RestaurantId, RiderId, RiderStatus};

#[derive(Clone, Debug, PartialEq)]
pub struct CustomerRecord {
    pub id: CustomerId,
    pub name: String,
    pub phone: String,
    pub email: String,
}

/// The dispatcher's snapshot of one rider.
#[derive(Clone, Debug, PartialEq)]
pub struct RiderRecord {
    pub id: RiderId,
    pub name: String,
    pub status: RiderStatus,
    pub location: Option<LatLng>,
    pub offer: Option<(OrderId, DateTime<Utc>)>,
    pub order_id: Option<OrderId>,
    pub rev: i64,
    /// When this snapshot was taken (the engine's clock).
    pub saved_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct RatingRecord {
    pub order_id: OrderId,
    pub restaurant_id: RestaurantId,
    pub customer_id: CustomerId,
    pub stars: u8,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

/// How an offer of an order to a rider ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Pending,
    Accepted,
    Rejected,
    TimedOut,
    /// Taken back: the order ended, the rider went offline, the deadline passed.
    Withdrawn,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 5] = [
        AttemptOutcome::Pending,
        AttemptOutcome::Accepted,
        AttemptOutcome::Rejected,
        AttemptOutcome::TimedOut,
        AttemptOutcome::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Pending => "pending",
            AttemptOutcome::Accepted => "accepted",
            AttemptOutcome::Rejected => "rejected",
            AttemptOutcome::TimedOut => "timed_out",
            AttemptOutcome::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One offer of an order to a rider (the `n`-th of the order, counted over every round).
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRecord {
    pub order_id: OrderId,
    pub n: u32,
    pub rider_id: RiderId,
    pub distance_m: f64,
    pub offered_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
}

/// Keyset pagination: the last order of the previous page.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistoryCursor {
    pub placed_at_ms: i64,
    pub id: OrderId,
}

impl HistoryCursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.placed_at_ms, self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (ms, id) = s.split_once('_')?;
        Some(Self {
            placed_at_ms: ms.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// An order looking for a rider, as persisted for recovery.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    pub order_id: OrderId,
    pub tried: Vec<RiderId>,
    pub deadline: DateTime<Utc>,
    /// When this snapshot was taken (the engine's clock).
    pub saved_at: DateTime<Utc>,
}

/// Who receives an event: the parties of its order (ops always do).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipients {
    pub customer: CustomerId,
    pub restaurant: RestaurantId,
    pub rider: Option<RiderId>,
}

/// The kinds of event the outbox holds.
pub const EVENT_KINDS: &[&str] = &[
    "order.updated",
    "payment.requested",
    "payment.settled",
    "recurring.occurrence",
];

/// The static name of a known event kind.
pub fn event_kind(kind: &str) -> Option<&'static str> {
    EVENT_KINDS.iter().copied().find(|k| *k == kind)
}

/// A domain event appended to the outbox in the same transaction as its snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEvent {
    pub event_id: uuid::Uuid,
    pub kind: &'static str,
    pub order_id: OrderId,
    pub version: u64,
    pub to: Recipients,
    /// The message as sent on the wire.
    pub payload: std::sync::Arc<str>,
    pub at: DateTime<Utc>,
}

/// An event after commit, with its place in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct CommittedEvent {
    pub seq: i64,
    pub event: OutboxEvent,
}

/// What the retention job removed.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct PurgeReport {
    pub orders_deleted: u64,
    pub partitions_dropped: u64,
    pub outbox_deleted: u64,
    pub idempotency_keys_deleted: u64,
}

/// The first response to an idempotent request.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

/// Whose events a read of the log returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogReader {
    Everything,
    Customer(CustomerId),
    Restaurant(RestaurantId),
    Rider(RiderId),
}

/// An event a consumer gave up on, with the event as it was delivered (JSON) so a replay
/// does not depend on the outbox still holding it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetterRecord {
    pub id: uuid::Uuid,
    pub consumer: String,
    pub event_id: uuid::Uuid,
    pub event_seq: i64,
    pub event: String,
    pub error: String,
    pub attempts: u32,
    pub at: DateTime<Utc>,
    pub replayed_at: Option<DateTime<Utc>>,
}
