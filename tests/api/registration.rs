use serde_json::json;

use crate::helpers::{north, south, spawn_app};

#[actix_web::test]
async fn ops_registers_restaurants_riders_and_customers() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/restaurants",
            &app.ops,
            json!({"name": "MTR", "location": north(0.0)}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["open"], true);
    assert_eq!(r.body["rating"], json!({"average": null, "count": 0}));
    let id = r.body["id"].as_str().unwrap();
    let got = app.get(&format!("/v1/restaurants/{id}"), &app.ops).await;
    assert_eq!(got.body["name"], "MTR");

    let r = app
        .post("/v1/riders", &app.ops, json!({"name": "Ravi"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["status"], "offline");

    let r = app
        .post(
            "/v1/customers",
            &app.ops,
            json!({"name": "Asha", "phone": "+91 98450 00000", "email": "a@b.in"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.body["id"].as_str().is_some());
}

#[actix_web::test]
async fn nearby_restaurants_are_within_5_km_nearest_first() {
    let app = spawn_app().await;
    let (far, _) = app.restaurant_at(north(4_900.0)).await;
    let (near, _) = app.restaurant_at(north(100.0)).await;
    let (_out, _) = app.restaurant_at(south(5_010.0)).await;
    let q = format!(
        "/v1/restaurants?lat={}&lng={}",
        crate::helpers::CENTER.0,
        crate::helpers::CENTER.1
    );
    let r = app.get(&q, &app.ops).await;
    assert_eq!(r.status, 200);
    let ids: Vec<&str> = r.body["restaurants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![near.as_str(), far.as_str()]);
    assert_eq!(r.body["restaurants"][0]["distance_m"], 100.0);
}

#[actix_web::test]
async fn bad_registration_input_is_a_400_naming_the_problem() {
    let app = spawn_app().await;
    for body in [
        json!({"name": "x", "location": {"lat": 91.0, "lng": 0.0}}),
        json!({"name": "x", "location": {"lat": 0.0, "lng": 180.5}}),
        json!({"name": "x", "location": {"lat": "north", "lng": 0.0}}),
        json!({"name": "", "location": north(0.0)}),
        // Found by schemathesis: PostgreSQL refuses NUL in text, so it must never get there.
        json!({"name": "Dosa\u{0}Corner", "location": north(0.0)}),
        json!({"name": "Dosa\u{1b}[31mCorner", "location": north(0.0)}),
        json!({"location": north(0.0)}),
    ] {
        let r = app.post("/v1/restaurants", &app.ops, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_request"),
            "{body} -> {:?}",
            r.body
        );
        assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
    }
    let r = app
        .raw("POST", "/v1/restaurants", &app.ops, "{not json")
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    let r = app
        .post(
            "/v1/customers",
            &app.ops,
            json!({"name": "A", "phone": "call me", "email": "a@b.in"}),
        )
        .await;
    assert_eq!(r.code(), "invalid_request");
    let r = app.get("/v1/restaurants?lat=NaN&lng=0", &app.ops).await;
    assert_eq!(r.code(), "invalid_request");
    let r = app.get("/v1/restaurants/not-a-uuid", &app.ops).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
}

#[actix_web::test]
async fn health_readiness_metrics_and_openapi_are_served() {
    let app = spawn_app().await;
    assert_eq!(app.call("GET", "/healthz", None, None).await.status, 200);
    assert_eq!(app.call("GET", "/readyz", None, None).await.status, 200);
    let m = app.call("GET", "/metrics", None, None).await;
    assert_eq!(m.status, 200);
    assert!(m.body.as_str().unwrap().contains("dabba_"), "{:?}", m.body);
    let spec = app.call("GET", "/openapi.json", None, None).await;
    assert_eq!(spec.status, 200);
    let paths = spec.body["paths"].as_object().unwrap();
    for p in [
        "/v1/orders",
        "/v1/orders/{id}",
        "/v1/orders/{id}/cancel",
        "/v1/orders/{id}/rating",
        "/v1/riders/{id}/offers/{order_id}/accept",
        "/v1/restaurants/{rid}/orders/{oid}/reject",
        "/v1/customers/{id}/orders",
        "/v1/ws",
        "/v1/test/clock",
        "/readyz",
    ] {
        assert!(paths.contains_key(p), "openapi lacks {p}");
    }
}
