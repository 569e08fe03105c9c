//! Events after commit: the outbox relay and the WebSocket fan-out hub.

pub mod hub;
pub mod relay;
