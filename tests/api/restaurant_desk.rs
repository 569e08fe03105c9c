//! The restaurant's desk: its open flag and preparation time, and its orders by stage (a
//! tablet that was offline finds its work).

use serde_json::json;

use crate::helpers::{north, spawn_app};

#[actix_web::test]
async fn a_restaurant_sets_its_status_and_prep_time() {
    let app = spawn_app().await;
    let (r, rt) = app.restaurant().await;
    let (_, c) = app.customer().await;
    let path = format!("/v1/restaurants/{r}/status");
    let closed = app
        .put(&path, &rt, json!({"open": false, "prep_minutes": 25}))
        .await;
    assert_eq!(closed.status, 200, "{:?}", closed.body);
    assert_eq!(
        (
            closed.body["open"].as_bool(),
            closed.body["prep_minutes"].as_u64()
        ),
        (Some(false), Some(25))
    );
    let refused = app
        .post("/v1/orders", &c, app.order_body(&r, north(10.0)))
        .await;
    assert_eq!((refused.status, refused.code()), (409, "restaurant_closed"));
    let open = app.put(&path, &rt, json!({"open": true})).await;
    assert_eq!(
        (
            open.body["open"].as_bool(),
            open.body["prep_minutes"].as_u64()
        ),
        (Some(true), Some(25))
    );
    assert_eq!(
        app.get(&format!("/v1/restaurants/{r}"), &c).await.body["prep_minutes"],
        25
    );
    for bad in [
        json!({"open": true, "prep_minutes": 241}),
        json!({"open": true, "prep_minutes": -1}),
        json!({"prep_minutes": 5}),
    ] {
        let res = app.put(&path, &rt, bad.clone()).await;
        assert_eq!((res.status, res.code()), (400, "invalid_request"), "{bad}");
    }
    let (_, other) = app.restaurant().await;
    assert_eq!(
        app.put(&path, &other, json!({"open": false})).await.status,
        403
    );
}

#[actix_web::test]
async fn a_restaurant_lists_its_orders_by_stage() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let first = app.place(&c, &restaurant.0).await;
    let second = app.place(&c, &restaurant.0).await;
    app.accept(&restaurant, &first).await;
    let list = async |query: &str| {
        let r = app
            .get(
                &format!("/v1/restaurants/{}/orders{query}", restaurant.0),
                &restaurant.1,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list("?stage=awaiting_restaurant").await,
        vec![second.clone()]
    );
    assert_eq!(list("?stage=finding_rider").await, vec![first.clone()]);
    assert_eq!(list("").await, vec![first.clone(), second.clone()]);
    app.post(&format!("/v1/orders/{second}/cancel"), &c, json!({}))
        .await;
    assert_eq!(list("?stage=cancelled").await, vec![second]);
    assert_eq!(list("").await, vec![first]);
    let bad = app
        .get(
            &format!("/v1/restaurants/{}/orders?stage=cooking", restaurant.0),
            &restaurant.1,
        )
        .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_request"));
    let (_, other) = app.restaurant().await;
    let r = app
        .get(&format!("/v1/restaurants/{}/orders", restaurant.0), &other)
        .await;
    assert_eq!(r.status, 403);
}

#[actix_web::test]
async fn an_unanswered_order_is_rejected_for_the_restaurant_at_exactly_its_timeout() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let mut ws = app.ws(&c).await;
    let ignored = app.place(&c, &restaurant.0).await;
    let answered = app.place(&c, &restaurant.0).await;
    app.accept(&restaurant, &answered).await;
    app.advance(299).await;
    assert_eq!(app.order(&ignored).await["stage"], "awaiting_restaurant");
    app.advance(1).await;
    let o = app.order(&ignored).await;
    assert_eq!(
        (
            o["stage"].as_str(),
            o["status"].as_str(),
            o["reject_reason"].as_str()
        ),
        (
            Some("rejected_by_restaurant"),
            Some("rejected"),
            Some("restaurant_timeout")
        )
    );
    assert_eq!(o["refund"], json!({"percent": 100, "amount_cents": 22_000}));
    // The customer is told; the answered order is untouched.
    let told = ws
        .until(|m| {
            m["type"] == "order.updated"
                && m["order"]["id"] == ignored.as_str()
                && m["order"]["stage"] == "rejected_by_restaurant"
        })
        .await;
    assert_eq!(told["order"]["reject_reason"], "restaurant_timeout");
    assert_eq!(app.order(&answered).await["stage"], "finding_rider");
    // The money comes back in full.
    for _ in 0..100 {
        let p = app
            .get(&format!("/v1/orders/{ignored}/payment"), &app.ops)
            .await;
        if p.body["status"] == "refunded" {
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the refund did not land");
}

#[actix_web::test]
async fn a_full_restaurant_is_busy_until_an_order_leaves() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        restaurant_capacity: 2,
        ..Default::default()
    })
    .await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let first = app.place(&c, &restaurant.0).await;
    let second = app.place(&c, &restaurant.0).await;
    app.accept(&restaurant, &second).await;
    let busy = app
        .post("/v1/orders", &c, app.order_body(&restaurant.0, north(10.0)))
        .await;
    assert_eq!((busy.status, busy.code()), (409, "restaurant_busy"));
    assert!(busy.retry_after.is_some());
    // Another restaurant is not affected.
    let (other, _) = app.restaurant().await;
    app.place(&c, &other).await;
    app.post(&format!("/v1/orders/{first}/cancel"), &c, json!({}))
        .await;
    let mut placed = false;
    for _ in 0..50 {
        let r = app
            .post("/v1/orders", &c, app.order_body(&restaurant.0, north(10.0)))
            .await;
        if r.status == 201 {
            placed = true;
            break;
        }
        assert_eq!(r.code(), "restaurant_busy");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(placed, "a place freed up");
}

#[actix_web::test]
async fn beyond_capacity_orders_queue_and_are_asked_in_turn_when_room_frees() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        restaurant_capacity: 1,
        restaurant_overflow: dabba::config::Overflow::Queue,
        ..Default::default()
    })
    .await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let first = app.place(&c, &restaurant.0).await;
    // Full: the next two are placed, not refused, and wait their turn.
    let second = app.place(&c, &restaurant.0).await;
    let third = app.place(&c, &restaurant.0).await;
    let mut tablet = app.ws(&restaurant.1).await;
    // The first is ignored: it times out after 5 minutes, and only then is the second asked;
    // the queued ones did not time out with it.
    app.advance(299).await;
    assert_eq!(app.order(&first).await["stage"], "awaiting_restaurant");
    app.advance(1).await;
    assert_eq!(
        app.order(&first).await["reject_reason"],
        "restaurant_timeout"
    );
    let asked = app.order(&second).await;
    assert_eq!(asked["stage"], "awaiting_restaurant");
    let pushed = tablet
        .until(|m| m["type"] == "order.updated" && m["order"]["id"] == second.as_str())
        .await;
    assert_eq!(pushed["order"]["version"], asked["version"]);
    // The second gets a full answer window of its own, then the third is asked.
    app.advance(299).await;
    assert_eq!(app.order(&second).await["stage"], "awaiting_restaurant");
    assert_eq!(app.accept(&restaurant, &second).await.status, 200);
    // The kitchen holds the second: the third waits, past its own five minutes.
    app.advance(600).await;
    assert_eq!(app.order(&third).await["stage"], "awaiting_restaurant");
    app.post(&format!("/v1/orders/{second}/cancel"), &c, json!({}))
        .await;
    // Room: the third is asked (within the second the desks next run), and its window starts.
    app.advance(1).await;
    let asked = tablet
        .until(|m| m["type"] == "order.updated" && m["order"]["id"] == third.as_str())
        .await;
    let asked_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(asked["order"]["updated_at"].clone()).unwrap();
    let now = app.advance(0).await;
    let left_ms = (asked_at + chrono::Duration::seconds(300) - now).num_milliseconds();
    app.advance((left_ms + 999) / 1_000 - 1).await;
    assert_eq!(app.order(&third).await["stage"], "awaiting_restaurant");
    app.advance(1).await;
    assert_eq!(
        app.order(&third).await["reject_reason"],
        "restaurant_timeout"
    );
}
