//! `GET /v1/ws`: one socket per client; what flows depends on the token's role.
//!
//! A session is one `select!` loop over client frames, hub pushes and a heartbeat. Malformed
//! frames get an `error` message and the socket stays open; a client that sends nothing but
//! garbage is disconnected with a policy-violation close. A client cannot weaponise its
//! socket: frames are refused by their declared length ([`frames`]), sockets are capped per
//! subject and address and handshakes are rate limited ([`sockets`]), and a socket that does
//! not read (hub dropped it, a write stalls) or stops answering pings is cut.

mod frames;
mod resume;
mod sockets;

use std::sync::Arc;
use std::time::Instant;

use actix_web::{FromRequest, HttpRequest, HttpResponse, get, web};
use actix_ws::{CloseCode, CloseReason, Session};
use futures_util::StreamExt;
use serde::Deserialize;

pub use sockets::{Permit, SocketRules, Sockets, remember_socket};

use super::auth::{Caller, Role, caller};
use super::error::ApiError;
use super::extract::parse_json;
use super::gate::client_addr;
use super::limits::{self, Class, Key, RateLimiter};
use crate::actors::Engine;
use crate::domain::{CustomerId, LatLng, OrderId, RestaurantId, RiderId};
use crate::events::hub::{Audience, stamp};
use frames::FrameGuard;
use sockets::Cutter;

/// Largest client frame accepted.
pub const MAX_FRAME: usize = 16 * 1024;
/// Consecutive bad frames before the socket is closed.
const MAX_BAD_FRAMES: u32 = 20;

/// What a rider may send.
#[derive(Deserialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Location { lat: f64, lng: f64 },
    Accept { order_id: OrderId },
    Reject { order_id: OrderId },
}

#[utoipa::path(get, path = "/v1/ws", tag = "websocket",
    params(("token" = Option<String>, Query, description = "bearer token, for clients that cannot set headers"),
        ("since" = Option<i64>, Query, minimum = 0, description = "the last `seq` received: replay what was missed after it, then go live")),
    responses((status = 101, description = "switching protocols"), (status = 400, description = "invalid_request: `since` is not a whole number"), (status = 401)))]
#[get("/v1/ws")]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    engine: web::Data<Engine>,
    sockets: web::Data<Sockets>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&req)?;
    let since = since(&req)?;
    let ip = client_addr(&req);
    let limiter = req.app_data::<web::Data<RateLimiter>>().cloned();
    if let Some(limiter) = &limiter {
        let key = match caller.role {
            Role::Ops => Key::Addr(ip),
            _ => Key::Subject(caller.sub),
        };
        if let Err(wait) = limiter.take(Class::Sockets, key).await {
            metrics::counter!("dabba_ws_refused_total", "reason" => "rate").increment(1);
            return Err(limits::limited(wait));
        }
    }
    let permit = Sockets::admit(&sockets, caller.sub, ip)?;
    // The parser sees only what the frame guard let through.
    let guarded: GuardedStream = Box::pin(FrameGuard::new(body, MAX_FRAME));
    let mut guarded = actix_web::dev::Payload::from(guarded);
    let body = web::Payload::from_request(&req, &mut guarded)
        .await
        .map_err(|e| ApiError::invalid(e.to_string()))?;
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
    let link = Link {
        session,
        cutter: Cutter::of(&req),
        rules: sockets.rules,
        _permit: permit,
    };
    actix_web::rt::spawn(run(
        engine.into_inner(),
        limiter,
        caller,
        link,
        stream,
        audience,
        since,
    ));
    Ok(response)
}

/// The `since` query parameter: the last sequence the client received.
fn since(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("query: {e}")))?;
    let Some((_, raw)) = query.iter().find(|(k, _)| k == "since") else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(seq) if seq >= 0 => Ok(Some(seq)),
        _ => Err(ApiError::invalid(
            "since must be a whole number of at least 0 (the last seq received)",
        )),
    }
}

type GuardedStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>>,
>;

/// The server's side of one socket.
struct Link {
    session: Session,
    cutter: Cutter,
    rules: SocketRules,
    _permit: Permit,
}

/// Why a session ends.
enum End {
    /// The client closed or went away: nothing to do.
    Gone,
    /// Close politely with this reason.
    Close(CloseReason),
    /// The client does not read or answer: reset the connection.
    Cut(&'static str),
}

impl Link {
    /// Writes one frame, or gives up after the write timeout.
    async fn send(&mut self, text: &str) -> Result<(), End> {
        match tokio::time::timeout(self.rules.write_timeout, self.session.text(text)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Cut("write_timeout")),
        }
    }
}

async fn run(
    engine: Arc<Engine>,
    limiter: Option<web::Data<RateLimiter>>,
    caller: Caller,
    mut link: Link,
    stream: actix_ws::AggregatedMessageStream,
    audience: Audience,
    since: Option<i64>,
) {
    let (mut sub, sent_up_to) = match since {
        None => (engine.hub().subscribe(audience), None),
        Some(since) => match resume::resume(&engine, &mut link, audience, since).await {
            Ok(r) => (r.subscription, r.sent_up_to),
            Err(end) => return finish(link, end).await,
        },
    };
    // Offers are not in the event log: a rider's socket starts with the one it has open.
    if let Audience::Rider(rider) = audience
        && let Ok(Some(offer)) = engine.open_offer(rider).await
        && let Err(end) = link.send(&stamp(&offer, engine.hub().head())).await
    {
        engine.hub().unsubscribe(sub.audience, sub.id);
        return finish(link, end).await;
    }
    let mut stream = stream;
    let mut heartbeat = tokio::time::interval(link.rules.heartbeat);
    let mut last_pong = Instant::now();
    let mut bad_frames = 0u32;
    let dropped = sub.dropped.clone();
    let end = loop {
        tokio::select! {
            frame = stream.next() => {
                let text = match frame {
                    None => break End::Gone,
                    Some(Err(actix_ws::ProtocolError::Io(_))) => break End::Cut("oversized_frame"),
                    Some(Err(e)) => break End::Close(CloseReason { code: CloseCode::Protocol, description: Some(e.to_string()) }),
                    Some(Ok(actix_ws::AggregatedMessage::Text(t))) => t,
                    Some(Ok(actix_ws::AggregatedMessage::Ping(p))) => {
                        if link.session.pong(&p).await.is_err() { break End::Gone; }
                        continue;
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => {
                        last_pong = Instant::now();
                        continue;
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Close(_))) => break End::Gone,
                    Some(Ok(actix_ws::AggregatedMessage::Binary(_))) => {
                        bad_frames += 1;
                        if let Err(end) = link.send(&reply(&engine, &ApiError::invalid("frames must be JSON text"))).await { break end; }
                        if bad_frames >= MAX_BAD_FRAMES { break End::Close(policy_close()); }
                        continue;
                    }
                };
                match handle_text(&engine, limiter.as_ref().map(|l| l.get_ref()), &caller, &text).await {
                    Ok(()) => bad_frames = 0,
                    Err(e) => {
                        if e.code == "invalid_request" { bad_frames += 1; }
                        if let Err(end) = link.send(&reply(&engine, &e)).await { break end; }
                        if bad_frames >= MAX_BAD_FRAMES { break End::Close(policy_close()); }
                    }
                }
            }
            push = sub.receiver.recv() => {
                match push {
                    // Already replayed from the log.
                    Some(push) if push.logged && sent_up_to.is_some_and(|s| push.seq <= s) => {}
                    Some(push) => {
                        if let Err(end) = link.send(&push.text).await { break end; }
                        push_seconds().record(push.queued.elapsed().as_secs_f64());
                    }
                    None => break End::Cut("too_slow"),
                }
            }
            () = dropped.notified() => break End::Cut("too_slow"),
            _ = heartbeat.tick() => {
                // Pongs answer pings: none for two beats means nobody is there.
                if last_pong.elapsed() > link.rules.heartbeat * 2 + link.rules.heartbeat / 2 {
                    break End::Cut("no_pong");
                }
                if link.session.ping(b"").await.is_err() { break End::Gone; }
            }
        }
    };
    engine.hub().unsubscribe(sub.audience, sub.id);
    finish(link, end).await;
}

/// Closes or cuts the socket as `end` says.
async fn finish(mut link: Link, end: End) {
    match end {
        End::Gone => {}
        End::Close(reason) => {
            let _ =
                tokio::time::timeout(link.rules.write_timeout, link.session.close(Some(reason)))
                    .await;
        }
        End::Cut(reason) => {
            metrics::counter!("dabba_ws_dropped_total", "reason" => reason).increment(1);
            tracing::debug!(reason, "websocket cut");
            link.cutter.cut();
        }
    }
}

/// An error answering a client frame, stamped like every message the socket carries.
fn reply(engine: &Engine, e: &ApiError) -> std::sync::Arc<str> {
    stamp(&e.to_message().to_json(), engine.hub().head())
}

fn policy_close() -> CloseReason {
    CloseReason {
        code: CloseCode::Policy,
        description: Some("too many malformed frames".into()),
    }
}

/// Decodes and runs one client message.
pub async fn handle_text(
    engine: &Engine,
    limiter: Option<&RateLimiter>,
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
            if let Some(limiter) = limiter
                && let Err(wait) = limiter.take_local(Class::Location, Key::Subject(rider.0))
            {
                return Err(limits::limited(wait));
            }
            // A socket's positions are not answered: handed on without waiting for the
            // dispatcher, which saves waking this thread back once per position.
            engine.pass_location(rider, at)?;
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

/// `dabba_ws_push_seconds`, recorded on every push.
fn push_seconds() -> &'static metrics::Histogram {
    static HANDLE: std::sync::OnceLock<metrics::Histogram> = std::sync::OnceLock::new();
    crate::telemetry::registered(&HANDLE, || metrics::histogram!("dabba_ws_push_seconds"))
}
