//! The simulated parties of `dabba load`: customers ordering open-loop, restaurants answering
//! from their sockets, riders streaming positions and answering offers.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};

use super::LoadConfig;
use super::report::Shared;
use dabba::client::{Client, Socket};

/// Calls and records the latency under `flow`; transport failures, 5xx and 429 are errors.
pub(super) async fn timed(
    client: &Client,
    state: &Shared,
    flow: &'static str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Option<Bytes> {
    let t = Instant::now();
    // The answer's bytes, not a JSON tree: only a placement's `id` is read.
    match client.call_bytes(method, path, Some(token), body).await {
        Ok((status, body)) if (200..300).contains(&status) => {
            state.borrow_mut().record(flow, t.elapsed());
            Some(body)
        }
        // The workload races itself (a customer cancels while the restaurant accepts):
        // the server refusing is the right answer, not an error.
        Ok((404 | 409 | 422, _)) => None,
        // Shed load (503 overloaded) or rate limited: counted apart from errors.
        Ok((429 | 503, _)) => {
            state.borrow_mut().refused(flow);
            None
        }
        _ => {
            state.borrow_mut().error(flow);
            None
        }
    }
}

pub(super) async fn customer_order(
    client: Client,
    state: Shared,
    token: String,
    body: Value,
    cancel: bool,
    update: bool,
) {
    let Some(order) = timed(
        &client,
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
    let Ok(Placed { id }) = serde_json::from_slice::<Placed>(&order) else {
        state.borrow_mut().error("place_order");
        return;
    };
    let id = id.into_owned();
    if update {
        let mut delivery = body["delivery"].clone();
        delivery["address"] = json!("Load St, flat 2");
        let _ = client
            .call_bytes(
                "PATCH",
                &format!("/v1/orders/{id}"),
                Some(&token),
                Some(&json!({"delivery": delivery})),
            )
            .await;
    }
    if cancel {
        actix_rt::time::sleep(Duration::from_secs(2)).await;
        let _ = client
            .call_bytes(
                "POST",
                &format!("/v1/orders/{id}/cancel"),
                Some(&token),
                Some(&json!({})),
            )
            .await;
    }
}

/// The one field of a placement's answer the customer reads.
#[derive(Deserialize)]
struct Placed<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

/// The fields of a push the simulated parties act on. Read borrowed from the frame, the
/// rest skipped: a whole `serde_json::Value` per push (an order view is ~1 kB) was most of
/// the generator's CPU, and the generator shares the machine with the server it measures.
#[derive(Deserialize)]
pub(super) struct Push<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    sent_at_us: Option<i64>,
    #[serde(borrow)]
    order_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    order: Option<PushedOrder<'a>>,
}

#[derive(Deserialize)]
pub(super) struct PushedOrder<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stage: Option<Cow<'a, str>>,
}

impl<'a> Push<'a> {
    /// `None` for a frame that is not a push (the server's frames always are).
    pub(super) fn read(frame: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(frame).ok()
    }
}

/// Records push latency from the server's `sent_at_us` stamp.
pub(super) fn record_push(state: &Shared, msg: &Push<'_>) {
    if let Some(sent) = msg.sent_at_us {
        let lag = chrono::Utc::now().timestamp_micros() - sent;
        state
            .borrow_mut()
            .record("push", Duration::from_micros(lag.max(1) as u64));
    }
}

pub(super) async fn restaurant(
    client: Client,
    state: Shared,
    id: String,
    token: String,
    mut socket: Socket,
    think: Duration,
) {
    state.borrow_mut().ws_open += 1;
    while let Some(frame) = socket.next_text().await {
        let Some(msg) = Push::read(&frame) else {
            continue;
        };
        record_push(&state, &msg);
        if state.borrow().stop {
            break;
        }
        let order = match msg.order {
            Some(PushedOrder {
                id: Some(id),
                stage: Some(stage),
            }) if msg.kind == "order.updated" && stage == "awaiting_restaurant" => id.into_owned(),
            _ => continue,
        };
        let (client, state, token, id) = (client.clone(), state.clone(), token.clone(), id.clone());
        actix_rt::spawn(async move {
            actix_rt::time::sleep(think).await;
            let path = format!("/v1/restaurants/{id}/orders/{order}/accept");
            // Dispatch runs inside the accept, so the offer can beat the accept's response:
            // offer delivery is timed from the moment the accept is sent.
            state
                .borrow_mut()
                .accepted_at
                .insert(order.clone(), Instant::now());
            if timed(
                &client,
                &state,
                "restaurant_accept",
                "POST",
                &path,
                &token,
                None,
            )
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
pub(super) struct SimRider {
    pub(super) id: String,
    pub(super) token: String,
    pub(super) start: (f64, f64),
    pub(super) seed: u64,
}

pub(super) async fn rider(
    client: Client,
    state: Shared,
    me: SimRider,
    mut socket: Socket,
    cfg: LoadConfig,
) {
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
                let frame = format!(r#"{{"type":"location","lat":{},"lng":{}}}"#, at.0, at.1);
                let t = Instant::now();
                if socket.send_text(&frame).await.is_err() {
                    state.borrow_mut().error("location_update");
                    break;
                }
                state.borrow_mut().record("location_update", t.elapsed());
            }
            frame = socket.next_text() => {
                let Some(frame) = frame else { break };
                let Some(msg) = Push::read(&frame) else { continue };
                record_push(&state, &msg);
                if msg.kind == "offer" {
                        let Some(order) = msg.order_id.map(Cow::into_owned) else { continue };
                        let asked = state.borrow_mut().accepted_at.remove(&order);
                        if let Some(t) = asked {
                            state.borrow_mut().record("offer_delivery", t.elapsed());
                        }
                        let accept = rng.random_bool(cfg.accept_ratio);
                        let (client, state, token, id, think) = (client.clone(), state.clone(), token.clone(), id.clone(), cfg.think_time);
                        actix_rt::spawn(async move {
                            actix_rt::time::sleep(think).await;
                            let answer = if accept { "accept" } else { "reject" };
                            let path = format!("/v1/riders/{id}/offers/{order}/{answer}");
                            if accept {
                                if timed(&client, &state, "offer_accept", "POST", &path, &token, None).await.is_some() {
                                    // Ride it out so the rider is free again.
                                    actix_rt::time::sleep(think).await;
                                    let _ = client.call_bytes("POST", &format!("/v1/orders/{order}/pickup"), Some(&token), Some(&json!({}))).await;
                                    actix_rt::time::sleep(think).await;
                                    let _ = client.call_bytes("POST", &format!("/v1/orders/{order}/deliver"), Some(&token), Some(&json!({}))).await;
                                }
                            } else {
                                let _ = client.call_bytes("POST", &path, Some(&token), None).await;
                            }
                        });
                }
            }
        }
    }
    state.borrow_mut().ws_open -= 1;
}
