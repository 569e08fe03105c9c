use serde_json::json;

use crate::helpers::{is_type, north, south, spawn_app};

#[actix_web::test]
async fn placing_an_order_computes_the_total_on_the_server() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (cust, t) = app.customer().await;
    let mut body = app.order_body(&r, south(1_000.0));
    body["total_cents"] = json!(1); // ignored: the server computes it
    let o = app.post("/v1/orders", &t, body).await;
    assert_eq!(o.status, 201, "{:?}", o.body);
    assert_eq!(o.body["total_cents"], 22_000);
    assert_eq!(o.body["customer_id"], cust.as_str());
    assert_eq!(o.body["status"], "placed");
    assert_eq!(o.body["stage"], "awaiting_restaurant");
    assert_eq!(o.body["version"], 1);
    assert_eq!(o.body["rider_id"], json!(null));
    assert_eq!(o.body["refund"], json!(null));
}

#[actix_web::test]
async fn delivery_must_be_within_5_km_of_the_restaurant() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (_, t) = app.customer().await;
    let ok = app
        .post("/v1/orders", &t, app.order_body(&r, north(4_990.0)))
        .await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    let far = app
        .post("/v1/orders", &t, app.order_body(&r, north(5_010.0)))
        .await;
    assert_eq!((far.status, far.code()), (422, "out_of_radius"));
}

#[actix_web::test]
async fn unknown_or_closed_restaurants_refuse_orders() {
    let app = spawn_app().await;
    let (_, t) = app.customer().await;
    let r = app
        .post(
            "/v1/orders",
            &t,
            app.order_body(&uuid::Uuid::new_v4().to_string(), north(10.0)),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let (rid, rt) = app.restaurant().await;
    let closed = app
        .put(
            &format!("/v1/restaurants/{rid}/open"),
            &rt,
            json!({"open": false}),
        )
        .await;
    assert_eq!(closed.body["open"], false);
    let r = app
        .post("/v1/orders", &t, app.order_body(&rid, north(10.0)))
        .await;
    assert_eq!((r.status, r.code()), (409, "restaurant_closed"));
}

#[actix_web::test]
async fn malformed_orders_are_400_invalid_request() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (_, t) = app.customer().await;
    let good = app.order_body(&r, north(10.0));
    let mut cases = vec![];
    let mut b = good.clone();
    b["items"] = json!([]);
    cases.push(b);
    let mut b = good.clone();
    b["items"][0]["quantity"] = json!(0);
    cases.push(b);
    let mut b = good.clone();
    b["items"][0]["quantity"] = json!(-1);
    cases.push(b);
    let mut b = good.clone();
    b["items"][0]["unit_price_cents"] = json!(-5);
    cases.push(b);
    let mut b = good.clone();
    b["items"][0]["quantity"] = json!(1e30);
    cases.push(b);
    let mut b = good.clone();
    b["delivery"]["location"] = json!({"lat": 12.0, "lng": 999.0});
    cases.push(b);
    let mut b = good.clone();
    b["restaurant_id"] = json!("nope");
    cases.push(b);
    let mut b = good.clone();
    b["deliver_at"] = json!("yesterday");
    cases.push(b);
    for body in cases {
        let res = app.post("/v1/orders", &t, body.clone()).await;
        assert_eq!(
            (res.status, res.code()),
            (400, "invalid_request"),
            "{body}: {:?}",
            res.body
        );
    }
    let res = app.post("/v1/orders", &t, json!({"restaurant_id": r, "items": [{"item_id": crate::helpers::IDLI, "quantity": "two"}], "delivery": {"location": north(1.0), "address": "a"}})).await;
    assert!(
        res.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("items[0].quantity"),
        "{:?}",
        res.body
    );
    let big = format!(
        "{{\"restaurant_id\": \"{}\", \"pad\": \"{}\"}}",
        r,
        "x".repeat(70_000)
    );
    let res = app
        .raw("POST", "/v1/orders", &t, Box::leak(big.into_boxed_str()))
        .await;
    assert_eq!((res.status, res.code()), (413, "payload_too_large"));
}

#[actix_web::test]
async fn restaurant_rejection_refunds_in_full_and_tells_the_customer() {
    let app = spawn_app().await;
    let rest = app.restaurant().await;
    let (_, t) = app.customer().await;
    let mut ws = app.ws(&t).await;
    let order = app.place(&t, &rest.0).await;
    let placed = ws.until(is_type("order.updated")).await;
    assert_eq!(placed["order"]["id"], order.as_str());
    let r = app
        .post(
            &format!("/v1/restaurants/{}/orders/{order}/reject", rest.0),
            &rest.1,
            json!({"reason": "out of dosa batter"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "rejected");
    assert_eq!(r.body["stage"], "rejected_by_restaurant");
    assert_eq!(
        r.body["refund"],
        json!({"percent": 100, "amount_cents": 22_000})
    );
    assert_eq!(r.body["version"], 2);
    let pushed = ws.until(is_type("order.updated")).await;
    assert_eq!(pushed["order"]["status"], "rejected");
    assert_eq!(pushed["order"]["version"], 2);
    // Finished: a second answer is refused.
    let again = app.accept(&rest, &order).await;
    assert_eq!((again.status, again.code()), (409, "invalid_state"));
}

async fn cancel_after(seconds: i64) -> crate::helpers::Response {
    let app = crate::helpers::spawn_patient_app().await;
    let (r, _) = app.restaurant().await;
    let (_, t) = app.customer().await;
    let order = app.place(&t, &r).await;
    app.advance(seconds).await;
    app.post(&format!("/v1/orders/{order}/cancel"), &t, json!({}))
        .await
}

#[actix_web::test]
async fn cancelling_refunds_70_percent_under_10_minutes() {
    let r = cancel_after(599).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["refund"],
        json!({"percent": 70, "amount_cents": 15_400})
    );
    assert_eq!(r.body["order"]["status"], "cancelled");
    assert_eq!(r.body["order"]["stage"], "cancelled");
    assert_eq!(r.body["order"]["refund"]["percent"], 70);
}

#[actix_web::test]
async fn cancelling_at_10_minutes_refunds_40_percent() {
    let r = cancel_after(600).await;
    assert_eq!(
        r.body["refund"],
        json!({"percent": 40, "amount_cents": 8_800})
    );
    let r = cancel_after(1_799).await;
    assert_eq!(r.body["refund"]["percent"], 40);
}

#[actix_web::test]
async fn cancelling_from_30_minutes_on_is_refused() {
    let r = cancel_after(1_800).await;
    assert_eq!((r.status, r.code()), (409, "cancellation_window_closed"));
}

#[actix_web::test]
async fn a_finished_order_cannot_be_cancelled_again() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (_, t) = app.customer().await;
    let order = app.place(&t, &r).await;
    assert_eq!(
        app.post(&format!("/v1/orders/{order}/cancel"), &t, json!({}))
            .await
            .status,
        200
    );
    let again = app
        .post(&format!("/v1/orders/{order}/cancel"), &t, json!({}))
        .await;
    assert_eq!((again.status, again.code()), (409, "invalid_state"));
    assert_eq!(app.order(&order).await["version"], 2);
}

#[actix_web::test]
async fn customers_update_delivery_until_30_minutes_and_rechecked_against_the_radius() {
    let app = crate::helpers::spawn_patient_app().await;
    let (r, _) = app.restaurant().await;
    let (_, t) = app.customer().await;
    let order = app.place(&t, &r).await;
    let path = format!("/v1/orders/{order}");
    let moved = app
        .patch(
            &path,
            &t,
            json!({"delivery": {"location": north(2_000.0), "address": "5 Brigade Road"}}),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(moved.body["delivery"]["address"], "5 Brigade Road");
    assert_eq!(moved.body["version"], 2);
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let timed = app
        .patch(&path, &t, json!({"deliver_at": later.to_rfc3339()}))
        .await;
    assert_eq!(timed.status, 200);
    assert_eq!(timed.body["version"], 3);
    assert!(timed.body["deliver_at"].as_str().is_some());
    let far = app
        .patch(
            &path,
            &t,
            json!({"delivery": {"location": north(5_010.0), "address": "far"}}),
        )
        .await;
    assert_eq!((far.status, far.code()), (422, "out_of_radius"));
    app.advance(1_799).await;
    assert_eq!(
        app.patch(
            &path,
            &t,
            json!({"delivery": {"location": north(10.0), "address": "x"}})
        )
        .await
        .status,
        200
    );
    app.advance(1).await;
    let late = app
        .patch(
            &path,
            &t,
            json!({"delivery": {"location": north(10.0), "address": "x"}}),
        )
        .await;
    assert_eq!((late.status, late.code()), (409, "update_window_closed"));
}

#[actix_web::test]
async fn history_lists_the_last_6_months_newest_first_in_pages() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (cust, t) = app.customer().await;
    let (_, other) = app.customer().await;
    let old = app.place(&t, &r).await;
    app.advance(184 * 24 * 3600).await; // the first order is now older than 6 months
    let mut recent = vec![];
    for _ in 0..5 {
        recent.push(app.place(&t, &r).await);
        app.advance(1).await;
    }
    app.place(&other, &r).await;
    let mut seen = vec![];
    let mut path = format!("/v1/customers/{cust}/orders?limit=2");
    loop {
        let page = app.get(&path, &t).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        for o in page.body["orders"].as_array().unwrap() {
            seen.push(o["id"].as_str().unwrap().to_owned());
        }
        match page.body["next"].as_str() {
            Some(next) => path = format!("/v1/customers/{cust}/orders?limit=2&before={next}"),
            None => break,
        }
    }
    recent.reverse();
    assert_eq!(seen, recent);
    assert!(!seen.contains(&old));
    let bad = app
        .get(&format!("/v1/customers/{cust}/orders?limit=0"), &t)
        .await;
    assert_eq!(bad.code(), "invalid_request");
}

#[actix_web::test]
async fn the_same_idempotency_key_never_creates_a_second_order() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (cust, t) = app.customer().await;
    let body = app.order_body(&r, south(100.0));
    let send = async |b: serde_json::Value| {
        let key = [("Idempotency-Key", "k-123")];
        let r = app
            .client
            .call_with("POST", "/v1/orders", Some(&t), Some(&b), &key)
            .await
            .unwrap();
        (r.status, r.body)
    };
    let (s1, first) = send(body.clone()).await;
    let (s2, second) = send(body.clone()).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(first["id"], second["id"]);
    let mut other = body.clone();
    other["items"][0]["quantity"] = json!(5);
    let (s3, reused) = send(other).await;
    assert_eq!(
        (s3, reused["error"]["code"].as_str().unwrap()),
        (422, "idempotency_key_reused")
    );
    let history = app.get(&format!("/v1/customers/{cust}/orders"), &t).await;
    assert_eq!(history.body["orders"].as_array().unwrap().len(), 1);
}
