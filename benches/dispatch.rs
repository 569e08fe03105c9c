//! The dispatch hot paths: the rider index at city scale, the order state machine, and the
//! JSON of the hottest messages.
//!
//! ```sh
//! cargo bench --bench dispatch
//! ```

use std::collections::HashSet;
use std::hint::black_box;

use chrono::{Duration, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use dabba::domain::order::{NewOrder, new_order};
use dabba::domain::{Command, CustomerId, Delivery, Item, LatLng, Policy, RestaurantId, RiderId};
use dabba::geo::PointIndex;
use dabba::wire::ServerMessage;

/// A 40 km × 40 km city around Bengaluru, as a rider would be spread over it.
fn point(rng: &mut StdRng) -> LatLng {
    LatLng::parse(
        12.97 + rng.random_range(-0.18..0.18),
        77.59 + rng.random_range(-0.18..0.18),
    )
    .unwrap()
}

fn rider_index(c: &mut Criterion) {
    let mut group = c.benchmark_group("rider_index");
    for riders in [10_000usize, 100_000, 320_000] {
        let mut rng = StdRng::seed_from_u64(7);
        let points: Vec<(RiderId, LatLng)> = (0..riders)
            .map(|_| (RiderId::new(), point(&mut rng)))
            .collect();
        let index = PointIndex::bulk_load(points.iter().copied());
        // Riders already offered this order: the nearest few around a query point.
        let queries: Vec<LatLng> = (0..1_024).map(|_| point(&mut rng)).collect();
        let excluded: Vec<HashSet<RiderId>> = queries
            .iter()
            .map(|q| {
                index
                    .all_within(*q, 300.0)
                    .into_iter()
                    .take(3)
                    .map(|(id, _)| id)
                    .collect()
            })
            .collect();
        let mut i = 0;
        group.bench_function(
            BenchmarkId::new("nearest_available_5km_excluding_tried", riders),
            |b| {
                b.iter(|| {
                    i = (i + 1) % queries.len();
                    black_box(
                        index.nearest_within(queries[i], 5_000.0, |id| excluded[i].contains(&id)),
                    )
                })
            },
        );
        let mut moving = PointIndex::bulk_load(points.iter().copied());
        let mut j = 0;
        group.bench_function(
            BenchmarkId::new("position_update_remove_insert", riders),
            |b| {
                b.iter(|| {
                    j = (j + 1) % points.len();
                    let (id, at) = points[j];
                    let moved = LatLng::parse(at.lat + 0.0001, at.lng).unwrap();
                    moving.upsert(id, moved);
                })
            },
        );
        if riders <= 100_000 {
            group.bench_function(BenchmarkId::new("full_rebuild", riders), |b| {
                b.iter(|| black_box(PointIndex::bulk_load(points.iter().copied())))
            });
        }
    }
    group.finish();
}

fn order() -> dabba::domain::Order {
    let at = LatLng::parse(12.97, 77.59).unwrap();
    new_order(
        NewOrder {
            customer_id: CustomerId::new(),
            restaurant_id: RestaurantId::new(),
            restaurant_location: at,
            items: vec![
                Item {
                    item_id: None,
                    name: "Masala dosa".into(),
                    quantity: 2,
                    unit_price_cents: dabba::domain::Cents(9_000),
                },
                Item {
                    item_id: None,
                    name: "Filter coffee".into(),
                    quantity: 1,
                    unit_price_cents: dabba::domain::Cents(4_000),
                },
            ],
            delivery: Delivery {
                location: at,
                address: "12 MG Road".into(),
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

fn state_machine(c: &mut Criterion) {
    let policy = Policy::default();
    let placed = order();
    let now = placed.placed_at + Duration::seconds(60);
    let rider = RiderId::new();
    c.bench_function("state_machine/whole_lifecycle", |b| {
        b.iter(|| {
            let mut o = placed.clone();
            for cmd in [
                Command::AcceptByRestaurant,
                Command::BeginDispatch,
                Command::AssignRider(rider, 1, None),
                Command::Pickup(rider),
                Command::Deliver(rider),
            ] {
                o = o.apply(cmd, now, &policy).unwrap();
            }
            black_box(o)
        })
    });
    c.bench_function("state_machine/cancel_with_refund", |b| {
        b.iter(|| black_box(placed.apply(Command::Cancel, now, &policy).unwrap()))
    });
}

fn json(c: &mut Criterion) {
    let o = order();
    let update = ServerMessage::order_updated(&o);
    let text = update.to_json();
    c.bench_function("json/encode_order_updated", |b| {
        b.iter(|| black_box(update.to_json()))
    });
    c.bench_function("json/decode_order_updated", |b| {
        b.iter(|| black_box(serde_json::from_str::<ServerMessage>(&text).unwrap()))
    });
    let location = r#"{"type":"location","lat":12.9716,"lng":77.5946}"#;
    c.bench_function("json/decode_rider_location_frame", |b| {
        b.iter(|| {
            black_box(serde_json::from_str::<dabba::api::ws::ClientMessage>(location).unwrap())
        })
    });
}

criterion_group!(benches, rider_index, state_machine, json);
criterion_main!(benches);
