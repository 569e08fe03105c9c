//! Builds the application: store → engine → HTTP server, bound before it runs so tests can
//! use port 0.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;

use crate::actors::Engine;
use crate::api::gate::{self, TrustedProxies};
use crate::api::limits::RateLimiter;
use crate::api::{self};
use crate::config::ServeConfig;
use crate::domain::{Clock, Policy};
use crate::persistence::{InstanceLock, Store};
use crate::telemetry;

pub struct Application {
    port: u16,
    server: Server,
    engine: Engine,
    /// Released when the server stops (dropped with the application).
    _lock: InstanceLock,
}

impl Application {
    /// Opens the store (applying migrations), starts the engine and binds the listener.
    /// Must run inside an actix system.
    pub async fn build(config: &ServeConfig) -> anyhow::Result<Self> {
        // First: what the store, the writer and the engine record from their start is kept.
        let metrics = telemetry::metrics_handle();
        let url = config.store_url().context("creating the data directory")?;
        let lock = InstanceLock::acquire(&url)
            .await
            .with_context(|| format!("locking the store at {}", redact(&url)))?;
        let store = Store::open(&url, config.db_max_connections)
            .await
            .with_context(|| format!("opening the store at {}", redact(&url)))?;
        tracing::info!(store = store.kind(), "store ready");
        let policy = Policy {
            radius_m: config.radius_m,
            split: config.money.split(),
            answer_timeout: chrono::Duration::seconds(
                i64::try_from(config.desk.restaurant_timeout_secs.max(1)).unwrap_or(i64::MAX),
            ),
            restaurant_capacity: (config.desk.restaurant_capacity > 0)
                .then_some(config.desk.restaurant_capacity),
            queue_when_busy: config.desk.restaurant_overflow == crate::config::Overflow::Queue,
            speed: crate::domain::timing::Speed::from_kmh(config.desk.rider_speed_kmh)
                .unwrap_or_default(),
        };
        let mut options = config.engine_options();
        options.gateways = Some(std::sync::Arc::new(
            config
                .money
                .gateways()
                .context("setting up the payment gateways")?,
        ));
        let engine = Engine::start(store, Clock::default(), policy, config.timings(), options)
            .await
            .context("starting the engine")?;
        let listener =
            TcpListener::bind(&config.bind).with_context(|| format!("binding {}", config.bind))?;
        let port = listener.local_addr()?.port();
        let limiter = match &config.redis_url {
            Some(url) => RateLimiter::with_redis(config.limits(), url).await,
            None => RateLimiter::in_process(config.limits()),
        };
        tracing::info!(backend = limiter.backend(), "rate limiter ready");
        let limiter = web::Data::new(limiter);
        let keys = config
            .secrets
            .keys(&config.data_dir, config.lifetimes)
            .context("loading the token secret")?;
        if config.secrets.generated() {
            tracing::info!(
                file = %config.data_dir.join(crate::tokens::SECRET_FILE).display(),
                "token secret generated for this data directory (set DABBA_JWT_SECRET to share one across nodes)"
            );
        }
        let keys = web::Data::new(keys);
        let proxies = web::Data::new(
            TrustedProxies::parse(&config.trusted_proxies)
                .map_err(anyhow::Error::msg)
                .context("DABBA_TRUSTED_PROXIES")?,
        );
        let sockets = web::Data::new(api::ws::Sockets::new(config.sockets()));
        let body_timeout = web::Data::new(api::extract::BodyTimeout(
            std::time::Duration::from_secs(config.body_timeout_secs.max(1)),
        ));
        let metrics = web::Data::new(metrics);
        let data = web::Data::new(engine.clone());
        let features = api::Features {
            test_clock: config.test_clock,
            faults: config.fault_injection,
        };
        if config.fault_injection {
            tracing::warn!("fault injection enabled: POST /v1/ops/faults makes actors fail");
        }
        if features.test_clock {
            tracing::warn!("test clock enabled: POST /v1/test/clock moves the engine's time");
        }
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(keys.clone())
                .app_data(metrics.clone())
                .app_data(limiter.clone())
                .app_data(proxies.clone())
                .app_data(sockets.clone())
                .app_data(body_timeout.clone())
                .wrap(actix_web::middleware::from_fn(gate::middleware))
                // Outermost: every response, refused ones included, is counted and carries
                // its request id.
                .wrap(actix_web::middleware::from_fn(api::observe::middleware))
                .configure(|cfg| api::configure(cfg, features))
        })
        .on_connect(api::ws::remember_socket)
        .listen(listener)?
        .shutdown_timeout(5);
        let workers = config.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        server = server.workers(workers);
        // Stop accepting before the process runs out of files, not after (EMFILE would stall
        // every accept, health checks included).
        if let Some(sockets) = crate::limits_os::raise_open_files() {
            let per_worker = usize::try_from(sockets).unwrap_or(usize::MAX) / workers.max(1);
            server = server.max_connections(per_worker.max(1));
        }
        Ok(Self {
            port,
            server: server.run(),
            engine,
            _lock: lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.engine.stop();
        served
    }
}

/// Hides a password in a database URL for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}
