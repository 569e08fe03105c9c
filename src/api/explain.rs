//! `GET /v1/orders/{id}/dispatch`: why an order went to its rider — every offer, to whom, how
//! far from the restaurant, when, and how it ended.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::orders::load_visible;
use crate::actors::Engine;
use crate::domain::RiderId;
use crate::persistence::AttemptOutcome;

#[derive(Serialize, ToSchema)]
pub struct Attempt {
    pub rider_id: RiderId,
    /// Great-circle distance from the rider to the restaurant when offered.
    pub distance_m: f64,
    pub offered_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
}

#[derive(Serialize, ToSchema)]
pub struct DispatchExplanation {
    pub attempts: Vec<Attempt>,
}

#[utoipa::path(get, path = "/v1/orders/{id}/dispatch", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = DispatchExplanation), (status = 403), (status = 404)),
    security(("bearer" = [])))]
#[get("/v1/orders/{id}/dispatch")]
pub async fn dispatch(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    if !(caller.is(Role::Ops) || caller.is(Role::Restaurant)) {
        return Err(ApiError::forbidden());
    }
    let order = load_visible(&engine, &caller, *id).await?;
    let attempts = engine
        .dispatch_attempts(order.id)
        .await?
        .into_iter()
        .map(|a| Attempt {
            rider_id: a.rider_id,
            distance_m: a.distance_m,
            offered_at: a.offered_at,
            outcome: a.outcome,
        })
        .collect();
    Ok(HttpResponse::Ok().json(DispatchExplanation { attempts }))
}
