//! `dabba demo`: a simulated city that drives the server through its public API only —
//! restaurants answering orders on their WebSocket, riders moving and answering offers on
//! theirs, customers ordering — so a newcomer sees dispatch live.

use std::time::Duration;

use actix_codec::Framed;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::auth::{Keys, Role};

/// The simulated city's centre (Bengaluru).
const CENTER: (f64, f64) = (12.9716, 77.5946);
/// Metres per degree of latitude, near enough for placing simulated points.
const M_PER_DEG: f64 = 111_195.0;

#[derive(clap::Args, Clone, Debug)]
pub struct CityConfig {
    /// Restaurants in the city.
    #[arg(long, default_value_t = 20)]
    pub restaurants: usize,
    /// Riders on the road.
    #[arg(long, default_value_t = 60)]
    pub riders: usize,
    /// New orders per second.
    #[arg(long, default_value_t = 1.0)]
    pub orders_per_sec: f64,
    /// Seed for the city's randomness: same seed, same city.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

type Socket = Framed<awc::BoxedSocket, ws::Codec>;

#[derive(Clone)]
struct City {
    base: String,
    client: awc::Client,
    keys: Keys,
    ops: String,
}

/// A point up to `radius_m` from `(lat, lng)`.
fn around(rng: &mut impl Rng, (lat, lng): (f64, f64), radius_m: f64) -> (f64, f64) {
    let r = radius_m * rng.random::<f64>().sqrt();
    let a = rng.random_range(0.0..std::f64::consts::TAU);
    let dlat = r * a.sin() / M_PER_DEG;
    let dlng = r * a.cos() / (M_PER_DEG * lat.to_radians().cos());
    (lat + dlat, lng + dlng)
}

fn point((lat, lng): (f64, f64)) -> Value {
    json!({"lat": lat, "lng": lng})
}

impl City {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let method = method.parse()?;
        let mut resp = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .send_json(&body)
            .await
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        let bytes = resp.body().await?;
        if !resp.status().is_success() {
            anyhow::bail!(
                "{path}: {} {}",
                resp.status(),
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)?
        })
    }

    async fn socket(&self, token: &str) -> anyhow::Result<Socket> {
        let url = format!(
            "{}/v1/ws?token={token}",
            self.base.replace("http://", "ws://")
        );
        let (_, socket) = self
            .client
            .ws(url)
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("websocket: {e}"))?;
        Ok(socket)
    }

    fn id(v: &Value) -> anyhow::Result<String> {
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no id in {v}"))
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

/// Runs the city until the process stops; errors are logged, never fatal to the server.
pub async fn run(base: String, secret: String, config: CityConfig) {
    if let Err(error) = simulate(base, secret, config).await {
        tracing::error!(%error, "demo city stopped");
    }
}

async fn simulate(base: String, secret: String, config: CityConfig) -> anyhow::Result<()> {
    let keys = Keys::new(&secret);
    let ops = keys.mint(Role::Ops, Uuid::new_v4(), chrono::Duration::days(1));
    let city = City {
        base,
        // Every socket holds a connection: awc's default cap of 100 would starve requests.
        client: awc::Client::builder()
            .connector(awc::Connector::new().limit(0))
            .timeout(Duration::from_secs(10))
            .finish(),
        keys,
        ops,
    };
    let mut rng = StdRng::seed_from_u64(config.seed);

    let mut restaurants = Vec::new();
    for i in 0..config.restaurants {
        let at = around(&mut rng, CENTER, 3_000.0);
        let r = city
            .call(
                "POST",
                "/v1/restaurants",
                &city.ops,
                json!({"name": format!("Restaurant {}", i + 1), "location": point(at)}),
            )
            .await?;
        let id = City::id(&r)?;
        actix_web::rt::spawn(restaurant(city.clone(), id.clone(), rng.random()));
        restaurants.push((id, at));
    }
    for i in 0..config.riders {
        let at = around(&mut rng, CENTER, 4_000.0);
        let r = city
            .call(
                "POST",
                "/v1/riders",
                &city.ops,
                json!({"name": format!("Rider {}", i + 1)}),
            )
            .await?;
        actix_web::rt::spawn(rider(city.clone(), City::id(&r)?, at, rng.random()));
    }
    let mut customers = Vec::new();
    for i in 0..(config.restaurants * 3).max(10) {
        let c = city
            .call("POST", "/v1/customers", &city.ops, json!({"name": format!("Customer {}", i + 1), "phone": "+91 90000 00000", "email": format!("c{i}@example.in")}))
            .await?;
        customers.push(city.keys.mint(
            Role::Customer,
            City::id(&c)?.parse()?,
            chrono::Duration::days(1),
        ));
    }
    tracing::info!(
        restaurants = restaurants.len(),
        riders = config.riders,
        customers = customers.len(),
        "demo city ready: watch it with `dabba token --role ops --sub <any uuid>` and a websocket client on /v1/ws"
    );
    let interval = Duration::from_secs_f64(1.0 / config.orders_per_sec.max(0.01));
    let mut placed = 0u64;
    loop {
        actix_web::rt::time::sleep(interval).await;
        let (rid, at) = restaurants[rng.random_range(0..restaurants.len())].clone();
        let customer = customers[rng.random_range(0..customers.len())].clone();
        let body = json!({
            "restaurant_id": rid,
            "items": [{"name": "Thali", "quantity": rng.random_range(1..4), "unit_price_cents": 18_000}],
            "delivery": {"location": point(around(&mut rng, at, 4_000.0)), "address": "Somewhere in Bengaluru"}
        });
        match city.call("POST", "/v1/orders", &customer, body).await {
            Ok(order) => {
                placed += 1;
                // Some customers change their mind.
                if rng.random_bool(0.05) {
                    let (city, id) = (city.clone(), City::id(&order)?);
                    actix_web::rt::spawn(async move {
                        actix_web::rt::time::sleep(Duration::from_secs(5)).await;
                        let _ = city
                            .call(
                                "POST",
                                &format!("/v1/orders/{id}/cancel"),
                                &customer,
                                json!({}),
                            )
                            .await;
                    });
                }
                if placed.is_multiple_of(20) {
                    tracing::info!(placed, "demo orders placed");
                }
            }
            Err(error) => tracing::warn!(%error, "demo order refused"),
        }
    }
}

/// A restaurant tablet: accepts nine orders in ten after a short think.
async fn restaurant(city: City, id: String, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let Ok(uuid) = id.parse() else { return };
    let token = city
        .keys
        .mint(Role::Restaurant, uuid, chrono::Duration::days(1));
    let Ok(mut socket) = city.socket(&token).await else {
        return;
    };
    while let Some(msg) = next_json(&mut socket).await {
        if msg["type"] != "order.updated" || msg["order"]["stage"] != "awaiting_restaurant" {
            continue;
        }
        let Some(order) = msg["order"]["id"].as_str().map(str::to_owned) else {
            continue;
        };
        let (city, token, id) = (city.clone(), token.clone(), id.clone());
        let accept = rng.random_bool(0.9);
        let think = Duration::from_millis(rng.random_range(500..2_500));
        actix_web::rt::spawn(async move {
            actix_web::rt::time::sleep(think).await;
            let path = if accept { "accept" } else { "reject" };
            let body = if accept {
                json!({})
            } else {
                json!({"reason": "kitchen is full"})
            };
            let _ = city
                .call(
                    "POST",
                    &format!("/v1/restaurants/{id}/orders/{order}/{path}"),
                    &token,
                    body,
                )
                .await;
        });
    }
}

/// A rider: wanders, streams its position every second, accepts four offers in five, and
/// delivers what it accepts.
async fn rider(city: City, id: String, start: (f64, f64), seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let Ok(uuid) = id.parse() else { return };
    let token = city.keys.mint(Role::Rider, uuid, chrono::Duration::days(1));
    let Ok(mut socket) = city.socket(&token).await else {
        return;
    };
    let mut at = start;
    let _ = city
        .call(
            "PUT",
            &format!("/v1/riders/{id}/location"),
            &token,
            point(at),
        )
        .await;
    let _ = city
        .call(
            "PUT",
            &format!("/v1/riders/{id}/status"),
            &token,
            json!({"status": "available"}),
        )
        .await;
    let mut tick = actix_web::rt::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                at = around(&mut rng, at, 60.0);
                let frame = json!({"type": "location", "lat": at.0, "lng": at.1}).to_string();
                if socket.send(ws::Message::Text(frame.into())).await.is_err() { return; }
            }
            msg = next_json(&mut socket) => {
                let Some(msg) = msg else { return };
                match msg["type"].as_str() {
                    Some("offer") => {
                        let Some(order) = msg["order_id"].as_str() else { continue };
                        let answer = if rng.random_bool(0.8) { "accept" } else { "reject" };
                        let frame = json!({"type": answer, "order_id": order}).to_string();
                        if socket.send(ws::Message::Text(frame.into())).await.is_err() { return; }
                    }
                    Some("order.updated") if msg["order"]["stage"] == "rider_assigned" && msg["order"]["rider_id"] == id.as_str() => {
                        let Some(order) = msg["order"]["id"].as_str().map(str::to_owned) else { continue };
                        let (city, token) = (city.clone(), token.clone());
                        actix_web::rt::spawn(async move {
                            actix_web::rt::time::sleep(Duration::from_secs(3)).await;
                            let _ = city.call("POST", &format!("/v1/orders/{order}/pickup"), &token, json!({})).await;
                            actix_web::rt::time::sleep(Duration::from_secs(6)).await;
                            let _ = city.call("POST", &format!("/v1/orders/{order}/deliver"), &token, json!({})).await;
                        });
                    }
                    _ => {}
                }
            }
        }
    }
}
