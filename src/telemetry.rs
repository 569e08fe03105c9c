//! Logs (tracing) and metrics (Prometheus text at `/metrics`).

pub mod catalogue;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds (seconds) of every `*_seconds` histogram.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one readable line per event.
    Text,
    /// For ELK/Loki: one JSON object per line, with the fields of the event and of the request
    /// span it happened in (`span.request_id`, …).
    Json,
}

impl LogFormat {
    /// `DABBA_LOG_FORMAT=json` or text (the default; anything else is text, said once).
    pub fn from_env() -> Self {
        match std::env::var("DABBA_LOG_FORMAT").as_deref() {
            Ok("json") => LogFormat::Json,
            Ok("text") | Err(_) => LogFormat::Text,
            Ok(other) => {
                eprintln!("DABBA_LOG_FORMAT={other:?} is not json or text; logging text");
                LogFormat::Text
            }
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or JSON lines.
///
/// actix-http logs every malformed request (bad header, broken framing) at ERROR: anyone can
/// send those, so they would flood the log. They are counted in
/// `dabba_http_malformed_total` and logged at debug instead.
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let not_malformed = filter.and(filter_fn(|m| !is_malformed_request(m)));
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(not_malformed)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(not_malformed)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(MalformedRequests.with_filter(filter_fn(is_malformed_request)))
        .try_init();
}

fn is_malformed_request(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::ERROR && meta.target().starts_with("actix_http::h1")
}

/// Counts malformed requests and logs them again at debug.
struct MalformedRequests;

impl<S: tracing::Subscriber> Layer<S> for MalformedRequests {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        metrics::counter!("dabba_http_malformed_total").increment(1);
        let mut message = String::new();
        event.record(
            &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                if field.name() == "message" {
                    message = format!("{value:?}");
                }
            },
        );
        tracing::debug!(target: "dabba::http", %message, "malformed request dropped");
    }
}

/// A metric handle registered once, after the recorder is installed. `metrics::counter!` and
/// friends look the name and labels up in the recorder's registry on every call (a hash and
/// a lock): on the paths every request or push takes, keep the handle instead.
pub fn registered<T>(cell: &'static OnceLock<T>, register: impl FnOnce() -> T) -> &'static T {
    cell.get_or_init(|| {
        // Registering before the recorder exists would keep a handle that records nothing.
        let _ = metrics_handle();
        register()
    })
}

/// The process-wide metrics recorder; installed once, shared by every server in the process.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Latencies as histograms with buckets (Prometheus can aggregate those across
            // nodes and compute any quantile), from 1 ms to 10 s.
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; ours then stays unused.
            if metrics::set_global_recorder(recorder).is_ok() {
                catalogue::describe();
            }
            handle
        })
        .clone()
}
