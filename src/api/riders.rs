//! `/v1/riders`: registration, availability, position, and answers to offers.

use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{MAX_NAME_CHARS, ValidJson, text};
use super::idempotency::{self, Reply};
use crate::actors::Engine;
use crate::domain::{LatLng, OrderId, RiderId, RiderStatus};
use crate::wire::{OrderView, RiderView};

#[derive(Deserialize, ToSchema)]
pub struct CreateRider {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
}

/// What a rider may set; `busy` belongs to the engine.
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum SettableStatus {
    Available,
    Offline,
}

#[derive(Deserialize, ToSchema)]
pub struct SetStatus {
    pub status: SettableStatus,
}

#[derive(Serialize, ToSchema)]
pub struct OfferRejected {
    pub order_id: OrderId,
    pub rejected: bool,
}

#[utoipa::path(post, path = "/v1/riders", tag = "registration", request_body = CreateRider,
    responses((status = 201, body = RiderView), (status = 400), (status = 403)), security(("bearer" = [])))]
#[post("/v1/riders")]
pub async fn create(
    engine: web::Data<Engine>,
    caller: Caller,
    body: ValidJson<CreateRider>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let rider = engine
        .add_rider(text("name", &body.0.name, MAX_NAME_CHARS)?)
        .await?;
    Ok(HttpResponse::Created().json(RiderView::from(rider)))
}

#[utoipa::path(get, path = "/v1/riders/{id}", tag = "riders", params(("id" = Uuid, Path)),
    responses((status = 200, body = RiderView), (status = 403), (status = 404)), security(("bearer" = [])))]
#[get("/v1/riders/{id}")]
pub async fn get_one(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = RiderId(*id);
    if !caller.is(Role::Ops) {
        caller.own_rider(id)?;
    }
    Ok(HttpResponse::Ok().json(RiderView::from(engine.rider(id).await?)))
}

#[utoipa::path(put, path = "/v1/riders/{id}/status", tag = "riders", params(("id" = Uuid, Path)), request_body = SetStatus,
    responses((status = 200, body = RiderView), (status = 400), (status = 403), (status = 409)), security(("bearer" = [])))]
#[put("/v1/riders/{id}/status")]
pub async fn set_status(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: ValidJson<SetStatus>,
) -> ApiResult<HttpResponse> {
    let id = caller.own_rider(RiderId(*id))?;
    let status = match body.0.status {
        SettableStatus::Available => RiderStatus::Available,
        SettableStatus::Offline => RiderStatus::Offline,
    };
    Ok(HttpResponse::Ok().json(RiderView::from(engine.set_rider_status(id, status).await?)))
}

#[derive(Deserialize, ToSchema)]
pub struct LocationInput {
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub lng: f64,
}

#[utoipa::path(put, path = "/v1/riders/{id}/location", tag = "riders", params(("id" = Uuid, Path)), request_body = LocationInput,
    responses((status = 204), (status = 400), (status = 403), (status = 404)), security(("bearer" = [])))]
#[put("/v1/riders/{id}/location")]
pub async fn set_location(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: ValidJson<LocationInput>,
) -> ApiResult<HttpResponse> {
    let id = caller.own_rider(RiderId(*id))?;
    let at = LatLng::parse(body.0.lat, body.0.lng).map_err(|e| ApiError::invalid(e.to_string()))?;
    engine.update_location(id, at).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/v1/riders/{id}/offers/{order_id}/accept", tag = "riders",
    params(("id" = Uuid, Path), ("order_id" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 403), (status = 409, description = "offer_not_active")),
    security(("bearer" = [])))]
#[post("/v1/riders/{id}/offers/{order_id}/accept")]
pub async fn accept_offer(
    req: HttpRequest,
    engine: web::Data<Engine>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (id, order_id) = path.into_inner();
    let rider = caller.own_rider(RiderId(id))?;
    idempotency::run(&req, &engine, &caller, b"", async {
        let order = engine.accept_offer(rider, OrderId(order_id)).await?;
        Ok(Reply::ok(&OrderView::from(&order)))
    })
    .await
}

#[utoipa::path(post, path = "/v1/riders/{id}/offers/{order_id}/reject", tag = "riders",
    params(("id" = Uuid, Path), ("order_id" = Uuid, Path)),
    responses((status = 200, body = OfferRejected), (status = 403), (status = 409, description = "offer_not_active")),
    security(("bearer" = [])))]
#[post("/v1/riders/{id}/offers/{order_id}/reject")]
pub async fn reject_offer(
    req: HttpRequest,
    engine: web::Data<Engine>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (id, order_id) = path.into_inner();
    let rider = caller.own_rider(RiderId(id))?;
    idempotency::run(&req, &engine, &caller, b"", async {
        engine.reject_offer(rider, OrderId(order_id)).await?;
        Ok(Reply::ok(&OfferRejected {
            order_id: OrderId(order_id),
            rejected: true,
        }))
    })
    .await
}
