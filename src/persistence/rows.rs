//! Rows as both dialects return them, and the one place they are decoded into records, plus
//! the encodings every statement shares (UUID text, Unix milliseconds, JSON bodies).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};

use super::records::{
    CommittedEvent, DeadLetterRecord, JobRecord, OutboxEvent, Recipients, RiderRecord,
    SavedResponse,
};
use super::{StoreError, StoreResult};
use crate::domain::{LatLng, Menu, Order, OrderId, Restaurant, RiderStatus};

pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> StoreResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {ms}")))
}

pub fn parse_id<T: FromStr>(s: &str) -> StoreResult<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad id {s:?}")))
}

fn parse_opt_id<T: FromStr>(s: Option<&str>) -> StoreResult<Option<T>> {
    s.map(parse_id).transpose()
}

pub fn order_json(order: &Order) -> String {
    // Order holds only plain data with string keys: serialising it cannot fail.
    serde_json::to_string(order).expect("order serialises")
}

pub fn menu_json(menu: &Menu) -> String {
    // Plain data with string keys: serialising it cannot fail.
    serde_json::to_string(menu).expect("menu serialises")
}

pub fn tried_json(job: &JobRecord) -> String {
    let tried: Vec<String> = job.tried.iter().map(|r| r.to_string()).collect();
    serde_json::to_string(&tried).unwrap_or_else(|_| "[]".into())
}

fn location(lat: Option<f64>, lng: Option<f64>) -> Option<LatLng> {
    LatLng::parse(lat?, lng?).ok()
}

#[derive(sqlx::FromRow)]
pub struct RestaurantRow {
    id: String,
    name: String,
    lat: f64,
    lng: f64,
    open: bool,
    rating_sum: i64,
    rating_count: i64,
    prep_minutes: i64,
    menu: Option<String>,
}

impl TryFrom<RestaurantRow> for Restaurant {
    type Error = StoreError;
    fn try_from(row: RestaurantRow) -> StoreResult<Self> {
        Ok(Self {
            id: parse_id(&row.id)?,
            name: row.name,
            location: location(Some(row.lat), Some(row.lng))
                .ok_or_else(|| StoreError::Corrupt("restaurant location".into()))?,
            open: row.open,
            rating_sum: row.rating_sum,
            rating_count: row.rating_count,
            prep_minutes: u32::try_from(row.prep_minutes).unwrap_or(u32::MAX),
            menu: std::sync::Arc::new(match row.menu {
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("menu: {e}")))?,
                None => Menu::default(),
            }),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RiderRow {
    id: String,
    name: String,
    status: String,
    lat: Option<f64>,
    lng: Option<f64>,
    offer_order_id: Option<String>,
    offer_expires_at: Option<i64>,
    order_id: Option<String>,
    rev: i64,
    updated_at: i64,
}

impl TryFrom<RiderRow> for RiderRecord {
    type Error = StoreError;
    fn try_from(row: RiderRow) -> StoreResult<Self> {
        Ok(Self {
            id: parse_id(&row.id)?,
            name: row.name,
            status: RiderStatus::parse(&row.status)
                .ok_or_else(|| StoreError::Corrupt(format!("rider status {:?}", row.status)))?,
            location: location(row.lat, row.lng),
            offer: match (row.offer_order_id, row.offer_expires_at) {
                (Some(o), Some(t)) => Some((parse_id(&o)?, from_millis(t)?)),
                _ => None,
            },
            order_id: parse_opt_id(row.order_id.as_deref())?,
            rev: row.rev,
            saved_at: from_millis(row.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct JobRow {
    order_id: String,
    tried: String,
    deadline: i64,
    updated_at: i64,
}

impl TryFrom<JobRow> for JobRecord {
    type Error = StoreError;
    fn try_from(row: JobRow) -> StoreResult<Self> {
        let tried: Vec<String> = serde_json::from_str(&row.tried)
            .map_err(|e| StoreError::Corrupt(format!("dispatch job tried: {e}")))?;
        Ok(Self {
            order_id: parse_id(&row.order_id)?,
            tried: tried
                .iter()
                .map(|t| parse_id(t))
                .collect::<StoreResult<_>>()?,
            deadline: from_millis(row.deadline)?,
            saved_at: from_millis(row.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct EventRow {
    seq: i64,
    event_id: String,
    kind: String,
    order_id: String,
    version: i64,
    customer_id: String,
    restaurant_id: String,
    rider_id: Option<String>,
    payload: String,
    created_at: i64,
}

fn event_kind(kind: &str) -> StoreResult<&'static str> {
    super::records::event_kind(kind)
        .ok_or_else(|| StoreError::Corrupt(format!("event kind {kind:?}")))
}

impl TryFrom<EventRow> for CommittedEvent {
    type Error = StoreError;
    fn try_from(row: EventRow) -> StoreResult<Self> {
        Ok(Self {
            seq: row.seq,
            event: OutboxEvent {
                event_id: parse_id(&row.event_id)?,
                kind: event_kind(&row.kind)?,
                order_id: parse_id(&row.order_id)?,
                version: row.version as u64,
                to: Recipients {
                    customer: parse_id(&row.customer_id)?,
                    restaurant: parse_id(&row.restaurant_id)?,
                    rider: parse_opt_id(row.rider_id.as_deref())?,
                },
                payload: row.payload.into(),
                at: from_millis(row.created_at)?,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct DeadLetterRow {
    id: String,
    consumer: String,
    event_id: String,
    event_seq: i64,
    event: String,
    error: String,
    attempts: i64,
    created_at: i64,
    replayed_at: Option<i64>,
}

impl TryFrom<DeadLetterRow> for DeadLetterRecord {
    type Error = StoreError;
    fn try_from(row: DeadLetterRow) -> StoreResult<Self> {
        Ok(Self {
            id: parse_id(&row.id)?,
            consumer: row.consumer,
            event_id: parse_id(&row.event_id)?,
            event_seq: row.event_seq,
            event: row.event,
            error: row.error,
            attempts: u32::try_from(row.attempts)
                .map_err(|_| StoreError::Corrupt(format!("attempts {}", row.attempts)))?,
            at: from_millis(row.created_at)?,
            replayed_at: row.replayed_at.map(from_millis).transpose()?,
        })
    }
}

/// An order's snapshot (the `body` column).
#[derive(sqlx::FromRow)]
pub struct OrderRow {
    body: String,
}

impl TryFrom<OrderRow> for Order {
    type Error = StoreError;
    fn try_from(row: OrderRow) -> StoreResult<Self> {
        serde_json::from_str(&row.body).map_err(|e| StoreError::Corrupt(format!("order body: {e}")))
    }
}

/// The first placement made with an idempotency key.
#[derive(sqlx::FromRow)]
pub struct KeyRow {
    request_hash: String,
    order_id: String,
}

impl KeyRow {
    pub fn decode(self) -> StoreResult<(String, OrderId)> {
        Ok((self.request_hash, parse_id(&self.order_id)?))
    }
}

#[derive(sqlx::FromRow)]
pub struct ResponseRow {
    request_hash: String,
    status: i64,
    body: String,
}

impl TryFrom<ResponseRow> for SavedResponse {
    type Error = StoreError;
    fn try_from(row: ResponseRow) -> StoreResult<Self> {
        Ok(Self {
            request_hash: row.request_hash,
            status: u16::try_from(row.status)
                .map_err(|_| StoreError::Corrupt(format!("response status {}", row.status)))?,
            body: row.body,
        })
    }
}

/// Decodes every row, failing on the first corrupt one.
pub fn decode_all<R, T: TryFrom<R, Error = StoreError>>(rows: Vec<R>) -> StoreResult<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}
