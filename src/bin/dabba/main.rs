//! `dabba`: serve, demo, load, token, migrate. The demo city and the load generator live
//! here, outside the server's library, and drive it through `dabba::client`.

mod demo;
mod load;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use uuid::Uuid;

use dabba::api::auth::{Keys, Role};
use dabba::config::ServeConfig;
use dabba::startup::Application;

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
    /// Print a bearer token signed with `DABBA_JWT_SECRET`.
    Token {
        #[arg(long, value_enum)]
        role: Role,
        #[arg(long)]
        sub: Uuid,
        #[arg(
            long,
            env = "DABBA_JWT_SECRET",
            default_value = "dabba-dev-secret",
            hide_env_values = true
        )]
        secret: String,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24 * 30)]
        ttl_hours: i64,
    },
    /// Apply database migrations and exit.
    Migrate(ServeConfig),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    dabba::telemetry::init_logs();
    match cli.command {
        Cmd::Token {
            role,
            sub,
            secret,
            ttl_hours,
        } => {
            println!(
                "{}",
                Keys::new(&secret).mint(role, sub, chrono::Duration::hours(ttl_hours))
            );
            Ok(())
        }
        Cmd::Serve(config) => actix_web::rt::System::new().block_on(serve(config)),
        Cmd::Load(config) => actix_web::rt::System::new()
            .block_on(async move { load::run(config).await.map(|_| ()) }),
        Cmd::Demo { config, city } => actix_web::rt::System::new().block_on(async move {
            let app = Application::build(&config).await?;
            let base = format!("http://127.0.0.1:{}", app.port());
            tracing::info!(%base, "dabba demo: server up, populating the city");
            actix_web::rt::spawn(demo::run(base, config.jwt_secret.clone(), city));
            app.run_until_stopped().await.context("server")
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
