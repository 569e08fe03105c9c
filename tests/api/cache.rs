//! The read cache: finished orders are read through Redis (one day's TTL), and correct
//! (only slower) with Redis away.

use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{Options, redis_url, spawn_app_with};

#[actix_web::test]
async fn finished_orders_are_read_through_redis() {
    let app = spawn_app_with(Options {
        redis_url: Some(redis_url()),
        ..Options::default()
    })
    .await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let order = app.place(&c, &restaurant.0).await;
    let r = app
        .post(
            &format!("/v1/restaurants/{}/orders/{order}/reject", restaurant.0),
            &restaurant.1,
            json!({"reason": "closed early"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}:cache:order:{order}", app.stream_prefix);
    // The first read caches it, and nothing drops it later: a finished order never changes.
    let first = app.get(&format!("/v1/orders/{order}"), &c).await;
    assert_eq!(first.body["stage"], "rejected_by_restaurant");
    actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    let cached = redis.get::<_, Option<String>>(&key).await.unwrap();
    let cached: serde_json::Value = serde_json::from_str(&cached.expect("cached")).unwrap();
    assert_eq!(cached["stage"], "rejected_by_restaurant");
    let ttl: i64 = redis.ttl(&key).await.unwrap();
    assert!((86_000..=86_400).contains(&ttl), "{ttl}");
    let again = app.get(&format!("/v1/orders/{order}"), &c).await;
    assert_eq!(again.body["reject_reason"], "closed early");
    let metrics = app.call("GET", "/metrics", None, None).await;
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .contains("dabba_read_cache_total{result=\"hit\"}")
    );
    let _: () = redis.del(&key).await.unwrap();
}

#[actix_web::test]
async fn with_redis_away_finished_orders_are_read_from_the_store() {
    let app = spawn_app_with(Options {
        redis_url: Some("redis://127.0.0.1:1".into()),
        ..Options::default()
    })
    .await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let order = app.place(&c, &restaurant.0).await;
    app.post(&format!("/v1/orders/{order}/cancel"), &c, json!({}))
        .await;
    let r = app.get(&format!("/v1/orders/{order}"), &c).await;
    assert_eq!(
        (r.status, r.body["stage"].as_str()),
        (200, Some("cancelled"))
    );
}
