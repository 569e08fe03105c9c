//! The live system: one [`order::OrderActor`] per live order, the [`dispatcher::Dispatcher`]
//! owning riders and the rider index, the [`directory::Directory`] of live actors, the
//! supervision helpers, and the [`engine::Engine`] facade the API calls.

pub mod admission;
pub mod directory;
pub mod dispatcher;
pub mod engine;
pub mod error;
pub mod order;
pub mod restaurant;
pub mod services;
pub mod subjects;
pub mod supervision;

pub use engine::{
    ActorKindView, ConsumerFigures, Engine, EngineOptions, EventStats, FaultTarget,
    NewOrderRequest, NewRecurring, ReplayError, Resume,
};
pub use error::EngineError;
pub use services::DispatchTimings;
