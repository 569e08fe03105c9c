//! Server configuration: flags, `DABBA_*` environment variables, defaults.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::actors::{DispatchTimings, EngineOptions};
use crate::api::limits::{Limits, Rate};
use crate::api::ws::SocketRules;
use crate::events::backbone::BackboneOptions;
use crate::events::consumer::RetryPolicy;
use crate::events::kafka::KafkaOptions;
use crate::persistence::writer::WriterConfig;
use crate::tokens::{Lifetimes, SecretArgs};

#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "DABBA_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// `postgres://…` for PostgreSQL, `sqlite://…` for SQLite; unset uses `$DABBA_DATA_DIR/dabba.db`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where the embedded SQLite database lives when `DATABASE_URL` is unset.
    #[arg(long, env = "DABBA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub secrets: SecretArgs,
    #[command(flatten)]
    pub lifetimes: Lifetimes,
    #[command(flatten)]
    pub events: EventArgs,
    #[command(flatten)]
    pub money: MoneyArgs,
    #[command(flatten)]
    pub desk: DeskArgs,
    /// Proxies whose `X-Forwarded-For` is believed: comma-separated addresses or CIDR ranges.
    #[arg(long, env = "DABBA_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Seconds a rider has to answer an offer.
    #[arg(long, env = "DABBA_OFFER_TIMEOUT_SECS", default_value_t = 30)]
    pub offer_timeout_secs: u64,
    /// Seconds an accepted order may wait for a rider before it ends `no_rider_found`.
    #[arg(long, env = "DABBA_DISPATCH_DEADLINE_SECS", default_value_t = 600)]
    pub dispatch_deadline_secs: u64,
    /// Seconds after every rider in range declined an order before they are asked again.
    #[arg(long, env = "DABBA_REDISPATCH_COOLDOWN_SECS", default_value_t = 120)]
    pub redispatch_cooldown_secs: u64,
    /// Delivery and dispatch radius in metres.
    #[arg(long, env = "DABBA_RADIUS_M", default_value_t = 5000.0)]
    pub radius_m: f64,
    /// Enables `POST /v1/test/clock` (never in production).
    #[arg(long, env = "DABBA_TEST_CLOCK", default_value_t = false, value_parser = parse_flag)]
    pub test_clock: bool,
    /// Most writes committed in one transaction by the group-commit writer (1: a transaction per write).
    #[arg(long, env = "DABBA_COMMIT_MAX_BATCH", default_value_t = 256)]
    pub commit_max_batch: usize,
    /// Microseconds the writer waits for more writes once one is queued (0: take what is queued).
    #[arg(long, env = "DABBA_COMMIT_DELAY_US", default_value_t = 0)]
    pub commit_delay_us: u64,
    /// Queued writes from which the next batch is staged while the last one commits (below:
    /// the commit finishes first, so fewer, larger batches; 0: always overlap).
    #[arg(long, env = "DABBA_COMMIT_OVERLAP_FROM", default_value_t = crate::persistence::writer::OVERLAP_FROM)]
    pub commit_overlap_from: usize,
    /// Placement latency (ms) the admission limit steers towards: above it, the limit on
    /// placements in flight shrinks and the excess gets `503 overloaded` at once.
    #[arg(long, env = "DABBA_ADMISSION_TARGET_MS", default_value_t = crate::actors::admission::TARGET_LATENCY.as_millis() as u64)]
    pub admission_target_ms: u64,
    /// Writes that may wait for the writer; beyond this, requests get 503 with Retry-After.
    #[arg(long, env = "DABBA_COMMIT_QUEUE", default_value_t = 16_384)]
    pub commit_queue: usize,
    /// Days orders are kept before the retention job removes them.
    #[arg(long, env = "DABBA_RETENTION_DAYS", default_value_t = 365)]
    pub retention_days: i64,
    /// Enables `POST /v1/ops/faults` to make actors fail (for supervision tests; never in production).
    #[arg(long, env = "DABBA_FAULT_INJECTION", default_value_t = false, value_parser = parse_flag)]
    pub fault_injection: bool,
    /// `redis://…`: rate-limit buckets shared in Redis; unset keeps them in-process.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Order writes per second per subject (bucket of 10× this).
    #[arg(long, env = "DABBA_RATE_WRITES_PER_SEC", default_value_t = 20.0)]
    pub rate_writes_per_sec: f64,
    /// Location updates per second per rider (bucket of 10× this).
    #[arg(long, env = "DABBA_RATE_LOCATION_PER_SEC", default_value_t = 10.0)]
    pub rate_location_per_sec: f64,
    /// Reads per second per subject (bucket of 10× this).
    #[arg(long, env = "DABBA_RATE_READS_PER_SEC", default_value_t = 100.0)]
    pub rate_reads_per_sec: f64,
    /// WebSocket handshakes per second per subject or address (bucket of 10× this).
    #[arg(long, env = "DABBA_RATE_WS_UPGRADES_PER_SEC", default_value_t = 2.0)]
    pub rate_ws_upgrades_per_sec: f64,
    /// Most WebSockets one subject (token) may hold open at once.
    #[arg(long, env = "DABBA_WS_MAX_PER_SUBJECT", default_value_t = 16)]
    pub ws_max_per_subject: u32,
    /// Most WebSockets one client address may hold open at once.
    #[arg(long, env = "DABBA_WS_MAX_PER_IP", default_value_t = 1_024)]
    pub ws_max_per_ip: u32,
    /// Seconds between pings; a socket whose pongs stop for two of these is closed.
    #[arg(long, env = "DABBA_WS_HEARTBEAT_SECS", default_value_t = 15)]
    pub ws_heartbeat_secs: u64,
    /// Seconds one push may wait to be written before the socket is closed as stuck.
    #[arg(long, env = "DABBA_WS_WRITE_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_write_timeout_secs: u64,
    /// Seconds a request body may take to arrive before the request is cut with `408`.
    #[arg(long, env = "DABBA_BODY_TIMEOUT_SECS", default_value_t = 10)]
    pub body_timeout_secs: u64,
    /// Most database connections the server opens.
    #[arg(long, env = "DABBA_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "DABBA_WORKERS")]
    pub workers: Option<usize>,
}

fn parse_flag(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(format!("expected 1/0 or true/false, got {other:?}")),
    }
}

/// Each bucket holds this many seconds of its rate: bursty apps (a screen opening, a retry
/// storm after a tunnel) pass, a script sending thousands a second does not.
const BURST_SECONDS: f64 = 10.0;

impl ServeConfig {
    /// The store URL, creating the data directory for the embedded default.
    pub fn store_url(&self) -> std::io::Result<String> {
        match &self.database_url {
            Some(url) => Ok(url.clone()),
            None => {
                std::fs::create_dir_all(&self.data_dir)?;
                Ok(format!(
                    "sqlite://{}",
                    self.data_dir.join("dabba.db").display()
                ))
            }
        }
    }

    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            writer: WriterConfig {
                max_batch: self.commit_max_batch.max(1),
                max_delay: Duration::from_micros(self.commit_delay_us),
                overlap_from: self.commit_overlap_from,
                queue: self.commit_queue.max(1),
                ..WriterConfig::default()
            },
            faults: self.fault_injection,
            retention: chrono::Duration::days(self.retention_days.max(1)),
            redis_url: self.redis_url.clone(),
            backbone: self.events.backbone(self.fault_injection),
            payout_period: chrono::Duration::seconds(self.money.payout_period_secs.max(1) as i64),
            admission_target: Duration::from_millis(self.admission_target_ms.max(1)),
            ..EngineOptions::default()
        }
    }

    pub fn limits(&self) -> Limits {
        let rate = |per_sec: f64, burst: f64| Rate {
            per_sec: per_sec.max(0.001),
            burst: (per_sec * burst).max(1.0),
        };
        Limits {
            writes: rate(self.rate_writes_per_sec, BURST_SECONDS),
            location: rate(self.rate_location_per_sec, BURST_SECONDS),
            reads: rate(self.rate_reads_per_sec, BURST_SECONDS),
            sockets: rate(self.rate_ws_upgrades_per_sec, BURST_SECONDS),
        }
    }

    pub fn sockets(&self) -> SocketRules {
        SocketRules {
            max_per_subject: self.ws_max_per_subject.max(1),
            max_per_ip: self.ws_max_per_ip.max(1),
            heartbeat: Duration::from_secs(self.ws_heartbeat_secs.max(1)),
            write_timeout: Duration::from_secs(self.ws_write_timeout_secs.max(1)),
        }
    }

    pub fn timings(&self) -> DispatchTimings {
        DispatchTimings {
            offer_timeout: Duration::from_secs(self.offer_timeout_secs),
            deadline: Duration::from_secs(self.dispatch_deadline_secs),
            redispatch_cooldown: Duration::from_secs(self.redispatch_cooldown_secs),
            ..DispatchTimings::default()
        }
    }
}

/// Restaurants as live parties: how long they have to answer, how much they hold.
#[derive(Args, Clone, Debug)]
pub struct DeskArgs {
    /// Seconds a restaurant has to accept or reject an order before it is rejected for it
    /// (`reject_reason: restaurant_timeout`, full refund).
    #[arg(long, env = "DABBA_RESTAURANT_TIMEOUT_SECS", default_value_t = 300)]
    pub restaurant_timeout_secs: u64,
    /// Most orders a restaurant holds at once, waiting for its answer or in its kitchen; a new
    /// order beyond it is `409 restaurant_busy`. 0: no limit.
    #[arg(long, env = "DABBA_RESTAURANT_CAPACITY", default_value_t = 0)]
    pub restaurant_capacity: usize,
    /// What happens to a new order beyond capacity: `refuse` (`409 restaurant_busy`) or
    /// `queue` (placed; the restaurant is asked, and its answer timeout starts, when room
    /// frees).
    #[arg(long, env = "DABBA_RESTAURANT_OVERFLOW", value_enum, default_value_t = Overflow::Refuse)]
    pub restaurant_overflow: Overflow,
    /// Assumed rider speed in km/h (great-circle), for ETAs and for when a scheduled order
    /// must start.
    #[arg(long, env = "DABBA_RIDER_SPEED_KMH", default_value_t = crate::domain::timing::DEFAULT_SPEED_KMH,
          value_parser = parse_speed)]
    pub rider_speed_kmh: f64,
}

/// Beyond a restaurant's capacity.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    Refuse,
    Queue,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let kmh: f64 = s.parse().map_err(|e| format!("{e}"))?;
    crate::domain::timing::Speed::from_kmh(kmh)
        .map(|_| kmh)
        .ok_or_else(|| "the speed must be a positive number of km/h".into())
}

impl Default for DeskArgs {
    fn default() -> Self {
        Self {
            restaurant_timeout_secs: 300,
            restaurant_capacity: 0,
            restaurant_overflow: Overflow::Refuse,
            rider_speed_kmh: crate::domain::timing::DEFAULT_SPEED_KMH,
        }
    }
}

/// Money: the gateways, the split of a delivered order, payout periods.
#[derive(Args, Clone, Debug)]
pub struct MoneyArgs {
    /// Payment gateways in fallback order, `DIALECT=URL,…` (dialects `paycore`, `razorpe`);
    /// unset runs the fake gateways in process.
    #[arg(long, env = "DABBA_GATEWAYS")]
    pub gateways: Option<String>,
    /// Milliseconds a gateway call may take before its outcome is unknown (then looked up).
    #[arg(long, env = "DABBA_GATEWAY_TIMEOUT_MS", default_value_t = 2_000)]
    pub gateway_timeout_ms: u64,
    /// Seconds an open circuit breaker refuses a gateway before a trial call.
    #[arg(long, env = "DABBA_GATEWAY_BREAKER_SECS", default_value_t = 10)]
    pub gateway_breaker_secs: u64,
    /// The platform's commission on a delivered order, in percent.
    #[arg(long, env = "DABBA_COMMISSION_PERCENT", default_value_t = 20, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub commission_percent: u8,
    /// The delivery fee per order in paise: the rider earns it, out of the commission (at most all of it).
    #[arg(long, env = "DABBA_DELIVERY_FEE_CENTS", default_value_t = 3_000)]
    pub delivery_fee_cents: u32,
    /// Length of a payout period in seconds (daily by default).
    #[arg(long, env = "DABBA_PAYOUT_PERIOD_SECS", default_value_t = 86_400)]
    pub payout_period_secs: u64,
}

impl Default for MoneyArgs {
    fn default() -> Self {
        Self {
            gateways: None,
            gateway_timeout_ms: 2_000,
            gateway_breaker_secs: 10,
            commission_percent: 20,
            delivery_fee_cents: 3_000,
            payout_period_secs: 86_400,
        }
    }
}

impl MoneyArgs {
    pub fn split(&self) -> crate::domain::ledger::Split {
        crate::domain::ledger::Split {
            commission_percent: self.commission_percent,
            rider_fee: crate::domain::Cents(i64::from(self.delivery_fee_cents)),
        }
    }

    pub fn pool(&self) -> crate::payments::PoolConfig {
        crate::payments::PoolConfig {
            breaker_cooloff: Duration::from_secs(self.gateway_breaker_secs),
            ..Default::default()
        }
    }

    /// The gateways (starting the fake ones in process when none are configured); must run
    /// inside an actix system.
    pub fn gateways(&self) -> anyhow::Result<crate::payments::Gateways> {
        let timeout = Duration::from_millis(self.gateway_timeout_ms.max(1));
        match &self.gateways {
            Some(spec) => crate::payments::from_spec(spec, timeout, self.pool()),
            None => crate::payments::in_process(timeout, self.pool()),
        }
    }
}

/// The event backbone: stream names, consumer retries, and the optional Kafka copy.
#[derive(Args, Clone, Debug)]
pub struct EventArgs {
    /// Prefix of the Redis stream keys (`PREFIX:events:orders`, …): one Redis, many deployments.
    #[arg(long, env = "DABBA_STREAM_PREFIX", default_value = "dabba")]
    pub stream_prefix: String,
    /// Attempts a consumer makes at an event before parking it as a dead letter.
    #[arg(long, env = "DABBA_CONSUMER_MAX_ATTEMPTS", default_value_t = 5)]
    pub consumer_max_attempts: u32,
    /// The first retry's delay in milliseconds (doubling, with jitter, up to 10 s).
    #[arg(long, env = "DABBA_CONSUMER_RETRY_BASE_MS", default_value_t = 100)]
    pub consumer_retry_base_ms: u64,
    /// Seconds a message may sit with a stopped consumer before another claims it.
    #[arg(long, env = "DABBA_CONSUMER_CLAIM_IDLE_SECS", default_value_t = 30)]
    pub consumer_claim_idle_secs: u64,
    /// Kafka bootstrap brokers (`host:port`, comma-separated): the log is also published there.
    #[arg(long, env = "DABBA_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Kafka topics are `PREFIX.orders`, `PREFIX.riders`, …
    #[arg(long, env = "DABBA_KAFKA_TOPIC_PREFIX", default_value = "dabba")]
    pub kafka_topic_prefix: String,
    /// Partitions of each Kafka topic dabba creates.
    #[arg(long, env = "DABBA_KAFKA_PARTITIONS", default_value_t = 3)]
    pub kafka_partitions: i32,
}

impl Default for EventArgs {
    fn default() -> Self {
        Self {
            stream_prefix: "dabba".into(),
            consumer_max_attempts: 5,
            consumer_retry_base_ms: 100,
            consumer_claim_idle_secs: 30,
            kafka_brokers: None,
            kafka_topic_prefix: "dabba".into(),
            kafka_partitions: 3,
        }
    }
}

impl EventArgs {
    pub fn backbone(&self, probe: bool) -> BackboneOptions {
        let policy = RetryPolicy {
            max_attempts: self.consumer_max_attempts.max(1),
            base_delay: Duration::from_millis(self.consumer_retry_base_ms.max(1)),
            claim_idle: Duration::from_secs(self.consumer_claim_idle_secs.max(1)),
            ..RetryPolicy::default()
        };
        BackboneOptions {
            redis_url: None,
            prefix: self.stream_prefix.clone(),
            policy: RetryPolicy {
                // A consumer's own retries end before another may claim its messages.
                max_delay: policy.max_delay.min(policy.claim_idle / 2),
                ..policy
            },
            probe,
            kafka: self
                .kafka_brokers
                .as_deref()
                .map(|list| KafkaOptions {
                    brokers: list
                        .split(',')
                        .map(str::trim)
                        .filter(|b| !b.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    topic_prefix: self.kafka_topic_prefix.clone(),
                    partitions: self.kafka_partitions.clamp(1, 1_000),
                })
                .filter(|k| !k.brokers.is_empty()),
            // The engine hands over its own clock.
            clock: Default::default(),
        }
    }
}
