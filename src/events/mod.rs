//! Events after commit: the outbox relay and the WebSocket fan-out hub; rider positions for
//! readers outside the process.

pub mod hub;
pub mod positions;
pub mod relay;
