//! The two SQL stores. Their bodies are the same text, expanded once per driver by
//! `sql_store!`, so the dialects cannot drift apart; only connecting and migrating differ.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::batch::{Write, WriteUnit};
use super::records::{
    CommittedEvent, JobRecord, OutboxEvent, PurgeReport, Recipients, SavedResponse,
};
use super::{
    BatchOutcome, CustomerRecord, HistoryCursor, Placement, RatingRecord, RestaurantRecord,
    RiderRecord, StoreError, StoreResult,
};
use crate::domain::{CustomerId, LatLng, Order, OrderId, RestaurantId, RiderId, RiderStatus};

#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// Monthly partitions of `orders` known to exist (`year * 12 + month0`).
    partitions: Arc<Mutex<HashSet<i32>>>,
}

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(3))
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

    async fn prepare_batch(&self, units: &[WriteUnit]) -> StoreResult<()> {
        for unit in units {
            for write in &unit.writes {
                if let Write::PlaceOrder { order, .. } = write {
                    self.ensure_partition(order.placed_at).await?;
                }
            }
        }
        Ok(())
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
        let mut report = self.purge_rows(cutoff, keys_before, outbox_before).await?;
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

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        // FULL: a commit is on disk before the reply; WAL lets readers run beside the writer.
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.clamp(2, 8))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    async fn prepare_batch(&self, _units: &[WriteUnit]) -> StoreResult<()> {
        Ok(())
    }

    pub async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        keys_before: DateTime<Utc>,
        outbox_before: DateTime<Utc>,
    ) -> StoreResult<PurgeReport> {
        self.purge_rows(cutoff, keys_before, outbox_before).await
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> StoreResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {ms}")))
}

fn parse_id<T: FromStr>(s: &str) -> StoreResult<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad id {s:?}")))
}

fn order_from_json(body: &str) -> StoreResult<Order> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("order body: {e}")))
}

fn tried_json(job: &JobRecord) -> String {
    let tried: Vec<String> = job.tried.iter().map(|r| r.to_string()).collect();
    serde_json::to_string(&tried).unwrap_or_else(|_| "[]".into())
}

fn order_json(order: &Order) -> String {
    // Order holds only plain data with string keys: serialising it cannot fail.
    serde_json::to_string(order).expect("order serialises")
}

fn event_kind(kind: &str) -> StoreResult<&'static str> {
    match kind {
        "order.updated" => Ok("order.updated"),
        other => Err(StoreError::Corrupt(format!("event kind {other:?}"))),
    }
}

fn location(lat: Option<f64>, lng: Option<f64>) -> Option<LatLng> {
    LatLng::parse(lat?, lng?).ok()
}

impl PostgresStore {
    /// One statement whatever the batch size (arrays + UNNEST), so PostgreSQL plans it once.
    async fn insert_orders(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
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
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
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
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        orders: &[&Order],
    ) -> StoreResult<()> {
        sqlx::query(
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
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn save_riders(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        riders: &[&RiderRecord],
    ) -> StoreResult<()> {
        let now = millis(Utc::now());
        sqlx::query(
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
        .bind(riders.iter().map(|_| now).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn save_jobs(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        jobs: &[&JobRecord],
    ) -> StoreResult<()> {
        let now = millis(Utc::now());
        sqlx::query(
            "INSERT INTO dispatch_jobs (order_id, tried, deadline, updated_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[])
             ON CONFLICT (order_id) DO UPDATE SET tried = excluded.tried, deadline = excluded.deadline,
                updated_at = excluded.updated_at",
        )
        .bind(jobs.iter().map(|j| j.order_id.to_string()).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| tried_json(j)).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| millis(j.deadline)).collect::<Vec<_>>())
        .bind(jobs.iter().map(|_| now).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn delete_jobs(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        orders: &[OrderId],
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM dispatch_jobs WHERE order_id = ANY($1::text[])")
            .bind(orders.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

impl SqliteStore {
    async fn insert_orders(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
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
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
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
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        orders: &[&Order],
    ) -> StoreResult<()> {
        for order in orders {
            sqlx::query(
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
            .await?;
        }
        Ok(())
    }

    async fn save_riders(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        riders: &[&RiderRecord],
    ) -> StoreResult<()> {
        for r in riders {
            sqlx::query(
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
            .bind(millis(Utc::now()))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn save_jobs(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
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
            .bind(millis(Utc::now()))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn delete_jobs(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
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
}

/// Rows per multi-row insert (well under both dialects' bind-parameter limits).
const BULK_ROWS: usize = 500;

macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty) => {
        impl $store {
            pub async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            pub async fn insert_restaurant(&self, r: &RestaurantRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO restaurants (id, name, lat, lng, open, rating_sum, rating_count, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(r.id.to_string())
                .bind(&r.name)
                .bind(r.location.lat)
                .bind(r.location.lng)
                .bind(r.open)
                .bind(r.rating_sum)
                .bind(r.rating_count)
                .bind(millis(Utc::now()))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub async fn set_restaurant_open(&self, id: RestaurantId, open: bool) -> StoreResult<()> {
                sqlx::query("UPDATE restaurants SET open = $2 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(open)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub async fn restaurants(&self) -> StoreResult<Vec<RestaurantRecord>> {
                let rows = sqlx::query(
                    "SELECT id, name, lat, lng, open, rating_sum, rating_count FROM restaurants",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row: &$row| {
                        Ok(RestaurantRecord {
                            id: parse_id(row.try_get("id")?)?,
                            name: row.try_get("name")?,
                            location: location(row.try_get("lat")?, row.try_get("lng")?)
                                .ok_or_else(|| StoreError::Corrupt("restaurant location".into()))?,
                            open: row.try_get("open")?,
                            rating_sum: row.try_get("rating_sum")?,
                            rating_count: row.try_get("rating_count")?,
                        })
                    })
                    .collect()
            }

            pub async fn insert_customer(&self, c: &CustomerRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO customers (id, name, phone, email, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(c.id.to_string())
                .bind(&c.name)
                .bind(&c.phone)
                .bind(&c.email)
                .bind(millis(Utc::now()))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

                        /// Runs `units` in one open transaction, to be committed by the caller; the outcome
            /// holds each unit's placement result and the outbox events in commit order.
            pub async fn stage_batch(&self, units: &[WriteUnit]) -> StoreResult<(sqlx::Transaction<'static, $db>, BatchOutcome)> {
                self.prepare_batch(units).await?;
                let mut tx = self.pool.begin().await?;
                let mut outcome = BatchOutcome::default();
                // New orders and events go in as multi-row inserts: a handful of statements per
                // batch instead of two per placement. Nothing else in a batch reads them.
                let mut new_orders: Vec<&Order> = Vec::new();
                let mut events: Vec<&OutboxEvent> = Vec::new();
                let mut saved_orders: HashMap<OrderId, &Order> = HashMap::new();
                let mut saved_riders: HashMap<RiderId, &RiderRecord> = HashMap::new();
                // The last word on each job: saved (`Some`) or deleted.
                let mut jobs: HashMap<OrderId, Option<&JobRecord>> = HashMap::new();
                for unit in units {
                    let mut placement = None;
                    for write in &unit.writes {
                        match write {
                            Write::PlaceOrder { order, idempotency } => {
                                if let Some((key, hash)) = idempotency {
                                    let inserted = sqlx::query(
                                        "INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id, created_at)
                                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                                    )
                                    .bind(order.customer_id.to_string())
                                    .bind(key)
                                    .bind(hash)
                                    .bind(order.id.to_string())
                                    .bind(millis(order.placed_at))
                                    .execute(&mut *tx)
                                    .await?
                                    .rows_affected();
                                    if inserted == 0 {
                                        let row: $row = sqlx::query(
                                            "SELECT request_hash, order_id FROM idempotency_keys WHERE customer_id = $1 AND key = $2",
                                        )
                                        .bind(order.customer_id.to_string())
                                        .bind(key)
                                        .fetch_one(&mut *tx)
                                        .await?;
                                        let order_id: String = row.try_get("order_id")?;
                                        placement = Some(Placement::Replayed {
                                            request_hash: row.try_get("request_hash")?,
                                            order_id: parse_id(&order_id)?,
                                        });
                                        break;
                                    }
                                }
                                // Inserted with the batch's other new orders below.
                                new_orders.push(order);
                                placement = Some(Placement::Inserted);
                            }
                            // Snapshots are saved in bulk below, the last one of each row winning
                            // (the same guards as row by row: versions and revisions only rise).
                            Write::SaveOrder(order) => {
                                let slot = saved_orders.entry(order.id).or_insert(order);
                                if slot.version < order.version {
                                    *slot = order;
                                }
                            }
                            Write::Event(e) => events.push(e),
                            Write::SaveRider(r) => {
                                let slot = saved_riders.entry(r.id).or_insert(r);
                                if slot.rev < r.rev {
                                    *slot = r;
                                }
                            }
                            Write::SaveJob(j) => {
                                jobs.insert(j.order_id, Some(j));
                            }
                            Write::DeleteJob(order_id) => {
                                jobs.insert(*order_id, None);
                            }
                            Write::SaveCursor { consumer, seq } => {
                                sqlx::query(
                                    "INSERT INTO outbox_cursors (consumer, seq) VALUES ($1, $2)
                                     ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq
                                     WHERE outbox_cursors.seq < excluded.seq",
                                )
                                .bind(*consumer)
                                .bind(*seq)
                                .execute(&mut *tx)
                                .await?;
                            }
                        }
                    }
                    outcome.placements.push(placement);
                }
                // Inserts first: an update of an order placed in the same batch must find it.
                for chunk in new_orders.chunks(BULK_ROWS) {
                    Self::insert_orders(&mut tx, chunk).await?;
                }
                let saved_orders: Vec<&Order> = saved_orders.into_values().collect();
                for chunk in saved_orders.chunks(BULK_ROWS) {
                    Self::update_orders(&mut tx, chunk).await?;
                }
                let saved_riders: Vec<&RiderRecord> = saved_riders.into_values().collect();
                for chunk in saved_riders.chunks(BULK_ROWS) {
                    Self::save_riders(&mut tx, chunk).await?;
                }
                let (saved_jobs, deleted_jobs): (Vec<_>, Vec<_>) =
                    jobs.into_iter().partition(|(_, job)| job.is_some());
                let saved_jobs: Vec<&JobRecord> = saved_jobs.into_iter().filter_map(|(_, j)| j).collect();
                for chunk in saved_jobs.chunks(BULK_ROWS) {
                    Self::save_jobs(&mut tx, chunk).await?;
                }
                let deleted_jobs: Vec<OrderId> = deleted_jobs.into_iter().map(|(id, _)| id).collect();
                for chunk in deleted_jobs.chunks(BULK_ROWS) {
                    Self::delete_jobs(&mut tx, chunk).await?;
                }
                for chunk in events.chunks(BULK_ROWS) {
                    let mut seqs = Self::insert_events(&mut tx, chunk).await?;
                    // Sequences are drawn in row order; sort so RETURNING's order does not matter.
                    seqs.sort_unstable();
                    for (seq, e) in seqs.into_iter().zip(chunk) {
                        outcome.events.push(CommittedEvent { seq, event: (*e).clone() });
                    }
                }
                Ok((tx, outcome))
            }

                        pub async fn saved_response(&self, subject: &str, key: &str) -> StoreResult<Option<SavedResponse>> {
                let row = sqlx::query(
                    "SELECT request_hash, status, body FROM idempotent_responses WHERE subject = $1 AND key = $2",
                )
                .bind(subject)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row: $row| {
                    let status: i64 = row.try_get("status")?;
                    Ok(SavedResponse { request_hash: row.try_get("request_hash")?, status: status as u16, body: row.try_get("body")? })
                })
                .transpose()
            }

            /// Saves the first response for `(subject, key)`; `false` if one was already saved.
            pub async fn save_response(&self, subject: &str, key: &str, response: &SavedResponse, at: DateTime<Utc>) -> StoreResult<bool> {
                let inserted = sqlx::query(
                    "INSERT INTO idempotent_responses (subject, key, request_hash, status, body, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(subject)
                .bind(key)
                .bind(&response.request_hash)
                .bind(i64::from(response.status))
                .bind(&response.body)
                .bind(millis(at))
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(inserted == 1)
            }

            pub async fn jobs(&self) -> StoreResult<Vec<JobRecord>> {
                let rows = sqlx::query("SELECT order_id, tried, deadline FROM dispatch_jobs")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row: &$row| {
                        let tried: String = row.try_get("tried")?;
                        let tried: Vec<String> = serde_json::from_str(&tried)
                            .map_err(|e| StoreError::Corrupt(format!("dispatch job tried: {e}")))?;
                        Ok(JobRecord {
                            order_id: parse_id(row.try_get("order_id")?)?,
                            tried: tried.iter().map(|t| parse_id(t)).collect::<StoreResult<_>>()?,
                            deadline: from_millis(row.try_get("deadline")?)?,
                        })
                    })
                    .collect()
            }

            pub async fn cursor(&self, consumer: &str) -> StoreResult<i64> {
                let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM outbox_cursors WHERE consumer = $1")
                    .bind(consumer)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(seq.unwrap_or(0))
            }

            /// Outbox events after `seq`, oldest first.
            pub async fn events_after(&self, seq: i64, limit: i64) -> StoreResult<Vec<CommittedEvent>> {
                let rows = sqlx::query(
                    "SELECT seq, event_id, kind, order_id, version, customer_id, restaurant_id, rider_id, payload, created_at
                     FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(seq)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row: &$row| {
                        let kind: String = row.try_get("kind")?;
                        let rider: Option<String> = row.try_get("rider_id")?;
                        let payload: String = row.try_get("payload")?;
                        let event_id: String = row.try_get("event_id")?;
                        let version: i64 = row.try_get("version")?;
                        Ok(CommittedEvent {
                            seq: row.try_get("seq")?,
                            event: OutboxEvent {
                                event_id: parse_id(&event_id)?,
                                kind: event_kind(&kind)?,
                                order_id: parse_id(row.try_get("order_id")?)?,
                                version: version as u64,
                                to: Recipients {
                                    customer: parse_id(row.try_get("customer_id")?)?,
                                    restaurant: parse_id(row.try_get("restaurant_id")?)?,
                                    rider: rider.as_deref().map(parse_id).transpose()?,
                                },
                                payload: payload.into(),
                                at: from_millis(row.try_get("created_at")?)?,
                            },
                        })
                    })
                    .collect()
            }

            /// Deletes rows past retention (orders, outbox, idempotency keys).
            async fn purge_rows(&self, orders_before: DateTime<Utc>, keys_before: DateTime<Utc>, outbox_before: DateTime<Utc>) -> StoreResult<PurgeReport> {
                let orders = sqlx::query("DELETE FROM orders WHERE placed_at < $1")
                    .bind(millis(orders_before))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                sqlx::query("DELETE FROM ratings WHERE created_at < $1")
                    .bind(millis(orders_before))
                    .execute(&self.pool)
                    .await?;
                                let keys = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(millis(keys_before))
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    + sqlx::query("DELETE FROM idempotent_responses WHERE created_at < $1")
                        .bind(millis(keys_before))
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                // Only events every consumer has passed.
                let outbox = sqlx::query(
                    "DELETE FROM outbox WHERE created_at < $1 AND seq <= (SELECT COALESCE(MIN(seq), 0) FROM outbox_cursors)",
                )
                .bind(millis(outbox_before))
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(PurgeReport { orders_deleted: orders, partitions_dropped: 0, outbox_deleted: outbox, idempotency_keys_deleted: keys })
            }

            pub async fn riders(&self) -> StoreResult<Vec<RiderRecord>> {
                let rows = sqlx::query(
                    "SELECT id, name, status, lat, lng, offer_order_id, offer_expires_at, order_id, rev FROM riders",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row: &$row| {
                        let status: String = row.try_get("status")?;
                        let offer_order: Option<String> = row.try_get("offer_order_id")?;
                        let offer_expires: Option<i64> = row.try_get("offer_expires_at")?;
                        let order_id: Option<String> = row.try_get("order_id")?;
                        Ok(RiderRecord {
                            id: parse_id(row.try_get("id")?)?,
                            name: row.try_get("name")?,
                            status: RiderStatus::parse(&status)
                                .ok_or_else(|| StoreError::Corrupt(format!("rider status {status:?}")))?,
                            location: location(row.try_get("lat")?, row.try_get("lng")?),
                            offer: match (offer_order, offer_expires) {
                                (Some(o), Some(t)) => Some((parse_id(&o)?, from_millis(t)?)),
                                _ => None,
                            },
                            order_id: order_id.as_deref().map(parse_id).transpose()?,
                            rev: row.try_get("rev")?,
                        })
                    })
                    .collect()
            }

            pub async fn idempotent_placement(
                &self,
                customer: CustomerId,
                key: &str,
            ) -> StoreResult<Option<(String, OrderId)>> {
                let row = sqlx::query(
                    "SELECT request_hash, order_id FROM idempotency_keys WHERE customer_id = $1 AND key = $2",
                )
                .bind(customer.to_string())
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row: $row| {
                    let order_id: String = row.try_get("order_id")?;
                    Ok((row.try_get("request_hash")?, parse_id(&order_id)?))
                })
                .transpose()
            }

            pub async fn order(&self, id: OrderId) -> StoreResult<Option<Order>> {
                let row = sqlx::query("SELECT body FROM orders WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|row: $row| order_from_json(row.try_get("body")?)).transpose()
            }

            pub async fn unfinished_orders(&self) -> StoreResult<Vec<Order>> {
                let rows = sqlx::query("SELECT body FROM orders WHERE NOT terminal ORDER BY placed_at")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row: &$row| order_from_json(row.try_get("body")?))
                    .collect()
            }

            pub async fn customer_orders(
                &self,
                customer: CustomerId,
                since: DateTime<Utc>,
                cursor: Option<HistoryCursor>,
                limit: u32,
            ) -> StoreResult<Vec<Order>> {
                let (before_ms, before_id) = match cursor {
                    Some(c) => (c.placed_at_ms, c.id.to_string()),
                    None => (i64::MAX, String::new()),
                };
                let rows = sqlx::query(
                    "SELECT body FROM orders
                     WHERE customer_id = $1 AND placed_at >= $2
                       AND (placed_at < $3 OR (placed_at = $3 AND id < $4) OR $5)
                     ORDER BY placed_at DESC, id DESC
                     LIMIT $6",
                )
                .bind(customer.to_string())
                .bind(millis(since))
                .bind(before_ms)
                .bind(before_id)
                .bind(cursor.is_none())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row: &$row| order_from_json(row.try_get("body")?))
                    .collect()
            }

            pub async fn add_rating(&self, r: &RatingRecord) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO ratings (order_id, restaurant_id, customer_id, stars, comment, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(r.order_id.to_string())
                .bind(r.restaurant_id.to_string())
                .bind(r.customer_id.to_string())
                .bind(i64::from(r.stars))
                .bind(r.comment.as_deref())
                .bind(millis(r.at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE restaurants SET rating_sum = rating_sum + $2, rating_count = rating_count + 1 WHERE id = $1",
                )
                .bind(r.restaurant_id.to_string())
                .bind(i64::from(r.stars))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

sql_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
sql_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);

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
