//! The HTTP + WebSocket edge: routing, auth, validation, error mapping, OpenAPI.
//!
//! Handlers parse and authorise, then call the [`Engine`](crate::actors::Engine); they never
//! decide a business rule.

pub mod auth;
pub mod customers;
pub mod error;
pub mod extract;
#[cfg(test)]
mod fuzz;
pub mod gate;
pub mod idempotency;
pub mod limits;
pub mod ops;
pub mod orders;
pub mod restaurants;
pub mod riders;
pub mod ws;

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "dabba", description = "Real-time dispatch engine for food delivery"),
    paths(
        ops::healthz, ops::readyz, ops::prometheus, ops::advance_clock, ops::inject_fault, ops::run_retention,
        restaurants::create, restaurants::get_one, restaurants::near, restaurants::set_open,
        restaurants::accept_order, restaurants::reject_order,
        riders::create, riders::get_one, riders::set_status, riders::set_location,
        riders::accept_offer, riders::reject_offer,
        customers::create,
        orders::place, orders::get_one, orders::update, orders::cancel, orders::pickup,
        orders::deliver, orders::rate, orders::history,
        ws::connect,
    ),
    components(schemas(crate::wire::ServerMessage, crate::wire::ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("route"))
}

/// Which optional routes are on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    /// `POST /v1/test/clock`
    pub test_clock: bool,
    /// `POST /v1/ops/faults`
    pub faults: bool,
}

/// Registers every route, plus the optional ones `features` turns on.
pub fn configure(cfg: &mut web::ServiceConfig, features: Features) {
    extract::configure_extractors(cfg);
    cfg.service(ops::healthz)
        .service(ops::readyz)
        .service(ops::prometheus)
        .route("/openapi.json", web::get().to(openapi_json))
        .service(restaurants::create)
        .service(restaurants::near)
        .service(restaurants::get_one)
        .service(restaurants::set_open)
        .service(restaurants::accept_order)
        .service(restaurants::reject_order)
        .service(riders::create)
        .service(riders::get_one)
        .service(riders::set_status)
        .service(riders::set_location)
        .service(riders::accept_offer)
        .service(riders::reject_offer)
        .service(customers::create)
        .service(orders::place)
        .service(orders::get_one)
        .service(orders::update)
        .service(orders::cancel)
        .service(orders::pickup)
        .service(orders::deliver)
        .service(orders::rate)
        .service(orders::history)
        .service(ops::run_retention)
        .service(ws::connect);
    if features.test_clock {
        cfg.service(ops::advance_clock);
    }
    if features.faults {
        cfg.service(ops::inject_fault);
    }
    cfg.default_service(web::to(not_found));
}
