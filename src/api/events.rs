//! The event log over HTTP: an order's history of versions.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::orders::load_visible;
use crate::actors::Engine;
use crate::domain::OrderId;
use crate::persistence::CommittedEvent;
use crate::wire::OrderView;

#[derive(Deserialize, IntoParams)]
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
