//! The two SQL stores. Their bodies are the same text, expanded once per driver by
//! `sql_store!`, so the dialects cannot drift apart; only connecting and migrating differ.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{
    CustomerRecord, HistoryCursor, Placement, RatingRecord, RestaurantRecord, RiderRecord,
    StoreError, StoreResult,
};
use crate::domain::{CustomerId, LatLng, Order, OrderId, RestaurantId, RiderStatus};

#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

impl SqliteStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // FULL: a commit is on disk before the reply; WAL lets readers run beside the writer.
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
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

fn order_json(order: &Order) -> String {
    // Order holds only plain data with string keys: serialising it cannot fail.
    serde_json::to_string(order).expect("order serialises")
}

fn location(lat: Option<f64>, lng: Option<f64>) -> Option<LatLng> {
    LatLng::parse(lat?, lng?).ok()
}

macro_rules! sql_store {
    ($store:ident, $row:ty) => {
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

            pub async fn customer(&self, id: CustomerId) -> StoreResult<Option<CustomerRecord>> {
                let row = sqlx::query("SELECT id, name, phone, email FROM customers WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|row: $row| {
                    Ok(CustomerRecord {
                        id: parse_id(row.try_get("id")?)?,
                        name: row.try_get("name")?,
                        phone: row.try_get("phone")?,
                        email: row.try_get("email")?,
                    })
                })
                .transpose()
            }

            pub async fn save_rider(&self, r: &RiderRecord) -> StoreResult<()> {
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
                .execute(&self.pool)
                .await?;
                Ok(())
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

            pub async fn insert_order(
                &self,
                order: &Order,
                idempotency: Option<(&str, &str)>,
            ) -> StoreResult<Placement> {
                let mut tx = self.pool.begin().await?;
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
                        return Ok(Placement::Replayed {
                            request_hash: row.try_get("request_hash")?,
                            order_id: parse_id(&order_id)?,
                        });
                    }
                }
                sqlx::query(
                    "INSERT INTO orders (id, customer_id, restaurant_id, rider_id, stage, terminal, placed_at, updated_at, version, body)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(order.id.to_string())
                .bind(order.customer_id.to_string())
                .bind(order.restaurant_id.to_string())
                .bind(order.rider_id.map(|r| r.to_string()))
                .bind(order.stage.as_str())
                .bind(order.stage.is_terminal())
                .bind(millis(order.placed_at))
                .bind(millis(order.updated_at))
                .bind(order.version as i64)
                .bind(order_json(order))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Placement::Inserted)
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

            pub async fn save_order(&self, order: &Order) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE orders SET rider_id = $2, stage = $3, terminal = $4, updated_at = $5, version = $6, body = $7
                     WHERE id = $1 AND version < $6",
                )
                .bind(order.id.to_string())
                .bind(order.rider_id.map(|r| r.to_string()))
                .bind(order.stage.as_str())
                .bind(order.stage.is_terminal())
                .bind(millis(order.updated_at))
                .bind(order.version as i64)
                .bind(order_json(order))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub async fn order(&self, id: OrderId) -> StoreResult<Option<Order>> {
                let row = sqlx::query("SELECT body FROM orders WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|row: $row| order_from_json(row.try_get("body")?)).transpose()
            }

            pub async fn unfinished_orders(&self) -> StoreResult<Vec<Order>> {
                let rows = sqlx::query("SELECT body FROM orders WHERE terminal = $1 ORDER BY placed_at")
                    .bind(false)
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

sql_store!(PostgresStore, sqlx::postgres::PgRow);
sql_store!(SqliteStore, sqlx::sqlite::SqliteRow);
