//! The authorization matrix: every endpoint, called by every role, as the owner and as a
//! stranger. Forbidden callers get 403 (401 without a token); allowed callers get past
//! authorization (whatever the state then says).

use serde_json::{Value, json};

use crate::helpers::{TestApp, is_type, north, south, spawn_app};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Anonymous,
    Ops,
    Customer,
    OtherCustomer,
    Rider,
    OtherRider,
    Restaurant,
    OtherRestaurant,
}

use Who::*;
const EVERYONE: [Who; 8] = [
    Anonymous,
    Ops,
    Customer,
    OtherCustomer,
    Rider,
    OtherRider,
    Restaurant,
    OtherRestaurant,
];
const AUTHENTICATED: [Who; 7] = [
    Ops,
    Customer,
    OtherCustomer,
    Rider,
    OtherRider,
    Restaurant,
    OtherRestaurant,
];

/// One order placed by `Customer` at `Restaurant`, accepted, and assigned to `Rider`.
struct World {
    restaurant: String,
    rider: String,
    customer: String,
    order: String,
    recurring: String,
    tokens: Vec<(Who, Option<String>)>,
}

/// Each world sits `20 km × n` north of the centre so that worlds never share riders.
async fn world(app: &TestApp, n: usize) -> World {
    let base = 20_000.0 * n as f64;
    let restaurant = app.restaurant_at(north(base)).await;
    let other_restaurant = app.restaurant_at(north(base + 200.0)).await;
    let (customer, customer_t) = app.customer().await;
    let (_, other_customer_t) = app.customer().await;
    let rider = app.available_rider_at(north(base + 100.0)).await;
    let (_, other_rider_t) = app.rider().await;
    let placed = app
        .post(
            "/v1/orders",
            &customer_t,
            app.order_body(&restaurant.0, north(base + 500.0)),
        )
        .await;
    assert_eq!(placed.status, 201, "{:?}", placed.body);
    let order = placed.body["id"].as_str().unwrap().to_owned();
    app.accept(&restaurant, &order).await;
    let r = app
        .post(
            &format!("/v1/riders/{}/offers/{order}/accept", rider.0),
            &rider.1,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let standing = app
        .post(
            "/v1/recurring-orders",
            &customer_t,
            recurring_body(&restaurant.0, north(base + 500.0)),
        )
        .await;
    assert_eq!(standing.status, 201, "{:?}", standing.body);
    let recurring = standing.body["id"].as_str().unwrap().to_owned();
    World {
        recurring,
        restaurant: restaurant.0.clone(),
        rider: rider.0.clone(),
        customer,
        order,
        tokens: vec![
            (Anonymous, None),
            (Ops, Some(app.ops.clone())),
            (Customer, Some(customer_t)),
            (OtherCustomer, Some(other_customer_t)),
            (Rider, Some(rider.1)),
            (OtherRider, Some(other_rider_t)),
            (Restaurant, Some(restaurant.1)),
            (OtherRestaurant, Some(other_restaurant.1)),
        ],
    }
}

fn recurring_body(restaurant: &str, at: Value) -> Value {
    json!({"restaurant_id": restaurant, "items": crate::helpers::idli(1),
           "delivery": {"location": at, "address": "a"},
           "schedule": {"days": ["mon"], "time": "12:00", "timezone": "Asia/Kolkata"}})
}

struct Row {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    allowed: &'static [Who],
}

fn rows() -> Vec<Row> {
    let row = |method, path, body: Option<Value>, allowed: &'static [Who]| Row {
        method,
        path,
        body,
        allowed,
    };
    let order_body = json!({"restaurant_id": "{R}", "items": crate::helpers::idli(1),
                            "delivery": {"location": north(0.0), "address": "a"}});
    vec![
        row(
            "POST",
            "/v1/restaurants",
            Some(json!({"name": "x", "location": north(0.0)})),
            &[Ops],
        ),
        row("GET", "/v1/restaurants/{R}", None, &AUTHENTICATED),
        row(
            "GET",
            "/v1/restaurants?lat=12.97&lng=77.59",
            None,
            &AUTHENTICATED,
        ),
        row(
            "PUT",
            "/v1/restaurants/{R}/menu",
            Some(crate::helpers::menu()),
            &[Ops, Restaurant],
        ),
        row("GET", "/v1/restaurants/{R}/menu", None, &AUTHENTICATED),
        row(
            "PUT",
            "/v1/restaurants/{R}/status",
            Some(json!({"open": true, "prep_minutes": 20})),
            &[Ops, Restaurant],
        ),
        row(
            "GET",
            "/v1/restaurants/{R}/orders",
            None,
            &[Ops, Restaurant],
        ),
        row(
            "GET",
            "/v1/restaurants/{R}/payouts",
            None,
            &[Ops, Restaurant],
        ),
        row("GET", "/v1/riders/{D}/earnings", None, &[Ops, Rider]),
        row("GET", "/v1/orders/{O}/payment", None, &[Ops, Customer]),
        row(
            "GET",
            "/v1/orders/{O}/cancellation-quote",
            None,
            &[Ops, Customer],
        ),
        row("GET", "/v1/orders/{O}/dispatch", None, &[Ops, Restaurant]),
        row("GET", "/v1/ops/ledger/trial-balance", None, &[Ops]),
        row("GET", "/v1/ops/actors", None, &[Ops]),
        row("GET", "/v1/ops/audit", None, &[Ops]),
        row(
            "POST",
            "/v1/ops/orders/{O}/reassign",
            Some(json!({})),
            &[Ops],
        ),
        row(
            "POST",
            "/v1/ops/riders/{D}/offline",
            Some(json!({})),
            &[Ops],
        ),
        row("GET", "/v1/ops/reconciliation", None, &[Ops]),
        row("POST", "/v1/ops/payouts/run", Some(json!({})), &[Ops]),
        row(
            "PUT",
            "/v1/restaurants/{R}/open",
            Some(json!({"open": true})),
            &[Ops, Restaurant],
        ),
        row(
            "POST",
            "/v1/restaurants/{R}/orders/{O}/accept",
            Some(json!({})),
            &[Restaurant],
        ),
        row(
            "POST",
            "/v1/restaurants/{R}/orders/{O}/reject",
            Some(json!({"reason": "x"})),
            &[Restaurant],
        ),
        row("POST", "/v1/riders", Some(json!({"name": "x"})), &[Ops]),
        row("GET", "/v1/riders/{D}", None, &[Ops, Rider]),
        row(
            "PUT",
            "/v1/riders/{D}/status",
            Some(json!({"status": "available"})),
            &[Rider],
        ),
        row("PUT", "/v1/riders/{D}/location", Some(north(5.0)), &[Rider]),
        row(
            "POST",
            "/v1/riders/{D}/offers/{O}/accept",
            Some(json!({})),
            &[Rider],
        ),
        row(
            "POST",
            "/v1/riders/{D}/offers/{O}/reject",
            Some(json!({})),
            &[Rider],
        ),
        row(
            "POST",
            "/v1/customers",
            Some(json!({"name": "x", "phone": "1", "email": "a@b.c"})),
            &[Ops],
        ),
        row(
            "POST",
            "/v1/orders",
            Some(order_body),
            &[Customer, OtherCustomer],
        ),
        row(
            "GET",
            "/v1/orders/{O}",
            None,
            &[Ops, Customer, Rider, Restaurant],
        ),
        row(
            "PATCH",
            "/v1/orders/{O}",
            Some(json!({"deliver_at": null, "delivery": null})),
            &[Customer],
        ),
        row(
            "POST",
            "/v1/orders/{O}/cancel",
            Some(json!({})),
            &[Customer],
        ),
        row("POST", "/v1/orders/{O}/pickup", Some(json!({})), &[Rider]),
        row("POST", "/v1/orders/{O}/deliver", Some(json!({})), &[Rider]),
        row(
            "POST",
            "/v1/orders/{O}/rating",
            Some(json!({"stars": 5})),
            &[Customer],
        ),
        row("GET", "/v1/customers/{C}/orders", None, &[Ops, Customer]),
        row(
            "POST",
            "/v1/recurring-orders",
            Some(recurring_body("{R}", north(0.0))),
            &[Customer, OtherCustomer],
        ),
        row("GET", "/v1/recurring-orders/{Q}", None, &[Ops, Customer]),
        row(
            "GET",
            "/v1/customers/{C}/recurring-orders",
            None,
            &[Ops, Customer],
        ),
        row(
            "PATCH",
            "/v1/recurring-orders/{Q}",
            Some(json!({"paused": true})),
            &[Customer],
        ),
        row(
            "POST",
            "/v1/recurring-orders/{Q}/skip",
            Some(json!({"date": "2099-01-05"})),
            &[Customer],
        ),
        row("DELETE", "/v1/recurring-orders/{Q}", None, &[Customer]),
        row(
            "POST",
            "/v1/test/clock",
            Some(json!({"advance_seconds": 0})),
            &[Ops],
        ),
        row("POST", "/v1/ops/retention", Some(json!({})), &[Ops]),
        row(
            "POST",
            "/v1/ops/faults",
            Some(json!({"actor": "order", "order_id": "{O}"})),
            &[Ops],
        ),
        row("GET", "/healthz", None, &EVERYONE),
        row("GET", "/readyz", None, &EVERYONE),
        row("GET", "/metrics", None, &EVERYONE),
        row("GET", "/openapi.json", None, &EVERYONE),
    ]
}

fn fill(s: &str, w: &World) -> String {
    s.replace("{R}", &w.restaurant)
        .replace("{D}", &w.rider)
        .replace("{O}", &w.order)
        .replace("{C}", &w.customer)
        .replace("{Q}", &w.recurring)
}

#[actix_web::test]
async fn every_endpoint_lets_in_exactly_its_owners() {
    let app = spawn_app().await;
    for (n, row) in rows().into_iter().enumerate() {
        let w = world(&app, n).await;
        let path = fill(row.path, &w);
        let body = row
            .body
            .as_ref()
            .map(|b| serde_json::from_str(&fill(&b.to_string(), &w)).unwrap());
        // Forbidden callers first: they must change nothing for the allowed ones after them.
        let mut order: Vec<&(Who, Option<String>)> = w.tokens.iter().collect();
        order.sort_by_key(|(who, _)| row.allowed.contains(who));
        for (who, token) in order {
            let r = app
                .call(row.method, &path, token.as_deref(), body.clone())
                .await;
            if row.allowed.contains(who) {
                assert!(
                    ![401, 403].contains(&r.status),
                    "{who:?} {} {path}: {} {:?}",
                    row.method,
                    r.status,
                    r.body
                );
            } else if *who == Anonymous {
                assert_eq!(
                    (r.status, r.code()),
                    (401, "unauthorized"),
                    "{} {path}",
                    row.method
                );
            } else {
                assert_eq!(
                    (r.status, r.code()),
                    (403, "forbidden"),
                    "{who:?} {} {path}: {:?}",
                    row.method,
                    r.body
                );
            }
        }
    }
}

#[actix_web::test]
async fn nobody_else_sees_an_order_its_rider_or_its_history_on_the_websocket() {
    let app = spawn_app().await;
    let w = world(&app, 0).await;
    let token = |who: Who| {
        w.tokens
            .iter()
            .find(|(x, _)| *x == who)
            .and_then(|(_, t)| t.clone())
            .unwrap()
    };
    let mut owner = app.ws(&token(Customer)).await;
    let mut stranger = app.ws(&token(OtherCustomer)).await;
    let mut other_rider = app.ws(&token(OtherRider)).await;
    let mut other_restaurant = app.ws(&token(OtherRestaurant)).await;
    app.post(
        &format!("/v1/orders/{}/pickup", w.order),
        &token(Rider),
        json!({}),
    )
    .await;
    app.put(
        &format!("/v1/riders/{}/location", w.rider),
        &token(Rider),
        south(50.0),
    )
    .await;
    let seen = owner.until(is_type("rider.location")).await;
    assert_eq!(seen["order_id"], w.order.as_str());
    for ws in [&mut stranger, &mut other_rider, &mut other_restaurant] {
        assert!(
            ws.silent_for(std::time::Duration::from_millis(500)).await,
            "a stranger saw something"
        );
    }
}
