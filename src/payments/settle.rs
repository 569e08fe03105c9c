//! The settlement consumer: sends each requested gateway operation (capture, refund) under its
//! idempotency key and records the gateway's answer; a refund confirmed moves its money out of
//! the gateway's in-flight account. At-least-once delivery is safe: an operation already
//! confirmed is skipped, and a repeat at the gateway returns the first answer.

use std::sync::Arc;

use crate::domain::Clock;

use super::gateway::{CallError, GatewayCall, OpKind, Outcome};
use super::pool::Gateways;
use crate::domain::ledger;
use crate::domain::payment::{OpStatus, PaymentOp};
use crate::events::consumer::{Consumer, Handling};
use crate::events::family::Family;
use crate::events::relay::{self, PaymentEventKind};
use crate::persistence::writer::Writer;
use crate::persistence::{CommittedEvent, Recipients, Store, Write, WriteUnit};

pub const SETTLEMENT: &str = "payments";

/// How long an operation may wait for its answer before the sweep sends it again.
const STALE: chrono::Duration = chrono::Duration::seconds(60);

pub struct Settlement {
    gateways: Arc<Gateways>,
    store: Store,
    writer: Writer,
    clock: Clock,
    /// Attempts after which an operation is marked failed for ops (and dead-lettered).
    max_attempts: u32,
}

/// The outbox payload of a `payment.requested` event.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Requested {
    #[serde(rename = "type")]
    pub kind: String,
    pub op: PaymentOp,
}

impl Settlement {
    pub fn new(
        gateways: Arc<Gateways>,
        store: Store,
        writer: Writer,
        clock: Clock,
        max_attempts: u32,
    ) -> Self {
        Self {
            gateways,
            store,
            writer,
            clock,
            max_attempts,
        }
    }

    /// Re-sends captures and refunds that have waited too long for an answer (a lost event
    /// retry, an unknown outcome), so none depends on the event being delivered again.
    pub async fn sweep(&self) -> Result<usize, crate::persistence::StoreError> {
        let before = self.clock.now() - STALE;
        let stale = self.store.stale_settlements(before, 100).await?;
        let n = stale.len();
        for op in stale {
            if let Err(error) = self.settle(op, None).await {
                tracing::warn!(%error, "settlement sweep: still not settled");
            }
        }
        Ok(n)
    }

    /// Sends one operation and records the answer. `order` is the order's id, version and
    /// parties when the request event carried them (the sweep reads them from the store).
    pub async fn settle(
        &self,
        requested: PaymentOp,
        order: Option<(crate::domain::OrderId, u64, Recipients)>,
    ) -> Result<(), String> {
        let current = self
            .store
            .payment_op(&requested.key)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or(requested);
        if matches!(current.status, OpStatus::Succeeded | OpStatus::Voided) {
            return Ok(());
        }
        let gateway = current.gateway.clone().unwrap_or_default();
        let call = GatewayCall {
            key: current.key.clone(),
            kind: current.kind,
            amount: current.amount,
            token: None,
            reference: current.reference.clone(),
        };
        let answer = self.gateways.execute(&gateway, &call).await;
        let now = self.clock.now();
        let mut next = PaymentOp {
            attempts: current.attempts + 1,
            at: now,
            ..current.clone()
        };
        let mut writes = vec![];
        let result = match answer {
            Ok(Outcome::Approved { .. }) => {
                next.status = OpStatus::Succeeded;
                next.error = None;
                if let (OpKind::Refund, Some(order)) = (next.kind, next.order_id) {
                    writes.push(Write::Ledger(ledger::refund_settled(
                        order,
                        &gateway,
                        next.amount,
                        now,
                    )));
                }
                Ok(())
            }
            Ok(Outcome::Declined { reason }) => {
                next.status = OpStatus::Failed;
                next.error = Some(reason);
                Ok(())
            }
            Err(e) => {
                let gave_up = next.attempts >= self.max_attempts;
                next.status = if gave_up {
                    OpStatus::Failed
                } else {
                    match e {
                        CallError::Timeout => OpStatus::Unknown,
                        CallError::Unavailable(_) => OpStatus::Pending,
                    }
                };
                next.error = Some(e.to_string());
                Err(format!("{} {}: {e}", next.kind.as_str(), next.key))
            }
        };
        metrics::counter!("dabba_payment_settlements_total", "op" => next.kind.as_str(),
            "status" => next.status.as_str())
        .increment(1);
        // The stream's payment readers (notifications, analytics) hear the answer.
        let order = match (order, next.order_id) {
            (Some(known), _) => Some(known),
            (None, Some(id)) => self
                .store
                .order(id)
                .await
                .map_err(|e| e.to_string())?
                .map(|o| {
                    let to = Recipients {
                        customer: o.customer_id,
                        restaurant: o.restaurant_id,
                        rider: o.rider_id,
                    };
                    (o.id, o.version, to)
                }),
            (None, None) => None,
        };
        if let Some(order) = order
            && next.status != OpStatus::Pending
        {
            writes.push(Write::Event(relay::payment_event_to(
                PaymentEventKind::Settled,
                order,
                &next,
                now,
            )));
        }
        writes.insert(0, Write::SavePaymentOp(next));
        self.writer
            .submit(WriteUnit::new(writes))
            .await
            .map_err(|e| e.to_string())?;
        result
    }
}

impl Consumer for Settlement {
    fn name(&self) -> &'static str {
        SETTLEMENT
    }

    fn families(&self) -> &'static [Family] {
        &[Family::Payments]
    }

    fn handle<'a>(&'a self, event: &'a CommittedEvent) -> Handling<'a> {
        Box::pin(async move {
            if event.event.kind != "payment.requested" {
                return Ok(());
            }
            let requested: Requested = serde_json::from_str(&event.event.payload)
                .map_err(|e| format!("unreadable payment request: {e}"))?;
            let e = &event.event;
            self.settle(requested.op, Some((e.order_id, e.version, e.to)))
                .await
        })
    }
}
