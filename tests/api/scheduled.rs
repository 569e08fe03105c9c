//! Orders in time: an order wanted more than 45 minutes ahead waits `scheduled` until its
//! kitchen must start (prep + ride before `deliver_at`), moves with `deliver_at`, is cancelled
//! for free before it starts, survives a restart; and the ETA follows the rider.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, is_type, north, south, spawn_app, spawn_app_with};

/// 1 km at the default 20 km/h: three minutes' ride; the default kitchen takes 15.
const RIDE_SECS: i64 = 180;
const PREP_SECS: i64 = 15 * 60;

fn at(v: &Value) -> DateTime<Utc> {
    serde_json::from_value(v.clone()).expect("a time")
}

/// Moves the engine's clock to the last whole second before `t` (it moves in seconds).
async fn advance_to_just_before(app: &TestApp, t: DateTime<Utc>) {
    let now = app.advance(0).await;
    let ms = (t - now).num_milliseconds();
    app.advance((ms + 999) / 1_000 - 1).await;
}

/// Whether two times agree to within two seconds (the time between a request and the next).
fn close(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_milliseconds().abs() <= 2_000
}

async fn place_for(app: &TestApp, customer: &str, restaurant: &str, when: DateTime<Utc>) -> Value {
    let mut body = app.order_body(restaurant, south(1_000.0));
    body["deliver_at"] = json!(when);
    let r = app.post("/v1/orders", customer, body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

#[actix_web::test]
async fn a_scheduled_order_waits_until_its_kitchen_must_start() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let (_, rider) = app.available_rider_at(north(100.0)).await;
    let mut rider_ws = app.ws(&rider).await;
    let mut tablet = app.ws(&restaurant.1).await;
    let now = app.advance(0).await;
    let want = now + chrono::Duration::hours(2);
    let order = place_for(&app, &c, &restaurant.0, want).await;
    let id = order["id"].as_str().expect("id").to_owned();
    assert_eq!(
        (order["status"].as_str(), order["stage"].as_str()),
        (Some("placed"), Some("scheduled"))
    );
    assert_eq!(at(&order["eta"]["deliver_at"]), want);
    // The restaurant is not asked yet, and cannot answer early; no rider hears of it.
    let early = app.accept(&restaurant, &id).await;
    assert_eq!((early.status, early.code()), (409, "invalid_state"));
    let waiting = app
        .get(
            &format!(
                "/v1/restaurants/{}/orders?stage=awaiting_restaurant",
                restaurant.0
            ),
            &restaurant.1,
        )
        .await;
    assert_eq!(waiting.body["orders"], json!([]));
    // The customer moves it an hour later: the plan moves (past the 30-minute change window).
    app.advance(40 * 60).await;
    let later = want + chrono::Duration::hours(1);
    let moved = app
        .patch(
            &format!("/v1/orders/{id}"),
            &c,
            json!({"deliver_at": later}),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(moved.body["stage"], "scheduled");
    // One second before the kitchen must start it still waits; at the start it is asked.
    let start = later - chrono::Duration::seconds(PREP_SECS + RIDE_SECS);
    advance_to_just_before(&app, start).await;
    assert_eq!(app.order(&id).await["stage"], "scheduled");
    app.advance(1).await;
    assert_eq!(app.order(&id).await["stage"], "awaiting_restaurant");
    let asked = tablet
        .until(|m| m["type"] == "order.updated" && m["order"]["stage"] == "awaiting_restaurant")
        .await;
    assert_eq!(asked["order"]["id"], id.as_str());
    assert!(
        rider_ws.silent_for(Duration::from_millis(200)).await,
        "no offer before the restaurant accepts"
    );
    // Accepted: dispatch starts, and the food is expected when it was wanted (give or take
    // the second the release ran).
    assert_eq!(app.accept(&restaurant, &id).await.status, 200);
    rider_ws.until(is_type("offer")).await;
    let eta = app.order(&id).await["eta"].clone();
    assert!(
        close(at(&eta["deliver_at"]), later),
        "eta {eta} vs wanted {later}"
    );
}

#[actix_web::test]
async fn a_scheduled_order_is_cancelled_for_free_before_it_starts() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let now = app.advance(0).await;
    let want = now + chrono::Duration::days(1);
    let order = place_for(&app, &c, &restaurant.0, want).await;
    let id = order["id"].as_str().expect("id");
    // A day later than placement would close the usual window; a scheduled order stays free.
    app.advance(12 * 3_600).await;
    let quote = app
        .get(&format!("/v1/orders/{id}/cancellation-quote"), &c)
        .await;
    assert_eq!(quote.status, 200, "{:?}", quote.body);
    assert_eq!(quote.body["percent"], 100);
    assert_eq!(quote.body["amount_cents"], order["total_cents"]);
    let start = want - chrono::Duration::seconds(PREP_SECS + RIDE_SECS);
    assert_eq!(at(&quote.body["until"]), start);
    let cancelled = app
        .post(&format!("/v1/orders/{id}/cancel"), &c, json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["refund"]["percent"], 100);
    assert_eq!(cancelled.body["order"]["eta"], Value::Null);
}

#[actix_web::test]
async fn a_scheduled_order_starts_on_time_after_a_restart() {
    let (url, _dir) = crate::helpers::durable_store().await;
    let options = || Options {
        database_url: Some(url.clone()),
        restaurant_timeout_secs: 3_600,
        ..Options::default()
    };
    let first = spawn_app_with(options()).await;
    let restaurant = first.restaurant().await;
    let (_, c) = first.customer().await;
    let placed_at = first.advance(0).await;
    let want = placed_at + chrono::Duration::hours(3);
    let order = place_for(&first, &c, &restaurant.0, want).await;
    let id = order["id"].as_str().expect("id").to_owned();
    first.advance(3_600).await;
    drop(first);

    // The new process starts at the wall clock: catch up with the hour the first one moved.
    let second = spawn_app_with(options()).await;
    second.advance(3_600).await;
    assert_eq!(second.order(&id).await["stage"], "scheduled");
    let start = want - chrono::Duration::seconds(PREP_SECS + RIDE_SECS);
    advance_to_just_before(&second, start).await;
    assert_eq!(second.order(&id).await["stage"], "scheduled");
    second.advance(1).await;
    assert_eq!(second.order(&id).await["stage"], "awaiting_restaurant");
}

#[actix_web::test]
async fn the_eta_follows_the_rider_and_is_pushed_only_when_it_moves_a_minute() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let quick = app
        .put(
            &format!("/v1/restaurants/{}/status", restaurant.0),
            &restaurant.1,
            json!({"open": true, "prep_minutes": 1}),
        )
        .await;
    assert_eq!(quick.status, 200, "{:?}", quick.body);
    let (_, c) = app.customer().await;
    let (rider_id, rider) = app.available_rider_at(north(0.0)).await;
    let mut rider_ws = app.ws(&rider).await;
    let id = app.place(&c, &restaurant.0).await;
    let placed = app.order(&id).await;
    let ready = at(&placed["placed_at"]) + chrono::Duration::minutes(1);
    assert!(close(at(&placed["eta"]["pickup_at"]), ready));
    app.accept(&restaurant, &id).await;
    rider_ws.until(is_type("offer")).await;
    rider_ws
        .send(json!({"type": "accept", "order_id": id}))
        .await;
    rider_ws
        .until(|m| m["type"] == "order.updated" && m["order"]["stage"] == "rider_assigned")
        .await;
    let mut customer_ws = app.ws(&c).await;
    let assigned = app.order(&id).await;
    let ready = at(&assigned["eta"]["pickup_at"]);
    assert!(
        close(
            ready,
            at(&placed["placed_at"]) + chrono::Duration::minutes(1)
        ),
        "the rider is at the door"
    );
    // A few metres change nothing worth a push.
    rider_ws
        .send(json!({"type": "location", "lat": 12.97165, "lng": 77.5946}))
        .await;
    // (Before pickup the customer sees no rider positions: silence means no new estimate.)
    assert!(customer_ws.silent_for(Duration::from_millis(500)).await);
    assert_eq!(app.order(&id).await["version"], assigned["version"]);
    // Three kilometres away: nine minutes back, so pickup moves and the customer is told.
    let far = north(3_000.0);
    rider_ws
        .send(json!({"type": "location", "lat": far["lat"], "lng": far["lng"]}))
        .await;
    let pushed = customer_ws
        .until(|m| m["type"] == "order.updated" && m["order"]["id"] == id.as_str())
        .await;
    let pickup = at(&pushed["order"]["eta"]["pickup_at"]);
    assert!(
        pickup > ready + chrono::Duration::minutes(7),
        "{pickup} vs {ready}"
    );
    assert_eq!(
        pushed["order"]["version"],
        assigned["version"].as_u64().unwrap() + 1
    );
    assert_eq!(pushed["order"]["rider_id"], rider_id.as_str());
}
