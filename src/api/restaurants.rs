//! `/v1/restaurants`: registration, lookup, nearby search, and the restaurant's answer to orders.

use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{MAX_NAME_CHARS, MAX_REASON_CHARS, MaybeJson, ValidJson, optional_text, text};
use super::idempotency::{self, Reply};
use crate::actors::Engine;
use crate::domain::{Command, LatLng, OrderId, Party, RestaurantId, Stage};
use crate::wire::{OrderView, RestaurantView};

#[derive(Deserialize, ToSchema)]
pub struct CreateRestaurant {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub location: LatLng,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearQuery {
    #[param(minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    #[param(minimum = -180.0, maximum = 180.0)]
    pub lng: f64,
}

#[derive(serde::Serialize, ToSchema)]
pub struct RestaurantList {
    pub restaurants: Vec<RestaurantView>,
}

#[derive(Deserialize, ToSchema)]
pub struct RejectOrder {
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct SetOpen {
    pub open: bool,
}

#[utoipa::path(post, path = "/v1/restaurants", tag = "registration", request_body = CreateRestaurant,
    responses((status = 201, body = RestaurantView), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
#[post("/v1/restaurants")]
pub async fn create(
    engine: web::Data<Engine>,
    caller: Caller,
    body: ValidJson<CreateRestaurant>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let name = text("name", &body.0.name, MAX_NAME_CHARS)?;
    let r = engine.add_restaurant(name, body.0.location).await?;
    Ok(HttpResponse::Created().json(RestaurantView::from(&r)))
}

#[utoipa::path(get, path = "/v1/restaurants/{id}", tag = "restaurants",
    params(("id" = Uuid, Path)), responses((status = 200, body = RestaurantView), (status = 404)),
    security(("bearer" = [])))]
#[get("/v1/restaurants/{id}")]
pub async fn get_one(
    engine: web::Data<Engine>,
    _caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let r = engine.restaurant(RestaurantId(*id))?;
    Ok(HttpResponse::Ok().json(RestaurantView::from(&r)))
}

#[utoipa::path(get, path = "/v1/restaurants", tag = "restaurants", params(NearQuery),
    responses((status = 200, body = RestaurantList), (status = 400)), security(("bearer" = [])))]
#[get("/v1/restaurants")]
pub async fn near(
    engine: web::Data<Engine>,
    _caller: Caller,
    q: web::Query<NearQuery>,
) -> ApiResult<HttpResponse> {
    let at = LatLng::parse(q.lat, q.lng).map_err(|e| ApiError::invalid(e.to_string()))?;
    let restaurants = engine
        .restaurants_near(at)
        .into_iter()
        .map(|(r, d)| RestaurantView {
            distance_m: Some(d.round()),
            ..RestaurantView::from(&r)
        })
        .collect();
    Ok(HttpResponse::Ok().json(RestaurantList { restaurants }))
}

/// Opens or closes a restaurant for new orders (the restaurant itself, or ops).
#[utoipa::path(put, path = "/v1/restaurants/{id}/open", tag = "restaurants", request_body = SetOpen,
    params(("id" = Uuid, Path)), responses((status = 200, body = RestaurantView), (status = 403), (status = 404)),
    security(("bearer" = [])))]
#[put("/v1/restaurants/{id}/open")]
pub async fn set_open(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: ValidJson<SetOpen>,
) -> ApiResult<HttpResponse> {
    let id = RestaurantId(*id);
    if !caller.is(Role::Ops) {
        caller.own_restaurant(id)?;
    }
    let r = engine.set_restaurant_status(id, body.0.open, None).await?;
    Ok(HttpResponse::Ok().json(RestaurantView::from(&r)))
}

#[derive(Deserialize, ToSchema)]
pub struct RestaurantStatus {
    pub open: bool,
    /// Minutes the kitchen takes to prepare an order (kept when absent).
    #[serde(default, deserialize_with = "super::extract::optional_whole_number")]
    #[schema(minimum = 0, maximum = 240)]
    pub prep_minutes: Option<u32>,
}

/// Opens or closes a restaurant and sets its preparation time (the restaurant, or ops).
#[utoipa::path(put, path = "/v1/restaurants/{id}/status", tag = "restaurants", request_body = RestaurantStatus,
    params(("id" = Uuid, Path)), responses((status = 200, body = RestaurantView), (status = 400), (status = 403), (status = 404)),
    security(("bearer" = [])))]
#[put("/v1/restaurants/{id}/status")]
pub async fn set_status(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: ValidJson<RestaurantStatus>,
) -> ApiResult<HttpResponse> {
    let id = RestaurantId(*id);
    if !caller.is(Role::Ops) {
        caller.own_restaurant(id)?;
    }
    if body.0.prep_minutes.is_some_and(|m| m > MAX_PREP_MINUTES) {
        return Err(ApiError::invalid(format!(
            "prep_minutes must be 0 to {MAX_PREP_MINUTES}"
        )));
    }
    let r = engine
        .set_restaurant_status(id, body.0.open, body.0.prep_minutes)
        .await?;
    if caller.is(Role::Ops) {
        // Ops opening or closing a restaurant is an ops action: audited.
        let action = if body.0.open {
            "restaurant_open"
        } else {
            "restaurant_close"
        };
        let actor = super::supervise::actor(&caller);
        engine
            .record_action(&actor, action, format!("restaurant:{id}"), None)
            .await;
    }
    Ok(HttpResponse::Ok().json(RestaurantView::from(&r)))
}

const MAX_PREP_MINUTES: u32 = 240;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StageQuery {
    /// One stage; absent lists every unfinished order. Finished stages reach back a day.
    pub stage: Option<Stage>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct RestaurantOrders {
    pub orders: Vec<OrderView>,
}

/// The restaurant's orders by stage, oldest first: a tablet that was offline finds its work.
#[utoipa::path(get, path = "/v1/restaurants/{id}/orders", tag = "restaurants", params(("id" = Uuid, Path), StageQuery),
    responses((status = 200, body = RestaurantOrders), (status = 400), (status = 403), (status = 404)),
    security(("bearer" = [])))]
#[get("/v1/restaurants/{id}/orders")]
pub async fn orders(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    q: web::Query<StageQuery>,
) -> ApiResult<HttpResponse> {
    let id = RestaurantId(*id);
    if !caller.is(Role::Ops) {
        caller.own_restaurant(id)?;
    }
    let orders = engine.restaurant_orders(id, q.stage).await?;
    Ok(HttpResponse::Ok().json(RestaurantOrders {
        orders: orders.iter().map(OrderView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/restaurants/{rid}/orders/{oid}/accept", tag = "restaurants",
    params(("rid" = Uuid, Path), ("oid" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 403), (status = 404), (status = 409)),
    security(("bearer" = [])))]
#[post("/v1/restaurants/{rid}/orders/{oid}/accept")]
pub async fn accept_order(
    req: HttpRequest,
    engine: web::Data<Engine>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (rid, oid) = path.into_inner();
    idempotency::run(&req, &engine, &caller, b"", async {
        let restaurant = Party::Restaurant(caller.own_restaurant(RestaurantId(rid))?);
        let cmd = Command::AcceptByRestaurant;
        let order = engine.act(restaurant, OrderId(oid), cmd).await?;
        Ok(Reply::ok(&OrderView::from(&order)))
    })
    .await
}

#[utoipa::path(post, path = "/v1/restaurants/{rid}/orders/{oid}/reject", tag = "restaurants",
    params(("rid" = Uuid, Path), ("oid" = Uuid, Path)), request_body = RejectOrder,
    responses((status = 200, body = OrderView), (status = 403), (status = 404), (status = 409)),
    security(("bearer" = [])))]
#[post("/v1/restaurants/{rid}/orders/{oid}/reject")]
pub async fn reject_order(
    req: HttpRequest,
    engine: web::Data<Engine>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: MaybeJson<RejectOrder>,
) -> ApiResult<HttpResponse> {
    let (rid, oid) = path.into_inner();
    let reason = optional_text(
        "reason",
        body.0.as_ref().and_then(|b| b.reason.as_deref()),
        MAX_REASON_CHARS,
    )?
    .unwrap_or_default();
    idempotency::run(&req, &engine, &caller, reason.as_bytes(), async {
        let restaurant = Party::Restaurant(caller.own_restaurant(RestaurantId(rid))?);
        let cmd = Command::RejectByRestaurant {
            reason: reason.clone(),
        };
        let order = engine.act(restaurant, OrderId(oid), cmd).await?;
        Ok(Reply::ok(&OrderView::from(&order)))
    })
    .await
}
