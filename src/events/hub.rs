//! Fan-out of pushes to WebSocket sessions, by audience.
//!
//! Every push carries `"seq"`, its position in the event log: a logged event (an outbox row)
//! its own sequence, a transient push (an offer, a position) the last logged sequence handed
//! on before it. The hub moves its head only after the logged event is queued to every
//! listener, so a client that saw seq `S` on any push has been queued every logged event up
//! to `S` meant for it: resuming with `since=S` leaves no hole.
//!
//! Sessions subscribe with a bounded queue; a session that falls `QUEUE` messages behind is
//! dropped and told so (its socket is cut) rather than letting one slow phone grow the
//! server's memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, mpsc};

use crate::domain::{CustomerId, RestaurantId, RiderId};
use crate::wire::ServerMessage;

/// Pushes a session may be behind before it is disconnected.
pub const QUEUE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Audience {
    Customer(CustomerId),
    Rider(RiderId),
    Restaurant(RestaurantId),
    Ops,
}

/// One message on its way to a session.
#[derive(Clone, Debug)]
pub struct Push {
    /// Position in the event log (see the module notes).
    pub seq: i64,
    /// An event of the log (replayable), not a transient push.
    pub logged: bool,
    pub text: Arc<str>,
    /// When it was queued to the session (its push latency runs from here).
    pub queued: std::time::Instant,
}

/// One listening session: its queue, and how to tell it that it was dropped.
struct Subscriber {
    id: u64,
    queue: mpsc::Sender<Push>,
    dropped: Arc<Notify>,
}

type Subscribers = HashMap<Audience, Vec<Subscriber>>;

/// Shared by every actor that pushes and every session that listens.
#[derive(Clone, Default)]
pub struct Hub {
    subscribers: Arc<RwLock<Subscribers>>,
    next_id: Arc<AtomicU64>,
    /// The last logged sequence queued to every listener.
    head: Arc<AtomicI64>,
}

pub struct Subscription {
    pub id: u64,
    pub audience: Audience,
    pub receiver: mpsc::Receiver<Push>,
    /// Notified when the hub drops this session for falling behind: the session must close
    /// its socket rather than drain a backlog nobody reads.
    pub dropped: Arc<Notify>,
}

impl Hub {
    /// The last logged sequence handed on.
    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    /// Starts the head at a restored cursor.
    pub fn start_at(&self, seq: i64) {
        self.head.fetch_max(seq, Ordering::AcqRel);
    }

    pub fn subscribe(&self, audience: Audience) -> Subscription {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(Notify::new());
        self.write().entry(audience).or_default().push(Subscriber {
            id,
            queue: tx,
            dropped: dropped.clone(),
        });
        metrics::gauge!("dabba_ws_connections").increment(1.0);
        Subscription {
            id,
            audience,
            receiver: rx,
            dropped,
        }
    }

    pub fn unsubscribe(&self, audience: Audience, id: u64) {
        let mut subs = self.write();
        if let Some(list) = subs.get_mut(&audience) {
            let before = list.len();
            list.retain(|s| s.id != id);
            if list.len() < before {
                metrics::gauge!("dabba_ws_connections").decrement(1.0);
            }
            if list.is_empty() {
                subs.remove(&audience);
            }
        }
    }

    /// Serialises `msg` only if somebody listens: most rider positions reach nobody.
    pub fn send(&self, audiences: &[Audience], msg: &ServerMessage) {
        let listened = {
            let subs = self.subscribers.read().unwrap_or_else(|p| p.into_inner());
            audiences.iter().any(|a| subs.contains_key(a))
        };
        if listened {
            self.deliver(audiences, &msg.to_json(), self.head(), false);
        }
    }

    /// Sends a logged event (an already serialised JSON object), then moves the head to it.
    pub fn send_logged(&self, audiences: &[Audience], seq: i64, text: &str) {
        self.deliver(audiences, text, seq, true);
        self.head.fetch_max(seq, Ordering::AcqRel);
    }

    /// Queues `text`, stamped with `seq` and the send time, to every listener of `audiences`.
    fn deliver(&self, audiences: &[Audience], text: &str, seq: i64, logged: bool) {
        let mut lagging = Vec::new();
        {
            let subs = self.subscribers.read().unwrap_or_else(|p| p.into_inner());
            let mut stamped: Option<Arc<str>> = None;
            for audience in audiences {
                for sub in subs.get(audience).into_iter().flatten() {
                    let text = stamped.get_or_insert_with(|| stamp(text, seq)).clone();
                    let queued = std::time::Instant::now();
                    if sub
                        .queue
                        .try_send(Push {
                            seq,
                            logged,
                            text,
                            queued,
                        })
                        .is_err()
                    {
                        sub.dropped.notify_one();
                        lagging.push((*audience, sub.id));
                    }
                }
            }
        }
        for (audience, id) in lagging {
            tracing::info!(
                ?audience,
                id,
                "dropping a websocket session that fell behind"
            );
            metrics::counter!("dabba_ws_dropped_total", "reason" => "slow").increment(1);
            self.unsubscribe(audience, id);
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Subscribers> {
        // A panic while holding the lock cannot leave the map half-updated: recover it.
        self.subscribers.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds `"seq"` and `"sent_at_us"` (the server's send time, Unix microseconds) to a JSON
/// object, so that clients can resume and the load generator can measure push latency.
pub fn stamp(object: &str, seq: i64) -> Arc<str> {
    let now = chrono::Utc::now().timestamp_micros();
    match object.strip_suffix('}') {
        Some(head) if head.len() > 1 => {
            format!("{head},\"seq\":{seq},\"sent_at_us\":{now}}}").into()
        }
        _ => object.into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pushes_carry_their_send_time() {
        let v: serde_json::Value =
            serde_json::from_str(&super::stamp(r#"{"type":"x"}"#, 7)).unwrap();
        assert_eq!(v["type"], "x");
        assert_eq!(v["seq"], 7);
        assert!(v["sent_at_us"].as_i64().unwrap() > 1_700_000_000_000_000);
    }
}
