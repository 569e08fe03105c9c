//! The outbox relay: hands committed events to their consumers, in commit order, at most once
//! per consumer (by outbox sequence), and remembers how far it got so that a restart replays
//! exactly what was committed but not yet handed on.
//!
//! Today's consumer is the in-process WebSocket fan-out ([`Hub`]); the Redis stream and the
//! notification and payment consumers plug in here.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::hub::{Audience, Hub};
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
    /// The last sequence committed: the stream publishers and outbox consumers wait on it.
    commits: watch::Sender<i64>,
}

/// Wakes a reader of the log after a commit without losing a wake-up: a reader that was busy
/// when a commit landed finds it marked the next time it waits.
#[derive(Clone)]
pub struct CommitSignal(watch::Receiver<i64>);

impl CommitSignal {
    /// Returns after the next commit (or one since the last wait), or after `at_most`.
    pub async fn wait(&mut self, at_most: std::time::Duration) {
        match tokio::time::timeout(at_most, self.0.changed()).await {
            Ok(Ok(())) | Err(_) => {}
            // The relay is gone (the engine stopped): never spin.
            Ok(Err(_)) => tokio::time::sleep(at_most).await,
        }
    }
}

impl Relay {
    /// Starts after `cursor`, the last sequence handed on before the previous stop.
    pub fn new(hub: Hub, cursor: i64) -> Arc<Self> {
        hub.start_at(cursor);
        Arc::new(Self {
            hub,
            published: AtomicI64::new(cursor),
            saved: AtomicI64::new(cursor),
            commits: watch::Sender::new(cursor),
        })
    }

    /// A signal of commits that appended events.
    pub fn signal(&self) -> CommitSignal {
        CommitSignal(self.commits.subscribe())
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
        if let Some(last) = events.last() {
            self.commits.send_replace(last.seq);
        }
    }
}
