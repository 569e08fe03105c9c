//! Rate limiting: a token bucket per (class, subject or client address), shared between nodes
//! through Redis when `REDIS_URL` is set ([`super::shared_limits`]: decided from a local copy,
//! settled with Redis right behind the request) and in-process otherwise, with the same
//! semantics. If Redis fails, the in-process buckets take over and say so in logs and
//! `dabba_rate_limiter_fallback_total`; a limiter outage never turns requests into errors.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::error::ApiError;
use super::shared_limits::{Shared, SharedBuckets};

/// What a request costs from: separate buckets so a location stream never starves orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Writes,
    /// Positions, per rider across its sockets and REST.
    Location,
    Reads,
    /// WebSocket handshakes.
    Sockets,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::Writes, Class::Location, Class::Reads, Class::Sockets];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Writes => "writes",
            Class::Location => "location",
            Class::Reads => "reads",
            Class::Sockets => "sockets",
        }
    }
}

/// Tokens per second and bucket size of one class.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub writes: Rate,
    pub location: Rate,
    pub reads: Rate,
    pub sockets: Rate,
}

impl Default for Limits {
    /// Generous for people and apps (a rider streams at 1 Hz; a customer taps a few times a
    /// minute), tight enough to stop a script.
    fn default() -> Self {
        Self {
            writes: Rate {
                per_sec: 5.0,
                burst: 30.0,
            },
            location: Rate {
                per_sec: 5.0,
                burst: 20.0,
            },
            reads: Rate {
                per_sec: 20.0,
                burst: 100.0,
            },
            sockets: Rate {
                per_sec: 2.0,
                burst: 20.0,
            },
        }
    }
}

impl Limits {
    fn of(&self, class: Class) -> Rate {
        match class {
            Class::Writes => self.writes,
            Class::Location => self.location,
            Class::Reads => self.reads,
            Class::Sockets => self.sockets,
        }
    }
}

/// Taken (`Ok`) or how long until a token is back.
pub type Decision = Result<(), Duration>;

/// One token bucket, starting full.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn full_at(rate: Rate, now: Instant) -> Self {
        Self::holding(rate, rate.burst, now)
    }

    /// A bucket with `tokens` left (at most the burst; below zero is debt to refill first).
    pub fn holding(rate: Rate, tokens: f64, now: Instant) -> Self {
        Self {
            tokens: tokens.min(rate.burst),
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        self.tokens = (self.tokens
            + now.saturating_duration_since(self.at).as_secs_f64() * rate.per_sec)
            .min(rate.burst);
        self.at = now;
    }

    /// Refills, then holds at most `tokens`.
    pub fn cap_at(&mut self, rate: Rate, tokens: f64, now: Instant) {
        self.refill(rate, now);
        self.tokens = self.tokens.min(tokens);
    }

    pub fn take_at(&mut self, rate: Rate, now: Instant) -> Decision {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec))
        }
    }
}

/// Whose bucket: a token's subject, or the client's address without a valid token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Subject(Uuid),
    Addr(IpAddr),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Subject(id) => write!(f, "sub:{id}"),
            Key::Addr(ip) => write!(f, "ip:{ip}"),
        }
    }
}

/// Independent locks, so concurrent requests rarely wait on each other.
const SHARDS: usize = 64;

/// In-process buckets with O(1) expiry: each shard keeps two generations and, once a period,
/// drops the older one whole. A bucket untouched for a whole period is gone; the period is at
/// least the time an empty bucket takes to refill, so a forgotten bucket was a full one and
/// forgetting it changes nothing. No request ever scans the map, however many keys it holds.
pub struct LocalBuckets {
    shards: Vec<Mutex<Generations>>,
    period: Duration,
}

type BucketMap = HashMap<(Class, Key), Bucket>;

struct Generations {
    current: BucketMap,
    previous: BucketMap,
    rotated_at: Instant,
}

impl LocalBuckets {
    /// Buckets for `limits`: the period covers the slowest refill of any class.
    pub fn new(limits: &Limits) -> Self {
        let slowest = Class::ALL
            .iter()
            .map(|c| {
                let r = limits.of(*c);
                r.burst / r.per_sec
            })
            .fold(0.0, f64::max);
        let period = Duration::from_secs_f64(slowest.clamp(1.0, 86_400.0)) + Duration::from_secs(1);
        let now = Instant::now();
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Generations {
                        current: HashMap::new(),
                        previous: HashMap::new(),
                        rotated_at: now,
                    })
                })
                .collect(),
            period,
        }
    }

    pub fn take(&self, class: Class, key: Key, rate: Rate) -> Decision {
        self.take_at(class, key, rate, Instant::now())
    }

    pub fn take_at(&self, class: Class, key: Key, rate: Rate, now: Instant) -> Decision {
        self.with_bucket(class, key, now, |bucket| {
            bucket
                .get_or_insert_with(|| Bucket::full_at(rate, now))
                .take_at(rate, now)
        })
    }

    /// Takes from the bucket only if this node holds one (`None`: ask the shared store), and
    /// says how many tokens are left.
    pub fn take_known(
        &self,
        class: Class,
        key: Key,
        rate: Rate,
        now: Instant,
    ) -> Option<(Decision, f64)> {
        self.with_bucket(class, key, now, |bucket| {
            bucket.as_mut().map(|b| (b.take_at(rate, now), b.tokens))
        })
    }

    /// Holds the bucket with `tokens` left, as the shared store just said.
    pub fn learn(&self, class: Class, key: Key, rate: Rate, tokens: f64, now: Instant) {
        self.with_bucket(class, key, now, |bucket| {
            *bucket = Some(Bucket::holding(rate, tokens, now));
        });
    }

    /// Lowers the bucket to `tokens` if it holds more (what other nodes spent, as settling
    /// with the shared store found); a bucket this node no longer holds stays forgotten.
    pub fn cap(&self, class: Class, key: Key, rate: Rate, tokens: f64, now: Instant) {
        self.with_bucket(class, key, now, |bucket| {
            if let Some(b) = bucket {
                b.cap_at(rate, tokens, now);
            }
        });
    }

    /// Runs `f` on the (class, key) bucket slot of its shard: `None` if this node holds no
    /// bucket for it; what `f` leaves there is kept.
    fn with_bucket<T>(
        &self,
        class: Class,
        key: Key,
        now: Instant,
        f: impl FnOnce(&mut Option<Bucket>) -> T,
    ) -> T {
        let shard = {
            let mut h = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&key, &mut h);
            (std::hash::Hasher::finish(&h) as usize) % SHARDS
        };
        let expired;
        let result = {
            // A bucket map holds no invariant a panicking holder could break halfway.
            let mut g = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
            expired = if now.duration_since(g.rotated_at) >= self.period {
                g.rotated_at = now;
                let current = std::mem::take(&mut g.current);
                Some(std::mem::replace(&mut g.previous, current))
            } else {
                None
            };
            let mut slot = g
                .current
                .remove(&(class, key))
                .or_else(|| g.previous.remove(&(class, key)));
            let result = f(&mut slot);
            if let Some(bucket) = slot {
                g.current.insert((class, key), bucket);
            }
            result
        };
        // Keys and buckets are plain data: freeing the old generation is one deallocation,
        // done outside the lock.
        drop(expired);
        result
    }

    /// Buckets held (both generations), for tests and metrics.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let g = s.lock().unwrap_or_else(|p| p.into_inner());
                g.current.len() + g.previous.len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct RateLimiter {
    limits: Limits,
    local: Arc<LocalBuckets>,
    shared: Option<Arc<SharedBuckets>>,
}

impl RateLimiter {
    pub fn in_process(limits: Limits) -> Self {
        Self {
            local: Arc::new(LocalBuckets::new(&limits)),
            limits,
            shared: None,
        }
    }

    /// Connects to Redis; if it cannot, runs in-process and says so.
    pub async fn with_redis(limits: Limits, url: &str) -> Self {
        match crate::redis_conn::connect(url).await {
            Some(conn) => {
                tracing::info!("rate limiter: redis");
                let local = Arc::new(LocalBuckets::new(&limits));
                Self {
                    shared: Some(SharedBuckets::start(conn, local.clone())),
                    local,
                    limits,
                }
            }
            None => {
                tracing::warn!(
                    "rate limiter: redis unreachable at start, using in-process buckets"
                );
                metrics::counter!("dabba_rate_limiter_fallback_total").increment(1);
                Self::in_process(limits)
            }
        }
    }

    pub fn rate(&self, class: Class) -> Rate {
        self.limits.of(class)
    }

    pub fn backend(&self) -> &'static str {
        if self.shared.is_some() {
            "redis"
        } else {
            "in_process"
        }
    }

    /// Positions are limited in-process on every backend: one rider's stream (its sockets and
    /// its REST calls) lands on one node, and a Redis round trip per position would cost more
    /// than handling the position.
    pub fn take_local(&self, class: Class, key: Key) -> Decision {
        self.local.take(class, key, self.limits.of(class))
    }

    pub async fn take(&self, class: Class, key: Key) -> Decision {
        let rate = self.limits.of(class);
        let Some(shared) = &self.shared else {
            return self.local.take(class, key, rate);
        };
        if class == Class::Location {
            return self.local.take(class, key, rate);
        }
        match shared.take(&self.local, class, key, rate).await {
            Shared::Decided(decision) => decision,
            Shared::Unavailable(error) => {
                tracing::warn!(%error, "rate limiter: redis failed, using in-process buckets");
                metrics::counter!("dabba_rate_limiter_fallback_total").increment(1);
                self.local.take(class, key, rate)
            }
        }
    }
}

/// Over the limit: `429 rate_limited` with `Retry-After` in whole seconds.
pub fn limited(wait: Duration) -> ApiError {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u32;
    ApiError::new(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests, slow down",
    )
    .retry_after(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_sec: f64, burst: f64) -> Rate {
        Rate { per_sec, burst }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let b = LocalBuckets::new(&Limits::default());
        let r = rate(1.0, 3.0);
        let k = Key::Subject(Uuid::from_u128(1));
        for _ in 0..3 {
            assert!(b.take(Class::Writes, k, r).is_ok());
        }
        let wait = b.take(Class::Writes, k, r).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        // Other keys and classes have their own buckets.
        assert!(
            b.take(Class::Writes, Key::Subject(Uuid::from_u128(2)), r)
                .is_ok()
        );
        assert!(b.take(Class::Reads, k, r).is_ok());
    }

    #[test]
    fn a_bucket_learned_from_the_shared_store_decides_locally_and_is_capped_by_it() {
        let b = LocalBuckets::new(&Limits::default());
        let r = rate(1.0, 5.0);
        let k = Key::Subject(Uuid::from_u128(3));
        let now = Instant::now();
        assert!(
            b.take_known(Class::Writes, k, r, now).is_none(),
            "unknown here: ask Redis"
        );
        b.learn(Class::Writes, k, r, 2.0, now);
        assert!(b.take_known(Class::Writes, k, r, now).unwrap().0.is_ok());
        // Another node spent meanwhile: settling says one token is left; then none.
        b.cap(Class::Writes, k, r, 0.5, now);
        assert!(b.take_known(Class::Writes, k, r, now).unwrap().0.is_err());
        // A cap never adds tokens, and debt is refilled before anything is let through.
        b.cap(Class::Writes, k, r, 5.0, now);
        assert!(b.take_known(Class::Writes, k, r, now).unwrap().0.is_err());
        b.learn(Class::Writes, k, r, -1.0, now);
        let wait = b
            .take_known(Class::Writes, k, r, now)
            .unwrap()
            .0
            .unwrap_err();
        assert!(wait >= Duration::from_secs(2), "{wait:?}");
        // A cap on a bucket this node does not hold leaves it unknown.
        let other = Key::Subject(Uuid::from_u128(4));
        b.cap(Class::Writes, other, r, 1.0, now);
        assert!(b.take_known(Class::Writes, other, r, now).is_none());
    }

    #[test]
    fn idle_buckets_expire_whole_generations_and_only_when_full_again() {
        let limits = Limits::default();
        let b = LocalBuckets::new(&limits);
        let start = Instant::now();
        let r = limits.writes;
        let busy = Key::Subject(Uuid::from_u128(7));
        for i in 0..10_000u32 {
            let key = Key::Addr(IpAddr::from(i.to_be_bytes()));
            assert!(b.take_at(Class::Writes, key, r, start).is_ok());
        }
        // A drained bucket stays drained while others come and go.
        while b.take_at(Class::Writes, busy, r, start).is_ok() {}
        assert!(b.take_at(Class::Writes, busy, r, start).is_err());
        assert!(b.len() >= 10_000);
        // Two periods later every untouched bucket is gone, one shard touch at a time.
        let later = start + b.period * 2 + Duration::from_millis(1);
        for i in 0..SHARDS as u128 * 64 {
            let _ = b.take_at(
                Class::Reads,
                Key::Subject(Uuid::from_u128(1_000 + i)),
                r,
                later,
            );
            let _ = b.take_at(
                Class::Reads,
                Key::Subject(Uuid::from_u128(1_000 + i)),
                r,
                later + b.period,
            );
        }
        assert!(b.len() < 10_000, "expired generations are dropped");
        // Forgetting is only ever of full buckets: the period covers the slowest refill.
        for class in Class::ALL {
            let r = limits.of(class);
            assert!(b.period.as_secs_f64() >= r.burst / r.per_sec);
        }
    }
}
