//! Durable state: one [`Store`] over two implementations, PostgreSQL (production) and SQLite
//! (the embedded default). Both run the same SQL text (`$n` placeholders, Unix-millisecond
//! times, text UUIDs); each dialect keeps its own migrations under `migrations/`.
//!
//! Every write an HTTP 2xx depends on is awaited before the reply. Snapshot writes carry a
//! monotonic version (`orders.version`, `riders.rev`) and never overwrite a newer row, so
//! writes issued concurrently by different tasks cannot reorder state.

mod records;
mod sql;

use chrono::{DateTime, Utc};

pub use records::{CustomerRecord, HistoryCursor, RatingRecord, RestaurantRecord, RiderRecord};
pub use sql::{PostgresStore, SqliteStore};

use crate::domain::{CustomerId, Order, OrderId, RestaurantId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
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

/// Which database the engine keeps its state in.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

macro_rules! delegate {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Sqlite(s) => s.$method($($arg),*).await,
            Store::Postgres(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Connects to `postgres://…` or `sqlite://…` and applies the migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Store::Postgres(PostgresStore::connect(url).await?)
        } else {
            Store::Sqlite(SqliteStore::connect(url).await?)
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

    pub async fn customer(&self, id: CustomerId) -> StoreResult<Option<CustomerRecord>> {
        delegate!(self.customer(id))
    }

    /// Inserts or updates a rider unless the stored row has a newer `rev`.
    pub async fn save_rider(&self, r: &RiderRecord) -> StoreResult<()> {
        delegate!(self.save_rider(r))
    }

    pub async fn riders(&self) -> StoreResult<Vec<RiderRecord>> {
        delegate!(self.riders())
    }

    /// Inserts a new order; with an idempotency key, atomically with the key.
    pub async fn insert_order(
        &self,
        order: &Order,
        idempotency: Option<(&str, &str)>,
    ) -> StoreResult<Placement> {
        delegate!(self.insert_order(order, idempotency))
    }

    pub async fn idempotent_placement(
        &self,
        customer: CustomerId,
        key: &str,
    ) -> StoreResult<Option<(String, OrderId)>> {
        delegate!(self.idempotent_placement(customer, key))
    }

    /// Writes an order snapshot unless the stored one has the same or a newer version.
    pub async fn save_order(&self, order: &Order) -> StoreResult<()> {
        delegate!(self.save_order(order))
    }

    pub async fn order(&self, id: OrderId) -> StoreResult<Option<Order>> {
        delegate!(self.order(id))
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
