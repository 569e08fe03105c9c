//! Statements that read the same in PostgreSQL and SQLite: the reads, and the single-row
//! writes of a batch. Bulk writes differ per dialect and live in `postgres.rs`/`sqlite.rs`.

use chrono::{DateTime, Utc};

use super::dialect::{Param, Stmt};
use super::records::{
    CustomerRecord, DeadLetterRecord, HistoryCursor, RatingRecord, SavedResponse,
};
use super::rows::millis;
use crate::domain::{CustomerId, OrderId, Restaurant, RestaurantId, RiderId};

use Param::{Bool, Int, OptText, Real, Text};

pub fn ping() -> Stmt {
    Stmt::new("SELECT 1", vec![])
}

pub fn restaurants() -> Stmt {
    Stmt::new(
        "SELECT r.id, r.name, r.lat, r.lng, r.open, r.rating_sum, r.rating_count, r.prep_minutes, m.items AS menu
         FROM restaurants r LEFT JOIN menus m ON m.restaurant_id = r.id",
        vec![],
    )
}

pub fn riders() -> Stmt {
    Stmt::new(
        "SELECT id, name, status, lat, lng, offer_order_id, offer_expires_at, order_id, rev, updated_at
         FROM riders",
        vec![],
    )
}

pub fn jobs() -> Stmt {
    Stmt::new(
        "SELECT order_id, tried, deadline, updated_at FROM dispatch_jobs",
        vec![],
    )
}

pub fn cursor(consumer: &str) -> Stmt {
    Stmt::new(
        "SELECT seq FROM outbox_cursors WHERE consumer = $1",
        vec![Text(consumer.into())],
    )
}

pub fn events_after(seq: i64, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, event_id, kind, order_id, version, customer_id, restaurant_id, rider_id, payload, created_at
         FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
        vec![Int(seq), Int(limit)],
    )
}

/// A restaurant's events after `seq`: what its resuming socket missed.
pub fn restaurant_events(id: RestaurantId, seq: i64, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, event_id, kind, order_id, version, customer_id, restaurant_id, rider_id, payload, created_at
         FROM outbox WHERE seq > $1 AND restaurant_id = $3 AND kind = 'order.updated' ORDER BY seq LIMIT $2",
        vec![Int(seq), Int(limit), Text(id.to_string())],
    )
}

/// A rider's events after `seq`: what its resuming socket missed.
pub fn rider_events(id: RiderId, seq: i64, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, event_id, kind, order_id, version, customer_id, restaurant_id, rider_id, payload, created_at
         FROM outbox WHERE seq > $1 AND rider_id = $3 AND kind = 'order.updated' ORDER BY seq LIMIT $2",
        vec![Int(seq), Int(limit), Text(id.to_string())],
    )
}

/// An order's events after a version, oldest first.
pub fn order_events(order: OrderId, after_version: i64, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, event_id, kind, order_id, version, customer_id, restaurant_id, rider_id, payload, created_at
         FROM outbox WHERE order_id = $1 AND version > $2 AND kind = 'order.updated' ORDER BY seq LIMIT $3",
        vec![Text(order.to_string()), Int(after_version), Int(limit)],
    )
}

/// How much older than a later-committed event an event may be stamped: events are timed when
/// they are made and numbered when committed, seconds apart at most under load.
const REORDER_MARGIN: chrono::Duration = chrono::Duration::hours(1);

/// The customer's orders that may have events after `seq`: the outbox keeps no index by
/// customer (migration 0016). An order has events after `seq` only if it is unfinished or its
/// last version (`updated_at`) is no older than the first event after `seq`, less the commit
/// reordering the margin covers: a finished order never changes again.
pub fn customer_orders_changed_after(id: CustomerId, seq: i64) -> Stmt {
    Stmt::new(
        "SELECT id FROM orders
         WHERE customer_id = $1
           AND (NOT terminal
                OR updated_at >= (SELECT created_at FROM outbox WHERE seq > $2 ORDER BY seq LIMIT 1) - $3)",
        vec![
            Text(id.to_string()),
            Int(seq),
            Int(REORDER_MARGIN.num_milliseconds()),
        ],
    )
}

/// An order's events after a sequence, oldest first (on `outbox_order_seq`).
pub fn order_events_after_seq(order: &str, seq: i64, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, event_id, kind, order_id, version, customer_id, restaurant_id, rider_id, payload, created_at
         FROM outbox WHERE order_id = $1 AND seq > $2 AND kind = 'order.updated' ORDER BY seq LIMIT $3",
        vec![Text(order.to_owned()), Int(seq), Int(limit)],
    )
}

/// The first event at or after a sequence: its sequence and time.
pub fn event_at_or_after(seq: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, created_at FROM outbox WHERE seq >= $1 ORDER BY seq LIMIT 1",
        vec![Int(seq)],
    )
}

/// The newest sequence in the log (none when it is empty).
pub fn log_end() -> Stmt {
    Stmt::new("SELECT MAX(seq) FROM outbox", vec![])
}

/// The oldest sequence still in the log (none when it is empty).
pub fn log_start() -> Stmt {
    Stmt::new("SELECT MIN(seq) FROM outbox", vec![])
}

pub fn dead_letters(limit: i64) -> Stmt {
    Stmt::new(
        "SELECT id, consumer, event_id, event_seq, event, error, attempts, created_at, replayed_at
         FROM dead_letters WHERE replayed_at IS NULL ORDER BY created_at, id LIMIT $1",
        vec![Int(limit)],
    )
}

pub fn dead_letter(id: uuid::Uuid) -> Stmt {
    Stmt::new(
        "SELECT id, consumer, event_id, event_seq, event, error, attempts, created_at, replayed_at
         FROM dead_letters WHERE id = $1",
        vec![Text(id.to_string())],
    )
}

pub fn idempotent_placement(customer: CustomerId, key: &str) -> Stmt {
    Stmt::new(
        "SELECT request_hash, order_id FROM idempotency_keys WHERE customer_id = $1 AND key = $2",
        vec![Text(customer.to_string()), Text(key.into())],
    )
}

pub fn saved_response(subject: &str, key: &str) -> Stmt {
    Stmt::new(
        "SELECT request_hash, status, body FROM idempotent_responses WHERE subject = $1 AND key = $2",
        vec![Text(subject.into()), Text(key.into())],
    )
}

/// One row if a customer (or rider) with this id is registered.
pub fn subject_exists(table: SubjectTable, id: uuid::Uuid) -> Stmt {
    let sql = match table {
        SubjectTable::Customers => "SELECT 1 FROM customers WHERE id = $1",
        SubjectTable::Riders => "SELECT 1 FROM riders WHERE id = $1",
    };
    Stmt::new(sql, vec![Text(id.to_string())])
}

/// Tables whose ids are token subjects.
#[derive(Clone, Copy, Debug)]
pub enum SubjectTable {
    Customers,
    Riders,
}

pub fn order(id: OrderId) -> Stmt {
    Stmt::new(
        "SELECT body FROM orders WHERE id = $1",
        vec![Text(id.to_string())],
    )
}

pub fn unfinished_orders() -> Stmt {
    Stmt::new(
        "SELECT body FROM orders WHERE NOT terminal ORDER BY placed_at",
        vec![],
    )
}

/// A customer's orders placed at or after `since`, newest first, after the cursor's page.
pub fn customer_orders(
    customer: CustomerId,
    since: DateTime<Utc>,
    cursor: Option<HistoryCursor>,
    limit: u32,
) -> Stmt {
    let (before_ms, before_id) = match cursor {
        Some(c) => (c.placed_at_ms, c.id.to_string()),
        None => (i64::MAX, String::new()),
    };
    Stmt::new(
        "SELECT body FROM orders
         WHERE customer_id = $1 AND placed_at >= $2
           AND (placed_at < $3 OR (placed_at = $3 AND id < $4) OR $5)
         ORDER BY placed_at DESC, id DESC
         LIMIT $6",
        vec![
            Text(customer.to_string()),
            Int(millis(since)),
            Int(before_ms),
            Text(before_id),
            Bool(cursor.is_none()),
            Int(i64::from(limit)),
        ],
    )
}

// ---- single-row writes of a batch ------------------------------------------------------

/// Claims an idempotency key for a placement; changes no row if it was taken.
pub fn claim_idempotency_key(
    customer: CustomerId,
    key: &str,
    hash: &str,
    order: OrderId,
    at: DateTime<Utc>,
) -> Stmt {
    Stmt::new(
        "INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        vec![
            Text(customer.to_string()),
            Text(key.into()),
            Text(hash.into()),
            Text(order.to_string()),
            Int(millis(at)),
        ],
    )
}

/// Claims the one rating of an order; changes no row if it was rated.
pub fn claim_rating(r: &RatingRecord) -> Stmt {
    Stmt::new(
        "INSERT INTO ratings (order_id, restaurant_id, customer_id, stars, comment, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        vec![
            Text(r.order_id.to_string()),
            Text(r.restaurant_id.to_string()),
            Text(r.customer_id.to_string()),
            Int(i64::from(r.stars)),
            OptText(r.comment.clone()),
            Int(millis(r.at)),
        ],
    )
}

pub fn fold_rating(r: &RatingRecord) -> Stmt {
    Stmt::new(
        "UPDATE restaurants SET rating_sum = rating_sum + $2, rating_count = rating_count + 1
         WHERE id = $1",
        vec![Text(r.restaurant_id.to_string()), Int(i64::from(r.stars))],
    )
}

/// Claims the first response of an idempotent request; changes no row if one was saved.
pub fn claim_response(
    subject: &str,
    key: &str,
    response: &SavedResponse,
    at: DateTime<Utc>,
) -> Stmt {
    Stmt::new(
        "INSERT INTO idempotent_responses (subject, key, request_hash, status, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        vec![
            Text(subject.into()),
            Text(key.into()),
            Text(response.request_hash.clone()),
            Int(i64::from(response.status)),
            Text(response.body.clone()),
            Int(millis(at)),
        ],
    )
}

pub fn add_restaurant(r: &Restaurant, at: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "INSERT INTO restaurants (id, name, lat, lng, open, rating_sum, rating_count, created_at, prep_minutes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            Text(r.id.to_string()),
            Text(r.name.clone()),
            Real(r.location.lat),
            Real(r.location.lng),
            Bool(r.open),
            Int(r.rating_sum),
            Int(r.rating_count),
            Int(millis(at)),
            Int(i64::from(r.prep_minutes)),
        ],
    )
}

/// Replaces a restaurant's menu (the items as JSON).
pub fn save_menu(id: RestaurantId, items: String, at: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "INSERT INTO menus (restaurant_id, items, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (restaurant_id) DO UPDATE SET items = excluded.items, updated_at = excluded.updated_at",
        vec![Text(id.to_string()), Text(items), Int(millis(at))],
    )
}

pub fn set_restaurant_status(id: RestaurantId, open: bool, prep_minutes: u32) -> Stmt {
    Stmt::new(
        "UPDATE restaurants SET open = $2, prep_minutes = $3 WHERE id = $1",
        vec![
            Text(id.to_string()),
            Bool(open),
            Int(i64::from(prep_minutes)),
        ],
    )
}

/// A restaurant's unfinished orders, oldest first.
pub fn restaurant_open_orders(id: RestaurantId) -> Stmt {
    Stmt::new(
        "SELECT body FROM orders WHERE restaurant_id = $1 AND NOT terminal ORDER BY placed_at LIMIT 500",
        vec![Text(id.to_string())],
    )
}

/// A restaurant's orders in one stage placed since `since`, oldest first.
pub fn restaurant_orders_in(id: RestaurantId, stage: &'static str, since: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "SELECT body FROM orders WHERE restaurant_id = $1 AND stage = $2 AND placed_at >= $3
         ORDER BY placed_at LIMIT 500",
        vec![Text(id.to_string()), Text(stage.into()), Int(millis(since))],
    )
}

pub fn add_customer(c: &CustomerRecord, at: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "INSERT INTO customers (id, name, phone, email, created_at) VALUES ($1, $2, $3, $4, $5)",
        vec![
            Text(c.id.to_string()),
            Text(c.name.clone()),
            Text(c.phone.clone()),
            Text(c.email.clone()),
            Int(millis(at)),
        ],
    )
}

/// Moves an outbox consumer's cursor forward, never back.
pub fn save_cursor(consumer: &str, seq: i64) -> Stmt {
    Stmt::new(
        "INSERT INTO outbox_cursors (consumer, seq) VALUES ($1, $2)
         ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq
         WHERE outbox_cursors.seq < excluded.seq",
        vec![Text(consumer.into()), Int(seq)],
    )
}

/// Parks an event a consumer gave up on; parking it again (a replay failed) refreshes it.
pub fn park_dead_letter(d: &DeadLetterRecord) -> Stmt {
    Stmt::new(
        "INSERT INTO dead_letters (id, consumer, event_id, event_seq, event, error, attempts, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (consumer, event_id) DO UPDATE SET error = excluded.error,
           attempts = dead_letters.attempts + excluded.attempts, created_at = excluded.created_at,
           replayed_at = NULL",
        vec![
            Text(d.id.to_string()),
            Text(d.consumer.clone()),
            Text(d.event_id.to_string()),
            Int(d.event_seq),
            Text(d.event.clone()),
            Text(d.error.clone()),
            Int(d.attempts as i64),
            Int(millis(d.at)),
        ],
    )
}

pub fn dead_letter_replayed(id: uuid::Uuid, at: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "UPDATE dead_letters SET replayed_at = $2 WHERE id = $1",
        vec![Text(id.to_string()), Int(millis(at))],
    )
}

// ---- retention ----------------------------------------------------------------------------

pub fn purge_orders(before: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "DELETE FROM orders WHERE placed_at < $1",
        vec![Int(millis(before))],
    )
}

pub fn purge_ratings(before: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "DELETE FROM ratings WHERE created_at < $1",
        vec![Int(millis(before))],
    )
}

pub fn purge_keys(before: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "DELETE FROM idempotency_keys WHERE created_at < $1",
        vec![Int(millis(before))],
    )
}

pub fn purge_responses(before: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "DELETE FROM idempotent_responses WHERE created_at < $1",
        vec![Int(millis(before))],
    )
}

/// Only events every consumer has passed.
pub fn purge_outbox(before: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "DELETE FROM outbox WHERE created_at < $1
           AND seq <= (SELECT COALESCE(MIN(seq), 0) FROM outbox_cursors)",
        vec![Int(millis(before))],
    )
}
