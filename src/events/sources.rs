//! Where a consumer's events come from: a Redis consumer group over the family streams, or,
//! with no Redis (the embedded default), the outbox read directly with a cursor.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use super::family::{Family, WireEvent, entry_id, seq_of, stream_key};
use super::tail::{LogFeed, LogTail};
use crate::persistence::writer::Writer;
use crate::persistence::{CommittedEvent, DeadLetterRecord, Store, Write, WriteUnit};

/// One event handed to a consumer, and where it came from.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The stream the entry is in (empty for the outbox).
    pub stream: String,
    /// The entry id (the outbox sequence as a stream id).
    pub entry: String,
    pub event: CommittedEvent,
    /// Attempts so far in this process.
    pub attempts: u32,
}

pub enum Source {
    Redis(RedisGroup),
    Outbox(Box<OutboxCursor>),
}

impl Source {
    pub async fn init(&mut self) -> Result<(), String> {
        match self {
            Source::Redis(g) => g.init().await.map_err(|e| e.to_string()),
            Source::Outbox(o) => o.init().await,
        }
    }

    /// New events, waiting up to `block` for some.
    pub async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Delivery>, String> {
        match self {
            Source::Redis(g) => g.read(count, block).await.map_err(|e| e.to_string()),
            Source::Outbox(o) => o.read(count, block).await,
        }
    }

    /// Messages idle for `idle` with any consumer of the group, except the entries in `mine`.
    pub async fn claim(
        &mut self,
        idle: Duration,
        mine: &[String],
    ) -> Result<Vec<Delivery>, String> {
        match self {
            Source::Redis(g) => g.claim(idle, mine).await.map_err(|e| e.to_string()),
            // One process reads the outbox: nothing can be stuck with another.
            Source::Outbox(_) => Ok(Vec::new()),
        }
    }

    /// Whether the group already handled this event.
    pub async fn seen(&mut self, event_id: uuid::Uuid) -> bool {
        match self {
            Source::Redis(g) => g.seen(event_id).await,
            Source::Outbox(_) => false,
        }
    }

    /// Acknowledges a delivery (handled or parked).
    pub async fn done(&mut self, d: &Delivery) -> Result<(), String> {
        match self {
            Source::Redis(g) => g.done(d).await.map_err(|e| e.to_string()),
            Source::Outbox(o) => {
                o.done(d).await;
                Ok(())
            }
        }
    }

    pub async fn mirror_dead_letter(&mut self, record: &DeadLetterRecord) {
        if let Source::Redis(g) = self {
            g.mirror_dead_letter(record).await;
        }
    }

    /// Events not yet delivered to the group (Redis: the groups' `lag`; outbox: the log's
    /// head minus the cursor).
    pub async fn lag(&mut self) -> Option<i64> {
        match self {
            Source::Redis(g) => g.lag().await,
            Source::Outbox(o) => Some(o.lag()),
        }
    }
}

/// How long "already handled" markers are kept: past the streams' retention.
const SEEN_TTL_SECS: u64 = 2 * 24 * 3600;

/// A consumer group over the streams of its families.
pub struct RedisGroup {
    conn: ConnectionManager,
    prefix: String,
    group: &'static str,
    /// This process's name within the group.
    member: String,
    keys: Vec<String>,
}

impl RedisGroup {
    /// `conn` must be a connection of its own (reads block on it).
    pub fn new(
        conn: ConnectionManager,
        prefix: &str,
        group: &'static str,
        member: String,
        families: &[Family],
    ) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            group,
            member,
            keys: families.iter().map(|f| stream_key(prefix, *f)).collect(),
        }
    }

    /// Creates the group on each stream (from its first entry) unless it exists.
    async fn init(&mut self) -> redis::RedisResult<()> {
        for key in &self.keys {
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(key)
                .arg(self.group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut self.conn)
                .await;
            match created {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn read(&mut self, count: usize, block: Duration) -> redis::RedisResult<Vec<Delivery>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(self.group)
            .arg(&self.member)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis().max(1) as u64)
            .arg("STREAMS");
        for key in &self.keys {
            cmd.arg(key);
        }
        for _ in &self.keys {
            cmd.arg(">");
        }
        let reply: Option<StreamReadReply> = cmd.query_async(&mut self.conn).await?;
        let mut out = Vec::new();
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in stream.ids {
                if let Some(d) = self.decode(&stream.key, entry).await {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    async fn claim(
        &mut self,
        idle: Duration,
        mine: &[String],
    ) -> redis::RedisResult<Vec<Delivery>> {
        let mine: HashSet<&String> = mine.iter().collect();
        let mut out = Vec::new();
        for key in self.keys.clone() {
            let mut start = "0-0".to_owned();
            // Bounded: a few pages per round, the rest next round.
            for _ in 0..10 {
                let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                    .arg(&key)
                    .arg(self.group)
                    .arg(&self.member)
                    .arg(idle.as_millis() as u64)
                    .arg(&start)
                    .arg("COUNT")
                    .arg(100)
                    .query_async(&mut self.conn)
                    .await?;
                for entry in reply.claimed {
                    if mine.contains(&entry.id) {
                        continue;
                    }
                    if let Some(d) = self.decode(&key, entry).await {
                        out.push(d);
                    }
                }
                if reply.next_stream_id == "0-0" {
                    break;
                }
                start = reply.next_stream_id;
            }
        }
        Ok(out)
    }

    /// Decodes an entry; one that cannot be read is a bug in a publisher: acked and counted
    /// so it does not come back forever.
    async fn decode(&mut self, key: &str, entry: StreamId) -> Option<Delivery> {
        let fields: HashMap<String, String> = entry
            .map
            .iter()
            .filter_map(|(k, v)| {
                redis::from_redis_value_ref::<String>(v)
                    .ok()
                    .map(|v| (k.clone(), v))
            })
            .collect();
        let event = WireEvent::from_fields(&entry.id, &fields).and_then(CommittedEvent::try_from);
        match event {
            Ok(event) => Some(Delivery {
                stream: key.to_owned(),
                entry: entry.id,
                event,
                attempts: 0,
            }),
            Err(error) => {
                metrics::counter!("dabba_consumer_undecodable_total", "consumer" => self.group)
                    .increment(1);
                tracing::error!(group = self.group, entry = %entry.id, %error, "stream entry unreadable; acked");
                let _: redis::RedisResult<()> = redis::cmd("XACK")
                    .arg(key)
                    .arg(self.group)
                    .arg(&entry.id)
                    .query_async(&mut self.conn)
                    .await;
                None
            }
        }
    }

    /// The sum over its streams of the group's `lag` (entries not yet delivered to it).
    async fn lag(&mut self) -> Option<i64> {
        let mut total = 0;
        for key in self.keys.clone() {
            let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&key)
                .query_async(&mut self.conn)
                .await
                .ok()?;
            let lag = groups
                .iter()
                .find(|g| {
                    g.get("name")
                        .and_then(|n| redis::from_redis_value_ref::<String>(n).ok())
                        .is_some_and(|n| n == self.group)
                })
                .and_then(|g| g.get("lag"))
                .and_then(|l| redis::from_redis_value_ref::<i64>(l).ok())?;
            total += lag;
        }
        Some(total)
    }

    fn seen_key(&self, event_id: uuid::Uuid) -> String {
        format!("{}:seen:{}:{event_id}", self.prefix, self.group)
    }

    async fn seen(&mut self, event_id: uuid::Uuid) -> bool {
        let key = self.seen_key(event_id);
        redis::cmd("EXISTS")
            .arg(key)
            .query_async::<bool>(&mut self.conn)
            .await
            .unwrap_or(false)
    }

    /// Marks the event handled and acks it, atomically.
    async fn done(&mut self, d: &Delivery) -> redis::RedisResult<()> {
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.seen_key(d.event.event.event_id))
            .arg(1)
            .arg("EX")
            .arg(SEEN_TTL_SECS)
            .ignore()
            .cmd("XACK")
            .arg(&d.stream)
            .arg(self.group)
            .arg(&d.entry)
            .ignore()
            .query_async(&mut self.conn)
            .await
    }

    /// Copies a dead letter to the dead-letter stream, for tools outside dabba.
    async fn mirror_dead_letter(&mut self, r: &DeadLetterRecord) {
        let mirrored: redis::RedisResult<()> = redis::cmd("XADD")
            .arg(format!("{}:events:dead-letters", self.prefix))
            .arg("MAXLEN")
            .arg("~")
            .arg(100_000)
            .arg("*")
            .arg("consumer")
            .arg(&r.consumer)
            .arg("event_id")
            .arg(r.event_id.to_string())
            .arg("error")
            .arg(&r.error)
            .arg("attempts")
            .arg(r.attempts)
            .arg("event")
            .arg(&r.event)
            .query_async(&mut self.conn)
            .await;
        if let Err(error) = mirrored {
            tracing::warn!(%error, "dead letter not mirrored to its stream (it is stored)");
        }
    }
}

/// The outbox read directly: one process, a cursor, and the events in flight.
pub struct OutboxCursor {
    store: Store,
    writer: Writer,
    families: Vec<Family>,
    /// Where the cursor is saved; `None` starts at the log's beginning every run (a consumer
    /// that rebuilds its state from the retained log).
    durable: Option<&'static str>,
    /// The log from the cursor on (made at `init`, once the saved cursor is known).
    tail: Option<LogTail>,
    /// Take each commit as it lands instead of lingering (the WebSocket fan-out).
    eager: bool,
    /// Without a saved cursor, start at the events of this last stretch of time.
    window: Option<chrono::DateTime<chrono::Utc>>,
    /// The last sequence read.
    next: i64,
    /// Read but not yet done.
    in_flight: BTreeSet<i64>,
    saved: i64,
    saved_at: Instant,
    feed: LogFeed,
    head: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl OutboxCursor {
    pub fn new(
        store: Store,
        writer: Writer,
        families: &[Family],
        durable: Option<&'static str>,
        feed: LogFeed,
        head: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> Self {
        Self {
            store,
            writer,
            families: families.to_vec(),
            durable,
            tail: None,
            eager: false,
            window: None,
            next: 0,
            in_flight: BTreeSet::new(),
            saved: 0,
            saved_at: Instant::now(),
            feed,
            head,
        }
    }

    /// Without a saved cursor, starts at the events since `from` (not the whole log).
    pub fn window(mut self, from: chrono::DateTime<chrono::Utc>) -> Self {
        self.window = Some(from);
        self
    }

    /// Takes each commit as it lands (no linger).
    pub fn eager(mut self) -> Self {
        self.eager = true;
        self
    }

    async fn init(&mut self) -> Result<(), String> {
        if let Some(name) = self.durable {
            self.next = self.store.cursor(name).await.map_err(|e| e.to_string())?;
            self.saved = self.next;
        } else if let Some(from) = self.window {
            self.next = self
                .store
                .seq_before(from)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.tail = Some(if self.eager {
            self.feed.tail_eager(self.store.clone(), self.next)
        } else {
            self.feed.tail(self.store.clone(), self.next)
        });
        Ok(())
    }

    async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Delivery>, String> {
        let tail = self
            .tail
            .as_mut()
            .ok_or("the outbox cursor was not started")?;
        let page = tail.next(count, block).await.map_err(|e| e.to_string())?;
        if page.is_empty() {
            // Idle: the last events' cursor is saved now rather than with the next event.
            self.checkpoint().await;
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for event in page {
            self.next = event.seq;
            if self.families.contains(&Family::of(event.event.kind)) {
                self.in_flight.insert(event.seq);
                out.push(Delivery {
                    stream: String::new(),
                    entry: entry_id(event.seq),
                    event,
                    attempts: 0,
                });
            }
        }
        if out.is_empty() {
            self.checkpoint().await;
        }
        Ok(out)
    }

    async fn done(&mut self, d: &Delivery) {
        if let Some(seq) = seq_of(&d.entry) {
            self.in_flight.remove(&seq);
        }
        self.checkpoint().await;
    }

    /// Saves the cursor below the oldest event in flight, at most once a second.
    async fn checkpoint(&mut self) {
        let Some(name) = self.durable else { return };
        let safe = self.in_flight.first().map_or(self.next, |first| first - 1);
        if safe > self.saved && self.saved_at.elapsed() >= Duration::from_secs(1) {
            self.saved = safe;
            self.saved_at = Instant::now();
            let unit = WriteUnit::one(Write::SaveCursor {
                consumer: name,
                seq: safe,
            });
            self.writer.submit_detached(unit, "consumer cursor").await;
        }
    }

    fn lag(&self) -> i64 {
        ((self.head)() - self.next).max(0)
    }
}
