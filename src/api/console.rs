//! The ops console at `GET /ops`: a page, a script and a style sheet compiled into the binary
//! (no Node, no CDN at run time; the page may only talk to this server), and the snapshot it
//! starts from, `GET /v1/ops/live`.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Caller, Role};
use super::error::ApiResult;
use crate::actors::Engine;
use crate::wire::{OrderView, RiderView};

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");
/// Only this server: scripts, styles, fetches and the WebSocket.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                      connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// Live orders the snapshot shows at most.
const LIVE_LIMIT: usize = 2_000;

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header((CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(body)
}

#[utoipa::path(get, path = "/ops", tag = "ops",
    responses((status = 200, description = "the ops console (HTML; the ops token is entered in the page)")))]
#[get("/ops")]
pub async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

#[get("/ops/console.js")]
pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

#[get("/ops/console.css")]
pub async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

#[derive(Serialize, ToSchema)]
pub struct LiveView {
    pub riders: Vec<RiderView>,
    /// Unfinished orders (at most 2,000).
    pub orders: Vec<OrderView>,
}

#[utoipa::path(get, path = "/v1/ops/live", tag = "ops",
    responses((status = 200, body = LiveView), (status = 403)), security(("bearer" = [])))]
#[get("/v1/ops/live")]
pub async fn live(engine: web::Data<Engine>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Ops)?;
    let (riders, orders) = engine.live_view(LIVE_LIMIT).await?;
    Ok(HttpResponse::Ok().json(LiveView {
        riders: riders.into_iter().map(RiderView::from).collect(),
        orders: orders.iter().map(OrderView::from).collect(),
    }))
}
