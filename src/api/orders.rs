//! `/v1/orders` and the customer's history: placement, reads, changes, cancellation, the
//! rider's pickup/delivery, ratings.

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse, Responder, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{ValidJson, optional_text, text};
use super::idempotency::{self, Reply};
use crate::actors::{Engine, NewOrderRequest};
use crate::domain::order::Refund;
use crate::domain::{
    Cents, Command, CustomerId, Delivery, ItemId, LatLng, Order, OrderId, OrderLine, Party,
    PaymentMethod, RestaurantId, RiderId,
};
use crate::persistence::HistoryCursor;
use crate::wire::{OrderView, RestaurantView};

/// Bounds on what one order may hold.
const MAX_ITEMS: usize = 100;
const MAX_QUANTITY: u32 = 1_000;
const MAX_UNIT_PRICE_CENTS: i64 = 10_000_000;

/// `200` with the order object.
pub struct OrderBody(pub Order);

impl From<Order> for OrderBody {
    fn from(o: Order) -> Self {
        Self(o)
    }
}

impl Responder for OrderBody {
    type Body = BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        HttpResponse::Ok().json(OrderView::from(&self.0))
    }
}

/// Who may read an order: its customer, its restaurant, its rider, ops.
pub fn visible_order(caller: &Caller, order: &Order) -> bool {
    order.involves(caller.party())
}

/// One line of an order: a menu item and how many. The server takes the name and price from
/// the menu; `unit_price_cents`, when sent, is the price the client showed and must match.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct ItemInput {
    /// Required: free-text items (name and price only) are refused.
    #[serde(default)]
    #[schema(value_type = String, format = Uuid)]
    pub item_id: Option<ItemId>,
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(deserialize_with = "super::extract::whole_number")]
    pub quantity: u32,
    #[serde(default, deserialize_with = "super::extract::optional_whole_number")]
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub unit_price_cents: Option<i64>,
    /// Ignored: the menu names the dish.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: Option<String>,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct DeliveryInput {
    pub location: LatLng,
    #[schema(min_length = 1, max_length = 500)]
    pub address: String,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct PlaceOrder {
    pub restaurant_id: RestaurantId,
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ItemInput>,
    pub delivery: DeliveryInput,
    #[serde(default)]
    pub deliver_at: Option<DateTime<Utc>>,
    /// How the customer pays (card by default).
    #[serde(default)]
    pub payment: Option<PaymentInput>,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct PaymentInput {
    #[serde(default)]
    pub method: PaymentMethod,
    /// The gateway's token for the customer's card or account.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateOrder {
    #[serde(default)]
    pub delivery: Option<DeliveryInput>,
    #[serde(default)]
    pub deliver_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, ToSchema)]
pub struct RateOrder {
    #[schema(minimum = 1, maximum = 5)]
    #[serde(deserialize_with = "super::extract::whole_number")]
    pub stars: u8,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub comment: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    pub order: OrderView,
    pub refund: Option<Refund>,
}

#[derive(Serialize, ToSchema)]
pub struct Rated {
    pub order_id: OrderId,
    pub stars: u8,
    pub comment: Option<String>,
    pub restaurant: RestaurantView,
}

#[derive(Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderView>,
    /// Pass as `before` to get the next (older) page; `null` on the last page.
    pub next: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next` of the previous page; absent or empty for the first page.
    #[param(
        pattern = r"^(-?[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
    )]
    pub before: Option<String>,
}

pub fn delivery(d: &DeliveryInput) -> Result<Delivery, ApiError> {
    Ok(Delivery {
        location: d.location,
        address: text("delivery.address", &d.address, 500)?,
    })
}

fn deliver_at(
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    match at {
        // Well-formed but not a time we can deliver at: 422, as for an address out of range.
        Some(t) if t < now - chrono::Duration::minutes(1) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_deliver_at",
            "deliver_at must not be in the past",
        )),
        Some(t) if t > now + chrono::Duration::days(7) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_deliver_at",
            "deliver_at must be within 7 days",
        )),
        other => Ok(other),
    }
}

/// Lines as the engine takes them: 1 to 100, each naming a menu item, bounded quantities.
pub fn validate_items(input: &[ItemInput]) -> Result<Vec<OrderLine>, ApiError> {
    if input.is_empty() || input.len() > MAX_ITEMS {
        return Err(ApiError::invalid(format!(
            "items must hold 1 to {MAX_ITEMS} entries"
        )));
    }
    input
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let item_id = it.item_id.ok_or_else(|| {
                ApiError::invalid(format!(
                    "items[{i}].item_id is required: order from the restaurant's menu"
                ))
            })?;
            if it.quantity == 0 || it.quantity > MAX_QUANTITY {
                return Err(ApiError::invalid(format!(
                    "items[{i}].quantity must be 1 to {MAX_QUANTITY}"
                )));
            }
            if let Some(price) = it.unit_price_cents
                && !(0..=MAX_UNIT_PRICE_CENTS).contains(&price)
            {
                return Err(ApiError::invalid(format!(
                    "items[{i}].unit_price_cents must be 0 to {MAX_UNIT_PRICE_CENTS}"
                )));
            }
            Ok(OrderLine {
                item_id,
                quantity: it.quantity,
                shown_price: it.unit_price_cents.map(Cents),
            })
        })
        .collect()
}

fn idempotency_key(
    headers: &HeaderMap,
    body: &PlaceOrder,
) -> Result<Option<(String, String)>, ApiError> {
    let Some(key) = idempotency::key(headers)? else {
        return Ok(None);
    };
    // The body as parsed, re-serialised: a fingerprint independent of whitespace.
    let canonical = serde_json::to_vec(body).map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(Some((key, idempotency::fingerprint(&[&canonical]))))
}

#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = PlaceOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe placement")),
    responses((status = 201, body = OrderView), (status = 400), (status = 404),
        (status = 402, description = "payment_declined: no order was placed"),
        (status = 409, description = "restaurant_closed or price_changed"),
        (status = 422, description = "out_of_radius, item_unavailable, invalid_deliver_at or idempotency_key_reused")),
    security(("bearer" = [])))]
#[post("/v1/orders")]
pub async fn place(
    req: HttpRequest,
    engine: web::Data<Engine>,
    caller: Caller,
    body: ValidJson<PlaceOrder>,
) -> ApiResult<HttpResponse> {
    let customer_id = caller.customer()?;
    let body = body.0;
    let idem = idempotency_key(req.headers(), &body)?;
    let request = NewOrderRequest {
        customer_id,
        restaurant_id: body.restaurant_id,
        lines: validate_items(&body.items)?,
        delivery: delivery(&body.delivery)?,
        deliver_at: deliver_at(body.deliver_at, engine.now())?,
        payment: body.payment.as_ref().map(|p| p.method).unwrap_or_default(),
        payment_token: optional_text(
            "payment.token",
            body.payment.as_ref().and_then(|p| p.token.as_deref()),
            200,
        )?,
        recurring_id: None,
    };
    let (order, _created) = engine.place_order(request, idem).await?;
    Ok(HttpResponse::Created().json(OrderView::from(&order)))
}

/// The order if `caller` may see it: unknown is 404, someone else's is 403.
pub async fn load_visible(engine: &Engine, caller: &Caller, id: Uuid) -> ApiResult<Order> {
    let order = engine.order(OrderId(id)).await?;
    if !visible_order(caller, &order) {
        return Err(ApiError::forbidden());
    }
    Ok(order)
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 403), (status = 404)), security(("bearer" = [])))]
#[get("/v1/orders/{id}")]
pub async fn get_one(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<OrderBody> {
    Ok(load_visible(&engine, &caller, *id).await?.into())
}

/// Reads the caller's own order (customers only), for changes whose input is judged after
/// who may make them.
async fn own_order(engine: &Engine, caller: &Caller, id: Uuid) -> ApiResult<Order> {
    let customer = Party::Customer(caller.customer()?);
    let order = engine.order(OrderId(id)).await?;
    if !order.involves(customer) {
        return Err(ApiError::forbidden());
    }
    Ok(order)
}

#[utoipa::path(patch, path = "/v1/orders/{id}", tag = "orders", params(("id" = Uuid, Path)), request_body = UpdateOrder,
    responses((status = 200, body = OrderView), (status = 403), (status = 404),
        (status = 409, description = "update_window_closed"), (status = 422, description = "out_of_radius or invalid_deliver_at")),
    security(("bearer" = [])))]
#[patch("/v1/orders/{id}")]
pub async fn update(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: ValidJson<UpdateOrder>,
) -> ApiResult<OrderBody> {
    // Who may touch the order is decided before what they sent is judged.
    let order = own_order(&engine, &caller, *id).await?;
    let body = body.0;
    if body.delivery.is_none() && body.deliver_at.is_none() {
        return Err(ApiError::invalid("give delivery, deliver_at or both"));
    }
    let cmd = Command::Update {
        delivery: body.delivery.as_ref().map(delivery).transpose()?,
        deliver_at: deliver_at(body.deliver_at, engine.now())?,
    };
    Ok(engine.apply(order.id, cmd).await?.into())
}

#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = Cancelled), (status = 403), (status = 404),
        (status = 409, description = "cancellation_window_closed or invalid_state")),
    security(("bearer" = [])))]
#[post("/v1/orders/{id}/cancel")]
pub async fn cancel(
    req: HttpRequest,
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    idempotency::run(&req, &engine, &caller, b"", async {
        let customer = Party::Customer(caller.customer()?);
        let order = engine.act(customer, OrderId(*id), Command::Cancel).await?;
        Ok(Reply::ok(&Cancelled {
            refund: order.refund,
            order: OrderView::from(&order),
        }))
    })
    .await
}

fn assigned_rider(caller: &Caller) -> ApiResult<RiderId> {
    caller.require(Role::Rider).map(|_| RiderId(caller.sub))
}

#[utoipa::path(post, path = "/v1/orders/{id}/pickup", tag = "riders", params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
#[post("/v1/orders/{id}/pickup")]
pub async fn pickup(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<OrderBody> {
    let rider = assigned_rider(&caller)?;
    let cmd = Command::Pickup(rider);
    Ok(engine
        .act(Party::Rider(rider), OrderId(*id), cmd)
        .await?
        .into())
}

#[utoipa::path(post, path = "/v1/orders/{id}/deliver", tag = "riders", params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
#[post("/v1/orders/{id}/deliver")]
pub async fn deliver(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<OrderBody> {
    let rider = assigned_rider(&caller)?;
    let cmd = Command::Deliver(rider);
    Ok(engine
        .act(Party::Rider(rider), OrderId(*id), cmd)
        .await?
        .into())
}

#[utoipa::path(post, path = "/v1/orders/{id}/rating", tag = "orders", params(("id" = Uuid, Path)), request_body = RateOrder,
    responses((status = 201, body = Rated), (status = 403), (status = 404),
        (status = 409, description = "already_rated or not delivered")),
    security(("bearer" = [])))]
#[post("/v1/orders/{id}/rating")]
pub async fn rate(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: ValidJson<RateOrder>,
) -> ApiResult<HttpResponse> {
    let order = own_order(&engine, &caller, *id).await?;
    let body = body.0;
    if !(1..=5).contains(&body.stars) {
        return Err(ApiError::invalid("stars must be 1 to 5"));
    }
    let comment = optional_text("comment", body.comment.as_deref(), 1_000)?;
    let restaurant = engine.rate(&order, body.stars, comment.clone()).await?;
    Ok(HttpResponse::Created().json(Rated {
        order_id: order.id,
        stars: body.stars,
        comment,
        restaurant: RestaurantView::from(&restaurant),
    }))
}

#[utoipa::path(get, path = "/v1/customers/{id}/orders", tag = "orders", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = OrderPage), (status = 400), (status = 403)), security(("bearer" = [])))]
#[get("/v1/customers/{id}/orders")]
pub async fn history(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    q: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let customer = CustomerId(*id);
    if !(caller.is(Role::Ops) || (caller.is(Role::Customer) && caller.sub == customer.0)) {
        return Err(ApiError::forbidden());
    }
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1 to 100"));
    }
    let cursor = match q.before.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            HistoryCursor::decode(c)
                .ok_or_else(|| ApiError::invalid("before is not a cursor from `next`"))?,
        ),
    };
    let orders = engine.history(customer, cursor, limit).await?;
    let next = (orders.len() == limit as usize)
        .then(|| {
            orders.last().map(|o| {
                HistoryCursor {
                    placed_at_ms: o.placed_at.timestamp_millis(),
                    id: o.id,
                }
                .encode()
            })
        })
        .flatten();
    Ok(HttpResponse::Ok().json(OrderPage {
        orders: orders.iter().map(OrderView::from).collect(),
        next,
    }))
}
