//! `GET /v1/ws`: one socket per client; what flows depends on the token's role.
//!
//! A session is one `select!` loop over client frames, hub pushes and a heartbeat. Malformed
//! frames get an `error` message and the socket stays open; a client that sends nothing but
//! garbage is disconnected with a policy-violation close.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::{CloseCode, CloseReason, Session};
use futures_util::StreamExt;
use serde::Deserialize;

use super::auth::{Caller, Role, authenticate};
use super::error::ApiError;
use super::extract::parse_json;
use super::limits::{self, Bucket, Class, Rate, RateLimiter};
use crate::actors::Engine;
use crate::domain::{CustomerId, LatLng, OrderId, RestaurantId, RiderId};
use crate::events::hub::{Audience, Subscription};
use crate::wire::ServerMessage;

/// Largest client frame accepted.
pub const MAX_FRAME: usize = 16 * 1024;
/// Consecutive bad frames before the socket is closed.
const MAX_BAD_FRAMES: u32 = 20;
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The location bucket of one socket.
pub struct FrameLimit {
    rate: Rate,
    bucket: Bucket,
}

impl FrameLimit {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            bucket: Bucket::full(rate),
        }
    }
}

/// What a rider may send.
#[derive(Deserialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Location { lat: f64, lng: f64 },
    Accept { order_id: OrderId },
    Reject { order_id: OrderId },
}

#[utoipa::path(get, path = "/v1/ws", tag = "websocket",
    params(("token" = Option<String>, Query, description = "bearer token, for clients that cannot set headers")),
    responses((status = 101, description = "switching protocols"), (status = 401)))]
#[get("/v1/ws")]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    engine: web::Data<Engine>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req)?;
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::invalid(format!("not a websocket upgrade: {e}")))?;
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let audience = match caller.role {
        Role::Customer => Audience::Customer(CustomerId(caller.sub)),
        Role::Rider => Audience::Rider(RiderId(caller.sub)),
        Role::Restaurant => Audience::Restaurant(RestaurantId(caller.sub)),
        Role::Ops => Audience::Ops,
    };
    let subscription = engine.hub().subscribe(audience);
    // A socket lives on one node, so its frames are limited in-process: the busiest stream
    // (positions) never waits on a Redis round trip.
    let limit = req
        .app_data::<web::Data<RateLimiter>>()
        .map(|l| FrameLimit::new(l.rate(Class::Location)));
    actix_web::rt::spawn(run(
        engine.into_inner(),
        limit,
        caller,
        session,
        stream,
        subscription,
    ));
    Ok(response)
}

async fn run(
    engine: Arc<Engine>,
    mut limit: Option<FrameLimit>,
    caller: Caller,
    mut session: Session,
    stream: actix_ws::AggregatedMessageStream,
    mut sub: Subscription,
) {
    let mut stream = stream;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut bad_frames = 0u32;
    let close = loop {
        tokio::select! {
            frame = stream.next() => {
                let text = match frame {
                    None => break None,
                    Some(Err(e)) => break Some(CloseReason { code: CloseCode::Protocol, description: Some(e.to_string()) }),
                    Some(Ok(actix_ws::AggregatedMessage::Text(t))) => t,
                    Some(Ok(actix_ws::AggregatedMessage::Ping(p))) => {
                        if session.pong(&p).await.is_err() { break None; }
                        continue;
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => continue,
                    Some(Ok(actix_ws::AggregatedMessage::Close(_))) => break None,
                    Some(Ok(actix_ws::AggregatedMessage::Binary(_))) => {
                        bad_frames += 1;
                        if reply(&mut session, &ApiError::invalid("frames must be JSON text").to_message()).await.is_err() { break None; }
                        if bad_frames >= MAX_BAD_FRAMES { break Some(policy_close()); }
                        continue;
                    }
                };
                                match handle_text(&engine, limit.as_mut(), &caller, &text).await {
                    Ok(()) => bad_frames = 0,
                    Err(e) => {
                        if e.code == "invalid_request" { bad_frames += 1; }
                        if reply(&mut session, &e.to_message()).await.is_err() { break None; }
                        if bad_frames >= MAX_BAD_FRAMES { break Some(policy_close()); }
                    }
                }
            }
            push = sub.receiver.recv() => {
                match push {
                    Some(text) => if session.text(&*text).await.is_err() { break None; },
                    // The hub dropped us for falling behind.
                    None => break Some(CloseReason { code: CloseCode::Again, description: Some("too slow".into()) }),
                }
            }
            _ = heartbeat.tick() => {
                if session.ping(b"").await.is_err() { break None; }
            }
        }
    };
    engine.hub().unsubscribe(sub.audience, sub.id);
    let _ = session.close(close).await;
}

fn policy_close() -> CloseReason {
    CloseReason {
        code: CloseCode::Policy,
        description: Some("too many malformed frames".into()),
    }
}

async fn reply(session: &mut Session, msg: &ServerMessage) -> Result<(), actix_ws::Closed> {
    session.text(msg.to_json()).await
}

/// Decodes and runs one client message.
pub async fn handle_text(
    engine: &Engine,
    limit: Option<&mut FrameLimit>,
    caller: &Caller,
    text: &str,
) -> Result<(), ApiError> {
    let msg: ClientMessage = parse_json(text.as_bytes())?;
    let rider = match caller.role {
        Role::Rider => RiderId(caller.sub),
        _ => return Err(ApiError::forbidden()),
    };
    match msg {
        ClientMessage::Location { lat, lng } => {
            let at = LatLng::parse(lat, lng).map_err(|e| ApiError::invalid(e.to_string()))?;
            if let Some(limit) = limit
                && let Err(wait) = limit.bucket.take(limit.rate)
            {
                return Err(limits::limited(wait));
            }
            engine.update_location(rider, at).await?;
        }
        ClientMessage::Accept { order_id } => {
            engine.accept_offer(rider, order_id).await?;
        }
        ClientMessage::Reject { order_id } => {
            engine.reject_offer(rider, order_id).await?;
        }
    }
    Ok(())
}
