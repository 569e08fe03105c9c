//! Every metric dabba exports, with its help text: described to the exporter at start, and
//! listed in the README (a test keeps the three — code, this table, the README — in step).

/// What a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Name, kind, labels, help.
pub type Entry = (&'static str, Kind, &'static str, &'static str);

use Kind::{Counter, Gauge, Histogram};

pub const CATALOGUE: &[Entry] = &[
    // Requests
    (
        "dabba_http_requests_total",
        Counter,
        "route, method, status",
        "HTTP requests answered",
    ),
    (
        "dabba_http_request_duration_seconds",
        Histogram,
        "route, method, status",
        "time to answer a request",
    ),
    (
        "dabba_http_malformed_total",
        Counter,
        "",
        "malformed HTTP requests dropped by the server",
    ),
    (
        "dabba_body_timeouts_total",
        Counter,
        "",
        "request bodies that did not arrive in time (408)",
    ),
    (
        "dabba_admission_limit",
        Gauge,
        "",
        "placements allowed in flight (adapts to latency)",
    ),
    (
        "dabba_admission_refused_total",
        Counter,
        "",
        "placements refused 503 because placements ran slow",
    ),
    (
        "dabba_rate_limit_decisions_total",
        Counter,
        "class, decision",
        "rate-limit checks, allowed or limited",
    ),
    (
        "dabba_rate_limited_total",
        Counter,
        "class",
        "requests refused 429",
    ),
    (
        "dabba_rate_limiter_fallback_total",
        Counter,
        "",
        "rate-limit checks answered locally because Redis was away",
    ),
    // Orders and dispatch
    ("dabba_orders_placed_total", Counter, "", "orders placed"),
    (
        "dabba_order_transitions_total",
        Counter,
        "stage",
        "orders entering each stage",
    ),
    (
        "dabba_live_orders",
        Gauge,
        "",
        "orders not finished (one actor each)",
    ),
    (
        "dabba_scheduled_orders_started_total",
        Counter,
        "",
        "scheduled orders put to their restaurant at their start",
    ),
    (
        "dabba_restaurant_timeouts_total",
        Counter,
        "",
        "orders rejected for a restaurant that did not answer",
    ),
    (
        "dabba_recurring_occurrences_total",
        Counter,
        "status",
        "recurring-order dates dealt with (placed, failed, missed)",
    ),
    ("dabba_offers_total", Counter, "", "offers made to riders"),
    (
        "dabba_offer_answers_total",
        Counter,
        "answer",
        "riders' answers to offers",
    ),
    (
        "dabba_offer_timeouts_total",
        Counter,
        "",
        "offers that expired unanswered",
    ),
    (
        "dabba_dispatch_seconds",
        Histogram,
        "",
        "from the restaurant's accept to a rider's assignment",
    ),
    (
        "dabba_offers_per_order",
        Histogram,
        "",
        "riders offered an order until one accepted",
    ),
    (
        "dabba_orders_waiting_for_rider",
        Gauge,
        "",
        "orders looking for a rider",
    ),
    ("dabba_riders", Gauge, "", "riders known to dispatch"),
    (
        "dabba_riders_available",
        Gauge,
        "",
        "riders available for offers",
    ),
    (
        "dabba_location_updates_total",
        Counter,
        "",
        "rider positions received",
    ),
    (
        "dabba_position_feed_errors_total",
        Counter,
        "",
        "rider positions not published to Redis",
    ),
    // Actors
    (
        "dabba_actors",
        Gauge,
        "kind",
        "live actors by kind (order, restaurant, dispatcher)",
    ),
    (
        "dabba_actor_mailbox",
        Gauge,
        "kind",
        "requests waiting for actors of the kind",
    ),
    (
        "dabba_actor_restarts_total",
        Counter,
        "kind",
        "actor restarts after a failure",
    ),
    // Store
    (
        "dabba_store_up",
        Gauge,
        "",
        "1 while the store answers the writer",
    ),
    (
        "dabba_writer_batch_units",
        Histogram,
        "",
        "units of work committed per transaction",
    ),
    (
        "dabba_writer_flush_seconds",
        Histogram,
        "",
        "time to commit one batch",
    ),
    (
        "dabba_writer_queue_wait_seconds",
        Histogram,
        "",
        "time the oldest unit of a batch waited",
    ),
    (
        "dabba_writer_rejected_total",
        Counter,
        "reason",
        "writes refused (queue full, store down)",
    ),
    (
        "dabba_read_cache_total",
        Counter,
        "result",
        "finished-order reads through Redis (hit, miss, error)",
    ),
    // Sockets
    ("dabba_ws_connections", Gauge, "", "open WebSockets"),
    (
        "dabba_ws_push_seconds",
        Histogram,
        "",
        "from a push queued to a socket to its frame written",
    ),
    (
        "dabba_ws_refused_total",
        Counter,
        "reason",
        "WebSocket handshakes refused",
    ),
    (
        "dabba_ws_dropped_total",
        Counter,
        "reason",
        "WebSockets cut (slow reader, missed pongs, …)",
    ),
    (
        "dabba_ws_oversized_frames_total",
        Counter,
        "",
        "frames refused by their declared size",
    ),
    (
        "dabba_ws_resyncs_total",
        Counter,
        "reason",
        "sockets told to resume with `since`",
    ),
    (
        "dabba_ws_replayed_events",
        Histogram,
        "",
        "events replayed to a resuming socket",
    ),
    // Event backbone
    (
        "dabba_events_published_total",
        Counter,
        "kind",
        "events pushed to sockets",
    ),
    (
        "dabba_log_tail_lagged_total",
        Counter,
        "",
        "log readers that fell behind and re-read the outbox",
    ),
    (
        "dabba_log_tail_outbox_reads_total",
        Counter,
        "",
        "outbox reads by log readers",
    ),
    (
        "dabba_stream_published_total",
        Counter,
        "family",
        "events published to Redis Streams",
    ),
    (
        "dabba_stream_publish_errors_total",
        Counter,
        "",
        "failed publishes to Redis Streams",
    ),
    (
        "dabba_stream_republish_skipped_total",
        Counter,
        "",
        "events already in the stream, skipped",
    ),
    (
        "dabba_stream_foreign_log",
        Gauge,
        "stream",
        "1 while a Redis stream is ahead of this database's log (another database's, or a restore's): nothing is published to it",
    ),
    (
        "dabba_stream_publish_lag_seconds",
        Histogram,
        "",
        "commit to stream publish",
    ),
    (
        "dabba_stream_length",
        Gauge,
        "family",
        "entries in each Redis stream",
    ),
    (
        "dabba_consumer_lag",
        Gauge,
        "consumer",
        "events a consumer group has not handled",
    ),
    (
        "dabba_consumer_handled_total",
        Counter,
        "consumer",
        "events handled by consumers",
    ),
    (
        "dabba_consumer_retries_total",
        Counter,
        "consumer",
        "event handling retries",
    ),
    (
        "dabba_consumer_dead_letters_total",
        Counter,
        "consumer",
        "events parked as dead letters",
    ),
    (
        "dabba_consumer_claimed_total",
        Counter,
        "consumer",
        "messages claimed from a stopped consumer",
    ),
    (
        "dabba_consumer_read_errors_total",
        Counter,
        "consumer",
        "failed reads of a consumer group",
    ),
    (
        "dabba_consumer_undecodable_total",
        Counter,
        "consumer",
        "stream entries that did not decode",
    ),
    (
        "dabba_kafka_published_total",
        Counter,
        "family",
        "events published to Kafka",
    ),
    (
        "dabba_kafka_publish_errors_total",
        Counter,
        "",
        "failed publishes to Kafka",
    ),
    (
        "dabba_kafka_produce_seconds",
        Histogram,
        "",
        "time to produce a batch to Kafka",
    ),
    // Money
    (
        "dabba_gateway_calls_total",
        Counter,
        "gateway, op, outcome",
        "payment gateway calls",
    ),
    (
        "dabba_gateway_call_seconds",
        Histogram,
        "gateway",
        "payment gateway call latency",
    ),
    (
        "dabba_gateway_breaker_open",
        Gauge,
        "gateway",
        "1 while a gateway's breaker is open",
    ),
    (
        "dabba_gateway_breaker_opened_total",
        Counter,
        "gateway",
        "times a gateway's breaker opened",
    ),
    (
        "dabba_payments_declined_total",
        Counter,
        "",
        "authorisations declined",
    ),
    (
        "dabba_payments_unavailable_total",
        Counter,
        "",
        "placements refused 503 with no gateway",
    ),
    (
        "dabba_payments_voided_total",
        Counter,
        "",
        "late authorisations voided",
    ),
    (
        "dabba_payment_settlements_total",
        Counter,
        "op",
        "settlement operations (capture, refund, transfer) sent",
    ),
    (
        "dabba_reconciliation_mismatches",
        Gauge,
        "",
        "ledger/gateway mismatches at the last reconciliation",
    ),
];

/// Describes every metric to the exporter, and starts the counters without labels (and the
/// restarts of each actor kind) at zero, so dashboards and alerts see them before they move.
pub fn describe() {
    for &(name, kind, labels, help) in CATALOGUE {
        match kind {
            Counter => {
                metrics::describe_counter!(name, help);
                if labels.is_empty() {
                    metrics::counter!(name).increment(0);
                }
            }
            Gauge => metrics::describe_gauge!(name, help),
            Histogram => metrics::describe_histogram!(name, help),
        }
    }
    for kind in ["order", "restaurant", "dispatcher"] {
        metrics::counter!("dabba_actor_restarts_total", "kind" => kind).increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `dabba_*` metric the code records, by reading the sources.
    fn recorded() -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut dirs = vec![std::path::PathBuf::from("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("src").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("catalogue.rs")
                {
                    let text = std::fs::read_to_string(&path).expect("source");
                    for macro_call in ["counter!(\"", "gauge!(\"", "histogram!(\""] {
                        for part in text.split(macro_call).skip(1) {
                            if let Some(name) =
                                part.split('"').next().filter(|n| n.starts_with("dabba_"))
                            {
                                names.insert(name.to_owned());
                            }
                        }
                    }
                }
            }
        }
        names
    }

    #[test]
    fn the_catalogue_lists_every_metric_once_and_the_readme_lists_the_catalogue() {
        let listed: BTreeSet<String> = CATALOGUE.iter().map(|e| e.0.to_owned()).collect();
        assert_eq!(listed.len(), CATALOGUE.len(), "a metric listed twice");
        let recorded = recorded();
        let missing: Vec<_> = recorded.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "recorded but not in the catalogue: {missing:?}"
        );
        let stale: Vec<_> = listed.difference(&recorded).collect();
        assert!(
            stale.is_empty(),
            "in the catalogue but never recorded: {stale:?}"
        );
        let readme = std::fs::read_to_string("README.md").expect("README.md");
        let absent: Vec<_> = listed
            .iter()
            .filter(|n| !readme.contains(&format!("`{n}`")))
            .collect();
        assert!(
            absent.is_empty(),
            "not in the README's catalogue: {absent:?}"
        );
    }
}
