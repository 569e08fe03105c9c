use serde_json::{Value, json};

use crate::helpers::{TestApp, is_type, north, south, spawn_app};

/// An accepted order at a fresh restaurant, with its customer's token.
struct Accepted {
    restaurant: (String, String),
    customer: String,
    order: String,
}

async fn accepted_order(app: &TestApp) -> Accepted {
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let order = app.place(&customer, &restaurant.0).await;
    let r = app.accept(&restaurant, &order).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    Accepted {
        restaurant,
        customer,
        order,
    }
}

fn offer_of(rider: &Value) -> Option<String> {
    rider["offer"]["order_id"].as_str().map(str::to_owned)
}

async fn reject(app: &TestApp, rider: &(String, String), order: &str) -> crate::helpers::Response {
    app.post(
        &format!("/v1/riders/{}/offers/{order}/reject", rider.0),
        &rider.1,
        json!({}),
    )
    .await
}

async fn accept_offer(
    app: &TestApp,
    rider: &(String, String),
    order: &str,
) -> crate::helpers::Response {
    app.post(
        &format!("/v1/riders/{}/offers/{order}/accept", rider.0),
        &rider.1,
        json!({}),
    )
    .await
}

#[actix_web::test]
async fn accepting_an_order_offers_it_to_the_nearest_available_rider() {
    let app = spawn_app().await;
    let far = app.available_rider_at(north(3_000.0)).await;
    let near = app.available_rider_at(south(800.0)).await;
    let offline = app.rider().await;
    app.put(
        &format!("/v1/riders/{}/location", offline.0),
        &offline.1,
        north(10.0),
    )
    .await;
    let mut near_ws = app.ws(&near.1).await;
    let a = accepted_order(&app).await;
    let offer = near_ws.until(is_type("offer")).await;
    assert_eq!(offer["order_id"], a.order.as_str());
    assert_eq!(offer["restaurant"]["id"], a.restaurant.0.as_str());
    assert_eq!(offer["delivery"]["address"], "12 MG Road");
    assert!(offer["expires_at"].as_str().is_some());
    assert_eq!(
        offer_of(&app.rider_state(&near.0).await),
        Some(a.order.clone())
    );
    assert_eq!(offer_of(&app.rider_state(&far.0).await), None);
    let order = app.order(&a.order).await;
    assert_eq!(
        (order["status"].as_str(), order["stage"].as_str()),
        (Some("processing"), Some("finding_rider"))
    );
}

#[actix_web::test]
async fn rejected_offer_goes_to_the_next_nearest_rider_never_twice() {
    let app = spawn_app().await;
    let r1 = app.available_rider_at(north(100.0)).await;
    let r2 = app.available_rider_at(north(200.0)).await;
    let r3 = app.available_rider_at(north(300.0)).await;
    let a = accepted_order(&app).await;
    assert_eq!(
        offer_of(&app.rider_state(&r1.0).await),
        Some(a.order.clone())
    );
    assert_eq!(reject(&app, &r1, &a.order).await.status, 200);
    assert_eq!(offer_of(&app.rider_state(&r1.0).await), None);
    assert_eq!(
        offer_of(&app.rider_state(&r2.0).await),
        Some(a.order.clone())
    );
    assert_eq!(reject(&app, &r2, &a.order).await.status, 200);
    assert_eq!(
        offer_of(&app.rider_state(&r3.0).await),
        Some(a.order.clone())
    );
    assert_eq!(reject(&app, &r3, &a.order).await.status, 200);
    // Everyone in range tried: nobody is offered it again, the order waits.
    for r in [&r1, &r2, &r3] {
        let s = app.rider_state(&r.0).await;
        assert_eq!(offer_of(&s), None);
        assert_eq!(s["status"], "available");
    }
    assert_eq!(app.order(&a.order).await["stage"], "finding_rider");
    // A new rider coming online in range gets it.
    let r4 = app.available_rider_at(north(4_000.0)).await;
    assert_eq!(
        offer_of(&app.rider_state(&r4.0).await),
        Some(a.order.clone())
    );
}

#[actix_web::test]
async fn riders_beyond_5_km_of_the_restaurant_are_never_offered() {
    let app = spawn_app().await;
    let out = app.available_rider_at(north(5_010.0)).await;
    let a = accepted_order(&app).await;
    assert_eq!(offer_of(&app.rider_state(&out.0).await), None);
    // Moving to 4.99 km brings it in range, and the waiting order is offered.
    app.put(
        &format!("/v1/riders/{}/location", out.0),
        &out.1,
        north(4_990.0),
    )
    .await;
    assert_eq!(offer_of(&app.rider_state(&out.0).await), Some(a.order));
}

#[actix_web::test]
async fn an_unanswered_offer_times_out_and_moves_on() {
    let app = spawn_app().await;
    let r1 = app.available_rider_at(north(100.0)).await;
    let r2 = app.available_rider_at(north(200.0)).await;
    let mut ws1 = app.ws(&r1.1).await;
    let a = accepted_order(&app).await;
    ws1.until(is_type("offer")).await;
    app.advance(29).await;
    assert_eq!(
        offer_of(&app.rider_state(&r1.0).await),
        Some(a.order.clone())
    );
    app.advance(1).await;
    let withdrawn = ws1.until(is_type("offer.withdrawn")).await;
    assert_eq!(withdrawn["order_id"], a.order.as_str());
    assert_eq!(offer_of(&app.rider_state(&r1.0).await), None);
    assert_eq!(
        offer_of(&app.rider_state(&r2.0).await),
        Some(a.order.clone())
    );
    // The expired offer can no longer be taken.
    let late = accept_offer(&app, &r1, &a.order).await;
    assert_eq!((late.status, late.code()), (409, "offer_not_active"));
}

#[actix_web::test]
async fn with_nobody_in_range_the_order_ends_no_rider_found_at_the_deadline() {
    let app = spawn_app().await;
    let a = accepted_order(&app).await;
    app.advance(599).await;
    assert_eq!(app.order(&a.order).await["stage"], "finding_rider");
    app.advance(1).await;
    let o = app.order(&a.order).await;
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["stage"], "no_rider_found");
    assert_eq!(o["refund"], json!({"percent": 100, "amount_cents": 22_000}));
    let _ = a.customer;
}

#[actix_web::test]
async fn a_rider_cannot_take_another_riders_offer() {
    let app = spawn_app().await;
    let r1 = app.available_rider_at(north(100.0)).await;
    let r2 = app.available_rider_at(north(200.0)).await;
    let a = accepted_order(&app).await;
    let steal = accept_offer(&app, &r2, &a.order).await;
    assert_eq!((steal.status, steal.code()), (409, "offer_not_active"));
    let steal = reject(&app, &r2, &a.order).await;
    assert_eq!((steal.status, steal.code()), (409, "offer_not_active"));
    assert_eq!(offer_of(&app.rider_state(&r1.0).await), Some(a.order));
}

#[actix_web::test]
async fn two_answers_at_once_assign_the_order_exactly_once() {
    let app = spawn_app().await;
    let r1 = app.available_rider_at(north(100.0)).await;
    let r2 = app.available_rider_at(north(150.0)).await;
    let a = accepted_order(&app).await;
    // The offered rider double-taps accept while the other rider tries the same offer.
    let (x, y, z) = futures_util::join!(
        accept_offer(&app, &r1, &a.order),
        accept_offer(&app, &r1, &a.order),
        accept_offer(&app, &r2, &a.order),
    );
    let mut statuses = vec![x.status, y.status, z.status];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409, 409]);
    assert_eq!(z.status, 409);
    let o = app.order(&a.order).await;
    assert_eq!(o["stage"], "rider_assigned");
    assert_eq!(o["rider_id"], r1.0.as_str());
    assert_eq!(o["version"], 4);
}

#[actix_web::test]
async fn a_rider_holds_one_offer_at_a_time_and_is_never_double_booked() {
    let app = spawn_app().await;
    let rider = app.available_rider_at(north(100.0)).await;
    let first = accepted_order(&app).await;
    let second = accepted_order(&app).await;
    assert_eq!(
        offer_of(&app.rider_state(&rider.0).await),
        Some(first.order.clone())
    );
    assert_eq!(accept_offer(&app, &rider, &first.order).await.status, 200);
    let s = app.rider_state(&rider.0).await;
    assert_eq!(
        (s["status"].as_str(), s["order_id"].as_str(), offer_of(&s)),
        (Some("busy"), Some(first.order.as_str()), None)
    );
    assert_eq!(accept_offer(&app, &rider, &second.order).await.status, 409);
    assert_eq!(app.order(&second.order).await["stage"], "finding_rider");
    // Busy riders cannot walk away from a delivery.
    let off = app
        .put(
            &format!("/v1/riders/{}/status", rider.0),
            &rider.1,
            json!({"status": "offline"}),
        )
        .await;
    assert_eq!((off.status, off.code()), (409, "invalid_state"));
    // After delivery the rider is free and gets the waiting order.
    assert_eq!(
        app.post(
            &format!("/v1/orders/{}/pickup", first.order),
            &rider.1,
            json!({})
        )
        .await
        .status,
        200
    );
    let d = app
        .post(
            &format!("/v1/orders/{}/deliver", first.order),
            &rider.1,
            json!({}),
        )
        .await;
    assert_eq!(
        (d.body["status"].as_str(), d.body["stage"].as_str()),
        (Some("completed"), Some("delivered"))
    );
    let s = app.rider_state(&rider.0).await;
    assert_eq!(s["status"], "available");
    assert_eq!(s["order_id"], Value::Null);
    assert_eq!(offer_of(&s), Some(second.order.clone()));
}

#[actix_web::test]
async fn the_whole_ride_is_streamed_to_the_customer() {
    let app = spawn_app().await;
    let rider = app.available_rider_at(north(100.0)).await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let mut cws = app.ws(&customer).await;
    let order = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &order).await;
    let assigned = accept_offer(&app, &rider, &order).await;
    assert_eq!(assigned.body["stage"], "rider_assigned");
    assert_eq!(assigned.body["rider_id"], rider.0.as_str());
    // Only the rider may pick up and deliver, in order.
    let early = app
        .post(&format!("/v1/orders/{order}/deliver"), &rider.1, json!({}))
        .await;
    assert_eq!(early.code(), "invalid_state");
    app.post(&format!("/v1/orders/{order}/pickup"), &rider.1, json!({}))
        .await;
    app.put(
        &format!("/v1/riders/{}/location", rider.0),
        &rider.1,
        south(300.0),
    )
    .await;
    app.post(&format!("/v1/orders/{order}/deliver"), &rider.1, json!({}))
        .await;

    let mut stages = vec![];
    let mut versions = vec![];
    let mut location = None;
    while stages.last().map(String::as_str) != Some("delivered") {
        let m = cws.next().await.expect("customer keeps getting updates");
        match m["type"].as_str() {
            Some("order.updated") => {
                stages.push(m["order"]["stage"].as_str().unwrap().to_owned());
                versions.push(m["order"]["version"].as_u64().unwrap());
            }
            Some("rider.location") => location = Some(m),
            _ => {}
        }
    }
    assert_eq!(
        stages,
        [
            "awaiting_restaurant",
            "preparing",
            "finding_rider",
            "rider_assigned",
            "picked_up",
            "delivered"
        ]
    );
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    let location = location.expect("the customer saw the rider move after pickup");
    assert_eq!(location["order_id"], order.as_str());
    assert_eq!(location["location"], south(300.0));
}

#[actix_web::test]
async fn the_assigned_rider_is_told_when_the_customer_changes_the_address() {
    let app = spawn_app().await;
    let rider = app.available_rider_at(north(100.0)).await;
    let a = accepted_order(&app).await;
    accept_offer(&app, &rider, &a.order).await;
    let mut rws = app.ws(&rider.1).await;
    let r = app
        .patch(
            &format!("/v1/orders/{}", a.order),
            &a.customer,
            json!({"delivery": {"location": north(900.0), "address": "New flat"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let m = rws.until(is_type("order.updated")).await;
    assert_eq!(m["order"]["delivery"]["address"], "New flat");
    // After pickup the window is closed.
    app.post(
        &format!("/v1/orders/{}/pickup", a.order),
        &rider.1,
        json!({}),
    )
    .await;
    let late = app
        .patch(
            &format!("/v1/orders/{}", a.order),
            &a.customer,
            json!({"delivery": {"location": north(900.0), "address": "x"}}),
        )
        .await;
    assert_eq!((late.status, late.code()), (409, "update_window_closed"));
    let _ = a.restaurant;
}

#[actix_web::test]
async fn cancelling_an_assigned_order_frees_the_rider() {
    let app = spawn_app().await;
    let rider = app.available_rider_at(north(100.0)).await;
    let a = accepted_order(&app).await;
    accept_offer(&app, &rider, &a.order).await;
    let c = app
        .post(
            &format!("/v1/orders/{}/cancel", a.order),
            &a.customer,
            json!({}),
        )
        .await;
    assert_eq!(c.status, 200);
    let s = app.rider_state(&rider.0).await;
    assert_eq!(
        (s["status"].as_str(), s["order_id"].clone()),
        (Some("available"), Value::Null)
    );
}

#[actix_web::test]
async fn cancelling_during_an_offer_withdraws_it() {
    let app = spawn_app().await;
    let rider = app.available_rider_at(north(100.0)).await;
    let mut rws = app.ws(&rider.1).await;
    let a = accepted_order(&app).await;
    rws.until(is_type("offer")).await;
    app.post(
        &format!("/v1/orders/{}/cancel", a.order),
        &a.customer,
        json!({}),
    )
    .await;
    let w = rws.until(is_type("offer.withdrawn")).await;
    assert_eq!(w["order_id"], a.order.as_str());
    assert_eq!(
        accept_offer(&app, &rider, &a.order).await.code(),
        "offer_not_active"
    );
}

#[actix_web::test]
async fn going_offline_with_an_open_offer_passes_it_on() {
    let app = spawn_app().await;
    let r1 = app.available_rider_at(north(100.0)).await;
    let r2 = app.available_rider_at(north(200.0)).await;
    let a = accepted_order(&app).await;
    let off = app
        .put(
            &format!("/v1/riders/{}/status", r1.0),
            &r1.1,
            json!({"status": "offline"}),
        )
        .await;
    assert_eq!(off.body["status"], "offline");
    assert_eq!(offer_of(&app.rider_state(&r2.0).await), Some(a.order));
}

#[actix_web::test]
async fn rating_a_delivered_order_updates_the_restaurant_once() {
    let app = spawn_app().await;
    let rider = app.available_rider_at(north(100.0)).await;
    let a = accepted_order(&app).await;
    let path = format!("/v1/orders/{}/rating", a.order);
    assert_eq!(
        app.post(&path, &a.customer, json!({"stars": 5}))
            .await
            .code(),
        "invalid_state"
    );
    accept_offer(&app, &rider, &a.order).await;
    app.post(
        &format!("/v1/orders/{}/pickup", a.order),
        &rider.1,
        json!({}),
    )
    .await;
    app.post(
        &format!("/v1/orders/{}/deliver", a.order),
        &rider.1,
        json!({}),
    )
    .await;
    assert_eq!(
        app.post(&path, &a.customer, json!({"stars": 6}))
            .await
            .code(),
        "invalid_request"
    );
    let r = app
        .post(&path, &a.customer, json!({"stars": 4, "comment": "crisp"}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let again = app.post(&path, &a.customer, json!({"stars": 1})).await;
    assert_eq!((again.status, again.code()), (409, "already_rated"));
    let rest = app
        .get(&format!("/v1/restaurants/{}", a.restaurant.0), &a.customer)
        .await;
    assert_eq!(rest.body["rating"], json!({"average": 4.0, "count": 1}));
}

#[actix_web::test]
async fn when_every_rider_declined_they_are_asked_again_after_the_cool_down() {
    let app = spawn_app().await;
    let near = app.available_rider_at(south(500.0)).await;
    let far = app.available_rider_at(north(2_000.0)).await;
    let a = accepted_order(&app).await;
    assert_eq!(
        offer_of(&app.rider_state(&near.0).await).as_deref(),
        Some(a.order.as_str())
    );
    assert_eq!(reject(&app, &near, &a.order).await.status, 200);
    assert_eq!(
        offer_of(&app.rider_state(&far.0).await).as_deref(),
        Some(a.order.as_str())
    );
    assert_eq!(reject(&app, &far, &a.order).await.status, 200);
    // Everyone in range declined: nobody is asked until the cool-down (2 min) ends.
    app.advance(119).await;
    assert_eq!(offer_of(&app.rider_state(&near.0).await), None);
    assert_eq!(offer_of(&app.rider_state(&far.0).await), None);
    assert_eq!(app.order(&a.order).await["stage"], "finding_rider");
    // A new round: the nearest is asked first, again.
    app.advance(1).await;
    assert_eq!(
        offer_of(&app.rider_state(&near.0).await).as_deref(),
        Some(a.order.as_str())
    );
    let r = accept_offer(&app, &near, &a.order).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let o = app.order(&a.order).await;
    assert_eq!(
        (o["stage"].as_str(), o["rider_id"].as_str()),
        (Some("rider_assigned"), Some(near.0.as_str()))
    );
    assert_eq!(o["offers"], 3, "offers count every round");
    let explained = app
        .get(&format!("/v1/orders/{}/dispatch", a.order), &a.restaurant.1)
        .await;
    assert_eq!(explained.status, 200, "{:?}", explained.body);
    let attempts = explained.body["attempts"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = attempts
        .iter()
        .map(|t| {
            (
                t["rider_id"].as_str().unwrap(),
                t["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (near.0.as_str(), "rejected"),
            (far.0.as_str(), "rejected"),
            (near.0.as_str(), "accepted")
        ]
    );
    assert!((attempts[1]["distance_m"].as_f64().unwrap() - 2_000.0).abs() < 5.0);
}

#[actix_web::test]
async fn the_dispatch_explanation_records_timeouts_and_withdrawals() {
    let app = spawn_app().await;
    let first = app.available_rider_at(south(300.0)).await;
    let second = app.available_rider_at(south(900.0)).await;
    let a = accepted_order(&app).await;
    app.advance(30).await;
    assert_eq!(
        offer_of(&app.rider_state(&second.0).await).as_deref(),
        Some(a.order.as_str())
    );
    let r = app
        .post(
            &format!("/v1/orders/{}/cancel", a.order),
            &a.customer,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    let path = format!("/v1/orders/{}/dispatch", a.order);
    let mut outcomes = vec![];
    for _ in 0..50 {
        let body = app.get(&path, &app.ops).await.body;
        outcomes = body["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["rider_id"].as_str().unwrap().to_owned(),
                    t["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        if outcomes.last().is_some_and(|o| o.1 == "withdrawn") {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        outcomes,
        vec![
            (first.0.clone(), "timed_out".to_owned()),
            (second.0.clone(), "withdrawn".to_owned())
        ]
    );
    assert_eq!(app.get(&path, &a.customer).await.status, 403);
}
