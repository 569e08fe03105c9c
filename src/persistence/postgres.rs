//! PostgreSQL: the production store. Orders are partitioned by month (retention drops whole
//! partitions), and batches are written in bulk with arrays and UNNEST.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use sqlx::Transaction;
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgPoolOptions};

use super::batch::{UnitOutcome, Write, WriteUnit};
use super::planner::BatchPlan;
use super::records::{OutboxEvent, PurgeReport};
use super::rows::{millis, order_json, tried_json};
use super::stage::{BulkWrites, record_events, rows_only, stage};
use super::{BatchOutcome, StagedBatch, StoreError, StoreResult, purge_rows};
use crate::domain::Order;
use crate::domain::ledger::LedgerTxn;
use crate::domain::payment::PaymentOp;

/// How long a request waits for a pooled connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// A pooled connection idle longer than this is pinged before it is handed out; one used
/// more recently is not. sqlx pings every connection it hands out by default: a round trip,
/// and a wake-up of the PostgreSQL backend, before every write batch and every read, on a
/// pool whose connections are never idle for more than milliseconds under load. The price:
/// a connection PostgreSQL closed within a second of its last use (a restart, a failover)
/// fails the statement that picks it up, as a statement in flight then would have, and the
/// writer's outage probe brings writes back.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);
/// Percent of each orders page filled by inserts; the rest keeps its later versions.
const ORDERS_FILLFACTOR: u8 = 50;

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
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_IF_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
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
    ///
    /// Pages are left half empty ([`ORDERS_FILLFACTOR`]) so an order's later versions are
    /// heap-only updates on the same page, with no new index entries (migration 0013).
    async fn ensure_partition(&self, at: DateTime<Utc>) -> StoreResult<()> {
        let month = month_index(at);
        if self.known_partitions().contains(&month) {
            return Ok(());
        }
        let (from, to) = month_bounds(month);
        // The name and bounds are computed from integers, never from input.
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF orders FOR VALUES FROM ({from}) TO ({to}) \
             WITH (fillfactor = {ORDERS_FILLFACTOR})",
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

    /// Creates the partitions the batch's new orders need, then stages it: in a transaction
    /// left open for the writer to commit, or — a batch of rows only, the usual case — as
    /// one statement that commits as it returns.
    ///
    /// The one statement saves the `BEGIN` and `COMMIT` round trips, and the `BEGIN` sat on
    /// the writer's serial path: under load each round trip waits for the backend and then
    /// the writer to be scheduled again. The writer stages the next batch only after this
    /// call returns, so batches still commit in queue order. A connection lost during the
    /// call leaves the outcome unknown, as a connection lost during `COMMIT` always did:
    /// the writer answers such a batch as failed, never as committed.
    pub async fn stage_batch(&self, units: &[WriteUnit]) -> StoreResult<StagedBatch> {
        for unit in units {
            for write in &unit.writes {
                if let Write::PlaceOrder { order, .. } = write {
                    self.ensure_partition(order.placed_at).await?;
                }
            }
        }
        if let Some(plan) = rows_only(units) {
            let mut conn = self.pool.acquire().await?;
            let seqs = call_write_batch(&mut conn, &plan).await?;
            let mut outcome = BatchOutcome {
                units: vec![UnitOutcome::Applied; units.len()],
                events: Vec::with_capacity(seqs.len()),
            };
            record_events(seqs, &plan, &mut outcome)?;
            return Ok(StagedBatch::Committed(outcome));
        }
        let (tx, outcome) = stage(&self.pool, units).await?;
        Ok(StagedBatch::Postgres(tx, outcome))
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

/// What `dabba_write_batch` raises when a guarded snapshot changed no row.
const LOST_GUARD: &str = "DB001";

impl BulkWrites for sqlx::Postgres {
    /// One call of `dabba_write_batch` (migration 0012): every kind of row as arrays, so a
    /// batch costs one round trip here whatever it holds (it used to cost one per kind).
    async fn write_rows(
        tx: &mut Transaction<'static, Self>,
        plan: &BatchPlan<'_>,
    ) -> StoreResult<Vec<i64>> {
        call_write_batch(tx, plan).await
    }
}

/// Calls `dabba_write_batch` with the plan's rows; answers the outbox events' sequences.
async fn call_write_batch(conn: &mut PgConnection, plan: &BatchPlan<'_>) -> StoreResult<Vec<i64>> {
    let call = sqlx::query_scalar::<_, Vec<i64>>(WRITE_BATCH);
    let call = bind_orders(call, &plan.new_orders, &plan.saved_orders);
    let call = bind_dispatch(call, plan);
    let call = bind_money(call, &plan.ledger, &plan.payment_ops);
    let call = bind_events(call, &plan.events);
    call.fetch_one(conn).await.map_err(|e| match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(LOST_GUARD) => {
            StoreError::LostGuard(db.message().to_owned())
        }
        other => other.into(),
    })
}

const WRITE_BATCH: &str = "SELECT dabba_write_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
    $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28,
    $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41, $42, $43, $44, $45, $46,
    $47, $48, $49, $50, $51, $52, $53, $54, $55, $56, $57, $58, $59, $60, $61, $62, $63, $64,
    $65)";

type Call<'q> = sqlx::query::QueryScalar<'q, sqlx::Postgres, Vec<i64>, PgArguments>;

fn column<T, U>(rows: &[T], f: impl Fn(&T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

/// New orders ($1–$10), then saved orders ($11–$18).
fn bind_orders<'q>(call: Call<'q>, new: &[&Order], saved: &[&Order]) -> Call<'q> {
    call.bind(column(new, |o| o.id.to_string()))
        .bind(column(new, |o| o.customer_id.to_string()))
        .bind(column(new, |o| o.restaurant_id.to_string()))
        .bind(column(new, |o| o.rider_id.map(|r| r.to_string())))
        .bind(column(new, |o| o.stage.as_str()))
        .bind(column(new, |o| o.stage.is_terminal()))
        .bind(column(new, |o| millis(o.placed_at)))
        .bind(column(new, |o| millis(o.updated_at)))
        .bind(column(new, |o| o.version as i64))
        .bind(column(new, |o| order_json(o)))
        .bind(column(saved, |o| o.id.to_string()))
        .bind(column(saved, |o| o.rider_id.map(|r| r.to_string())))
        .bind(column(saved, |o| o.stage.as_str()))
        .bind(column(saved, |o| o.stage.is_terminal()))
        .bind(column(saved, |o| millis(o.updated_at)))
        .bind(column(saved, |o| o.version as i64))
        .bind(column(saved, |o| order_json(o)))
        .bind(column(saved, |o| millis(o.placed_at)))
}

/// Riders ($19–$28), saved jobs ($29–$32), deleted jobs ($33), attempts ($34–$39).
fn bind_dispatch<'q>(call: Call<'q>, plan: &BatchPlan<'_>) -> Call<'q> {
    let riders = &plan.riders;
    let jobs = &plan.saved_jobs;
    call.bind(column(riders, |r| r.id.to_string()))
        .bind(column(riders, |r| r.name.clone()))
        .bind(column(riders, |r| r.status.as_str()))
        .bind(column(riders, |r| r.location.map(|l| l.lat)))
        .bind(column(riders, |r| r.location.map(|l| l.lng)))
        .bind(column(riders, |r| r.offer.map(|(o, _)| o.to_string())))
        .bind(column(riders, |r| r.offer.map(|(_, t)| millis(t))))
        .bind(column(riders, |r| r.order_id.map(|o| o.to_string())))
        .bind(column(riders, |r| r.rev))
        .bind(column(riders, |r| millis(r.saved_at)))
        .bind(column(jobs, |j| j.order_id.to_string()))
        .bind(column(jobs, |j| tried_json(j)))
        .bind(column(jobs, |j| millis(j.deadline)))
        .bind(column(jobs, |j| millis(j.saved_at)))
        .bind(column(&plan.deleted_jobs, |o| o.to_string()))
        .bind(column(&plan.attempts, |a| a.order_id.to_string()))
        .bind(column(&plan.attempts, |a| i64::from(a.n)))
        .bind(column(&plan.attempts, |a| a.rider_id.to_string()))
        .bind(column(&plan.attempts, |a| a.distance_m))
        .bind(column(&plan.attempts, |a| millis(a.offered_at)))
        .bind(column(&plan.attempts, |a| a.outcome.as_str()))
}

/// Ledger lines ($40–$46), then gateway operations ($47–$56).
fn bind_money<'q>(call: Call<'q>, txns: &[&LedgerTxn], ops: &[&PaymentOp]) -> Call<'q> {
    let lines: Vec<(&LedgerTxn, usize)> = txns
        .iter()
        .flat_map(|t| (0..t.postings.len()).map(move |line| (*t, line)))
        .collect();
    call.bind(column(&lines, |(t, _)| t.id.to_string()))
        .bind(column(&lines, |(_, l)| *l as i64))
        .bind(column(&lines, |(t, _)| t.kind.as_str()))
        .bind(column(&lines, |(t, _)| t.order_id.map(|o| o.to_string())))
        .bind(column(&lines, |(t, l)| t.postings[*l].account.key()))
        .bind(column(&lines, |(t, l)| t.postings[*l].amount.0))
        .bind(column(&lines, |(t, _)| millis(t.at)))
        .bind(column(ops, |o| o.key.clone()))
        .bind(column(ops, |o| o.order_id.map(|id| id.to_string())))
        .bind(column(ops, |o| o.kind.as_str()))
        .bind(column(ops, |o| o.amount.0))
        .bind(column(ops, |o| o.gateway.clone()))
        .bind(column(ops, |o| o.reference.clone()))
        .bind(column(ops, |o| o.status.as_str()))
        .bind(column(ops, |o| i64::from(o.attempts)))
        .bind(column(ops, |o| o.error.clone()))
        .bind(column(ops, |o| millis(o.at)))
}

/// Outbox events ($57–$65), in commit order.
fn bind_events<'q>(call: Call<'q>, events: &'q [&OutboxEvent]) -> Call<'q> {
    call.bind(column(events, |e| e.event_id.to_string()))
        .bind(column(events, |e| e.kind))
        .bind(column(events, |e| e.order_id.to_string()))
        .bind(column(events, |e| e.version as i64))
        .bind(column(events, |e| e.to.customer.to_string()))
        .bind(column(events, |e| e.to.restaurant.to_string()))
        .bind(column(events, |e| e.to.rider.map(|r| r.to_string())))
        // Borrowed, not copied: a batch's payloads are most of its bytes.
        .bind(column(events, |e| &*e.payload))
        .bind(column(events, |e| millis(e.at)))
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
