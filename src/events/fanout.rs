//! The WebSocket fan-out as a consumer of the log: each committed event goes to the sessions
//! of its customer, restaurant, rider and ops, in commit order, moving the hub's head (the
//! `seq` resuming sockets start from).
//!
//! Every node fans out to its own sockets, so this consumer never joins a Redis group: it
//! reads the log locally, with a cursor of its own (a restart re-sends at most a second), and
//! without the 20 ms linger of the other readers (a push is latency).

use super::consumer::{Consumer, Handling};
use super::family::Family;
use super::hub::{Audience, Hub};
use crate::persistence::CommittedEvent;

/// The fan-out's name in `outbox_cursors`.
pub const FANOUT: &str = "websocket_fanout";

pub struct Fanout {
    hub: Hub,
}

impl Fanout {
    pub fn new(hub: Hub) -> Self {
        Self { hub }
    }
}

impl Consumer for Fanout {
    fn name(&self) -> &'static str {
        FANOUT
    }

    fn families(&self) -> &'static [Family] {
        &Family::ALL
    }

    fn handle<'a>(&'a self, c: &'a CommittedEvent) -> Handling<'a> {
        let e = &c.event;
        // Payment operations are for ops and the stream's readers, not the parties' apps.
        if Family::of(e.kind) == Family::Payments {
            if c.seq > self.hub.head() {
                self.hub.send_logged(&[Audience::Ops], c.seq, &e.payload);
            }
            return Box::pin(async { Ok(()) });
        }
        // A customer's recurring schedule is theirs: its restaurant hears of its orders only.
        let mut to = if e.kind == "recurring.occurrence" {
            vec![Audience::Customer(e.to.customer), Audience::Ops]
        } else {
            vec![
                Audience::Customer(e.to.customer),
                Audience::Restaurant(e.to.restaurant),
                Audience::Ops,
            ]
        };
        if let Some(rider) = e.to.rider {
            to.push(Audience::Rider(rider));
        }
        // Already handed on (a replay after a restart): the hub's head says so.
        if c.seq > self.hub.head() {
            self.hub.send_logged(&to, c.seq, &e.payload);
            metrics::counter!("dabba_events_published_total", "kind" => e.kind).increment(1);
        }
        Box::pin(async { Ok(()) })
    }
}
