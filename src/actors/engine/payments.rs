//! Money at the engine: authorising a placement, what an order's payment looks like, the
//! ledger's trial balance, payouts, reconciliation against the gateways, and the job that
//! resolves authorisations whose outcome was unknown.

use super::Engine;
use crate::actors::error::EngineError;
use crate::domain::payment::{OpKind, OpStatus, OrderPayment, PaymentMethod, PaymentOp};
use crate::domain::{Cents, Order};
use crate::payments::{GatewayCall, Outcome, PayError};
use crate::persistence::{Write, WriteUnit};

/// An authorisation the gateway still does not know this long after it was sent never
/// arrived there.
const NEVER_ARRIVED: chrono::Duration = chrono::Duration::minutes(10);

impl Engine {
    /// Authorises an online order's total before it exists; records the attempt. A decline,
    /// an outage or an unknown outcome leaves no order (and nothing in the ledger).
    pub(super) async fn authorize(
        &self,
        order: &mut Order,
        method: PaymentMethod,
        token: Option<String>,
    ) -> Result<Option<PaymentOp>, EngineError> {
        if !method.is_online() {
            order.payment = Some(OrderPayment::cash());
            return Ok(None);
        }
        let gateways = &self.services.gateways;
        let attempt = |key: String, gateway: String, status, error| PaymentOp {
            key,
            order_id: Some(order.id),
            kind: OpKind::Authorize,
            amount: order.total_cents,
            gateway: Some(gateway),
            reference: None,
            status,
            attempts: 1,
            error,
            at: order.placed_at,
        };
        match gateways.authorize(order.id, order.total_cents, token).await {
            Ok(auth) => {
                order.payment = Some(OrderPayment {
                    method,
                    gateway: Some(auth.gateway.clone()),
                    reference: Some(auth.reference.clone()),
                });
                let mut op = attempt(auth.key, auth.gateway, OpStatus::Succeeded, None);
                op.reference = Some(auth.reference);
                Ok(Some(op))
            }
            Err(PayError::Declined(reason)) => {
                let key = format!("auth-{}", order.id);
                let op = attempt(key, String::new(), OpStatus::Declined, Some(reason.clone()));
                self.record_attempt(op).await;
                metrics::counter!("dabba_payments_declined_total").increment(1);
                Err(EngineError::PaymentDeclined(reason))
            }
            Err(PayError::Unavailable) => {
                metrics::counter!("dabba_payments_unavailable_total").increment(1);
                Err(EngineError::PaymentUnavailable(
                    "no payment gateway is available; nothing was charged, retry shortly",
                ))
            }
            Err(PayError::Unknown { gateway, key }) => {
                // Resolved later by a status lookup; a late success is voided.
                let op = attempt(key, gateway, OpStatus::Unknown, Some("timed out".into()));
                self.record_attempt(op).await;
                Err(EngineError::PaymentUnavailable(
                    "the payment gateway did not answer in time; no order was placed, retry shortly",
                ))
            }
        }
    }

    async fn record_attempt(&self, op: PaymentOp) {
        let unit = WriteUnit::one(Write::SavePaymentOp(op));
        if let Err(error) = self.services.writer.submit(unit).await {
            tracing::warn!(%error, "could not record a payment attempt");
        }
    }

    /// Releases an authorisation no order was made for (in the background).
    pub(super) fn void_authorization(&self, auth: PaymentOp) {
        let engine = self.clone();
        actix_web::rt::spawn(async move { engine.void(auth).await });
    }

    async fn void(&self, auth: PaymentOp) {
        let gateway = auth.gateway.clone().unwrap_or_default();
        let call = GatewayCall {
            key: format!("void-{}", auth.key),
            kind: OpKind::Void,
            amount: auth.amount,
            token: None,
            reference: auth.reference.clone(),
        };
        match self.services.gateways.execute(&gateway, &call).await {
            Ok(_) => {
                let at = self.now();
                // The void itself, under its own key, and the authorisation it released.
                let void = PaymentOp {
                    key: call.key,
                    kind: OpKind::Void,
                    status: OpStatus::Succeeded,
                    attempts: 1,
                    error: None,
                    at,
                    ..auth.clone()
                };
                let voided = PaymentOp {
                    status: OpStatus::Voided,
                    at,
                    ..auth
                };
                let unit = WriteUnit::new(vec![
                    Write::SavePaymentOp(void),
                    Write::SavePaymentOp(voided),
                ]);
                if let Err(error) = self.services.writer.submit(unit).await {
                    tracing::warn!(%error, "could not record a void");
                }
                metrics::counter!("dabba_payments_voided_total").increment(1);
            }
            Err(error) => tracing::warn!(%error, key = %auth.key, "void failed; will retry"),
        }
    }

    /// Resolves authorisations whose outcome was unknown: a late success is voided (its
    /// order was never placed), a decline recorded.
    pub async fn resolve_unknown_payments(&self) -> Result<usize, EngineError> {
        let unknown = self
            .services
            .store
            .payment_ops_in(OpStatus::Unknown, 100)
            .await?;
        let mut resolved = 0;
        for op in unknown.into_iter().filter(|o| o.kind == OpKind::Authorize) {
            let Some(gateway) = op
                .gateway
                .as_deref()
                .and_then(|g| self.services.gateways.gateway(g))
            else {
                continue;
            };
            let record = match gateway.lookup(&op.key).await {
                Ok(Some(record)) => record,
                // The call never reached the gateway: after a while, it never will.
                Ok(None) if self.now() - op.at > NEVER_ARRIVED => {
                    self.record_attempt(PaymentOp {
                        status: OpStatus::Failed,
                        error: Some("never reached the gateway".into()),
                        ..op
                    })
                    .await;
                    resolved += 1;
                    continue;
                }
                Ok(None) | Err(_) => continue,
            };
            match record.outcome() {
                Some(Outcome::Approved { reference }) => {
                    self.void(PaymentOp {
                        reference: Some(reference),
                        ..op
                    })
                    .await;
                    resolved += 1;
                }
                Some(Outcome::Declined { .. }) => {
                    self.record_attempt(PaymentOp {
                        status: OpStatus::Declined,
                        ..op
                    })
                    .await;
                    resolved += 1;
                }
                None => {}
            }
        }
        Ok(resolved)
    }

    /// The operations recorded for an order, oldest first.
    pub async fn payment_ops(&self, order: &Order) -> Result<Vec<PaymentOp>, EngineError> {
        Ok(self.services.store.payment_ops(order.id).await?)
    }

    /// What the ledger refunded for an order (recognised, whether or not yet confirmed).
    pub async fn refunded(&self, order: &Order) -> Result<Cents, EngineError> {
        let postings = self.services.store.ledger_kinds(order.id).await?;
        Ok(Cents(
            postings
                .iter()
                .filter(|(kind, account, _)| kind == "refund" && account.starts_with("gateway:"))
                .map(|(_, _, amount)| *amount)
                .sum(),
        ))
    }

    pub async fn trial_balance(&self) -> Result<Vec<(String, i64)>, EngineError> {
        Ok(self.services.store.trial_balance().await?)
    }
}

/// One difference between our books and a gateway's.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Mismatch {
    pub gateway: String,
    pub key: String,
    /// `missing_at_gateway`, `unknown_to_ledger` or `amount_differs`.
    pub kind: String,
    pub ours: Option<String>,
    pub theirs: Option<String>,
}

impl Engine {
    /// Compares every operation we recorded as done with each gateway's own records.
    pub async fn reconcile(&self) -> Result<(usize, Vec<Mismatch>), EngineError> {
        let mut checked = 0;
        let mut mismatches = vec![];
        for name in self.services.gateways.names() {
            let Some(gateway) = self.services.gateways.gateway(&name) else {
                continue;
            };
            let theirs = gateway.records().await.map_err(|_| {
                EngineError::PaymentUnavailable("a gateway's records are unreachable")
            })?;
            let ours = self.services.store.gateway_ops(&name).await?;
            let ours: std::collections::HashMap<&str, &PaymentOp> =
                ours.iter().map(|o| (o.key.as_str(), o)).collect();
            let mut seen = std::collections::HashSet::new();
            for record in &theirs {
                checked += 1;
                // A transfer is sent as `{our key}-{gateway}` (fallback gives each its own).
                let suffix = format!("-{name}");
                let key = match record.kind {
                    OpKind::Transfer => record.key.strip_suffix(&suffix).unwrap_or(&record.key),
                    _ => record.key.as_str(),
                };
                seen.insert(key);
                let done_there = record.status == "approved";
                let mine = ours.get(key);
                let mismatch = |kind: &str| Mismatch {
                    gateway: name.clone(),
                    key: record.key.clone(),
                    kind: kind.into(),
                    ours: mine.map(|o| format!("{} {}", o.status.as_str(), o.amount)),
                    theirs: Some(format!("{} {}", record.status, record.amount)),
                };
                match mine {
                    Some(o) if o.status == OpStatus::Succeeded && o.amount != record.amount => {
                        mismatches.push(mismatch("amount_differs"));
                    }
                    Some(o) if o.status == OpStatus::Succeeded || !done_there => {}
                    // Approved there, not done in our books (a late success not yet voided,
                    // an operation whose answer we never recorded).
                    _ if done_there => mismatches.push(mismatch("unknown_to_ledger")),
                    _ => {}
                }
            }
            for (key, op) in &ours {
                if op.status == OpStatus::Succeeded && !seen.contains(key) {
                    checked += 1;
                    mismatches.push(Mismatch {
                        gateway: name.clone(),
                        key: (*key).to_owned(),
                        kind: "missing_at_gateway".into(),
                        ours: Some(format!("{} {}", op.status.as_str(), op.amount)),
                        theirs: None,
                    });
                }
            }
        }
        metrics::gauge!("dabba_reconciliation_mismatches").set(mismatches.len() as f64);
        Ok((checked, mismatches))
    }
}
