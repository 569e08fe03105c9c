//! dabba: an actor-based, real-time dispatch engine for food delivery.
//!
//! # Layout
//! - [`domain`]: pure rules: ids, coordinates, the order state machine, refund policy, clock.
//! - [`geo`]: great-circle distances and the R-tree of available riders.
//! - [`persistence`]: the [`persistence::Store`] over PostgreSQL or SQLite.
//! - [`actors`]: the live system: one actor per order, the dispatcher owning riders and the
//!   rider index, the directory of live actors, the WebSocket fan-out hub.
//! - [`api`]: the HTTP + WebSocket edge: auth, validation, error codes, OpenAPI.
//! - [`config`], [`startup`], [`telemetry`]: wiring; `main.rs` is the CLI.

pub mod actors;
pub mod api;
pub mod client;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod events;
pub mod geo;
pub mod limits_os;
pub mod persistence;
pub mod startup;
pub mod telemetry;
pub mod wire;
