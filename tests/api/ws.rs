use serde_json::json;

use crate::helpers::{Options, is_type, north, spawn_app, spawn_app_with};

#[actix_web::test]
async fn malformed_frames_get_an_error_and_the_socket_stays_open() {
    let app = spawn_app().await;
    let (id, token) = app.available_rider_at(north(100.0)).await;
    let mut ws = app.ws(&token).await;
    for bad in [
        "{not json",
        r#"{"type":"teleport"}"#,
        r#"{"type":"location","lat":100,"lng":0}"#,
        r#"{"type":"accept","order_id":"x"}"#,
    ] {
        ws.send_text(bad).await;
        let e = ws.until(is_type("error")).await;
        assert_eq!(e["error"]["code"], "invalid_request", "{bad}");
    }
    // Still open and working: a location frame moves the rider.
    ws.send(json!({"type": "location", "lat": 12.98, "lng": 77.6}))
        .await;
    ws.send(json!({"type": "accept", "order_id": uuid::Uuid::new_v4()}))
        .await;
    let e = ws.until(is_type("error")).await;
    assert_eq!(e["error"]["code"], "offer_not_active");
    let s = app.rider_state(&id).await;
    assert_eq!(s["location"], json!({"lat": 12.98, "lng": 77.6}));
}

#[actix_web::test]
async fn endless_garbage_closes_the_socket_with_policy_violation() {
    let app = spawn_app().await;
    let (_, token) = app.customer().await;
    let mut ws = app.ws(&token).await;
    for _ in 0..25 {
        ws.send_text("garbage").await;
    }
    // 1008: policy violation.
    assert_eq!(ws.closed_with().await, Some(1008));
}

#[actix_web::test]
async fn riders_answer_offers_over_the_websocket() {
    let app = spawn_app().await;
    let (_, token) = app.rider().await;
    let rider_id = {
        let r = app
            .post("/v1/riders", &app.ops, json!({"name": "WS"}))
            .await;
        r.body["id"].as_str().unwrap().to_owned()
    };
    let _ = token;
    let token = app.token(dabba::api::auth::Role::Rider, &rider_id);
    app.put(
        &format!("/v1/riders/{rider_id}/status"),
        &token,
        json!({"status": "available"}),
    )
    .await;
    let mut ws = app.ws(&token).await;
    ws.send(json!({"type": "location", "lat": crate::helpers::CENTER.0, "lng": crate::helpers::CENTER.1})).await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let order = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &order).await;
    let offer = ws.until(is_type("offer")).await;
    assert_eq!(offer["order_id"], order.as_str());
    ws.send(json!({"type": "accept", "order_id": order})).await;
    let m = ws
        .until(|m| m["type"] == "order.updated" && m["order"]["stage"] == "rider_assigned")
        .await;
    assert_eq!(m["order"]["rider_id"], rider_id.as_str());
}

#[actix_web::test]
async fn restaurants_and_ops_get_their_streams() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let other = app.restaurant().await;
    let mut rws = app.ws(&restaurant.1).await;
    let mut ows = app.ws(&other.1).await;
    let mut ops = app.ws(&app.ops).await;
    let (_, customer) = app.customer().await;
    let order = app.place(&customer, &restaurant.0).await;
    let m = rws.until(is_type("order.updated")).await;
    assert_eq!(
        (m["order"]["id"].as_str(), m["order"]["stage"].as_str()),
        (Some(order.as_str()), Some("awaiting_restaurant"))
    );
    let m = ops.until(is_type("order.updated")).await;
    assert_eq!(m["order"]["id"], order.as_str());
    let (rider, rt) = app.available_rider_at(north(50.0)).await;
    let m = ops.until(is_type("rider.location")).await;
    assert_eq!(m["rider_id"], rider.as_str());
    let _ = rt;
    // The other restaurant hears nothing about this order.
    assert!(ows.silent_for(std::time::Duration::from_millis(500)).await);
}

#[actix_web::test]
async fn websocket_without_a_valid_token_is_refused() {
    let app = spawn_app().await;
    assert!(app.client.socket_at("/v1/ws").await.is_err());
    assert!(app.client.socket_at("/v1/ws?token=bogus").await.is_err());
}

#[actix_web::test]
async fn a_reject_over_the_websocket_moves_the_offer_on() {
    let app = spawn_app().await;
    let (r1, t1) = app.available_rider_at(north(100.0)).await;
    let (r2, _) = app.available_rider_at(north(300.0)).await;
    let mut ws = app.ws(&t1).await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let order = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &order).await;
    ws.until(is_type("offer")).await;
    ws.send(json!({"type": "reject", "order_id": order})).await;
    // The next message the rider's own socket sees is not an error; the offer moved on.
    ws.send(json!({"type": "location", "lat": 12.98, "lng": 77.6}))
        .await;
    for _ in 0..50 {
        if app.rider_state(&r2).await["offer"]["order_id"] == order.as_str() {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.rider_state(&r2).await["offer"]["order_id"],
        order.as_str()
    );
    assert_eq!(app.rider_state(&r1).await["offer"], serde_json::Value::Null);
}

#[actix_web::test]
async fn an_oversized_frame_closes_the_socket_and_the_server_carries_on() {
    let app = spawn_app().await;
    let (_, token) = app.rider().await;
    let mut ws = app.ws(&token).await;
    let huge = format!(
        "{{\"type\":\"location\",\"pad\":\"{}\"}}",
        "x".repeat(64 * 1024)
    );
    ws.send_text(&huge).await;
    assert!(ws.closed_with().await.is_some(), "the socket was closed");
    // Everyone else is fine.
    let mut again = app.ws(&token).await;
    again.send_text("{}").await;
    assert_eq!(
        again.until(is_type("error")).await["error"]["code"],
        "invalid_request"
    );
}

#[actix_web::test]
async fn a_rider_flooding_positions_is_told_to_slow_down_and_keeps_the_socket() {
    // One position a second, ten seconds of burst.
    let app = spawn_app_with(Options {
        rate_location_per_sec: 1.0,
        ..Options::default()
    })
    .await;
    let (id, token) = app.available_rider_at(north(100.0)).await;
    let mut ws = app.ws(&token).await;
    for i in 0..30 {
        ws.send(json!({"type": "location", "lat": 12.9716 + f64::from(i) * 1e-5, "lng": 77.5946}))
            .await;
    }
    let e = ws.until(is_type("error")).await;
    assert_eq!(e["error"]["code"], "rate_limited");
    // The socket still answers, and the rider sits at the last position that got through.
    ws.send(json!({"type": "accept", "order_id": uuid::Uuid::new_v4()}))
        .await;
    let e = ws
        .until(|m| m["type"] == "error" && m["error"]["code"] != "rate_limited")
        .await;
    assert_eq!(e["error"]["code"], "offer_not_active");
    let lat = app.rider_state(&id).await["location"]["lat"]
        .as_f64()
        .expect("a position");
    assert!(
        lat < 12.9716 + 15.0 * 1e-5,
        "{lat}: positions past the burst were taken"
    );
}
