//! Logs (tracing) and metrics (Prometheus text at `/metrics`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
///
/// actix-http logs every malformed request (bad header, broken framing) at ERROR: anyone can
/// send those, so they would flood the log. They are counted in
/// `dabba_http_malformed_total` and logged at debug instead.
pub fn init_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter.and(filter_fn(|m| !is_malformed_request(m)))),
        )
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

/// The process-wide metrics recorder; installed once, shared by every server in the process.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; ours then stays unused.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
