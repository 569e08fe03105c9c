//! Rate limiting: a token bucket per (class, subject), in Redis when `REDIS_URL` is set (one
//! atomic Lua script, so every node shares the buckets) and in-process otherwise, with the
//! same semantics. If Redis fails, the in-process buckets take over and say so in logs and
//! `dabba_rate_limiter_fallback_total`; a limiter outage never turns requests into errors.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use super::auth::{Role, authenticate};
use super::error::ApiError;

/// What a request costs from: separate buckets so a location stream never starves orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Writes,
    Location,
    Reads,
}

impl Class {
    fn as_str(self) -> &'static str {
        match self {
            Class::Writes => "writes",
            Class::Location => "location",
            Class::Reads => "reads",
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
        }
    }
}

impl Limits {
    fn of(&self, class: Class) -> Rate {
        match class {
            Class::Writes => self.writes,
            Class::Location => self.location,
            Class::Reads => self.reads,
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
    pub fn full(rate: Rate) -> Self {
        Self {
            tokens: rate.burst,
            at: Instant::now(),
        }
    }

    pub fn take(&mut self, rate: Rate) -> Decision {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * rate.per_sec)
            .min(rate.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec))
        }
    }
}

#[derive(Default)]
struct Buckets {
    buckets: Mutex<HashMap<(Class, String), Bucket>>,
}

impl Buckets {
    fn take(&self, class: Class, key: &str, rate: Rate) -> Decision {
        let mut all = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() > 100_000 {
            // Idle buckets are full buckets: forgetting them changes nothing.
            let now = Instant::now();
            all.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(600));
        }
        all.entry((class, key.to_owned()))
            .or_insert_with(|| Bucket::full(rate))
            .take(rate)
    }
}

/// Refill and take one token atomically; answers 0 (taken) or milliseconds to wait.
const TOKEN_BUCKET: &str = r"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
";

pub struct RateLimiter {
    limits: Limits,
    local: Buckets,
    redis: Option<(redis::aio::ConnectionManager, redis::Script)>,
}

impl RateLimiter {
    pub fn in_process(limits: Limits) -> Self {
        Self {
            limits,
            local: Buckets::default(),
            redis: None,
        }
    }

    /// Connects to Redis; if it cannot, runs in-process and says so.
    pub async fn with_redis(limits: Limits, url: &str) -> Self {
        match crate::redis_conn::connect(url).await {
            Some(conn) => {
                tracing::info!("rate limiter: redis");
                Self {
                    limits,
                    local: Buckets::default(),
                    redis: Some((conn, redis::Script::new(TOKEN_BUCKET))),
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
        if self.redis.is_some() {
            "redis"
        } else {
            "in_process"
        }
    }

    pub async fn take(&self, class: Class, key: &str) -> Decision {
        let rate = self.limits.of(class);
        let Some((conn, script)) = &self.redis else {
            return self.local.take(class, key, rate);
        };
        let mut conn = conn.clone();
        let mut call = script.key(format!("dabba:rl:{}:{key}", class.as_str()));
        call.arg(rate.per_sec).arg(rate.burst);
        match call.invoke_async::<i64>(&mut conn).await {
            Ok(0) => Ok(()),
            Ok(wait_ms) => Err(Duration::from_millis(wait_ms.max(1) as u64)),
            Err(error) => {
                tracing::warn!(%error, "rate limiter: redis failed, using in-process buckets");
                metrics::counter!("dabba_rate_limiter_fallback_total").increment(1);
                self.local.take(class, key, rate)
            }
        }
    }
}

/// The bucket a request draws from, by its path: only location routes end in `/location`.
/// (Not by the matched route pattern: asking for it resolves the whole router again, which
/// cost more than the rest of the limiter.)
fn classify(method: &Method, path: &str) -> Option<Class> {
    if matches!(
        path,
        "/v1/ws" | "/v1/test/clock" | "/metrics" | "/healthz" | "/readyz"
    ) {
        return None; // the socket is limited per frame; probes and tests are not limited
    }
    Some(match *method {
        Method::GET | Method::HEAD => Class::Reads,
        _ if path.ends_with("/location") => Class::Location,
        _ => Class::Writes,
    })
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

/// Middleware: limits by token subject, or by client IP without a valid token. Ops tokens
/// are not limited (operators and the load generator act for many users).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    let limiter = req.app_data::<web::Data<RateLimiter>>().cloned();
    let class = classify(req.method(), req.path());
    if let (Some(limiter), Some(class)) = (limiter, class) {
        let key = match authenticate(req.request()) {
            Ok(caller) if caller.role == Role::Ops => None,
            Ok(caller) => Some(format!("sub:{}", caller.sub)),
            Err(_) => Some(format!(
                "ip:{}",
                req.connection_info()
                    .realip_remote_addr()
                    .unwrap_or("unknown")
            )),
        };
        if let Some(key) = key
            && let Err(wait) = limiter.take(class, &key).await
        {
            metrics::counter!("dabba_rate_limited_total", "class" => class.as_str()).increment(1);
            let response = limited(wait).error_response();
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let b = Buckets::default();
        let rate = Rate {
            per_sec: 1.0,
            burst: 3.0,
        };
        for _ in 0..3 {
            assert!(b.take(Class::Writes, "k", rate).is_ok());
        }
        let wait = b.take(Class::Writes, "k", rate).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        // Other keys and classes have their own buckets.
        assert!(b.take(Class::Writes, "other", rate).is_ok());
        assert!(b.take(Class::Reads, "k", rate).is_ok());
    }

    #[test]
    fn routes_draw_from_the_right_bucket() {
        let rider = "/v1/riders/5f0c4a4e-8b1e-4d43-9d0e-1d3c3f2b7a10";
        assert_eq!(
            classify(&Method::PUT, &format!("{rider}/location")),
            Some(Class::Location)
        );
        assert_eq!(
            classify(&Method::PUT, &format!("{rider}/status")),
            Some(Class::Writes)
        );
        assert_eq!(classify(&Method::POST, "/v1/orders"), Some(Class::Writes));
        assert_eq!(classify(&Method::GET, "/v1/orders/x"), Some(Class::Reads));
        assert_eq!(classify(&Method::GET, "/v1/ws"), None);
    }
}
