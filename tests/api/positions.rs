//! Rider positions are telemetry: kept in memory, and with Redis configured published to a
//! Redis GEO set where other nodes and the ops console can read them, without a store write
//! per move.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Options, redis_url, spawn_app_with};
use dabba::events::positions::POSITIONS_KEY;

#[actix_web::test]
async fn a_moving_riders_latest_position_reaches_redis_within_seconds() {
    let app = spawn_app_with(Options {
        redis_url: Some(redis_url()),
        ..Options::default()
    })
    .await;
    let (id, token) = app.rider().await;
    let path = format!("/v1/riders/{id}/location");
    for (lat, lng) in [(12.9716, 77.5946), (12.9750, 77.5990), (12.9801, 77.6042)] {
        let r = app
            .put(&path, &token, json!({"lat": lat, "lng": lng}))
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis answers (the test command starts it)");
    let mut seen = None;
    for _ in 0..40 {
        let pos: Vec<Option<(f64, f64)>> = redis::cmd("GEOPOS")
            .arg(POSITIONS_KEY)
            .arg(&id)
            .query_async(&mut conn)
            .await
            .expect("GEOPOS");
        seen = pos.into_iter().next().flatten();
        if seen
            .is_some_and(|(lng, lat)| (lat - 12.9801).abs() < 1e-4 && (lng - 77.6042).abs() < 1e-4)
        {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the latest position never reached redis; saw {seen:?}");
}
