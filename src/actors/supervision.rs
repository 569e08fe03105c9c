//! What supervised actors share: counting restarts, telling ops, and backing off.
//!
//! `actix::Supervisor` restarts an actor that stops. Our actors stop themselves when a handler
//! fails unexpectedly (a panic caught at the boundary, an injected fault); on restart they
//! reload their state from the last committed snapshot, after a backoff that grows with
//! repeated failures so a crash loop cannot spin a core.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::events::hub::{Audience, Hub};
use crate::wire::ServerMessage;

/// The kinds of supervised actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind {
    Order,
    Restaurant,
    Dispatcher,
}

impl ActorKind {
    pub const ALL: [ActorKind; 3] = [
        ActorKind::Order,
        ActorKind::Restaurant,
        ActorKind::Dispatcher,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Order => "order",
            ActorKind::Restaurant => "restaurant",
            ActorKind::Dispatcher => "dispatcher",
        }
    }
}

/// The last failure of an actor of a kind.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Failure {
    /// The actor's id (the order's or restaurant's id, or `dispatcher`).
    pub id: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct KindBook {
    restarts: AtomicU64,
    last_failure: Mutex<Option<Failure>>,
    /// Requests waiting for (or being handled by) actors of the kind right now, and the most
    /// there have been at once.
    in_flight: AtomicI64,
    most_in_flight: AtomicI64,
}

/// Per kind of actor: restarts, the last failure, and the requests in their mailboxes. Actix
/// does not expose a mailbox's length, so the engine counts the requests it sends (and awaits)
/// on its request paths: what a slow actor makes callers wait on.
#[derive(Debug, Default)]
pub struct ActorBook {
    kinds: [KindBook; 3],
}

/// What the book says of one kind.
#[derive(Clone, Debug, PartialEq)]
pub struct KindFigures {
    pub restarts: u64,
    pub last_failure: Option<Failure>,
    pub in_flight: i64,
    pub most_in_flight: i64,
}

impl ActorBook {
    fn of(&self, kind: ActorKind) -> &KindBook {
        &self.kinds[kind as usize]
    }

    fn failed(&self, kind: ActorKind, id: String, at: DateTime<Utc>) {
        let book = self.of(kind);
        book.restarts.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = book.last_failure.lock() {
            *last = Some(Failure { id, at });
        }
    }

    /// A request is on its way to an actor of `kind`; dropping the guard marks it answered.
    pub fn enter(&self, kind: ActorKind) -> InFlight<'_> {
        let book = self.of(kind);
        let now = book.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        book.most_in_flight.fetch_max(now, Ordering::Relaxed);
        // Two atomics on the request path; the gauge is set when `/metrics` is scraped.
        InFlight { book }
    }

    pub fn figures(&self, kind: ActorKind) -> KindFigures {
        let book = self.of(kind);
        KindFigures {
            restarts: book.restarts.load(Ordering::Relaxed),
            last_failure: book.last_failure.lock().ok().and_then(|l| l.clone()),
            in_flight: book.in_flight.load(Ordering::Relaxed),
            most_in_flight: book.most_in_flight.load(Ordering::Relaxed),
        }
    }
}

/// One request in an actor's mailbox (see [`ActorBook::enter`]).
pub struct InFlight<'a> {
    book: &'a KindBook,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.book.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Restart bookkeeping kept inside each supervised actor.
#[derive(Debug, Default)]
pub struct Restarts {
    count: u32,
    last: Option<Instant>,
}

impl Restarts {
    /// Records a restart (and the failure that caused it) and returns how long to wait before
    /// resuming.
    pub fn record(
        &mut self,
        (hub, book): (&Hub, &ActorBook),
        actor: ActorKind,
        id: String,
        at: DateTime<Utc>,
    ) -> Duration {
        let kind = actor.as_str();
        book.failed(actor, id.clone(), at);
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
