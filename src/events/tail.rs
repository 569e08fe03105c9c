//! Reading the log as it grows: a [`LogTail`] takes committed events straight from the relay
//! (no database read) once it has caught up, and reads the outbox only to catch up (at start,
//! or after falling so far behind that the in-memory feed dropped some).
//!
//! The seam is the one the resuming sockets use: the feed is subscribed before the first
//! outbox read, so an event committed before a read is in that read and one committed after it
//! comes through the feed; events at or below the last one returned are skipped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::persistence::{CommittedEvent, Store, StoreResult};

/// A live reader takes what accumulated over at least this long per round: on a busy server
/// a wake-up per commit would make the backbone's thread compete with the commit path for
/// the cores a few hundred times a second (Kafka producers call this `linger.ms`).
const LINGER: Duration = Duration::from_millis(20);
/// Commit batches the feed holds for a slow reader before it must catch up from the outbox.
const FEED_BATCHES: usize = 8_192;

/// The relay's side: every commit's events, once.
#[derive(Clone)]
pub struct LogFeed {
    sender: broadcast::Sender<Arc<[CommittedEvent]>>,
}

impl Default for LogFeed {
    fn default() -> Self {
        Self {
            sender: broadcast::Sender::new(FEED_BATCHES),
        }
    }
}

impl LogFeed {
    /// A feed holding `batches` commit batches for slow readers (tests use a small one).
    pub fn with_capacity(batches: usize) -> Self {
        Self {
            sender: broadcast::Sender::new(batches.max(1)),
        }
    }

    pub fn committed(&self, events: &[CommittedEvent]) {
        if !events.is_empty() {
            // No reader yet is fine: they start from the outbox.
            let _ = self.sender.send(Arc::from(events));
        }
    }

    /// A reader of the events after `after`, taking what accumulated over [`LINGER`].
    pub fn tail(&self, store: Store, after: i64) -> LogTail {
        self.tail_lingering(store, after, LINGER)
    }

    /// A reader that takes each commit as it lands (the WebSocket fan-out).
    pub fn tail_eager(&self, store: Store, after: i64) -> LogTail {
        self.tail_lingering(store, after, Duration::ZERO)
    }

    fn tail_lingering(&self, store: Store, after: i64, linger: Duration) -> LogTail {
        LogTail {
            linger,
            store,
            feed: self.sender.subscribe(),
            after,
            live: false,
            buffered: VecDeque::new(),
            last_round: std::time::Instant::now(),
        }
    }
}

pub struct LogTail {
    store: Store,
    feed: broadcast::Receiver<Arc<[CommittedEvent]>>,
    /// The last sequence returned.
    after: i64,
    /// Caught up: reading from the feed.
    live: bool,
    buffered: VecDeque<CommittedEvent>,
    last_round: std::time::Instant,
    linger: Duration,
}

impl LogTail {
    /// The last sequence returned.
    pub fn position(&self) -> i64 {
        self.after
    }

    /// Up to `limit` events after the last ones returned, oldest first, waiting up to `wait`
    /// for one when there are none.
    pub async fn next(&mut self, limit: usize, wait: Duration) -> StoreResult<Vec<CommittedEvent>> {
        let mut waited = false;
        // A few rounds at most: falling behind sends the next round to the outbox.
        for _ in 0..4 {
            if !self.live {
                let page = self.store.events_after(self.after, limit as i64).await?;
                if page.len() < limit {
                    // Everything committed before this read is in it; the rest is in the feed.
                    self.live = true;
                }
                if let Some(last) = page.last() {
                    self.after = last.seq;
                    metrics::counter!("dabba_log_tail_outbox_reads_total").increment(1);
                    return Ok(page);
                }
            }
            let since = self.last_round.elapsed();
            if since < self.linger {
                tokio::time::sleep(self.linger - since).await;
            }
            let out = self.take(limit);
            if !out.is_empty() || waited {
                self.last_round = std::time::Instant::now();
                return Ok(out);
            }
            if !self.live {
                continue;
            }
            waited = true;
            match tokio::time::timeout(wait, self.feed.recv()).await {
                Ok(Ok(batch)) => self.buffered.extend(batch.iter().cloned()),
                Ok(Err(RecvError::Lagged(_))) => self.fell_behind(),
                Ok(Err(RecvError::Closed)) => {
                    tokio::time::sleep(wait).await;
                    return Ok(Vec::new());
                }
                Err(_) => return Ok(Vec::new()),
            }
        }
        Ok(Vec::new())
    }

    /// Takes buffered and already-fed events, skipping what was returned before.
    fn take(&mut self, limit: usize) -> Vec<CommittedEvent> {
        let mut out = Vec::new();
        while out.len() < limit {
            if let Some(e) = self.buffered.pop_front() {
                if e.seq > self.after {
                    self.after = e.seq;
                    out.push(e);
                }
                continue;
            }
            match self.feed.try_recv() {
                Ok(batch) => self.buffered.extend(batch.iter().cloned()),
                Err(TryRecvError::Lagged(_)) => {
                    self.fell_behind();
                    break;
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        out
    }

    /// The feed dropped events this reader had not taken: catch up from the outbox.
    fn fell_behind(&mut self) {
        metrics::counter!("dabba_log_tail_lagged_total").increment(1);
        self.live = false;
        self.buffered.clear();
    }
}
