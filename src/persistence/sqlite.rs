//! SQLite: the embedded default. In process, so a statement per row costs no round trip;
//! WAL lets readers run beside the writer, and `synchronous = FULL` makes a commit durable.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Transaction;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::batch::WriteUnit;
use super::dialect::execute;
use super::planner::BatchPlan;
use super::records::{AttemptRecord, JobRecord, OutboxEvent, PurgeReport, RiderRecord};
use super::rows::{millis, order_json, tried_json};
use super::stage::{BULK_ROWS, BulkWrites, guard, stage};
use super::{BatchOutcome, StoreResult, purge_rows};
use crate::domain::ledger::LedgerTxn;
use crate::domain::payment::PaymentOp;
use crate::domain::{Order, OrderId};

/// How long a statement waits for the file lock, or a request for a connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        // FULL: a commit is on disk before the reply; WAL lets readers run beside the writer.
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.clamp(2, 8))
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    pub async fn stage_batch(
        &self,
        units: &[WriteUnit],
    ) -> StoreResult<(Transaction<'static, sqlx::Sqlite>, BatchOutcome)> {
        stage(&self.pool, units).await
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        keys_before: DateTime<Utc>,
        outbox_before: DateTime<Utc>,
    ) -> StoreResult<PurgeReport> {
        purge_rows(&self.pool, cutoff, keys_before, outbox_before).await
    }
}

impl BulkWrites for sqlx::Sqlite {
    /// In process, so one statement per kind of row (or per row) costs no round trip.
    async fn write_rows(
        tx: &mut Transaction<'static, Self>,
        plan: &BatchPlan<'_>,
    ) -> StoreResult<Vec<i64>> {
        for chunk in plan.new_orders.chunks(BULK_ROWS) {
            insert_orders(tx, chunk).await?;
        }
        for chunk in plan.saved_orders.chunks(BULK_ROWS) {
            let changed = update_orders(tx, chunk).await?;
            guard("order", "version", chunk.len(), changed)?;
        }
        for chunk in plan.riders.chunks(BULK_ROWS) {
            let changed = save_riders(tx, chunk).await?;
            guard("rider", "revision", chunk.len(), changed)?;
        }
        save_jobs(tx, &plan.saved_jobs).await?;
        delete_jobs(tx, &plan.deleted_jobs).await?;
        insert_ledger(tx, &plan.ledger).await?;
        save_payment_ops(tx, &plan.payment_ops).await?;
        save_attempts(tx, &plan.attempts).await?;
        let mut seqs = Vec::with_capacity(plan.events.len());
        for chunk in plan.events.chunks(BULK_ROWS) {
            seqs.extend(insert_events(tx, chunk).await?);
        }
        Ok(seqs)
    }
}

async fn insert_orders(
    tx: &mut Transaction<'static, sqlx::Sqlite>,
    orders: &[&Order],
) -> StoreResult<()> {
    let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO orders (id, customer_id, restaurant_id, rider_id, stage, terminal, placed_at, updated_at, version, body) ",
    );
    insert.push_values(orders, |mut row, order| {
        row.push_bind(order.id.to_string())
            .push_bind(order.customer_id.to_string())
            .push_bind(order.restaurant_id.to_string())
            .push_bind(order.rider_id.map(|r| r.to_string()))
            .push_bind(order.stage.as_str())
            .push_bind(order.stage.is_terminal())
            .push_bind(millis(order.placed_at))
            .push_bind(millis(order.updated_at))
            .push_bind(order.version as i64)
            .push_bind(order_json(order));
    });
    insert.build().execute(&mut **tx).await?;
    Ok(())
}

async fn insert_events(
    tx: &mut Transaction<'static, sqlx::Sqlite>,
    events: &[&OutboxEvent],
) -> StoreResult<Vec<i64>> {
    let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO outbox (event_id, kind, order_id, version, customer_id, restaurant_id, rider_id, payload, created_at) ",
    );
    insert.push_values(events, |mut row, e| {
        row.push_bind(e.event_id.to_string())
            .push_bind(e.kind)
            .push_bind(e.order_id.to_string())
            .push_bind(e.version as i64)
            .push_bind(e.to.customer.to_string())
            .push_bind(e.to.restaurant.to_string())
            .push_bind(e.to.rider.map(|r| r.to_string()))
            .push_bind(e.payload.to_string())
            .push_bind(millis(e.at));
    });
    insert.push(" RETURNING seq");
    Ok(insert.build_query_scalar().fetch_all(&mut **tx).await?)
}

// SQLite runs in process: a statement per row costs no round trip.
async fn update_orders(
    tx: &mut Transaction<'static, sqlx::Sqlite>,
    orders: &[&Order],
) -> StoreResult<u64> {
    let mut changed = 0;
    for order in orders {
        changed += sqlx::query(
            "UPDATE orders SET rider_id = $2, stage = $3, terminal = $4, updated_at = $5, version = $6, body = $7
             WHERE id = $1 AND placed_at = $8 AND version < $6",
        )
        .bind(order.id.to_string())
        .bind(order.rider_id.map(|r| r.to_string()))
        .bind(order.stage.as_str())
        .bind(order.stage.is_terminal())
        .bind(millis(order.updated_at))
        .bind(order.version as i64)
        .bind(order_json(order))
        .bind(millis(order.placed_at))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(changed)
}

async fn save_riders(
    tx: &mut Transaction<'static, sqlx::Sqlite>,
    riders: &[&RiderRecord],
) -> StoreResult<u64> {
    let mut changed = 0;
    for r in riders {
        changed += sqlx::query(
            "INSERT INTO riders (id, name, status, lat, lng, offer_order_id, offer_expires_at, order_id, rev, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET
                name = excluded.name, status = excluded.status, lat = excluded.lat,
                lng = excluded.lng, offer_order_id = excluded.offer_order_id,
                offer_expires_at = excluded.offer_expires_at, order_id = excluded.order_id,
                rev = excluded.rev, updated_at = excluded.updated_at
             WHERE riders.rev < excluded.rev",
        )
        .bind(r.id.to_string())
        .bind(&r.name)
        .bind(r.status.as_str())
        .bind(r.location.map(|l| l.lat))
        .bind(r.location.map(|l| l.lng))
        .bind(r.offer.map(|(o, _)| o.to_string()))
        .bind(r.offer.map(|(_, t)| millis(t)))
        .bind(r.order_id.map(|o| o.to_string()))
        .bind(r.rev)
        .bind(millis(r.saved_at))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(changed)
}

async fn save_jobs(
    tx: &mut Transaction<'static, sqlx::Sqlite>,
    jobs: &[&JobRecord],
) -> StoreResult<()> {
    for j in jobs {
        sqlx::query(
            "INSERT INTO dispatch_jobs (order_id, tried, deadline, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (order_id) DO UPDATE SET tried = excluded.tried, deadline = excluded.deadline,
                updated_at = excluded.updated_at",
        )
        .bind(j.order_id.to_string())
        .bind(tried_json(j))
        .bind(millis(j.deadline))
        .bind(millis(j.saved_at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn insert_ledger(
    tx: &mut Transaction<'static, sqlx::Sqlite>,
    txns: &[&LedgerTxn],
) -> StoreResult<()> {
    for stmt in txns.iter().flat_map(|t| super::money::post_ledger(t)) {
        execute(&mut **tx, stmt).await?;
    }
    Ok(())
}

async fn save_payment_ops(
    tx: &mut Transaction<'static, sqlx::Sqlite>,
    ops: &[&PaymentOp],
) -> StoreResult<()> {
    for op in ops {
        execute(&mut **tx, super::money::save_op(op)).await?;
    }
    Ok(())
}

async fn save_attempts(
    tx: &mut Transaction<'static, sqlx::Sqlite>,
    attempts: &[&AttemptRecord],
) -> StoreResult<()> {
    for a in attempts {
        sqlx::query(
            "INSERT INTO dispatch_attempts (order_id, n, rider_id, distance_m, offered_at, outcome)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (order_id, n) DO UPDATE SET outcome = excluded.outcome",
        )
        .bind(a.order_id.to_string())
        .bind(i64::from(a.n))
        .bind(a.rider_id.to_string())
        .bind(a.distance_m)
        .bind(millis(a.offered_at))
        .bind(a.outcome.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn delete_jobs(
    tx: &mut Transaction<'static, sqlx::Sqlite>,
    orders: &[OrderId],
) -> StoreResult<()> {
    for order_id in orders {
        sqlx::query("DELETE FROM dispatch_jobs WHERE order_id = $1")
            .bind(order_id.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
