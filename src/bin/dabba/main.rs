//! `dabba`: serve, demo, load, token, migrate. The demo city and the load generator live
//! here, outside the server's library, and drive it through `dabba::client`.

mod demo;
mod load;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use uuid::Uuid;

use std::path::PathBuf;

use dabba::config::ServeConfig;
use dabba::startup::Application;
use dabba::tokens::{Lifetimes, Role, SecretArgs};

// mimalloc instead of glibc's malloc: under load glibc's allocator took ~11 % of the server's
// CPU (`_int_malloc`, `malloc_consolidate`, `unlink_chunk`); request and push buffers are
// small, short-lived and freed on another thread than the one that made them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "dabba",
    version,
    about = "Real-time dispatch engine for food delivery"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve(ServeConfig),
    /// Run the server with a simulated city: restaurants, moving riders, ordering customers.
    Demo {
        #[command(flatten)]
        config: ServeConfig,
        #[command(flatten)]
        city: demo::CityConfig,
    },
    /// Drive a running server through its public API and report latency per flow.
    Load(load::LoadConfig),
    /// Print a bearer token signed with the server's secret (`DABBA_JWT_SECRET`, or the one
    /// generated in the data directory).
    Token {
        #[arg(long, value_enum)]
        role: Role,
        #[arg(long)]
        sub: Uuid,
        #[command(flatten)]
        secrets: SecretArgs,
        /// Where the server keeps its generated secret.
        #[arg(long, env = "DABBA_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        #[command(flatten)]
        lifetimes: Lifetimes,
        /// Lifetime in hours (default: the role's maximum).
        #[arg(long)]
        ttl_hours: Option<i64>,
    },
    /// Apply database migrations and exit.
    Migrate(ServeConfig),
    /// Runs the fake vendor server (payment gateways `paycore` and `razorpe`) on its own;
    /// point `DABBA_GATEWAYS` at it and flip its switches with `PUT /_control/{vendor}`.
    FakeVendors {
        #[arg(
            long,
            env = "DABBA_FAKE_VENDORS_BIND",
            default_value = "127.0.0.1:7070"
        )]
        bind: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    dabba::telemetry::init_logs(dabba::telemetry::LogFormat::from_env());
    match cli.command {
        Cmd::Token {
            role,
            sub,
            secrets,
            data_dir,
            lifetimes,
            ttl_hours,
        } => {
            let keys = secrets.keys(&data_dir, lifetimes)?;
            let max = lifetimes.max(role);
            let ttl = match ttl_hours {
                None => max,
                Some(h) if h > 0 && chrono::Duration::hours(h) <= max => chrono::Duration::hours(h),
                Some(h) => anyhow::bail!(
                    "--ttl-hours {h}: a {role:?} token lives 1 to {} hours",
                    max.num_hours()
                ),
            };
            println!("{}", keys.mint(role, sub, ttl));
            Ok(())
        }
        Cmd::Serve(config) => actix_web::rt::System::new().block_on(serve(config)),
        Cmd::Load(config) => actix_web::rt::System::new()
            .block_on(async move { load::run(config).await.map(|_| ()) }),
        Cmd::Demo { config, city } => actix_web::rt::System::new().block_on(async move {
            let app = Application::build(&config).await?;
            let base = format!("http://127.0.0.1:{}", app.port());
            tracing::info!(%base, "dabba demo: server up, populating the city");
            let keys = config.secrets.keys(&config.data_dir, config.lifetimes)?;
            // A ready link: the token rides in the fragment, which the browser never sends.
            let ops = keys.mint(
                dabba::tokens::Role::Ops,
                uuid::Uuid::new_v4(),
                chrono::Duration::hours(2),
            );
            println!("dabba demo: open the ops console at {base}/ops#token={ops}");
            actix_web::rt::spawn(demo::run(base, keys, city));
            app.run_until_stopped().await.context("server")
        }),
        Cmd::FakeVendors { bind } => actix_web::rt::System::new().block_on(async move {
            let (addr, server) = dabba::vendors::FakeVendors::default().serve(&bind)?;
            println!(
                "fake vendors on http://{addr}: DABBA_GATEWAYS={}",
                dabba::payments::fake_spec(&format!("http://{addr}"))
            );
            server.await.context("fake vendor server")
        }),
        Cmd::Migrate(config) => actix_web::rt::System::new().block_on(async move {
            let url = config.store_url()?;
            let store = dabba::persistence::Store::open(&url, config.db_max_connections).await?;
            println!("migrations applied ({})", store.kind());
            Ok(())
        }),
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    tracing::info!(port = app.port(), "dabba serving");
    app.run_until_stopped().await.context("server")
}
