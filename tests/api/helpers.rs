//! `spawn_app()`: a fresh store and a running server on a random port for every test.
//!
//! The store is SQLite in a temporary directory, or, with `DABBA_TEST_STORE=postgres`, a new
//! PostgreSQL database created for the test on `DABBA_TEST_PG_URL` (default: the local server).

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use dabba::api::auth::{Keys, Role};
use dabba::config::ServeConfig;
use dabba::startup::Application;

pub const SECRET: &str = "dabba-test-secret-0123456789abcdef";
/// A restaurant in central Bengaluru; test points are placed at exact distances from it.
pub const CENTER: (f64, f64) = (12.9716, 77.5946);
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The point `metres` due north of `CENTER` (a meridian arc: haversine distance is exact).
pub fn north(metres: f64) -> Value {
    json!({"lat": CENTER.0 + (metres / EARTH_RADIUS_M).to_degrees(), "lng": CENTER.1})
}

/// The point `metres` due south of `CENTER`.
pub fn south(metres: f64) -> Value {
    north(-metres)
}

pub struct TestApp {
    pub client: dabba::client::Client,
    pub ops: String,
    keys: Keys,
    server: actix_web::dev::ServerHandle,
    engine: dabba::actors::Engine,
    /// The prefix of this server's Redis streams.
    pub stream_prefix: String,
    /// The base URL of this server's fake vendor server (`/_control/{vendor}`, `/_records/{vendor}`).
    pub vendors: String,
    _data: Option<TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Free the test's threads and database connections for the tests that follow.
        self.engine.stop();
        drop(self.server.stop(false));
    }
}

/// An answer of the server (status, JSON body, `Retry-After`).
pub type Response = dabba::client::Reply;

/// A scratch directory, removed when the test ends (passed or not).
pub struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn postgres_url() -> String {
    use sqlx::Connection;
    let admin = std::env::var("DABBA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is required for DABBA_TEST_STORE=postgres ({admin}): {e}")
        });
    let db = format!("dabba_test_{}", Uuid::new_v4().simple());
    // `db` is our own uuid-derived identifier, not user input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (prefix, _) = admin.rsplit_once('/').expect("admin url has a database");
    format!("{prefix}/{db}")
}

pub struct Options {
    /// Kafka brokers the server also publishes the log to.
    pub kafka_brokers: Option<String>,
    pub test_clock: bool,
    pub faults: bool,
    /// Overrides the store chosen by `DABBA_TEST_STORE`.
    pub database_url: Option<String>,
    pub commit_queue: usize,
    /// Rate limiter backend: `None` in-process; Redis when `DABBA_TEST_LIMITER=redis`.
    pub redis_url: Option<String>,
    /// Writes per second per subject (tests default to effectively unlimited).
    pub rate_writes_per_sec: f64,
    /// Positions per second per rider, across its sockets and REST.
    pub rate_location_per_sec: f64,
    pub rate_reads_per_sec: f64,
    /// WebSocket handshakes per second per subject.
    pub rate_ws_upgrades_per_sec: f64,
    pub ws_heartbeat_secs: u64,
    pub ws_write_timeout_secs: u64,
    pub body_timeout_secs: u64,
    /// `DABBA_TRUSTED_PROXIES`.
    pub trusted_proxies: String,
    /// `DABBA_JWT_PREVIOUS_SECRET`.
    pub previous_secret: Option<String>,
    /// `DABBA_RESTAURANT_CAPACITY` (0: no limit).
    pub restaurant_capacity: usize,
    /// `DABBA_RESTAURANT_TIMEOUT_SECS`.
    pub restaurant_timeout_secs: u64,
    /// `DABBA_RESTAURANT_OVERFLOW`.
    pub restaurant_overflow: dabba::config::Overflow,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kafka_brokers: None,
            test_clock: true,
            faults: true,
            database_url: None,
            commit_queue: 16_384,
            redis_url: (std::env::var("DABBA_TEST_LIMITER").as_deref() == Ok("redis"))
                .then(redis_url),
            rate_writes_per_sec: 10_000.0,
            rate_location_per_sec: 10_000.0,
            rate_reads_per_sec: 10_000.0,
            rate_ws_upgrades_per_sec: 10_000.0,
            ws_heartbeat_secs: 15,
            ws_write_timeout_secs: 10,
            body_timeout_secs: 10,
            trusted_proxies: String::new(),
            previous_secret: None,
            restaurant_capacity: 0,
            restaurant_timeout_secs: 300,
            restaurant_overflow: dabba::config::Overflow::Refuse,
        }
    }
}

/// The store `DABBA_TEST_STORE` asks for: a new PostgreSQL database, or SQLite in a temp dir.
async fn store_for_test() -> (Option<String>, Option<TempDir>) {
    match std::env::var("DABBA_TEST_STORE").as_deref() {
        Ok("postgres") => (Some(postgres_url().await), None),
        Ok("sqlite") | Err(_) => {
            let dir = std::env::temp_dir().join(format!("dabba-test-{}", Uuid::new_v4().simple()));
            (None, Some(TempDir(dir)))
        }
        Ok(other) => panic!("unknown DABBA_TEST_STORE {other:?}"),
    }
}

/// The Redis the rate-limit tests use; they fail (never skip) when it is not there.
pub fn redis_url() -> String {
    std::env::var("DABBA_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// A store that outlives one server, for restart tests: a new PostgreSQL database, or an
/// SQLite file in a temp dir (removed when the second value drops).
pub async fn durable_store() -> (String, Option<TempDir>) {
    match std::env::var("DABBA_TEST_STORE").as_deref() {
        Ok("postgres") => (postgres_url().await, None),
        _ => {
            let dir = std::env::temp_dir().join(format!("dabba-keep-{}", Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite://{}", dir.join("d.db").display());
            (url, Some(TempDir(dir)))
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// A server whose restaurants have an hour to answer: for tests that move the clock past the
/// default 5 minutes with orders still waiting for their restaurant.
pub async fn spawn_patient_app() -> TestApp {
    spawn_app_with(Options {
        restaurant_timeout_secs: 3_600,
        ..Options::default()
    })
    .await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    let (database_url, data) = match opts.database_url.clone() {
        Some(url) => (Some(url), None),
        None => store_for_test().await,
    };
    let stream_prefix = format!("dabba-test-{}", Uuid::new_v4().simple());
    // Every test server its own fake gateways, so a test can flip their switches.
    let (vendor_addr, vendors) = dabba::vendors::FakeVendors::default()
        .serve("127.0.0.1:0")
        .expect("fake vendors bind");
    actix_web::rt::spawn(vendors);
    let vendors = format!("http://{vendor_addr}");
    let config = ServeConfig {
        bind: "127.0.0.1:0".into(),
        database_url,
        data_dir: data.as_ref().map(|d| d.0.clone()).unwrap_or_default(),
        secrets: dabba::tokens::SecretArgs {
            jwt_secret: Some(SECRET.into()),
            jwt_previous_secret: opts.previous_secret.clone(),
        },
        lifetimes: dabba::tokens::Lifetimes::default(),
        // Every test server its own streams in the shared Redis.
        events: dabba::config::EventArgs {
            stream_prefix: stream_prefix.clone(),
            consumer_retry_base_ms: 20,
            consumer_claim_idle_secs: 2,
            kafka_brokers: opts.kafka_brokers.clone(),
            kafka_topic_prefix: stream_prefix.clone(),
            ..Default::default()
        },
        money: dabba::config::MoneyArgs {
            gateways: Some(dabba::payments::fake_spec(&vendors)),
            gateway_timeout_ms: 500,
            gateway_breaker_secs: 1,
            ..Default::default()
        },
        desk: dabba::config::DeskArgs {
            restaurant_capacity: opts.restaurant_capacity,
            restaurant_timeout_secs: opts.restaurant_timeout_secs,
            restaurant_overflow: opts.restaurant_overflow,
            ..Default::default()
        },
        trusted_proxies: opts.trusted_proxies.clone(),
        offer_timeout_secs: 30,
        dispatch_deadline_secs: 600,
        redispatch_cooldown_secs: 120,
        radius_m: 5_000.0,
        test_clock: opts.test_clock,
        workers: Some(2),
        commit_max_batch: 256,
        commit_delay_us: 0,
        commit_overlap_from: dabba::persistence::writer::OVERLAP_FROM,
        commit_queue: opts.commit_queue,
        admission_target_ms: dabba::actors::admission::TARGET_LATENCY.as_millis() as u64,
        retention_days: 365,
        fault_injection: opts.faults,
        db_max_connections: 4,
        redis_url: opts.redis_url,
        rate_writes_per_sec: opts.rate_writes_per_sec,
        rate_location_per_sec: opts.rate_location_per_sec,
        rate_reads_per_sec: opts.rate_reads_per_sec,
        rate_ws_upgrades_per_sec: opts.rate_ws_upgrades_per_sec,
        ws_max_per_subject: 16,
        ws_max_per_ip: 100_000,
        ws_heartbeat_secs: opts.ws_heartbeat_secs,
        ws_write_timeout_secs: opts.ws_write_timeout_secs,
        body_timeout_secs: opts.body_timeout_secs,
    };
    let app = Application::build(&config).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (server, engine) = (app.server_handle(), app.engine().clone());
    actix_web::rt::spawn(app.run_until_stopped());
    let keys = Keys::new(SECRET);
    let ops = keys.mint(Role::Ops, Uuid::new_v4(), chrono::Duration::hours(1));
    let client = dabba::client::Client::new(&base, Duration::from_secs(30));
    TestApp {
        client,
        ops,
        keys,
        server,
        engine,
        stream_prefix,
        vendors,
        _data: data,
    }
}

impl TestApp {
    pub fn token(&self, role: Role, sub: &str) -> String {
        self.keys
            .mint(role, sub.parse().expect("uuid"), chrono::Duration::hours(1))
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        self.client
            .call(method, path, token, body.as_ref())
            .await
            .expect("request sent")
    }

    pub async fn raw(&self, method: &str, path: &str, token: &str, body: &'static str) -> Response {
        self.client
            .raw(method, path, token, body)
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Response {
        self.call("PUT", path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.call("PATCH", path, Some(token), Some(body)).await
    }

    /// Advances the engine clock (timers fire before this returns); the engine's new time.
    pub async fn advance(&self, seconds: i64) -> chrono::DateTime<chrono::Utc> {
        let r = self
            .post(
                "/v1/test/clock",
                &self.ops,
                json!({"advance_seconds": seconds}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        serde_json::from_value(r.body["now"].clone()).expect("the clock's time")
    }

    /// A registered restaurant at `at`, and its token.
    pub async fn restaurant_at(&self, at: Value) -> (String, String) {
        let r = self
            .post(
                "/v1/restaurants",
                &self.ops,
                json!({"name": "Vidyarthi Bhavan", "location": at}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["id"].as_str().expect("id").to_owned();
        let token = self.token(Role::Restaurant, &id);
        let m = self
            .put(&format!("/v1/restaurants/{id}/menu"), &token, menu())
            .await;
        assert_eq!(m.status, 200, "{:?}", m.body);
        (id, token)
    }

    pub async fn restaurant(&self) -> (String, String) {
        self.restaurant_at(north(0.0)).await
    }

    pub async fn customer(&self) -> (String, String) {
        let r = self
            .post(
                "/v1/customers",
                &self.ops,
                json!({"name": "Asha", "phone": "+91 98450 00000", "email": "asha@example.in"}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["id"].as_str().expect("id").to_owned();
        let token = self.token(Role::Customer, &id);
        (id, token)
    }

    /// A registered rider, offline with no position.
    pub async fn rider(&self) -> (String, String) {
        let r = self
            .post("/v1/riders", &self.ops, json!({"name": "Ravi"}))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["id"].as_str().expect("id").to_owned();
        let token = self.token(Role::Rider, &id);
        (id, token)
    }

    /// A rider at `at`, available for offers.
    pub async fn available_rider_at(&self, at: Value) -> (String, String) {
        let (id, token) = self.rider().await;
        let r = self
            .put(&format!("/v1/riders/{id}/location"), &token, at)
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        let r = self
            .put(
                &format!("/v1/riders/{id}/status"),
                &token,
                json!({"status": "available"}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        (id, token)
    }

    pub fn order_body(&self, restaurant: &str, delivery_at: Value) -> Value {
        json!({
            "restaurant_id": restaurant,
            "items": [
                {"item_id": DOSA, "quantity": 2},
                {"item_id": COFFEE, "quantity": 1}
            ],
            "delivery": {"location": delivery_at, "address": "12 MG Road"}
        })
    }

    /// Places an order 1 km from the restaurant; returns the order id.
    pub async fn place(&self, customer: &str, restaurant: &str) -> String {
        let r = self
            .post(
                "/v1/orders",
                customer,
                self.order_body(restaurant, south(1_000.0)),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    pub async fn order(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/orders/{id}"), &self.ops).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    pub async fn rider_state(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/riders/{id}"), &self.ops).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    /// The restaurant accepts; dispatch starts.
    pub async fn accept(&self, restaurant: &(String, String), order: &str) -> Response {
        self.post(
            &format!("/v1/restaurants/{}/orders/{order}/accept", restaurant.0),
            &restaurant.1,
            json!({}),
        )
        .await
    }

    pub async fn ws(&self, token: &str) -> Ws {
        Ws {
            socket: self.client.socket(token).await.expect("websocket connects"),
        }
    }

    /// A socket resuming after `since`.
    pub async fn ws_since(&self, token: &str, since: i64) -> Ws {
        Ws {
            socket: self
                .client
                .socket_at(&format!("/v1/ws?token={token}&since={since}"))
                .await
                .expect("websocket connects"),
        }
    }
}

pub struct Ws {
    socket: dabba::client::Socket,
}

/// How long a test waits for a message it expects.
const WAIT: Duration = Duration::from_secs(5);

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.socket.send_json(&v).await.expect("ws send");
    }

    pub async fn send_text(&mut self, t: &str) {
        self.socket.send_text(t).await.expect("ws send");
    }

    /// The next JSON message, or `None` if none arrives within 5 s or the socket closed.
    /// The next message, or `None` after `wait` of silence.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.socket.next_json())
            .await
            .ok()?
    }

    pub async fn next(&mut self) -> Option<Value> {
        tokio::time::timeout(WAIT, self.socket.next_json())
            .await
            .ok()?
    }

    /// True if nothing but pings arrives within `wait`.
    pub async fn silent_for(&mut self, wait: Duration) -> bool {
        self.socket.silent_for(wait).await
    }

    /// Skips messages until one matches `pred`.
    pub async fn until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let m = self.next().await.expect("expected a websocket message");
            if pred(&m) {
                return m;
            }
        }
    }

    /// The close code if the server closes the socket within 5 s (0: closed without one).
    pub async fn closed_with(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(WAIT, self.socket.event()).await.ok()? {
                None => return Some(0),
                Some(dabba::client::Event::Closed(code)) => return Some(code),
                Some(dabba::client::Event::Message(_)) => continue,
            }
        }
    }
}

pub fn is_type(t: &'static str) -> impl Fn(&Value) -> bool {
    move |m| m["type"] == t
}

/// The menu every test restaurant serves: ids are fixed so that order bodies can name them.
pub const DOSA: &str = "00000000-0000-4000-8000-00000000d05a";
pub const COFFEE: &str = "00000000-0000-4000-8000-0000000c0ffe";
pub const IDLI: &str = "00000000-0000-4000-8000-00000000001d";

pub fn menu() -> Value {
    json!({"items": [
        {"id": DOSA, "name": "Masala dosa", "price_cents": 9000, "available": true},
        {"id": COFFEE, "name": "Filter coffee", "price_cents": 4000, "available": true},
        {"id": IDLI, "name": "Idli", "price_cents": 5000, "available": true}
    ]})
}

/// `quantity` idlis (50 rupees each).
pub fn idli(quantity: u32) -> Value {
    json!([{"item_id": IDLI, "quantity": quantity}])
}

/// The restaurant [`bare_store`] registers, for orders written straight to the store.
pub fn bare_restaurant() -> dabba::domain::RestaurantId {
    "00000000-0000-4000-8000-00000000d05a"
        .parse()
        .expect("uuid")
}

/// A store with no engine on top (a fresh database), holding one restaurant.
pub async fn bare_store() -> (dabba::persistence::Store, Option<TempDir>) {
    use dabba::domain::Restaurant;
    use dabba::persistence::{Store, Write, WriteUnit};
    let (store, dir) = match std::env::var("DABBA_TEST_STORE").as_deref() {
        Ok("postgres") => (Store::open(&postgres_url().await, 2).await.unwrap(), None),
        _ => {
            let dir = std::env::temp_dir().join(format!("dabba-store-{}", Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            let url = format!("sqlite://{}", dir.join("t.db").display());
            (Store::open(&url, 2).await.unwrap(), Some(dir))
        }
    };
    let restaurant = Restaurant {
        id: bare_restaurant(),
        name: "Bare Bhavan".into(),
        location: dabba::domain::LatLng::parse(12.97, 77.59).unwrap(),
        open: true,
        rating_sum: 0,
        rating_count: 0,
        prep_minutes: 15,
        menu: Default::default(),
    };
    let add = Write::AddRestaurant {
        restaurant,
        at: chrono::Utc::now(),
    };
    store.apply_batch(&[WriteUnit::one(add)]).await.unwrap();
    (store, dir.map(TempDir))
}
