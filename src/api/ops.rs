//! Health, readiness, metrics, and the test clock.

use actix_web::{HttpResponse, get, post, web};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::ValidJson;
use crate::actors::Engine;

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
            .json(serde_json::json!({"status": "ready", "store": engine.services().store.kind()})),
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
    metrics::gauge!("dabba_live_orders").set(engine.services().directory.live_orders() as f64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

#[derive(Deserialize, ToSchema)]
pub struct AdvanceClock {
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
    if !(0..=366 * 24 * 3600).contains(&secs) {
        return Err(ApiError::invalid("advance_seconds must be 0 to one year"));
    }
    let now = engine
        .advance_clock(chrono::Duration::seconds(secs))
        .await?;
    Ok(HttpResponse::Ok().json(ClockNow { now }))
}
