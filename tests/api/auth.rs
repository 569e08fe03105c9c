use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Options, north, spawn_app, spawn_app_with};
use dabba::api::auth::Role;

#[actix_web::test]
async fn missing_or_forged_tokens_are_401() {
    let app = spawn_app().await;
    let r = app
        .call("GET", "/v1/restaurants?lat=0&lng=0", None, None)
        .await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let forged = dabba::api::auth::Keys::new("not-the-secret").mint(
        Role::Ops,
        Uuid::new_v4(),
        chrono::Duration::hours(1),
    );
    let r = app.post("/v1/riders", &forged, json!({"name": "x"})).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let r = app
        .call("GET", "/v1/restaurants?lat=0&lng=0", Some("garbage"), None)
        .await;
    assert_eq!(r.status, 401);
}

#[actix_web::test]
async fn each_role_gets_403_outside_its_own_resources() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let other_restaurant = app.restaurant().await;
    let (cust, cust_t) = app.customer().await;
    let (_stranger, stranger_t) = app.customer().await;
    let (rider, rider_t) = app.available_rider_at(north(100.0)).await;
    let (_rider2, rider2_t) = app.rider().await;
    let order = app.place(&cust_t, &restaurant.0).await;

    // Registration is for ops only.
    for t in [&cust_t, &rider_t, &restaurant.1] {
        assert_eq!(
            app.post(
                "/v1/restaurants",
                t,
                json!({"name": "x", "location": north(0.0)})
            )
            .await
            .status,
            403
        );
        assert_eq!(
            app.post("/v1/riders", t, json!({"name": "x"})).await.status,
            403
        );
        assert_eq!(
            app.post(
                "/v1/customers",
                t,
                json!({"name": "x", "phone": "1", "email": "a@b.c"})
            )
            .await
            .status,
            403
        );
    }
    // Only customers place orders.
    for t in [&rider_t, &restaurant.1, &app.ops] {
        let r = app
            .post("/v1/orders", t, app.order_body(&restaurant.0, north(10.0)))
            .await;
        assert_eq!((r.status, r.code()), (403, "forbidden"));
    }
    // Someone else's order.
    assert_eq!(
        app.get(&format!("/v1/orders/{order}"), &stranger_t)
            .await
            .status,
        403
    );
    assert_eq!(
        app.get(&format!("/v1/orders/{order}"), &other_restaurant.1)
            .await
            .status,
        403
    );
    assert_eq!(
        app.get(&format!("/v1/orders/{order}"), &rider_t)
            .await
            .status,
        403
    );
    assert_eq!(
        app.post(
            &format!("/v1/orders/{order}/cancel"),
            &stranger_t,
            json!({})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        app.patch(
            &format!("/v1/orders/{order}"),
            &stranger_t,
            json!({"deliver_at": null, "delivery": {"location": north(1.0), "address": "x"}})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        app.get(&format!("/v1/customers/{cust}/orders"), &stranger_t)
            .await
            .status,
        403
    );
    assert_eq!(
        app.get(&format!("/v1/customers/{cust}/orders"), &rider_t)
            .await
            .status,
        403
    );
    // A restaurant answers only its own orders, under its own id.
    let r = app
        .post(
            &format!(
                "/v1/restaurants/{}/orders/{order}/accept",
                other_restaurant.0
            ),
            &other_restaurant.1,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .post(
            &format!("/v1/restaurants/{}/orders/{order}/accept", restaurant.0),
            &other_restaurant.1,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        app.post(
            &format!("/v1/restaurants/{}/orders/{order}/accept", restaurant.0),
            &cust_t,
            json!({})
        )
        .await
        .status,
        403
    );
    // A rider acts only as itself.
    assert_eq!(
        app.put(
            &format!("/v1/riders/{rider}/status"),
            &rider2_t,
            json!({"status": "offline"})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        app.put(
            &format!("/v1/riders/{rider}/location"),
            &rider2_t,
            north(1.0)
        )
        .await
        .status,
        403
    );
    assert_eq!(
        app.get(&format!("/v1/riders/{rider}"), &rider2_t)
            .await
            .status,
        403
    );
    assert_eq!(
        app.get(&format!("/v1/riders/{rider}"), &cust_t)
            .await
            .status,
        403
    );
    assert_eq!(
        app.post(
            &format!("/v1/riders/{rider}/offers/{order}/accept"),
            &rider2_t,
            json!({})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        app.post(&format!("/v1/orders/{order}/pickup"), &cust_t, json!({}))
            .await
            .status,
        403
    );
    // The test clock is ops-only.
    assert_eq!(
        app.post("/v1/test/clock", &cust_t, json!({"advance_seconds": 1}))
            .await
            .status,
        403
    );
    // And the owners do get through.
    assert_eq!(
        app.get(&format!("/v1/orders/{order}"), &cust_t)
            .await
            .status,
        200
    );
    assert_eq!(
        app.get(&format!("/v1/orders/{order}"), &restaurant.1)
            .await
            .status,
        200
    );
    assert_eq!(
        app.get(&format!("/v1/riders/{rider}"), &rider_t)
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn the_test_clock_is_404_unless_enabled() {
    let app = spawn_app_with(Options {
        test_clock: false,
        faults: false,
        ..Options::default()
    })
    .await;
    let r = app
        .post("/v1/test/clock", &app.ops, json!({"advance_seconds": 60}))
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}
