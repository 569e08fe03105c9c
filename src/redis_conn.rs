//! One way to connect to Redis, shared by the rate limiter and the position feed.

use std::time::Duration;

use redis::aio::ConnectionManager;

/// Connects to Redis with short timeouts (a slow Redis must not slow dispatch); `None` if it
/// does not answer within a few seconds.
pub async fn connect(url: &str) -> Option<ConnectionManager> {
    let manager = async {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1);
        ConnectionManager::new_with_config(client, config).await
    };
    tokio::time::timeout(Duration::from_secs(3), manager)
        .await
        .ok()?
        .ok()
}
