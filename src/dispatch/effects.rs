//! What a board command asks the world to do.

use crate::domain::OrderId;
use crate::events::hub::Audience;
use crate::persistence::Write;
use crate::wire::ServerMessage;

/// A message for the listeners of some audiences.
#[derive(Clone, Debug)]
pub struct Push {
    pub to: Vec<Audience>,
    pub msg: ServerMessage,
}

/// The consequences of one command, in the order they were decided.
#[derive(Debug, Default)]
pub struct Effects {
    /// Snapshots to commit, in the order the state changed (one unit: they commit together).
    pub writes: Vec<Write>,
    pub pushes: Vec<Push>,
    /// Orders past their dispatch deadline: end them `no_rider_found`.
    pub give_ups: Vec<OrderId>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.pushes.is_empty() && self.give_ups.is_empty()
    }

    pub(crate) fn push(&mut self, to: Vec<Audience>, msg: ServerMessage) {
        self.pushes.push(Push { to, msg });
    }
}
