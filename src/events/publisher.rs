//! The stream publisher: copies the outbox, in commit order, to one Redis stream per family.
//!
//! At least once, and in practice once: the publisher's cursor (`outbox_cursors`) moves only
//! after Redis acknowledged the entries, and entries are keyed by their outbox sequence, so
//! after a crash between the two the republished entries at or below a stream's last id are
//! skipped (and refused by Redis if they were not). Consumers still dedupe by event id.
//! Redis down: orders are still taken (the outbox holds the events) and the publisher retries
//! until it is back, then catches up in order.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;

use super::family::{Family, WireEvent, entry_id, seq_of, stream_key};
use super::tail::LogFeed;
use crate::persistence::writer::Writer;
use crate::persistence::{CommittedEvent, Store, Write, WriteUnit};

/// The publisher's name in `outbox_cursors`.
pub const CURSOR: &str = "redis_streams";
/// Events read from the outbox and published per round.
const PAGE: usize = 1_000;
/// How long an idle publisher sleeps when no commit wakes it.
const IDLE: Duration = Duration::from_millis(200);
/// How often a publisher that found its streams ahead of the log looks again.
const FOREIGN_RECHECK: Duration = Duration::from_secs(2);
/// How often stream lengths are measured.
const LENGTH_EVERY: Duration = Duration::from_secs(5);
/// Streams keep at least this much history (trimmed approximately beyond it).
pub const KEEP: chrono::Duration = chrono::Duration::hours(25);

/// Saves a publisher's cursor at most twice a second (and when it falls idle): a crash
/// republishes at most that much, which the streams skip or consumers dedupe, while a write
/// per published page would add a row to nearly every commit.
pub struct CursorSaver {
    name: &'static str,
    writer: Writer,
    saved: i64,
    saved_at: std::time::Instant,
}

impl CursorSaver {
    const EVERY: Duration = Duration::from_millis(500);

    pub fn new(name: &'static str, writer: Writer, saved: i64) -> Self {
        Self {
            name,
            writer,
            saved,
            saved_at: std::time::Instant::now(),
        }
    }

    /// Saves `cursor` if it moved and the last save is old enough (or `idle`).
    pub async fn maybe_save(&mut self, cursor: i64, idle: bool) {
        if cursor > self.saved && (idle || self.saved_at.elapsed() >= Self::EVERY) {
            self.saved = cursor;
            self.saved_at = std::time::Instant::now();
            let unit = WriteUnit::one(Write::SaveCursor {
                consumer: self.name,
                seq: cursor,
            });
            self.writer.submit_detached(unit, "publisher cursor").await;
        }
    }
}

/// The sequence the log had at each minute, so streams can be trimmed by age while their
/// entry ids are sequences.
#[derive(Default)]
pub struct Horizon {
    samples: VecDeque<(DateTime<Utc>, i64)>,
    floor: i64,
}

impl Horizon {
    /// Notes that `seq` was committed at `at` (one sample a minute is kept).
    pub fn note(&mut self, at: DateTime<Utc>, seq: i64) {
        let fresh = self
            .samples
            .back()
            .is_none_or(|(last, _)| at - *last >= chrono::Duration::minutes(1));
        if fresh {
            self.samples.push_back((at, seq));
        }
    }

    /// The lowest sequence to keep at `now`: entries below it are older than `keep`. Zero
    /// (trim nothing) until the process has seen that much history.
    pub fn floor(&mut self, now: DateTime<Utc>, keep: chrono::Duration) -> i64 {
        while let Some(&(at, seq)) = self.samples.front() {
            if now - at <= keep {
                break;
            }
            self.floor = self.floor.max(seq);
            self.samples.pop_front();
        }
        self.floor
    }
}

pub struct Publisher {
    store: Store,
    writer: Writer,
    redis: ConnectionManager,
    prefix: String,
    feed: LogFeed,
}

impl Publisher {
    pub fn new(
        store: Store,
        writer: Writer,
        redis: ConnectionManager,
        prefix: String,
        feed: LogFeed,
    ) -> Self {
        Self {
            store,
            writer,
            redis,
            prefix,
            feed,
        }
    }

    /// Runs for the life of the process.
    pub async fn run(self) {
        let mut horizon = Horizon::default();
        let mut tops: Option<HashMap<Family, i64>> = None;
        let mut backoff = Duration::from_millis(100);
        let mut measured = std::time::Instant::now();
        let mut cursor = loop {
            match self.store.cursor(CURSOR).await {
                Ok(c) => break c,
                Err(error) => {
                    tracing::warn!(%error, "stream publisher: cursor unreadable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut saver = CursorSaver::new(CURSOR, self.writer.clone(), cursor);
        let mut tail = self.feed.tail(self.store.clone(), cursor);
        // A page Redis refused, tried again before reading more.
        let mut unpublished: Vec<CommittedEvent> = Vec::new();
        loop {
            if measured.elapsed() >= LENGTH_EVERY {
                measured = std::time::Instant::now();
                self.measure_lengths().await;
            }
            let page = if unpublished.is_empty() {
                match tail.next(PAGE, IDLE).await {
                    Ok(page) => page,
                    Err(error) => {
                        tracing::warn!(%error, "stream publisher: outbox unreadable; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            } else {
                std::mem::take(&mut unpublished)
            };
            let Some(last) = page.last().map(|e| e.seq) else {
                saver.maybe_save(cursor, true).await;
                continue;
            };
            let known = match tops.take() {
                Some(t) => t,
                None => match self.stream_tops().await {
                    Ok(t) if self.foreign(&t, last.max(cursor)).await => {
                        unpublished = page;
                        tokio::time::sleep(FOREIGN_RECHECK).await;
                        continue;
                    }
                    Ok(t) => t,
                    Err(error) => {
                        unpublished = page;
                        self.failed(&error, &mut backoff).await;
                        continue;
                    }
                },
            };
            let mut trial = known.clone();
            match self.publish(&page, &mut trial, &mut horizon).await {
                Ok(()) => {
                    tops = Some(trial);
                    backoff = Duration::from_millis(100);
                    cursor = last;
                    saver.maybe_save(cursor, false).await;
                }
                // The tops are read again: Redis may have lost or refused part of the page.
                Err(error) => {
                    unpublished = page;
                    self.failed(&error, &mut backoff).await;
                }
            }
        }
    }

    /// Whether a stream is ahead of this database's log: its entries then came from another
    /// database (or from this one before it was restored from a backup), and this log's next
    /// events, numbered below the stream's top, would be taken for republished ones and
    /// skipped, lost to every consumer. Nothing is published until the stream is removed or
    /// `DABBA_STREAM_PREFIX` names fresh streams; the outbox keeps every event meanwhile.
    /// `reached` is the highest sequence this process has seen the log hold.
    async fn foreign(&self, tops: &HashMap<Family, i64>, reached: i64) -> bool {
        let end = match self.store.log_end().await {
            Ok(end) => end.unwrap_or(0).max(reached),
            // Unknown: the tops are read again with the next page.
            Err(_) => return true,
        };
        let mut foreign = false;
        for (family, top) in tops {
            let key = stream_key(&self.prefix, *family);
            let ahead = *top > end;
            metrics::gauge!("dabba_stream_foreign_log", "stream" => key.clone()).set(if ahead {
                1.0
            } else {
                0.0
            });
            if ahead {
                foreign = true;
                tracing::error!(
                    stream = %key,
                    stream_seq = top,
                    log_seq = end,
                    "the Redis stream is ahead of this database's event log: it was written from \
                     another database, or from this one before a restore. Nothing is published \
                     (the outbox keeps every event) until the stream is deleted or \
                     DABBA_STREAM_PREFIX names new streams"
                );
            }
        }
        foreign
    }

    async fn failed(&self, error: &redis::RedisError, backoff: &mut Duration) {
        metrics::counter!("dabba_stream_publish_errors_total").increment(1);
        tracing::warn!(%error, retry_in = ?*backoff, "stream publisher: redis refused; retrying");
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
    }

    /// Sets `dabba_stream_length{family}` from `XLEN`.
    async fn measure_lengths(&self) {
        let mut conn = self.redis.clone();
        for family in Family::ALL {
            let len: redis::RedisResult<u64> = redis::cmd("XLEN")
                .arg(stream_key(&self.prefix, family))
                .query_async(&mut conn)
                .await;
            if let Ok(len) = len {
                metrics::gauge!("dabba_stream_length", "family" => family.name()).set(len as f64);
            }
        }
    }

    /// Each stream's last entry id (as a sequence); 0 for a stream that does not exist.
    async fn stream_tops(&self) -> redis::RedisResult<HashMap<Family, i64>> {
        let mut tops = HashMap::new();
        let mut conn = self.redis.clone();
        for family in Family::ALL {
            let key = stream_key(&self.prefix, family);
            let exists: bool = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut conn)
                .await?;
            let top = if exists {
                let info: redis::streams::StreamInfoStreamReply = redis::cmd("XINFO")
                    .arg("STREAM")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await?;
                seq_of(&info.last_generated_id).unwrap_or(0)
            } else {
                0
            };
            tops.insert(family, top);
        }
        Ok(tops)
    }

    /// Adds the page's events not yet in their streams, in one pipeline, trimming by age.
    async fn publish(
        &self,
        page: &[CommittedEvent],
        tops: &mut HashMap<Family, i64>,
        horizon: &mut Horizon,
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        let mut added: Vec<(Family, &CommittedEvent)> = Vec::new();
        let now = page.last().map(|e| e.event.at).unwrap_or_else(Utc::now);
        for c in page {
            horizon.note(c.event.at, c.seq);
        }
        let floor = horizon.floor(now, KEEP);
        for c in page {
            let family = Family::of(c.event.kind);
            let top = tops.entry(family).or_insert(0);
            if c.seq <= *top {
                metrics::counter!("dabba_stream_republish_skipped_total").increment(1);
                continue;
            }
            *top = c.seq;
            let cmd = pipe.cmd("XADD").arg(stream_key(&self.prefix, family));
            if floor > 0 {
                cmd.arg("MINID").arg("~").arg(entry_id(floor));
            }
            cmd.arg(entry_id(c.seq));
            for (k, v) in WireEvent::from(c).fields() {
                cmd.arg(k).arg(v);
            }
            added.push((family, c));
        }
        if added.is_empty() {
            return Ok(());
        }
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await?;
        let wall = Utc::now();
        for (family, c) in added {
            metrics::counter!("dabba_stream_published_total", "family" => family.name())
                .increment(1);
            let lag = (wall - c.event.at).num_microseconds().unwrap_or(0).max(0);
            metrics::histogram!("dabba_stream_publish_lag_seconds").record(lag as f64 / 1e6);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_keeps_a_day_and_trims_by_age() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-26T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = Horizon::default();
        for minute in 0..(30 * 60) {
            h.note(t0 + chrono::Duration::minutes(minute), minute * 100 + 1);
        }
        // After 30 hours, entries older than 25 hours go: the floor is the sequence then.
        let now = t0 + chrono::Duration::hours(30);
        let floor = h.floor(now, KEEP);
        assert_eq!(floor, (5 * 60 - 1) * 100 + 1);
        // Nothing is trimmed before a day of history.
        let mut young = Horizon::default();
        young.note(t0, 1);
        assert_eq!(young.floor(t0 + chrono::Duration::hours(2), KEEP), 0);
    }
}
