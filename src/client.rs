//! The typed API client: HTTP calls and WebSockets exactly as apps use them. The demo city,
//! the load generator and the black-box tests all drive the server through it, so there is
//! one place that knows how to talk to dabba.

use std::time::Duration;

use actix_codec::Framed;
use actix_web::web::Bytes;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

use crate::api::auth::{Keys, Role};

/// Responses larger than this are refused (the biggest real one is a history page).
const MAX_BODY: usize = 16 << 20;
/// WebSocket frames up to this size are accepted from the server.
const MAX_FRAME: usize = 1 << 20;

/// An answer: status and JSON body (`Null` when empty, a string when not JSON).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// The `Retry-After` header of a refusal, in seconds.
    pub retry_after: Option<u64>,
    /// The `X-Request-Id` the server answered with (its log lines carry it).
    pub request_id: Option<String>,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The contract's error code (`error.code`), or "".
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The `id` of a created resource.
    pub fn id(&self) -> anyhow::Result<String> {
        self.body["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no id in {} {}", self.status, self.body))
    }

    /// Fails unless 2xx, with the server's answer in the error.
    pub fn expect_ok(self, what: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(self.ok(), "{what}: {} {}", self.status, self.body);
        Ok(self)
    }
}

#[derive(Clone)]
pub struct Client {
    base: String,
    /// Requests: pooled connections, optionally capped.
    http: awc::Client,
    /// WebSockets: each holds its own connection for its life, so they are not capped here.
    ws: awc::Client,
}

fn awc_client(timeout: Duration, max_connections: usize) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(max_connections))
        .timeout(timeout)
        .finish()
}

impl Client {
    /// A client of the server at `base` (`http://host:port`), requests not capped.
    pub fn new(base: &str, timeout: Duration) -> Self {
        Self::with_request_connections(base, timeout, 0)
    }

    /// At most `max_connections` request connections (0: no cap); beyond that, requests wait
    /// for a free one. A load generator must cap them: an overloaded server otherwise makes it
    /// open connections until it runs out of files.
    pub fn with_request_connections(base: &str, timeout: Duration, max_connections: usize) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: awc_client(timeout, max_connections),
            ws: awc_client(timeout, 0),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request; `token` as a bearer token, `body` as JSON.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        self.call_with(method, path, token, body, &[]).await
    }

    /// [`Client::call`] with extra headers (`Idempotency-Key`, …).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let resp = self.send(method, path, token, body, headers).await?;
        reply(resp).await
    }

    /// One request whose answer is kept as bytes, not parsed: for a caller that reads one
    /// field or none (the load generator, which shares the machine with the server it
    /// measures, would otherwise build a JSON tree of every order it is sent back).
    pub async fn call_bytes(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut resp = self.send(method, path, token, body, &[]).await?;
        let bytes = resp.body().limit(MAX_BODY).await?;
        Ok((resp.status().as_u16(), bytes))
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<awc::ClientResponse> {
        let mut req = self
            .http
            .request(method.parse()?, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        let sent = match body {
            Some(b) => req.send_json(b).await,
            None => req.send().await,
        };
        sent.map_err(|e| anyhow::anyhow!("{method} {path}: {e}"))
    }

    /// A request with a body sent as is (malformed JSON, odd content), for tests of refusals.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &'static str,
    ) -> anyhow::Result<Reply> {
        let resp = self
            .http
            .request(method.parse()?, format!("{}{}", self.base, path))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body)
            .await
            .map_err(|e| anyhow::anyhow!("{method} {path}: {e}"))?;
        reply(resp).await
    }

    /// One counter or gauge from `/metrics` (None if absent or unreachable).
    pub async fn metric(&self, token: &str, name: &str) -> Option<f64> {
        let mut resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .send()
            .await
            .ok()?;
        let body = resp.body().limit(MAX_BODY).await.ok()?;
        std::str::from_utf8(&body).ok()?.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?;
            rest.trim().parse().ok()
        })
    }

    /// Opens `/v1/ws` as the holder of `token`.
    pub async fn socket(&self, token: &str) -> anyhow::Result<Socket> {
        self.socket_at(&format!("/v1/ws?token={token}")).await
    }

    /// Opens a WebSocket on `path_and_query` as given (for tests of refused handshakes).
    pub async fn socket_at(&self, path_and_query: &str) -> anyhow::Result<Socket> {
        let url = format!("{}{path_and_query}", self.base.replacen("http", "ws", 1));
        let (_, framed) = self
            .ws
            .ws(url)
            .max_frame_size(MAX_FRAME)
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("websocket: {e}"))?;
        Ok(Socket { framed })
    }

    // ---- the calls every driver makes ---------------------------------------------------

    /// Registers a restaurant (ops) serving the [`house_menu`]; its id.
    pub async fn add_restaurant(
        &self,
        ops: &str,
        name: &str,
        at: (f64, f64),
    ) -> anyhow::Result<String> {
        let body = json!({"name": name, "location": point(at)});
        let id = self
            .call("POST", "/v1/restaurants", Some(ops), Some(&body))
            .await?
            .expect_ok("registering a restaurant")?
            .id()?;
        self.call(
            "PUT",
            &format!("/v1/restaurants/{id}/menu"),
            Some(ops),
            Some(&house_menu()),
        )
        .await?
        .expect_ok("setting the menu")?;
        Ok(id)
    }

    /// Registers a customer (ops); its id.
    pub async fn add_customer(&self, ops: &str, name: &str, email: &str) -> anyhow::Result<String> {
        let body = json!({"name": name, "phone": "+91 90000 00000", "email": email});
        self.call("POST", "/v1/customers", Some(ops), Some(&body))
            .await?
            .expect_ok("registering a customer")?
            .id()
    }

    /// Registers a rider (ops); its id.
    pub async fn add_rider(&self, ops: &str, name: &str) -> anyhow::Result<String> {
        let body = json!({"name": name});
        self.call("POST", "/v1/riders", Some(ops), Some(&body))
            .await?
            .expect_ok("registering a rider")?
            .id()
    }

    /// Puts a rider at `at` and makes it available for offers.
    pub async fn rider_online(&self, id: &str, token: &str, at: (f64, f64)) -> anyhow::Result<()> {
        let location = point(at);
        self.call(
            "PUT",
            &format!("/v1/riders/{id}/location"),
            Some(token),
            Some(&location),
        )
        .await?
        .expect_ok("rider location")?;
        let status = json!({"status": "available"});
        self.call(
            "PUT",
            &format!("/v1/riders/{id}/status"),
            Some(token),
            Some(&status),
        )
        .await?
        .expect_ok("rider status")?;
        Ok(())
    }

    pub async fn place_order(&self, customer: &str, body: &Value) -> anyhow::Result<Reply> {
        self.call("POST", "/v1/orders", Some(customer), Some(body))
            .await
    }

    /// The restaurant accepts (`accept`) or rejects one of its orders.
    pub async fn answer_order(
        &self,
        restaurant: &str,
        token: &str,
        order: &str,
        accept: bool,
    ) -> anyhow::Result<Reply> {
        let (verb, body) = if accept {
            ("accept", json!({}))
        } else {
            ("reject", json!({"reason": "kitchen is full"}))
        };
        let path = format!("/v1/restaurants/{restaurant}/orders/{order}/{verb}");
        self.call("POST", &path, Some(token), Some(&body)).await
    }

    /// The rider accepts or rejects its offer of `order`.
    pub async fn answer_offer(
        &self,
        rider: &str,
        token: &str,
        order: &str,
        accept: bool,
    ) -> anyhow::Result<Reply> {
        let verb = if accept { "accept" } else { "reject" };
        let path = format!("/v1/riders/{rider}/offers/{order}/{verb}");
        self.call("POST", &path, Some(token), None).await
    }

    /// `pickup`, `deliver` or `cancel` on an order.
    pub async fn order_step(&self, token: &str, order: &str, step: &str) -> anyhow::Result<Reply> {
        let path = format!("/v1/orders/{order}/{step}");
        self.call("POST", &path, Some(token), Some(&json!({})))
            .await
    }
}

/// Tokens for the drivers, minted from the server's secret.
#[derive(Clone)]
pub struct Tokens(pub Keys);

impl Tokens {
    pub fn new(secret: &str) -> Self {
        Self(Keys::new(secret))
    }

    /// A token for `id` (a UUID) as `role`, living a day or the role's maximum if shorter.
    pub fn mint(&self, role: Role, id: &str) -> anyhow::Result<String> {
        Ok(self.0.mint(role, id.parse()?, chrono::Duration::days(1)))
    }
}

/// `{"lat": …, "lng": …}`.
pub fn point((lat, lng): (f64, f64)) -> Value {
    json!({"lat": lat, "lng": lng})
}

async fn reply<S>(mut resp: awc::ClientResponse<S>) -> anyhow::Result<Reply>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let retry_after = resp
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let request_id = resp
        .headers()
        .get("X-Request-Id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.body().limit(MAX_BODY).await?;
    Ok(Reply {
        status: resp.status().as_u16(),
        body: parse_body(&bytes),
        retry_after,
        request_id,
    })
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into()))
}

/// What a socket read returned.
#[derive(Debug)]
pub enum Event {
    Message(Value),
    /// The server closed the socket, with its close code (0 when it gave none).
    Closed(u16),
}

/// A WebSocket to `/v1/ws`. Pings are answered as they arrive.
pub struct Socket {
    framed: Framed<awc::BoxedSocket, ws::Codec>,
}

impl Socket {
    pub async fn send_json(&mut self, v: &Value) -> anyhow::Result<()> {
        self.send_text(&v.to_string()).await
    }

    pub async fn send_text(&mut self, t: &str) -> anyhow::Result<()> {
        self.framed
            .send(ws::Message::Text(t.to_owned().into()))
            .await
            .map_err(|e| anyhow::anyhow!("websocket send: {e}"))
    }

    /// The next JSON message or the close; `None` if the stream ended without a close frame.
    /// Frames that are not JSON text are skipped.
    pub async fn event(&mut self) -> Option<Event> {
        loop {
            match self.frame().await? {
                Ok(text) => {
                    if let Ok(v) = serde_json::from_slice(&text) {
                        return Some(Event::Message(v));
                    }
                }
                Err(code) => return Some(Event::Closed(code)),
            }
        }
    }

    /// The next text frame as it came, for a reader that wants a few fields of it (the load
    /// generator: building a whole `Value` per push cost it more than the socket did);
    /// `None` once the socket is closed.
    pub async fn next_text(&mut self) -> Option<Bytes> {
        self.frame().await?.ok()
    }

    /// The next text frame, or the close code (0 when the server gave none or the stream
    /// failed); `None` if the stream ended without a close frame.
    async fn frame(&mut self) -> Option<Result<Bytes, u16>> {
        loop {
            match self.framed.next().await? {
                Ok(ws::Frame::Text(t)) => return Some(Ok(t)),
                Ok(ws::Frame::Ping(p)) => {
                    let _ = self.framed.send(ws::Message::Pong(p)).await;
                }
                Ok(ws::Frame::Close(reason)) => {
                    return Some(Err(reason.map_or(0, |r| u16::from(r.code))));
                }
                Ok(_) => {}
                Err(_) => return Some(Err(0)),
            }
        }
    }

    /// The next JSON message; `None` once the socket is closed.
    pub async fn next_json(&mut self) -> Option<Value> {
        match self.event().await? {
            Event::Message(v) => Some(v),
            Event::Closed(_) => None,
        }
    }

    /// True if no message arrives within `wait` (pings and pongs do not count).
    pub async fn silent_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.event()).await.is_err()
    }
}

/// The thali every restaurant the demo and the load generator register serves.
pub const THALI: &str = "00000000-0000-4000-8000-0000007a1100";
pub const THALI_PRICE_CENTS: i64 = 18_000;

/// The menu [`Client::add_restaurant`] sets.
pub fn house_menu() -> Value {
    json!({"items": [
        {"id": THALI, "name": "Thali", "price_cents": THALI_PRICE_CENTS, "available": true},
        {"name": "Filter coffee", "price_cents": 4_000, "available": true}
    ]})
}

/// Order lines: `quantity` thalis.
pub fn thalis(quantity: u32) -> Value {
    json!([{"item_id": THALI, "quantity": quantity}])
}
