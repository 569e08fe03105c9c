//! The event log seen by clients: `seq` on every push, sockets resuming with `since`, and an
//! order's history of versions.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, Ws, is_type, spawn_app};

fn seq(m: &Value) -> i64 {
    m["seq"].as_i64().unwrap_or_else(|| panic!("no seq on {m}"))
}

fn version(m: &Value) -> i64 {
    m["order"]["version"].as_i64().expect("version")
}

/// The order's versions after `after`, from its history.
async fn versions_after(app: &TestApp, order: &str, token: &str, after: i64) -> Vec<i64> {
    let r = app
        .get(&format!("/v1/orders/{order}/events?since={after}"), token)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect()
}

/// Reconnects with `since` and reads until the socket goes quiet: the replayed pushes, each
/// checked to be an `order.updated` after the one before, and the socket, now live.
async fn replay(app: &TestApp, token: &str, since: i64) -> (Ws, Vec<Value>) {
    let mut ws = app.ws_since(token, since).await;
    let mut replayed = Vec::new();
    let mut last = since;
    while let Some(m) = ws.next_within(Duration::from_millis(800)).await {
        assert_eq!(m["type"], "order.updated", "{m}");
        assert!(seq(&m) > last, "no duplicate, in order: {m}");
        last = seq(&m);
        replayed.push(m);
    }
    (ws, replayed)
}

/// Cancels `order` as `token`, which must succeed.
async fn cancel(app: &TestApp, order: &str, token: &str) {
    let r = app
        .post(&format!("/v1/orders/{order}/cancel"), token, json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[actix_web::test]
async fn every_push_carries_a_growing_seq() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let mut ws = app.ws(&customer).await;
    let order = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &order).await;
    let mut last = 0;
    let mut seen = 0;
    while let Some(m) = ws.next_within(Duration::from_secs(1)).await {
        assert!(seq(&m) > last, "seq must grow: {m}");
        last = seq(&m);
        seen += 1;
    }
    assert!(seen >= 2, "placement and acceptance pushed");
}

#[actix_web::test]
async fn a_socket_resuming_with_since_gets_exactly_the_missed_versions_then_live_ones() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let mut ws = app.ws(&customer).await;
    let order = app.place(&customer, &restaurant.0).await;
    let placed = ws.until(is_type("order.updated")).await;
    assert_eq!(version(&placed), 1);
    let since = seq(&placed);
    drop(ws);

    // Three versions while away: accepted (preparing, then finding a rider), then cancelled.
    app.accept(&restaurant, &order).await;
    cancel(&app, &order, &customer).await;
    let missed = versions_after(&app, &order, &customer, 1).await;
    assert!(missed.len() >= 2, "{missed:?}");

    let (mut ws, replayed) = replay(&app, &customer, since).await;
    let last = replayed.last().map_or(since, seq);
    let replayed: Vec<i64> = replayed.iter().map(version).collect();
    assert_eq!(replayed, missed, "exactly the missed versions");

    // Then live: a new order's pushes follow, after the replayed ones.
    let second = app.place(&customer, &restaurant.0).await;
    let live = ws.until(is_type("order.updated")).await;
    assert_eq!(live["order"]["id"], second.as_str());
    assert!(seq(&live) > last);
}

/// A customer's replay is read through the customer's orders (the outbox keeps no index by
/// customer): an order that changed while they were away is replayed whether it is still
/// going or finished meanwhile; an order that finished before, and another customer's, are not.
#[actix_web::test]
async fn a_customer_replay_holds_every_order_of_theirs_that_changed_and_nothing_else() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let (_, other) = app.customer().await;
    let mut ws = app.ws(&customer).await;
    let finished_before = app.place(&customer, &restaurant.0).await;
    cancel(&app, &finished_before, &customer).await;
    let going = app.place(&customer, &restaurant.0).await;
    let placed = ws
        .until(|m| m["type"] == "order.updated" && m["order"]["id"] == going.as_str())
        .await;
    let since = seq(&placed);
    drop(ws);

    // While away: the order in progress is accepted, a new one is placed and cancelled, and
    // another customer orders.
    app.accept(&restaurant, &going).await;
    let placed_and_cancelled = app.place(&customer, &restaurant.0).await;
    cancel(&app, &placed_and_cancelled, &customer).await;
    let _theirs = app.place(&other, &restaurant.0).await;
    let mut expected: Vec<(String, i64)> = Vec::new();
    for v in versions_after(&app, &going, &customer, 1).await {
        expected.push((going.clone(), v));
    }
    for v in versions_after(&app, &placed_and_cancelled, &customer, 0).await {
        expected.push((placed_and_cancelled.clone(), v));
    }
    expected.sort();

    let (_ws, replayed) = replay(&app, &customer, since).await;
    let mut replayed: Vec<(String, i64)> = replayed
        .iter()
        .map(|m| {
            let id = m["order"]["id"].as_str().expect("order id").to_owned();
            (id, version(m))
        })
        .collect();
    replayed.sort();
    assert_eq!(
        replayed, expected,
        "exactly this customer's missed versions"
    );
    assert!(expected.len() >= 3, "{expected:?}");
}

#[actix_web::test]
async fn a_replay_longer_than_a_page_arrives_whole_and_in_order() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let mut ops = app.ws(&app.ops).await;
    let first = app.place(&customer, &restaurant.0).await;
    let m = ops
        .until(|m| m["type"] == "order.updated" && m["order"]["id"] == first.as_str())
        .await;
    let since = seq(&m);
    drop(ops);

    // 600 events (two pages and a bit): 300 orders, each placed and cancelled.
    let mut expected = 0;
    for _ in 0..300 {
        let id = app.place(&customer, &restaurant.0).await;
        cancel(&app, &id, &customer).await;
        expected += 2;
    }
    let mut ops = app.ws_since(&app.ops, since).await;
    let mut seqs = Vec::new();
    while let Some(m) = ops.next_within(Duration::from_secs(1)).await {
        if m["type"] == "order.updated" {
            seqs.push(seq(&m));
        }
    }
    assert_eq!(seqs.len(), expected, "every missed event, once");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in log order");
    assert_eq!(seqs.iter().collect::<HashSet<_>>().len(), expected);
}

#[actix_web::test]
async fn a_since_the_log_does_not_hold_asks_for_a_resync_then_goes_live() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let mut ws = app.ws_since(&customer, 1_000_000_000).await;
    let m = ws.next().await.expect("a message");
    assert_eq!(m["type"], "resync_required", "{m}");
    let order = app.place(&customer, &restaurant.0).await;
    let live = ws.until(is_type("order.updated")).await;
    assert_eq!(live["order"]["id"], order.as_str());
}

#[actix_web::test]
async fn a_since_that_is_not_a_number_is_invalid() {
    let app = spawn_app().await;
    let (_, customer) = app.customer().await;
    for bad in ["abc", "-1", "1.5", ""] {
        let r = app
            .get(&format!("/v1/ws?token={customer}&since={bad}"), &customer)
            .await;
        assert_eq!(r.status, 400, "since={bad}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "invalid_request");
    }
}

#[actix_web::test]
async fn an_order_history_lists_its_versions_to_whoever_may_read_it() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let (_, stranger) = app.customer().await;
    let order = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &order).await;
    let now = app.order(&order).await;
    let r = app
        .get(&format!("/v1/orders/{order}/events"), &customer)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let events = r.body["events"].as_array().unwrap();
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = (1..=now["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, expected);
    assert_eq!(events[0]["type"], "order.updated");
    assert_eq!(events[0]["order"]["stage"], "awaiting_restaurant");
    assert!(events[0]["seq"].as_i64().unwrap() < events[1]["seq"].as_i64().unwrap());
    assert!(events[0]["at"].is_string());
    assert_eq!(
        versions_after(&app, &order, &app.ops, 1).await,
        expected[1..]
    );
    assert_eq!(
        versions_after(&app, &order, &restaurant.1, 99).await,
        Vec::<i64>::new()
    );

    let r = app
        .get(&format!("/v1/orders/{order}/events"), &stranger)
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .get(&format!("/v1/orders/{order}/events?since=x"), &customer)
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .get(
            &format!("/v1/orders/{}/events", uuid::Uuid::new_v4()),
            &customer,
        )
        .await;
    assert_eq!(r.status, 404);
}

#[actix_web::test]
async fn a_since_older_than_the_retained_log_asks_for_a_resync() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let mut ws = app.ws(&customer).await;
    let order = app.place(&customer, &restaurant.0).await;
    let first = ws.until(is_type("order.updated")).await;
    drop(ws);
    let r = app
        .post(&format!("/v1/orders/{order}/cancel"), &customer, json!({}))
        .await;
    assert_eq!(r.status, 200);
    // A week and a day later, with every consumer's cursor past them, the events are purged.
    app.advance(8 * 24 * 3600).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await; // cursors are saved each second
    let r = app.post("/v1/ops/retention", &app.ops, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        r.body["outbox_deleted"].as_u64().unwrap() >= 2,
        "{:?}",
        r.body
    );

    let mut ws = app.ws_since(&customer, seq(&first)).await;
    let m = ws.next().await.expect("a message");
    assert_eq!(m["type"], "resync_required", "{m}");
    assert!(seq(&m) >= seq(&first));
}

#[actix_web::test]
async fn a_rider_reconnecting_finds_the_offer_made_while_it_was_away() {
    let app = spawn_app().await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let (rider, rider_token) = app.available_rider_at(crate::helpers::north(300.0)).await;
    let order = app.place(&customer, &restaurant.0).await;
    app.accept(&restaurant, &order).await;
    let state = app.rider_state(&rider).await;
    assert_eq!(state["offer"]["order_id"], order.as_str(), "{state}");

    let mut ws = app.ws_since(&rider_token, 0).await;
    let offer = ws.until(is_type("offer")).await;
    assert_eq!(offer["order_id"], order.as_str());
    assert!(offer["restaurant"]["name"].is_string());
    assert!(offer["seq"].is_i64());
    // It can be answered over the same socket.
    ws.send(json!({"type": "accept", "order_id": order})).await;
    let assigned = ws
        .until(|m| m["type"] == "order.updated" && m["order"]["stage"] == "rider_assigned")
        .await;
    assert_eq!(assigned["order"]["rider_id"], rider.as_str());
}
