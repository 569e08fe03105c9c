//! What supervised actors share: counting restarts, telling ops, and backing off.
//!
//! `actix::Supervisor` restarts an actor that stops. Our actors stop themselves when a handler
//! fails unexpectedly (a panic caught at the boundary, an injected fault); on restart they
//! reload their state from the last committed snapshot, after a backoff that grows with
//! repeated failures so a crash loop cannot spin a core.

use std::time::{Duration, Instant};

use crate::events::hub::{Audience, Hub};
use crate::wire::ServerMessage;

/// Restart bookkeeping kept inside each supervised actor.
#[derive(Debug, Default)]
pub struct Restarts {
    count: u32,
    last: Option<Instant>,
}

impl Restarts {
    /// Records a restart and returns how long to wait before resuming.
    pub fn record(&mut self, hub: &Hub, kind: &'static str, id: String) -> Duration {
        // A quiet minute resets the streak.
        if self.last.is_some_and(|t| t.elapsed() > QUIET_RESETS_STREAK) {
            self.count = 0;
        }
        self.count += 1;
        self.last = Some(Instant::now());
        metrics::counter!("dabba_actor_restarts_total", "kind" => kind).increment(1);
        tracing::warn!(kind, %id, streak = self.count, "actor restarting from its last snapshot");
        hub.send(
            &[Audience::Ops],
            &ServerMessage::Supervision {
                actor: kind.into(),
                id,
                event: "restarted".into(),
            },
        );
        backoff(self.count)
    }
}

/// A restart streak ends after this long without a failure.
const QUIET_RESETS_STREAK: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// 0 ms for the first restart, then 50 ms doubling up to 5 s.
pub fn backoff(streak: u32) -> Duration {
    if streak <= 1 {
        return Duration::ZERO;
    }
    FIRST_BACKOFF
        .saturating_mul(1 << (streak - 2).min(7))
        .min(MAX_BACKOFF)
}

/// Runs `f`, turning a panic into `None` so a bug stops one actor, not its thread.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}
