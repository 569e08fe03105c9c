//! Durable state: one [`Store`] over two dialects, PostgreSQL (production, `postgres.rs`) and
//! SQLite (the embedded default, `sqlite.rs`). Statements that read the same in both are
//! written once (`statements.rs`), rows are decoded in one place (`rows.rs`), and what a batch
//! writes is planned without a database (`planner.rs`); each dialect keeps its own migrations
//! under `migrations/` and its own bulk writes.
//!
//! Every write goes through the group-commit [`writer`]. Snapshot writes carry a monotonic
//! version (`orders.version`, `riders.rev`); one that is not newer than the stored row fails
//! its batch instead of being silently dropped.

pub mod audit;
mod batch;
mod dialect;
mod instance_lock;
mod log;
pub mod money;
mod planner;
mod postgres;
pub mod read_cache;
mod records;
pub mod recurring;
mod rows;
mod sqlite;
mod stage;
mod statements;
pub mod writer;

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

pub use batch::{UnitOutcome, Write, WriteUnit};
pub use instance_lock::InstanceLock;
pub use postgres::PostgresStore;
pub use records::{
    AttemptOutcome, AttemptRecord, CommittedEvent, CustomerRecord, DeadLetterRecord, EVENT_KINDS,
    HistoryCursor, JobRecord, LogReader, OutboxEvent, PurgeReport, RatingRecord, Recipients,
    RiderRecord, SavedResponse, event_kind,
};
pub use sqlite::SqliteStore;
pub use statements::SubjectTable;

use crate::domain::{CustomerId, Order, OrderId, Restaurant};
use dialect::{Dialect, Stmt, execute, fetch_all, fetch_optional};
use rows::{KeyRow, OrderRow, decode_all};
use statements as sql;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("storage did not answer in time")]
    Timeout,
    #[error("storage is unavailable (recovering)")]
    Down,
    #[error("the write queue is full")]
    Overloaded,
    /// The commit did not confirm in time although the database answers: overload, and the
    /// write may or may not have landed (a retry with an idempotency key is safe).
    #[error("the write did not confirm in time (overloaded)")]
    Unconfirmed,
    /// A snapshot was not newer than the stored one: its write did not land.
    #[error("a newer snapshot is already stored: {0}")]
    LostGuard(String),
    /// Another server holds the database (see [`InstanceLock`]).
    #[error("{0}; one server per database until zones arrive: stop it or point this one elsewhere")]
    InUse(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether a failed write may nevertheless have landed (or a newer one is stored): whoever
    /// holds the state in memory must reload it from the store. (A batch that failed on an
    /// outage rolled back: the actor keeps its snapshot and serves reads meanwhile.)
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            StoreError::LostGuard(_) | StoreError::Unconfirmed | StoreError::Timeout
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a committed batch produced.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Per unit, in order.
    pub units: Vec<UnitOutcome>,
    pub events: Vec<CommittedEvent>,
}

/// A batch whose writes are done but not committed (dropping it rolls back), or one that
/// committed as it was written (a rows-only batch on PostgreSQL, one statement).
pub enum StagedBatch {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>, BatchOutcome),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>, BatchOutcome),
    Committed(BatchOutcome),
}

impl StagedBatch {
    pub async fn commit(self) -> StoreResult<BatchOutcome> {
        bounded(async {
            Ok(match self {
                StagedBatch::Sqlite(tx, outcome) => tx.commit().await.map(|_| outcome)?,
                StagedBatch::Postgres(tx, outcome) => tx.commit().await.map(|_| outcome)?,
                StagedBatch::Committed(outcome) => outcome,
            })
        })
        .await
    }
}

/// Which database the engine keeps its state in.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// No store call may hang a request: past this, it fails as unavailable.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn bounded<T>(call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or(Err(StoreError::Timeout))
}

/// A row type both dialects decode.
trait AnyRow: Send + Unpin + for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> {}
impl<R: Send + Unpin + for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow>> AnyRow for R {}

/// Deletes rows past retention (orders, ratings, idempotency keys, consumed outbox events).
async fn purge_rows<DB>(
    pool: &sqlx::Pool<DB>,
    orders_before: DateTime<Utc>,
    keys_before: DateTime<Utc>,
    outbox_before: DateTime<Utc>,
) -> StoreResult<PurgeReport>
where
    DB: Dialect,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
{
    let orders = execute(pool, sql::purge_orders(orders_before)).await?;
    execute(pool, sql::purge_ratings(orders_before)).await?;
    let keys = execute(pool, sql::purge_keys(keys_before)).await?
        + execute(pool, sql::purge_responses(keys_before)).await?;
    let outbox = execute(pool, sql::purge_outbox(outbox_before)).await?;
    Ok(PurgeReport {
        orders_deleted: orders,
        partitions_dropped: 0,
        outbox_deleted: outbox,
        idempotency_keys_deleted: keys,
    })
}

impl Store {
    /// Connects to `postgres://…` or `sqlite://…` and applies the migrations.
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Self> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Store::Postgres(PostgresStore::connect(url, max_connections).await?)
        } else {
            Store::Sqlite(SqliteStore::connect(url, max_connections).await?)
        };
        Ok(store)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    async fn all<R: AnyRow>(&self, stmt: Stmt) -> StoreResult<Vec<R>> {
        bounded(async {
            match self {
                Store::Sqlite(s) => fetch_all(s.pool(), stmt).await,
                Store::Postgres(s) => fetch_all(s.pool(), stmt).await,
            }
        })
        .await
    }

    async fn optional<R: AnyRow>(&self, stmt: Stmt) -> StoreResult<Option<R>> {
        bounded(async {
            match self {
                Store::Sqlite(s) => fetch_optional(s.pool(), stmt).await,
                Store::Postgres(s) => fetch_optional(s.pool(), stmt).await,
            }
        })
        .await
    }

    pub async fn ping(&self) -> StoreResult<()> {
        self.all::<(i32,)>(sql::ping()).await.map(|_| ())
    }

    pub async fn restaurants(&self) -> StoreResult<Vec<Restaurant>> {
        decode_all::<rows::RestaurantRow, _>(self.all(sql::restaurants()).await?)
    }

    pub async fn riders(&self) -> StoreResult<Vec<RiderRecord>> {
        decode_all::<rows::RiderRow, _>(self.all(sql::riders()).await?)
    }

    pub async fn jobs(&self) -> StoreResult<Vec<JobRecord>> {
        decode_all::<rows::JobRow, _>(self.all(sql::jobs()).await?)
    }

    pub async fn cursor(&self, consumer: &str) -> StoreResult<i64> {
        let seq: Option<(i64,)> = self.optional(sql::cursor(consumer)).await?;
        Ok(seq.map_or(0, |(s,)| s))
    }

    /// Outbox events after `seq`, oldest first.
    pub async fn events_after(&self, seq: i64, limit: i64) -> StoreResult<Vec<CommittedEvent>> {
        decode_all::<rows::EventRow, _>(self.all(sql::events_after(seq, limit)).await?)
    }

    pub async fn idempotent_placement(
        &self,
        customer: CustomerId,
        key: &str,
    ) -> StoreResult<Option<(String, OrderId)>> {
        let row: Option<KeyRow> = self
            .optional(sql::idempotent_placement(customer, key))
            .await?;
        row.map(KeyRow::decode).transpose()
    }

    pub async fn saved_response(
        &self,
        subject: &str,
        key: &str,
    ) -> StoreResult<Option<SavedResponse>> {
        let row: Option<rows::ResponseRow> =
            self.optional(sql::saved_response(subject, key)).await?;
        row.map(SavedResponse::try_from).transpose()
    }

    /// Whether a customer or rider with this id is registered.
    pub async fn subject_exists(&self, table: SubjectTable, id: uuid::Uuid) -> StoreResult<bool> {
        let row: Option<(i32,)> = self.optional(sql::subject_exists(table, id)).await?;
        Ok(row.is_some())
    }

    pub async fn order(&self, id: OrderId) -> StoreResult<Option<Order>> {
        let row: Option<OrderRow> = self.optional(sql::order(id)).await?;
        row.map(Order::try_from).transpose()
    }

    /// A restaurant's orders in `stage` since `since`, or its unfinished ones.
    pub async fn restaurant_orders(
        &self,
        id: crate::domain::RestaurantId,
        stage: Option<crate::domain::Stage>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<Order>> {
        let stmt = match stage {
            Some(stage) => sql::restaurant_orders_in(id, stage.as_str(), since),
            None => sql::restaurant_open_orders(id),
        };
        decode_all::<OrderRow, _>(self.all(stmt).await?)
    }

    /// Every offer of an order, in the order they were made.
    pub async fn dispatch_attempts(&self, order: OrderId) -> StoreResult<Vec<AttemptRecord>> {
        let rows: Vec<(i64, String, f64, i64, String)> = self
            .all(Stmt::new(
                "SELECT n, rider_id, distance_m, offered_at, outcome FROM dispatch_attempts
                 WHERE order_id = $1 ORDER BY n",
                vec![dialect::Param::Text(order.to_string())],
            ))
            .await?;
        rows.into_iter()
            .map(|(n, rider, distance_m, at, outcome)| {
                Ok(AttemptRecord {
                    order_id: order,
                    n: u32::try_from(n).unwrap_or(u32::MAX),
                    rider_id: rows::parse_id(&rider)?,
                    distance_m,
                    offered_at: rows::from_millis(at)?,
                    outcome: AttemptOutcome::parse(&outcome)
                        .ok_or_else(|| StoreError::Corrupt(format!("attempt outcome {outcome}")))?,
                })
            })
            .collect()
    }

    pub async fn unfinished_orders(&self) -> StoreResult<Vec<Order>> {
        decode_all::<OrderRow, _>(self.all(sql::unfinished_orders()).await?)
    }

    /// A customer's orders placed after `since`, newest first, before `cursor`.
    pub async fn customer_orders(
        &self,
        customer: CustomerId,
        since: DateTime<Utc>,
        cursor: Option<HistoryCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Order>> {
        let stmt = sql::customer_orders(customer, since, cursor, limit);
        decode_all::<OrderRow, _>(self.all(stmt).await?)
    }

    /// Runs units of work in one transaction left open for [`StagedBatch::commit`], so the
    /// writer can stage the next batch while the previous one commits.
    pub async fn stage_batch(&self, units: &[WriteUnit]) -> StoreResult<StagedBatch> {
        bounded(async {
            Ok(match self {
                Store::Sqlite(s) => {
                    let (tx, outcome) = s.stage_batch(units).await?;
                    StagedBatch::Sqlite(tx, outcome)
                }
                Store::Postgres(s) => s.stage_batch(units).await?,
            })
        })
        .await
    }

    /// Whether [`Store::stage_batch`] commits `units` as it writes them (PostgreSQL, a batch
    /// of bulk rows only): the writer must let the commit in flight finish first, so that
    /// batches still commit in queue order.
    pub fn commits_as_staged(&self, units: &[WriteUnit]) -> bool {
        matches!(self, Store::Postgres(_)) && batch::is_rows_only(units)
    }

    /// Commits units of work in one transaction.
    pub async fn apply_batch(&self, units: &[WriteUnit]) -> StoreResult<BatchOutcome> {
        self.stage_batch(units).await?.commit().await
    }

    /// Removes orders placed before `cutoff` (dropping whole partitions on PostgreSQL),
    /// idempotency keys before `keys_before` and consumed outbox events before `outbox_before`.
    pub async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        keys_before: DateTime<Utc>,
        outbox_before: DateTime<Utc>,
    ) -> StoreResult<PurgeReport> {
        bounded(async {
            match self {
                Store::Sqlite(s) => s.purge(cutoff, keys_before, outbox_before).await,
                Store::Postgres(s) => s.purge(cutoff, keys_before, outbox_before).await,
            }
        })
        .await
    }
}
