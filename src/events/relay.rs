//! The outbox relay: hands committed events to their consumers, in commit order, at most once
//! per consumer (by outbox sequence), and remembers how far it got so that a restart replays
//! exactly what was committed but not yet handed on.
//!
//! Today's consumer is the in-process WebSocket fan-out ([`Hub`]); the Redis stream and the
//! notification and payment consumers plug in here.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

use super::hub::{Audience, Hub};
use super::tail::LogFeed;
use crate::domain::Order;
use crate::persistence::writer::EventSink;
use crate::persistence::{
    CommittedEvent, OutboxEvent, Recipients, Store, StoreResult, Write, WriteUnit,
};
use crate::wire::ServerMessage;

/// The consumer name of the WebSocket fan-out in `outbox_cursors`.
pub const FANOUT: &str = "websocket_fanout";

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

pub struct Relay {
    hub: Hub,
    /// Highest sequence handed on.
    published: AtomicI64,
    /// Highest sequence recorded in `outbox_cursors`.
    saved: AtomicI64,
    /// Every commit's events for the backbone's readers (publishers, consumers).
    feed: LogFeed,
}

impl Relay {
    /// Starts after `cursor`, the last sequence handed on before the previous stop.
    pub fn new(hub: Hub, cursor: i64) -> Arc<Self> {
        hub.start_at(cursor);
        Arc::new(Self {
            hub,
            published: AtomicI64::new(cursor),
            saved: AtomicI64::new(cursor),
            feed: LogFeed::default(),
        })
    }

    /// The committed events, as they commit, for readers of the log.
    pub fn feed(&self) -> LogFeed {
        self.feed.clone()
    }

    /// Hands on every event committed after the cursor but never published (the process
    /// stopped in between).
    pub async fn replay(&self, store: &Store) -> StoreResult<usize> {
        let mut replayed = 0;
        loop {
            let page = store
                .events_after(self.published.load(Ordering::Acquire), 1_000)
                .await?;
            if page.is_empty() {
                return Ok(replayed);
            }
            replayed += page.len();
            self.committed(&page);
        }
    }

    /// A cursor write if the cursor moved since the last one.
    pub fn checkpoint(&self) -> Option<WriteUnit> {
        let published = self.published.load(Ordering::Acquire);
        (self.saved.swap(published, Ordering::AcqRel) < published).then(|| {
            WriteUnit::one(Write::SaveCursor {
                consumer: FANOUT,
                seq: published,
            })
        })
    }

    fn publish(&self, seq: i64, e: &OutboxEvent) {
        let mut to = vec![
            Audience::Customer(e.to.customer),
            Audience::Restaurant(e.to.restaurant),
            Audience::Ops,
        ];
        if let Some(rider) = e.to.rider {
            to.push(Audience::Rider(rider));
        }
        self.hub.send_logged(&to, seq, &e.payload);
    }
}

impl EventSink for Relay {
    fn committed(&self, events: &[CommittedEvent]) {
        for c in events {
            // Idempotent by sequence: an event already handed on is never handed on again.
            if self.published.fetch_max(c.seq, Ordering::AcqRel) < c.seq {
                self.publish(c.seq, &c.event);
                metrics::counter!("dabba_events_published_total", "kind" => c.event.kind)
                    .increment(1);
            }
        }
        self.feed.committed(events);
    }
}
