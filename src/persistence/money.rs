//! The money tables: ledger postings, gateway operations and payouts. Statements read the
//! same in both dialects; sums are cast to BIGINT (PostgreSQL sums BIGINT as NUMERIC).

use chrono::{DateTime, Utc};

use super::dialect::{Param, Stmt};
use super::rows::{from_millis, millis, parse_id};
use super::{Store, StoreError, StoreResult};
use crate::domain::ledger::LedgerTxn;
use crate::domain::payment::{OpKind, OpStatus, PaymentOp};
use crate::domain::{Cents, OrderId};

use Param::{Int, OptText, Text};

/// A payout of one account for one period.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PayoutRecord {
    pub id: uuid::Uuid,
    pub account: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub deliveries: i64,
    pub gross_cents: i64,
    pub commission_cents: i64,
    pub refunds_cents: i64,
    pub net_cents: i64,
    /// `pending` (sent), `paid` (the gateway confirmed) or `failed`.
    pub status: String,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

/// What an account earned in one period, from the delivery splits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodEarnings {
    pub account: String,
    pub bucket: i64,
    pub deliveries: i64,
    pub net_cents: i64,
    pub gross_cents: i64,
}

/// One statement per posting; a transaction already written is skipped whole.
pub fn post_ledger(txn: &LedgerTxn) -> Vec<Stmt> {
    txn.postings
        .iter()
        .enumerate()
        .map(|(line, p)| {
            Stmt::new(
                "INSERT INTO ledger_entries (txn_id, line, kind, order_id, account, amount_cents, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (txn_id, line) DO NOTHING",
                vec![
                    Text(txn.id.to_string()),
                    Int(line as i64),
                    Text(txn.kind.as_str().into()),
                    OptText(txn.order_id.map(|o| o.to_string())),
                    Text(p.account.key()),
                    Int(p.amount.0),
                    Int(millis(txn.at)),
                ],
            )
        })
        .collect()
}

/// Records an operation, or moves it on; a confirmed one is never moved back.
pub fn save_op(op: &PaymentOp) -> Stmt {
    Stmt::new(
        "INSERT INTO payment_ops (key, order_id, kind, amount_cents, gateway, reference, status, attempts, error, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         ON CONFLICT (key) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
            error = excluded.error, reference = COALESCE(excluded.reference, payment_ops.reference),
            gateway = COALESCE(excluded.gateway, payment_ops.gateway), updated_at = excluded.updated_at
         WHERE payment_ops.status NOT IN ('succeeded', 'voided', 'declined') OR excluded.status = 'voided'",
        vec![
            Text(op.key.clone()),
            OptText(op.order_id.map(|o| o.to_string())),
            Text(op.kind.as_str().into()),
            Int(op.amount.0),
            OptText(op.gateway.clone()),
            OptText(op.reference.clone()),
            Text(op.status.as_str().into()),
            Int(i64::from(op.attempts)),
            OptText(op.error.clone()),
            Int(millis(op.at)),
        ],
    )
}

pub fn save_payout(p: &PayoutRecord) -> Stmt {
    Stmt::new(
        "INSERT INTO payouts (id, account, period_start, period_end, deliveries, gross_cents, commission_cents,
            refunds_cents, net_cents, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status",
        vec![
            Text(p.id.to_string()),
            Text(p.account.clone()),
            Int(millis(p.period_start)),
            Int(millis(p.period_end)),
            Int(p.deliveries),
            Int(p.gross_cents),
            Int(p.commission_cents),
            Int(p.refunds_cents),
            Int(p.net_cents),
            Text(p.status.clone()),
            Int(millis(p.created_at)),
        ],
    )
}

const OP_COLUMNS: &str =
    "key, order_id, kind, amount_cents, gateway, reference, status, attempts, error, created_at";

type OpRow = (
    String,
    Option<String>,
    String,
    i64,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<String>,
    i64,
);

fn decode_op(r: OpRow) -> StoreResult<PaymentOp> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("payment op {what}"));
    Ok(PaymentOp {
        key: r.0,
        order_id: r.1.as_deref().map(parse_id::<OrderId>).transpose()?,
        kind: OpKind::parse(&r.2).ok_or_else(|| corrupt("kind"))?,
        amount: Cents(r.3),
        gateway: r.4,
        reference: r.5,
        status: OpStatus::parse(&r.6).ok_or_else(|| corrupt("status"))?,
        attempts: u32::try_from(r.7).unwrap_or(u32::MAX),
        error: r.8,
        at: from_millis(r.9)?,
    })
}

type PayoutRow = (
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
    i64,
);

fn decode_payout(r: PayoutRow) -> StoreResult<PayoutRecord> {
    Ok(PayoutRecord {
        id: parse_id(&r.0)?,
        account: r.1,
        period_start: from_millis(r.2)?,
        period_end: from_millis(r.3)?,
        deliveries: r.4,
        gross_cents: r.5,
        commission_cents: r.6,
        refunds_cents: r.7,
        net_cents: r.8,
        status: r.9,
        created_at: from_millis(r.10)?,
    })
}

const PAYOUT_COLUMNS: &str = "id, account, period_start, period_end, deliveries, gross_cents, commission_cents, refunds_cents, net_cents, status, created_at";

impl Store {
    /// Every account's balance: the sum of its postings.
    pub async fn trial_balance(&self) -> StoreResult<Vec<(String, i64)>> {
        self.all(Stmt::new(
            "SELECT account, CAST(SUM(amount_cents) AS BIGINT) FROM ledger_entries GROUP BY account ORDER BY account",
            vec![],
        ))
        .await
    }

    pub async fn balance(&self, account: &str) -> StoreResult<i64> {
        let row: Option<(i64,)> = self
            .optional(Stmt::new(
                "SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM ledger_entries WHERE account = $1",
                vec![Text(account.into())],
            ))
            .await?;
        Ok(row.map_or(0, |(b,)| b))
    }

    /// An order's postings to `account_prefix%` by transaction kind, e.g. what it refunded.
    pub async fn ledger_kinds(&self, order: OrderId) -> StoreResult<Vec<(String, String, i64)>> {
        // By the order's possible transaction ids, on the primary key (migration 0015).
        let ids = crate::domain::ledger::order_txn_ids(order);
        self.all(Stmt::new(
            "SELECT kind, account, amount_cents FROM ledger_entries
             WHERE txn_id IN ($1, $2, $3, $4, $5, $6) ORDER BY at, txn_id, line",
            ids.iter().map(|id| Text(id.to_string())).collect(),
        ))
        .await
    }

    pub async fn payment_ops(&self, order: OrderId) -> StoreResult<Vec<PaymentOp>> {
        let sql: &'static str = "SELECT key, order_id, kind, amount_cents, gateway, reference, status, attempts, error, created_at
             FROM payment_ops WHERE order_id = $1 ORDER BY created_at, key";
        debug_assert!(sql.contains(OP_COLUMNS));
        let rows: Vec<OpRow> = self
            .all(Stmt::new(sql, vec![Text(order.to_string())]))
            .await?;
        rows.into_iter().map(decode_op).collect()
    }

    pub async fn payment_op(&self, key: &str) -> StoreResult<Option<PaymentOp>> {
        let row: Option<OpRow> = self
            .optional(Stmt::new(
                "SELECT key, order_id, kind, amount_cents, gateway, reference, status, attempts, error, created_at
                 FROM payment_ops WHERE key = $1",
                vec![Text(key.into())],
            ))
            .await?;
        row.map(decode_op).transpose()
    }

    /// Operations in `status`, oldest first.
    pub async fn payment_ops_in(
        &self,
        status: OpStatus,
        limit: i64,
    ) -> StoreResult<Vec<PaymentOp>> {
        let rows: Vec<OpRow> = self
            .all(Stmt::new(
                "SELECT key, order_id, kind, amount_cents, gateway, reference, status, attempts, error, created_at
                 FROM payment_ops WHERE status = $1 ORDER BY created_at LIMIT $2",
                vec![Text(status.as_str().into()), Int(limit)],
            ))
            .await?;
        rows.into_iter().map(decode_op).collect()
    }

    /// Captures and refunds still waiting for the gateway's answer, last touched before `before`.
    pub async fn stale_settlements(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<PaymentOp>> {
        let rows: Vec<OpRow> = self
            .all(Stmt::new(
                "SELECT key, order_id, kind, amount_cents, gateway, reference, status, attempts, error, created_at
                 FROM payment_ops WHERE status IN ('pending', 'unknown') AND kind IN ('capture', 'refund')
                   AND updated_at < $1 ORDER BY updated_at LIMIT $2",
                vec![Int(millis(before)), Int(limit)],
            ))
            .await?;
        rows.into_iter().map(decode_op).collect()
    }

    /// Operations a gateway should hold (for reconciliation).
    pub async fn gateway_ops(&self, gateway: &str) -> StoreResult<Vec<PaymentOp>> {
        let rows: Vec<OpRow> = self
            .all(Stmt::new(
                "SELECT key, order_id, kind, amount_cents, gateway, reference, status, attempts, error, created_at
                 FROM payment_ops WHERE gateway = $1",
                vec![Text(gateway.into())],
            ))
            .await?;
        rows.into_iter().map(decode_op).collect()
    }

    /// Each account under `prefix` (`restaurant:` or `rider:`): what the delivery splits gave
    /// it per period of `period_ms`, for periods ending by `before`.
    pub async fn period_earnings(
        &self,
        prefix: &str,
        period_ms: i64,
        before: DateTime<Utc>,
    ) -> StoreResult<Vec<PeriodEarnings>> {
        let rows: Vec<(String, i64, i64, i64, i64)> = self
            .all(Stmt::new(
                "SELECT e.account, e.at / $2 AS bucket, CAST(COUNT(*) AS BIGINT), CAST(SUM(e.amount_cents) AS BIGINT),
                        CAST(SUM(g.gross) AS BIGINT)
                 FROM ledger_entries e
                 JOIN (SELECT txn_id, -SUM(amount_cents) AS gross FROM ledger_entries
                       WHERE amount_cents < 0 AND kind IN ('capture', 'cash_delivery') GROUP BY txn_id) g
                   ON g.txn_id = e.txn_id
                 WHERE e.kind IN ('capture', 'cash_delivery') AND e.account LIKE $1 AND e.at < $3
                 GROUP BY e.account, e.at / $2 ORDER BY 2, 1",
                vec![
                    Text(format!("{prefix}%")),
                    Int(period_ms),
                    Int(millis(before)),
                ],
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| PeriodEarnings {
                account: r.0,
                bucket: r.1,
                deliveries: r.2,
                net_cents: r.3,
                gross_cents: r.4,
            })
            .collect())
    }

    /// Deliveries and earnings of an account (all time).
    pub async fn earnings(&self, account: &str) -> StoreResult<(i64, i64)> {
        let row: Option<(i64, i64)> = self
            .optional(Stmt::new(
                "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT)
                 FROM ledger_entries WHERE account = $1 AND kind IN ('capture', 'cash_delivery')",
                vec![Text(account.into())],
            ))
            .await?;
        Ok(row.unwrap_or((0, 0)))
    }

    /// What a rider collected in cash for the platform (the totals of its cash deliveries).
    pub async fn cash_collected(&self, account: &str) -> StoreResult<i64> {
        let row: Option<(i64,)> = self
            .optional(Stmt::new(
                "SELECT CAST(COALESCE(SUM(g.gross), 0) AS BIGINT) FROM ledger_entries e
                 JOIN (SELECT txn_id, -SUM(amount_cents) AS gross FROM ledger_entries
                       WHERE amount_cents < 0 AND kind = 'cash_delivery' GROUP BY txn_id) g
                   ON g.txn_id = e.txn_id
                 WHERE e.account = $1 AND e.kind = 'cash_delivery'",
                vec![Text(account.into())],
            ))
            .await?;
        Ok(row.map_or(0, |(c,)| c))
    }

    pub async fn payouts(&self, account: &str) -> StoreResult<Vec<PayoutRecord>> {
        let rows: Vec<PayoutRow> = self
            .all(Stmt::new(
                "SELECT id, account, period_start, period_end, deliveries, gross_cents, commission_cents, refunds_cents, net_cents, status, created_at
                 FROM payouts WHERE account = $1 ORDER BY period_start DESC",
                vec![Text(account.into())],
            ))
            .await?;
        debug_assert!(PAYOUT_COLUMNS.contains("net_cents"));
        rows.into_iter().map(decode_payout).collect()
    }

    pub async fn payout(&self, id: uuid::Uuid) -> StoreResult<Option<PayoutRecord>> {
        let row: Option<PayoutRow> = self
            .optional(Stmt::new(
                "SELECT id, account, period_start, period_end, deliveries, gross_cents, commission_cents, refunds_cents, net_cents, status, created_at
                 FROM payouts WHERE id = $1",
                vec![Text(id.to_string())],
            ))
            .await?;
        row.map(decode_payout).transpose()
    }
}
