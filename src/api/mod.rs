//! The HTTP + WebSocket edge: routing, auth, validation, error mapping, OpenAPI.
//!
//! Handlers parse and authorise, then call the [`Engine`](crate::actors::Engine); they never
//! decide a business rule.

pub mod auth;
pub mod console;
pub mod customers;
pub mod error;
pub mod events;
pub mod explain;
pub mod extract;
#[cfg(test)]
mod fuzz;
pub mod gate;
pub mod idempotency;
pub mod limits;
pub mod menus;
pub mod money;
pub mod observe;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod quotes;
pub mod recurring;
pub mod restaurants;
pub mod riders;
pub mod shared_limits;
pub mod supervise;
pub mod ws;

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use error::ApiError;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "dabba", description = "Real-time dispatch engine for food delivery"),
    paths(
        ops::healthz, ops::readyz, ops::prometheus, ops::advance_clock, ops::inject_fault, ops::run_retention,
        restaurants::create, restaurants::get_one, restaurants::near, restaurants::set_open, restaurants::set_status, restaurants::orders,
        restaurants::accept_order, restaurants::reject_order, menus::put_menu, menus::get_menu,
        riders::create, riders::get_one, riders::set_status, riders::set_location,
        riders::accept_offer, riders::reject_offer,
        customers::create,
        orders::place, orders::get_one, orders::update, orders::cancel, orders::pickup,
        orders::deliver, orders::rate, orders::history, events::order_events,
        events::dead_letters, events::replay_dead_letter, events::stats,
        money::payment, money::restaurant_payouts, money::rider_earnings, money::run_payouts,
        money::trial_balance, money::reconciliation, quotes::cancellation, explain::dispatch,
        recurring::create, recurring::get_one, recurring::list, recurring::update, recurring::skip,
        recurring::remove, supervise::actors, supervise::audit, supervise::reassign,
        supervise::rider_offline, console::page, console::live,
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

/// The finished contract of this server (dev routes only when on).
struct Contract(serde_json::Value);

async fn openapi_json(contract: web::Data<Contract>) -> HttpResponse {
    HttpResponse::Ok().json(&contract.0)
}

/// No route: `405` with `Allow` when the path exists with other methods, else `404`.
async fn no_route(
    req: actix_web::HttpRequest,
    contract: web::Data<Contract>,
) -> Result<HttpResponse, ApiError> {
    let allowed = openapi::allowed_methods(&contract.0, req.path())
        .or_else(|| (req.path() == "/openapi.json").then(|| vec!["GET".to_owned()]));
    match allowed {
        Some(methods) => Err(ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} is not allowed here; use {}",
                req.method(),
                methods.join(", ")
            ),
        )
        .allow(methods.join(", "))),
        None => Err(ApiError::not_found("route")),
    }
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
    cfg.app_data(web::Data::new(Contract(openapi::document(features))));
    // Routes are tried in registration order, each dynamic one a regex match: the requests
    // of an order's life come first (they are nearly all the traffic), the rest after. No
    // two patterns here match the same path, so the order changes no answer.
    cfg.service(orders::place)
        .service(restaurants::accept_order)
        .service(riders::accept_offer)
        .service(riders::reject_offer)
        .service(orders::pickup)
        .service(orders::deliver)
        .service(orders::cancel)
        .service(orders::update)
        .service(ws::connect)
        .service(ops::healthz)
        .service(ops::readyz)
        .service(ops::prometheus)
        .route("/openapi.json", web::get().to(openapi_json))
        .service(restaurants::create)
        .service(restaurants::near)
        .service(restaurants::get_one)
        .service(restaurants::set_open)
        .service(restaurants::set_status)
        .service(restaurants::orders)
        .service(menus::put_menu)
        .service(menus::get_menu)
        .service(restaurants::reject_order)
        .service(riders::create)
        .service(riders::get_one)
        .service(riders::set_status)
        .service(riders::set_location)
        .service(customers::create)
        .service(orders::get_one)
        .service(orders::rate)
        .service(orders::history)
        .service(events::order_events)
        .service(events::dead_letters)
        .service(events::replay_dead_letter)
        .service(events::stats)
        .service(money::payment)
        .service(money::restaurant_payouts)
        .service(money::rider_earnings)
        .service(money::run_payouts)
        .service(money::trial_balance)
        .service(money::reconciliation)
        .service(quotes::cancellation)
        .service(explain::dispatch)
        .service(recurring::create)
        .service(recurring::list)
        .service(recurring::get_one)
        .service(recurring::update)
        .service(recurring::skip)
        .service(recurring::remove)
        .service(supervise::actors)
        .service(supervise::audit)
        .service(supervise::reassign)
        .service(supervise::rider_offline)
        .service(console::page)
        .service(console::script)
        .service(console::style)
        .service(console::live)
        .service(ops::run_retention);
    if features.test_clock {
        cfg.service(ops::advance_clock);
    }
    if features.faults {
        cfg.service(ops::inject_fault);
    }
    cfg.default_service(web::to(no_route));
}
