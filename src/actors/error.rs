//! What can go wrong inside the engine; `api::error` maps each to a contract code.

use crate::domain::{MenuError, OrderError};
use crate::persistence::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may not act on this (decided where the engine holds what it belongs to).
    #[error("this token may not do that")]
    Forbidden,
    #[error("the restaurant is closed")]
    RestaurantClosed,
    #[error(transparent)]
    RestaurantBusy(#[from] crate::domain::desk::Busy),
    #[error("the offer expired, was already answered or belongs to another rider")]
    OfferNotActive,
    #[error("{0}")]
    InvalidState(String),
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("this order was already rated")]
    AlreadyRated,
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Menu(#[from] MenuError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the payment was declined: {0}")]
    PaymentDeclined(String),
    /// No gateway could take the payment, or its outcome is not known yet: nothing is charged.
    #[error("{0}")]
    PaymentUnavailable(&'static str),
    #[error("the engine is restarting, retry shortly")]
    Unavailable,
}

impl From<actix::MailboxError> for EngineError {
    fn from(_: actix::MailboxError) -> Self {
        EngineError::Unavailable
    }
}
