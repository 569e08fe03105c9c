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

/// At most one "request failed" line per second per worker thread. Overloaded, the server
/// refuses thousands of requests a second (each counted in the metrics); a line for each
/// would spend the CPU it is short of on writing the log.
const FAILURE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Default)]
struct FailureLog {
    last: Option<Instant>,
    /// Failures not logged since the last line.
    suppressed: u64,
}

impl FailureLog {
    /// `Some(failures not logged since the last line)` when this one should be logged.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < FAILURE_LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

thread_local! {
    static FAILURE_LOG: RefCell<FailureLog> = RefCell::default();
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
    if status.is_server_error()
        && let Some(suppressed) = FAILURE_LOG.with(|log| log.borrow_mut().admit(Instant::now()))
    {
        span.in_scope(|| {
            tracing::warn!(status = status.as_u16(), suppressed, "request failed");
        });
    }
    let mut res = res?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_logged_once_a_second_with_the_count_left_out() {
        let mut log = FailureLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit(t0), Some(0));
        for ms in [1, 10, 999] {
            assert_eq!(log.admit(t0 + std::time::Duration::from_millis(ms)), None);
        }
        assert_eq!(log.admit(t0 + FAILURE_LOG_EVERY), Some(3));
        assert_eq!(log.admit(t0 + FAILURE_LOG_EVERY * 3), Some(0));
    }
}
