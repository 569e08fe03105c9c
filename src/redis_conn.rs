//! One way to connect to Redis, shared by the rate limiter and the position feed.

use std::time::Duration;

use redis::aio::ConnectionManager;

/// Connects to Redis with short timeouts (a slow Redis must not slow dispatch); `None` if it
/// does not answer within a few seconds.
pub async fn connect(url: &str) -> Option<ConnectionManager> {
    connect_with(url, Duration::from_millis(500)).await
}

/// A connection of its own for callers whose commands take longer (a blocking stream read,
/// a pipeline of a thousand entries), so they never queue behind, or ahead of, quick ones.
pub async fn connect_with(url: &str, response_timeout: Duration) -> Option<ConnectionManager> {
    let manager = async {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(1);
        ConnectionManager::new_with_config(client, config).await
    };
    tokio::time::timeout(Duration::from_secs(3), manager)
        .await
        .ok()?
        .ok()
}
