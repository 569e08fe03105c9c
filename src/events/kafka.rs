//! The optional Kafka copy of the log (`DABBA_KAFKA_BROKERS`): one topic per family, each
//! record keyed by its order id and sent to the partition that id hashes to, so one order's
//! events stay in one partition, in order.
//!
//! At least once: the cursor (`outbox_cursors`, `kafka`) moves only after the broker
//! acknowledged the page; after a crash between the two the page is produced again, and
//! consumers dedupe by the `event_id` header. A broker that is away holds nothing up: the
//! outbox keeps the events and the publisher catches up in order.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

use super::family::{Family, WireEvent};
use super::publisher::CursorSaver;
use super::tail::LogFeed;
use crate::persistence::writer::Writer;
use crate::persistence::{CommittedEvent, Store};

/// The publisher's name in `outbox_cursors`.
pub const CURSOR: &str = "kafka";
const PAGE: usize = 1_000;
const IDLE: Duration = Duration::from_millis(200);

#[derive(Clone, Debug)]
pub struct KafkaOptions {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Topics are `PREFIX.orders`, `PREFIX.riders`, …
    pub topic_prefix: String,
    /// Partitions of each topic it creates.
    pub partitions: i32,
}

pub fn topic(prefix: &str, family: Family) -> String {
    format!("{prefix}.{}", family.name())
}

/// The partition of an order: FNV-1a of its id, so every producer agrees without a lookup.
pub fn partition_of(order_id: uuid::Uuid, partitions: i32) -> i32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in order_id.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % partitions.max(1) as u64) as i32
}

pub struct KafkaPublisher {
    store: Store,
    writer: Writer,
    options: KafkaOptions,
    feed: LogFeed,
}

type Failure = String;

impl KafkaPublisher {
    pub fn new(store: Store, writer: Writer, options: KafkaOptions, feed: LogFeed) -> Self {
        Self {
            store,
            writer,
            options,
            feed,
        }
    }

    /// Runs for the life of the process.
    pub async fn run(self) {
        let (client, partitions) = self.connect().await;
        let mut producers: HashMap<(Family, i32), PartitionClient> = HashMap::new();
        let mut cursor = loop {
            match self.store.cursor(CURSOR).await {
                Ok(c) => break c,
                Err(error) => {
                    tracing::warn!(%error, "kafka publisher: cursor unreadable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut backoff = Duration::from_millis(100);
        let mut saver = CursorSaver::new(CURSOR, self.writer.clone(), cursor);
        let mut tail = self.feed.tail(self.store.clone(), cursor);
        // A page the broker refused, produced again before reading more.
        let mut unpublished: Vec<CommittedEvent> = Vec::new();
        loop {
            let page = if unpublished.is_empty() {
                match tail.next(PAGE, IDLE).await {
                    Ok(page) => page,
                    Err(error) => {
                        tracing::warn!(%error, "kafka publisher: outbox unreadable; retrying");
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
            match self
                .produce(&client, &partitions, &mut producers, &page)
                .await
            {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    cursor = last;
                    saver.maybe_save(cursor, false).await;
                }
                Err(error) => {
                    metrics::counter!("dabba_kafka_publish_errors_total").increment(1);
                    tracing::warn!(%error, retry_in = ?backoff, "kafka publisher: produce failed; retrying");
                    unpublished = page;
                    // Partition leaders may have moved: ask again.
                    producers.clear();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Connects and makes sure every family's topic exists; retries until the broker answers.
    async fn connect(&self) -> (Client, HashMap<Family, i32>) {
        loop {
            match self.try_connect().await {
                Ok(ready) => return ready,
                Err(error) => {
                    tracing::warn!(%error, "kafka publisher: broker unreachable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn try_connect(&self) -> Result<(Client, HashMap<Family, i32>), Failure> {
        let backoff = rskafka::BackoffConfig {
            deadline: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        let client = ClientBuilder::new(self.options.brokers.clone())
            .client_id("dabba")
            .backoff_config(backoff)
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let existing: HashMap<String, i32> = client
            .list_topics()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|t| (t.name, t.partitions.len() as i32))
            .collect();
        let controller = client.controller_client().map_err(|e| e.to_string())?;
        let mut partitions = HashMap::new();
        for family in Family::ALL {
            let name = topic(&self.options.topic_prefix, family);
            let count = match existing.get(&name) {
                Some(n) if *n > 0 => *n,
                _ => {
                    controller
                        .create_topic(&name, self.options.partitions, 1, 5_000)
                        .await
                        .or_else(|e| match e {
                            rskafka::client::error::Error::ServerError {
                                protocol_error:
                                    rskafka::client::error::ProtocolError::TopicAlreadyExists,
                                ..
                            } => Ok(()),
                            other => Err(other.to_string()),
                        })?;
                    self.options.partitions
                }
            };
            partitions.insert(family, count);
        }
        Ok((client, partitions))
    }

    /// Produces the page, partition by partition, each partition's records in log order.
    async fn produce(
        &self,
        client: &Client,
        partitions: &HashMap<Family, i32>,
        producers: &mut HashMap<(Family, i32), PartitionClient>,
        page: &[CommittedEvent],
    ) -> Result<(), Failure> {
        let mut batches: BTreeMap<(Family, i32), Vec<Record>> = BTreeMap::new();
        for c in page {
            let family = Family::of(c.event.kind);
            let count = partitions.get(&family).copied().unwrap_or(1);
            let partition = partition_of(c.event.order_id.0, count);
            batches
                .entry((family, partition))
                .or_default()
                .push(record(c)?);
        }
        let started = std::time::Instant::now();
        for ((family, partition), records) in batches {
            let n = records.len() as u64;
            let producer = match producers.entry((family, partition)) {
                Entry::Occupied(p) => p.into_mut(),
                Entry::Vacant(slot) => slot.insert(
                    client
                        .partition_client(
                            topic(&self.options.topic_prefix, family),
                            partition,
                            UnknownTopicHandling::Retry,
                        )
                        .await
                        .map_err(|e| e.to_string())?,
                ),
            };
            producer
                .produce(records, Compression::NoCompression)
                .await
                .map_err(|e| e.to_string())?;
            metrics::counter!("dabba_kafka_published_total", "family" => family.name())
                .increment(n);
        }
        metrics::histogram!("dabba_kafka_produce_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }
}

fn record(c: &CommittedEvent) -> Result<Record, Failure> {
    let wire = WireEvent::from(c);
    let value = serde_json::to_vec(&wire).map_err(|e| e.to_string())?;
    Ok(Record {
        key: Some(c.event.order_id.to_string().into_bytes()),
        value: Some(value),
        headers: BTreeMap::from([
            (
                "event_id".to_owned(),
                c.event.event_id.to_string().into_bytes(),
            ),
            ("kind".to_owned(), c.event.kind.as_bytes().to_vec()),
            ("seq".to_owned(), c.seq.to_string().into_bytes()),
        ]),
        timestamp: c.event.at,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_order_always_maps_to_the_same_partition() {
        let id = uuid::Uuid::new_v4();
        let p = super::partition_of(id, 3);
        assert!((0..3).contains(&p));
        assert_eq!(super::partition_of(id, 3), p);
        assert_eq!(super::partition_of(id, 1), 0);
    }
}
