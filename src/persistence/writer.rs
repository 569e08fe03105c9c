//! The group-commit writer: one task that owns every durable write.
//!
//! Requests hand it a [`WriteUnit`] and wait for their own unit to commit. The writer takes the
//! first unit in its queue plus whatever else is queued (up to `max_batch`, waiting at most
//! `max_delay` for more) and commits them in one transaction, so many requests share one
//! fsync. Units are enqueued synchronously by [`Writer::submit`], so the order in which an
//! actor submits is the order in which its writes commit.
//!
//! When the database fails like an outage (connection lost, timeout), the writer marks the
//! store down: new writes fail at once with [`StoreError::Down`] (no request hangs), and a
//! probe retries with backoff until the database answers again.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{CommittedEvent, Placement, Store, StoreError, StoreResult, WriteUnit};

#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Most units in one transaction.
    pub max_batch: usize,
    /// How long to wait for more units once one is queued (zero: only what is already queued).
    pub max_delay: Duration,
    /// Units that may wait; beyond this, writes are refused with [`StoreError::Overloaded`].
    pub queue: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_delay: Duration::ZERO,
            queue: 16_384,
        }
    }
}

/// Receives events right after their transaction commits, before any waiting request is
/// answered (so a push never lags the reply that caused it).
pub trait EventSink: Send + Sync {
    fn committed(&self, events: &[CommittedEvent]);
}

/// Whether the store is taking writes.
#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
}

impl Health {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

type Reply = oneshot::Sender<StoreResult<Option<Placement>>>;

struct Job {
    unit: WriteUnit,
    done: Reply,
}

#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    health: Arc<Health>,
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
        });
        let task = run(store, config, sink, rx, health.clone());
        (Self { queue: tx, health }, task)
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Enqueues `unit` now; the returned future resolves once it is committed (or failed).
    pub fn submit(
        &self,
        unit: WriteUnit,
    ) -> impl Future<Output = StoreResult<Option<Placement>>> + use<> {
        let queued = if self.health.is_up() {
            let (done, rx) = oneshot::channel();
            match self.queue.try_send(Job { unit, done }) {
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
    if is_outage(e) {
        StoreError::Down
    } else {
        StoreError::Corrupt(e.to_string())
    }
}

async fn run(
    store: Store,
    config: WriterConfig,
    sink: Arc<dyn EventSink>,
    mut rx: mpsc::Receiver<Job>,
    health: Arc<Health>,
) {
    let max = config.max_batch.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        if config.max_delay.is_zero() {
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        } else {
            let deadline = tokio::time::Instant::now() + config.max_delay;
            while batch.len() < max {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    _ => break,
                }
            }
        }
        flush(&store, sink.as_ref(), &health, std::mem::take(&mut batch)).await;
        batch.reserve(max);
    }
}

async fn flush(store: &Store, sink: &dyn EventSink, health: &Arc<Health>, batch: Vec<Job>) {
    let (units, dones): (Vec<WriteUnit>, Vec<Reply>) =
        batch.into_iter().map(|j| (j.unit, j.done)).unzip();
    metrics::histogram!("dabba_writer_batch_units").record(units.len() as f64);
    let started = std::time::Instant::now();
    let result = store.apply_batch(&units).await;
    metrics::histogram!("dabba_writer_flush_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(outcome) => {
            sink.committed(&outcome.events);
            for (done, placement) in dones.into_iter().zip(outcome.placements) {
                let _ = done.send(Ok(placement));
            }
        }
        Err(e) if is_outage(&e) => {
            tracing::error!(error = %e, "storage outage: refusing writes until it answers");
            mark_down(store.clone(), health.clone());
            for done in dones {
                let _ = done.send(Err(StoreError::Down));
            }
        }
        Err(e) if units.len() > 1 => {
            // One bad unit must not fail the others: commit each on its own.
            tracing::warn!(error = %e, units = units.len(), "batch failed, retrying its units one by one");
            for (unit, done) in units.into_iter().zip(dones) {
                let one = store.apply_batch(std::slice::from_ref(&unit)).await;
                let _ = done.send(match one {
                    Ok(outcome) => {
                        sink.committed(&outcome.events);
                        Ok(outcome.placements.into_iter().next().flatten())
                    }
                    Err(e) => Err(for_waiter(&e)),
                });
            }
        }
        Err(e) => {
            for done in dones {
                let _ = done.send(Err(for_waiter(&e)));
            }
        }
    }
}

/// Marks the store down and probes it with backoff until it answers.
fn mark_down(store: Store, health: Arc<Health>) {
    if !health.up.swap(false, Ordering::AcqRel) {
        return; // a probe is already running
    }
    metrics::gauge!("dabba_store_up").set(0.0);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
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
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
}
