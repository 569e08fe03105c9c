//! Token-bucket rate limits: in-process and in Redis, with the same semantics; Redis failing
//! never turns requests into errors.

use serde_json::json;

use crate::helpers::{Options, TestApp, north, redis_url, spawn_app_with};
use crate::outage::Proxy;

fn options(redis: Option<String>) -> Options {
    // Writes: one token every 2 s, bucket of 5 (slow enough that no refill lands mid-test).
    Options {
        redis_url: redis,
        rate_writes_per_sec: 0.5,
        ..Options::default()
    }
}

/// Places orders until refused; returns how many were accepted and the refusal.
async fn place_until_limited(
    app: &TestApp,
    customer: &str,
    restaurant: &str,
) -> (usize, crate::helpers::Response) {
    for placed in 0..50 {
        let body = app.order_body(restaurant, north(100.0));
        let resp = app.post("/v1/orders", customer, body).await;
        if resp.status != 201 {
            return (placed, resp);
        }
    }
    panic!("never rate limited");
}

async fn check_limits(app: &TestApp) {
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let (placed, refused) = place_until_limited(app, &customer, &restaurant.0).await;
    assert_eq!(placed, 5, "the burst is 5 (10 s of 0.5/s)");
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"));
    let retry = refused.retry_after.expect("Retry-After");
    assert!((1..=2).contains(&retry), "{retry}");
    // Buckets are per subject and per class: another customer and reads are unaffected.
    let (_, other) = app.customer().await;
    assert_eq!(
        app.post(
            "/v1/orders",
            &other,
            app.order_body(&restaurant.0, north(10.0))
        )
        .await
        .status,
        201
    );
    assert_eq!(
        app.get(&format!("/v1/restaurants/{}", restaurant.0), &customer)
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn over_the_limit_is_429_with_retry_after_in_process() {
    let app = spawn_app_with(options(None)).await;
    check_limits(&app).await;
}

#[actix_web::test]
async fn over_the_limit_is_429_with_retry_after_in_redis() {
    let app = spawn_app_with(options(Some(redis_url()))).await;
    check_limits(&app).await;
}

/// Two servers limiting through one Redis (each with its own store: one server per database).
async fn two_nodes() -> (TestApp, TestApp) {
    let a = spawn_app_with(options(Some(redis_url()))).await;
    let b = spawn_app_with(Options {
        database_url: None,
        ..options(Some(redis_url()))
    })
    .await;
    (a, b)
}

#[actix_web::test]
async fn redis_buckets_are_shared_between_nodes() {
    let (a, b) = two_nodes().await;
    let restaurant = a.restaurant().await;
    let (_, customer) = a.customer().await;
    let (placed, _) = place_until_limited(&a, &customer, &restaurant.0).await;
    assert_eq!(placed, 5);
    // The same customer on another node draws from the same, empty, bucket.
    let r = b
        .post(
            "/v1/orders",
            &customer,
            b.order_body(&uuid::Uuid::new_v4().to_string(), north(1.0)),
        )
        .await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
}

#[actix_web::test]
async fn nodes_deciding_locally_learn_what_the_others_spent_within_one_settle_window() {
    let (a, b) = two_nodes().await;
    let restaurant = a.restaurant().await;
    let (_, customer) = a.customer().await;
    async fn place(app: &TestApp, customer: &str, restaurant: &str) -> u16 {
        let body = app.order_body(restaurant, north(100.0));
        app.post("/v1/orders", customer, body).await.status
    }
    let place = |app| place(app, &customer, &restaurant.0);
    // A takes two of the five (and now decides this bucket locally); B, new to it, sees
    // three left in Redis and spends them (B has its own database, where this customer is
    // unknown: past the limiter, its answer is 401).
    assert_eq!((place(&a).await, place(&a).await), (201, 201));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for _ in 0..3 {
        assert_ne!(place(&b).await, 429);
    }
    assert_eq!(place(&b).await, 429, "B's copy is dry");
    // A still holds three tokens locally: at most one more gets through before its settle
    // round brings back the shared balance, then A refuses too.
    let first = place(&a).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let second = place(&a).await;
    assert_eq!(second, 429, "A learned what B spent (first answer {first})");
}

#[actix_web::test]
async fn a_redis_failure_falls_back_to_in_process_buckets() {
    let target = redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = Proxy::start(target).await;
    let app = spawn_app_with(options(Some(format!("redis://127.0.0.1:{}", proxy.port)))).await;
    let restaurant = app.restaurant().await;
    proxy.cut();
    // Requests keep working; limits still apply, from the in-process buckets.
    let (_, customer) = app.customer().await;
    let (placed, refused) = place_until_limited(&app, &customer, &restaurant.0).await;
    assert_eq!((placed, refused.status), (5, 429));
    let metrics = app.call("GET", "/metrics", None, None).await;
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .contains("dabba_rate_limiter_fallback_total")
    );
    // Unreachable at start: in-process from the beginning, never an error.
    let dead = spawn_app_with(options(Some("redis://127.0.0.1:1".into()))).await;
    let r = dead
        .post(
            "/v1/restaurants",
            &dead.ops,
            json!({"name": "x", "location": north(0.0)}),
        )
        .await;
    assert_eq!(r.status, 201);
}

#[actix_web::test]
async fn riders_streaming_locations_are_not_limited_by_order_writes() {
    let app = spawn_app_with(Options {
        rate_writes_per_sec: 1.0,
        ..Options::default()
    })
    .await;
    let (id, token) = app.rider().await;
    for i in 0..30 {
        let r = app
            .put(
                &format!("/v1/riders/{id}/location"),
                &token,
                north(i as f64),
            )
            .await;
        assert_eq!(r.status, 204, "update {i}");
    }
}

/// Unauthenticated reads with a new `X-Forwarded-For` each; how many got through the limiter.
async fn spoofed_reads(app: &TestApp, n: usize, forwarded: impl Fn(usize) -> String) -> usize {
    let mut passed = 0;
    for i in 0..n {
        let xff = forwarded(i);
        let r = app
            .client
            .call_with(
                "GET",
                "/v1/restaurants?lat=0&lng=0",
                None,
                None,
                &[("X-Forwarded-For", &xff)],
            )
            .await
            .unwrap();
        if r.status != 429 {
            passed += 1;
        }
    }
    passed
}

#[actix_web::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let reads = |proxies: &str| Options {
        rate_reads_per_sec: 0.5,
        trusted_proxies: proxies.into(),
        ..Options::default()
    };
    // Nobody trusted: every request is the peer's, whatever it claims (bucket of 5).
    let app = spawn_app_with(reads("")).await;
    assert_eq!(spoofed_reads(&app, 12, |i| format!("10.0.0.{i}")).await, 5);
    // Behind a trusted proxy (the test client is 127.0.0.1) the forwarded client counts: each
    // address has its own bucket, and one client cannot drain another's.
    let app = spawn_app_with(reads("127.0.0.1")).await;
    assert_eq!(spoofed_reads(&app, 12, |i| format!("10.0.0.{i}")).await, 12);
    assert_eq!(
        spoofed_reads(&app, 8, |_| "6.6.6.6, 10.0.1.1".into()).await,
        5
    );
    assert_eq!(spoofed_reads(&app, 1, |_| "10.0.1.2".into()).await, 1);
}

#[actix_web::test]
async fn positions_are_limited_per_rider_across_sockets_and_rest() {
    // A bucket of one position (10 s of 0.1/s), shared by every way the rider sends it.
    let app = spawn_app_with(Options {
        rate_location_per_sec: 0.1,
        ..Options::default()
    })
    .await;
    let (id, token) = app.rider().await;
    let mut sockets = Vec::new();
    for _ in 0..5 {
        sockets.push(app.ws(&token).await);
    }
    for (n, ws) in sockets.iter_mut().enumerate() {
        for i in 0..10 {
            ws.send(json!({"type": "location", "lat": 12.97 + f64::from(i) * 1e-4, "lng": 77.59 + n as f64 * 1e-4}))
                .await;
        }
    }
    let mut refused = 0;
    for ws in &mut sockets {
        while let Some(m) = ws.next_within(std::time::Duration::from_millis(500)).await {
            if m["type"] == "error" && m["error"]["code"] == "rate_limited" {
                refused += 1;
            }
        }
    }
    let rest = app
        .put(&format!("/v1/riders/{id}/location"), &token, north(5.0))
        .await;
    assert_eq!(
        rest.status, 429,
        "REST draws from the rider's drained bucket"
    );
    assert_eq!(refused, 49, "50 frames, a bucket of one");
}
