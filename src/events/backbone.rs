//! The event backbone: starts the stream publisher (with Redis) and every consumer, and keeps
//! what the API needs of them (replaying dead letters, the consumers' figures, analytics).
//!
//! Adding a consumer: write a type implementing [`Consumer`] in its own file and start it
//! here with [`Backbone::consume`]; it gets a Redis consumer group when Redis is configured,
//! the outbox otherwise, and retries, dead letters and metrics from the runtime.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::ArbiterHandle;
use tokio::sync::mpsc;

use super::analytics::Analytics;
use super::consumer::{Consumer, ConsumerStats, RetryPolicy, Runtime};
use super::fanout::Fanout;
use super::hub::Hub;
use super::kafka::{KafkaOptions, KafkaPublisher};
use super::probe::Probe;
use super::publisher::Publisher;
use super::sources::{OutboxCursor, RedisGroup, Source};
use super::tail::LogFeed;
use crate::domain::Clock;
use crate::persistence::writer::Writer;
use crate::persistence::{DeadLetterRecord, Store};

#[derive(Clone, Debug)]
pub struct BackboneOptions {
    /// Redis: the streams, and the consumer groups of durable consumers.
    pub redis_url: Option<String>,
    /// Prefix of every stream key (one Redis can hold several deployments).
    pub prefix: String,
    pub policy: RetryPolicy,
    /// Start the fault-injection probe consumer (tests).
    pub probe: bool,
    /// Also publish the log to Kafka.
    pub kafka: Option<KafkaOptions>,
    /// The service's clock (the test clock when it is on): dead letters and the analytics
    /// rebuild window are in its time, like the events.
    pub clock: Clock,
}

impl Default for BackboneOptions {
    fn default() -> Self {
        Self {
            redis_url: None,
            prefix: "dabba".into(),
            policy: RetryPolicy::default(),
            probe: false,
            kafka: None,
            clock: Clock::default(),
        }
    }
}

/// How much of the log a consumer that keeps no cursor (analytics) reads at start.
const REBUILD_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// What the environment gives every consumer.
struct Context {
    options: BackboneOptions,
    store: Store,
    writer: Writer,
    hub: Hub,
    feed: LogFeed,
    arbiter: ArbiterHandle,
    /// The commit thread's arbiter: the fan-out runs there, so a commit's pushes go out
    /// without waking another thread.
    commit_arbiter: ArbiterHandle,
    /// This process's name within consumer groups: unique per run, so a restarted process's
    /// old pending messages are claimed like any stopped consumer's.
    member: String,
}

struct Registered {
    replays: mpsc::Sender<DeadLetterRecord>,
    stats: Arc<ConsumerStats>,
}

pub struct Backbone {
    consumers: BTreeMap<&'static str, Registered>,
    pub analytics: Arc<Analytics>,
    pub probe: Option<Arc<Probe>>,
}

/// The threads the backbone runs on: its own, and the commit thread (the fan-out).
pub struct Threads {
    pub backbone: ArbiterHandle,
    pub commit: ArbiterHandle,
}

/// Why a dead letter cannot be replayed.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplayRefused {
    /// No consumer of that name runs here.
    UnknownConsumer,
    /// Its consumer's replay queue is full.
    Busy,
}

impl Backbone {
    /// Starts the publishers and the consumers on `arbiter`, the fan-out on `commit_arbiter`.
    pub fn start(
        options: BackboneOptions,
        store: Store,
        writer: Writer,
        hub: Hub,
        feed: LogFeed,
        settlement: Arc<crate::payments::settle::Settlement>,
        threads: Threads,
    ) -> Self {
        let Threads {
            backbone: arbiter,
            commit: commit_arbiter,
        } = threads;
        let cx = Context {
            member: format!("dabba-{}", uuid::Uuid::new_v4().simple()),
            options,
            store,
            writer,
            hub,
            feed,
            arbiter,
            commit_arbiter,
        };
        if let Some(url) = cx.options.redis_url.clone() {
            let publisher = (
                cx.store.clone(),
                cx.writer.clone(),
                cx.options.prefix.clone(),
                cx.feed.clone(),
            );
            cx.arbiter.spawn(async move {
                let redis = connect_retrying(&url, Duration::from_secs(5)).await;
                let (store, writer, prefix, feed) = publisher;
                Publisher::new(store, writer, redis, prefix, feed)
                    .run()
                    .await;
            });
        }
        if let Some(kafka) = cx.options.kafka.clone() {
            let publisher =
                KafkaPublisher::new(cx.store.clone(), cx.writer.clone(), kafka, cx.feed.clone());
            cx.arbiter.spawn(publisher.run());
        }
        let mut backbone = Self {
            consumers: BTreeMap::new(),
            analytics: Arc::default(),
            probe: cx.options.probe.then(Arc::default),
        };
        // Every node pushes to its own sockets: the fan-out reads the log locally.
        backbone.consume(
            &cx,
            Arc::new(Fanout::new(cx.hub.clone())),
            Durability::Local,
        );
        // Analytics rebuilds its figures from the retained log at every start.
        backbone.consume(&cx, backbone.analytics.clone(), Durability::Rebuilt);
        // Payments: gateway operations the ledger asked for.
        backbone.consume(&cx, settlement, Durability::Group);
        if let Some(probe) = backbone.probe.clone() {
            backbone.consume(&cx, probe, Durability::Group);
        }
        backbone
    }

    fn consume(&mut self, cx: &Context, consumer: Arc<dyn Consumer>, durability: Durability) {
        let name = consumer.name();
        let families = consumer.families();
        let (replays, replay_rx) = mpsc::channel(1_024);
        let stats = Arc::new(ConsumerStats::default());
        let hub = cx.hub.clone();
        let cursor = |durable| {
            let hub = hub.clone();
            OutboxCursor::new(
                cx.store.clone(),
                cx.writer.clone(),
                families,
                durable,
                cx.feed.clone(),
                Arc::new(move || hub.head()),
            )
        };
        let outbox = |durable| Source::Outbox(Box::new(cursor(durable)));
        let outbox_eager = |name| Source::Outbox(Box::new(cursor(Some(name)).eager()));
        // A Redis group is connected on the backbone's thread (retrying until Redis answers).
        let source = match (durability, cx.options.redis_url.clone()) {
            (Durability::Group, Some(url)) => Pending::Redis(url),
            (Durability::Group, None) => Pending::Ready(Box::new(outbox(Some(name)))),
            (Durability::Rebuilt, _) => Pending::Ready(Box::new(Source::Outbox(Box::new(
                cursor(None).window(cx.options.clock.now() - REBUILD_WINDOW),
            )))),
            (Durability::Local, _) => Pending::Ready(Box::new(outbox_eager(name))),
        };
        let (prefix, member) = (cx.options.prefix.clone(), cx.member.clone());
        let runtime = {
            let (policy, writer, stats) = (cx.options.policy, cx.writer.clone(), stats.clone());
            let clock = cx.options.clock.clone();
            move |source| Runtime::new(consumer, source, policy, writer, replay_rx, stats, clock)
        };
        let on = match durability {
            Durability::Local => &cx.commit_arbiter,
            Durability::Group | Durability::Rebuilt => &cx.arbiter,
        };
        on.spawn(async move {
            let source = match source {
                Pending::Redis(url) => {
                    let conn = connect_retrying(&url, Duration::from_secs(5)).await;
                    Source::Redis(RedisGroup::new(conn, &prefix, name, member, families))
                }
                Pending::Ready(source) => *source,
            };
            runtime(source).run().await;
        });
        self.consumers.insert(name, Registered { replays, stats });
    }

    /// Hands a dead letter back to its consumer (asynchronously).
    pub fn replay(&self, letter: DeadLetterRecord) -> Result<(), ReplayRefused> {
        let registered = self
            .consumers
            .get(letter.consumer.as_str())
            .ok_or(ReplayRefused::UnknownConsumer)?;
        registered
            .replays
            .try_send(letter)
            .map_err(|_| ReplayRefused::Busy)
    }

    /// Each consumer's counters.
    pub fn consumers(&self) -> Vec<(&'static str, &ConsumerStats)> {
        self.consumers
            .iter()
            .map(|(name, r)| (*name, r.stats.as_ref()))
            .collect()
    }
}

/// Where a consumer keeps its place.
#[derive(Clone, Copy)]
enum Durability {
    /// A Redis consumer group (or a saved outbox cursor without Redis).
    Group,
    /// Nowhere: it reads the retained log from its beginning at every start.
    Rebuilt,
    /// A saved outbox cursor, never a Redis group (every node must see every event), and no
    /// linger.
    Local,
}

/// A consumer's source before its task runs.
enum Pending {
    Ready(Box<Source>),
    Redis(String),
}

/// Connects, retrying every second until Redis answers.
async fn connect_retrying(url: &str, response_timeout: Duration) -> redis::aio::ConnectionManager {
    loop {
        if let Some(conn) = crate::redis_conn::connect_with(url, response_timeout).await {
            return conn;
        }
        tracing::warn!("event backbone: redis unreachable; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
