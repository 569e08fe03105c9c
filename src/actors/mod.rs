//! The live system: one [`order::OrderActor`] per live order, the [`dispatcher::Dispatcher`]
//! owning riders and the rider index, the [`directory::Directory`] of live actors, the
//! [`hub::Hub`] fanning pushes out to WebSocket sessions, and the [`engine::Engine`] facade the
//! API calls.

pub mod directory;
pub mod dispatcher;
pub mod engine;
pub mod error;
pub mod hub;
pub mod order;
pub mod services;

pub use engine::{Engine, NewOrderRequest};
pub use error::EngineError;
pub use services::DispatchTimings;
