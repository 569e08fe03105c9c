//! The transactional outbox: events committed with their snapshot are handed on in order,
//! exactly once per consumer, including events committed just before a crash.

use chrono::Utc;

use dabba::domain::order::{NewOrder, new_order};
use dabba::domain::{CustomerId, Delivery, Item, LatLng, Policy};
use std::sync::Arc;
use std::time::Duration;

use dabba::events::consumer::{RetryPolicy, Runtime};
use dabba::events::family::Family;
use dabba::events::fanout::{FANOUT, Fanout};
use dabba::events::hub::{Audience, Hub};
use dabba::events::relay;
use dabba::events::sources::{OutboxCursor, Source};
use dabba::events::tail::LogFeed;
use dabba::persistence::writer::{EventSink, Writer, WriterConfig};
use dabba::persistence::{Write, WriteUnit};

fn order(customer: CustomerId) -> dabba::domain::Order {
    let at = LatLng::parse(12.97, 77.59).unwrap();
    new_order(
        NewOrder {
            customer_id: customer,
            restaurant_id: crate::helpers::bare_restaurant(),
            restaurant_location: at,
            items: vec![Item {
                item_id: None,
                name: "vada".into(),
                quantity: 1,
                unit_price_cents: dabba::domain::Cents(3000),
            }],
            delivery: Delivery {
                location: at,
                address: "here".into(),
            },
            deliver_at: None,
            payment: None,
            prep_minutes: 15,
            recurring_id: None,
        },
        Utc::now(),
        &Policy::default(),
    )
    .unwrap()
}

#[actix_web::test]
async fn committed_events_are_fanned_out_once_after_a_crash_and_never_twice() {
    let (store, _dir) = crate::helpers::bare_store().await;
    let customer = CustomerId::new();
    // Three orders committed with their events, as if the process died before handing them on.
    let mut placed = vec![];
    for _ in 0..3 {
        let o = order(customer);
        let unit = WriteUnit::new(vec![
            Write::PlaceOrder {
                order: o.clone(),
                idempotency: None,
            },
            Write::Event(relay::order_updated(&o, o.placed_at)),
        ]);
        store.apply_batch(&[unit]).await.unwrap();
        placed.push(o.id);
    }
    let (writer, task) = Writer::new(store.clone(), WriterConfig::default(), Arc::new(Discard));
    actix_web::rt::spawn(task);
    let feed = LogFeed::default();
    // A process: a hub starting at the saved cursor and the fan-out consumer.
    let start = async |hub: &Hub| {
        hub.start_at(store.cursor(FANOUT).await.unwrap());
        let source = Source::Outbox(Box::new(
            OutboxCursor::new(
                store.clone(),
                writer.clone(),
                &Family::ALL,
                Some(FANOUT),
                feed.clone(),
                Arc::new(|| 0),
            )
            .eager(),
        ));
        let (_replays, rx) = tokio::sync::mpsc::channel(1);
        let runtime = Runtime::new(
            Arc::new(Fanout::new(hub.clone())),
            source,
            RetryPolicy::default(),
            writer.clone(),
            rx,
            Arc::default(),
            dabba::domain::Clock::default(),
        );
        // The task handle, in a tuple: the closure's result is not itself awaited.
        (actix_web::rt::spawn(runtime.run()),)
    };
    let hub = Hub::default();
    let mut sub = hub.subscribe(Audience::Customer(customer));
    let (first,) = start(&hub).await;
    let mut got: Vec<dabba::domain::OrderId> = vec![];
    while got.len() < 3 {
        let push = tokio::time::timeout(Duration::from_secs(5), sub.receiver.recv())
            .await
            .expect("the committed events are handed on")
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&push.text).unwrap();
        got.push(v["order"]["id"].as_str().unwrap().parse().unwrap());
    }
    assert_eq!(got, placed, "in commit order, each once");

    // Handing the same committed events on again publishes nothing.
    feed.committed(&store.events_after(0, 100).await.unwrap());
    let quiet = tokio::time::timeout(Duration::from_millis(300), sub.receiver.recv()).await;
    assert!(quiet.is_err(), "nothing handed on twice");

    // Once the cursor is saved (idle, within about a second), a restarted process hands on
    // nothing it already had.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(store.cursor(FANOUT).await.unwrap(), hub.head());
    first.abort();
    let restarted = Hub::default();
    let mut sub = restarted.subscribe(Audience::Customer(customer));
    let (second,) = start(&restarted).await;
    let quiet = tokio::time::timeout(Duration::from_millis(500), sub.receiver.recv()).await;
    assert!(
        quiet.is_err(),
        "a restart re-sends nothing handed on before"
    );
    second.abort();
}

struct Discard;

impl EventSink for Discard {
    fn committed(&self, _: &[dabba::persistence::CommittedEvent]) {}
}

#[actix_web::test]
async fn a_full_write_queue_refuses_instead_of_dropping_and_every_queued_write_commits() {
    use dabba::persistence::StoreError;
    use dabba::persistence::writer::{Writer, WriterConfig};

    let (store, _dir) = crate::helpers::bare_store().await;
    let config = WriterConfig {
        queue: 2,
        ..WriterConfig::default()
    };
    let (writer, task) = Writer::new(store.clone(), config, std::sync::Arc::new(Discard));
    let orders: Vec<_> = (0..3).map(|_| order(CustomerId::new())).collect();
    let unit = |o: &dabba::domain::Order| {
        WriteUnit::one(Write::PlaceOrder {
            order: o.clone(),
            idempotency: None,
        })
    };
    // The writer is not running yet: two writes queue, the third is refused at once.
    let first = writer.submit(unit(&orders[0]));
    let second = writer.submit(unit(&orders[1]));
    let third = writer.submit(unit(&orders[2]));
    assert!(matches!(third.await, Err(StoreError::Overloaded)));
    actix_web::rt::spawn(task);
    first.await.unwrap();
    second.await.unwrap();
    assert!(store.order(orders[0].id).await.unwrap().is_some());
    assert!(store.order(orders[1].id).await.unwrap().is_some());
    assert!(store.order(orders[2].id).await.unwrap().is_none());
}

/// A writer that refuses new work waiting over 20 ms, not yet running (the caller spawns its
/// task), on a fresh store.
async fn writer_with_a_20ms_limit() -> (
    dabba::persistence::Store,
    Option<crate::helpers::TempDir>,
    dabba::persistence::writer::Writer,
    impl std::future::Future<Output = ()> + 'static,
) {
    use dabba::persistence::writer::{Writer, WriterConfig};
    let (store, dir) = crate::helpers::bare_store().await;
    let config = WriterConfig {
        max_queue_wait: Duration::from_millis(20),
        ..WriterConfig::default()
    };
    let (writer, task) = Writer::new(store.clone(), config, Arc::new(Discard));
    (store, dir, writer, task)
}

fn place(o: &dabba::domain::Order) -> WriteUnit {
    WriteUnit::one(Write::PlaceOrder {
        order: o.clone(),
        idempotency: None,
    })
}

/// Overload is judged by how long writes wait, not only by how many: with a backlog queued,
/// new work that waited past the limit is refused (not committed), work already accepted
/// still commits, and once the queue drains new work is taken again without a restart.
#[actix_web::test]
async fn new_work_that_waited_too_long_is_refused_and_the_writer_recovers_by_itself() {
    use dabba::persistence::StoreError;
    use dabba::persistence::writer::SHED_FROM;

    let (store, _dir, writer, task) = writer_with_a_20ms_limit().await;
    let stale: Vec<_> = (0..SHED_FROM).map(|_| order(CustomerId::new())).collect();
    let (accepted, fresh) = (order(CustomerId::new()), order(CustomerId::new()));
    // The writer is stalled (not running yet) while a backlog waits longer than the limit.
    let new_work: Vec<_> = stale.iter().map(|o| writer.submit_new(place(o))).collect();
    let old_work = writer.submit(place(&accepted));
    actix_web::rt::time::sleep(Duration::from_millis(60)).await;
    actix_web::rt::spawn(task);
    for refused in futures_util::future::join_all(new_work).await {
        assert!(
            matches!(refused, Err(StoreError::Overloaded)),
            "{refused:?}"
        );
    }
    old_work.await.expect("work already accepted is never shed");
    for o in &stale {
        assert!(
            store.order(o.id).await.unwrap().is_none(),
            "a refused write landed"
        );
    }
    assert!(store.order(accepted.id).await.unwrap().is_some());
    // Drained: new work is welcome again.
    writer.submit_new(place(&fresh)).await.expect("recovered");
    assert!(store.order(fresh.id).await.unwrap().is_some());
}

/// A lone placement held up past the limit (a starved machine, one slow commit) is not
/// overload: nothing queues behind it, refusing it would free nothing, so it commits.
#[actix_web::test]
async fn a_lone_write_delayed_past_the_limit_still_commits() {
    let (store, _dir, writer, task) = writer_with_a_20ms_limit().await;
    let lone = order(CustomerId::new());
    let placed = writer.submit_new(place(&lone));
    actix_web::rt::time::sleep(Duration::from_millis(60)).await;
    actix_web::rt::spawn(task);
    placed.await.expect("a lone delayed write is committed");
    assert!(store.order(lone.id).await.unwrap().is_some());
}

#[actix_web::test]
async fn overload_is_503_with_retry_after_and_never_a_lost_order() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        commit_queue: 1,
        ..Default::default()
    })
    .await;
    let restaurant = app.restaurant().await;
    let (_, customer) = app.customer().await;
    let body = app.order_body(&restaurant.0, crate::helpers::south(100.0));
    let requests = (0..64).map(|_| {
        let body = body.clone();
        let customer = customer.clone();
        let app = &app;
        async move {
            let r = app.post("/v1/orders", &customer, body).await;
            (r.status, r.retry_after, r.body)
        }
    });
    let results = futures_util::future::join_all(requests).await;
    let mut placed = 0;
    for (status, retry, v) in results {
        match status {
            201 => {
                placed += 1;
                assert_eq!(app.order(v["id"].as_str().unwrap()).await["version"], 1);
            }
            503 => {
                assert_eq!(v["error"]["code"], "overloaded");
                assert_eq!(retry, Some(1));
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert!(placed >= 1);
}

#[actix_web::test]
async fn a_log_reader_that_falls_behind_its_feed_catches_up_from_the_outbox_with_no_gap() {
    use dabba::events::tail::LogFeed;
    use std::time::Duration;
    let (store, _dir) = crate::helpers::bare_store().await;
    let customer = CustomerId::new();
    let feed = LogFeed::with_capacity(2);
    let mut tail = feed.tail(store.clone(), 0);
    // Caught up on an empty log: it now reads from the feed.
    assert!(
        tail.next(100, Duration::from_millis(10))
            .await
            .unwrap()
            .is_empty()
    );
    let commit = async |feed: &LogFeed| {
        let o = order(customer);
        let unit = WriteUnit::new(vec![
            Write::PlaceOrder {
                order: o.clone(),
                idempotency: None,
            },
            Write::Event(relay::order_updated(&o, o.placed_at)),
        ]);
        let outcome = store.apply_batch(&[unit]).await.unwrap();
        feed.committed(&outcome.events);
        outcome.events[0].seq
    };
    // Ten commits into a feed that holds two: the reader fell behind.
    let mut committed = Vec::new();
    for _ in 0..10 {
        committed.push(commit(&feed).await);
    }
    let mut got = Vec::new();
    for _ in 0..20 {
        let page = tail.next(4, Duration::from_millis(10)).await.unwrap();
        got.extend(page.iter().map(|e| e.seq));
        if got.len() >= committed.len() {
            break;
        }
    }
    assert_eq!(
        got, committed,
        "every event once, in order, none lost to the overflow"
    );
    // Caught up again: the next commit comes through the feed.
    let next = commit(&feed).await;
    let page = tail.next(4, Duration::from_secs(1)).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![next]);
    assert_eq!(tail.position(), next);
}

#[actix_web::test]
async fn the_position_of_a_time_in_the_log_is_found_without_a_scan() {
    let (store, _dir) = crate::helpers::bare_store().await;
    let customer = CustomerId::new();
    let t0 = Utc::now() - chrono::Duration::days(2);
    let mut seqs = Vec::new();
    for hour in 0..10 {
        let o = order(customer);
        let unit = WriteUnit::new(vec![
            Write::PlaceOrder {
                order: o.clone(),
                idempotency: None,
            },
            Write::Event(relay::order_updated(&o, t0 + chrono::Duration::hours(hour))),
        ]);
        let outcome = store.apply_batch(&[unit]).await.unwrap();
        seqs.push(outcome.events[0].seq);
    }
    let at = |minutes: i64| t0 + chrono::Duration::minutes(minutes);
    // The first event at or after 4 h 30 is the one of hour 5: a reader starts just before it.
    assert_eq!(store.seq_before(at(270)).await.unwrap(), seqs[5] - 1);
    assert_eq!(store.seq_before(at(300)).await.unwrap(), seqs[5] - 1);
    assert_eq!(store.seq_before(at(-60)).await.unwrap(), seqs[0] - 1);
    assert_eq!(store.seq_before(at(20 * 60)).await.unwrap(), seqs[9]);
}
