//! `GET /v1/orders/{id}/cancellation-quote`: what cancelling now would refund, and until when.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::orders::load_visible;
use crate::actors::Engine;
use crate::actors::error::EngineError;
use crate::domain::policy::cancellation_quote;

#[derive(Serialize, ToSchema)]
pub struct Quote {
    pub percent: u8,
    pub amount_cents: i64,
    /// When this refund tier ends; `null` once cancellation is closed (then `percent` is 0).
    pub until: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/v1/orders/{id}/cancellation-quote", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = Quote), (status = 403), (status = 404),
        (status = 409, description = "invalid_state: the order is finished")),
    security(("bearer" = [])))]
#[get("/v1/orders/{id}/cancellation-quote")]
pub async fn cancellation(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    if !(caller.is(Role::Customer) || caller.is(Role::Ops)) {
        return Err(ApiError::forbidden());
    }
    let order = load_visible(&engine, &caller, *id).await?;
    let quote = cancellation_quote(
        order.stage,
        order.placed_at,
        order.asked_at,
        order.total_cents,
        engine.now(),
    )
    .ok_or_else(|| {
        ApiError::from(EngineError::InvalidState(
            "the order is finished: there is nothing to cancel".into(),
        ))
    })?;
    Ok(HttpResponse::Ok().json(Quote {
        percent: quote.percent,
        amount_cents: quote.amount_cents.0,
        until: quote.until,
    }))
}
