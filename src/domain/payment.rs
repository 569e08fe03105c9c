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
