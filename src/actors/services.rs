//! What every actor shares: the store, the clock, the rules, the hub and the directory.

use std::sync::Arc;
use std::time::Duration;

use super::directory::Directory;
use crate::domain::{Clock, Policy};
use crate::events::hub::Hub;
use crate::persistence::Store;
use crate::persistence::writer::Writer;

/// Timings of dispatch; defaults are the product's (30 s offers, 10 min to find a rider).
#[derive(Clone, Debug)]
pub struct DispatchTimings {
    pub offer_timeout: Duration,
    pub deadline: Duration,
    /// How long after every rider in range declined they are asked again.
    pub redispatch_cooldown: Duration,
    /// How often the dispatcher checks for expired offers and deadlines.
    pub tick: Duration,
}

impl Default for DispatchTimings {
    fn default() -> Self {
        Self {
            offer_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(600),
            redispatch_cooldown: Duration::from_secs(120),
            tick: Duration::from_millis(200),
        }
    }
}

pub struct Services {
    pub store: Store,
    /// Every durable write goes through the group-commit writer.
    pub writer: Writer,
    /// Whether ops may inject actor failures (`DABBA_FAULT_INJECTION=1`, tests only).
    pub faults: bool,
    pub clock: Clock,
    pub policy: Policy,
    pub timings: DispatchTimings,
    pub hub: Hub,
    pub directory: Directory,
    /// Registered customers and riders seen so far (token subjects are checked against it).
    pub subjects: super::subjects::Subjects,
    /// Moved riders' positions for other readers (Redis when configured).
    pub positions: crate::events::positions::PositionFeed,
    /// The payment gateways, behind retries, breakers and fallback.
    pub gateways: Arc<crate::payments::Gateways>,
    /// Finished orders, read through Redis when configured.
    pub cache: crate::persistence::read_cache::ReadCache,
    /// Restarts, failures and mailbox counts per kind of actor.
    pub actors: super::supervision::ActorBook,
}

pub type Shared = Arc<Services>;
