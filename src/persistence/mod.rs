//! Durable state: one [`Store`] over two implementations, PostgreSQL (production) and SQLite
//! (the embedded default). Both run the same SQL text (`$n` placeholders, Unix-millisecond
//! times, text UUIDs); each dialect keeps its own migrations under `migrations/`.
//!
//! Every write an HTTP 2xx depends on is awaited before the reply. Snapshot writes carry a
//! monotonic version (`orders.version`, `riders.rev`) and never overwrite a newer row, so
//! writes issued concurrently by different tasks cannot reorder state.

mod batch;
mod instance_lock;
mod records;
mod sql;
pub mod writer;

use chrono::{DateTime, Utc};

pub use batch::{Write, WriteUnit};
pub use instance_lock::InstanceLock;
pub use records::{
    CommittedEvent, CustomerRecord, HistoryCursor, JobRecord, OutboxEvent, PurgeReport,
    RatingRecord, Recipients, RestaurantRecord, RiderRecord, SavedResponse,
};
pub use sql::{PostgresStore, SqliteStore};

use crate::domain::{CustomerId, Order, OrderId, RestaurantId};

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
    /// Another server holds the database (see [`InstanceLock`]).
    #[error("{0}; one server per database until zones arrive: stop it or point this one elsewhere")]
    InUse(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What happened to an `Idempotency-Key` on placement.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    Inserted,
    /// The key was used before: the first request's hash and order.
    Replayed {
        request_hash: String,
        order_id: OrderId,
    },
}

/// What a committed batch produced.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Per unit: the placement outcome if the unit placed an order.
    pub placements: Vec<Option<Placement>>,
    pub events: Vec<CommittedEvent>,
}

/// A batch whose writes are done but not committed; dropping it rolls back.
pub enum StagedBatch {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>, BatchOutcome),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>, BatchOutcome),
}

impl StagedBatch {
    pub async fn commit(self) -> StoreResult<BatchOutcome> {
        let commit = async {
            match self {
                StagedBatch::Sqlite(tx, outcome) => tx.commit().await.map(|_| outcome),
                StagedBatch::Postgres(tx, outcome) => tx.commit().await.map(|_| outcome),
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, commit).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::Timeout),
        }
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

macro_rules! delegate {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        let call = async {
            match $self {
                Store::Sqlite(s) => s.$method($($arg),*).await,
                Store::Postgres(s) => s.$method($($arg),*).await,
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout),
        }
    }};
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

    pub async fn ping(&self) -> StoreResult<()> {
        delegate!(self.ping())
    }

    pub async fn insert_restaurant(&self, r: &RestaurantRecord) -> StoreResult<()> {
        delegate!(self.insert_restaurant(r))
    }

    pub async fn set_restaurant_open(&self, id: RestaurantId, open: bool) -> StoreResult<()> {
        delegate!(self.set_restaurant_open(id, open))
    }

    pub async fn restaurants(&self) -> StoreResult<Vec<RestaurantRecord>> {
        delegate!(self.restaurants())
    }

    pub async fn insert_customer(&self, c: &CustomerRecord) -> StoreResult<()> {
        delegate!(self.insert_customer(c))
    }

    pub async fn riders(&self) -> StoreResult<Vec<RiderRecord>> {
        delegate!(self.riders())
    }

    pub async fn idempotent_placement(
        &self,
        customer: CustomerId,
        key: &str,
    ) -> StoreResult<Option<(String, OrderId)>> {
        delegate!(self.idempotent_placement(customer, key))
    }

    pub async fn order(&self, id: OrderId) -> StoreResult<Option<Order>> {
        delegate!(self.order(id))
    }

    /// Runs units of work in one transaction left open for [`StagedBatch::commit`], so the
    /// writer can stage the next batch while the previous one commits.
    pub async fn stage_batch(&self, units: &[WriteUnit]) -> StoreResult<StagedBatch> {
        let staged = async {
            Ok(match self {
                Store::Sqlite(s) => {
                    let (tx, outcome) = s.stage_batch(units).await?;
                    StagedBatch::Sqlite(tx, outcome)
                }
                Store::Postgres(s) => {
                    let (tx, outcome) = s.stage_batch(units).await?;
                    StagedBatch::Postgres(tx, outcome)
                }
            })
        };
        tokio::time::timeout(CALL_TIMEOUT, staged)
            .await
            .unwrap_or(Err(StoreError::Timeout))
    }

    /// Commits units of work in one transaction.
    pub async fn apply_batch(&self, units: &[WriteUnit]) -> StoreResult<BatchOutcome> {
        self.stage_batch(units).await?.commit().await
    }

    pub async fn saved_response(
        &self,
        subject: &str,
        key: &str,
    ) -> StoreResult<Option<SavedResponse>> {
        delegate!(self.saved_response(subject, key))
    }

    /// Saves the first response for `(subject, key)`; `false` if one was already there.
    pub async fn save_response(
        &self,
        subject: &str,
        key: &str,
        response: &SavedResponse,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        delegate!(self.save_response(subject, key, response, at))
    }

    pub async fn jobs(&self) -> StoreResult<Vec<JobRecord>> {
        delegate!(self.jobs())
    }

    pub async fn cursor(&self, consumer: &str) -> StoreResult<i64> {
        delegate!(self.cursor(consumer))
    }

    pub async fn events_after(&self, seq: i64, limit: i64) -> StoreResult<Vec<CommittedEvent>> {
        delegate!(self.events_after(seq, limit))
    }

    /// Removes orders placed before `cutoff` (dropping whole partitions on PostgreSQL),
    /// idempotency keys before `keys_before` and consumed outbox events before `outbox_before`.
    pub async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        keys_before: DateTime<Utc>,
        outbox_before: DateTime<Utc>,
    ) -> StoreResult<PurgeReport> {
        delegate!(self.purge(cutoff, keys_before, outbox_before))
    }

    pub async fn unfinished_orders(&self) -> StoreResult<Vec<Order>> {
        delegate!(self.unfinished_orders())
    }

    /// A customer's orders placed after `since`, newest first, before `cursor`.
    pub async fn customer_orders(
        &self,
        customer: CustomerId,
        since: DateTime<Utc>,
        cursor: Option<HistoryCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Order>> {
        delegate!(self.customer_orders(customer, since, cursor, limit))
    }

    /// Records a rating and folds it into the restaurant's; `false` if the order was rated.
    pub async fn add_rating(&self, rating: &RatingRecord) -> StoreResult<bool> {
        delegate!(self.add_rating(rating))
    }
}
