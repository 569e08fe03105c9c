//! What every request leaves behind: an id (the caller's `X-Request-Id` when it is sane, else
//! a new one) echoed in the response and carried by every log line of the request (its span),
//! and its count and latency by route pattern, method and status.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_ID_CHARS: usize = 128;

/// The caller's id if it is short and plain (it goes into logs), else a new UUID.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= MAX_ID_CHARS
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// A route's request counter and latency histogram for one method and status.
type Handles = (metrics::Counter, metrics::Histogram);

thread_local! {
    /// Handles already registered on this worker thread: building a labelled key and finding
    /// it in the registry on every request cost ~2 % of the server's CPU under load. Bounded by
    /// routes × methods × statuses (unmatched paths share one route label).
    static HANDLES: RefCell<HashMap<(String, Method, StatusCode), Handles>> =
        RefCell::new(HashMap::new());
}

fn handles(route: String, method: Method, status: StatusCode) -> Handles {
    HANDLES.with(|cache| {
        cache
            .borrow_mut()
            .entry((route, method, status))
            .or_insert_with_key(|(route, method, status)| {
                let labels = [
                    ("route", route.clone()),
                    ("method", method.as_str().to_owned()),
                    ("status", status.as_str().to_owned()),
                ];
                (
                    metrics::counter!("dabba_http_requests_total", &labels),
                    metrics::histogram!("dabba_http_request_duration_seconds", &labels),
                )
            })
            .clone()
    })
}

pub async fn middleware<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let id = request_id(&req);
    let method = req.method().clone();
    let span =
        tracing::info_span!("request", request_id = %id, method = %method, path = %req.path());
    let started = Instant::now();
    let res = next.call(req).instrument(span.clone()).await;
    let (status, route) = match &res {
        Ok(res) => (
            res.status(),
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned()),
        ),
        // Rare (handlers answer their errors themselves); the error's own status is counted.
        Err(e) => (e.as_response_error().status_code(), "unmatched".to_owned()),
    };
    let (count, latency) = handles(route, method, status);
    count.increment(1);
    latency.record(started.elapsed().as_secs_f64());
    if status.is_server_error() {
        span.in_scope(|| tracing::warn!(status = status.as_u16(), "request failed"));
    }
    let mut res = res?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}
