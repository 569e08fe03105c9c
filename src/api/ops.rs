//! Health, readiness, metrics, and the test clock.

use actix_web::{HttpResponse, get, post, web};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::ValidJson;
use crate::actors::{Engine, FaultTarget};
use crate::domain::OrderId;
use crate::persistence::PurgeReport;

/// The test clock moves at most a leap year per call.
const MAX_CLOCK_STEP_SECS: i64 = 366 * 24 * 3600;

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "the process is up")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "storage reachable"), (status = 503, description = "storage unreachable")))]
#[get("/readyz")]
pub async fn readyz(engine: web::Data<Engine>) -> HttpResponse {
    match engine.ready().await {
        Ok(()) => HttpResponse::Ok()
            .json(serde_json::json!({"status": "ready", "store": engine.store_kind()})),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::from(e)),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format")))]
#[get("/metrics")]
pub async fn prometheus(
    engine: web::Data<Engine>,
    handle: web::Data<PrometheusHandle>,
) -> HttpResponse {
    if let Ok(stats) = engine.dispatch_stats().await {
        metrics::gauge!("dabba_riders").set(stats.riders as f64);
        metrics::gauge!("dabba_riders_available").set(stats.available as f64);
        metrics::gauge!("dabba_orders_waiting_for_rider").set(stats.waiting_orders as f64);
    }
    metrics::gauge!("dabba_live_orders").set(engine.live_orders() as f64);
    // Sets `dabba_actors{kind}` and `dabba_actor_mailbox{kind}`.
    engine.actor_kinds();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

#[derive(Deserialize, ToSchema)]
pub struct AdvanceClock {
    #[serde(deserialize_with = "super::extract::whole_number")]
    pub advance_seconds: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ClockNow {
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Only routed when the server runs with `DABBA_TEST_CLOCK=1`.
#[utoipa::path(post, path = "/v1/test/clock", tag = "ops", request_body = AdvanceClock,
    responses((status = 200, body = ClockNow), (status = 400), (status = 403),
        (status = 404, description = "the test clock is not enabled")), security(("bearer" = [])))]
#[post("/v1/test/clock")]
pub async fn advance_clock(
    engine: web::Data<Engine>,
    caller: Caller,
    body: ValidJson<AdvanceClock>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let secs = body.0.advance_seconds;
    if !(0..=MAX_CLOCK_STEP_SECS).contains(&secs) {
        return Err(ApiError::invalid("advance_seconds must be 0 to one year"));
    }
    let now = engine
        .advance_clock(chrono::Duration::seconds(secs))
        .await?;
    Ok(HttpResponse::Ok().json(ClockNow { now }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultActor {
    Order,
    Dispatcher,
    /// The probe consumer: fails every event of `order_id` (or, with `"poison": false`, stops).
    Consumer,
}

#[derive(Deserialize, ToSchema)]
pub struct InjectFault {
    pub actor: FaultActor,
    /// The live order, for `"actor": "order"`; the poisoned order for `"consumer"`.
    pub order_id: Option<OrderId>,
    /// For `"actor": "consumer"`: start (default) or stop failing the order's events.
    pub poison: Option<bool>,
}

/// Makes an actor fail as a bug would, to exercise supervision. Only routed when the server
/// runs with `DABBA_FAULT_INJECTION=1`.
#[utoipa::path(post, path = "/v1/ops/faults", tag = "ops", request_body = InjectFault,
    responses((status = 202, description = "the actor failed and is being restarted"), (status = 403),
        (status = 404, description = "fault injection is off, or no such live actor")),
    security(("bearer" = [])))]
#[post("/v1/ops/faults")]
pub async fn inject_fault(
    engine: web::Data<Engine>,
    caller: Caller,
    body: ValidJson<InjectFault>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let target = match (body.0.actor, body.0.order_id) {
        (FaultActor::Order, Some(id)) => FaultTarget::Order(id),
        (FaultActor::Order, None) => {
            return Err(ApiError::invalid("order_id is required for an order actor"));
        }
        (FaultActor::Dispatcher, _) => FaultTarget::Dispatcher,
        (FaultActor::Consumer, Some(order)) => FaultTarget::ConsumerPoison {
            order,
            poisoned: body.0.poison.unwrap_or(true),
        },
        (FaultActor::Consumer, None) => {
            return Err(ApiError::invalid("order_id is required for the consumer"));
        }
    };
    engine.inject_fault(target).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"injected": true})))
}

/// Runs the retention job now (it also runs hourly).
#[utoipa::path(post, path = "/v1/ops/retention", tag = "ops",
    responses((status = 200, body = PurgeReport), (status = 403)), security(("bearer" = [])))]
#[post("/v1/ops/retention")]
pub async fn run_retention(engine: web::Data<Engine>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    Ok(HttpResponse::Ok().json(engine.purge().await?))
}
