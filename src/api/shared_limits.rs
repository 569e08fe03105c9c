//! Rate-limit buckets shared between nodes through Redis, without a Redis round trip on most
//! requests.
//!
//! A bucket this node has not seen lately is taken from Redis (one atomic script, as every
//! node does), and the answer — the tokens left — seeds a local copy. From then on the local
//! copy decides at once, and what it let through is settled with Redis right behind the
//! request: one script call per flush for every bucket touched since the last, answering each
//! bucket's shared balance, which caps the local copy (so what other nodes spent is seen at
//! the next flush). One node decides exactly as Redis alone would; several nodes can each let
//! through what one flush window holds before they hear of the others (the window is
//! [`SETTLE_EVERY`]; a bucket running dry is settled at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use redis::aio::ConnectionManager;

use super::limits::{Class, Decision, Key, LocalBuckets, Rate};

/// Refills, then takes one token if there is one; answers `{wait_ms, tokens_left_millis}`.
const TAKE: &str = r"
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
redis.call('PEXPIRE', KEYS[1], math.ceil(2 * burst * 1000 / rate) + 1000)
return {wait, math.floor(tokens * 1000)}
";

/// Refills each bucket, then spends what a node already let through (ARGV: rate, burst,
/// spent, per key; a bucket may go into debt down to minus its burst); answers each
/// bucket's balance in thousandths of a token.
const SETTLE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local spent = tonumber(ARGV[3 * i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens = math.max(-burst, math.min(burst, tokens + (now - at) * rate / 1000) - spent)
  redis.call('HSET', key, 'tokens', tostring(tokens), 'at', now)
  redis.call('PEXPIRE', key, math.ceil(2 * burst * 1000 / rate) + 1000)
  out[i] = math.floor(tokens * 1000)
end
return out
";

/// How long a spend may wait to be settled (unless its bucket runs dry): the window in which
/// several nodes may each let through what one bucket holds.
const SETTLE_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Most buckets settled in one script call.
const SETTLE_CHUNK: usize = 500;

/// Tokens a node let through for one bucket, not yet settled.
type Unsettled = ((Class, Key), (Rate, u32));

type Spent = HashMap<(Class, Key), (Rate, u32)>;

pub struct SharedBuckets {
    conn: ConnectionManager,
    take: redis::Script,
    settle: redis::Script,
    /// Let through locally, not yet settled with Redis.
    unsettled: Mutex<Spent>,
    wake: tokio::sync::Notify,
    /// A bucket ran dry: settle now.
    urgent: tokio::sync::Notify,
}

/// What a shared take decided, and whether Redis answered at all.
pub enum Shared {
    Decided(Decision),
    /// Redis failed: the caller decides in process.
    Unavailable(redis::RedisError),
}

impl SharedBuckets {
    /// The buckets and their settling task (spawned here, on the caller's runtime).
    pub fn start(conn: ConnectionManager, local: Arc<LocalBuckets>) -> Arc<Self> {
        let shared = Arc::new(Self {
            conn,
            take: redis::Script::new(TAKE),
            settle: redis::Script::new(SETTLE),
            unsettled: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            urgent: tokio::sync::Notify::new(),
        });
        let settler = shared.clone();
        actix_rt::spawn(async move { settler.run(&local).await });
        shared
    }

    /// Decides from the local copy when there is one (settling later); otherwise asks Redis
    /// and seeds the local copy with its answer.
    pub async fn take(&self, local: &LocalBuckets, class: Class, key: Key, rate: Rate) -> Shared {
        let now = Instant::now();
        if let Some((decision, left)) = local.take_known(class, key, rate, now) {
            if decision.is_ok() {
                // A bucket running dry is settled at once, so other nodes see it empty.
                self.spent(class, key, rate, left < 1.0);
            }
            return Shared::Decided(decision);
        }
        let mut conn = self.conn.clone();
        let mut call = self.take.key(redis_key(class, key));
        call.arg(rate.per_sec).arg(rate.burst);
        match call.invoke_async::<(i64, i64)>(&mut conn).await {
            Ok((wait_ms, left_millis)) => {
                local.learn(class, key, rate, left_millis as f64 / 1000.0, now);
                Shared::Decided(if wait_ms == 0 {
                    Ok(())
                } else {
                    Err(std::time::Duration::from_millis(wait_ms.max(1) as u64))
                })
            }
            Err(error) => Shared::Unavailable(error),
        }
    }

    fn spent(&self, class: Class, key: Key, rate: Rate, urgent: bool) {
        let mut unsettled = self.unsettled.lock().unwrap_or_else(|p| p.into_inner());
        unsettled.entry((class, key)).or_insert((rate, 0)).1 += 1;
        drop(unsettled);
        if urgent {
            self.urgent.notify_one();
        }
        self.wake.notify_one();
    }

    /// Settles whatever was let through since the last round: a round starts [`SETTLE_EVERY`]
    /// after the first spend it carries (so under load it carries many buckets in one call),
    /// or at once for a bucket running dry.
    async fn run(&self, local: &LocalBuckets) {
        loop {
            self.wake.notified().await;
            tokio::select! {
                () = self.urgent.notified() => {}
                () = tokio::time::sleep(SETTLE_EVERY) => {}
            }
            let spent =
                std::mem::take(&mut *self.unsettled.lock().unwrap_or_else(|p| p.into_inner()));
            let spent: Vec<_> = spent.into_iter().collect();
            for chunk in spent.chunks(SETTLE_CHUNK) {
                if let Err(error) = self.settle_chunk(local, chunk).await {
                    // The local copies stand: this node keeps limiting on its own until Redis
                    // answers again.
                    tracing::warn!(%error, "rate limiter: settling with redis failed");
                    metrics::counter!("dabba_rate_limiter_fallback_total").increment(1);
                }
            }
        }
    }

    async fn settle_chunk(
        &self,
        local: &LocalBuckets,
        chunk: &[Unsettled],
    ) -> redis::RedisResult<()> {
        let mut call = self.settle.prepare_invoke();
        for ((class, key), (rate, spent)) in chunk {
            call.key(redis_key(*class, *key));
            call.arg(rate.per_sec).arg(rate.burst).arg(*spent);
        }
        let mut conn = self.conn.clone();
        let balances: Vec<i64> = call.invoke_async(&mut conn).await?;
        let now = Instant::now();
        for (((class, key), (rate, _)), balance) in chunk.iter().zip(balances) {
            local.cap(*class, *key, *rate, balance as f64 / 1000.0, now);
        }
        Ok(())
    }
}

fn redis_key(class: Class, key: Key) -> String {
    format!("dabba:rl:{}:{key}", class.as_str())
}
