//! The outbox published to Redis Streams (the real Redis): every committed event in commit
//! order, nothing lost while Redis is away, and consumer groups that survive a killed member.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Options, TestApp, redis_url, spawn_app_with};
use crate::outage::Proxy;
use dabba::domain::Clock;
use dabba::events::consumer::{Consumer, ConsumerStats, Handling, RetryPolicy, Runtime};
use dabba::events::family::{Family, WireEvent, entry_id, stream_key};
use dabba::events::sources::{RedisGroup, Source};
use dabba::persistence::CommittedEvent;

async fn redis() -> redis::aio::ConnectionManager {
    dabba::redis_conn::connect_with(&redis_url(), Duration::from_secs(5))
        .await
        .expect("the test Redis answers (CI=true never skips it)")
}

/// The orders stream's entries: (sequence, event id, order id, version).
async fn orders_stream(prefix: &str) -> Vec<(i64, String, String, u64)> {
    let mut conn = redis().await;
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream_key(prefix, Family::Orders))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    reply
        .ids
        .into_iter()
        .map(|e| {
            let get = |k: &str| -> String { e.get(k).unwrap() };
            (
                dabba::events::family::seq_of(&e.id).unwrap(),
                get("event_id"),
                get("order_id"),
                get("version").parse().unwrap(),
            )
        })
        .collect()
}

/// Every (sequence, order, version) the server's order histories hold.
async fn logged(app: &TestApp, orders: &[String]) -> Vec<(i64, String, u64)> {
    let mut all = Vec::new();
    for id in orders {
        let r = app.get(&format!("/v1/orders/{id}/events"), &app.ops).await;
        for e in r.body["events"].as_array().unwrap() {
            all.push((
                e["seq"].as_i64().unwrap(),
                id.clone(),
                e["version"].as_u64().unwrap(),
            ));
        }
    }
    all.sort();
    all
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stream holds exactly `expected`, in log order, each once.
async fn stream_matches(prefix: &str, expected: &[(i64, String, u64)]) -> bool {
    let got: Vec<(i64, String, u64)> = orders_stream(prefix)
        .await
        .into_iter()
        .map(|(seq, _, order, version)| (seq, order, version))
        .collect();
    got == expected
}

async fn place_and_cancel(app: &TestApp, customer: &str, restaurant: &str) -> String {
    let id = app.place(customer, restaurant).await;
    let r = app
        .post(&format!("/v1/orders/{id}/cancel"), customer, json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    id
}

#[actix_web::test]
async fn every_committed_event_reaches_its_stream_in_commit_order() {
    let app = spawn_app_with(Options {
        redis_url: Some(redis_url()),
        ..Options::default()
    })
    .await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let mut orders = Vec::new();
    for _ in 0..10 {
        orders.push(place_and_cancel(&app, &customer, &restaurant.0).await);
    }
    let expected = logged(&app, &orders).await;
    assert_eq!(expected.len(), 20);
    eventually("published", async || {
        stream_matches(&app.stream_prefix, &expected)
            .await
            .then_some(())
    })
    .await;
    let metrics = app.call("GET", "/metrics", None, None).await;
    let text = metrics.body.as_str().unwrap_or_default().to_owned();
    // The recorder is shared by every server of this test binary: at least these 20.
    let published: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("dabba_stream_published_total{family=\"orders\"} "))
        .and_then(|v| v.trim().parse().ok())
        .expect("published counted");
    assert!(published >= 20.0, "{published}");
    assert!(
        text.contains("dabba_stream_publish_lag_seconds"),
        "lag measured"
    );
    // Entry ids are the outbox sequences, so a republish cannot add a second copy.
    let mut conn = redis().await;
    let again: redis::RedisResult<String> = redis::cmd("XADD")
        .arg(stream_key(&app.stream_prefix, Family::Orders))
        .arg(entry_id(expected[0].0))
        .arg("x")
        .arg("y")
        .query_async(&mut conn)
        .await;
    assert!(again.is_err(), "a sequence already published is refused");
}

/// `dabba_stream_foreign_log{stream}` as the server reports it.
async fn foreign_gauge(app: &TestApp, key: &str) -> Option<f64> {
    let metrics = app.call("GET", "/metrics", None, None).await;
    let line = format!("dabba_stream_foreign_log{{stream=\"{key}\"}} ");
    metrics
        .body
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

#[actix_web::test]
async fn a_stream_ahead_of_the_log_is_reported_and_never_taken_for_published_events() {
    // A stream written from another database (or from this one before a restore from a
    // backup) holds sequences this log has not reached: the log's next events, numbered below
    // them, must not be skipped as if already published.
    let app = spawn_app_with(Options {
        redis_url: Some(redis_url()),
        ..Options::default()
    })
    .await;
    let key = stream_key(&app.stream_prefix, Family::Orders);
    let mut conn = redis().await;
    let _: String = redis::cmd("XADD")
        .arg(&key)
        .arg(entry_id(1_000_000))
        .arg("event_id")
        .arg("from-another-database")
        .query_async(&mut conn)
        .await
        .unwrap();
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let orders = vec![place_and_cancel(&app, &customer, &restaurant.0).await];
    let expected = logged(&app, &orders).await;
    assert_eq!(expected.len(), 2);
    eventually("the foreign stream reported", async || {
        (foreign_gauge(&app, &key).await == Some(1.0)).then_some(())
    })
    .await;
    let held: usize = redis::cmd("XLEN")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(held, 1, "nothing published into another log's stream");
    // The operator removes the stale stream: the events the outbox kept are published.
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    eventually("published after the stale stream went", async || {
        stream_matches(&app.stream_prefix, &expected)
            .await
            .then_some(())
    })
    .await;
    assert_eq!(foreign_gauge(&app, &key).await, Some(0.0));
}

#[actix_web::test]
async fn with_redis_away_orders_are_taken_and_the_stream_catches_up_in_order() {
    let proxy = Proxy::start("127.0.0.1:6379".into()).await;
    let app = spawn_app_with(Options {
        redis_url: Some(format!("redis://127.0.0.1:{}", proxy.port)),
        ..Options::default()
    })
    .await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let mut orders = vec![place_and_cancel(&app, &customer, &restaurant.0).await];
    let first = logged(&app, &orders).await;
    eventually("published before the outage", async || {
        stream_matches(&app.stream_prefix, &first)
            .await
            .then_some(())
    })
    .await;

    proxy.cut();
    for _ in 0..5 {
        orders.push(place_and_cancel(&app, &customer, &restaurant.0).await);
    }
    assert_eq!(app.get("/readyz", &app.ops).await.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        orders_stream(&app.stream_prefix).await.len(),
        first.len(),
        "nothing published while Redis is away"
    );

    proxy.restore();
    let expected = logged(&app, &orders).await;
    assert_eq!(expected.len(), 12);
    eventually("caught up, in order, nothing lost or doubled", async || {
        stream_matches(&app.stream_prefix, &expected)
            .await
            .then_some(())
    })
    .await;
}

/// Counts what it handled by event id; one instance can be told to hang on its n-th event
/// (a consumer killed mid-batch).
struct Counter {
    counts: Arc<Mutex<HashMap<uuid::Uuid, u32>>>,
    hang_at: Option<usize>,
    calls: Mutex<usize>,
    /// Sequences whose events fail.
    poisoned: Arc<Mutex<std::collections::HashSet<i64>>>,
}

impl Consumer for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn families(&self) -> &'static [Family] {
        &[Family::Orders]
    }

    fn handle<'a>(&'a self, event: &'a CommittedEvent) -> Handling<'a> {
        Box::pin(async move {
            let call = {
                let mut calls = self.calls.lock().unwrap();
                *calls += 1;
                *calls
            };
            if self.hang_at == Some(call) {
                std::future::pending::<()>().await;
            }
            if self.poisoned.lock().unwrap().contains(&event.seq) {
                return Err(format!("poisoned {}", event.seq));
            }
            *self
                .counts
                .lock()
                .unwrap()
                .entry(event.event.event_id)
                .or_default() += 1;
            Ok(())
        })
    }
}

struct NoSink;
impl dabba::persistence::writer::EventSink for NoSink {
    fn committed(&self, _: &[CommittedEvent]) {}
}

fn wire_event(seq: i64) -> WireEvent {
    WireEvent {
        seq,
        event_id: uuid::Uuid::new_v4(),
        kind: "order.updated".into(),
        order_id: uuid::Uuid::new_v4(),
        version: 1,
        customer_id: uuid::Uuid::new_v4(),
        restaurant_id: uuid::Uuid::new_v4(),
        rider_id: None,
        at: chrono::Utc::now(),
        payload: "{}".into(),
    }
}

#[actix_web::test]
async fn a_consumer_killed_mid_batch_has_its_messages_claimed_and_nothing_is_handled_twice() {
    let prefix = format!("dabba-test-{}", uuid::Uuid::new_v4().simple());
    let key = stream_key(&prefix, Family::Orders);
    let mut conn = redis().await;
    let events: Vec<WireEvent> = (1..=20).map(wire_event).collect();
    for e in &events {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&key).arg(entry_id(e.seq));
        for (k, v) in e.fields() {
            cmd.arg(k).arg(v);
        }
        let _: String = cmd.query_async(&mut conn).await.unwrap();
    }
    let (store, _dir) = crate::helpers::bare_store().await;
    let (writer, task) =
        dabba::persistence::writer::Writer::new(store, Default::default(), Arc::new(NoSink));
    actix_web::rt::spawn(task);
    let counts: Arc<Mutex<HashMap<uuid::Uuid, u32>>> = Arc::default();
    let policy = RetryPolicy {
        claim_idle: Duration::from_millis(300),
        max_delay: Duration::from_millis(100),
        handle_timeout: Duration::from_secs(60),
        ..RetryPolicy::default()
    };
    let member = async |name: &str, hang_at| {
        let conn = dabba::redis_conn::connect_with(&redis_url(), Duration::from_secs(5))
            .await
            .unwrap();
        let consumer = Arc::new(Counter {
            counts: counts.clone(),
            hang_at,
            calls: Mutex::new(0),
            poisoned: Arc::default(),
        });
        let source = Source::Redis(RedisGroup::new(
            conn,
            &prefix,
            "counter",
            name.into(),
            &[Family::Orders],
        ));
        let (_replays, rx) = tokio::sync::mpsc::channel(1);
        let stats = Arc::new(ConsumerStats::default());
        let runtime = Runtime::new(
            consumer,
            source,
            policy,
            writer.clone(),
            rx,
            stats.clone(),
            Clock::default(),
        );
        (actix_web::rt::spawn(runtime.run()), stats, _replays)
    };

    // The first member takes the whole batch and dies on its eighth event.
    let (first, _, _keep) = member("first", Some(8)).await;
    eventually("seven handled, the eighth hanging", async || {
        (counts.lock().unwrap().len() == 7).then_some(())
    })
    .await;
    first.abort();
    let _ = first.await;

    let (second, stats, _keep2) = member("second", None).await;
    eventually("the rest claimed and handled", async || {
        (counts.lock().unwrap().len() == 20).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = counts.lock().unwrap().clone();
    for e in &events {
        assert_eq!(
            counts.get(&e.event_id),
            Some(&1),
            "event {} handled once",
            e.seq
        );
    }
    assert_eq!(
        stats.claimed.load(std::sync::atomic::Ordering::Relaxed),
        13,
        "the dead member's pending messages"
    );
    // XPENDING's summary starts with the count of messages pending in the group.
    let summary: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(&key)
        .arg("counter")
        .query_async(&mut conn)
        .await
        .unwrap();
    let pending: i64 = redis::from_redis_value_ref(&summary[0]).unwrap();
    assert_eq!(pending, 0, "nothing left pending");
    second.abort();
}

#[actix_web::test]
async fn a_poison_event_never_holds_up_the_events_behind_it() {
    let prefix = format!("dabba-test-{}", uuid::Uuid::new_v4().simple());
    let key = stream_key(&prefix, Family::Orders);
    let mut conn = redis().await;
    let events: Vec<WireEvent> = (1..=10).map(wire_event).collect();
    for e in &events {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&key).arg(entry_id(e.seq));
        for (k, v) in e.fields() {
            cmd.arg(k).arg(v);
        }
        let _: String = cmd.query_async(&mut conn).await.unwrap();
    }
    let (store, _dir) = crate::helpers::bare_store().await;
    let (writer, task) = dabba::persistence::writer::Writer::new(
        store.clone(),
        Default::default(),
        Arc::new(NoSink),
    );
    actix_web::rt::spawn(task);
    let counts: Arc<Mutex<HashMap<uuid::Uuid, u32>>> = Arc::default();
    let poisoned: Arc<Mutex<std::collections::HashSet<i64>>> = Arc::default();
    poisoned.lock().unwrap().insert(1);
    let consumer = Arc::new(Counter {
        counts: counts.clone(),
        hang_at: None,
        calls: Mutex::new(0),
        poisoned: poisoned.clone(),
    });
    let policy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(2),
        claim_idle: Duration::from_secs(30),
        ..RetryPolicy::default()
    };
    let conn2 = dabba::redis_conn::connect_with(&redis_url(), Duration::from_secs(5))
        .await
        .unwrap();
    let source = Source::Redis(RedisGroup::new(
        conn2,
        &prefix,
        "counter",
        "only".into(),
        &[Family::Orders],
    ));
    let (replays, rx) = tokio::sync::mpsc::channel(4);
    let stats = Arc::new(ConsumerStats::default());
    let started = Instant::now();
    let run = actix_web::rt::spawn(
        Runtime::new(
            consumer,
            source,
            policy,
            writer,
            rx,
            stats,
            Clock::default(),
        )
        .run(),
    );

    // The nine events behind the poison are handled while it waits for its first retry.
    eventually("the rest handled", async || {
        (counts.lock().unwrap().len() == 9).then_some(())
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "not held up: {:?}",
        started.elapsed()
    );
    assert!(!counts.lock().unwrap().contains_key(&events[0].event_id));

    // After its three attempts it is parked with its error.
    let letter = eventually("parked", async || {
        store.dead_letters(10).await.unwrap().pop()
    })
    .await;
    assert_eq!(letter.event_id, events[0].event_id);
    assert_eq!(letter.attempts, 3);
    assert_eq!(letter.consumer, "counter");
    assert!(letter.error.contains("poisoned 1"));

    // Fixed, then replayed: handled exactly once, and marked replayed.
    poisoned.lock().unwrap().clear();
    replays.send(letter.clone()).await.unwrap();
    eventually("replayed", async || {
        store
            .dead_letters(10)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(counts.lock().unwrap().get(&events[0].event_id), Some(&1));
    assert!(
        store
            .dead_letter(letter.id)
            .await
            .unwrap()
            .unwrap()
            .replayed_at
            .is_some()
    );
    run.abort();
}
