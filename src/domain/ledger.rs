//! The double-entry ledger: every movement of money is one balanced transaction (its postings
//! sum to zero) with a deterministic id, so a transaction derived twice (a retry, a replay
//! after a crash) is applied once. Balances are sums of postings; every account but the
//! outside world is a bucket that never goes negative (TigerBeetle's invariants are the model).
//!
//! Which transactions an order change causes is decided here, purely, from the order before
//! and after; the order actor writes them in the same store transaction as the order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{CustomerId, OrderId, RestaurantId, RiderId};
use super::money::Cents;
use super::order::{Order, Stage};

/// A bucket of money. The outside world is where money comes from and goes back to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    Outside,
    /// What a customer authorised for their orders, not yet spent or returned.
    Customer(CustomerId),
    /// What the platform owes a restaurant.
    Restaurant(RestaurantId),
    /// What the platform owes a rider.
    Rider(RiderId),
    /// Money on its way out through a gateway (a refund or a payout sent, not yet confirmed).
    Gateway(String),
    /// The platform's commission and fees.
    Platform,
}

impl Account {
    pub fn key(&self) -> String {
        match self {
            Account::Outside => "outside".into(),
            Account::Customer(id) => format!("customer:{id}"),
            Account::Restaurant(id) => format!("restaurant:{id}"),
            Account::Rider(id) => format!("rider:{id}"),
            Account::Gateway(name) => format!("gateway:{name}"),
            Account::Platform => "platform".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnKind {
    /// Placement: the customer's authorised money is held.
    Authorize,
    /// Delivery of an online order: the held money is split.
    Capture,
    /// Delivery of a cash order: the rider collected it; it is split the same way.
    CashDelivery,
    /// The share of a cancelled order the customer does not get back.
    CancelFee,
    /// A refund sent through the gateway.
    Refund,
    /// The gateway confirmed the refund.
    RefundSettled,
    /// A payout sent through the gateway.
    Payout,
    /// The gateway confirmed the payout.
    PayoutSettled,
}

impl TxnKind {
    /// The kinds an order's own transactions have (their source is the order).
    pub const OF_ORDERS: [TxnKind; 6] = [
        TxnKind::Authorize,
        TxnKind::Capture,
        TxnKind::CashDelivery,
        TxnKind::CancelFee,
        TxnKind::Refund,
        TxnKind::RefundSettled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TxnKind::Authorize => "authorize",
            TxnKind::Capture => "capture",
            TxnKind::CashDelivery => "cash_delivery",
            TxnKind::CancelFee => "cancel_fee",
            TxnKind::Refund => "refund",
            TxnKind::RefundSettled => "refund_settled",
            TxnKind::Payout => "payout",
            TxnKind::PayoutSettled => "payout_settled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    pub account: Account,
    pub amount: Cents,
}

/// One balanced movement of money.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerTxn {
    /// Deterministic: the same movement always has the same id.
    pub id: Uuid,
    pub kind: TxnKind,
    pub order_id: Option<OrderId>,
    pub postings: Vec<Posting>,
    pub at: DateTime<Utc>,
}

impl LedgerTxn {
    /// The transaction moving `amount` from `from` to each `(account, share)`; shares of zero
    /// are left out. `source` names what it belongs to (an order, a payout).
    pub fn new(
        source: Uuid,
        kind: TxnKind,
        order_id: Option<OrderId>,
        from: Account,
        to: Vec<(Account, Cents)>,
        at: DateTime<Utc>,
    ) -> Self {
        let total: Cents = to.iter().map(|(_, c)| *c).sum();
        let mut postings = vec![Posting {
            account: from,
            amount: Cents(-total.0),
        }];
        postings.extend(
            to.into_iter()
                .filter(|(_, c)| c.0 != 0)
                .map(|(account, amount)| Posting { account, amount }),
        );
        Self {
            id: txn_id(source, kind),
            kind,
            order_id,
            postings,
            at,
        }
    }

    pub fn is_balanced(&self) -> bool {
        self.postings.iter().map(|p| p.amount.0).sum::<i64>() == 0
    }
}

/// The id of `kind` for `source`: one per order (or payout) and kind.
pub fn txn_id(source: Uuid, kind: TxnKind) -> Uuid {
    Uuid::new_v5(&source, kind.as_str().as_bytes())
}

/// Every transaction id an order can have: its ledger lines are found by these (the primary
/// key), so the ledger needs no index by order.
pub fn order_txn_ids(order: OrderId) -> [Uuid; TxnKind::OF_ORDERS.len()] {
    TxnKind::OF_ORDERS.map(|kind| txn_id(order.0, kind))
}

/// How a delivered order's money is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// The platform's commission on the order total.
    pub commission_percent: u8,
    /// The rider's earning per delivery, paid out of the commission (never more than it).
    pub rider_fee: Cents,
}

impl Default for Split {
    fn default() -> Self {
        Self {
            commission_percent: 20,
            rider_fee: Cents(3_000),
        }
    }
}

/// A delivered order's shares: (restaurant, rider, platform), summing to `total`.
pub fn split(total: Cents, rules: Split) -> (Cents, Cents, Cents) {
    let commission = total.percent(rules.commission_percent.min(100));
    let rider = Cents(rules.rider_fee.0.clamp(0, commission.0));
    (
        Cents(total.0 - commission.0),
        rider,
        Cents(commission.0 - rider.0),
    )
}

/// The authorisation of a new online order.
pub fn authorization(order: &Order) -> Option<LedgerTxn> {
    let payment = order.payment.as_ref()?;
    payment.method.is_online().then(|| {
        LedgerTxn::new(
            order.id.0,
            TxnKind::Authorize,
            Some(order.id),
            Account::Outside,
            vec![(Account::Customer(order.customer_id), order.total_cents)],
            order.placed_at,
        )
    })
}

/// What an order's change from `prev` to `next` moves: the split on delivery, the refund and
/// the cancellation fee when it ends otherwise. Nothing for other changes.
pub fn movements(prev: &Order, next: &Order, rules: Split, at: DateTime<Utc>) -> Vec<LedgerTxn> {
    let Some(payment) = next.payment.as_ref() else {
        return vec![];
    };
    if prev.stage.is_terminal() || !next.stage.is_terminal() {
        return vec![];
    }
    let total = next.total_cents;
    let online = payment.method.is_online();
    let id = next.id;
    if next.stage == Stage::Delivered {
        let Some(rider) = next.rider_id else {
            return vec![];
        };
        let (restaurant_share, rider_share, platform_share) = split(total, rules);
        let (kind, from) = if online {
            (TxnKind::Capture, Account::Customer(next.customer_id))
        } else {
            (TxnKind::CashDelivery, Account::Outside)
        };
        let shares = vec![
            (Account::Restaurant(next.restaurant_id), restaurant_share),
            (Account::Rider(rider), rider_share),
            (Account::Platform, platform_share),
        ];
        return vec![LedgerTxn::new(id.0, kind, Some(id), from, shares, at)];
    }
    // Cancelled or rejected: a cash order moved no money.
    let (Some(gateway), Some(refund)) = (payment.online_gateway(), next.refund) else {
        return vec![];
    };
    let refund = Cents(refund.amount_cents.0.clamp(0, total.0));
    let customer = Account::Customer(next.customer_id);
    let mut txns = vec![LedgerTxn::new(
        id.0,
        TxnKind::Refund,
        Some(id),
        customer.clone(),
        vec![(Account::Gateway(gateway.to_owned()), refund)],
        at,
    )];
    let kept = Cents(total.0 - refund.0);
    if kept.0 > 0 {
        txns.push(LedgerTxn::new(
            id.0,
            TxnKind::CancelFee,
            Some(id),
            customer,
            vec![(Account::Platform, kept)],
            at,
        ));
    }
    txns
}

/// The gateway confirmed a refund of `amount` for `order`.
pub fn refund_settled(
    order: OrderId,
    gateway: &str,
    amount: Cents,
    at: DateTime<Utc>,
) -> LedgerTxn {
    LedgerTxn::new(
        order.0,
        TxnKind::RefundSettled,
        Some(order),
        Account::Gateway(gateway.to_owned()),
        vec![(Account::Outside, amount)],
        at,
    )
}

#[cfg(test)]
mod tests;
