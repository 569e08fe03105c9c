//! The engine's clock. Every timer and window reads it, so tests can move time instead of waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// Wall-clock time plus an offset that only the test-clock endpoint moves (it never goes back).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Millisecond precision: what the stores keep, so a reloaded time equals the live one.
    pub fn now(&self) -> DateTime<Utc> {
        let ms = Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::Relaxed);
        DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now)
    }

    /// Moves the engine's time forward; timers that fall due fire on the next dispatcher tick.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds().max(0), Ordering::Relaxed);
    }
}
