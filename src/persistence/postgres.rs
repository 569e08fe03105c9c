//! PostgreSQL: the production store. Orders are partitioned by month (retention drops whole
//! partitions), and batches are written in bulk with arrays and UNNEST.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use sqlx::Transaction;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::batch::{Write, WriteUnit};
use super::records::{AttemptRecord, JobRecord, OutboxEvent, PurgeReport, RiderRecord};
use super::rows::{millis, order_json, tried_json};
use super::stage::{BulkWrites, stage};
use super::{BatchOutcome, StoreResult, purge_rows};
use crate::domain::ledger::LedgerTxn;
use crate::domain::payment::PaymentOp;
use crate::domain::{Order, OrderId};

/// How long a request waits for a pooled connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// Monthly partitions of `orders` known to exist (`year * 12 + month0`).
    partitions: Arc<Mutex<HashSet<i32>>>,
}

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let store = Self {
            pool,
            partitions: Arc::default(),
        };
        store.ensure_partition(Utc::now()).await?;
        Ok(store)
    }

    /// Creates the month partition holding `at` unless it exists.
    async fn ensure_partition(&self, at: DateTime<Utc>) -> StoreResult<()> {
        let month = month_index(at);
        if self.known_partitions().contains(&month) {
            return Ok(());
        }
        let (from, to) = month_bounds(month);
        // The name and bounds are computed from integers, never from input.
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF orders FOR VALUES FROM ({from}) TO ({to})",
            partition_name(month)
        );
        sqlx::query(sqlx::AssertSqlSafe(ddl))
            .execute(&self.pool)
            .await?;
        self.known_partitions().insert(month);
        Ok(())
    }

    fn known_partitions(&self) -> std::sync::MutexGuard<'_, HashSet<i32>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the partitions the batch's new orders need, then stages it.
    pub async fn stage_batch(
        &self,
        units: &[WriteUnit],
    ) -> StoreResult<(Transaction<'static, sqlx::Postgres>, BatchOutcome)> {
        for unit in units {
            for write in &unit.writes {
                if let Write::PlaceOrder { order, .. } = write {
                    self.ensure_partition(order.placed_at).await?;
                }
            }
        }
        stage(&self.pool, units).await
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Drops every month partition entirely before `cutoff`, then deletes what is left.
    pub async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        keys_before: DateTime<Utc>,
        outbox_before: DateTime<Utc>,
    ) -> StoreResult<PurgeReport> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relname = 'orders'",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut dropped = 0;
        let mut orders_deleted = 0;
        for name in names {
            let Some(month) = parse_partition_name(&name) else {
                continue;
            };
            let (_, to) = month_bounds(month);
            if to <= millis(cutoff) {
                let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM {}",
                    partition_name(month)
                )))
                .fetch_one(&self.pool)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP TABLE IF EXISTS {}",
                    partition_name(month)
                )))
                .execute(&self.pool)
                .await?;
                self.known_partitions().remove(&month);
                dropped += 1;
                orders_deleted += count as u64;
            }
        }
        let mut report = purge_rows(&self.pool, cutoff, keys_before, outbox_before).await?;
        report.orders_deleted += orders_deleted;
        report.partitions_dropped = dropped;
        Ok(report)
    }
}

/// Months since year 0, the partition key.
fn month_index(at: DateTime<Utc>) -> i32 {
    at.year() * 12 + at.month0() as i32
}

/// `[from, to)` of a month in Unix milliseconds.
fn month_bounds(month: i32) -> (i64, i64) {
    let start = |m: i32| {
        Utc.with_ymd_and_hms(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1, 0, 0, 0)
            .single()
            .map(|t| t.timestamp_millis())
            .unwrap_or(i64::MAX)
    };
    (start(month), start(month + 1))
}

fn partition_name(month: i32) -> String {
    format!(
        "orders_p{:04}{:02}",
        month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

fn parse_partition_name(name: &str) -> Option<i32> {
    let digits = name.strip_prefix("orders_p")?;
    if digits.len() != 6 {
        return None;
    }
    let year: i32 = digits[..4].parse().ok()?;
    let month: i32 = digits[4..].parse().ok()?;
    (1..=12).contains(&month).then_some(year * 12 + month - 1)
}

impl BulkWrites for sqlx::Postgres {
    // One statement whatever the batch size (arrays + UNNEST), so PostgreSQL plans it once.
    async fn insert_orders(
        tx: &mut Transaction<'static, Self>,
        orders: &[&Order],
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO orders (id, customer_id, restaurant_id, rider_id, stage, terminal, placed_at, updated_at, version, body)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[],
                                  $7::int8[], $8::int8[], $9::int8[], $10::text[])",
        )
        .bind(orders.iter().map(|o| o.id.to_string()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.customer_id.to_string()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.restaurant_id.to_string()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.rider_id.map(|r| r.to_string())).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.stage.as_str()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.stage.is_terminal()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| millis(o.placed_at)).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| millis(o.updated_at)).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.version as i64).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| order_json(o)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn insert_events(
        tx: &mut Transaction<'static, Self>,
        events: &[&OutboxEvent],
    ) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "INSERT INTO outbox (event_id, kind, order_id, version, customer_id, restaurant_id, rider_id, payload, created_at)
             SELECT e, k, o, v, c, r, d, p, t
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::int8[]) WITH ORDINALITY AS x(e, k, o, v, c, r, d, p, t, n)
             ORDER BY n
             RETURNING seq",
        )
        .bind(events.iter().map(|e| e.event_id.to_string()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.kind).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.order_id.to_string()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.version as i64).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.to.customer.to_string()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.to.restaurant.to_string()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.to.rider.map(|r| r.to_string())).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.payload.to_string()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| millis(e.at)).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await?)
    }

    async fn update_orders(
        tx: &mut Transaction<'static, Self>,
        orders: &[&Order],
    ) -> StoreResult<u64> {
        // Unnamed (not cached): planned with this batch's arrays each time. The cached generic
        // plan guessed their size and joined `orders` badly, tripling this statement's time
        // (pg_stat_statements under benches/load.sh).
        let done = sqlx::query(
            "UPDATE orders AS o SET rider_id = u.rider_id, stage = u.stage, terminal = u.terminal,
                    updated_at = u.updated_at, version = u.version, body = u.body
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::int8[], $6::int8[],
                         $7::text[], $8::int8[]) AS u(id, rider_id, stage, terminal, updated_at, version, body, placed_at)
             WHERE o.id = u.id AND o.placed_at = u.placed_at AND o.version < u.version",
        )
        .bind(orders.iter().map(|o| o.id.to_string()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.rider_id.map(|r| r.to_string())).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.stage.as_str()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.stage.is_terminal()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| millis(o.updated_at)).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.version as i64).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| order_json(o)).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| millis(o.placed_at)).collect::<Vec<_>>())
        .persistent(false)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected())
    }

    async fn save_riders(
        tx: &mut Transaction<'static, Self>,
        riders: &[&RiderRecord],
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "INSERT INTO riders (id, name, status, lat, lng, offer_order_id, offer_expires_at, order_id, rev, updated_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[],
                                  $7::int8[], $8::text[], $9::int8[], $10::int8[])
             ON CONFLICT (id) DO UPDATE SET
                name = excluded.name, status = excluded.status, lat = excluded.lat,
                lng = excluded.lng, offer_order_id = excluded.offer_order_id,
                offer_expires_at = excluded.offer_expires_at, order_id = excluded.order_id,
                rev = excluded.rev, updated_at = excluded.updated_at
             WHERE riders.rev < excluded.rev",
        )
        .bind(riders.iter().map(|r| r.id.to_string()).collect::<Vec<_>>())
        .bind(riders.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
        .bind(riders.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
        .bind(riders.iter().map(|r| r.location.map(|l| l.lat)).collect::<Vec<_>>())
        .bind(riders.iter().map(|r| r.location.map(|l| l.lng)).collect::<Vec<_>>())
        .bind(riders.iter().map(|r| r.offer.map(|(o, _)| o.to_string())).collect::<Vec<_>>())
        .bind(riders.iter().map(|r| r.offer.map(|(_, t)| millis(t))).collect::<Vec<_>>())
        .bind(riders.iter().map(|r| r.order_id.map(|o| o.to_string())).collect::<Vec<_>>())
        .bind(riders.iter().map(|r| r.rev).collect::<Vec<_>>())
        .bind(riders.iter().map(|r| millis(r.saved_at)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected())
    }

    async fn save_jobs(
        tx: &mut Transaction<'static, Self>,
        jobs: &[&JobRecord],
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO dispatch_jobs (order_id, tried, deadline, updated_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[])
             ON CONFLICT (order_id) DO UPDATE SET tried = excluded.tried, deadline = excluded.deadline,
                updated_at = excluded.updated_at",
        )
        .bind(jobs.iter().map(|j| j.order_id.to_string()).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| tried_json(j)).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| millis(j.deadline)).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| millis(j.saved_at)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn insert_ledger(
        tx: &mut Transaction<'static, Self>,
        txns: &[&LedgerTxn],
    ) -> StoreResult<()> {
        let rows: Vec<(&LedgerTxn, usize)> = txns
            .iter()
            .flat_map(|t| (0..t.postings.len()).map(move |line| (*t, line)))
            .collect();
        sqlx::query(
            "INSERT INTO ledger_entries (txn_id, line, kind, order_id, account, amount_cents, at)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[])
             ON CONFLICT (txn_id, line) DO NOTHING",
        )
        .bind(rows.iter().map(|(t, _)| t.id.to_string()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, l)| *l as i64).collect::<Vec<_>>())
        .bind(rows.iter().map(|(t, _)| t.kind.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(t, _)| t.order_id.map(|o| o.to_string())).collect::<Vec<_>>())
        .bind(rows.iter().map(|(t, l)| t.postings[*l].account.key()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(t, l)| t.postings[*l].amount.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|(t, _)| millis(t.at)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn save_payment_ops(
        tx: &mut Transaction<'static, Self>,
        ops: &[&PaymentOp],
    ) -> StoreResult<()> {
        // One row per key (the planner keeps the last write): ON CONFLICT DO UPDATE may not
        // touch a row twice in one statement.
        sqlx::query(
            "INSERT INTO payment_ops (key, order_id, kind, amount_cents, gateway, reference, status, attempts, error, created_at, updated_at)
             SELECT k, o, kd, a, g, r, s, n, e, t, t
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[],
                         $8::int8[], $9::text[], $10::int8[]) AS x(k, o, kd, a, g, r, s, n, e, t)
             ON CONFLICT (key) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
                error = excluded.error, reference = COALESCE(excluded.reference, payment_ops.reference),
                gateway = COALESCE(excluded.gateway, payment_ops.gateway), updated_at = excluded.updated_at
             WHERE payment_ops.status NOT IN ('succeeded', 'voided', 'declined') OR excluded.status = 'voided'",
        )
        .bind(ops.iter().map(|o| o.key.clone()).collect::<Vec<_>>())
        .bind(ops.iter().map(|o| o.order_id.map(|id| id.to_string())).collect::<Vec<_>>())
        .bind(ops.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>())
        .bind(ops.iter().map(|o| o.amount.0).collect::<Vec<_>>())
        .bind(ops.iter().map(|o| o.gateway.clone()).collect::<Vec<_>>())
        .bind(ops.iter().map(|o| o.reference.clone()).collect::<Vec<_>>())
        .bind(ops.iter().map(|o| o.status.as_str()).collect::<Vec<_>>())
        .bind(ops.iter().map(|o| i64::from(o.attempts)).collect::<Vec<_>>())
        .bind(ops.iter().map(|o| o.error.clone()).collect::<Vec<_>>())
        .bind(ops.iter().map(|o| millis(o.at)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn save_attempts(
        tx: &mut Transaction<'static, Self>,
        attempts: &[&AttemptRecord],
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO dispatch_attempts (order_id, n, rider_id, distance_m, offered_at, outcome)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::float8[], $5::int8[], $6::text[])
             ON CONFLICT (order_id, n) DO UPDATE SET outcome = excluded.outcome",
        )
        .bind(attempts.iter().map(|a| a.order_id.to_string()).collect::<Vec<_>>())
        .bind(attempts.iter().map(|a| i64::from(a.n)).collect::<Vec<_>>())
        .bind(attempts.iter().map(|a| a.rider_id.to_string()).collect::<Vec<_>>())
        .bind(attempts.iter().map(|a| a.distance_m).collect::<Vec<_>>())
        .bind(attempts.iter().map(|a| millis(a.offered_at)).collect::<Vec<_>>())
        .bind(attempts.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn delete_jobs(
        tx: &mut Transaction<'static, Self>,
        orders: &[OrderId],
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM dispatch_jobs WHERE order_id = ANY($1::text[])")
            .bind(orders.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_partitions_cover_each_month_exactly() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        let m = month_index(at);
        assert_eq!(partition_name(m), "orders_p202612");
        assert_eq!(parse_partition_name("orders_p202612"), Some(m));
        let (from, to) = month_bounds(m);
        assert!(from <= at.timestamp_millis() && at.timestamp_millis() < to);
        assert_eq!(
            to,
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(parse_partition_name("orders_default"), None);
    }
}
