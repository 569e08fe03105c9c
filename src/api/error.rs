//! The one table from failures to HTTP statuses and the contract's stable error codes.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::actors::EngineError;
use crate::domain::OrderError;
use crate::persistence::StoreError;
use crate::wire::{ErrorBody, ServerMessage};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u32>,
    /// Methods for an `Allow` header (405).
    pub allow: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token may not do that",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    }

    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn allow(mut self, methods: String) -> Self {
        self.allow = Some(methods);
        self
    }

    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::error(self.code, self.message.clone())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[derive(serde::Serialize)]
struct Envelope<'a> {
    error: &'a ErrorBody,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody {
            code: self.code.into(),
            message: self.message.clone(),
        };
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(methods) = &self.allow {
            response.insert_header((actix_web::http::header::ALLOW, methods.as_str()));
        }
        response.json(Envelope { error: &body })
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            EngineError::NotFound(what) => Self::not_found(what),
            EngineError::Forbidden => Self::forbidden(),
            EngineError::RestaurantClosed => Self::new(S::CONFLICT, "restaurant_closed", msg),
            EngineError::RestaurantBusy(_) => {
                Self::new(S::CONFLICT, "restaurant_busy", msg).retry_after(30)
            }
            EngineError::OfferNotActive => Self::new(S::CONFLICT, "offer_not_active", msg),
            EngineError::InvalidState(_) => Self::new(S::CONFLICT, "invalid_state", msg),
            EngineError::AlreadyRated => Self::new(S::CONFLICT, "already_rated", msg),
            EngineError::IdempotencyKeyReused => {
                Self::new(S::UNPROCESSABLE_ENTITY, "idempotency_key_reused", msg)
            }
            EngineError::Order(o) => match o {
                OrderError::InvalidState(_) => Self::new(S::CONFLICT, "invalid_state", msg),
                OrderError::UpdateWindowClosed => {
                    Self::new(S::CONFLICT, "update_window_closed", msg)
                }
                OrderError::CancellationWindowClosed => {
                    Self::new(S::CONFLICT, "cancellation_window_closed", msg)
                }
                OrderError::OutOfRadius => Self::new(S::UNPROCESSABLE_ENTITY, "out_of_radius", msg),
                OrderError::NotAssignedRider => Self::new(S::FORBIDDEN, "forbidden", msg),
                // Internal: a location that did not move the estimate. Never asked by a client.
                OrderError::EtaUnchanged => Self::new(S::CONFLICT, "invalid_state", msg),
            },
            EngineError::Menu(m) => match m {
                crate::domain::MenuError::ItemUnavailable(_) => {
                    Self::new(S::UNPROCESSABLE_ENTITY, "item_unavailable", msg)
                }
                crate::domain::MenuError::PriceChanged { .. } => {
                    Self::new(S::CONFLICT, "price_changed", msg)
                }
                crate::domain::MenuError::DuplicateItem(_) => Self::invalid(msg),
            },
            EngineError::Store(StoreError::Overloaded | StoreError::Unconfirmed) => Self::new(
                S::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many writes queued, retry shortly",
            )
            .retry_after(1),
            EngineError::Store(error) => {
                tracing::error!(%error, "storage failure");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "storage is unavailable, retry shortly",
                )
                .retry_after(1)
            }
            EngineError::PaymentDeclined(_) => {
                Self::new(S::PAYMENT_REQUIRED, "payment_declined", msg)
            }
            EngineError::PaymentUnavailable(_) => {
                Self::new(S::SERVICE_UNAVAILABLE, "payment_unavailable", msg).retry_after(5)
            }
            EngineError::Unavailable => {
                Self::new(S::SERVICE_UNAVAILABLE, "unavailable", msg).retry_after(1)
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
