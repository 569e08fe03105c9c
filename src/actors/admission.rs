//! Admission of new work (placements) by measured latency: an adaptive limit on placements in
//! flight. While the smoothed placement latency is within the target the limit grows by one
//! per completion; above it, the limit shrinks by a tenth, at most once per target interval.
//! (Smoothed, so one slow placement at normal load does not refuse the next ones.) Beyond the
//! limit a placement is refused at once (`503 overloaded`), so under overload the orders
//! already accepted keep their latency and the excess costs almost nothing. Work already
//! accepted (an order's later steps) is never refused here.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Placement latency the limit steers towards (`DABBA_ADMISSION_TARGET_MS`). This is the
/// server's own share of a placement (from the engine to the commit); what a client sees adds
/// the HTTP layers and, on a saturated machine, waits for a CPU. Measured side by side
/// (BENCHMARKS.md, issue 9 fifth pass), 25 ms against 50 ms: offered twice what the machine
/// carries, placement p99 187–198 ms against 245–270 ms with 4–6 % more orders carried;
/// offered just above it, p99 107 against 139 ms with 4 % fewer carried.
pub const TARGET_LATENCY: Duration = Duration::from_millis(25);
const MIN_LIMIT: usize = 8;
const MAX_LIMIT: usize = 4_096;
const START_LIMIT: usize = 256;
/// Share of the limit kept when placements run slow.
const BACKOFF: f64 = 0.9;
/// Weight of the newest placement in the smoothed latency.
const SMOOTHING: f64 = 0.1;

#[derive(Debug)]
struct State {
    in_flight: usize,
    limit: usize,
    last_decrease: Option<Instant>,
    /// Exponentially smoothed placement latency, in seconds.
    smoothed: f64,
}

#[derive(Debug)]
pub struct Admission {
    target: Duration,
    state: Mutex<State>,
}

impl Default for Admission {
    fn default() -> Self {
        Self::new(TARGET_LATENCY)
    }
}

impl Admission {
    pub fn new(target: Duration) -> Self {
        Self {
            target,
            state: Mutex::new(State {
                in_flight: 0,
                limit: START_LIMIT,
                last_decrease: None,
                smoothed: 0.0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A permit for one placement, or `None` when the limit is reached.
    pub fn try_enter(&self) -> Option<Permit<'_>> {
        let mut s = self.lock();
        if s.in_flight >= s.limit {
            metrics::counter!("dabba_admission_refused_total").increment(1);
            return None;
        }
        s.in_flight += 1;
        Some(Permit {
            admission: self,
            started: Instant::now(),
        })
    }

    /// The current limit (for tests and the metrics page).
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    fn finish(&self, took: Duration, now: Instant) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.smoothed += SMOOTHING * (took.as_secs_f64() - s.smoothed);
        if s.smoothed <= self.target.as_secs_f64() {
            s.limit = (s.limit + 1).min(MAX_LIMIT);
        } else if s
            .last_decrease
            .is_none_or(|t| now.duration_since(t) >= self.target)
        {
            s.limit = ((s.limit as f64 * BACKOFF) as usize).max(MIN_LIMIT);
            s.last_decrease = Some(now);
        }
        metrics::gauge!("dabba_admission_limit").set(s.limit as f64);
    }
}

/// Held while a placement runs; dropping it reports how long it took.
pub struct Permit<'a> {
    admission: &'a Admission,
    started: Instant,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        self.admission.finish(now.duration_since(self.started), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_placements_shrink_the_limit_and_fast_ones_grow_it_back() {
        let a = Admission::new(Duration::from_millis(50));
        let start = a.limit();
        let t0 = Instant::now();
        // Sustained slow completions, spaced a target apart: once the smoothed latency is over
        // the target, each shrinks the limit by a tenth.
        for i in 0..12 {
            let _p = a.try_enter().expect("under the limit");
            std::mem::forget(_p);
            a.finish(
                Duration::from_millis(200),
                t0 + Duration::from_millis(60 * i),
            );
        }
        let shrunk = a.limit();
        assert!(shrunk < start / 2, "{shrunk} vs {start}");
        // A burst of slow completions within one interval shrinks it only once.
        let before = a.limit();
        for _ in 0..5 {
            let p = a.try_enter().expect("under the limit");
            std::mem::forget(p);
            a.finish(Duration::from_millis(200), t0 + Duration::from_millis(720));
        }
        let once = (before as f64 * BACKOFF) as usize;
        assert_eq!(a.limit(), once);
        let before = once;
        // Fast completions bring the smoothed latency down, then open it one at a time.
        for _ in 0..40 {
            drop(a.try_enter());
        }
        assert!(a.limit() > before, "{} <= {before}", a.limit());
    }

    #[test]
    fn one_slow_placement_at_normal_load_does_not_close_the_door() {
        let a = Admission::new(Duration::from_millis(50));
        let t0 = Instant::now();
        for i in 0..50 {
            std::mem::forget(a.try_enter().expect("under the limit"));
            let took = if i == 25 { 400 } else { 10 };
            a.finish(Duration::from_millis(took), t0 + Duration::from_millis(i));
        }
        assert!(a.limit() >= START_LIMIT + 40, "{}", a.limit());
    }

    #[test]
    fn beyond_the_limit_new_work_is_refused_at_once() {
        let a = Admission::new(Duration::from_secs(60));
        let held: Vec<_> = (0..a.limit()).map(|_| a.try_enter().unwrap()).collect();
        assert!(a.try_enter().is_none());
        drop(held);
        assert!(a.try_enter().is_some());
    }
}
