//! `dabba demo`: a simulated city that drives the server through its public API only —
//! restaurants answering orders on their WebSocket, riders moving and answering offers on
//! theirs, customers ordering — so a newcomer sees dispatch live.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use dabba::client::{Client, Tokens, point};
use dabba::tokens::{Keys, Role};

/// The simulated city's centre (Bengaluru).
const CENTER: (f64, f64) = (12.9716, 77.5946);
/// Metres per degree of latitude, near enough for placing simulated points.
const M_PER_DEG: f64 = 111_195.0;
/// How long the city waits for any one answer of the server.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Share of orders a restaurant accepts, and of offers a rider accepts.
const RESTAURANT_ACCEPTS: f64 = 0.9;
const RIDER_ACCEPTS: f64 = 0.8;
/// How long a demo rider takes to reach the restaurant, then the customer.
const RIDE_TO_RESTAURANT: Duration = Duration::from_secs(12);
const RIDE_TO_CUSTOMER: Duration = Duration::from_secs(12);
/// Share of customers who cancel, a little after ordering.
const CUSTOMER_CANCELS: f64 = 0.05;

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

#[derive(Clone)]
struct City {
    client: Client,
    tokens: Tokens,
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

/// Runs the city until the process stops; errors are logged, never fatal to the server.
pub async fn run(base: String, keys: Keys, config: CityConfig) {
    if let Err(error) = simulate(base, keys, config).await {
        tracing::error!(%error, "demo city stopped");
    }
}

async fn simulate(base: String, keys: Keys, config: CityConfig) -> anyhow::Result<()> {
    let tokens = Tokens(keys);
    let ops = tokens.mint(Role::Ops, &Uuid::new_v4().to_string())?;
    let city = City {
        client: Client::new(&base, CALL_TIMEOUT),
        tokens,
        ops,
    };
    let mut rng = StdRng::seed_from_u64(config.seed);

    let mut restaurants = Vec::new();
    for i in 0..config.restaurants {
        let at = around(&mut rng, CENTER, 3_000.0);
        let name = format!("Restaurant {}", i + 1);
        let id = city.client.add_restaurant(&city.ops, &name, at).await?;
        actix_web::rt::spawn(restaurant(city.clone(), id.clone(), rng.random()));
        restaurants.push((id, at));
    }
    for i in 0..config.riders {
        let at = around(&mut rng, CENTER, 4_000.0);
        let id = city
            .client
            .add_rider(&city.ops, &format!("Rider {}", i + 1))
            .await?;
        actix_web::rt::spawn(rider(city.clone(), id, at, rng.random()));
    }
    let mut customers = Vec::new();
    for i in 0..(config.restaurants * 3).max(10) {
        let name = format!("Customer {}", i + 1);
        let id = city
            .client
            .add_customer(&city.ops, &name, &format!("c{i}@example.in"))
            .await?;
        customers.push(city.tokens.mint(Role::Customer, &id)?);
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
            "items": dabba::client::thalis(rng.random_range(1..4)),
            "delivery": {"location": point(around(&mut rng, at, 4_000.0)), "address": "Somewhere in Bengaluru"}
        });
        let placement = city.client.place_order(&customer, &body).await;
        match placement.and_then(|r| r.expect_ok("placing an order")) {
            Ok(order) => {
                placed += 1;
                // Some customers change their mind.
                if rng.random_bool(CUSTOMER_CANCELS) {
                    let (city, id) = (city.clone(), order.id()?);
                    actix_web::rt::spawn(async move {
                        actix_web::rt::time::sleep(Duration::from_secs(5)).await;
                        let _ = city.client.order_step(&customer, &id, "cancel").await;
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
    let Ok(token) = city.tokens.mint(Role::Restaurant, &id) else {
        return;
    };
    let Ok(mut socket) = city.client.socket(&token).await else {
        return;
    };
    while let Some(msg) = socket.next_json().await {
        if msg["type"] != "order.updated" || msg["order"]["stage"] != "awaiting_restaurant" {
            continue;
        }
        let Some(order) = msg["order"]["id"].as_str().map(str::to_owned) else {
            continue;
        };
        let (city, token, id) = (city.clone(), token.clone(), id.clone());
        let accept = rng.random_bool(RESTAURANT_ACCEPTS);
        let think = Duration::from_millis(rng.random_range(500..2_500));
        actix_web::rt::spawn(async move {
            actix_web::rt::time::sleep(think).await;
            let _ = city.client.answer_order(&id, &token, &order, accept).await;
        });
    }
}

/// A rider: wanders, streams its position every second, accepts four offers in five, and
/// delivers what it accepts.
async fn rider(city: City, id: String, start: (f64, f64), seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let Ok(token) = city.tokens.mint(Role::Rider, &id) else {
        return;
    };
    let Ok(mut socket) = city.client.socket(&token).await else {
        return;
    };
    let mut at = start;
    if let Err(error) = city.client.rider_online(&id, &token, at).await {
        tracing::warn!(%error, "demo rider could not come online");
    }
    let mut tick = actix_web::rt::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                at = around(&mut rng, at, 60.0);
                let frame = json!({"type": "location", "lat": at.0, "lng": at.1});
                if socket.send_json(&frame).await.is_err() { return; }
            }
            msg = socket.next_json() => {
                let Some(msg) = msg else { return };
                match msg["type"].as_str() {
                    Some("offer") => {
                        let Some(order) = msg["order_id"].as_str() else { continue };
                        let answer = if rng.random_bool(RIDER_ACCEPTS) { "accept" } else { "reject" };
                        let frame = json!({"type": answer, "order_id": order});
                        if socket.send_json(&frame).await.is_err() { return; }
                    }
                    Some("order.updated") if msg["order"]["stage"] == "rider_assigned" && msg["order"]["rider_id"] == id.as_str() => {
                        let Some(order) = msg["order"]["id"].as_str().map(str::to_owned) else { continue };
                        let (city, token) = (city.clone(), token.clone());
                        actix_web::rt::spawn(async move {
                            // The ride to the restaurant, then to the customer (an order
                            // handed to another rider meanwhile is no longer this one's).
                            actix_web::rt::time::sleep(RIDE_TO_RESTAURANT).await;
                            let _ = city.client.order_step(&token, &order, "pickup").await;
                            actix_web::rt::time::sleep(RIDE_TO_CUSTOMER).await;
                            let _ = city.client.order_step(&token, &order, "deliver").await;
                        });
                    }
                    _ => {}
                }
            }
        }
    }
}
