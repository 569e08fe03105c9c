//! Retries with an `Idempotency-Key` never act twice and get the first answer, even after a
//! restart; the same key on another request is refused.

use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, north, spawn_app, spawn_app_with};

async fn post_with_key(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: Value,
) -> (u16, Value) {
    let r = app
        .client
        .call_with(
            "POST",
            path,
            Some(token),
            Some(&body),
            &[("Idempotency-Key", key)],
        )
        .await
        .unwrap();
    (r.status, r.body)
}

#[actix_web::test]
async fn retried_answers_with_a_key_act_once_and_get_the_first_response() {
    let app = spawn_app().await;
    let rider = app.available_rider_at(north(100.0)).await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let order = app.place(&customer, &restaurant.0).await;
    let accept = format!("/v1/restaurants/{}/orders/{order}/accept", restaurant.0);
    let first = post_with_key(&app, &accept, &restaurant.1, "acc-1", json!({})).await;
    let retry = post_with_key(&app, &accept, &restaurant.1, "acc-1", json!({})).await;
    assert_eq!(first.0, 200);
    assert_eq!(first, retry);
    // Without the key, a retry is just a second accept, which the order refuses.
    assert_eq!(
        app.accept(&restaurant, &order).await.code(),
        "invalid_state"
    );

    let take = format!("/v1/riders/{}/offers/{order}/accept", rider.0);
    let first = post_with_key(&app, &take, &rider.1, "take-1", json!({})).await;
    let retry = post_with_key(&app, &take, &rider.1, "take-1", json!({})).await;
    assert_eq!(
        (first.0, &first.1["stage"]),
        (200, &json!("rider_assigned"))
    );
    assert_eq!(first, retry);
    assert_eq!(app.order(&order).await["version"], first.1["version"]);

    let cancel = format!("/v1/orders/{order}/cancel");
    let first = post_with_key(&app, &cancel, &customer, "cxl-1", json!({})).await;
    let retry = post_with_key(&app, &cancel, &customer, "cxl-1", json!({})).await;
    assert_eq!(first.0, 200);
    assert_eq!(first, retry);
    // The same key for something else is refused.
    let other = app.place(&customer, &restaurant.0).await;
    let reused = post_with_key(
        &app,
        &format!("/v1/orders/{other}/cancel"),
        &customer,
        "cxl-1",
        json!({}),
    )
    .await;
    assert_eq!(
        (reused.0, reused.1["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    assert_eq!(app.order(&other).await["status"], "placed");
}

#[actix_web::test]
async fn idempotency_keys_survive_a_restart() {
    let (url, _dir) = crate::helpers::durable_store().await;
    let first = spawn_app_with(Options {
        database_url: Some(url.clone()),
        ..Options::default()
    })
    .await;
    let restaurant = first.restaurant().await;
    let (_, customer) = first.customer().await;
    let order = first.place(&customer, &restaurant.0).await;
    let placed_again = {
        let body = first.order_body(&restaurant.0, north(50.0));
        post_with_key(&first, "/v1/orders", &customer, "place-1", body).await
    };
    let cancel = format!("/v1/orders/{order}/cancel");
    let cancelled = post_with_key(&first, &cancel, &customer, "cxl-r", json!({})).await;
    assert_eq!(cancelled.0, 200);
    drop(first);

    let second = spawn_app_with(Options {
        database_url: Some(url),
        ..Options::default()
    })
    .await;
    assert_eq!(
        post_with_key(&second, &cancel, &customer, "cxl-r", json!({})).await,
        cancelled
    );
    let body = second.order_body(&restaurant.0, north(50.0));
    let replayed = post_with_key(&second, "/v1/orders", &customer, "place-1", body).await;
    assert_eq!(replayed.1["id"], placed_again.1["id"]);
}

#[actix_web::test]
async fn concurrent_retries_with_one_key_all_get_the_first_answer() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let order = app.place(&customer, &restaurant.0).await;
    let cancel = format!("/v1/orders/{order}/cancel");
    let answers = futures_util::future::join_all(
        (0..8).map(|_| post_with_key(&app, &cancel, &customer, "cxl-race", json!({}))),
    )
    .await;
    for answer in &answers {
        assert_eq!(answer, &answers[0], "every retry replays the first answer");
    }
    assert_eq!(answers[0].0, 200);
}
