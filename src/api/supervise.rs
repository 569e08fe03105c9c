//! `/v1/ops/…` for the supervision console: actors by kind, the audit log, and the actions
//! ops take on assignments (each audited).

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::ValidJson;
use super::orders::OrderBody;
use crate::actors::{ActorKindView, Engine};
use crate::domain::{OrderId, RiderId};
use crate::persistence::audit::AuditEntry;
use crate::wire::{OrderView, RiderView};

#[derive(Serialize, ToSchema)]
pub struct ActorKinds {
    pub kinds: Vec<ActorKindView>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Deserialize, ToSchema, Default)]
pub struct Reassign {
    /// The rider to hand the order to (available, free); absent: dispatch it again without
    /// its current rider.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub rider_id: Option<RiderId>,
}

/// Who did it, for the audit log.
pub(super) fn actor(caller: &Caller) -> String {
    format!("ops:{}", caller.sub)
}

#[utoipa::path(get, path = "/v1/ops/actors", tag = "ops",
    responses((status = 200, body = ActorKinds), (status = 403)), security(("bearer" = [])))]
#[get("/v1/ops/actors")]
pub async fn actors(engine: web::Data<Engine>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    Ok(HttpResponse::Ok().json(ActorKinds {
        kinds: engine.actor_kinds(),
    }))
}

#[utoipa::path(get, path = "/v1/ops/audit", tag = "ops", params(AuditQuery),
    responses((status = 200, body = AuditLog), (status = 400), (status = 403)), security(("bearer" = [])))]
#[get("/v1/ops/audit")]
pub async fn audit(
    engine: web::Data<Engine>,
    caller: Caller,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1 to 500"));
    }
    Ok(HttpResponse::Ok().json(AuditLog {
        entries: engine.audit(limit).await?,
    }))
}

#[utoipa::path(post, path = "/v1/ops/orders/{id}/reassign", tag = "ops", params(("id" = Uuid, Path)),
    request_body = Reassign,
    responses((status = 200, body = OrderView), (status = 400), (status = 403), (status = 404),
        (status = 409, description = "invalid_state: no rider, picked up, or the rider is not free")),
    security(("bearer" = [])))]
#[post("/v1/ops/orders/{id}/reassign")]
pub async fn reassign(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: ValidJson<Reassign>,
) -> ApiResult<OrderBody> {
    caller.require(Role::Ops)?;
    let order = engine
        .reassign(OrderId(*id), body.0.rider_id, &actor(&caller))
        .await?;
    Ok(order.into())
}

#[utoipa::path(post, path = "/v1/ops/riders/{id}/offline", tag = "ops", params(("id" = Uuid, Path)),
    responses((status = 200, body = RiderView), (status = 403), (status = 404),
        (status = 409, description = "invalid_state: the rider has picked up food")),
    security(("bearer" = [])))]
#[post("/v1/ops/riders/{id}/offline")]
pub async fn rider_offline(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let rider = engine.force_offline(RiderId(*id), &actor(&caller)).await?;
    Ok(HttpResponse::Ok().json(RiderView::from(rider)))
}
