//! The consumer runtime: hands each event of the families a [`Consumer`] follows to it, acks
//! after it handled the event, retries failures with exponential backoff and jitter without
//! holding up the events behind, and parks an event that keeps failing as a dead letter (its
//! error and attempt count) that ops can list and replay.
//!
//! A new consumer is one small file: a type implementing [`Consumer`], registered in
//! [`super::backbone`]. Where the events come from is the [`Source`]: a Redis consumer group
//! (several processes share the work; a dead process's messages are claimed by the others) or,
//! with no Redis, the outbox itself.
//!
//! Handlers must be idempotent by event id: the runtime skips events a group already handled
//! (Redis markers), but a process that dies between handling and acking hands the event on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::mpsc;

use super::family::{Family, WireEvent};
use super::sources::{Delivery, Source};
use crate::domain::Clock;
use crate::persistence::writer::Writer;
use crate::persistence::{CommittedEvent, DeadLetterRecord, Write, WriteUnit};

/// What handling one event yields: `Err` with a reason to retry it.
pub type Handling<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

pub trait Consumer: Send + Sync + 'static {
    /// The group's name: its Redis consumer group, outbox cursor and dead letters' `consumer`.
    fn name(&self) -> &'static str;
    /// The families it follows.
    fn families(&self) -> &'static [Family];
    fn handle<'a>(&'a self, event: &'a CommittedEvent) -> Handling<'a>;
}

/// How failures are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts before an event is parked as a dead letter.
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, up to `max_delay`, with jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A message pending this long with a consumer that stopped is claimed by another. Longer
    /// than `max_delay`, so a live consumer's own retries are never claimed from under it.
    pub claim_idle: Duration,
    /// A handler running longer than this failed.
    pub handle_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            claim_idle: Duration::from_secs(30),
            handle_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`: half the exponential delay plus up to as much
    /// again at random, so consumers that failed together do not retry together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        let half = exp / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

/// What a consumer did, for `/v1/ops/stats` and metrics.
#[derive(Default)]
pub struct ConsumerStats {
    pub handled: AtomicU64,
    pub retries: AtomicU64,
    pub dead_letters: AtomicU64,
    pub duplicates: AtomicU64,
    pub claimed: AtomicU64,
}

/// Events read per round.
const BATCH: usize = 100;
/// How often messages stuck with a stopped consumer are looked for.
const CLAIM_EVERY: Duration = Duration::from_secs(1);
/// How often the consumer's lag is measured.
const LAG_EVERY: Duration = Duration::from_secs(5);
/// The longest a round waits for new events.
const MAX_BLOCK: Duration = Duration::from_millis(500);

pub struct Runtime {
    consumer: Arc<dyn Consumer>,
    source: Source,
    policy: RetryPolicy,
    writer: Writer,
    /// Failed deliveries waiting for their next attempt.
    retries: Vec<(Instant, Delivery)>,
    replays: mpsc::Receiver<DeadLetterRecord>,
    stats: Arc<ConsumerStats>,
    clock: Clock,
    /// `dabba_consumer_handled_total` for this consumer, counted on every event.
    handled: metrics::Counter,
}

impl Runtime {
    pub fn new(
        consumer: Arc<dyn Consumer>,
        source: Source,
        policy: RetryPolicy,
        writer: Writer,
        replays: mpsc::Receiver<DeadLetterRecord>,
        stats: Arc<ConsumerStats>,
        clock: Clock,
    ) -> Self {
        // Registered after the recorder exists, or the handle would record nothing.
        let _ = crate::telemetry::metrics_handle();
        let handled =
            metrics::counter!("dabba_consumer_handled_total", "consumer" => consumer.name());
        Self {
            consumer,
            source,
            policy,
            writer,
            retries: Vec::new(),
            replays,
            stats,
            clock,
            handled,
        }
    }

    /// Runs until the task is dropped.
    pub async fn run(mut self) {
        let name = self.consumer.name();
        // Dead letters start at zero, so an alert on their increase sees the first one.
        metrics::counter!("dabba_consumer_dead_letters_total", "consumer" => name).increment(0);
        while let Err(error) = self.source.init().await {
            tracing::warn!(consumer = name, %error, "consumer cannot start yet; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut last_claim = Instant::now();
        let mut last_lag = Instant::now();
        loop {
            while let Ok(letter) = self.replays.try_recv() {
                self.replay(letter).await;
            }
            self.retry_due().await;
            if last_claim.elapsed() >= CLAIM_EVERY {
                last_claim = Instant::now();
                self.claim().await;
            }
            let block = self
                .retries
                .iter()
                .map(|(due, _)| due.saturating_duration_since(Instant::now()))
                .min()
                .unwrap_or(MAX_BLOCK)
                .clamp(Duration::from_millis(5), MAX_BLOCK);
            match self.source.read(BATCH, block).await {
                Ok(batch) => {
                    for delivery in batch {
                        self.deliver(delivery).await;
                    }
                }
                Err(error) => {
                    metrics::counter!("dabba_consumer_read_errors_total", "consumer" => name)
                        .increment(1);
                    tracing::warn!(consumer = name, %error, "consumer read failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            if last_lag.elapsed() >= LAG_EVERY {
                last_lag = Instant::now();
                if let Some(lag) = self.source.lag().await {
                    metrics::gauge!("dabba_consumer_lag", "consumer" => name).set(lag as f64);
                }
            }
        }
    }

    async fn retry_due(&mut self) {
        let now = Instant::now();
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.retries = waiting;
        for (_, delivery) in due {
            self.deliver(delivery).await;
        }
    }

    /// Takes over messages left pending by a consumer that stopped.
    async fn claim(&mut self) {
        let mine: Vec<String> = self.retries.iter().map(|(_, d)| d.entry.clone()).collect();
        match self.source.claim(self.policy.claim_idle, &mine).await {
            Ok(claimed) => {
                for delivery in claimed {
                    self.stats.claimed.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("dabba_consumer_claimed_total", "consumer" => self.consumer.name())
                        .increment(1);
                    self.deliver(delivery).await;
                }
            }
            Err(error) => tracing::warn!(consumer = self.consumer.name(), %error, "claim failed"),
        }
    }

    /// One attempt at one delivery.
    async fn deliver(&mut self, mut d: Delivery) {
        let name = self.consumer.name();
        if self.source.seen(d.event.event.event_id).await {
            self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            self.finish(&d).await;
            return;
        }
        d.attempts += 1;
        match self.attempt(&d.event).await {
            Ok(()) => {
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                self.handled.increment(1);
                self.finish(&d).await;
            }
            Err(error) if d.attempts >= self.policy.max_attempts => {
                match self.park(&d.event, &error, d.attempts).await {
                    Ok(()) => self.finish(&d).await,
                    // Not parked: keep it pending and try again later.
                    Err(why) => {
                        tracing::warn!(consumer = name, %why, "dead letter not stored; retrying");
                        self.retries
                            .push((Instant::now() + self.policy.max_delay, d));
                    }
                }
            }
            Err(error) => {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("dabba_consumer_retries_total", "consumer" => name).increment(1);
                tracing::debug!(consumer = name, %error, attempt = d.attempts, "event failed; will retry");
                let due = Instant::now() + self.policy.delay(d.attempts);
                self.retries.push((due, d));
            }
        }
    }

    async fn attempt(&self, event: &CommittedEvent) -> Result<(), String> {
        match tokio::time::timeout(self.policy.handle_timeout, self.consumer.handle(event)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "handler ran longer than {:?}",
                self.policy.handle_timeout
            )),
        }
    }

    async fn finish(&mut self, d: &Delivery) {
        if let Err(error) = self.source.done(d).await {
            // The message stays pending and is handed on again (and deduped).
            tracing::warn!(consumer = self.consumer.name(), %error, "ack failed");
        }
    }

    /// Stores the event as a dead letter (and mirrors it to the dead-letter stream).
    async fn park(
        &mut self,
        event: &CommittedEvent,
        error: &str,
        attempts: u32,
    ) -> Result<(), String> {
        let name = self.consumer.name();
        let wire = WireEvent::from(event);
        let record = DeadLetterRecord {
            id: uuid::Uuid::new_v4(),
            consumer: name.to_owned(),
            event_id: event.event.event_id,
            event_seq: event.seq,
            event: serde_json::to_string(&wire).map_err(|e| e.to_string())?,
            error: error.chars().take(2_000).collect(),
            attempts,
            at: self.clock.now(),
            replayed_at: None,
        };
        self.writer
            .submit(WriteUnit::one(Write::ParkDeadLetter(record.clone())))
            .await
            .map_err(|e| e.to_string())?;
        // Counted as soon as it is stored (listed), not after the mirror's round trip.
        self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("dabba_consumer_dead_letters_total", "consumer" => name).increment(1);
        self.source.mirror_dead_letter(&record).await;
        tracing::warn!(consumer = name, event_id = %event.event.event_id, attempts, error, "event parked as a dead letter");
        Ok(())
    }

    /// Hands a dead letter to the consumer once more: handled, it is marked replayed; failed,
    /// it is parked again with the new error.
    async fn replay(&mut self, letter: DeadLetterRecord) {
        let name = self.consumer.name();
        let event = serde_json::from_str::<WireEvent>(&letter.event)
            .map_err(|e| e.to_string())
            .and_then(CommittedEvent::try_from);
        let event = match event {
            Ok(e) => e,
            Err(error) => {
                tracing::error!(consumer = name, id = %letter.id, %error, "dead letter unreadable");
                return;
            }
        };
        match self.attempt(&event).await {
            Ok(()) => {
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                let unit = WriteUnit::one(Write::DeadLetterReplayed {
                    id: letter.id,
                    at: self.clock.now(),
                });
                self.writer
                    .submit_detached(unit, "dead letter replayed")
                    .await;
            }
            Err(error) => {
                if let Err(why) = self.park(&event, &error, 1).await {
                    tracing::warn!(consumer = name, %why, "replayed dead letter not parked again");
                }
            }
        }
    }
}
