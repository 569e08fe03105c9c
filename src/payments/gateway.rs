//! What dabba asks of a payment gateway, whoever runs it: every call carries an idempotency
//! key (the same key is the same operation, however often it is sent), and every operation
//! can be looked up by its key when its outcome is unknown.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::domain::Cents;

/// A boxed future a gateway returns (the trait stays object-safe).
pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CallError>> + Send + 'a>>;

pub use crate::domain::payment::OpKind;

/// One call to a gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayCall {
    /// The idempotency key: a retry with the same key never moves money twice.
    pub key: String,
    pub kind: OpKind,
    pub amount: Cents,
    /// The customer's payment token (authorisations).
    pub token: Option<String>,
    /// The authorisation an operation applies to, or a payout's destination.
    pub reference: Option<String>,
}

/// A gateway's final answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Approved { reference: String },
    Declined { reason: String },
}

/// No final answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call may or may not have happened: look it up, never repeat it blind.
    #[error("the gateway did not answer in time")]
    Timeout,
    /// It did not happen (refused, 5xx, rate-limited, unreachable): safe to retry or fall back.
    #[error("the gateway is unavailable: {0}")]
    Unavailable(String),
}

/// An operation as the gateway recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRecord {
    pub key: String,
    pub kind: OpKind,
    pub amount: Cents,
    /// `approved`, `declined`, `voided` (an authorisation released later) or `processing`.
    pub status: String,
    pub reference: Option<String>,
    /// How many requests carried this key (the fake vendor reports it; retries show here).
    #[serde(default)]
    pub calls: u32,
}

impl GatewayRecord {
    /// The final outcome, if the gateway has one.
    pub fn outcome(&self) -> Option<Outcome> {
        match self.status.as_str() {
            "approved" | "voided" => Some(Outcome::Approved {
                reference: self.reference.clone().unwrap_or_default(),
            }),
            "declined" => Some(Outcome::Declined {
                reason: "declined".into(),
            }),
            _ => None,
        }
    }
}

/// A payment gateway: an adapter speaking one vendor's HTTP API.
pub trait PaymentGateway: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn call<'a>(&'a self, call: &'a GatewayCall) -> GatewayFuture<'a, Outcome>;
    /// The operation sent with `key`, if the gateway has it.
    fn lookup<'a>(&'a self, key: &'a str) -> GatewayFuture<'a, Option<GatewayRecord>>;
    /// Every operation the gateway holds for us (its settlement report).
    fn records(&self) -> GatewayFuture<'_, Vec<GatewayRecord>>;
}
