//! `dabba load`: drives a running server through its public API the way real apps do, and
//! reports latency per flow from HDR histograms.
//!
//! Riders hold WebSockets, stream positions and answer offers; restaurants answer new orders
//! from their sockets; customers place orders at a fixed rate *open-loop* (a slow server
//! cannot slow the arrivals down and hide its latency), and cancel or change a share of them.
//! Everything runs on one thread of the caller's actix system; tokens are minted locally from
//! `DABBA_JWT_SECRET`.

mod parties;
mod report;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{StreamExt, TryStreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use dabba::client::{Client, Tokens};
use dabba::tokens::{Lifetimes, Role, SecretArgs};
use parties::{SimRider, customer_order, restaurant, rider};
use report::{FLOWS, Flow, Shared, State, Summary, print_table, progress, summarise, svg_plot};

#[derive(clap::Args, Clone, Debug)]
pub struct LoadConfig {
    /// The server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// How long to place orders, e.g. `30s`, `2m`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Riders on WebSockets.
    #[arg(long, default_value_t = 200)]
    pub riders: usize,
    /// Riders registered, placed and available but without a socket (the idle fleet, e.g.
    /// for measuring memory per rider): they take no offers' answers, so offers to them time out.
    #[arg(long, default_value_t = 0)]
    pub idle_riders: usize,
    #[arg(long, default_value_t = 50)]
    pub restaurants: usize,
    #[arg(long, default_value_t = 200)]
    pub customers: usize,
    /// Order placements per second (open loop).
    #[arg(long, default_value_t = 20.0)]
    pub orders_per_sec: f64,
    /// Time between a rider's position updates, e.g. `5s`, `500ms`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub location_interval: Duration,
    /// Share of offers riders accept.
    #[arg(long, default_value_t = 0.8)]
    pub accept_ratio: f64,
    /// Riders' and restaurants' think time before answering.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub think_time: Duration,
    /// Share of orders cancelled a little after placement.
    #[arg(long, default_value_t = 0.05)]
    pub cancel_ratio: f64,
    /// Share of orders whose delivery address changes.
    #[arg(long, default_value_t = 0.05)]
    pub update_ratio: f64,
    /// How customers pay: `card`, `upi` and `wallet` go through the payment gateways, `cash`
    /// does not.
    #[arg(long, default_value = "card")]
    pub payment: String,
    /// Side of the square city, in km.
    #[arg(long, default_value_t = 10.0)]
    pub city_km: f64,
    /// Most request connections open at once (sockets are extra); requests beyond wait.
    #[arg(long, default_value_t = 2_048)]
    pub max_connections: usize,
    /// Same seed, same workload.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Write the summary as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a latency-over-time plot (SVG) and the summary here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The server's signing secret (default: the one generated in its data directory).
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// The server's data directory, where its generated secret lives.
    #[arg(long, env = "DABBA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// `30s`, `2m`, `500ms`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1_000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3_600.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Requests and socket handshakes in flight while setting up.
const SETUP_CONCURRENCY: usize = 64;
/// How long a simulated party waits for one answer before counting an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A point in the square city around Bengaluru.
fn city_point(rng: &mut StdRng, km: f64) -> (f64, f64) {
    let half = km / 2.0 / 111.195;
    (
        12.9716 + rng.random_range(-half..half),
        77.5946 + rng.random_range(-half..half),
    )
}

/// Runs the workload and returns the summary (also printed, and written with `--json`).
pub async fn run(cfg: LoadConfig) -> anyhow::Result<Summary> {
    let tokens = Tokens(cfg.secrets.keys(&cfg.data_dir, Lifetimes::default())?);
    let ops = tokens.mint(Role::Ops, &Uuid::new_v4().to_string())?;
    // Never EMFILE: the generator raises its own open-file limit and caps request connections
    // (an overloaded server otherwise makes it open one per request in flight).
    dabba::limits_os::raise_open_files();
    let client = Client::with_request_connections(&cfg.url, CALL_TIMEOUT, cfg.max_connections);
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let health = client
        .call("GET", "/healthz", Some(&ops), None)
        .await
        .context("is the server running?")?;
    anyhow::ensure!(health.ok(), "server not healthy: {}", health.status);

    eprintln!(
        "dabba load: registering {} restaurants, {} riders (+{} idle), {} customers",
        cfg.restaurants, cfg.riders, cfg.idle_riders, cfg.customers
    );
    // Points and seeds are drawn in a fixed order before anything runs concurrently, so the
    // same seed gives the same city whatever order the server answers in.
    let restaurant_points: Vec<(f64, f64)> = (0..cfg.restaurants)
        .map(|_| city_point(&mut rng, cfg.city_km))
        .collect();
    let restaurants: Vec<(String, (f64, f64))> =
        futures_util::stream::iter(restaurant_points.into_iter().enumerate())
            .map(|(i, at)| {
                let (client, ops) = (client.clone(), ops.clone());
                async move {
                    let id = client
                        .add_restaurant(&ops, &format!("Load {i}"), at)
                        .await?;
                    anyhow::Ok((id, at))
                }
            })
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await?;
    let customers: Vec<String> = futures_util::stream::iter(0..cfg.customers)
        .map(|i| {
            let (client, ops, tokens) = (client.clone(), ops.clone(), tokens.clone());
            async move {
                let email = format!("load{i}@example.in");
                let id = client
                    .add_customer(&ops, &format!("Load {i}"), &email)
                    .await?;
                tokens.mint(Role::Customer, &id)
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    let rider_plans: Vec<((f64, f64), u64)> = (0..cfg.riders + cfg.idle_riders)
        .map(|_| (city_point(&mut rng, cfg.city_km), rng.random()))
        .collect();
    let riders: Vec<(String, String, (f64, f64), u64)> = futures_util::stream::iter(rider_plans)
        .map(|(at, seed)| {
            let (client, ops, tokens) = (client.clone(), ops.clone(), tokens.clone());
            async move {
                let id = client.add_rider(&ops, "Load rider").await?;
                let token = tokens.mint(Role::Rider, &id)?;
                client.rider_online(&id, &token, at).await?;
                anyhow::Ok((id, token, at, seed))
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    let state: Shared = Rc::new(RefCell::new(State {
        start: Instant::now(),
        flows: FLOWS.iter().map(|f| (*f, Flow::new())).collect(),
        accepted_at: HashMap::new(),
        ws_open: 0,
        moving: true,
        stop: false,
    }));
    eprintln!(
        "dabba load: opening {} websockets",
        cfg.restaurants + cfg.riders
    );
    let restaurant_sockets: Vec<_> = futures_util::stream::iter(&restaurants)
        .map(|(id, _)| {
            let (client, tokens) = (client.clone(), tokens.clone());
            async move {
                let token = tokens.mint(Role::Restaurant, id)?;
                let socket = client.socket(&token).await?;
                anyhow::Ok((id.clone(), token, socket))
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    for (id, token, socket) in restaurant_sockets {
        actix_rt::spawn(restaurant(
            client.clone(),
            state.clone(),
            id,
            token,
            socket,
            cfg.think_time,
        ));
    }
    let mut rider_sockets = futures_util::stream::iter(riders.into_iter().take(cfg.riders))
        .map(|(id, token, at, seed)| {
            let client = client.clone();
            async move {
                let socket = client.socket(&token).await?;
                anyhow::Ok((id, token, at, seed, socket))
            }
        })
        .buffered(SETUP_CONCURRENCY);
    while let Some(opened) = rider_sockets.next().await {
        let (id, token, start, seed, socket) = opened?;
        let me = SimRider {
            id,
            token,
            start,
            seed,
        };
        actix_rt::spawn(rider(
            client.clone(),
            state.clone(),
            me,
            socket,
            cfg.clone(),
        ));
    }
    drop(rider_sockets);
    let ingested_before = client.metric(&ops, "dabba_location_updates_total").await;
    // Let the sockets open before the clock starts.
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    state.borrow_mut().start = Instant::now();

    let interval = Duration::from_secs_f64(1.0 / cfg.orders_per_sec.max(0.01));
    let started = Instant::now();
    let mut next = started;
    let mut last_progress = Instant::now();
    while started.elapsed() < cfg.duration {
        if cfg.orders_per_sec <= 0.0 {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
            progress(&state, started.elapsed(), cfg.duration);
            continue;
        }
        next += interval;
        let (rid, (lat, lng)) = restaurants[rng.random_range(0..restaurants.len())].clone();
        let customer = customers[rng.random_range(0..customers.len())].clone();
        let dlat = rng.random_range(-0.02..0.02);
        let body = json!({
            "restaurant_id": rid,
            "items": dabba::client::thalis(rng.random_range(1..4)),
            "payment": {"method": cfg.payment},
            "delivery": {"location": {"lat": lat + dlat, "lng": lng + dlat}, "address": "Load St"}
        });
        let (cancel, update) = (
            rng.random_bool(cfg.cancel_ratio),
            rng.random_bool(cfg.update_ratio),
        );
        actix_rt::spawn(customer_order(
            client.clone(),
            state.clone(),
            customer,
            body,
            cancel,
            update,
        ));
        if last_progress.elapsed() >= Duration::from_millis(500) {
            last_progress = Instant::now();
            progress(&state, started.elapsed(), cfg.duration);
        }
        let now = Instant::now();
        if next > now {
            actix_rt::time::sleep(next - now).await;
        }
    }
    progress(&state, cfg.duration, cfg.duration);
    eprintln!();
    let elapsed = started.elapsed().as_secs_f64();
    state.borrow_mut().moving = false;
    let ingested_after = client.metric(&ops, "dabba_location_updates_total").await;
    // Let in-flight requests land before summarising.
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    let mut summary = summarise(&state.borrow(), elapsed, cfg.seed);
    if let (Some(before), Some(after)) = (ingested_before, ingested_after) {
        let n = (after - before).max(0.0);
        summary.server_location_updates = Some(n as u64);
        summary.server_location_updates_per_s = Some(n / elapsed);
    }
    state.borrow_mut().stop = true;
    print_table(&summary);
    if let Some(path) = &cfg.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &cfg.report {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("summary.json"),
            serde_json::to_vec_pretty(&summary)?,
        )?;
        std::fs::write(dir.join("latency.svg"), svg_plot(&state.borrow()))?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
