//! Events after commit: the outbox relay and the WebSocket fan-out hub; rider positions for
//! readers outside the process.

pub mod analytics;
pub mod backbone;
pub mod consumer;
pub mod family;
pub mod fanout;
pub mod hub;
pub mod kafka;
pub mod positions;
pub mod probe;
pub mod publisher;
pub mod relay;
pub mod sources;
pub mod tail;
