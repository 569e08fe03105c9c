//! What `dabba load` measures and how it reports it: HDR histograms per flow, the summary
//! (printed, and as JSON), the progress line and a latency-over-time SVG.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

pub(super) const FLOWS: [&str; 6] = [
    "place_order",
    "restaurant_accept",
    "offer_delivery",
    "offer_accept",
    "location_update",
    "push",
];

/// Latencies of one flow, in microseconds, plus a per-second series for the plot.
pub(super) struct Flow {
    pub(super) hist: Histogram<u64>,
    pub(super) errors: u64,
    /// Refused by the server (503 overloaded, 429 rate limited): shed, not failed.
    pub(super) refused: u64,
    /// (second since start, p99 ms of that second)
    pub(super) series: Vec<Histogram<u64>>,
}

impl Flow {
    pub(super) fn new() -> Self {
        // 1 µs .. 60 s at 3 significant digits: fixed bounds, so `record` cannot fail.
        Self {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            errors: 0,
            refused: 0,
            series: Vec::new(),
        }
    }

    fn record(&mut self, second: usize, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, 60_000_000);
        let _ = self.hist.record(us);
        while self.series.len() <= second {
            self.series
                .push(Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid bounds"));
        }
        let _ = self.series[second].record(us);
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct FlowSummary {
    pub count: u64,
    pub errors: u64,
    pub refused: u64,
    pub rate_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct Summary {
    pub duration_s: f64,
    pub flows: std::collections::BTreeMap<String, FlowSummary>,
    pub ws_connections_held: u64,
    /// Location updates the server counted (`dabba_location_updates_total`) during the run,
    /// and their rate: what was ingested, not just what was sent.
    pub server_location_updates: Option<u64>,
    pub server_location_updates_per_s: Option<f64>,
    pub seed: u64,
}

pub(super) struct State {
    pub(super) start: Instant,
    pub(super) flows: HashMap<&'static str, Flow>,
    /// When the restaurant's accept was sent, per order: the start of `offer_delivery`.
    pub(super) accepted_at: HashMap<String, Instant>,
    pub(super) ws_open: u64,
    /// Riders stream positions while true (the open-loop phase).
    pub(super) moving: bool,
    pub(super) stop: bool,
}

pub(super) type Shared = Rc<RefCell<State>>;

impl State {
    pub(super) fn record(&mut self, flow: &'static str, latency: Duration) {
        let second = self.start.elapsed().as_secs() as usize;
        if let Some(f) = self.flows.get_mut(flow) {
            f.record(second, latency);
        }
    }

    pub(super) fn refused(&mut self, flow: &'static str) {
        if let Some(f) = self.flows.get_mut(flow) {
            f.refused += 1;
        }
    }

    pub(super) fn error(&mut self, flow: &'static str) {
        if let Some(f) = self.flows.get_mut(flow) {
            f.errors += 1;
        }
    }
}

pub(super) fn progress(state: &Shared, elapsed: Duration, total: Duration) {
    let s = state.borrow();
    let placed = s.flows["place_order"].hist.len();
    let errors: u64 = s.flows.values().map(|f| f.errors).sum();
    let refused: u64 = s.flows.values().map(|f| f.refused).sum();
    let frac = (elapsed.as_secs_f64() / total.as_secs_f64()).min(1.0);
    let bar: String = (0..30)
        .map(|i| if (i as f64) < frac * 30.0 { '#' } else { '.' })
        .collect();
    eprint!(
        "\r[{bar}] {:>5.1}s  orders {placed}  errors {errors}  refused {refused}  sockets {}   ",
        elapsed.as_secs_f64(),
        s.ws_open
    );
    let _ = std::io::stderr().flush();
}

pub(super) fn summarise(s: &State, elapsed: f64, seed: u64) -> Summary {
    let ms = |us: u64| us as f64 / 1_000.0;
    let flows = FLOWS
        .iter()
        .map(|name| {
            let f = &s.flows[name];
            let h = &f.hist;
            let count = h.len();
            (
                (*name).to_owned(),
                FlowSummary {
                    count,
                    errors: f.errors,
                    refused: f.refused,
                    rate_per_s: count as f64 / elapsed,
                    p50_ms: ms(h.value_at_quantile(0.5)),
                    p90_ms: ms(h.value_at_quantile(0.9)),
                    p99_ms: ms(h.value_at_quantile(0.99)),
                    p999_ms: ms(h.value_at_quantile(0.999)),
                    max_ms: ms(h.max()),
                },
            )
        })
        .collect();
    Summary {
        duration_s: elapsed,
        flows,
        ws_connections_held: s.ws_open,
        server_location_updates: None,
        server_location_updates_per_s: None,
        seed,
    }
}

pub(super) fn print_table(s: &Summary) {
    println!(
        "\n{:<18} {:>8} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "flow",
        "count",
        "errors",
        "refused",
        "rate/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p999 ms",
        "max ms"
    );
    for (name, f) in &s.flows {
        println!(
            "{name:<18} {:>8} {:>7} {:>8} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            f.count,
            f.errors,
            f.refused,
            f.rate_per_s,
            f.p50_ms,
            f.p90_ms,
            f.p99_ms,
            f.p999_ms,
            f.max_ms
        );
    }
    println!(
        "websocket connections held: {}   duration: {:.1} s",
        s.ws_connections_held, s.duration_s
    );
    if let (Some(n), Some(rate)) = (s.server_location_updates, s.server_location_updates_per_s) {
        println!("location updates ingested by the server: {n} ({rate:.0}/s)");
    }
}

/// p99 per second of each flow, as an SVG line chart (no browser or plotting library needed).
pub(super) fn svg_plot(s: &State) -> String {
    let (w, h, pad) = (900.0, 420.0, 50.0);
    let colors = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    ];
    let series: Vec<(&str, Vec<f64>)> = FLOWS
        .iter()
        .map(|n| {
            (
                *n,
                s.flows[n]
                    .series
                    .iter()
                    .map(|h| {
                        if h.is_empty() {
                            f64::NAN
                        } else {
                            h.value_at_quantile(0.99) as f64 / 1_000.0
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    let seconds = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let top = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max)
        * 1.1;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (seconds - 1) as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / top;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    );
    out +=
        &format!(r#"<text x="{pad}" y="20">p99 latency per second (ms), top {top:.1} ms</text>"#);
    out += &format!(
        r#"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="black"/>"#,
        h - pad,
        w - pad,
        h - pad,
        h - pad
    );
    for (k, (name, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let color = colors[k % colors.len()];
        out += &format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        out += &format!(
            r#"<text x="{}" y="{}" fill="{color}">{name}</text>"#,
            w - pad - 120.0,
            pad + 16.0 * k as f64
        );
    }
    out += &format!(
        r#"<text x="{}" y="{}">seconds</text></svg>"#,
        w / 2.0,
        h - 15.0
    );
    out
}
