//! The in-process rate limiter's cost per request with few and with many distinct keys held:
//! a request never scans, so 200 k resident keys must cost what 1 k do.
//!
//! `cargo bench --bench limiter`

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use dabba::api::limits::{Class, Key, Limits, LocalBuckets};

fn filled(keys: u32) -> LocalBuckets {
    let limits = Limits::default();
    let buckets = LocalBuckets::new(&limits);
    for i in 0..keys {
        let _ = buckets.take(
            Class::Reads,
            Key::Addr(IpAddr::from(i.to_be_bytes())),
            limits.reads,
        );
    }
    buckets
}

fn take(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("limiter_take");
    for keys in [1_000u32, 200_000] {
        let buckets = filled(keys);
        let mut i = 0u32;
        group.bench_function(format!("{keys}_keys_resident"), |b| {
            b.iter(|| {
                // Cycle over resident keys: a lookup and a refill, never an insert.
                i = (i + 7_919) % keys;
                black_box(buckets.take(
                    Class::Reads,
                    Key::Addr(IpAddr::from(i.to_be_bytes())),
                    limits.reads,
                ))
            })
        });
        let mut fresh = keys;
        group.bench_function(format!("{keys}_keys_resident_new_key"), |b| {
            b.iter(|| {
                fresh = fresh.wrapping_add(1);
                black_box(buckets.take(
                    Class::Reads,
                    Key::Addr(IpAddr::from(fresh.to_be_bytes())),
                    limits.reads,
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, take);
criterion_main!(benches);
