//! The event log over HTTP: an order's history of versions, the consumers' dead letters and
//! the analytics consumer's figures.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::orders::load_visible;
use crate::actors::{ConsumerFigures, Engine, ReplayError};
use crate::domain::OrderId;
use crate::events::analytics::OrderStats;
use crate::persistence::CommittedEvent;
use crate::wire::OrderView;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only versions after this one (absent: the whole history).
    #[param(minimum = 0)]
    pub since: Option<i64>,
}

/// One version of an order as the log holds it.
#[derive(Serialize, ToSchema)]
pub struct OrderEvent {
    /// The event's position in the log (the `seq` its push carried).
    pub seq: i64,
    pub version: u64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub at: DateTime<Utc>,
    pub order: OrderView,
}

#[derive(Serialize, ToSchema)]
pub struct OrderEvents {
    pub events: Vec<OrderEvent>,
}

/// The order at this event's version, from the pushed message it was logged as.
fn order_event(c: &CommittedEvent) -> Result<OrderEvent, ApiError> {
    #[derive(Deserialize)]
    struct Pushed {
        order: OrderView,
    }
    let pushed: Pushed = serde_json::from_str(&c.event.payload).map_err(|e| {
        ApiError::new(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("event {} unreadable: {e}", c.seq),
        )
    })?;
    Ok(OrderEvent {
        seq: c.seq,
        version: c.event.version,
        kind: c.event.kind,
        at: c.event.at,
        order: pushed.order,
    })
}

#[utoipa::path(get, path = "/v1/orders/{id}/events", tag = "orders", params(("id" = Uuid, Path), HistoryQuery),
    responses((status = 200, body = OrderEvents), (status = 400), (status = 403), (status = 404)), security(("bearer" = [])))]
#[get("/v1/orders/{id}/events")]
pub async fn order_events(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    q: web::Query<HistoryQuery>,
) -> ApiResult<HttpResponse> {
    let since = q.since.unwrap_or(0);
    if since < 0 {
        return Err(ApiError::invalid("since must be a version of at least 0"));
    }
    // Whoever may read the order may read its history.
    load_visible(&engine, &caller, *id).await?;
    let events = engine
        .order_history(OrderId(*id), since)
        .await?
        .iter()
        .map(order_event)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(OrderEvents { events }))
}

/// An event a consumer gave up on.
#[derive(Serialize, ToSchema)]
pub struct DeadLetter {
    pub id: Uuid,
    pub consumer: String,
    pub event_id: Uuid,
    /// The event's place in the log.
    pub seq: i64,
    /// The last error.
    pub error: String,
    pub attempts: u32,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetters {
    pub dead_letters: Vec<DeadLetter>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/ops/dead-letters", tag = "ops", params(DeadLetterQuery),
    responses((status = 200, body = DeadLetters), (status = 400), (status = 403)), security(("bearer" = [])))]
#[get("/v1/ops/dead-letters")]
pub async fn dead_letters(
    engine: web::Data<Engine>,
    caller: Caller,
    q: web::Query<DeadLetterQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1 to 1000"));
    }
    let dead_letters = engine
        .dead_letters(i64::from(limit))
        .await?
        .into_iter()
        .map(|d| DeadLetter {
            id: d.id,
            consumer: d.consumer,
            event_id: d.event_id,
            seq: d.event_seq,
            error: d.error,
            attempts: d.attempts,
            at: d.at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(DeadLetters { dead_letters }))
}

#[utoipa::path(post, path = "/v1/ops/dead-letters/{id}/replay", tag = "ops", params(("id" = Uuid, Path)),
    responses((status = 202, description = "handed back to its consumer; marked replayed once handled, parked again if it fails"),
        (status = 403), (status = 404), (status = 409, description = "invalid_state: already replayed"),
        (status = 503, description = "its consumer does not run here or is busy")),
    security(("bearer" = [])))]
#[actix_web::post("/v1/ops/dead-letters/{id}/replay")]
pub async fn replay_dead_letter(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    use actix_web::http::StatusCode as S;
    caller.require(Role::Ops)?;
    match engine.replay_dead_letter(*id).await {
        Ok(()) => Ok(HttpResponse::Accepted().json(serde_json::json!({"replaying": *id}))),
        Err(ReplayError::NotFound) => Err(ApiError::not_found("dead letter")),
        Err(e @ ReplayError::AlreadyReplayed) => {
            Err(ApiError::new(S::CONFLICT, "invalid_state", e.to_string()))
        }
        Err(e @ (ReplayError::UnknownConsumer(_) | ReplayError::Busy)) => {
            Err(ApiError::new(S::SERVICE_UNAVAILABLE, "unavailable", e.to_string()).retry_after(1))
        }
        Err(ReplayError::Engine(e)) => Err(e.into()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Stats {
    #[serde(flatten)]
    pub orders: OrderStats,
    /// Each event consumer's counters since this process started.
    pub consumers: Vec<ConsumerFigures>,
    /// The last sequence of the event log handed on.
    pub log_head: i64,
}

#[utoipa::path(get, path = "/v1/ops/stats", tag = "ops",
    responses((status = 200, body = Stats), (status = 403)), security(("bearer" = [])))]
#[get("/v1/ops/stats")]
pub async fn stats(engine: web::Data<Engine>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let s = engine.event_stats();
    Ok(HttpResponse::Ok().json(Stats {
        orders: s.orders,
        consumers: s.consumers,
        log_head: s.log_head,
    }))
}
