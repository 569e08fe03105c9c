//! Dispatch rules, free of actors and I/O: the [`board::Board`] owns every rider's dispatch
//! state, the jobs of orders looking for a rider and the R-tree of available riders. Each
//! command takes the time and returns [`Effects`] (writes to commit, messages to push, orders
//! to give up on); `actors::dispatcher` is the thin actor that applies them.

pub mod board;
mod effects;
mod handover;
mod restore;
mod state;
#[cfg(test)]
mod tests;
mod timers;
mod views;

pub use board::{Board, BoardConfig, DispatchError, DispatchStats};
pub use effects::{Effects, Push};
pub use restore::Recovered;
