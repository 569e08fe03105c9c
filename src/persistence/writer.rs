//! The group-commit writer: one task that owns every durable write.
//!
//! Requests hand it a [`WriteUnit`] and wait for their own unit to commit. The writer takes the
//! first unit in its queue plus whatever else is queued (up to `max_batch`, waiting at most
//! `max_delay` for more) and commits them in one transaction, so many requests share one
//! fsync. Units are enqueued synchronously by [`Writer::submit`], so the order in which an
//! actor submits is the order in which its writes commit.
//!
//! When the database fails like an outage (connection lost), the writer marks the store down:
//! new writes fail at once with [`StoreError::Down`] (no request hangs), and a probe retries
//! with backoff until the database answers again. A commit that is merely slow (the database
//! still answers a ping) is overload, not an outage.
//!
//! Overload is decided by queueing *time*: new work ([`Writer::submit_new`], placements) is
//! refused at once with [`StoreError::Overloaded`] while writes wait longer than
//! `max_queue_wait` to start, and new work that waited longer than that is refused instead of
//! committed (its client is better served by a fast 503 and a retry). Writes that finish work
//! already accepted (commands on orders, dispatch state) are never shed. A wait counts only
//! with a backlog behind it (`shed_from` units queued): a lone write delayed by a scheduling
//! hiccup or one slow commit is committed, since refusing it would free nothing for anyone.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use std::collections::VecDeque;

use super::{BatchOutcome, CommittedEvent, Store, StoreError, StoreResult, UnitOutcome, WriteUnit};

/// Default [`WriterConfig::overlap_from`].
pub const OVERLAP_FROM: usize = 32;
/// Default [`WriterConfig::shed_from`]: at light load a stall leaves a unit or two queued.
pub const SHED_FROM: usize = 8;

#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Most units in one transaction.
    pub max_batch: usize,
    /// How long to wait for more units once one is queued (zero: only what is already queued).
    pub max_delay: Duration,
    /// Queued units from which the next batch is staged while the previous one commits. Below
    /// it the writer lets the commit finish first, so a lightly loaded writer sends fewer,
    /// larger batches (0: always stage beside the commit in flight).
    pub overlap_from: usize,
    /// Units that may wait; beyond this, writes are refused with [`StoreError::Overloaded`].
    pub queue: usize,
    /// New work waiting longer than this to start is refused (and so is new work arriving
    /// while writes wait this long).
    pub max_queue_wait: Duration,
    /// Units queued from which a long wait is congestion; below it nothing is shed.
    pub shed_from: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_delay: Duration::ZERO,
            overlap_from: OVERLAP_FROM,
            queue: 16_384,
            max_queue_wait: Duration::from_millis(100),
            shed_from: SHED_FROM,
        }
    }
}

/// Receives events right after their transaction commits, before any waiting request is
/// answered (so a push never lags the reply that caused it).
pub trait EventSink: Send + Sync {
    fn committed(&self, events: &[CommittedEvent]);
}

/// Whether the store is taking writes, and how congested the queue is.
#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
    /// How long the oldest unit of the latest batch waited to start (µs); zero once the
    /// queue has drained.
    queue_wait_us: AtomicU64,
}

impl Health {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn queue_wait(&self) -> Duration {
        Duration::from_micros(self.queue_wait_us.load(Ordering::Relaxed))
    }

    fn set_queue_wait(&self, wait: Duration) {
        let us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.queue_wait_us.store(us, Ordering::Relaxed);
    }
}

type Reply = oneshot::Sender<StoreResult<UnitOutcome>>;

struct Job {
    unit: WriteUnit,
    done: Reply,
    queued_at: Instant,
    /// New work, which may be refused under overload.
    sheddable: bool,
}

#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    health: Arc<Health>,
    max_queue_wait: Duration,
}

impl Writer {
    /// The writer and the task to spawn that runs it.
    pub fn new(
        store: Store,
        config: WriterConfig,
        sink: Arc<dyn EventSink>,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let health = Arc::new(Health {
            up: AtomicBool::new(true),
            queue_wait_us: AtomicU64::new(0),
        });
        let max_queue_wait = config.max_queue_wait;
        // The store answered when it was opened; refusals start at zero for each reason.
        metrics::gauge!("dabba_store_up").set(1.0);
        for reason in ["congested", "full", "down"] {
            metrics::counter!("dabba_writer_rejected_total", "reason" => reason).increment(0);
        }
        let task = run(store, config, sink, rx, health.clone());
        let writer = Self {
            queue: tx,
            health,
            max_queue_wait,
        };
        (writer, task)
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Enqueues `unit` now; the returned future resolves once it is committed (or failed).
    pub fn submit(
        &self,
        unit: WriteUnit,
    ) -> impl Future<Output = StoreResult<UnitOutcome>> + use<> {
        self.enqueue(unit, false)
    }

    /// Like [`Writer::submit`] for new work (a placement): refused at once while the queue is
    /// congested, and refused rather than committed if it waited too long.
    pub fn submit_new(
        &self,
        unit: WriteUnit,
    ) -> impl Future<Output = StoreResult<UnitOutcome>> + use<> {
        self.enqueue(unit, true)
    }

    fn enqueue(
        &self,
        unit: WriteUnit,
        sheddable: bool,
    ) -> impl Future<Output = StoreResult<UnitOutcome>> + use<> {
        let congested = sheddable && self.health.queue_wait() > self.max_queue_wait;
        let queued = if congested {
            metrics::counter!("dabba_writer_rejected_total", "reason" => "congested").increment(1);
            Err(StoreError::Overloaded)
        } else if self.health.is_up() {
            let (done, rx) = oneshot::channel();
            let job = Job {
                unit,
                done,
                queued_at: Instant::now(),
                sheddable,
            };
            match self.queue.try_send(job) {
                Ok(()) => Ok(rx),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    metrics::counter!("dabba_writer_rejected_total", "reason" => "full")
                        .increment(1);
                    Err(StoreError::Overloaded)
                }
                Err(mpsc::error::TrySendError::Closed(_)) => Err(StoreError::Down),
            }
        } else {
            metrics::counter!("dabba_writer_rejected_total", "reason" => "down").increment(1);
            Err(StoreError::Down)
        };
        async move {
            match queued {
                Ok(rx) => rx.await.unwrap_or(Err(StoreError::Down)),
                Err(e) => Err(e),
            }
        }
    }

    /// Resolves once everything submitted before it is committed (the queue is FIFO).
    pub fn flushed(&self) -> impl Future<Output = StoreResult<()>> + use<> {
        let barrier = self.submit(WriteUnit::default());
        async move { barrier.await.map(|_| ()) }
    }

    /// Submits and logs a failure instead of returning it (for writes no request waits on).
    pub fn submit_detached(
        &self,
        unit: WriteUnit,
        what: &'static str,
    ) -> impl Future<Output = ()> + use<> {
        let done = self.submit(unit);
        async move {
            if let Err(error) = done.await {
                tracing::error!(%error, what, "background write failed");
            }
        }
    }
}

/// Errors that mean "the database is unreachable", as opposed to a bad write.
fn is_outage(e: &StoreError) -> bool {
    match e {
        StoreError::Timeout | StoreError::Down => true,
        StoreError::Unavailable(sqlx::Error::Database(db)) => {
            // 57P01..57P03: the server is shutting down or cannot accept connections.
            db.code()
                .is_some_and(|c| c.starts_with("57") || c.starts_with("08"))
        }
        StoreError::Unavailable(_) => true,
        _ => false,
    }
}

/// A copy of an error for every waiter of a failed batch.
fn for_waiter(e: &StoreError) -> StoreError {
    match e {
        _ if is_outage(e) => StoreError::Down,
        StoreError::LostGuard(why) => StoreError::LostGuard(why.clone()),
        StoreError::Overloaded => StoreError::Overloaded,
        StoreError::Unconfirmed => StoreError::Unconfirmed,
        other => StoreError::Corrupt(other.to_string()),
    }
}

/// A batch whose COMMIT is in flight.
struct Committing {
    commit: tokio::task::JoinHandle<StoreResult<BatchOutcome>>,
    units: Vec<WriteUnit>,
    dones: Vec<Reply>,
}

/// The writer loop. Busy (at least `overlap_from` units queued), it is a two-stage pipeline:
/// while batch N's COMMIT (and fsync) is in flight, batch N+1's writes are already running on
/// another connection. Lightly loaded, it lets N commit first: staging a unit or two beside
/// every commit meant a third more transactions and ~13 % more PostgreSQL CPU at 300 orders/s,
/// with no better placement latency (BENCHMARKS.md). Commit order is
/// still queue order: N+1 commits only after N has, and N's events are handed on and its
/// requests answered first. N+1's statements wait on any row lock N holds, so they see N.
/// A batch of rows only commits as it is staged on PostgreSQL (one statement, no `BEGIN`
/// or `COMMIT` round trip): it is staged only once no commit is in flight.
async fn run(
    store: Store,
    config: WriterConfig,
    sink: Arc<dyn EventSink>,
    mut rx: mpsc::Receiver<Job>,
    health: Arc<Health>,
) {
    let max = config.max_batch.max(1);
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut inflight: Option<Committing> = None;
    loop {
        if pending.is_empty() {
            // Drained: nothing waits, so new work is welcome again.
            health.set_queue_wait(Duration::ZERO);
            let job = match inflight.as_mut() {
                Some(c) => tokio::select! {
                    job = rx.recv() => job,
                    done = &mut c.commit => {
                        if let Some(c) = inflight.take() {
                            settle(&store, sink.as_ref(), &health, done, c.units, c.dones).await;
                        }
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            match job {
                Some(job) => pending.push_back(job),
                None => break,
            }
        }
        if pending.len() < config.overlap_from
            && let Some(c) = inflight.take()
        {
            let done = c.commit.await;
            settle(&store, sink.as_ref(), &health, done, c.units, c.dones).await;
        }
        gather(&mut rx, &mut pending, max, config.max_delay).await;
        let take = pending.len().min(max);
        let backlog = pending.len() >= config.shed_from;
        let batch = shed_stale(
            pending.drain(..take),
            &health,
            config.max_queue_wait,
            backlog,
        );
        if batch.is_empty() {
            continue;
        }
        let requeue: Vec<(Instant, bool)> =
            batch.iter().map(|j| (j.queued_at, j.sheddable)).collect();
        let (units, dones): (Vec<WriteUnit>, Vec<Reply>) =
            batch.into_iter().map(|j| (j.unit, j.done)).unzip();
        if !health.is_up() {
            fail_all(dones, || StoreError::Down);
            continue;
        }
        metrics::histogram!("dabba_writer_batch_units").record(units.len() as f64);
        // A batch that commits as it is written may not overtake the commit in flight.
        if store.commits_as_staged(&units)
            && let Some(c) = inflight.take()
        {
            let done = c.commit.await;
            settle(&store, sink.as_ref(), &health, done, c.units, c.dones).await;
        }
        let started = std::time::Instant::now();
        let staged = store.stage_batch(&units).await;
        if let Some(prev) = inflight.take() {
            let done = prev.commit.await;
            if !matches!(done, Ok(Ok(_))) {
                // Roll this batch back before dealing with the failed one (it may hold row
                // locks the retries need), then stage it again.
                drop(staged);
                settle(&store, sink.as_ref(), &health, done, prev.units, prev.dones).await;
                let jobs = units.into_iter().zip(dones).zip(requeue);
                for ((unit, done), (queued_at, sheddable)) in jobs.rev() {
                    pending.push_front(Job {
                        unit,
                        done,
                        queued_at,
                        sheddable,
                    });
                }
                continue;
            }
            settle(&store, sink.as_ref(), &health, done, prev.units, prev.dones).await;
        }
        match staged {
            Ok(staged) => {
                let commit = tokio::spawn(async move {
                    let committed = staged.commit().await;
                    metrics::histogram!("dabba_writer_flush_seconds")
                        .record(started.elapsed().as_secs_f64());
                    committed
                });
                inflight = Some(Committing {
                    commit,
                    units,
                    dones,
                });
            }
            Err(e) => recover(&store, sink.as_ref(), &health, e, units, dones).await,
        }
    }
    if let Some(c) = inflight.take() {
        let done = c.commit.await;
        settle(&store, sink.as_ref(), &health, done, c.units, c.dones).await;
    }
}

/// Records how long the batch's oldest unit waited and, with a `backlog` queued, refuses the
/// new work that waited longer than `max_wait` (overloaded: its client gets a fast 503 instead
/// of a late 2xx). Without one the wait is not congestion: nothing is refused, and new work
/// stays welcome.
fn shed_stale(
    jobs: impl Iterator<Item = Job>,
    health: &Health,
    max_wait: Duration,
    backlog: bool,
) -> Vec<Job> {
    let now = Instant::now();
    let mut oldest = Duration::ZERO;
    let mut kept = Vec::new();
    for job in jobs {
        let waited = now.saturating_duration_since(job.queued_at);
        oldest = oldest.max(waited);
        if backlog && job.sheddable && waited > max_wait {
            metrics::counter!("dabba_writer_rejected_total", "reason" => "waited").increment(1);
            let _ = job.done.send(Err(StoreError::Overloaded));
        } else {
            kept.push(job);
        }
    }
    health.set_queue_wait(if backlog { oldest } else { Duration::ZERO });
    metrics::histogram!("dabba_writer_queue_wait_seconds").record(oldest.as_secs_f64());
    kept
}

/// Adds whatever else is queued (waiting up to `max_delay` for more) to `pending`.
async fn gather(
    rx: &mut mpsc::Receiver<Job>,
    pending: &mut VecDeque<Job>,
    max: usize,
    max_delay: Duration,
) {
    if max_delay.is_zero() {
        while pending.len() < max {
            match rx.try_recv() {
                Ok(job) => pending.push_back(job),
                Err(_) => break,
            }
        }
        return;
    }
    let deadline = tokio::time::Instant::now() + max_delay;
    while pending.len() < max {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(job)) => pending.push_back(job),
            _ => break,
        }
    }
}

/// Answers the requests of a finished commit: events first, then the replies.
async fn settle(
    store: &Store,
    sink: &dyn EventSink,
    health: &Arc<Health>,
    done: Result<StoreResult<BatchOutcome>, tokio::task::JoinError>,
    units: Vec<WriteUnit>,
    dones: Vec<Reply>,
) {
    match done {
        Ok(Ok(outcome)) => {
            sink.committed(&outcome.events);
            for (done, result) in dones.into_iter().zip(outcome.units) {
                let _ = done.send(Ok(result));
            }
        }
        Ok(Err(e)) => recover(store, sink, health, e, units, dones).await,
        Err(_) => recover(store, sink, health, StoreError::Down, units, dones).await,
    }
}

fn fail_all(dones: Vec<Reply>, error: impl Fn() -> StoreError) {
    for done in dones {
        let _ = done.send(Err(error()));
    }
}

/// A batch failed: on an outage, fail it and mark the store down; otherwise commit each unit
/// on its own so that one bad unit does not fail the others.
async fn recover(
    store: &Store,
    sink: &dyn EventSink,
    health: &Arc<Health>,
    e: StoreError,
    units: Vec<WriteUnit>,
    dones: Vec<Reply>,
) {
    if matches!(e, StoreError::Timeout) && answers(store).await {
        // The database answers: the commit was slow (CPU starvation, a long batch), not lost.
        // The units' fate is unknown to us, so say overloaded and let the clients retry.
        tracing::warn!("a commit timed out while the database answers: overloaded, not down");
        metrics::counter!("dabba_writer_rejected_total", "reason" => "slow").increment(1);
        fail_all(dones, || StoreError::Unconfirmed);
        return;
    }
    if is_outage(&e) {
        tracing::error!(error = %e, "storage outage: refusing writes until it answers");
        mark_down(store.clone(), health.clone());
        fail_all(dones, || StoreError::Down);
        return;
    }
    if units.len() == 1 {
        fail_all(dones, || for_waiter(&e));
        return;
    }
    tracing::warn!(error = %e, units = units.len(), "batch failed, retrying its units one by one");
    for (unit, done) in units.into_iter().zip(dones) {
        let _ = done.send(match store.apply_batch(std::slice::from_ref(&unit)).await {
            Ok(outcome) => {
                sink.committed(&outcome.events);
                Ok(outcome
                    .units
                    .into_iter()
                    .next()
                    .unwrap_or(UnitOutcome::Applied))
            }
            Err(e) => Err(for_waiter(&e)),
        });
    }
}

/// How soon, and at most how rarely, a down store is probed.
const PROBE_FIRST_BACKOFF: Duration = Duration::from_millis(100);
const PROBE_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long a slow store has to answer a ping before a timeout counts as an outage.
const PING_PATIENCE: Duration = Duration::from_secs(1);

async fn answers(store: &Store) -> bool {
    matches!(
        tokio::time::timeout(PING_PATIENCE, store.ping()).await,
        Ok(Ok(()))
    )
}

/// Marks the store down and probes it with backoff until it answers.
fn mark_down(store: Store, health: Arc<Health>) {
    if !health.up.swap(false, Ordering::AcqRel) {
        return; // a probe is already running
    }
    metrics::gauge!("dabba_store_up").set(0.0);
    tokio::spawn(async move {
        let mut backoff = PROBE_FIRST_BACKOFF;
        loop {
            tokio::time::sleep(backoff).await;
            match store.ping().await {
                Ok(()) => {
                    health.up.store(true, Ordering::Release);
                    metrics::gauge!("dabba_store_up").set(1.0);
                    tracing::info!("storage is back: taking writes again");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "storage still unavailable");
                    backoff = (backoff * 2).min(PROBE_MAX_BACKOFF);
                }
            }
        }
    });
}
