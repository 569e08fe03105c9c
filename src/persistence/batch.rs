//! Units of work for the group-commit writer.
//!
//! A [`WriteUnit`] is what one request needs to be durable (an order snapshot and its outbox
//! event, a rider and its dispatch job, a registration, a rating). The writer commits many
//! units in one transaction; a unit is never split across transactions.

use chrono::{DateTime, Utc};

use super::records::{
    CustomerRecord, DeadLetterRecord, JobRecord, OutboxEvent, RatingRecord, RiderRecord,
    SavedResponse,
};
use crate::domain::ledger::LedgerTxn;
use crate::domain::payment::PaymentOp;
use crate::domain::{Menu, Order, OrderId, Restaurant, RestaurantId};

#[derive(Clone, Debug)]
pub enum Write {
    /// Inserts a new order; with an idempotency key, atomically with the key. If the key was
    /// used before, the rest of the unit is skipped and the first placement is reported.
    PlaceOrder {
        order: Order,
        idempotency: Option<(String, String)>,
    },
    /// Writes an order snapshot; the stored one must be older (a lost guard is an error).
    SaveOrder(Order),
    /// Appends an event to the outbox.
    Event(OutboxEvent),
    /// Writes a rider snapshot; the stored one must have an older `rev`.
    SaveRider(RiderRecord),
    SaveJob(JobRecord),
    DeleteJob(OrderId),
    /// Moves an outbox consumer's cursor forward (never back).
    SaveCursor {
        consumer: &'static str,
        seq: i64,
    },
    /// Parks an event a consumer gave up on (again, if a replay failed).
    ParkDeadLetter(DeadLetterRecord),
    /// Marks a dead letter handled by a replay.
    DeadLetterReplayed {
        id: uuid::Uuid,
        at: DateTime<Utc>,
    },
    AddRestaurant {
        restaurant: Restaurant,
        at: DateTime<Utc>,
    },
    /// Records an offer of an order to a rider, or how it ended.
    SaveAttempt(super::records::AttemptRecord),
    /// Appends a balanced ledger transaction (skipped if its id was written before).
    Ledger(LedgerTxn),
    /// Records a gateway operation or moves it on.
    SavePaymentOp(PaymentOp),
    SavePayout(super::money::PayoutRecord),
    /// Replaces a restaurant's menu.
    SaveMenu {
        restaurant: RestaurantId,
        menu: std::sync::Arc<Menu>,
        at: DateTime<Utc>,
    },
    SetRestaurantStatus {
        id: RestaurantId,
        open: bool,
        prep_minutes: u32,
    },
    /// Records an ops action.
    Audit(super::audit::AuditEntry),
    /// Writes a recurring order's schedule (a newer stored version is kept).
    SaveRecurring(crate::domain::recurring::Recurring),
    /// What became of one date of a schedule (the first record of a date stands).
    RecordOccurrence(crate::domain::recurring::OccurrenceRecord),
    AddCustomer {
        customer: CustomerRecord,
        at: DateTime<Utc>,
    },
    /// The order's one rating, folded into its restaurant's; skipped if it was rated.
    AddRating(RatingRecord),
    /// The first response to an idempotent request; skipped if one was saved.
    SaveResponse {
        subject: String,
        key: String,
        response: SavedResponse,
        at: DateTime<Utc>,
    },
}

impl Write {
    /// Whether this write claims a key that may already be taken, in which case nothing of
    /// its unit is written. A claim must be its unit's first write.
    pub fn is_claim(&self) -> bool {
        matches!(
            self,
            Write::PlaceOrder {
                idempotency: Some(_),
                ..
            } | Write::AddRating(_)
                | Write::SaveResponse { .. }
        )
    }

    /// Whether the planner writes this as a row of the bulk call (no claim, no statement of
    /// its own). Every variant is named, so a new one must be decided here and in the planner.
    pub fn is_bulk_row(&self) -> bool {
        match self {
            Write::PlaceOrder { idempotency, .. } => idempotency.is_none(),
            Write::SaveOrder(_)
            | Write::Event(_)
            | Write::SaveRider(_)
            | Write::SaveJob(_)
            | Write::DeleteJob(_)
            | Write::SaveAttempt(_)
            | Write::Ledger(_)
            | Write::SavePaymentOp(_) => true,
            Write::SaveCursor { .. }
            | Write::ParkDeadLetter(_)
            | Write::DeadLetterReplayed { .. }
            | Write::AddRestaurant { .. }
            | Write::SavePayout(_)
            | Write::SaveMenu { .. }
            | Write::SetRestaurantStatus { .. }
            | Write::Audit(_)
            | Write::SaveRecurring(_)
            | Write::RecordOccurrence(_)
            | Write::AddCustomer { .. }
            | Write::AddRating(_)
            | Write::SaveResponse { .. } => false,
        }
    }
}

/// Whether a batch is bulk rows only: on PostgreSQL one statement that commits as it returns.
pub fn is_rows_only(units: &[WriteUnit]) -> bool {
    units
        .iter()
        .all(|u| u.writes.iter().all(Write::is_bulk_row))
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

/// What committing a unit did.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitOutcome {
    /// Every write of the unit is durable.
    Applied,
    /// The placement's idempotency key was used before: nothing was written; here is the
    /// first request's hash and order.
    Replayed {
        request_hash: String,
        order_id: OrderId,
    },
    /// The unit's claim was taken (the order was rated, the response saved): nothing written.
    AlreadyClaimed,
}
