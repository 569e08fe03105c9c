//! The gateway pool: retries with backoff and jitter, a circuit breaker per gateway, fallback
//! to the next gateway, and the rule that keeps money safe: a call whose outcome is unknown (a
//! timeout) is resolved by looking it up under its idempotency key, never by sending it again
//! somewhere else.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;

use super::gateway::{CallError, GatewayCall, OpKind, Outcome, PaymentGateway};
use crate::domain::{Cents, OrderId};

#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Calls per operation on one gateway before it counts as down for this operation.
    pub attempts: u32,
    /// The first retry's delay; doubled each time, with jitter.
    pub base_delay: Duration,
    /// Consecutive failures that open a gateway's breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker refuses calls before letting one trial through.
    pub breaker_cooloff: Duration,
    /// Status lookups after a timeout before the outcome is declared unknown.
    pub lookups: u32,
    pub lookup_delay: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(25),
            breaker_threshold: 5,
            breaker_cooloff: Duration::from_secs(10),
            lookups: 2,
            lookup_delay: Duration::from_millis(100),
        }
    }
}

/// Closed (calls flow), open (refused until the cool-off ends), half-open (one trial).
struct Breaker {
    failures: AtomicU32,
    open_until: Mutex<Option<Instant>>,
    trial: AtomicBool,
}

impl Breaker {
    fn new() -> Self {
        Self {
            failures: AtomicU32::new(0),
            open_until: Mutex::new(None),
            trial: AtomicBool::new(false),
        }
    }

    fn open_until(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.open_until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn allow(&self) -> bool {
        match *self.open_until() {
            None => true,
            Some(until) if Instant::now() < until => false,
            // Cool-off over: one trial call decides.
            Some(_) => !self.trial.swap(true, Ordering::AcqRel),
        }
    }

    fn is_open(&self) -> bool {
        self.open_until().is_some()
    }

    fn success(&self, gateway: &str) {
        self.failures.store(0, Ordering::Release);
        self.trial.store(false, Ordering::Release);
        if self.open_until().take().is_some() {
            tracing::info!(gateway, "gateway breaker closed");
        }
        metrics::gauge!("dabba_gateway_breaker_open", "gateway" => gateway.to_owned()).set(0.0);
    }

    fn failure(&self, gateway: &str, cooloff: Duration, threshold: u32) {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let trial = self.trial.swap(false, Ordering::AcqRel);
        if trial || failures >= threshold {
            let mut until = self.open_until();
            if until.is_none() || trial {
                tracing::warn!(gateway, failures, "gateway breaker opened");
                metrics::counter!("dabba_gateway_breaker_opened_total", "gateway" => gateway.to_owned())
                    .increment(1);
            }
            *until = Some(Instant::now() + cooloff);
            metrics::gauge!("dabba_gateway_breaker_open", "gateway" => gateway.to_owned()).set(1.0);
        }
    }
}

/// Why a payment could not be authorised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayError {
    Declined(String),
    /// Every gateway is down or refusing: nothing was charged.
    Unavailable,
    /// A gateway did not answer in time and could not say what happened: the attempt is
    /// recorded and resolved later (a late success is voided).
    Unknown {
        gateway: String,
        key: String,
    },
}

/// An approved authorisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    pub gateway: String,
    pub reference: String,
    pub key: String,
}

pub struct Gateways {
    list: Vec<(Arc<dyn PaymentGateway>, Breaker)>,
    config: PoolConfig,
}

impl std::fmt::Debug for Gateways {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateways")
            .field("names", &self.names())
            .finish()
    }
}

impl Gateways {
    pub fn new(gateways: Vec<Arc<dyn PaymentGateway>>, config: PoolConfig) -> Self {
        Self {
            list: gateways.into_iter().map(|g| (g, Breaker::new())).collect(),
            config,
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.list.iter().map(|(g, _)| g.name().to_owned()).collect()
    }

    pub fn gateway(&self, name: &str) -> Option<&Arc<dyn PaymentGateway>> {
        self.list.iter().map(|(g, _)| g).find(|g| g.name() == name)
    }

    /// Whether each gateway's breaker is open.
    pub fn breakers(&self) -> Vec<(String, bool)> {
        self.list
            .iter()
            .map(|(g, b)| (g.name().to_owned(), b.is_open()))
            .collect()
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.config.base_delay.saturating_mul(1 << attempt.min(8));
        let jitter = rand::rng().random_range(0.5..1.5);
        base.mul_f64(jitter)
    }

    /// One operation on gateway `idx`: retried while it surely did not happen, looked up
    /// when it may have.
    async fn attempt(&self, idx: usize, call: &GatewayCall) -> Result<Outcome, CallError> {
        let (gateway, breaker) = &self.list[idx];
        let name = gateway.name();
        let mut last = CallError::Unavailable("not tried".into());
        for attempt in 0..self.config.attempts.max(1) {
            if !breaker.allow() {
                return Err(CallError::Unavailable("circuit breaker open".into()));
            }
            let started = Instant::now();
            let result = gateway.call(call).await;
            metrics::histogram!("dabba_gateway_call_seconds", "gateway" => name.to_owned())
                .record(started.elapsed().as_secs_f64());
            let outcome = match &result {
                Ok(Outcome::Approved { .. }) => "approved",
                Ok(Outcome::Declined { .. }) => "declined",
                Err(CallError::Timeout) => "timeout",
                Err(CallError::Unavailable(_)) => "unavailable",
            };
            metrics::counter!("dabba_gateway_calls_total", "gateway" => name.to_owned(),
                "op" => call.kind.as_str(), "outcome" => outcome)
            .increment(1);
            match result {
                Ok(o) => {
                    breaker.success(name);
                    return Ok(o);
                }
                Err(CallError::Timeout) => {
                    breaker.failure(
                        name,
                        self.config.breaker_cooloff,
                        self.config.breaker_threshold,
                    );
                    return self.resolve(idx, &call.key).await;
                }
                Err(e) => {
                    breaker.failure(
                        name,
                        self.config.breaker_cooloff,
                        self.config.breaker_threshold,
                    );
                    tracing::warn!(gateway = name, op = call.kind.as_str(), error = %e, attempt, "gateway call failed");
                    last = e;
                    if attempt + 1 < self.config.attempts {
                        tokio::time::sleep(self.backoff(attempt)).await;
                    }
                }
            }
        }
        Err(last)
    }

    /// After a timeout: what the gateway did with `key`, if it can say.
    async fn resolve(&self, idx: usize, key: &str) -> Result<Outcome, CallError> {
        let gateway = &self.list[idx].0;
        for _ in 0..self.config.lookups {
            tokio::time::sleep(self.config.lookup_delay).await;
            if let Ok(Some(record)) = gateway.lookup(key).await
                && let Some(outcome) = record.outcome()
            {
                return Ok(outcome);
            }
        }
        Err(CallError::Timeout)
    }

    /// Authorises `amount` for `order` on the first gateway that answers, in order. A decline
    /// is final; an unknown outcome stops the fallback (a second gateway could charge twice).
    pub async fn authorize(
        &self,
        order: OrderId,
        amount: Cents,
        token: Option<String>,
    ) -> Result<Authorized, PayError> {
        for idx in 0..self.list.len() {
            let name = self.list[idx].0.name().to_owned();
            let call = GatewayCall {
                key: format!("auth-{order}-{name}"),
                kind: OpKind::Authorize,
                amount,
                token: token.clone(),
                reference: None,
            };
            match self.attempt(idx, &call).await {
                Ok(Outcome::Approved { reference }) => {
                    return Ok(Authorized {
                        gateway: name,
                        reference,
                        key: call.key,
                    });
                }
                Ok(Outcome::Declined { reason }) => return Err(PayError::Declined(reason)),
                Err(CallError::Timeout) => {
                    return Err(PayError::Unknown {
                        gateway: name,
                        key: call.key,
                    });
                }
                Err(CallError::Unavailable(why)) => {
                    tracing::warn!(gateway = %name, %why, "gateway unavailable: trying the next");
                }
            }
        }
        Err(PayError::Unavailable)
    }

    /// Runs `call` on the named gateway (the one holding the authorisation).
    pub async fn execute(&self, gateway: &str, call: &GatewayCall) -> Result<Outcome, CallError> {
        let idx = self
            .list
            .iter()
            .position(|(g, _)| g.name() == gateway)
            .ok_or_else(|| CallError::Unavailable(format!("no gateway named {gateway}")))?;
        self.attempt(idx, call).await
    }

    /// A transfer (payout) on the first gateway that takes it, each with its own key derived
    /// from `key`; an unknown outcome stops the fallback. The gateway used and its answer.
    pub async fn transfer(
        &self,
        key: &str,
        amount: Cents,
        destination: &str,
    ) -> Result<(String, Outcome), CallError> {
        let mut last = CallError::Unavailable("no gateways".into());
        for idx in 0..self.list.len() {
            let name = self.list[idx].0.name().to_owned();
            let call = GatewayCall {
                key: format!("{key}-{name}"),
                kind: OpKind::Transfer,
                amount,
                token: None,
                reference: Some(destination.to_owned()),
            };
            match self.attempt(idx, &call).await {
                Ok(outcome) => return Ok((name, outcome)),
                Err(CallError::Timeout) => return Err(CallError::Timeout),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}
