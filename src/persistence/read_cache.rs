//! The read cache of finished orders (the seed's cache): a finished order never changes, so
//! reads of it go to Redis first (one day's TTL) and to the store on a miss. Correct without
//! Redis, only slower: an unreachable Redis is a miss, never an error, and the cache connects
//! (again) in the background.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::domain::{Order, OrderId};

/// How long a finished order stays cached.
const TTL_SECS: u64 = 86_400;
/// A cache slower than this is skipped (the store answers instead).
const CALL_TIMEOUT: Duration = Duration::from_millis(200);

#[derive(Clone, Default)]
pub struct ReadCache {
    conn: Arc<RwLock<Option<ConnectionManager>>>,
    prefix: Arc<str>,
}

impl ReadCache {
    /// A cache that does nothing (no Redis configured).
    pub fn off() -> Self {
        Self::default()
    }

    /// A cache in the Redis at `url` under `prefix`, connecting in the background (retrying
    /// every few seconds until Redis answers). Must run inside a tokio runtime.
    pub fn redis(url: String, prefix: &str) -> Self {
        let cache = Self {
            conn: Arc::default(),
            prefix: format!("{prefix}:cache:order:").into(),
        };
        let slot = cache.conn.clone();
        tokio::spawn(async move {
            loop {
                if let Some(conn) = crate::redis_conn::connect_with(&url, CALL_TIMEOUT).await {
                    *slot.write().unwrap_or_else(|p| p.into_inner()) = Some(conn);
                    return;
                }
                tracing::warn!("read cache: redis unreachable; orders are read from the store");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        cache
    }

    fn conn(&self) -> Option<ConnectionManager> {
        self.conn.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn key(&self, id: OrderId) -> String {
        format!("{}{id}", self.prefix)
    }

    /// The cached finished order, if Redis has it.
    pub async fn get(&self, id: OrderId) -> Option<Order> {
        let mut conn = self.conn()?;
        let got: Option<Option<String>> =
            tokio::time::timeout(CALL_TIMEOUT, conn.get::<_, Option<String>>(self.key(id)))
                .await
                .ok()
                .and_then(Result::ok);
        let outcome = match &got {
            Some(Some(_)) => "hit",
            Some(None) => "miss",
            None => "error",
        };
        metrics::counter!("dabba_read_cache_total", "result" => outcome).increment(1);
        serde_json::from_str(&got.flatten()?).ok()
    }

    /// Caches a finished order (anything else is not cached: it still changes).
    pub async fn put(&self, order: &Order) {
        let (Some(mut conn), true) = (self.conn(), order.stage.is_terminal()) else {
            return;
        };
        let Ok(json) = serde_json::to_string(order) else {
            return;
        };
        let set = conn.set_ex::<_, _, ()>(self.key(order.id), json, TTL_SECS);
        let _ = tokio::time::timeout(CALL_TIMEOUT, set).await;
    }
}
