//! A consumer for fault-injection runs only (`DABBA_FAULT_INJECTION=1`): it fails every event
//! of the orders it is told to, so tests can watch retries, dead letters and replays through
//! the API, and it counts what it handled by event id.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::consumer::{Consumer, Handling};
use super::family::Family;
use crate::domain::OrderId;
use crate::persistence::CommittedEvent;

#[derive(Default)]
pub struct Probe {
    poisoned: Mutex<HashSet<OrderId>>,
    handled: Mutex<HashMap<uuid::Uuid, u32>>,
}

impl Probe {
    /// From now on, every event of `order` fails (`poison`), or none does.
    pub fn set_poisoned(&self, order: OrderId, poison: bool) {
        let mut p = self.poisoned.lock().unwrap_or_else(|e| e.into_inner());
        if poison {
            p.insert(order);
        } else {
            p.remove(&order);
        }
    }

    /// How many times each event id was handled successfully.
    pub fn handled(&self) -> HashMap<uuid::Uuid, u32> {
        self.handled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Consumer for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn families(&self) -> &'static [Family] {
        &[Family::Orders]
    }

    fn handle<'a>(&'a self, event: &'a CommittedEvent) -> Handling<'a> {
        Box::pin(async move {
            let poisoned = self
                .poisoned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&event.event.order_id);
            if poisoned {
                return Err(format!("probe: order {} is poisoned", event.event.order_id));
            }
            *self
                .handled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(event.event.event_id)
                .or_default() += 1;
            Ok(())
        })
    }
}
