//! The cancellation quote: what cancelling now would refund, and until when.

use serde_json::json;

use crate::helpers::spawn_patient_app as spawn_app;

#[actix_web::test]
async fn the_quote_follows_the_refund_tiers_and_matches_the_cancellation() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (_, c) = app.customer().await;
    let order = app.place(&c, &r).await;
    let placed = app.order(&order).await["placed_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let placed: chrono::DateTime<chrono::Utc> = placed.parse().unwrap();
    let quote = async || {
        let q = app
            .get(&format!("/v1/orders/{order}/cancellation-quote"), &c)
            .await;
        assert_eq!(q.status, 200, "{:?}", q.body);
        q.body
    };
    let q = quote().await;
    assert_eq!(
        (q["percent"].as_u64(), q["amount_cents"].as_i64()),
        (Some(70), Some(15_400))
    );
    let until: chrono::DateTime<chrono::Utc> = q["until"].as_str().unwrap().parse().unwrap();
    assert_eq!(until - placed, chrono::Duration::minutes(10));
    app.advance(600).await;
    let q = quote().await;
    assert_eq!(
        (q["percent"].as_u64(), q["amount_cents"].as_i64()),
        (Some(40), Some(8_800))
    );
    // The quote is what a cancellation refunds.
    app.advance(60).await;
    let q = quote().await;
    let (_, other) = app.customer().await;
    assert_eq!(
        app.get(&format!("/v1/orders/{order}/cancellation-quote"), &other)
            .await
            .status,
        403
    );
    let cancelled = app
        .post(&format!("/v1/orders/{order}/cancel"), &c, json!({}))
        .await;
    assert_eq!(cancelled.body["refund"]["amount_cents"], q["amount_cents"]);
    let finished = app
        .get(&format!("/v1/orders/{order}/cancellation-quote"), &c)
        .await;
    assert_eq!((finished.status, finished.code()), (409, "invalid_state"));
}

#[actix_web::test]
async fn after_30_minutes_the_quote_is_nothing() {
    let app = spawn_app().await;
    let (r, _) = app.restaurant().await;
    let (_, c) = app.customer().await;
    let order = app.place(&c, &r).await;
    app.advance(1_800).await;
    let q = app
        .get(&format!("/v1/orders/{order}/cancellation-quote"), &c)
        .await;
    assert_eq!(q.status, 200);
    assert_eq!(
        q.body,
        json!({"percent": 0, "amount_cents": 0, "until": null})
    );
}
