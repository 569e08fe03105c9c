//! The event backbone through the API: dead letters and their replay, the analytics figures,
//! and (with Redis) the streams the outbox is published to.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn stats(app: &TestApp) -> Value {
    let r = app.get("/v1/ops/stats", &app.ops).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

fn consumer<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no consumer {name} in {stats}"))
}

async fn dead_letters(app: &TestApp) -> Vec<Value> {
    let r = app.get("/v1/ops/dead-letters", &app.ops).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["dead_letters"].as_array().unwrap().clone()
}

/// Polls `check` until it holds or 10 s pass.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn poison(app: &TestApp, order: &str, poison: bool) {
    let r = app
        .post(
            "/v1/ops/faults",
            &app.ops,
            json!({"actor": "consumer", "order_id": order, "poison": poison}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
}

#[actix_web::test]
async fn a_poison_event_is_parked_after_its_retries_and_a_replay_after_the_fix_delivers_it_once() {
    let app = spawn_app().await;
    // A day on by the service's clock: the letters are stamped in its time, not the wall's.
    let moved_to = app.advance(86_400).await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let sick = app.place(&customer, &restaurant.0).await;
    // Its placement is handled before the poison: only later versions fail.
    eventually("placement handled", async || {
        (consumer(&stats(&app).await, "probe")["handled"] == 1).then_some(())
    })
    .await;
    poison(&app, &sick, true).await;
    // Two more versions of the poisoned order, then a healthy order behind them.
    app.accept(&restaurant, &sick).await;
    let healthy = app.place(&customer, &restaurant.0).await;
    let r = app
        .post(
            &format!("/v1/orders/{healthy}/cancel"),
            &customer,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    let sick_events = app
        .get(&format!("/v1/orders/{sick}/events?since=1"), &app.ops)
        .await
        .body["events"]
        .as_array()
        .unwrap()
        .len();
    assert!(sick_events >= 1);

    let letters = eventually("dead letters parked", async || {
        let l = dead_letters(&app).await;
        (l.len() == sick_events).then_some(l)
    })
    .await;
    for l in &letters {
        assert_eq!(l["consumer"], "probe");
        assert_eq!(l["attempts"], 5, "{l}");
        assert!(l["error"].as_str().unwrap().contains("poisoned"), "{l}");
        assert!(l["seq"].as_i64().unwrap() > 0);
        let at: chrono::DateTime<chrono::Utc> = serde_json::from_value(l["at"].clone()).unwrap();
        assert!(at >= moved_to, "{l}");
    }
    // The healthy order's events were handled: the poison did not block them. (The count
    // follows the stored letter by a moment: the listing may see it first.)
    let probe = eventually("dead letters counted", async || {
        let s = stats(&app).await;
        let probe = consumer(&s, "probe").clone();
        (probe["dead_letters"] == sick_events).then_some(probe)
    })
    .await;
    assert!(probe["retries"].as_u64().unwrap() >= 4 * sick_events as u64);
    let handled_before = probe["handled"].as_u64().unwrap();
    assert!(
        handled_before >= 3,
        "placement of both and the cancel: {probe}"
    );

    // Replaying before the fix parks it again; after the fix it is delivered once.
    poison(&app, &sick, false).await;
    for l in &letters {
        let r = app
            .post(
                &format!("/v1/ops/dead-letters/{}/replay", l["id"].as_str().unwrap()),
                &app.ops,
                json!({}),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
    }
    eventually("replayed letters leave the list", async || {
        dead_letters(&app).await.is_empty().then_some(())
    })
    .await;
    let s = stats(&app).await;
    assert_eq!(
        consumer(&s, "probe")["handled"].as_u64().unwrap(),
        handled_before + sick_events as u64,
        "each replay handled exactly once"
    );
    let id = letters[0]["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/ops/dead-letters/{id}/replay"),
            &app.ops,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    let r = app
        .post(
            &format!("/v1/ops/dead-letters/{}/replay", uuid::Uuid::new_v4()),
            &app.ops,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
    let (_, stranger) = app.customer().await;
    assert_eq!(app.get("/v1/ops/dead-letters", &stranger).await.status, 403);
}

#[actix_web::test]
async fn analytics_counts_orders_by_status_minute_cancellation_refund_and_assignment() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let (rider, rider_token) = app.available_rider_at(crate::helpers::north(200.0)).await;
    let delivered = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &delivered).await;
    let r = app
        .post(
            &format!("/v1/riders/{rider}/offers/{delivered}/accept"),
            &rider_token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["offers"], 1, "the order counts the riders offered");
    let cancelled = app.place(&customer, &restaurant.0).await;
    let r = app
        .post(
            &format!("/v1/orders/{cancelled}/cancel"),
            &customer,
            json!({}),
        )
        .await;
    let refund = r.body["refund"]["amount_cents"].as_i64().unwrap();
    let _waiting = app.place(&customer, &restaurant.0).await;

    let s = eventually("analytics caught up", async || {
        let s = stats(&app).await;
        (s["orders"]["total"] == 3 && s["time_to_assign_ms"]["count"] == 1).then_some(s)
    })
    .await;
    let by_status = &s["orders"]["by_status"];
    assert_eq!(by_status["processing"], 1, "{s}");
    assert_eq!(by_status["cancelled"], 1);
    assert_eq!(by_status["placed"], 1);
    assert_eq!(by_status["completed"], 0);
    let per_minute: u64 = s["orders"]["per_minute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["placed"].as_u64().unwrap())
        .sum();
    assert_eq!(per_minute, 3);
    assert_eq!(s["cancellations"], 1);
    assert_eq!(s["refunds"]["count"], 1);
    assert_eq!(s["refunds"]["amount_cents"], refund);
    assert_eq!(s["offers_per_order"], 1.0);
    assert!(s["time_to_assign_ms"]["p50"].as_u64().is_some());
    assert!(s["time_to_assign_ms"]["p99"].as_u64().is_some());
}

#[actix_web::test]
async fn analytics_rebuilds_its_figures_from_the_log_after_a_restart() {
    use crate::process::{Setup, ops_token, start, token};
    use dabba::api::auth::Role;
    let setup = Setup::fresh("analytics").await;
    let ops = ops_token();
    let mut server = start(&setup, "first").await;
    let call =
        async |s: &crate::process::Server, method: &str, path: &str, tok: &str, body: Value| {
            let r = s
                .client
                .call(method, path, Some(tok), Some(&body))
                .await
                .expect("request");
            (r.status, r.body)
        };
    let (_, restaurant) = call(
        &server,
        "POST",
        "/v1/restaurants",
        &ops,
        json!({"name": "R", "location": crate::helpers::north(0.0)}),
    )
    .await;
    let (status, _) = call(
        &server,
        "PUT",
        &format!(
            "/v1/restaurants/{}/menu",
            restaurant["id"].as_str().unwrap()
        ),
        &ops,
        crate::helpers::menu(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, customer) = call(
        &server,
        "POST",
        "/v1/customers",
        &ops,
        json!({"name": "C", "phone": "+91 98450 00000", "email": "c@example.in"}),
    )
    .await;
    let customer = token(Role::Customer, customer["id"].as_str().unwrap());
    for _ in 0..3 {
        let (status, body) = call(
            &server,
            "POST",
            "/v1/orders",
            &customer,
            json!({
                "restaurant_id": restaurant["id"],
                "items": crate::helpers::idli(1),
                "delivery": {"location": crate::helpers::south(500.0), "address": "1 MG Road"}
            }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let total = async |s: &crate::process::Server| {
        call(s, "GET", "/v1/ops/stats", &ops, Value::Null).await.1["orders"]["total"].clone()
    };
    eventually("analytics caught up", async || {
        (total(&server).await == 3).then_some(())
    })
    .await;
    server.child.kill().expect("kill");
    let _ = server.child.wait();
    let again = start(&setup, "second").await;
    eventually("figures rebuilt from the log", async || {
        (total(&again).await == 3).then_some(())
    })
    .await;
}
