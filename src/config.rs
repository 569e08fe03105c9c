//! Server configuration: flags, `DABBA_*` environment variables, defaults.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::actors::DispatchTimings;

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
    /// Secret for HS256 bearer tokens.
    #[arg(
        long,
        env = "DABBA_JWT_SECRET",
        default_value = "dabba-dev-secret",
        hide_env_values = true
    )]
    pub jwt_secret: String,
    /// Seconds a rider has to answer an offer.
    #[arg(long, env = "DABBA_OFFER_TIMEOUT_SECS", default_value_t = 30)]
    pub offer_timeout_secs: u64,
    /// Seconds an accepted order may wait for a rider before it ends `no_rider_found`.
    #[arg(long, env = "DABBA_DISPATCH_DEADLINE_SECS", default_value_t = 600)]
    pub dispatch_deadline_secs: u64,
    /// Delivery and dispatch radius in metres.
    #[arg(long, env = "DABBA_RADIUS_M", default_value_t = 5000.0)]
    pub radius_m: f64,
    /// Enables `POST /v1/test/clock` (never in production).
    #[arg(long, env = "DABBA_TEST_CLOCK", default_value_t = false, value_parser = parse_flag)]
    pub test_clock: bool,
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

    pub fn timings(&self) -> DispatchTimings {
        DispatchTimings {
            offer_timeout: Duration::from_secs(self.offer_timeout_secs),
            deadline: Duration::from_secs(self.dispatch_deadline_secs),
            ..DispatchTimings::default()
        }
    }
}
