//! Which gateway operations a ledger movement needs, decided purely: the ledger says what the
//! money does, these say what the gateway must be told. Keys are derived from the order, so
//! the same movement always asks for the same operation.

use chrono::{DateTime, Utc};

use crate::domain::ledger::{LedgerTxn, TxnKind};
use crate::domain::payment::{OpKind, OpStatus, PaymentOp};
use crate::domain::{Cents, Order};

fn op(order: &Order, kind: OpKind, amount: Cents, at: DateTime<Utc>) -> Option<PaymentOp> {
    let payment = order.payment.as_ref()?;
    let gateway = payment.online_gateway()?;
    Some(PaymentOp {
        key: format!("{}-{}", kind.as_str(), order.id),
        order_id: Some(order.id),
        kind,
        amount,
        gateway: Some(gateway.to_owned()),
        reference: payment.reference.clone(),
        status: OpStatus::Pending,
        attempts: 0,
        error: None,
        at,
    })
}

/// The operations `txns` (an order's movements) need at the gateway, in the order to send
/// them: delivery captures the total; a full refund releases the authorisation; a partial one
/// captures the total and refunds the customer's share.
pub fn settlement_ops(order: &Order, txns: &[LedgerTxn], at: DateTime<Utc>) -> Vec<PaymentOp> {
    let amount_of = |kind| {
        txns.iter()
            .find(|t| t.kind == kind)
            .map(|t| Cents(t.postings.iter().map(|p| p.amount.0.max(0)).sum()))
    };
    let total = order.total_cents;
    let mut ops = Vec::new();
    if amount_of(TxnKind::Capture).is_some() {
        ops.extend(op(order, OpKind::Capture, total, at));
    }
    if let Some(refund) = amount_of(TxnKind::Refund) {
        if refund.0 < total.0 {
            ops.extend(op(order, OpKind::Capture, total, at));
        }
        if refund.0 > 0 {
            ops.extend(op(order, OpKind::Refund, refund, at));
        }
    }
    ops
}
