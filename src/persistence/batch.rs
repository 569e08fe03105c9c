//! Units of work for the group-commit writer.
//!
//! A [`WriteUnit`] is what one request needs to be durable (an order snapshot and its outbox
//! event, a rider and its dispatch job). The writer commits many units in one transaction; a
//! unit is never split across transactions.

use super::records::{JobRecord, OutboxEvent, RiderRecord};
use crate::domain::{Order, OrderId};

#[derive(Clone, Debug)]
pub enum Write {
    /// Inserts a new order; with an idempotency key, atomically with the key. If the key was
    /// used before, the rest of the unit is skipped and the first placement is reported.
    PlaceOrder {
        order: Order,
        idempotency: Option<(String, String)>,
    },
    /// Writes an order snapshot unless the stored one is as new or newer.
    SaveOrder(Order),
    /// Appends an event to the outbox.
    Event(OutboxEvent),
    /// Writes a rider snapshot unless the stored one has a newer `rev`.
    SaveRider(RiderRecord),
    SaveJob(JobRecord),
    DeleteJob(OrderId),
    /// Moves an outbox consumer's cursor forward (never back).
    SaveCursor {
        consumer: &'static str,
        seq: i64,
    },
}

#[derive(Clone, Debug, Default)]
pub struct WriteUnit {
    pub writes: Vec<Write>,
}

impl WriteUnit {
    pub fn new(writes: Vec<Write>) -> Self {
        Self { writes }
    }

    pub fn one(write: Write) -> Self {
        Self {
            writes: vec![write],
        }
    }
}
