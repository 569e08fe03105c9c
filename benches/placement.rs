//! Durable order placement on PostgreSQL, side by side in one run:
//!
//! 1. dabba with group commit (the default writer),
//! 2. dabba with one transaction per placement (`max_batch = 1`),
//! 3. `pgbench` inserting one 500-byte row per transaction,
//!
//! all with the same number of concurrent clients on the same database server. Each dabba
//! placement is the real path minus HTTP: validation, the order snapshot and its outbox event
//! committed in one transaction, the order actor started.
//!
//! ```sh
//! cargo bench --bench placement            # BENCH_CLIENTS=32 BENCH_SECONDS=10 by default
//! ```
//! `BENCH_PG_URL` is the admin URL (default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::Connection;

use dabba::actors::{DispatchTimings, Engine, EngineOptions, NewOrderRequest};
use dabba::domain::{Clock, CustomerId, Delivery, LatLng, Policy};
use dabba::persistence::Store;
use dabba::persistence::writer::WriterConfig;

struct Run {
    name: String,
    placements: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.placements as f64 / self.seconds
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn fresh_database(admin: &str, name: &str) -> anyhow::Result<String> {
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .context("connecting to PostgreSQL")?;
    // `name` is one of this file's constants.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let (prefix, _) = admin.rsplit_once('/').context("admin URL has a database")?;
    Ok(format!("{prefix}/{name}"))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1_000.0
}

async fn dabba_run(
    admin: &str,
    db: &str,
    name: &str,
    max_batch: usize,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Run> {
    let url = fresh_database(admin, db).await?;
    let store = Store::open(&url, 8).await?;
    let options = EngineOptions {
        writer: WriterConfig {
            max_batch,
            ..WriterConfig::default()
        },
        ..EngineOptions::default()
    };
    let engine = Engine::start(
        store,
        Clock::default(),
        Policy::default(),
        DispatchTimings::default(),
        options,
    )
    .await?;
    let at = LatLng::parse(12.9716, 77.5946)?;
    let restaurant = engine.add_restaurant("Bench Bhavan".into(), at).await?;
    let dosa = dabba::domain::MenuItem {
        id: dabba::domain::ItemId::new(),
        name: "Masala dosa".into(),
        price_cents: dabba::domain::Cents(9_000),
        available: true,
    };
    let dosa_id = dosa.id;
    engine
        .set_menu(restaurant.id, dabba::domain::Menu::new(vec![dosa])?)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks = (0..clients).map(|_| {
        let engine = engine.clone();
        async move {
            let customer = CustomerId::new();
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let request = NewOrderRequest {
                    customer_id: customer,
                    restaurant_id: restaurant.id,
                    lines: vec![dabba::domain::OrderLine {
                        item_id: dosa_id,
                        quantity: 2,
                        shown_price: None,
                    }],
                    delivery: Delivery {
                        location: at,
                        address: "12 MG Road, Bengaluru 560001".into(),
                    },
                    deliver_at: None,
                    // Card, through the fake gateways on loopback (the embedded default).
                    payment: dabba::domain::PaymentMethod::Card,
                    payment_token: None,
                    recurring_id: None,
                };
                let t = Instant::now();
                if engine.place_order(request, None).await.is_ok() {
                    latencies.push(t.elapsed().as_micros() as u32);
                }
            }
            latencies
        }
    });
    let mut all: Vec<u32> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    engine.stop();
    all.sort_unstable();
    Ok(Run {
        name: name.into(),
        placements: all.len() as u64,
        seconds: elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
    })
}

async fn pgbench_run(admin: &str, clients: usize, seconds: u64) -> anyhow::Result<Run> {
    let url = fresh_database(admin, "dabba_bench_pgbench").await?;
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    sqlx::query("CREATE TABLE pg_orders (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), body text NOT NULL)")
        .execute(&mut conn)
        .await?;
    let script = std::env::temp_dir().join("dabba-pgbench-insert.sql");
    std::fs::write(
        &script,
        "INSERT INTO pg_orders (body) VALUES (repeat('x', 500));\n",
    )?;
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-r",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(&url)
        .output()
        .context("running pgbench (apt-get install postgresql-client)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let tx = field("number of transactions actually processed:").unwrap_or(0.0);
    let latency = field("latency average =").unwrap_or(0.0);
    Ok(Run {
        name: "pgbench single-row 500 B insert".into(),
        placements: tx as u64,
        seconds: seconds as f64,
        p50_ms: latency,
        p99_ms: f64::NAN,
    })
}

fn main() -> anyhow::Result<()> {
    // `cargo test --benches` runs bench binaries too: this one needs PostgreSQL and a minute.
    if !std::env::args().any(|a| a == "--bench") {
        println!("placement: run it with `cargo bench --bench placement`");
        return Ok(());
    }
    let clients: usize = env_or("BENCH_CLIENTS", 32);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let admin = std::env::var("BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let runs = actix_rt::System::new().block_on(async {
        let group = dabba_run(
            &admin,
            "dabba_bench_group",
            "dabba, group commit",
            256,
            clients,
            seconds,
        )
        .await?;
        let single = dabba_run(
            &admin,
            "dabba_bench_single",
            "dabba, one transaction per placement",
            1,
            clients,
            seconds,
        )
        .await?;
        let pgbench = pgbench_run(&admin, clients, seconds).await?;
        anyhow::Ok(vec![group, single, pgbench])
    })?;
    println!(
        "\ndurable placements, {clients} concurrent clients, {seconds} s each, PostgreSQL on this machine\n"
    );
    println!("| run | placements | per second | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    for r in &runs {
        let p99 = if r.p99_ms.is_nan() {
            "-".to_owned()
        } else {
            format!("{:.2}", r.p99_ms)
        };
        println!(
            "| {} | {} | {:.0} | {:.2} | {} |",
            r.name,
            r.placements,
            r.rate(),
            r.p50_ms,
            p99
        );
    }
    println!("\n(pgbench reports its mean latency in the p50 column)");
    println!(
        "group commit / one transaction per placement: {:.2}x",
        runs[0].rate() / runs[1].rate()
    );
    println!(
        "group commit / pgbench single-row insert:     {:.2}x",
        runs[0].rate() / runs[2].rate()
    );
    Ok(())
}
