//! dabba: an actor-based, real-time dispatch engine for food delivery.
//!
//! # Layout
//! - [`domain`]: pure rules: ids, coordinates and great-circle distance, money ([`domain::Cents`]),
//!   the order state machine, who takes part in an order ([`domain::Party`]), refund tiers,
//!   the clock.
//! - [`dispatch`]: the dispatch board, pure: riders, offers, tried lists, deadlines; commands
//!   take the time and return effects.
//! - [`geo`]: the R-tree of available riders (and of restaurants).
//! - [`persistence`]: the [`persistence::Store`] over PostgreSQL (`postgres.rs`) or SQLite
//!   (`sqlite.rs`), shared statements, row decoding, the batch planner, the group-commit writer
//!   and the one-server-per-database lock.
//! - [`actors`]: the live system: one actor per order, the dispatcher actor around the board,
//!   the directory of live actors, admission of new work, and the [`actors::Engine`] facade
//!   (boot, registration, riders, orders, test clock).
//! - [`events`]: the outbox relay and the WebSocket fan-out hub.
//! - [`api`]: the HTTP + WebSocket edge: the gate (authentication, client address, rate
//!   limits), validation, error codes, the hardened WebSocket session, the completed OpenAPI.
//! - [`tokens`]: HS256 tokens: keys with ids and rotation, lifetimes, the generated secret.
//! - [`client`]: the typed API client the demo, the load generator and the tests share.
//! - [`config`], [`startup`], [`telemetry`], [`limits_os`]: wiring. The `dabba` binary
//!   (`src/bin/dabba/`) is the CLI, with the demo city and the load generator.

pub mod actors;
pub mod api;
pub mod client;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod events;
pub mod geo;
pub mod limits_os;
pub mod payments;
pub mod persistence;
pub mod redis_conn;
pub mod startup;
pub mod telemetry;
pub mod tokens;
pub mod vendors;
pub mod wire;
