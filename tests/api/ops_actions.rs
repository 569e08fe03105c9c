//! Ops on assignments, through the API: hand an order to another rider, take a rider off
//! (its order goes back to dispatch), each written to the audit log; and the supervision view.

use serde_json::json;

use crate::helpers::{TestApp, is_type, north, spawn_app};

/// An order accepted by its restaurant and assigned to a rider 100 m away; returns the order,
/// the rider and its token.
async fn assigned(app: &TestApp) -> (String, (String, String)) {
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let rider = app.available_rider_at(north(100.0)).await;
    let order = app.place(&c, &restaurant.0).await;
    assert_eq!(app.accept(&restaurant, &order).await.status, 200);
    let r = app
        .post(
            &format!("/v1/riders/{}/offers/{order}/accept", rider.0),
            &rider.1,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (order, rider)
}

async fn audit(app: &TestApp) -> Vec<serde_json::Value> {
    let r = app.get("/v1/ops/audit", &app.ops).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["entries"].as_array().expect("entries").clone()
}

#[actix_web::test]
async fn ops_hand_an_order_to_another_rider_and_the_audit_says_so() {
    let app = spawn_app().await;
    let (order, first) = assigned(&app).await;
    let mut first_ws = app.ws(&first.1).await;
    let second = app.available_rider_at(north(2_000.0)).await;
    let mut second_ws = app.ws(&second.1).await;
    let path = format!("/v1/ops/orders/{order}/reassign");
    let moved = app
        .post(&path, &app.ops, json!({"rider_id": second.0}))
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(moved.body["rider_id"], second.0.as_str());
    assert_eq!(moved.body["stage"], "rider_assigned");
    // The first rider is told and free; the second carries it and is the only one who may
    // pick it up.
    let gone = first_ws.until(is_type("offer.withdrawn")).await;
    assert_eq!(gone["order_id"], order.as_str());
    let told = second_ws
        .until(|m| m["type"] == "order.updated" && m["order"]["id"] == order.as_str())
        .await;
    assert_eq!(told["order"]["rider_id"], second.0.as_str());
    assert_eq!(app.rider_state(&first.0).await["status"], "available");
    let busy = app.rider_state(&second.0).await;
    assert_eq!(
        (busy["status"].as_str(), busy["order_id"].as_str()),
        (Some("busy"), Some(order.as_str()))
    );
    let pickup = format!("/v1/orders/{order}/pickup");
    assert_eq!(app.post(&pickup, &first.1, json!({})).await.status, 403);
    assert_eq!(app.post(&pickup, &second.1, json!({})).await.status, 200);
    // Audited, newest first.
    let entries = audit(&app).await;
    assert_eq!(entries[0]["action"], "reassign");
    assert_eq!(entries[0]["target"], format!("order:{order}"));
    assert!(entries[0]["actor"].as_str().unwrap().starts_with("ops:"));
    assert!(entries[0]["at"].is_string());
    // Once picked up, it stays with its rider.
    let late = app
        .post(&path, &app.ops, json!({"rider_id": first.0}))
        .await;
    assert_eq!((late.status, late.code()), (409, "invalid_state"));
}

#[actix_web::test]
async fn a_rider_taken_off_hands_its_order_back_to_dispatch() {
    let app = spawn_app().await;
    let (order, first) = assigned(&app).await;
    let second = app.available_rider_at(north(1_500.0)).await;
    let mut second_ws = app.ws(&second.1).await;
    let off = app
        .post(
            &format!("/v1/ops/riders/{}/offline", first.0),
            &app.ops,
            json!({}),
        )
        .await;
    assert_eq!(off.status, 200, "{:?}", off.body);
    assert_eq!(off.body["status"], "offline");
    let again = app.order(&order).await;
    assert_eq!(
        (again["stage"].as_str(), again["rider_id"].as_str()),
        (Some("finding_rider"), None)
    );
    // Offered to the next rider at once, not to the one taken off.
    let offer = second_ws.until(is_type("offer")).await;
    assert_eq!(offer["order_id"], order.as_str());
    let r = app
        .post(
            &format!("/v1/riders/{}/offers/{order}/accept", second.0),
            &second.1,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(app.order(&order).await["rider_id"], second.0.as_str());
    let entries = audit(&app).await;
    assert_eq!(entries[0]["action"], "rider_offline");
    assert_eq!(entries[0]["target"], format!("rider:{}", first.0));
}

#[actix_web::test]
async fn reassigning_needs_an_assigned_order_and_a_free_rider() {
    let app = spawn_app().await;
    let (order, rider) = assigned(&app).await;
    let path = format!("/v1/ops/orders/{order}/reassign");
    let (busy, _) = {
        let (o2, r2) = assigned(&app).await;
        (r2, o2)
    };
    let r = app.post(&path, &app.ops, json!({"rider_id": busy.0})).await;
    assert_eq!((r.status, r.code()), (409, "invalid_state"), "{:?}", r.body);
    let r = app
        .post(&path, &app.ops, json!({"rider_id": uuid::Uuid::new_v4()}))
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = app
        .post(&path, &app.ops, json!({"rider_id": rider.0}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "invalid_state"),
        "already that rider's"
    );
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let waiting = app.place(&c, &restaurant.0).await;
    let r = app
        .post(
            &format!("/v1/ops/orders/{waiting}/reassign"),
            &app.ops,
            json!({}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "invalid_state"));
    let r = app.post(&path, &rider.1, json!({})).await;
    assert_eq!(r.status, 403);
    // Nothing refused was audited.
    assert!(audit(&app).await.is_empty());
}

#[actix_web::test]
async fn the_supervision_view_counts_actors_and_their_failures() {
    let app = spawn_app().await;
    let (order, _) = assigned(&app).await;
    let r = app
        .post(
            "/v1/ops/faults",
            &app.ops,
            json!({"actor": "order", "order_id": order}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    // The order actor restarts from its snapshot and answers again.
    assert_eq!(app.order(&order).await["stage"], "rider_assigned");
    let view = app.get("/v1/ops/actors", &app.ops).await;
    assert_eq!(view.status, 200, "{:?}", view.body);
    let kinds = view.body["kinds"].as_array().expect("kinds");
    let kind = |name: &str| {
        kinds
            .iter()
            .find(|k| k["kind"] == name)
            .cloned()
            .expect(name)
    };
    let orders = kind("order");
    assert!(orders["count"].as_u64().unwrap() >= 1, "{orders}");
    assert!(orders["restarts"].as_u64().unwrap() >= 1, "{orders}");
    assert_eq!(orders["last_failure"]["id"], order.as_str());
    assert!(orders["mailbox_max"].as_i64().unwrap() >= 1, "{orders}");
    assert_eq!(kind("dispatcher")["count"], 1);
    assert!(kind("restaurant")["count"].as_u64().unwrap() >= 1);
    assert_eq!(app.get("/v1/ops/actors", &app.ops).await.status, 200);
    let (_, c) = app.customer().await;
    assert_eq!(app.get("/v1/ops/actors", &c).await.status, 403);
}

#[actix_web::test]
async fn the_console_is_served_from_the_binary_and_starts_from_a_live_snapshot() {
    let app = spawn_app().await;
    let page = app.call("GET", "/ops", None, None).await;
    assert_eq!(page.status, 200);
    let html = page.body.as_str().expect("html").to_owned();
    assert!(html.contains("<canvas id=\"map\""), "{html}");
    // Everything it loads is its own: no address outside this server.
    for asset in ["/ops/console.js", "/ops/console.css"] {
        let r = app.call("GET", asset, None, None).await;
        assert_eq!(r.status, 200, "{asset}");
        let text = r.body.as_str().unwrap().to_owned();
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{asset} reaches out"
        );
    }
    assert!(!html.contains("http://") && !html.contains("https://"));
    let (order, rider) = assigned(&app).await;
    let live = app.get("/v1/ops/live", &app.ops).await;
    assert_eq!(live.status, 200, "{:?}", live.body);
    let riders = live.body["riders"].as_array().unwrap();
    assert!(
        riders
            .iter()
            .any(|r| r["id"] == rider.0.as_str() && r["status"] == "busy")
    );
    let orders = live.body["orders"].as_array().unwrap();
    assert!(
        orders
            .iter()
            .any(|o| o["id"] == order.as_str() && o["stage"] == "rider_assigned")
    );
    assert_eq!(app.get("/v1/ops/live", &rider.1).await.status, 403);
    // Ops closing a restaurant is audited too.
    let (restaurant, _) = app.restaurant().await;
    let closed = app
        .put(
            &format!("/v1/restaurants/{restaurant}/status"),
            &app.ops,
            json!({"open": false}),
        )
        .await;
    assert_eq!(closed.status, 200);
    let entries = audit(&app).await;
    assert_eq!(entries[0]["action"], "restaurant_close");
    assert_eq!(entries[0]["target"], format!("restaurant:{restaurant}"));
}
