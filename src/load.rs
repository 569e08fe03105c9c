//! `dabba load`: drives a running server through its public API the way real apps do, and
//! reports latency per flow from HDR histograms.
//!
//! Riders hold WebSockets, stream positions and answer offers; restaurants answer new orders
//! from their sockets; customers place orders at a fixed rate *open-loop* (a slow server
//! cannot slow the arrivals down and hide its latency), and cancel or change a share of them.
//! Everything runs on one thread of the caller's actix system; tokens are minted locally from
//! `DABBA_JWT_SECRET`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_codec::Framed;
use anyhow::Context as _;
use awc::ws;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::auth::{Keys, Role};

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
    /// Side of the square city, in km.
    #[arg(long, default_value_t = 10.0)]
    pub city_km: f64,
    /// Same seed, same workload.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Write the summary as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a latency-over-time plot (SVG) and the summary here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[arg(
        long,
        env = "DABBA_JWT_SECRET",
        default_value = "dabba-dev-secret",
        hide_env_values = true
    )]
    pub secret: String,
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

const FLOWS: [&str; 6] = [
    "place_order",
    "restaurant_accept",
    "offer_delivery",
    "offer_accept",
    "location_update",
    "push",
];

/// Latencies of one flow, in microseconds, plus a per-second series for the plot.
struct Flow {
    hist: Histogram<u64>,
    errors: u64,
    /// (second since start, p99 ms of that second)
    series: Vec<Histogram<u64>>,
}

impl Flow {
    fn new() -> Self {
        // 1 µs .. 60 s at 3 significant digits: fixed bounds, so `record` cannot fail.
        Self {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            errors: 0,
            series: Vec::new(),
        }
    }

    fn record(&mut self, second: usize, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, 60_000_000);
        let _ = self.hist.record(us);
        while self.series.len() <= second {
            self.series
                .push(Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid bounds"));
        }
        let _ = self.series[second].record(us);
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct FlowSummary {
    pub count: u64,
    pub errors: u64,
    pub rate_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct Summary {
    pub duration_s: f64,
    pub flows: std::collections::BTreeMap<String, FlowSummary>,
    pub ws_connections_held: u64,
    /// Location updates the server counted (`dabba_location_updates_total`) during the run,
    /// and their rate: what was ingested, not just what was sent.
    pub server_location_updates: Option<u64>,
    pub server_location_updates_per_s: Option<f64>,
    pub seed: u64,
}

struct State {
    start: Instant,
    flows: HashMap<&'static str, Flow>,
    /// When the restaurant's accept was sent, per order: the start of `offer_delivery`.
    accepted_at: HashMap<String, Instant>,
    ws_open: u64,
    /// Riders stream positions while true (the open-loop phase).
    moving: bool,
    stop: bool,
}

type Shared = Rc<RefCell<State>>;

impl State {
    fn record(&mut self, flow: &'static str, latency: Duration) {
        let second = self.start.elapsed().as_secs() as usize;
        if let Some(f) = self.flows.get_mut(flow) {
            f.record(second, latency);
        }
    }

    fn error(&mut self, flow: &'static str) {
        if let Some(f) = self.flows.get_mut(flow) {
            f.errors += 1;
        }
    }
}

#[derive(Clone)]
struct Api {
    base: String,
    client: awc::Client,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let req = self
            .client
            .request(method.parse()?, format!("{}{}", self.base, path))
            .insert_header(("Authorization", format!("Bearer {token}")));
        let mut resp = match body {
            Some(b) => req.send_json(b).await,
            None => req.send().await,
        }
        .map_err(|e| anyhow::anyhow!("{method} {path}: {e}"))?;
        let bytes = resp.body().limit(1 << 20).await?;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((resp.status().as_u16(), v))
    }

    /// Calls and records the latency under `flow`; transport failures, 5xx and 429 are errors.
    async fn timed(
        &self,
        state: &Shared,
        flow: &'static str,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Option<Value> {
        let t = Instant::now();
        match self.call(method, path, token, body).await {
            Ok((status, v)) if (200..300).contains(&status) => {
                state.borrow_mut().record(flow, t.elapsed());
                Some(v)
            }
            // The workload races itself (a customer cancels while the restaurant accepts):
            // the server refusing is the right answer, not an error.
            Ok((404 | 409 | 422, _)) => None,
            _ => {
                state.borrow_mut().error(flow);
                None
            }
        }
    }

    async fn socket(&self, token: &str) -> anyhow::Result<Socket> {
        let url = format!(
            "{}/v1/ws?token={token}",
            self.base.replacen("http", "ws", 1)
        );
        let (_, socket) = self
            .client
            .ws(url)
            .max_frame_size(1 << 20)
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("websocket: {e}"))?;
        Ok(socket)
    }
}

type Socket = Framed<awc::BoxedSocket, ws::Codec>;

/// Requests and socket handshakes in flight while setting up.
const SETUP_CONCURRENCY: usize = 64;

/// Reads one counter from the server's `/metrics` (None if absent or unreachable).
async fn server_counter(api: &Api, token: &str, name: &str) -> Option<f64> {
    let req = api
        .client
        .get(format!("{}/metrics", api.base))
        .insert_header(("Authorization", format!("Bearer {token}")));
    let mut resp = req.send().await.ok()?;
    let body = resp.body().limit(16 << 20).await.ok()?;
    std::str::from_utf8(&body).ok()?.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        rest.trim().parse().ok()
    })
}

fn id_of(v: &Value) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .context("response without an id")
}

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
    let keys = Keys::new(&cfg.secret);
    let ops = keys.mint(Role::Ops, Uuid::new_v4(), chrono::Duration::days(1));
    let api = Api {
        base: cfg.url.trim_end_matches('/').to_owned(),
        // Every socket holds a connection: awc's default cap of 100 would starve requests.
        client: awc::Client::builder()
            .connector(awc::Connector::new().limit(0))
            .timeout(Duration::from_secs(30))
            .finish(),
    };
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let (status, _) = api
        .call("GET", "/healthz", &ops, None)
        .await
        .context("is the server running?")?;
    anyhow::ensure!(status == 200, "server not healthy: {status}");

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
            .map(|(i, (lat, lng))| {
                let (api, ops) = (api.clone(), ops.clone());
                async move {
                    let body =
                        json!({"name": format!("Load {i}"), "location": {"lat": lat, "lng": lng}});
                    let (_, r) = api
                        .call("POST", "/v1/restaurants", &ops, Some(&body))
                        .await?;
                    anyhow::Ok((id_of(&r)?, (lat, lng)))
                }
            })
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await?;
    let customers: Vec<String> = futures_util::stream::iter(0..cfg.customers)
        .map(|i| {
            let (api, ops, keys) = (api.clone(), ops.clone(), keys.clone());
            async move {
                let body = json!({"name": format!("Load {i}"), "phone": "+91 90000 00000", "email": format!("load{i}@example.in")});
                let (_, c) = api.call("POST", "/v1/customers", &ops, Some(&body)).await?;
                anyhow::Ok(keys.mint(Role::Customer, id_of(&c)?.parse()?, chrono::Duration::days(1)))
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
            let (api, ops, keys) = (api.clone(), ops.clone(), keys.clone());
            async move {
                let (_, r) = api
                    .call(
                        "POST",
                        "/v1/riders",
                        &ops,
                        Some(&json!({"name": "Load rider"})),
                    )
                    .await?;
                let id = id_of(&r)?;
                let token = keys.mint(Role::Rider, id.parse()?, chrono::Duration::days(1));
                let location = json!({"lat": at.0, "lng": at.1});
                api.call(
                    "PUT",
                    &format!("/v1/riders/{id}/location"),
                    &token,
                    Some(&location),
                )
                .await?;
                let status = json!({"status": "available"});
                api.call(
                    "PUT",
                    &format!("/v1/riders/{id}/status"),
                    &token,
                    Some(&status),
                )
                .await?;
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
            let (api, keys) = (api.clone(), keys.clone());
            async move {
                let token = keys.mint(Role::Restaurant, id.parse()?, chrono::Duration::days(1));
                let socket = api.socket(&token).await?;
                anyhow::Ok((id.clone(), token, socket))
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    for (id, token, socket) in restaurant_sockets {
        actix_rt::spawn(restaurant(
            api.clone(),
            state.clone(),
            id,
            token,
            socket,
            cfg.think_time,
        ));
    }
    let mut rider_sockets = futures_util::stream::iter(riders.into_iter().take(cfg.riders))
        .map(|(id, token, at, seed)| {
            let api = api.clone();
            async move {
                let socket = api.socket(&token).await?;
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
        actix_rt::spawn(rider(api.clone(), state.clone(), me, socket, cfg.clone()));
    }
    drop(rider_sockets);
    let ingested_before = server_counter(&api, &ops, "dabba_location_updates_total").await;
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
            "items": [{"name": "Thali", "quantity": rng.random_range(1..4), "unit_price_cents": 18_000}],
            "delivery": {"location": {"lat": lat + dlat, "lng": lng + dlat}, "address": "Load St"}
        });
        let (cancel, update) = (
            rng.random_bool(cfg.cancel_ratio),
            rng.random_bool(cfg.update_ratio),
        );
        actix_rt::spawn(customer_order(
            api.clone(),
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
    let ingested_after = server_counter(&api, &ops, "dabba_location_updates_total").await;
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

fn progress(state: &Shared, elapsed: Duration, total: Duration) {
    let s = state.borrow();
    let placed = s.flows["place_order"].hist.len();
    let errors: u64 = s.flows.values().map(|f| f.errors).sum();
    let frac = (elapsed.as_secs_f64() / total.as_secs_f64()).min(1.0);
    let bar: String = (0..30)
        .map(|i| if (i as f64) < frac * 30.0 { '#' } else { '.' })
        .collect();
    eprint!(
        "\r[{bar}] {:>5.1}s  orders {placed}  errors {errors}  sockets {}   ",
        elapsed.as_secs_f64(),
        s.ws_open
    );
    let _ = std::io::stderr().flush();
}

fn summarise(s: &State, elapsed: f64, seed: u64) -> Summary {
    let ms = |us: u64| us as f64 / 1_000.0;
    let flows = FLOWS
        .iter()
        .map(|name| {
            let f = &s.flows[name];
            let h = &f.hist;
            let count = h.len();
            (
                (*name).to_owned(),
                FlowSummary {
                    count,
                    errors: f.errors,
                    rate_per_s: count as f64 / elapsed,
                    p50_ms: ms(h.value_at_quantile(0.5)),
                    p90_ms: ms(h.value_at_quantile(0.9)),
                    p99_ms: ms(h.value_at_quantile(0.99)),
                    p999_ms: ms(h.value_at_quantile(0.999)),
                    max_ms: ms(h.max()),
                },
            )
        })
        .collect();
    Summary {
        duration_s: elapsed,
        flows,
        ws_connections_held: s.ws_open,
        server_location_updates: None,
        server_location_updates_per_s: None,
        seed,
    }
}

fn print_table(s: &Summary) {
    println!(
        "\n{:<18} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "flow", "count", "errors", "rate/s", "p50 ms", "p90 ms", "p99 ms", "p999 ms", "max ms"
    );
    for (name, f) in &s.flows {
        println!(
            "{name:<18} {:>8} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            f.count, f.errors, f.rate_per_s, f.p50_ms, f.p90_ms, f.p99_ms, f.p999_ms, f.max_ms
        );
    }
    println!(
        "websocket connections held: {}   duration: {:.1} s",
        s.ws_connections_held, s.duration_s
    );
    if let (Some(n), Some(rate)) = (s.server_location_updates, s.server_location_updates_per_s) {
        println!("location updates ingested by the server: {n} ({rate:.0}/s)");
    }
}

/// p99 per second of each flow, as an SVG line chart (no browser or plotting library needed).
fn svg_plot(s: &State) -> String {
    let (w, h, pad) = (900.0, 420.0, 50.0);
    let colors = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    ];
    let series: Vec<(&str, Vec<f64>)> = FLOWS
        .iter()
        .map(|n| {
            (
                *n,
                s.flows[n]
                    .series
                    .iter()
                    .map(|h| {
                        if h.is_empty() {
                            f64::NAN
                        } else {
                            h.value_at_quantile(0.99) as f64 / 1_000.0
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    let seconds = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let top = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max)
        * 1.1;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (seconds - 1) as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / top;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    );
    out +=
        &format!(r#"<text x="{pad}" y="20">p99 latency per second (ms), top {top:.1} ms</text>"#);
    out += &format!(
        r#"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="black"/>"#,
        h - pad,
        w - pad,
        h - pad,
        h - pad
    );
    for (k, (name, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let color = colors[k % colors.len()];
        out += &format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        out += &format!(
            r#"<text x="{}" y="{}" fill="{color}">{name}</text>"#,
            w - pad - 120.0,
            pad + 16.0 * k as f64
        );
    }
    out += &format!(
        r#"<text x="{}" y="{}">seconds</text></svg>"#,
        w / 2.0,
        h - 15.0
    );
    out
}

async fn customer_order(
    api: Api,
    state: Shared,
    token: String,
    body: Value,
    cancel: bool,
    update: bool,
) {
    let Some(order) = api
        .timed(
            &state,
            "place_order",
            "POST",
            "/v1/orders",
            &token,
            Some(&body),
        )
        .await
    else {
        return;
    };
    let Some(id) = order["id"].as_str().map(str::to_owned) else {
        return;
    };
    if update {
        let mut delivery = body["delivery"].clone();
        delivery["address"] = json!("Load St, flat 2");
        let _ = api
            .call(
                "PATCH",
                &format!("/v1/orders/{id}"),
                &token,
                Some(&json!({"delivery": delivery})),
            )
            .await;
    }
    if cancel {
        actix_rt::time::sleep(Duration::from_secs(2)).await;
        let _ = api
            .call("POST", &format!("/v1/orders/{id}/cancel"), &token, None)
            .await;
    }
}

/// Records push latency from the server's `sent_at_us` stamp.
fn record_push(state: &Shared, msg: &Value) {
    if let Some(sent) = msg["sent_at_us"].as_i64() {
        let lag = chrono::Utc::now().timestamp_micros() - sent;
        state
            .borrow_mut()
            .record("push", Duration::from_micros(lag.max(1) as u64));
    }
}

async fn next_json(socket: &mut Socket) -> Option<Value> {
    loop {
        match socket.next().await? {
            Ok(ws::Frame::Text(t)) => return serde_json::from_slice(&t).ok(),
            Ok(ws::Frame::Ping(p)) => {
                let _ = socket.send(ws::Message::Pong(p)).await;
            }
            Ok(ws::Frame::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn restaurant(
    api: Api,
    state: Shared,
    id: String,
    token: String,
    mut socket: Socket,
    think: Duration,
) {
    state.borrow_mut().ws_open += 1;
    while let Some(msg) = next_json(&mut socket).await {
        record_push(&state, &msg);
        if state.borrow().stop {
            break;
        }
        if msg["type"] != "order.updated" || msg["order"]["stage"] != "awaiting_restaurant" {
            continue;
        }
        let Some(order) = msg["order"]["id"].as_str().map(str::to_owned) else {
            continue;
        };
        let (api, state, token, id) = (api.clone(), state.clone(), token.clone(), id.clone());
        actix_rt::spawn(async move {
            actix_rt::time::sleep(think).await;
            let path = format!("/v1/restaurants/{id}/orders/{order}/accept");
            // Dispatch runs inside the accept, so the offer can beat the accept's response:
            // offer delivery is timed from the moment the accept is sent.
            state
                .borrow_mut()
                .accepted_at
                .insert(order.clone(), Instant::now());
            if api
                .timed(&state, "restaurant_accept", "POST", &path, &token, None)
                .await
                .is_none()
            {
                state.borrow_mut().accepted_at.remove(&order);
            }
        });
    }
    state.borrow_mut().ws_open -= 1;
}

/// One simulated rider: who it is, where it starts, and the seed of its choices.
struct SimRider {
    id: String,
    token: String,
    start: (f64, f64),
    seed: u64,
}

async fn rider(api: Api, state: Shared, me: SimRider, mut socket: Socket, cfg: LoadConfig) {
    let SimRider {
        id,
        token,
        start,
        seed,
    } = me;
    let mut rng = StdRng::seed_from_u64(seed);
    state.borrow_mut().ws_open += 1;
    let mut at = start;
    // Spread the riders' updates over the interval.
    let offset = cfg.location_interval.mul_f64(rng.random::<f64>());
    let mut tick = actix_rt::time::interval_at(
        actix_rt::time::Instant::now() + offset,
        cfg.location_interval.max(Duration::from_millis(10)),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if state.borrow().stop { break; }
                if !state.borrow().moving { continue; }
                at = (at.0 + rng.random_range(-0.0005..0.0005), at.1 + rng.random_range(-0.0005..0.0005));
                let frame = json!({"type": "location", "lat": at.0, "lng": at.1}).to_string();
                let t = Instant::now();
                if socket.send(ws::Message::Text(frame.into())).await.is_err() {
                    state.borrow_mut().error("location_update");
                    break;
                }
                state.borrow_mut().record("location_update", t.elapsed());
            }
            msg = next_json(&mut socket) => {
                let Some(msg) = msg else { break };
                record_push(&state, &msg);
                if msg["type"] == "offer" {
                        let Some(order) = msg["order_id"].as_str().map(str::to_owned) else { continue };
                        let asked = state.borrow_mut().accepted_at.remove(&order);
                        if let Some(t) = asked {
                            state.borrow_mut().record("offer_delivery", t.elapsed());
                        }
                        let accept = rng.random_bool(cfg.accept_ratio);
                        let (api, state, token, id, think) = (api.clone(), state.clone(), token.clone(), id.clone(), cfg.think_time);
                        actix_rt::spawn(async move {
                            actix_rt::time::sleep(think).await;
                            let answer = if accept { "accept" } else { "reject" };
                            let path = format!("/v1/riders/{id}/offers/{order}/{answer}");
                            if accept {
                                if api.timed(&state, "offer_accept", "POST", &path, &token, None).await.is_some() {
                                    // Ride it out so the rider is free again.
                                    actix_rt::time::sleep(think).await;
                                    let _ = api.call("POST", &format!("/v1/orders/{order}/pickup"), &token, None).await;
                                    actix_rt::time::sleep(think).await;
                                    let _ = api.call("POST", &format!("/v1/orders/{order}/deliver"), &token, None).await;
                                }
                            } else {
                                let _ = api.call("POST", &path, &token, None).await;
                            }
                        });
                }
            }
        }
    }
    state.borrow_mut().ws_open -= 1;
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
