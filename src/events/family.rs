//! Event families and how one event travels outside the process: one Redis stream (or Kafka
//! topic) per family, each entry keyed by its outbox sequence, encoded the same way in the
//! streams and in dead letters.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::persistence::{CommittedEvent, OutboxEvent, Recipients, event_kind};

/// The families the log is split into; consumers subscribe by family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Orders,
    Riders,
    Payments,
    Notifications,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Orders,
        Family::Riders,
        Family::Payments,
        Family::Notifications,
    ];

    /// The family of an event kind, by its prefix (`order.updated` → orders).
    pub fn of(kind: &str) -> Family {
        match kind.split('.').next() {
            Some("rider" | "offer") => Family::Riders,
            Some("payment" | "refund" | "payout") => Family::Payments,
            Some("notification") => Family::Notifications,
            _ => Family::Orders,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Orders => "orders",
            Family::Riders => "riders",
            Family::Payments => "payments",
            Family::Notifications => "notifications",
        }
    }
}

/// The Redis stream of a family under a deployment's key prefix.
pub fn stream_key(prefix: &str, family: Family) -> String {
    format!("{prefix}:events:{}", family.name())
}

/// The stream entry id of an outbox sequence: ids grow with the log, so an entry published
/// twice is refused by Redis rather than stored twice.
pub fn entry_id(seq: i64) -> String {
    format!("{seq}-0")
}

/// The outbox sequence of a stream entry id.
pub fn seq_of(entry: &str) -> Option<i64> {
    entry.split('-').next()?.parse().ok()
}

/// An event as it travels: flat fields, ids as text, times as RFC 3339.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    pub seq: i64,
    pub event_id: uuid::Uuid,
    pub kind: String,
    pub order_id: uuid::Uuid,
    pub version: u64,
    pub customer_id: uuid::Uuid,
    pub restaurant_id: uuid::Uuid,
    pub rider_id: Option<uuid::Uuid>,
    pub at: DateTime<Utc>,
    /// The message as pushed to clients.
    pub payload: String,
}

impl From<&CommittedEvent> for WireEvent {
    fn from(c: &CommittedEvent) -> Self {
        let e = &c.event;
        Self {
            seq: c.seq,
            event_id: e.event_id,
            kind: e.kind.to_owned(),
            order_id: e.order_id.0,
            version: e.version,
            customer_id: e.to.customer.0,
            restaurant_id: e.to.restaurant.0,
            rider_id: e.to.rider.map(|r| r.0),
            at: e.at,
            payload: e.payload.to_string(),
        }
    }
}

impl TryFrom<WireEvent> for CommittedEvent {
    type Error = String;
    fn try_from(w: WireEvent) -> Result<Self, String> {
        let kind = event_kind(&w.kind).ok_or_else(|| format!("unknown event kind {:?}", w.kind))?;
        Ok(CommittedEvent {
            seq: w.seq,
            event: OutboxEvent {
                event_id: w.event_id,
                kind,
                order_id: crate::domain::OrderId(w.order_id),
                version: w.version,
                to: Recipients {
                    customer: crate::domain::CustomerId(w.customer_id),
                    restaurant: crate::domain::RestaurantId(w.restaurant_id),
                    rider: w.rider_id.map(crate::domain::RiderId),
                },
                payload: w.payload.into(),
                at: w.at,
            },
        })
    }
}

impl WireEvent {
    /// The stream entry's fields.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("event_id", self.event_id.to_string()),
            ("kind", self.kind.clone()),
            ("order_id", self.order_id.to_string()),
            ("version", self.version.to_string()),
            ("customer_id", self.customer_id.to_string()),
            ("restaurant_id", self.restaurant_id.to_string()),
            (
                "rider_id",
                self.rider_id.map(|r| r.to_string()).unwrap_or_default(),
            ),
            ("at", self.at.to_rfc3339()),
            ("payload", self.payload.clone()),
        ]
    }

    /// Reads a stream entry back.
    pub fn from_fields(entry: &str, fields: &HashMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| {
            fields
                .get(k)
                .map(String::as_str)
                .ok_or_else(|| format!("entry {entry} lacks {k}"))
        };
        let id = |k: &str| -> Result<uuid::Uuid, String> {
            get(k)?
                .parse()
                .map_err(|e| format!("entry {entry} {k}: {e}"))
        };
        let rider = get("rider_id")?;
        Ok(Self {
            seq: seq_of(entry).ok_or_else(|| format!("entry id {entry} is not a sequence"))?,
            event_id: id("event_id")?,
            kind: get("kind")?.to_owned(),
            order_id: id("order_id")?,
            version: get("version")?
                .parse()
                .map_err(|e| format!("entry {entry} version: {e}"))?,
            customer_id: id("customer_id")?,
            restaurant_id: id("restaurant_id")?,
            rider_id: if rider.is_empty() {
                None
            } else {
                Some(id("rider_id")?)
            },
            at: DateTime::parse_from_rfc3339(get("at")?)
                .map_err(|e| format!("entry {entry} at: {e}"))?
                .with_timezone(&Utc),
            payload: get("payload")?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_kind_prefix() {
        assert_eq!(Family::of("order.updated"), Family::Orders);
        assert_eq!(Family::of("offer.sent"), Family::Riders);
        assert_eq!(Family::of("payment.captured"), Family::Payments);
        assert_eq!(Family::of("notification.sent"), Family::Notifications);
    }

    #[test]
    fn an_event_survives_the_stream_fields() {
        let w = WireEvent {
            seq: 42,
            event_id: uuid::Uuid::new_v4(),
            kind: "order.updated".into(),
            order_id: uuid::Uuid::new_v4(),
            version: 3,
            customer_id: uuid::Uuid::new_v4(),
            restaurant_id: uuid::Uuid::new_v4(),
            rider_id: None,
            at: DateTime::parse_from_rfc3339("2026-11-26T10:00:00.123Z")
                .unwrap()
                .with_timezone(&Utc),
            payload: r#"{"type":"order.updated"}"#.into(),
        };
        let fields: HashMap<String, String> = w
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(WireEvent::from_fields(&entry_id(42), &fields).unwrap(), w);
        assert_eq!(seq_of("42-0"), Some(42));
    }
}
