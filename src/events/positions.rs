//! Rider positions for readers outside this process (other nodes, the ops console). Positions
//! are telemetry: the dispatcher keeps them in memory and writes them to the store at most once
//! a minute per rider; with `REDIS_URL` it also publishes every moved rider's latest position,
//! once a second, to a Redis GEO set (`GEOPOS`/`GEOSEARCH` on [`POSITIONS_KEY`]).

use redis::aio::ConnectionManager;
use std::collections::HashMap;

use crate::domain::{LatLng, RiderId};

/// The Redis GEO set holding each rider's latest position (member: the rider id).
pub const POSITIONS_KEY: &str = "dabba:rider_positions";
/// Riders per GEOADD command.
const CHUNK: usize = 1_000;

/// Where moved riders' positions go besides memory.
#[derive(Clone, Default)]
pub struct PositionFeed {
    redis: Option<ConnectionManager>,
}

impl PositionFeed {
    pub async fn redis(url: &str) -> Self {
        let redis = crate::redis_conn::connect(url).await;
        if redis.is_none() {
            tracing::warn!("rider positions: redis unreachable at start, kept in memory only");
        }
        Self { redis }
    }

    pub fn is_enabled(&self) -> bool {
        self.redis.is_some()
    }

    /// Publishes the latest position of each rider in `moved` (a failure is counted and
    /// logged; the next second's batch carries the riders that move again).
    pub async fn publish(&self, moved: HashMap<RiderId, LatLng>) {
        let Some(conn) = &self.redis else { return };
        let moved: Vec<(RiderId, LatLng)> = moved.into_iter().collect();
        for chunk in moved.chunks(CHUNK) {
            let mut cmd = redis::cmd("GEOADD");
            cmd.arg(POSITIONS_KEY);
            for (id, at) in chunk {
                cmd.arg(at.lng).arg(at.lat).arg(id.to_string());
            }
            let mut conn = conn.clone();
            if let Err(error) = cmd.query_async::<()>(&mut conn).await {
                metrics::counter!("dabba_position_feed_errors_total").increment(1);
                tracing::warn!(%error, "rider positions not published to redis");
                return;
            }
        }
    }
}
