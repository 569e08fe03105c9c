//! `Idempotency-Key` for state-changing requests that must not act twice when retried
//! (cancel, accept, reject): the first response is saved, per subject and key, and a retry
//! with the same key gets it back. The same key on a different request is
//! `422 idempotency_key_reused`. Keys are kept two days (the promise is 24 h).
//! `POST /v1/orders` keeps its key in the same transaction as the order instead.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::actors::{Engine, EngineError};
use crate::persistence::SavedResponse;

/// The `Idempotency-Key` header, if any: 1 to 255 visible characters.
pub fn key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(raw) = headers.get("Idempotency-Key") else {
        return Ok(None);
    };
    raw.to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.chars().all(|c| c.is_ascii_graphic()))
        .map(|k| Some(k.to_owned()))
        .ok_or_else(|| ApiError::invalid("Idempotency-Key must be 1 to 255 visible characters"))
}

/// A fingerprint of what the request asks for.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    format!("{:x}", h.finalize())
}

/// A JSON reply that can be saved and replayed.
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
}

impl Reply {
    pub fn ok(body: &impl Serialize) -> Self {
        // Our reply types are plain data: serialising cannot fail.
        Self {
            status: StatusCode::OK,
            body: serde_json::to_string(body).expect("reply serialises"),
        }
    }

    fn respond(self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type("application/json")
            .body(self.body)
    }
}

fn replay(saved: SavedResponse, hash: &str) -> ApiResult<HttpResponse> {
    if saved.request_hash != hash {
        return Err(EngineError::IdempotencyKeyReused.into());
    }
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    Ok(Reply {
        status,
        body: saved.body,
    }
    .respond())
}

/// Requests of one subject with one key run one at a time on this node, so a retry racing
/// the first attempt waits for it and replays its answer (instead of failing because the
/// first one already acted).
type KeyLocks = Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>;
static IN_FLIGHT: LazyLock<KeyLocks> = LazyLock::new(KeyLocks::default);

/// Holds the turn of one (subject, key); forgets the lock when nobody else waits for it.
struct Turn {
    id: (String, String),
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Turn {
    fn new(subject: &str, key: &str) -> Self {
        let id = (subject.to_owned(), key.to_owned());
        // A map of locks holds no invariant a panicking holder could break.
        let mut all = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        let lock = all.entry(id.clone()).or_default().clone();
        Self { id, lock }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut all = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        // Ours and the map's: nobody else is waiting.
        if Arc::strong_count(&self.lock) == 2 {
            all.remove(&self.id);
        }
    }
}

/// Runs `act` unless this subject already sent this key, in which case the first response is
/// returned; only successes are saved (a failure is safe to retry).
pub async fn run(
    req: &HttpRequest,
    engine: &Engine,
    caller: &Caller,
    body: &[u8],
    act: impl Future<Output = ApiResult<Reply>>,
) -> ApiResult<HttpResponse> {
    let Some(key) = key(req.headers())? else {
        return act.await.map(Reply::respond);
    };
    let subject = caller.sub.to_string();
    let hash = fingerprint(&[
        req.method().as_str().as_bytes(),
        req.path().as_bytes(),
        body,
    ]);
    let turn = Turn::new(&subject, &key);
    let _mine = turn.lock.lock().await;
    if let Some(saved) = engine.saved_response(&subject, &key).await? {
        return replay(saved, &hash);
    }
    match act.await {
        Ok(reply) => {
            let saved = SavedResponse {
                request_hash: hash.clone(),
                status: reply.status.as_u16(),
                body: reply.body,
            };
            if engine
                .save_response(subject.clone(), key.clone(), saved.clone())
                .await?
            {
                return Ok(Reply {
                    status: reply.status,
                    body: saved.body,
                }
                .respond());
            }
            // A concurrent retry with the same key won: answer as it did.
            let first = engine.saved_response(&subject, &key).await?;
            first.map_or(
                Ok(Reply {
                    status: reply.status,
                    body: saved.body,
                }
                .respond()),
                |s| replay(s, &hash),
            )
        }
        Err(e) => {
            // Failed because a concurrent request with the same key already acted?
            match engine.saved_response(&subject, &key).await {
                Ok(Some(saved)) if saved.request_hash == hash => replay(saved, &hash),
                _ => Err(e),
            }
        }
    }
}
