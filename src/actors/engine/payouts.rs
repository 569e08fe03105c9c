//! Payouts: each ended period, every restaurant and rider is paid what the delivery splits
//! gave it, once (one payout per account and period, its id derived from both), through the
//! gateway pool's transfer with retries and fallback. A transfer whose answer is lost stays
//! pending and is retried under the same key by the next run.

use chrono::{DateTime, TimeZone, Utc};

use super::Engine;
use crate::actors::error::EngineError;
use crate::domain::ledger::{Account, LedgerTxn, TxnKind};
use crate::domain::payment::{OpKind, OpStatus, PaymentOp};
use crate::domain::{Cents, RestaurantId, RiderId};
use crate::payments::Outcome;
use crate::persistence::money::{PayoutRecord, PeriodEarnings};
use crate::persistence::{Write, WriteUnit};

fn at_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Engine {
    /// Settles every period that has ended; the payouts made or retried.
    pub async fn run_payouts(&self) -> Result<Vec<PayoutRecord>, EngineError> {
        let period_ms = self.payout_period.num_milliseconds().max(1);
        let now = self.now();
        let current_start = at_millis(now.timestamp_millis() / period_ms * period_ms);
        let store = &self.services.store;
        let mut done = vec![];
        for prefix in ["restaurant:", "rider:"] {
            for earned in store
                .period_earnings(prefix, period_ms, current_start)
                .await?
            {
                let payout = self.payout_record(&earned, period_ms, now);
                match store.payout(payout.id).await? {
                    Some(p) if p.status == "paid" => continue,
                    Some(p) => done.push(self.pay(p).await?),
                    None => done.push(self.pay(payout).await?),
                }
            }
        }
        Ok(done)
    }

    fn payout_record(
        &self,
        e: &PeriodEarnings,
        period_ms: i64,
        now: DateTime<Utc>,
    ) -> PayoutRecord {
        let start = e.bucket * period_ms;
        let restaurant = e.account.starts_with("restaurant:");
        PayoutRecord {
            id: uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_OID,
                format!("payout:{}:{start}", e.account).as_bytes(),
            ),
            account: e.account.clone(),
            period_start: at_millis(start),
            period_end: at_millis(start + period_ms),
            deliveries: e.deliveries,
            gross_cents: if restaurant {
                e.gross_cents
            } else {
                e.net_cents
            },
            commission_cents: if restaurant {
                e.gross_cents - e.net_cents
            } else {
                0
            },
            refunds_cents: 0,
            net_cents: e.net_cents,
            status: "pending".into(),
            created_at: now,
        }
    }

    /// Records the payout as pending, transfers it, and books it once the gateway confirmed.
    async fn pay(&self, mut payout: PayoutRecord) -> Result<PayoutRecord, EngineError> {
        let writer = &self.services.writer;
        let key = format!("payout-{}", payout.id);
        let op = PaymentOp {
            key: key.clone(),
            order_id: None,
            kind: OpKind::Transfer,
            amount: Cents(payout.net_cents),
            gateway: None,
            reference: Some(payout.account.clone()),
            status: OpStatus::Pending,
            attempts: 1,
            error: None,
            at: self.now(),
        };
        writer
            .submit(WriteUnit::new(vec![
                Write::SavePayout(payout.clone()),
                Write::SavePaymentOp(op.clone()),
            ]))
            .await?;
        let sent = self
            .services
            .gateways
            .transfer(&key, Cents(payout.net_cents), &payout.account)
            .await;
        let (gateway, status, error) = match sent {
            Ok((gateway, Outcome::Approved { .. })) => (Some(gateway), OpStatus::Succeeded, None),
            Ok((gateway, Outcome::Declined { reason })) => {
                (Some(gateway), OpStatus::Failed, Some(reason))
            }
            Err(e) => (None, OpStatus::Pending, Some(e.to_string())),
        };
        let mut writes = vec![];
        if let (OpStatus::Succeeded, Some(g)) = (status, &gateway) {
            payout.status = "paid".into();
            let account = account_of(&payout.account).ok_or(EngineError::InvalidState(format!(
                "unknown payout account {}",
                payout.account
            )))?;
            let amount = Cents(payout.net_cents);
            let sent = LedgerTxn::new(
                payout.id,
                TxnKind::Payout,
                None,
                account,
                vec![(Account::Gateway(g.clone()), amount)],
                self.now(),
            );
            let settled = LedgerTxn::new(
                payout.id,
                TxnKind::PayoutSettled,
                None,
                Account::Gateway(g.clone()),
                vec![(Account::Outside, amount)],
                self.now(),
            );
            writes.push(Write::Ledger(sent));
            writes.push(Write::Ledger(settled));
        } else if status == OpStatus::Failed {
            payout.status = "failed".into();
        }
        writes.push(Write::SavePayout(payout.clone()));
        writes.push(Write::SavePaymentOp(PaymentOp {
            // The gateway holds it as `{key}-{gateway}` (see `Gateways::transfer`).
            gateway,
            status,
            error,
            ..op
        }));
        writer.submit(WriteUnit::new(writes)).await?;
        Ok(payout)
    }

    /// A restaurant's payouts and what it is owed and not yet paid.
    pub async fn restaurant_payouts(
        &self,
        id: RestaurantId,
    ) -> Result<(Vec<PayoutRecord>, i64), EngineError> {
        let account = Account::Restaurant(id).key();
        let store = &self.services.store;
        Ok((
            store.payouts(&account).await?,
            store.balance(&account).await?,
        ))
    }

    /// A rider's deliveries, earnings, what was paid, what is pending, and the cash it
    /// collected on cash orders (due to the platform).
    pub async fn rider_earnings(&self, id: RiderId) -> Result<RiderEarnings, EngineError> {
        let account = Account::Rider(id).key();
        let store = &self.services.store;
        let (deliveries, earned) = store.earnings(&account).await?;
        let pending = store.balance(&account).await?;
        Ok(RiderEarnings {
            deliveries,
            earned_cents: earned,
            paid_cents: earned - pending,
            pending_cents: pending,
            cash_collected_cents: store.cash_collected(&account).await?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RiderEarnings {
    pub deliveries: i64,
    pub earned_cents: i64,
    pub paid_cents: i64,
    pub pending_cents: i64,
    /// The totals of the cash orders it delivered: collected for the platform.
    pub cash_collected_cents: i64,
}

fn account_of(key: &str) -> Option<Account> {
    if let Some(id) = key.strip_prefix("restaurant:") {
        return id.parse().ok().map(Account::Restaurant);
    }
    key.strip_prefix("rider:")
        .and_then(|id| id.parse().ok())
        .map(Account::Rider)
}
