use serde_json::json;

use crate::helpers::{is_type, north, spawn_app};

async fn restarts(app: &crate::helpers::TestApp, kind: &str) -> u64 {
    let m = app.call("GET", "/metrics", None, None).await;
    let text = m.body.as_str().unwrap_or_default().to_owned();
    text.lines()
        .find(|l| {
            l.starts_with("dabba_actor_restarts_total") && l.contains(&format!("kind=\"{kind}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

#[actix_web::test]
async fn a_failed_order_actor_restarts_from_its_snapshot_while_others_carry_on() {
    let app = spawn_app().await;
    let mut ops_ws = app.ws(&app.ops).await;
    let rider = app.available_rider_at(north(100.0)).await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let broken = app.place(&customer, &restaurant.0).await;
    let healthy = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &broken).await;
    let before = app.order(&broken).await;
    let base = restarts(&app, "order").await;

    let r = app
        .post(
            "/v1/ops/faults",
            &app.ops,
            json!({"actor": "order", "order_id": broken}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);

    // Back from its snapshot, not from the corrupted memory, and still in the flow.
    let after = app.order(&broken).await;
    assert_eq!(
        (after["stage"].clone(), after["version"].clone()),
        (before["stage"].clone(), before["version"].clone())
    );
    let accepted = app
        .post(
            &format!("/v1/riders/{}/offers/{broken}/accept", rider.0),
            &rider.1,
            json!({}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    assert_eq!(
        accepted.body["version"],
        before["version"].as_u64().unwrap() + 1
    );
    // The other order never noticed.
    assert_eq!(app.accept(&restaurant, &healthy).await.status, 200);
    assert_eq!(restarts(&app, "order").await, base + 1);
    let event = ops_ws.until(is_type("supervision")).await;
    assert_eq!(
        (event["actor"].as_str(), event["id"].as_str()),
        (Some("order"), Some(broken.as_str()))
    );
}

#[actix_web::test]
async fn a_failed_dispatcher_reloads_riders_offers_and_deadlines() {
    let app = spawn_app().await;
    let r1 = app.available_rider_at(north(100.0)).await;
    let r2 = app.available_rider_at(north(200.0)).await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let offered = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &offered).await;
    let before = app.rider_state(&r1.0).await;
    assert_eq!(before["offer"]["order_id"], offered.as_str());

    let r = app
        .post("/v1/ops/faults", &app.ops, json!({"actor": "dispatcher"}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);

    // The open offer, its expiry and the other rider survive the restart.
    let after = app.rider_state(&r1.0).await;
    assert_eq!(after["offer"], before["offer"]);
    assert_eq!(app.rider_state(&r2.0).await["status"], "available");
    // Dispatch goes on: a reject moves the order to the next rider, never back to r1.
    assert_eq!(
        app.post(
            &format!("/v1/riders/{}/offers/{offered}/reject", r1.0),
            &r1.1,
            json!({})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.rider_state(&r2.0).await["offer"]["order_id"],
        offered.as_str()
    );
    assert_eq!(
        app.post(
            &format!("/v1/riders/{}/offers/{offered}/reject", r2.0),
            &r2.1,
            json!({})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.rider_state(&r1.0).await["offer"],
        serde_json::Value::Null
    );
    // And the deadline still fires.
    app.advance(600).await;
    assert_eq!(app.order(&offered).await["stage"], "no_rider_found");
    assert!(restarts(&app, "dispatcher").await >= 1);
}

/// A rider's accept commits the answer and the assignment together (one wait): restarted
/// from the store right after, the dispatcher still has the rider on that order, never offers
/// it a second one, and frees it at the delivery.
#[actix_web::test]
async fn an_accepted_rider_stays_booked_across_a_dispatcher_restart() {
    let app = spawn_app().await;
    let r1 = app.available_rider_at(north(100.0)).await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let first = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &first).await;
    let taken = app
        .post(
            &format!("/v1/riders/{}/offers/{first}/accept", r1.0),
            &r1.1,
            json!({}),
        )
        .await;
    assert_eq!(taken.status, 200, "{:?}", taken.body);
    assert_eq!(taken.body["rider_id"], r1.0.as_str());

    let r = app
        .post("/v1/ops/faults", &app.ops, json!({"actor": "dispatcher"}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);

    let s = app.rider_state(&r1.0).await;
    assert_eq!(
        (s["status"].as_str(), s["order_id"].as_str()),
        (Some("busy"), Some(first.as_str())),
        "{s:?}"
    );
    // A second order finds r1 busy: it goes to the next rider, never to r1.
    let r2 = app.available_rider_at(north(300.0)).await;
    let second = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &second).await;
    assert_eq!(
        app.rider_state(&r2.0).await["offer"]["order_id"],
        second.as_str()
    );
    assert_eq!(
        app.rider_state(&r1.0).await["offer"],
        serde_json::Value::Null
    );
    // Delivered, r1 is free again.
    for step in ["pickup", "deliver"] {
        let r = app
            .post(&format!("/v1/orders/{first}/{step}"), &r1.1, json!({}))
            .await;
        assert_eq!(r.status, 200, "{step}: {:?}", r.body);
    }
    let s = app.rider_state(&r1.0).await;
    assert_eq!(
        (s["status"].as_str(), s["order_id"].clone()),
        (Some("available"), serde_json::Value::Null)
    );
    assert!(restarts(&app, "dispatcher").await >= 1);
}

#[actix_web::test]
async fn fault_injection_is_404_unless_enabled_and_ops_only() {
    let app = spawn_app().await;
    let (_, customer) = app.customer().await;
    let r = app
        .post("/v1/ops/faults", &customer, json!({"actor": "dispatcher"}))
        .await;
    assert_eq!(r.status, 403);
    let off = crate::helpers::spawn_app_with(crate::helpers::Options {
        test_clock: true,
        faults: false,
        ..crate::helpers::Options::default()
    })
    .await;
    let r = off
        .post("/v1/ops/faults", &off.ops, json!({"actor": "dispatcher"}))
        .await;
    assert_eq!(r.status, 404);
}

#[actix_web::test]
async fn retention_purges_orders_older_than_a_year() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (cust, customer) = app.customer().await;
    let old = app.place(&customer, &restaurant.0).await;
    app.post(&format!("/v1/orders/{old}/cancel"), &customer, json!({}))
        .await;
    app.advance(200 * 24 * 3600).await;
    let kept = app.place(&customer, &restaurant.0).await;
    app.advance(200 * 24 * 3600).await; // `old` is now 400 days old (its whole month is past retention), `kept` 200
    let r = app.post("/v1/ops/retention", &app.ops, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        r.body["orders_deleted"].as_u64().unwrap() >= 1,
        "{:?}",
        r.body
    );
    if std::env::var("DABBA_TEST_STORE").as_deref() == Ok("postgres") {
        // PostgreSQL drops the month's partition instead of deleting rows.
        assert!(
            r.body["partitions_dropped"].as_u64().unwrap() >= 1,
            "{:?}",
            r.body
        );
    }
    assert_eq!(
        app.get(&format!("/v1/orders/{old}"), &app.ops).await.status,
        404
    );
    assert_eq!(
        app.get(&format!("/v1/orders/{kept}"), &app.ops)
            .await
            .status,
        200
    );
    let _ = cust;
}
