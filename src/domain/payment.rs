//! How an order is paid: the method the customer chose and, for online methods, the gateway
//! that authorised it. The money itself is in the ledger (`ledger.rs`); this is what the order
//! carries so that every later movement knows where to send it.

use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    #[default]
    Card,
    Upi,
    Wallet,
    Cash,
}

impl PaymentMethod {
    /// Online methods are authorised through a gateway before the order exists.
    pub fn is_online(self) -> bool {
        self != PaymentMethod::Cash
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::Upi => "upi",
            PaymentMethod::Wallet => "wallet",
            PaymentMethod::Cash => "cash",
        }
    }
}

/// The order's payment: absent on orders placed before money was recorded (no movement is
/// ever derived for those).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPayment {
    pub method: PaymentMethod,
    /// The gateway that authorised it (online methods).
    pub gateway: Option<String>,
    /// The gateway's id for the authorisation.
    pub reference: Option<String>,
}

impl OrderPayment {
    pub fn cash() -> Self {
        Self {
            method: PaymentMethod::Cash,
            gateway: None,
            reference: None,
        }
    }

    /// The gateway of an online payment.
    pub fn online_gateway(&self) -> Option<&str> {
        self.method
            .is_online()
            .then_some(self.gateway.as_deref())
            .flatten()
    }
}

/// An operation at a payment gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Authorize,
    Capture,
    Refund,
    Void,
    Transfer,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Authorize => "authorize",
            OpKind::Capture => "capture",
            OpKind::Refund => "refund",
            OpKind::Void => "void",
            OpKind::Transfer => "transfer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            OpKind::Authorize,
            OpKind::Capture,
            OpKind::Refund,
            OpKind::Void,
            OpKind::Transfer,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where a gateway operation stands in our books.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Recorded, not yet confirmed by the gateway (the settlement consumer sends it).
    Pending,
    Succeeded,
    /// Gave up after its retries: visible to ops, replayable from the dead letters.
    Failed,
    Declined,
    /// The gateway did not say (a timeout); resolved later by a status lookup.
    Unknown,
    /// An authorisation that landed after we stopped waiting, released.
    Voided,
}

impl OpStatus {
    pub const ALL: [OpStatus; 6] = [
        OpStatus::Pending,
        OpStatus::Succeeded,
        OpStatus::Failed,
        OpStatus::Declined,
        OpStatus::Unknown,
        OpStatus::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Pending => "pending",
            OpStatus::Succeeded => "succeeded",
            OpStatus::Failed => "failed",
            OpStatus::Declined => "declined",
            OpStatus::Unknown => "unknown",
            OpStatus::Voided => "voided",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One gateway operation as we record it: its idempotency key is its identity, so the same
/// operation recorded twice is one row, and sent twice is one movement at the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentOp {
    pub key: String,
    pub order_id: Option<super::OrderId>,
    pub kind: OpKind,
    pub amount: super::Cents,
    pub gateway: Option<String>,
    /// The authorisation it applies to, or a payout's destination.
    pub reference: Option<String>,
    pub status: OpStatus,
    pub attempts: u32,
    pub error: Option<String>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub at: chrono::DateTime<chrono::Utc>,
}
