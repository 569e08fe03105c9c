//! `/v1/recurring-orders`: a customer's standing orders — days, a local time, a time zone —
//! each occurrence placed as a normal order an hour before its time.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{ValidJson, optional_text};
use super::orders::{DeliveryInput, ItemInput, PaymentInput, delivery, validate_items};
use crate::actors::Engine;
use crate::actors::{EngineError, NewRecurring};
use crate::domain::recurring::{
    OccurrenceRecord, Recurring, Schedule, ScheduleError, ScheduleSpec,
};
use crate::domain::{CustomerId, Delivery, ItemId, PaymentMethod, RecurringId, RestaurantId};

#[derive(Deserialize, ToSchema)]
pub struct CreateRecurring {
    pub restaurant_id: RestaurantId,
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ItemInput>,
    pub delivery: DeliveryInput,
    /// How each occurrence is paid (card by default).
    #[serde(default)]
    pub payment: Option<PaymentInput>,
    pub schedule: ScheduleSpec,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateRecurring {
    #[serde(default)]
    pub paused: Option<bool>,
    #[serde(default)]
    pub schedule: Option<ScheduleSpec>,
}

#[derive(Deserialize, ToSchema)]
pub struct SkipDate {
    /// A local date of the schedule's time zone, `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
}

#[derive(Serialize, ToSchema)]
pub struct RecurringLine {
    pub item_id: ItemId,
    pub quantity: u32,
}

#[derive(Serialize, ToSchema)]
pub struct RecurringView {
    pub id: RecurringId,
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    pub items: Vec<RecurringLine>,
    pub delivery: Delivery,
    pub payment: PaymentMethod,
    pub schedule: ScheduleSpec,
    pub paused: bool,
    /// Dates that will not be placed.
    #[schema(value_type = Vec<String>)]
    pub skips: Vec<NaiveDate>,
    /// When the next occurrence is wanted (it is placed an hour before); `null` while paused.
    pub next_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
    /// What became of past dates, newest first (on `GET` of one recurring order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurrences: Option<Vec<OccurrenceRecord>>,
}

impl From<&Recurring> for RecurringView {
    fn from(r: &Recurring) -> Self {
        Self {
            id: r.id,
            customer_id: r.customer_id,
            restaurant_id: r.restaurant_id,
            items: r
                .lines
                .iter()
                .map(|l| RecurringLine {
                    item_id: l.item_id,
                    quantity: l.quantity,
                })
                .collect(),
            delivery: r.delivery.clone(),
            payment: r.payment,
            schedule: r.schedule.clone().into(),
            paused: r.paused,
            skips: r.skips.iter().copied().collect(),
            next_at: r.next.map(|o| o.deliver_at),
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            occurrences: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RecurringList {
    pub recurring_orders: Vec<RecurringView>,
}

/// A malformed schedule is `400`; a well-formed one naming a time zone that does not exist is
/// `422 invalid_schedule` (as a delivery point out of range is `422`).
fn schedule(spec: ScheduleSpec) -> Result<Schedule, ApiError> {
    Schedule::try_from(spec).map_err(|e| match e {
        ScheduleError::UnknownTimeZone(_) => ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_schedule",
            e.to_string(),
        ),
        other => ApiError::invalid(other.to_string()),
    })
}

/// Only its customer changes a recurring order; ops may read it.
fn owner(caller: &Caller) -> impl FnOnce(&Recurring) -> Result<(), EngineError> + '_ {
    move |r| {
        if caller.is(Role::Customer) && caller.sub == r.customer_id.0 {
            Ok(())
        } else {
            Err(EngineError::Forbidden)
        }
    }
}

#[utoipa::path(post, path = "/v1/recurring-orders", tag = "orders", request_body = CreateRecurring,
    responses((status = 201, body = RecurringView), (status = 400), (status = 403), (status = 404),
        (status = 422, description = "out_of_radius, item_unavailable or invalid_schedule (unknown time zone)")),
    security(("bearer" = [])))]
#[post("/v1/recurring-orders")]
pub async fn create(
    engine: web::Data<Engine>,
    caller: Caller,
    body: ValidJson<CreateRecurring>,
) -> ApiResult<HttpResponse> {
    let customer_id = caller.customer()?;
    let b = body.0;
    let input = NewRecurring {
        customer_id,
        restaurant_id: b.restaurant_id,
        lines: validate_items(&b.items)?
            .into_iter()
            // Each occurrence is priced by the menu of its day.
            .map(|l| crate::domain::OrderLine {
                shown_price: None,
                ..l
            })
            .collect(),
        delivery: delivery(&b.delivery)?,
        payment: b.payment.as_ref().map(|p| p.method).unwrap_or_default(),
        payment_token: optional_text(
            "payment.token",
            b.payment.as_ref().and_then(|p| p.token.as_deref()),
            200,
        )?,
        schedule: schedule(b.schedule)?,
    };
    let r = engine.create_recurring(input).await?;
    Ok(HttpResponse::Created().json(RecurringView::from(&r)))
}

#[utoipa::path(get, path = "/v1/recurring-orders/{id}", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = RecurringView), (status = 403), (status = 404)), security(("bearer" = [])))]
#[get("/v1/recurring-orders/{id}")]
pub async fn get_one(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let r = engine.recurring(RecurringId(*id)).await?;
    if !caller.is(Role::Ops) {
        owner(&caller)(&r)?;
    }
    let mut view = RecurringView::from(&r);
    view.occurrences = Some(engine.occurrences(r.id).await?);
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/v1/customers/{id}/recurring-orders", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = RecurringList), (status = 403)), security(("bearer" = [])))]
#[get("/v1/customers/{id}/recurring-orders")]
pub async fn list(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let customer = CustomerId(*id);
    if !(caller.is(Role::Ops) || (caller.is(Role::Customer) && caller.sub == customer.0)) {
        return Err(ApiError::forbidden());
    }
    let all = engine.customer_recurring(customer).await?;
    Ok(HttpResponse::Ok().json(RecurringList {
        recurring_orders: all.iter().map(RecurringView::from).collect(),
    }))
}

#[utoipa::path(patch, path = "/v1/recurring-orders/{id}", tag = "orders", params(("id" = Uuid, Path)),
    request_body = UpdateRecurring,
    responses((status = 200, body = RecurringView, description = "the recurring order (unchanged when the body changes nothing)"),
        (status = 400), (status = 403), (status = 404),
        (status = 422, description = "invalid_schedule (unknown time zone)")),
    security(("bearer" = [])))]
#[patch("/v1/recurring-orders/{id}")]
pub async fn update(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: ValidJson<UpdateRecurring>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let schedule = b.schedule.map(schedule).transpose()?;
    let r = engine
        .update_recurring(RecurringId(*id), owner(&caller), b.paused, schedule)
        .await?;
    Ok(HttpResponse::Ok().json(RecurringView::from(&r)))
}

#[utoipa::path(post, path = "/v1/recurring-orders/{id}/skip", tag = "orders", params(("id" = Uuid, Path)),
    request_body = SkipDate,
    responses((status = 200, body = RecurringView), (status = 400), (status = 403), (status = 404),
        (status = 409, description = "invalid_state: the date passed or was already placed")),
    security(("bearer" = [])))]
#[post("/v1/recurring-orders/{id}/skip")]
pub async fn skip(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: ValidJson<SkipDate>,
) -> ApiResult<HttpResponse> {
    let r = engine
        .skip_recurring(RecurringId(*id), owner(&caller), body.0.date)
        .await?;
    Ok(HttpResponse::Ok().json(RecurringView::from(&r)))
}

#[utoipa::path(delete, path = "/v1/recurring-orders/{id}", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
#[delete("/v1/recurring-orders/{id}")]
pub async fn remove(
    engine: web::Data<Engine>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    engine
        .delete_recurring(RecurringId(*id), owner(&caller))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
