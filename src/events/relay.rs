//! The outbox relay: what an order change appends to the outbox, and the hand-off of every
//! commit's events to the readers of the log (see [`super::backbone`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::tail::LogFeed;
use crate::domain::Order;
use crate::persistence::writer::EventSink;
use crate::persistence::{CommittedEvent, OutboxEvent, Recipients};
use crate::wire::ServerMessage;

/// The outbox event for a new version of an order.
pub fn order_updated(order: &Order, at: DateTime<Utc>) -> OutboxEvent {
    OutboxEvent {
        event_id: uuid::Uuid::new_v4(),
        kind: "order.updated",
        order_id: order.id,
        version: order.version,
        to: Recipients {
            customer: order.customer_id,
            restaurant: order.restaurant_id,
            rider: order.rider_id,
        },
        payload: ServerMessage::order_updated(order).to_json().into(),
        at,
    }
}

/// A payment event of `order`: `payment.requested` asks the settlement consumer to send `op`
/// to its gateway, `payment.settled` tells the stream's readers the gateway's answer.
pub fn payment_event(
    kind: PaymentEventKind,
    order: &Order,
    op: &crate::domain::payment::PaymentOp,
    at: DateTime<Utc>,
) -> OutboxEvent {
    let to = Recipients {
        customer: order.customer_id,
        restaurant: order.restaurant_id,
        rider: order.rider_id,
    };
    payment_event_to(kind, (order.id, order.version, to), op, at)
}

/// [`payment_event`] for an order known by its id, version and parties.
pub fn payment_event_to(
    kind: PaymentEventKind,
    (order_id, version, to): (crate::domain::OrderId, u64, Recipients),
    op: &crate::domain::payment::PaymentOp,
    at: DateTime<Utc>,
) -> OutboxEvent {
    let kind = match kind {
        PaymentEventKind::Requested => "payment.requested",
        PaymentEventKind::Settled => "payment.settled",
    };
    let payload = serde_json::json!({"type": kind, "op": op});
    OutboxEvent {
        event_id: uuid::Uuid::new_v4(),
        kind,
        order_id,
        version,
        to,
        payload: payload.to_string().into(),
        at,
    }
}

/// What became of a date of a recurring order, for its customer (and ops). Its `order_id` is
/// the order placed, or for a date with no order a stable id of the (schedule, date).
pub fn occurrence_event(
    o: &crate::domain::recurring::OccurrenceRecord,
    customer: crate::domain::CustomerId,
    restaurant: crate::domain::RestaurantId,
) -> OutboxEvent {
    let key = format!("{}:{}", o.recurring_id, o.date);
    let order_id = o
        .order_id
        .unwrap_or(crate::domain::OrderId(uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            key.as_bytes(),
        )));
    let payload = serde_json::json!({"type": "recurring.occurrence", "occurrence": o});
    OutboxEvent {
        event_id: uuid::Uuid::new_v4(),
        kind: "recurring.occurrence",
        order_id,
        version: 1,
        to: Recipients {
            customer,
            restaurant,
            rider: None,
        },
        payload: payload.to_string().into(),
        at: o.at,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentEventKind {
    Requested,
    Settled,
}

/// The writer's sink: hands every commit's events to the [`LogFeed`] its readers follow (the
/// WebSocket fan-out, the stream publishers, the consumers), in commit order.
#[derive(Default)]
pub struct Relay {
    feed: LogFeed,
}

impl Relay {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The committed events, as they commit, for readers of the log.
    pub fn feed(&self) -> LogFeed {
        self.feed.clone()
    }
}

impl EventSink for Relay {
    fn committed(&self, events: &[CommittedEvent]) {
        self.feed.committed(events);
    }
}
